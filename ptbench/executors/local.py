"""Local executor: N worker processes, one device each, threads split fairly.

Each worker is its own single-process pool, so a worker killed mid-trial (SIGKILL, the
out-of-memory killer) loses that one job: its future raises ``BrokenProcessPool``, the slot is
restarted on the same device, and the run loop retries the job — the other workers never
notice. (One ``ProcessPoolExecutor`` of N workers would break as a whole and kill them all.)

Workers are spawned (safe with CUDA) and never outlive the driver: each asks the kernel for
SIGKILL when its parent dies (``PR_SET_PDEATHSIG``), which covers a driver killed with SIGKILL;
SIGINT and SIGTERM reach ``shutdown(cancel=True)``. On the CPU each worker gets
``cores // N`` (the cores this process may use) torch threads so N workers never oversubscribe the machine.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ptbench.errors import PtbenchError
from ptbench.lifetime import die_with_parent


def resolve_devices(devices: str | list[str], workers: int) -> list[str]:
    """One device per worker: listed devices round-robin, else each visible GPU, else CPU."""
    if isinstance(devices, list):  # checked against the machine before the run (check_devices)
        return [devices[i % len(devices)] for i in range(workers)]
    if devices == "auto":
        import torch

        n = torch.cuda.device_count()
        if n:
            return [f"cuda:{i % n}" for i in range(workers)]
    return ["cpu"] * workers


def check_devices(devices: list[str]) -> None:
    """A CUDA device this machine lacks kills every worker as it starts: say so before the run."""
    wanted = [d for d in devices if d.split(":")[0] == "cuda"]
    if not wanted:
        return
    import torch

    n = torch.cuda.device_count()
    for d in wanted:
        index = d.partition(":")[2] or "0"
        if not index.isdigit() or int(index) >= n:
            have = f"{n} CUDA device(s): cuda:0 to cuda:{n - 1}" if n else "no CUDA device"
            raise PtbenchError(f"execution.devices: '{d}' is not on this machine, which has {have}")


def _init_worker(device: str, threads: int) -> None:
    die_with_parent()
    import torch

    if device.startswith("cuda"):
        torch.cuda.set_device(device)
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)


def _placed(fn, args: tuple, device: str, threads: int) -> Any:
    """Run a job in a worker, handing it the worker's device and thread budget."""
    return fn(*args, device=device, threads=threads)


class _Slot:
    """One worker process pinned to one device; restarted when its process dies."""

    def __init__(self, device: str, threads: int):
        self.device, self.threads, self.busy = device, threads, 0
        self.lock = threading.Lock()  # a broken pool is swapped once, whoever submits
        self.pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        ctx = mp.get_context("spawn")
        return ProcessPoolExecutor(
            1, mp_context=ctx, initializer=_init_worker, initargs=(self.device, self.threads)
        )

    def submit(self, fn, args: tuple) -> Future:
        """The pool is restarted here, when the next job comes, not in the lost job's done
        callback: the run loop wakes on the lost job before its callbacks run, and its retry
        went to the broken pool, whose ``submit`` raised and stopped the driver."""
        with self.lock:
            try:
                fut = self.pool.submit(_placed, fn, args, self.device, self.threads)
            except BrokenProcessPool:  # its process died: the same device, a fresh process
                self.pool.shutdown(wait=False, cancel_futures=True)
                self.pool = self._start()
                fut = self.pool.submit(_placed, fn, args, self.device, self.threads)
            self.busy += 1
        fut.add_done_callback(self._finished)
        return fut

    def _finished(self, fut: Future) -> None:
        self.busy -= 1

    def stop(self, cancel: bool) -> None:
        if cancel:  # stop at once; what was running is failed and retried by the run loop
            for proc in list((getattr(self.pool, "_processes", None) or {}).values()):
                with contextlib.suppress(Exception):
                    proc.kill()
        self.pool.shutdown(wait=not cancel, cancel_futures=cancel)


def _cores() -> int:
    """The cores this process may run on: a container, taskset or a batch scheduler's CPU set
    gives fewer than the machine has, and workers sized by the machine oversubscribed them."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class LocalExecutor:
    def __init__(self, workers: int, devices: list[str]):
        cpu_workers = max(1, sum(d == "cpu" for d in devices))
        self.devices = devices
        self.threads = max(1, _cores() // cpu_workers)
        self.capacity = workers
        self.slots = [_Slot(d, self.threads) for d in devices[:workers]]

    def submit(self, fn, *args) -> Future:
        """Run ``fn(*args, device=…, threads=…)`` on the least busy worker."""
        slot = min(self.slots, key=lambda s: s.busy)
        return slot.submit(fn, args)

    def worker_pids(self) -> list[int]:
        return [p for s in self.slots for p in (getattr(s.pool, "_processes", None) or {})]

    def shutdown(self, cancel: bool = False) -> None:
        for slot in self.slots:
            slot.stop(cancel)
