"""The views of one task's board, from its cell rows (``build._cell_row``) and final runs:
generalization (with the ≈best test), robustness (with mCE), cost, and the pretrained-versus-
random gap. A NaN metric stays missing, never zero.
"""

from __future__ import annotations

import math

import pandas as pd

from ptbench.leaderboard.stats import ci95, holm_rejected, worse_p
from ptbench.schema import matches

CELL_COLS = ["backbone", "weights", "strategy", "regularizer"]


def metric_column(df: pd.DataFrame, name: str) -> pd.Series:
    col = f"metrics.{name}"
    return df[col].astype(float) if col in df else pd.Series(math.nan, index=df.index)


def unfinished_view(w: pd.DataFrame) -> pd.DataFrame:
    cols = ["state", "val_best", "trials", "pruned", "failed", "finals_failed", "error", "cell"]
    order = w["_val_order"] if "_val_order" in w else w["val_best"]  # minimised val_loss: lowest first
    w = w.assign(_order=order).sort_values(["_order", "cell"], ascending=[False, True], na_position="last")
    return w[CELL_COLS + cols]


def _present(f: pd.DataFrame) -> list[str]:
    """Metric columns with at least one value in these runs (other tasks leave theirs empty)."""
    return [c for c in f.columns if c.startswith("metrics.") and f[c].notna().any()]


def cell_mean(f: pd.DataFrame, h: str, name: str) -> float:
    v = metric_column(f[f["params.cell_hash"] == h], name).dropna()
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
    ps = [math.nan if v is best else worse_p(v, best) for v in t["_test"]]
    out["≈best"] = [_vs_best(v, best, worse) for v, worse in zip(t["_test"], holm_rejected(ps), strict=True)]
    tied = out["test_acc"].notna() & (out["test_acc"] == out["test_acc"].max())
    out.loc[tied, "≈best"] = "best"  # equal means are equally best, not best and "≈"
    out["cell"] = t["cell"]
    return out.sort_values(["rank", "cell"])


def _vs_best(values: list[float], best: list[float], worse: bool) -> str:
    """'best', '≈' (not significantly worse: Welch's t-test, Holm-corrected over the board),
    '' (significantly worse), or 'n/a (k seeds)' when either side has fewer than 2 seeds: one
    seed gives no interval, so nothing can be claimed either way."""
    a = [x for x in values if x == x]
    if not a:
        return "—"  # no test value: not "significantly worse" (which '' says)
    if values is best:
        return "best"
    n_best = len([x for x in best if x == x])
    if len(a) < 2:
        return f"n/a ({len(a)} seed)"
    if n_best < 2:
        return f"n/a (best: {n_best} seed)"
    return "" if worse else "≈"


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
    if corr:  # clean accuracy on the corrupted subset: logged with the corruptions only
        out["clean"] = [cell_mean(f, h, "corr_clean_accuracy") for h in t["cell"]]
    notes = []
    if corr:
        out["corrupted"] = [cell_mean(f, h, "corr_mean_accuracy") for h in t["cell"]]
        out["relative"] = [cell_mean(f, h, "corr_relative") for h in t["cell"]]
        ref, note = mce_reference(t, reference)
        out["mCE"] = _mce(t, f, corr, ref)
        notes.append(note)
    for a in sorted(adv, key=_attack_order):
        out[a.removeprefix("adv_").removesuffix("_accuracy")] = [cell_mean(f, h, a) for h in t["cell"]]
    out["cell"] = t["cell"]
    # without corruptions: by the strongest attack (the last column: PGD at the largest eps)
    key = "corrupted" if corr else out.columns[-2]
    return out.sort_values(key, ascending=False, na_position="last"), notes


def _attack_order(column: str) -> tuple[str, float, str]:
    """Attack columns by attack, then eps as a number (as text, 1e-05 came after 0.03)."""
    attack, _, rest = column.removeprefix("adv_").removesuffix("_accuracy").partition("_eps")
    try:
        return ({"fgsm": "0", "pgd": "1"}.get(attack, attack), float(rest), column)
    except ValueError:
        return (attack, math.inf, column)


def mce_reference(t: pd.DataFrame, reference: dict[str, str] | None) -> tuple[str | None, str]:
    """The cell whose corruption error normalises mCE, and a note that names it. Several cells
    may match the suite's rule; the choice must not depend on the order the store returns runs
    in, so: regularizer 'none' first, then by backbone, weights, strategy and regularizer names,
    then by cell hash."""
    if not reference:
        return None, "mCE is left empty: the suite names no robustness.reference cell"
    rule = "{" + ", ".join(f"{k}: {v}" for k, v in reference.items()) + "}"
    short = [c for c in ("_name", "_weights") if c in t]  # the names rules see (build._cell_row)
    rows = [
        r for r in t[[*CELL_COLS, "cell", *short]].to_dict("records") if matches(reference, _rule_labels(r))
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


def _rule_labels(r: dict) -> dict[str, str]:
    """A row as include/exclude-style rules see it: the backbone's name and short weights label
    (``efficientnet_lite0``, ``none``), even where the board shows a fuller one."""
    labels = {k: str(r[k]) for k in CELL_COLS}
    return labels | {
        "backbone": str(r.get("_name", r["backbone"])),
        "weights": str(r.get("_weights", r["weights"])),
    }


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


def _training_seconds(runs: pd.DataFrame) -> float:
    """Mean over runs of train seconds less each run's own encoding (0 where not logged)."""
    own = metric_column(runs, "train_seconds") - metric_column(runs, "encode_seconds").fillna(0.0)
    own = own.dropna()
    return float(own.mean()) if len(own) else math.nan


def _cost(t: pd.DataFrame, f: pd.DataFrame) -> pd.DataFrame:
    """peak_mem_mb: each final run's own peak (CUDA: allocated; CPU: resident set above the
    job's start, ptbench/train/memory.py), never the worker's lifetime peak."""
    out = t[CELL_COLS].copy()
    out["test_acc"] = [ci95(v)[0] for v in t["_test"]]
    for m, col in (
        ("trainable_params", "trainable_params"),
        ("train_seconds", "train_s"),
        ("encode_seconds", "encode_s"),
        ("eval_seconds", "eval_s"),
        ("peak_mem_mb", "peak_mem_mb"),
    ):
        out[col] = [cell_mean(f, h, m) for h in t["cell"]]
    # train_seconds includes a probe's feature encoding, paid by whichever seed found the cache
    # cold (40 s once, then 0): the training itself, run by run, with the encoding beside it
    out["train_s"] = [_training_seconds(f[f["params.cell_hash"] == h]) for h in t["cell"]]
    out["trials"], out["pruned"], out["failed"] = t["trials"], t["pruned"], t["failed"]
    out["cell"] = t["cell"]
    return out.sort_values("train_s")


def _gap(t: pd.DataFrame) -> pd.DataFrame | None:
    """Pretrained minus random-init test accuracy, per backbone × strategy × regularizer. A
    control pairs with the backbones built as it is — same name and params (the grid label
    before its '@') — whatever the leaderboard shows for them."""
    labels = t["_label"] if "_label" in t else pd.Series(None, index=t.index)
    rows, acc = [], {}
    for r, label, v in zip(t[CELL_COLS].to_dict("records"), labels, t["_test"], strict=True):
        arch = label.partition("@")[0] if isinstance(label, str) else r["backbone"]
        acc[arch, r["weights"], r["strategy"], r["regularizer"]] = (r, ci95(v)[0])
    for (arch, w, s, reg), (r, a) in acc.items():
        control = acc.get((arch, "none", s, reg))
        if w != "none" and control is not None:
            rows.append(r | {"pretrained": a, "random_init": control[1], "gap": a - control[1]})
    return pd.DataFrame(rows).sort_values("gap", ascending=False) if rows else None


def board_views(t: pd.DataFrame, f: pd.DataFrame, reference) -> tuple[dict[str, pd.DataFrame], list[str]]:
    views = {"generalization": _generalization(t, f)}
    rob, notes = _robustness(t, f, reference)
    if rob is not None:
        views["robustness"] = rob
    views["cost"] = _cost(t, f)
    gap = _gap(t)
    if gap is not None:
        views["pretrained vs random"] = gap
    return views, notes
