"""Aggregate an experiment's runs into per-task views: generalization, robustness, cost, and the
pretrained-versus-random gap; one row per cell, mean ± 95% CI over seeds.

Only final runs carry test, shifted, corruption and attack metrics (search never sees them).
A board ranks the cells of one grid: the suite's as its file reads now, or a night's as that night
last ran; cells an edit replaced stay in MLflow and are counted in one note, never ranked against
the cells that replaced them. Runs whose split hash or suite version differ are never averaged
together: they form separate tables, with a note. A NaN metric stays missing, never zero. Cells
without a finished final run are listed, with state and error, in an 'unfinished' view: nothing
is dropped silently.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from ptbench.errors import PtbenchError
from ptbench.finals import (
    EVAL_KEY,
    evaluation_key,
    newest_evaluation,
    of_best,
    of_evaluation,
    of_seeds,
    once_per_seed,
)
from ptbench.jobs import OPENED, SUITE_RUN
from ptbench.leaderboard.views import CELL_COLS, board_views, metric_column, unfinished_view

PARAM = {"backbone": "backbone.name", "weights": "backbone.weights"}  # column → MLflow param


@dataclass
class Board:
    """All views of one task (and split hash, and suite version)."""

    title: str
    views: dict[str, pd.DataFrame]
    finals: pd.DataFrame  # per-seed final runs, for plots
    notes: list[str] = field(default_factory=list)
    # cell hash → (experiment id, run id) of the cell's MLflow run, so a page can link each row
    runs: dict[str, tuple[str, str]] = field(default_factory=dict)
    ui_base: str = ""  # the MLflow UI those runs open in (set by build_leaderboard)
    night: str | None = None  # the night ranked, None for the plain runs (set by build_leaderboard)


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


@dataclass(frozen=True)
class Current:
    """What the suite asks now: a cell no longer in its grid (an edit changed its hash), a run
    evaluated under other settings, or of a seed since removed, belongs to an earlier version of
    the question and is not ranked or averaged in."""

    eval_key: str
    seeds: tuple[int, ...]
    cells: frozenset[str] | None = None  # the grid's cell hashes; None: every recorded cell
    # a suite whose checkpoint globs match no file on this machine: its grid is resolved against
    # the checkpoint paths its runs recorded (see grid)
    unresolved: object | None = None

    @classmethod
    def of(cls, suite) -> Current:
        from ptbench.suite import expand
        from ptbench.suite.checkpoints import unresolved

        key = evaluation_key(suite.evaluation, suite.robustness.model_dump())
        if any(unresolved(bb) for bb in suite.axes.backbones):
            return cls(key, tuple(suite.seeds), None, suite)
        return cls(key, tuple(suite.seeds), frozenset(c.hash for c in expand(suite)))

    def grid(self, df: pd.DataFrame) -> frozenset[str] | None:
        """The grid's cell hashes; where a glob matched nothing here (the board is read on a
        machine without the checkpoint files), with the checkpoints the runs recorded under it."""
        if self.unresolved is None:
            return self.cells
        from ptbench.suite import expand
        from ptbench.suite.checkpoints import with_recorded

        refs = df.get("tags.ptbench.weights_ref", pd.Series(dtype=object))
        suite = with_recorded(self.unresolved, {r for r in refs.dropna() if isinstance(r, str) and r})
        return frozenset(c.hash for c in expand(suite))

    def keep(self, finals: pd.DataFrame) -> pd.DataFrame:
        """A night's final runs are kept whatever the suite says now: a night draws its own
        seeds, and ran under the settings of its time (its own cell runs, never mixed with
        another night's) — of a night re-evaluated otherwise, the newest settings' runs."""
        if finals.empty:
            return finals
        col = lambda name: finals.get(name, pd.Series(None, index=finals.index))  # noqa: E731
        nights = finals[[isinstance(n, str) and n != "" for n in col("tags.ptbench.night")]]
        newest = {  # a night re-run under edited evaluation settings: its newest final runs
            r["run_id"]
            for _, cell in nights.groupby(col("tags.mlflow.parentRunId").loc[nights.index], dropna=False)
            for r in newest_evaluation(cell.to_dict("records"))
        }
        keep = [
            run in newest
            if isinstance(night, str) and night != ""
            else of_evaluation(self.eval_key, k) and of_seeds(self.seeds, s)
            for run, k, s, night in zip(
                col("run_id"),
                col(f"tags.{EVAL_KEY}"),
                col("tags.ptbench.seed"),
                col("tags.ptbench.night"),
                strict=True,
            )
        ]
        return finals[keep]


def build_boards(
    df: pd.DataFrame, reference: dict[str, str] | None = None, current: Current | None = None
) -> list[Board]:
    """One board per task (and split hash and suite version). Cells without a finished final run
    (failed, still searching, or every trial failed) are listed in an 'unfinished' view with their
    state and error, never dropped: a suite whose cells all failed still gets a board."""
    df, left_out = _of_grid(df, current)
    kind = df.get("tags.ptbench.kind", pd.Series(dtype=str))
    cells, trials, finals = df[kind == "cell"], df[kind == "trial"], df[kind == "final"]
    finals = _of_best(finals, cells)
    if current is not None:
        finals = current.keep(finals)
    failed = pd.concat([trials, finals])
    failed = failed[failed["status"] == "FAILED"]
    finals = finals[finals["status"] == "FINISHED"]
    if not finals.empty and "run_id" in finals:  # a seed recorded twice counts once
        kept = {r["run_id"] for r in once_per_seed(finals.to_dict("records"))}
        finals = finals[finals["run_id"].isin(kept)]
    finals = finals.copy()
    if finals.empty and cells.empty:
        raise PtbenchError("the suite has no cell runs yet; run 'ptbench run' first")
    finals["split"] = finals.get("tags.ptbench.split_hash", pd.Series("—", index=finals.index))
    finals["version"] = finals.get("params.suite_version", pd.Series("?", index=finals.index))
    tasks = set(finals["params.task"]) | set(cells.get("params.task", pd.Series(dtype=str)))
    boards = []
    for task in sorted(tasks, key=_natural):
        tc = cells[cells["params.task"] == task] if not cells.empty else cells
        made = _task_boards(str(task), tc, trials, finals[finals["params.task"] == task], failed, reference)
        for b in made:
            b.runs = _run_ids(tc)
        boards += made
    if not boards:
        raise PtbenchError("the suite's final runs have no cell runs in the tracking store")
    if left_out:
        boards[0].notes.append(left_out)
    return boards


def _of_grid(df: pd.DataFrame, current: Current | None) -> tuple[pd.DataFrame, str]:
    """The runs of one grid's cells, and a note counting the recorded cells left out. The grid is
    the suite's as its file reads now; a night's is the one its last suite run planned (the night
    as it ran, like the nightly report: an older night is not re-cut by today's file). After an
    edit, the cells it replaced were ranked beside their replacements, two look-alike rows."""
    kind = df.get("tags.ptbench.kind", pd.Series(None, index=df.index))
    col = lambda name: df.get(name, pd.Series(None, index=df.index))  # noqa: E731
    hashes = col("params.cell_hash").fillna(col("tags.ptbench.cell_hash"))
    cells = df[kind == "cell"]
    if df.attrs.get("night"):
        suites = df[kind == "suite"].assign(
            _order=pd.to_numeric(col(f"tags.{OPENED}"), errors="coerce").fillna(col("start_time"))
        )
        last = suites.sort_values("_order")["run_id"].iloc[-1] if not suites.empty else None
        planned = col(f"tags.{SUITE_RUN}").loc[cells.index].fillna("")
        grid = set(hashes.loc[cells.index][planned.isin(["", last])])
    elif current is not None and (cells_now := current.grid(df)) is not None:
        grid = set(cells_now)
    else:
        return df, ""
    out = set(hashes.loc[cells.index]) - grid
    if not out:
        return df, ""
    of = "the suite's grid as its file reads now"
    if df.attrs.get("night"):
        of = "the night's grid as it last ran"
    note = (
        f"{len(out)} recorded cell{'s are' if len(out) > 1 else ' is'} not in {of} (replaced or "
        "removed by an edit): not ranked here; their runs stay in MLflow (ptbench ui)"
    )
    return df[(kind == "suite") | hashes.isin(grid)], note


def _of_best(finals: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """The final runs of each cell's current best trial: a search extended with more trials may
    have found a better configuration, whose final runs replace the earlier ones."""
    if finals.empty or "run_id" not in cells or "tags.mlflow.parentRunId" not in finals:
        return finals
    best = dict(zip(cells["run_id"], metric_column(cells, "best_trial"), strict=True))
    source = finals.get("tags.ptbench.source_trial", pd.Series(None, index=finals.index))
    keep = [
        of_best(best.get(parent), src)
        for parent, src in zip(finals["tags.mlflow.parentRunId"], source, strict=True)
    ]
    return finals[keep]


def _run_ids(tc: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """Each cell's (experiment id, run id): what a link to the cell's MLflow run needs."""
    if tc.empty or "run_id" not in tc:
        return {}
    exp = tc["experiment_id"] if "experiment_id" in tc else pd.Series(None, index=tc.index)
    return {
        str(h): (str(e), str(r))
        for h, e, r in zip(tc["params.cell_hash"], exp, tc["run_id"], strict=True)
        if isinstance(r, str) and e is not None and e == e
    }


def _task_boards(
    task: str, tc: pd.DataFrame, trials: pd.DataFrame, tf: pd.DataFrame, failed: pd.DataFrame, reference
) -> list[Board]:
    groups = tf.groupby(["split", "version"], dropna=False)
    apart = groups.ngroups > 1
    clashes = _clashes(tc)
    boards = []
    for (split, version), f in groups:
        rows = [
            _cell_row(c, f, trials, failed)
            for _, c in tc.iterrows()
            if c["params.cell_hash"] in set(f["params.cell_hash"])
        ]
        if not rows:
            continue
        notes = (
            [
                "runs of this task with another split hash or suite version are in a separate "
                "table: they are never averaged together"
            ]
            if apart
            else []
        )
        views, more = board_views(pd.DataFrame(_distinct(rows, clashes)), f, reference)
        title = f"{task} [split {split}, suite v{version}]" if apart else task
        boards.append(Board(title, views, f, notes + more))
    waiting = [
        _cell_row(c, tf.iloc[0:0], trials, failed)
        for _, c in tc.iterrows()
        if c["params.cell_hash"] not in set(tf["params.cell_hash"])
    ]
    if not boards and not waiting:
        return []
    if not boards:
        trials_done = any(r["trials"] > r["pruned"] + r["failed"] for r in waiting)
        boards.append(Board(task, {}, tf.iloc[0:0], [_NO_FINALS[trials_done]]))
    if waiting:
        boards[0].views["unfinished"] = unfinished_view(pd.DataFrame(_distinct(waiting, clashes)))
        if boards[0].views.keys() != {"unfinished"}:
            boards[0].notes.append(
                f"{len(waiting)} of {len(tc)} cells have no finished final run; "
                "the 'unfinished' view gives each one's state, trial counts and error"
            )
    return boards


_NO_FINALS = {
    False: "no cell finished: no trial completed and there is no final run; the 'unfinished' "
    "view gives each cell's state, trial counts and error",
    True: "no cell has a finished final run: validation scores only, in the 'unfinished' view "
    "with each cell's state, trial counts and error",
}


def _cell_row(c: pd.Series, f: pd.DataFrame, trials: pd.DataFrame, failed: pd.DataFrame) -> dict:
    h = c.get("params.cell_hash")
    f = f[f["params.cell_hash"] == h]
    t = trials[trials["params.cell_hash"] == h] if not trials.empty else trials
    states = t.get("tags.ptbench.state", pd.Series(dtype=str))
    direction, metric = _objective(c)
    val_best = _num(c.get(f"metrics.best_{metric}"))
    if math.isnan(val_best) and not t.empty:
        done = t[states == "complete"]
        # trial runs log the value the search ranked as "objective" (older ones: the last epoch's)
        vals = metric_column(done, "objective").fillna(metric_column(done, metric)).dropna()
        val_best = (vals.max() if direction == "maximize" else vals.min()) if len(vals) else math.nan
    bad = failed[failed["params.cell_hash"] == h] if not failed.empty else failed
    row = {col: c.get(f"params.{PARAM.get(col, col)}") for col in CELL_COLS}
    row |= {
        "cell": h,
        "val_best": val_best,
        "_val_order": val_best if direction == "maximize" else -val_best,  # best first, either way
        "seeds": int(metric_column(f, "test_accuracy").notna().sum()),  # the values behind its ±
        "trials": int(states.isin(["complete", "pruned", "failed"]).sum()),
        "pruned": int((states == "pruned").sum()),
        "failed": int((states == "failed").sum()),
        "finals_failed": int((bad.get("tags.ptbench.kind", pd.Series(dtype=str)) == "final").sum()),
        "state": _state(c),
        "error": _error(bad),
        "_test": metric_column(f, "test_accuracy").tolist(),
        "_label": c.get("params.backbone"),  # the grid's full label: name(params)@source
    }
    # what a suite's rules (robustness.reference) see, whatever the board shows
    return row | {"_name": row["backbone"], "_weights": row["weights"]}


def _clashes(tc: pd.DataFrame) -> set[tuple]:
    """(name, weights) pairs that more than one backbone of the task shares: MiniLM at 3 and at
    6 layers, one pre-training recipe run for 1 and for 3 epochs."""
    labels: dict[tuple, set] = {}
    for _, c in tc.iterrows():
        key = (c.get("params.backbone.name"), c.get("params.backbone.weights"))
        labels.setdefault(key, set()).add(c.get("params.backbone"))
    return {k for k, v in labels.items() if len(v) > 1}


def _distinct(rows: list[dict], clashes: set[tuple]) -> list[dict]:
    """Rows of look-alike backbones show the grid's full label, split at its '@', in the backbone
    and weights columns — in every view of the board alike — never two identical rows."""
    for r in rows:
        if (r["backbone"], r["weights"]) in clashes and isinstance(r["_label"], str):
            r["backbone"], _, r["weights"] = r["_label"].partition("@")
    return rows


def _objective(c: pd.Series) -> tuple[str, str]:
    """A cell run's (direction, metric): the params ``objective.direction`` and ``objective.metric``,
    or, in stores written before them, the one param ``objective`` ("maximize val_accuracy")."""
    direction, metric = c.get("params.objective.direction"), c.get("params.objective.metric")
    if isinstance(direction, str) and isinstance(metric, str):
        return direction, metric
    old = c.get("params.objective")
    if isinstance(old, str) and len(old.split()) == 2:
        direction, metric = old.split()
        return direction, metric
    return "maximize", "val_accuracy"


def _state(c: pd.Series) -> str:
    """The cell run's status, with the reason the runner tagged (e.g. 'no completed trial')."""
    tag = c.get("tags.ptbench.state")
    status = str(c.get("status", "")).lower()
    return f"{status}: {tag}" if isinstance(tag, str) and tag else status


def _error(bad: pd.DataFrame) -> str:
    """The most frequent error of a cell's failed runs (the earliest on a tie), and how many
    other kinds there were."""
    if "start_time" in bad:
        bad = bad.sort_values("start_time", kind="stable")
    errors = Counter(
        e for e in bad.get("tags.ptbench.error", pd.Series(dtype=str)) if isinstance(e, str) and e
    )
    if not errors:
        return ""
    (top, n), others = errors.most_common(1)[0], len(errors) - 1
    more = f"; +{others} other error{'s' if others > 1 else ''}" if others else ""
    return top + (f" (×{n})" if n > 1 else "") + more


def _natural(label) -> list:
    """Task labels in reading order: shots=1, 5, 20, 100 — not 1, 100, 20, 5 as text sorts them."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(label))]
