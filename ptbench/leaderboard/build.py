"""Aggregate an experiment's runs into per-task views: generalization, robustness, cost, and the
pretrained-versus-random gap; one row per cell, mean ± 95% CI over seeds.

Only final runs carry test, shifted, corruption and attack metrics (search never sees them).
Runs whose split hash or suite version differ are never averaged together: they form separate
tables, with a note. A NaN metric stays missing, never zero. Cells without a finished final run
are listed, with state and error, in an 'unfinished' view: nothing is dropped silently.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from ptbench.errors import PtbenchError
from ptbench.jobs import of_best
from ptbench.leaderboard.stats import ci95, significantly_worse
from ptbench.schema import matches

CELL_COLS = ["backbone", "weights", "strategy", "regularizer"]
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


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _metric(df: pd.DataFrame, name: str) -> pd.Series:
    col = f"metrics.{name}"
    return df[col].astype(float) if col in df else pd.Series(math.nan, index=df.index)


def build_boards(df: pd.DataFrame, reference: dict[str, str] | None = None) -> list[Board]:
    """One board per task (and split hash and suite version). Cells without a finished final run
    (failed, still searching, or every trial failed) are listed in an 'unfinished' view with their
    state and error, never dropped: a suite whose cells all failed still gets a board."""
    kind = df.get("tags.ptbench.kind", pd.Series(dtype=str))
    cells, trials, finals = df[kind == "cell"], df[kind == "trial"], df[kind == "final"]
    finals = _of_best(finals, cells)
    failed = pd.concat([trials, finals])
    failed = failed[failed["status"] == "FAILED"]
    finals = finals[finals["status"] == "FINISHED"].copy()
    if finals.empty and cells.empty:
        raise PtbenchError("the suite has no cell runs yet; run 'ptbench run' first")
    finals["split"] = finals.get("tags.ptbench.split_hash", pd.Series("—", index=finals.index))
    finals["version"] = finals.get("params.suite_version", pd.Series("?", index=finals.index))
    tasks = set(finals["params.task"]) | set(cells.get("params.task", pd.Series(dtype=str)))
    boards = []
    for task in sorted(tasks, key=str):
        tc = cells[cells["params.task"] == task] if not cells.empty else cells
        made = _task_boards(str(task), tc, trials, finals[finals["params.task"] == task], failed, reference)
        for b in made:
            b.runs = _run_ids(tc)
        boards += made
    if not boards:
        raise PtbenchError("the suite's final runs have no cell runs in the tracking store")
    return boards


def _of_best(finals: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """The final runs of each cell's current best trial: a search extended with more trials may
    have found a better configuration, whose final runs replace the earlier ones."""
    if finals.empty or "run_id" not in cells or "tags.mlflow.parentRunId" not in finals:
        return finals
    best = dict(zip(cells["run_id"], _metric(cells, "best_trial"), strict=True))
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
        views, more = _views(pd.DataFrame(rows), f, reference)
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
        boards[0].views["unfinished"] = _unfinished(pd.DataFrame(waiting))
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
        vals = _metric(t[states == "complete"], metric).dropna()
        val_best = (vals.max() if direction == "maximize" else vals.min()) if len(vals) else math.nan
    bad = failed[failed["params.cell_hash"] == h] if not failed.empty else failed
    row = {col: c.get(f"params.{PARAM.get(col, col)}") for col in CELL_COLS}
    row |= {
        "cell": h,
        "val_best": val_best,
        "seeds": len(f),
        "trials": int(states.isin(["complete", "pruned", "failed"]).sum()),
        "pruned": int((states == "pruned").sum()),
        "failed": int((states == "failed").sum()),
        "finals_failed": int((bad.get("tags.ptbench.kind", pd.Series(dtype=str)) == "final").sum()),
        "state": _state(c),
        "error": _error(bad),
        "_test": _metric(f, "test_accuracy").tolist(),
    }
    return row


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


def _unfinished(w: pd.DataFrame) -> pd.DataFrame:
    cols = ["state", "val_best", "trials", "pruned", "failed", "finals_failed", "error", "cell"]
    return w[CELL_COLS + cols].sort_values(["val_best", "cell"], ascending=[False, True], na_position="last")


def _present(f: pd.DataFrame) -> list[str]:
    """Metric columns with at least one value in these runs (other tasks leave theirs empty)."""
    return [c for c in f.columns if c.startswith("metrics.") and f[c].notna().any()]


def cell_mean(f: pd.DataFrame, h: str, name: str) -> float:
    v = _metric(f[f["params.cell_hash"] == h], name).dropna()
    return float(v.mean()) if len(v) else math.nan


def _generalization(t: pd.DataFrame, f: pd.DataFrame) -> pd.DataFrame:
    out = t[["backbone", "weights", "strategy", "regularizer", "val_best"]].copy()
    means, cis = zip(*[ci95(v) for v in t["_test"]], strict=True)
    out["test_acc"], out["test_acc_ci95"] = means, cis
    for m in ("test_macro_f1", "test_nll", "test_ece", "test_brier"):
        out[m.removeprefix("test_")] = [cell_mean(f, h, m) for h in t["cell"]]
    shifted = sorted(
        {
            c.removeprefix("metrics.")
            for c in _present(f)
            if c.startswith("metrics.shifted_") and c.endswith("_accuracy")
        }
    )
    for s in shifted:
        out[s.removesuffix("_accuracy")] = [cell_mean(f, h, s) for h in t["cell"]]
        out[s.replace("_accuracy", "_gap")] = [
            cell_mean(f, h, s.replace("_accuracy", "_gap")) for h in t["cell"]
        ]
    out["seeds"] = t["seeds"]
    out["rank"] = out["test_acc"].rank(ascending=False, method="min", na_option="bottom").astype(int)
    best = t["_test"][out["test_acc"].idxmax()] if out["test_acc"].notna().any() else []
    out["≈best"] = [_vs_best(v, best) for v in t["_test"]]
    out["cell"] = t["cell"]
    return out.sort_values(["rank", "cell"])


def _vs_best(values: list[float], best: list[float]) -> str:
    """'best', '≈' (not significantly worse by Welch's t-test), '' (significantly worse), or
    'n/a (k seeds)' when either side has fewer than 2 seeds: one seed gives no interval, so
    nothing can be claimed either way."""
    a = [x for x in values if x == x]
    if not a:
        return ""
    if values is best:
        return "best"
    n = min(len(a), len([x for x in best if x == x]))
    if n < 2:
        return f"n/a ({n} seed{'' if n == 1 else 's'})"
    return "" if significantly_worse(values, best) else "≈"


def _robustness(
    t: pd.DataFrame, f: pd.DataFrame, reference: dict[str, str] | None
) -> tuple[pd.DataFrame | None, list[str]]:
    corr = sorted(
        {
            c.removeprefix("metrics.")
            for c in _present(f)
            if c.startswith("metrics.corr_") and "_s" in c and c.endswith("_accuracy")
        }
    )
    adv = sorted({c.removeprefix("metrics.") for c in _present(f) if c.startswith("metrics.adv_")})
    if not corr and not adv:
        return None, []
    out = t[CELL_COLS].copy()
    out["clean"] = [cell_mean(f, h, "corr_clean_accuracy") for h in t["cell"]]
    notes = []
    if corr:
        out["corrupted"] = [cell_mean(f, h, "corr_mean_accuracy") for h in t["cell"]]
        out["relative"] = [cell_mean(f, h, "corr_relative") for h in t["cell"]]
        ref, note = mce_reference(t, reference)
        out["mCE"] = _mce(t, f, corr, ref)
        notes.append(note)
    for a in adv:
        out[a.removeprefix("adv_").removesuffix("_accuracy")] = [cell_mean(f, h, a) for h in t["cell"]]
    out["cell"] = t["cell"]
    key = "corrupted" if corr else out.columns[len(CELL_COLS) + 1]
    return out.sort_values(key, ascending=False), notes


def mce_reference(t: pd.DataFrame, reference: dict[str, str] | None) -> tuple[str | None, str]:
    """The cell whose corruption error normalises mCE, and a note that names it. Several cells
    may match the suite's rule; the choice must not depend on the order the store returns runs
    in, so: regularizer 'none' first, then by backbone, weights, strategy and regularizer names,
    then by cell hash."""
    if not reference:
        return None, "mCE is left empty: the suite names no robustness.reference cell"
    rule = "{" + ", ".join(f"{k}: {v}" for k, v in reference.items()) + "}"
    rows = [
        r
        for r in t[[*CELL_COLS, "cell"]].to_dict("records")
        if matches(reference, {k: str(r[k]) for k in CELL_COLS})
    ]
    if not rows:
        return None, f"mCE is left empty: no cell with final runs matches the reference rule {rule}"
    rows.sort(key=lambda r: (str(r["regularizer"]) != "none", *(str(r[k]) for k in (*CELL_COLS, "cell"))))
    r = rows[0]
    note = (
        f"mCE reference: {r['backbone']}@{r['weights']} {r['strategy']} {r['regularizer']} "
        f"(cell {r['cell']}), matching the rule {rule}"
    )
    if len(rows) > 1:
        note += (
            f"; {len(rows)} cells match it: the one with regularizer 'none' comes first, then by "
            "backbone, weights, strategy and regularizer names, then by cell hash"
        )
    return r["cell"], note


def _mce(t: pd.DataFrame, f: pd.DataFrame, corr: list[str], ref: str | None) -> list[float]:
    """Corruption error normalised per family by the reference cell, averaged (ImageNet-C mCE)."""
    if ref is None:
        return [math.nan] * len(t)
    families = sorted({c.removeprefix("corr_").rsplit("_s", 1)[0] for c in corr})
    out = []
    for h in t["cell"]:
        ces = []
        for fam in families:
            cols = [c for c in corr if c.startswith(f"corr_{fam}_s")]
            err = sum(1 - cell_mean(f, h, c) for c in cols)
            ref_err = sum(1 - cell_mean(f, ref, c) for c in cols)
            ces.append(err / ref_err if ref_err > 0 else math.nan)
        out.append(sum(ces) / len(ces) if ces else math.nan)
    return out


def _cost(t: pd.DataFrame, f: pd.DataFrame) -> pd.DataFrame:
    """peak_mem_mb: each final run's own peak (CUDA: allocated; CPU: resident set above the
    job's start, ptbench/train/memory.py), never the worker's lifetime peak."""
    out = t[CELL_COLS].copy()
    out["test_acc"] = [ci95(v)[0] for v in t["_test"]]
    for m, col in (
        ("trainable_params", "trainable_params"),
        ("train_seconds", "train_s"),
        ("eval_seconds", "eval_s"),
        ("peak_mem_mb", "peak_mem_mb"),
    ):
        out[col] = [cell_mean(f, h, m) for h in t["cell"]]
    out["trials"], out["pruned"], out["failed"] = t["trials"], t["pruned"], t["failed"]
    out["cell"] = t["cell"]
    return out.sort_values("train_s")


def _gap(t: pd.DataFrame) -> pd.DataFrame | None:
    """Pretrained minus random-init test accuracy, per backbone × strategy × regularizer."""
    acc = {
        tuple(r[c] for c in CELL_COLS): ci95(v)[0]
        for r, v in zip(t[CELL_COLS].to_dict("records"), t["_test"], strict=True)
    }
    rows = []
    for (bb, w, s, r), a in acc.items():
        control = acc.get((bb, "none", s, r))
        if w != "none" and control is not None:
            rows.append(
                {
                    "backbone": bb,
                    "weights": w,
                    "strategy": s,
                    "regularizer": r,
                    "pretrained": a,
                    "random_init": control,
                    "gap": a - control,
                }
            )
    return pd.DataFrame(rows).sort_values("gap", ascending=False) if rows else None


def _views(t: pd.DataFrame, f: pd.DataFrame, reference) -> tuple[dict[str, pd.DataFrame], list[str]]:
    views = {"generalization": _generalization(t, f)}
    rob, notes = _robustness(t, f, reference)
    if rob is not None:
        views["robustness"] = rob
    views["cost"] = _cost(t, f)
    gap = _gap(t)
    if gap is not None:
        views["pretrained vs random"] = gap
    return views, notes
