"""Classification metrics from logits (torchmetrics where it has them)."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def classification_metrics(logits: torch.Tensor, y: torch.Tensor, num_classes: int) -> dict[str, float]:
    """accuracy, macro-F1, NLL, ECE (15 equal-width bins, L1) and the multiclass Brier score."""
    from torchmetrics.functional.classification import (
        multiclass_calibration_error,
        multiclass_f1_score,
    )

    probs = logits.float().softmax(1)
    onehot = F.one_hot(y, num_classes).float()
    return {
        "accuracy": float((logits.argmax(1) == y).float().mean()),
        "macro_f1": float(multiclass_f1_score(probs, y, num_classes, average="macro")),
        "nll": float(F.cross_entropy(logits.float(), y)),
        "ece": float(multiclass_calibration_error(probs, y, num_classes, n_bins=15, norm="l1")),
        "brier": float(((probs - onehot) ** 2).sum(1).mean()),
    }


def reliability_bins(logits: torch.Tensor, y: torch.Tensor, n_bins: int = 15) -> dict[str, float]:
    """Per equal-width confidence bin: count, mean confidence, accuracy (a reliability diagram)."""
    probs = logits.float().softmax(1)
    conf, pred = probs.max(1)
    correct = (pred == y).float()
    idx = (conf * n_bins).long().clamp(max=n_bins - 1)
    out: dict[str, float] = {}
    for b in range(n_bins):
        m = idx == b
        n = int(m.sum())
        out[f"rel_b{b:02d}_n"] = n
        if n:
            out[f"rel_b{b:02d}_conf"] = float(conf[m].mean())
            out[f"rel_b{b:02d}_acc"] = float(correct[m].mean())
    return out
