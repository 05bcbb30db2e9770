"""The same suite on a Ray cluster and PostgreSQL stores (issue #13): the same cells, trials,
final runs and MLflow tree as on the local executor; a Ray worker killed mid-trial costs that
trial, which is retried; 4 workers × 200 short trials on PostgreSQL lose nothing."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from collections import Counter
from pathlib import Path

import pytest
from conftest import PLUGIN_DIR, ROOT, TINY, needs_command, ptbench, write_suite
from scaleout import create_database, mlflow_server, postgres_down, postgres_server, ray_cluster
from test_crash import _check_exact, _driver, _env, _finish, _suite, _wait_until_gone
from test_e2e import _wait_for_file

from ptbench.tracking import Tracker, default_tracking_uri

RAY_ENV = {"RAY_AUTH_MODE": "disabled"}  # as the test cluster (tests/scaleout.py)
needs_postgres = needs_command("initdb", "apt-get install postgresql-15")


@pytest.fixture(autouse=True)
def _plugin(monkeypatch):
    monkeypatch.setenv("PTBENCH_PLUGINS", "ptbench_testplugin")


@pytest.fixture(scope="module")
def cluster():
    env = {
        **os.environ,
        "PYTHONPATH": f"{PLUGIN_DIR}{os.pathsep}{ROOT}",
        "PTBENCH_PLUGINS": "ptbench_testplugin",
    }
    with ray_cluster(env) as address:
        yield address


def _tree(tracking_uri: str) -> dict[str, Counter]:
    """Each cell's runs below it, by kind and status: what a person sees in the MLflow UI."""
    recs = Tracker(tracking_uri).runs_records("tiny")
    by_id = {r["run_id"]: r for r in recs}
    tree: dict[str, Counter] = {}
    for r in recs:
        parent = by_id.get(r.get("tags.mlflow.parentRunId", ""))
        if parent is not None and parent.get("tags.ptbench.kind") == "cell":
            tree.setdefault(parent["params.cell_hash"], Counter())[(r["tags.ptbench.kind"], r["status"])] += 1
    (suite,) = [r for r in recs if r.get("tags.ptbench.kind") == "suite"]
    cells = [r for r in recs if r.get("tags.ptbench.kind") == "cell"]
    assert all(c["tags.mlflow.parentRunId"] == suite["run_id"] and c["status"] == "FINISHED" for c in cells)
    return tree


@needs_postgres
def test_the_same_suite_on_ray_and_postgresql_as_on_local_processes(tmp_path, cluster):
    data = {**TINY, "search": {**TINY["search"], "pruner": "none"}}  # pruning depends on timing
    suite = write_suite(tmp_path / "tiny.yaml", data)
    local = _driver(suite, tmp_path / "local", _env(None), workers=2)
    rc, out = _finish(local)
    assert rc == 0, out
    with postgres_server() as pg, mlflow_server(create_database(pg, "mlflow"), tmp_path / "art") as tracking:
        storage = create_database(pg, "optuna")
        extra = ["--executor", "ray", "--address", cluster, "--tracking-uri", tracking, "--storage", storage]
        rc, out = _finish(_driver(suite, tmp_path / "ray", _env(None) | RAY_ENV, workers=2, extra=extra))
        assert rc == 0, out
        ray_tree = _tree(tracking)
    local_tree = _tree(default_tracking_uri(tmp_path / "local"))
    assert ray_tree == local_tree and len(local_tree) == 4


def test_a_ray_worker_killed_mid_trial_costs_that_trial_which_is_retried(tmp_path, cluster):
    suite, project, gate = _suite(tmp_path), tmp_path / "proj", tmp_path / "gate"
    gate.mkdir()
    env = _env(gate) | RAY_ENV
    proc = _driver(suite, project, env, workers=1, extra=["--executor", "ray", "--address", cluster])
    _wait_for_file(gate / "reached", proc)
    os.kill(int((gate / "reached").read_text()), signal.SIGKILL)  # the Ray worker process
    rc, out = _finish(proc)
    assert rc == 0, out
    assert "worker lost" in out
    runs = _check_exact(suite, project)
    assert len([r for r in runs if r["status"] == "KILLED"]) == 1


def _hammer(storage: str, tracking: str, exp_id: str, n: int, errors) -> None:
    """One worker: ``n`` short trials, each asked, leased, recorded as an MLflow run and told."""
    from ptbench.search import CellStudy
    from ptbench.tracking import Tracker

    study = CellStudy(storage, "hammer", "maximize", "random", "none", 0)
    tracker = Tracker(tracking)
    for i in range(n):
        try:
            trial, _ = study.ask({"x": {"type": "float", "low": 0.0, "high": 1.0}})
            study.bind(trial, f"{os.getpid()}-{i}")
            run = tracker.start_run(exp_id, f"t{trial.number}", {"ptbench.kind": "trial"})
            tracker.log_metrics(run, {"val_accuracy": trial.params["x"]})
            tracker.end(run)
            study.tell(trial, trial.params["x"], "complete")
        except Exception as err:  # counted, never hidden
            errors.put(f"{type(err).__name__}: {err}")


@needs_postgres
def test_four_workers_and_200_short_trials_on_postgresql_lose_nothing(tmp_path):
    with postgres_server() as pg, mlflow_server(create_database(pg, "mlflow"), tmp_path / "art") as tracking:
        storage = create_database(pg, "optuna")
        from ptbench.search import CellStudy

        CellStudy(storage, "hammer", "maximize", "random", "none", 0)  # create the tables once
        exp_id = Tracker(tracking).experiment("hammer")
        ctx = mp.get_context("spawn")
        errors = ctx.Queue()
        procs = [ctx.Process(target=_hammer, args=(storage, tracking, exp_id, 50, errors)) for _ in range(4)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        found = []
        while not errors.empty():
            found.append(errors.get())
        assert found == [] and [p.exitcode for p in procs] == [0] * 4
        study = CellStudy(storage, "hammer", "maximize", "random", "none", 0)
        assert study.counts().complete == 200 and len({t.number for t in study.study.trials}) == 200
        runs = Tracker(tracking).search(exp_id)
        assert len(runs) == 200 and {r.info.status for r in runs} == {"FINISHED"}


@needs_postgres
def test_a_password_in_the_suite_file_reaches_no_run_artifact_or_output(tmp_path):
    """The suite run keeps suite.yaml and suite.resolved.yaml; a storage URL with its password
    (PostgreSQL with trust auth here, so any password connects) must arrive there redacted."""
    import mlflow

    with postgres_server() as pg:
        storage = create_database(pg, "optuna").replace("postgres@", "postgres:s3cret-pw@")
        data = {**TINY, "search": {**TINY["search"], "trials": 1}, "seeds": [0], "storage": {"url": storage}}
        data["axes"] = {**TINY["axes"], "strategies": ["linear_probe"], "regularizers": ["none"]}
        suite, project = write_suite(tmp_path / "tiny.yaml", data), tmp_path / "proj"
        rc, out = _finish(_driver(suite, project, _env(None)))
    assert rc == 0, out
    assert "s3cret-pw" not in out
    tracking = default_tracking_uri(project)
    recs = Tracker(tracking).runs_records("tiny")
    assert recs and not [r for r in recs if "s3cret-pw" in str(r)]  # params, tags, metrics
    (suite_run,) = [r for r in recs if r.get("tags.ptbench.kind") == "suite"]
    client = mlflow.MlflowClient(tracking)
    for name in ("suite.yaml", "suite.resolved.yaml"):
        text = Path(client.download_artifacts(suite_run["run_id"], name, str(tmp_path))).read_text()
        assert "postgres:***@127.0.0.1" in text and "s3cret-pw" not in text


def test_a_tracking_servers_password_reaches_no_page_and_ui_points_at_the_server(tmp_path):
    """Pages link each cell to its run on the tracking server; the URI a user gives may carry a
    user and password (basic auth in front of the server), which must not be published in
    them. ``ptbench ui`` on a server prints the server's own UI, starting nothing."""
    from test_leaderboard import corr, grid, record

    with mlflow_server(f"sqlite:///{tmp_path}/m.db", tmp_path / "art") as server:
        secret = server.replace("http://", "http://ptbench:s3cret-ui@")
        tracker = Tracker(secret)
        for cell in grid(tmp_path, "tiny").values():
            record(tracker, cell, [0.5], [corr(0.8, 0.6, 0.5)])
        suite = write_suite(tmp_path / "tiny.yaml")
        args = ("--tracking-uri", secret, "--format", "html", "--output", "b.html")
        board = ptbench("leaderboard", str(suite), *args, cwd=tmp_path)
        assert board.returncode == 0, board.stderr
        page = (tmp_path / "b.html").read_text()
        assert f"{server}/#/experiments/" in page and "s3cret-ui" not in page + board.stdout
        ui = ptbench("ui", str(suite), "--tracking-uri", secret, cwd=tmp_path, timeout=120)
        exp = tracker.experiment_id("tiny")
    assert ui.returncode == 0 and f"{server}/#/experiments/{exp}/runs" in ui.stdout, ui.stderr
    assert "s3cret-ui" not in ui.stdout + ui.stderr


@needs_postgres
def test_a_storage_lost_mid_run_is_one_line_and_a_rerun_resumes(tmp_path):
    """The Optuna database stops while a trial is held at the gate: the driver stops its workers
    and says, in one line naming storage.url, that the store went away and that the same command
    resumes — a server that went away is no bug of ptbench's (exit 3, a traceback). Once it is
    back, the rerun finishes the budget exactly."""
    suite, project, gate = _suite(tmp_path), tmp_path / "proj", tmp_path / "gate"
    gate.mkdir()
    with postgres_server() as pg:
        storage = create_database(pg, "optuna")
        proc = _driver(suite, project, _env(gate), extra=["--storage", storage])
        _wait_for_file(gate / "reached", proc)
        worker = int((gate / "reached").read_text())
        with postgres_down(pg):
            (gate / "release").write_text("")
            rc, out = _finish(proc, timeout=300)
        _wait_until_gone([worker])
        assert rc == 2, out
        assert "Traceback" not in out, out
        (line,) = [x for x in out.splitlines() if x.startswith("ptbench: error:")]
        assert "storage.url 'postgresql://***@127.0.0.1" in line and "Connection refused" in line
        assert "lost mid-run" in line and "run the same command" in line
        rc, out = _finish(_driver(suite, project, _env(None), extra=["--storage", storage]))
        assert rc == 0, out
        # the held trial's run: KILLED when the driver stopped its worker first, FAILED when the
        # worker's own report to the lost store failed first — either way closed, and retried
        _check_exact(suite, project, storage=storage, lost=("KILLED", "FAILED"))
