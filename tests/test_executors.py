"""The local executor hands each job the device and thread budget of the worker it lands on: a
job never reads an executor's globals, so the same job runs in any executor (issue #11)."""

from __future__ import annotations

from ptbench.executors import LocalExecutor


def _placement(label: str, *, device: str, threads: int) -> tuple[str, str, int]:
    return label, device, threads


def test_a_job_is_handed_its_workers_device_and_thread_budget():
    ex = LocalExecutor(1, ["cpu"])
    try:
        got = ex.submit(_placement, "job").result(timeout=300)
    finally:
        ex.shutdown()
    assert got == ("job", "cpu", ex.threads) and ex.threads >= 1
