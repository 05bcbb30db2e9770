"""The run loop: each cell's trials, then (once its search is over) its final runs, submitted to
an executor no faster than it can start them, and each cell closed once nothing of it is left.

Everything it decides from is in the Optuna storage and the MLflow store, re-read whenever a
job of the cell ends: what is finished, what runs (here or in another driver, as long as its
lease is alive), what is left. So a rerun resumes, two drivers on one suite share the work
without exceeding a budget, and a job lost with its worker is retried with the same parameters.
"""

from __future__ import annotations

import contextlib
import sys
import time
import uuid
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any

from ptbench.errors import PtbenchError
from ptbench.final_job import final_run
from ptbench.finals import EVAL_KEY, of_evaluation
from ptbench.jobs import (
    BEST,
    NIGHT,
    SUITE_RUN,
    JobResult,
    RunContext,
    cell_params,
    open_claims,
    open_record,
    open_study,
    search_trial,
)
from ptbench.progress import make_progress
from ptbench.suite import Cell


@dataclass
class CellPlan:
    """One cell as this driver runs it: its MLflow run, budget, seeds, and its jobs in flight."""

    cell: Cell
    run_id: str
    budget: int
    seeds: list[int]
    # finished final runs already in MLflow, as (seed, the search trial they re-ran)
    recorded: set[tuple[int, int]] = field(default_factory=set)
    jobs: dict[str, tuple[str, int]] = field(default_factory=dict)  # job id → (kind, seed)
    failed: set[tuple[int, int]] = field(default_factory=set)  # (seed, trial) of finals failed here
    losses: dict[tuple[int, int], int] = field(default_factory=dict)  # (seed, trial) → workers lost
    counted_done: set[int] = field(default_factory=set)  # seeds the progress total took as done
    unrecorded: int = 0  # trial jobs in a row that ended before their trial existed in Optuna
    gave_up: str = ""  # why the cell's search was stopped (it fails, the suite goes on)
    closed: bool = False

    def mine(self, kind: str) -> list[tuple[str, int]]:
        return [j for j in self.jobs.values() if j[0] == kind]


@dataclass
class Tally:
    """What the finished jobs came to: trial and final-run states, and each failure's line."""

    trials: dict[str, int] = field(default_factory=lambda: {"complete": 0, "pruned": 0, "fail": 0})
    finals: dict[str, int] = field(default_factory=lambda: {"finished": 0, "fail": 0})
    errors: list[str] = field(default_factory=list)


@dataclass
class Job:
    cell_hash: str
    job_id: str
    kind: str
    seed: int
    fn: Any
    args: tuple


def plan_cell(
    tracker, ctx: RunContext, cell: Cell, suite_run: str, n_trials: int, seeds: list[int]
) -> CellPlan:
    """Open (or reopen) the cell's run. Trials and runs whose worker stopped beating are closed
    (the trials retried); those of live workers — another driver's — are left alone."""
    key = {"ptbench.kind": "cell", "ptbench.cell_hash": cell.hash, NIGHT: cell.night}
    run_id = open_record(tracker, ctx, cell.study_name, cell.describe(), key, ctx.tags, parent=suite_run)
    tracker.update_params(run_id, cell_params(cell))
    if cell.night:
        tracker.set_tags(run_id, {SUITE_RUN: suite_run})
    study, claims = open_study(ctx, cell), open_claims(ctx, cell)
    study.fail_stale()
    alive = study.counts().running_jobs | claims.seeds()[2]
    tracker.kill_stale(ctx.exp_id, run_id, alive)
    recorded = {
        (int(r.data.tags.get("ptbench.seed", -1)), int(r.data.tags.get("ptbench.source_trial", -1)))
        for r in tracker.search(
            ctx.exp_id,
            f"tags.`mlflow.parentRunId` = '{run_id}' and "
            "tags.`ptbench.kind` = 'final' and "
            "attributes.status = 'FINISHED'",
        )
        if of_evaluation(ctx.eval_key, r.data.tags.get(EVAL_KEY))
    }
    return CellPlan(cell, run_id, n_trials, list(seeds), recorded)


def schedule(plans: dict[str, CellPlan], ctx: RunContext, tracker, executor, mode) -> Tally:
    """Run every cell to the end on ``executor``. Ctrl-C or SIGTERM stop the workers at once;
    their trials are failed and enqueued again, so the next run picks them up without waiting."""
    loop = _Loop(plans, ctx, tracker, executor, mode)
    try:
        loop.run()
    except BaseException as err:
        executor.shutdown(cancel=True)
        loop.release()
        loop.progress.stop()
        if isinstance(err, Exception) and not isinstance(err, PtbenchError):
            _blame_a_lost_store(ctx, tracker)
        raise
    executor.shutdown()
    loop.progress.stop()
    return loop.tally


def _blame_a_lost_store(ctx: RunContext, tracker) -> None:
    """An error mid-run that a store gone away explains (its server restarted, its host lost) is
    one line for the user to act on, not a bug's traceback: what finished is kept in the stores,
    and the trials this driver held are retried by the next run once their leases expire."""
    from ptbench.search import check_storage

    for check in (lambda: check_storage(ctx.storage_url), tracker.check):
        try:
            check()
        except PtbenchError as lost:
            raise PtbenchError(
                f"{lost} — lost mid-run; what finished is kept: run the same command again once it answers"
            ) from None


class _Loop:
    def __init__(self, plans: dict[str, CellPlan], ctx: RunContext, tracker, executor, mode):
        self.plans, self.ctx, self.tracker, self.executor = plans, ctx, tracker, executor
        self.queue: deque[Job] = deque()
        self.inflight: dict[Future, Job] = {}
        self.submitting: Job | None = None  # being submitted: Ctrl-C may land in submit
        self.tally = Tally()
        self.poll = float(ctx.lease_interval)
        self.progress = make_progress(sum(self._left(p) for p in plans.values()), len(plans), mode)
        for plan in plans.values():
            self.refresh(plan)  # cells with nothing left close now

    def run(self) -> None:
        while not all(p.closed for p in self.plans.values()):
            while self.queue and len(self.inflight) < self.executor.capacity:
                job = self.submitting = self.queue.popleft()  # the inline executor runs it in submit
                self.inflight[self.executor.submit(job.fn, *job.args)] = job
                self.submitting = None
            self.progress.running(len(self.inflight))
            if self.inflight:
                done, _ = wait(self.inflight, timeout=self.poll, return_when=FIRST_COMPLETED)
            else:  # only other drivers' jobs are left: wait for them to end or go stale
                done = set()
                time.sleep(self.poll)
            for fut in done:
                self._finished(fut)
            if not done:
                for plan in self.plans.values():
                    self.refresh(plan, reap=True)

    def refresh(self, plan: CellPlan, reap: bool = False) -> None:
        """Queue what the cell needs now, from what the stores say; close it when nothing is left."""
        if plan.closed:
            return
        if plan.gave_up:  # closed once its jobs in flight are back
            if not plan.jobs:
                self._close(plan)
            return
        study = open_study(self.ctx, plan.cell)
        if reap:
            self._reap(plan)
        counts = study.counts()
        if counts.finished < plan.budget:
            foreign = len(counts.running_jobs - set(plan.jobs))
            for _ in range(plan.budget - counts.finished - foreign - len(plan.mine("trial"))):
                self._enqueue(plan, "trial")
            return
        self._drop_queued(plan, "trial")  # the search is over: queued trials would do nothing
        if counts.running_jobs:  # trials still running (another driver's budget may be larger)
            return  # could move the best: its final runs wait for them
        best = study.best_config(plan.cell.space)
        if best is None:
            self.tracker.set_tags(plan.run_id, {"ptbench.state": "no completed trial"})
            return self._close(plan)
        # final runs of an earlier best (before the search was extended) do not count
        done, running, _ = open_claims(self.ctx, plan.cell).seeds(best[0])
        done |= {seed for seed, source in plan.recorded if source == best[0]}
        mine = {seed for _, seed in plan.mine("final")}
        failed = {seed for seed, source in plan.failed if source == best[0]}
        for seed in plan.seeds:
            if seed not in done | running | failed | mine:
                self._enqueue(plan, "final", seed, best)
                if seed in plan.counted_done:  # its final run was of an earlier best: once more
                    plan.counted_done.discard(seed)
                    self.progress.grow(1)
        if all(s in done | failed for s in plan.seeds) and not plan.jobs:
            self._close(plan)

    def _reap(self, plan: CellPlan) -> None:
        """Trials and claims whose worker stopped beating (another driver died) are failed, the
        trials enqueued again, and their MLflow runs closed."""
        study, claims = open_study(self.ctx, plan.cell), open_claims(self.ctx, plan.cell)
        study.fail_stale()
        alive = study.counts().running_jobs | claims.seeds()[2]
        self.tracker.kill_stale(self.ctx.exp_id, plan.run_id, alive | set(plan.jobs))

    def _enqueue(self, plan: CellPlan, kind: str, seed: int = 0, best: tuple | None = None) -> None:
        job_id = uuid.uuid4().hex
        if kind == "trial":
            fn, args = search_trial, (plan.cell, plan.run_id, self.ctx, job_id, plan.budget)
        else:
            number, params, _ = best
            fn, args = final_run, (plan.cell, plan.run_id, self.ctx, params, seed, number, job_id)
        plan.jobs[job_id] = (kind, seed)
        self.queue.append(Job(plan.cell.hash, job_id, kind, seed, fn, args))

    def _drop_queued(self, plan: CellPlan, kind: str) -> None:
        dropped = [j for j in self.queue if j.cell_hash == plan.cell.hash and j.kind == kind]
        for job in dropped:
            self.queue.remove(job)
            plan.jobs.pop(job.job_id, None)
            self.progress.grow(-1)

    def _left(self, plan: CellPlan) -> int:
        """Jobs this cell should still take, for the progress total: trials not yet run here or
        elsewhere, and final runs without a result."""
        c = open_study(self.ctx, plan.cell).counts()
        done = open_claims(self.ctx, plan.cell).seeds()[0] | {seed for seed, _ in plan.recorded}
        plan.counted_done = done
        return max(0, plan.budget - c.finished - c.running) + len(set(plan.seeds) - done)

    def _finished(self, fut: Future) -> None:
        job = self.inflight.pop(fut)
        plan = self.plans[job.cell_hash]
        plan.jobs.pop(job.job_id, None)
        try:
            res = fut.result()
        except BaseException as err:  # jobs never raise: the worker died under it
            res = self._lost(plan, job, err)
        if res.kind == "trial":
            self._note_record(plan, res)
        if res.state == "lost" and not plan.gave_up:
            self.progress.grow(1)  # its retry
        if res.state == "surplus":  # another driver took this place in the budget
            self.progress.grow(-1)
        else:
            _count(self.tally, res)
            self.progress.advance(res, plan.cell.describe(), plan.cell.objective["direction"])
        if res.kind == "final" and res.state == "fail":
            plan.failed.add((res.seed, res.number))
        self.refresh(plan)

    def _note_record(self, plan: CellPlan, res: JobResult) -> None:
        """Optuna's retry limit sees only trials it holds: a trial job that fails or loses its
        worker before its trial exists (the storage unreachable from the worker, a worker that
        cannot start) would be queued again for ever. After MAX_RETRY + 1 such jobs in a row the
        cell's search stops and the cell fails with the last error; the other cells go on."""
        from ptbench.search import MAX_RETRY

        if res.state == "surplus":
            return
        if res.number >= 0:
            plan.unrecorded = 0
            return
        plan.unrecorded += 1
        if plan.unrecorded <= MAX_RETRY or plan.gave_up:
            return
        why = "trial jobs in a row failed before their trial was recorded"
        plan.gave_up = f"{plan.unrecorded} {why}: {res.error}"
        print(f"ptbench: {plan.cell.describe()}: {plan.gave_up}", file=sys.stderr, flush=True)
        self.tally.errors.append(f"cell {plan.cell.hash}: {plan.gave_up}")
        self._drop_queued(plan, "trial")
        self.progress.grow(-len(set(plan.seeds) - plan.counted_done))  # its final runs never come

    def _lost(self, plan: CellPlan, job: Job, err: BaseException) -> JobResult:
        """A job's worker died: fail its trial or claim now (the trial is enqueued again with the
        same parameters) and close its MLflow run; ``refresh`` then queues the retry. A final run
        that loses its worker MAX_RETRY + 1 times (one that always runs out of memory) fails, as
        a trial's configuration does: retried without end, it would hold the suite open forever."""
        from ptbench.search import MAX_RETRY, error_text

        number = job.args[5] if job.kind == "final" else None
        if job.kind == "final":
            key = (job.seed, number)
            plan.losses[key] = plan.losses.get(key, 0) + 1
            if plan.losses[key] > MAX_RETRY:
                msg = f"worker lost {plan.losses[key]} times ({error_text(err)}): not retried"
                print(f"ptbench: {plan.cell.describe()} final: {msg}", file=sys.stderr, flush=True)
                self._release(plan, job, error=msg)  # a FAILED run, with its error, in MLflow
                return JobResult("final", plan.cell.hash, "fail", number=number, seed=job.seed, error=msg)
        failed = self._release(plan, job)  # a trial job: the trial it held, if it got one
        if number is None:
            number = failed[0] if failed else -1
        msg = f"worker lost ({error_text(err)})"
        print(f"ptbench: {plan.cell.describe()} {job.kind}: {msg}: retried", file=sys.stderr, flush=True)
        return JobResult(job.kind, plan.cell.hash, "lost", number=number, seed=job.seed, error=msg)

    def _release(self, plan: CellPlan, job: Job, error: str = "") -> list:
        if job.kind == "trial":
            failed = open_study(self.ctx, plan.cell).fail_job(job.job_id)
        else:
            failed = open_claims(self.ctx, plan.cell).fail_job(job.job_id)
        self.tracker.kill_job_runs(self.ctx.exp_id, plan.run_id, job.job_id, error)
        return failed or []

    def release(self) -> None:
        """After a cancel: this driver's running jobs are failed (and retried by the next run),
        the one stopped inside ``submit`` too (an inline job runs there)."""
        for job in [*self.inflight.values(), *([self.submitting] if self.submitting else [])]:
            with contextlib.suppress(Exception):  # stores unreachable: the leases expire on their own
                self._release(self.plans[job.cell_hash], job)

    def _close(self, plan: CellPlan) -> None:
        _close_cell(plan, self.tracker, self.ctx)
        plan.closed = True
        self.progress.cell_done()


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
        # tags, not params: a longer search (--trials raised) may find a better configuration
        tracker.set_tags(plan.run_id, {f"{BEST}{k}": v for k, v in best[1].items()})
        # over an "interrupted" or "no completed trial" left by an earlier run of the cell
        tracker.set_tags(plan.run_id, {"ptbench.state": "complete"})
    if plan.gave_up:  # its search was stopped: whatever it found is not a finished cell
        tracker.set_tags(plan.run_id, {"ptbench.state": "failed", "ptbench.error": plan.gave_up})
    tracker.log_metrics(plan.run_id, metrics)
    tracker.end(plan.run_id, "FINISHED" if best is not None and not plan.gave_up else "FAILED")


def _count(tally: Tally, res: JobResult) -> None:
    bucket = tally.trials if res.kind == "trial" else tally.finals
    bucket[res.state] = bucket.get(res.state, 0) + 1
    if res.error:
        tally.errors.append(f"{res.kind} {res.cell_hash}#{res.number}: {res.error}")
