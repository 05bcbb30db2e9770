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
from ptbench.search.space import is_dist, suggest

optuna.logging.set_verbosity(optuna.logging.WARNING)

INTERRUPTED = "ptbench_interrupted"


class Pruned(Exception):
    """Raised from the per-epoch callback when the pruner stops a trial."""


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


def _sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    return {
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed, n_startup_trials=4),
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=seed),
        "qmc": lambda: optuna.samplers.QMCSampler(seed=seed),
    }[name]()


def _pruner(name: str) -> optuna.pruners.BasePruner:
    return {
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
        "hyperband": lambda: optuna.pruners.HyperbandPruner(),
        "successive_halving": lambda: optuna.pruners.SuccessiveHalvingPruner(),
        "none": lambda: optuna.pruners.NopPruner(),
    }[name]()


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
        self.study = optuna.create_study(
            storage=storage_for(storage_url),
            study_name=name,
            direction=direction,
            sampler=_sampler(sampler, seed),
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
        trial = self.study.ask()
        return trial, suggest(trial, space)

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

    def tell(self, trial: optuna.Trial, value: float | None, state: str) -> None:
        st = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "fail": TrialState.FAIL}[state]
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
