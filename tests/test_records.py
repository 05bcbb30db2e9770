"""Every driver writes a suite or a cell into one MLflow run, even when several open it at the
same moment (MLflow cannot make a tag unique; the Optuna storage decides), and a run deleted in
the UI, or unknown to the tracking store in use, is replaced instead of written into."""

from __future__ import annotations

import threading

from test_tracking import _together

from ptbench.finals import once_per_seed
from ptbench.jobs import RunContext, open_record
from ptbench.search import default_storage_url
from ptbench.tracking import Tracker, default_tracking_uri

KEY = {"ptbench.kind": "cell", "ptbench.cell_hash": "c0ffee", "ptbench.night": ""}


def _ctx(tracker: Tracker, storage: str, exp_id: str) -> RunContext:
    return RunContext(tracker.uri, storage, exp_id, "tpe", "none", 0, 0, (), "", "")


def _runs(tracker: Tracker, exp_id: str) -> list[str]:
    return [r.info.run_id for r in tracker.client.search_runs([exp_id], "tags.`ptbench.kind` = 'cell'")]


def test_drivers_that_open_a_record_at_once_all_write_into_one_run(tmp_path):
    tracker = Tracker(default_tracking_uri(tmp_path))
    for i in range(5):  # without the election, each round made 3-4 runs
        exp_id = tracker.experiment(f"round{i}", tmp_path / "artifacts")
        ctx, got = _ctx(tracker, default_storage_url(tmp_path), exp_id), []

        def open_it(ctx=ctx, got=got, gate=threading.Barrier(4), i=i):
            driver = Tracker(tracker.uri)
            gate.wait()
            got.append(open_record(driver, ctx, f"suite-c0ffee-{i}", "cell", KEY, {}))

        _together(open_it, 4)
        assert len(set(got)) == 1
        assert _runs(tracker, exp_id) == got[:1]  # the runs that lost were deleted


def test_a_record_deleted_in_the_ui_is_replaced_and_then_kept(tmp_path):
    tracker = Tracker(default_tracking_uri(tmp_path))
    exp_id = tracker.experiment("deleted", tmp_path / "artifacts")
    ctx = _ctx(tracker, default_storage_url(tmp_path), exp_id)
    first = open_record(tracker, ctx, "s-c0ffee", "cell", KEY, {})
    assert open_record(tracker, ctx, "s-c0ffee", "cell", KEY, {}) == first  # a resume reopens it
    tracker.client.delete_run(first)
    second = open_record(tracker, ctx, "s-c0ffee", "cell", KEY, {})
    assert second != first and tracker.alive(second, exp_id)
    assert open_record(tracker, ctx, "s-c0ffee", "cell", KEY, {}) == second


def test_a_storage_shared_with_another_tracking_store_gets_a_run_in_this_one(tmp_path):
    storage = default_storage_url(tmp_path)
    runs = []
    for store in ("a", "b"):
        tracker = Tracker(default_tracking_uri(tmp_path / store))
        exp_id = tracker.experiment("shared", tmp_path / store / "artifacts")
        runs.append(open_record(tracker, _ctx(tracker, storage, exp_id), "s-c0ffee", "cell", KEY, {}))
        assert tracker.alive(runs[-1], exp_id)
    assert runs[0] != runs[1]


def test_a_record_in_another_experiment_is_not_taken(tmp_path):
    """The experiment was deleted and made again (a new id): its old runs are not this one's."""
    tracker = Tracker(default_tracking_uri(tmp_path))
    storage = default_storage_url(tmp_path)
    runs = []
    for name in ("first", "again"):
        exp_id = tracker.experiment(name, tmp_path / "artifacts")
        runs.append(open_record(tracker, _ctx(tracker, storage, exp_id), "s-c0ffee", "cell", KEY, {}))
        assert tracker.client.get_run(runs[-1]).info.experiment_id == exp_id
    assert runs[0] != runs[1]


def test_once_per_seed_keeps_the_first_run_of_each_seed_of_each_trial():
    """What the leaderboard, the nightly history and the rank truth average over."""

    def final(run, seed, start, trial="3", parent="cell"):
        tags = {
            "tags.ptbench.seed": seed,
            "tags.ptbench.source_trial": trial,
            "tags.mlflow.parentRunId": parent,
        }
        return {"run_id": run, "start_time": start} | tags

    runs = [
        final("late", "0", 300),
        final("first", "0", 100),
        final("other-seed", "1", 200),
        final("other-trial", "0", 400, trial="5"),
        final("other-cell", "0", 500, parent="cell-2"),
        {"run_id": "old-a", "start_time": 50},  # records without a seed tag all count
        {"run_id": "old-b", "start_time": 60},
    ]
    kept = [r["run_id"] for r in once_per_seed(runs)]
    assert kept == ["old-a", "old-b", "first", "other-seed", "other-trial", "other-cell"]
