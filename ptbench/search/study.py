"""One Optuna study per cell, opened with load-if-exists so an interrupted run resumes.

Storage: a journal file by default (nothing to start, safe for several local processes);
any Optuna RDB URL (sqlite://, postgresql://) for a cluster.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from ptbench.databases import connect_args
from ptbench.errors import PtbenchError, first_line, redact
from ptbench.search import lease
from ptbench.search.lease import LeaseConfig
from ptbench.search.samplers import make_sampler
from ptbench.search.space import is_dist, suggest

optuna.logging.set_verbosity(optuna.logging.WARNING)
# Optuna marks heartbeats and their retry callback experimental (stable since 2.8): not the user's concern
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

INTERRUPTED = "ptbench_interrupted"  # user attr of earlier versions: replaced, not counted
ERROR = "ptbench_error"  # user attr of a FAILED trial: what went wrong, in one line
JOB = "ptbench_job"  # system attr: the id of the job (made by its driver) running the trial
SURPLUS = "ptbench_surplus"  # system attr: asked beyond the budget (two drivers raced); not run


class Pruned(Exception):
    """Raised from the per-epoch callback when the pruner stops a trial."""


class AskFailed(Exception):
    """Asking for a trial's params raised; the trial (``number``) is already closed as FAIL.

    ``number`` is None when not even a FAIL record could be written (the storage is down).
    ``error`` is the one-line message recorded; the original exception is ``__cause__``.
    """

    def __init__(self, number: int | None, error: str):
        super().__init__(error)
        self.number, self.error = number, error


def error_text(err: BaseException) -> str:
    """How a failure is recorded everywhere (Optuna user attr, MLflow tag): type and first line."""
    return f"{type(err).__name__}: {first_line(err)}"


def default_storage_url(project_dir: str | Path) -> str:
    return f"journal:///{Path(project_dir).resolve()}/optuna.journal".replace(":////", ":///")


# Connections one process may hold to a server database: a job uses one at a time; the spare
# covers a heartbeat landing while the job writes. 4 workers × 2 stays far below PostgreSQL's 100.
POOL = {"pool_size": 1, "max_overflow": 1, "pool_timeout": 60}


def _storage(url: str, leases: LeaseConfig) -> optuna.storages.BaseStorage:
    if url.startswith("journal://"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = Path(url.removeprefix("journal://"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    engine = {"pool_pre_ping": True} | (POOL if url.startswith("postgresql") else {})
    if args := connect_args(url):  # a server that never answers: given up, not waited on for ever
        engine["connect_args"] = args
    return optuna.storages.RDBStorage(
        url,
        engine_kwargs=engine,
        heartbeat_interval=leases.interval,
        grace_period=leases.grace,
        heartbeat_stale_trial_callback=lease.retry_callback(),
    )


_STORAGES: dict[tuple[str, LeaseConfig], optuna.storages.BaseStorage] = {}


def storage_for(url: str, leases: LeaseConfig = LeaseConfig()) -> optuna.storages.BaseStorage:
    if (url, leases) not in _STORAGES:
        _STORAGES[url, leases] = _storage(url, leases)
    return _STORAGES[url, leases]


def check_storage(url: str) -> None:
    """Fail fast, in one line, when the storage URL cannot be opened."""
    try:
        storage_for(url).get_all_studies()
    except Exception as err:
        _STORAGES.pop((url, LeaseConfig()), None)
        # Optuna wraps a refused connection as "invalid data in the commit": say the cause
        if isinstance(err, optuna.exceptions.StorageInternalError) and err.__cause__ is not None:
            err = err.__cause__
        raise PtbenchError(f"storage.url '{redact(url)}' cannot be opened: {first_line(err)}") from None


def study_names(url: str) -> set[str]:
    """The studies the storage holds (a cell's is ``Cell.study_name``)."""
    return {s.study_name for s in storage_for(url).get_all_studies()}


_PRUNERS = {
    "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
    "hyperband": lambda: optuna.pruners.HyperbandPruner(),
    "successive_halving": lambda: optuna.pruners.SuccessiveHalvingPruner(),
    "none": lambda: optuna.pruners.NopPruner(),
}
PRUNERS = tuple(_PRUNERS)


def _pruner(name: str) -> optuna.pruners.BasePruner:
    return _PRUNERS[name]()


@dataclass
class Counts:
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    running: int = 0
    waiting: int = 0
    running_jobs: set[str] = field(default_factory=set)  # JOB of each counted RUNNING trial

    @property
    def finished(self) -> int:
        return self.complete + self.pruned + self.failed


def counted(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """The trials that count against a cell's budget: all but those lost and retried (their
    retry counts instead), those asked beyond the budget, and those marked interrupted by earlier versions."""
    # a trial never counts as its own retry (Optuna's callback may append it to its own history)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", []) if n != t.number}
    return [
        t
        for t in trials
        if t.state != TrialState.FAIL
        or not (t.user_attrs.get(INTERRUPTED) or t.system_attrs.get(SURPLUS) or t.number in retried)
    ]


class CellStudy:
    """The search of one cell: ask → report per epoch → tell, against a shared storage.

    Several drivers and workers may share one study: the budget is kept exact by rank (a trial
    runs only if fewer than ``budget`` counted trials have a lower number; trial numbers are
    handed out by the storage, one at a time), and a trial's liveness is its lease.
    """

    def __init__(
        self,
        storage_url: str,
        name: str,
        direction: str,
        sampler: str = "tpe",
        pruner: str = "median",
        seed: int = 0,
        leases: LeaseConfig = LeaseConfig(),
    ):
        self.sampler = make_sampler(sampler, seed)
        self.leases = leases
        self.study = optuna.create_study(
            storage=storage_for(storage_url, leases),
            study_name=name,
            direction=direction,
            sampler=self.sampler,
            pruner=_pruner(pruner),
            load_if_exists=True,
        )

    def counts(self) -> Counts:
        c = Counts()
        for t in counted(self.study.get_trials(deepcopy=False)):
            if t.state == TrialState.COMPLETE:
                c.complete += 1
            elif t.state == TrialState.PRUNED:
                c.pruned += 1
            elif t.state == TrialState.FAIL:
                c.failed += 1
            elif t.state == TrialState.RUNNING:
                c.running += 1
                c.running_jobs.add(t.system_attrs.get(JOB, ""))
            elif t.state == TrialState.WAITING:
                c.waiting += 1
        return c

    def full(self, budget: int) -> bool:
        """Every place in the budget is taken by a finished or running trial: asking is pointless."""
        c = self.counts()
        return c.finished + c.running >= budget

    def in_budget(self, number: int, budget: int) -> bool:
        below = [t for t in counted(self.study.get_trials(deepcopy=False)) if t.number < number]
        return len(below) < budget

    def bind(self, trial: optuna.Trial, job_id: str) -> None:
        """Mark ``trial`` as run by ``job_id`` and start its lease (the first heartbeat)."""
        self.study._storage.set_trial_system_attr(trial._trial_id, JOB, job_id)
        lease.beat(self.study, trial._trial_id, first=True)

    def beating(self, trial: optuna.Trial):
        return lease.beating(self.study, trial._trial_id, self.leases.interval)

    def mark_surplus(self, trial: optuna.Trial) -> None:
        self.study._storage.set_trial_system_attr(trial._trial_id, SURPLUS, True)
        self.study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)

    def is_running(self, trial: optuna.Trial) -> bool:
        """False once the trial was declared dead (lease expired): its result must not land."""
        return self.study._storage.get_trial(trial._trial_id).state == TrialState.RUNNING

    def fail_stale(self) -> list[int]:
        """Trials whose worker stopped beating are failed and enqueued again (same params)."""
        return lease.fail_stale(self.study, self.leases.grace)

    def fail_job(self, job_id: str) -> list[int]:
        """The worker running ``job_id`` is known dead: fail its trial now and enqueue it again."""
        running = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        mine = [t for t in running if t.system_attrs.get(JOB) == job_id]
        return [t.number for t in mine if lease.fail_trial(self.study, t._trial_id)]

    def ask(self, space: dict[str, Any]) -> tuple[optuna.Trial, dict[str, Any]]:
        """A new trial and its params; raises AskFailed after recording a FAIL trial if sampling raised."""
        self.sampler.forget_asked()
        try:
            trial = self.study.ask()
        except Exception as err:
            msg = error_text(err)
            number = self.sampler.asked  # set once Optuna created the trial, before sampling
            number = self._record_fail(msg) if number is None else self._close_fail(number, msg)
            raise AskFailed(number, msg) from err
        try:
            return trial, suggest(trial, space)
        except Exception as err:
            msg = error_text(err)
            raise AskFailed(self._close_fail(trial.number, msg), msg) from err

    def _close_fail(self, number: int, error: str) -> int:
        """Close a trial Optuna created as FAIL with ``error``, even if the sampler raises again."""
        storage, trial_id = self.study._storage, self._trial_id(number)
        if storage.get_trial(trial_id).state.is_finished():
            return number
        storage.set_trial_user_attr(trial_id, ERROR, error)
        try:
            self.study.tell(number, state=TrialState.FAIL, skip_if_finished=True)
        except Exception:  # the sampler's after_trial raised too: close it without the sampler
            if storage.get_trial(trial_id).state == TrialState.RUNNING:
                storage.set_trial_state_values(trial_id, TrialState.FAIL)
        return number

    def _record_fail(self, error: str) -> int | None:
        """No trial was created: add a FAIL one, so the failure is on record and counts."""
        try:
            frozen = optuna.trial.create_trial(state=TrialState.FAIL, user_attrs={ERROR: error})
            trial_id = self.study._storage.create_new_trial(self.study._study_id, template_trial=frozen)
            return self.study._storage.get_trial_number_from_id(trial_id)
        except Exception:  # the storage itself is failing: the caller still reports the error
            return None

    def _trial_id(self, number: int) -> int:
        return self.study._storage.get_trial_id_from_study_id_trial_number(self.study._study_id, number)

    @staticmethod
    def reporter(trial: optuna.Trial, metric: str):
        """Per-epoch callback for the trainer: report, and raise Pruned when told to stop."""

        def report(epoch: int, metrics: dict[str, float]) -> None:
            value = metrics.get(metric)
            if value is None or not math.isfinite(value):
                return
            trial.report(value, epoch)
            if trial.should_prune():
                raise Pruned(f"pruned at epoch {epoch} ({metric}={value:.4g})")

        return report

    def tell(self, trial: optuna.Trial, value: float | None, state: str, error: str = "") -> None:
        st = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "fail": TrialState.FAIL}[state]
        if st == TrialState.FAIL:
            self._close_fail(trial.number, error or "failed")
            return
        self.study.tell(trial, value if st == TrialState.COMPLETE else None, state=st)

    def best(self) -> tuple[int, dict[str, Any], float] | None:
        done = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not done:
            return None
        # ties go to the earliest trial on every storage (an RDB one orders by value alone), so
        # the best a cell's final runs re-ran stays the best its record names
        sign = -1.0 if self.study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
        b = min(done, key=lambda t: (sign * float(t.value), t.number))
        return b.number, dict(b.params), float(b.value)

    def best_config(self, space: dict[str, Any]) -> tuple[int, dict[str, Any], float] | None:
        """The best trial's number, its full params (sampled + fixed) and its value."""
        best = self.best()
        if best is None:
            return None
        number, sampled, value = best
        params = {k: (sampled[k] if is_dist(spec) else spec) for k, spec in space.items()}
        return number, params, value
