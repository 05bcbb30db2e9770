"""Fine-tuning the backbone's own weights: all of them, the top blocks, unfrozen gradually from
the top, or all with layer-wise learning-rate decay."""

from __future__ import annotations

from typing import Any

from ptbench.backbones.base import Backbone
from ptbench.params import Param
from ptbench.strategies import STRATEGIES
from ptbench.strategies.base import HEAD_LR, Adapted, Classifier, freeze, make_head, trainable
from ptbench.train.features import FeatureCache
from ptbench.train.recipe import Recipe


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


@STRATEGIES.register("full_finetune", space=HEAD_LR)
def full_finetune(
    backbone: Backbone, num_classes: int, recipe: Recipe, params: dict[str, Any], cache: FeatureCache
) -> Adapted:
    """Every parameter trains; the head gets its own learning rate (lr × head_lr_mult)."""
    return _finetune(backbone, num_classes, recipe)


@STRATEGIES.register(
    "partial_finetune",
    space={"train_blocks": {"type": "int", "low": 1, "high": 3}} | HEAD_LR,
    limits={"train_blocks": Param(int, "blocks from the top", low=1)},
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


@STRATEGIES.register(
    "gradual_unfreeze",
    space=HEAD_LR | {"unfreeze_every": {"type": "int", "low": 1, "high": 2}},
    limits={"unfreeze_every": Param(int, "epochs", low=1)},
    below_epochs={"unfreeze_every": "no block ever unfreezes (the head trains alone)"},
)
def gradual_unfreeze(
    backbone: Backbone, num_classes: int, recipe: Recipe, params: dict[str, Any], cache: FeatureCache
) -> Adapted:
    """Head first; then one more block, from the top down, every ``unfreeze_every`` epochs."""
    every = max(1, int(params.get("unfreeze_every", 1)))
    blocks = backbone.blocks()
    head = make_head(backbone, num_classes, recipe.dropout)
    freeze(backbone)

    def on_epoch_start(epoch: int) -> None:
        for block in blocks[max(0, len(blocks) - epoch // every) :]:
            for p in block.parameters():
                p.requires_grad_(True)

    # the blocks that unfreeze within the run: counted as trainable, and anchored by L2-SP
    reached = blocks[max(0, len(blocks) - (recipe.epochs - 1) // every) :]
    seen: set[int] = set()
    unfrozen = [p for b in reached for p in b.parameters() if id(p) not in seen and not seen.add(id(p))]
    groups = [
        {"params": unfrozen, "lr": recipe.lr},  # still frozen ones get no grad
        {"params": list(head.parameters()), "lr": recipe.lr * recipe.head_lr_mult},
    ]
    ad = Adapted(
        Classifier(backbone, head),
        groups,
        backbone.encode,
        backbone.preprocess,
        anchor=unfrozen,
        on_epoch_start=on_epoch_start,
    )
    return ad


@STRATEGIES.register(
    "llrd",
    space=HEAD_LR | {"lr_decay": {"type": "float", "low": 0.5, "high": 0.95}},
    limits={"lr_decay": Param(float, "per block from the top", gt=0.0, high=1.0)},
)
def llrd(
    backbone: Backbone, num_classes: int, recipe: Recipe, params: dict[str, Any], cache: FeatureCache
) -> Adapted:
    """Full fine-tune with layer-wise learning-rate decay: block i from the top gets lr·decay^i."""
    decay = float(params.get("lr_decay", 0.75))
    blocks = backbone.blocks()
    head = make_head(backbone, num_classes, recipe.dropout)
    groups, seen = [], set()
    for depth, block in enumerate(reversed(blocks), start=1):
        ps = [p for p in block.parameters() if id(p) not in seen]
        seen |= {id(p) for p in ps}
        if ps:
            groups.append({"params": ps, "lr": recipe.lr * decay**depth})
    groups.append({"params": list(head.parameters()), "lr": recipe.lr * recipe.head_lr_mult})
    return Adapted(
        Classifier(backbone, head), groups, backbone.encode, backbone.preprocess, anchor=trainable(backbone)
    )
