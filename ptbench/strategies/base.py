"""What a strategy hands the trainer: a model, its inputs, and the parameter groups to optimise."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ptbench.backbones.base import Backbone

# The head's own learning rate (lr × head_lr_mult): every strategy that trains a new head on a
# pretrained body searches it.
HEAD_LR = {"head_lr_mult": {"type": "float", "low": 1.0, "high": 30.0, "log": True}}


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
        # Pooled ReLU features are often dead on every training image (std exactly 0: a quarter of
        # EfficientNet-Lite0's 1,280 on MNIST) and a few are nearly so. The head can learn nothing
        # from them, yet one that wakes on a test image, divided by its ~0 train std, swamped the
        # logits (test NLL 10 at 72% accuracy). So a constant feature is dropped (scale 0) and no
        # std counts as smaller than 1% of the typical one.
        live = std > 0
        typical = std[live].mean() if live.any() else std.new_tensor(1.0)
        scale = torch.where(live, std.clamp(min=1e-2 * float(typical)).reciprocal(), torch.zeros_like(std))
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


class Classifier(nn.Sequential):
    """Backbone followed by head; BatchNorm of frozen blocks stays in eval mode."""

    def __init__(self, backbone: Backbone, head: nn.Module):
        super().__init__(backbone, head)

    def train(self, mode: bool = True) -> Classifier:
        super().train(mode)
        if mode:
            for block in self[0].blocks():
                if not any(p.requires_grad for p in block.parameters()):
                    block.eval()
        return self
