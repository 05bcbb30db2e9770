"""The tags that find a suite's MLflow run again: the hash of its whole grid (a funnel that
keeps fewer cells runs under the same suite run), and the night's key."""

from __future__ import annotations

from ptbench.cell import Cell
from ptbench.hashing import stable_hash
from ptbench.jobs import NIGHT


def suite_run_key(cells: list[Cell], night: str = "") -> dict[str, str]:
    return {"ptbench.kind": "suite", "ptbench.suite_hash": stable_hash([c.hash for c in cells]), NIGHT: night}
