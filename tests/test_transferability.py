"""Transferability estimators against values computed by hand on tiny inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ptbench.evaluate.transferability import ESTIMATORS, log_evidence, maximize_evidence


def test_every_estimator_is_registered():
    assert set(ESTIMATORS.names()) == {"logme", "hscore", "hscore_shrink", "nce", "leep", "knn", "probe"}
    assert ESTIMATORS.get("leep").meta["needs"] == ("source_probs",)


def test_log_evidence_by_hand():
    # F = [[1], [1]], y = [1, 1], α = β = 1: y ~ N(0, I + F Fᵀ) = N(0, [[2, 1], [1, 2]]);
    # det 3, yᵀΣ⁻¹y = 2/3, so log p(y) = −log 2π − ½ log 3 − 1/3 = −2.720517
    f, y = np.array([[1.0], [1.0]]), np.array([1.0, 1.0])
    assert log_evidence(f, y, 1.0, 1.0) == pytest.approx(-math.log(2 * math.pi) - 0.5 * math.log(3) - 1 / 3)


def test_log_evidence_is_the_marginal_likelihood_of_the_bayesian_linear_model():
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(0)
    f, y = rng.normal(size=(12, 3)), rng.normal(size=12)
    for alpha, beta in ((0.5, 2.0), (3.0, 0.7)):
        cov = np.eye(12) / beta + f @ f.T / alpha
        assert log_evidence(f, y, alpha, beta) == pytest.approx(
            multivariate_normal(np.zeros(12), cov).logpdf(y)
        )


def test_maximized_evidence_beats_every_neighbour():
    rng = np.random.default_rng(1)
    f = rng.normal(size=(40, 4))
    y = f @ np.array([1.0, -0.5, 0.0, 2.0]) + 0.3 * rng.normal(size=40)
    alpha, beta = maximize_evidence(f, y)
    best = log_evidence(f, y, alpha, beta)
    for da, db in ((0.5, 1), (2, 1), (1, 0.5), (1, 2)):
        assert best >= log_evidence(f, y, alpha * da, beta * db)
    assert beta == pytest.approx(1 / 0.3**2, rel=0.5)  # the noise precision it recovers


@pytest.mark.parametrize("n, d", [(30, 5), (12, 40)])  # more examples than features, and fewer
def test_logme_from_the_spectrum_equals_the_direct_evidence(n, d):
    """LogME computes the evidence from one SVD of F shared by every class; it equals the direct
    formula (a d × d solve and determinant) at the same maximizing α, β."""
    rng = np.random.default_rng(3)
    f, labels = rng.normal(size=(n, d)), np.arange(n) % 3
    direct = []
    for c in range(3):
        y = (labels == c).astype(np.float64)
        alpha, beta = maximize_evidence(f, y)
        direct.append(log_evidence(f, y, alpha, beta) / n)
    assert ESTIMATORS.get("logme").fn(f, labels) == pytest.approx(np.mean(direct), rel=1e-9)


@pytest.mark.parametrize("n, d", [(30, 5), (12, 40)])
def test_hscore_from_the_svd_equals_the_covariance_formula(n, d):
    rng = np.random.default_rng(4)
    f, y = rng.normal(size=(n, d)), np.arange(n) % 3
    c = f - f.mean(0)
    means = np.stack([c[y == k].mean(0) for k in y])
    direct = np.trace(np.linalg.pinv(c.T @ c / n, rcond=1e-10) @ (means.T @ means / n))
    assert ESTIMATORS.get("hscore").fn(f, y) == pytest.approx(direct, rel=1e-8)


@pytest.mark.parametrize("n, d", [(30, 5), (12, 40)])
def test_shrunk_hscore_is_the_ledoit_wolf_formula(n, d):
    from sklearn.covariance import LedoitWolf

    rng = np.random.default_rng(6)
    y = np.arange(n) % 3
    f = rng.normal(size=(n, d)) + np.eye(d)[y] * 2
    lw = LedoitWolf().fit(f)
    c = f - f.mean(0)
    means = np.stack([c[y == k].mean(0) for k in y])
    direct = np.trace(np.linalg.pinv(lw.covariance_) @ ((1 - lw.shrinkage_) * means.T @ means / n))
    assert ESTIMATORS.get("hscore_shrink").fn(f, y) == pytest.approx(direct, rel=1e-8)


def test_shrunk_hscore_tells_apart_what_plain_hscore_ties_when_features_outnumber_examples():
    """With more features than examples H-score is classes − 1 for any features; the shrunk
    one still prefers features that carry the labels."""
    rng = np.random.default_rng(7)
    y = np.arange(30) % 3
    good = rng.normal(size=(30, 60)) + np.eye(60)[y] * 3
    noise = rng.normal(size=(30, 60))
    plain, shrunk = ESTIMATORS.get("hscore").fn, ESTIMATORS.get("hscore_shrink").fn
    assert plain(good, y) == pytest.approx(2) and plain(noise, y) == pytest.approx(2)
    assert shrunk(good, y) > shrunk(noise, y)


def test_logme_prefers_features_that_carry_the_labels():
    rng = np.random.default_rng(2)
    y = np.repeat(np.arange(3), 30)
    good = np.eye(3)[y] + 0.1 * rng.normal(size=(90, 3))
    noise = rng.normal(size=(90, 3))
    logme = ESTIMATORS.get("logme").fn
    assert logme(good, y) > logme(noise, y)
    assert logme(good, y) == logme(good, y)  # deterministic


def test_hscore_by_hand():
    # f = [0, 2, 4, 6], classes [0, 0, 1, 1]: cov(f) = 5, class means ∓2 → cov(E[f|y]) = 4: 4/5
    f, y = np.array([[0.0], [2.0], [4.0], [6.0]]), np.array([0, 0, 1, 1])
    assert ESTIMATORS.get("hscore").fn(f, y) == pytest.approx(0.8)


def test_nce_and_leep_by_hand():
    y, z = np.array([0, 1, 1, 1]), np.array([0, 0, 1, 1])
    f = np.zeros((4, 1))
    # P(z,y): (0,0) ¼, (0,1) ¼, (1,1) ½ → −H(Y|Z) = ¼ log ½ + ¼ log ½ + ½ log 1 = −½ log 2
    assert ESTIMATORS.get("nce").fn(f, y, source_labels=z) == pytest.approx(-0.5 * math.log(2))
    # a one-hot source head gives LEEP = NCE: mean of log P(y_i | z_i)
    theta = np.eye(2)[z]
    assert ESTIMATORS.get("leep").fn(f, y, source_probs=theta) == pytest.approx(-0.5 * math.log(2))
    # a source head that says ½ / ½ for everything predicts every target label with ½
    soft = np.full((2, 2), 0.5)
    assert ESTIMATORS.get("leep").fn(np.zeros((2, 1)), np.array([0, 1]), source_probs=soft) == pytest.approx(
        math.log(0.5)
    )
    with pytest.raises(ValueError, match="source head"):
        ESTIMATORS.get("leep").fn(f, y)


def test_knn_and_probe_baselines():
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1], 20)
    x = np.c_[y * 4.0, (1 - y) * 4.0] + 0.2 * rng.normal(size=(40, 2))
    assert ESTIMATORS.get("knn").fn(x, y) == 1.0  # two clean clusters: every neighbour agrees
    shuffled = rng.permutation(y)
    assert ESTIMATORS.get("knn").fn(x, shuffled) < 0.8
    assert ESTIMATORS.get("probe").fn(x[::2], y[::2], val_features=x[1::2], val_labels=y[1::2]) == 1.0


def test_rank_agreement_by_hand():
    from ptbench.evaluate.transferability import agreement

    same = agreement([1, 2, 3, 4], [10, 20, 30, 40])
    assert (
        same["tau_w"] == pytest.approx(1.0) and same["spearman"] == pytest.approx(1.0) and same["top1"] == 1.0
    )
    flipped = agreement([4, 3, 2, 1], [10, 20, 30, 40])
    assert flipped["tau_w"] == pytest.approx(-1.0) and flipped["top1"] == 0.0
    # the two best swapped: Spearman 1 − 6·(1+1)/(4·15) = 0.8, and the top-1 pick is wrong
    swap_top = agreement([1, 2, 4, 3], [10, 20, 30, 40])
    assert swap_top["spearman"] == pytest.approx(0.8) and swap_top["top1"] == 0.0
    # the two worst swapped: the same Spearman, but weighted τ counts a swap at the bottom less
    swap_bottom = agreement([2, 1, 3, 4], [10, 20, 30, 40])
    assert swap_bottom["spearman"] == pytest.approx(0.8) and swap_bottom["top1"] == 1.0
    assert swap_bottom["tau_w"] > swap_top["tau_w"]
    assert swap_bottom["tau_w_low"] <= swap_bottom["tau_w"] <= swap_bottom["tau_w_high"]


def test_three_backbones_get_no_tau_interval():
    """With three backbones every bootstrap resample that can rank is the three themselves:
    the interval was [τ, τ], false certainty exactly where LEEP and NCE see few backbones."""
    from ptbench.evaluate.transferability import agreement

    three = agreement([1, 3, 2], [10, 20, 30])
    assert three["tau_w"] == three["tau_w"] and three["tau_w_low"] != three["tau_w_low"]
    four = agreement([1, 3, 2, 4], [10, 20, 30, 40])
    assert four["tau_w_low"] < four["tau_w"] <= four["tau_w_high"]


def test_an_estimator_on_fewer_backbones_is_measured_against_knn_on_the_same_ones():
    """LEEP scores only the backbones with a source classifier: 'did no better than k-NN' set
    its τ on 3 against k-NN's on 6, where k-NN ranked those 3 worst possible."""
    import math

    from ptbench.rank.report import render
    from ptbench.rank.score import RankReport, Scored, _checks

    truth = {("t", f"b{i}"): acc for i, acc in enumerate([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])}
    knn = [0.5, 0.6, 0.7, 0.6, 0.5, 0.4]  # right on b3..b5, reversed on b0..b2
    leep = [0.1, 0.3, 0.2, math.nan, math.nan, math.nan]  # only b0..b2 have a source head
    rows = [Scored("t", f"b{i}", {"knn": knn[i], "leep": leep[i]}, {"features": 1.0}) for i in range(6)]
    checks = _checks(rows, truth, ["knn", "leep"])
    assert checks["t", "leep"]["backbones"] == 3 and checks["t", "knn"]["backbones"] == 6
    assert checks["t", "leep"]["knn_tau_w"] == pytest.approx(-1.0)  # k-NN on b0..b2: reversed
    assert checks["t", "leep"]["tau_w"] > -1.0
    text = render(RankReport("s", rows, truth, checks, ["knn", "leep"]))
    assert "Did no better than k-NN" not in text
    assert "| leep | 3 |" in text and "(no interval)" in text


def test_a_class_id_with_no_train_example_adds_no_evidence():
    """Labels 1..K, or a class only in validation/test: LogME fit an all-zero target per missing
    id, which ran to its floors and added ~+12 of evidence per example — more for narrower
    features, so a 4-d noise backbone outranked an informative 32-d one."""
    rng = np.random.default_rng(5)
    y = np.repeat([0, 2], 40)  # class 1 has no train example
    good = rng.normal(size=(80, 32)) + np.eye(32)[y] * 2
    noise = rng.normal(size=(80, 4))
    logme = ESTIMATORS.get("logme").fn
    assert logme(good, y) == pytest.approx(logme(good, (y == 2).astype(int)))  # as if numbered 0..K-1
    assert logme(good, y + 5) == pytest.approx(logme(good, y))
    assert logme(good, y) > logme(noise, y)


def test_hscore_of_features_as_wide_as_the_train_split_is_an_exact_tie():
    """Saturated H-scores were classes − 1 up to float noise, and that noise ordered the
    backbones (differently with 1 or 2 BLAS threads); now they tie exactly."""
    rng = np.random.default_rng(8)
    y = np.arange(20) % 4
    scores = {ESTIMATORS.get("hscore").fn(rng.normal(size=(20, d)), y) for d in (19, 40, 400)}
    assert scores == {3.0}


def test_knn_with_no_more_train_examples_than_neighbours():
    """k = n made the left-out example vote for itself; k > n was a reshape error."""
    knn = ESTIMATORS.get("knn").fn
    x = np.eye(5)
    assert knn(x, np.arange(5)) == 0.0  # every neighbour is of another class: leave-one-out says 0
    assert knn(x[:3], np.array([0, 0, 1])) == pytest.approx(2 / 3)  # k = 2: ties to the lowest label


def test_top1_credit_of_a_tie_at_the_top_is_its_share_of_hits():
    """argmax gave the hit to whichever tied backbone came first in the grid."""
    from ptbench.evaluate.transferability import agreement

    assert agreement([1, 1, 0, 0], [0.9, 0.5, 0.2, 0.1])["top1"] == 0.5
    assert agreement([1, 1, 0, 0], [0.5, 0.9, 0.2, 0.1])["top1"] == 0.5
    assert agreement([0, 0, 0, 0], [0.5, 0.9, 0.2, 0.1])["top1"] == 0.25


def test_features_or_labels_an_estimator_cannot_score_are_na_with_the_reason():
    """A diverged checkpoint's NaN features were a LinAlgError traceback from LogME and H-score
    (and a plausible 0.6 from k-NN); all-zero features a ZeroDivisionError; one train class a
    scikit-learn traceback from the probe. Each is n/a for that backbone, with why."""
    import math

    import torch

    from ptbench.rank.score import _score
    from ptbench.trial import FrozenFeatures

    x, y = torch.randn(20, 4), torch.arange(20) % 2
    bad = x.clone()
    bad[3, 1] = float("nan")
    for name in ("logme", "hscore", "hscore_shrink", "knn", "probe"):
        value, _, note = _score(name, FrozenFeatures(bad, y, x, y, 0.0, 0))
        assert math.isnan(value)
        assert note == f"{name}: n/a, the backbone's features are not finite (NaN or inf)"
    value, _, note = _score("logme", FrozenFeatures(torch.zeros(20, 4), y, x, y, 0.0, 0))
    assert math.isnan(value) and note == "logme: n/a, the features are all zero over the train split"
    value, _, note = _score("probe", FrozenFeatures(x, torch.zeros(20, dtype=torch.long), x, y, 0.0, 0))
    assert math.isnan(value) and note == "probe: n/a, the train split has one class: no classifier to fit"


def test_logme_does_not_depend_on_the_features_scale():
    """The maximized evidence is scale-free (the prior's α absorbs it), but the fixed point's
    absolute floors were not: features × 1e6 scored −0.88 where × 1 scored −0.76."""
    rng = np.random.default_rng(4)
    y = np.repeat(np.arange(3), 20)
    f = rng.normal(size=(60, 8)) + np.eye(8)[y]
    logme = ESTIMATORS.get("logme").fn
    assert logme(f * 1e6, y) == pytest.approx(logme(f, y), abs=1e-6)
    assert logme(f * 1e-4, y) == pytest.approx(logme(f, y), abs=1e-6)


def test_knn_on_collapsed_features_is_not_applicable_not_a_score_of_the_example_order():
    """Features the same for every example (a collapsed checkpoint) made every similarity 0, so
    the neighbours were the lowest indices: 0.35 with labels alternating, 0.50 with the same
    labels sorted. No score, with the reason, as LogME gives for all-zero features."""
    from ptbench.evaluate.transferability import NotApplicable, knn

    x = np.full((20, 8), 0.3)
    for y in (np.arange(20) % 2, np.sort(np.arange(20) % 2)):
        with pytest.raises(NotApplicable, match="the same for every train example"):
            knn(x, y)
