"""Robustness of a final model: accuracy under each corruption and severity, and under FGSM and
PGD attacks (images and audio).

The attacks are a few lines of torch written here: torchattacks assumes images in [0, 1] and has
no notion of waveforms, and the attack must run through the backbone's own input handling
(tokenizer-free, but resize / normalise / log-mel), which only ptbench's Adapted knows.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import torch
from torch.nn import functional as F

from ptbench.errors import TrialError
from ptbench.evaluate.corruptions import CORRUPTIONS, corrupt, names_for


def subset(x, y: torch.Tensor, n: int, seed: int):
    """A fixed, seeded subset of the test set (the same for every cell)."""
    if n >= len(y):
        return x, y
    idx = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return ([x[i] for i in idx] if isinstance(x, list) else x[idx]), y[idx]


def families(names: list[str] | None, modality: str) -> list[str]:
    """The corruption families a task is evaluated on: every one of its modality (``None``: the
    suite says 'all'), or those of the suite's list that are of its modality (a suite mixing
    modalities names each one's)."""
    if names is None:
        return names_for(modality)
    return [n for n in names if CORRUPTIONS.get(n).meta["modality"] == modality]


def _same(a, b) -> bool:
    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


def idle_corruptions(names: list[str], x, severities: list[int], seed: int) -> list[str]:
    """The families that leave the task's inputs unchanged at every severity (saturate on grey
    images): there is no corrupted input to measure, and counted, each would add the clean
    accuracy to every cell's corrupted mean, relative robustness and mCE. Decided on the inputs,
    the same for every cell of the task: a model that reads a changed input as the clean one
    (an uncased tokenizer under ``casing``) withstood the corruption, and is credited for it."""
    return [n for n in names if all(_same(corrupt(n, x, s, seed), x) for s in severities)]


def check_corruptions(names: list[str], x, severities: list[int], seed: int) -> None:
    """Refuse a family the suite names that would leave these inputs unchanged."""
    idle = idle_corruptions(names, x, severities, seed)
    if idle:
        raise _idle_error(idle)


def _idle_error(idle: list[str]) -> TrialError:
    return TrialError(
        f"robustness.corruptions: {', '.join(idle)} leaves this task's inputs unchanged (e.g. "
        "saturate on grey images); leave it out, or use 'all', which skips it where it cannot apply"
    )


def corruption_metrics(
    predict_raw: Callable,
    x,
    y: torch.Tensor,
    modality: str,
    names: list[str] | None,
    severities: list[int],
    seed: int,
) -> dict[str, float]:
    """``corr_<name>_s<k>_accuracy`` per corruption and severity, their mean, and relative
    robustness (mean corrupted accuracy / clean accuracy; NaN, never 0, at clean accuracy 0:
    nothing was there to keep, so the ratio is undefined, and a 0 would rank it least robust).
    ``names``: the suite's list, or ``None`` for every family that changes the inputs."""
    clean = float((predict_raw(x).argmax(1) == y).float().mean())
    out: dict[str, float] = {"corr_clean_accuracy": clean}
    accs = []
    for name in families(names, modality):
        batches = [corrupt(name, x, s, seed) for s in severities]  # each made once: they cost
        if all(_same(b, x) for b in batches):
            if names is not None:  # named, yet idle here: refused, never counted as clean
                raise _idle_error([name])
            continue  # 'all': a family with nothing to corrupt here is skipped
        for s, batch in zip(severities, batches, strict=True):
            acc = float((predict_raw(batch).argmax(1) == y).float().mean())
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
    models: tuple[torch.nn.Module, ...] = (),
) -> dict[str, float]:
    """Accuracy under FGSM and PGD per budget, with ``models`` (what ``logits_fn`` runs) in eval
    mode. cuDNN computes an RNN's backward only in training mode, and the attack needs the
    input's gradient through an LSTM in eval mode (Resemblyzer, ELMo): there, without cuDNN."""
    for m in models:
        m.eval()
    rnn = any(isinstance(m, torch.nn.RNNBase) for model in models for m in model.modules())
    with torch.backends.cudnn.flags(enabled=False) if rnn else contextlib.nullcontext():
        return _adversarial(logits_fn, x, y, modality, eps, pgd_steps, seed, batch)


def _adversarial(logits_fn, x, y, modality, eps, pgd_steps, seed, batch) -> dict[str, float]:
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
