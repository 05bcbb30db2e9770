"""The trainer and the strategies do what their names say, on real digits and a tiny timm net."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from ptbench.backbones import BACKBONES
from ptbench.errors import TrialError
from ptbench.strategies import STRATEGIES
from ptbench.tasks.base import Split
from ptbench.train.features import FeatureCache
from ptbench.train.recipe import Recipe
from ptbench.train.trainer import fit
from ptbench.trial import TrialConfig, load_task, run_trial

BB = {"name": "test_efficientnet", "weights": "none", "params": {"input_size": 16}}
TASK = {
    "name": "digits",
    "params": {"train_size": 200, "val_size": 100, "test_size": 100, "shifted_size": 100},
}


def adapt(strategy: str, params=None, cache_dir=None):
    torch.manual_seed(0)
    bb = BACKBONES.get("test_efficientnet").fn(BB)
    cache = FeatureCache(cache_dir, "k")
    return bb, STRATEGIES.get(strategy).fn(bb, 10, Recipe(), params or {}, cache), cache


def test_linear_probe_trains_only_the_head_on_cached_features(tmp_path):
    bb, ad, cache = adapt("linear_probe", cache_dir=tmp_path)
    assert all(not p.requires_grad for p in bb.parameters())
    assert ad.trainable_params == bb.num_features * 10 + 10
    x = load_task(TASK).train.x
    f1 = ad.encode(x)
    f2 = ad.encode(x)
    assert f1 is f2 and cache.misses == 1 and cache.hits == 1
    assert f1.shape == (len(x), bb.num_features)
    assert len(list(tmp_path.glob("*.safetensors"))) == 1  # reused by other processes too


def test_full_finetune_trains_everything_with_a_separate_head_lr():
    bb, ad, _ = adapt("full_finetune")
    assert ad.trainable_params == sum(p.numel() for p in ad.model.parameters())
    recipe = Recipe(lr=1e-3, head_lr_mult=10)
    ad = STRATEGIES.get("full_finetune").fn(bb, 10, recipe, {}, None)
    assert [g["lr"] for g in ad.param_groups] == [1e-3, 1e-2]


def test_partial_finetune_freezes_all_but_the_last_blocks():
    bb, ad, _ = adapt("partial_finetune", {"train_blocks": 1})
    blocks = bb.blocks()
    assert all(p.requires_grad for p in blocks[-1].parameters())
    assert all(not p.requires_grad for b in blocks[:-1] for p in b.parameters())
    data = load_task(TASK)
    before = [p.detach().clone() for p in blocks[0].parameters()]
    fit(
        ad.model,
        ad.param_groups,
        data.train,
        data.val,
        Recipe(epochs=1, batch_size=50),
        num_classes=10,
        transform=ad.transform,
    )
    assert all(torch.equal(a, b) for a, b in zip(before, blocks[0].parameters(), strict=True))
    assert all(p.grad is None for p in blocks[0].parameters())
    # frozen BatchNorm statistics stay put too (frozen blocks run in eval mode)
    ad.model.train()
    assert not blocks[0].training and blocks[-1].training


def test_fit_reports_every_epoch_and_learns_real_digits():
    seen = []
    out = run_trial(
        TrialConfig(
            BB | {"params": {"input_size": 16}},
            TASK,
            {"name": "full_finetune"},
            [],
            {"lr": 1e-2, "epochs": 3, "batch_size": 20},
        ),
        on_epoch=lambda e, m: seen.append((e, m["val_accuracy"])),
    )
    assert [e for e, _ in seen] == [0, 1, 2]
    assert out.metrics["val_accuracy"] > 0.5  # chance is 0.1
    assert "test_accuracy" not in out.metrics  # a search trial never sees test data


def test_search_trials_never_receive_held_out_data(monkeypatch):
    import ptbench.train.trainer as trainer_mod

    seen = {}
    real = trainer_mod.fit

    def spy(model, groups, train, val, recipe, **kw):
        seen["sizes"] = (len(train), len(val))
        return real(model, groups, train, val, recipe, **kw)

    monkeypatch.setattr(trainer_mod, "fit", spy)
    data = load_task(TASK)
    touched = []
    for split in (data.test, *data.shifted.values()):
        monkeypatch.setattr(split, "x", _Tripwire(split.x, touched))
    run_trial(TrialConfig(BB, TASK, {"name": "linear_probe"}, [], {"epochs": 1}))
    assert seen["sizes"] == (200, 100) and touched == []


class _Tripwire(torch.Tensor):
    """A tensor that records any use: held-out data must stay untouched during search."""

    @staticmethod
    def __new__(cls, data, log):
        t = torch.Tensor._make_subclass(cls, data)
        t._log = log
        return t

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        for a in args:
            if isinstance(a, _Tripwire):
                a._log.append(func)
        return super().__torch_function__(func, types, args, kwargs or {})


def test_nan_loss_fails_the_trial_with_a_clear_error():
    model = torch.nn.Linear(4, 2)
    with torch.no_grad():
        model.weight.fill_(float("nan"))
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    with pytest.raises(TrialError, match="non-finite training loss"):
        fit(
            model,
            [{"params": list(model.parameters())}],
            Split(x, y),
            Split(x, y),
            Recipe(epochs=1, batch_size=4),
            num_classes=2,
        )


def test_mixup_trains_on_soft_targets():
    from ptbench.train.trainer import _mixer

    mix = _mixer(Recipe(mixup_alpha=1.0), num_classes=3)  # what the trainer builds
    x = torch.stack([torch.zeros(2), torch.ones(2)])
    x_mixed, y = mix(x.clone(), torch.tensor([0, 2]))
    lam = y[0, 0].item()
    assert torch.allclose(x_mixed[0], torch.full((2,), 1 - lam))
    assert torch.allclose(y[0], torch.tensor([lam, 0, 1 - lam]))
    out = run_trial(
        TrialConfig(
            BB,
            TASK,
            {"name": "linear_probe"},
            [{"name": "mixup"}],
            {"epochs": 1, "mixup_alpha": 0.4, "batch_size": 51},
        )
    )
    assert out.metrics["train_loss"] > 0


def test_cutmix_pastes_a_box_and_mixes_targets_by_its_area():
    from ptbench.train.trainer import _mixer

    mix = _mixer(Recipe(cutmix_alpha=1.0), num_classes=3)
    np.random.seed(0)  # timm draws the box with numpy
    x_mixed, y = mix(torch.stack([torch.zeros(1, 16, 16), torch.ones(1, 16, 16)]), torch.tensor([0, 2]))
    box = x_mixed[0, 0] == 1  # the patch pasted from the other image (the batch, flipped)
    rows, cols = box.any(1).nonzero().flatten(), box.any(0).nonzero().flatten()
    assert 0 < box.sum() < 256
    assert box.sum() == len(rows) * len(cols) and rows.diff().eq(1).all() and cols.diff().eq(1).all()
    area = box.float().mean()
    assert torch.allclose(y[0], torch.tensor([1 - area, 0, area]))  # targets mixed by area
    assert torch.equal(x_mixed[1, 0] == 0, box)  # and the other image got the same box back
    assert torch.allclose(y[1], torch.tensor([area, 0, 1 - area]))


def test_final_run_evaluates_test_and_shifted():
    out = run_trial(
        TrialConfig(BB, TASK, {"name": "linear_probe"}, [], {"epochs": 1}, evaluate=("test", "shifted"))
    )
    for key in (
        "test_accuracy",
        "test_macro_f1",
        "test_nll",
        "test_ece",
        "test_brier",
        "shifted_mnist_subset_accuracy",
        "shifted_mnist_subset_gap",
    ):
        assert key in out.metrics
    assert out.info["split_hash"] == load_task(TASK).split_hash


def test_final_run_with_test_only_skips_shifted():
    out = run_trial(TrialConfig(BB, TASK, {"name": "linear_probe"}, [], {"epochs": 1}, evaluate=("test",)))
    assert "test_accuracy" in out.metrics
    assert not [k for k in out.metrics if k.startswith("shifted_")]


def test_a_mixup_trial_is_reproduced_by_its_seed():
    """timm's Mixup draws λ (and mixup vs cutmix) from numpy's global generator, which a worker
    process starts from OS entropy: the trial seeds it, so one seed gives one result."""
    cfg = TrialConfig(
        BB,
        TASK,
        {"name": "full_finetune"},
        [{"name": "mixup"}, {"name": "cutmix"}],
        {"lr": 1e-2, "epochs": 2, "batch_size": 50, "mixup_alpha": 0.4, "cutmix_alpha": 1.0},
    )
    first = run_trial(cfg).history
    np.random.seed(12345)  # whatever state the process is in
    assert run_trial(cfg).history == first


def test_a_last_batch_of_one_example_joins_the_batch_before_it():
    """train_size 101 at batch_size 50 left a last batch of one example, which BatchNorm cannot
    normalise in training: every trial of a BatchNorm backbone failed ("Expected more than 1
    value per channel"). The LR schedule counts the batches actually run, so it still ends."""
    _, ad, _ = adapt("full_finetune")
    data = load_task(TASK)
    train = Split(data.train.x[:101], data.train.y[:101])
    sizes, lrs = [], []
    ad.model[0].register_forward_pre_hook(lambda m, args: sizes.append(len(args[0])) if m.training else None)
    hook = register_optimizer_step_post_hook(lambda opt, *_: lrs.append(opt.param_groups[0]["lr"]))
    try:
        recipe = Recipe(epochs=2, batch_size=50, schedule="linear")  # lr 1e-3, as the groups
        out = fit(ad.model, ad.param_groups, train, data.val, recipe, num_classes=10, transform=ad.transform)
    finally:
        hook.remove()
    assert sizes == [50, 51, 50, 51] and out.examples_seen == 202
    assert lrs == pytest.approx([1e-3, 7.5e-4, 5e-4, 2.5e-4])  # linear to 0 over the 4 steps run


def test_sgd_without_momentum_trains():
    """``optimizer: sgd`` with ``momentum: 0`` passed validate, then every trial failed: Nesterov
    was always on, and torch refuses it without a momentum."""
    torch.manual_seed(0)
    x = torch.randn(64, 8)
    y = (x[:, 0] > 0).long()
    head = torch.nn.Sequential(torch.nn.Linear(8, 2))
    recipe = Recipe(lr=0.5, epochs=5, batch_size=16, optimizer="sgd", momentum=0.0)
    out = fit(head, [{"params": list(head.parameters())}], Split(x, y), Split(x, y), recipe, num_classes=2)
    assert out.history[-1]["val_accuracy"] > 0.9
