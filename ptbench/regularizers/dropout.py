"""Dropout before the head, and inside the backbone: stochastic depth and its own dropout
layers (both set through the backbone's params)."""

from __future__ import annotations

from typing import Any

from ptbench.params import Param
from ptbench.regularizers import REGULARIZERS
from ptbench.train.recipe import Recipe


@REGULARIZERS.register(
    "dropout",
    space={"dropout": {"type": "float", "low": 0.0, "high": 0.5}},
    limits={"dropout": Param(float, "a probability", low=0.0, lt=1.0)},
)
def dropout(recipe: Recipe, p: dict[str, Any]) -> None:
    """Dropout before the classification head."""
    recipe.dropout = float(p["dropout"])


@REGULARIZERS.register(
    "drop_path",
    space={"drop_path": {"type": "float", "low": 0.0, "high": 0.2}},
    limits={"drop_path": Param(float, "a probability", low=0.0, lt=1.0)},
    raw_inputs=True,
    backbone_param="drop_path_rate",
)
def drop_path(recipe: Recipe, p: dict[str, Any]) -> None:
    """Stochastic depth inside the backbone (timm models that support drop_path_rate)."""
    recipe.backbone_params["drop_path_rate"] = float(p["drop_path"])


@REGULARIZERS.register(
    "backbone_dropout",
    space={"backbone_dropout": {"type": "float", "low": 0.0, "high": 0.3}},
    limits={"backbone_dropout": Param(float, "a probability", low=0.0, lt=1.0)},
    raw_inputs=True,
    backbone_param="dropout",
)
def backbone_dropout(recipe: Recipe, p: dict[str, Any]) -> None:
    """Dropout inside the backbone: every dropout layer of a transformer (attention, hidden) or
    between the BiLSTM's layers."""
    recipe.backbone_params["dropout"] = float(p["backbone_dropout"])
