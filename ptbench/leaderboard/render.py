"""Render leaderboards as a terminal table, CSV, Markdown or a self-contained HTML page."""

from __future__ import annotations

import html
import math
from pathlib import Path

import pandas as pd

FORMATS = ("table", "csv", "md", "html")
NOTE = (
    "Validation scores come from the hyperparameter search; test and shifted-domain scores "
    "come only from final runs of each cell's best configuration, one per seed."
)


def _fmt(v) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "—"
        if v.is_integer() and abs(v) >= 10:  # counts (parameters, trials) read as integers
            return f"{v:,.0f}"
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def _display(df: pd.DataFrame) -> pd.DataFrame:
    return df.map(_fmt)


def render(tables: dict[str, pd.DataFrame], fmt: str) -> str:
    if fmt == "csv":
        frames = [t.assign(task=task)[["task", *t.columns]] for task, t in tables.items()]
        return pd.concat(frames).to_csv(index=False)
    if fmt == "md":
        parts = [f"## {task}\n\n{_display(t).to_markdown(index=False)}\n" for task, t in tables.items()]
        return f"_{NOTE}_\n\n" + "\n".join(parts)
    if fmt == "html":
        body = "".join(
            f"<h2>{html.escape(task)}</h2>{_display(t).to_html(index=False, border=0, classes='lb')}"
            for task, t in tables.items()
        )
        return (
            "<!doctype html><html><head><meta charset='utf-8'><title>ptbench leaderboard</title>"
            "<style>body{font-family:sans-serif;margin:2em}table.lb{border-collapse:collapse}"
            ".lb td,.lb th{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right}"
            ".lb tr:first-child td{font-weight:bold}</style></head><body>"
            f"<h1>ptbench leaderboard</h1><p><em>{html.escape(NOTE)}</em></p>{body}</body></html>"
        )
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    buf = StringIO()
    shown = {task: _display(t) for task, t in tables.items()}
    width = max(sum(max(len(c), *(len(v) for v in t[c])) + 3 for c in t.columns) + 4
                for t in shown.values())
    console = Console(file=buf, width=max(100, width), force_terminal=False)
    for task, t in tables.items():
        table = Table(title=f"task: {task}", title_justify="left")
        for col in t.columns:
            table.add_column(
                col,
                justify="right" if col not in ("backbone", "weights", "strategy", "regularizer") else "left",
            )
        for row in shown[task].itertuples(index=False):
            table.add_row(*row)
        console.print(table)
    console.print(NOTE)
    return buf.getvalue()


def write_outputs(
    tables: dict[str, pd.DataFrame],
    suite_name: str,
    fmt: str,
    output: str | Path | None = None,
    results_dir: str | Path = "results",
) -> Path:
    ext = {"table": "txt"}.get(fmt, fmt)
    path = Path(output) if output else Path(results_dir) / suite_name / f"leaderboard.{ext}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(tables, fmt), encoding="utf-8")
    return path
