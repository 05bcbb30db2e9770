"""What changes the inputs and targets: mixup and cutmix (timm.data.Mixup) and per-modality
augmentation (``augment.py``)."""

from __future__ import annotations

from typing import Any

from ptbench.params import Param
from ptbench.regularizers import REGULARIZERS
from ptbench.train.recipe import Recipe


@REGULARIZERS.register(
    "mixup",
    space={"mixup_alpha": {"type": "float", "low": 0.1, "high": 1.0}},
    limits={"mixup_alpha": Param(float, "Beta(α, α); 0 turns mixup off", gt=0.0)},
    continuous=True,
)
def mixup(recipe: Recipe, p: dict[str, Any]) -> None:
    """Mixup of inputs and targets (on features for a linear probe; text only there: a
    fine-tune's inputs are token ids), via timm.data.Mixup."""
    recipe.mixup_alpha = float(p["mixup_alpha"])


@REGULARIZERS.register(
    "cutmix",
    space={"cutmix_alpha": {"type": "float", "low": 0.1, "high": 1.0}},
    limits={"cutmix_alpha": Param(float, "Beta(α, α); 0 turns cutmix off", gt=0.0)},
    modalities=("image",),
    raw_inputs=True,
)
def cutmix(recipe: Recipe, p: dict[str, Any]) -> None:
    """CutMix of image patches and targets, via timm.data.Mixup."""
    recipe.cutmix_alpha = float(p["cutmix_alpha"])


@REGULARIZERS.register(
    "augment",
    raw_inputs=True,
    space={
        "aug_magnitude": {"type": "int", "low": 3, "high": 12},
        "aug_prob": {"type": "float", "low": 0.1, "high": 0.5},
    },
    limits={
        "aug_magnitude": Param(int, "RandAugment's scale", low=0, high=30),
        "aug_prob": Param(float, "a probability", low=0.0, high=1.0),
    },
)
def augment(recipe: Recipe, p: dict[str, Any]) -> None:
    """Per-modality augmentation: RandAugment (images), shift + noise or SpecAugment masks (audio),
    token dropout + a word swap (text). ``aug_prob``: the chance that a given example is augmented;
    ``aug_magnitude``: how strongly (RandAugment's 0..30 scale)."""
    recipe.augment = {"magnitude": int(p["aug_magnitude"]), "prob": float(p["aug_prob"])}
