"""Issue #5: linear probe on cached features against running the frozen backbone every epoch;
a whole linear-probe search against one forward pass over the data (the physical floor);
trial time of each strategy on the same small backbone."""

from __future__ import annotations

import time

import pytest
import torch

from ptbench.backbones.build import build_backbone
from ptbench.strategies import STRATEGIES
from ptbench.strategies.base import make_head
from ptbench.tasks.base import Split
from ptbench.train.features import FeatureCache, extract
from ptbench.train.recipe import Recipe
from ptbench.train.trainer import fit
from ptbench.train.trial import TrialConfig, load_task, run_trial

LITE = {"name": "efficientnet_lite0", "weights": "package", "params": {"input_size": 64}}
TASK = {"name": "mnist_subset", "params": {"train_size": 3000, "val_size": 500, "test_size": 1000}}


def test_linear_probe_epoch_cached_vs_frozen_backbone(benchmark):
    torch.set_num_threads(2)
    data = load_task(TASK)
    bb = build_backbone(LITE).eval()
    for p in bb.parameters():
        p.requires_grad_(False)
    feats = extract(bb, data.train.x, "cpu", 256)
    val_feats = extract(bb, data.val.x[:1], "cpu", 256)
    recipe = Recipe(lr=1e-2, epochs=1, batch_size=64)

    def cached():
        head = make_head(bb, 10, 0.0)
        return fit(
            head,
            [{"params": list(head.parameters())}],
            Split(feats, data.train.y),
            Split(val_feats, data.val.y[:1]),
            recipe,
            num_classes=10,
        ).train_seconds

    def frozen_every_epoch():
        head = make_head(bb, 10, 0.0)
        model = torch.nn.Sequential(bb, head)
        return fit(
            model,
            [{"params": list(head.parameters())}],
            data.train,
            Split(data.val.x[:1], data.val.y[:1]),
            recipe,
            num_classes=10,
            transform=bb.preprocess,
        ).train_seconds

    slow = frozen_every_epoch()
    fast = benchmark.pedantic(cached, rounds=3, iterations=1)
    fast = min(fast, benchmark.stats.stats.min)
    benchmark.extra_info.update(
        {"cached_epoch_s": fast, "frozen_backbone_epoch_s": slow, "speedup": slow / fast}
    )


def test_linear_probe_search_against_the_forward_pass_floor(benchmark, tmp_path):
    """8 trials of a linear-probe cell (20 epochs each), features extracted once and shared,
    against one forward pass of the backbone over train + val."""
    torch.set_num_threads(2)
    data = load_task(TASK)
    bb = build_backbone(LITE)
    t = time.perf_counter()
    extract(bb, torch.cat([data.train.x, data.val.x]), "cpu", 256)
    floor = time.perf_counter() - t
    FeatureCache._memory.clear()

    def search():
        t0 = time.perf_counter()
        for i in range(8):
            run_trial(
                TrialConfig(
                    LITE,
                    TASK,
                    {"name": "linear_probe"},
                    [],
                    {"lr": 10 ** (-3 + i / 4), "epochs": 20, "batch_size": 256},
                    cache_dir=str(tmp_path),
                )
            )
        return time.perf_counter() - t0

    total = benchmark.pedantic(search, rounds=1, iterations=1)
    benchmark.extra_info.update({"floor_s": floor, "search_s": total, "ratio": total / floor})


@pytest.mark.parametrize(
    "strategy", ["linear_probe", "full_finetune", "partial_finetune", "gradual_unfreeze", "llrd", "bitfit"]
)
def test_trial_time_per_strategy(benchmark, strategy, tmp_path):
    torch.set_num_threads(2)
    spec = {"name": "efficientnet_lite0", "weights": "package", "params": {"input_size": 32}}
    task = {"name": "mnist_subset", "params": {"train_size": 500, "val_size": 200, "test_size": 200}}
    assert strategy in STRATEGIES

    def trial():
        return run_trial(
            TrialConfig(
                spec,
                task,
                {"name": strategy},
                [],
                {"lr": 3e-3, "epochs": 3, "batch_size": 50},
                cache_dir=str(tmp_path),
            )
        )

    out = benchmark.pedantic(trial, rounds=1, iterations=1)
    benchmark.extra_info.update(
        {
            "trainable_params": out.info["trainable_params"],
            "val_accuracy": out.metrics["val_accuracy"],
            "train_seconds": out.train_seconds,
        }
    )
