"""Numbers behind a PolicyReport: per-prompt outcomes, paired bootstrap, RouteLLM's curves."""
from __future__ import annotations

from collections.abc import Sequence
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
    spend: np.ndarray       # what savings are computed on: cost, or calls to the strong model (Matrix.spend)


def outcome(mx: Matrix, tried: np.ndarray) -> Outcome:
    tried = np.asarray(tried, dtype=np.int64).reshape(mx.n, -1)
    valid = tried >= 0
    if not valid[:, 0].all():
        raise InputError("a policy must call at least one model per prompt")
    safe = np.where(valid, tried, 0)
    rows = np.arange(mx.n)[:, None]
    cost = np.where(valid, mx.cost[rows, safe], 0.0).sum(axis=1)
    spend = np.where(valid, mx.spend[rows, safe], 0.0).sum(axis=1)
    latency = np.where(valid, mx.latency[rows, safe], 0.0).sum(axis=1)
    served = safe[np.arange(mx.n), valid.sum(axis=1) - 1]
    at = (np.arange(mx.n), served)
    calls = np.bincount(tried[valid], minlength=len(mx.models))
    return Outcome(tried, served, cost, latency, mx.score[at], mx.error[at], calls, spend)


def spend_of(mx: Matrix, cost: np.ndarray, calls_spend: np.ndarray) -> np.ndarray:
    """What savings are computed on for a policy that bills more than its cells (samples): its
    ``cost`` when every cost is known, else its calls' :attr:`Matrix.spend` (``calls_spend``)."""
    return cost if mx.cost_known else calls_spend


@dataclass
class Binned:
    """Per-prompt weights to be summed per bin under each resample: ``bins`` (n,) ints in
    ``[0, size)``, ``weights`` (n × w). A threshold sweep's curve is cumulative sums of these."""

    bins: np.ndarray
    size: int
    weights: np.ndarray


def bootstrap_sums(values: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Column sums of ``values`` (prompts × k) over ``n_boot`` paired resamples of the prompts."""
    return paired_sums(values, n_boot, seed)[0]


def paired_sums(values: np.ndarray, n_boot: int, seed: int,
                binned: Sequence[Binned] = ()) -> tuple[np.ndarray, list[np.ndarray]]:
    """Column sums of ``values`` (B × k) and, for each :class:`Binned` block, its per-bin sums
    (B × size × w), all over the *same* resamples of the prompts: exact resampling up to
    :data:`EXACT_BOOTSTRAP_MAX_PROMPTS` prompts, their joint normal limit above. The column
    sums do not depend on the blocks (adding a block never moves them)."""
    if values.shape[0] > EXACT_BOOTSTRAP_MAX_PROMPTS:
        return _normal_sums(values, n_boot, seed, binned)
    return _resampled_sums(values, n_boot, seed, binned)


def bootstrap_method(n: int) -> str:
    return ("paired percentile bootstrap over prompts" if n <= EXACT_BOOTSTRAP_MAX_PROMPTS else
            "paired bootstrap over prompts, sums drawn from their normal limit (n > "
            f"{EXACT_BOOTSTRAP_MAX_PROMPTS:,})")


def _normal_sums(values: np.ndarray, n_boot: int, seed: int,
                 binned: Sequence[Binned] = ()) -> tuple[np.ndarray, list[np.ndarray]]:
    """Draws of the column sums from N(n·mean, n·cov): the bootstrap's own limit distribution.
    Each block's bin sums are drawn from their normal limit *given* the column sums' draw, so
    they stay paired with them."""
    n, k = values.shape
    known = np.isfinite(values).all(axis=0)          # a column with an unknown (NaN) cost stays NaN
    out = np.full((n_boot, k), np.nan)
    rng = np.random.default_rng(seed)
    part = values[:, known]
    cov = np.atleast_2d(np.cov(part, rowvar=False, bias=True)) if known.any() else np.zeros((0, 0))
    deviation = np.zeros((n_boot, 0))
    if known.any():
        z = rng.standard_normal((n_boot, part.shape[1]))
        deviation = np.sqrt(n) * (z @ _root(cov).T)
        out[:, known] = part.sum(axis=0) + deviation
    return out, [_conditional_bins(b, part, cov, deviation, rng) for b in binned]


def _root(cov: np.ndarray) -> np.ndarray:
    """A matrix R with R @ R.T = cov, even when cov is singular (clipped eigenvalues)."""
    w, v = np.linalg.eigh(cov)
    return v * np.sqrt(np.clip(w, 0, None))


def _cholesky_root(cov: np.ndarray) -> np.ndarray:
    """:func:`_root` by Cholesky — 5x faster than eigh on a sweep's ~300 bin columns. Columns of
    no variance (an empty bin) stay exactly 0; the directions the conditioning made exact get a
    jitter of 1e-10 of the mean variance (it moves a draw by ~1e-5 of a standard deviation);
    eigh if that still fails."""
    diag = np.diag(cov)
    live = diag > 1e-14 * max(float(diag.max(initial=0.0)), 1e-300)
    root = np.zeros_like(cov)
    if not live.any():
        return root
    part = cov[np.ix_(live, live)]
    try:
        root[np.ix_(live, live)] = np.linalg.cholesky(part + 1e-10 * float(np.mean(np.diag(part))) * np.eye(len(part)))
    except np.linalg.LinAlgError:
        return _root(cov)
    return root


def _pinv(cov: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(cov)
    keep = w > (w.max() if w.size else 0.0) * 1e-10 * max(len(w), 1)
    return (v[:, keep] / w[keep]) @ v[:, keep].T


def _conditional_bins(block: Binned, part: np.ndarray, cov11: np.ndarray, deviation: np.ndarray,
                      rng: np.random.Generator) -> np.ndarray:
    """One block's bin sums (B × size × w) from their normal limit given the column sums' draw:
    mean + Σ21 Σ11⁺ (drawn − sum) + √n · root(Σ22 − Σ21 Σ11⁺ Σ12) z (moments per prompt, found
    with one bincount per product of columns: each prompt is in one bin)."""
    n, n_boot = len(block.bins), deviation.shape[0]
    weights, size = block.weights, block.size
    w = weights.shape[1]
    if not np.isfinite(weights).all():
        return np.full((n_boot, size, w), np.nan)
    def per_bin(x: np.ndarray) -> np.ndarray:
        return np.bincount(block.bins, weights=x, minlength=size)
    sums = np.column_stack([per_bin(weights[:, a]) for a in range(w)]).ravel()      # bin-major
    mean2 = sums / n
    mean1 = part.mean(axis=0) if part.size else np.zeros(0)
    second = np.zeros((size * w, size * w))
    for a in range(w):
        for b in range(w):
            second[np.arange(size) * w + a, np.arange(size) * w + b] = per_bin(weights[:, a] * weights[:, b]) / n
    cross = np.zeros((size * w, part.shape[1]))
    for a in range(w):
        for c in range(part.shape[1]):
            cross[a::w, c] = per_bin(weights[:, a] * part[:, c]) / n
    s22 = second - np.outer(mean2, mean2)
    s21 = cross - np.outer(mean2, mean1)
    gain = s21 @ _pinv(cov11) if part.shape[1] else np.zeros((size * w, 0))
    z = rng.standard_normal((n_boot, size * w))
    drawn = sums + deviation @ gain.T + np.sqrt(n) * (z @ _cholesky_root(s22 - gain @ s21.T).T)
    return drawn.reshape(n_boot, size, w)


def _resampled_sums(values: np.ndarray, n_boot: int, seed: int,
                    binned: Sequence[Binned] = ()) -> tuple[np.ndarray, list[np.ndarray]]:
    """Column sums of ``values`` (prompts × k) over ``n_boot`` resamples of the prompts.

    Resamples are index matrices (percentile bootstrap, prompts drawn with replacement); each
    chunk turns its indices into per-prompt counts so one matrix product sums every column.
    Counts and values go through the product in float32 (counts are small integers, exact;
    sums keep ~7 significant digits, far below the resampling spread), which halves the time.
    A block's bin sums come from the same counts (cumulative sums over the prompts in bin order).
    """
    n, k = values.shape
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, k))
    scale = np.where(np.isfinite(values), np.abs(values), 0).max(axis=0)
    scale[scale == 0] = 1.0
    scaled = (values / scale).astype(np.float32)     # NaN columns stay NaN (unknown prices)
    chunk = max(1, min(n_boot, _CHUNK_CELLS // max(n, 1)))
    dtype = np.int32 if n < 2**31 else np.int64
    blocks = [(np.argsort(b.bins, kind="stable"), b) for b in binned]
    binned_out = [np.empty((n_boot, b.size, b.weights.shape[1])) for b in binned]
    for start in range(0, n_boot, chunk):
        c = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(c, n), dtype=dtype)
        idx += (np.arange(c, dtype=dtype) * n)[:, None]
        counts = np.bincount(idx.ravel(), minlength=c * n).reshape(c, n).astype(np.float32)
        out[start:start + c] = counts @ scaled
        for (order, block), acc in zip(blocks, binned_out, strict=True):
            acc[start:start + c] = _bin_sums(counts[:, order], block, order)
    return out * scale, binned_out


def _bin_sums(counts: np.ndarray, block: Binned, order: np.ndarray) -> np.ndarray:
    """Per-bin weighted sums (c × size × w) of resample counts given in bin order."""
    ends = np.searchsorted(block.bins[order], np.arange(block.size), side="right")
    sorted_weights = block.weights[order]
    out = np.empty((counts.shape[0], block.size, sorted_weights.shape[1]))
    for a in range(sorted_weights.shape[1]):
        running = np.concatenate([np.zeros((counts.shape[0], 1)),
                                  np.cumsum(counts * sorted_weights[:, a], axis=1, dtype=float)], axis=1)
        at_ends = running[:, ends]
        out[:, :, a] = np.diff(at_ends, axis=1, prepend=0.0)
    return out


def percentile_ci(samples: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-method bounds along axis 0 (a column with NaN, e.g. an unknown price, stays NaN)."""
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(samples, [tail, 100 - tail], axis=0)
    return lo, hi


# --- RouteLLM: threshold sweep, PGR, APGR, CPT ------------------------------------------------

def sweep_thresholds(feature: np.ndarray, points: int) -> np.ndarray:
    """A knob's thresholds, descending: +inf (all weak), then the feature's quantiles down to its
    smallest known value (every prompt with a known feature strong)."""
    finite = feature[np.isfinite(feature)]
    qs = np.quantile(finite, np.linspace(0, 1, points)) if finite.size else np.array([])
    return np.unique(np.concatenate([qs, [np.inf]]))[::-1]


def sweep_bins(feature: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Per prompt, the index of the first (highest) threshold at which ``feature ≥ t`` sends it to
    the strong model; ``len(thresholds)`` when none does (an unknown, NaN, feature)."""
    f = np.where(np.isnan(feature), -np.inf, feature)
    return np.searchsorted(-thresholds, -f, side="left")


def threshold_sweep(feature: np.ndarray, weak: Outcome, strong: Outcome, points: int = 101,
                    reference: Outcome | None = None) -> dict:
    """Quality and cost of ``feature ≥ t → strong`` for t over the feature's quantiles.

    t = +inf (all weak) and the smallest value (every prompt with a known feature strong) are
    always included. A prompt whose feature is unknown (NaN) goes to weak at every threshold, as
    :class:`Threshold` routes it — so with unknown features the curve stops short of share 1:
    it shows what the policy can reach, not more. With ``reference``: also the paired mean
    quality difference from it and its standard error at each threshold (``quality_diff``,
    ``quality_diff_se``), for a conservative choice of the knob.
    """
    feature = np.asarray(feature, dtype=float)
    thresholds = sweep_thresholds(feature, points)
    bins = sweep_bins(feature, thresholds)
    n = len(feature)

    def cum(x: np.ndarray) -> np.ndarray:      # sum of x over the prompts strong at each threshold
        return np.cumsum(np.bincount(bins, weights=x, minlength=len(thresholds) + 1))[:-1]

    n_strong = cum(np.ones(n))
    quality = (weak.quality.sum() + cum(strong.quality - weak.quality)) / n
    cost = weak.cost.sum() + cum(strong.cost - weak.cost)
    out = {"threshold": thresholds, "strong_share": n_strong / n, "quality": quality, "cost_usd": cost,
           "cost_per_1k_usd": cost / n * 1000, "spend": weak.spend.sum() + cum(strong.spend - weak.spend)}
    if reference is not None:
        a, b = weak.quality - reference.quality, strong.quality - reference.quality
        mean = (a.sum() + cum(b - a)) / n
        second = ((a * a).sum() + cum(b * b - a * a)) / n
        out["quality_diff"] = mean
        out["quality_diff_se"] = np.sqrt(np.clip(second - mean ** 2, 0, None) / max(n - 1, 1))
    return out


def ladder_sweep(probs: np.ndarray, mx: Matrix, cols: np.ndarray, points: int = 201,
                 reference: Outcome | None = None) -> dict:
    """:func:`threshold_sweep` for a ladder of models (``cols``, cheapest first) and their
    P(not good enough) (prompts × all but the last): at each threshold t every prompt goes to the
    cheapest model with p < t, the last when none; t from +inf (all the cheapest) down to the
    smallest p (all the last)."""
    probs = np.asarray(probs, dtype=float)
    n = len(probs)
    thresholds = sweep_thresholds(probs.ravel(), points)
    good = probs[:, :, None] < thresholds[None, None, :]
    pick = cols[np.where(good.any(axis=1), good.argmax(axis=1), len(cols) - 1)]       # prompts × thresholds
    rows = np.arange(n)[:, None]
    quality, cost = mx.score[rows, pick], mx.cost[rows, pick]
    out = {"threshold": thresholds, "strong_share": (pick == cols[-1]).mean(axis=0),
           "quality": quality.mean(axis=0), "cost_usd": cost.sum(axis=0),
           "cost_per_1k_usd": cost.sum(axis=0) / n * 1000, "spend": mx.spend[rows, pick].sum(axis=0)}
    if reference is not None:
        diff = quality - reference.quality[:, None]
        out["quality_diff"] = diff.mean(axis=0)
        out["quality_diff_se"] = diff.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(len(thresholds))
    return out


def knob_block(feature: np.ndarray, thresholds: np.ndarray, weak: Outcome, strong: Outcome) -> Binned:
    """What a knob's curve is made of, per prompt: a count, the quality gain of going strong and,
    when every cost is known, the cost of it — binned by the threshold at which it goes strong."""
    columns = [np.ones(len(feature)), strong.quality - weak.quality]
    extra = strong.cost - weak.cost
    if np.isfinite(extra).all():
        columns.append(extra)
    return Binned(sweep_bins(np.asarray(feature, dtype=float), thresholds), len(thresholds) + 1,
                  np.column_stack(columns))


def knob_curves(block_sums: np.ndarray, flip: bool) -> dict[str, np.ndarray]:
    """RouteLLM's curve of a knob from its bin sums (draws × bins × columns; one draw = the point
    estimate): per threshold the strong-call share, PGR and the share of the extra cost spent,
    ascending in share. ``flip``: the knob's strong model is the pair's weaker one."""
    running = np.cumsum(block_sums[:, :-1, :], axis=1)       # the last bin: never strong
    totals = block_sums.sum(axis=1)[:, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        share, gain = running[..., 0] / totals[..., 0], running[..., 1] / totals[..., 1]
        spent = running[..., 2] / totals[..., 2] if block_sums.shape[2] > 2 else np.full(share.shape, np.nan)
    if flip:
        share, gain, spent = (1 - x[:, ::-1] for x in (share, gain, spent))
    return {"share": share, "pgr": gain, "cost_share": spent}


def areas(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Trapezoid areas under each row's curve (x ascending along the row)."""
    if x.shape[1] < 2:
        return np.full(x.shape[0], np.nan)
    with np.errstate(invalid="ignore"):      # a curve with no gap to recover is NaN throughout
        return np.sum(np.diff(x, axis=1) * (y[:, 1:] + y[:, :-1]) / 2, axis=1)


def crossings(x: np.ndarray, y: np.ndarray, target: float) -> np.ndarray:
    """Per row, the x at which y first reaches ``target`` (linear inside the crossing segment, as
    :func:`cpt`); NaN when it never does."""
    hit = y >= target
    i = hit.argmax(axis=1)
    rows = np.arange(x.shape[0])
    before = np.maximum(i - 1, 0)
    x0, y0, x1, y1 = x[rows, before], y[rows, before], x[rows, i], y[rows, i]
    with np.errstate(divide="ignore", invalid="ignore"):
        inside = x0 + (target - y0) * (x1 - x0) / (y1 - y0)
    out = np.where((i == 0) | (y1 == y0), x1, inside)
    return np.where(hit.any(axis=1), out, np.nan)


def pgr(quality: np.ndarray, q_weak: float, q_strong: float) -> np.ndarray:
    """Performance gap recovered: (q − q_weak) / (q_strong − q_weak); NaN when the gap is 0."""
    gap = q_strong - q_weak
    if not np.isfinite(gap) or gap == 0:
        return np.full(np.shape(quality), np.nan)
    return (np.asarray(quality, dtype=float) - q_weak) / gap


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
