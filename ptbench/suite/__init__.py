"""Suite files → the plan: loading with field-path errors, checks against the registries, and the
grid of cells. The typed specs themselves (``Suite``, ``Cell``) are core: ``ptbench.schema`` and
``ptbench.cell``, which jobs, methods and leaderboards read without the registries."""

from ptbench.cell import Cell
from ptbench.schema import Suite
from ptbench.suite.grid import expand
from ptbench.suite.load import load_suite, parse_suite
from ptbench.suite.runkey import suite_run_key

__all__ = ["Cell", "Suite", "expand", "load_suite", "parse_suite", "suite_run_key"]
