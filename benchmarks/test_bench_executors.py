"""Executor overhead and scaling (issue #13): the local processes against Ray Core tasks.

Overhead: N jobs that each hold a worker for exactly ``seconds`` (a sleep: no CPU contention,
so what remains is the executor's own cost: submission, placement, result transfer) on 2
workers; overhead = wall time / ideal wall time - 1. Goal: Ray ≤ 10 % at 1-s jobs, ≤ 3 % at 10 s.
Scaling: the same CPU-bound job (a fixed matmul loop, 1 torch thread) 8 times on 1 then 2
workers: speed-up = wall(1) / wall(2); 2 cores give at most 2.0.

Run: pytest benchmarks/test_bench_executors.py --benchmark-only -s
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest


def sleep_job(seconds: float, *, device: str, threads: int) -> float:
    time.sleep(seconds)
    return seconds


def cpu_job(n: int, *, device: str, threads: int) -> float:
    import torch

    torch.set_num_threads(1)
    a = torch.randn(256, 256)
    start = time.perf_counter()
    for _ in range(n):
        a = torch.tanh(a @ a / 256)
    return time.perf_counter() - start


@pytest.fixture(autouse=True)
def _importable(monkeypatch):
    """Ray workers import the jobs of this file by module name: put its folder on their path."""
    here = str(Path(__file__).parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])))


def _executor(kind: str, workers: int):
    from ptbench.executors import LocalExecutor
    from ptbench.executors.ray import RayExecutor

    if kind == "local":
        return LocalExecutor(workers, ["cpu"] * workers)
    return RayExecutor(None, workers, 0, 1)


def _wall(ex, fn, args: tuple, jobs: int) -> float:
    """Wall time of ``jobs`` jobs kept ``ex.capacity`` in flight, as the run loop does."""
    from concurrent.futures import FIRST_COMPLETED, wait

    start, left, pending = time.perf_counter(), jobs, set()
    while left or pending:
        while left and len(pending) < ex.capacity:
            pending.add(ex.submit(fn, *args))
            left -= 1
        done, pending = wait(pending, return_when=FIRST_COMPLETED)
        for f in done:
            f.result()
    return time.perf_counter() - start


@pytest.mark.parametrize("kind", ["local", "ray"])
@pytest.mark.parametrize("seconds,jobs", [(1.0, 8), (10.0, 4)], ids=["1s", "10s"])
def test_executor_overhead(benchmark, kind, seconds, jobs):
    ex = _executor(kind, 2)
    try:
        _wall(ex, sleep_job, (0.0,), 2)  # workers started and warm: start-up is not per-trial cost
        wall = benchmark.pedantic(_wall, args=(ex, sleep_job, (seconds,), jobs), rounds=1, iterations=1)
    finally:
        ex.shutdown()
    ideal = seconds * jobs / 2
    pct = 100 * (wall / ideal - 1)
    benchmark.extra_info.update(wall_s=round(wall, 3), ideal_s=ideal, overhead_pct=round(pct, 2))
    print(f"\n{kind} {seconds:.0f}-s jobs: wall {wall:.2f} s, ideal {ideal:.1f} s, overhead {pct:.1f} %")


@pytest.mark.parametrize("kind", ["local", "ray"])
def test_executor_scaling(benchmark, kind):
    walls = {}
    for workers in (1, 2):
        ex = _executor(kind, workers)
        try:
            _wall(ex, cpu_job, (5,), workers)
            walls[workers] = _wall(ex, cpu_job, (400,), 8)
        finally:
            ex.shutdown()
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    speedup = walls[1] / walls[2]
    info = {"wall_1": round(walls[1], 2), "wall_2": round(walls[2], 2), "speedup": round(speedup, 2)}
    benchmark.extra_info.update(info)
    print(f"\n{kind}: 8 CPU jobs on 1 worker {walls[1]:.2f} s, on 2 workers {walls[2]:.2f} s: ×{speedup:.2f}")
