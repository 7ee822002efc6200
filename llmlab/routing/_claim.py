"""Testing a routing claim: "router R saves at least S % at a quality loss of at most M".

For each deployable router (not the reference, not a policy that reads the labels such as the
Oracle) two one-sided hypotheses must both be rejected:

* savings:  H0 savings ≤ S          (savings = 1 − cost(R) / cost(reference), in %)
* quality:  H0 q(R) − q(ref) ≤ −M   (an absolute, paired difference of mean scores: a
  non-inferiority margin, not a ratio)

Savings are judged by a t-test of the per-prompt values a − r0·b at the claim's boundary
(a, b: the router's and the reference's spend, r0 = 1 − S/100; Fieller's construction, Hall's
skewness correction, the exact binomial test for 0/1 strong-model calls: ``routing._ratio_test``),
not by the bootstrap: a percentile bootstrap of the ratio Σa*/Σb* held 7.8 % of claims whose true
savings were exactly S (30 prompts, lognormal costs) and 17.9 % for a router that is free except on
the prompts it escalates (S 80 %), for a stated 5 %. Quality is judged by a score test
of the per-prompt paired differences d = q(R) − q(ref) in [−1, 1] (Tango's test for a difference
of paired proportions, fractional counts for graded scores: ``base._intervals``), not by the
bootstrap: near quality 1 — where routing on preferences always is, the reference scoring 1 by
construction — a bootstrap of a sample with no observed loss resamples only zeros, its bound is 0
and its p-value 1/(B+1), so at a true loss equal to the margin it certified 9–22 % of the time
(30–200 prompts) for a stated 5 %. The score test's variance is the one H0 implies (a loss rate of
at least M), so 0 losses in 30 prompts cannot show a loss below 0.05 (0.95³⁰ = 0.21 is no
evidence); its size at the margin is ≤ 5.2 % in simulation (30–200 prompts, with and without
gains); being asymptotic it exceeded 5 % without gains (6.9 %: 0 losses in 52 prompts at 0.05,
exactly 0.95⁵² = 0.069), so a router with no gain and whole losses only (always so on
preferences) gets the exact binomial test and Clopper–Pearson bound instead. For graded scores
the score test is conservative (the 0/1 variance bounds any [0, 1] score's).
A router's p-value is the larger of its two (intersection–union test); Holm's step-down adjusts
across the routers tested, so the chance of wrongly declaring *any* claim true stays ≤ α. The
bounds shown are one-sided at each router's Holm level, so "holds" ⟺ both bounds clear the claim.

**Unknown verdicts.** Prompts whose quality is unknown (a judge gave no verdict) are left out of
the estimates — but "left out" assumes they are missing at random, and a judge fails more on odd
answers. So the claim also bounds the quality with every left-out prompt counted as a loss of the
router (``unknown_pct``, ``quality_diff_lo_unknown_as_loss``): a claim is certified only if that
bound clears the margin too; otherwise "not enough data", and ``why`` says how many were unknown.

An uninformative preference source (``routing.preference_quality``'s evidence: every known
verdict a tie, or a judge whose two orders agree no more often than by position alone) gives every
router "not enough data" (:func:`refuse_uninformative`). On preferences with order-dependent pairs
(the judge's two orders disagreed: a tie by the position rule) the claim is certified only if it
also holds with each such pair as a loss (``PolicyReport.worst_order``; both readings shown).

Verdicts: ``holds``; ``does not hold`` (the data contradict the claim: a bound on the other side
is below it); ``not enough data`` (neither) — with the number of prompts that would give 80 %
power at the observed effects (normal approximation), or none when the point estimate itself
misses the claim (more prompts would not make it hold).

**The most a knob can save.** :func:`most_savings_row` answers "what is the most this policy saves
at a quality loss ≤ x?" over its whole threshold sweep on the report's prompts: the cheapest
operating point whose quality is within x of the reference's, and a percentile-bootstrap interval
in which that point is chosen again in every resample (so the interval carries the choice). It is
chosen on the prompts it is measured on — an optimistic bound of what the knob reaches there; the
claim a router can make is the one tested above, with its threshold tuned on other prompts.
"""
from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from ..analysis._evidence import evidence_words
from ..base._intervals import paired_score_bound, paired_score_p
from ._ratio_test import savings_bound, savings_p
from ._stats import bootstrap_sums

_POWER = 0.8
_CLAIM_COLUMNS = ["savings_pct", "savings_lo", "quality_diff", "quality_diff_lo", "unknown_pct",
                  "quality_diff_lo_unknown_as_loss", "p_value", "p_holm", "verdict", "prompts_needed", "why"]
# Below this many prompts a bootstrap cannot show how uncertain a mean is (with one prompt every
# resample is identical): no verdict either way.
MIN_PROMPTS = 30


@dataclass
class Replicates:
    """The per-prompt values behind one claim test (its tests are analytic: no bootstrap)."""

    diff_point: np.ndarray        # point estimates, per policy
    savings_point: np.ndarray
    diff_sd: np.ndarray           # per-prompt sd of the paired quality difference
    savings_sd: np.ndarray        # per-prompt sd of the savings' influence values (fraction)
    n: int
    diff: np.ndarray              # per-prompt paired quality differences (prompts × policies)
    spend: np.ndarray             # per-prompt spend savings are computed on (prompts × policies)
    ref_spend: np.ndarray         # the reference's, per prompt


def claim_table(names: list[str], reps: Replicates, testable: np.ndarray, *, min_savings_pct: float,
                max_quality_loss: float, alpha: float, unknown: int = 0) -> pd.DataFrame:
    """One row per policy: estimates, Holm-level bounds, adjusted p, verdict, prompts needed;
    ``unknown``: prompts left out because a quality is unknown (bounded as losses)."""
    p_q = paired_score_p(reps.diff, -max_quality_loss) if reps.n else np.full(len(names), np.nan)
    p_q = np.where(np.isnan(p_q), 1.0, p_q)
    p_s = savings_p(reps.spend, reps.ref_spend, min_savings_pct)
    p = np.maximum(p_q, p_s)
    levels, p_adj = _holm(p, testable, alpha)
    rows = []
    for i, name in enumerate(names):
        row = _row(i, reps, levels[i], p[i], p_adj[i], testable[i], min_savings_pct, max_quality_loss,
                   alpha, int(testable.sum()), unknown)
        rows.append({"policy": name, **row})
    return pd.DataFrame(rows).set_index("policy")[_CLAIM_COLUMNS]


def refuse_uninformative(table: pd.DataFrame, evidence: dict) -> pd.DataFrame:
    """The claim table when the quality comes from preferences that carry no information (a judge
    that always says "[[A]]" ties every pair, one that always says "[[C]]" too, and a tie is "as
    good"): every tested router is "not enough data" — whatever its bounds, they measure the
    judge, not the answers."""
    out = table.copy()
    tested = out["verdict"] != "not tested (reference or reads the labels)"
    out.loc[tested, "verdict"] = "not enough data"
    why = evidence["why"]
    out.loc[tested, "why"] = f"{'judge unscreened' if evidence.get('unscreened') else 'judge uninformative'}: {why}"
    out.loc[tested, "prompts_needed"] = np.nan
    earlier = table.attrs.get("warning")
    out.attrs["warning"] = (f"no claim is certified: the preferences {evidence_words(evidence)} ({why}); judge with a "
                            "judge whose two orders agree (scoring.agreement(prefs)), or grade by hand"
                            + (f"; {earlier}" if earlier else ""))
    return out


def _holm(p: np.ndarray, testable: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Holm step-down over the testable policies: each one's level and adjusted p-value.

    Once a step fails the procedure stops: every later router keeps the level of that step, so
    its bounds (shown at that level) do not clear the claim either — bounds and verdicts agree."""
    levels, adjusted = np.full(len(p), np.nan), np.full(len(p), np.nan)
    idx = np.flatnonzero(testable)
    m = len(idx)
    running, stopped_at = 0.0, None
    for rank, i in enumerate(idx[np.argsort(p[idx], kind="stable")]):
        level = alpha / (m - (rank if stopped_at is None else stopped_at))
        if stopped_at is None and not p[i] < level:
            stopped_at = rank
        levels[i] = level
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return levels, adjusted


def _row(i: int, reps: Replicates, level: float, p: float, p_adj: float, testable: bool,
         min_savings: float, margin: float, alpha: float, m: int, unknown: int = 0) -> dict:
    spend = reps.spend[:, i:i + 1]
    d = reps.diff[:, i]
    total = reps.n + unknown
    out = {"savings_pct": reps.savings_point[i], "quality_diff": reps.diff_point[i],
           "unknown_pct": 100 * unknown / total if total else np.nan}
    if not testable:
        return {**out, "savings_lo": np.nan, "quality_diff_lo": np.nan, "quality_diff_lo_unknown_as_loss": np.nan,
                "p_value": np.nan, "p_holm": np.nan, "verdict": "not tested (reference or reads the labels)",
                "prompts_needed": np.nan, "why": ""}
    q = level if np.isfinite(level) else alpha / max(m, 1)
    out["savings_lo"] = float(savings_bound(spend, reps.ref_spend, q)[0])
    out["quality_diff_lo"] = float(paired_score_bound(d, q)[0]) if reps.n else np.nan
    out["quality_diff_lo_unknown_as_loss"] = (
        float(paired_score_bound(np.concatenate([d, -np.ones(unknown)]), q)[0]) if unknown else out["quality_diff_lo"])
    out["p_value"], out["p_holm"] = p, p_adj
    too_lossy = bool(reps.n) and float(paired_score_bound(d, alpha, upper=True)[0]) < -margin
    saves_too_little = bool(savings_p(spend, reps.ref_spend, min_savings, upper=True)[0] < alpha)
    contradicted = too_lossy or saves_too_little
    why, blocked = "", False          # blocked: by the unknowns — they need verdicts, not more prompts
    if not np.isfinite(reps.savings_point[i]):
        verdict, why = "not enough data", "cost unknown: price the runs (evaluate(..., prices= or price_as=))"
    elif reps.n < MIN_PROMPTS:
        verdict, why = "not enough data", f"only {reps.n} prompts; a verdict needs at least {MIN_PROMPTS}"
    elif p_adj < alpha and unknown and not out["quality_diff_lo_unknown_as_loss"] > -margin:
        verdict, blocked = "not enough data", True
        why = (f"{unknown} of {total} prompts ({out['unknown_pct']:.0f} %) have an unknown quality: counted as "
               f"losses the quality bound is {out['quality_diff_lo_unknown_as_loss']:.3f} < −{margin:g}")
    elif p_adj < alpha:
        verdict = "holds"
    elif contradicted:
        verdict = "does not hold"
        why = "saves too little" if saves_too_little else "loses too much quality"
    else:
        verdict = "not enough data"
    out["verdict"], out["why"] = verdict, why
    needed = (_needed(reps, i, min_savings, margin, alpha / max(m, 1)) if verdict == "not enough data"
              and not blocked else np.nan)
    out["prompts_needed"] = max(needed, MIN_PROMPTS) if np.isfinite(needed) else needed
    if verdict == "not enough data" and not why:
        out["why"] = "the bounds straddle the claim" + ("" if np.isfinite(needed) else
                                                       "; the point estimate misses it, more prompts would not help")
    return out


def _needed(reps: Replicates, i: int, min_savings: float, margin: float, level: float) -> float:
    """Prompts for 80 % power at the observed effects (normal approximation); NaN if hopeless."""
    z = NormalDist().inv_cdf(1 - level) + NormalDist().inv_cdf(_POWER)
    effects = [(reps.diff_point[i] + margin, reps.diff_sd[i]),
               ((reps.savings_point[i] - min_savings) / 100, reps.savings_sd[i])]
    needed = 0.0
    for effect, sd in effects:
        if not np.isfinite(effect) or effect <= 0:
            return float("nan")
        needed = max(needed, (z * sd / effect) ** 2 if sd > 0 else 0.0)
    return float(np.ceil(needed))
@dataclass
class Frontier:
    """One knob policy's operating points on the report's prompts: per threshold, the per-prompt
    cost and quality it would give (prompts × thresholds)."""

    thresholds: np.ndarray
    share: np.ndarray          # share of prompts sent up (the strong model / escalated)
    cost: np.ndarray           # prompts × thresholds
    quality: np.ndarray


def frontier(values: np.ndarray, below: Any, above: Any, thresholds: np.ndarray) -> Frontier:
    """Per-prompt cost and quality of ``values ≥ t → above`` for each ``t``."""
    up = np.asarray(values, dtype=float)[:, None] >= np.asarray(thresholds, dtype=float)[None, :]
    cost = np.where(up, above.spend[:, None], below.spend[:, None])   # savings' basis (cost, or strong calls)
    quality = np.where(up, above.quality[:, None], below.quality[:, None])
    return Frontier(np.asarray(thresholds, dtype=float), up.mean(axis=0), cost, quality)


def most_savings_row(front: Frontier, ref_cost: np.ndarray, ref_quality: np.ndarray, *, max_quality_loss: float,
                     n_boot: int, seed: int, level: float) -> dict:
    """The most a knob policy saves at a quality loss ≤ ``max_quality_loss`` on these prompts, and
    a percentile-bootstrap interval in which the best point is chosen again in every resample."""
    n, t = front.cost.shape
    with np.errstate(divide="ignore", invalid="ignore"):
        savings = 100 * (1 - front.cost.sum(axis=0) / ref_cost.sum())
    diff = (front.quality.sum(axis=0) - ref_quality.sum()) / n
    row = _best(savings, diff, max_quality_loss)
    best = row.pop("at")
    out = {"threshold": front.thresholds[best] if best is not None else np.nan,
           "strong_share": front.share[best] if best is not None else np.nan, **row}
    sums = bootstrap_sums(np.column_stack([ref_cost, ref_quality, front.cost, front.quality]), n_boot, seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        s_b = 100 * (1 - sums[:, 2:2 + t] / sums[:, :1])
        d_b = (sums[:, 2 + t:] - sums[:, 1:2]) / n
    ok = d_b >= -max_quality_loss - 1e-12
    picked = np.where(ok.any(axis=1), np.where(ok, s_b, -np.inf).max(axis=1), np.nan)
    tail = (1 - level) / 2
    finite = picked[np.isfinite(picked)]
    out["savings_lo"], out["savings_hi"] = (np.quantile(finite, [tail, 1 - tail]) if finite.size
                                            else (np.nan, np.nan))
    out["feasible_share"] = float(ok.any(axis=1).mean())
    return out


def _best(savings: np.ndarray, diff: np.ndarray, margin: float) -> dict:
    ok = diff >= -margin - 1e-12
    if not ok.any():
        return {"at": None, "savings_pct": np.nan, "quality_diff": np.nan}
    at = int(np.flatnonzero(ok)[np.argmax(np.where(np.isfinite(savings[ok]), savings[ok], -np.inf))])
    return {"at": at, "savings_pct": float(savings[at]), "quality_diff": float(diff[at])}
