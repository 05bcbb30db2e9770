"""The final-run job: a cell's best configuration re-run with one seed, then evaluated on test,
shifted, corrupted and attacked data. Its seed is claimed in the storage first, so across
drivers each seed's final run happens once; the claim is leased like a search trial."""

from __future__ import annotations

import time
from typing import Any

from ptbench.cell import Cell
from ptbench.finals import EVAL_KEY
from ptbench.jobs import (
    JobResult,
    Placement,
    RunContext,
    _config,
    _declared_dead,
    _done,
    _log_info,
    _open_run,
    _record_failure,
    _tracker,
    open_claims,
)
from ptbench.train.yardstick import reference_seconds


def final_run(
    cell: Cell,
    cell_run: str,
    ctx: RunContext,
    params: dict[str, Any],
    seed: int,
    source_trial: int,
    job_id: str = "",
    *,
    device: str = "cpu",
    threads: int = 0,
) -> JobResult:
    """The best configuration re-run with ``seed``, then evaluated on test and shifted data.

    The seed is claimed first: when another job (of this or another driver) holds it, this one
    runs nothing (``surplus``), so each final run happens once."""
    start = time.perf_counter()
    res = JobResult("final", cell.hash, "fail", number=source_trial, seed=seed)
    claims = open_claims(ctx, cell)
    claim = claims.claim(seed, job_id, source_trial)
    if claim is None:
        res.state = "surplus"
        return _done(res, start)
    tracker = _tracker(ctx.tracking_uri)
    extra = {"ptbench.source_trial": source_trial, "ptbench.job": job_id, EVAL_KEY: ctx.eval_key}
    extra |= ctx.family_tags
    run_id = _open_run(
        tracker, ctx, cell, cell_run, f"final-seed{seed}", "final", seed, params, extra, device
    )
    try:
        with claims.beating(claim):
            _evaluate_final(
                cell, ctx, params, seed, Placement(device, threads), tracker, run_id, claims, claim, res
            )
    except Exception as err:
        if not _declared_dead(claims.holds(claim), tracker, run_id, res):
            res.error = _record_failure(tracker, run_id, err)
            claims.failed(claim, res.error)
    return _done(res, start)


def _evaluate_final(cell, ctx, params, seed, where, tracker, run_id, claims, claim, res) -> None:
    from ptbench.trial import run_trial

    start = time.perf_counter()
    with tracker.epoch_log(run_id) as log_epoch:
        out = run_trial(
            _config(cell, params, seed, ctx.evaluation, ctx, where),
            lambda e, m: log_epoch(m, e),
            on_ready=lambda info: _log_info(tracker, run_id, info),
        )
    if _declared_dead(claims.holds(claim), tracker, run_id, res):
        return
    res.train_seconds, res.eval_seconds = out.train_seconds, out.eval_seconds
    summary = {k: v for k, v in out.metrics.items() if not k.startswith(("train_", "val_"))}
    summary |= {
        "train_seconds": out.train_seconds,
        "encode_seconds": out.encode_seconds,
        "eval_seconds": out.eval_seconds,
        "job_seconds": time.perf_counter() - start,
        "reference_seconds": reference_seconds(),  # this worker's speed now (train/yardstick.py)
    }
    tracker.log_metrics(run_id, summary, step=len(out.history))
    for split, table in out.predictions.items():
        tracker.log_table(run_id, table, f"predictions/{split}.csv")
    tracker.set_tags(run_id, {"ptbench.state": "complete"})
    tracker.end(run_id, "FINISHED")
    res.state, res.value = "finished", out.metrics.get("test_accuracy")
    claims.done(claim, res.value)
