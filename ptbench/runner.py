"""``ptbench run``: suite → cells → one study per cell → trials on workers → final runs.

The main process plans and records (suite and cell runs); workers run jobs. Everything needed
to resume lives in the Optuna storage and the MLflow store, so running the same command again
after an interruption continues where it stopped and never repeats a finished trial.

Here: the options and their resolution against the suite, the dry-run plan, the suite's MLflow
run. Before any trial: ``preflight.py``; the loop over cells and jobs: ``schedule.py``; the tags
of what a run was made with: ``provenance.py``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from ptbench.errors import redact
from ptbench.executors import check_executor, make_executor
from ptbench.files import make_folder
from ptbench.jobs import NIGHT, OPENED, RunContext, open_record
from ptbench.preflight import (
    check_checkpoints,
    check_remade_weights,
    check_searched_here,
    check_suite_data,
    prepare_weights,
)
from ptbench.provenance import run_tags
from ptbench.schedule import plan_cell, schedule
from ptbench.suite import Cell, Suite, expand, suite_run_key
from ptbench.suite.execution import with_overrides


@dataclass
class RunOptions:
    dry_run: bool = False
    workers: int | None = None
    trials: int | None = None
    project_dir: str | None = None
    tracking_uri: str | None = None
    storage_url: str | None = None
    progress: str | bool = "auto"  # auto | bar | lines | none (see ptbench.progress)
    executor: str | None = None  # local | ray | inline (overrides execution.executor)
    address: str | None = None  # Ray cluster address (overrides execution.address)
    night: str = ""  # a nightly run's key: its own studies and runs (see ptbench.nightly)


@dataclass
class RunSummary:
    cells: int
    trials: dict[str, int]
    finals: dict[str, int]
    errors: list[str]
    seconds: float
    project_dir: Path
    tracking_uri: str
    suite_run: str = ""
    exp_id: str = ""


def resolve(suite: Suite, opts: RunOptions) -> tuple[Path, str, str, int, int]:
    from ptbench.search import default_storage_url
    from ptbench.tracking import default_tracking_uri

    project = Path(opts.project_dir or suite.project_dir).resolve()
    env = os.environ  # a scheduler's secrets: PTBENCH_TRACKING_URI, PTBENCH_STORAGE_URL ("" = unset)
    tracking = (
        opts.tracking_uri
        or env.get("PTBENCH_TRACKING_URI")
        or suite.tracking.uri
        or default_tracking_uri(project)
    )
    storage = (
        opts.storage_url
        or env.get("PTBENCH_STORAGE_URL")
        or suite.storage.url
        or default_storage_url(project)
    )
    return (
        project,
        tracking,
        storage,
        opts.workers or suite.execution.workers,
        opts.trials or suite.search.trials,
    )


def make_project(suite: Suite, opts: RunOptions) -> Path:
    """The project folder, made if missing. One that cannot be (a file in the way, a path not
    writable) is one line naming where it was set, before any store or cache is opened."""
    given = opts.project_dir or suite.project_dir
    named = f"--project-dir {given}" if opts.project_dir else f"project_dir: {given}"
    return make_folder(resolve(suite, opts)[0], named)


def plan_text(suite: Suite, opts: RunOptions) -> str:
    """What ``--dry-run`` prints: each cell with its hash, and the planned trials."""
    cells = expand(suite)
    _, _, _, workers, trials = resolve(suite, opts)
    _execution(suite, opts)  # --address with a local executor: refused before any plan is shown
    lines = [
        f"suite {suite.name} v{suite.version}: {len(cells)} cells × {trials} trials "
        f"+ {len(suite.seeds)} final run(s) each = {len(cells) * (trials + len(suite.seeds))} "
        f"runs on {workers} worker(s)"
    ]
    for c in cells:
        lines.append(f"  {c.hash}  {c.describe()}")
    if suite.axes.select is not None:
        sel = suite.axes.select
        lines.append(
            f"select: per task, only the top {sel.top} pretrained backbones by {sel.by} run "
            "(scored from frozen features when the run starts; random-init controls always run)"
        )
    return "\n".join(lines)


def run_suite(suite: Suite, opts: RunOptions, suite_text: str | None = None) -> RunSummary:
    """Run (or resume) every cell of ``suite``; what is finished in the stores is not run again."""
    from ptbench.search import check_storage
    from ptbench.tracking import Tracker

    t0 = time.perf_counter()
    project, tracking_uri, storage_url, workers, n_trials = resolve(suite, opts)
    execution = _execution(suite, opts)  # a conflicting --address: before anything is made
    make_project(suite, opts)
    check_storage(storage_url)
    tracker = Tracker(tracking_uri)
    tracker.check()
    check_executor(execution)  # a missing Ray or a dead address: now, not after pre-training
    cells = [replace(c, night=opts.night) for c in expand(suite)]
    exp_id = tracker.experiment(suite.name, project / "artifacts")
    check_searched_here(cells, tracker, exp_id, storage_url)  # another storage: before any work
    check_checkpoints(suite)  # cheap: before the data is loaded
    check_suite_data(cells)
    prepare_weights(suite, project, tracking_uri)
    check_remade_weights(suite, project, tracker, opts.night)
    executor = make_executor(execution, workers)
    tags = run_tags() | ({NIGHT: opts.night} if opts.night else {})
    ctx = _context(suite, project, tracking_uri, storage_url, exp_id, tags)
    suite_run = open_suite_run(tracker, ctx, suite, cells, n_trials, workers, suite_text)
    if suite.axes.select is not None:  # the funnel: only the top backbones per task go on
        from ptbench.rank import select_cells

        cells, selection = select_cells(suite, cells, project, tracking_uri, suite_run, tracker)
        if opts.progress != "none":
            print("\n".join(selection.lines()), flush=True)
    # cells this run trains are reopened (or left to the driver that runs them) by plan_cell; only
    # cells no longer in the grid, or dropped by the funnel, are closed here: killing every
    # RUNNING cell run marked a live second driver's cells interrupted
    tracker.kill_stale(ctx.exp_id, suite_run, keep_cells={c.hash for c in cells})
    plans = {c.hash: plan_cell(tracker, ctx, c, suite_run, n_trials, suite.seeds) for c in cells}
    tally = schedule(plans, ctx, tracker, executor, opts.progress)
    tracker.log_metrics(suite_run, {f"trials_{k}": v for k, v in tally.trials.items()})
    tracker.end(suite_run, "FINISHED")
    seconds = time.perf_counter() - t0
    return RunSummary(
        len(cells),
        tally.trials,
        tally.finals,
        tally.errors,
        seconds,
        project,
        tracking_uri,
        suite_run,
        exp_id,
    )


def open_suite_run(
    tracker, ctx: RunContext, suite: Suite, cells: list[Cell], n_trials: int, workers: int, suite_text
) -> str:
    """The suite's MLflow run (made once, found again on resume) with its settings and files."""
    night = ctx.tags.get(NIGHT, "")
    key = suite_run_key(cells, night)
    record = f"{suite.name}-suite-{key['ptbench.suite_hash']}" + (f"@{night}" if night else "")
    suite_run = open_record(tracker, ctx, record, f"{suite.name} {night}".strip(), key, ctx.tags)
    tracker.log_params(suite_run, {"suite": suite.name, "suite_version": suite.version, "cells": len(cells)})
    # tags, not params: a resume may raise --trials, add a seed or run on another machine's workers
    settings = {
        "trials_per_cell": n_trials,
        "seeds": suite.seeds,
        "sampler": suite.search.sampler,
        "pruner": suite.search.pruner,
        "workers": workers,
    }
    tracker.set_tags(suite_run, {f"ptbench.{k}": v for k, v in settings.items()})
    if night:
        tracker.set_tags(suite_run, {OPENED: int(time.time() * 1000)})
    # both files may name a server's URL with its password (storage.url, tracking.uri)
    resolved = yaml.safe_dump(suite.model_dump(mode="json"), sort_keys=False)
    tracker.log_text(suite_run, redact(resolved), "suite.resolved.yaml")
    if suite_text is not None:
        tracker.log_text(suite_run, redact(suite_text), "suite.yaml")
    return suite_run


def _execution(suite: Suite, opts: RunOptions):
    """The suite's ``execution`` with the command line's overrides (a Ray address the executor
    would not read is refused: it was silently ignored)."""
    return with_overrides(suite.execution, opts.executor, opts.address)


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
        lease_interval=suite.storage.heartbeat_interval,
        lease_grace=suite.storage.grace_period,
    )
