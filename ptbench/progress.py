"""How a run shows its progress: a live bar on a terminal, one line per finished job in a log.

A run whose output is not a terminal (CI, cron, a nightly job's log) would otherwise print the
cell list and then nothing for minutes; a line per job says what finished, how it ended and how
much is left, and greps well.
"""

from __future__ import annotations

import sys
import time
from typing import Protocol

MODES = ("auto", "bar", "lines", "none")


class JobLike(Protocol):
    kind: str
    cell_hash: str
    state: str
    number: int
    seed: int
    value: float | None


def resolve_mode(mode: str | bool) -> str:
    """``auto`` → the bar on a terminal, lines otherwise; ``True``/``False`` kept for the API."""
    if mode is True:
        mode = "auto"
    elif mode is False:
        mode = "none"
    if mode not in MODES:
        raise ValueError(f"progress mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "auto":
        return "bar" if sys.stdout.isatty() else "lines"
    return mode


def make_progress(total: int, cells: int, mode: str | bool):
    mode = resolve_mode(mode)
    if mode == "bar":
        return BarProgress(total, cells)
    return LineProgress(total, cells, quiet=mode == "none")


def _fmt_seconds(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class LineProgress:
    """One line per finished job: time, done/total, cell, trial or seed, state, value, ETA."""

    def __init__(self, total: int, cells: int, quiet: bool = False, stream=None):
        self.total, self.cells, self.quiet = total, cells, quiet
        self.done, self.cells_done = 0, 0
        self.start = time.monotonic()
        self.stream = stream or sys.stdout

    def line(self, res: JobLike, cell: str) -> str:
        self.done += 1
        elapsed = time.monotonic() - self.start
        left = self.total - self.done
        eta = _fmt_seconds(elapsed / self.done * left) if self.done else "?"
        which = f"trial {res.number}" if res.kind == "trial" else f"final seed {res.seed}"
        value = f"{res.value:.4f}" if res.value is not None else "—"
        return (
            f"{time.strftime('%H:%M:%S')} [{self.done}/{self.total}] {res.cell_hash} {cell} · "
            f"{which} · {res.state} · {value} · elapsed {_fmt_seconds(elapsed)} · ETA {eta}"
        )

    def advance(self, res: JobLike, cell: str, direction: str) -> None:
        text = self.line(res, cell)
        if not self.quiet:
            print(text, file=self.stream, flush=True)

    def cell_done(self) -> None:
        self.cells_done += 1

    def grow(self, n: int) -> None:
        """Jobs were queued (a retry, a cell's final runs) or dropped (another driver ran them)."""
        self.total += n

    def running(self, n: int) -> None:
        pass

    def stop(self) -> None:
        pass


class BarProgress:
    """Terminal progress (rich): runs done/total, cells done, running, best so far, ETA."""

    def __init__(self, total: int, cells: int):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.cells, self.cells_done, self.best, self.n_running = cells, 0, None, 0
        self.p = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        )
        self.total = total
        self.task = self.p.add_task(self._desc(), total=total)
        self.p.start()

    def _desc(self) -> str:
        best = f"{self.best:.4f}" if self.best is not None else "—"
        return f"cells {self.cells_done}/{self.cells} · running {self.n_running} · best val {best}"

    def advance(self, res: JobLike, cell: str, direction: str) -> None:
        if res.kind == "trial" and res.value is not None:
            pick = max if direction == "maximize" else min
            self.best = res.value if self.best is None else pick(self.best, res.value)
        self.p.update(self.task, advance=1, description=self._desc())

    def cell_done(self) -> None:
        self.cells_done += 1
        self.p.update(self.task, description=self._desc())

    def grow(self, n: int) -> None:
        self.total += n
        self.p.update(self.task, total=self.total)

    def running(self, n: int) -> None:
        self.n_running = n
        self.p.update(self.task, description=self._desc())

    def stop(self) -> None:
        self.p.stop()
