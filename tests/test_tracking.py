"""Per-epoch metrics reach the MLflow store: batched when epochs are fast, at once when they are
slow, and always when the block ends, even by an exception (a pruned or failed trial)."""

from __future__ import annotations

import pytest

from ptbench.tracking import Tracker, default_tracking_uri


@pytest.fixture
def run(tmp_path):
    tracker = Tracker(default_tracking_uri(tmp_path))
    exp = tracker.experiment("epochs", tmp_path / "artifacts")
    return tracker, tracker.start_run(exp, "trial", {})


def test_fast_epochs_are_written_together_when_the_block_ends(run):
    tracker, run_id = run
    with tracker.epoch_log(run_id, every_s=3600) as log:
        for epoch in range(20):
            log({"val_accuracy": epoch / 20, "train_loss": 1.0 / (epoch + 1)}, epoch)
        assert tracker.metric_history(run_id, "val_accuracy") == []  # buffered, not yet written
    assert [s for s, _ in tracker.metric_history(run_id, "val_accuracy")] == list(range(20))
    assert tracker.metric_history(run_id, "train_loss")[-1] == (19, pytest.approx(1 / 20))


def test_slow_epochs_are_written_as_they_end(run):
    tracker, run_id = run
    with tracker.epoch_log(run_id, every_s=0.0) as log:
        log({"val_accuracy": 0.5}, 0)
        assert tracker.metric_history(run_id, "val_accuracy") == [(0, 0.5)]  # live in the UI


def test_epochs_before_an_exception_are_not_lost(run):
    tracker, run_id = run
    with pytest.raises(RuntimeError), tracker.epoch_log(run_id, every_s=3600) as log:
        log({"val_accuracy": 0.25}, 0)
        log({"val_accuracy": 0.5}, 1)
        raise RuntimeError("pruned")
    assert tracker.metric_history(run_id, "val_accuracy") == [(0, 0.25), (1, 0.5)]
