"""Per-epoch metrics reach the MLflow store: batched when epochs are fast, at once when they are
slow, and always when the block ends, even by an exception (a pruned or failed trial). Params
written by two drivers at once (both closing one cell) are kept once, without an error."""

from __future__ import annotations

import os
import threading

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


def test_the_same_params_written_at_once_by_several_writers_are_kept_once(tmp_path):
    """Two drivers that close one cell both write its best configuration. MLflow checks, then
    inserts, so the writers collide on the insert (it failed CI once, a driver exiting 1)."""
    tracker = Tracker(default_tracking_uri(tmp_path))
    exp = tracker.experiment("race", tmp_path / "artifacts")
    params = {f"best.p{i}": i / 3 for i in range(8)}
    for _ in range(10):  # without the retry about 6 rounds in 10 fail
        run_id, gate, errors = tracker.start_run(exp, "cell", {}), threading.Barrier(4), []

        def write(run_id=run_id, gate=gate, errors=errors):
            gate.wait()
            try:
                tracker.log_params(run_id, params)
            except Exception as err:
                errors.append(err)

        _together(write, 4)
        assert errors == []
        assert tracker.client.get_run(run_id).data.params == {k: str(v) for k, v in params.items()}


def test_a_param_written_again_with_another_value_is_still_refused(run):
    tracker, run_id = run
    tracker.log_params(run_id, {"best.lr": 0.1})
    with pytest.raises(Exception, match="Changing param values is not allowed"):
        tracker.log_params(run_id, {"best.lr": 0.2})


def _together(fn, n: int) -> None:
    threads = [threading.Thread(target=fn) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@pytest.mark.parametrize(
    "text,shown",
    [
        ("postgresql://bench:s3cret@db:5432/x", "postgresql://bench:***@db:5432/x"),
        ("postgresql://bench:pa/ss@db/x", "postgresql://bench:***@db/x"),  # "/" in the password
        ("postgresql://bench:p@ss@db/x", "postgresql://bench:***@db/x"),  # "@" in the password
        ("https://ghp_token@github.com/a", "https://***@github.com/a"),  # a bare token
        ("sqlite:////srv/mlflow.db", "sqlite:////srv/mlflow.db"),
        (
            "postgresql://db/x?sslmode=require&password=s3cret",
            "postgresql://db/x?sslmode=require&password=***",
        ),
        (
            'storage: {url: "postgresql://u:p@h/d"}\nuri: http://x:y@h:5000',
            'storage: {url: "postgresql://u:***@h/d"}\nuri: http://x:***@h:5000',
        ),
    ],
)
def test_every_password_in_a_text_is_masked(text, shown):
    from ptbench.errors import redact

    assert redact(text) == shown


@pytest.mark.parametrize(
    "uri, message",
    [
        ("not a uri at all", "tracking.uri 'not a uri at all' is not a URI: sqlite:///PATH.db"),
        ("htp://x", "tracking.uri 'htp://x' cannot be opened:"),
        (
            "htp://u:secret@127.0.0.1:1/db",
            "tracking.uri 'htp://u:***@127.0.0.1:1/db' cannot be opened:",
        ),
        (
            "postgresql://u:secret@127.0.0.1:1/db",
            "tracking.uri 'postgresql://u:***@127.0.0.1:1/db' cannot be opened:",
        ),
    ],
    ids=["not-a-uri", "unknown-scheme", "with-a-password", "database-refuses"],
)
def test_a_tracking_uri_that_cannot_be_opened_is_one_line_for_every_command(tmp_path, uri, message):
    """A malformed URI was a traceback from run, leaderboard and nightly alike; a database that
    refused was one line only after MLflow's engine had retried it for ~100 s, in silence."""
    from conftest import TINY, ptbench, write_suite

    write_suite(tmp_path / "s.yaml", TINY)
    for args in (("run", "s.yaml", "--executor", "inline"), ("leaderboard", "s.yaml"), ("history", "s.yaml")):
        out = ptbench(*args, "--tracking-uri", uri, cwd=tmp_path)
        assert out.returncode == 2 and "Traceback" not in out.stderr, (args, out.stderr)
        assert message in out.stderr.strip().splitlines()[-1], (args, out.stderr)
        assert "secret" not in out.stderr
        assert "retried" not in out.stderr, (args, out.stderr)  # MLflow's back-off never starts


def test_a_read_only_command_on_a_store_that_does_not_exist_says_so_and_creates_nothing(tmp_path):
    """leaderboard on a mistyped SQLite path created its folder and an empty store there."""
    from ptbench.errors import PtbenchError

    with pytest.raises(PtbenchError, match=r"no tracking store at .*nope/x.db: run the suite first"):
        Tracker(f"sqlite:///{tmp_path}/nope/x.db", create=False)
    assert not (tmp_path / "nope").exists()


def test_a_suite_whose_experiment_was_deleted_says_so_and_how_to_restore_it(tmp_path):
    """Deleted in the MLflow UI, the experiment made `run` crash ("must be in the 'active'
    state", exit 3) while `leaderboard` said "run 'ptbench run' first"."""
    import shlex
    import subprocess
    import sys

    from conftest import TINY, ptbench, write_suite

    write_suite(tmp_path / "s.yaml", TINY)
    tracker = Tracker(f"sqlite:///{tmp_path}/p/mlflow.db")
    tracker.check()
    exp = tracker.experiment("tiny")
    tracker.client.delete_experiment(exp)
    for args in (("run", "s.yaml", "--executor", "inline"), ("leaderboard", "s.yaml")):
        out = ptbench(*args, "--project-dir", "p", cwd=tmp_path, timeout=300)
        err = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(err) == 1, (args, out.stderr)
        assert err[0].startswith("ptbench: error: experiment 'tiny' is deleted in the tracking store"), err
    out = ptbench("rank", "s.yaml", "--project-dir", "p", cwd=tmp_path, timeout=300)
    assert out.returncode == 2 and "is deleted in the tracking store" in out.stderr, out.stderr
    assert not (tmp_path / "p" / "cache" / "features").exists()  # said before any feature work
    env_set, command = err[0].split("restore it with ")[1].split(" ", 1)
    name, _, value = env_set.partition("=")
    mlflow = [sys.executable, "-m", "mlflow", *shlex.split(command)[1:]]
    subprocess.run(mlflow, env={**os.environ, name: shlex.split(value)[0]}, check=True, timeout=300)
    assert tracker.client.get_experiment(exp).lifecycle_stage == "active"
