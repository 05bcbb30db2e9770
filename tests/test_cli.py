"""The command line's answers to a user's mistakes: one line naming the option, exit 2, before
any work — never a traceback."""

from __future__ import annotations

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
