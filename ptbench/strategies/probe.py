"""The linear probe: a head over the frozen backbone's cached features."""

from __future__ import annotations

from typing import Any

from ptbench.backbones.base import Backbone
from ptbench.strategies import STRATEGIES
from ptbench.strategies.base import Adapted, freeze, make_head
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
