"""Numbers behind a PolicyReport: per-prompt outcomes, paired bootstrap, RouteLLM's curves."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..base._errors import InputError
from ._matrix import Matrix

# Resample in chunks of ~1.6M cells: counts stay ~13 MB, near the CPU caches (bincount scatters
# at random into them; 4M-cell chunks measured ~40 % slower on the 2-core VM).
_CHUNK_CELLS = 1_600_000
# Above this many prompts the resampled sums are drawn from their normal limit (same mean and
# covariance as the bootstrap's): at 20,000+ prompts of bounded scores and costs the two agree to
# about 0.1 % of an interval's width (Berry–Esseen), and drawing B × n indices would dominate.
EXACT_BOOTSTRAP_MAX_PROMPTS = 20_000


@dataclass
class Outcome:
    """What one policy did, per prompt."""

    tried: np.ndarray       # prompts × depth model indices, -1 padded
    served: np.ndarray      # model index whose answer is served
    cost: np.ndarray
    latency: np.ndarray
    quality: np.ndarray
    failed: np.ndarray      # the served answer is an error row
    calls: np.ndarray       # calls per model (len = number of models)


def outcome(mx: Matrix, tried: np.ndarray) -> Outcome:
    tried = np.asarray(tried, dtype=np.int64).reshape(mx.n, -1)
    valid = tried >= 0
    if not valid[:, 0].all():
        raise InputError("a policy must call at least one model per prompt")
    safe = np.where(valid, tried, 0)
    rows = np.arange(mx.n)[:, None]
    cost = np.where(valid, mx.cost[rows, safe], 0.0).sum(axis=1)
    latency = np.where(valid, mx.latency[rows, safe], 0.0).sum(axis=1)
    served = safe[np.arange(mx.n), valid.sum(axis=1) - 1]
    at = (np.arange(mx.n), served)
    calls = np.bincount(tried[valid], minlength=len(mx.models))
    return Outcome(tried, served, cost, latency, mx.score[at], mx.error[at], calls)


def bootstrap_sums(values: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Column sums of ``values`` (prompts × k) over ``n_boot`` paired resamples of the prompts:
    exact resampling up to :data:`EXACT_BOOTSTRAP_MAX_PROMPTS` prompts, their normal limit above."""
    if values.shape[0] > EXACT_BOOTSTRAP_MAX_PROMPTS:
        return _normal_sums(values, n_boot, seed)
    return _resampled_sums(values, n_boot, seed)


def bootstrap_method(n: int) -> str:
    return ("paired percentile bootstrap over prompts" if n <= EXACT_BOOTSTRAP_MAX_PROMPTS else
            "paired bootstrap over prompts, sums drawn from their normal limit (n > "
            f"{EXACT_BOOTSTRAP_MAX_PROMPTS:,})")


def _normal_sums(values: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Draws of the column sums from N(n·mean, n·cov): the bootstrap's own limit distribution."""
    n, k = values.shape
    known = np.isfinite(values).all(axis=0)          # a column with an unknown (NaN) cost stays NaN
    out = np.full((n_boot, k), np.nan)
    if not known.any():
        return out
    part = values[:, known]
    cov = np.atleast_2d(np.cov(part, rowvar=False, bias=True))
    w, v = np.linalg.eigh(cov)
    root = v * np.sqrt(np.clip(w, 0, None))          # cov = root @ root.T, even when singular
    z = np.random.default_rng(seed).standard_normal((n_boot, part.shape[1]))
    out[:, known] = part.sum(axis=0) + np.sqrt(n) * (z @ root.T)
    return out


def _resampled_sums(values: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Column sums of ``values`` (prompts × k) over ``n_boot`` resamples of the prompts.

    Resamples are index matrices (percentile bootstrap, prompts drawn with replacement); each
    chunk turns its indices into per-prompt counts so one matrix product sums every column.
    Counts and values go through the product in float32 (counts are small integers, exact;
    sums keep ~7 significant digits, far below the resampling spread), which halves the time.
    """
    n, k = values.shape
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, k))
    scale = np.where(np.isfinite(values), np.abs(values), 0).max(axis=0)
    scale[scale == 0] = 1.0
    scaled = (values / scale).astype(np.float32)     # NaN columns stay NaN (unknown prices)
    chunk = max(1, min(n_boot, _CHUNK_CELLS // max(n, 1)))
    dtype = np.int32 if n < 2**31 else np.int64
    for start in range(0, n_boot, chunk):
        c = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(c, n), dtype=dtype)
        idx += (np.arange(c, dtype=dtype) * n)[:, None]
        counts = np.bincount(idx.ravel(), minlength=c * n).reshape(c, n).astype(np.float32)
        out[start:start + c] = counts @ scaled
    return out * scale


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-method bounds along axis 0 (a column with NaN, e.g. an unknown price, stays NaN)."""
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(samples, [tail, 100 - tail], axis=0)
    return lo, hi


# --- RouteLLM: threshold sweep, PGR, APGR, CPT ------------------------------------------------

def threshold_sweep(feature: np.ndarray, weak: Outcome, strong: Outcome, points: int = 101) -> dict:
    """Quality and cost of ``feature ≥ t → strong`` for t over the feature's quantiles.

    t = +inf (all weak) and the smallest value (every prompt with a known feature strong) are
    always included. A prompt whose feature is unknown (NaN) goes to weak at every threshold, as
    :class:`Threshold` routes it — so with unknown features the curve stops short of share 1:
    it shows what the policy can reach, not more.
    """
    f = np.where(np.isnan(feature), -np.inf, feature)
    order = np.argsort(f, kind="stable")
    fs = f[order]
    gain_q = np.concatenate([[0.0], np.cumsum((strong.quality - weak.quality)[order][::-1])])
    gain_c = np.concatenate([[0.0], np.cumsum((strong.cost - weak.cost)[order][::-1])])
    finite = fs[np.isfinite(fs)]
    qs = np.quantile(finite, np.linspace(0, 1, points)) if finite.size else np.array([])
    thresholds = np.unique(np.concatenate([qs, [np.inf]]))[::-1]
    n = len(f)
    n_strong = n - np.searchsorted(fs, thresholds, side="left")
    quality = (weak.quality.sum() + gain_q[n_strong]) / n
    cost = weak.cost.sum() + gain_c[n_strong]
    return {"threshold": thresholds, "strong_share": n_strong / n, "quality": quality,
            "cost_usd": cost, "cost_per_1k_usd": cost / n * 1000}


def pgr(quality: np.ndarray, q_weak: float, q_strong: float) -> np.ndarray:
    """Performance gap recovered: (q − q_weak) / (q_strong − q_weak); NaN when the gap is 0."""
    gap = q_strong - q_weak
    if not np.isfinite(gap) or gap == 0:
        return np.full(np.shape(quality), np.nan)
    return (np.asarray(quality, dtype=float) - q_weak) / gap


def apgr(share: np.ndarray, pgr_values: np.ndarray) -> float:
    """Area under PGR over the strong-call share (trapezoids, share sorted ascending)."""
    order = np.argsort(share, kind="stable")
    x, y = np.asarray(share)[order], np.asarray(pgr_values)[order]
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2)) if len(x) > 1 else float("nan")


def cpt(share: np.ndarray, pgr_values: np.ndarray, target: float) -> float:
    """Smallest strong-call share at which the curve first reaches ``target`` PGR (linear
    interpolation inside the crossing segment; equals RouteLLM's np.interp when PGR rises
    monotonically)."""
    order = np.argsort(share, kind="stable")
    x, y = np.asarray(share)[order], np.asarray(pgr_values)[order]
    hit = np.flatnonzero(y >= target)
    if not hit.size:
        return float("nan")
    i = hit[0]
    if i == 0 or y[i] == y[i - 1]:
        return float(x[i])
    return float(x[i - 1] + (target - y[i - 1]) * (x[i] - x[i - 1]) / (y[i] - y[i - 1]))


def optimal_curve(weak: Outcome, strong: Outcome) -> tuple[np.ndarray, np.ndarray]:
    """Best reachable mean quality per strong share (RouteLLM's ``get_optimal_accuracy``):
    spend strong calls on the prompts where strong beats weak by most, never on the others."""
    gain = np.sort(np.clip(strong.quality - weak.quality, 0, None))[::-1]
    n = len(gain)
    share = np.arange(n + 1) / n
    quality = (weak.quality.sum() + np.concatenate([[0.0], np.cumsum(gain)])) / n
    return share, quality


def point_summary(mx: Matrix, out: Outcome) -> dict:
    """Point estimates of one outcome (no reference, no intervals)."""
    n, calls = mx.n, int(out.calls.sum())
    return {
        "requests": n, "calls_per_request": calls / n,
        "total_cost_usd": float(out.cost.sum()), "cost_per_1k_usd": float(out.cost.sum() / n * 1000),
        "quality": float(out.quality.mean()),
        "latency_p50_s": _percentile(out.latency, 50), "latency_p95_s": _percentile(out.latency, 95),
        "failed_pct": 100 * float(out.failed.mean()),
        **{f"share_{m}": int(c) / calls for m, c in zip(mx.models, out.calls, strict=True)},
    }


def _percentile(values: np.ndarray, q: float) -> float:
    finite = values[np.isfinite(values)]
    return float(np.percentile(finite, q)) if finite.size else float("nan")


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for ``labels`` (True = positive): the chance that a
    random positive scores above a random negative, ties counting half (Mann–Whitney U / n₊n₋).
    Scores that are not finite are left out; NaN without both classes."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    keep = np.isfinite(s)
    s, y = s[keep], y[keep]
    pos, neg = int(y.sum()), int((~y).sum())
    if not pos or not neg:
        return float("nan")
    ranks = pd.Series(s).rank(method="average").to_numpy()
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))
