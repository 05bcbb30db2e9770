"""A search extended on a rerun (``--trials`` raised, more workers): the rerun goes on where the
first stopped, a cell whose best configuration changed gets its final runs again, and the
leaderboard averages only the final runs of each cell's current best."""

from __future__ import annotations

from collections import Counter

import pytest
from conftest import TINY, write_suite

from ptbench.leaderboard import build_leaderboard
from ptbench.runner import RunOptions, run_suite
from ptbench.suite import load_suite
from ptbench.tracking import Tracker, default_tracking_uri

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def extended(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("extend")
    suite = load_suite(write_suite(tmp / "tiny.yaml"))
    for trials, workers in ((2, 1), (6, 2)):
        opts = RunOptions(project_dir=str(tmp), progress="none", trials=trials, workers=workers)
        summary = run_suite(suite, opts)
        assert summary.errors == []
    uri = default_tracking_uri(tmp)
    return uri, Tracker(uri).runs_records("tiny")


def _kind(records, kind):
    return [r for r in records if r.get("tags.ptbench.kind") == kind]


def test_the_rerun_searches_to_the_new_budget_and_records_its_settings(extended):
    _, records = extended
    trials = Counter(r["params.cell_hash"] for r in _kind(records, "trial"))
    assert set(trials.values()) == {6}  # 2 from the first run, 4 more, none twice
    (suite_run,) = _kind(records, "suite")
    assert suite_run["tags.ptbench.trials_per_cell"] == "6"
    assert suite_run["tags.ptbench.workers"] == "2"


def test_each_cell_has_one_final_run_per_seed_of_its_current_best(extended):
    _, records = extended
    finals = [r for r in _kind(records, "final") if r["status"] == "FINISHED"]
    changed = 0
    for cell in _kind(records, "cell"):
        best = int(cell["metrics.best_trial"])
        mine = [r for r in finals if r["tags.mlflow.parentRunId"] == cell["run_id"]]
        of_best = [r for r in mine if int(r["tags.ptbench.source_trial"]) == best]
        assert sorted(int(r["tags.ptbench.seed"]) for r in of_best) == [0, 1]
        changed += len(mine) > 2
        assert {k for k in cell if k.startswith("tags.ptbench.best.")}  # the configuration, as tags
    assert changed, "no cell found a better configuration in the longer search: nothing was tested"


def test_the_leaderboard_counts_only_the_final_runs_of_the_current_best(extended):
    uri, records = extended
    (board,) = build_leaderboard(uri, "tiny")
    view = next(iter(board.views.values()))
    assert len(view) == 4 and set(view["seeds"]) == {len(TINY["seeds"])}
    assert len(board.finals) == 4 * len(TINY["seeds"])
