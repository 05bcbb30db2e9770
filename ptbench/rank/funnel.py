"""The funnel: ``axes.select: {by: logme, top: 3}`` ranks each task's pretrained backbones from
their frozen features before anything trains, and the run keeps, per task, the cells of the
``top`` best only. Random-init controls always stay: they are what "pre-training helps" is
measured against. What was dropped, and why, is printed and logged to the suite run
(``select.md``, tag ``ptbench.select``), and the scores as the usual runs of kind ``rank``.

Deterministic: the same features give the same scores, so a resumed run keeps the same cells.
A backbone whose score is not finite ranks below every scored one, and says so.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from ptbench.cell import Cell
from ptbench.rank.score import rank_suite
from ptbench.schema import Suite


@dataclass
class Selection:
    by: str
    top: int
    # task → [(backbone, score, verdict)], in rank order, random-init controls last
    tasks: dict[str, list[tuple[str, float, str]]] = field(default_factory=dict)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        """One line per task, for the terminal."""
        out = []
        for task, rows in self.tasks.items():
            kept = [b for b, _, v in rows if not v.startswith("dropped")]
            dropped = [f"{b} ({self.by} {s:.4g})" for b, s, v in rows if v.startswith("dropped")]
            out.append(
                f"select {task}: kept {', '.join(kept)}"
                + (f"; dropped {', '.join(dropped)}" if dropped else "; dropped none")
            )
        return out

    def markdown(self) -> str:
        out = [
            f"# select: the top {self.top} backbones per task by {self.by}",
            "",
            f"Scored from frozen train/val features in {self.seconds:.1f} s; random-init controls "
            "are always kept.",
        ]
        for task, rows in self.tasks.items():
            out += ["", f"## {task}", "", f"| backbone | {self.by} | verdict |", "|---|---|---|"]
            out += [f"| {b} | {'—' if math.isnan(s) else f'{s:.4g}'} | {v} |" for b, s, v in rows]
        return "\n".join(out) + "\n"


def select_cells(
    suite: Suite, cells: list[Cell], project: Path, tracking_uri: str, suite_run: str, tracker
) -> tuple[list[Cell], Selection]:
    """The cells the funnel keeps, and the record of its choice (logged to ``suite_run``)."""
    sel = suite.axes.select
    t0 = time.perf_counter()
    candidates = {(c.labels["task"], c.labels["backbone"]) for c in cells if c.labels["weights"] != "none"}
    report = rank_suite(
        suite,
        project,
        tracking_uri,
        [sel.by],
        only=candidates,
        suite_run=suite_run,
        check=False,
        prepare=False,
    )
    selection = Selection(sel.by, sel.top, seconds=time.perf_counter() - t0)
    kept: set[tuple[str, str]] = set()
    for task in report.tasks():
        rows = [r for r in report.rows if r.task == task]
        selection.tasks[task] = _verdicts(rows, sel.by, sel.top)
        kept |= {(task, b) for b, _, v in selection.tasks[task] if v.startswith("kept")}
    for c in cells:  # the controls, listed once per task
        if c.labels["weights"] == "none":
            rows = selection.tasks.setdefault(c.labels["task"], [])
            if all(b != c.labels["backbone"] for b, _, _ in rows):
                rows.append((c.labels["backbone"], math.nan, "kept: random-init control"))
    out = [
        c for c in cells if c.labels["weights"] == "none" or (c.labels["task"], c.labels["backbone"]) in kept
    ]
    tracker.log_text(suite_run, selection.markdown(), "select.md")
    # tags and metrics, not params: a suite edited to select otherwise reopens the same suite run
    tracker.set_tags(suite_run, {"ptbench.select": f"top {sel.top} by {sel.by}"})
    counts = {"select_kept": len(out), "select_dropped": len(cells) - len(out)}
    tracker.log_metrics(suite_run, {"select_seconds": selection.seconds, **counts})
    return out, selection


def _verdicts(rows, by: str, top: int) -> list[tuple[str, float, str]]:
    """(backbone, score, verdict) in rank order. Equal scores share a rank, as in ``rank.md``,
    and a backbone tied with the last of the top is kept too: the score cannot tell them apart,
    and grid order would have chosen (k-NN and probe accuracies tie often)."""
    ranked = sorted(rows, key=lambda r: _order(r.scores[by]))
    keys = [_order(r.scores[by]) for r in ranked]
    cut = keys[top - 1] if len(keys) >= top else math.inf
    out = []
    for i, r in enumerate(ranked, start=1):
        score, key = r.scores[by], keys[i - 1]
        place = f"rank {1 + sum(k < key for k in keys)} of {len(ranked)}"
        if i <= top or key == cut:  # unscored rows tie too: all kept when the top reaches them
            tied = f", tied with the last of the top {top}" if i > top else ""
            unscored = ", no finite score" if not math.isfinite(score) else ""
            out.append((r.backbone, score, f"kept: {place}{unscored}{tied}"))
        else:
            why = "no finite score" if not math.isfinite(score) else place
            out.append((r.backbone, score, f"dropped: {why}, below the top {top}"))
    return out


def _order(score: float) -> float:
    """Sort key: higher scores first, a non-finite score after every finite one."""
    return -score if math.isfinite(score) else math.inf
