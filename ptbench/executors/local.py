"""Local executor: N worker processes (concurrent.futures), one device each, threads split fairly.

Workers are spawned (safe with CUDA) and each pins itself to one device at start-up; on the CPU
each gets ``cores // N`` torch threads so N workers never oversubscribe the machine. A job never
asks where it runs: ``submit(fn, *args)`` calls ``fn(*args, device=…, threads=…)`` with the
device and thread budget of the worker it landed on, so the same job runs anywhere.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

_PLACE: dict[str, Any] = {"device": "cpu", "threads": 0}  # this worker's, set at its start


def resolve_devices(devices: str | list[str], workers: int) -> list[str]:
    """One device per worker: listed devices round-robin, else each visible GPU, else CPU."""
    if isinstance(devices, list):
        return [devices[i % len(devices)] for i in range(workers)]
    if devices == "auto":
        import torch

        n = torch.cuda.device_count()
        if n:
            return [f"cuda:{i % n}" for i in range(workers)]
    return ["cpu"] * workers


def _init_worker(queue: Any, threads: int) -> None:
    device = queue.get()
    _PLACE.update(device=device, threads=threads)
    import torch

    if device.startswith("cuda"):
        torch.cuda.set_device(device)
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)


def _placed(fn, args: tuple) -> Any:
    """Run a job in a worker, handing it the worker's device and thread budget."""
    return fn(*args, **_PLACE)


class LocalExecutor:
    def __init__(self, workers: int, devices: list[str]):
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        for d in devices:
            queue.put(d)
        cpu_workers = max(1, sum(d == "cpu" for d in devices))
        threads = max(1, (os.cpu_count() or 1) // cpu_workers)
        self.devices = devices
        self.threads = threads
        self.pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(queue, threads)
        )

    def submit(self, fn, *args) -> Future:
        """Run ``fn(*args, device=…, threads=…)`` on the next free worker."""
        return self.pool.submit(_placed, fn, args)

    def shutdown(self, cancel: bool = False) -> None:
        if cancel:
            for p in list(getattr(self.pool, "_processes", {}).values()):
                p.terminate()  # Ctrl-C: stop at once; resume picks up from the storage
        self.pool.shutdown(wait=not cancel, cancel_futures=cancel)
