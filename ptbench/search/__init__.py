"""The only package that imports optuna: one study per cell, ask/tell, pruning, storage."""

from ptbench.search.claims import FinalClaims
from ptbench.search.lease import MAX_RETRY, LeaseConfig
from ptbench.search.records import elect_record
from ptbench.search.samplers import SAMPLERS, trial_seed
from ptbench.search.study import (
    ERROR,
    PRUNERS,
    AskFailed,
    CellStudy,
    Pruned,
    check_storage,
    default_storage_url,
    error_text,
    study_names,
)

__all__ = [
    "ERROR",
    "PRUNERS",
    "SAMPLERS",
    "AskFailed",
    "CellStudy",
    "FinalClaims",
    "LeaseConfig",
    "MAX_RETRY",
    "Pruned",
    "check_storage",
    "default_storage_url",
    "elect_record",
    "error_text",
    "study_names",
    "trial_seed",
]
