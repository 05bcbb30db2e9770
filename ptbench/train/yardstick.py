"""A fixed single-threaded loop, timed: the yardstick speed is measured against.

Why: wall-clock figures on a shared machine drift up to 2× from one night to the next, and with
the load of the moment. Each final run times this loop in its own worker right after training,
so its train seconds can be read as a multiple of it; the nightly speed history divides every
benchmark by the same loop timed in the same pytest session.
"""

from __future__ import annotations

import math
import time


def reference_seconds(repeats: int = 5) -> float:
    """Best of ``repeats`` timings of 60 tanh(x @ a) steps on 192×192 (~25 ms each here)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a = torch.randn(192, 192, generator=torch.Generator().manual_seed(0))
        best = math.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            x = a
            for _ in range(60):
                x = torch.tanh(x @ a)
            best = min(best, time.perf_counter() - t0)
        return best
    finally:
        torch.set_num_threads(threads)
