"""The one training/eval loop. It knows nothing of grids, studies or executors.

Data lives in memory as tensors; each epoch is a seeded permutation sliced into batches, so the
loop costs what a plain PyTorch loop costs. ``on_epoch`` sees the validation metrics after every
epoch (that is where pruning happens, by raising from the callback).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
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
    stopped_early: bool = False


def _optimizer(groups: list[dict[str, Any]], recipe: Recipe) -> torch.optim.Optimizer:
    """AdamW or SGD; decay only on weights (ndim > 1), never on biases or norm scales."""
    out = []
    for g in groups:
        lr = g.get("lr", recipe.lr)
        out += [
            {"params": [p for p in g["params"] if p.ndim > 1], "lr": lr, "weight_decay": recipe.weight_decay},
            {"params": [p for p in g["params"] if p.ndim <= 1], "lr": lr, "weight_decay": 0.0},
        ]
    out = [g for g in out if g["params"]]
    # fused: one kernel per step instead of one per tensor op (~10% of a linear-probe head fit)
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(out, lr=recipe.lr, momentum=recipe.momentum, nesterov=True, fused=True)
    return torch.optim.AdamW(out, lr=recipe.lr, fused=True)


def _schedule(opt: torch.optim.Optimizer, recipe: Recipe, steps_per_epoch: int):
    warm = recipe.warmup_epochs * steps_per_epoch
    total = max(1, recipe.epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, total - warm)
        if recipe.schedule == "constant":
            return 1.0
        if recipe.schedule == "linear":
            return max(0.0, 1.0 - progress)
        return 0.5 * (1 + math.cos(math.pi * progress))

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


def _autocast(device: str):
    """bf16 autocast on CUDA; plain fp32 on the CPU."""
    if device.startswith("cuda"):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


@torch.no_grad()
def predict(
    model: nn.Module, x: torch.Tensor, transform: Transform, device: str, batch_size: int = 256
) -> torch.Tensor:
    """Logits for ``x`` (on the CPU), in eval mode."""
    model.eval()
    out = []
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size].to(device, non_blocking=True)
        with _autocast(device):
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
    on_epoch_start: Callable[[int], None] | None = None,
    anchor: list[nn.Parameter] | None = None,
) -> FitResult:
    """Train ``model`` on ``train``; validate every epoch; return the history.

    ``anchor``: parameters the L2-SP penalty pulls toward their values at the start of fit
    (the pretrained weights). ``on_epoch_start`` lets a strategy change what trains (gradual
    unfreezing).
    """
    model.to(device)  # keeps the memory format the backbone was built with (channels-last images)
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
    sp = [(p, p.detach().clone()) for p in anchor or []] if recipe.l2_sp > 0 else []
    ema = None
    if recipe.ema_decay > 0:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(recipe.ema_decay), use_buffers=True)
    best, best_state, bad_epochs = -math.inf, None, 0
    result = FitResult()
    x_all, y_all = train.x, train.y
    for epoch in range(recipe.epochs):
        if on_epoch_start is not None:
            on_epoch_start(epoch)
        model.train()
        perm = torch.randperm(n, generator=gen)
        total = torch.zeros((), device=device)
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            if mixer is not None and len(idx) % 2:
                idx = idx[:-1]
                if len(idx) == 0:
                    continue
            # index_select, not x[idx]: 3.5x cheaper per batch, which is most of a head step
            xb = x_all.index_select(0, idx).to(device, non_blocking=True)
            yb = y_all.index_select(0, idx).to(device, non_blocking=True)
            if recipe.augmenter is not None:
                xb = recipe.augmenter(xb)
            if transform is not None:
                xb = transform(xb)
            if mixer is not None:
                xb, yb = mixer(xb, yb)
            with _autocast(device):
                loss = loss_fn(model(xb), yb)
            if sp:
                loss = loss + 0.5 * recipe.l2_sp * sum(((p - p0) ** 2).sum() for p, p0 in sp)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if recipe.grad_clip > 0:
                nn.utils.clip_grad_norm_(params, recipe.grad_clip)
            opt.step()
            sched.step()
            if ema is not None:
                ema.update_parameters(model)
            total += loss.detach() * len(idx)
            result.examples_seen += len(idx)
        train_loss = float(total) / max(1, n)
        if not math.isfinite(train_loss):
            raise TrialError(f"non-finite training loss ({train_loss}) in epoch {epoch}")
        scored = ema.module if ema is not None else model
        logits = predict(scored, val.x, transform, device)
        metrics = {
            "train_loss": train_loss,
            "val_loss": float(nn.functional.cross_entropy(logits, val.y)),
            "val_accuracy": float((logits.argmax(1) == val.y).float().mean()),
        }
        result.history.append(metrics)
        if on_epoch is not None:
            on_epoch(epoch, metrics)
        if recipe.patience > 0:
            if metrics["val_accuracy"] > best:
                best, bad_epochs = metrics["val_accuracy"], 0
                best_state = copy.deepcopy(scored.state_dict())
            else:
                bad_epochs += 1
                if bad_epochs >= recipe.patience:
                    result.stopped_early = True
                    break
    if ema is not None:  # the averaged weights are the ones evaluated and kept
        model.load_state_dict(ema.module.state_dict())
    if best_state is not None:  # early stopping keeps the best epoch's weights
        model.load_state_dict(best_state)
    result.train_seconds = time.perf_counter() - start
    return result
