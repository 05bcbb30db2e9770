"""The one training/eval loop. It knows nothing of grids, studies or executors.

Data lives in memory as tensors; each epoch is a seeded permutation sliced into batches, so the
loop costs what a plain PyTorch loop costs. ``on_epoch`` sees the validation metrics after every
epoch (that is where pruning happens, by raising from the callback).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ptbench.errors import TrialError
from ptbench.tasks.base import Split
from ptbench.train.recipe import Recipe

Transform = Callable[[torch.Tensor], torch.Tensor] | None
EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass
class FitResult:
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0
    examples_seen: int = 0


def _optimizer(groups: list[dict[str, Any]], recipe: Recipe) -> torch.optim.Optimizer:
    """AdamW; decay only on weights (ndim > 1), never on biases or norm scales."""
    out = []
    for g in groups:
        decay = [p for p in g["params"] if p.ndim > 1]
        rest = [p for p in g["params"] if p.ndim <= 1]
        lr = g.get("lr", recipe.lr)
        out += [
            {"params": decay, "lr": lr, "weight_decay": recipe.weight_decay},
            {"params": rest, "lr": lr, "weight_decay": 0.0},
        ]
    return torch.optim.AdamW([g for g in out if g["params"]], lr=recipe.lr)


def _schedule(opt: torch.optim.Optimizer, recipe: Recipe, steps_per_epoch: int):
    warm = recipe.warmup_epochs * steps_per_epoch
    total = max(1, recipe.epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _mixer(recipe: Recipe, num_classes: int):
    if recipe.mixup_alpha <= 0 and recipe.cutmix_alpha <= 0:
        return None
    from timm.data import Mixup

    return Mixup(
        mixup_alpha=recipe.mixup_alpha,
        cutmix_alpha=recipe.cutmix_alpha,
        label_smoothing=recipe.label_smoothing,
        num_classes=num_classes,
    )


@torch.no_grad()
def predict(
    model: nn.Module, x: torch.Tensor, transform: Transform, device: str, batch_size: int = 256
) -> torch.Tensor:
    """Logits for ``x`` (on the CPU), in eval mode."""
    model.eval()
    out = []
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size].to(device, non_blocking=True)
        out.append(model(transform(xb) if transform else xb).float().cpu())
    return torch.cat(out)


def fit(
    model: nn.Module,
    groups: list[dict[str, Any]],
    train: Split,
    val: Split,
    recipe: Recipe,
    *,
    num_classes: int,
    transform: Transform = None,
    device: str = "cpu",
    seed: int = 0,
    on_epoch: EpochCallback | None = None,
) -> FitResult:
    model.to(device)
    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    n, bs = len(train), max(1, min(recipe.batch_size, len(train)))
    steps = math.ceil(n / bs)
    opt = _optimizer(groups, recipe)
    sched = _schedule(opt, recipe, steps)
    mixer = _mixer(recipe, num_classes)
    if mixer is not None:
        from timm.loss import SoftTargetCrossEntropy

        loss_fn: nn.Module = SoftTargetCrossEntropy()
    else:
        loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    params = [p for g in groups for p in g["params"]]
    result = FitResult()
    x_all, y_all = train.x, train.y
    for epoch in range(recipe.epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        total = torch.zeros((), device=device)
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            if mixer is not None and len(idx) % 2:
                idx = idx[:-1]
                if len(idx) == 0:
                    continue
            xb = x_all[idx].to(device, non_blocking=True)
            yb = y_all[idx].to(device, non_blocking=True)
            if transform is not None:
                xb = transform(xb)
            if mixer is not None:
                xb, yb = mixer(xb, yb)
            loss = loss_fn(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if recipe.grad_clip > 0:
                nn.utils.clip_grad_norm_(params, recipe.grad_clip)
            opt.step()
            sched.step()
            total += loss.detach() * len(idx)
            result.examples_seen += len(idx)
        train_loss = float(total) / max(1, n)
        if not math.isfinite(train_loss):
            raise TrialError(f"non-finite training loss ({train_loss}) in epoch {epoch}")
        logits = predict(model, val.x, transform, device)
        metrics = {
            "train_loss": train_loss,
            "val_loss": float(nn.functional.cross_entropy(logits, val.y)),
            "val_accuracy": float((logits.argmax(1) == val.y).float().mean()),
        }
        result.history.append(metrics)
        if on_epoch is not None:
            on_epoch(epoch, metrics)
    result.train_seconds = time.perf_counter() - start
    return result
