"""Gradual unfreezing, layer-wise learning-rate decay, BitFit and LoRA (through peft)."""

from __future__ import annotations

from typing import Any

from ptbench.backbones.base import Backbone
from ptbench.strategies import STRATEGIES
from ptbench.strategies.base import Adapted, freeze, make_head, trainable
from ptbench.strategies.basic import Classifier
from ptbench.train.features import FeatureCache
from ptbench.train.recipe import Recipe

HEAD_LR = {"head_lr_mult": {"type": "float", "low": 1.0, "high": 30.0, "log": True}}


@STRATEGIES.register(
    "gradual_unfreeze", space=HEAD_LR | {"unfreeze_every": {"type": "int", "low": 1, "high": 2}}
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

    groups = [
        {"params": list(backbone.parameters()), "lr": recipe.lr},  # frozen ones get no grad
        {"params": list(head.parameters()), "lr": recipe.lr * recipe.head_lr_mult},
    ]
    ad = Adapted(
        Classifier(backbone, head),
        groups,
        backbone.encode,
        backbone.preprocess,
        anchor=list(backbone.parameters()),
        on_epoch_start=on_epoch_start,
    )
    return ad


@STRATEGIES.register("llrd", space=HEAD_LR | {"lr_decay": {"type": "float", "low": 0.5, "high": 0.95}})
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


@STRATEGIES.register("bitfit", space=HEAD_LR)
def bitfit(
    backbone: Backbone, num_classes: int, recipe: Recipe, params: dict[str, Any], cache: FeatureCache
) -> Adapted:
    """BitFit: only the backbone's bias terms (and the head) train; every weight stays frozen."""
    freeze(backbone)
    biases = [p for n, p in backbone.named_parameters() if n.endswith("bias")]
    for p in biases:
        p.requires_grad_(True)
    head = make_head(backbone, num_classes, recipe.dropout)
    groups = [
        {"params": biases, "lr": recipe.lr},
        {"params": list(head.parameters()), "lr": recipe.lr * recipe.head_lr_mult},
    ]
    return Adapted(
        Classifier(backbone, head),
        [g for g in groups if g["params"]],
        backbone.encode,
        backbone.preprocess,
        anchor=biases,
    )


def _lora_targets(entry) -> str | None:
    if not entry.meta.get("lora_targets"):
        return (
            f"LoRA needs attention projections; {entry.meta['modality']} backbone "
            f"'{entry.name}' ({entry.meta.get('family', '?')}) has none"
        )
    return None


@STRATEGIES.register(
    "lora",
    applies=_lora_targets,
    space=HEAD_LR
    | {
        "lora_r": {"type": "categorical", "choices": [4, 8, 16]},
        "lora_alpha": {"type": "categorical", "choices": [8, 16, 32]},
        "lora_dropout": 0.0,
    },
)
def lora(
    backbone: Backbone, num_classes: int, recipe: Recipe, params: dict[str, Any], cache: FeatureCache
) -> Adapted:
    """LoRA (peft): low-rank adapters on the attention projections; the backbone stays frozen."""
    from peft import LoraConfig, inject_adapter_in_model

    targets = getattr(backbone, "lora_targets", None)
    if not targets:
        raise ValueError(f"backbone has no LoRA targets (modality {backbone.modality})")
    freeze(backbone)
    config = LoraConfig(
        r=int(params.get("lora_r", 8)),
        lora_alpha=int(params.get("lora_alpha", 16)),
        lora_dropout=float(params.get("lora_dropout", 0.0)),
        target_modules=list(targets),
        bias="none",
    )
    inject_adapter_in_model(config, backbone.net)
    adapters = [p for n, p in backbone.named_parameters() if "lora_" in n]
    for p in adapters:
        p.requires_grad_(True)
    head = make_head(backbone, num_classes, recipe.dropout)
    groups = [
        {"params": adapters, "lr": recipe.lr},
        {"params": list(head.parameters()), "lr": recipe.lr * recipe.head_lr_mult},
    ]
    return Adapted(Classifier(backbone, head), groups, backbone.encode, backbone.preprocess)
