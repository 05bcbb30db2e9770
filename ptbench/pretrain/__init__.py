"""``ptbench pretrain``: make pretrained weights offline, so every modality has a pretrained-vs-
random comparison and *which pre-training* becomes something a suite can compare."""

from ptbench.registry import Registry

OBJECTIVES = Registry(
    "objective",
    modules=("ptbench.pretrain.objectives",),
    meta_keys=("modalities",),  # the backbone modalities it pre-trains (suite checks, pretrain)
)

__all__ = ["OBJECTIVES"]
