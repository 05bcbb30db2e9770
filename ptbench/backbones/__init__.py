"""Backbones: a registered model family + weight source + the preprocessing that travels with it.

Every backbone maps a preprocessed batch to features ``[B, D]`` and lists its blocks in depth
order, so strategies can freeze, unfreeze or scale learning rates by depth.
"""

from ptbench.registry import Registry

BACKBONES = Registry(
    "backbone",
    # read by the suite checks, build_backbone (lora_targets), the LoRA strategy and `ptbench ls`;
    # imagenet_top1: the published top-1 (%) of its ImageNet weights, the baseline ptbench rank
    # sets its estimators beside; hub_ids: the only ids weights: hub may name (none: the family
    # always loads its library's default), where the family does not take any
    meta_keys=(
        "modality",
        "family",
        "weights",
        "params",
        "package",
        "lora_targets",
        "imagenet_top1",
        "causal",
        "hub_ids",
    ),
    modules=("ptbench.backbones.images", "ptbench.backbones.text", "ptbench.backbones.audio"),
)

__all__ = ["BACKBONES"]
