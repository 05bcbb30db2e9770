"""The only package that imports optuna: one study per cell, ask/tell, pruning, storage."""

from ptbench.search.study import (
    CellStudy,
    Pruned,
    check_storage,
    default_storage_url,
)

__all__ = ["CellStudy", "Pruned", "check_storage", "default_storage_url"]
