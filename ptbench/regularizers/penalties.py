"""What the loss and the optimiser add: weight decay, L2-SP toward the pretrained weights,
label smoothing."""

from __future__ import annotations

from typing import Any

from ptbench.params import Param
from ptbench.regularizers import REGULARIZERS
from ptbench.train.recipe import Recipe


@REGULARIZERS.register(
    "weight_decay",
    space={"weight_decay": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True}},
    limits={"weight_decay": Param(float, low=0.0)},
)
def weight_decay(recipe: Recipe, p: dict[str, Any]) -> None:
    """Decoupled weight decay (AdamW) on weights, not on biases or norms."""
    recipe.weight_decay = float(p["weight_decay"])


@REGULARIZERS.register(
    "l2_sp",
    space={"l2_sp": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}},
    limits={"l2_sp": Param(float, low=0.0)},
    raw_inputs=True,
)
def l2_sp(recipe: Recipe, p: dict[str, Any]) -> None:
    """L2-SP (Li et al., 2018): α/2·‖w − w₀‖² pulls fine-tuned weights toward the pretrained w₀."""
    recipe.l2_sp = float(p["l2_sp"])


@REGULARIZERS.register(
    "label_smoothing",
    space={"label_smoothing": {"type": "float", "low": 0.0, "high": 0.2}},
    limits={"label_smoothing": Param(float, low=0.0, lt=1.0)},
)
def label_smoothing(recipe: Recipe, p: dict[str, Any]) -> None:
    """Cross-entropy against smoothed targets."""
    recipe.label_smoothing = float(p["label_smoothing"])
