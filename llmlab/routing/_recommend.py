"""``recommend``: from scored runs to a decision — who should answer what, with evidence.

Splits the prompts (tune / test), chooses on the tune half a task map (per task, the cheapest model
within ``max_quality_loss`` of the task's best), a prompt-length threshold and a learned router
(when scikit-learn is installed) between the best model on the tune half and the best cheaper one,
and picks on the tune half the router to use: the one saving most there among those within the
margin there (the numbers each router was chosen on: out-of-fold for a learned router). The test
half is the evidence: every router is judged there against the best single model with 95 %
intervals and the claim test, and a pick that loses more than the margin there is not used — the
recommendation is then the strongest model alone, and says why.
"""
from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..analysis._evidence import evidence_words
from ..base._errors import InputError
from ._evaluate import evaluate
from ._learned import Learned
from ._matrix import Matrix, build_matrix
from ._policies import Always, Oracle, Policy, Random, Threshold
from ._preferences import PREFERENCE_COLUMN, preference_quality
from ._report import PolicyReport
from ._split import fit_task_map, split, tune

NOT_TESTED = "not tested (reference or reads the labels)"


@dataclass
class Recommendation:
    """What :func:`recommend` decided. ``per_task``: per task, the model to use, its test quality
    and the paired difference from the reference with a 95 % CI; ``policies``: every router's
    models, the tune-half savings and quality difference it was picked on, its test savings and
    quality difference with CIs and claim verdict; ``policy``: the one to use
    (``lab.route(prompt, policy=rec.policy, task=...)``) — ``Always(<strongest>)`` when no router
    keeps quality; ``why``: how it was picked, in words; ``report``: the test half's PolicyReport."""

    per_task: pd.DataFrame
    policies: pd.DataFrame
    policy: Policy
    claim_holds: bool
    report: PolicyReport
    caption: str
    why: str = ""


def recommend(runs: pd.DataFrame, *, models: Sequence[str] | None = None, max_quality_loss: float = 0.02,
              min_savings_pct: float = 40.0, prices: Any = None, price_as: Mapping[str, str] | None = None,
              test_size: float = 0.5, seed: int = 0, n_boot: int = 1000, learned: bool = True,
              score: str = "score", groups: str | None = None, confidence: float | None = None,
              preferences: pd.DataFrame | None = None, reference: str | None = None) -> Recommendation:
    """Choose who should answer what on scored ``runs``; see the module doc. Runs without a
    ``task`` (or with None) are one task, ``"(none)"``; ``per_task`` says of a task with nothing to
    evaluate (every verdict unknown there) "unknown, left out" in its ``note``.

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
    if isinstance(runs, pd.DataFrame) and "task" not in runs.columns:
        runs = runs.assign(task=None)            # untasked runs are one task, "(none)"
    if preferences is not None:
        runs = preference_quality(runs, preferences, reference=reference)
        score = PREFERENCE_COLUMN
    everything = build_matrix(runs, score, models, warn_dropped=False, **money)
    models = everything.models
    if len(models) < 2:
        raise InputError("recommend() needs runs of at least two models")
    tune_runs, test_runs = split(runs, test_size=test_size, seed=seed, by="task", groups=groups)
    tune_mx = build_matrix(tune_runs, score, models, warn_dropped=False, **money)
    strong, weak = _sides(tune_mx, runs.attrs.get(f"{PREFERENCE_COLUMN}_reference") if preferences is not None
                          else None)
    policies = _candidates(tune_runs, strong, weak, {"max_quality_loss": max_quality_loss, "confidence": confidence},
                           money, learned, score, models)
    if any(isinstance(p, Learned) for p in policies):
        _warn_seen_groups(tune_runs, test_runs, groups or "task")
    report = evaluate(test_runs, policies, models=models, reference=strong, score=score, n_boot=n_boot,
                      seed=seed, **money)
    claim = report.claim(min_savings_pct=min_savings_pct, max_quality_loss=max_quality_loss)
    table = _policy_table(report, claim, policies, _tune_half(tune_runs, policies, strong, score, models, money),
                          models)
    chosen, why = _pick(table, max_quality_loss,
                        lazy=bool(runs.attrs.get(f"{PREFERENCE_COLUMN}_ties_as_losses", False)))
    if report.evidence is not None and not report.evidence["informative"]:
        chosen, why = None, (f"the preferences {evidence_words(report.evidence)} ({report.evidence['why']}): no "
                             f"router is certified on them; the reference {strong} alone")
    by_name = {p.name: p for p in policies}
    policy = by_name[chosen] if chosen is not None else Always(strong, name=f"always({strong})")
    holds = chosen is not None and table.loc[chosen, "verdict"] == "holds"
    per_task = _per_task(test_runs, policies[0], strong, score, models, n_boot, seed, money)
    caption = (f"tune {tune_runs['prompt_id'].nunique()} / test {test_runs['prompt_id'].nunique()} prompts "
               f"({report.split}); reference always({strong}); claim: saves ≥ {min_savings_pct:g} % at a "
               f"loss ≤ {max_quality_loss:g}; {report.cost_note}")
    return Recommendation(per_task, table, policy, holds, report, caption, why)


def _sides(mx: Matrix, reference: str | None = None) -> tuple[str, str]:
    """(strong, weak) for the two-model routers: the best model on the tune half (on preferences,
    the reference: every other model is at best as good as it, and ties would rank the cheap one
    first), and the best of those that cost less than it (ties: the cheaper) — the cheap side most
    likely to keep quality, not the worst model; with no cheaper model known, the second best."""
    ranked = mx.ranked_models()
    if reference is not None:
        ranked = [reference, *(m for m in ranked if m != reference)]
    cost = dict(zip(mx.models, mx.cost.sum(axis=0), strict=True))
    cheaper = [m for m in ranked[1:] if cost[m] < cost[ranked[0]]]     # NaN compares False: not known cheaper
    return ranked[0], (cheaper or ranked[1:])[0]


def _pick(table: pd.DataFrame, margin: float, *, lazy: bool = False) -> tuple[str | None, str]:
    """The router to use and why: picked on the tune half (the most savings among those within
    ``margin`` there; ties: the better quality), kept if it stays within ``margin`` on the test
    half; None (the strongest model alone) otherwise."""
    deployable = table[table["verdict"] != NOT_TESTED]
    within = deployable[deployable["tune_quality_diff"] >= -margin - 1e-12]
    if within.empty:
        return None, f"no router kept quality within {margin:g} on the tune half"
    best = str(within.sort_values(["tune_savings_pct", "tune_quality_diff"], ascending=False, kind="stable").index[0])
    loss = -float(table.loc[best, "quality_diff"])
    if not loss <= margin + 1e-12:
        return None, (f"{best}, the tune half's pick (it saves the most there within {margin:g}), loses "
                      f"{loss:.2f} on the test half, beyond {margin:g}")
    if "quality_diff_worst_order" in table.columns:
        # the judge's order-dependent pairs are ties in quality_diff; as losses the pick must keep quality too
        worst = -float(table.loc[best, "quality_diff_worst_order"])
        if not worst <= margin + 1e-12 and lazy:
            return None, (f"{best}, the tune half's pick, loses {loss:.2f} on the test half if the judge's ties "
                          f"are \"as good\" but {worst:.2f} if they are losses, beyond {margin:g}: a judge that ties "
                          "nearly everything shows no sign it would have seen a loss, so the reference alone")
        if not worst <= margin + 1e-12:
            return None, (f"{best}, the tune half's pick, loses {loss:.2f} on the test half if the judge's "
                          f"order-dependent pairs are ties but {worst:.2f} if they are losses, beyond {margin:g}: "
                          "the judge's position bias cannot tell, so the reference alone")
    return best, f"picked on the tune half, where it saves the most within {margin:g}"


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


def _tune_half(tune_runs, policies, strong, score, models, money) -> pd.DataFrame:
    """Savings and quality difference on the tune half, as each router was chosen there: a tuned
    knob's own sweep (out-of-fold for a learned router, which would look better on the prompts it
    was fitted on), the rest evaluated on the tune half."""
    deployable = [p for p in policies if not isinstance(p, Oracle)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        table = evaluate(tune_runs, deployable, models=models, reference=strong, score=score, n_boot=0,
                         **money).table[["savings_pct", "quality_diff"]].copy()
    for p in deployable:
        tuned_on = p.tuned_on or {}
        if "savings_pct" in tuned_on:
            table.loc[p.name] = [tuned_on["savings_pct"], -tuned_on["quality_loss"]]
    return table.rename(columns={"savings_pct": "tune_savings_pct", "quality_diff": "tune_quality_diff"})


def _policy_table(report: PolicyReport, claim: pd.DataFrame, policies: list[Policy], tuned: pd.DataFrame,
                  models: list[str]) -> pd.DataFrame:
    columns = ["savings_pct", "savings_ci_lo", "savings_ci_hi", "quality", "quality_diff",
               "quality_diff_ci_lo", "quality_diff_ci_hi", "cost_per_1k_usd"]
    extra = [c for c in ("quality_diff_worst_order", "verdict_worst_order") if c in claim.columns]
    table = report.table[columns].join(claim[["verdict", *extra]]).join(tuned)
    table.insert(0, "models", [" / ".join(p.needs() or models) for p in policies])
    return table


_PER_TASK_COLUMNS = ["task", "model", "prompts", "quality", "reference_quality", "quality_diff", "quality_diff_ci_lo",
                     "quality_diff_ci_hi", "savings_pct", "note"]


def _per_task(test_runs, task_map, strong, score, models, n_boot, seed, money) -> pd.DataFrame:
    """Per task of the test half, the task map's model against the reference. Runs without a task
    are one task, ``"(none)"`` (as the task map calls them); a task with nothing to evaluate (every
    verdict unknown there) is a row saying so — unknown, left out — not the end of the
    recommendation."""
    rows = []
    tasks = test_runs["task"].astype(object).where(test_runs["task"].notna(), "(none)")
    for task, part in test_runs.groupby(tasks.to_numpy(), sort=True):
        model = task_map.mapping.get(str(task), task_map.default)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                rep = evaluate(part, [Always(model, name="chosen")], models=models, reference=strong, score=score,
                               n_boot=n_boot, seed=seed, **money)
        except InputError as e:
            rows.append({"task": task, "model": model, "prompts": 0, "note": f"unknown, left out: {e}"})
            continue
        row = rep.table.loc["chosen"]
        rows.append({"task": task, "model": model, "prompts": rep.n_prompts, "quality": row["quality"],
                     "reference_quality": rep.models.loc[f"always({strong})", "quality"],
                     "quality_diff": row["quality_diff"], "quality_diff_ci_lo": row["quality_diff_ci_lo"],
                     "quality_diff_ci_hi": row["quality_diff_ci_hi"], "savings_pct": row["savings_pct"],
                     "note": ""})
    return pd.DataFrame(rows, columns=_PER_TASK_COLUMNS).set_index("task")
