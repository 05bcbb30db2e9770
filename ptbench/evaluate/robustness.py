"""Robustness of a final model: accuracy under each corruption and severity, and under FGSM and
PGD attacks (images and audio).

The attacks are a few lines of torch written here: torchattacks assumes images in [0, 1] and has
no notion of waveforms, and the attack must run through the backbone's own input handling
(tokenizer-free, but resize / normalise / log-mel), which only ptbench's Adapted knows.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.nn import functional as F

from ptbench.errors import TrialError
from ptbench.evaluate.corruptions import applies, corrupt, names_for


def subset(x, y: torch.Tensor, n: int, seed: int):
    """A fixed, seeded subset of the test set (the same for every cell)."""
    if n >= len(y):
        return x, y
    idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return ([x[i] for i in idx] if isinstance(x, list) else x[idx]), y[idx]


def check_corruptions(names: list[str], x) -> None:
    """Refuse a named corruption that would leave these inputs unchanged (before training, so a
    misconfigured final run fails in seconds, not after its epochs)."""
    grey = [n for n in names if not applies(n, x)]
    if grey:
        raise TrialError(
            f"robustness.corruptions: {', '.join(grey)} changes colour images only and this task's "
            "are grey; leave it out, or use 'all', which skips it where it cannot apply"
        )


def corruption_metrics(
    predict_raw: Callable,
    x,
    y: torch.Tensor,
    modality: str,
    names: list[str],
    severities: list[int],
    seed: int,
) -> dict[str, float]:
    """``corr_<name>_s<k>_accuracy`` per corruption and severity, their mean, and relative
    robustness (mean corrupted accuracy / clean accuracy; NaN, never 0, at clean accuracy 0:
    nothing was there to keep, so the ratio is undefined, and a 0 would rank it least robust)."""
    check_corruptions(names, x)
    clean = float((predict_raw(x).argmax(1) == y).float().mean())
    out: dict[str, float] = {"corr_clean_accuracy": clean}
    accs = []
    for name in names or names_for(modality, x):
        for s in severities:
            acc = float((predict_raw(corrupt(name, x, s, seed)).argmax(1) == y).float().mean())
            out[f"corr_{name}_s{s}_accuracy"] = acc
            accs.append(acc)
    if accs:
        out["corr_mean_accuracy"] = sum(accs) / len(accs)
        out["corr_relative"] = out["corr_mean_accuracy"] / clean if clean > 0 else math.nan
    return out


def _bounds(x: torch.Tensor, modality: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-example (scale, low, high): images live in [0, 1]; waveforms in [-1, 1], with the
    budget relative to each clip's peak."""
    if modality == "image":
        return torch.ones(len(x), *[1] * (x.dim() - 1)), torch.zeros(()), torch.ones(())
    peak = x.abs().amax(dim=tuple(range(1, x.dim())), keepdim=True).clamp(min=1e-4)
    return peak, -torch.ones(()), torch.ones(())


def attack(
    logits_fn: Callable, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int, modality: str, seed: int
) -> torch.Tensor:
    """FGSM (steps = 1, no random start) or L∞ PGD (Madry et al., 2018) with a random start."""
    scale, lo, hi = _bounds(x, modality)
    budget = eps * scale
    g = torch.Generator().manual_seed(seed)
    adv = x.clone()
    if steps > 1:
        adv = (adv + (torch.rand(x.shape, generator=g) * 2 - 1) * budget).clamp(lo, hi)
    alpha = budget if steps == 1 else 2.5 * budget / steps
    for _ in range(steps):
        adv.requires_grad_(True)
        loss = F.cross_entropy(logits_fn(adv), y)
        (grad,) = torch.autograd.grad(loss, adv)
        with torch.no_grad():
            adv = adv + alpha * grad.sign()
            adv = torch.min(torch.max(adv, x - budget), x + budget).clamp(lo, hi)
    return adv.detach()


def adversarial_metrics(
    logits_fn: Callable,
    x: torch.Tensor,
    y: torch.Tensor,
    modality: str,
    eps: list[float],
    pgd_steps: int,
    seed: int,
    batch: int = 64,
) -> dict[str, float]:
    out: dict[str, float] = {}
    for e in eps:
        for kind, steps in (("fgsm", 1), ("pgd", pgd_steps)):
            correct = 0
            for i in range(0, len(y), batch):
                xb, yb = x[i : i + batch], y[i : i + batch]
                adv = attack(logits_fn, xb, yb, e, steps, modality, seed + i)
                with torch.no_grad():
                    correct += int((logits_fn(adv).argmax(1) == yb).sum())
            out[f"adv_{kind}_eps{e:g}_accuracy"] = correct / max(1, len(y))
    return out
