"""What ranking costs against what it saves (issue #16): ``ptbench rank`` over every backbone of
``suites/rank.yaml`` from a cold feature cache, against the wall time of the same suite's
fine-tuning searches and final runs. Goal: ranking ≤ 1 % of fine-tuning.

Three ``ptbench`` processes on one fresh project, as a user would run them:
  1. ``ptbench rank`` — makes the suite's pre-training recipes (a one-off cost both sides share,
     reported apart, from each recipe's ``meta.json``) and extracts the features;
  2. ``ptbench run`` — the weights exist, so its wall time is the fine-tuning (searches + final
     runs, with the run's own start-up and data checks);
  3. the feature cache moved away, ``ptbench rank`` again: the cold-cache ranking, timed from
     process start to exit (imports, weights, features, every estimator, MLflow runs, report).
It takes as long as the suite (100 min on 2 cores for v5, 25 min for v4); ``PTBENCH_BENCH_RANK_SUITE`` names
another suite file. Nothing else should run on the machine meanwhile.

Run: pytest benchmarks/test_bench_rank.py --benchmark-only -s
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

SUITE = Path(os.environ.get("PTBENCH_BENCH_RANK_SUITE", ROOT / "suites" / "rank.yaml"))


def ptbench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ptbench.cli", *args], cwd=cwd, capture_output=True, text=True
    )


def _timed(*args: str, cwd: Path) -> float:
    start = time.perf_counter()
    proc = ptbench(*args, cwd=cwd)
    assert proc.returncode == 0, (
        f"ptbench {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    )
    return time.perf_counter() - start


def test_rank_cost_against_fine_tuning(benchmark, tmp_path):
    valid = ptbench("validate", str(SUITE), cwd=tmp_path)
    if valid.returncode != 0:  # an optional source is missing: the suite says which install line
        pytest.skip(f"{SUITE.name} cannot run here: {valid.stderr.strip()[:300]}")
    project = ("--project-dir", str(tmp_path / "project"))
    results = ("--results-dir", str(tmp_path / "results"))
    first = _timed("rank", str(SUITE), *project, *results, cwd=tmp_path)
    metas = (tmp_path / "project" / "weights").glob("*/meta.json")
    pretrain = sum(json.loads(m.read_text())["seconds"] for m in metas)
    finetune = _timed("run", str(SUITE), *project, "--no-progress", "--no-leaderboard", cwd=tmp_path)
    shutil.rmtree(tmp_path / "project" / "cache" / "features")
    args = ("rank", str(SUITE), *project, *results)
    rank = benchmark.pedantic(_timed, args=args, kwargs={"cwd": tmp_path}, rounds=1)
    pct = 100 * rank / finetune
    benchmark.extra_info.update(
        rank_cold_s=round(rank, 1),
        finetune_s=round(finetune, 1),
        rank_pct=round(pct, 2),
        pretrain_s=round(pretrain, 1),
        first_rank_s=round(first, 1),
    )
    print(
        f"\n{SUITE.name}: ranking from a cold feature cache {rank:.0f} s, fine-tuning searches + final "
        f"runs {finetune:.0f} s: {pct:.1f} % (goal ≤ 1 %); pre-training {pretrain:.0f} s, the first "
        f"ranking (pre-training + features) {first:.0f} s"
    )
