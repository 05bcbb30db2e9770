"""Early stopping: training stops ``patience`` epochs after the best one, and the model that comes
back is the best epoch's, not the last one's (replaces test_strategies'
``test_early_stopping_stops_and_keeps_the_best_epoch``, which never looked at the weights)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
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


def test_early_stopping_follows_the_suites_objective_not_accuracy():
    """With ``val_loss``/minimize as the objective, the kept epoch is the lowest validation loss
    (it was the best accuracy's, which the search then ranked by its loss). Here accuracy still
    creeps up while the loss has turned: the two keep different epochs."""
    torch.manual_seed(0)
    bb = build_backbone({"name": "test_efficientnet", "params": {"input_size": 16}})
    ad = STRATEGIES.get("full_finetune").fn(bb, 10, Recipe(lr=1e-2), {}, None)
    data = load_task(TASK)
    train, val = Split(ad.encode(data.train.x), data.train.y), Split(ad.encode(data.val.x), data.val.y)
    recipe = Recipe(lr=1e-2, epochs=15, batch_size=50, patience=3, monitor="val_loss", monitor_max=False)
    res = fit(ad.model, ad.param_groups, train, val, recipe, num_classes=10, transform=ad.transform)
    losses = [m["val_loss"] for m in res.history]
    assert res.best_epoch == losses.index(min(losses)) and len(losses) == res.best_epoch + 1 + 3
    assert res.kept["val_loss"] == min(losses)
    logits = predict(ad.model, val.x, ad.transform, "cpu")  # and the weights are that epoch's
    assert float(torch.nn.functional.cross_entropy(logits, val.y)) == pytest.approx(min(losses), rel=1e-4)


def test_a_trial_run_in_mlflow_records_the_value_the_search_ranked(tmp_path):
    """Trial runs showed the last epoch's value while Optuna ranked the kept epoch's: the UI and
    the leaderboard's unfinished view disagreed with the search. The objective is val_loss here,
    which early stopping now follows too."""
    import copy as _copy

    from conftest import TINY, ptbench, write_suite
    from test_e2e import by_kind, records

    from ptbench.search import CellStudy, default_storage_url
    from ptbench.suite import expand, load_suite

    _swapped_folder(tmp_path / "data")
    data = _copy.deepcopy(TINY)
    data["axes"] |= {
        "tasks": [
            {"name": "image_folder", "params": {"path": str(tmp_path / "data"), "size": 16, "channels": 1}}
        ],
        "strategies": ["full_finetune"],
        "regularizers": [["early_stopping"]],
    }
    data["search"] |= {
        "trials": 1,
        "space": {"epochs": 12, "batch_size": 20, "lr": 1e-2, "patience": PATIENCE},
    }
    data["seeds"] = [0]
    suite = write_suite(tmp_path / "tiny.yaml", data)
    project = tmp_path / "proj"
    ptbench("run", str(suite), "--project-dir", str(project), "--no-progress", cwd=tmp_path, check=True)
    (run,) = by_kind(records(project), "trial")
    (cell,) = expand(load_suite(suite))
    study = CellStudy(default_storage_url(project), cell.study_name, "minimize")
    assert run["metrics.objective"] == study.study.best_trial.value
    assert run["metrics.objective"] < run["metrics.val_loss"]  # the last epoch is past its best
    assert run["metrics.best_epoch"] < run["metrics.epochs_run"] - 1
