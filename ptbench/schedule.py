"""The run loop: what is left of each cell, its trials and then its final runs submitted to
local workers, and each cell closed (best config and counts logged) once nothing of it is left.
Everything it decides from is in the Optuna storage and the MLflow store, so a rerun resumes."""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any

from ptbench.jobs import JobResult, RunContext, cell_params, final_run, open_study, search_trial
from ptbench.progress import make_progress
from ptbench.suite import Cell


@dataclass
class CellPlan:
    cell: Cell
    todo_trials: int
    done_trials: int
    run_id: str = ""
    finals_todo: list[int] = field(default_factory=list)


@dataclass
class Tally:
    """What the finished jobs came to: trial and final-run states, and each failure's line."""

    trials: dict[str, int] = field(default_factory=lambda: {"complete": 0, "pruned": 0, "fail": 0})
    finals: dict[str, int] = field(default_factory=lambda: {"finished": 0, "fail": 0})
    errors: list[str] = field(default_factory=list)


def plan_cell(
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


def schedule(plans: dict[str, CellPlan], ctx: RunContext, tracker, devices, workers: int, mode) -> Tally:
    """Run every plan's trials, then (once a cell's search is over) its final runs, on local
    workers; a cell is closed as soon as nothing of it is left. Ctrl-C stops the workers at once."""
    from ptbench.executors import LocalExecutor, resolve_devices

    executor = LocalExecutor(workers, resolve_devices(devices, workers))
    total = sum(p.todo_trials + len(p.finals_todo) for p in plans.values())
    progress = make_progress(total, len(plans), mode)
    pending: dict[Future, str] = {}
    tally = Tally()
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
                _finished(plan, fut.result(), ctx, executor, pending, tracker, tally, progress)
            progress.running(min(workers, len(pending)))
    except KeyboardInterrupt:
        executor.shutdown(cancel=True)
        progress.stop()
        raise
    executor.shutdown()
    progress.stop()
    return tally


def _finished(plan: CellPlan, res: JobResult, ctx, executor, pending, tracker, tally, progress) -> None:
    """Account for one finished job: a cell whose search is over gets its final runs; a cell
    with nothing left running or to run is closed."""
    _count(tally, res)
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


def _count(tally: Tally, res: JobResult) -> None:
    bucket = tally.trials if res.kind == "trial" else tally.finals
    bucket[res.state] = bucket.get(res.state, 0) + 1
    if res.error:
        tally.errors.append(f"{res.kind} {res.cell_hash}#{res.number}: {res.error}")
