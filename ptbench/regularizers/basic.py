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
    "cutmix",
    space={"cutmix_alpha": {"type": "float", "low": 0.1, "high": 1.0}},
    modalities=("image",),
    raw_inputs=True,
)
def cutmix(recipe: Recipe, p: dict[str, Any]) -> None:
    """CutMix of image patches and targets, via timm.data.Mixup."""
    recipe.cutmix_alpha = float(p["cutmix_alpha"])


@REGULARIZERS.register(
    "l2_sp", space={"l2_sp": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}}, raw_inputs=True
)
def l2_sp(recipe: Recipe, p: dict[str, Any]) -> None:
    """L2-SP (Li et al., 2018): α/2·‖w − w₀‖² pulls fine-tuned weights toward the pretrained w₀."""
    recipe.l2_sp = float(p["l2_sp"])


@REGULARIZERS.register("ema", space={"ema_decay": {"type": "float", "low": 0.9, "high": 0.999}})
def ema(recipe: Recipe, p: dict[str, Any]) -> None:
    """Exponential moving average of the weights (torch.optim.swa_utils); the average is kept."""
    recipe.ema_decay = float(p["ema_decay"])


@REGULARIZERS.register("early_stopping", space={"patience": 2})
def early_stopping(recipe: Recipe, p: dict[str, Any]) -> None:
    """Stop after ``patience`` epochs without a better validation accuracy; keep the best epoch."""
    recipe.patience = int(p["patience"])


@REGULARIZERS.register(
    "drop_path",
    space={"drop_path": {"type": "float", "low": 0.0, "high": 0.2}},
    raw_inputs=True,
    backbone_param="drop_path_rate",
)
def drop_path(recipe: Recipe, p: dict[str, Any]) -> None:
    """Stochastic depth inside the backbone (timm models that support drop_path_rate)."""
    recipe.backbone_params["drop_path_rate"] = float(p["drop_path"])


@REGULARIZERS.register(
    "backbone_dropout",
    space={"backbone_dropout": {"type": "float", "low": 0.0, "high": 0.3}},
    raw_inputs=True,
    backbone_param="dropout",
)
def backbone_dropout(recipe: Recipe, p: dict[str, Any]) -> None:
    """Dropout inside the backbone: every dropout layer of a transformer (attention, hidden) or
    between the BiLSTM's layers."""
    recipe.backbone_params["dropout"] = float(p["backbone_dropout"])


@REGULARIZERS.register(
    "augment",
    raw_inputs=True,
    space={
        "aug_magnitude": {"type": "int", "low": 3, "high": 12},
        "aug_prob": {"type": "float", "low": 0.1, "high": 0.5},
    },
)
def augment(recipe: Recipe, p: dict[str, Any]) -> None:
    """Per-modality augmentation: RandAugment (images), shift + noise or SpecAugment masks (audio),
    token dropout + a word swap (text). ``aug_prob``: the chance that a given example is augmented;
    ``aug_magnitude``: how strongly (RandAugment's 0..30 scale)."""
    recipe.augment = {"magnitude": int(p["aug_magnitude"]), "prob": float(p["aug_prob"])}
