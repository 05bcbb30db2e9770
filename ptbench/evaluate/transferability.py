"""Transferability estimators: how well a frozen backbone will transfer to a task, scored from
its features (and, where the weights have one, its source head's outputs) without fine-tuning.

Each is registered in ``ESTIMATORS`` (``ptbench ls estimators``), deterministic, and higher is
better. ``needs`` names what it reads beyond features and labels: ``source_probs`` (the source
head's softmax, for LEEP) or ``source_labels`` (its argmax, for NCE) — backbones without a
source head cannot be scored by those two, and the ranking says so.

Written here rather than taken from a library: none of LogME, H-score, NCE or LEEP is in a
maintained package we depend on (TLlib is unmaintained and pulls its own torch stack); each is
a few lines of linear algebra, tested against values computed by hand (tests/test_transferability.py).
"""

from __future__ import annotations

import math

import numpy as np

from ptbench.registry import Registry

ESTIMATORS = Registry("estimator", meta_keys=("needs", "reference"))
SOURCE_NEEDS = frozenset({"source_probs", "source_labels"})  # what only a source classifier gives


class NotApplicable(ValueError):
    """These features and labels cannot be scored by the estimator; the ranking says why (n/a)."""


def reads_source(name: str) -> bool:
    """Whether estimator ``name`` needs a source classifier's outputs (LEEP, NCE)."""
    return bool(SOURCE_NEEDS & set(ESTIMATORS.get(name).meta["needs"]))


def _onehot(y: np.ndarray, k: int | None = None) -> np.ndarray:
    k = int(y.max()) + 1 if k is None else k
    return (y[:, None] == np.arange(k)[None, :]).astype(np.float64)


# --- LogME ---------------------------------------------------------------------------------


def log_evidence(f: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> float:
    """log p(y | F, α, β) of the Bayesian linear model y = F w + ε, w ~ N(0, α⁻¹ I),
    ε ~ N(0, β⁻¹ I), in closed form (You et al. 2021, eq. 2)."""
    n, d = f.shape
    a = alpha * np.eye(d) + beta * f.T @ f
    m = beta * np.linalg.solve(a, f.T @ y)
    _, logdet = np.linalg.slogdet(a)
    resid = float(np.sum((f @ m - y) ** 2))
    return float(
        n / 2 * math.log(beta)
        + d / 2 * math.log(alpha)
        - n / 2 * math.log(2 * math.pi)
        - beta / 2 * resid
        - alpha / 2 * float(m @ m)
        - logdet / 2
    )


class _Spectrum:
    """F's SVD, computed once per feature matrix and shared by every one-vs-rest target: the
    fixed point and the evidence then cost O(n·r) per target instead of O(d³) (a d × d solve and
    determinant per class — most of LogME's time on 1,280-d features)."""

    def __init__(self, f: np.ndarray):
        self.n, self.d = f.shape
        self.u, s, _ = np.linalg.svd(f, full_matrices=False)
        # F / s_max: the maximized evidence does not depend on the features' scale (α absorbs
        # it), but the fixed point's absolute floors did — features × 1e6 scored otherwise
        self.scale = float(s.max()) ** 2 if s.size and s.max() > 0 else 1.0
        self.sigma = s**2 / self.scale

    def fit(self, y: np.ndarray, iters: int = 100, tol: float = 1e-6) -> tuple[float, float, float]:
        """(α, β, log evidence) at MacKay's fixed point for target ``y``."""
        sigma, uy, yy = self.sigma, self.u.T @ y, float(y @ y)
        alpha, beta = 1.0, 1.0
        for _ in range(iters):
            gamma = float(np.sum(beta * sigma / (alpha + beta * sigma)))
            m2, resid = self._fit_terms(uy, yy, alpha, beta)
            new_alpha, new_beta = gamma / max(m2, 1e-12), (self.n - gamma) / max(resid, 1e-12)
            done = abs(new_alpha - alpha) / alpha < tol and abs(new_beta - beta) / beta < tol
            alpha, beta = new_alpha, new_beta
            if done:
                break
        return alpha * self.scale, beta, self.evidence(uy, yy, alpha, beta)  # α in F's own units

    def _fit_terms(self, uy: np.ndarray, yy: float, alpha: float, beta: float) -> tuple[float, float]:
        """‖m‖² and ‖F m − y‖² of the posterior mean m, from the spectrum."""
        denom = alpha + beta * self.sigma
        m2 = float(np.sum(beta**2 * self.sigma * uy**2 / denom**2))
        resid = float(np.sum((uy - beta * self.sigma * uy / denom) ** 2) + (yy - uy @ uy))
        return m2, resid

    def evidence(self, uy: np.ndarray, yy: float, alpha: float, beta: float) -> float:
        """log_evidence's closed form with log det A = Σ log(α + β σᵢ) + (d − r) log α."""
        m2, resid = self._fit_terms(uy, yy, alpha, beta)
        unseen = self.d - len(self.sigma)  # directions no example spans: A's eigenvalue is α there
        logdet = float(np.sum(np.log(alpha + beta * self.sigma))) + unseen * math.log(alpha)
        return float(
            self.n / 2 * math.log(beta)
            + self.d / 2 * math.log(alpha)
            - self.n / 2 * math.log(2 * math.pi)
            - beta / 2 * resid
            - alpha / 2 * m2
            - logdet / 2
        )


def maximize_evidence(
    f: np.ndarray, y: np.ndarray, iters: int = 100, tol: float = 1e-6
) -> tuple[float, float]:
    """(α, β) maximizing the evidence, by MacKay's fixed-point updates on the SVD of F."""
    alpha, beta, _ = _Spectrum(np.asarray(f, np.float64)).fit(np.asarray(y, np.float64), iters, tol)
    return alpha, beta


@ESTIMATORS.register("logme", needs=(), reference="You, Liu, Wang, Long (ICML 2021)")
def logme(features: np.ndarray, labels: np.ndarray, **_) -> float:
    """Mean over the train split's classes of the maximized log evidence per example, one-vs-rest
    targets. A class id with no train example (labels numbered 1..K, a class only in test) is
    no target: its all-zero column drove the fixed point to its floors and added some +12 of
    'evidence' per example, more the narrower the features — enough to reorder backbones."""
    spectrum = _Spectrum(np.asarray(features, np.float64))
    y = np.asarray(labels)
    if not np.any(spectrum.sigma > 0):
        raise NotApplicable("the features are all zero over the train split")
    return float(np.mean([spectrum.fit((y == c).astype(np.float64))[2] / spectrum.n for c in np.unique(y)]))


# --- H-score -------------------------------------------------------------------------------


def _class_spread(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What both H-scores read: the centred features F, the eigenvalues λᵢ of FᵀF (those above
    1e-10 of the largest) and ‖M vᵢ‖² for their unit eigenvectors vᵢ, M holding each row's class
    mean. The eigenpairs come from the smaller Gram matrix, FᵀF or FFᵀ (vᵢ = Fᵀuᵢ / √λᵢ): O(n² d)
    instead of a d × d inverse when features outnumber examples."""
    f = np.asarray(features, np.float64)
    f = f - f.mean(0)
    y = np.asarray(labels)
    means = np.zeros_like(f)
    for c in np.unique(y):
        means[y == c] = f[y == c].mean(0)
    wide = f.shape[1] > f.shape[0]
    lam, vec = np.linalg.eigh(f @ f.T if wide else f.T @ f)
    keep = lam > 1e-10 * lam[-1] if lam[-1] > 0 else np.zeros(len(lam), bool)
    lam, vec = lam[keep], vec[:, keep]
    proj = (means @ f.T @ vec) / np.sqrt(lam) if wide else means @ vec  # M vᵢ
    return f, lam, np.sum(proj**2, axis=0)


@ESTIMATORS.register("hscore", needs=(), reference="Bao et al. (ICIP 2019)")
def hscore(features: np.ndarray, labels: np.ndarray, **_) -> float:
    """tr(cov(f)⁻¹ cov(E[f | y])): how much of the features' spread the class means explain —
    Σᵢ ‖M vᵢ‖² / λᵢ over FᵀF's eigenpairs (cov's pseudo-inverse cut at 1e-10). Where the centred
    features span all n train examples (rank n − 1: features as wide as the train split) the
    score is exactly classes − 1 whatever the features; it is returned as that, so such
    backbones tie, instead of being ordered by the float noise of the sum (which also differed
    with the number of BLAS threads). ``hscore_shrink`` tells them apart."""
    f, lam, between = _class_spread(features, labels)
    if len(lam) >= f.shape[0] - 1:
        return float(len(np.unique(np.asarray(labels))) - 1)
    return float(np.sum(between / lam))


@ESTIMATORS.register(
    "hscore_shrink",
    needs=(),
    reference="Ibrahim, Ponomareva, Mazumder, Newer is not always better (ECML PKDD 2022)",
)
def hscore_shrink(features: np.ndarray, labels: np.ndarray, **_) -> float:
    """H-score with a Ledoit-Wolf shrunk covariance, tr(cov_α(f)⁻¹ (1 − α) cov(E[f | y])): plain
    H-score saturates at classes − 1 when the features outnumber the examples (every backbone
    with d ≥ n ties there); shrinking towards μI keeps them apart. α and μ as scikit-learn's
    LedoitWolf. The class means lie in the features' span, where cov_α's eigenvalues are
    (1 − α) λᵢ / n + α μ."""
    from sklearn.covariance import ledoit_wolf_shrinkage

    f, lam, between = _class_spread(features, labels)
    n, d = f.shape
    alpha = float(ledoit_wolf_shrinkage(f, assume_centered=True))
    mu = float(np.sum(f**2)) / n / d  # tr(cov) / d: the shrinkage target's scale
    return float(np.sum((1 - alpha) * (between / n) / ((1 - alpha) * lam / n + alpha * mu)))


# --- NCE and LEEP: from the source head --------------------------------------------------


@ESTIMATORS.register("nce", needs=("source_labels",), reference="Tran, Nguyen, Hassner (ICCV 2019)")
def nce(features: np.ndarray, labels: np.ndarray, source_labels: np.ndarray | None = None, **_) -> float:
    """−H(Y | Z): the negative conditional entropy of the target label given the source head's
    label, from their empirical joint distribution."""
    if source_labels is None:
        raise ValueError("nce needs the source head's labels")
    y, z = np.asarray(labels), np.asarray(source_labels)
    joint = _onehot(z).T @ _onehot(y) / len(y)  # P(z, y)
    pz = joint.sum(1, keepdims=True)
    nz = joint > 0
    return float(np.sum(joint[nz] * np.log((joint / np.where(pz > 0, pz, 1))[nz])))


@ESTIMATORS.register(
    "leep", needs=("source_probs",), reference="Nguyen, Hassner, Seeger, Archambeau (ICML 2020)"
)
def leep(features: np.ndarray, labels: np.ndarray, source_probs: np.ndarray | None = None, **_) -> float:
    """Mean log-likelihood of the target labels under the 'expected empirical predictor':
    the source head's softmax θ(x) mapped to target labels through P(y | z)."""
    if source_probs is None:
        raise ValueError("leep needs the source head's probabilities")
    theta = np.asarray(source_probs, np.float64)
    y = _onehot(np.asarray(labels))
    joint = theta.T @ y / len(theta)  # P(z, y)
    cond = joint / np.maximum(joint.sum(1, keepdims=True), 1e-300)  # P(y | z)
    eep = theta @ cond  # n × classes
    return float(np.mean(np.log(np.maximum(np.sum(eep * y, 1), 1e-300))))


# --- baselines a fair comparison needs ------------------------------------------------------


@ESTIMATORS.register("knn", needs=(), reference="baseline: leave-one-out k-NN accuracy")
def knn(features: np.ndarray, labels: np.ndarray, k: int = 5, **_) -> float:
    """Leave-one-out accuracy of a k-NN vote (cosine similarity on standardized features; ties
    to the lowest label), a baseline that studies find often matches the estimators."""
    f = np.asarray(features, np.float64)
    if len(f) < 2:
        raise NotApplicable("leave-one-out k-NN needs two train examples")
    if not np.ptp(f, axis=0).any():  # collapsed: every similarity equal, the neighbours by index
        raise NotApplicable("the features are the same for every train example")
    k = min(k, len(f) - 1)  # with k = n the left-out example would vote for itself
    f = (f - f.mean(0)) / np.maximum(f.std(0), 1e-12)
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    y = np.asarray(labels)
    sim = f @ f.T
    np.fill_diagonal(sim, -np.inf)
    nearest = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    votes = _onehot(y[nearest].ravel(), int(y.max()) + 1).reshape(len(y), k, -1).sum(1)
    return float(np.mean(votes.argmax(1) == y))


@ESTIMATORS.register("probe", needs=("val",), reference="baseline: a linear probe's validation accuracy")
def probe(
    features: np.ndarray,
    labels: np.ndarray,
    val_features: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
    **_,
) -> float:
    """Validation accuracy of a logistic regression on standardized train features (scikit-learn,
    lbfgs: deterministic)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if val_features is None or val_labels is None:
        raise ValueError("probe needs validation features and labels")
    if len(np.unique(labels)) < 2:
        raise NotApplicable("the train split has one class: no classifier to fit")
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    clf.fit(np.asarray(features, np.float64), np.asarray(labels))
    return float(clf.score(np.asarray(val_features, np.float64), np.asarray(val_labels)))


# --- how far a ranking can be trusted --------------------------------------------------------


def agreement(scores: list[float], truth: list[float], n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """How well ``scores`` rank backbones against their fine-tuned ``truth`` (both higher is
    better): weighted Kendall's τ (hyperbolic weights: swaps among the top count most; scipy),
    Spearman's ρ, whether the top-scored backbone is the truly best (ties in the truth: any
    best; m backbones tied for the top score: the share of them that are best), and a
    95 % percentile bootstrap interval of τ over backbones — none (NaN) for fewer than four:
    with three, every resample that can rank is the three themselves, a zero-width interval."""
    import warnings

    from scipy.stats import ConstantInputWarning, spearmanr, weightedtau

    s, t = np.asarray(scores, np.float64), np.asarray(truth, np.float64)
    with warnings.catch_warnings():  # scores all alike: ρ is NaN, and the report says so
        warnings.simplefilter("ignore", ConstantInputWarning)
        out = {
            "tau_w": float(weightedtau(s, t).statistic),
            "spearman": float(spearmanr(s, t).statistic),
            "top1": float(np.mean(t[s == s.max()] == t.max())),  # a tie at the top: its share of hits
        }
    rng = np.random.default_rng(seed)
    taus = []
    for _ in range(n_boot if len(s) >= 4 else 0):
        idx = rng.integers(0, len(s), len(s))
        if len(set(idx)) > 2 and np.ptp(s[idx]) > 0 and np.ptp(t[idx]) > 0:
            taus.append(weightedtau(s[idx], t[idx]).statistic)
    out["tau_w_low"], out["tau_w_high"] = (
        (float(np.quantile(taus, 0.025)), float(np.quantile(taus, 0.975))) if taus else (math.nan, math.nan)
    )
    return out
