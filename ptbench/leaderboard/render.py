"""Render leaderboards: terminal tables, CSV, Markdown, and a self-contained, explorable HTML page
(ptbench/leaderboard/page.py) with interactive plots; written under results/<suite>/ and logged
to the suite's MLflow run."""

from __future__ import annotations

import math
from io import StringIO
from pathlib import Path

import pandas as pd

FORMATS = ("table", "csv", "md", "html")
NOTE = (
    "Validation scores come from the hyperparameter search; test, shifted-domain, corruption "
    "and attack scores come only from final runs of each cell's best configuration, one per "
    "seed — the search never reads them. ± is the 95% Student-t interval over seeds; "
    "≈ marks cells not significantly worse than the best (one-sided Welch's t-test at 5 %, "
    "Holm-corrected over the board's comparisons: with few seeds ≈ often means too few to tell, "
    "not equal); n/a where the cell or the best has fewer than 2 seeds, which allows no test. "
    "peak_mem_mb is each run's "
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
                shown = _display(v).map(lambda x: x.replace("|", "\\|") if isinstance(x, str) else x)
                parts.append(f"### {name}\n\n{shown.to_markdown(index=False)}\n")
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


def _html(boards, plots: dict) -> str:
    from ptbench.leaderboard.page import page

    return page(boards, plots, NOTE, _display)


def write_outputs(
    boards, suite_name: str, fmt: str, output: str | Path | None = None, results_dir: str | Path = "results"
) -> list[Path]:
    """Write one format; the HTML page carries its interactive plots inside it. Returns the files
    written."""
    ext = {"table": "txt"}.get(fmt, fmt)
    path = Path(output) if output else Path(results_dir) / suite_name / f"leaderboard.{ext}"
    plots = None
    if fmt == "html":
        from ptbench.leaderboard.plots import all_plots

        plots = all_plots(boards)
    text = render(boards, fmt, plots)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as err:  # a read-only folder, a path through a file, /proc …
        from ptbench.errors import PtbenchError

        raise PtbenchError(f"cannot write the leaderboard to {path}: {err.strerror or err}") from None
    return [path]
