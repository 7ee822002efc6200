"""``evaluate``: simulate policies on one matrix, with one paired bootstrap for all of them."""
from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..base._errors import InputError
from ..base._intervals import paired_score_interval, wilson
from ._claim import Replicates
from ._matrix import SAME_TEXT, Matrix, build_matrix, seen_prompts
from ._policies import Always, Cascade, Oracle, Policy
from ._preferences import PREFERENCE_COLUMN, WORST_ORDER, preference_quality
from ._report import PolicyReport
from ._stats import (
    Binned,
    Outcome,
    areas,
    auroc,
    crossings,
    knob_block,
    knob_curves,
    optimal_curve,
    outcome,
    paired_sums,
    percentile_ci,
    pgr,
    point_summary,
    sweep_thresholds,
    threshold_sweep,
)
from ._verifier import Verifier, _AnswerCascade

CPT_TARGETS = (0.2, 0.5, 0.8)


def evaluate(runs: pd.DataFrame, policies: Sequence[Policy] | Mapping[str, Policy] | Policy, *,
             models: Sequence[str] | None = None, reference: str | Policy | None = None,
             score: str = "score", prices: Any = None, price_as: Mapping[str, str] | None = None,
             count_retries: bool = True, n_boot: int = 1000, seed: int = 0, level: float = 0.95,
             sweep_points: int = 101, preferences: pd.DataFrame | None = None) -> PolicyReport:
    """Simulate ``policies`` on scored ``runs``; returns a :class:`PolicyReport`.

    runs: rows of ``lab.runs()`` / ``res.df`` with a ``score`` column (see :mod:`llmlab.scoring`).
    policies: a list (or ``{name: policy}``) of :class:`Policy`.
    models: the models of the matrix (default: every requested model in ``runs``). The sample is the
        prompts answered by all of them, whatever the policies, so adding a policy never moves the
        others' numbers; ``report.dropped_by_model`` says how many prompts each model lacked.
    reference: what savings and quality differences compare with — a model name, a listed policy's
        name or a policy; default: the model with the best mean quality (ties: the cheaper one).
    score: the column holding each answer's quality (0–1).
    prices: None → the recorded ``cost_usd``. Otherwise a price sheet for ``PriceTable.load`` (a dict
        of per-model prices, a JSON path, a PriceTable): each attempt is re-priced from its own
        prompt, cached and completion tokens, exactly as the Lab prices calls. A dict of strings
        ``{model: priced_as}`` prices models as others on the bundled sheet.
    price_as: ``{model: priced_as}`` on any sheet (what-if prices for local models).
    count_retries: bill failed earlier attempts of a request (their known cost, wait and duration),
        as the invoice and the user's wait would; False keeps only each final attempt.
    n_boot: bootstrap resamples of the prompts for the table's intervals and most_savings() (0 = no intervals;
        claim() needs none: its tests are analytic).
    seed: bootstrap seed. level: two-sided interval level.
    sweep_points: quantiles of a policy's knob swept for APGR/CPT.
    preferences: a preference frame (``scoring.pairwise``, ``lab.labels()``) as the quality signal
        instead of ``score``: an answer is good when it is at least as good as ``reference``'s
        (a win or a tie); unknown verdicts are left out and counted (see
        :func:`routing.preference_quality`). ``reference`` must then be a model (default: the one
        model every pair involves).
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, numbers.Integral) or n_boot < 0:
        raise InputError(f"n_boot must be a whole number ≥ 0, not {n_boot!r}")
    n_boot = int(n_boot)
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not 0 < level < 1:
        raise InputError(f"level must be between 0 and 1 (e.g. 0.95), not {level!r}")
    named = named_policies(policies)
    if preferences is not None:
        if reference is not None and not isinstance(reference, str):
            raise InputError("with preferences= the reference is a model name (the model the others were "
                             "compared with)")
        runs = preference_quality(runs, preferences, reference=reference)
        score, reference = PREFERENCE_COLUMN, runs.attrs[f"{PREFERENCE_COLUMN}_reference"]
    mx = build_matrix(runs, score, models, prices, price_as, count_retries=count_retries)
    if mx.unknown_costs:      # savings move to the calls basis: say so where the numbers are asked for
        warnings.warn(f"routing: {mx.unknown_costs}; pass prices= with token counts (from_wide(..., "
                      "answer_tokens=)) or recorded costs (from_wide(..., costs=))", RuntimeWarning, stacklevel=2)
    _warn_in_sample(mx, named)
    report = evaluate_matrix(mx, named, reference=reference, n_boot=n_boot, seed=seed, level=level,
                             sweep_points=sweep_points)
    strict = f"{score}{WORST_ORDER}"
    if strict in runs.columns and _differs(runs[score], runs[strict]):
        # order-dependent pairs as losses: the same prompts (the same unknowns), the same resamples
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            worst = build_matrix(runs, strict, models, prices, price_as, count_retries=count_retries)
        report.worst_order = evaluate_matrix(worst, named, reference=reference, n_boot=n_boot, seed=seed,
                                             level=level, sweep_points=sweep_points)
    return report


def _differs(a: pd.Series, b: pd.Series) -> bool:
    x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
    return bool(((x != y) & ~np.isnan(x)).any())


def evaluate_matrix(mx: Matrix, named: dict[str, Policy], *, reference: str | Policy | None,
                    n_boot: int, seed: int, level: float, sweep_points: int) -> PolicyReport:
    outcomes = {name: p.simulate(mx) for name, p in named.items()}
    singles = {m: outcome(mx, Always(m).route(mx)) for m in mx.models}
    ref_name, ref_out = _reference(mx, reference, named, outcomes, singles)
    entries = [*outcomes.items(), *((f"always({m})", o) for m, o in singles.items())]
    sweeps = _sweeps(mx, named, singles, sweep_points)
    draws = _draws([o for _, o in entries], ref_out, sweeps, n_boot, seed)
    stats, reps = _stats(mx, entries, ref_out, draws, level)
    routellm = _routellm(mx, named, outcomes, singles, sweeps, draws, level)
    curve = pd.concat([s.curve for s in sweeps], ignore_index=True) if sweeps else \
        pd.DataFrame(columns=["policy", "threshold", "strong_share", "quality", "cost_usd", "cost_per_1k_usd", "pgr"])
    testable = np.array([_deployable(named.get(name), name, ref_name) for name, _ in entries])
    return PolicyReport(
        table=stats.iloc[:len(outcomes)], models=stats.iloc[len(outcomes):], reference=ref_name,
        matrix=mx, n_boot=n_boot, level=level, routellm=routellm, threshold_curve=curve,
        oracle=outcome(mx, Oracle().route(mx)), outcomes=outcomes, policies=named,
        replicates=reps, testable=testable[:len(outcomes)], cascades=_cascades(mx, named, outcomes),
        reference_outcome=ref_out, seed=seed,
    )


_CASCADE_COLUMNS = ["first_model", "samples", "escalated_pct", "accepted_pct", "precision", "recall", "auroc",
                    "calls_per_request"]


def _cascades(mx: Matrix, named: dict[str, Policy], outcomes: dict[str, Outcome]) -> pd.DataFrame:
    """Per cascade: how often it escalated, and how well its acceptance test kept the first
    model's good answers — ``precision`` (accepted answers that are good), ``recall`` (good answers
    accepted), and for a learned or sampling cascade the ``auroc`` of its score (the chance a bad
    answer scores above a good one). Good = the first model's score ≥ the verifier's
    ``weak_ok_at`` (0.5 by default); a failed answer is not good."""
    rows = {}
    for name, policy in named.items():
        if not isinstance(policy, (Cascade, _AnswerCascade)):
            continue
        out = outcomes[name]
        first = int(out.tried[0, 0])
        ok_at = policy.training.get("weak_ok_at", 0.5) if isinstance(policy, Verifier) else 0.5
        good = (mx.score[:, first] >= ok_at) & ~mx.error[:, first]
        kept = out.tried[:, 1] < 0
        rows[name] = {
            "first_model": mx.models[first], "samples": getattr(policy, "samples", 1),
            "escalated_pct": 100 * float((~kept).mean()), "accepted_pct": 100 * float(kept.mean()),
            "precision": float(good[kept].mean()) if kept.any() else np.nan,
            "recall": float(kept[good].mean()) if good.any() else np.nan,
            "auroc": auroc(policy.values(mx), ~good) if isinstance(policy, _AnswerCascade) else np.nan,
            "calls_per_request": float(out.calls.sum() / mx.n),
        }
    table = pd.DataFrame.from_dict(rows, orient="index", columns=_CASCADE_COLUMNS)
    table.index.name = "policy"
    return table


@dataclass
class _Sweep:
    """A two-model knob policy's threshold sweep: its curve, and the per-prompt bins its
    RouteLLM metrics are resampled from."""

    name: str
    pair: tuple[str, str]       # (weak, strong) by mean quality
    block: Binned
    flip: bool                  # the knob's strong model is the pair's weaker one
    curve: pd.DataFrame


@dataclass
class _Draws:
    """Resampled sums of every entry's spend and quality (B × entries), the reference's (B × 1)
    and each sweep's bin sums — all over the same paired resamples."""

    spend: np.ndarray
    quality: np.ndarray
    ref_spend: np.ndarray
    ref_quality: np.ndarray
    blocks: list[np.ndarray]


def _draws(outs: list[Outcome], ref: Outcome, sweeps: list[_Sweep], n_boot: int, seed: int) -> _Draws | None:
    if not n_boot:
        return None
    k = len(outs)
    values = np.column_stack([ref.spend, ref.quality, *[o.spend for o in outs], *[o.quality for o in outs]])
    sums, blocks = paired_sums(values, n_boot, seed, [s.block for s in sweeps])
    return _Draws(sums[:, 2:2 + k], sums[:, 2 + k:], sums[:, :1], sums[:, 1:2], blocks)


def _warn_in_sample(mx: Matrix, named: dict[str, Policy]) -> None:
    """A fitted router judged on its own training prompts looks better than it is: say so — also
    when a prompt's text was fitted or tuned on under another id."""
    prompts = set(mx.prompt_ids)
    for name, policy in named.items():
        for what, ids, texts in (("fitted", getattr(policy, "fitted_on", ()), "fitted_texts"),
                                 ("tuned (its threshold set)", policy.tuned_prompts, "tuned_texts")):
            seen = len(prompts & set(ids))
            copies = seen_prompts(mx, policy, ids, texts) - seen if getattr(policy, texts, None) else 0
            if copies:
                warnings.warn(f"{name} was {what} on the same text as {copies} of these {mx.n} prompts under "
                              f"other prompt_ids ({SAME_TEXT}): they are not held out "
                              "(routing.split keeps one text on one side)", RuntimeWarning, stacklevel=3)
            if seen:
                warnings.warn(f"{name} was {what} on {seen} of these {mx.n} prompts: judge it on held-out prompts "
                              "(routing.split) or its numbers look better than they are", RuntimeWarning,
                              stacklevel=3)


def named_policies(policies: Any) -> dict[str, Policy]:
    if isinstance(policies, Policy):
        policies = [policies]
    items = list(policies.items()) if isinstance(policies, Mapping) else \
        [(getattr(p, "name", None), p) for p in policies]
    named: dict[str, Policy] = {}
    for name, policy in items:
        if not isinstance(policy, Policy):
            raise InputError(f"not a routing policy: {policy!r} (use routing.Always, TaskMap, Cascade, …)")
        unique, k = str(name), 2
        while unique in named:
            unique, k = f"{name} #{k}", k + 1
        named[unique] = policy
    if not named:
        raise InputError("evaluate() needs at least one policy")
    return named


def _deployable(policy: Policy | None, name: str, ref_name: str) -> bool:
    return policy is not None and name != ref_name and not getattr(policy, "uses_labels", False)


def _reference(mx, reference, named, outcomes, singles) -> tuple[str, Outcome]:
    if reference is None:
        best = mx.ranked_models()[0]
        return f"always({best})", singles[best]
    if isinstance(reference, str) and reference in named:
        return reference, outcomes[reference]
    if isinstance(reference, str):
        mx.index(reference)     # a clear error for a model outside the matrix
        return f"always({reference})", singles[reference]
    if isinstance(reference, Policy):
        return reference.name, outcome(mx, reference.route(mx))
    raise InputError(f"reference must be a model name, a listed policy's name or a policy, not {reference!r}")


def _stats(mx, entries: list[tuple[str, Outcome]], ref: Outcome, draws: _Draws | None,
           level) -> tuple[pd.DataFrame, Replicates]:
    rows = []
    for _, out in entries:
        row = point_summary(mx, out)
        row["quality_diff"] = float(out.quality.mean() - ref.quality.mean())
        row["retained_pct"] = 100 * _ratio(out.quality.sum(), ref.quality.sum())
        row["savings_pct"] = 100 * (1 - _ratio(out.spend.sum(), ref.spend.sum()))
        rows.append(row)
    table = pd.DataFrame(rows, index=pd.Index([name for name, _ in entries], name="policy"))
    cis, reps = _intervals(mx, [out for _, out in entries], ref, draws, level)
    for col, values in cis.items():
        table[col] = values
    return table[_ordered_columns(mx.models)], reps


def _ratio(a: float, b: float) -> float:
    return a / b if b and np.isfinite(b) else float("nan")


def _intervals(mx: Matrix, outs: list[Outcome], ref: Outcome, draws: _Draws | None, level):
    """The table's intervals and the claim test's per-prompt values; savings on the matrix's spend
    (cost, or strong-model calls when costs are unknown)."""
    n, k = mx.n, len(outs)
    names = ["cost_ci", "quality_ci", "quality_diff_ci", "retained_ci", "savings_ci"]
    spend_pts = np.array([o.spend.sum() for o in outs])
    diff = np.array([o.quality - ref.quality for o in outs]).T if k else np.empty((n, 0))
    spend = np.array([o.spend for o in outs]).T if k else np.empty((n, 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = spend_pts / ref.spend.sum()
        influence = (spend - ratio * ref.spend[:, None]) / ref.spend.mean()
    reps = Replicates(diff.mean(axis=0), 100 * (1 - ratio),
                      diff.std(axis=0, ddof=1) if n > 1 else np.zeros(k),
                      influence.std(axis=0, ddof=1) if n > 1 else np.zeros(k), n, diff, spend, ref.spend)
    if draws is None:
        return {f"{c}_{b}": np.full(k, np.nan) for c in names for b in ("lo", "hi")}, reps
    with np.errstate(divide="ignore", invalid="ignore"):
        samples = {"cost_ci": draws.spend / n * 1000 if mx.cost_known else np.full(draws.spend.shape, np.nan),
                   "quality_ci": draws.quality / n, "quality_diff_ci": (draws.quality - draws.ref_quality) / n,
                   "retained_ci": 100 * draws.quality / draws.ref_quality,
                   "savings_ci": 100 * (1 - draws.spend / draws.ref_spend)}
    out = {}
    for name in names:
        lo, hi = percentile_ci(samples[name], level)
        out[f"{name}_lo"], out[f"{name}_hi"] = lo, hi
    # Quality and its paired difference: the wider of the bootstrap's and the score interval (Wilson;
    # Tango's for the paired difference, the claim's own test) — never [1, 1] or [0, 0] from a finite
    # sample, where the bootstrap resamples nothing but successes (routing._claim, base._intervals).
    quality = np.array([o.quality for o in outs]).T if k else np.empty((n, 0))
    for name, (lo, hi) in (("quality_ci", wilson(np.clip(quality, 0, 1).sum(axis=0), n, level)),
                           ("quality_diff_ci", paired_score_interval(diff, level))):
        out[f"{name}_lo"], out[f"{name}_hi"] = np.fmin(out[f"{name}_lo"], lo), np.fmax(out[f"{name}_hi"], hi)
    return out, reps


def _ordered_columns(models: list[str]) -> list[str]:
    head = ["requests", "calls_per_request", "total_cost_usd", "cost_per_1k_usd", "cost_ci_lo",
            "cost_ci_hi", "quality", "quality_ci_lo", "quality_ci_hi", "quality_diff",
            "quality_diff_ci_lo", "quality_diff_ci_hi", "retained_pct", "retained_ci_lo",
            "retained_ci_hi", "savings_pct", "savings_ci_lo", "savings_ci_hi", "latency_p50_s",
            "latency_p95_s", "failed_pct"]
    return head + [f"share_{m}" for m in models]


# --- RouteLLM: PGR for every policy of two or more models; APGR / CPT where a two-model policy has a knob --

_CPT_COLUMNS = [f"cpt{int(t * 100)}" for t in CPT_TARGETS]
_ROUTELLM_COLUMNS = ["weak", "strong", "models", "weak_quality", "strong_quality", "strong_share", "pgr",
                     "pgr_ci_lo", "pgr_ci_hi", "apgr", "apgr_ci_lo", "apgr_ci_hi", "apgr_cost", "apgr_cost_ci_lo",
                     "apgr_cost_ci_hi", *[f"{c}{x}" for c in _CPT_COLUMNS for x in ("", "_ci_lo", "_ci_hi")],
                     "optimal_apgr", "random_apgr", "note"]
ROUTELLM_CAPTION = ("pgr: performance gap recovered, (quality − weak's) / (strong's − weak's), weak and strong "
                    "the worst and best of the models a policy calls; apgr: area under PGR over the share of "
                    "calls to the strong model (RouteLLM's, by calls); apgr_cost: area under PGR over the share "
                    "of the strong model's extra cost spent (by cost); cptXX: the strong-call share at which PGR "
                    "first reaches XX %")


def _routellm(mx, named, outcomes, singles, sweeps: list[_Sweep], draws: _Draws | None, level) -> pd.DataFrame:
    rows = {}
    swept = {s.name: (i, s) for i, s in enumerate(sweeps)}
    column = {name: i for i, name in enumerate(outcomes)}
    for name, policy in named.items():
        used = _used(mx, policy)
        if len(used) < 2:
            continue
        weak, strong = _pair(mx, used)
        row: dict[str, Any] = dict.fromkeys(_ROUTELLM_COLUMNS, np.nan)
        q_w, q_s = singles[weak].quality.mean(), singles[strong].quality.mean()
        row.update(weak=weak, strong=strong, models=len(used), weak_quality=q_w, strong_quality=q_s, note="",
                   strong_share=outcomes[name].calls[mx.index(strong)] / mx.n,
                   pgr=float(pgr(outcomes[name].quality.mean(), q_w, q_s)))
        if draws is not None:
            j = [len(outcomes) + mx.index(m) for m in (weak, strong)]
            with np.errstate(divide="ignore", invalid="ignore"):
                gained = (draws.quality[:, column[name]] - draws.quality[:, j[0]]) / \
                    (draws.quality[:, j[1]] - draws.quality[:, j[0]])
            row["pgr_ci_lo"], row["pgr_ci_hi"] = percentile_ci(gained, level)
        opt_share, opt_quality = optimal_curve(singles[weak], singles[strong])
        row["optimal_apgr"] = _area(opt_share, pgr(opt_quality, q_w, q_s))
        row["random_apgr"] = 0.5 if q_s != q_w else float("nan")
        if name in swept:
            i, sweep = swept[name]
            row.update(_sweep_metrics(sweep, draws.blocks[i] if draws is not None else None, level))
        elif len(used) > 2:
            row["note"] = (f"{len(used)} models: APGR and CPT are defined for a weak/strong pair; PGR is "
                           f"against the worst ({weak}) and best ({strong})")
        rows[name] = row
    table = pd.DataFrame.from_dict(rows, orient="index", columns=_ROUTELLM_COLUMNS)
    table.index.name = "policy"
    table.attrs["caption"] = ROUTELLM_CAPTION
    return table


def _area(share: np.ndarray, gain: np.ndarray) -> float:
    """Area under one PGR curve (share ascending)."""
    order = np.argsort(share, kind="stable")
    return float(areas(np.asarray(share)[order][None], np.asarray(gain)[order][None])[0])


def _sweep_metrics(sweep: _Sweep, block_draws: np.ndarray | None, level: float) -> dict:
    """APGR by calls and by cost and CPT20/50/80 of a knob's curve, with intervals from the
    same resamples as the table's."""
    totals = np.column_stack([np.bincount(sweep.block.bins, weights=sweep.block.weights[:, a],
                                          minlength=sweep.block.size) for a in range(sweep.block.weights.shape[1])])
    out: dict[str, Any] = {}
    for label, draws in (("", totals[None]), ("_ci", block_draws)):
        if draws is None:
            continue
        curves = knob_curves(draws, sweep.flip)
        values = {"apgr": areas(curves["share"], curves["pgr"]),
                  "apgr_cost": areas(curves["cost_share"], curves["pgr"]),
                  **{c: crossings(curves["share"], curves["pgr"], t) for c, t in zip(_CPT_COLUMNS, CPT_TARGETS,
                                                                                       strict=True)}}
        for metric, samples in values.items():
            if label:
                out[f"{metric}_ci_lo"], out[f"{metric}_ci_hi"] = percentile_ci(samples, level)
            else:
                out[metric] = float(samples[0])
    return out


def _sweeps(mx: Matrix, named: dict[str, Policy], singles: dict[str, Outcome], points: int) -> list[_Sweep]:
    """The knob sweeps of the two-model policies that have a knob (``values``: higher = strong)."""
    sweeps = []
    for name, policy in named.items():
        knob, used = getattr(policy, "values", None), _used(mx, policy)
        pair = _pair(mx, used) if len(used) == 2 else None
        ends = (getattr(policy, "weak", None), getattr(policy, "strong", None))
        if not callable(knob) or pair is None or ends not in (pair, pair[::-1]):
            continue
        values = np.asarray(knob(mx), dtype=float)
        weak, strong = policy.arms(mx)  # type: ignore[attr-defined]   # below / at or above the threshold
        thresholds = sweep_thresholds(values, points)
        curve = pd.DataFrame(threshold_sweep(values, weak, strong, points)).drop(columns="spend")
        curve["pgr"] = pgr(curve["quality"].to_numpy(), *(singles[m].quality.mean() for m in pair))
        curve.insert(0, "policy", name)
        sweeps.append(_Sweep(name, pair, knob_block(values, thresholds, weak, strong), ends[1] != pair[1], curve))
    return sweeps


def _used(mx: Matrix, policy: Policy) -> list[str]:
    used = policy.needs()
    return list(dict.fromkeys(mx.models if used is None else used))


def _pair(mx: Matrix, used: list[str]) -> tuple[str, str]:
    """(weak, strong): the worst and the best mean quality among ``used`` (ties: the cheaper is
    the weak one, the costlier the strong one)."""
    key = {m: (mx.score[:, mx.index(m)].mean(), np.nan_to_num(mx.cost[:, mx.index(m)].sum(), nan=np.inf))
           for m in used}
    ranked = sorted(used, key=lambda m: key[m])
    return ranked[0], ranked[-1]
