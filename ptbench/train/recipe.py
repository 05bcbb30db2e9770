"""A trial's training recipe: optimisation settings plus what regularizers add to them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Recipe:
    lr: float = 1e-3
    epochs: int = 3
    batch_size: int = 64
    warmup_epochs: int = 0
    grad_clip: float = 0.0
    head_lr_mult: float = 1.0
    # set by regularizers
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    dropout: float = 0.0
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Recipe:
        """Trainer settings from the sampled params; regularizers fill in the rest."""
        r = cls()
        for key in ("lr", "epochs", "batch_size", "warmup_epochs", "grad_clip", "head_lr_mult"):
            if key in params:
                setattr(r, key, type(getattr(r, key))(params[key]))
        return r
