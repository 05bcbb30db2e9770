"""Benchmarks: figures go to the README, never into timed assertions in tests."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def records(project: Path, suite: str) -> list[dict]:
    """Every MLflow run a suite wrote under ``project``, as flat records."""
    from ptbench.tracking import Tracker, default_tracking_uri

    return Tracker(default_tracking_uri(project)).runs_records(suite)
