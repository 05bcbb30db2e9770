"""Claims on a cell's final runs, so that each seed's final run happens once across drivers.

Why a second study: two drivers on one suite both reach a cell's final runs. Each final-run
job first claims its seed as a trial of ``<cell study>:finals``; the claim with the lowest
number among the seed's RUNNING or COMPLETE claims wins (numbers come from the storage, one at
a time), every other claim is closed at once and its job does nothing. A claim is leased like a
trial: a claim whose worker stopped beating is failed, and the seed is claimed again.

A claim names the search trial whose configuration it re-runs: when a longer search (``--trials``
raised) finds a better one, each seed is claimed, and run, again for it. A claim written before
claims named their trial holds its seed while it runs, and is done for no trial once finished:
those final runs are counted from their MLflow tag (``ptbench.source_trial``) instead.
"""

from __future__ import annotations

import time

import optuna
from optuna.trial import TrialState

from ptbench.search import lease
from ptbench.search.lease import LeaseConfig
from ptbench.search.study import ERROR, JOB, SURPLUS, storage_for

SEED = "ptbench_seed"
SOURCE = "ptbench_source_trial"
_LIVE = (TrialState.RUNNING, TrialState.COMPLETE)


class FinalClaims:
    def __init__(
        self, storage_url: str, cell_study: str, leases: LeaseConfig = LeaseConfig(), evaluation: str = ""
    ):
        """``evaluation``: the key of the evaluation settings; claims made under other settings
        (a suite since edited to evaluate otherwise) hold no seed here."""
        self.leases = leases
        self.study = optuna.create_study(
            storage=storage_for(storage_url, leases),
            study_name=f"{cell_study}:finals" + (f":{evaluation}" if evaluation else ""),
            direction="maximize",
            sampler=optuna.samplers.RandomSampler(seed=0),  # no params: nothing is sampled
            load_if_exists=True,
        )

    def claim(self, seed: int, job_id: str, source: int) -> optuna.Trial | None:
        """The claim on ``seed`` (re-running search trial ``source``) for ``job_id``, or None when
        another claim holds it."""
        # One write: the claim has its seed from the moment it has a number. Asked first and
        # labelled after, a claim with the lower number could still look seedless to a rival
        # checking in between — the rival ran, then so did it: one seed, two final runs.
        storage = self.study._storage
        attrs = {SOURCE: source, SEED: seed, JOB: job_id, lease.BEAT: time.time()}
        template = optuna.trial.create_trial(state=TrialState.RUNNING, system_attrs=attrs)
        trial = optuna.Trial(self.study, storage.create_new_trial(self.study._study_id, template))
        lease.beat(self.study, trial._trial_id, first=True)
        rivals = [
            t
            for t in self.study.get_trials(deepcopy=False, states=_LIVE)
            if t.system_attrs.get(SEED) == seed and _for(t, source) and t.number < trial.number
        ]
        if rivals:
            storage.set_trial_system_attr(trial._trial_id, SURPLUS, True)
            self.study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            return None
        return trial

    def beating(self, trial: optuna.Trial):
        return lease.beating(self.study, trial._trial_id, self.leases.interval)

    def holds(self, trial: optuna.Trial) -> bool:
        """False once the claim was declared dead: the run's result must not land."""
        return self.study._storage.get_trial(trial._trial_id).state == TrialState.RUNNING

    def done(self, trial: optuna.Trial, value: float | None) -> None:
        self.study.tell(trial.number, 0.0 if value is None else float(value), skip_if_finished=True)

    def failed(self, trial: optuna.Trial, error: str) -> None:
        self.study._storage.set_trial_user_attr(trial._trial_id, ERROR, error)
        self.study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)

    def seeds(self, source: int | None = None) -> tuple[set[int], set[int], set[str]]:
        """Seeds with a finished final run, seeds with a live claim (of search trial ``source``;
        of any when None), and the live claims' jobs (of any trial)."""
        lease.fail_stale(self.study, self.leases.grace, retry=False)
        done, running, jobs = set(), set(), set()
        for t in self.study.get_trials(deepcopy=False, states=_LIVE):
            if SEED not in t.system_attrs:
                continue
            if t.state == TrialState.RUNNING:
                jobs.add(t.system_attrs.get(JOB, ""))
            if source is not None and not _for(t, source):
                continue
            (done if t.state == TrialState.COMPLETE else running).add(int(t.system_attrs[SEED]))
        return done, running, jobs

    def fail_job(self, job_id: str) -> None:
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.system_attrs.get(JOB) == job_id:
                lease.fail_trial(self.study, t._trial_id, retry=False)


def _for(claim: optuna.trial.FrozenTrial, source: int) -> bool:
    if SOURCE not in claim.system_attrs:  # an older claim: it blocks while it runs, no longer
        return claim.state == TrialState.RUNNING
    return claim.system_attrs[SOURCE] == source
