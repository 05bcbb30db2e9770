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
    mean = math.fsum(v) / len(v)  # the same in any order: tied cells rank alike, whatever the store's order
    if len(v) < 2:
        return mean, math.nan
    from scipy import stats

    return mean, float(stats.t.ppf(0.975, len(v) - 1) * statistics.stdev(v) / math.sqrt(len(v)))


def worse_p(values: list[float], best: list[float]) -> float:
    """One-sided p of Welch's t-test that ``values`` have a lower mean than ``best`` (0 or 1
    where neither side varies: the means decide); NaN with fewer than 2 seeds on either side."""
    a = [x for x in values if x == x]
    b = [x for x in best if x == x]
    if len(a) < 2 or len(b) < 2:
        return math.nan
    if statistics.pvariance(a) < 1e-18 and statistics.pvariance(b) < 1e-18:
        return 0.0 if sum(a) / len(a) < sum(b) / len(b) else 1.0
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(a, b, equal_var=False, alternative="less").pvalue)


def holm_rejected(ps: list[float], alpha: float = 0.05) -> list[bool]:
    """Holm's step-down over a board's comparisons with its best cell: each "significantly
    worse" holds at family-wise level ``alpha``. Tested one by one at 0.05, a board of ten
    equivalent cells marked one of them worse more often than not (the best is itself the
    noisiest high draw). NaN p-values are never rejected and do not count."""
    tested = sorted((p, i) for i, p in enumerate(ps) if p == p)
    out, m = [False] * len(ps), len(tested)
    for rank, (p, i) in enumerate(tested):
        if p > alpha / (m - rank):
            break
        out[i] = True
    return out
