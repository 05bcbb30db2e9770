"""Aggregate an experiment's runs into per-task views: generalization, robustness, cost, and the
pretrained-versus-random gap; one row per cell, mean ± 95% CI over seeds.

Only final runs carry test, shifted, corruption and attack metrics (search never sees them).
Runs whose split hash or suite version differ are never averaged together: they form separate
tables, with a note. A NaN metric stays missing, never zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from ptbench.errors import PtbenchError
from ptbench.leaderboard.stats import ci95, significantly_worse

CELL_COLS = ["backbone", "weights", "strategy", "regularizer"]
PARAM = {"backbone": "backbone.name", "weights": "backbone.weights"}  # column → MLflow param


@dataclass
class Board:
    """All views of one task (and split hash, and suite version)."""

    title: str
    views: dict[str, pd.DataFrame]
    finals: pd.DataFrame  # per-seed final runs, for plots
    notes: list[str] = field(default_factory=list)


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def load_runs(tracking_uri: str, suite_name: str) -> pd.DataFrame:
    from ptbench.tracking import Tracker

    records = Tracker(tracking_uri).runs_records(suite_name)
    if not records:
        raise PtbenchError(f"no runs for suite '{suite_name}' in the tracking store; run 'ptbench run' first")
    return pd.DataFrame(records)


def _metric(df: pd.DataFrame, name: str) -> pd.Series:
    col = f"metrics.{name}"
    return df[col].astype(float) if col in df else pd.Series(math.nan, index=df.index)


def build_boards(df: pd.DataFrame, reference: dict[str, str] | None = None) -> list[Board]:
    kind = df.get("tags.ptbench.kind", pd.Series(dtype=str))
    cells, trials, finals = df[kind == "cell"], df[kind == "trial"], df[kind == "final"]
    finals = finals[finals["status"] == "FINISHED"].copy()
    if finals.empty and trials.empty:
        raise PtbenchError("the suite has no finished runs yet")
    finals["split"] = finals.get("tags.ptbench.split_hash", pd.Series("—", index=finals.index))
    finals["version"] = finals.get("params.suite_version", pd.Series("?", index=finals.index))
    groups = finals.groupby(["params.task", "split", "version"], dropna=False)
    tasks = finals["params.task"].unique()
    boards = []
    for (task, split, version), f in groups:
        same_task = finals[finals["params.task"] == task]
        apart = same_task[["split", "version"]].drop_duplicates().shape[0] > 1
        title = f"{task} [split {split}, suite v{version}]" if apart else str(task)
        notes = (
            [
                "runs of this task with another split hash or suite version are in a separate "
                "table: they are never averaged together"
            ]
            if apart
            else []
        )
        rows = [
            _cell_row(c, f, trials)
            for _, c in cells.iterrows()
            if c.get("params.task") == task and (f["params.cell_hash"] == c["params.cell_hash"]).any()
        ]
        table = pd.DataFrame(rows)
        if table.empty:
            continue
        boards.append(Board(title, _views(table, f, reference), f, notes))
    for task in set(cells.get("params.task", pd.Series(dtype=str))) - set(tasks):
        rows = [
            _cell_row(c, finals.iloc[0:0], trials)
            for _, c in cells.iterrows()
            if c.get("params.task") == task
        ]
        boards.append(
            Board(
                str(task),
                {"generalization": _generalization(pd.DataFrame(rows))},
                finals.iloc[0:0],
                ["no final runs yet: validation scores only"],
            )
        )
    return boards


def _cell_row(c: pd.Series, f: pd.DataFrame, trials: pd.DataFrame) -> dict:
    h = c.get("params.cell_hash")
    f = f[f["params.cell_hash"] == h]
    t = trials[trials["params.cell_hash"] == h] if not trials.empty else trials
    states = t.get("tags.ptbench.state", pd.Series(dtype=str))
    direction, metric = str(c.get("params.objective", "maximize val_accuracy")).split()
    val_best = _num(c.get(f"metrics.best_{metric}"))
    if math.isnan(val_best) and not t.empty:
        vals = _metric(t[states == "complete"], metric).dropna()
        val_best = (vals.max() if direction == "maximize" else vals.min()) if len(vals) else math.nan
    row = {col: c.get(f"params.{PARAM.get(col, col)}") for col in CELL_COLS}
    row |= {
        "cell": h,
        "val_best": val_best,
        "seeds": len(f),
        "trials": int(states.isin(["complete", "pruned", "failed"]).sum()),
        "pruned": int((states == "pruned").sum()),
        "failed": int((states == "failed").sum()),
        "_test": _metric(f, "test_accuracy").tolist(),
    }
    return row


def _present(f: pd.DataFrame) -> list[str]:
    """Metric columns with at least one value in these runs (other tasks leave theirs empty)."""
    return [c for c in f.columns if c.startswith("metrics.") and f[c].notna().any()]


def cell_mean(f: pd.DataFrame, h: str, name: str) -> float:
    v = _metric(f[f["params.cell_hash"] == h], name).dropna()
    return float(v.mean()) if len(v) else math.nan


def _generalization(t: pd.DataFrame, f: pd.DataFrame | None = None) -> pd.DataFrame:
    out = t[["backbone", "weights", "strategy", "regularizer", "val_best"]].copy()
    if f is None or f.empty:
        out["rank"] = out["val_best"].rank(ascending=False, method="min", na_option="bottom").astype(int)
        return out.sort_values("rank")
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
    out["≈best"] = [
        "" if not v else "best" if v is best else ("" if significantly_worse(v, best) else "≈")
        for v in t["_test"]
    ]
    out["cell"] = t["cell"]
    return out.sort_values(["rank", "cell"])


def _robustness(t: pd.DataFrame, f: pd.DataFrame, reference: dict[str, str] | None) -> pd.DataFrame | None:
    corr = sorted(
        {
            c.removeprefix("metrics.")
            for c in _present(f)
            if c.startswith("metrics.corr_") and "_s" in c and c.endswith("_accuracy")
        }
    )
    adv = sorted({c.removeprefix("metrics.") for c in _present(f) if c.startswith("metrics.adv_")})
    if not corr and not adv:
        return None
    out = t[CELL_COLS].copy()
    out["clean"] = [cell_mean(f, h, "corr_clean_accuracy") for h in t["cell"]]
    if corr:
        out["corrupted"] = [cell_mean(f, h, "corr_mean_accuracy") for h in t["cell"]]
        out["relative"] = [cell_mean(f, h, "corr_relative") for h in t["cell"]]
        out["mCE"] = _mce(t, f, corr, reference)
    for a in adv:
        out[a.removeprefix("adv_").removesuffix("_accuracy")] = [cell_mean(f, h, a) for h in t["cell"]]
    out["cell"] = t["cell"]
    key = "corrupted" if corr else out.columns[len(CELL_COLS) + 1]
    return out.sort_values(key, ascending=False)


def _mce(t: pd.DataFrame, f: pd.DataFrame, corr: list[str], reference: dict[str, str] | None) -> list[float]:
    """Corruption error normalised per family by a reference cell, averaged (ImageNet-C mCE)."""
    from ptbench.suite.grid import matches

    ref_rows = [
        h
        for h, r in zip(t["cell"], t[CELL_COLS].to_dict("records"), strict=True)
        if reference and matches(reference, {k: str(v) for k, v in r.items()})
    ]
    if not ref_rows:
        return [math.nan] * len(t)
    ref = ref_rows[0]
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


def _views(t: pd.DataFrame, f: pd.DataFrame, reference) -> dict[str, pd.DataFrame]:
    views = {"generalization": _generalization(t, f)}
    rob = _robustness(t, f, reference)
    if rob is not None:
        views["robustness"] = rob
    views["cost"] = _cost(t, f)
    gap = _gap(t)
    if gap is not None:
        views["pretrained vs random"] = gap
    return views
