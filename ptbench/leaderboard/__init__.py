"""Leaderboards built from MLflow runs alone: one table per task (and split hash)."""

from ptbench.leaderboard.build import build_leaderboard
from ptbench.leaderboard.render import render, write_outputs

__all__ = ["build_leaderboard", "render", "write_outputs"]
