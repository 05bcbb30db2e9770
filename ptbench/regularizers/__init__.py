"""Regularizers: what is added to training, stackable; each sets its part of the Recipe."""

from ptbench.registry import Registry

REGULARIZERS = Registry("regularizer", modules=("ptbench.regularizers.basic",))

__all__ = ["REGULARIZERS"]
