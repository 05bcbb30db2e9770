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


def make_head(backbone: Backbone, num_classes: int, dropout: float) -> nn.Module:
    layers: list[nn.Module] = [nn.Dropout(dropout)] if dropout > 0 else []
    return nn.Sequential(*layers, nn.Linear(backbone.num_features, num_classes))


def freeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)


def trainable(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]
