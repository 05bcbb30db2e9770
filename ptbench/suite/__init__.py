"""Suite files: schema, loading with field-path errors, and the grid of cells."""

from ptbench.suite.grid import Cell, expand, stable_hash
from ptbench.suite.load import load_suite, parse_suite
from ptbench.suite.schema import Suite

__all__ = ["Cell", "Suite", "expand", "load_suite", "parse_suite", "stable_hash"]
