"""Intervals and tests for shares and mean scores that stay valid near 0 and 1.

A percentile bootstrap of a share with no observed failure resamples nothing but successes: its
interval is [1, 1] and its p-value 1/(B+1), whatever the sample size — "95 % certain of 100 %"
from 8 labels. The score (Wilson) construction evaluates the variance at the hypothesised value
instead of the observed one, so it never has zero width from a finite sample, and its coverage is
close to nominal even at n = 16 (Agresti & Coull 1998; Newcombe 1998).

* :func:`wilson` — a share, or the mean of scores in [0, 1] (fractional "successes"): the
  Bernoulli variance p(1 − p) is the largest variance any [0, 1] variable of mean p can have, so
  for graded scores the interval is conservative, for 0/1 scores it is Wilson's.
* :func:`paired_score_p` / :func:`paired_score_bound` — the mean of paired differences
  d = q(R) − q(ref) in [−1, 1]: Tango's (1998) score test for a difference of paired proportions
  (the restricted maximum-likelihood variance under H0 Δ = Δ0 of the trinomial gain / tie / loss),
  with fractional counts b = Σ max(d, 0), c = Σ max(−d, 0). Var(d) ≤ E|d| − Δ² with equality for
  d ∈ {−1, 0, 1}, so graded scores again get a conservative test. With no observed loss the test is
  not degenerate: 0 losses in n prompts rejects "loss ≥ M" only when √(nM / (1 − M)) clears the
  normal quantile (30 prompts cannot show a loss below 0.05; 0 losses in 200 can show < 0.02).
  Tango's test is asymptotic: with no gains it exceeds its size (6.9 % for "0 losses in 52" at
  0.05, exactly 0.95⁵² = 0.069). So where a column's differences are all −1 or 0 (every router on
  preferences, whose reference scores 1), its p-value and bound are the exact binomial ones
  (Clopper–Pearson) of its loss count instead, which keep their size at every n.
"""
from __future__ import annotations

from math import erf, exp, lgamma, log, sqrt
from statistics import NormalDist

import numpy as np


def wilson(successes, n, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided Wilson score interval of a share ``successes / n`` (arrays broadcast; successes
    may be fractional — a sum of [0, 1] scores); NaN where n = 0."""
    s = np.asarray(successes, dtype=float)
    n = np.asarray(n, dtype=float)
    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.clip(s / n, 0.0, 1.0)
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        lo, hi = np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)
    bad = ~(n > 0)
    return np.where(bad, np.nan, lo), np.where(bad, np.nan, hi)


def _counts(d: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    d = np.clip(np.asarray(d, dtype=float), -1.0, 1.0)
    if d.ndim == 1:
        d = d[:, None]
    return np.clip(d, 0, None).sum(axis=0), np.clip(-d, 0, None).sum(axis=0), d.shape[0]


def _z(b: np.ndarray, c: np.ndarray, n: int, delta0: np.ndarray) -> np.ndarray:
    """Tango's score statistic of H0 "mean difference = delta0" (per column)."""
    delta0 = np.minimum(np.maximum(np.asarray(delta0, dtype=float), -1 + 1e-12), 1 - 1e-12)
    a = 2.0 * n
    bq = -(b + c) - (b - c) * delta0 + 2.0 * n * delta0
    cq = -c * delta0 * (1 - delta0)
    root = (-bq + np.sqrt(np.maximum(bq * bq - 4 * a * cq, 0.0))) / (2 * a)
    lo, hi = np.maximum(0.0, -delta0), (1 - delta0) / 2          # p_loss's feasible range under H0
    loss = np.minimum(np.maximum(root, lo), hi)
    var = np.maximum(2 * loss + delta0 - delta0 ** 2, 0.0)         # p_gain + p_loss − Δ0²
    est = (b - c) / n
    gap = est - delta0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = gap / np.sqrt(var / n)
    edge = np.where(gap > 0, np.inf, np.where(gap < 0, -np.inf, 0.0))
    return np.where(var > 0, z, edge)


def _binom_cdf(k: int, n: int, p: float) -> float:
    """P(Binomial(n, p) ≤ k), summed in log space (no scipy needed; any n)."""
    if k >= n or p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 0.0
    terms = [lgamma(n + 1) - lgamma(i + 1) - lgamma(n - i + 1) + i * log(p) + (n - i) * log(1 - p)
             for i in range(k + 1)]
    top = max(terms)
    return min(1.0, exp(top) * sum(exp(t - top) for t in terms))


def _exact_columns(d) -> tuple[np.ndarray, np.ndarray]:
    """Which columns have no gain and whole losses only (d ∈ {−1, 0}), and their loss counts."""
    d = np.asarray(d, dtype=float)
    if d.ndim == 1:
        d = d[:, None]
    exact = ((d == 0) | (d == -1)).all(axis=0)
    return exact, (d == -1).sum(axis=0)


def paired_score_p(d, delta0: float) -> np.ndarray:
    """One-sided p-value of H0 "mean(d) ≤ delta0" for paired differences ``d`` in [−1, 1]
    (prompts × policies, or one vector): Tango's score test, fractional counts; the exact binomial
    test of the loss count for a column with no gain and whole losses only."""
    b, c, n = _counts(d)
    if n == 0:
        return np.full(b.shape, np.nan)
    p = 1 - _ncdf(_z(b, c, n, np.full(b.shape, float(delta0))))
    exact, losses = _exact_columns(d)
    if delta0 < 0:
        for j in np.flatnonzero(exact):   # H0: a loss rate of at least −delta0; few losses reject it
            p[j] = _binom_cdf(int(losses[j]), n, -float(delta0))
    return p


def paired_score_bound(d, q: float, *, upper: bool = False) -> np.ndarray:
    """One-sided score bound of mean(d) at error ``q``: the lower bound (``upper``: the upper one)
    is the Δ0 at which the test of "mean ≤ Δ0" (≥ Δ0) has p = q, found by bisection — so the lower
    bound clears −M exactly when :func:`paired_score_p` (d, −M) < q."""
    b, c, n = _counts(d)
    if n == 0:
        return np.full(b.shape, np.nan)
    z = NormalDist().inv_cdf(1 - q)
    est = (b - c) / n
    lo, hi = (est.copy(), np.ones_like(est)) if upper else (-np.ones_like(est), est.copy())
    for _ in range(45):          # the interval [−1, 1] halved 45 times: 6e-14
        mid = (lo + hi) / 2
        stat = _z(b, c, n, mid)
        reject = stat < -z if upper else stat > z     # mid is ruled out
        if upper:
            lo, hi = np.where(reject, lo, mid), np.where(reject, mid, hi)
        else:
            lo, hi = np.where(reject, mid, lo), np.where(reject, hi, mid)
    bound = hi if upper else lo
    if not upper:
        exact, losses = _exact_columns(d)
        for j in np.flatnonzero(exact):
            bound[j] = -_clopper_pearson_upper(int(losses[j]), n, q)
    return bound


def _clopper_pearson_upper(k: int, n: int, q: float) -> float:
    """The loss rate p at which P(Binomial(n, p) ≤ k) = q: the exact one-sided upper bound, so the
    lower bound −p clears −M exactly when the exact test of "loss ≥ M" has p-value < q."""
    if k >= n:
        return 1.0
    lo, hi = k / n, 1.0
    for _ in range(50):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _binom_cdf(k, n, mid) > q else (lo, mid)
    return hi


def paired_score_interval(d, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided score interval of mean(d) (each side at (1 − level) / 2)."""
    q = (1 - level) / 2
    return paired_score_bound(d, q), paired_score_bound(d, q, upper=True)


_ERF = np.frompyfunc(erf, 1, 1)


def _ncdf(z: np.ndarray) -> np.ndarray:
    """The standard normal CDF, elementwise (math.erf: no scipy needed; ±inf → 1 / 0)."""
    z = np.asarray(z, dtype=float)
    return (0.5 * (1 + _ERF(np.nan_to_num(z, posinf=40.0, neginf=-40.0) / sqrt(2)).astype(float)))
