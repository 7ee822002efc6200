"""``evaluate``: simulate policies on one matrix, with one paired bootstrap for all of them."""
from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..base._errors import InputError
from ._claim import Replicates
from ._matrix import Matrix, build_matrix
from ._policies import Always, Cascade, Oracle, Policy
from ._report import PolicyReport
from ._stats import (
    Outcome,
    apgr,
    auroc,
    bootstrap_sums,
    cpt,
    optimal_curve,
    outcome,
    percentile_ci,
    pgr,
    point_summary,
    threshold_sweep,
)
from ._verifier import Verifier, _AnswerCascade

CPT_TARGETS = (0.2, 0.5, 0.8)


def evaluate(runs: pd.DataFrame, policies: Sequence[Policy] | Mapping[str, Policy] | Policy, *,
             models: Sequence[str] | None = None, reference: str | Policy | None = None,
             score: str = "score", prices: Any = None, price_as: Mapping[str, str] | None = None,
             count_retries: bool = True, n_boot: int = 1000, seed: int = 0, level: float = 0.95,
             sweep_points: int = 101) -> PolicyReport:
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
    n_boot: bootstrap resamples of the prompts (0 = no intervals, no claim test).
    seed: bootstrap seed. level: two-sided interval level.
    sweep_points: quantiles of a policy's knob swept for APGR/CPT.
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, numbers.Integral) or n_boot < 0:
        raise InputError(f"n_boot must be a whole number ≥ 0, not {n_boot!r}")
    n_boot = int(n_boot)
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not 0 < level < 1:
        raise InputError(f"level must be between 0 and 1 (e.g. 0.95), not {level!r}")
    named = named_policies(policies)
    mx = build_matrix(runs, score, models, prices, price_as, count_retries=count_retries)
    _warn_in_sample(mx, named)
    return evaluate_matrix(mx, named, reference=reference, n_boot=n_boot, seed=seed, level=level,
                           sweep_points=sweep_points)


def evaluate_matrix(mx: Matrix, named: dict[str, Policy], *, reference: str | Policy | None,
                    n_boot: int, seed: int, level: float, sweep_points: int) -> PolicyReport:
    outcomes = {name: p.simulate(mx) for name, p in named.items()}
    singles = {m: outcome(mx, Always(m).route(mx)) for m in mx.models}
    ref_name, ref_out = _reference(mx, reference, named, outcomes, singles)
    entries = [*outcomes.items(), *((f"always({m})", o) for m, o in singles.items())]
    stats, reps = _stats(mx, entries, ref_out, n_boot, seed, level)
    routellm, curve = _routellm(mx, named, outcomes, singles, sweep_points)
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


def _warn_in_sample(mx: Matrix, named: dict[str, Policy]) -> None:
    """A fitted router judged on its own training prompts looks better than it is: say so."""
    prompts = set(mx.prompt_ids)
    for name, policy in named.items():
        seen = len(prompts & set(getattr(policy, "fitted_on", ())))
        if seen:
            warnings.warn(f"{name} was fitted on {seen} of these {mx.n} prompts: judge it on held-out prompts "
                          "(routing.split) or its numbers look better than they are", RuntimeWarning, stacklevel=3)


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


def _stats(mx, entries: list[tuple[str, Outcome]], ref: Outcome, n_boot, seed,
           level) -> tuple[pd.DataFrame, Replicates]:
    rows = []
    for _, out in entries:
        row = point_summary(mx, out)
        row["quality_diff"] = float(out.quality.mean() - ref.quality.mean())
        row["retained_pct"] = 100 * _ratio(out.quality.sum(), ref.quality.sum())
        row["savings_pct"] = 100 * (1 - _ratio(out.cost.sum(), ref.cost.sum()))
        rows.append(row)
    table = pd.DataFrame(rows, index=pd.Index([name for name, _ in entries], name="policy"))
    cis, reps = _bootstrap(mx.n, [out for _, out in entries], ref, n_boot, seed, level)
    for col, values in cis.items():
        table[col] = values
    return table[_ordered_columns(mx.models)], reps


def _ratio(a: float, b: float) -> float:
    return a / b if b and np.isfinite(b) else float("nan")


def _bootstrap(n, outs: list[Outcome], ref: Outcome, n_boot, seed, level):
    names = ["cost_ci", "quality_ci", "quality_diff_ci", "retained_ci", "savings_ci"]
    k = len(outs)
    cost_pts = np.array([o.cost.sum() for o in outs])
    diff = np.array([o.quality - ref.quality for o in outs]).T if k else np.empty((n, 0))
    ref_mean_cost = ref.cost.mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = cost_pts / ref.cost.sum()
        influence = (np.array([o.cost for o in outs]).T - ratio * ref.cost[:, None]) / ref_mean_cost
    reps = Replicates(np.empty((0, k)), np.empty((0, k)), diff.mean(axis=0), 100 * (1 - ratio),
                      diff.std(axis=0, ddof=1) if n > 1 else np.zeros(k),
                      influence.std(axis=0, ddof=1) if n > 1 else np.zeros(k), n)
    if not n_boot:
        return {f"{c}_{b}": np.full(k, np.nan) for c in names for b in ("lo", "hi")}, reps
    values = np.column_stack([ref.cost, ref.quality, *[o.cost for o in outs], *[o.quality for o in outs]])
    sums = bootstrap_sums(values, n_boot, seed)
    ref_cost, ref_q = sums[:, :1], sums[:, 1:2]
    cost, qual = sums[:, 2:2 + k], sums[:, 2 + k:]
    with np.errstate(divide="ignore", invalid="ignore"):
        samples = {"cost_ci": cost / n * 1000, "quality_ci": qual / n, "quality_diff_ci": (qual - ref_q) / n,
                   "retained_ci": 100 * qual / ref_q, "savings_ci": 100 * (1 - cost / ref_cost)}
    reps.quality_diff, reps.savings_pct = samples["quality_diff_ci"], samples["savings_ci"]
    out = {}
    for name in names:
        lo, hi = percentile_ci(samples[name], level)
        out[f"{name}_lo"], out[f"{name}_hi"] = lo, hi
    return out, reps


def _ordered_columns(models: list[str]) -> list[str]:
    head = ["requests", "calls_per_request", "total_cost_usd", "cost_per_1k_usd", "cost_ci_lo",
            "cost_ci_hi", "quality", "quality_ci_lo", "quality_ci_hi", "quality_diff",
            "quality_diff_ci_lo", "quality_diff_ci_hi", "retained_pct", "retained_ci_lo",
            "retained_ci_hi", "savings_pct", "savings_ci_lo", "savings_ci_hi", "latency_p50_s",
            "latency_p95_s", "failed_pct"]
    return head + [f"share_{m}" for m in models]


# --- RouteLLM: PGR for every two-model policy; APGR / CPT where a policy has a knob ---------------

def _routellm(mx, named, outcomes, singles, points) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, curves = {}, []
    for name, policy in named.items():
        pair = _two_models(mx, policy)
        if pair is None:
            continue
        weak, strong = (singles[m] for m in pair)
        q_w, q_s = weak.quality.mean(), strong.quality.mean()
        out = outcomes[name]
        row = {"weak": pair[0], "strong": pair[1], "weak_quality": q_w, "strong_quality": q_s,
               "strong_share": out.calls[mx.index(pair[1])] / mx.n,
               "pgr": float(pgr(out.quality.mean(), q_w, q_s))}
        row.update(dict.fromkeys(["apgr", *(f"cpt{int(t * 100)}" for t in CPT_TARGETS)], np.nan))
        opt_share, opt_quality = optimal_curve(weak, strong)
        row["optimal_apgr"] = apgr(opt_share, pgr(opt_quality, q_w, q_s))
        row["random_apgr"] = 0.5 if q_s != q_w else float("nan")
        knob = getattr(policy, "values", None)
        if callable(knob) and (getattr(policy, "weak", None), getattr(policy, "strong", None)) in (pair, pair[::-1]):
            below, above = policy.arms(mx)
            curve = _curve(name, knob(mx), below, above, points, q_w, q_s)
            curves.append(curve)
            share, gain = curve["strong_share"].to_numpy(), curve["pgr"].to_numpy()
            if policy.strong != pair[1]:    # the knob sends to the lower-quality model: flip the axis
                share = 1 - share
            row["apgr"] = apgr(share, gain)
            row.update({f"cpt{int(t * 100)}": cpt(share, gain, t) for t in CPT_TARGETS})
        rows[name] = row
    columns = ["weak", "strong", "weak_quality", "strong_quality", "strong_share", "pgr", "apgr",
               *(f"cpt{int(t * 100)}" for t in CPT_TARGETS), "optimal_apgr", "random_apgr"]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
    table.index.name = "policy"
    curve_columns = ["policy", "threshold", "strong_share", "quality", "cost_usd", "cost_per_1k_usd", "pgr"]
    curve = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=curve_columns)
    return table, curve


def _two_models(mx: Matrix, policy: Policy) -> tuple[str, str] | None:
    """(weak, strong) when the policy calls exactly two models: strong = the better mean quality
    (ties: the costlier); None otherwise."""
    used = policy.needs()
    used = list(dict.fromkeys(mx.models if used is None else used))
    if len(used) != 2:
        return None
    j = [mx.index(m) for m in used]
    key = [(mx.score[:, c].mean(), np.nan_to_num(mx.cost[:, c].sum(), nan=np.inf)) for c in j]
    return (used[0], used[1]) if key[1] >= key[0] else (used[1], used[0])


def _curve(name, values, weak, strong, points, q_w, q_s) -> pd.DataFrame:
    """The knob's sweep; PGR against the pair's weak/strong qualities (``q_w``, ``q_s``)."""
    curve = pd.DataFrame(threshold_sweep(np.asarray(values, dtype=float), weak, strong, points))
    curve["pgr"] = pgr(curve["quality"].to_numpy(), q_w, q_s)
    curve.insert(0, "policy", name)
    return curve
