"""A board ranks one grid: after a suite edit, the cells it replaced are no longer ranked beside
their replacements (two identical-looking rows with different hashes), for the plain runs and a
night run again alike; an older night stays as it ran. Runs are written to a real SQLite MLflow
store as the runner writes them (``record`` of tests/test_leaderboard.py)."""

from __future__ import annotations

import copy
import csv

from conftest import TINY, ptbench, write_suite
from test_leaderboard import record

from ptbench.leaderboard import Current, build_leaderboard
from ptbench.suite import expand, load_suite
from ptbench.tracking import Tracker


def _suites(tmp, name: str):
    """The tiny suite, and the same file edited: 2 epochs → 3, full_finetune dropped (every
    cell hash changes; the linear_probe rows look the same as before)."""
    before = write_suite(tmp / f"{name}.yaml", name=name)
    edited = copy.deepcopy(TINY) | {"name": name}
    edited["axes"]["strategies"] = ["linear_probe"]
    edited["search"]["space"]["epochs"] = 3
    after = write_suite(tmp / f"{name}_edited.yaml", edited)
    return load_suite(before), load_suite(after), after


def test_after_an_edit_the_board_ranks_only_the_edited_grid_and_says_what_it_left_out(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db")
    tracker.experiment("edited", tmp_path / "artifacts")
    before, after, path = _suites(tmp_path, "edited")
    for cell in expand(before):
        record(tracker, cell, [0.5], [{"test_accuracy": 0.9}])
    for cell in expand(after):
        record(tracker, cell, [0.5], [{"test_accuracy": 0.6}])
    args = ("--format", "csv", "--output", "b.csv", "--tracking-uri", tracker.uri)
    done = ptbench("leaderboard", str(path), *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader((tmp_path / "b.csv").read_text().splitlines()))
    ranked = [r for r in rows if r["view"] == "generalization"]
    assert sorted(r["cell"] for r in ranked) == sorted(c.hash for c in expand(after))
    assert {(r["strategy"], r["regularizer"]) for r in ranked} == {
        ("linear_probe", "none"),
        ("linear_probe", "label_smoothing"),
    }
    assert not [r for r in rows if r["view"] == "unfinished"]
    notes = [r["note"] for r in rows if r["view"] == "note"]
    assert [n for n in notes if n.startswith("4 recorded cells are not in the suite's grid")], notes


def test_a_night_run_again_after_an_edit_ranks_its_last_grid_and_an_older_night_its_own(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db")
    tracker.experiment("nights", tmp_path / "artifacts")
    before, after, _ = _suites(tmp_path, "nights")
    for cell in expand(before):
        record(tracker, cell, [0.5], [{"test_accuracy": 0.9}], night="n0", suite_hash="a")
        record(tracker, cell, [0.5], [{"test_accuracy": 0.9}], night="n1", suite_hash="a")
    for cell in expand(after):  # n1 run again after the edit: a second suite run of the night
        record(tracker, cell, [0.5], [{"test_accuracy": 0.6}], night="n1", suite_hash="b")
    now = Current.of(after)

    def ranked(night: str) -> list[str]:
        boards = build_leaderboard(tracker.uri, "nights", night=night, current=now)
        return sorted(boards[0].views["generalization"]["cell"])

    assert ranked("n1") == sorted(c.hash for c in expand(after))
    assert ranked("n0") == sorted(c.hash for c in expand(before))  # as it ran, not re-cut
