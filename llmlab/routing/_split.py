"""Honest evaluation: split prompts into a tune half and a test half; tune a policy's knob on one.

A router's knob (a threshold, a classifier's cut-off) chosen on the same prompts it is judged on
looks better than it is. ``split`` divides the *prompts* (every model's rows of a prompt stay
together), stratified by task so both halves see every kind of prompt; ``tune`` picks a knob on
the tune half; ``evaluate`` and ``claim`` then judge it on the test half.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._errors import InputError
from ._matrix import build_matrix
from ._policies import Always, Policy, TaskMap
from ._stats import outcome, threshold_sweep


def split(runs: pd.DataFrame, *, test_size: float = 0.5, seed: int = 0,
          by: str | None = "task") -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(tune_runs, test_runs)``: the rows of ``runs`` split by prompt.

    test_size: the share of prompts in the test half (0–1). seed: the shuffle's seed.
    by: a prompt-level column to stratify on (default ``task``; None or a missing column: no
        strata). Each stratum is split in the same proportion (rounded; a stratum of one prompt
        goes to the tune half).
    """
    if not isinstance(runs, pd.DataFrame) or "prompt_id" not in runs.columns:
        raise InputError("split() needs the runs DataFrame (with a prompt_id column)")
    if isinstance(test_size, bool) or not isinstance(test_size, (int, float)) or not 0 < test_size < 1:
        raise InputError(f"test_size is the share of prompts held out, between 0 and 1, not {test_size!r}")
    prompts = runs.drop_duplicates("prompt_id")
    strata = prompts[by].astype(str).to_numpy() if by is not None and by in runs.columns else \
        np.full(len(prompts), "")
    rng = np.random.default_rng(seed)
    test_ids: list[Any] = []
    for stratum in sorted(set(strata)):
        ids = prompts["prompt_id"].to_numpy()[strata == stratum]
        ids = ids[rng.permutation(len(ids))]
        take = int(np.floor(len(ids) * test_size + 0.5)) if len(ids) > 1 else 0
        test_ids.extend(ids[:take])
    if not test_ids or len(test_ids) == len(prompts):
        raise InputError(f"cannot split {len(prompts)} prompt(s) into two non-empty halves; record more prompts")
    in_test = runs["prompt_id"].isin(set(test_ids))
    return runs[~in_test], runs[in_test]


def tune(policy: Policy, runs: pd.DataFrame, *, max_quality_loss: float = 0.02,
         reference: str | None = None, score: str = "score", models: Sequence[str] | None = None,
         prices: Any = None, price_as: Mapping[str, str] | None = None,
         count_retries: bool = True) -> Policy:
    """A copy of ``policy`` with its knob set on ``runs`` (the tune half): the cheapest setting whose
    mean quality is at most ``max_quality_loss`` below the reference's (default: the best model).

    The policy must have a knob: ``values(matrix)`` (higher = more need for the strong model) and
    ``with_threshold(t)`` — :class:`Threshold` and :class:`Learned` do. When no setting keeps the
    quality, every prompt goes to the strong model (threshold −inf). A fitted :class:`Learned`
    router is swept on out-of-fold predictions (5-fold cross-fitting on ``runs``): on the prompts
    it was fitted on it would look better than it is, and the threshold would be too bold.
    """
    if not (callable(getattr(policy, "values", None)) and callable(getattr(policy, "with_threshold", None))):
        raise InputError(f"{policy.name} has no knob to tune (Threshold and Learned policies do)")
    mx = build_matrix(runs, score, models, prices, price_as, count_retries=count_retries, warn_dropped=False)
    singles = {m: outcome(mx, Always(m).route(mx)) for m in mx.models}
    if reference is None:
        reference = max(mx.models, key=lambda m: (singles[m].quality.mean(),
                                                   -np.nan_to_num(singles[m].cost.sum(), nan=np.inf)))
    mx.index(reference)
    floor = singles[reference].quality.mean() - max_quality_loss
    weak, strong = singles[policy.weak], singles[policy.strong]     # type: ignore[attr-defined]
    honest = getattr(policy, "out_of_fold_values", None)
    values = honest(runs, mx) if callable(honest) else policy.values(mx)  # type: ignore[attr-defined]
    sweep = threshold_sweep(np.asarray(values, dtype=float), weak, strong, points=min(mx.n + 1, 1001))
    ok = sweep["quality"] >= floor - 1e-12
    cost = np.nan_to_num(sweep["cost_usd"], nan=np.inf)
    best = np.flatnonzero(ok)[np.argmin(cost[ok])] if ok.any() else None
    threshold = float(sweep["threshold"][best]) if best is not None else -np.inf
    tuned = policy.with_threshold(threshold)                          # type: ignore[attr-defined]
    tuned.tuned_on = {"prompts": mx.n, "reference": reference, "quality_floor": float(floor),
                      "feasible": best is not None}
    return tuned


def with_knob(policy: Any, threshold: float, name: str) -> Any:
    """A shallow copy of ``policy`` with another threshold and name (the knob's one setter)."""
    twin = copy.copy(policy)
    twin.threshold, twin.name = float(threshold), name
    return twin


def fit_task_map(runs: pd.DataFrame, *, max_quality_loss: float = 0.02, score: str = "score",
                 models: Sequence[str] | None = None, prices: Any = None,
                 price_as: Mapping[str, str] | None = None, count_retries: bool = True,
                 name: str = "task map") -> TaskMap:
    """A :class:`TaskMap` chosen on ``runs`` (the tune half): per task, the cheapest model whose
    mean quality on that task is within ``max_quality_loss`` of the task's best model; tasks not
    seen go to the model with the best mean quality overall (the default reference)."""
    mx = build_matrix(runs, score, models, prices, price_as, count_retries=count_retries, warn_dropped=False)
    if "task" not in mx.runs.columns:
        raise InputError("fit_task_map needs a task column in the runs")
    tasks = pd.Series(mx.prompt_values("task")).astype(object).fillna("(none)").to_numpy()
    cost = np.nan_to_num(mx.cost, nan=np.inf)
    best_overall = max(range(len(mx.models)), key=lambda j: (mx.score[:, j].mean(), -cost[:, j].sum()))
    mapping = {}
    for task in pd.unique(tasks):
        rows = tasks == task
        quality, spend = mx.score[rows].mean(axis=0), cost[rows].sum(axis=0)
        keep = np.flatnonzero(quality >= quality.max() - max_quality_loss - 1e-12)
        mapping[str(task)] = mx.models[min(keep, key=lambda j: (spend[j], -quality[j]))]
    policy = TaskMap(mapping, default=mx.models[best_overall], name=name)
    policy.tuned_on = {"prompts": mx.n, "max_quality_loss": max_quality_loss}
    return policy
