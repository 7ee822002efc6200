"""``PolicyReport``: what :func:`evaluate` found, and the claim test on it."""
from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..base._display import clean_text, esc, html_clean
from ..base._errors import InputError
from ..base._validate import check_number, is_real
from ._claim import Replicates, claim_table, frontier, most_savings_row, refuse_uninformative
from ._diagnostics import by_task, calibration, data_check, learned_auc
from ._matrix import Matrix
from ._plot import plot_report
from ._policies import Oracle, Policy
from ._split import SPLIT_ATTR, split_kind
from ._stats import Outcome, bootstrap_method, point_summary


class PolicyReport:
    """Result of :func:`evaluate`.

    ``table`` — one row per policy (``models``: the same for each single model): ``requests``;
    ``calls_per_request``; ``total_cost_usd``; ``cost_per_1k_usd``; ``quality`` (mean score, 0–1);
    ``quality_diff`` (quality − reference quality, paired); ``retained_pct`` (100 × quality /
    reference quality); ``savings_pct`` (100 × (1 − cost / reference cost)); each with
    ``*_ci_lo``/``*_ci_hi`` (``cost_ci_*`` per 1k requests); ``latency_p50_s``/``latency_p95_s``
    (per request: the sum over the models called, retries included by default); ``failed_pct``
    (requests served an error row); ``share_<model>`` (fraction of all calls).

    ``routellm`` — one row per policy of two or more models: ``weak``/``strong`` (the worst and the
    best mean quality among the models it calls) and their qualities, ``models`` (how many it
    calls), the policy's ``strong_share`` (requests that called the strong model) and ``pgr``
    (performance gap recovered); for two-model policies with a knob (``Threshold``, ``Learned``)
    ``apgr`` (area under PGR over the share of strong-model *calls* 0→1, RouteLLM's), ``apgr_cost``
    (the same over the share of the strong model's extra *cost* spent; NaN when a cost is unknown)
    and ``cpt20``/``cpt50``/``cpt80`` (strong share at which PGR first reaches 20/50/80 %); each
    with ``*_ci_lo``/``*_ci_hi`` from the table's own paired resamples; ``optimal_apgr``,
    ``random_apgr``; ``note`` (why APGR is not defined, e.g. three models). Definitions:
    ``routellm.attrs["caption"]``.
    ``threshold_curve`` — the sweeps behind them (a cascade's upper side bills both models).
    ``cascades`` — one row per cascade (``Cascade``, ``Verifier``, ``SelfConsistency``): the
    ``first_model`` and its ``samples``, ``escalated_pct``/``accepted_pct`` of the prompts, the
    acceptance test's ``precision`` (accepted answers that were good) and ``recall`` (good answers
    it accepted), the ``auroc`` of a verifier's or self-consistency score on these prompts, and
    ``calls_per_request`` (samples included). ``oracle`` — the Oracle over every model.
    ``split`` — which kind of split the prompts come from (grouped: whole groups held out).
    ``savings_basis`` — ``"cost"``, or ``"calls to <model> (costs unknown)"`` when some cost is
    unknown: savings are then the share of strong-model calls avoided (the caption says why).
    Also ``reference``, ``price_sheet``, ``cost_note``, ``retries``, ``n_prompts``,
    ``dropped_prompts``, ``dropped_by_model``, ``unknown_prompts`` (left out: some model's quality
    unknown, e.g. a judge gave no verdict), ``unknown_by_model``, ``caption``, ``per_prompt(policy)``, ``plot()``,
    ``claim(...)``; ``by_task()`` (per-task savings, quality and routing shares with intervals),
    ``auc`` and ``calibration(policy)`` (how well a learned router ranks and is calibrated, on
    these prompts), ``data_check(chance=...)`` (tasks below chance or scored all 0 / all 1).
    """

    def __init__(self, *, table: pd.DataFrame, models: pd.DataFrame, reference: str, matrix: Matrix,
                 n_boot: int, level: float, routellm: pd.DataFrame, threshold_curve: pd.DataFrame,
                 oracle: Outcome, outcomes: dict[str, Outcome], policies: dict[str, Policy],
                 replicates: Replicates, testable: np.ndarray, cascades: pd.DataFrame, reference_outcome: Outcome,
                 seed: int) -> None:
        self.table, self.models, self.reference = table, models, reference
        self.cascades = cascades
        self._ref_out, self._seed = reference_outcome, seed
        self.n_boot, self.level = n_boot, level
        self.routellm, self.threshold_curve = routellm, threshold_curve
        self.oracle = point_summary(matrix, oracle)
        self.price_sheet, self.cost_note, self.retries = matrix.price_sheet, matrix.cost_note, matrix.retries
        self.savings_basis = matrix.savings_basis
        self.n_prompts, self.dropped_prompts = matrix.n, matrix.dropped
        self.dropped_by_model = dict(matrix.dropped_by_model)
        self.unknown_prompts, self.unknown_by_model = matrix.unknown, dict(matrix.unknown_by_model)
        self._mx, self._outcomes, self._policies = matrix, outcomes, policies
        self._reps, self._testable = replicates, testable
        # on preferences with order-dependent pairs: the same evaluation with them as losses
        self.worst_order: PolicyReport | None = None

    @property
    def reference_quality(self) -> float:
        """The reference's mean quality on these prompts (what ``quality_diff`` is measured from)."""
        return float(self._ref_out.quality.mean())

    @property
    def caption(self) -> str:
        ci = (f"{self.level:.0%} CI: {bootstrap_method(self.n_prompts)}, {self.n_boot} resamples"
              if self.n_boot else "no bootstrap (n_boot=0)")
        dropped = ", ".join(f"{m} lacked {k}" for m, k in self.dropped_by_model.items() if k)
        return (f"{self.n_prompts} prompts answered by all {len(self._mx.models)} models "
                f"({self.dropped_prompts} dropped{': ' + dropped if dropped else ''}{self._unknown_text()}) · "
                f"reference: {self.reference} · {self.cost_note} · {_retries_text(self.retries)} · {ci} · "
                f"split: {self.split}{self._evidence_text()}")

    def _evidence_text(self) -> str:
        evidence = self.evidence
        if evidence is not None and evidence["informative"] and self.worst_order is not None:
            bias = evidence.get("position_bias_pct")
            shown = f", position bias {bias:.0f} %" if bias is not None else ""
            return (f" · order-dependent pairs{shown}: ties here, claims also tested with them as losses "
                    f"(report.worst_order)")
        return "" if evidence is None or evidence["informative"] else \
            f" · preferences uninformative ({evidence['why']}): nothing certified"

    @property
    def split(self) -> str:
        """Which split the evaluated prompts come from (a grouped one holds whole groups out)."""
        return split_kind(self._mx.runs.attrs.get(SPLIT_ATTR), side=True)

    def _unknown_text(self) -> str:
        if not self.unknown_prompts:
            return ""
        per_model = ", ".join(f"{m} {k}" for m, k in self.unknown_by_model.items() if k)
        return f"; {self.unknown_prompts} left out, quality unknown: {per_model}"

    def claim(self, *, min_savings_pct: float = 40.0, max_quality_loss: float = 0.02,
              alpha: float = 0.05) -> pd.DataFrame:
        """Does each router save ≥ ``min_savings_pct`` % at a loss of ≤ ``max_quality_loss`` (absolute
        mean-score difference vs the reference)? One row per policy: ``savings_pct``, ``savings_lo``
        (Fieller's t bound, skewness-corrected: see ``routing._ratio_test``) and ``quality_diff``,
        ``quality_diff_lo`` (Tango's paired score test, valid with no observed loss: see
        ``routing._claim``) — one-sided bounds at the router's Holm level;
        ``unknown_pct`` (prompts left out, quality unknown) and ``quality_diff_lo_unknown_as_loss``
        (the bound with each of them counted as a loss: a claim holds only if it clears the margin
        too); ``p_value``, ``p_holm`` (Holm-adjusted across the routers tested), ``verdict`` (holds /
        does not hold / not enough data), ``prompts_needed`` (for 80 % power at the observed effects,
        when the verdict is "not enough data" for want of prompts) and ``why``. The reference and
        policies that read the labels (Oracle) are not tested. Judge a router on prompts it was not
        tuned on (``routing.split``).
        """
        check_number("min_savings_pct", min_savings_pct, -1e9, 100)
        if not is_real(alpha) or not 0 < alpha < 1:
            raise InputError(f"alpha must be between 0 and 1, not {alpha!r}")
        _check_loss(max_quality_loss)
        table = claim_table(list(self.table.index), self._reps, self._testable,
                            min_savings_pct=min_savings_pct, max_quality_loss=max_quality_loss, alpha=alpha,
                            unknown=self.unknown_prompts)
        basis = "" if self.savings_basis == "cost" else f"of {self.savings_basis} "
        table.attrs["claim"] = (f"saves ≥ {min_savings_pct:g} % {basis}vs {self.reference} at a quality loss ≤ "
                                f"{max_quality_loss:g} (absolute), Holm-adjusted α = {alpha:g} over "
                                f"{int(self._testable.sum())} routers, {self.n_prompts} prompts"
                                + (f" ({self.unknown_prompts} more left out: quality unknown)"
                                   if self.unknown_prompts else "") + f"; {self.split}")
        table.attrs["unknown_prompts"] = self.unknown_prompts
        if self.worst_order is not None:
            table = self._both_readings(table, min_savings_pct, max_quality_loss, alpha)
        evidence = self.evidence
        if evidence is not None and not evidence["informative"]:
            table = refuse_uninformative(table, evidence)
            warnings.warn(f"claim: {table.attrs['warning']}", RuntimeWarning, stacklevel=2)
        return table

    def _both_readings(self, table: pd.DataFrame, min_savings_pct: float, max_quality_loss: float,
                       alpha: float) -> pd.DataFrame:
        """A claim on preferences with order-dependent pairs (the judge's two orders disagreed: a tie
        by the position rule, "as good" for routing) is certified only if it also holds with each
        such pair scored by its worse order, a loss: an answer the judge preferred only when it was
        shown first is no evidence of "as good", and reading it so shrinks every loss toward zero —
        the anti-conservative direction for a non-inferiority claim. Both readings are reported."""
        strict = self.worst_order
        assert strict is not None
        other = claim_table(list(strict.table.index), strict._reps, strict._testable,
                            min_savings_pct=min_savings_pct, max_quality_loss=max_quality_loss, alpha=alpha)
        out = table.copy()
        out["quality_diff_worst_order"] = other["quality_diff"]
        out["quality_diff_lo_worst_order"] = other["quality_diff_lo"]
        out["verdict_worst_order"] = other["verdict"]
        tested = out["verdict"] != "not tested (reference or reads the labels)"
        out.loc[tested, "p_value"] = np.maximum(out.loc[tested, "p_value"], other.loc[tested, "p_value"])
        out.loc[tested, "p_holm"] = np.maximum(out.loc[tested, "p_holm"], other.loc[tested, "p_holm"])
        attrs = self._mx.runs.attrs
        pairs = attrs.get(f"{self._mx.score_column}_order_dependent", 0)
        lazy = attrs.get(f"{self._mx.score_column}_ties_as_losses", False)
        tie_pct = attrs.get(f"{self._mx.score_column}_tie_pct")
        what = (f"the judge's ties ({tie_pct:.0f} % of its verdicts, the same in both orders) count as \"as good\""
                if lazy else f"the {pairs} order-dependent pairs (the judge's two orders disagreed) count as ties")
        cause = ("a judge that ties nearly everything shows no sign it would have seen a loss"
                 if lazy else "the judge's position bias leaves the claim open")
        open_ = tested & (out["verdict"] == "holds") & (other["verdict"] != "holds")
        for name in out.index[open_]:
            out.loc[name, "verdict"] = "not enough data"
            out.loc[name, "why"] = (f"holds only if {what}; with them as losses the quality difference is "
                                    f"{other.loc[name, 'quality_diff']:.3f} (bound "
                                    f"{other.loc[name, 'quality_diff_lo']:.3f}): {cause}")
        bias = (self.evidence or {}).get("position_bias_pct")
        out.attrs["claim"] = (table.attrs.get("claim", "") + "; certified only if it also holds with the "
                              + (f"judge's ties ({tie_pct:.0f} %) and " if lazy else "")
                              + f"{pairs} order-dependent pairs as losses (*_worst_order columns)"
                              + (f", position bias {bias:.0f} %" if bias is not None else ""))
        return out

    @property
    def evidence(self) -> dict | None:
        """What the preferences this report's quality comes from can show (``consistent_pct``,
        ``position_bias_pct``, ``informative``, ``why``: see ``routing.preference_quality``); None
        when the quality is a score. An uninformative source makes every claim "not enough data"."""
        return self._mx.runs.attrs.get(f"{self._mx.score_column}_evidence")

    def most_savings(self, *, max_quality_loss: float = 0.02) -> pd.DataFrame:
        """What is the most each knob policy (``Threshold``, ``Learned``, ``Verifier``,
        ``SelfConsistency``) can save vs the reference at a quality loss ≤ ``max_quality_loss``?

        One row per policy: the best point of its threshold sweep on these prompts —
        ``threshold``, ``strong_share`` (prompts sent up), ``savings_pct`` and ``quality_diff`` —
        with ``savings_lo``/``savings_hi``, a percentile-bootstrap interval (the report's resamples
        and level) in which the best point is chosen again in every resample, and
        ``feasible_share`` (resamples where some point keeps the quality). The Oracle's own point is
        added for comparison. Chosen on the prompts it is measured on, this is an optimistic bound of
        what the knob can reach here: the claim a router can make is ``claim()`` on a threshold tuned
        on other prompts (``routing.tune`` on the tune half)."""
        _check_loss(max_quality_loss)
        if self.n_boot == 0:
            raise InputError("most_savings() needs bootstrap replicates: evaluate(..., n_boot=1000) or more")
        mx, ref = self._mx, self._ref_out
        options: dict[str, Any] = {"max_quality_loss": max_quality_loss, "n_boot": self.n_boot,
                                   "seed": self._seed, "level": self.level}
        rows = {}
        for name in self.threshold_curve["policy"].unique():
            policy = self._policies[name]
            below, above = policy.arms(mx)  # type: ignore[attr-defined]
            thresholds = self.threshold_curve.loc[self.threshold_curve["policy"] == name, "threshold"].to_numpy()
            front = frontier(policy.values(mx), below, above, thresholds)  # type: ignore[attr-defined]
            rows[name] = most_savings_row(front, ref.spend, ref.quality, **options)
        oracle = Oracle().simulate(mx)
        rows["oracle"] = {**most_savings_row(frontier(np.zeros(mx.n), oracle, oracle, np.array([np.nan])),
                                             ref.spend, ref.quality, **options), "strong_share": np.nan}
        table = pd.DataFrame.from_dict(rows, orient="index")
        table.index.name = "policy"
        table.attrs["question"] = (f"the most saved vs {self.reference} at a quality loss ≤ {max_quality_loss:g}, "
                                   f"over each knob's sweep on these {self.n_prompts} prompts ({self.level:.0%} "
                                   "bootstrap interval, the point chosen again in each resample)")
        return table[["threshold", "strong_share", "savings_pct", "savings_lo", "savings_hi", "quality_diff",
                      "feasible_share"]]

    def by_task(self, policy: str | None = None, *, column: str = "task") -> pd.DataFrame:
        """Per task (or another prompt-level ``column``), for every policy (or ``policy``):
        ``prompts``, ``quality``, ``quality_diff`` (paired, vs the reference), ``savings_pct``
        and ``routed_<model>`` (the share of the task's prompts that model answered), each with
        ``*_ci_lo``/``*_ci_hi`` from a paired bootstrap within the task (the report's resamples
        and level). Index: (policy, task)."""
        outcomes = self._outcomes if policy is None else {policy: self._outcome(policy)}
        return by_task(self._mx, outcomes, self._ref_out, column=column, n_boot=self.n_boot, seed=self._seed,
                       level=self.level)

    @property
    def auc(self) -> pd.DataFrame:
        """Per learned router and model it predicts: how well its P(not good enough) ranks the
        answers that were not (``auc``, DeLong's ``auc_ci_lo``/``auc_ci_hi`` at the report's level),
        on these prompts — ``held_out`` says whether none of them was in its fit."""
        return learned_auc(self._mx, self._policies, level=self.level)

    def calibration(self, policy: str, *, model: str | None = None, bins: int = 10) -> pd.DataFrame:
        """A learned router's predicted P(not good enough) against the observed share, per bin
        (Wilson intervals); ``attrs``: ``brier``, ``ece``, ``held_out``. ``model``: which of its
        models (default: the cheapest)."""
        if policy not in self._policies:
            raise InputError(f"no policy {policy!r} in this report (policies: {', '.join(self._policies)})")
        return calibration(self._mx, self._policies[policy], model=model, bins=bins, level=self.level)

    def data_check(self, *, chance: float | Mapping[str, float] | None = None,
                   column: str = "task") -> pd.DataFrame:
        """Tasks where a model scores below a declared ``chance`` rate (significantly: its
        one-sided upper bound is below it) or exactly 0 or 1 on every prompt, on this report's
        prompts (``routing.check_data(runs, ...)`` checks all of them before splitting)."""
        return data_check(self._mx, chance=chance, column=column)

    def _outcome(self, policy: str) -> Outcome:
        if policy not in self._outcomes:
            raise InputError(f"no policy {policy!r} in this report (policies: {', '.join(self._outcomes)})")
        return self._outcomes[policy]

    def per_prompt(self, policy: str) -> pd.DataFrame:
        """One row per prompt: the models the policy called, the one served, cost, latency, quality."""
        out, mx = self._outcome(policy), self._mx
        names = np.array(mx.models + [""], dtype=object)
        tried = [" → ".join(names[row[row >= 0]]) for row in out.tried]
        frame = pd.DataFrame({"prompt_id": mx.prompt_ids, "served_model": names[out.served],
                              "models_tried": tried, "cost_usd": out.cost,
                              "latency_s": out.latency, "quality": out.quality,
                              "failed": out.failed})
        if "task" in mx.runs.columns:
            frame.insert(1, "task", mx.prompt_values("task"))
        return frame

    def plot(self, ax: Any = None, *, max_quality_loss: float | None = None) -> Any:
        """Cost vs quality: policies with CI whiskers, single-model Pareto frontier, knob sweeps
        (the cost–quality frontier of each threshold policy and answer-reading cascade), random and
        oracle baselines; with ``max_quality_loss`` a line at the reference's quality minus that
        loss. Returns the matplotlib Figure."""
        if max_quality_loss is not None:
            _check_loss(max_quality_loss)
        return plot_report(self, ax=ax, max_quality_loss=max_quality_loss)

    _SHOWN = ["requests", "cost_per_1k_usd", "cost_ci_lo", "cost_ci_hi", "quality",
              "quality_ci_lo", "quality_ci_hi", "quality_diff", "savings_pct", "savings_ci_lo",
              "savings_ci_hi", "latency_p50_s", "latency_p95_s"]

    def __repr__(self) -> str:
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            return clean_text(f"PolicyReport: {self.caption}\n{self.table[self._SHOWN].round(4).to_string()}")

    def _repr_html_(self) -> str:
        body = html_clean(self.table.to_html(float_format=lambda x: f"{x:.4g}"))  # pandas escapes the names
        return f"<div><p><b>PolicyReport</b> — {esc(self.caption)}</p>{body}</div>"


def _retries_text(retries: dict) -> str:
    if not retries.get("counted"):
        return "retries not billed (count_retries=False)"
    return (f"retries billed: {retries.get('attempts', 0)} earlier attempts, "
            f"${retries.get('cost_usd', 0.0):.4g}, waits and durations in latency")


def _check_loss(value: Any) -> None:
    if not is_real(value) or not np.isfinite(value) or value < 0:
        raise InputError(f"max_quality_loss is an absolute score difference ≥ 0 (e.g. 0.02), not {value!r}")
