"""Samplers seeded per trial, so parallel workers never propose the same configuration.

Every worker process opens its own study with the suite's ``sampler_seed``. A sampler seeded once
per process therefore draws the same random numbers in every worker, and two workers that ask at
the same time propose the same configuration. Here each trial gets its own sampler, seeded from
``(sampler_seed, trial number)``: trial numbers are handed out by the storage, one per trial, so
concurrent trials draw different numbers, and one worker replays the same search from the same
``sampler_seed``. Samplers keep what they learn in the storage (TPE and QMC read the trials, CMA-ES
its pickled optimizer in trial system attrs), so a fresh sampler per trial loses nothing.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.exceptions import ExperimentalWarning
from optuna.samplers import BaseSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

SAMPLERS = ("tpe", "random", "cmaes", "qmc")
_KEEP = 256  # inner samplers of trials never told here (their worker died) are dropped past this


def trial_seed(sampler_seed: int, number: int) -> int:
    """A well-mixed 32-bit seed for one trial (numpy's SeedSequence, made for exactly this)."""
    return int(np.random.SeedSequence([sampler_seed % 2**32, number]).generate_state(1)[0])


class _TrialQMC(optuna.samplers.QMCSampler):
    """QMC point ``trial number`` of one shared (scrambled) sequence.

    Optuna's QMCSampler counts points in a study attr with a read-then-write that is not atomic,
    so two workers can read the same count and propose the same point. The trial number is
    unique per study, so using it as the point index makes concurrent proposals distinct.
    """

    def __init__(self, number: int, **kwargs: Any):
        super().__init__(**kwargs)
        self._number = number

    def _find_sample_id(self, study: Study, search_space: dict[str, BaseDistribution]) -> int:
        return self._number


def _inner(name: str, sampler_seed: int, number: int) -> BaseSampler:
    """The real Optuna sampler for trial ``number``."""
    seed = trial_seed(sampler_seed, number)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=4, constant_liar=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    if name == "qmc":
        with warnings.catch_warnings():  # QMCSampler is experimental; one warning per trial is noise
            warnings.simplefilter("ignore", ExperimentalWarning)
            return _TrialQMC(
                number,
                scramble=True,
                seed=sampler_seed % 2**32,  # one sequence for every worker, as QMC needs
                independent_sampler=optuna.samplers.RandomSampler(seed=seed),
            )
    raise ValueError(f"unknown sampler '{name}' (one of {', '.join(SAMPLERS)})")


class PerTrialSampler(BaseSampler):
    """Delegates every call about a trial to that trial's own seeded sampler.

    The inner sampler is built on first use for a trial number and dropped after ``after_trial``.
    ``asked`` is the number of the last trial this thread saw in ``before_trial``, so a caller
    can close a trial that Optuna created but whose sampling raised inside ``study.ask``.
    """

    def __init__(self, build: Callable[[int], BaseSampler]):
        self._build = build
        self._inner: dict[int, BaseSampler] = {}
        self._local = threading.local()

    @property
    def asked(self) -> int | None:
        return getattr(self._local, "asked", None)

    def forget_asked(self) -> None:
        self._local.asked = None

    def _for(self, trial: FrozenTrial) -> BaseSampler:
        sampler = self._inner.get(trial.number)
        if sampler is None:
            if len(self._inner) >= _KEEP:
                self._inner.pop(next(iter(self._inner)))
            sampler = self._inner[trial.number] = self._build(trial.number)
        return sampler

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._for(trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._for(trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        return self._for(trial).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._local.asked = trial.number
        self._for(trial).before_trial(study, trial)

    def after_trial(
        self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        try:
            self._for(trial).after_trial(study, trial, state, values)
        finally:
            self._inner.pop(trial.number, None)

    def reseed_rng(self) -> None:
        """Nothing to do: seeds come from trial numbers, never from a process's state."""


def make_sampler(name: str, sampler_seed: int) -> PerTrialSampler:
    """The sampler ``name`` seeded per trial from ``sampler_seed``."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler '{name}' (one of {', '.join(SAMPLERS)})")
    return PerTrialSampler(lambda number: _inner(name, sampler_seed, number))
