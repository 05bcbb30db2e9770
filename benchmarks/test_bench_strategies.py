"""Issue #5: linear probe on cached features against running the frozen backbone every epoch;
a whole linear-probe search against one forward pass over the data (the physical floor);
trial time of each strategy on the same small backbone."""

from __future__ import annotations

import time

import pytest
import torch
from conftest import interleaved

from ptbench.backbones.build import build_backbone
from ptbench.strategies import STRATEGIES
from ptbench.strategies.base import make_head
from ptbench.tasks.base import Split
from ptbench.train.features import extract
from ptbench.train.recipe import Recipe
from ptbench.train.trainer import fit
from ptbench.trial import TrialConfig, load_task, run_trial

LITE = {"name": "efficientnet_lite0", "weights": "package", "params": {"input_size": 64}}
TASK = {"name": "mnist_subset", "params": {"train_size": 3000, "val_size": 500, "test_size": 1000}}


def test_linear_probe_epoch_cached_vs_frozen_backbone(benchmark):
    torch.set_num_threads(2)
    data = load_task(TASK)
    bb = build_backbone(LITE).eval()
    for p in bb.parameters():
        p.requires_grad_(False)
    feats = extract(bb, data.train.x, "cpu")
    val_feats = extract(bb, data.val.x[:1], "cpu")
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

    # Like for like: both warm (one warm-up each, then 3 rounds taken in turns, medians), both one
    # epoch of the same head on the same 3,000 examples. It measures what each later epoch of a
    # linear probe saves by training on cached features instead of running the frozen backbone on
    # every batch; the one extraction that fills the cache is left out on purpose (a worker pays it
    # once per backbone, and test_linear_probe_search_against_the_forward_pass_floor counts it).
    slow, fast = interleaved(frozen_every_epoch, cached, rounds=3)
    benchmark.pedantic(cached, rounds=1, iterations=1)
    # the README's >= 10x target is read from the figure, never asserted: a timed assertion fails
    # on a busy or slow machine, and in the nightly benchmarks it stopped the whole night
    benchmark.extra_info.update(
        {"cached_epoch_s": fast, "frozen_backbone_epoch_s": slow, "speedup": slow / fast}
    )


def _probe_suite(size: int) -> dict:
    return {
        "name": f"probe{size}",
        "version": 1,
        "axes": {
            "backbones": [{**LITE, "params": {"input_size": size}}],
            "tasks": [TASK],
            "strategies": ["linear_probe"],
            "regularizers": ["none"],
        },
        "search": {"trials": 8, "pruner": "none", "space": {"epochs": 20, "batch_size": 256}},
        "seeds": [0],
        "evaluation": ["test"],
        "execution": {"workers": 1},
    }


@pytest.mark.parametrize("size", [224, 64])
def test_linear_probe_search_against_the_forward_pass_floor(benchmark, tmp_path, size):
    """The whole search of one linear-probe cell — 8 trials of 20 epochs, each a real job with
    its Optuna trial and MLflow run, features extracted once and shared — against the floor:
    one forward pass of the same backbone over the data the search sees (train + val), timed
    warm. 224 px is Lite0's native input; at 64 px the backbone is 12x cheaper per image while
    the head's work is the same, so the fixed per-trial cost shows."""
    from conftest import records

    from ptbench.runner import RunOptions, run_suite
    from ptbench.suite import parse_suite

    torch.set_num_threads(2)
    data = load_task(TASK)
    bb = build_backbone({**LITE, "params": {"input_size": size}})
    seen = torch.cat([data.train.x, data.val.x])
    extract(bb, seen[:256], "cpu")  # warm-up: kernels chosen, caches filled

    def floor() -> float:
        t = time.perf_counter()
        extract(bb, seen, "cpu")
        return time.perf_counter() - t

    before = floor()

    project = tmp_path / "proj"
    suite = parse_suite(_probe_suite(size))
    summary = benchmark.pedantic(
        lambda: run_suite(suite, RunOptions(project_dir=str(project), progress=False)), rounds=1, iterations=1
    )
    assert not summary.errors, summary.errors
    trials = [r for r in records(project, suite.name) if r.get("tags.ptbench.kind") == "trial"]
    after = floor()
    trials.sort(key=lambda r: r["start_time"])
    search = sum(r["metrics.job_seconds"] for r in trials)
    heads = sorted(r["metrics.job_seconds"] for r in trials[1:])  # on the first trial's features
    extraction = trials[0]["metrics.encode_seconds"]  # the floor's pass, as the search ran it
    benchmark.extra_info.update(
        {
            "trials": len(trials),
            # this machine's speed drifts by up to 2x over minutes: the floor is timed before
            # and after the search, and the pass the search itself made is reported too
            "floor_before_s": before,
            "floor_after_s": after,
            "search_s": search,
            "ratio": search / ((before + after) / 2),
            "extraction_in_search_s": extraction,
            "ratio_to_extraction_in_search": search / extraction,
            # the first trial extracts; its job also pays the worker's first imports and builds
            "first_trial_s": trials[0]["metrics.job_seconds"],
            "first_trial_train_s": trials[0]["metrics.train_seconds"],
            "cached_trial_s_median": heads[len(heads) // 2],
            "best_val_accuracy": max(r["metrics.val_accuracy"] for r in trials),
        }
    )


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
