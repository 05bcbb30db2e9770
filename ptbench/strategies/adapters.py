"""Parameter-efficient strategies: the backbone's weights stay frozen and a few parameters
train, its biases (BitFit) or low-rank adapters (LoRA, through peft)."""

from __future__ import annotations

from typing import Any

from ptbench.backbones.base import Backbone
from ptbench.params import Param
from ptbench.strategies import STRATEGIES
from ptbench.strategies.base import HEAD_LR, Adapted, Classifier, freeze, make_head
from ptbench.train.features import FeatureCache
from ptbench.train.recipe import Recipe


@STRATEGIES.register("bitfit", space=HEAD_LR)
def bitfit(
    backbone: Backbone, num_classes: int, recipe: Recipe, params: dict[str, Any], cache: FeatureCache
) -> Adapted:
    """BitFit: only the backbone's bias terms (and the head) train; every weight stays frozen."""
    read = {id(p) for p in backbone.read_parameters()}  # not a pooler the features skip
    freeze(backbone)
    biases = [p for n, p in backbone.named_parameters() if n.endswith("bias") and id(p) in read]
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
    limits={
        "lora_r": Param(int, "the adapters' rank", low=1),
        "lora_alpha": Param(int, "their scale (α / r)", low=1),
        "lora_dropout": Param(float, "a probability", low=0.0, lt=1.0),
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
    # L2-SP pulls the adapters toward their start, where B = 0 makes the adapted weights the
    # pretrained ones (without an anchor the searched l2_sp did nothing at all)
    return Adapted(Classifier(backbone, head), groups, backbone.encode, backbone.preprocess, anchor=adapters)
