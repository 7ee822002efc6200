"""Preferences as the quality signal of routing: "at least as good as the reference model's answer".

    runs_p = routing.preference_quality(runs, prefs, reference="strong")   # adds a "preference" column
    routing.evaluate(runs, policies, preferences=prefs, reference="strong")   # the same, in one call

For open-ended prompts there is no right answer, only better and worse ones. Given a preference
frame (``scoring.pairwise(..., against="strong")``, human labels from ``lab.labels()``, or both
concatenated), a model's answer to a prompt scores **1** when it won or tied against the reference
model's answer to that prompt, **0** when the reference's answer won, and the reference's own
answer scores 1. A prompt whose verdict is unknown or missing is **unknown** (NaN): routing leaves
it out for every model and counts it — it is never a loss. A model's own error row is the
exception, as everywhere in routing: it scores 0 (the call served no answer), though the preference
frame calls that pair unknown (``scoring.pairwise``'s ``errors="unknown"``). Savings, quality differences, the claim
test and PGR then read "share of prompts served an answer at least as good as the reference's",
RouteLLM's own setting (its routers are trained on exactly these win/tie labels).

A preference source that carries no information certifies nothing: "inconsistent = tie" and
"tie = as good" would otherwise make a useless cheap model as good as the reference on a judge
that always says "[[A]]" (every pair a tie by the swap), always "[[C]]", or answers at random.
The frame's evidence (``llmlab.analysis._evidence.judge_evidence``: no decisive verdict, or two
orders that agree no more often than a judge choosing by position alone) is kept in
``runs.attrs["preference_evidence"]`` and ``report.evidence``; uninformative → a warning, every
claim "not enough data", ``recommend`` keeps the reference alone.

A judge that passes that screen can still decide many pairs by position; each is a tie, so "as
good", which shrinks every loss (the anti-conservative direction for a non-inferiority claim). So
``{column}_worst_order`` scores each such pair by its worse order, claims must hold on both
readings, and a position bias above :data:`POSITION_BIAS_PCT` % is warned about. Unknown verdicts
that lean to one side (:func:`unknown_lean`) are warned about too: leaving them out assumes they
are missing at random.

A judge that ties nearly everything the same in both orders (a lazy "[[C]]" on what it did not
read) passes the screen on its few decisive verdicts, but its ties hide every loss: above
:data:`LAZY_TIE_PCT` % such ties of a judge (not labels) the worst-order reading scores every tie
as a loss too, so a claim must hold with them as losses; above :data:`TIES_WARN_PCT` % a warning.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..analysis._evidence import evidence_words, judge_evidence
from ..analysis._lean import unknown_lean
from ..analysis._pairwise import answer_match, check_preferences, is_unknown, one_per_pair, verdict_kinds
from ..base._errors import InputError

__all__ = ["preference_quality", "PREFERENCE_COLUMN", "WORST_ORDER", "POSITION_BIAS_PCT", "LAZY_TIE_PCT",
           "TIES_WARN_PCT"]

PREFERENCE_COLUMN = "preference"
# The same quality with each order-dependent pair scored by its worse order (see _worst_order_against).
WORST_ORDER = "_worst_order"
# Above this share of order-dependent pairs the judge's position bias is warned about.
POSITION_BIAS_PCT = 20.0
# A judge (not labels) that ties, consistently in both orders, more than TIES_WARN_PCT % of its
# known verdicts is warned about; above LAZY_TIE_PCT % its ties are no evidence of "as good": the
# worst-order reading scores every tie as a loss too (see _lazy_ties).
TIES_WARN_PCT = 50.0
LAZY_TIE_PCT = 95.0


def preference_quality(runs: pd.DataFrame, preferences: pd.DataFrame, *, reference: str | None = None,
                       column: str = PREFERENCE_COLUMN, duplicates: str = "refuse") -> pd.DataFrame:
    """A copy of ``runs`` with ``column``: 1 where the row's answer is at least as good as
    ``reference``'s on its prompt (win or tie), 0 where it lost, NaN where unknown; and
    ``f"{column}_reason"``. ``reference``: default the one model every pair involves; of a single
    pair of models, the one the frame records as ``against`` (the ``against`` column
    ``scoring.pairwise(..., against=)`` writes, one of ``PREFERENCE_COLUMNS``, else its attrs).
    A frame of one pair that records no reference — none was chosen (``pairwise`` without
    ``against=``, ``lab.labels()``: an empty ``against`` column) or the record is gone (a frame built
    by hand, or cut to fewer columns) — needs ``reference=``, an InputError naming both models: its
    ``model_a`` is merely the name that sorts first, and a guessed reference inverts every verdict
    read from it. Every screen below reads
    only the reference's pairs, per source and compared model: ``{column}_evidence["sources"]``.
    ``duplicates``:
    verdicts of several sources on one pair (a judge frame and labels
    concatenated, two graders) are refused unless ``"last"`` or ``"majority"`` says how to settle
    them (the order of a concat never decides silently); a source's re-graded label replaces its
    earlier one. Labels made on other answers than the runs' (``answer_a_hash``/``answer_b_hash``
    differ: a re-sweep answered anew) are set aside with a warning. ``attrs``:
    ``{column}_duplicates_dropped``, ``{column}_answers_changed`` (set aside) and
    ``{column}_answers_unchecked`` (rows naming no answers: judge frames, labels stored before
    labels named them — used, unchecked) and ``{column}_evidence`` (what the preferences can show:
    consistent share, position bias, ``informative`` — an uninformative source, such as a judge
    that always says "[[A]]" or "[[C]]", is warned about and no claim is certified on it).
    ``f"{column}_worst_order"``: the same, with each pair the position rule tied although the
    reference won in one order scored 0 (its worse order; ``{column}_order_dependent`` counts them):
    a claim is certified only if it holds on both readings, and a position bias above
    :data:`POSITION_BIAS_PCT` % is warned about."""
    if not isinstance(runs, pd.DataFrame) or not {"prompt_id", "requested_model"} <= set(runs.columns):
        raise InputError("preference_quality needs the runs DataFrame (lab.runs(), res.df)")
    prefs = _in_runs(check_preferences(preferences), runs)
    reference = _reference(prefs, reference)          # from the rows as given, both orientations seen
    prefs = one_per_pair(prefs, duplicates=duplicates)
    # the pairs the quality is read from, by source and compared model: every screen reads these only
    groups = _groups(prefs[(prefs["model_a"] == reference) != (prefs["model_b"] == reference)], reference)
    evidence, ties = _screen(groups)
    if not evidence["informative"]:
        warnings.warn(f"routing: these preferences {evidence_words(evidence)}: {evidence['why']}; no claim is "
                      "certified on them (runs.attrs['preference_evidence']; the rule: "
                      "llmlab.analysis._evidence.EVIDENCE_RULE)",
                      RuntimeWarning, stacklevel=3)
    if evidence["informative"] and evidence.get("two_orders") and evidence["position_bias_pct"] > POSITION_BIAS_PCT:
        warnings.warn(f"routing: the judge's two orders disagree on {evidence['position_bias_pct']:.0f} % of the pairs "
                      f"(position bias above {POSITION_BIAS_PCT:g} %; the answer shown first wins "
                      f"{evidence['first_position_pct']:.0f} % of decisive games): such an order-dependent pair is "
                      "a tie, and a tie is \"as good\", which shrinks every loss — a claim is certified only if it "
                      f"also holds with them as losses (claim()'s *_worst_order columns)", RuntimeWarning,
                      stacklevel=3)
    verdicts = _verdicts_against(prefs, reference)
    worst = _worst_order_against(prefs, reference, verdicts)
    tie_pct = max(ties.values(), default=None)
    lazy = [key for key, pct in ties.items() if pct > LAZY_TIE_PCT] if evidence["informative"] else []
    worst.update(_lazy_ties(groups, lazy))
    if tie_pct is not None and tie_pct > TIES_WARN_PCT and evidence["informative"]:
        whose = (f" ({_group_words(max(ties, key=ties.__getitem__))})" if len(ties) > 1 else "")
        warnings.warn(f"routing: the judge ties {tie_pct:.0f} % of the pairs the same in both orders{whose}; a tie is "
                      "\"as good\", which is evidence only if the judge would have seen a loss (a judge tying what "
                      "it did not read hides every loss there) — "
                      + (f"above {LAZY_TIE_PCT:g} % a claim is certified only if it also holds with the ties as "
                         "losses (claim()'s *_worst_order columns); " if lazy else "")
                      + "check the judge against labels (scoring.agreement)", RuntimeWarning, stacklevel=3)
    lean = unknown_lean(prefs, reference)
    if lean["warning"]:
        warnings.warn(f"routing: {lean['warning']}", RuntimeWarning, stacklevel=3)
    asked = {(p, m) for p, a, b in zip(prefs["prompt_id"], prefs["model_a"], prefs["model_b"], strict=True)
             for m in (a, b)}
    models, prompts = runs["requested_model"].to_numpy(), runs["prompt_id"].to_numpy()
    quality = np.full(len(runs), np.nan)
    reasons = np.full(len(runs), "", dtype=object)
    for k, (model, prompt) in enumerate(zip(models, prompts, strict=True)):
        if model == reference:
            quality[k], reasons[k] = 1.0, "the reference"
            continue
        won = verdicts.get((prompt, model))
        if won is None:
            reasons[k] = (f"unknown: no known verdict against {reference}" if (prompt, model) in asked
                          else f"unknown: no label or verdict against {reference} for this prompt")
        else:
            quality[k] = 1.0 if won in ("win", "tie") else 0.0
            reasons[k] = f"{won} against {reference}"
    strict = quality.copy()
    for k, (model, prompt) in enumerate(zip(models, prompts, strict=True)):
        if (prompt, model) in worst and not np.isnan(quality[k]):
            strict[k] = worst[(prompt, model)]
    out = runs.copy()
    out[column], out[f"{column}_reason"] = quality, reasons
    out[f"{column}{WORST_ORDER}"] = strict
    out.attrs[f"{column}_order_dependent"] = int(((quality != strict) & ~np.isnan(quality)).sum())
    out.attrs[f"{column}_tie_pct"] = tie_pct
    out.attrs[f"{column}_ties_as_losses"] = bool(lazy)
    out.attrs[f"{column}_reference"] = reference
    out.attrs[f"{column}_evidence"] = evidence
    out.attrs[f"{column}_unknown_lean"] = lean
    out.attrs[f"{column}_duplicates_dropped"] = prefs.attrs["duplicates_dropped"]
    out.attrs[f"{column}_other_prompts"] = prefs.attrs.get("other_prompts", 0)
    out.attrs[f"{column}_answers_changed"] = prefs.attrs.get("answers_changed", 0)
    out.attrs[f"{column}_answers_unchecked"] = prefs.attrs.get("answers_unchecked", 0)
    return out


def _in_runs(prefs: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """The preferences about these runs' prompts. One frame serves both halves of a split, so
    preferences about other prompts are set aside — but if none is about these runs, the frame is
    the wrong one: an InputError (as for unknown models)."""
    inside = prefs["prompt_id"].isin(set(runs["prompt_id"]))
    if not inside.any():
        check_preferences(prefs, runs=runs)          # raises, naming a prompt that is not in the runs
    outside = int((~inside).sum())
    if outside:
        warnings.warn(f"routing: {outside} of {len(prefs)} preferences are about prompts not in these runs and "
                      "were set aside (one frame can serve both halves of a split)", RuntimeWarning, stacklevel=4)
    kept = _same_answers(prefs[inside], runs)
    check_preferences(kept, runs=runs)               # models the runs do not have
    kept.attrs.update(other_prompts=outside)
    return kept


def _same_answers(prefs: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """The preferences made on these runs' answers: labels of other answers to a pair (before a
    re-sweep answered anew) are set aside, counted and warned about; labels that name no answers
    (stored before labels did) are kept and counted as unchecked."""
    match = answer_match(prefs, runs)
    changed = int((match == "changed").sum())
    unchecked = int((match == "unchecked").sum()) if "answer_a_hash" in prefs.columns else 0
    if changed == len(prefs):
        raise InputError(f"routing: all {changed} labels were made on other answers than these runs' (a re-sweep "
                         "answered anew): grade these answers, or pass the runs the labels were made on")
    if changed:
        warnings.warn(f"routing: {changed} of {len(prefs)} labels were made on other answers than these runs' "
                      "(a re-sweep answered anew) and were set aside", RuntimeWarning, stacklevel=5)
    if unchecked and "answer_a_hash" in prefs.columns:
        warnings.warn(f"routing: {unchecked} of {len(prefs)} labels name no answers (stored before labels did): "
                      "used, but whether they were made on these answers is unchecked", RuntimeWarning, stacklevel=5)
    kept = prefs[match != "changed"].copy()
    kept.attrs.update(answers_changed=changed, answers_unchecked=unchecked)
    return kept


def _reference(prefs: pd.DataFrame, reference: str | None) -> str:
    models = sorted(map(str, set(prefs["model_a"]) | set(prefs["model_b"])))
    if reference is not None:
        if reference not in models:
            raise InputError(f"the reference {reference!r} is in no pair of the preferences (models: "
                             f"{', '.join(models)})")
        return reference
    common = set.intersection(*({a, b} for a, b in zip(prefs["model_a"], prefs["model_b"], strict=True)))
    if len(common) == 2:
        # one pair of models: only the frame's record says which is the reference — model_a is the name
        # that sorts first unless pairwise(..., against=) put it there, and nothing left tells which
        against = _recorded_against(prefs)
        if against in common:
            return str(against)
        record = "and record no reference (no against column or attrs)" if against is None else (
            "without against=" if not against else f"and record against={against!r}, neither of them")
        one, two = sorted(map(str, common))
        raise InputError(f"routing on preferences needs a reference model: these preferences compare {one} and "
                         f"{two} {record}, so which one the other is measured against is yours to say: pass "
                         f"reference='<model>' ({one!r} or {two!r}; or judge with scoring.pairwise(..., "
                         "against='<model>'))")
    if len(common) != 1:
        raise InputError(f"routing on preferences needs a reference model: no model is in every pair (models: "
                         f"{', '.join(models)}): pass reference='<model>' (the model the others are compared with, "
                         "e.g. scoring.pairwise(..., against='<model>'))")
    hub = str(common.pop())
    _check_hub_recorded(prefs, hub)
    return hub


def _check_hub_recorded(prefs: pd.DataFrame, hub: str) -> None:
    """The one model in every pair is the default reference unless the frame says otherwise: an
    ``against`` column empty on every row (``pairwise`` without ``against=``, ``lab.labels()``)
    records that no reference was chosen — an all-pairs frame cut to one model's pairs would make
    that model the reference and every policy "as good" — and one naming only other models
    contradicts it. Rows naming the hub, mixed with empty ones (a judge frame plus labels), keep it."""
    if "against" in prefs.columns:
        named = {str(v) for v in prefs["against"] if not is_unknown(v) and str(v).strip()}
    elif "against" in prefs.attrs:
        named = {str(prefs.attrs["against"])} if prefs.attrs["against"] else set()
    else:
        return                                        # no record at all: the documented default
    if hub in named:
        return
    record = (f"record against={sorted(named)[0]!r}" if named
              else "record that no reference was chosen (against empty on every row)")
    raise InputError(f"routing on preferences needs a reference model: {hub} is in every pair, but these "
                     f"preferences {record}: pass reference='<model>' (reference={hub!r} if the others are "
                     f"measured against {hub})")


def _recorded_against(prefs: pd.DataFrame) -> str | None:
    """The reference the frame records: its ``against`` column — scoring.pairwise and lab.labels()
    both write it, read the same way in memory and from CSV (attrs do not survive a round-trip) —
    else ``attrs["against"]`` (a pairwise frame cut to a few columns); "" when it records that none
    was chosen (None or empty, on any row with a known winner), None when it records nothing (a frame
    built by hand). A row whose verdict is unknown scores nothing: its empty ``against`` is no record."""
    if "against" in prefs.columns:
        told = prefs.loc[~prefs["winner"].map(is_unknown).astype(bool), "against"]
        named = {str(v) for v in told if not is_unknown(v) and str(v).strip()}
        unnamed = told.map(lambda v: is_unknown(v) or not str(v).strip()).astype(bool).any()
        return named.pop() if len(named) == 1 and not unnamed else ""
    if "against" in prefs.attrs:
        return prefs.attrs["against"] or ""
    return None


def _worst_order_against(prefs: pd.DataFrame, reference: str, verdicts: dict[tuple, str]) -> dict[tuple, float]:
    """{(prompt_id, model): 0.0} for the pairs the position rule made a tie though the reference won
    in one of the two orders (win vs loss, tie vs loss): "as good" only in the other order. Scored by
    its worse order such a pair is a loss; a pair won in one order and tied in the other stays good
    (the reference won in neither). A pair marked inconsistent without its two verdicts is a loss."""
    has_orders = {"verdict_1", "verdict_2"} <= set(prefs.columns)
    out: dict[tuple, float] = {}
    for k, (prompt, a, b, winner) in enumerate(zip(prefs["prompt_id"], prefs["model_a"], prefs["model_b"],
                                                   prefs["winner"], strict=True)):
        consistent = prefs["consistent"].iloc[k] if "consistent" in prefs.columns else pd.NA
        if reference not in (a, b) or a == b or winner != "tie" or is_unknown(consistent) or bool(consistent):
            continue
        other = b if a == reference else a
        if verdicts.get((prompt, other)) != "tie":
            continue
        if not has_orders:
            out[(prompt, other)] = 0.0
            continue
        v1, v2 = prefs["verdict_1"].iloc[k], prefs["verdict_2"].iloc[k]
        won = {a if v1 == "A" else b if v1 == "B" else None, b if v2 == "A" else a if v2 == "B" else None}
        out[(prompt, other)] = 0.0 if reference in won or is_unknown(v1) or is_unknown(v2) else 1.0
    return out


def _groups(mine: pd.DataFrame, reference: str) -> dict[tuple[str, str], pd.DataFrame]:
    """The reference's pairs by (source, compared model): each is its own evidence — a judge blind on
    one model's pairs, or a lazy judge stacked with honest labels, is not vouched for by the rest."""
    source = mine["source"].fillna("").astype(str) if "source" in mine.columns else pd.Series("", index=mine.index)
    other = np.where(mine["model_a"] == reference, mine["model_b"], mine["model_a"]).astype(str)
    return {(str(s), str(m)): group for (s, m), group in mine.groupby([source.to_numpy(), other], sort=True)}


def _group_words(key: tuple[str, str]) -> str:
    source, model = key
    return f"{source or 'the verdicts naming no source'} on the pairs with {model}"


def _screen(groups: dict[tuple[str, str], pd.DataFrame]) -> tuple[dict, dict[tuple[str, str], float]]:
    """The evidence of the reference's pairs (pooled statistics; uninformative if any (source,
    compared model) group is, the first such one's reason) and each judge group's consistent-tie
    share (:func:`_consistent_tie_pct`)."""
    frames = {key: _as_screened(group) for key, group in groups.items()}
    screened = {key: _evidence_of(frame, key[0]) for key, frame in frames.items()}
    ties = {key: pct for key, group in groups.items()
            if (pct := _consistent_tie_pct(group, screened[key])) is not None}
    failed = [key for key, e in screened.items() if not e["informative"]]
    if not failed:
        pooled = pd.concat(frames.values())
        pooled.attrs = {"judge": any(f.attrs.get("judge") for f in frames.values())}
    evidence = judge_evidence(pooled, require_source=True) if not failed else dict(screened[failed[0]])
    if failed and len(groups) > 1:
        evidence["why"] = f"{_group_words(failed[0])}: {evidence['why']}"
    evidence["sources"] = [{"source": s, "model": m, "pairs": e["pairs"], "informative": e["informative"],
                            "tie_pct": ties.get((s, m))} for (s, m), e in screened.items()]
    return evidence, ties


def _as_screened(group: pd.DataFrame) -> pd.DataFrame:
    """One (source, model) group as the screen is to read it, its kind by :func:`verdict_kinds` and
    not by the source's spelling: a judge's (two orders, or a source saying judge in any case) is
    marked one (a renamed judge keeps its lazy-tie and cut-frame screens); one whose kind cannot be
    established (a source neither ``judge:…`` nor ``human:…``, no second order) loses its source,
    so it is screened like verdicts naming none — only a ``human:`` source says "single-vote labels"."""
    kinds = set(verdict_kinds(group))
    frame = group.copy()
    frame.attrs = {"judge": True} if "judge" in kinds else {}
    return frame.drop(columns="source") if kinds == {"unknown"} and "source" in frame.columns else frame


def _evidence_of(frame: pd.DataFrame, source: str) -> dict:
    """The group's evidence; a source of unknown kind is named in the reason it cannot be screened."""
    evidence = judge_evidence(frame, require_source=True)
    if evidence["unscreened"] and evidence["kind"] == "unstated" and source.strip():
        evidence["kind"] = "unknown"
        evidence["why"] = (f"verdicts of source {source!r}, neither 'judge:<model>' nor 'human:<who>', without a "
                           "judge's two orders (verdict_1/verdict_2): whether they were given without reading the "
                           "answers cannot be checked — mark human labels with source='human:<who>', or keep the "
                           "columns scoring.pairwise writes")
    return evidence


def _lazy_ties(groups: dict[tuple[str, str], pd.DataFrame], lazy: list[tuple[str, str]]) -> dict[tuple, float]:
    """{(prompt_id, model): 0.0} for the ties of the lazy groups: only a lazy judge's own ties are
    no evidence of "as good" — labels' ties of the same pairs stay what they say."""
    out: dict[tuple, float] = {}
    for source, model in lazy:
        group = groups[(source, model)]
        out.update({(prompt, model): 0.0 for prompt, winner in zip(group["prompt_id"], group["winner"], strict=True)
                    if winner == "tie"})
    return out


def _consistent_tie_pct(prefs: pd.DataFrame, evidence: dict) -> float | None:
    """The share (%) of a judge's known verdicts that are ties given the same in both orders (not
    order-dependent ties: the worst-order reading has those); None for labels or without the two
    orders. A judge that ties nearly everything consistently (says [[C]] on what it did not read)
    passes the screen on its few decisive verdicts, but its ties are no evidence of "as good"."""
    if evidence.get("kind") == "labels" or not evidence.get("two_orders") or "consistent" not in prefs.columns:
        return None
    known = [not is_unknown(w) for w in prefs["winner"]]
    if not any(known):
        return None
    ties = sum(w == "tie" and not is_unknown(c) and bool(c)
               for w, c in zip(prefs["winner"], prefs["consistent"], strict=True))
    return 100 * ties / sum(known)


def _verdicts_against(prefs: pd.DataFrame, reference: str) -> dict[tuple, str]:
    """{(prompt_id, model): "win" | "tie" | "loss"} against the reference (one verdict per pair:
    :func:`one_per_pair`), unknowns left out."""
    out: dict[tuple, str] = {}
    for prompt, a, b, winner in zip(prefs["prompt_id"], prefs["model_a"], prefs["model_b"], prefs["winner"],
                                    strict=True):
        if reference not in (a, b) or a == b or is_unknown(winner):
            continue
        other, mine = (b, "b") if a == reference else (a, "a")
        out[(prompt, other)] = "tie" if winner == "tie" else ("win" if winner == mine else "loss")
    return out
