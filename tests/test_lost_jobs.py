"""Jobs that leave no Optuna record: Optuna's retry limit never sees them, so the run loop keeps
its own count. A trial job that fails before its trial exists (the worker cannot reach the
storage) or loses its worker before asking (a worker that cannot start) is tried MAX_RETRY + 1
times in a row, then the cell fails with the last error and the suite goes on."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

from conftest import PLUGIN_DIR, ROOT, TINY, write_suite
from test_e2e import by_kind, records

from ptbench.search import MAX_RETRY


def _suite(tmp_path: Path, executor: str) -> Path:
    data = copy.deepcopy(TINY)
    data["axes"]["backbones"] = [
        {"name": "test_efficientnet", "params": {"input_size": 16}},
        {"name": "gated_net", "params": {"input_size": 16}},  # test_efficientnet by another name
    ]
    data["axes"] |= {"strategies": ["linear_probe"], "regularizers": ["none"]}
    data["search"] |= {"trials": 1}
    data["search"]["space"]["epochs"] = 1
    data |= {"seeds": [0], "execution": {"workers": 1, "executor": executor}}
    return write_suite(tmp_path / "tiny.yaml", data)


def _run(suite: Path, plant: str, hang_guard_s: float = 600) -> tuple[int, str]:
    """The real CLI; ``hang_guard_s`` only turns the endless loop this guards against into a failure."""
    env = {
        **os.environ,
        "PYTHONPATH": f"{PLUGIN_DIR}{os.pathsep}{ROOT}",
        "PTBENCH_PLUGINS": "ptbench_testplugin,ptbench_plant",
        "PTBENCH_PLANT": plant,
    }
    cmd = [sys.executable, "-m", "ptbench.cli", "run", str(suite), "--no-progress", "--no-leaderboard"]
    proc = subprocess.run(
        [*cmd, "--project-dir", str(suite.parent / "proj")],
        cwd=suite.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=hang_guard_s,
    )
    return proc.returncode, proc.stdout + proc.stderr


def _cells(project: Path) -> dict[str, dict]:
    return {r["params.backbone.name"]: r for r in by_kind(records(project), "cell")}


def test_a_cell_whose_trials_never_reach_the_storage_fails_and_the_suite_goes_on(tmp_path):
    suite = _suite(tmp_path, "inline")
    rc, out = _run(suite, "no_trial:gated_net")
    assert rc == 0, out
    assert "Traceback" not in out
    gave_up = f"{MAX_RETRY + 1} trial jobs in a row failed before their trial was recorded"
    line = f"{gave_up}: ConnectionError: could not connect to the Optuna storage"
    assert "failed cell" in out and line in out, out
    cells = _cells(suite.parent / "proj")
    assert cells["gated_net"]["status"] == "FAILED"
    assert cells["gated_net"]["tags.ptbench.error"].endswith(line)
    assert cells["test_efficientnet"]["status"] == "FINISHED"  # the other cell ran to the end
    finals = by_kind(records(suite.parent / "proj"), "final")
    assert [r["params.backbone.name"] for r in finals if r["status"] == "FINISHED"] == ["test_efficientnet"]


def test_workers_that_die_as_they_start_fail_their_cells_instead_of_looping(tmp_path):
    suite = _suite(tmp_path, "local")
    rc, out = _run(suite, "dead_workers")
    assert rc == 0, out
    assert "Traceback" not in out
    gave_up = "failed before their trial was recorded: worker lost (BrokenProcessPool"
    assert len([ln for ln in out.splitlines() if "failed cell" in ln and gave_up in ln]) == 2, out
    cells = _cells(suite.parent / "proj")
    assert {c["status"] for c in cells.values()} == {"FAILED"} and len(cells) == 2
    assert not [r for r in records(suite.parent / "proj") if r["status"] == "RUNNING"]
