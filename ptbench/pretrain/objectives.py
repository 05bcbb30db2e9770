"""Pre-training objectives. Each trains ``backbone`` in place and returns its loss curve.

- supervised: classification on a source task (full fine-tune through the shared trainer);
- mlm: masked-token language modelling (BERT-family encoders, the ELMo-style BiLSTM);
- clm: next-token language modelling (GPT-2);
- contrastive: SimCLR-style NT-Xent between two augmented views (images and audio);
FractalDB-style formula-driven pre-training is ``supervised`` on the ``fractals`` task.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from ptbench.backbones.base import Backbone
from ptbench.errors import PtbenchError
from ptbench.pretrain import OBJECTIVES
from ptbench.tasks.base import TaskData

Log = Callable[[int, float], None]


def _steps(n: int, batch: int, steps: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    for step in range(steps):
        yield step, torch.randint(0, n, (min(batch, n),), generator=g)


def _loop(params, loss_fn, n: int, cfg: dict, log: Log) -> list[float]:
    opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=0.01)
    total = cfg["steps"]
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, total // 10)) * 0.5 * (1 + math.cos(math.pi * s / total))
    )
    curve = []
    for step, idx in _steps(n, cfg["batch_size"], total, cfg["seed"]):
        loss = loss_fn(idx)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        value = loss.item()
        if not math.isfinite(value):
            raise PtbenchError(
                f"pre-training loss is not finite at step {step} (lr {cfg['lr']:g}: try a lower one)"
            )
        curve.append(value)
        log(step, value)
    return curve


@OBJECTIVES.register("supervised", modalities=("image", "text", "audio"), budget="epochs")
def supervised(backbone: Backbone, data: TaskData, cfg: dict, log: Log) -> list[float]:
    """Classification on the source task's labels (the trainer every trial uses)."""
    from ptbench.strategies.finetune import full_finetune
    from ptbench.train.recipe import Recipe
    from ptbench.train.trainer import fit

    recipe = Recipe(lr=cfg["lr"], epochs=cfg["epochs"], batch_size=cfg["batch_size"])
    ad = full_finetune(backbone, data.num_classes, recipe, {}, None)
    train = type(data.train)(ad.encode(data.train.x), data.train.y)
    val = type(data.val)(ad.encode(data.val.x), data.val.y)
    curve = []

    def on_epoch(epoch: int, m: dict) -> None:
        curve.append(m["train_loss"])
        log(epoch, m["train_loss"])

    from ptbench.errors import TrialError

    try:
        fit(
            ad.model,
            ad.param_groups,
            train,
            val,
            recipe,
            num_classes=data.num_classes,
            transform=ad.transform,
            seed=cfg["seed"],
            on_epoch=on_epoch,
        )
    except TrialError as err:  # a diverged loss: the user's lr, one line (it was a traceback, exit 3)
        raise PtbenchError(f"pre-training failed: {err} (lr {cfg['lr']:g}: try a lower one)") from None
    from ptbench.backbones.weights import SourceHead

    linear = [m for m in ad.model[1].modules() if isinstance(m, nn.Linear)][-1]
    backbone.source_head = SourceHead(linear.weight.detach().clone(), linear.bias.detach().clone())
    return curve  # the head is saved with the weights: LEEP and NCE read the source predictions


def _token_objective(backbone: Backbone, data: TaskData, cfg: dict, log: Log, causal: bool) -> list[float]:
    enc = backbone.encoder
    ids = enc(data.train.x)
    head = nn.Linear(backbone.num_features, enc.vocab_size)
    params = [*backbone.parameters(), *head.parameters()]
    backbone.train()
    gen = torch.Generator().manual_seed(cfg["seed"])

    def loss_fn(idx: torch.Tensor) -> torch.Tensor:
        x = ids[idx]
        real = x != getattr(enc, "pad_id", 0)
        if causal:  # predict token t+1 from tokens ≤ t
            h = backbone.net.tokens(x)[:, :-1]
            target = x[:, 1:].masked_fill(~real[:, 1:], -100)
            return nn.functional.cross_entropy(head(h).flatten(0, 1), target.flatten())
        pick = (torch.rand(x.shape, generator=gen) < 0.15) & real
        pick[:, 0] |= ~pick.any(1) & real[:, 0]  # at least one masked token per example
        target = x.masked_fill(~pick, -100)
        h = backbone.net.tokens(x.masked_fill(pick, enc.mask_id))
        return nn.functional.cross_entropy(head(h).flatten(0, 1), target.flatten())

    return _loop(params, loss_fn, len(ids), cfg, log)


@OBJECTIVES.register("mlm", modalities=("text",), per_token=True)
def mlm(backbone: Backbone, data: TaskData, cfg: dict, log: Log) -> list[float]:
    """Masked-token language modelling: 15% of the tokens masked, predicted from both sides."""
    return _token_objective(backbone, data, cfg, log, causal=False)


@OBJECTIVES.register("clm", modalities=("text",), causal=True, per_token=True)
def clm(backbone: Backbone, data: TaskData, cfg: dict, log: Log) -> list[float]:
    """Causal language modelling: every next token from the ones before it (GPT)."""
    return _token_objective(backbone, data, cfg, log, causal=True)


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One random view: crop-and-resize + noise for images, shift + gain + noise for audio."""
    b = len(x)
    if x.dim() == 4:  # preprocessed images
        size = x.shape[-1]
        out = torch.empty_like(x)
        for i in range(b):
            s = int(size * (0.6 + 0.4 * torch.rand((), generator=gen)))
            top, left = (torch.randint(0, size - s + 1, (2,), generator=gen)).tolist()
            crop = x[i : i + 1, :, top : top + s, left : left + s]
            out[i] = nn.functional.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False)[
                0
            ]
        return out + 0.1 * torch.randn(x.shape, generator=gen)
    shift = torch.randint(-x.shape[-1] // 10, x.shape[-1] // 10 + 1, (b,), generator=gen)
    out = torch.stack([torch.roll(x[i], int(shift[i]), dims=-1) for i in range(b)])
    gain = 0.7 + 0.6 * torch.rand((b,) + (1,) * (x.dim() - 1), generator=gen)
    return out * gain + 0.05 * x.std() * torch.randn(x.shape, generator=gen)


@OBJECTIVES.register("contrastive", modalities=("image", "audio"))
def contrastive(backbone: Backbone, data: TaskData, cfg: dict, log: Log) -> list[float]:
    """SimCLR: two augmented views of each example attract, all other pairs repel (NT-Xent)."""
    x_all = backbone.encode(data.train.x)
    pre = backbone.preprocess or (lambda b: b)
    proj = nn.Sequential(nn.Linear(backbone.num_features, 128), nn.ReLU(), nn.Linear(128, 64))
    params = [*backbone.parameters(), *proj.parameters()]
    backbone.train()
    gen = torch.Generator().manual_seed(cfg["seed"])
    tau = 0.2

    def loss_fn(idx: torch.Tensor) -> torch.Tensor:
        x = pre(x_all[idx])
        z = nn.functional.normalize(proj(backbone(torch.cat([_augment(x, gen), _augment(x, gen)]))), dim=1)
        sim = z @ z.t() / tau
        sim.fill_diagonal_(float("-inf"))
        n = len(idx)
        target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
        return nn.functional.cross_entropy(sim, target)

    return _loop(params, loss_fn, len(x_all), cfg, log)
