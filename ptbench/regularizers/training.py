"""How training runs and which weights are kept: early stopping, an EMA of the weights."""

from __future__ import annotations

from typing import Any

from ptbench.params import Param
from ptbench.regularizers import REGULARIZERS
from ptbench.train.recipe import Recipe


@REGULARIZERS.register(
    "early_stopping",
    space={"patience": 2},
    limits={"patience": Param(int, "epochs without a better value; 0 turned it off", low=1)},
)
def early_stopping(recipe: Recipe, p: dict[str, Any]) -> None:
    """Stop after ``patience`` epochs without a better validation accuracy; keep the best epoch."""
    recipe.patience = int(p["patience"])


@REGULARIZERS.register(
    "ema",
    space={"ema_decay": {"type": "float", "low": 0.9, "high": 0.999}},
    limits={"ema_decay": Param(float, gt=0.0, lt=1.0)},
)
def ema(recipe: Recipe, p: dict[str, Any]) -> None:
    """Exponential moving average of the weights (timm's, warmed up); the average is kept."""
    recipe.ema_decay = float(p["ema_decay"])
