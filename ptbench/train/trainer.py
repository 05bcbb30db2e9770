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
    best_epoch: int = -1  # whose weights come back: the best by validation under early stopping

    @property
    def kept(self) -> dict[str, float]:
        """The epoch metrics of the weights ``fit`` returns: what a trial must report (the last
        epoch's, patience epochs past the best, understated every early-stopped trial)."""
        return self.history[self.best_epoch] if self.history else {}


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
    if recipe.optimizer == "sgd":  # Nesterov needs a momentum: with 0 it is plain SGD
        nesterov = recipe.momentum > 0
        return torch.optim.SGD(out, lr=recipe.lr, momentum=recipe.momentum, nesterov=nesterov, fused=True)
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


def _fitted_input_layer(
    model: nn.Module, train_x: torch.Tensor, val_x: torch.Tensor, transform: Transform, recipe: Recipe
) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A leading layer that learns from its inputs (a probe's standardization: ``fit_transform``,
    as in scikit-learn) sees the training inputs here, once: never validation or held-out data.
    Where nothing runs before it per batch, the rest of the model trains on its output, computed
    once for both splits: the same fixed map per batch would cost ~8 % of a probe's head fit."""
    first = model[0] if isinstance(model, nn.Sequential) and len(model) > 1 else None
    if not callable(getattr(first, "fit_transform", None)):
        return model, train_x, val_x
    z = first.fit_transform(train_x)
    if transform is not None or recipe.augmenter is not None:
        return model, train_x, val_x
    with torch.no_grad():  # the splits stay on the CPU; batches move to the device per step
        return model[1:], z, copy.deepcopy(first).cpu()(val_x.float())


@dataclass
class _Loop:
    """What every training step needs, built once per fit."""

    model: nn.Module
    recipe: Recipe
    transform: Transform
    device: str
    opt: torch.optim.Optimizer
    sched: Any
    mixer: Any
    loss_fn: nn.Module
    params: list[nn.Parameter]
    sp: list[tuple[nn.Parameter, torch.Tensor]]
    ema: Any
    steps: int = 0  # optimizer steps so far: the EMA's warm-up reads it


def _loop(model, groups, recipe, transform, device, num_classes, steps, anchor) -> _Loop:
    if recipe.l2_sp > 0 and not anchor:  # a searched value that changes nothing is a silent lie
        raise TrialError("l2_sp is set, but this strategy trains no weights it could anchor")
    opt = _optimizer(groups, recipe)
    mixer = _mixer(recipe, num_classes)
    if mixer is not None:
        from timm.loss import SoftTargetCrossEntropy

        loss_fn: nn.Module = SoftTargetCrossEntropy()
    else:
        loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    ema = None
    if recipe.ema_decay > 0:
        # timm's warm-up (decay 1 − step^(−2/3) until it reaches ema_decay): at a fixed 0.99 the
        # average of a few dozen steps is still mostly the first step's weights (a random head)
        from timm.utils import ModelEmaV3

        ema = ModelEmaV3(model, decay=recipe.ema_decay, use_warmup=True)
    return _Loop(
        model,
        recipe,
        transform,
        device,
        opt,
        _schedule(opt, recipe, steps),
        mixer,
        loss_fn,
        [p for g in groups for p in g["params"]],
        [(p, p.detach().clone()) for p in anchor or []] if recipe.l2_sp > 0 else [],
        ema,
    )


def _batches(n: int, bs: int) -> list[tuple[int, int]]:
    """``(start, end)`` of each batch over ``n`` examples. A remainder of one example joins the
    batch before it: BatchNorm cannot normalise a single example in training, and a final batch
    of one (train_size 101, batch_size 50) failed every trial of a BatchNorm backbone."""
    if n == 0:
        return []
    starts = list(range(0, n, max(1, min(bs, n))))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    return list(zip(starts, [*starts[1:], n], strict=True))


def _train_epoch(lp: _Loop, x_all: torch.Tensor, y_all: torch.Tensor, perm: torch.Tensor, bounds):
    """One pass over ``perm`` in the batches ``bounds``; returns (summed loss, examples seen)."""
    recipe, device = lp.recipe, lp.device
    lp.model.train()
    total, seen = torch.zeros((), device=device), 0
    for lo, hi in bounds:
        idx = perm[lo:hi]
        if lp.mixer is not None and len(idx) % 2:
            idx = idx[:-1]
            if len(idx) == 0:
                continue
        # index_select, not x[idx]: 3.5x cheaper per batch, which is most of a head step
        xb = x_all.index_select(0, idx).to(device, non_blocking=True)
        yb = y_all.index_select(0, idx).to(device, non_blocking=True)
        if recipe.augmenter is not None:
            xb = recipe.augmenter(xb)
        if lp.transform is not None:
            xb = lp.transform(xb)
        if lp.mixer is not None:
            xb, yb = lp.mixer(xb, yb)
        with _autocast(device):
            loss = lp.loss_fn(lp.model(xb), yb)
        if lp.sp:
            loss = loss + 0.5 * recipe.l2_sp * sum(((p - p0) ** 2).sum() for p, p0 in lp.sp)
        lp.opt.zero_grad(set_to_none=True)
        loss.backward()
        if recipe.grad_clip > 0:
            nn.utils.clip_grad_norm_(lp.params, recipe.grad_clip)
        lp.opt.step()
        lp.sched.step()
        lp.steps += 1
        if lp.ema is not None:
            lp.ema.update(lp.model, step=lp.steps)
        total += loss.detach() * len(idx)
        seen += len(idx)
    return total, seen


def _val_metrics(logits: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    return {
        "val_loss": float(nn.functional.cross_entropy(logits, y)),
        "val_accuracy": float((logits.argmax(1) == y).float().mean()),
    }


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
    net, x_all, val_x = _fitted_input_layer(model, train.x, val.x, transform, recipe)
    gen = torch.Generator().manual_seed(seed)
    n, bounds = len(train), _batches(len(train), recipe.batch_size)  # the LR schedule counts these
    lp = _loop(net, groups, recipe, transform, device, num_classes, len(bounds), anchor)
    best, best_state, bad_epochs = -math.inf, None, 0
    result = FitResult()
    for epoch in range(recipe.epochs):
        if on_epoch_start is not None:
            on_epoch_start(epoch)
        total, seen = _train_epoch(lp, x_all, train.y, torch.randperm(n, generator=gen), bounds)
        result.examples_seen += seen
        train_loss = float(total) / max(1, n)
        if not math.isfinite(train_loss):
            raise TrialError(f"non-finite training loss ({train_loss}) in epoch {epoch}")
        scored = lp.ema.module if lp.ema is not None else net
        metrics = {"train_loss": train_loss} | _val_metrics(predict(scored, val_x, transform, device), val.y)
        result.history.append(metrics)
        if on_epoch is not None:
            on_epoch(epoch, metrics)
        if recipe.patience > 0:
            score = metrics[recipe.monitor] if recipe.monitor_max else -metrics[recipe.monitor]
            if score > best:
                best, bad_epochs, result.best_epoch = score, 0, epoch
                best_state = copy.deepcopy(scored.state_dict())
            else:
                bad_epochs += 1
                if bad_epochs >= recipe.patience:
                    result.stopped_early = True
                    break
    if lp.ema is not None:  # the averaged weights are the ones evaluated and kept
        net.load_state_dict(lp.ema.module.state_dict())
    if best_state is not None:  # early stopping keeps the best epoch's weights
        net.load_state_dict(best_state)
    else:
        result.best_epoch = len(result.history) - 1
    result.train_seconds = time.perf_counter() - start
    return result
