"""Leaderboards built from MLflow runs alone: per-task views, intervals, plots."""

from ptbench.leaderboard.build import Board, Current, build_boards
from ptbench.leaderboard.load import load_runs
from ptbench.leaderboard.render import render, write_outputs


def build_leaderboard(
    tracking_uri: str,
    suite_name: str,
    reference: dict | None = None,
    night: str | None = None,
    current: Current | None = None,
) -> list[Board]:
    """Every board of a suite (of one night: see ``load_runs``), from the MLflow store alone;
    with ``current``, only the final runs the suite, as it reads now, still asks for."""
    from ptbench.tracking.ui import ui_base

    runs = load_runs(tracking_uri, suite_name, night)
    boards = build_boards(runs, reference, current)
    for b in boards:
        b.ui_base, b.night = ui_base(tracking_uri), runs.attrs.get("night")
    return boards


__all__ = ["Board", "Current", "build_leaderboard", "render", "write_outputs"]
