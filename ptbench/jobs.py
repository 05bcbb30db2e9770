"""The two jobs a worker runs — a search trial and a final run — each recorded in MLflow.

A job owns its whole record: it asks Optuna for params, trains through ``run_trial``, reports
every epoch, and closes both the Optuna trial and the MLflow run, whatever happens inside.
An exception inside a trial makes a FAILED trial (exception recorded), never a dead suite.
Where a job runs (``device``) and how many CPU threads it may use (``threads``, 0 = as set) are
its arguments, handed in by the executor that runs it: a job never reads an executor's state.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from ptbench.cell import Cell

NIGHT = "ptbench.night"  # tag of every run of a nightly suite run: the night's key
# a night's cell run: the suite run that last planned it, and a suite run: when it was last opened;
# a night run again after an edit is its newest grid, not every cell it ever had (nightly/history)
SUITE_RUN, OPENED = "ptbench.suite_run", "ptbench.opened"
BEST = "ptbench.best."  # tags of a cell run: its best configuration, one per hyperparameter


@dataclass(frozen=True)
class RunContext:
    """What every job needs besides its cell; picklable, sent to workers."""

    tracking_uri: str
    storage_url: str
    exp_id: str
    sampler: str
    pruner: str
    sampler_seed: int
    search_seed: int
    evaluation: tuple[str, ...]
    cache_dir: str
    weights_dir: str
    robustness: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    lease_interval: int = 10  # seconds between a running trial's heartbeats
    lease_grace: int = 60  # seconds without a heartbeat after which a trial is dead

    @property
    def eval_key(self) -> str:
        from ptbench.finals import evaluation_key

        return evaluation_key(self.evaluation, self.robustness)

    @property
    def family_tags(self) -> dict[str, str]:
        """``ptbench.eval_key.corr`` and ``.adv``: what the nightly comparison needs per metric."""
        from ptbench.finals import EVAL_KEY, family_keys

        return {
            f"{EVAL_KEY}.{fam}": key for fam, key in family_keys(self.evaluation, self.robustness).items()
        }

    def leases(self):
        from ptbench.search import LeaseConfig

        return LeaseConfig(self.lease_interval, self.lease_grace)


@dataclass
class JobResult:
    kind: str
    cell_hash: str
    state: str  # complete | pruned | fail | finished | surplus (budget full) | lost (declared dead)
    number: int = -1
    seed: int = 0
    value: float | None = None
    error: str = ""
    job_seconds: float = 0.0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0


_TRACKERS: dict[str, Any] = {}
_STUDIES: dict[tuple[str, str], Any] = {}


def _tracker(uri: str):
    from ptbench.tracking import Tracker

    if uri not in _TRACKERS:
        _TRACKERS[uri] = Tracker(uri)
    return _TRACKERS[uri]


def open_study(ctx: RunContext, cell: Cell):
    from ptbench.search import CellStudy

    key = (ctx.storage_url, cell.study_name)
    if key not in _STUDIES:
        _STUDIES[key] = CellStudy(
            ctx.storage_url,
            cell.study_name,
            cell.objective["direction"],
            ctx.sampler,
            ctx.pruner,
            ctx.sampler_seed,
            ctx.leases(),
        )
    return _STUDIES[key]


_CLAIMS: dict[tuple[str, str], Any] = {}


def open_claims(ctx: RunContext, cell: Cell):
    from ptbench.search import FinalClaims

    key = (ctx.storage_url, cell.study_name, ctx.eval_key)
    if key not in _CLAIMS:  # a seed is claimed, and done, per evaluation settings
        _CLAIMS[key] = FinalClaims(ctx.storage_url, cell.study_name, ctx.leases(), ctx.eval_key)
    return _CLAIMS[key]


def open_record(tracker, ctx: RunContext, record: str, name: str, key: dict, tags: dict, parent=None) -> str:
    """The MLflow run that records a suite or a cell: found by its key tags or made, and the same
    run for every driver, agreed on through the Optuna storage (``search.records``)."""
    from ptbench.search import elect_record

    def elect(run_id: str) -> str:
        alive = functools.partial(tracker.alive, exp_id=ctx.exp_id)
        return elect_record(ctx.storage_url, record, run_id, alive, ctx.leases())

    return tracker.ensure_run(ctx.exp_id, name, key, tags, parent, elect=elect)


def cell_params(cell: Cell) -> dict[str, Any]:
    """The cell's resolved settings as flat MLflow params."""
    out: dict[str, Any] = {"cell_hash": cell.hash, "suite": cell.suite, "suite_version": cell.suite_version}
    for axis in ("backbone", "task", "strategy", "regularizer"):
        out[axis] = cell.labels[axis]
    out["backbone.name"] = cell.backbone["name"]
    out["backbone.weights"] = cell.labels["weights"]  # e.g. package, none, run:mlm/fortunes_topics
    for k, v in cell.backbone.get("params", {}).items():
        out[f"backbone.params.{k}"] = v
    out["task.name"] = cell.task["name"]
    for k, v in cell.task.get("params", {}).items():
        out[f"task.params.{k}"] = v
    out["strategy.name"] = cell.strategy["name"]
    out["objective.metric"] = cell.objective["metric"]
    out["objective.direction"] = cell.objective["direction"]
    for k, v in cell.space.items():
        out[f"space.{k}"] = v
    return out


@dataclass(frozen=True)
class Placement:
    """Where a job runs: its device and its CPU thread budget (0: leave the process's setting)."""

    device: str = "cpu"
    threads: int = 0


def _config(cell: Cell, params: dict, seed: int, evaluate: tuple, ctx: RunContext, where: Placement):
    from ptbench.trial import TrialConfig

    return TrialConfig(
        cell.backbone,
        cell.task,
        cell.strategy,
        cell.regularizers,
        params,
        seed=seed,
        device=where.device,
        threads=where.threads,
        evaluate=evaluate,
        cache_dir=ctx.cache_dir,
        weights_dir=ctx.weights_dir,
        robustness=ctx.robustness,
        objective=dict(cell.objective),
    )


def _record_failure(tracker, run_id: str, err: BaseException) -> str:
    from ptbench.errors import first_line

    msg = f"{type(err).__name__}: {first_line(err)}"
    tracker.set_tags(run_id, {"ptbench.state": "failed", "ptbench.error": msg})
    tracker.log_text(run_id, "".join(traceback.format_exception(err)), "error.txt")
    tracker.end(run_id, "FAILED")
    return msg


def _open_run(
    tracker,
    ctx: RunContext,
    cell: Cell,
    cell_run: str,
    name: str,
    kind: str,
    seed: int,
    params: dict[str, Any],
    extra_tags: dict[str, Any],
    device: str,
) -> str:
    """A trial or final run under its cell run, with the tags and params every job records."""
    tags = {
        **ctx.tags,
        "ptbench.kind": kind,
        "ptbench.cell_hash": cell.hash,
        "ptbench.seed": seed,
        "ptbench.device": device,
        **extra_tags,
    }
    run_id = tracker.start_run(ctx.exp_id, name, parent=cell_run, tags=tags)
    tracker.log_params(run_id, cell_params(cell) | {f"hp.{k}": v for k, v in params.items()} | {"seed": seed})
    return run_id


def search_trial(
    cell: Cell,
    cell_run: str,
    ctx: RunContext,
    job_id: str = "",
    budget: int = 1 << 30,
    *,
    device: str = "cpu",
    threads: int = 0,
) -> JobResult:
    """One Optuna trial of ``cell``: validation data only.

    Whatever goes wrong (the sampler raising at ask, the MLflow run not opening, training) ends
    as one FAILED trial that counts against the cell's budget and a ``fail`` result that says
    why. It never raises, so one bad trial cannot stop the suite. When the cell's ``budget`` is
    already taken (another driver got there first), it runs nothing: result ``surplus``.
    """
    from ptbench.search import AskFailed, error_text

    start, where = time.perf_counter(), Placement(device, threads)
    res = JobResult("trial", cell.hash, "fail")
    try:
        tracker = _tracker(ctx.tracking_uri)
        study = open_study(ctx, cell)
        trial, params = _ask_in_budget(study, cell, job_id, budget)
        if trial is None:
            res.state = "surplus"
            return _done(res, start)
    except AskFailed as err:
        res.number, res.error = -1 if err.number is None else err.number, err.error
        _record_ask_failure(ctx, cell, cell_run, res, err.__cause__ or err, device)
        return _done(res, start)
    except Exception as err:  # the tracker or the study could not be opened: nothing to record in
        res.error = error_text(err)
        return _done(res, start)
    res.number, run_id = trial.number, ""
    try:
        run_id = _open_run(
            tracker,
            ctx,
            cell,
            cell_run,
            f"trial-{trial.number:03d}",
            "trial",
            ctx.search_seed,
            params,
            {"ptbench.trial_number": trial.number, "ptbench.job": job_id},
            device,
        )
        with study.beating(trial):
            _train_trial(study, trial, params, tracker, run_id, cell, ctx, res, start, where)
    except Exception as err:  # the run did not open, or recording the outcome failed
        res.state, res.value, res.error = "fail", None, res.error or error_text(err)
        with contextlib.suppress(Exception):  # storage down: the next run's fail_stale closes it
            study.tell(trial, None, "fail", error=res.error)
        if run_id:
            with contextlib.suppress(Exception):  # MLflow may be what failed
                _record_failure(tracker, run_id, err)
    return _done(res, start)


def _ask_in_budget(study, cell: Cell, job_id: str, budget: int):
    """A new trial bound to ``job_id``, or (None, {}) when the budget is taken: not asked at all
    when full, or asked and closed as surplus when another driver's ask won the race."""
    if study.full(budget):
        return None, {}
    trial, params = study.ask(cell.space)
    study.bind(trial, job_id)
    if not study.in_budget(trial.number, budget):
        study.mark_surplus(trial)
        return None, {}
    return trial, params


def _done(res: JobResult, start: float) -> JobResult:
    res.job_seconds = time.perf_counter() - start
    return res


def _record_ask_failure(
    ctx: RunContext, cell: Cell, cell_run: str, res: JobResult, err: BaseException, device: str
) -> None:
    """A FAILED trial run in MLflow for a trial whose params could not be sampled."""
    from ptbench.search import error_text

    name = f"trial-{res.number:03d}" if res.number >= 0 else "trial-failed-at-ask"
    extra = {"ptbench.trial_number": res.number} if res.number >= 0 else {}
    try:
        tracker = _tracker(ctx.tracking_uri)
        run_id = _open_run(tracker, ctx, cell, cell_run, name, "trial", ctx.search_seed, {}, extra, device)
        _record_failure(tracker, run_id, err)
    except Exception as track_err:  # the Optuna record stands; say why MLflow has none
        res.error += f" (no MLflow run: {error_text(track_err)})"


def _train_trial(
    study, trial, params, tracker, run_id: str, cell: Cell, ctx: RunContext, res, start, where: Placement
) -> None:
    """Train ``params``, report every epoch for pruning, and close the Optuna trial and MLflow run."""
    from ptbench.search import Pruned, error_text
    from ptbench.trial import run_trial

    metric = cell.objective["metric"]
    report = study.reporter(trial, metric)
    try:
        with tracker.epoch_log(run_id) as log_epoch:  # written, too, when pruned or failed

            def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
                log_epoch(metrics, epoch)
                report(epoch, metrics)

            out = run_trial(
                _config(cell, params, ctx.search_seed, (), ctx, where),
                on_epoch,
                on_ready=lambda info: _log_info(tracker, run_id, info),
            )
        value = out.metrics.get(metric)
        if value is None or not math.isfinite(value):
            raise ValueError(f"objective '{metric}' is missing or not finite: {value}")
        res.train_seconds = out.train_seconds
        if _declared_dead(study.is_running(trial), tracker, run_id, res):
            return
        res.state, res.value = "complete", float(value)
        tracker.log_metrics(
            run_id,
            {
                "train_seconds": out.train_seconds,
                "encode_seconds": out.encode_seconds,
                "job_seconds": time.perf_counter() - start,
                "epochs_run": len(out.history),
                # what the search ranked: the kept epoch's (early stopping), not the last one's
                "objective": float(value),
                **{k: out.metrics[k] for k in ("best_epoch", "stopped_epoch") if k in out.metrics},
            },
            step=len(out.history),
        )
        tracker.set_tags(run_id, {"ptbench.state": "complete"})
        # the MLflow run is closed before the trial: while the trial runs its job counts as
        # alive, so no other driver's reaper can mark this run KILLED between the two writes
        tracker.end(run_id, "FINISHED")
        study.tell(trial, res.value, "complete")
    except Pruned as p:
        if _declared_dead(study.is_running(trial), tracker, run_id, res):
            return
        res.state = "pruned"
        tracker.set_tags(run_id, {"ptbench.state": "pruned", "ptbench.pruned": str(p)})
        tracker.end(run_id, "KILLED")
        study.tell(trial, None, "pruned")
    except Exception as err:
        if _declared_dead(study.is_running(trial), tracker, run_id, res):
            return
        res.state, res.value, res.error = "fail", None, error_text(err)
        _record_failure(tracker, run_id, err)
        study.tell(trial, None, "fail", error=res.error)


def _declared_dead(alive: bool, tracker, run_id: str, res: JobResult) -> bool:
    """A job whose trial or claim was declared dead meanwhile (its lease expired, so another
    driver failed it and retried it) must not land a result: its run is closed as KILLED."""
    if alive:
        return False
    res.state, res.value = "lost", None
    tracker.set_tags(run_id, {"ptbench.state": "declared dead", "ptbench.error": "lease expired"})
    tracker.end(run_id, "KILLED")
    return True


def _log_info(tracker, run_id: str, info: dict[str, Any]) -> None:
    tracker.set_tags(
        run_id, {f"ptbench.{k}": v for k, v in info.items() if k not in ("trainable_params", "total_params")}
    )
    tracker.log_metrics(
        run_id, {"trainable_params": info["trainable_params"], "total_params": info["total_params"]}
    )
