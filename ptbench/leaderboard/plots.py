"""Leaderboard plots (matplotlib, Agg): accuracy against severity per corruption family,
reliability diagrams, a backbone × strategy heatmap, accuracy against cost with its Pareto
front, and few-shot curves across data regimes."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from ptbench.leaderboard.build import cell_mean

TOP = 6  # cells drawn in line plots, best first


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: Path, rect=(0, 0, 1, 1)) -> Path:
    fig.tight_layout(rect=rect)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _label(row) -> str:
    return f"{row['backbone']}@{row['weights']} {row['strategy']} {row['regularizer']}"


def _top(board) -> pd.DataFrame:
    return board.views["generalization"].head(TOP)


def severity_plot(board, path: Path) -> Path | None:
    cols = sorted(
        {
            c.removeprefix("metrics.")
            for c in board.finals.columns
            if re.match(r"metrics\.corr_.+_s\d_accuracy$", c)
        }
    )
    if not cols:
        return None
    families = sorted({c.removeprefix("corr_").rsplit("_s", 1)[0] for c in cols})
    plt = _plt()
    n = len(families)
    ncol = min(5, n)
    fig, axes = plt.subplots(
        math.ceil(n / ncol), ncol, figsize=(3.2 * ncol, 2.6 * math.ceil(n / ncol)), squeeze=False, sharey=True
    )
    for ax, fam in zip(axes.flat, families, strict=False):
        for _, row in _top(board).iterrows():
            levels = sorted(
                int(c.rsplit("_s", 1)[1].split("_")[0]) for c in cols if c.startswith(f"corr_{fam}_s")
            )
            ys = [cell_mean(board.finals, row["cell"], "corr_clean_accuracy")] + [
                cell_mean(board.finals, row["cell"], f"corr_{fam}_s{s}_accuracy") for s in levels
            ]
            ax.plot([0, *levels], ys, marker="o", ms=3, label=_label(row))
        ax.set_title(fam, fontsize=9)
        ax.set_xlabel("severity", fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes[0][0].set_ylabel("accuracy")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", fontsize=7, ncol=2)
    return _save(plt, fig, path, rect=(0, 0.12, 1, 1))


def reliability_plot(board, path: Path) -> Path | None:
    f = board.finals
    if "metrics.test_rel_b00_n" not in f:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    for _, row in _top(board).head(4).iterrows():
        rows = f[f["params.cell_hash"] == row["cell"]]
        xs, ys = [], []
        for b in range(15):
            n = rows.get(f"metrics.test_rel_b{b:02d}_n", pd.Series(dtype=float)).astype(float)
            conf = rows.get(f"metrics.test_rel_b{b:02d}_conf", pd.Series(dtype=float)).astype(float)
            acc = rows.get(f"metrics.test_rel_b{b:02d}_acc", pd.Series(dtype=float)).astype(float)
            tot = n.sum()
            if tot > 0:
                xs.append(float((conf.fillna(0) * n).sum() / tot))
                ys.append(float((acc.fillna(0) * n).sum() / tot))
        ax.plot(xs, ys, marker="o", ms=3, label=_label(row))
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title("reliability (test, 15 bins)")
    ax.legend(fontsize=6)
    return _save(plt, fig, path)


def heatmap_plot(board, path: Path) -> Path | None:
    g = board.views.get("generalization")
    if g is None or "test_acc" not in g or g["test_acc"].isna().all():
        return None
    g = g.assign(model=g["backbone"] + "@" + g["weights"])
    pivot = g.pivot_table(index="model", columns="strategy", values="test_acc", aggfunc="max")
    plt = _plt()
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * pivot.shape[1], 1.2 + 0.5 * pivot.shape[0]))
    im = ax.imshow(pivot.values, cmap="viridis", aspect="auto")
    ax.set_xticks(range(pivot.shape[1]), pivot.columns, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(pivot.shape[0]), pivot.index, fontsize=8)
    for i in range(pivot.shape[0]):
        for j in range(pivot.shape[1]):
            v = pivot.values[i, j]
            if v == v:
                ax.text(j, i, f"{v:.3f}", ha="center", va="center", color="w", fontsize=8)
    fig.colorbar(im, ax=ax, label="test accuracy (best regularizer)")
    return _save(plt, fig, path)


def pareto_plot(board, path: Path) -> Path | None:
    if "cost" not in board.views:
        return None
    c = board.views["cost"].dropna(subset=["test_acc", "train_s"])
    if c.empty:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.scatter(c["train_s"], c["test_acc"], s=18)
    front, best = [], -math.inf
    for _, r in c.sort_values("train_s").iterrows():
        if r["test_acc"] > best:
            best = r["test_acc"]
            front.append(r)
    ax.step(
        [r["train_s"] for r in front],
        [r["test_acc"] for r in front],
        where="post",
        color="C3",
        label="Pareto front",
    )
    for r in front:
        ax.annotate(f"{r['strategy']}/{r['weights']}", (r["train_s"], r["test_acc"]), fontsize=6)
    ax.set_xscale("log")
    ax.set_xlabel("train seconds (final run)")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=7)
    return _save(plt, fig, path)


REGIME = re.compile(r"(shots|label_fraction)=([0-9.]+)")


def fewshot_plot(boards, path: Path) -> Path | None:
    """Accuracy against k (shots) or label fraction, for tasks that differ only by that regime."""
    points: dict[tuple, list[tuple[float, float]]] = {}
    for b in boards:
        m = REGIME.search(b.title)
        if not m or "test_acc" not in b.views.get("generalization", {}):
            continue
        base = REGIME.sub("", b.title)
        for _, r in b.views["generalization"].iterrows():
            points.setdefault((base, m.group(1), _label(r)), []).append((float(m.group(2)), r["test_acc"]))
    curves = {k: sorted(v) for k, v in points.items() if len(v) > 1}
    if not curves:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for (base, regime, label), pts in curves.items():
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{base}: {label}")
        ax.set_xlabel(regime)
    ax.set_ylabel("test accuracy")
    ax.set_xscale("log")
    ax.legend(fontsize=6)
    return _save(plt, fig, path)


def all_plots(boards, directory: Path) -> dict[str, list[Path]]:
    """PNG files per board title (plus 'few-shot' across boards)."""
    directory.mkdir(parents=True, exist_ok=True)
    out: dict[str, list[Path]] = {}
    for i, b in enumerate(boards):
        if b.finals.empty:  # no cell of this task finished: nothing to draw
            out[b.title] = []
            continue
        made = [
            fn(b, directory / f"{name}-{i}.png")
            for name, fn in (
                ("severity", severity_plot),
                ("reliability", reliability_plot),
                ("heatmap", heatmap_plot),
                ("pareto", pareto_plot),
            )
        ]
        out[b.title] = [p for p in made if p is not None]
    few = fewshot_plot(boards, directory / "fewshot.png")
    if few is not None:
        out["few-shot curves"] = [few]
    return out
