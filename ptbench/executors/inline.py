"""Inline executor: each job runs in the driver's own process, one at a time, when submitted.

Why: no worker to spawn and no model to rebuild per run (a frozen backbone stays cached in the
process), which makes many short runs — a test's nightly history, a notebook, a debugger's
breakpoint inside a trial — cheap. What it gives up: isolation. A job that kills its process
kills the run (the next run resumes it), and Ctrl-C stops the job where it is.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any


class InlineExecutor:
    capacity = 1

    def __init__(self, device: str = "cpu", threads: int = 0):
        self.device, self.threads = device, threads

    def submit(self, fn: Any, *args: Any) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args, device=self.device, threads=self.threads))
        except Exception as err:  # jobs record their own failures: this one broke its process
            fut.set_exception(err)
        return fut

    def shutdown(self, cancel: bool = False) -> None:
        """Nothing runs once ``submit`` returned."""
