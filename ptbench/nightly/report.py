"""The morning report: Markdown (for a chat message or a PR), a self-contained HTML page (trend
plots per metric, one line per cell, tonight's regressions marked), and a terminal summary."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

from ptbench.nightly.compare import BAD, Baseline, Finding, settings_changed
from ptbench.nightly.history import Night
from ptbench.schema import NIGHTLY_METRICS

ORDER = ("regressed", "failed", "missing", "improved", "changed", "new", "no history", "unchanged")
HEADLINE = {
    "regressed": "Regressions",
    "failed": "Failed cells and seeds",
    "missing": "Missing metrics (recorded on earlier nights evaluated alike, not tonight)",
    "improved": "Improvements",
    "changed": "Changed cells (not compared: their identity differs from the baseline)",
    "new": "New cells",
}


@dataclass
class NightReport:
    suite: str
    tonight: Night
    baseline: Baseline
    findings: list[Finding]
    nights: list[Night]  # every night up to tonight, for the trends
    speed: list[Finding] = field(default_factory=list)

    @property
    def regressed(self) -> bool:
        return any(f.status in BAD for f in self.findings + self.speed)

    def count(self, status: str) -> int:
        return sum(f.status == status for f in self.findings + self.speed)


def _num(v: float, metric: str = "") -> str:
    if v != v:
        return "—"
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    if metric == "train_seconds" or metric.startswith("bench."):
        return f"{v:.3g}×ref"  # a multiple of the reference loop
    return f"{v:.4f}"


def _effect(f: Finding) -> str:
    if f.effect != f.effect:
        return "—"
    if f.metric == "train_seconds" or f.metric.startswith("bench."):
        return f"{f.effect:+.0%}"
    return f"{f.effect * 100:+.2f} pts"


def _evidence(f: Finding) -> str:
    parts = []
    if f.paired is not None:
        r = f.paired
        ci = f"[{r.low * 100:+.2f}, {r.high * 100:+.2f}] pts"
        parts.append(f"paired bootstrap: interval {ci}, p={r.p:.2g}")
    if f.test == "lookback" and f.p == f.p:
        parts.append(f"vs {f.nights} night(s): z={_num(f.z)}, p={f.p:.2g}")
    if f.detail:
        parts.append(f.detail)
    return "; ".join(parts)


def summary_line(r: NightReport) -> str:
    parts = [f"{r.count(s)} {s}" for s in ORDER if r.count(s)]
    verdict = "REGRESSED" if r.regressed else "ok"
    return f"ptbench nightly {r.suite} {r.tonight.key}: {verdict} — " + ", ".join(parts)


def _rows(findings: list[Finding]) -> list[list[str]]:
    return [
        [f.cell, f.metric, _num(f.value, f.metric), _num(f.baseline, f.metric), _effect(f), _evidence(f)]
        for f in findings
    ]


HOW = (
    "A move is flagged when it is significant after Holm's correction over all of the night's "
    "tests (family-wise level `nightly.alpha`) and at least the metric's `nightly.min_effect`. "
    "Test accuracy, macro-F1 and ECE are tested by a paired bootstrap on the same test examples "
    "(resampling examples and seeds), and the lookback test against previous nights must agree; "
    "other metrics by the lookback test alone (a t prediction interval on the nights' spread, "
    "never below the seeds' own)."
)

COLUMNS = ["cell", "metric", "tonight", "baseline", "effect", "evidence"]


def markdown(r: NightReport) -> str:
    t = r.tonight
    out = [
        f"# ptbench nightly — {r.suite} — {t.key}",
        "",
        f"commit `{t.commit}`, ptbench {t.tags.get('ptbench.version', '?')}, "
        f"torch {t.tags.get('ptbench.pkg.torch', '?')}; baseline: {r.baseline.describe()}.",
        *([f"**Note: {changed}.**", ""] if (changed := settings_changed(t, r.baseline)) else [""]),
        f"**{summary_line(r)}**",
        "",
        HOW,
    ]
    for status, title in HEADLINE.items():
        rows = [f for f in r.findings + r.speed if f.status == status]
        if rows:
            out += ["", f"## {title}", "", *_md_table(COLUMNS, _rows(rows))]
    out += ["", "## Every comparison", "", *_md_table(COLUMNS + ["status"], _all_rows(r))]
    return "\n".join(out) + "\n"


def _all_rows(r: NightReport) -> list[list[str]]:
    keep = [f for f in r.findings + r.speed if f.metric != "—"]
    return [row + [f.status] for row, f in zip(_rows(keep), keep, strict=True)]


def _md_table(cols: list[str], rows: list[list[str]]) -> list[str]:
    esc = [[c.replace("|", "\\|") for c in row] for row in rows]
    return [
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
        *("| " + " | ".join(r) + " |" for r in esc),
    ]


def _trend(r: NightReport, metric: str):
    """One plot per metric: a line per cell over nights (mean ± sd over seeds), tonight's
    regressions as red crosses, improvements as green diamonds."""
    import plotly.graph_objects as go

    fig = go.Figure()
    cells = sorted({c for n in r.nights for c in n.cells})
    differ = [i for i in range(len(cells[0]) if cells else 0) if len({c[i] for c in cells}) > 1] or [4]
    short = {c: " | ".join(c[i] for i in differ) for c in cells}  # the legend names what differs
    marks = {(f.cell, f.metric): f.status for f in r.findings}
    for labels in cells:
        xs, ys, sd = [], [], []
        for n in r.nights:
            c = n.cells.get(labels)
            if c is None or c.state != "finished":
                continue
            vals = [v for v in c.metrics.get(metric, []) if v == v]
            if not vals:
                continue
            m = sum(vals) / len(vals)
            xs.append(n.key)
            ys.append(m)
            sd.append(math.sqrt(sum((v - m) ** 2 for v in vals) / max(1, len(vals) - 1)))
        if not xs:
            continue
        name = r.tonight.cells[labels].name if labels in r.tonight.cells else " | ".join(labels)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                error_y={"array": sd},
                mode="lines+markers",
                name=short[labels],
                hovertext=name,
                hovertemplate="%{hovertext}<br>%{x}: %{y:.4f}<extra></extra>",
            )
        )
        status = marks.get((name, metric))
        if status in ("regressed", "improved") and xs[-1] == r.tonight.key:
            style = {"regressed": ("x", "#d62728"), "improved": ("diamond", "#2ca02c")}[status]
            fig.add_trace(
                go.Scatter(
                    x=[xs[-1]],
                    y=[ys[-1]],
                    mode="markers",
                    marker={"symbol": style[0], "size": 16, "color": style[1]},
                    name=f"{status}: {short[labels]}",
                )
            )
    _layout(fig, r, metric)
    return fig if fig.data else None


def _layout(fig, r: NightReport, metric: str) -> None:
    """The trend plot's title, axes and legend."""
    better = "higher is better" if NIGHTLY_METRICS[metric][0] == "max" else "lower is better"
    fig.update_layout(
        title={"text": f"{metric} ({better}; ± sd over seeds)", "font": {"size": 14}},
        template="plotly_white",
        height=380,
        margin={"l": 55, "r": 15, "t": 45, "b": 20},
        # every night in order: categories otherwise follow the traces, so a night only a later
        # trace has (a cell that missed it) was drawn after the nights that came after it
        xaxis={
            "type": "category",
            "title": "night",
            "categoryorder": "array",
            "categoryarray": [n.key for n in r.nights],
        },
        legend={"font": {"size": 11}, "orientation": "h", "y": -0.3},
    )


CSS_MORE = (
    ".regressed,.failed{background:#fde2e1}.improved{background:#e3f5e1}.changed{background:#fff3cd}"
    ".verdict{font-size:1.15em;font-weight:600}.figs{display:grid;"
    "grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:1em}"
)


def _html_table(cols: list[str], rows: list[list[str]], classes: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join(
        f"<tr class='{cls}'>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
        for row, cls in zip(rows, classes, strict=True)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(r: NightReport) -> str:
    from plotly.offline import get_plotlyjs

    from ptbench.leaderboard.assets import CSS

    t = r.tonight
    parts = [
        f"<h1>ptbench nightly — {html.escape(r.suite)} — {html.escape(t.key)}</h1>",
        f"<p class='intro'>commit <code>{html.escape(t.commit)}</code>; baseline: "
        f"{html.escape(r.baseline.describe())}</p>",
        *(
            [f"<p class='verdict regressed'>{html.escape(c)}</p>"]
            if (c := settings_changed(t, r.baseline))
            else []
        ),
        f"<p class='verdict {'regressed' if r.regressed else 'improved'}'>{html.escape(summary_line(r))}</p>",
    ]
    for status, title in HEADLINE.items():
        rows = [f for f in r.findings + r.speed if f.status == status]
        if rows:
            parts += [
                f"<h2>{html.escape(title)}</h2>",
                _html_table(COLUMNS, _rows(rows), [status] * len(rows)),
            ]
    figs = [f for f in (_trend(r, m) for m in NIGHTLY_METRICS) if f is not None]
    div = [f.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False}) for f in figs]
    parts += ["<h2>Trends over nights</h2>", "<div class='figs'>" + "".join(div) + "</div>"]
    keep = [f for f in r.findings + r.speed if f.metric != "—"]
    parts += [
        "<h2>Every comparison</h2>",
        _html_table(COLUMNS + ["status"], _all_rows(r), [f.status for f in keep]),
    ]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>ptbench nightly {html.escape(r.suite)} {html.escape(t.key)}</title>"
        f"<style>{CSS}{CSS_MORE}</style><script>{get_plotlyjs()}</script></head><body>"
        + "".join(parts)
        + "</body></html>"
    )
