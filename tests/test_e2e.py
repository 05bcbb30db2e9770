"""End to end through the real ``ptbench`` CLI, a real SQLite MLflow store and an Optuna journal."""

from __future__ import annotations

import contextlib
import copy
import csv
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from conftest import PLUGIN_DIR, ROOT, TINY, needs_command, ptbench, write_suite

from ptbench import optional
from ptbench.registry import load_plugins
from ptbench.search import CellStudy, default_storage_url
from ptbench.suite import expand, load_suite
from ptbench.tracking import Tracker, default_tracking_uri

pytestmark = pytest.mark.slow
ARTIFACTS = ROOT / "test-artifacts"  # screenshots a person can look at after CI
ROBUSTNESS = {
    "corruptions": ["gaussian_noise", "contrast", "pixelate"],
    "severities": [1, 3, 5],
    "size": 50,
    "eps": [0.02],
    "pgd_steps": 3,
    "adversarial_size": 30,
    "reference": {"strategy": "linear_probe", "regularizer": "none"},
}


def records(project: Path, suite: str = "tiny") -> list[dict]:
    return Tracker(default_tracking_uri(project)).runs_records(suite)


def by_kind(recs: list[dict], kind: str) -> list[dict]:
    return [r for r in recs if r.get("tags.ptbench.kind") == kind]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """The tiny suite run once, on 2 workers, shared by the assertions below."""
    tmp = tmp_path_factory.mktemp("e2e")
    suite = write_suite(
        tmp / "tiny.yaml", evaluation=["test", "shifted", "corruptions", "adversarial"], robustness=ROBUSTNESS
    )
    out = ptbench(
        "run",
        str(suite),
        "--project-dir",
        str(tmp / "proj"),
        "--workers",
        "2",
        "--no-progress",
        cwd=tmp,
        check=True,
    )
    return tmp, suite, out


def test_run_tree_links_suite_cells_trials_and_finals(finished_run):
    tmp, suite, out = finished_run
    recs = records(tmp / "proj")
    (suite_run,) = by_kind(recs, "suite")
    cells, trials, finals = by_kind(recs, "cell"), by_kind(recs, "trial"), by_kind(recs, "final")
    assert len(cells) == 4 and len(trials) == 8 and len(finals) == 8
    assert all(c["tags.mlflow.parentRunId"] == suite_run["run_id"] for c in cells)
    cell_ids = {c["params.cell_hash"]: c["run_id"] for c in cells}
    for r in trials + finals:
        assert r["tags.mlflow.parentRunId"] == cell_ids[r["params.cell_hash"]]
    assert Counter(r["params.cell_hash"] for r in trials) == {h: 2 for h in cell_ids}
    assert Counter((r["params.cell_hash"], r["tags.ptbench.seed"]) for r in finals) == {
        (h, s): 1 for h in cell_ids for s in ("0", "1")
    }
    assert {r["status"] for r in recs} == {"FINISHED"}
    assert "done in" in out.stdout and "trials {'complete': 8" in out.stdout


def test_a_log_gets_one_progress_line_per_finished_job(finished_run):
    """stdout is a pipe here, as under cron or CI: every job is a line, none is a bar."""
    from test_progress import LINE

    _, _, out = finished_run
    lines = [m for m in map(LINE.match, out.stdout.splitlines()) if m]
    assert len(lines) == 16  # 8 trials + 8 final runs
    assert [int(m.group(1)) for m in lines] == list(range(1, 17))
    assert {m.group(2) for m in lines} == {"16"}
    assert sum(m.group(5).startswith("trial") for m in lines) == 8
    during = out.stdout.split("done in")[0]  # the leaderboard printed after it has its own rules
    assert "\r" not in during and "━" not in during  # no progress bar in a log


def test_runs_carry_params_tags_and_per_epoch_metrics(finished_run):
    tmp, *_ = finished_run
    recs = records(tmp / "proj")
    tracker = Tracker(default_tracking_uri(tmp / "proj"))
    trials, finals = by_kind(recs, "trial"), by_kind(recs, "final")
    assert len(trials) == 8 and len(finals) == 8  # the loops below check every run there is
    for r in trials:
        for key in (
            "params.hp.lr",
            "params.hp.epochs",
            "params.backbone.name",
            "params.task.name",
            "params.strategy",
            "params.regularizer",
            "params.cell_hash",
            "params.seed",
        ):
            assert key in r, key
        assert 3e-3 <= float(r["params.hp.lr"]) <= 3e-2
        for tag in (
            "cell_hash",
            "seed",
            "device",
            "version",
            "git_commit",
            "pkg.torch",
            "pkg.mlflow",
            "split_hash",
            "weights_source",
            "preprocess",
        ):
            assert r.get(f"tags.ptbench.{tag}"), tag
        assert r["tags.ptbench.device"] == "cpu"
        history = tracker.metric_history(r["run_id"], "val_accuracy")
        assert [s for s, _ in history] == [0, 1]  # one point per epoch
        assert r["metrics.trainable_params"] > 0
    for r in finals:
        assert 0 <= r["metrics.test_accuracy"] <= 1
        assert "metrics.shifted_mnist_subset_accuracy" in r and "metrics.test_ece" in r
    (suite_run,) = by_kind(recs, "suite")
    art = tracker.client.download_artifacts(suite_run["run_id"], "suite.resolved.yaml", str(tmp))
    assert "name: tiny" in Path(art).read_text()


def test_leaderboard_from_the_store_alone(finished_run):
    tmp, suite, _ = finished_run
    out_csv = tmp / "lb.csv"
    ptbench(
        "leaderboard",
        str(suite),
        "--project-dir",
        str(tmp / "proj"),
        "--format",
        "csv",
        "--output",
        str(out_csv),
        cwd=tmp,
        check=True,
    )
    rows = list(csv.DictReader(out_csv.open()))
    gen = [r for r in rows if r["view"] == "generalization"]
    cost = {r["cell"]: r for r in rows if r["view"] == "cost"}
    rob = [r for r in rows if r["view"] == "robustness"]
    assert len(gen) == 4 and len(cost) == 4 and len(rob) == 4
    assert {r["strategy"] for r in gen} == {"linear_probe", "full_finetune"}
    assert sorted(int(float(r["rank"])) for r in gen)[0] == 1
    for r in gen:
        assert r["seeds"] == "2" and r["backbone"] == "test_efficientnet"
        assert 0 <= float(r["test_acc"]) <= 1 and float(r["test_acc_ci95"]) >= 0
        assert cost[r["cell"]]["trials"] == "2" and float(cost[r["cell"]]["trainable_params"]) > 0
    best = min(gen, key=lambda r: float(r["rank"]))
    assert float(best["test_acc"]) == max(float(r["test_acc"]) for r in gen)
    assert best["≈best"] == "best"
    ref = [r for r in rob if r["strategy"] == "linear_probe" and r["regularizer"] == "none"]
    assert float(ref[0]["mCE"]) == pytest.approx(1.0)  # the reference normalises mCE to 1
    for r in rob:
        assert 0 <= float(r["corrupted"]) <= 1 and "pgd_eps0.02" in r
    md = ptbench(
        "leaderboard", str(suite), "--project-dir", str(tmp / "proj"), "--format", "md", cwd=tmp, check=True
    )
    assert (tmp / "results" / "tiny" / "leaderboard.md").is_file(), md.stdout


@needs_command("chromium", "apt-get install chromium")
def test_html_leaderboard_renders_in_headless_chromium(finished_run):
    tmp, suite, _ = finished_run
    ptbench(
        "leaderboard", str(suite), "--project-dir", str(tmp / "proj"), "--format", "html", cwd=tmp, check=True
    )
    page = tmp / "results" / "tiny" / "leaderboard.html"
    text = page.read_text()
    assert "<h3>robustness</h3>" in text and "Plotly.newPlot" in text
    shot = ARTIFACTS / "leaderboard.png"
    ARTIFACTS.mkdir(exist_ok=True)
    proc = subprocess.run(
        [
            optional.which("chromium"),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp / 'chromium'}",
            "--window-size=1400,2000",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000  # a real, non-blank render
    # the leaderboard and its plots are also logged on the suite run
    recs = records(tmp / "proj")
    (suite_run,) = by_kind(recs, "suite")
    names = [
        a.path
        for a in Tracker(default_tracking_uri(tmp / "proj")).client.list_artifacts(
            suite_run["run_id"], "leaderboard"
        )
    ]
    assert "leaderboard/leaderboard.html" in names


def _wait_for_file(path: Path, proc: subprocess.Popen, hang_guard_s: float = 900) -> None:
    """Wait for a state (the file), not for a number of seconds; fail if the process died first.
    ``hang_guard_s`` only turns a hang into a failure: no correct run comes near it."""
    guard = time.monotonic() + hang_guard_s
    while not path.exists():
        assert proc.poll() is None, f"ptbench exited ({proc.returncode}) before {path.name}"
        assert time.monotonic() < guard, f"no {path.name} after {hang_guard_s:.0f} s: hung"
        time.sleep(0.1)


def test_resume_after_kill_never_repeats_a_finished_trial(tmp_path, monkeypatch):
    """SIGKILL the whole run while its third trial is in flight (held at a gate by the test
    plugin's backbone, so the kill lands there on any machine), then run the same command again."""
    data = copy.deepcopy(TINY)
    data["axes"]["backbones"] = [{"name": "gated_net", "params": {"input_size": 16}}]
    data["axes"]["strategies"] = ["full_finetune"]
    data["axes"]["regularizers"] = ["none"]
    data["search"]["trials"] = 4
    data["search"]["space"]["epochs"] = 1
    data["seeds"] = [0]
    data["storage"] = {"heartbeat_interval": 1, "grace_period": 3}  # the dead trial's lease runs out fast
    suite = write_suite(tmp_path / "tiny.yaml", data)
    project, gate = tmp_path / "proj", tmp_path / "gate"
    gate.mkdir()
    plugin = {"PTBENCH_PLUGINS": "ptbench_testplugin"}
    env = {**os.environ, "PYTHONPATH": f"{PLUGIN_DIR}{os.pathsep}{ROOT}", **plugin}
    env |= {"PTBENCH_TEST_GATE": str(gate), "PTBENCH_TEST_GATE_AT": "3"}  # 1 worker: build 3 = trial 2
    cmd = [sys.executable, "-m", "ptbench.cli", "run", str(suite), "--project-dir", str(project)]
    proc = subprocess.Popen(
        [*cmd, "--workers", "1", "--no-progress"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for_file(gate / "reached", proc)
    finally:
        with contextlib.suppress(ProcessLookupError):  # gone already if it died on its own
            os.killpg(proc.pid, signal.SIGKILL)  # a crash: no clean-up of any kind
        proc.wait()
    before = by_kind(records(project), "trial")
    done_before = {
        int(r["tags.ptbench.trial_number"]): r["run_id"] for r in before if r["status"] == "FINISHED"
    }
    running = [r for r in before if r["status"] == "RUNNING"]
    assert set(done_before) == {0, 1} and [int(r["tags.ptbench.trial_number"]) for r in running] == [2]
    monkeypatch.setenv("PTBENCH_PLUGINS", "ptbench_testplugin")
    load_plugins()  # gated_net, in this process too, to name the cell's study
    (cell,) = expand(load_suite(suite))

    ptbench(
        "run",
        str(suite),
        "--project-dir",
        str(project),
        "--no-progress",
        cwd=tmp_path,
        env=plugin,
        check=True,
    )
    trials = by_kind(records(project), "trial")
    finished = [r for r in trials if r["status"] == "FINISHED"]
    numbers = sorted(int(r["tags.ptbench.trial_number"]) for r in finished)
    assert numbers == [0, 1, 3, 4]  # the budget, exactly: 4 finished, none repeated, trial 2 retried
    params = {
        int(r["tags.ptbench.trial_number"]): {k: v for k, v in r.items() if k.startswith("params.hp.")}
        for r in trials
    }
    assert [params[n] == params[2] for n in (3, 4)].count(True) == 1  # one retry, with the lost params
    for number, run_id in done_before.items():  # finished trials kept, not re-run
        assert [r["run_id"] for r in finished if int(r["tags.ptbench.trial_number"]) == number] == [run_id]
    (interrupted,) = [r for r in trials if r["status"] != "FINISHED"]
    assert interrupted["run_id"] == running[0]["run_id"]
    assert interrupted["status"] == "KILLED" and interrupted["tags.ptbench.state"] == "interrupted"
    counts = CellStudy(default_storage_url(project), cell.study_name, "maximize").counts()
    assert (counts.complete, counts.failed, counts.running) == (4, 0, 0)  # interrupted ≠ failed
    assert len(by_kind(records(project), "final")) == 1


def test_a_failing_trial_is_recorded_and_the_run_goes_on(tmp_path):
    data = copy.deepcopy(TINY)
    data["axes"]["backbones"].append({"name": "nan_net", "params": {"input_size": 16}})
    data["axes"]["strategies"] = ["full_finetune"]
    data["axes"]["regularizers"] = ["none"]
    data["seeds"] = [0]
    suite = write_suite(tmp_path / "tiny.yaml", data)
    out = ptbench(
        "run",
        str(suite),
        "--project-dir",
        str(tmp_path / "proj"),
        "--no-progress",
        cwd=tmp_path,
        env={"PTBENCH_PLUGINS": "ptbench_testplugin"},
        check=True,
    )
    recs = records(tmp_path / "proj")
    bad = [r for r in by_kind(recs, "trial") if r["params.backbone.name"] == "nan_net"]
    good = [r for r in by_kind(recs, "trial") if r["params.backbone.name"] == "test_efficientnet"]
    assert len(bad) == 2 and {r["status"] for r in bad} == {"FAILED"}
    assert all("non-finite training loss" in r["tags.ptbench.error"] for r in bad)
    tracker = Tracker(default_tracking_uri(tmp_path / "proj"))
    err = tracker.client.download_artifacts(bad[0]["run_id"], "error.txt", str(tmp_path))
    assert "Traceback" in Path(err).read_text()
    assert {r["status"] for r in good} == {"FINISHED"}
    assert "failed trial" in out.stdout and "non-finite training loss" in out.stdout
    rows = {r["params.backbone.name"]: r for r in by_kind(recs, "cell")}
    assert rows["nan_net"]["status"] == "FAILED" and rows["test_efficientnet"]["status"] == "FINISHED"


def test_dry_run_plans_and_runs_nothing(tiny_suite, tmp_path):
    out = ptbench(
        "run",
        str(tiny_suite),
        "--dry-run",
        "--trials",
        "5",
        "--project-dir",
        str(tmp_path / "proj"),
        cwd=tmp_path,
        check=True,
    )
    hashes = [c.hash for c in expand(load_suite(tiny_suite))]
    assert len(hashes) == 4
    assert "4 cells × 5 trials + 2 final run(s) each = 28 runs" in out.stdout
    assert all(h in out.stdout for h in hashes)
    assert not (tmp_path / "proj").exists()


def test_unreachable_stores_are_one_line_errors(tiny_suite, tmp_path):
    out = ptbench(
        "run",
        str(tiny_suite),
        "--tracking-uri",
        "http://127.0.0.1:9",
        cwd=tmp_path,
        env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"},
        timeout=120,
    )
    assert out.returncode == 2
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ptbench: error: tracking.uri 'http://127.0.0.1:9'")
    out = ptbench(
        "run",
        str(tiny_suite),
        "--project-dir",
        str(tmp_path / "p"),
        "--storage",
        "postgresql://bench:s3cret@127.0.0.1:9/optuna",
        cwd=tmp_path,
        timeout=120,
    )
    assert out.returncode == 2
    err = out.stderr.strip().splitlines()
    assert len(err) == 1 and "storage.url 'postgresql://bench:***@127.0.0.1:9/optuna'" in err[0]
    assert "s3cret" not in out.stderr + out.stdout


def test_a_forgotten_storage_is_refused_before_searching_again(finished_run):
    """The suite was searched in the project's journal; the same command with another storage
    (a forgotten --storage the other way round) found no study there and searched every cell
    again from nothing, beside the first search's runs. Now one line naming that storage, and
    nothing opened or recorded."""
    tmp, suite, _ = finished_run
    before = len(records(tmp / "proj"))
    other = f"journal:///{tmp}/elsewhere.journal"
    out = ptbench("run", str(suite), "--project-dir", str(tmp / "proj"), "--storage", other, cwd=tmp)
    assert out.returncode == 2, out.stderr
    err = out.stderr.strip().splitlines()
    assert len(err) == 1, out.stderr
    assert "4 cell(s)" in err[0] and "elsewhere.journal" in err[0] and "--storage" in err[0]
    assert len(records(tmp / "proj")) == before


def test_help_does_not_import_torch(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ptbench.cli", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0 and "ptbench run" not in proc.stderr
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines()}
    assert "ptbench" in imported  # the import log was read: the check below is not vacuous
    assert not imported & {"torch", "mlflow", "optuna", "timm", "transformers"}


def test_ui_serves_the_store_on_loopback(finished_run):
    tmp, suite, _ = finished_run
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ptbench.cli",
            "ui",
            str(suite),
            "--project-dir",
            str(tmp / "proj"),
            "--port",
            str(port),
        ],
        cwd=tmp,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/search?max_results=10"
    try:
        body = _first_answer(url, proc)
        assert '"name": "tiny"' in body or '"name":"tiny"' in body
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:  # clean-up only: the verdict is already in
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _first_answer(url: str, proc: subprocess.Popen, hang_guard_s: float = 900) -> str:
    """The body of the first answer from a server that is starting: waits for that state (or the
    server's exit), not for a number of seconds; the guard only turns a hang into a failure."""
    guard = time.monotonic() + hang_guard_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=60) as resp:
                return resp.read().decode()
        except OSError:
            assert proc.poll() is None, f"the server exited ({proc.returncode}) before answering"
            assert time.monotonic() < guard, f"no answer from {url} after {hang_guard_s:.0f} s: hung"
            time.sleep(0.2)


def test_a_suite_edited_to_evaluate_otherwise_reruns_its_final_runs_and_ranks_only_those(tmp_path):
    """The cell hash leaves the evaluation out (the search does not depend on it), so an edited
    `evaluation`/`robustness` reused the finished final runs — no corruption numbers ever came —
    and seeds added later were averaged with runs evaluated the old way."""
    import copy

    from conftest import TINY

    data = copy.deepcopy(TINY)
    data["axes"] |= {"strategies": ["linear_probe"], "regularizers": ["none"]}
    data["search"]["trials"] = 1
    data |= {"seeds": [0], "evaluation": ["test"]}
    suite, project = write_suite(tmp_path / "tiny.yaml", data), tmp_path / "proj"
    run = ("run", str(suite), "--project-dir", str(project), "--no-progress", "--no-leaderboard")
    ptbench(*run, cwd=tmp_path, check=True)
    data |= {"evaluation": ["test", "corruptions"]}
    data["robustness"] = {"corruptions": ["contrast"], "severities": [1], "size": 10}
    write_suite(suite, data)
    ptbench(*run, cwd=tmp_path, check=True)
    finals = [r for r in by_kind(records(project), "final") if r["status"] == "FINISHED"]
    assert len(finals) == 2  # seed 0 again, under the new settings
    assert (
        len(
            [
                r
                for r in finals
                if "metrics.corr_contrast_s1_accuracy" in r
                and r["metrics.corr_contrast_s1_accuracy"] == r["metrics.corr_contrast_s1_accuracy"]
            ]
        )
        == 1
    )
    from ptbench.leaderboard import Current, build_leaderboard
    from ptbench.suite import load_suite

    tracking = f"sqlite:///{project.resolve()}/mlflow.db"
    (board,) = build_leaderboard(tracking, "tiny", current=Current.of(load_suite(suite)))
    (row,) = board.views["generalization"].to_dict("records")
    assert row["seeds"] == 1  # the old run is not averaged in
    assert "corrupted" in board.views["robustness"].columns
    # each robustness family keyed apart, for the nightly comparison
    new = next(r for r in finals if "metrics.corr_contrast_s1_accuracy" in r)
    assert new["tags.ptbench.eval_key.corr"] and new["tags.ptbench.eval_key.adv"] == ""


def test_a_checkpoint_added_to_a_glob_does_not_stop_the_suite_from_resuming(tmp_path):
    """A checkpoint's label depends on the others (``model.safetensors`` alone, ``step500/…``
    once ``step1000/…`` exists), its cell hash does not: the resumed run re-logged the cell's
    params, which MLflow refuses to change, and `ptbench run` stopped."""
    import copy
    import shutil

    from conftest import TINY
    from test_rank import _checkpoints

    from ptbench.leaderboard import build_leaderboard

    (tmp_path / "made").mkdir()
    made = _checkpoints(tmp_path / "made", 2)
    for step in (500, 1000):
        (tmp_path / "ck" / f"step{step}").mkdir(parents=True)
    shutil.copy(made[0], tmp_path / "ck" / "step500" / "model.safetensors")
    data = copy.deepcopy(TINY)
    glob = str(tmp_path / "ck" / "step*" / "model.safetensors")
    data["axes"] |= {"backbones": [{"name": "test_efficientnet", "weights": "file", "path": glob}]}
    data["axes"] |= {"strategies": ["linear_probe"], "regularizers": ["none"]}
    data["search"]["trials"] = 1
    data["seeds"] = [0]
    suite, project = write_suite(tmp_path / "tiny.yaml", data), tmp_path / "proj"
    run = ("run", str(suite), "--project-dir", str(project), "--no-progress", "--no-leaderboard")
    ptbench(*run, cwd=tmp_path, check=True)
    shutil.copy(made[1], tmp_path / "ck" / "step1000" / "model.safetensors")  # saved since
    ptbench(*run, cwd=tmp_path, check=True)
    (board,) = build_leaderboard(f"sqlite:///{project.resolve()}/mlflow.db", "tiny")
    assert len(board.views["generalization"]) == 2  # both checkpoints ranked
    labels = {c["tags.ptbench.cell_hash"]: c["params.backbone"] for c in by_kind(records(project), "cell")}
    assert sorted(labels.values()) == [
        "test_efficientnet@file:step1000/model.safetensors",
        "test_efficientnet@file:step500/model.safetensors",  # the current label, not the first one
    ]
    # read where the checkpoints are not (the leaderboard reads the store alone): the glob matched
    # nothing, and the board stopped at "matches no checkpoint"; it ranks the recorded ones
    shutil.move(tmp_path / "ck", tmp_path / "elsewhere")
    out, proj = tmp_path / "board.csv", ("--project-dir", str(project))
    csv_out = ("--format", "csv", "--output", str(out))
    ptbench("leaderboard", str(suite), *proj, *csv_out, cwd=tmp_path, check=True)
    rows = list(csv.DictReader(out.open()))
    assert len([r for r in rows if r["view"] == "generalization"]) == 2
    assert not [r for r in rows if r["view"] == "note" and "not in" in r["note"]]  # none left out
