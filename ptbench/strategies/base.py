"""What a strategy hands the trainer: a model, its inputs, and the parameter groups to optimise."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ptbench.backbones.base import Backbone


@dataclass
class Adapted:
    """``encode`` maps a raw split to model inputs once; ``transform`` runs per batch."""

    model: nn.Module
    param_groups: list[dict[str, Any]]
    encode: Callable[[torch.Tensor], torch.Tensor]
    transform: Callable[[torch.Tensor], torch.Tensor] | None
    # backbone parameters being trained: what L2-SP anchors to their pretrained values
    anchor: list[nn.Parameter] = field(default_factory=list)
    on_epoch_start: Callable[[int], None] | None = None  # e.g. gradual unfreezing
    # set by the trial: the backbone, and whether ``model`` is a head over cached features
    backbone: Backbone | None = None
    features: bool = False

    def logits_from_raw(self, raw) -> torch.Tensor:
        """Differentiable logits from raw inputs (images in [0, 1], waveforms, texts):
        the path attacks and corruption evaluation take, with no feature cache. Inputs and
        logits live on the CPU (where corruptions and attacks draw their noise); the model runs
        on its own device."""
        bb = self.backbone
        x = bb.encode(raw).to(next(self.model.parameters()).device)
        if self.features:
            out = self.model(bb(bb.preprocess(x) if bb.preprocess is not None else x))
        else:
            out = self.model(self.transform(x) if self.transform is not None else x)
        return out.float().cpu()

    @torch.no_grad()
    def predict_raw(self, raw, batch_size: int = 256) -> torch.Tensor:
        self.model.eval()
        self.backbone.eval()
        return torch.cat(
            [self.logits_from_raw(raw[i : i + batch_size]).float() for i in range(0, len(raw), batch_size)]
        )

    @property
    def trainable_params(self) -> int:
        return sum(p.numel() for g in self.param_groups for p in g["params"])


class Standardize(nn.Module):
    """``(x − mean) / std`` per feature, with the statistics of the training split only.

    A probe's head learns at the same speed whatever the features' scale (unit-norm speaker
    embeddings, pooled CNN activations of ~1e-3, 0..255 pixels), as the usual linear-evaluation
    recipe (a scaler before the logistic regression) does. The statistics are buffers of the
    head, so every path through it (validation, test, corruptions, attacks on raw inputs) applies
    the same ones. Written here, not with scikit-learn's ``StandardScaler``: they must live in the
    torch module that attacks differentiate through.
    """

    def __init__(self, num_features: int):
        super().__init__()
        # z = x·scale + shift, i.e. scale = 1/std and shift = −mean/std: one pass over a batch
        self.register_buffer("scale", torch.ones(num_features))
        self.register_buffer("shift", torch.zeros(num_features))

    @torch.no_grad()
    def fit_transform(self, x: torch.Tensor) -> torch.Tensor:
        """Learn mean and std from the training inputs (the trainer calls this once, before the
        first step) and return those inputs standardized, in the passes that computing std takes."""
        x = x.float()
        mean = x.mean(0)
        z = x - mean
        std = z.square().mean(0).sqrt()  # two passes: 4x faster than torch.std_mean(dim=0) here
        # a constant feature keeps scale 1 (as StandardScaler does) instead of dividing by ~0
        scale = torch.where(std > 1e-6 * mean.abs(), std, torch.ones_like(std)).reciprocal()
        self.scale.copy_(scale)
        self.shift.copy_(-mean * scale)
        return z.mul_(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift, x, self.scale)


def make_head(backbone: Backbone, num_classes: int, dropout: float, standardize: bool = False) -> nn.Module:
    """Linear classifier, with dropout before it; ``standardize`` for a head over frozen features."""
    layers: list[nn.Module] = [Standardize(backbone.num_features)] if standardize else []
    layers += [nn.Dropout(dropout)] if dropout > 0 else []
    return nn.Sequential(*layers, nn.Linear(backbone.num_features, num_classes))


def freeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)


def trainable(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]
