"""Progress a person can follow in any log: one line per finished job when not on a terminal."""

from __future__ import annotations

import io
import re

import pytest

from ptbench.jobs import JobResult
from ptbench.progress import BarProgress, LineProgress, make_progress, resolve_mode

LINE = re.compile(
    r"^\d\d:\d\d:\d\d \[(\d+)/(\d+)\] (\w+) (.+) · (trial \d+|final seed \d+) · "
    r"(complete|pruned|fail|finished) · (\d\.\d{4}|—) · elapsed \d+m\d\ds · ETA \d+m\d\ds$"
)


def test_one_line_per_job_with_count_state_value_and_eta():
    out = io.StringIO()
    p = LineProgress(total=3, cells=1, stream=out)
    p.advance(JobResult("trial", "abc123", "complete", number=0, value=0.8125), "cnn · digits", "maximize")
    p.advance(JobResult("trial", "abc123", "fail", number=1), "cnn · digits", "maximize")
    p.advance(JobResult("final", "abc123", "finished", seed=7, value=0.5), "cnn · digits", "maximize")
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert [m.group(1, 2) for m in parsed] == [("1", "3"), ("2", "3"), ("3", "3")]
    assert [m.group(5) for m in parsed] == ["trial 0", "trial 1", "final seed 7"]
    assert [m.group(7) for m in parsed] == ["0.8125", "—", "0.5000"]
    assert lines[-1].endswith("ETA 0m00s")  # nothing left


def test_quiet_prints_nothing():
    out = io.StringIO()
    p = LineProgress(total=1, cells=1, quiet=True, stream=out)
    p.advance(JobResult("trial", "h", "complete", number=0, value=1.0), "c", "maximize")
    assert out.getvalue() == ""


def test_auto_is_lines_when_stdout_is_not_a_terminal(capsys):
    # pytest captures stdout, so it is not a terminal here: exactly the cron/CI case
    assert resolve_mode("auto") == "lines"
    assert isinstance(make_progress(2, 1, "auto"), LineProgress)
    assert resolve_mode(False) == "none" and resolve_mode(True) == "lines"
    bar = make_progress(2, 1, "bar")
    assert isinstance(bar, BarProgress)
    bar.stop()
    with pytest.raises(ValueError, match="progress mode"):
        resolve_mode("loud")
