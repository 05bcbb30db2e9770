"""``ptbench rank``: every backbone of a suite scored per task by transferability estimators
from its frozen features alone (``ptbench.evaluate.transferability``), in seconds instead of a
grid of fine-tunes; and, once the suite's final runs exist, each estimator checked against that
truth — per task, the test accuracy of each backbone's best fine-tuning cell chosen by
validation (never a linear probe: the probe baseline would be its own truth). The funnel
(``axes.select``) uses the same scores to keep only the top backbones of a grid."""

from ptbench.rank.funnel import Selection, select_cells
from ptbench.rank.report import render, write
from ptbench.rank.score import RankReport, Scored, rank_suite

__all__ = ["RankReport", "Scored", "Selection", "rank_suite", "render", "select_cells", "write"]
