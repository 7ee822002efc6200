"""What a router knows once the cheap model has answered: features of the prompt, its answer(s)
and their metadata, for a :class:`~llmlab.routing.Verifier` to learn from.

One prompt's *view* is its text and the rows of the cheap model's ``k`` sampled answers (dicts
with ``response_text``, ``status``, ``completion_tokens``, ``finish_reason``, ``logprob_mean``,
``logprob_min``); the first sample is the answer that would be served. Every feature is computed
from the view alone — never from ``expected``, a score or another model's answer — by the pure
checks of :mod:`llmlab.analysis._checks`. Unknown values (no token count, no log-probabilities)
are NaN here; the verifier fills them with the training mean and keeps an indicator beside them.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..analysis import _checks

__all__ = ["FEATURES", "View", "features", "feature_matrix"]

View = tuple[str, Sequence[Mapping[str, Any]]]      # (prompt, the cheap model's sampled answer rows)

FEATURES: tuple[str, ...] = (
    # the prompt
    "prompt_log_chars", "prompt_numbers",
    # the answer's shape and metadata
    "answer_log_chars", "answer_lines", "answer_empty", "length_ratio", "answer_log_tokens", "tokens_known",
    "finish_length",
    # its numbers and its final answer
    "prompt_numbers_used", "new_numbers", "final_missing", "final_marked", "final_is_last",
    "final_in_working", "final_in_prompt", "final_not_integer", "final_negative", "final_log_magnitude",
    # its own arithmetic, re-computed
    "equations", "equations_wrong", "equations_any_wrong", "equations_share_wrong", "no_equation",
    # refusal and hedging phrases
    *(f"hedge_{kind.replace(' ', '_')}" for kind in _checks.HEDGE_KINDS), "hedges",
    # the endpoint's confidence
    "logprob_mean", "logprob_min", "logprob_known",
    # self-consistency of the samples
    "agreement", "distinct_answers",
)


def _number_or_nan(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def _text(row: Mapping[str, Any]) -> str:
    value = row.get("response_text")
    return value if isinstance(value, str) else ""


def _shape(prompt: str, row: Mapping[str, Any]) -> list[float]:
    text = _text(row)
    tokens = _number_or_nan(row.get("completion_tokens"))
    return [math.log1p(len(text)), float(text.count("\n") + 1 if text else 0), float(not text.strip()),
            math.log((len(text) + 1) / (len(prompt) + 1)), math.log1p(tokens) if tokens >= 0 else math.nan,
            float(tokens >= 0), float(row.get("finish_reason") == "length")]


def _numbers(prompt_numbers: list[float], written: list[float], stated: _checks.FinalAnswer) -> list[float]:
    given, used = set(prompt_numbers), set(written)
    head = [len(given & used) / len(given) if given else 1.0, math.log1p(len(used - given))]
    value = stated.value
    if value is None:
        return [*head, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    return [*head, 0.0, float(stated.marked), float(stated.marked and stated.is_last),
            float(written.count(value) >= 2), float(value in given), float(not value.is_integer()),
            float(value < 0), math.log10(abs(value) + 1)]


def _arithmetic(text: str) -> list[float]:
    found = _checks.equations(text)
    # a claim written twice (annotation and prose) is one claim
    claims = {(round(e.computed, 6), round(e.claimed, 6)): e.holds for e in found}
    wrong = sum(1 for holds in claims.values() if not holds)
    return [math.log1p(len(claims)), float(wrong), float(wrong > 0), wrong / len(claims) if claims else 0.0,
            float(not claims)]


def _hedging(text: str) -> list[float]:
    found = set(_checks.hedges(text))
    return [float(kind in found) for kind in _checks.HEDGE_KINDS] + [float(len(found))]


def _confidence(row: Mapping[str, Any]) -> list[float]:
    mean, low = _number_or_nan(row.get("logprob_mean")), _number_or_nan(row.get("logprob_min"))
    return [mean, low, float(not math.isnan(mean))]


def _agreement(rows: Sequence[Mapping[str, Any]], first: _checks.FinalAnswer) -> list[float]:
    if len(rows) <= 1:      # one answer agrees with itself when it gives a result
        given = float(first.value is not None or bool(_text(rows[0]).strip()) if rows else False)
        return [given, given]
    found = _checks.agreement([_text(r) if r.get("status", "ok") == "ok" else None for r in rows])
    return [found.share, found.distinct / found.n if found.n else 0.0]


def features(prompt: str, rows: Sequence[Mapping[str, Any]]) -> list[float]:
    """The :data:`FEATURES` of one view, in order (NaN where unknown)."""
    first = rows[0] if rows else {}
    text = _text(first)
    prompt = prompt if isinstance(prompt, str) else ""
    prompt_numbers, written = _checks.numbers(prompt), _checks.numbers(text)
    stated = _checks.final_answer(text, written)
    return [math.log1p(len(prompt)), math.log1p(len(prompt_numbers)), *_shape(prompt, first),
            *_numbers(prompt_numbers, written, stated), *_arithmetic(text), *_hedging(text), *_confidence(first),
            *_agreement(rows, stated)]


def feature_matrix(views: Sequence[View], checks: Sequence[Callable[[str], float]] = ()) -> np.ndarray:
    """Views × (:data:`FEATURES` + one column per check of the served answer's text)."""
    rows = []
    for prompt, answers in views:
        text = _text(answers[0]) if answers else ""
        rows.append(features(prompt, answers) + [_number_or_nan(check(text)) for check in checks])
    return np.array(rows, dtype=float).reshape(len(views), len(FEATURES) + len(checks))
