"""Peak memory of one job, above what the process already held when the job started.

A worker process runs many jobs one after another, so its lifetime peak RSS (``ru_maxrss``)
reports the largest job it ever ran, not this one: a small model that follows a VGG in the same
worker would inherit the VGG's peak. Hence, per job:

- CUDA: the allocator's own peak (``torch.cuda.max_memory_allocated``), reset at the job's start.
- CPU on Linux: the kernel's high-water mark of the resident set (``VmHWM``), reset to the
  current RSS at the job's start through ``/proc/self/clear_refs`` (exact, no thread, no cost).
- CPU elsewhere (or where ``clear_refs`` is not writable): a daemon thread samples the resident set
  (psutil, already installed as a dependency of peft) every few milliseconds; a spike shorter than
  that can be missed, which is why the kernel's mark is preferred.

The CPU figure is the peak *above the job's start*: memory held before the job (imports, caches
of earlier jobs, freed memory the allocator kept and hands out again) is not counted; what a job
loads first for later jobs too (the first job in a worker imports torch's model code and reads
the task: ~240 MB for the tiny digits suite) is counted once, on that job.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")
_SAMPLER: _Sampler | None = None  # at most one per process: a new job stops the previous one's


def _status_kb(field: str) -> int:
    m = re.search(rf"^{field}:\s+(\d+) kB", _STATUS.read_text(), re.M)
    if m is None:
        raise OSError(f"{field} not in {_STATUS}")
    return int(m.group(1))


def _reset_kernel_peak() -> int | None:
    """Reset the kernel's high-water mark to the current RSS; its value in bytes, or None where
    the kernel does not allow it (not Linux, Linux < 4.0, a sandbox)."""
    try:
        _CLEAR_REFS.write_text("5")  # 5: reset the peak RSS of this process (man 5 proc)
        return _status_kb("VmHWM") * 1024
    except OSError:
        return None


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


class _Sampler(threading.Thread):
    """Keeps the largest resident set seen since it started (the fallback without VmHWM)."""

    def __init__(self, every_s: float):
        super().__init__(daemon=True, name="ptbench-memory")
        self.every_s = every_s
        self.peak = _rss()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every_s):
            self.peak = max(self.peak, _rss())

    def stop(self) -> int:
        self.done.set()
        self.peak = max(self.peak, _rss())  # what the job still holds at its end counts too
        return self.peak


class JobMemory:
    """``m = JobMemory(device)`` when a job starts, ``m.peak_mb()`` when it ends."""

    def __init__(self, device: str, kernel_peak: bool = True, every_s: float = 0.005):
        global _SAMPLER
        self.device = device
        self.sampler: _Sampler | None = None
        if device.startswith("cuda"):
            import torch

            torch.cuda.reset_peak_memory_stats(device)
            # what the worker already holds (frozen backbones cached for later jobs) is not this job's
            self.start = torch.cuda.memory_allocated(device)
            return
        if _SAMPLER is not None:  # a job that raised never read its sampler: stop it now
            _SAMPLER.stop()
            _SAMPLER = None
        start = _reset_kernel_peak() if kernel_peak else None
        if start is None:
            self.sampler = _SAMPLER = _Sampler(every_s)
            self.sampler.start()
            start = self.sampler.peak
        self.start = start

    def peak_mb(self) -> float:
        """Peak above the job's start: allocated on CUDA, resident set on the CPU."""
        global _SAMPLER
        if self.device.startswith("cuda"):
            import torch

            return max(0, torch.cuda.max_memory_allocated(self.device) - self.start) / 2**20
        if self.sampler is not None:
            peak = self.sampler.stop()
            if _SAMPLER is self.sampler:
                _SAMPLER = None
        else:
            peak = _status_kb("VmHWM") * 1024
        return max(0, peak - self.start) / 2**20
