"""Render leaderboards: terminal tables, CSV, Markdown, and a self-contained HTML page with the
plots embedded; written under results/<suite>/ and logged to the suite's MLflow run."""

from __future__ import annotations

import base64
import html
import math
from io import StringIO
from pathlib import Path

import pandas as pd

FORMATS = ("table", "csv", "md", "html")
NOTE = (
    "Validation scores come from the hyperparameter search; test, shifted-domain, corruption "
    "and attack scores come only from final runs of each cell's best configuration, one per "
    "seed — the search never reads them. ± is the 95% Student-t interval over seeds; "
    "≈ marks cells not significantly worse than the best (Welch's t-test, p ≥ 0.05); n/a where "
    "the cell or the best has fewer than 2 seeds, which allows no test. peak_mem_mb is each run's "
    "own peak: CUDA memory allocated, or on the CPU the resident set above the run's start."
)


def _fmt(v) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "—"
        if v.is_integer() and abs(v) >= 10:
            return f"{v:,.0f}"
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def _display(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    if "test_acc_ci95" in df:
        df["test_acc"] = [
            f"{_fmt(m)} ± {_fmt(c)}" if c == c else _fmt(m)
            for m, c in zip(df["test_acc"], df.pop("test_acc_ci95"), strict=True)
        ]
    return df.map(_fmt)


def render(boards, fmt: str, plots: dict | None = None) -> str:
    if fmt == "csv":
        frames = [v.assign(task=b.title, view=name) for b in boards for name, v in b.views.items()]
        # notes (no cell finished, the mCE reference…) travel as rows of their own: a CSV reader
        # that keeps only its view never mistakes one for a cell
        frames += [
            pd.DataFrame({"task": [b.title], "view": ["note"], "note": [n]}) for b in boards for n in b.notes
        ]
        frame = pd.concat(frames, ignore_index=True)
        for c in frame.columns:  # counts stay integers even where another view left a gap
            v = pd.to_numeric(frame[c], errors="coerce")
            if v.notna().any() and v.notna().sum() == frame[c].notna().sum() and (v.dropna() % 1 == 0).all():
                frame[c] = v.astype("Int64")
        cols = ["task", "view"] + [c for c in frame.columns if c not in ("task", "view")]
        return frame[cols].to_csv(index=False)
    if fmt == "md":
        parts = [f"_{NOTE}_\n"]
        for b in boards:
            parts.append(f"## {b.title}\n")
            parts += [f"> {n}\n" for n in b.notes]
            for name, v in b.views.items():
                parts.append(f"### {name}\n\n{_display(v).to_markdown(index=False)}\n")
        return "\n".join(parts)
    if fmt == "html":
        return _html(boards, plots or {})
    from rich.console import Console
    from rich.table import Table

    buf = StringIO()
    for b in boards:
        for name, v in b.views.items():
            shown = _display(v)
            width = sum(max([len(c), *(len(x) for x in shown[c])]) + 3 for c in shown.columns) + 4
            console = Console(file=buf, width=max(100, width), force_terminal=False)
            table = Table(title=f"{b.title} — {name}", title_justify="left")
            for col in shown.columns:
                table.add_column(
                    col,
                    justify="left"
                    if col in ("backbone", "weights", "strategy", "regularizer", "state", "error")
                    else "right",
                )
            for row in shown.itertuples(index=False):
                table.add_row(*row)
            console.print(table)
        for n in b.notes:
            buf.write(f"note: {n}\n")
    buf.write(NOTE + "\n")
    return buf.getvalue()


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f"<img alt='{html.escape(path.stem)}' src='data:image/png;base64,{data}'>"


def _html(boards, plots: dict) -> str:
    body = []
    for b in boards:
        body.append(f"<h2>{html.escape(b.title)}</h2>")
        body += [f"<p class='note'>{html.escape(n)}</p>" for n in b.notes]
        for name, v in b.views.items():
            body.append(f"<h3>{html.escape(name)}</h3>")
            body.append(_display(v).to_html(index=False, border=0, classes="lb", escape=True))
        if plots.get(b.title):
            body.append("<div class='plots'>" + "".join(_img(p) for p in plots[b.title]) + "</div>")
    if plots.get("few-shot curves"):
        body.append("<h2>few-shot curves</h2>" + _img(plots["few-shot curves"][0]))
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>ptbench leaderboard</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2em;color:#222}"
        "table.lb{border-collapse:collapse;font-size:13px;margin-bottom:1.5em}"
        ".lb td,.lb th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right;"
        "white-space:nowrap}"
        ".lb th{background:#f3f3f3}.lb tbody tr:first-child td{font-weight:bold}"
        ".plots img{max-width:48%;margin:4px;border:1px solid #eee}.note{color:#a50}</style>"
        "</head><body><h1>ptbench leaderboard</h1>"
        f"<p><em>{html.escape(NOTE)}</em></p>{''.join(body)}</body></html>"
    )


def write_outputs(
    boards, suite_name: str, fmt: str, output: str | Path | None = None, results_dir: str | Path = "results"
) -> list[Path]:
    """Write one format (plots go beside an HTML page); returns the files written."""
    ext = {"table": "txt"}.get(fmt, fmt)
    path = Path(output) if output else Path(results_dir) / suite_name / f"leaderboard.{ext}"
    path.parent.mkdir(parents=True, exist_ok=True)
    written = [path]
    plots = None
    if fmt == "html":
        from ptbench.leaderboard.plots import all_plots

        plots = all_plots(boards, path.parent / "plots")
        written += [p for ps in plots.values() for p in ps]
    path.write_text(render(boards, fmt, plots), encoding="utf-8")
    return written
