"""What the run loop needs of an executor, and nothing more.

An executor runs ``fn(*args, device=…, threads=…)`` somewhere and hands back a
``concurrent.futures.Future``. Jobs never raise (they record their own failures), so a future
that raises means the job was lost with its worker — killed by the out-of-memory killer, a node
gone — and the run loop retries it. ``capacity`` is how many jobs may run at once: the loop
keeps no more in flight, so each trial is asked for only when it can start (TPE then learns
from every finished trial before proposing the next one).
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any, Protocol


class Executor(Protocol):
    capacity: int

    def submit(self, fn: Any, *args: Any) -> Future:
        """Run ``fn(*args, device=…, threads=…)`` on a free worker."""

    def shutdown(self, cancel: bool = False) -> None:
        """Wait for running jobs and release the workers; ``cancel``: stop them at once."""
