"""One Optuna study per cell, opened with load-if-exists so an interrupted run resumes.

Storage: a journal file by default (nothing to start, safe for several local processes);
any Optuna RDB URL (sqlite://, postgresql://) for a cluster.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from ptbench.errors import PtbenchError, first_line, redact
from ptbench.search.samplers import make_sampler
from ptbench.search.space import is_dist, suggest

optuna.logging.set_verbosity(optuna.logging.WARNING)

INTERRUPTED = "ptbench_interrupted"
ERROR = "ptbench_error"  # user attr of a FAILED trial: what went wrong, in one line


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


def _storage(url: str) -> optuna.storages.BaseStorage:
    if url.startswith("journal://"):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = Path(url.removeprefix("journal://"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})


_STORAGES: dict[str, optuna.storages.BaseStorage] = {}


def storage_for(url: str) -> optuna.storages.BaseStorage:
    if url not in _STORAGES:
        _STORAGES[url] = _storage(url)
    return _STORAGES[url]


def check_storage(url: str) -> None:
    """Fail fast, in one line, when the storage URL cannot be opened."""
    try:
        storage_for(url).get_all_studies()
    except Exception as err:
        _STORAGES.pop(url, None)
        raise PtbenchError(f"storage.url '{redact(url)}' cannot be opened: {first_line(err)}") from None


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

    @property
    def finished(self) -> int:
        return self.complete + self.pruned + self.failed


class CellStudy:
    """The search of one cell: ask → report per epoch → tell, against a shared storage."""

    def __init__(
        self,
        storage_url: str,
        name: str,
        direction: str,
        sampler: str = "tpe",
        pruner: str = "median",
        seed: int = 0,
    ):
        self.sampler = make_sampler(sampler, seed)
        self.study = optuna.create_study(
            storage=storage_for(storage_url),
            study_name=name,
            direction=direction,
            sampler=self.sampler,
            pruner=_pruner(pruner),
            load_if_exists=True,
        )

    def counts(self) -> Counts:
        c = Counts()
        for t in self.study.get_trials(deepcopy=False):
            if t.state == TrialState.COMPLETE:
                c.complete += 1
            elif t.state == TrialState.PRUNED:
                c.pruned += 1
            elif t.state == TrialState.FAIL and not t.user_attrs.get(INTERRUPTED):
                c.failed += 1
            elif t.state == TrialState.RUNNING:
                c.running += 1
        return c

    def fail_stale(self) -> list[int]:
        """Trials left RUNNING by a killed process are closed as FAIL and marked interrupted.

        Interrupted trials do not count against the budget, so the resumed run replaces them;
        trials that finished (complete, pruned, or failed on their own) are never run again.
        Call only while no worker of this study is alive.
        """
        stale = self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        for t in stale:
            self.study._storage.set_trial_user_attr(t._trial_id, INTERRUPTED, True)
            self.study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
        return [t.number for t in stale]

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
        b = self.study.best_trial
        return b.number, dict(b.params), float(b.value)

    def best_config(self, space: dict[str, Any]) -> tuple[int, dict[str, Any], float] | None:
        """The best trial's number, its full params (sampled + fixed) and its value."""
        best = self.best()
        if best is None:
            return None
        number, sampled, value = best
        params = {k: (sampled[k] if is_dist(spec) else spec) for k, spec in space.items()}
        return number, params, value
