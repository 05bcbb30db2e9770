"""Metrics against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from ptbench.evaluate.metrics import classification_metrics


def test_metrics_match_hand_computed_values():
    # two classes; probabilities 0.8/0.2, 0.6/0.4, 0.3/0.7, 0.9/0.1; labels 0, 1, 1, 0
    probs = torch.tensor([[0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.9, 0.1]])
    y = torch.tensor([0, 1, 1, 0])
    m = classification_metrics(probs.log(), y, 2)
    assert m["accuracy"] == pytest.approx(0.75)
    # NLL = -(ln .8 + ln .4 + ln .7 + ln .9) / 4
    assert m["nll"] == pytest.approx(-(math.log(0.8) + math.log(0.4) + math.log(0.7) + math.log(0.9)) / 4)
    # Brier = mean over samples of sum_k (p_k - onehot_k)^2
    brier = (2 * 0.2**2 + 2 * 0.6**2 + 2 * 0.3**2 + 2 * 0.1**2) / 4
    assert m["brier"] == pytest.approx(brier)
    # macro-F1: class 0: tp=2, fp=1, fn=0 → 0.8; class 1: tp=1, fp=0, fn=1 → 2/3
    assert m["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 2)
    # ECE with 15 bins: confidences .8 (right), .6 (wrong), .7 (right), .9 (right), each own bin
    ece = (abs(0.8 - 1) + abs(0.6 - 0) + abs(0.7 - 1) + abs(0.9 - 1)) / 4
    assert m["ece"] == pytest.approx(ece)


def test_confidence_interval_and_significance_by_hand():
    from ptbench.leaderboard.stats import ci95, significantly_worse

    mean, half = ci95([0.8, 0.9, 1.0])
    # sd = 0.1, t(0.975, df=2) = 4.302653, half-width = 4.302653 · 0.1 / √3
    assert mean == pytest.approx(0.9) and half == pytest.approx(4.302653 * 0.1 / 3**0.5, rel=1e-5)
    assert math.isnan(ci95([0.7])[1])
    assert significantly_worse([0.50, 0.51, 0.49, 0.50], [0.90, 0.91, 0.89, 0.90])
    assert not significantly_worse([0.88, 0.92, 0.90], [0.90, 0.91, 0.89])
    assert not significantly_worse([0.5], [0.9])  # one seed: cannot tell


def test_reliability_bins_by_hand():
    from ptbench.evaluate.metrics import reliability_bins

    probs = torch.tensor([[0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.9, 0.1]])
    out = reliability_bins(probs.log(), torch.tensor([0, 1, 1, 0]), n_bins=5)
    # bins of width 0.2: 0.6 → bin 3, 0.7 → bin 3, 0.8 → bin 4, 0.9 → bin 4
    assert out["rel_b03_n"] == 2 and out["rel_b03_conf"] == pytest.approx(0.65)
    assert out["rel_b03_acc"] == pytest.approx(0.5) and out["rel_b04_acc"] == pytest.approx(1.0)
    assert out["rel_b00_n"] == 0 and "rel_b00_acc" not in out


def test_relative_robustness_is_nan_never_zero_at_clean_accuracy_zero():
    from ptbench.evaluate.robustness import corruption_metrics
    from ptbench.tasks import TASKS

    x = TASKS.get("digits").fn({"train_size": 200, "val_size": 100, "test_size": 100}).test.x[:20]

    def always_class_0(inputs):  # real corruptions run on real digits; the model says 0
        return torch.nn.functional.one_hot(torch.zeros(len(inputs), dtype=torch.long), 10).float()

    wrong = corruption_metrics(
        always_class_0, x, torch.ones(20, dtype=torch.long), "image", ["contrast"], [1], 0
    )
    assert wrong["corr_clean_accuracy"] == 0 and wrong["corr_mean_accuracy"] == 0
    assert math.isnan(wrong["corr_relative"])  # undefined: a 0 would read as "least robust"
    right = corruption_metrics(
        always_class_0, x, torch.zeros(20, dtype=torch.long), "image", ["contrast"], [1], 0
    )
    assert right["corr_relative"] == pytest.approx(1.0)
