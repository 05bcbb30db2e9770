"""Nightly runs on a real MLflow store, with a history made by real runs of a tiny suite: ten
nights of unchanged code (new seeds each night) raise no flag; a planted bug in the trainer is
flagged the first night it appears; a changed dataset is reported as changed, not regressed.

The suite: EfficientNet-Lite0 (its ImageNet weights install offline) probed on scikit-learn's
digits with 1,197 test examples, two cells (label smoothing or not), five seeds per night, fixed
hyperparameters.
"""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, TINY, ptbench, write_suite

from ptbench.nightly.run import NightOptions, run_night
from ptbench.runner import RunOptions
from ptbench.suite import load_suite

SUITE = {
    "name": "nightly_tiny",
    "version": 1,
    "axes": {
        "backbones": [{"name": "efficientnet_lite0", "weights": "package", "params": {"input_size": 32}}],
        "tasks": [
            {
                "name": "digits",
                "params": {"train_size": 300, "val_size": 200, "test_size": 1197, "shifted_size": 200},
            }
        ],
        "strategies": ["linear_probe"],
        "regularizers": ["none", [{"name": "label_smoothing", "params": {"label_smoothing": 0.1}}]],
    },
    # fixed hyperparameters: the noise is the seeds' (a search in the loop adds which configuration
    # won, a real change of the shipped result that the report names; see the README)
    "search": {"trials": 1, "pruner": "none", "space": {"epochs": 3, "batch_size": 32, "lr": 0.02}},
    "seeds": [0, 1, 2, 3, 4],
    "execution": {"workers": 1},  # the CLI nights: a worker process, as a scheduled night runs
}
NOISE_NIGHTS = [f"night-{i:02d}" for i in range(1, 11)]
FLAGS = ("regressed", "improved", "failed")
PLANT = {"PTBENCH_PLUGINS": "ptbench_plant"}


def _night(root: Path, key: str, **more):
    suite_file = root / "nightly_tiny.yaml"
    # the noise nights run inline (in this process: no worker to spawn, the backbone stays built)
    opts = RunOptions(project_dir=str(root / ".ptbench"), progress="none", executor="inline")
    return run_night(
        load_suite(suite_file), opts, NightOptions(night=key, results_dir=str(root / "results"), **more)
    )


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """Ten nights of the same code, each with its own seeds (drawn from the night's key)."""
    root = tmp_path_factory.mktemp("nightly")
    (root / "nightly_tiny.yaml").write_text(yaml.safe_dump(SUITE, sort_keys=False))
    reports = {key: _night(root, key)[0] for key in NOISE_NIGHTS}
    return root, reports


@pytest.fixture(scope="module")
def planted(history):
    """Night 11: the trainer skips every second optimizer step of label-smoothed models (every
    fourth gave a 1.9-point drop at the edge of Holm's bar: flagged or not with the libraries a
    fresh venv installs, the same code either way — see the README)."""
    root, _ = history
    proc = _cli(root, "--night", "night-11", env=PLANT | {"PTBENCH_PLANT": "skip_steps:2"})
    report = _night(root, "night-11", report_only=True)[0]
    return proc, report


@pytest.fixture(scope="module")
def changed(planted, history):
    """Night 12: one digits image altered — a new split hash, same code otherwise."""
    root, _ = history
    proc = _cli(root, "--night", "night-12", env=PLANT | {"PTBENCH_PLANT": "data"})
    return proc, _night(root, "night-12", report_only=True)[0]


def _cli(root: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return ptbench(
        "nightly",
        "nightly_tiny.yaml",
        "--project-dir",
        ".ptbench",
        "--quiet",
        "--no-leaderboard",
        *args,
        cwd=root,
        env=env,
    )


def _flags(report) -> list:
    return [f for f in report.findings + report.speed if f.status in FLAGS]


def test_ten_nights_of_unchanged_code_raise_no_flag(history):
    _, reports = history
    tested = 0
    for key, report in reports.items():
        assert not _flags(report), (key, [(f.cell, f.metric, f.status, f.p) for f in _flags(report)])
        tested += sum(f.status == "unchanged" for f in report.findings)
    # from the fourth night on every metric of both cells is tested (three nights of history)
    assert tested >= 7 * 2 * 5
    assert all(f.status == "no history" for f in reports["night-03"].findings)
    assert reports["night-01"].findings and all(f.status == "new" for f in reports["night-01"].findings)


def test_each_night_draws_its_own_seeds_and_searches_afresh(history):
    _, reports = history
    seeds = [tuple(c.seeds) for r in reports.values() for c in r.tonight.cells.values()]
    assert len({s for s in seeds}) == len(NOISE_NIGHTS)  # a night's two cells share its seeds
    for report in reports.values():  # every night ran its own trials and three final runs per cell
        assert all(len(c.final_runs) == 5 and c.state == "finished" for c in report.tonight.cells.values())


def test_planted_trainer_bug_is_flagged_on_its_first_night(planted):
    proc, report = planted
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "REGRESSED" in proc.stdout
    flagged = {(f.cell.split(" | ")[-1], f.metric) for f in report.findings if f.status == "regressed"}
    # flagged on test accuracy or macro-F1 (measured: README), in the planted cell only: the
    # untouched cell stays quiet
    assert flagged & {("label_smoothing(label_smoothing=0.1)", m) for m in ("test_accuracy", "test_macro_f1")}
    assert all(cell.startswith("label_smoothing") for cell, _ in flagged)
    acc = next(f for f in report.findings if f.metric == "test_accuracy" and "label_smoothing" in f.cell)
    assert -0.06 < acc.effect < -0.025  # the planted drop is about 4 points
    assert acc.paired is not None and acc.paired.high < 0  # the paired interval excludes 0
    assert "right→wrong" in acc.detail  # McNemar's evidence


def test_changed_split_hash_is_reported_as_changed_not_regressed(changed):
    proc, report = changed
    assert proc.returncode == 0, proc.stdout + proc.stderr
    statuses = {f.cell.split(" | ")[-1]: f for f in report.findings}
    assert {f.status for f in statuses.values()} == {"changed"}
    assert all("data split hash" in f.detail for f in statuses.values())


def test_report_files_and_their_evidence(planted, history):
    root, _ = history
    folder = root / "results" / "nightly_tiny" / "nightly"
    md = (folder / "night-11.md").read_text()
    assert "## Regressions" in md and "paired bootstrap: interval" in md and "night(s): z=" in md
    page = (folder / "night-11.html").read_text()
    assert "<script>" in page and "Trends over nights" in page and "night-11" in page
    assert "cdn." not in page.split("</script>", 1)[1]  # self-contained: nothing fetched


def test_final_runs_save_per_example_predictions(history):
    from ptbench.tracking import Tracker, default_tracking_uri

    root, reports = history
    tracker = Tracker(default_tracking_uri(root / ".ptbench"))
    cell = next(iter(reports["night-01"].tonight.cells.values()))
    table = tracker.read_table(cell.final_runs[0], "predictions/test.csv")
    assert set(table) == {"label", "pred", "confidence"} and len(table["label"]) == 1197
    accuracy = sum(a == b for a, b in zip(table["label"], table["pred"], strict=True)) / 1197
    assert accuracy == pytest.approx(cell.metrics["test_accuracy"][0], abs=1e-6)  # logged in float32


def test_history_leaderboard_and_exit_codes(changed, history):
    root, _ = history
    out = ptbench("history", "nightly_tiny.yaml", "--project-dir", ".ptbench", cwd=root, check=True).stdout
    assert all(k in out for k in NOISE_NIGHTS + ["night-11", "night-12"])
    assert "*" in out.splitlines()[-4]  # night 12: identity changed
    lb = ptbench(
        "leaderboard",
        "nightly_tiny.yaml",
        "--project-dir",
        ".ptbench",
        "--night",
        "night-03",
        "--format",
        "csv",
        "--output",
        "lb.csv",
        cwd=root,
        check=True,
    )
    rows = list(csv.DictReader(io.StringIO((root / "lb.csv").read_text())))
    seeds = {r["seeds"] for r in rows if r["view"] == "generalization"}
    assert lb.returncode == 0 and seeds == {"5"}  # that night's five seeds, not 5 × 12 nights pooled
    pinned = _cli(root, "--night", "night-10", "--report-only", "--baseline", "night-05")
    assert (
        pinned.returncode == 0
        and "pinned night night-05" in (root / "results/nightly_tiny/nightly/night-10.md").read_text()
    )
    from ptbench.tracking import Tracker, default_tracking_uri

    tracker = Tracker(default_tracking_uri(root / ".ptbench"))
    tracker.set_tags(history[1]["night-04"].tonight.suite_run, {"release": "v1"})
    by_tag = _night(root, "night-10", report_only=True, baseline="release=v1")[0]
    assert by_tag.baseline.describe() == "pinned night night-04"
    assert _cli(root, "--night", "bad key!").returncode == 2
    bad = _cli(root, "--night", "night-10", "--report-only", "--baseline", "no-such-night")
    assert (
        bad.returncode == 2 and "--baseline 'no-such-night'" in bad.stderr and "Traceback" not in bad.stderr
    )


def test_a_night_run_again_after_an_edit_is_the_edited_grid(tmp_path):
    """The same night run again after a cell was deleted from the suite kept the deleted cell
    (a broken one stayed "failed" and the night still exited 1): the night is its newest grid."""
    quick = {
        "search": {"trials": 1, "pruner": "none", "space": {"epochs": 1, "batch_size": 50, "lr": 0.01}},
        "seeds": [0],
    }
    axes = dict(TINY["axes"], strategies=["linear_probe"])
    write_suite(tmp_path / "nightly_tiny.yaml", **quick, axes=axes)
    before = _night(tmp_path, "n1")[0]
    assert len(before.tonight.cells) == 2
    write_suite(tmp_path / "nightly_tiny.yaml", **quick, axes=dict(axes, regularizers=["none"]))
    after = _night(tmp_path, "n1")[0]
    assert [c[-1] for c in after.tonight.cells] == ["none"]
    assert not [f for f in after.findings if "label_smoothing" in f.cell]
    write_suite(tmp_path / "nightly_tiny.yaml", **quick, axes=axes)  # the edit undone
    again = _night(tmp_path, "n1")[0]  # the first suite run, reopened: its grid again
    assert len(again.tonight.cells) == 2 and all(c.state == "finished" for c in again.tonight.cells.values())


def test_a_night_key_finished_under_another_commit_is_warned_about(tmp_path, capsys):
    """Two schedules meeting on one UTC date: the second resumed the first's night under the
    same key and trained nothing, silently. It now says so, naming the key, both commits and
    --night."""
    from ptbench.provenance import git_commit
    from ptbench.tracking import Tracker, default_tracking_uri

    quick = {
        "search": {"trials": 1, "pruner": "none", "space": {"epochs": 1, "batch_size": 50, "lr": 0.01}},
        "seeds": [0],
    }
    axes = dict(TINY["axes"], strategies=["linear_probe"], regularizers=["none"])
    write_suite(tmp_path / "nightly_tiny.yaml", **quick, axes=axes)
    first = _night(tmp_path, "2026-12-01")[0]
    _night(tmp_path, "2026-12-01")  # the same commit again: a plain resume, nothing to say
    assert "warning" not in capsys.readouterr().err
    tracker = Tracker(default_tracking_uri(tmp_path / ".ptbench"))
    tracker.set_tags(first.tonight.suite_run, {"ptbench.git_commit": "feedc0ffee0123"})  # an older checkout
    proc = _cli(tmp_path, "--night", "2026-12-01", "--report-only")
    assert "warning" not in proc.stderr  # a report of the night runs nothing: nothing to say
    proc = _cli(tmp_path, "--night", "2026-12-01")
    warning = [line for line in proc.stderr.splitlines() if "warning" in line]
    assert len(warning) == 1 and "'2026-12-01'" in warning[0], proc.stderr
    assert "feedc0ffee" in warning[0] and git_commit()[:10] in warning[0] and "--night" in warning[0]


def test_a_bug_exits_3_and_an_unwritable_results_dir_is_a_user_error(tmp_path):
    """An uncaught exception exited 1 like a regression (a crashed night read as a result), and
    a --results-dir that is a file was a NotADirectoryError after the night's training."""
    suite = write_suite(tmp_path / "tiny.yaml")
    crash = {"PTBENCH_PLUGINS": "ptbench_plant", "PTBENCH_PLANT": "crash"}
    proc = ptbench("nightly", str(suite), "--project-dir", ".ptbench", cwd=tmp_path, env=crash)
    assert proc.returncode == 3 and "Traceback" in proc.stderr and "internal error" in proc.stderr
    (tmp_path / "afile").write_text("")
    proc = ptbench(
        "nightly", str(suite), "--project-dir", ".ptbench", "--results-dir", "afile/r", cwd=tmp_path
    )
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "--results-dir afile/r" in proc.stderr and "not a folder" in proc.stderr
    assert not (tmp_path / ".ptbench").exists()  # refused before the night ran


def test_speed_history_flags_a_benchmark_that_slows_down_on_its_own(changed, history, tmp_path):
    """A real pytest-benchmark JSON of the reference loop, with one benchmark added per night at
    3.0× the reference (±2 %), then at 4.5× on night 11: only that night's is flagged."""
    import json
    import random

    root, _ = history
    out = tmp_path / "ref.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(ROOT / "benchmarks/test_bench_reference.py"),
            "--benchmark-only",
            f"--benchmark-json={out}",
            "-p",
            "no:cacheprovider",
            "-q",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    real = json.loads(out.read_text())
    ref = next(b for b in real["benchmarks"] if b["name"] == "test_reference_loop")["stats"]["median"]
    rng = random.Random(0)
    statuses = {}
    for key in [*NOISE_NIGHTS, "night-11"]:
        ratio = 4.5 if key == "night-11" else 3.0 * (1 + rng.uniform(-0.02, 0.02))
        night = dict(
            real,
            benchmarks=real["benchmarks"] + [{"name": "test_probe[cpu]", "stats": {"median": ref * ratio}}],
        )
        path = tmp_path / f"{key}.json"
        path.write_text(json.dumps(night))
        report = _night(root, key, report_only=True, benchmarks=str(path))[0]
        statuses[key] = [(f.metric, f.status) for f in report.speed]
    assert statuses["night-11"] == [("bench.test_probe_cpu", "regressed")]
    assert all(s in ("no history", "unchanged") for key in NOISE_NIGHTS for _, s in statuses[key])
    assert statuses["night-10"] == [("bench.test_probe_cpu", "unchanged")]
