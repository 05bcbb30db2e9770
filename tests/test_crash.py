"""What clusters do to a run (issue #13), on the local executor: a worker killed mid-trial, the
driver stopped by SIGINT, SIGTERM or SIGKILL, two drivers on one suite at once, and the UI's
server stopped with its command. Every kill lands at a known point — a trial held at the test
plugin's gate — never after a sleep."""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import PLUGIN_DIR, ROOT, TINY, write_suite
from test_e2e import _wait_for_file, by_kind, records

from ptbench.registry import load_plugins
from ptbench.search import CellStudy, default_storage_url
from ptbench.suite import expand, load_suite
from ptbench.tracking import Tracker, default_tracking_uri

BUDGET = 4


@pytest.fixture(autouse=True)
def _plugin(monkeypatch):
    monkeypatch.setenv("PTBENCH_PLUGINS", "ptbench_testplugin")  # gated_net, to name the study here


def _suite(tmp_path: Path, trials: int = BUDGET, seeds: tuple[int, ...] = (0,)) -> Path:
    data = copy.deepcopy(TINY)
    data["axes"]["backbones"] = [{"name": "gated_net", "params": {"input_size": 16}}]
    data["axes"]["strategies"] = ["full_finetune"]
    data["axes"]["regularizers"] = ["none"]
    data["search"]["trials"] = trials
    data["search"]["space"]["epochs"] = 1
    data["seeds"] = list(seeds)
    data["storage"] = {"heartbeat_interval": 1, "grace_period": 4}
    return write_suite(tmp_path / "tiny.yaml", data)


def _env(gate: Path | None, at: int = 2) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": f"{PLUGIN_DIR}{os.pathsep}{ROOT}",
        "PTBENCH_PLUGINS": "ptbench_testplugin",
    }
    if gate is not None:
        env |= {"PTBENCH_TEST_GATE": str(gate), "PTBENCH_TEST_GATE_AT": str(at)}
    return env


def _driver(
    suite: Path, project: Path, env: dict, workers: int = 1, extra: tuple | list = ()
) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "ptbench.cli", "run", str(suite), "--project-dir", str(project)]
    return subprocess.Popen(
        [*cmd, "--workers", str(workers), "--no-progress", "--no-leaderboard", *extra],
        cwd=suite.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # a shell without job control starts background jobs with SIGINT ignored, and Python keeps
        # an inherited SIG_IGN: the driver must get Ctrl-C's KeyboardInterrupt however pytest began
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def _wait_until_gone(pids: list[int], hang_guard_s: float = 60) -> None:
    guard = time.monotonic() + hang_guard_s
    while any(_alive(p) for p in pids):
        assert time.monotonic() < guard, (
            f"still alive after {hang_guard_s:.0f} s: {[p for p in pids if _alive(p)]}"
        )
        time.sleep(0.1)


def _finish(proc: subprocess.Popen, timeout: float = 900) -> tuple[int, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out + err


def _check_exact(
    suite: Path,
    project: Path,
    budget: int = BUDGET,
    finals: int = 1,
    storage: str | None = None,
    lost: tuple[str, ...] = ("KILLED",),
) -> list[dict]:
    """The cell ran its budget exactly, with distinct configurations apart from retries; nothing
    is left RUNNING in Optuna or MLflow; one finished final run per seed. Returns the trial runs."""
    load_plugins()
    (cell,) = expand(load_suite(suite))
    study = CellStudy(storage or default_storage_url(project), cell.study_name, "maximize")
    c = study.counts()
    assert (c.finished, c.running) == (budget, 0)
    trials = study.study.get_trials(deepcopy=False)
    assert not [t for t in trials if t.state.name == "RUNNING"]
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    configs = [tuple(sorted(t.params.items())) for t in trials if t.state.name == "COMPLETE"]
    assert len(configs) == budget and len(set(configs)) == budget
    recs = records(project)
    assert not [r for r in recs if r["status"] == "RUNNING"]
    runs = by_kind(recs, "trial")
    assert len([r for r in runs if r["status"] == "FINISHED"]) == budget
    assert len([r for r in by_kind(recs, "final") if r["status"] == "FINISHED"]) == finals
    for n in retried:  # a lost trial's run is closed, and its retry ran its parameters
        (run_of_lost,) = [r for r in runs if int(r["tags.ptbench.trial_number"]) == n]
        assert run_of_lost["status"] in lost
    return runs


def test_a_worker_killed_mid_trial_costs_that_trial_which_is_retried(tmp_path):
    suite, project, gate = _suite(tmp_path), tmp_path / "proj", tmp_path / "gate"
    gate.mkdir()
    proc = _driver(suite, project, _env(gate))
    _wait_for_file(gate / "reached", proc)
    worker = int((gate / "reached").read_text())
    os.kill(worker, signal.SIGKILL)  # what the out-of-memory killer does
    rc, out = _finish(proc)
    assert rc == 0, out
    assert "worker lost" in out and "Traceback" not in out
    runs = _check_exact(suite, project)
    (killed,) = [r for r in runs if r["status"] == "KILLED"]
    params = {k: v for k, v in killed.items() if k.startswith("params.hp.")}
    retries = [r for r in runs if r["status"] == "FINISHED" and {k: r[k] for k in params} == params]
    assert len(retries) == 1  # retried once, with the same parameters


def test_a_final_run_that_kills_its_worker_every_time_fails_after_three_and_the_suite_ends(tmp_path):
    """Retried without limit, a final run whose worker is always killed (out of memory) held the
    driver forever; like a trial's configuration, it fails after MAX_RETRY + 1 workers, and its
    run says so. (The plugin's corruption kills its worker when the final run checks it, before
    training.)"""
    from ptbench.search import MAX_RETRY

    data = copy.deepcopy(TINY)
    data["axes"] |= {"backbones": [{"name": "test_efficientnet", "params": {"input_size": 16}}]}
    data["axes"] |= {"strategies": ["linear_probe"], "regularizers": ["none"]}
    data["search"] |= {"trials": 1}
    data |= {"seeds": [0], "evaluation": ["test", "corruptions"]}
    data["robustness"] = {"corruptions": ["kills_worker"], "severities": [1], "size": 10}
    suite, project = write_suite(tmp_path / "oom.yaml", data), tmp_path / "proj"
    rc, out = _finish(_driver(suite, project, _env(None) | {"PTBENCH_TEST_KILLS_WORKER": "1"}))
    assert out.count("final: worker lost") == MAX_RETRY + 1 and "3 times" in out, out
    assert "Traceback" not in out
    finals = sorted(by_kind(records(project), "final"), key=lambda r: r["start_time"])
    assert [r["status"] for r in finals] == ["KILLED"] * MAX_RETRY + ["FAILED"]  # retried, then failed
    assert "worker lost 3 times" in finals[-1]["tags.ptbench.error"]
    assert not [r for r in records(project) if r["status"] == "RUNNING"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_stopping_the_driver_stops_its_workers_and_a_rerun_resumes(tmp_path, sig):
    suite, project, gate = _suite(tmp_path), tmp_path / "proj", tmp_path / "gate"
    gate.mkdir()
    proc = _driver(suite, project, _env(gate))
    _wait_for_file(gate / "reached", proc)
    worker = int((gate / "reached").read_text())
    os.kill(proc.pid, sig)  # the driver only: its workers must follow on their own
    rc, out = _finish(proc, timeout=120)
    assert rc == {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGKILL: -9}[sig], out
    _wait_until_gone([worker])
    assert "Traceback" not in out
    rerun = _driver(suite, project, _env(None))
    rc, out = _finish(rerun)
    assert rc == 0, out
    _check_exact(suite, project)


def test_two_drivers_on_one_suite_share_its_budget_and_final_runs(tmp_path):
    """The second driver starts while the first one's trial is held at the gate: together they
    run the budget exactly, no configuration twice, each seed's final run once."""
    budget = 6
    suite, project, gate = _suite(tmp_path, budget, seeds=(0, 1)), tmp_path / "proj", tmp_path / "gate"
    gate.mkdir()
    first = _driver(suite, project, _env(gate))
    _wait_for_file(gate / "reached", first)
    second = _driver(suite, project, _env(gate, at=0))
    try:
        _wait_for_file(gate / f"build-{budget}", second)  # the second driver took the rest
    finally:
        (gate / "release").write_text("")
    (rc1, out1), (rc2, out2) = _finish(first), _finish(second)
    assert (rc1, rc2) == (0, 0), out1 + out2
    _check_exact(suite, project, budget, finals=2)
    finals = by_kind(records(project), "final")
    assert sorted(r["tags.ptbench.seed"] for r in finals) == ["0", "1"]  # each seed's run once
    # the second driver did not mark the first one's live cell interrupted
    assert [c["tags.ptbench.state"] for c in by_kind(records(project), "cell")] == ["complete"]


def test_two_drivers_started_at_once_write_one_record(tmp_path):
    """Two machines' cron jobs fire in the same second: neither waits for the other, and still
    there is one suite run and one cell run, the budget is exact and each seed runs once."""
    budget = 6
    suite, project = _suite(tmp_path, budget, seeds=(0, 1)), tmp_path / "proj"
    drivers = [_driver(suite, project, _env(None)) for _ in range(2)]
    (rc1, out1), (rc2, out2) = (_finish(d) for d in drivers)
    assert (rc1, rc2) == (0, 0), out1 + out2
    _check_exact(suite, project, budget, finals=2)
    recs = records(project)
    assert len(by_kind(recs, "suite")) == 1 and len(by_kind(recs, "cell")) == 1
    (cell,) = by_kind(recs, "cell")
    assert {r["tags.mlflow.parentRunId"] for r in by_kind(recs, "trial")} == {cell["run_id"]}


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["term", "hangup"])
def test_stopping_ptbench_ui_stops_the_server_it_started(tmp_path, sig):
    """Stopped (SIGTERM) or its terminal closed (SIGHUP), ``ptbench ui`` takes its server and the
    server's helpers with it; a second ``ptbench ui`` on the busy port says so in one line."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    Tracker.open(default_tracking_uri(tmp_path))  # a store to show: ui makes none
    cmd = [sys.executable, "-m", "ptbench.cli", "ui", "--project-dir", str(tmp_path), "--port", str(port)]
    # a terminal's ptbench ui: under nohup (a CI job started so) SIGHUP is ignored, and ui keeps
    # nohup's choice by design — the child must not inherit it from how pytest was started
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
    )
    try:
        guard = time.monotonic() + 300
        while True:  # wait for the state: the server answers on its port
            with socket.socket() as s, contextlib.suppress(OSError):
                s.connect(("127.0.0.1", port))
                break
            assert proc.poll() is None and time.monotonic() < guard, "the UI server never came up"
            time.sleep(0.2)
        helpers = _descendants(proc.pid)
        assert helpers, "the server runs as a child of ptbench ui"
        busy = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert busy.returncode == 2 and busy.stderr.count("\n") == 1 and f"--port {port}" in busy.stderr
        proc.send_signal(sig)
        proc.wait(timeout=60)
        _wait_until_gone(helpers)
    finally:  # a failed check leaves no server behind (SIGTERM is the stop that always worked)
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # the port is free again


def test_ctrl_c_on_the_inline_executor_hands_the_running_trial_back(tmp_path):
    """An inline job runs inside ``submit``: Ctrl-C escaped it before the job was tracked, so its
    trial stayed RUNNING (a rerun waited out its lease) and its MLflow run stayed open."""
    project, gate = tmp_path / "proj", tmp_path / "gate"
    gate.mkdir()
    suite = _suite(tmp_path)
    data = yaml.safe_load(suite.read_text()) | {"execution": {"workers": 1, "executor": "inline"}}
    write_suite(suite, data)
    proc = _driver(suite, project, _env(gate, at=1))
    _wait_for_file(gate / "reached", proc)
    os.kill(proc.pid, signal.SIGINT)
    rc, out = _finish(proc, timeout=120)
    assert rc == 130, out
    load_plugins()
    (cell,) = expand(load_suite(suite))
    c = CellStudy(default_storage_url(project), cell.study_name, "maximize").counts()
    assert (c.running, c.waiting) == (0, 1)  # failed and enqueued again, not held
    (trial,) = by_kind(records(project), "trial")
    assert trial["status"] == "KILLED"  # closed, not left RUNNING


def test_a_port_the_last_ui_left_in_time_wait_is_free():
    """The server binds with SO_REUSEADDR; the busy-port check must too, or restarting
    ``ptbench ui`` within a minute of a browser's visit was refused."""
    from ptbench.tracking.ui import _port_free

    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = server.accept()
        conn.close()  # the server side closes first: its end of the port waits in TIME_WAIT
        client.close()
    _port_free("127.0.0.1", port)  # no error
    with socket.create_server(("127.0.0.1", 0)) as busy, pytest.raises(Exception, match="--port"):
        _port_free("127.0.0.1", busy.getsockname()[1])
