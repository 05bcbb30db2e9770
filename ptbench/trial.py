"""One trial from one resolved config: build from the registries, train, (finally) evaluate.

The same function runs in-process or in a local worker process (``executors/local.py``): it is
handed its device and thread budget and reads nothing of whoever runs it.
Search trials get train and val only; test and shifted sets exist only for final runs.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from ptbench.errors import PtbenchError
from ptbench.tasks import load_task
from ptbench.tasks.base import TaskData
from ptbench.train.recipe import Recipe


@dataclass(frozen=True)
class TrialConfig:
    backbone: dict[str, Any]
    task: dict[str, Any]
    strategy: dict[str, Any]
    regularizers: list[dict[str, Any]]
    params: dict[str, Any]
    seed: int = 0
    device: str = "cpu"
    threads: int = 0  # CPU threads this trial may use; 0 leaves the process's setting
    evaluate: tuple[str, ...] = ()  # () in search; ("test", "shifted", …) for final runs
    robustness: dict[str, Any] = field(default_factory=dict)  # suite.robustness, dumped
    cache_dir: str | None = None
    weights_dir: str | None = None  # where 'ptbench pretrain' keeps its weights
    # the suite's search objective: early stopping keeps the epoch that is best by it
    objective: dict[str, str] = field(
        default_factory=lambda: {"metric": "val_accuracy", "direction": "maximize"}
    )


@dataclass
class TrialResult:
    metrics: dict[str, float]
    history: list[dict[str, float]]
    info: dict[str, Any] = field(default_factory=dict)
    train_seconds: float = 0.0  # encoding (feature extraction for a probe) included
    eval_seconds: float = 0.0
    encode_seconds: float = 0.0
    # per held-out example, in the split's order: label, prediction, confidence (final runs;
    # what makes two nights on the same test split comparable pairwise)
    predictions: dict[str, dict[str, list]] = field(default_factory=dict)


@lru_cache(maxsize=4)
def _frozen_backbone(spec_json: str, seed: int, weights_dir: str | None):
    from ptbench.backbones.build import build_backbone

    torch.manual_seed(seed)
    return build_backbone(json.loads(spec_json), weights_dir)


def run_trial(cfg: TrialConfig, on_epoch=None, on_ready=None) -> TrialResult:
    """Build the trial from the registries, train it, and (for final runs) evaluate it.
    ``on_epoch(epoch, metrics)`` sees every epoch (for pruning); ``on_ready(info)`` the model's
    facts (parameters, weights, split hash) before training starts."""
    from ptbench.train.memory import JobMemory
    from ptbench.train.trainer import fit

    memory = JobMemory(cfg.device)  # from here on: this job's peak memory, not the worker's
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    data = load_task(cfg.task)
    if not cfg.evaluate:
        data = data.without_held_out()  # the no-leakage rule, enforced where data is handed out
    _refuse_idle_corruptions(cfg, data)
    recipe = _recipe(cfg)
    backbone, frozen = _backbone(cfg, recipe)
    cache = _feature_cache(cfg, backbone)
    adapted = _adapt(cfg, backbone, frozen, data.num_classes, recipe, cache)
    info = _info(adapted, backbone, data)
    if on_ready is not None:
        on_ready(info)
    enc = time.perf_counter()
    train = type(data.train)(adapted.encode(data.train.x), data.train.y)
    val = type(data.val)(adapted.encode(data.val.x), data.val.y)
    encode_seconds = time.perf_counter() - enc
    _augmenter(recipe, backbone, train.x[:1], cfg.seed)
    _seed(cfg.seed)
    res = fit(
        adapted.model,
        adapted.param_groups,
        train,
        val,
        recipe,
        num_classes=data.num_classes,
        transform=adapted.transform,
        device=cfg.device,
        seed=cfg.seed,
        on_epoch=on_epoch,
        on_epoch_start=adapted.on_epoch_start,
        anchor=adapted.anchor,
    )
    metrics = _kept_metrics(res, recipe)
    t0 = time.perf_counter()
    predictions: dict[str, dict[str, list]] = {}
    metrics |= _held_out_metrics(adapted, data, cfg, predictions)
    info["feature_cache_hits"], info["feature_cache_misses"] = cache.hits, cache.misses
    metrics["peak_mem_mb"] = memory.peak_mb()  # above the job's start (ptbench/train/memory.py)
    return TrialResult(
        metrics,
        res.history,
        info,
        train_seconds=res.train_seconds + encode_seconds,
        encode_seconds=encode_seconds,
        eval_seconds=time.perf_counter() - t0,
        predictions=predictions,
    )


def _seed(seed: int) -> None:
    """Every generator a trial draws from: torch's, and numpy's and Python's global ones, which
    timm's Mixup/CutMix (λ, and which of the two) and RandAugment draw from; spawned workers
    start them from OS entropy, so a seed reproduced nothing of those."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _augmenter(recipe: Recipe, backbone, example: torch.Tensor, seed: int) -> None:
    if recipe.augment:
        from ptbench.regularizers.augment import build_augmenter

        pad = getattr(backbone.encoder, "pad_id", 0)  # what token dropout writes and skips
        keep = getattr(backbone.encoder, "special_ids", ())  # and never drops nor moves
        recipe.augmenter = build_augmenter(backbone.modality, example, recipe.augment, seed, pad, keep)


def _kept_metrics(res, recipe: Recipe) -> dict[str, float]:
    """The epoch whose weights ``fit`` returned, not the last one trained (early stopping)."""
    metrics = dict(res.kept)
    if recipe.patience > 0:
        metrics["best_epoch"] = res.best_epoch
    if res.stopped_early:
        metrics["stopped_epoch"] = len(res.history) - 1
    return metrics


def _recipe(cfg: TrialConfig) -> Recipe:
    """The trainer's settings from the trial's params, then each regularizer's changes to them."""
    from ptbench.regularizers import REGULARIZERS

    recipe = Recipe.from_params(cfg.params)
    recipe.monitor = cfg.objective["metric"]
    recipe.monitor_max = cfg.objective["direction"] == "maximize"
    for reg in cfg.regularizers:
        REGULARIZERS.get(reg["name"]).fn(recipe, cfg.params)
    return recipe


def _backbone(cfg: TrialConfig, recipe: Recipe):
    """The backbone on its device, and whether the strategy keeps it frozen (then it is built
    once per process: a trial never changes it)."""
    from ptbench.backbones.build import build_backbone
    from ptbench.strategies import STRATEGIES

    torch.manual_seed(cfg.seed)
    spec = cfg.backbone
    if recipe.backbone_params:
        spec = {**spec, "params": {**spec.get("params", {}), **recipe.backbone_params}}
    frozen = bool(STRATEGIES.get(cfg.strategy["name"]).meta.get("features"))
    if frozen:
        backbone = _frozen_backbone(json.dumps(spec, sort_keys=True), cfg.seed, cfg.weights_dir)
        torch.manual_seed(cfg.seed)  # the head's init must not depend on whether it was cached
    else:
        backbone = build_backbone(spec, cfg.weights_dir)
    # on its device from the start: with features from the cache nothing else would move a frozen
    # backbone, and robustness evaluation runs it on raw inputs
    backbone.to(cfg.device)
    return backbone, frozen


def _feature_cache(cfg: TrialConfig, backbone):
    from ptbench.train.features import FeatureCache

    w = backbone.weights
    bkey = f"{cfg.backbone['name']}|{w.source}|{w.sha256 or w.ref}"
    if w.source == "none":
        bkey += f"|seed={cfg.seed}"  # random features depend on the init seed
    return FeatureCache(f"{cfg.cache_dir}/features" if cfg.cache_dir else None, bkey, cfg.device)


def _adapt(cfg: TrialConfig, backbone, frozen: bool, num_classes: int, recipe: Recipe, cache):
    from ptbench.strategies import STRATEGIES

    adapted = STRATEGIES.get(cfg.strategy["name"]).fn(backbone, num_classes, recipe, cfg.params, cache)
    adapted.backbone = backbone
    adapted.features = frozen
    if adapted.trainable_params == 0:
        raise PtbenchError(f"strategy '{cfg.strategy['name']}' leaves no trainable parameters")
    return adapted


def _info(adapted, backbone, data: TaskData) -> dict[str, Any]:
    """What a run records about its model and data before training (MLflow tags and metrics)."""
    w = backbone.weights
    info = {
        "trainable_params": adapted.trainable_params,
        "total_params": sum(p.numel() for p in backbone.read_parameters()),
        "split_hash": data.split_hash,
        "weights_source": w.source,
        "weights_ref": w.ref,
        "weights_sha256": w.sha256,
        "weights_dropped": ",".join(w.dropped),
        "preprocess": json.dumps(backbone.preprocess_info()),
    }
    for note in ("skipped", "train_copies"):  # bad rows replaced; train copies of held-out inputs
        if data.notes.get(note):
            info[f"data_{note}"] = data.notes[note]
    return info


def _held_out_metrics(adapted, data: TaskData, cfg: TrialConfig, predictions: dict) -> dict[str, float]:
    """Test, shifted, corruption and attack metrics, as ``cfg.evaluate`` asks (final runs only);
    the test set's per-example predictions go into ``predictions["test"]``."""
    from ptbench.evaluate.metrics import classification_metrics, reliability_bins
    from ptbench.train.trainer import predict

    metrics: dict[str, float] = {}
    sets = {}
    if "test" in cfg.evaluate and data.test is not None:
        sets["test"] = data.test
    if "shifted" in cfg.evaluate:
        sets.update({f"shifted_{k}": v for k, v in data.shifted.items()})
    for prefix, split in sets.items():
        logits = predict(adapted.model, adapted.encode(split.x), adapted.transform, cfg.device)
        for k, v in classification_metrics(logits, split.y, data.num_classes).items():
            metrics[f"{prefix}_{k}"] = v
        if prefix == "test":
            metrics |= {f"test_{k}": v for k, v in reliability_bins(logits, split.y).items()}
            conf, pred = logits.float().softmax(1).max(1)
            predictions["test"] = {
                "label": split.y.tolist(),
                "pred": pred.tolist(),
                "confidence": conf.tolist(),
            }
    for k in data.shifted:
        if "test_accuracy" in metrics and f"shifted_{k}_accuracy" in metrics:
            metrics[f"shifted_{k}_gap"] = metrics["test_accuracy"] - metrics[f"shifted_{k}_accuracy"]
    if {"corruptions", "adversarial"} & set(cfg.evaluate) and data.test is not None:
        metrics |= _robustness(adapted, data, cfg)
    return metrics


def _robustness_settings(cfg: TrialConfig) -> dict[str, Any]:
    """The suite's robustness settings over their defaults (for a bare config); ``corruptions``
    is the named families, or None for all that reach the model."""
    from ptbench.schema import Robustness

    rb = Robustness().model_dump() | cfg.robustness
    return rb | {"corruptions": None if rb["corruptions"] == "all" else list(rb["corruptions"])}


def _refuse_idle_corruptions(cfg: TrialConfig, data: TaskData) -> None:
    """A final run whose suite names a corruption that leaves its inputs unchanged fails before
    it trains."""
    rb = _robustness_settings(cfg)
    if "corruptions" not in cfg.evaluate or data.test is None or rb["corruptions"] is None:
        return
    from ptbench.evaluate.robustness import check_corruptions, families, subset

    x, _ = subset(data.test.x, data.test.y, rb["size"], seed=0)
    names = families(rb["corruptions"], data.modality)
    check_corruptions(names, x, list(rb["severities"]), cfg.seed)


def _robustness(adapted, data: TaskData, cfg: TrialConfig) -> dict[str, float]:
    from ptbench.evaluate.robustness import adversarial_metrics, corruption_metrics, subset

    rb = _robustness_settings(cfg)
    out: dict[str, float] = {}
    if "corruptions" in cfg.evaluate:
        x, y = subset(data.test.x, data.test.y, rb["size"], seed=0)
        out |= corruption_metrics(
            adapted.predict_raw,
            x,
            y,
            data.modality,
            rb["corruptions"],
            list(rb["severities"]),
            cfg.seed,
        )
    if "adversarial" in cfg.evaluate and data.modality in ("image", "audio"):
        x, y = subset(data.test.x, data.test.y, rb["adversarial_size"], seed=0)
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()  # images in [0, 1]
        out |= adversarial_metrics(
            adapted.logits_from_raw,
            x,
            y,
            data.modality,
            list(rb["eps"]),
            int(rb["pgd_steps"]),
            cfg.seed,
            models=(adapted.model, adapted.backbone),  # a probe's model is its head alone
        )
    return out


@dataclass
class FrozenFeatures:
    """A frozen backbone's features of a task's train and validation splits (what a
    transferability estimator reads), and what computing or loading them cost."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    seconds: float
    cache_hits: int
    # the source classifier's softmax on the train split, where the weights came with one
    train_source: torch.Tensor | None = None
    source_note: str = ""  # why there is none, where the weights say
    params: int = 0  # the backbone's parameters: what a candidate costs to fine-tune and serve


def frozen_features(
    backbone: dict[str, Any],
    task: dict[str, Any],
    cache_dir: str | None,
    weights_dir: str | None,
    seed: int = 0,
) -> FrozenFeatures:
    """Features through the same cache the suite's probes use, so ranking a suite after (or
    before) running it extracts nothing twice. Never touches the test split."""
    t0 = time.perf_counter()
    data = load_task(task).without_held_out()
    torch.manual_seed(seed)
    bb = _frozen_backbone(json.dumps(backbone, sort_keys=True), seed, weights_dir)
    bb.eval()
    cfg = TrialConfig(backbone, task, {}, [], {}, seed=seed, cache_dir=cache_dir, weights_dir=weights_dir)
    cache = _feature_cache(cfg, bb)
    with torch.no_grad():
        tx, vx = cache.features(bb, bb.encode(data.train.x)), cache.features(bb, bb.encode(data.val.x))
    source = bb.source_head.probs(tx) if bb.source_head is not None else None
    return FrozenFeatures(
        tx,
        data.train.y,
        vx,
        data.val.y,
        time.perf_counter() - t0,
        cache.hits,
        source,
        bb.weights.head_note,
        sum(p.numel() for p in bb.read_parameters()),
    )
