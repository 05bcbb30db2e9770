"""``ptbench rank`` on a real tiny suite: scores before the suite runs, the check against the
fine-tuned truth after it, MLflow runs of kind rank, and a one-line error for a bad name."""

from __future__ import annotations

import pytest
from conftest import ptbench, write_suite

from ptbench.tracking import Tracker, default_tracking_uri

SUITE = {
    "name": "rank_tiny",
    "version": 1,
    "axes": {
        "backbones": [
            {"name": "test_efficientnet", "weights": "none", "params": {"input_size": 16}},
            {"name": "test_efficientnet", "weights": "none", "params": {"input_size": 24}},
            {"name": "test_efficientnet", "weights": "none", "params": {"input_size": 32}},
        ],
        "tasks": [{"name": "digits", "params": {"train_size": 200, "val_size": 100, "test_size": 100}}],
        "strategies": ["full_finetune"],
        "regularizers": ["none"],
    },
    "search": {"trials": 1, "pruner": "none", "space": {"epochs": 2, "batch_size": 50, "lr": 1e-2}},
    "seeds": [0],
    "execution": {"workers": 1},
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("rank")
    write_suite(root / "rank_tiny.yaml", SUITE)
    return root


def _runs(root, kind: str) -> list[dict]:
    records = Tracker(default_tracking_uri(root / ".ptbench")).runs_records("rank_tiny")
    return [r for r in records if r.get("tags.ptbench.kind") == kind]


def test_rank_before_and_after_the_suite_runs(project):
    args = ("--project-dir", ".ptbench")
    before = ptbench("rank", "rank_tiny.yaml", *args, cwd=project, check=True).stdout
    assert "No check against the truth" in before
    assert "n/a — ptbench backbones carry no source head" in before  # LEEP and NCE say why
    ranks = _runs(project, "rank")
    assert len(ranks) == 3 and all("metrics.rank.logme" in r and "metrics.rank.knn" in r for r in ranks)

    ptbench("run", "rank_tiny.yaml", *args, "--quiet", "--no-leaderboard", cwd=project, check=True)
    after = ptbench("rank", "rank_tiny.yaml", *args, cwd=project, check=True).stdout
    assert "weighted τ" in after and "| logme |" in after and "truth (test acc)" in after
    assert len(_runs(project, "rank")) == 3  # scored again into the same runs, not new ones
    check = _runs(project, "rank_check")
    assert len(check) == 1 and "metrics.logme.tau_w" in check[0] and "metrics.knn.top1" in check[0]
    assert (project / "results" / "rank_tiny" / "rank.md").read_text().count("| test_efficientnet") == 3


def test_unknown_estimator_is_one_line(project):
    proc = ptbench(
        "rank", "rank_tiny.yaml", "--estimators", "logmee", "--project-dir", ".ptbench", cwd=project
    )
    assert proc.returncode == 2 and "unknown estimator 'logmee'; did you mean 'logme'?" in proc.stderr
    assert "Traceback" not in proc.stderr
