"""A cell: one point of a suite's grid, fully resolved.

Why apart from the grid: jobs and the runner carry cells, but only the plan expands a suite
into them (``ptbench.suite.grid``, which needs the registries).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Cell:
    """One point of the grid, fully resolved and picklable (it travels to worker processes)."""

    suite: str
    suite_version: str
    backbone: dict[str, Any]
    task: dict[str, Any]
    strategy: dict[str, Any]
    regularizers: list[dict[str, Any]]
    space: dict[str, Any]
    objective: dict[str, str]
    labels: dict[str, str] = field(compare=False)
    hash: str = field(compare=False, default="")
    # a nightly run's key (``ptbench nightly``): part of the study's and the runs' identity, so
    # each night searches afresh instead of reopening last night's finished study; "" for a run
    night: str = field(compare=False, default="")

    @property
    def study_name(self) -> str:
        base = f"{self.suite}-{self.hash}"
        return f"{base}@{self.night}" if self.night else base

    def describe(self) -> str:
        lb = self.labels
        return f"{lb['task']} | {lb['backbone']} | {lb['strategy']} | {lb['regularizer']}"
