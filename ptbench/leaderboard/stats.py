"""Intervals and tests over seeds (scipy.stats)."""

from __future__ import annotations

import math
import statistics
import warnings


def ci95(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% Student-t confidence interval (NaN with < 2 values)."""
    v = [x for x in values if x == x]
    if not v:
        return math.nan, math.nan
    mean = sum(v) / len(v)
    if len(v) < 2:
        return mean, math.nan
    from scipy import stats

    return mean, float(stats.t.ppf(0.975, len(v) - 1) * statistics.stdev(v) / math.sqrt(len(v)))


def significantly_worse(values: list[float], best: list[float], alpha: float = 0.05) -> bool:
    """Welch's t-test that ``values`` have a lower mean than ``best``; False (cannot tell) with
    fewer than 2 seeds on either side."""
    a = [x for x in values if x == x]
    b = [x for x in best if x == x]
    if len(a) < 2 or len(b) < 2:
        return False
    if statistics.pvariance(a) < 1e-18 and statistics.pvariance(b) < 1e-18:
        return sum(a) / len(a) < sum(b) / len(b)  # no spread at all: the means decide
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = stats.ttest_ind(a, b, equal_var=False, alternative="less").pvalue
    return bool(p < alpha)
