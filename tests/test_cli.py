"""The command line's answers to a user's mistakes: one line naming the option, exit 2, before
any work — never a traceback."""

from __future__ import annotations

import shlex
import socket

import pytest
from conftest import ptbench, write_suite

PRETRAIN = ("pretrain", "test_efficientnet", "--objective", "supervised", "--task", "digits")


@pytest.mark.parametrize(
    "args",
    [("run", "s.yaml"), ("nightly", "s.yaml"), ("rank", "s.yaml"), PRETRAIN],
    ids=["run", "nightly", "rank", "pretrain"],
)
@pytest.mark.parametrize("given", ["afile", "afile/sub"])
def test_a_project_dir_that_cannot_be_a_folder_is_one_line(tmp_path, args, given):
    """run and nightly were a FileExistsError traceback (exit 3), rank a NotADirectoryError."""
    write_suite(tmp_path / "s.yaml")
    (tmp_path / "afile").write_text("not a folder")
    out = ptbench(*args, "--project-dir", given, cwd=tmp_path, timeout=300)
    err = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(err) == 1, out.stderr
    assert err[0] == f"ptbench: error: --project-dir {given}: {tmp_path}/afile is a file, not a folder"
    assert (tmp_path / "afile").read_text() == "not a folder"


def test_the_ui_line_after_a_run_opens_the_store_it_wrote(tmp_path):
    """It printed `ptbench ui my süite.yaml`: unquoted, a shell split it into two suites, and
    without --project-dir it opened the default store, which held none of these runs."""
    small = {"trials": 1, "pruner": "none", "space": {"epochs": 1, "batch_size": 50}}
    axes = {
        "backbones": [{"name": "test_efficientnet", "weights": "none", "params": {"input_size": 16}}],
        "tasks": [{"name": "digits", "params": {"train_size": 100, "val_size": 50, "test_size": 50}}],
        "strategies": ["linear_probe"],
        "regularizers": ["none"],
    }
    write_suite(tmp_path / "my süite.yaml", axes=axes, search=small, seeds=[0], evaluation=["test"])
    args = ("my süite.yaml", "--project-dir", "proj ü dir", "--executor", "inline")
    out = ptbench("run", *args, "--no-leaderboard", "--quiet", cwd=tmp_path, check=True)
    hint = out.stdout.strip().splitlines()[-1]
    assert hint.startswith("browse every run: ptbench ui "), out.stdout
    words = shlex.split(hint.removeprefix("browse every run: "))
    assert words == ["ptbench", "ui", "my süite.yaml", "--project-dir", "proj ü dir"]


@pytest.mark.parametrize("suite", [(), ("s.yaml",)], ids=["store", "suite"])
def test_ui_on_a_folder_without_a_store_says_so_and_creates_none(tmp_path, suite):
    """It made an empty nowhere/mlflow.db and served "No runs" where leaderboard and history
    say there is no store. (The port is held here, so no server starts whatever happens.)"""
    write_suite(tmp_path / "s.yaml")
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = str(busy.getsockname()[1])
        out = ptbench("ui", *suite, "--project-dir", "nowhere", "--port", port, cwd=tmp_path, timeout=120)
    err = out.stderr.strip().splitlines()
    assert out.returncode == 2 and len(err) == 1, out.stderr
    store = tmp_path / "nowhere" / "mlflow.db"
    assert err[0] == (
        f"ptbench: error: no tracking store at {store}: run the suite first, or pass --tracking-uri"
    )
    assert not (tmp_path / "nowhere").exists()


def test_nightly_refuses_dry_run_with_report_only(tmp_path):
    """The pair printed a plan of runs, which --report-only never runs."""
    write_suite(tmp_path / "s.yaml")
    out = ptbench("nightly", "s.yaml", "--dry-run", "--report-only", cwd=tmp_path)
    assert out.returncode == 2 and out.stdout == "", out.stdout
    assert out.stderr.strip().splitlines() == [
        "ptbench: error: --dry-run with --report-only: a report-only night runs nothing; drop one"
    ]
