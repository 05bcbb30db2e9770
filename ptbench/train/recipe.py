"""A trial's training recipe: optimisation settings plus what regularizers add to them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ptbench.params import Param

TRAINER_KEYS = (
    "lr",
    "epochs",
    "batch_size",
    "warmup_epochs",
    "grad_clip",
    "head_lr_mult",
    "optimizer",
    "schedule",
    "momentum",
)

# what each trainer setting may take, checked at validate (out of range, a value failed every
# trial, or was read as another: an unknown optimizer ran AdamW, epochs 2.7 ran 2)
TRAINER_LIMITS = {
    "lr": Param(float, "learning rate", gt=0.0),
    "epochs": Param(int, low=1),
    "batch_size": Param(int, low=1),
    "warmup_epochs": Param(int, low=0),
    "grad_clip": Param(float, "max gradient norm; 0 = off", low=0.0),
    "head_lr_mult": Param(float, "the head's lr over the backbone's", gt=0.0),
    "optimizer": Param(str, choices=("adamw", "sgd")),
    "schedule": Param(str, "after warm-up", choices=("cosine", "linear", "constant")),
    "momentum": Param(float, "sgd", low=0.0, lt=1.0),
}


@dataclass
class Recipe:
    lr: float = 1e-3
    epochs: int = 3
    batch_size: int = 64
    warmup_epochs: int = 0
    grad_clip: float = 0.0
    head_lr_mult: float = 1.0
    optimizer: str = "adamw"  # adamw | sgd
    schedule: str = "cosine"  # cosine | linear | constant (after warm-up)
    momentum: float = 0.9  # sgd
    # set by regularizers
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    dropout: float = 0.0
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    l2_sp: float = 0.0  # penalty toward the starting (pretrained) backbone weights
    ema_decay: float = 0.0  # evaluate and keep an exponential moving average of the weights
    patience: int = 0  # early stopping on the validation metric (0 = off)
    # set by the trial from the suite's objective: what early stopping keeps the best epoch by
    monitor: str = "val_accuracy"
    monitor_max: bool = True
    # backbone build params set by regularizers that act inside it (drop_path_rate, dropout)
    backbone_params: dict[str, Any] = field(default_factory=dict)
    augment: dict[str, Any] = field(default_factory=dict)  # per-modality augmentation settings
    # set by the trial: a per-batch augmentation (built from ``augment`` and the input kind)
    augmenter: Callable | None = None

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Recipe:
        """Trainer settings from the sampled params; regularizers fill in the rest."""
        r = cls()
        for key in TRAINER_KEYS:
            if key in params:
                setattr(r, key, type(getattr(r, key))(params[key]))
        return r
