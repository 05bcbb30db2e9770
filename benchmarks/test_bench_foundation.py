"""Issue #2 targets: quickstart wall time, --help start-up, orchestration overhead per trial,
trainer throughput against a plain PyTorch loop, and 2 workers against 1 on 2 cores."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import torch
from conftest import ROOT, interleaved, records, trainer_throughput

from ptbench.runner import RunOptions, run_suite
from ptbench.suite import load_suite, parse_suite


def test_quickstart_wall_time_and_orchestration_overhead(benchmark, tmp_path):
    """The quickstart suite end to end (2 workers, 2 cores), then per-trial overhead from its
    own record: time outside train/eval (build, data, Optuna, MLflow) / trial time."""
    suite = load_suite(ROOT / "suites" / "quickstart.yaml")
    project = tmp_path / "proj"
    summary = benchmark.pedantic(
        lambda: run_suite(suite, RunOptions(project_dir=str(project), progress=False)), rounds=1, iterations=1
    )
    jobs = [
        r
        for r in records(project, "quickstart")
        if r.get("tags.ptbench.kind") in ("trial", "final") and r["status"] == "FINISHED"
    ]
    overhead = [
        (r["metrics.job_seconds"] - r["metrics.train_seconds"] - r.get("metrics.eval_seconds", 0.0))
        / r["metrics.job_seconds"]
        for r in jobs
    ]
    ft = [o for o, r in zip(overhead, jobs, strict=True) if r["params.strategy"] == "full_finetune"]
    benchmark.extra_info.update(
        {
            "wall_seconds": summary.seconds,
            "overhead_fraction_median_all": sorted(overhead)[len(overhead) // 2],
            "overhead_fraction_median_finetune": sorted(ft)[len(ft) // 2],
            "overhead_seconds_median": sorted(
                r["metrics.job_seconds"] - r["metrics.train_seconds"] - r.get("metrics.eval_seconds", 0.0)
                for r in jobs
            )[len(jobs) // 2],
        }
    )


def test_help_startup(benchmark):
    def run():
        subprocess.run(
            [sys.executable, "-m", "ptbench.cli", "--help"], check=True, capture_output=True, cwd=ROOT
        )

    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)


def _data(n=1024, size=32):
    g = torch.Generator().manual_seed(0)
    return (
        torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=g),
        torch.randint(0, 10, (n,), generator=g),
    )


def test_trainer_vs_plain_pytorch_loop(benchmark):
    """Examples/s of ptbench's trainer over a plain loop with the same model, data, batch size."""
    from ptbench.backbones import BACKBONES
    from ptbench.strategies.base import Classifier, make_head

    torch.set_num_threads(2)
    x, y = _data()
    spec = {"name": "efficientnet_lite0", "weights": "none", "params": {"input_size": 32}}
    bs, epochs = 64, 2

    def model():
        torch.manual_seed(0)
        bb = BACKBONES.get("efficientnet_lite0").fn(spec)
        return Classifier(bb, make_head(bb, 10, 0.0)), bb.preprocess

    def plain():
        m, pre = model()
        opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
        m.train()
        t = time.perf_counter()
        for _ in range(epochs):
            perm = torch.randperm(len(x))
            for i in range(0, len(x), bs):
                idx = perm[i : i + bs]
                loss = torch.nn.functional.cross_entropy(m(pre(x[idx])), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        return epochs * len(x) / (time.perf_counter() - t)

    def ours():
        return trainer_throughput(*model(), x, y, bs, epochs)

    base, mine = interleaved(plain, ours)
    benchmark.pedantic(ours, rounds=1, iterations=1)
    benchmark.extra_info.update(
        {"plain_examples_per_s": base, "ptbench_examples_per_s": mine, "ratio": mine / base}
    )


def _scaling_suite(
    backbone: str, size: int, train: int, strategy: str = "full_finetune", epochs: int = 2
) -> dict:
    return {
        "name": "scaling",
        "version": 1,
        "axes": {
            "backbones": [{"name": backbone, "weights": "none", "params": {"input_size": size}}],
            "tasks": [{"name": "digits", "params": {"train_size": train, "val_size": 64, "test_size": 64}}],
            "strategies": [strategy],
            "regularizers": ["none"],
        },
        "search": {"trials": 12, "pruner": "none", "space": {"epochs": epochs, "batch_size": 32}},
        "seeds": [0],
        "evaluation": ["test"],
    }


WORKLOADS = {
    "small": ("test_efficientnet", 32, 512),
    "lite0": ("efficientnet_lite0", 32, 256),
    # a linear-probe search: head trials on cached features, bound by per-step Python work
    "probe": ("efficientnet_lite0", 32, 1000, "linear_probe", 40),
}


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_worker_scaling(benchmark, tmp_path, workload, workers):
    """One cell's search (12 trials + 1 final) on 1 vs 2 worker processes. Reports wall-clock
    jobs/s and steady-state jobs/s (after every worker finished its first, import-laden job)."""
    suite = parse_suite(_scaling_suite(*WORKLOADS[workload]))
    project = tmp_path / f"w{workers}"
    summary = benchmark.pedantic(
        lambda: run_suite(suite, RunOptions(project_dir=str(project), workers=workers, progress=False)),
        rounds=1,
        iterations=1,
    )
    assert not summary.errors, summary.errors
    ends = sorted(
        r["end_time"] for r in records(project, "scaling") if r.get("tags.ptbench.kind") in ("trial", "final")
    )
    steady = (len(ends) - workers) / ((ends[-1] - ends[workers - 1]) / 1000)
    jobs = sum(summary.trials.values()) + sum(summary.finals.values())
    benchmark.extra_info.update(
        {
            "jobs": jobs,
            "jobs_per_s": jobs / summary.seconds,
            "steady_jobs_per_s": steady,
            "wall_seconds": summary.seconds,
        }
    )
