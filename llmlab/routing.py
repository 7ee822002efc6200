"""Offline routing-policy analysis: what would a router have cost, and what quality would it keep?

Record a prompt × model matrix once (``lab.sweep(prompts, models=[...])``), score it
(:mod:`llmlab.scoring`), then simulate policies on the recorded rows::

    from llmlab import routing, scoring
    runs = scoring.auto(lab.runs(run_id=res.run_id), checkers=tasks)
    report = routing.evaluate(runs, [
        routing.TaskMap({"classify": "haiku", "code": "sonnet"}, default="opus"),
        routing.Cascade(["haiku", "opus"], accept=scoring.json_valid()),
        routing.Threshold("prompt_chars", 400, weak="haiku", strong="opus"),
        routing.Oracle(),
    ])
    report.table; report.routellm; report.plot()

The matrix: one answer per (prompt_id, requested_model) — the final attempt of the latest
request with ``repeat == 0`` (see :mod:`llmlab._routing_matrix`). Prompts lacking a row for a
model some policy needs are dropped; ``report.dropped_prompts`` says how many.

Uncertainty: 95% percentile-bootstrap intervals resample *prompts* (paired: every policy and the
reference see the same resample), so they describe how much the numbers would move on another
prompt set like yours — not run-to-run sampling noise of the models (record ``n`` repeats for that).
"""
from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._routing_matrix import Matrix, build_matrix
from ._routing_policies import Always, Cascade, Fallback, Oracle, Policy, Random, TaskMap, Threshold, on_row
from ._routing_stats import (
    Outcome,
    apgr,
    bootstrap_sums,
    cpt,
    optimal_curve,
    outcome,
    percentile_ci,
    pgr,
    threshold_sweep,
)

__all__ = ["Policy", "Always", "TaskMap", "Fallback", "Cascade", "Threshold", "Random", "Oracle",
           "on_row", "evaluate", "PolicyReport"]


def evaluate(runs: pd.DataFrame, policies: Sequence[Policy] | Mapping[str, Policy],
             score: str = "score", reference: str | Policy | None = None, prices: Any = None,
             n_boot: int = 1000, seed: int = 0, *, price_as: Mapping[str, str] | None = None,
             models: Sequence[str] | None = None, sweep_points: int = 101,
             level: float = 0.95) -> PolicyReport:
    """Simulate ``policies`` on scored ``runs``; returns a :class:`PolicyReport`.

    reference: the policy or model that savings and "quality retained" compare with; default
        the single model with the best mean quality (ties: the cheaper one).
    prices: None → the recorded ``cost_usd``. Otherwise a price sheet for
        ``PriceTable.load`` (a dict of per-model prices, a JSON path, a PriceTable), re-pricing
        each row's own prompt/completion tokens. A dict of strings ``{model: priced_as}`` prices
        models as others on the bundled sheet; ``price_as=`` does the same on any sheet.
    models: the models ``Oracle()`` may choose from (default: every requested model in runs).
    n_boot: bootstrap resamples (0 = no intervals). sweep_points: quantiles for the threshold sweep.
    """
    named = _named(policies)
    ref_policy = _reference_policy(reference, named)
    needed = _needed_models(runs, named, ref_policy, models)
    mx = build_matrix(runs, score, needed, prices, price_as)
    outcomes = {name: outcome(mx, p.route(mx)) for name, p in named.items()}
    singles = {m: outcome(mx, Always(m).route(mx)) for m in mx.models}
    ref_name, ref_out = _resolve_reference(mx, reference, ref_policy, named, outcomes, singles)
    entries = [*outcomes.items(), *((f"always({m})", o) for m, o in singles.items())]
    stats = _stats(mx, entries, ref_out, n_boot, seed, level)   # one paired bootstrap for all
    sweeps = _routellm(mx, named, singles, sweep_points)
    return PolicyReport(
        table=stats.iloc[:len(outcomes)], models=stats.iloc[len(outcomes):],
        reference=ref_name, price_sheet=mx.price_sheet, n_prompts=mx.n,
        dropped_prompts=mx.dropped, n_boot=n_boot, level=level, routellm=sweeps[0],
        threshold_curve=sweeps[1], oracle=outcome(mx, Oracle().route(mx)),
        matrix=mx, outcomes=outcomes, policies=named,
    )


class PolicyReport:
    """Result of :func:`evaluate`.

    ``table`` — one row per policy (``models``: the same for each single model):
    ``requests``; ``calls_per_request``; ``total_cost_usd``; ``cost_per_1k_usd``; ``quality``
    (mean score, 0–1); ``retained_pct`` (100 × quality / reference quality); ``savings_pct``
    (100 × (1 − cost / reference cost)); each of these four with ``*_ci_lo``/``*_ci_hi``
    (``cost_ci_*`` are per 1k requests); ``latency_p50_s``/``latency_p95_s`` (per request: the
    sum over the models called); ``failed_pct`` (requests served an error row);
    ``share_<model>`` (fraction of all calls).

    ``routellm`` — one row per Threshold policy: ``weak``/``strong`` and their qualities, the
    policy's own ``strong_share`` and ``pgr``; ``apgr`` (area under PGR over strong share 0→1);
    ``cpt50``/``cpt80`` (strong-call share, 0–1, at which PGR first reaches 50 % / 80 %);
    ``optimal_apgr`` (RouteLLM's optimal router on the same pair) and ``random_apgr`` (0.5).
    ``threshold_curve`` — the sweep behind it. ``oracle`` — the Oracle over every model in the
    matrix (a dict). Also ``reference``, ``price_sheet``, ``n_prompts``, ``dropped_prompts``,
    ``caption``, ``per_prompt(policy)``, ``plot()``.
    """

    def __init__(self, *, table, models, reference, price_sheet, n_prompts, dropped_prompts,
                 n_boot, level, routellm, threshold_curve, oracle, matrix, outcomes, policies):
        self.table, self.models, self.reference = table, models, reference
        self.price_sheet, self.n_prompts, self.dropped_prompts = price_sheet, n_prompts, dropped_prompts
        self.n_boot, self.level = n_boot, level
        self.routellm, self.threshold_curve = routellm, threshold_curve
        self.oracle = _summary(matrix, oracle)
        self._mx, self._outcomes, self._policies = matrix, outcomes, policies

    @property
    def caption(self) -> str:
        ci = (f"{self.level:.0%} CI: percentile bootstrap over prompts, {self.n_boot} resamples"
              if self.n_boot else "no bootstrap (n_boot=0)")
        return (f"{self.n_prompts} prompts ({self.dropped_prompts} dropped) · reference: "
                f"{self.reference} · price sheet: {self.price_sheet} · {ci}")

    def per_prompt(self, policy: str) -> pd.DataFrame:
        """One row per prompt: the models the policy called, the one served, cost, latency, quality."""
        out, mx = self._outcomes[policy], self._mx
        names = np.array(mx.models + [""], dtype=object)
        tried = [" → ".join(names[row[row >= 0]]) for row in out.tried]
        frame = pd.DataFrame({"prompt_id": mx.prompt_ids, "served_model": names[out.served],
                              "models_tried": tried, "cost_usd": out.cost,
                              "latency_s": out.latency, "quality": out.quality,
                              "failed": out.failed})
        if "task" in mx.runs.columns:
            frame.insert(1, "task", mx.prompt_values("task"))
        return frame

    def plot(self, ax=None):
        """Cost vs quality: policies with CI whiskers, single-model Pareto frontier, threshold
        sweeps, random and oracle baselines. Returns the matplotlib Figure."""
        from ._routing_plot import plot_report

        return plot_report(self, ax=ax)

    _SHOWN = ["requests", "cost_per_1k_usd", "cost_ci_lo", "cost_ci_hi", "quality",
              "quality_ci_lo", "quality_ci_hi", "retained_pct", "savings_pct", "savings_ci_lo",
              "savings_ci_hi", "latency_p50_s", "latency_p95_s"]

    def __repr__(self) -> str:
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            return f"PolicyReport: {self.caption}\n{self.table[self._SHOWN].round(4).to_string()}"

    def _repr_html_(self) -> str:
        body = self.table.to_html(float_format=lambda x: f"{x:.4g}")  # escapes names by default
        return f"<div><p><b>PolicyReport</b> — {html.escape(self.caption)}</p>{body}</div>"


# --- helpers ------------------------------------------------------------------------------------

def _named(policies) -> dict[str, Policy]:
    items = list(policies.items()) if isinstance(policies, Mapping) else \
        [(p.name, p) for p in ([policies] if isinstance(policies, Policy) else policies)]
    named: dict[str, Policy] = {}
    for name, policy in items:
        if not isinstance(policy, Policy):
            raise TypeError(f"not a routing policy: {policy!r}")
        unique, k = name, 2
        while unique in named:
            unique, k = f"{name} #{k}", k + 1
        named[unique] = policy
    if not named:
        raise ValueError("evaluate() needs at least one policy")
    return named


def _reference_policy(reference, named) -> Policy | None:
    """The extra policy a reference needs evaluated (None if it is a listed policy or default)."""
    if reference is None or (isinstance(reference, str) and reference in named):
        return None
    return reference if isinstance(reference, Policy) else Always(str(reference))


def _needed_models(runs, named, ref_policy, models) -> list[str]:
    everything = list(models) if models is not None else \
        list(pd.unique(runs["requested_model"])) if "requested_model" in runs.columns else []
    needed: list[str] = []
    for policy in [*named.values(), *([ref_policy] if ref_policy else [])]:
        wants = policy.needs()
        needed += everything if wants is None else wants
    return list(dict.fromkeys(needed))


def _resolve_reference(mx, reference, ref_policy, named, outcomes, singles) -> tuple[str, Outcome]:
    if reference is None:
        ranked = sorted(mx.models, key=lambda m: (-singles[m].quality.mean(),
                                                  np.nan_to_num(singles[m].cost.sum(), nan=np.inf)))
        return f"always({ranked[0]})", singles[ranked[0]]
    if isinstance(reference, str) and reference in named:
        return reference, outcomes[reference]
    if isinstance(ref_policy, Always):
        return ref_policy.name, singles[ref_policy.model]
    return ref_policy.name, outcome(mx, ref_policy.route(mx))


def _summary(mx: Matrix, out: Outcome) -> dict:
    """Point estimates of one outcome (no reference, no intervals)."""
    n, calls = mx.n, int(out.calls.sum())
    return {
        "requests": n, "calls_per_request": calls / n,
        "total_cost_usd": float(out.cost.sum()), "cost_per_1k_usd": float(out.cost.sum() / n * 1000),
        "quality": float(out.quality.mean()),
        "latency_p50_s": _pct(out.latency, 50), "latency_p95_s": _pct(out.latency, 95),
        "failed_pct": 100 * float(out.failed.mean()),
        **{f"share_{m}": int(c) / calls for m, c in zip(mx.models, out.calls, strict=True)},
    }


def _pct(values: np.ndarray, q: float) -> float:
    finite = values[np.isfinite(values)]
    return float(np.percentile(finite, q)) if finite.size else float("nan")


def _stats(mx, entries: list[tuple[str, Outcome]], ref: Outcome, n_boot, seed,
           level) -> pd.DataFrame:
    rows = []
    for _, out in entries:
        row = _summary(mx, out)
        row["retained_pct"] = 100 * _ratio(out.quality.sum(), ref.quality.sum())
        row["savings_pct"] = 100 * (1 - _ratio(out.cost.sum(), ref.cost.sum()))
        rows.append(row)
    table = pd.DataFrame(rows, index=pd.Index([name for name, _ in entries], name="policy"))
    cis = _bootstrap(mx.n, [out for _, out in entries], ref, n_boot, seed, level)
    for col, values in cis.items():
        table[col] = values
    return table[_ordered_columns(table, mx.models)]


def _ratio(a: float, b: float) -> float:
    return a / b if b and np.isfinite(b) else float("nan")


def _bootstrap(n, outs: list[Outcome], ref: Outcome, n_boot, seed, level) -> dict[str, np.ndarray]:
    names = ["cost_ci", "quality_ci", "retained_ci", "savings_ci"]
    if not n_boot:
        return {f"{c}_{b}": np.full(len(outs), np.nan) for c in names for b in ("lo", "hi")}
    values = np.column_stack([ref.cost, ref.quality, *[o.cost for o in outs],
                              *[o.quality for o in outs]])
    sums = bootstrap_sums(values, n_boot, seed)
    ref_cost, ref_q = sums[:, :1], sums[:, 1:2]
    cost, qual = sums[:, 2:2 + len(outs)], sums[:, 2 + len(outs):]
    with np.errstate(divide="ignore", invalid="ignore"):
        samples = {"cost_ci": cost / n * 1000, "quality_ci": qual / n,
                   "retained_ci": 100 * qual / ref_q, "savings_ci": 100 * (1 - cost / ref_cost)}
    out = {}
    for name in names:
        lo, hi = percentile_ci(samples[name], level)
        out[f"{name}_lo"], out[f"{name}_hi"] = lo, hi
    return out


def _ordered_columns(table: pd.DataFrame, models: list[str]) -> list[str]:
    head = ["requests", "calls_per_request", "total_cost_usd", "cost_per_1k_usd", "cost_ci_lo",
            "cost_ci_hi", "quality", "quality_ci_lo", "quality_ci_hi", "retained_pct",
            "retained_ci_lo", "retained_ci_hi", "savings_pct", "savings_ci_lo", "savings_ci_hi",
            "latency_p50_s", "latency_p95_s", "failed_pct"]
    return head + [f"share_{m}" for m in models]


def _routellm(mx, named, singles, points) -> tuple[pd.DataFrame, pd.DataFrame]:
    """APGR / CPT(50%) / CPT(80%) and the sweep curve for every Threshold policy."""
    rows, curves = {}, []
    for name, policy in named.items():
        if not isinstance(policy, Threshold):
            continue
        weak, strong = singles[policy.weak], singles[policy.strong]
        values = policy.values(mx)
        curve = pd.DataFrame(threshold_sweep(values, weak, strong, points))
        q_w, q_s = weak.quality.mean(), strong.quality.mean()
        curve["pgr"] = pgr(curve["quality"].to_numpy(), q_w, q_s)
        curve.insert(0, "policy", name)
        curves.append(curve)
        rows[name] = _routellm_row(policy, values, curve, q_w, q_s, weak, strong)
    columns = ["weak", "strong", "weak_quality", "strong_quality", "strong_share", "pgr", "apgr",
               "cpt50", "cpt80", "optimal_apgr", "random_apgr"]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
    table.index.name = "policy"
    curve_columns = ["policy", "threshold", "strong_share", "quality", "cost_usd",
                     "cost_per_1k_usd", "pgr"]
    curve = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=curve_columns)
    return table, curve


def _routellm_row(policy, values, curve, q_w, q_s, weak, strong) -> dict:
    share, gap = curve["strong_share"].to_numpy(), curve["pgr"].to_numpy()
    strong_mask = values >= policy.threshold
    q_policy = np.where(strong_mask, strong.quality, weak.quality).mean()
    opt_share, opt_quality = optimal_curve(weak, strong)
    return {
        "weak": policy.weak, "strong": policy.strong, "weak_quality": q_w, "strong_quality": q_s,
        "strong_share": strong_mask.mean(), "pgr": float(pgr(q_policy, q_w, q_s)),
        "apgr": apgr(share, gap), "cpt50": cpt(share, gap, 0.5), "cpt80": cpt(share, gap, 0.8),
        "optimal_apgr": apgr(opt_share, pgr(opt_quality, q_w, q_s)),
        "random_apgr": 0.5 if np.isfinite(gap).all() else float("nan"),
    }
