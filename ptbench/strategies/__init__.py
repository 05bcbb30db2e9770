"""Strategies: how a backbone is adapted (linear probe, full fine-tune, partial …)."""

from ptbench.registry import Registry

STRATEGIES = Registry(
    "strategy",
    # space: default search space; limits: the values each of its params may take (Param);
    # features: trains on cached frozen features (trial, checks);
    # applies(backbone entry) -> why it cannot apply, or None (suite checks);
    # below_epochs: {param: what happens at or above the run's epochs} (suite checks)
    meta_keys=("space", "limits", "features", "applies", "below_epochs"),
    modules=("ptbench.strategies.probe", "ptbench.strategies.finetune", "ptbench.strategies.adapters"),
)

__all__ = ["STRATEGIES"]
