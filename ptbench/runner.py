"""``ptbench run``: suite → cells → one study per cell → trials on workers → final runs.

The main process plans and records (suite and cell runs); workers run jobs. Everything needed
to resume lives in the Optuna storage and the MLflow store, so running the same command again
after an interruption continues where it stopped and never repeats a finished trial.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from ptbench import __version__
from ptbench.hashing import stable_hash
from ptbench.jobs import JobResult, RunContext, cell_params, final_run, open_study, search_trial
from ptbench.progress import make_progress
from ptbench.suite import Cell, Suite, expand

PACKAGES = ("torch", "torchvision", "torchaudio", "timm", "transformers", "mlflow", "optuna")


@dataclass
class RunOptions:
    dry_run: bool = False
    workers: int | None = None
    trials: int | None = None
    project_dir: str | None = None
    tracking_uri: str | None = None
    storage_url: str | None = None
    progress: str | bool = "auto"  # auto | bar | lines | none (see ptbench.progress)


@dataclass
class CellPlan:
    cell: Cell
    todo_trials: int
    done_trials: int
    run_id: str = ""
    finals_todo: list[int] = field(default_factory=list)


@dataclass
class RunSummary:
    cells: int
    trials: dict[str, int]
    finals: dict[str, int]
    errors: list[str]
    seconds: float
    project_dir: Path
    tracking_uri: str


def resolve(suite: Suite, opts: RunOptions) -> tuple[Path, str, str, int, int]:
    from ptbench.search import default_storage_url
    from ptbench.tracking import default_tracking_uri

    project = Path(opts.project_dir or suite.project_dir).resolve()
    tracking = opts.tracking_uri or suite.tracking.uri or default_tracking_uri(project)
    storage = opts.storage_url or suite.storage.url or default_storage_url(project)
    return (
        project,
        tracking,
        storage,
        opts.workers or suite.execution.workers,
        opts.trials or suite.search.trials,
    )


def plan_text(suite: Suite, opts: RunOptions) -> str:
    """What ``--dry-run`` prints: each cell with its hash, and the planned trials."""
    cells = expand(suite)
    _, _, _, workers, trials = resolve(suite, opts)
    lines = [
        f"suite {suite.name} v{suite.version}: {len(cells)} cells × {trials} trials "
        f"+ {len(suite.seeds)} final run(s) each = {len(cells) * (trials + len(suite.seeds))} "
        f"runs on {workers} worker(s)"
    ]
    for c in cells:
        lines.append(f"  {c.hash}  {c.describe()}")
    return "\n".join(lines)


def _git_commit() -> str:
    try:
        return (
            subprocess.run(
                ["git", "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                timeout=5,
                cwd=Path(__file__).parent,
            ).stdout.strip()
            or "unknown"
        )
    except Exception:
        return "unknown"


def _run_tags() -> dict[str, str]:
    tags = {"ptbench.version": __version__, "ptbench.git_commit": _git_commit()}
    for pkg in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            tags[f"ptbench.pkg.{pkg}"] = metadata.version(pkg)
    return tags


def run_suite(suite: Suite, opts: RunOptions, suite_text: str | None = None) -> RunSummary:
    """Run (or resume) every cell of ``suite``; what is finished in the stores is not run again."""
    from ptbench.search import check_storage
    from ptbench.tracking import Tracker

    t0 = time.perf_counter()
    project, tracking_uri, storage_url, workers, n_trials = resolve(suite, opts)
    project.mkdir(parents=True, exist_ok=True)
    check_storage(storage_url)
    tracker = Tracker(tracking_uri)
    tracker.check()
    cells = expand(suite)
    check_suite_data(cells)
    prepare_weights(suite, project, tracking_uri)

    exp_id = tracker.experiment(suite.name, project / "artifacts")
    tags = _run_tags()
    suite_run = _open_suite_run(tracker, exp_id, suite, cells, tags, n_trials, workers, suite_text)
    ctx = _context(suite, project, tracking_uri, storage_url, exp_id, tags)
    plans = {c.hash: _plan_cell(tracker, ctx, c, suite_run, n_trials, suite.seeds) for c in cells}
    summary = RunSummary(
        len(cells),
        {"complete": 0, "pruned": 0, "fail": 0},
        {"finished": 0, "fail": 0},
        [],
        0.0,
        project,
        tracking_uri,
    )
    _schedule(plans, ctx, tracker, summary, suite.execution.devices, workers, opts.progress)
    tracker.log_metrics(suite_run, {f"trials_{k}": v for k, v in summary.trials.items()})
    tracker.end(suite_run, "FINISHED")
    summary.seconds = time.perf_counter() - t0
    return summary


def _open_suite_run(
    tracker, exp_id: str, suite: Suite, cells: list[Cell], tags, n_trials: int, workers: int, suite_text
) -> str:
    """The suite's MLflow run (made once, found again on resume) with its settings and files."""
    suite_key = stable_hash([c.hash for c in cells])
    suite_run = tracker.ensure_run(
        exp_id, suite.name, {"ptbench.kind": "suite", "ptbench.suite_hash": suite_key}, tags
    )
    tracker.log_params(
        suite_run,
        {
            "suite": suite.name,
            "suite_version": suite.version,
            "cells": len(cells),
            "trials_per_cell": n_trials,
            "seeds": suite.seeds,
            "sampler": suite.search.sampler,
            "pruner": suite.search.pruner,
            "workers": workers,
        },
    )
    resolved = yaml.safe_dump(suite.model_dump(mode="json"), sort_keys=False)
    tracker.log_text(suite_run, resolved, "suite.resolved.yaml")
    if suite_text is not None:
        tracker.log_text(suite_run, suite_text, "suite.yaml")
    tracker.kill_stale(exp_id, suite_run)
    return suite_run


def _context(
    suite: Suite, project: Path, tracking_uri: str, storage_url: str, exp_id: str, tags: dict[str, str]
) -> RunContext:
    return RunContext(
        tracking_uri=tracking_uri,
        storage_url=storage_url,
        exp_id=exp_id,
        sampler=suite.search.sampler,
        pruner=suite.search.pruner,
        sampler_seed=suite.search.sampler_seed,
        search_seed=suite.seeds[0],
        evaluation=tuple(suite.evaluation),
        cache_dir=str(project / "cache"),
        weights_dir=str(project / "weights"),
        robustness=suite.robustness.model_dump(),
        tags=tags,
    )


def _plan_cell(
    tracker, ctx: RunContext, cell: Cell, suite_run: str, n_trials: int, seeds: list[int]
) -> CellPlan:
    """What is left of one cell: its trials not yet finished and its seeds without a final run.
    Runs and trials left running by an interrupted run are closed first, so they count as failed."""
    run_id = tracker.ensure_run(
        ctx.exp_id,
        cell.describe(),
        {"ptbench.kind": "cell", "ptbench.cell_hash": cell.hash},
        ctx.tags,
        parent=suite_run,
    )
    tracker.log_params(run_id, cell_params(cell))
    tracker.kill_stale(ctx.exp_id, run_id)
    study = open_study(ctx, cell)
    study.fail_stale()
    done = study.counts().finished
    plan = CellPlan(cell, max(0, n_trials - done), done, run_id)
    finished_seeds = {
        int(r.data.tags.get("ptbench.seed", -1))
        for r in tracker.search(
            ctx.exp_id,
            f"tags.`mlflow.parentRunId` = '{run_id}' and "
            "tags.`ptbench.kind` = 'final' and "
            "attributes.status = 'FINISHED'",
        )
    }
    plan.finals_todo = [s for s in seeds if s not in finished_seeds]
    return plan


def _schedule(
    plans: dict[str, CellPlan], ctx: RunContext, tracker, summary, devices, workers: int, mode
) -> None:
    """Run every plan's trials, then (once a cell's search is over) its final runs, on local
    workers; a cell is closed as soon as nothing of it is left. Ctrl-C stops the workers at once."""
    from ptbench.executors import LocalExecutor, resolve_devices

    executor = LocalExecutor(workers, resolve_devices(devices, workers))
    total = sum(p.todo_trials + len(p.finals_todo) for p in plans.values())
    progress = make_progress(total, len(plans), mode)
    pending: dict[Future, str] = {}
    try:
        for plan in plans.values():
            for _ in range(plan.todo_trials):
                pending[executor.submit(search_trial, plan.cell, plan.run_id, ctx)] = plan.cell.hash
            if plan.todo_trials == 0:
                _submit_finals(plan, ctx, executor, pending, tracker)
        for plan in plans.values():
            if not plan.todo_trials and not plan.finals_todo:
                _close_cell(plan, tracker, ctx)
                progress.cell_done()
        progress.running(min(workers, len(pending)))
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                plan = plans[pending.pop(fut)]
                _finished(plan, fut.result(), ctx, executor, pending, tracker, summary, progress)
            progress.running(min(workers, len(pending)))
    except KeyboardInterrupt:
        executor.shutdown(cancel=True)
        progress.stop()
        raise
    executor.shutdown()
    progress.stop()


def _finished(plan: CellPlan, res: JobResult, ctx, executor, pending, tracker, summary, progress) -> None:
    """Account for one finished job: a cell whose search is over gets its final runs; a cell
    with nothing left running or to run is closed."""
    _count(summary, res)
    progress.advance(res, plan.cell.describe(), plan.cell.objective["direction"])
    if res.kind == "trial":
        plan.todo_trials -= 1
        if plan.todo_trials == 0:
            _submit_finals(plan, ctx, executor, pending, tracker)
    else:
        plan.finals_todo.remove(res.seed)
    if plan.todo_trials == 0 and not plan.finals_todo and not _busy(plan, pending):
        _close_cell(plan, tracker, ctx)
        progress.cell_done()


def check_suite_data(cells: list[Cell]) -> None:
    """Load every task once before any trial: bad data (a truncated image, a CSV row without a
    label) ends the run here with one line per problem naming the file (exit 2), instead of
    failing every trial; the load also warms the decode and split caches the workers read."""
    from ptbench.errors import SuiteError
    from ptbench.tasks import check_data

    problems = check_data(c.task for c in cells)
    if problems:
        raise SuiteError(problems)


def prepare_weights(suite: Suite, project: Path, tracking_uri: str) -> None:
    """Make (or reuse) every inline pre-training; check that named 'run' weights exist."""
    from ptbench.backbones.build import run_weights_path
    from ptbench.pretrain.run import pretrain
    from ptbench.suite.grid import pretrain_spec

    for bb in suite.axes.backbones:
        if bb.weights != "run":
            continue
        if bb.pretrain is not None:
            spec = pretrain_spec(bb)
            res = pretrain(spec, project, tracking_uri, bb.id or spec.default_name)
            state = "reused" if res.reused else f"made in {res.meta['seconds']:.0f}s"
            print(f"pretrained weights {res.name}: {state}", flush=True)
        else:
            run_weights_path(project / "weights", bb.id)


def _busy(plan: CellPlan, pending: dict[Future, str]) -> bool:
    return plan.cell.hash in pending.values()


def _submit_finals(plan: CellPlan, ctx: RunContext, executor, pending, tracker) -> None:
    study = open_study(ctx, plan.cell)
    best = study.best_config(plan.cell.space)
    if best is None:
        plan.finals_todo = []
        tracker.set_tags(plan.run_id, {"ptbench.state": "no completed trial"})
        return
    number, params, _ = best
    for seed in plan.finals_todo:
        fut = executor.submit(final_run, plan.cell, plan.run_id, ctx, params, seed, number)
        pending[fut] = plan.cell.hash


def _close_cell(plan: CellPlan, tracker, ctx: RunContext) -> None:
    study = open_study(ctx, plan.cell)
    c = study.counts()
    metrics: dict[str, Any] = {
        "trials_complete": c.complete,
        "trials_pruned": c.pruned,
        "trials_failed": c.failed,
    }
    best = study.best_config(plan.cell.space)
    if best is not None:
        metrics["best_trial"] = best[0]
        metrics[f"best_{plan.cell.objective['metric']}"] = best[2]
        tracker.log_params(plan.run_id, {f"best.{k}": v for k, v in best[1].items()})
    tracker.log_metrics(plan.run_id, metrics)
    tracker.end(plan.run_id, "FINISHED" if best is not None else "FAILED")


def _count(summary: RunSummary, res: JobResult) -> None:
    bucket = summary.trials if res.kind == "trial" else summary.finals
    bucket[res.state] = bucket.get(res.state, 0) + 1
    if res.error:
        summary.errors.append(f"{res.kind} {res.cell_hash}#{res.number}: {res.error}")
