"""Which MLflow run is a suite's or a cell's record, agreed on by every driver.

Why here: MLflow finds a run again by its tags, but cannot make a tag unique, so two drivers
that start at once may both find no run and both make one. Each driver proposes the run it
found or made as a trial of ``<name>:record``, the run id written with the trial in one storage
write; the lowest-numbered proposal whose run is alive is the record for all of them (numbers
come from the storage one at a time, as for the final-run claims). A driver whose own new run
lost deletes it.
"""

from __future__ import annotations

from collections.abc import Callable

import optuna
from optuna.trial import TrialState

from ptbench.search.lease import LeaseConfig
from ptbench.search.study import storage_for

RUN = "ptbench_run"


def elect_record(
    storage_url: str,
    name: str,
    run_id: str,
    alive: Callable[[str], bool],
    leases: LeaseConfig = LeaseConfig(),
) -> str:
    """The record's run id: the earliest proposal of ``name`` whose run ``alive`` accepts (a run
    deleted in the UI, or from another tracking store, is passed over), after proposing ``run_id``."""
    study = optuna.create_study(
        storage=storage_for(storage_url, leases),
        study_name=f"{name}:record",
        direction="maximize",
        load_if_exists=True,
    )
    study.add_trial(optuna.trial.create_trial(value=0.0, system_attrs={RUN: run_id}))
    proposals = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    seen: set[str] = set()
    for t in sorted(proposals, key=lambda t: t.number):
        candidate = t.system_attrs.get(RUN, "")
        if candidate == run_id or (candidate not in seen and alive(candidate)):
            return candidate
        seen.add(candidate)
    return run_id
