"""The leaderboard as one self-contained HTML page: tables sortable by any column, filterable by
backbone, weights, strategy, regularizer and task, with grouped column headers that collapse, a
link from every cell to its MLflow run, and interactive plotly plots. Nothing is fetched: style,
script and plotly's JS are inlined, so the file opens offline and can be mailed or archived."""

from __future__ import annotations

import html
import re

import pandas as pd

from ptbench.leaderboard.assets import CSS, JS

LABELS = ("backbone", "weights", "strategy", "regularizer")
FILTERS = (*LABELS, "task")
# Column groups, left to right; within a group the first listed column is the one kept when the
# group is collapsed (unlisted columns follow in the view's order).
GROUPS = {
    "labels": LABELS,
    "generalization": (
        "test_acc",
        "≈best",
        "rank",
        "val_best",
        "macro_f1",
        "seeds",
        "pretrained",
        "random_init",
        "gap",
    ),
    "calibration": ("ece", "nll", "brier"),
    "shift": (),
    "robustness": ("corrupted", "mCE", "relative", "clean"),
    "cost": ("train_s", "trainable_params", "eval_s", "peak_mem_mb"),
    "search": ("trials", "pruned", "failed", "finals_failed"),
    "run": ("state", "error", "cell"),
}
VIEW_GROUP = {"robustness": "robustness", "cost": "cost"}  # where a view's unlisted columns go


def column_group(col: str, view: str) -> str:
    if col.startswith("shifted_"):
        return "shift"
    for g, names in GROUPS.items():
        if col in names:
            return g
    return VIEW_GROUP.get(view, "generalization")


def _ordered(df: pd.DataFrame, view: str) -> list[tuple[str, str]]:
    """(group, column) pairs, grouped left to right, each group in its listed order."""
    order = list(GROUPS)

    def key(item):
        i, col = item
        g = column_group(col, view)
        names = GROUPS[g]
        return order.index(g), names.index(col) if col in names else len(names), i

    return [(column_group(c, view), c) for _, c in sorted(enumerate(df.columns), key=key)]


def _breakable(text: str) -> str:
    """Escaped text that may wrap after _ + @ (long names, regularizer stacks)."""
    return re.sub(r"([_+@])", r"\1<wbr>", html.escape(text))


def _header(cols: list[tuple[str, str]]) -> str:
    spans: list[list] = []
    for g, _ in cols:
        if spans and spans[-1][0] == g:
            spans[-1][1] += 1
        else:
            spans.append([g, 1])
    top = "".join(
        f"<th class='g-{g}' data-g='{g}' colspan='{n}'>"
        + ("" if g in ("labels", "run") else g + ("<button type='button'>−</button>" if n > 1 else ""))
        + "</th>"
        for g, n in spans
    )
    names = "".join(
        f"<th data-g='{g}' data-col='{html.escape(c)}'"
        + (" title='links open the cell&#39;s run in MLflow'" if c == "cell" else "")
        + f">{_breakable(c)}</th>"
        for g, c in cols
    )
    return f"<thead><tr class='groups'>{top}</tr><tr class='cols'>{names}</tr></thead>"


def _cell(col: str, value: str, board) -> str:
    if col == "cell" and value in board.runs and board.ui_base:
        from ptbench.tracking.ui import run_url

        url = run_url(board.ui_base, *board.runs[value])
        return (
            f"<td><a href='{html.escape(url)}' target='_blank' rel='noopener'>{html.escape(value)}</a></td>"
        )
    return f"<td>{_breakable(value)}</td>"


def table(view: str, shown: pd.DataFrame, board) -> str:
    """One view as a table; ``shown`` holds the display strings (numbers with their ±)."""
    cols = _ordered(shown, view)
    rows = []
    for rec in shown.to_dict("records"):
        best = " class='best'" if view == "generalization" and rec.get("≈best") == "best" else ""
        rows.append(f"<tr{best}>" + "".join(_cell(c, str(rec[c]), board) for _, c in cols) + "</tr>")
    return (
        f"<div class='view'><h3>{html.escape(view)}</h3><div class='wrap'>"
        f"<table class='lb' data-view='{html.escape(view)}'>{_header(cols)}<tbody>{''.join(rows)}"
        "</tbody></table></div><p class='count'></p></div>"
    )


def _filters(boards) -> str:
    values: dict[str, set[str]] = {k: set() for k in FILTERS}
    for b in boards:
        values["task"].add(b.title)
        for v in b.views.values():
            for k in LABELS:
                if k in v:
                    values[k] |= {str(x) for x in v[k].dropna()}
    boxes = []
    for k in FILTERS:
        opts = "".join(f"<option>{html.escape(x)}</option>" for x in sorted(values[k]))
        boxes.append(f"<label>{k} <select name='{k}'><option value=''>all</option>{opts}</select></label>")
    find = "<label>find <input id='find' type='search' placeholder='any text in a row'></label>"
    hint = "<span class='hint'>click a column header to sort; − / + collapses a column group</span>"
    return f"<div id='filters'>{''.join(boxes)}{find}{hint}</div>"


def _mlflow_note(boards) -> str:
    base = next((b.ui_base for b in boards if b.ui_base), "")
    if not base:
        return ""
    how = (
        "start it with <code>ptbench ui SUITE</code> (the suite file), which serves it there"
        if base.startswith("http://127.0.0.1:5000")
        else "the suite's tracking server"
    )
    return (
        f"<p class='intro'>Each cell hash links to the cell's run in MLflow's UI at "
        f"<code>{html.escape(base)}</code>: {how}; its trial and final runs are nested under it.</p>"
    )


def _figure(fig, wide: bool) -> str:
    div = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        default_width="100%",
        config={"displaylogo": False, "responsive": True},
    )
    return f"<div class='fig{' wide' if wide else ''}'>{div}</div>"


def _plots(figs: list) -> str:
    if not figs:
        return ""
    return "<div class='plots'>" + "".join(_figure(f, f.layout.meta == "wide") for f in figs) + "</div>"


def page(boards, figures: dict, note: str, display) -> str:
    """The whole page; ``display`` turns a view into its display strings."""
    body = []
    for b in boards:
        part = [f"<h2>{html.escape(b.title)}</h2>"]
        part += [f"<p class='note'>{html.escape(n)}</p>" for n in b.notes]
        part += [table(name, display(v), b) for name, v in b.views.items()]
        part.append(_plots(figures.get(b.title, [])))
        body.append(f"<section class='board' data-task='{html.escape(b.title)}'>{''.join(part)}</section>")
    if figures.get("few-shot curves"):
        body.append("<section><h2>few-shot curves</h2>" + _plots(figures["few-shot curves"]) + "</section>")
    plotly = ""
    if any(figures.values()):
        from plotly.offline import get_plotlyjs

        plotly = f"<script>{get_plotlyjs()}</script>"  # once per page, never per plot
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>ptbench leaderboard</title><style>{CSS}</style>{plotly}</head><body>"
        f"<h1>ptbench leaderboard</h1><p class='intro'><em>{html.escape(note)}</em></p>"
        f"{_mlflow_note(boards)}{_filters(boards)}{''.join(body)}<script>{JS}</script></body></html>"
    )
