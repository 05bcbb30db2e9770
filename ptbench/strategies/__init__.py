"""Strategies: how a backbone is adapted (linear probe, full fine-tune, partial …)."""

from ptbench.registry import Registry

STRATEGIES = Registry("strategy", modules=("ptbench.strategies.basic", "ptbench.strategies.more"))

__all__ = ["STRATEGIES"]
