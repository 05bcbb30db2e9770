"""Leases: a running trial is alive while its worker keeps beating, and dead once it stops.

Why: a worker killed by the out-of-memory killer, or a driver killed with its workers, leaves
trials RUNNING in the storage forever. Nobody may fail another process's RUNNING trial on
sight (a second driver on the same suite would kill the first one's live trials), so a trial
is failed only when its heartbeat is older than the grace period, and then retried (at most
MAX_RETRY times) with the same parameters by Optuna's ``RetryHeartbeatStaleTrialCallback``.

On an RDB storage (PostgreSQL, SQLite) these are Optuna's own heartbeats: ``record_heartbeat``
and ``fail_stale_trials``; Optuna starts its heartbeat thread only inside ``study.optimize``,
so with ask/tell the worker beats here. The journal file has no heartbeat of its own: the
worker writes the time into a trial system attribute instead, to the same effect.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState

BEATEN = "ptbench_beaten"  # RDB storages: the trial's first heartbeat is recorded
BEAT = "ptbench_beat"  # journal storage: the time of the trial's last heartbeat
MAX_RETRY = 2  # a configuration that kills its worker three times counts as one failed trial


@dataclass(frozen=True)
class LeaseConfig:
    """How often a running trial beats, and how long without a beat makes it dead."""

    interval: int = 10
    grace: int = 60


class _Retry(RetryHeartbeatStaleTrialCallback):
    """Optuna's retry, without ptbench's per-job attributes. Optuna's callback copies every
    system attr onto the retry: the dead job's id (the retry looked like that job's) and the
    first-beat mark, so a retry whose worker died before its own first beat was never failed
    and stayed RUNNING for ever. The retry keeps Optuna's own attrs (failed_trial,
    retry_history), params, distributions and user attrs."""

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        trial = copy.deepcopy(trial)  # the callback appends to retry_history in place
        trial.system_attrs = {k: v for k, v in trial.system_attrs.items() if not k.startswith("ptbench_")}
        super().__call__(study, trial)


def retry_callback() -> RetryHeartbeatStaleTrialCallback:
    return _Retry(max_retry=MAX_RETRY)


def _uses_optuna_heartbeat(storage) -> bool:
    return isinstance(storage, BaseHeartbeat) and is_heartbeat_enabled(storage)


def beat(study: optuna.Study, trial_id: int, first: bool = False) -> None:
    storage = study._storage
    if _uses_optuna_heartbeat(storage):
        storage.record_heartbeat(trial_id)
        if first:  # Optuna never finds a trial stale that has no heartbeat: say it has one
            storage.set_trial_system_attr(trial_id, BEATEN, True)
    else:
        storage.set_trial_system_attr(trial_id, BEAT, time.time())


@contextlib.contextmanager
def beating(study: optuna.Study, trial_id: int, interval: float) -> Iterator[None]:
    """Beat for ``trial_id`` now and every ``interval`` seconds until the block ends."""
    beat(study, trial_id)
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            with contextlib.suppress(Exception):  # a storage hiccup: the next beat may land
                beat(study, trial_id)

    thread = threading.Thread(target=loop, name=f"ptbench-beat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _last_seen(t: FrozenTrial) -> float:
    start = t.datetime_start.timestamp() if t.datetime_start else 0.0
    return max(float(t.system_attrs.get(BEAT, 0.0)), start)


def fail_stale(study: optuna.Study, grace: float, retry: bool = True) -> list[int]:
    """Fail the RUNNING trials whose worker stopped beating; with ``retry``, each is enqueued
    again with the same parameters. Returns the numbers of the trials failed here."""
    storage = study._storage
    before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
    if _uses_optuna_heartbeat(storage):
        optuna.storages.fail_stale_trials(study)  # its callback (retry) is the storage's
        # a worker that died between creating its trial and its first heartbeat left a trial
        # Optuna never fails: RUNNING for ever, the cell's search never over
        now = time.time()
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if not t.system_attrs.get(BEATEN) and now - _last_seen(t) > grace:
                fail_trial(study, t._trial_id, retry)
        after = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}
        return sorted(before - after)
    now, failed = time.time(), []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if now - _last_seen(t) > grace and fail_trial(study, t._trial_id, retry):
            failed.append(t.number)
    return failed


def fail_trial(study: optuna.Study, trial_id: int, retry: bool = True) -> bool:
    """Fail one RUNNING trial (its worker is known dead) and, with ``retry``, enqueue it again.
    False when it had finished meanwhile (another process got there first)."""
    try:
        if not study._storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
            return False
    except optuna.exceptions.UpdateFinishedTrialError:
        return False
    if retry:  # the callback copies the trial: a journal storage hands out its own object, which
        # would then list itself as retried in this process
        retry_callback()(study, study._storage.get_trial(trial_id))
    return True
