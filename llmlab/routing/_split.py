"""Honest evaluation: split prompts into a tune half and a test half; tune a policy's knob on one.

A router's knob (a threshold, a classifier's cut-off) chosen on the same prompts it is judged on
looks better than it is. ``split`` divides the *prompts* (every model's rows of a prompt stay
together); ``tune`` picks a knob on the tune half; ``evaluate`` and ``claim`` then judge it on the
test half.

Two kinds of split. **Random** (the default): prompts drawn at random, stratified by task so both
halves see every kind of prompt — the numbers then hold for *new prompts of the same tasks*.
**Grouped** (``groups="task"``): whole groups held out, so no group is on both sides — the
numbers hold for *tasks the router has never seen*, which is what a user's next project looks
like. A learned router usually looks much better on a random split than on a grouped one; the
split's kind travels with both halves (``DataFrame.attrs``) and every caption says which it was.

**Duplicate texts.** "Held out" means held-out *texts*: the same prompt under two ids (a dataset
with its own row ids, concatenated sweeps, a question asked again, a copy re-typed or re-formatted)
would otherwise land on both sides, and a learned router that memorised it scores well on "new"
prompts (review 22b: one on pure noise reported held-out AUC 0.83). A random split keeps every
prompt id of one text on one side — it draws texts, not ids — and warns when such copies exist; a
grouped split holds its groups out whole and warns when one text is in both halves (its copies are
in two groups). ``evaluate``'s in-sample warning and ``report.auc``'s ``held_out`` compare texts
the same way (``_matrix.text_key``, the one rule).

*What counts as the same text*: the same **word sequence**. Words are runs of letters and digits
(with their combining marks), after NFKC and case folding; a number keeps its '.', ',' or ':' (3.5
is not 35). Ignored: whitespace, punctuation, quotes, markup (``**``, backticks, '#' headings, '>'
quotes, '-'/'*'/'•' bullets, '|' and '~'; a '+' is a plus), zero-width and other default-ignorable
characters, a list number or a ``Q:``/``Question:``/``Prompt:``/``A:``/``Answer:`` label at the
very start, and an ``Answer:`` or ``A:`` label at the very end. So "What is the capital of
France?", "**Q:** what is the capital of France" and '3. `What` is the capital of "France"?
Answer:' are one text. Symbols are words: math, currency and other symbols ("5 > 3" is not "5 < 3",
"$5" is not "€5"), and the signs that are punctuation in prose but operators beside numbers ('-',
'*', '/', '^', '·' between two numbers, '-' before one, '%' after one: "What is 12 - 5?" is not
"What is 12 * 5?"). Chat messages (the ``messages`` column) are compared turn by turn, with their
roles, each turn's text by its words (a single user turn is its text, as a prompt string is sent);
other parts (an image, a tool call) exactly. A text without any word is compared by its characters.

*What does not count, and why*: texts whose words differ — a synonym, a reordering, a typo, one
word added or dropped ("The tent was broken." and "The umbrella was horrible.", "Greta moved to
Quito" and "Priya moved to Quito") — are different prompts, even when they are near each other.
Prompts filled in from one template differ in exactly such a word or two, and no similarity
threshold tells a re-typed copy from a template fill (in ``datasets.generate``'s set a prompt's
nearest other fill has a median character similarity of 0.97; 81 % of the re-typed copies of
``tests/test_split_near_copies.py`` are less similar to their original than that), so fuzzy
matching would join independent prompts and is out of reach. What the rule cannot see: copies that
differ in a word (paraphrases, translations, "1,000" and "1000"), and, the other way, prompts that
differ *only* in punctuation or markup (a template filling in a punctuation mark), which it joins.
(``build_matrix``'s check that one prompt_id names one prompt compares the exact texts instead: a
model answers the characters it was sent.)
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ..base._errors import InputError
from ..base._validate import check_number, did_you_mean
from ._matrix import SAME_TEXT, Matrix, _prompt_texts, build_matrix, prompt_text_keys, text_key
from ._policies import Always, Policy, TaskMap
from ._stats import Outcome, ladder_sweep, outcome, threshold_sweep

SPLIT_ATTR = "llmlab_split"      # the key of a split's description in both halves' DataFrame.attrs
_NONE = "\x00none"                # a missing stratum/group value: a stratum/group of its own


class Split(NamedTuple):
    """What :func:`split` returns: ``(tune, test)`` — unpack it as two DataFrames — plus
    ``kind`` (one line: which split this is) and ``summary`` (prompts and groups per side)."""

    tune: pd.DataFrame
    test: pd.DataFrame

    @property
    def kind(self) -> str:
        return split_kind(self.test.attrs.get(SPLIT_ATTR))

    @property
    def summary(self) -> pd.DataFrame:
        info = self.test.attrs[SPLIT_ATTR]
        frame = pd.DataFrame({"prompts": info["prompts"], "groups": info["groups"]}).loc[["tune", "test"]]
        frame.attrs["kind"] = self.kind
        return frame

    def __repr__(self) -> str:
        return f"Split({self.kind}; tune {len(self.tune)} rows, test {len(self.test)} rows)"


def split_kind(info: Mapping[str, Any] | None, side: bool = False) -> str:
    """A split's description in words (``side``: say which half these runs are)."""
    if not info:
        return "no recorded split (runs not from routing.split)"
    half = f"{info['side']} half of " if side else ""
    if info["kind"] == "grouped":
        held = f"{info['groups']['test']} of {info['groups']['tune'] + info['groups']['test']}"
        return (f"{half}a grouped split (whole {info['column']!r} groups held out, {held} in the test half; "
                "numbers hold for unseen groups)")
    strata = f", stratified by {info['column']!r}" if info["column"] else ""
    return f"{half}a random split by prompt{strata} (numbers hold for new prompts of the same groups)"


def split(runs: pd.DataFrame, *, test_size: float = 0.5, seed: int = 0,
          by: str | None = "task", groups: str | None = None) -> Split:
    """``(tune_runs, test_runs)``: the rows of ``runs`` split by prompt (a :class:`Split`).

    test_size: the share of prompts in the test half (0–1); the test half gets round(n × test_size)
        prompts (with ``groups``: whole groups, as close to that share as they allow).
        seed: the shuffle's seed (the split does not depend on the rows' order).
    by: a prompt-level column to stratify on (default ``task``; None or a missing column: no
        strata; a missing value is a stratum of its own). Each stratum gets its share of the test
        prompts, the remainders going to the strata with the largest fractions. Not used with
        ``groups``.
    groups: a prompt-level column whose groups are held out whole (e.g. ``"task"``): no group has
        prompts on both sides, so the test half measures a router on groups it never saw.

    Both halves carry the split's description in ``.attrs["llmlab_split"]``: ``evaluate``,
    ``claim`` and ``recommend`` name the kind of split their numbers come from.
    """
    prompts, total = _prompts(runs, test_size)
    if by is not None and by != "task" and by not in runs.columns:  # the default may be missing; a choice may not
        hint = did_you_mean(str(by), list(map(str, runs.columns)))
        raise InputError(f"split(by={by!r}): the runs have no such column.{hint}")
    keys = _text_keys(runs, prompts)
    if groups is not None:
        test_ids, info = _grouped(runs, prompts, groups, total, seed)
        _warn_groups_share_texts(prompts, keys, test_ids)
    else:
        units = prompts[~pd.Series(keys, index=prompts.index).duplicated().to_numpy()]   # one per text
        if len(units) < 2:
            raise InputError(f"cannot split: the {len(prompts)} prompts have one text between them ({SAME_TEXT}); "
                             "record more prompts")
        unit_total = int(np.floor(len(units) * float(test_size) + 0.5)) if len(units) < len(prompts) else total
        unit_total = min(max(unit_total, 1), len(units) - 1)
        chosen, info = _stratified(units, by if by is not None and by in runs.columns else None, unit_total, seed)
        picked = set(keys[np.isin(prompts["prompt_id"].to_numpy(), chosen)])
        test_ids = list(prompts["prompt_id"].to_numpy()[np.isin(keys, list(picked))])
        _warn_duplicates(prompts, keys)
    in_test = runs["prompt_id"].isin(set(test_ids))
    tune_runs, test_runs = runs[~in_test], runs[in_test]   # new frames: their attrs are their own
    info.update(seed=seed, prompts={"tune": len(prompts) - len(test_ids), "test": len(test_ids)})
    for side, frame in (("tune", tune_runs), ("test", test_runs)):
        frame.attrs[SPLIT_ATTR] = {**info, "side": side}
    return Split(tune_runs, test_runs)


def _prompts(runs: pd.DataFrame, test_size: float) -> tuple[pd.DataFrame, int]:
    """One row per prompt (sorted by id, so the row order does not matter) and the test count."""
    if not isinstance(runs, pd.DataFrame) or "prompt_id" not in runs.columns:
        raise InputError("split() needs the runs DataFrame (with a prompt_id column)")
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real) or not 0 < test_size < 1:
        raise InputError(f"test_size is the share of prompts held out, between 0 and 1, not {test_size!r}")
    if runs["prompt_id"].isna().any():
        raise InputError("some rows have no prompt_id; drop them or fill it in before splitting")
    prompts = runs.drop_duplicates("prompt_id")
    prompts = prompts.iloc[np.argsort(prompts["prompt_id"].astype(str).to_numpy(), kind="stable")]
    total = int(np.floor(len(prompts) * float(test_size) + 0.5))
    if total == 0 or total == len(prompts):
        raise InputError(f"cannot split {len(prompts)} prompt(s) into two non-empty halves at test_size="
                         f"{test_size}; record more prompts")
    return prompts, total


def _text_keys(runs: pd.DataFrame, prompts: pd.DataFrame) -> np.ndarray:
    """Per prompt row, its normalised text (its id where no text is recorded)."""
    texts = _prompt_texts(prompts, np.arange(len(prompts)))
    ids = prompts["prompt_id"].astype(str).to_numpy()
    if texts is None:
        return np.array(["\x00id:" + i for i in ids], dtype=object)
    return np.array([text_key(t) if isinstance(t, str) else "\x00id:" + i for t, i in zip(texts, ids, strict=True)],
                    dtype=object)


def _warn_duplicates(prompts: pd.DataFrame, keys: np.ndarray) -> None:
    counts = pd.Series(keys).value_counts()
    shared = counts[counts > 1]
    if len(shared):
        warnings.warn(f"split: {len(shared)} prompt texts appear under more than one prompt_id ({int(shared.sum())} "
                      f"ids; {SAME_TEXT}): each text's ids are kept on one side, so a text is never "
                      "both tuned and tested on", RuntimeWarning, stacklevel=3)


def _warn_groups_share_texts(prompts: pd.DataFrame, keys: np.ndarray, test_ids: list[Any]) -> None:
    in_test = np.isin(prompts["prompt_id"].to_numpy(), test_ids)
    both = set(keys[in_test]) & set(keys[~in_test])
    if both:
        warnings.warn(f"split: {len(both)} prompt texts are in both halves under different prompt_ids (their groups "
                      f"differ; {SAME_TEXT}): the test half has prompts the tune half saw",
                      RuntimeWarning, stacklevel=3)


def _labels(prompts: pd.DataFrame, column: str) -> np.ndarray:
    values = prompts[column]
    return values.astype(object).where(values.notna(), _NONE).astype(str).to_numpy()


def _stratified(prompts: pd.DataFrame, by: str | None, total: int, seed: int) -> tuple[list[Any], dict]:
    strata = _labels(prompts, by) if by is not None else np.full(len(prompts), "")
    ids = prompts["prompt_id"].to_numpy()
    rng = np.random.default_rng(seed)
    names = sorted(set(strata))
    take = _allocate(np.array([(strata == s).sum() for s in names]), total, rng)
    test_ids: list[Any] = []
    for stratum, k in zip(names, take, strict=True):
        members = ids[strata == stratum]
        test_ids.extend(members[rng.permutation(len(members))][:k])
    in_test = np.isin(ids, test_ids)
    count = {"tune": len(set(strata[~in_test])), "test": len(set(strata[in_test]))}
    return test_ids, {"kind": "random", "column": by, "groups": count}


def _grouped(runs: pd.DataFrame, prompts: pd.DataFrame, column: Any, total: int,
             seed: int) -> tuple[list[Any], dict]:
    """Whole groups to the test half, in a seeded random order, while a group brings the test
    count closer to ``total``; both halves keep at least one group."""
    if not isinstance(column, str) or column not in runs.columns:
        raise InputError(f"groups={column!r} is not a column of the runs (columns: "
                         f"{', '.join(map(str, runs.columns))})")
    mixed = runs.groupby("prompt_id", sort=False)[column].nunique(dropna=False) > 1
    if mixed.any():
        raise InputError(f"prompt {mixed.idxmax()!r} has more than one {column!r} value; groups= must be a "
                         "prompt-level column (one value per prompt)")
    labels = _labels(prompts, column)
    names, sizes = np.unique(labels, return_counts=True)
    if len(names) < 2:
        raise InputError(f"groups={column!r} has one group ({names[0]!r}); a grouped split needs at "
                         "least two groups, one for each half")
    test: list[int] = []
    count = 0
    for g in np.random.default_rng(seed).permutation(len(names)):
        if len(test) < len(names) - 1 and abs(count + sizes[g] - total) < abs(count - total):
            test.append(int(g))
            count += int(sizes[g])
    if not test:                            # every group alone overshoots: the smallest one
        test = [int(np.argmin(sizes))]
    held = set(names[test])
    ids = prompts["prompt_id"].to_numpy()
    test_ids = list(ids[np.isin(labels, list(held))])
    return test_ids, {"kind": "grouped", "column": column, "groups": {"tune": len(names) - len(test),
                                                                     "test": len(test)},
                      "test_groups": sorted(held)}


def _allocate(sizes: np.ndarray, total: int, rng: np.random.Generator) -> np.ndarray:
    """Test prompts per stratum: proportional, summing to ``total`` (largest remainders first,
    ties broken at random)."""
    exact = sizes * total / sizes.sum()
    take = np.floor(exact).astype(int)
    left = total - int(take.sum())
    order = np.lexsort((rng.random(len(sizes)), -(exact - take)))
    take[order[:left]] += 1
    return np.minimum(take, sizes)


def tune(policy: Policy, runs: pd.DataFrame, *, max_quality_loss: float = 0.02,
         confidence: float | None = None, reference: str | None = None, score: str = "score",
         models: Sequence[str] | None = None, prices: Any = None, price_as: Mapping[str, str] | None = None,
         count_retries: bool = True) -> Policy:
    """A copy of ``policy`` with its knob set on ``runs`` (the tune half): the cheapest setting whose
    mean quality is at most ``max_quality_loss`` below the reference's (default: the best model).

    confidence: None (default) keeps the loss *measured* on the tune half within the limit — so
        the threshold lands on the limit and, on new prompts, overshoots it about half the time.
        A level such as 0.95 keeps the *upper confidence bound* of the loss within it instead (a
        one-sided normal bound on the paired mean difference, the bootstrap's own limit): the
        true loss at the chosen setting stays within the limit with about that probability, and a
        held-out half of the same size measures it within the limit in about Φ(z/√2) of splits
        (0.88 at 0.95), a little less because the setting is the best of many (measured on 60
        synthetic splits: 0.82 at 0.95, 0.73 at 0.9, 0.52 without). The price is savings: the more
        confident, the more prompts go to the strong model (there: 27 % saved instead of 42 %).

    The policy must have a knob: ``values(matrix)`` (higher = more need for the strong model),
    ``arms(matrix)`` (what a prompt gets below and at or above the threshold) and
    ``with_threshold(t)`` — :class:`Threshold`, :class:`Learned`, :class:`Verifier` and
    :class:`SelfConsistency` do (a cascade's upper arm bills the cheap answer(s) and the strong one).
    A :class:`Learned` router of three or more models moves all its models with one threshold
    (the cheapest predicted good enough). When no setting keeps the quality, every prompt goes to
    the strong model (the lowest threshold). A fitted :class:`Learned` router or
    :class:`Verifier` is swept on out-of-fold predictions: on the prompts it was fitted on it
    would look better than it is, and the threshold would be too bold. With unknown costs,
    "cheapest" is the fewest strong-model calls.
    """
    if not all(callable(getattr(policy, f, None)) for f in ("values", "arms", "with_threshold")):
        raise InputError(f"{policy.name} has no knob to tune (Threshold, Learned, Verifier and SelfConsistency "
                         "policies do)")
    check_number("max_quality_loss", max_quality_loss, 0, 1)
    if confidence is not None and (isinstance(confidence, bool) or not isinstance(confidence, numbers.Real)
                                   or not 0 < confidence < 1):
        raise InputError(f"confidence is the level of the bound on the quality loss, between 0 and 1 (e.g. 0.95), "
                         f"not {confidence!r}")
    mx = build_matrix(runs, score, models, prices, price_as, count_retries=count_retries, warn_dropped=False)
    for model in policy.needs() or mx.models:
        mx.index(model)
    if reference is None:
        reference = mx.ranked_models()[0]
    ref = outcome(mx, Always(reference).route(mx))
    sweep = _knob_sweep(policy, runs, mx, ref)
    z = NormalDist().inv_cdf(confidence) if confidence is not None else 0.0
    bound = sweep["quality_diff"] - z * sweep["quality_diff_se"]        # lower bound of quality − reference's
    ok = bound >= -max_quality_loss - 1e-12
    best = np.flatnonzero(ok)[np.argmin(sweep["spend"][ok])] if ok.any() else None   # spend: cost, or strong calls
    # infeasible: the lowest threshold there is (every prompt with a known feature goes strong)
    at = best if best is not None else len(sweep["threshold"]) - 1
    tuned = policy.with_threshold(float(sweep["threshold"][at]))    # type: ignore[attr-defined]
    tuned.tuned_on = {"prompts": mx.n, "reference": reference, "quality_floor": float(ref.quality.mean() -
                                                                                      max_quality_loss),
                      "feasible": best is not None, "confidence": confidence,
                      "quality_loss": float(-sweep["quality_diff"][at]), "quality_loss_bound": float(-bound[at]),
                      "savings_pct": _savings_pct(float(sweep["spend"][at]), float(ref.spend.sum()))}
    tuned.tuned_prompts = frozenset(mx.prompt_ids)      # evaluate warns when judged on them
    tuned.tuned_texts = prompt_text_keys(mx)
    return tuned


def _savings_pct(spend: float, reference: float) -> float:
    """Savings against the reference on the matrix's spend (cost, or strong-model calls), as evaluate reports them."""
    return 100 * (1 - spend / reference) if reference and np.isfinite(reference) else float("nan")


def _knob_sweep(policy: Policy, runs: pd.DataFrame, mx: Matrix, ref: Outcome) -> dict:
    """The knob's sweep on the tune half, on out-of-fold values where the policy has them."""
    honest = getattr(policy, "out_of_fold_values", None)
    raw: Any = honest(runs, mx) if callable(honest) else policy.values(mx)  # type: ignore[attr-defined]
    values = np.asarray(raw, dtype=float)
    if values.ndim == 2:        # a ladder of models (Learned with three or more)
        cols = np.array([mx.index(m) for m in policy.needs()])   # type: ignore[union-attr]
        return ladder_sweep(values, mx, cols, points=min(mx.n + 1, 201), reference=ref)
    below, above = policy.arms(mx)                                    # type: ignore[attr-defined]
    return threshold_sweep(values, below, above, points=min(mx.n + 1, 1001), reference=ref)


def fit_task_map(runs: pd.DataFrame, *, max_quality_loss: float = 0.02, score: str = "score",
                 models: Sequence[str] | None = None, prices: Any = None,
                 price_as: Mapping[str, str] | None = None, count_retries: bool = True,
                 name: str = "task map") -> TaskMap:
    """A :class:`TaskMap` chosen on ``runs`` (the tune half): per task, the cheapest model whose
    mean quality on that task is within ``max_quality_loss`` of the task's best model; tasks not
    seen go to the model with the best mean quality overall (the default reference)."""
    check_number("max_quality_loss", max_quality_loss, 0, 1)
    mx = build_matrix(runs, score, models, prices, price_as, count_retries=count_retries, warn_dropped=False)
    if "task" not in mx.runs.columns:
        raise InputError("fit_task_map needs a task column in the runs")
    tasks = pd.Series(mx.prompt_values("task")).astype(object).fillna("(none)").to_numpy()
    cost = mx.spend                # the cost, or strong-model calls when a cost is unknown
    mapping = {}
    for task in pd.unique(tasks):
        rows = tasks == task
        quality, spend = mx.score[rows].mean(axis=0), cost[rows].sum(axis=0)
        keep = np.flatnonzero(quality >= quality.max() - max_quality_loss - 1e-12)
        mapping[str(task)] = mx.models[min(keep, key=lambda j: (spend[j], -quality[j]))]
    policy = TaskMap(mapping, default=mx.ranked_models()[0], name=name)
    policy.tuned_on = {"prompts": mx.n, "max_quality_loss": max_quality_loss}
    policy.tuned_prompts = frozenset(mx.prompt_ids)
    policy.tuned_texts = prompt_text_keys(mx)
    return policy
