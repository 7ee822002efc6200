"""Published correctness matrices (one row per prompt, one column per model) → llmlab's runs rows."""
from __future__ import annotations

import json
import numbers
import uuid
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..base._errors import InputError
from ..base._pricing import PriceWarning
from ..base._record import COLUMNS, Record, prompt_id_for
from ..base._text import check_unicode
from ..base._tokens import TokenCounter

__all__ = ["from_wide"]


def from_wide(df: pd.DataFrame, *, prompt: str, scores: Mapping[str, str],
              responses: Mapping[str, str] | None = None, task: str | None = None,
              expected: str | None = None, prompt_id: str | None = None,
              answer_tokens: Mapping[str, str | float] | None = None,
              costs: Mapping[str, str | float] | None = None,
              source: str = "from_wide") -> pd.DataFrame:
    """Turn a wide matrix (a row per prompt; per model a score column and optionally an answer
    column) into the runs row schema of ``lab.runs()``: one ``ok`` row per (prompt, model), with
    ``score`` from the published column (booleans → 1.0/0.0), so :func:`llmlab.routing.evaluate`
    takes it as it takes your own runs.

    prompt: the column with the prompt text. scores: ``{model: score column}``.
    responses: ``{model: answer column}`` (optional; ``response_text`` is empty without it).
    task: a column with each prompt's task, or a fixed task name for all rows.
    expected: the column with the reference answer, if any. prompt_id: the column with ids
        (default: the same stable hash of the messages the Lab uses, so the prompts line up with
        your own runs of them). source: recorded as ``endpoint`` and in ``run_id``.
    answer_tokens: ``{model: column or number}`` — each answer's token count (a column, or one
        count for every prompt), when the matrix has counts but no answer texts.
    costs: ``{model: column or number}`` — what each call cost in USD (a column, or one price per
        call); recorded as ``cost_usd`` (``cost_source="reported"``), what ``evaluate`` uses when
        not given ``prices=``. Missing values are unknown costs.

    Prompt token counts are estimated with the offline cl100k tokenizer (``tokens_estimated=True``;
    other models' tokenizers differ by 10–20 %), and so are answer tokens from ``responses``;
    ``cost_usd`` is NaN (``cost_source="unknown"``) until priced: ``evaluate(runs, ...,
    prices=...)`` re-prices each row from those tokens. A model with neither answers, answer
    token counts nor costs has **unknown** costs: a one-line warning says so, and routing reports
    savings as the share of strong-model calls avoided, labelled as such.
    """
    _check(df, prompt, scores, responses, task, expected, prompt_id)
    tokens_given = _per_call(df, answer_tokens, scores, "answer_tokens", "token counts")
    costs_given = _per_call(df, costs, scores, "costs", "costs in USD")
    blind = [m for m in scores if m not in (responses or {}) and m not in tokens_given and m not in costs_given]
    if blind:
        warnings.warn(f"from_wide: no answers, answer token counts or costs for {', '.join(map(repr, blind))}: "
                      "their costs are unknown, so routing reports savings as the share of strong-model calls; "
                      "pass answer_tokens= or costs= to price them", PriceWarning, stacklevel=2)

    blank = df[prompt].isna() | (df[prompt].astype(str).str.strip() == "")
    if blank.any():
        raise InputError(f"from_wide: {int(blank.sum())} row(s) have no prompt text (first at row "
                         f"{int(np.flatnonzero(blank.to_numpy())[0])}); drop them first")
    texts = df[prompt].astype(str).tolist()
    messages = [[{"role": "user", "content": t}] for t in texts]
    ids = df[prompt_id].astype(str).tolist() if prompt_id else [prompt_id_for(m) for m in messages]
    if len(set(ids)) != len(ids):
        raise InputError("from_wide: two rows have the same prompt id; give each prompt its own id")
    tasks = df[task].tolist() if task in df.columns else [task] * len(df)
    counter = TokenCounter()
    prompt_tokens = np.array([counter.count_messages(m) for m in messages], dtype=float)
    frames = []
    for j, (model, column) in enumerate(scores.items()):
        answers = df[responses[model]].fillna("").astype(str).tolist() if responses and model in responses \
            else None
        frame = _model_rows(df, j, model, _scores(df[column], column), answers, texts, messages,
                            ids, tasks, expected, prompt_tokens, counter, source)
        if model in tokens_given:
            frame["completion_tokens"] = tokens_given[model]
        if model in costs_given:
            known = ~np.isnan(costs_given[model])
            frame["cost_usd"] = costs_given[model]
            frame["cost_source"] = np.where(known, "reported", "unknown")
        frames.append(frame)
    runs = pd.concat(frames, ignore_index=True)
    runs["id"] = np.arange(1, len(runs) + 1)
    return _with_every_column(runs)


def _with_every_column(runs: pd.DataFrame) -> pd.DataFrame:
    """Columns of the row schema this matrix has no data for, at the Record's defaults."""
    import dataclasses


    defaults = {f.name: f.default for f in dataclasses.fields(Record) if f.default is not dataclasses.MISSING}
    missing = {c: defaults.get(c) for c in COLUMNS if c not in runs.columns}
    return runs.assign(**missing) if missing else runs


def _check(df, prompt, scores, responses, task, expected, prompt_id) -> None:
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"from_wide needs a DataFrame, not {type(df).__name__}")
    if not isinstance(scores, Mapping) or not scores:
        raise InputError("scores= maps each model to its score column, e.g. {'gpt-4': 'gpt4_correct'}")
    named = [prompt, *scores.values(), *((responses or {}).values()), expected, prompt_id]
    missing = [c for c in named if c is not None and c not in df.columns]
    if missing:
        raise InputError(f"from_wide: no column(s) {', '.join(map(repr, missing))} "
                         f"(columns: {', '.join(map(str, df.columns))})")
    extra = set(responses or {}) - set(scores)
    if extra:
        raise InputError(f"from_wide: responses= names model(s) without a score column: {sorted(extra)}")
    twice = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
    used = {c for c in named if c is not None} | ({task} if task in df.columns else set())
    if set(twice) & {str(c) for c in used}:
        raise InputError(f"from_wide: column {twice[0]!r} appears twice in the DataFrame; rename one first")
    check_unicode(list(scores), "from_wide: a model name")
    for column in sorted(used, key=str):
        texts = df[column].dropna()
        check_unicode([v for v in texts if isinstance(v, str)], f"from_wide: column {column!r}")


def _per_call(df: pd.DataFrame, given: Mapping[str, str | float] | None, scores: Mapping[str, str],
              what: str, unit: str) -> dict[str, np.ndarray]:
    """``{model: column or number}`` → per-row values ≥ 0 (NaN: unknown), checked."""
    if given is None:
        return {}
    if not isinstance(given, Mapping):
        raise InputError(f"from_wide: {what}= maps each model to a column or a number, e.g. {{'gpt-4': 'gpt4_{what}'}}")
    out = {}
    for model, source in given.items():
        if model not in scores:
            raise InputError(f"from_wide: {what}= names model {model!r}, which has no score column")
        if isinstance(source, str):
            if source not in df.columns:
                raise InputError(f"from_wide: {what}= names no column {source!r} for {model!r}")
            raw = df[source]
            values = pd.to_numeric(raw, errors="coerce").to_numpy(float)
            bad = (np.isnan(values) & raw.notna().to_numpy()) | (values < 0)
            if raw.dtype == bool or bad.any():
                at = int(np.flatnonzero(bad)[0]) if bad.any() else 0
                value = raw.iloc[at].item() if isinstance(raw.iloc[at], np.generic) else raw.iloc[at]
                raise InputError(f"from_wide: {what} column {source!r} ({model}) must hold {unit} ≥ 0; row {at} "
                                 f"has {value!r}")
        elif isinstance(source, numbers.Real) and not isinstance(source, bool) and np.isfinite(source) \
                and source >= 0:
            values = np.full(len(df), float(source))
        else:
            raise InputError(f"from_wide: {what}= for {model!r} must be a column name or a number ≥ 0 "
                             f"({unit}), not {source!r}")
        out[model] = values
    return out


def _scores(column: pd.Series, name: str) -> np.ndarray:
    if column.dtype == object:
        lowered = column.astype(str).str.strip().str.lower()
        if lowered.isin(["true", "false"]).all():
            return (lowered == "true").to_numpy(float)
    values = pd.to_numeric(column, errors="coerce").to_numpy(float)
    if np.isnan(values).any() or (values < 0).any() or (values > 1).any():
        raise InputError(f"from_wide: score column {name!r} must hold booleans or numbers in [0, 1]")
    return values


def _model_rows(df, j, model, score, answers, texts, messages, ids, tasks, expected, prompt_tokens,
                counter, source) -> pd.DataFrame:
    n = len(df)
    completion = np.array([counter.count(a) for a in answers], dtype=float) if answers else np.full(n, np.nan)
    return pd.DataFrame({
        # request ids are unique per row, as the Lab's are: two matrices concatenated never look
        # like retries of one another
        "run_id": f"{source}", "request_id": [uuid.uuid4().hex[:16] for _ in range(n)],
        "prompt_id": ids, "task": tasks,
        "expected": df[expected].astype(str).tolist() if expected else None,
        "repeat": 0, "requested_model": model, "served_model": model, "attempt": 1, "status": "ok",
        "error_type": None, "error_message": None, "started_at": "", "waited_s": 0.0,
        "ttft_s": np.nan, "latency_s": np.nan, "output_tokens_per_s": np.nan,
        "prompt_tokens": prompt_tokens, "completion_tokens": completion, "cached_tokens": 0.0,
        "tokens_estimated": True, "cost_usd": np.nan, "cost_source": "unknown",
        "original_cost_usd": np.nan, "cached": False,
        "cache_of": None, "finish_reason": "stop" if answers else None,
        "response_text": answers if answers else "", "prompt": texts,
        "messages": [json.dumps(m, ensure_ascii=False) for m in messages], "params": "{}",
        "stream": False, "endpoint": source, "api_key_env": None, "score": score,
    })
