"""Scores per (task, backbone) from frozen features, the fine-tuned truth, and the check of one
against the other; logged to MLflow as runs of kind ``rank`` (and ``rank_check``) under the
suite run. Features come through the cache the suite's probes use."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ptbench.errors import first_line
from ptbench.finals import EVAL_KEY, evaluation_key, of_best, of_evaluation, of_seeds, once_per_seed
from ptbench.schema import Suite
from ptbench.suite import expand, suite_run_key


@dataclass
class Scored:
    task: str
    backbone: str
    scores: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # per estimator, and "features"
    notes: list[str] = field(default_factory=list)
    top1: float | None = None  # the published ImageNet top-1 (%) of its weights, where one exists
    params: int = 0  # the backbone's parameters, to weigh a score against a size


@dataclass
class RankReport:
    suite: str
    rows: list[Scored]
    truth: dict[tuple[str, str], float]  # (task, backbone) → test accuracy of its best fine-tune
    checks: dict[tuple[str, str], dict[str, float]]  # (task, estimator) → agreement()
    estimators: list[str]
    # task → {"imagenet_top1" or an estimator → agreement()} on the backbones with a published top-1
    top1_checks: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

    def tasks(self) -> list[str]:
        return list(dict.fromkeys(r.task for r in self.rows))


def _pairs(suite: Suite, only: set[tuple[str, str]] | None = None):
    """Each (task, backbone) of the grid once (or of ``only``), with the specs to build them."""
    seen = {}
    for c in expand(suite):
        key = (c.labels["task"], c.labels["backbone"])
        if only is None or key in only:
            seen.setdefault(key, (c.task, c.backbone))
    return seen


NO_SOURCE = (
    "n/a where the weights carry no source classifier (random init; self-supervised, MLM or CLM "
    "pre-training; weights saved without their head)"
)


def _score(name: str, feats) -> tuple[float, float, str]:
    from ptbench.evaluate.transferability import ESTIMATORS, NotApplicable, reads_source

    entry = ESTIMATORS.get(name)
    source = {}
    if reads_source(name):
        if feats.train_source is None:
            return math.nan, 0.0, f"{name}: {feats.source_note or NO_SOURCE}"
        probs = feats.train_source.double().numpy()
        source = {"source_probs": probs, "source_labels": probs.argmax(1)}
    train, val = feats.train_x.double().numpy(), feats.val_x.double().numpy()
    if not (np.isfinite(train).all() and np.isfinite(val).all()):  # a diverged checkpoint
        return math.nan, 0.0, f"{name}: n/a, the backbone's features are not finite (NaN or inf)"
    t0 = time.perf_counter()
    try:
        value = entry.fn(
            train, feats.train_y.numpy(), val_features=val, val_labels=feats.val_y.numpy(), **source
        )
    except (NotApplicable, ArithmeticError, np.linalg.LinAlgError) as err:
        return math.nan, time.perf_counter() - t0, f"{name}: n/a, {first_line(err)}"
    return value, time.perf_counter() - t0, ""


def rank_suite(
    suite: Suite,
    project: Path,
    tracking_uri: str,
    estimators: list[str] | None = None,
    *,
    only: set[tuple[str, str]] | None = None,
    suite_run: str | None = None,
    check: bool = True,
    prepare: bool = True,
) -> RankReport:
    """Score every (task, backbone) pair of the grid (or those in ``only``) by each estimator,
    log the scores under the suite run (found by its key unless given), and check them against
    the fine-tuned truth where final runs exist (``check``). The suite's pre-training recipes
    are made first where missing (``prepare``; the runner has done it for the funnel)."""
    from ptbench.evaluate.transferability import ESTIMATORS
    from ptbench.preflight import prepare_weights
    from ptbench.provenance import run_tags
    from ptbench.tracking import Tracker
    from ptbench.trial import frozen_features

    names = estimators or ESTIMATORS.names()
    for n in names:
        ESTIMATORS.get(n)  # an unknown name is a one-line error, before any work
    tracker = Tracker.open(tracking_uri)
    tracker.experiment(suite.name, project / "artifacts")  # deleted in the UI: one line, before any work
    if prepare:
        prepare_weights(suite, project, tracking_uri)
    rows = []
    for (task, backbone), (task_spec, bb_spec) in _pairs(suite, only).items():
        feats = frozen_features(bb_spec, task_spec, str(project / "cache"), str(project / "weights"))
        row = Scored(
            task,
            backbone,
            seconds={"features": feats.seconds},
            top1=_published_top1(bb_spec),
            params=feats.params,
        )
        for n in names:
            row.scores[n], row.seconds[n], note = _score(n, feats)
            row.notes += [note] if note else []
        rows.append(row)
    truth = _truth(tracker, suite) if check else {}
    report = RankReport(
        suite.name, rows, truth, _checks(rows, truth, names), names, _top1_checks(rows, truth, names)
    )
    _log(tracker, suite, report, project, run_tags(), suite_run)
    return report


def _truth(tracker, suite: Suite) -> dict[tuple[str, str], float]:
    """(task, backbone) → mean test accuracy of its best fine-tuning cell by validation (the
    suite's objective), among the cells of this grid only (an earlier version's cells — other
    epochs, another range — are another experiment's truth, even where the labels match), over
    the final runs the leaderboard averages (the suite's seeds now, its evaluation settings).
    Cells that tie on validation are one choice validation cannot make: their mean counts, not
    whichever the store listed first."""
    grid = {c.hash for c in expand(suite)}
    goal = suite.search.objective  # "best by validation" is the suite's objective, not always accuracy
    asked = evaluation_key(suite.evaluation, suite.robustness.model_dump())
    records = [r for r in tracker.runs_records(suite.name) if not r.get("tags.ptbench.night")]
    cells = {
        r["run_id"]: r
        for r in records
        if r.get("tags.ptbench.kind") == "cell" and r.get("tags.ptbench.cell_hash") in grid
    }
    finals = [
        r
        for r in records
        if r.get("tags.ptbench.kind") == "final"
        and r["status"] == "FINISHED"
        and of_seeds(suite.seeds, r.get("tags.ptbench.seed"))
        and of_evaluation(asked, r.get(f"tags.{EVAL_KEY}"))
        and of_best(
            cells.get(r.get("tags.mlflow.parentRunId"), {}).get("metrics.best_trial"),
            r.get("tags.ptbench.source_trial"),
        )
    ]
    tests: dict[str, list[float]] = {}
    for r in once_per_seed(finals):
        tests.setdefault(r.get("tags.mlflow.parentRunId"), []).append(
            float(r.get("metrics.test_accuracy", math.nan))
        )
    return _of_best_cells(cells, tests, goal)


def _of_best_cells(cells: dict, tests: dict[str, list[float]], goal) -> dict[tuple[str, str], float]:
    """Each (task, backbone)'s test accuracy at its best cell(s) by validation. The best is chosen
    among every fine-tuning cell with a best value, finals or not: a best cell whose final runs
    have not finished leaves the backbone without a truth (none yet), where choosing among the
    cells with finals only gave the second best's test accuracy as the truth."""
    from ptbench.strategies import STRATEGIES

    sign = 1.0 if goal.direction == "maximize" else -1.0
    best: dict[tuple[str, str], tuple[float, list[float | None]]] = {}
    for run_id, c in cells.items():
        name = c.get("params.strategy.name", "")
        if name not in STRATEGIES or STRATEGIES.get(name).meta.get("features"):
            continue  # probes on frozen features are not the truth
        val = sign * float(c.get(f"metrics.best_{goal.metric}", math.nan))
        if val != val:
            continue  # no best value: it cannot be weighed against the other cells
        key = (c.get("params.task"), c.get("params.backbone"))
        test = sum(tests[run_id]) / len(tests[run_id]) if tests.get(run_id) else None
        if key not in best or val > best[key][0]:
            best[key] = (val, [test])
        elif val == best[key][0]:
            best[key][1].append(test)
    return {k: sum(v[1]) / len(v[1]) for k, v in best.items() if None not in v[1]}


def _published_top1(bb_spec: dict) -> float | None:
    """The published ImageNet top-1 of the backbone's weights: only where they are the ImageNet
    weights (package, or hub without an ``id`` naming other weights), never for random init, a
    file or a ``ptbench pretrain`` run."""
    from ptbench.backbones import BACKBONES

    if bb_spec.get("weights") not in ("package", "hub") or bb_spec.get("id"):
        return None
    return BACKBONES.get(bb_spec["name"]).meta.get("imagenet_top1")


def _top1_checks(rows: list[Scored], truth, names: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    """Ranking by published ImageNet top-1, and each estimator on the same backbones: the
    baseline an estimator must beat to be worth running on image checkpoints."""
    from ptbench.evaluate.transferability import agreement

    out: dict[str, dict[str, dict[str, float]]] = {}
    for task in dict.fromkeys(r.task for r in rows):
        known = [r for r in rows if r.task == task and r.top1 is not None and (task, r.backbone) in truth]
        if len(known) < 3:
            continue
        truths = [truth[task, r.backbone] for r in known]
        out[task] = {"imagenet_top1": agreement([r.top1 for r in known], truths)}
        for n in names:
            if all(r.scores[n] == r.scores[n] for r in known):
                out[task][n] = agreement([r.scores[n] for r in known], truths)
    return out


def _checks(rows: list[Scored], truth, names: list[str]) -> dict[tuple[str, str], dict[str, float]]:
    from ptbench.evaluate.transferability import agreement

    out = {}
    for task in dict.fromkeys(r.task for r in rows):
        known = [r for r in rows if r.task == task and (task, r.backbone) in truth]
        if len(known) < 3:
            continue  # fewer than three backbones with a fine-tuned result: no ranking to check
        for n in names:
            scored = [r for r in known if r.scores[n] == r.scores[n]]
            if len(scored) >= 3:
                out[task, n] = agreement(
                    [r.scores[n] for r in scored], [truth[task, r.backbone] for r in scored]
                )
                out[task, n] |= {"backbones": len(scored), "knn_tau_w": _knn_on(scored, task, truth, names)}
    return out


def _knn_on(scored: list[Scored], task: str, truth, names: list[str]) -> float:
    """k-NN's weighted τ on the same backbones: LEEP and NCE score only those with a source
    classifier, and a τ over four backbones says nothing against k-NN's over twelve."""
    from scipy.stats import weightedtau

    if "knn" not in names or any(r.scores["knn"] != r.scores["knn"] for r in scored):
        return math.nan
    return float(
        weightedtau([r.scores["knn"] for r in scored], [truth[task, r.backbone] for r in scored]).statistic
    )


def _log(tracker, suite: Suite, report: RankReport, project: Path, tags, suite_run: str | None) -> None:
    exp = tracker.experiment(suite.name, project / "artifacts")
    if suite_run is None:  # else: the run in progress (the funnel's), left as it is
        key = suite_run_key(expand(suite))
        found = tracker.find_run(exp, **key)
        if found is None:  # ranked before it ran: the suite run 'ptbench run' will reopen
            absent_ok = {k: v for k, v in key.items() if v != ""}  # "" = tag absent (find_run)
            suite_run = tracker.start_run(exp, suite.name, {**tags, **absent_ok})
            tracker.end(suite_run, "FINISHED")
        else:  # left as it is: a run in progress keeps its status and its runs
            suite_run = found.info.run_id
    for r in report.rows:
        key = {
            "ptbench.kind": "rank",
            "ptbench.rank_task": r.task,
            "ptbench.rank_backbone": r.backbone,
            "ptbench.rank_suite_run": suite_run,  # a new suite version is ranked anew, not into v1's
            "ptbench.night": "",
        }
        run = tracker.ensure_run(exp, f"rank {r.backbone}", key, tags, parent=suite_run)
        tracker.log_params(run, {"task": r.task, "backbone": r.backbone})
        metrics = {f"rank.{n}": v for n, v in r.scores.items() if v == v}
        metrics |= {f"rank.{n}_seconds": s for n, s in r.seconds.items()} | {"rank.params": r.params}
        tracker.log_metrics(run, metrics)
        tracker.end(run, "FINISHED")
    for (task, n), a in report.checks.items():
        key = {"ptbench.kind": "rank_check", "ptbench.rank_task": task, "ptbench.rank_suite_run": suite_run}
        run = tracker.ensure_run(exp, f"rank check {task}", key, tags, parent=suite_run)
        tracker.log_metrics(run, {f"{n}.{k}": v for k, v in a.items() if v == v})
        tracker.end(run, "FINISHED")
