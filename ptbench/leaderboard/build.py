"""Aggregate an experiment's runs into a per-task table: one row per cell, ranked.

Only final runs carry test metrics (search never sees test data). Rows whose split hash
differs are never averaged together: the task key includes the split hash.
"""

from __future__ import annotations

import math

import pandas as pd

from ptbench.errors import PtbenchError

COLUMNS = [
    "rank",
    "backbone",
    "weights",
    "strategy",
    "regularizer",
    "val_best",
    "test_acc",
    "test_acc_std",
    "seeds",
    "shifted_acc",
    "test_ece",
    "trials",
    "pruned",
    "failed",
    "trainable_params",
    "train_s",
    "cell",
]


def _num(v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def build_leaderboard(tracking_uri: str, suite_name: str) -> dict[str, pd.DataFrame]:
    """``{task label: table}`` from the MLflow store at ``tracking_uri``."""
    from ptbench.tracking import Tracker

    records = Tracker(tracking_uri).runs_records(suite_name)
    if not records:
        raise PtbenchError(f"no runs for suite '{suite_name}' in the tracking store; run 'ptbench run' first")
    df = pd.DataFrame(records)
    kind = df.get("tags.ptbench.kind", pd.Series(dtype=str))
    cells, trials, finals = df[kind == "cell"], df[kind == "trial"], df[kind == "final"]
    finals = finals[finals["status"] == "FINISHED"]
    if finals.empty and trials.empty:
        raise PtbenchError(f"suite '{suite_name}' has no finished runs yet")
    rows = []
    for _, c in cells.iterrows():
        h = c.get("params.cell_hash")
        t = trials[trials["params.cell_hash"] == h] if not trials.empty else trials
        f = finals[finals["params.cell_hash"] == h] if not finals.empty else finals
        states = t.get("tags.ptbench.state", pd.Series(dtype=str))
        objective = str(c.get("params.objective", "maximize val_accuracy")).split()
        val_col = f"metrics.best_{objective[-1]}"
        if val_col in c and not pd.isna(c[val_col]):
            val_best = _num(c[val_col])
        else:
            vals = (
                t.loc[states == "complete", f"metrics.{objective[-1]}"]
                if not t.empty and f"metrics.{objective[-1]}" in t
                else pd.Series(dtype=float)
            )
            val_best = (vals.max() if objective[0] == "maximize" else vals.min()) if len(vals) else math.nan
        split = f["tags.ptbench.split_hash"].dropna().unique() if "tags.ptbench.split_hash" in f else []
        shifted_cols = [k for k in f.columns if k.startswith("metrics.shifted_") and k.endswith("_accuracy")]
        test = (
            f["metrics.test_accuracy"].astype(float)
            if "metrics.test_accuracy" in f
            else pd.Series(dtype=float)
        )
        rows.append(
            {
                "task": c.get("params.task", "?"),
                "split": ",".join(sorted(split)) or "—",
                "backbone": c.get("params.backbone.name"),
                "weights": c.get("params.backbone.weights"),
                "strategy": c.get("params.strategy"),
                "regularizer": c.get("params.regularizer"),
                "val_best": val_best,
                "test_acc": test.mean() if len(test) else math.nan,
                "test_acc_std": test.std(ddof=1) if len(test) > 1 else math.nan,  # undefined for 1 seed
                "seeds": len(test),
                "shifted_acc": f[shifted_cols].astype(float).mean(axis=1).mean()
                if shifted_cols and len(f)
                else math.nan,
                "test_ece": f["metrics.test_ece"].astype(float).mean()
                if "metrics.test_ece" in f and len(f)
                else math.nan,
                "trials": int(states.isin(["complete", "pruned", "failed"]).sum()),
                "pruned": int((states == "pruned").sum()),
                "failed": int((states == "failed").sum()),
                "trainable_params": _num(f["metrics.trainable_params"].iloc[0])
                if "metrics.trainable_params" in f and len(f)
                else math.nan,
                "train_s": f["metrics.train_seconds"].astype(float).mean()
                if "metrics.train_seconds" in f and len(f)
                else math.nan,
                "cell": h,
                "_maximize": objective[0] == "maximize",
            }
        )
    table = pd.DataFrame(rows)
    out: dict[str, pd.DataFrame] = {}
    for (task, split), g in table.groupby(["task", "split"], sort=True):
        g = g.copy()
        by_test = g["test_acc"].notna().any()
        key = g["test_acc"] if by_test else g["val_best"] * (1 if g["_maximize"].all() else -1)
        g["rank"] = key.rank(ascending=False, method="min", na_option="bottom").astype(int)
        g = g.sort_values(["rank", "cell"])
        label = task if table[table["task"] == task]["split"].nunique() == 1 else f"{task} [split {split}]"
        out[label] = g[COLUMNS].reset_index(drop=True)
    return out
