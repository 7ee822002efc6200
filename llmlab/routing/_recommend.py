"""``recommend``: from scored runs to a decision — who should answer what, with evidence.

Splits the prompts (tune / test), chooses on the tune half a task map (per task, the cheapest model
within ``max_quality_loss`` of the task's best), a prompt-length threshold and a learned router
(when scikit-learn is installed), judges every router on the test half against the best single
model, runs the claim test and picks the policy to use: the one saving most among those whose
claim holds, else the one with the best quality bound (and says the claim is not shown).
"""
from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..base._errors import InputError
from ._evaluate import evaluate
from ._learned import Learned
from ._matrix import build_matrix
from ._policies import Always, Oracle, Policy, Random, Threshold
from ._preferences import PREFERENCE_COLUMN, preference_quality
from ._report import PolicyReport
from ._split import fit_task_map, split, tune

NOT_TESTED = "not tested (reference or reads the labels)"


@dataclass
class Recommendation:
    """What :func:`recommend` decided. ``per_task``: per task, the model to use, its test quality
    and the paired difference from the reference with a 95 % CI; ``policies``: every router's
    test savings and quality difference with CIs and claim verdict; ``policy``: the one to use
    (``lab.route(prompt, policy=rec.policy, task=...)``); ``report``: the full PolicyReport."""

    per_task: pd.DataFrame
    policies: pd.DataFrame
    policy: Policy
    claim_holds: bool
    report: PolicyReport
    caption: str


def recommend(runs: pd.DataFrame, *, models: Sequence[str] | None = None, max_quality_loss: float = 0.02,
              min_savings_pct: float = 40.0, prices: Any = None, price_as: Mapping[str, str] | None = None,
              test_size: float = 0.5, seed: int = 0, n_boot: int = 1000, learned: bool = True,
              score: str = "score", groups: str | None = None, confidence: float | None = None,
              preferences: pd.DataFrame | None = None, reference: str | None = None) -> Recommendation:
    """Choose who should answer what on scored ``runs`` (needs a ``task`` column); see the module doc.

    groups: None splits the prompts at random (stratified by task): the verdicts hold for new
        prompts of the recorded tasks. A column name (e.g. ``"task"``) holds whole groups out of
        the tune half, so the routers are judged on groups they never saw (``routing.split``).
        A learned router judged on groups it was trained on is warned about.
    confidence: how the length threshold and the learned router are tuned (``routing.tune``):
        None keeps the tune half's measured loss within ``max_quality_loss``; e.g. 0.95 keeps its
        upper confidence bound there, so the test half keeps the limit more often, saving less.
    preferences: a preference frame as the quality signal instead of ``score`` (an answer is good
        when at least as good as ``reference``'s, the model every pair involves by default; see
        :func:`routing.preference_quality`); the reference is then the strong model.
    """
    money = {"prices": prices, "price_as": price_as}
    if preferences is not None:
        runs = preference_quality(runs, preferences, reference=reference)
        score = PREFERENCE_COLUMN
    everything = build_matrix(runs, score, models, warn_dropped=False, **money)
    models = everything.models
    if len(models) < 2:
        raise InputError("recommend() needs runs of at least two models")
    tune_runs, test_runs = split(runs, test_size=test_size, seed=seed, by="task", groups=groups)
    ranked = _ranked(tune_runs, score, models, money)
    strong, weak = ranked[0], ranked[-1]
    policies = _candidates(tune_runs, strong, weak, {"max_quality_loss": max_quality_loss, "confidence": confidence},
                           money, learned, score, models)
    if any(isinstance(p, Learned) for p in policies):
        _warn_seen_groups(tune_runs, test_runs, groups or "task")
    report = evaluate(test_runs, policies, models=models, reference=strong, score=score, n_boot=n_boot,
                      seed=seed, **money)
    claim = report.claim(min_savings_pct=min_savings_pct, max_quality_loss=max_quality_loss)
    chosen, holds = _winner(claim, report)
    table = _policy_table(report, claim)
    per_task = _per_task(test_runs, policies[0], strong, score, models, n_boot, seed, money)
    caption = (f"tune {tune_runs['prompt_id'].nunique()} / test {test_runs['prompt_id'].nunique()} prompts "
               f"({report.split}); reference always({strong}); claim: saves ≥ {min_savings_pct:g} % at a "
               f"loss ≤ {max_quality_loss:g}; {report.cost_note}")
    by_name = {p.name: p for p in policies}
    return Recommendation(per_task, table, by_name[chosen], holds, report, caption)


def _warn_seen_groups(tune_runs: pd.DataFrame, test_runs: pd.DataFrame, column: str) -> None:
    """A learned router judged on groups it was trained on looks better than it will on new ones."""
    if column not in test_runs.columns:
        return
    seen = set(test_runs[column].dropna()) & set(tune_runs[column].dropna())
    if seen:
        total = test_runs[column].nunique()
        warnings.warn(f"recommend: the learned router is judged on {len(seen)} of {total} {column!r} groups it "
                      "was trained on (a random split): its numbers hold for new prompts of these groups, "
                      f"not for new groups; recommend(..., groups={column!r}) holds whole groups out",
                      RuntimeWarning, stacklevel=3)


def _ranked(runs: pd.DataFrame, score: str, models: list[str], money: dict) -> list[str]:
    """Models by tune-half mean quality, best first (ties: the cheaper first)."""
    return build_matrix(runs, score, models, warn_dropped=False, **money).ranked_models()


def _candidates(tune_runs, strong, weak, limit, money, learned, score, models) -> list[Policy]:
    policies: list[Policy] = [
        fit_task_map(tune_runs, max_quality_loss=limit["max_quality_loss"], score=score, models=models,
                     name="task map", **money),
        tune(Threshold("prompt_chars", 0, weak=weak, strong=strong, name="length threshold"), tune_runs,
             score=score, models=models, **limit, **money),
    ]
    if learned and importlib.util.find_spec("sklearn") is not None:

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            fitted = Learned(weak, strong, name="learned").fit(tune_runs, score=score)
            policies.append(tune(fitted, tune_runs, score=score, models=models, **limit, **money))
    policies += [Random(0.5, weak=weak, strong=strong, name="random 50%"), Oracle()]
    return policies


def _winner(claim: pd.DataFrame, report: PolicyReport) -> tuple[str, bool]:
    tested = claim[claim["verdict"] != NOT_TESTED]
    holds = tested[tested["verdict"] == "holds"]
    if len(holds):
        return str(holds["savings_pct"].idxmax()), True
    return str(tested["quality_diff_lo"].idxmax()), False


def _policy_table(report: PolicyReport, claim: pd.DataFrame) -> pd.DataFrame:
    columns = ["savings_pct", "savings_ci_lo", "savings_ci_hi", "quality", "quality_diff",
               "quality_diff_ci_lo", "quality_diff_ci_hi", "cost_per_1k_usd"]
    return report.table[columns].join(claim[["verdict"]])


def _per_task(test_runs, task_map, strong, score, models, n_boot, seed, money) -> pd.DataFrame:
    rows = []
    for task, part in test_runs.groupby("task", sort=True):
        model = task_map.mapping.get(str(task), task_map.default)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            rep = evaluate(part, [Always(model, name="chosen")], models=models, reference=strong, score=score,
                           n_boot=n_boot, seed=seed, **money)
        row = rep.table.loc["chosen"]
        rows.append({"task": task, "model": model, "prompts": rep.n_prompts, "quality": row["quality"],
                     "reference_quality": rep.models.loc[f"always({strong})", "quality"],
                     "quality_diff": row["quality_diff"], "quality_diff_ci_lo": row["quality_diff_ci_lo"],
                     "quality_diff_ci_hi": row["quality_diff_ci_hi"], "savings_pct": row["savings_pct"]})
    return pd.DataFrame(rows).set_index("task")
