"""Early stopping: training stops ``patience`` epochs after the best one, and the model that comes
back is the best epoch's, not the last one's (replaces test_strategies'
``test_early_stopping_stops_and_keeps_the_best_epoch``, which never looked at the weights)."""

from __future__ import annotations

import copy

import numpy as np
import torch

from ptbench.backbones.build import build_backbone
from ptbench.strategies import STRATEGIES
from ptbench.tasks.base import Split
from ptbench.train.recipe import Recipe
from ptbench.train.trainer import fit, predict
from ptbench.trial import load_task

TASK = {"name": "digits", "params": {"train_size": 200, "val_size": 100, "test_size": 100}}
PATIENCE = 2


def test_early_stopping_stops_and_keeps_the_best_epoch():
    torch.manual_seed(0)
    bb = build_backbone({"name": "test_efficientnet", "params": {"input_size": 16}})
    ad = STRATEGIES.get("full_finetune").fn(bb, 10, Recipe(lr=1e-2), {}, None)
    data = load_task(TASK)
    train = Split(ad.encode(data.train.x), data.train.y)
    # validation labels shuffled: accuracy cannot keep improving, so patience runs out
    shuffled = data.val.y[torch.randperm(len(data.val.y), generator=torch.Generator().manual_seed(0))]
    val = Split(ad.encode(data.val.x), shuffled)
    states: list[dict[str, torch.Tensor]] = []
    res = fit(
        ad.model,
        ad.param_groups,
        train,
        val,
        Recipe(lr=1e-2, epochs=30, batch_size=50, patience=PATIENCE),
        num_classes=10,
        transform=ad.transform,
        on_epoch=lambda e, m: states.append(copy.deepcopy(ad.model.state_dict())),
    )
    accs = [m["val_accuracy"] for m in res.history]
    best = accs.index(max(accs))  # the first best: a later tie is not an improvement
    assert res.stopped_early and len(accs) == best + 1 + PATIENCE < 30
    kept = ad.model.state_dict()
    assert all(torch.equal(kept[k], v) for k, v in states[best].items())  # the best epoch's weights
    assert not all(torch.equal(kept[k], v) for k, v in states[-1].items())  # not the last epoch's
    logits = predict(ad.model, val.x, ad.transform, "cpu")
    assert float((logits.argmax(1) == val.y).float().mean()) == accs[best]


def _swapped_folder(root):
    """Bright vs dark 16-px images; the validation folders hold them the other way round, so
    validation accuracy falls as training succeeds and peaks before the last epoch."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("val", 20), ("test", 10)):
        for label in ("bright", "dark"):
            shown = label if split != "val" else {"bright": "dark", "dark": "bright"}[label]
            (root / split / label).mkdir(parents=True)
            for i in range(n):
                base = 200 if shown == "bright" else 50
                px = np.clip(base + rng.normal(0, 20, (16, 16)), 0, 255).astype(np.uint8)
                Image.fromarray(px, "L").save(root / split / label / f"{i}.png")


def test_a_trial_reports_the_epoch_whose_weights_it_keeps(tmp_path):
    """The trial's metrics (the search's objective, the cell's best_val_accuracy) are those of
    the epoch early stopping returns, not of the last epoch trained patience epochs later."""
    from ptbench.trial import TrialConfig, run_trial

    _swapped_folder(tmp_path)
    cfg = TrialConfig(
        {"name": "test_efficientnet", "params": {"input_size": 16}},
        {"name": "image_folder", "params": {"path": str(tmp_path), "size": 16, "channels": 1}},
        {"name": "full_finetune"},
        [{"name": "early_stopping"}],
        {"lr": 1e-2, "epochs": 12, "batch_size": 20, "patience": PATIENCE},
    )
    res = run_trial(cfg)
    accs = [m["val_accuracy"] for m in res.history]
    best = accs.index(max(accs))
    assert accs[-1] < accs[best]  # it trained past its best, as the swapped folders make it
    assert res.metrics["val_accuracy"] == accs[best] and res.metrics["best_epoch"] == best
    assert res.metrics["train_loss"] == res.history[best]["train_loss"]
