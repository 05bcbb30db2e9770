"""Leaderboard plots (plotly, interactive in the HTML page: hover names the cell and its values,
drag zooms): accuracy against severity per corruption family, reliability diagrams, a backbone ×
strategy heatmap, accuracy against cost with its Pareto front, and few-shot curves across data
regimes. Why plotly rather than PNGs: labels that overlap or are cut in a static image become
hover text, and the page stays one offline file (plotly's JS is embedded once)."""

from __future__ import annotations

import math
import re

import pandas as pd

from ptbench.leaderboard.views import cell_mean

TOP = 6  # cells drawn in line plots, best first
HEIGHT = 380
HOVER = "<b>%{fullData.name}</b><br>"


def _go():
    import plotly.graph_objects as go

    return go


def _layout(fig, title: str, x: str, y: str, **more):
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        template="plotly_white",
        height=HEIGHT,
        margin={"l": 55, "r": 15, "t": 45, "b": 45},
        legend={"font": {"size": 11}},
        hoverlabel={"namelength": -1},
        **more,
    )
    fig.update_xaxes(title_text=x)
    fig.update_yaxes(title_text=y)
    return fig


def _label(row) -> str:
    return f"{row['backbone']}@{row['weights']} {row['strategy']} {row['regularizer']}"


def _top(board) -> pd.DataFrame:
    return board.views["generalization"].head(TOP)


def severity_plot(board):
    cols = sorted(
        {
            c.removeprefix("metrics.")
            for c in board.finals.columns
            if re.match(r"metrics\.corr_.+_s\d_accuracy$", c)
        }
    )
    if not cols:
        return None
    from plotly.subplots import make_subplots

    families = sorted({c.removeprefix("corr_").rsplit("_s", 1)[0] for c in cols})
    ncol = min(4, len(families))
    nrow = math.ceil(len(families) / ncol)
    fig = make_subplots(nrow, ncol, subplot_titles=families, shared_yaxes=True)
    for k, fam in enumerate(families):
        levels = sorted(
            int(c.rsplit("_s", 1)[1].split("_")[0]) for c in cols if c.startswith(f"corr_{fam}_s")
        )
        for i, (_, row) in enumerate(_top(board).iterrows()):
            ys = [cell_mean(board.finals, row["cell"], "corr_clean_accuracy")] + [
                cell_mean(board.finals, row["cell"], f"corr_{fam}_s{s}_accuracy") for s in levels
            ]
            fig.add_trace(
                _go().Scatter(
                    x=[0, *levels],
                    y=ys,
                    name=_label(row),
                    legendgroup=row["cell"],
                    showlegend=k == 0,
                    line={"color": _color(i)},
                    hovertemplate=HOVER + f"{fam}, severity %{{x}}<br>accuracy %{{y:.3f}}<extra></extra>",
                ),
                row=k // ncol + 1,
                col=k % ncol + 1,
            )
    _layout(fig, "accuracy against corruption severity (0 = clean)", "severity", "")
    fig.update_layout(height=HEIGHT + 220 * (nrow - 1), legend={"orientation": "h", "y": -0.15})
    fig.update_yaxes(title_text="accuracy", col=1)
    fig.update_xaxes(dtick=1)  # severities are levels 1…5
    fig.layout.meta = "wide"  # one panel per family: the page gives it a whole row
    return fig


def _color(i: int) -> str:
    from plotly.colors import qualitative

    return qualitative.D3[i % len(qualitative.D3)]


def reliability_plot(board):
    f = board.finals
    if "metrics.test_rel_b00_n" not in f:
        return None
    go = _go()
    fig = go.Figure(
        go.Scatter(x=[0, 1], y=[0, 1], name="perfect calibration", mode="lines", line={"dash": "dash"})
    )
    for i, (_, row) in enumerate(_top(board).head(4).iterrows()):
        xs, ys, ns = _bins(f[f["params.cell_hash"] == row["cell"]])
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                customdata=ns,
                name=_label(row),
                line={"color": _color(i)},
                hovertemplate=HOVER + "confidence %{x:.3f}<br>accuracy %{y:.3f}<br>%{customdata} samples"
                "<extra></extra>",
            )
        )
    return _layout(fig, "reliability (test, 15 bins)", "confidence", "accuracy")


def _bins(rows: pd.DataFrame) -> tuple[list[float], list[float], list[int]]:
    """Mean confidence and accuracy per bin, pooled over a cell's seeds (weighted by count)."""
    xs, ys, ns = [], [], []
    empty = pd.Series(dtype=float)
    for b in range(15):
        n = rows.get(f"metrics.test_rel_b{b:02d}_n", empty).astype(float)
        conf = rows.get(f"metrics.test_rel_b{b:02d}_conf", empty).astype(float)
        acc = rows.get(f"metrics.test_rel_b{b:02d}_acc", empty).astype(float)
        tot = n.sum()
        if tot > 0:
            xs.append(float((conf.fillna(0) * n).sum() / tot))
            ys.append(float((acc.fillna(0) * n).sum() / tot))
            ns.append(int(tot))
    return xs, ys, ns


def heatmap_plot(board):
    g = board.views.get("generalization")
    if g is None or "test_acc" not in g or g["test_acc"].isna().all():
        return None
    g = g.assign(model=g["backbone"] + "@" + g["weights"])
    pivot = g.pivot_table(index="model", columns="strategy", values="test_acc", aggfunc="max")
    go = _go()
    fig = go.Figure(
        go.Heatmap(
            # plain lists: plotly 7's packed 2-D arrays draw a one-row heatmap as a single cell
            z=[[None if v != v else float(v) for v in row] for row in pivot.values],
            x=list(pivot.columns),
            y=list(pivot.index),
            colorscale="Viridis",
            texttemplate="%{z:.3f}",
            colorbar={"title": {"text": "test acc"}},
            hovertemplate="<b>%{y}</b> %{x}<br>test accuracy %{z:.3f} (best regularizer)<extra></extra>",
        )
    )
    fig = _layout(fig, "test accuracy: backbone × strategy (best regularizer)", "strategy", "")
    fig.update_layout(height=max(HEIGHT - 60, 180 + 45 * pivot.shape[0]), margin={"b": 70})
    return fig


def pareto_plot(board):
    if "cost" not in board.views:
        return None
    c = board.views["cost"].dropna(subset=["test_acc", "train_s"])
    if c.empty:
        return None
    go = _go()
    labels = [_label(r) for _, r in c.iterrows()]
    extra = c[["trainable_params", "peak_mem_mb"]].astype(float).fillna(-1).values
    fig = go.Figure(
        go.Scatter(
            x=c["train_s"],
            y=c["test_acc"],
            mode="markers",
            name="cells",
            text=labels,
            customdata=extra,
            marker={"size": 9},
            hovertemplate="<b>%{text}</b><br>train %{x:.1f} s<br>test accuracy %{y:.3f}"
            "<br>trainable params %{customdata[0]:,.0f}<br>peak memory %{customdata[1]:.0f} MB"
            "<extra></extra>",
        )
    )
    front, best = [], -math.inf
    # equal times: the more accurate first, or a dominated cell listed first joined the front
    for _, r in c.sort_values(["train_s", "test_acc"], ascending=[True, False]).iterrows():
        if r["test_acc"] > best:
            best = r["test_acc"]
            front.append(r)
    fig.add_trace(
        go.Scatter(
            x=[r["train_s"] for r in front],
            y=[r["test_acc"] for r in front],
            text=[_label(r) for r in front],
            mode="lines",
            line={"shape": "hv", "color": "#d62728"},
            name="Pareto front",
            hovertemplate="<b>%{text}</b><br>train %{x:.1f} s<br>test accuracy %{y:.3f}<extra>front</extra>",
        )
    )
    fig = _layout(
        fig, "test accuracy against training time", "train seconds (final run, log)", "test accuracy"
    )
    fig.update_xaxes(type="log")
    return fig


REGIME = re.compile(r"(shots|label_fraction)=([0-9.]+)")


def fewshot_plot(boards):
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
    go = _go()
    fig = go.Figure()
    for (base, regime, label), pts in curves.items():
        fig.add_trace(
            go.Scatter(
                x=[p[0] for p in pts],
                y=[p[1] for p in pts],
                name=f"{base}: {label}",
                hovertemplate=HOVER + f"{regime} %{{x}}<br>test accuracy %{{y:.3f}}<extra></extra>",
            )
        )
    regime = next(iter(curves))[1]
    fig = _layout(fig, "few-shot curves", f"{regime} (log)", "test accuracy")
    fig.update_xaxes(type="log")
    return fig


def all_plots(boards) -> dict[str, list]:
    """plotly figures per board title (plus 'few-shot curves' across boards)."""
    out: dict[str, list] = {}
    for b in boards:
        if b.finals.empty:  # no cell of this task finished: nothing to draw
            out[b.title] = []
            continue
        made = [fn(b) for fn in (heatmap_plot, pareto_plot, severity_plot, reliability_plot)]
        out[b.title] = [p for p in made if p is not None]
    few = fewshot_plot(boards)
    if few is not None:
        out["few-shot curves"] = [few]
    return out
