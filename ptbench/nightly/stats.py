"""The statistics of a nightly comparison, kept apart from MLflow so they are tested by hand.

- ``paired_bootstrap``: tonight's models against the baseline's on the *same* test examples.
  Each resample draws the examples (shared by both sides: that is the pairing) and, on each
  side, the models (seeds) with replacement, so the interval covers both the test set's sampling
  noise and seed-to-seed noise. Why not ``scipy.stats.bootstrap``: it resamples one level; a
  night is several models on one example set, and accuracy, macro-F1 and ECE are not means of
  per-example values, so each is computed from per-example counts weighted by the resample.
- ``mcnemar``: the exact test on discordant pairs (``scipy.stats.binomtest``), for accuracy.
- ``lookback``: tonight's value against the spread of previous nights (z and a t-based p): the
  only test for metrics without per-example data, and a second condition for those with it,
  since one night's paired test cannot see night-to-night noise (which search trial won).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

N_BINS = 15  # ECE bins, as the final runs' ``test_ece`` (torchmetrics, 15 equal-width, L1)
PAIRED = ("test_accuracy", "test_macro_f1", "test_ece")  # computed from per-example predictions


@dataclass(frozen=True)
class Preds:
    """One model's predictions on one test split, in the split's order."""

    label: np.ndarray
    pred: np.ndarray
    confidence: np.ndarray

    @classmethod
    def of(cls, table: dict[str, list]) -> Preds:
        return cls(
            np.asarray(table["label"], np.int64),
            np.asarray(table["pred"], np.int64),
            np.asarray(table["confidence"], np.float64),
        )


def _onehot(v: np.ndarray, k: int) -> np.ndarray:
    return (v[:, None] == np.arange(k)[None, :]).astype(np.float64)


def _stats(metric: str, p: Preds, k: int) -> np.ndarray:
    """Per-example columns whose (weighted) sums determine ``metric``: n × d."""
    correct = (p.pred == p.label).astype(np.float64)
    if metric == "test_accuracy":
        return correct[:, None]
    if metric == "test_macro_f1":
        pred, true = _onehot(p.pred, k), _onehot(p.label, k)
        return np.hstack([pred * true, pred, true])
    if metric == "test_ece":
        b = _onehot(np.minimum((p.confidence * N_BINS).astype(np.int64), N_BINS - 1), N_BINS)
        return np.hstack([b * p.confidence[:, None], b * correct[:, None]])
    raise ValueError(f"no per-example form for '{metric}'")


def _value(metric: str, sums: np.ndarray, n: float, k: int) -> np.ndarray:
    """``metric`` from column sums (rows: resamples)."""
    if metric == "test_accuracy":
        return sums[:, 0] / n
    if metric == "test_macro_f1":
        tp, pp, tt = sums[:, :k], sums[:, k : 2 * k], sums[:, 2 * k :]
        denom = pp + tt
        f1 = np.divide(2 * tp, denom, out=np.full_like(tp, np.nan), where=denom > 0)
        return np.nanmean(f1, axis=1)  # classes absent from labels and predictions: not counted
    conf, correct = sums[:, :N_BINS], sums[:, N_BINS:]
    return np.abs(conf - correct).sum(axis=1) / n  # Σ_bins |conf − acc|·n_b / n


def metric_value(metric: str, p: Preds, k: int) -> float:
    """``metric`` of one model on its whole split (what the bootstrap resamples)."""
    return float(_value(metric, _stats(metric, p, k).sum(0, keepdims=True), len(p.label), k)[0])


@dataclass(frozen=True)
class Paired:
    effect: float  # tonight − baseline (mean over each side's models)
    low: float  # the (1 − alpha) percentile interval of the effect
    high: float
    p: float  # two-sided: effect / bootstrap standard error, against the normal


def paired_bootstrap(
    metric: str,
    base: list[Preds],
    cur: list[Preds],
    k: int,
    n_boot: int = 2000,
    alpha: float = 0.01,
    seed: int = 0,
) -> Paired:
    """Effect of tonight (``cur``) against the baseline (``base``) on the same examples."""
    n = len(cur[0].label)
    if any(len(p.label) != n or not np.array_equal(p.label, cur[0].label) for p in base + cur):
        raise ValueError("paired comparison needs the same test examples on both sides")
    from scipy.stats import norm

    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)  # B × n
    sides = []
    for models in (base, cur):
        per_model = np.stack([_value(metric, weights @ _stats(metric, m, k), n, k) for m in models])
        pick = rng.integers(0, len(models), size=(n_boot, len(models)))
        sides.append(per_model[pick, np.arange(n_boot)[:, None]].mean(axis=1))
    diffs = sides[1] - sides[0]
    mean_of = lambda models: np.mean([metric_value(metric, m, k) for m in models])  # noqa: E731
    effect = float(mean_of(cur) - mean_of(base))
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    # p from the bootstrap's standard error (normal approximation): unlike counting resamples
    # beyond 0 it is not floored at 1/B, which a correction for many comparisons needs
    se = float(diffs.std(ddof=1))
    p = (1.0 if effect == 0 else 0.0) if se == 0 else float(2 * norm.sf(abs(effect) / se))
    return Paired(effect, float(low), float(high), float(p))


def mcnemar(base: Preds, cur: Preds) -> tuple[int, int, float]:
    """Exact McNemar between two models on the same examples: (baseline right & tonight wrong,
    baseline wrong & tonight right, two-sided p). One pair of models: the counts of several
    seed pairs are not independent (hard examples flip in each), and pooling them gave p-values
    far below what the bootstrap over examples and seeds shows."""
    from scipy.stats import binomtest

    rb, rc = base.pred == base.label, cur.pred == cur.label
    b, c = int(np.sum(rb & ~rc)), int(np.sum(~rb & rc))
    p = 1.0 if b + c == 0 else float(binomtest(min(b, c), b + c, 0.5).pvalue)
    return b, c, p


def _tiny(x: float) -> float:
    """0 for float round-off (the sd of three equal values is ~1e-16, not 0)."""
    return 0.0 if abs(x) < 1e-12 else x


def zscore(history: list[float], value: float) -> float:
    """(value − mean) / sample standard deviation of ``history``; ±inf for a move off a flat
    history, 0 for none; NaN when fewer than two nights."""
    h = np.asarray([x for x in history if x == x], np.float64)
    if len(h) < 2 or value != value:
        return math.nan
    sd, diff = _tiny(float(h.std(ddof=1))), _tiny(value - float(h.mean()))
    if sd == 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / sd


@dataclass(frozen=True)
class Lookback:
    center: float  # the previous nights' mean (or the pinned night's value)
    z: float  # (value − center) / sd of the previous nights
    p: float  # two-sided, of tonight as a new draw from the nights' distribution (t, n − 1 df)


def lookback(history: list[float], value: float, pinned: float | None = None, floor: float = 0.0) -> Lookback:
    """Tonight against the spread of previous nights. Why a t prediction interval, not |z| ≥ 3:
    with 3–7 nights the sample sd is itself noisy, and a fixed z cut-off would raise false alarms
    far more often than its normal-theory rate. Against the rolling mean of n nights the scale
    is sd·√(1 + 1/n); against one pinned night, sd·√2 (both sides are single nights). ``floor``
    is the least sd believed (the seeds' own spread): a short history can look tighter than
    the nights really are."""
    from scipy.stats import t as student_t

    h = [x for x in history if x == x]
    n = len(h)
    center = float(np.mean(h)) if h else math.nan
    center = center if pinned is None else pinned
    if n < 2 or value != value or center != center:
        return Lookback(center, math.nan, math.nan)
    sd, diff = max(_tiny(float(np.std(h, ddof=1))), floor), _tiny(value - center)
    z = diff / sd if sd else (0.0 if diff == 0 else math.copysign(math.inf, diff))
    if sd == 0:
        return Lookback(center, z, 1.0 if diff == 0 else 0.0)
    scale = sd * (math.sqrt(1 + 1 / n) if pinned is None else math.sqrt(2))
    return Lookback(center, z, float(2 * student_t.sf(abs(diff) / scale, n - 1)))
