"""Linear probe, full fine-tune and partial fine-tune."""

from __future__ import annotations

from typing import Any

from torch import nn

from ptbench.backbones.base import Backbone
from ptbench.strategies import STRATEGIES
from ptbench.strategies.base import Adapted, freeze, make_head, trainable
from ptbench.train.features import FeatureCache
from ptbench.train.recipe import Recipe

# A head over cached, standardized features costs ~15 ms an epoch (3,000 × 1,280): 20 epochs at
# lr ~1e-2 (the range's log-midpoint) reach what scikit-learn's StandardScaler + LogisticRegression
# reaches on the same features (tests/test_probe.py); 3 epochs at the trainer's 1.7e-3 do not.
PROBE_SPACE = {"lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}, "epochs": 20}


@STRATEGIES.register("linear_probe", space=PROBE_SPACE, features=True)
def linear_probe(
    backbone: Backbone, num_classes: int, recipe: Recipe, params: dict[str, Any], cache: FeatureCache
) -> Adapted:
    """Backbone frozen, features cached; only the head trains, on train-standardized features.

    Features are computed once per example; the head standardizes them with the training
    split's mean and std (the usual probe recipe), so it learns alike at any feature scale."""
    freeze(backbone)
    backbone.eval()
    head = make_head(backbone, num_classes, recipe.dropout, standardize=True)
    return Adapted(
        head,
        [{"params": list(head.parameters())}],
        encode=lambda x: cache.features(backbone, backbone.encode(x)),
        transform=None,
    )


class Classifier(nn.Sequential):
    """Backbone followed by head; BatchNorm of frozen blocks stays in eval mode."""

    def __init__(self, backbone: Backbone, head: nn.Module):
        super().__init__(backbone, head)

    def train(self, mode: bool = True) -> Classifier:
        super().train(mode)
        if mode:
            for block in self[0].blocks():
                if not any(p.requires_grad for p in block.parameters()):
                    block.eval()
        return self


def _finetune(backbone: Backbone, num_classes: int, recipe: Recipe) -> Adapted:
    head = make_head(backbone, num_classes, recipe.dropout)
    groups = [
        {"params": trainable(backbone), "lr": recipe.lr},
        {"params": list(head.parameters()), "lr": recipe.lr * recipe.head_lr_mult},
    ]
    groups = [g for g in groups if g["params"]]
    return Adapted(
        Classifier(backbone, head),
        groups,
        encode=backbone.encode,
        transform=backbone.preprocess,
        anchor=trainable(backbone),
    )


@STRATEGIES.register(
    "full_finetune", space={"head_lr_mult": {"type": "float", "low": 1.0, "high": 30.0, "log": True}}
)
def full_finetune(
    backbone: Backbone, num_classes: int, recipe: Recipe, params: dict[str, Any], cache: FeatureCache
) -> Adapted:
    """Every parameter trains; the head gets its own learning rate (lr × head_lr_mult)."""
    return _finetune(backbone, num_classes, recipe)


@STRATEGIES.register(
    "partial_finetune",
    space={
        "train_blocks": {"type": "int", "low": 1, "high": 3},
        "head_lr_mult": {"type": "float", "low": 1.0, "high": 30.0, "log": True},
    },
)
def partial_finetune(
    backbone: Backbone, num_classes: int, recipe: Recipe, params: dict[str, Any], cache: FeatureCache
) -> Adapted:
    """Only the last ``train_blocks`` blocks of the backbone (and the head) train."""
    k = int(params.get("train_blocks", 1))
    blocks = backbone.blocks()
    freeze(backbone)
    for block in blocks[max(0, len(blocks) - k) :]:
        for p in block.parameters():
            p.requires_grad_(True)
    return _finetune(backbone, num_classes, recipe)
