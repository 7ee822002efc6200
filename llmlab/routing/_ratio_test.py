"""A one-sided test and bound for the ratio of two paired sums: the claim's savings side.

Savings = 1 − Σa / Σb (a: a router's per-prompt spend, b: the reference's, the same prompts), so
"savings > S %" is "ratio < r0 = 1 − S/100" and its null's boundary is E[a] − r0·E[b] = 0: a mean
of the per-prompt values z = a − r0·b, tested by Student's t with n − 1 degrees of freedom
(Fieller 1954). The ratio itself is never resampled: a percentile bootstrap of Σa*/Σb* held
7.8 % of claims whose true savings were exactly S (30 prompts, lognormal costs) for a stated 5 %,
because the ratio's skewness leaks into its percentiles, while z at the boundary has mean 0 and,
for a router and reference whose costs vary alike, a symmetric distribution — where t is exact or
conservative. Where the router's cost is the more right-skewed (a free model that escalates a few
prompts, a router of varied cost against a fixed price), a sample that missed its rare expensive
prompts looks cheap and t rejects too often: Hall's (1992) transformation of t corrects for the
skewness of the ratio's influence values, in that direction only. Whole 0/1 calls at one constant
reference price (savings on strong-model calls, when costs are unknown) are a binomial share:
the exact test and the Clopper–Pearson bound. Sizes at the boundary, 4,000 simulations a cell,
20–300 prompts: bench/bench_claim_savings.py (≤ 5 % within Monte-Carlo error but for a router
far more skewed than its reference: 10 % at 30 prompts where the bootstrap held 16 %).

The bound inverts the same test (Fieller's quadratic at the corrected critical value), so
"savings_lo > S" ⟺ "p < q". Where the reference's own mean is not clear of 0 at that level
(√n·mean(b)/sd(b) below the critical t: costs so heavy-tailed that the ratio is unbounded) no
savings are certified: the p-value is the largest over every ratio beyond r0, which also keeps
the p-value monotone in S.
"""
from __future__ import annotations

from math import exp, lgamma, log, log1p, pi
from statistics import NormalDist

import numpy as np

from ..base._intervals import _binom_cdf, _clopper_pearson_upper

# |z̄| or sd below this share of the costs' scale is rounding, not a difference (a router whose
# per-prompt cost is exactly r0 × the reference's has z ≡ 0 up to float error: no evidence either way).
_RELATIVE_ZERO = 1e-12
# Degrees of freedom beyond this are capped (the series has df/2 terms): t with 5,000 df is
# heavier-tailed than with more, so the cap is conservative, by 2e-4 of a 95 % quantile.
_MAX_DF = 5000


def savings_p(spend: np.ndarray, ref_spend: np.ndarray, min_savings_pct: float, *,
              upper: bool = False) -> np.ndarray:
    """One-sided p-value per column of ``spend`` (prompts × policies) of H0 "savings ≤ S"
    (``upper``: "savings ≥ S"); NaN spend or fewer than 2 prompts give p = 1."""
    m = _moments(spend, ref_spend)
    if m["n"] < 2:
        return np.ones(np.shape(spend)[1])
    r0 = 1 - min_savings_pct / 100
    p = student_cdf(_hall(_worst_t(m, r0, upper), -m["skew"] if upper else m["skew"], m["n"]), _df(m["n"]))
    exact, calls = _whole_calls(spend, ref_spend)
    for j in np.flatnonzero(exact):      # H0: a share of at least r0 of the prompts escalated
        k = int(calls[j])
        p[j] = (1.0 if k == 0 else 1 - _binom_cdf(k - 1, m["n"], r0)) if upper else _binom_cdf(k, m["n"], r0)
    return np.where(m["ok"], p, 1.0)


def savings_bound(spend: np.ndarray, ref_spend: np.ndarray, q: float) -> np.ndarray:
    """Lower bound of the savings (%) at error ``q`` per column: 100 × (1 − the upper Fieller
    root at the skewness-corrected critical t), −inf when the reference's mean is not clear of 0,
    NaN with unknown spend."""
    m = _moments(spend, ref_spend)
    if m["n"] < 2:
        return np.full(spend.shape[1], np.nan)
    c = student_quantile(1 - q, _df(m["n"]))
    crit = np.maximum(c, -_hall_inverse(-c, m["skew"], m["n"]))     # reject where t < −crit
    k = crit ** 2 / m["n"]
    lead = m["b"] ** 2 - k * m["bb"]
    half = m["a"] * m["b"] - k * m["ab"]
    with np.errstate(divide="ignore", invalid="ignore"):
        disc = np.maximum(half * half - lead * (m["a"] ** 2 - k * m["aa"]), 0.0)
        root = (half + np.sign(crit) * np.sqrt(disc)) / lead     # crit < 0 (q > 1/2): below the estimate
    lo = np.where(lead > 0, 100 * (1 - root), -np.inf)
    exact, calls = _whole_calls(spend, ref_spend)
    for j in np.flatnonzero(exact):
        lo[j] = 100 * (1 - _clopper_pearson_upper(int(calls[j]), m["n"], q))
    return np.where(m["ok"], lo, np.nan)


def _worst_t(m: dict, r0: float, upper: bool) -> np.ndarray:
    """The largest t of H0 over every ratio beyond r0 (``upper``: the largest −t below it), so a
    p-value never falls as the claim grows. t(r) has at most one turning point (its derivative's
    numerator is linear in r) and tends to ∓√n·mean(b)/sd(b) as r → ±∞."""
    t = _t(m, r0)
    with np.errstate(divide="ignore", invalid="ignore"):
        limit = np.where(m["bb"] > 0, -np.sqrt(m["n"]) * m["b"] / np.sqrt(m["bb"]), -np.inf)
        slope = m["b"] * m["ab"] - m["a"] * m["bb"]
        turn = (m["b"] * m["aa"] - m["a"] * m["ab"]) / slope
    # slope < 0: a maximum of t at turn (below the estimate); > 0: a minimum (above it)
    inside = (slope > 0) & (r0 > turn) if upper else (slope < 0) & (r0 < turn)
    at_turn = _t(m, np.where(inside, turn, r0))
    return np.where(inside, -at_turn if upper else at_turn, np.maximum(-t if upper else t, limit))


def _t(m: dict, r0) -> np.ndarray:
    """Student's t of mean(a − r0·b) per column (±inf with no spread, 0 at no difference)."""
    zbar = m["a"] - r0 * m["b"]
    sd = np.sqrt(np.maximum(m["aa"] - 2 * r0 * m["ab"] + r0 * r0 * m["bb"], 0.0))
    scale = _RELATIVE_ZERO * (np.abs(m["a"]) + np.abs(r0) * np.abs(m["b"]))
    zbar = np.where(np.abs(zbar) <= scale, 0.0, zbar)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(sd > scale, np.sqrt(m["n"]) * zbar / sd, np.sign(zbar) * np.inf)
    return np.where(zbar == 0, 0.0, t)


def _hall(t: np.ndarray, skew: np.ndarray, n: int) -> np.ndarray:
    """Hall's (1992) skewness-corrected t, g(t) = t + a·t² + a²·t³/3 + a/2 with a = γ/(3√n),
    applied only against the test (γ > 0, a right tail the sample may have missed; never below t):
    a mean of right-skewed values is too often low, and t then rejects "too expensive" too often."""
    a = np.maximum(skew, 0.0) / (3 * np.sqrt(n))
    with np.errstate(invalid="ignore", over="ignore"):
        g = np.where(np.isfinite(t), t + a * t * t + a * a * t ** 3 / 3 + a / 2, t)
    return np.maximum(t, g)


def _hall_inverse(y: float, skew: np.ndarray, n: int) -> np.ndarray:
    """The t at which g(t) = y (g is monotone: g' = (1 + a·t)²); y where γ ≤ 0 (no correction)."""
    a = np.maximum(skew, 0.0) / (3 * np.sqrt(n))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a > 0, (np.cbrt(3 * a * (y - a / 2) + 1) - 1) / a, y)


def _whole_calls(spend: np.ndarray, ref_spend: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Columns whose every prompt costs 0 or exactly the reference's one constant cost (savings
    on strong-model calls, the basis when costs are unknown), and their count of such calls:
    a binomial share, tested exactly — t on 0/1 values held 13 % at 30 prompts, S 80 %."""
    a = np.asarray(spend, dtype=float)
    b = np.asarray(ref_spend, dtype=float)
    if not b.size or not (b == b[0]).all() or not b[0] > 0:
        return np.zeros(a.shape[1], dtype=bool), np.zeros(a.shape[1])
    return ((a == 0) | (a == b[0])).all(axis=0), (a == b[0]).sum(axis=0)


def _df(n: int) -> int:
    return min(n - 1, _MAX_DF)


def _moments(spend: np.ndarray, ref_spend: np.ndarray) -> dict:
    """Means, (co)variances (n − 1 divisor) of a = spend and b = ref_spend, the skewness of the
    ratio's influence values; ``ok``: columns with every spend known and at least 2 prompts."""
    a = np.asarray(spend, dtype=float)
    b = np.asarray(ref_spend, dtype=float)[:, None]
    n = a.shape[0]
    ok = np.isfinite(a).all(axis=0) & bool(np.isfinite(b).all()) & (n >= 2)
    a = np.where(np.isfinite(a), a, 0.0)
    b = np.where(np.isfinite(b), b, 0.0)
    da, db = a - a.mean(axis=0), b - b.mean(axis=0)
    div = max(n - 1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = a - a.sum(axis=0) / b.sum() * b          # the ratio's influence values (mean 0)
        u2 = u * u
        m2 = u2.mean(axis=0)
        skew = np.where(m2 > 0, (u2 * u).mean(axis=0) / m2 ** 1.5, 0.0)
    return {"n": n, "ok": ok, "a": a.mean(axis=0), "b": b.mean(axis=0), "aa": (da * da).sum(axis=0) / div,
            "bb": (db * db).sum(axis=0) / div, "ab": (da * db).sum(axis=0) / div,
            "skew": np.nan_to_num(skew)}


def student_cdf(t: np.ndarray, df: int) -> np.ndarray:
    """Student's t CDF for an integer df ≥ 1, elementwise: the finite series of Abramowitz &
    Stegun 26.7.3–4 (exact, no scipy needed); ±inf → 1 / 0."""
    t = np.asarray(t, dtype=float)
    finite = np.where(np.isfinite(t), t, 0.0)
    theta = np.arctan(finite / np.sqrt(df))
    c2 = np.cos(theta) ** 2
    j = np.arange(1, max((df - 2) // 2, 0) + 1)[:, None]     # the series' terms after its first
    if df % 2:
        ratios = 2 * j / (2 * j + 1)
        series = 1 + np.cumprod(ratios * c2.reshape(1, -1), axis=0).sum(axis=0).reshape(t.shape)
        signed = (2 / pi) * (theta + (np.sin(theta) * np.cos(theta) * series if df > 1 else 0.0))
    else:
        ratios = (2 * j - 1) / (2 * j)
        signed = np.sin(theta) * (1 + np.cumprod(ratios * c2.reshape(1, -1), axis=0).sum(axis=0).reshape(t.shape))
    out = (1 + signed) / 2
    return np.where(np.isposinf(t), 1.0, np.where(np.isneginf(t), 0.0, np.clip(out, 0.0, 1.0)))


def student_quantile(prob: float, df: int) -> float:
    """The t quantile at ``prob`` ∈ (0, 1): Newton's method on :func:`student_cdf` from the
    normal quantile, which is below it (the CDF is concave above 0: the steps approach from below)."""
    if prob < 0.5:
        return -student_quantile(1 - prob, df)
    t = NormalDist().inv_cdf(prob)
    log_norm = lgamma((df + 1) / 2) - lgamma(df / 2) - 0.5 * log(df * pi)
    for _ in range(50):
        density = exp(log_norm - (df + 1) / 2 * log1p(t * t / df))
        step = (prob - float(student_cdf(np.array([t]), df)[0])) / density
        t += step
        if abs(step) <= 1e-13 * max(1.0, abs(t)):
            break
    return t
