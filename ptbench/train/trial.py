"""One trial from one resolved config: build from the registries, train, (finally) evaluate.

The same function runs in-process, in a worker process, in a Ray task or a Slurm job.
Search trials get train and val only; test and shifted sets exist only for final runs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import torch

from ptbench.errors import PtbenchError
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
    evaluate: tuple[str, ...] = ()  # () in search; ("test", "shifted", …) for final runs
    robustness: dict[str, Any] = field(default_factory=dict)  # suite.robustness, dumped
    cache_dir: str | None = None
    weights_dir: str | None = None  # where 'ptbench pretrain' keeps its weights


@dataclass
class TrialResult:
    metrics: dict[str, float]
    history: list[dict[str, float]]
    info: dict[str, Any] = field(default_factory=dict)
    train_seconds: float = 0.0  # encoding (feature extraction for a probe) included
    eval_seconds: float = 0.0
    encode_seconds: float = 0.0


@lru_cache(maxsize=4)
def _task_data(name: str, params_json: str) -> TaskData:
    from ptbench.tasks import TASKS

    return TASKS.get(name).fn(json.loads(params_json))


@lru_cache(maxsize=4)
def _frozen_backbone(spec_json: str, seed: int, weights_dir: str | None):
    from ptbench.backbones.build import build_backbone

    torch.manual_seed(seed)
    return build_backbone(json.loads(spec_json), weights_dir)


def load_task(spec: dict[str, Any]) -> TaskData:
    return _task_data(spec["name"], json.dumps(spec.get("params", {}), sort_keys=True))


def run_trial(cfg: TrialConfig, on_epoch=None, on_ready=None) -> TrialResult:
    from ptbench.backbones.build import build_backbone
    from ptbench.evaluate.metrics import classification_metrics, reliability_bins
    from ptbench.regularizers import REGULARIZERS
    from ptbench.strategies import STRATEGIES
    from ptbench.train.features import FeatureCache
    from ptbench.train.memory import JobMemory
    from ptbench.train.trainer import fit, predict

    memory = JobMemory(cfg.device)  # from here on: this job's peak memory, not the worker's
    data = load_task(cfg.task)
    if not cfg.evaluate:
        data = data.without_held_out()  # the no-leakage rule, enforced where data is handed out
    recipe = Recipe.from_params(cfg.params)
    for reg in cfg.regularizers:
        REGULARIZERS.get(reg["name"]).fn(recipe, cfg.params)
    torch.manual_seed(cfg.seed)
    spec = cfg.backbone
    if recipe.backbone_params:
        spec = {**spec, "params": {**spec.get("params", {}), **recipe.backbone_params}}
    frozen = bool(STRATEGIES.get(cfg.strategy["name"]).meta.get("features"))
    if frozen:  # a frozen backbone is never changed by a trial: build it once per process
        backbone = _frozen_backbone(json.dumps(spec, sort_keys=True), cfg.seed, cfg.weights_dir)
        torch.manual_seed(cfg.seed)  # the head's init must not depend on whether it was cached
    else:
        backbone = build_backbone(spec, cfg.weights_dir)
    # on its device from the start: with features from the cache nothing else would move a frozen
    # backbone, and robustness evaluation runs it on raw inputs
    backbone.to(cfg.device)
    w = backbone.weights
    bkey = f"{cfg.backbone['name']}|{w.source}|{w.sha256 or w.ref}"
    if w.source == "none":
        bkey += f"|seed={cfg.seed}"  # random features depend on the init seed
    cache = FeatureCache(f"{cfg.cache_dir}/features" if cfg.cache_dir else None, bkey, cfg.device)
    adapted = STRATEGIES.get(cfg.strategy["name"]).fn(backbone, data.num_classes, recipe, cfg.params, cache)
    adapted.backbone = backbone
    adapted.features = frozen
    if adapted.trainable_params == 0:
        raise PtbenchError(f"strategy '{cfg.strategy['name']}' leaves no trainable parameters")
    info = {
        "trainable_params": adapted.trainable_params,
        "total_params": sum(p.numel() for p in backbone.parameters()),
        "split_hash": data.split_hash,
        "weights_source": w.source,
        "weights_ref": w.ref,
        "weights_sha256": w.sha256,
        "weights_dropped": ",".join(w.dropped),
        "preprocess": json.dumps(backbone.preprocess_info()),
    }
    if data.notes.get("skipped"):
        info["data_skipped"] = data.notes["skipped"]
    if on_ready is not None:
        on_ready(info)
    enc = time.perf_counter()
    train = type(data.train)(adapted.encode(data.train.x), data.train.y)
    val = type(data.val)(adapted.encode(data.val.x), data.val.y)
    encode_seconds = time.perf_counter() - enc
    if recipe.augment:
        from ptbench.regularizers.augment import build_augmenter

        recipe.augmenter = build_augmenter(backbone.modality, train.x[:1], recipe.augment, cfg.seed)
    torch.manual_seed(cfg.seed)
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
    metrics = dict(res.history[-1]) if res.history else {}
    if res.stopped_early:
        metrics["stopped_epoch"] = len(res.history) - 1
    t0 = time.perf_counter()
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
    for k in data.shifted:
        if "test_accuracy" in metrics and f"shifted_{k}_accuracy" in metrics:
            metrics[f"shifted_{k}_gap"] = metrics["test_accuracy"] - metrics[f"shifted_{k}_accuracy"]
    if {"corruptions", "adversarial"} & set(cfg.evaluate) and data.test is not None:
        metrics |= _robustness(adapted, data, cfg)
    info["feature_cache_hits"], info["feature_cache_misses"] = cache.hits, cache.misses
    metrics["peak_mem_mb"] = memory.peak_mb()  # above the job's start (ptbench/train/memory.py)
    return TrialResult(
        metrics,
        res.history,
        info,
        train_seconds=res.train_seconds + encode_seconds,
        encode_seconds=encode_seconds,
        eval_seconds=time.perf_counter() - t0,
    )


def _robustness(adapted, data: TaskData, cfg: TrialConfig) -> dict[str, float]:
    from ptbench.evaluate.robustness import adversarial_metrics, corruption_metrics, subset

    rb = {
        "corruptions": "all",
        "severities": [1, 2, 3, 4, 5],
        "size": 500,
        "eps": [1 / 255, 2 / 255, 4 / 255],
        "pgd_steps": 10,
        "adversarial_size": 200,
    } | cfg.robustness
    out: dict[str, float] = {}
    if "corruptions" in cfg.evaluate:
        x, y = subset(data.test.x, data.test.y, rb["size"], seed=0)
        names = [] if rb["corruptions"] == "all" else list(rb["corruptions"])
        out |= corruption_metrics(
            adapted.predict_raw, x, y, data.modality, names, list(rb["severities"]), cfg.seed
        )
    if "adversarial" in cfg.evaluate and data.modality in ("image", "audio"):
        x, y = subset(data.test.x, data.test.y, rb["adversarial_size"], seed=0)
        x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()  # images in [0, 1]
        adapted.model.eval()
        adapted.backbone.eval()
        out |= adversarial_metrics(
            adapted.logits_from_raw, x, y, data.modality, list(rb["eps"]), int(rb["pgd_steps"]), cfg.seed
        )
    return out
