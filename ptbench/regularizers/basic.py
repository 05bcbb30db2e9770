"""Weight decay, label smoothing, head dropout, mixup and cutmix (timm.data.Mixup)."""

from __future__ import annotations

from typing import Any

from ptbench.regularizers import REGULARIZERS
from ptbench.train.recipe import Recipe


@REGULARIZERS.register(
    "weight_decay", space={"weight_decay": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True}}
)
def weight_decay(recipe: Recipe, p: dict[str, Any]) -> None:
    """Decoupled weight decay (AdamW) on weights, not on biases or norms."""
    recipe.weight_decay = float(p["weight_decay"])


@REGULARIZERS.register(
    "label_smoothing", space={"label_smoothing": {"type": "float", "low": 0.0, "high": 0.2}}
)
def label_smoothing(recipe: Recipe, p: dict[str, Any]) -> None:
    """Cross-entropy against smoothed targets."""
    recipe.label_smoothing = float(p["label_smoothing"])


@REGULARIZERS.register("dropout", space={"dropout": {"type": "float", "low": 0.0, "high": 0.5}})
def dropout(recipe: Recipe, p: dict[str, Any]) -> None:
    """Dropout before the classification head."""
    recipe.dropout = float(p["dropout"])


@REGULARIZERS.register("mixup", space={"mixup_alpha": {"type": "float", "low": 0.1, "high": 1.0}})
def mixup(recipe: Recipe, p: dict[str, Any]) -> None:
    """Mixup of inputs and targets (on features for a linear probe), via timm.data.Mixup."""
    recipe.mixup_alpha = float(p["mixup_alpha"])


@REGULARIZERS.register(
    "cutmix", space={"cutmix_alpha": {"type": "float", "low": 0.1, "high": 1.0}}, needs="images"
)
def cutmix(recipe: Recipe, p: dict[str, Any]) -> None:
    """CutMix of image patches and targets, via timm.data.Mixup."""
    recipe.cutmix_alpha = float(p["cutmix_alpha"])
