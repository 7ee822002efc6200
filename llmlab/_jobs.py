"""Turn user arguments (a prompt, messages, a list or DataFrame of prompts) into :class:`Job`s.

Everything is validated here, before anything is sent or recorded: bad input gets one clear
:class:`InputError`.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

from ._errors import InputError
from ._options import Timeouts
from ._runner import Job
from ._text import check_unicode

__all__ = ["to_messages", "check_models", "prompt_rows", "prompt_id_for",
           "make_jobs"]

def to_messages(prompt: Any, system: str | None = None) -> list[dict]:
    if isinstance(prompt, str):
        if not prompt.strip():
            raise InputError("the prompt is empty; pass the text to send")
        messages = [{"role": "user", "content": prompt}]
    elif isinstance(prompt, Sequence) and prompt and all(isinstance(m, dict) for m in prompt):
        messages = [dict(m) for m in prompt]
        for m in messages:
            if "role" not in m or "content" not in m:
                raise InputError("each message needs 'role' and 'content', e.g. {'role': 'user', 'content': 'Hi'}")
        try:
            json.dumps(messages, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InputError(f"messages must be JSON values (strings, lists, dicts): {exc}") from exc
    else:
        raise InputError("the prompt must be a non-empty string or a list of {'role', 'content'} messages")
    check_unicode(messages, "the prompt" if isinstance(prompt, str) else "messages")
    if system is not None:
        if not isinstance(system, str):
            raise InputError("system must be a string")
        check_unicode(system, "system")
        if messages[0].get("role") != "system":
            messages.insert(0, {"role": "system", "content": system})
    return messages


def last_user_text(messages: list[dict]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            content = m.get("content")
            return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    return ""


def check_models(models: Any) -> list[str]:
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",")]
    if not models or not isinstance(models, Iterable):
        raise InputError("no models given; pass models=['model-a', 'model-b']")
    models = list(models)
    if any(not isinstance(m, str) or not m.strip() for m in models):
        raise InputError("model names must be non-empty strings")
    check_unicode(models, "a model name")
    seen = set()
    for m in models:
        if m in seen:
            raise InputError(f"model {m!r} is listed twice; list each model once (use n= for repeats)")
        seen.add(m)
    return models


def prompt_id_for(messages: list[dict]) -> str:
    """Stable across runs, so the same prompt lines up in the log and in routing analysis."""
    digest = hashlib.sha1(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return "p" + digest[:10]


def prompt_rows(prompts: Any, system: str | None) -> list[dict]:
    """Normalise sweep input to dicts with messages, prompt, prompt_id, task, expected."""
    import pandas as pd

    if isinstance(prompts, pd.DataFrame):
        records = _frame_records(prompts)
    elif isinstance(prompts, str):
        raise InputError("sweep takes a list of prompts or a DataFrame; for one prompt use compare()")
    elif isinstance(prompts, Iterable):
        records = [{"prompt": p} for p in prompts]
    else:
        raise InputError("prompts must be a list of strings or a DataFrame with a 'prompt' or 'messages' column")
    if not records:
        raise InputError("no prompts given; pass at least one")
    rows: list[dict] = []
    used: set[str] = set()
    for i, rec in enumerate(records):
        source = rec.get("messages") if rec.get("messages") is not None else rec.get("prompt")
        messages = _parse_messages(source, i, system)
        pid = _text_or_none(rec.get("prompt_id")) or _unique(prompt_id_for(messages), used)
        if pid in used:
            raise InputError(f"prompt_id {pid!r} appears twice; prompt ids must be unique")
        used.add(pid)
        row = {"messages": messages, "prompt": last_user_text(messages), "prompt_id": pid,
               "task": _text_or_none(rec.get("task")), "expected": _text_or_none(rec.get("expected"))}
        for name in ("prompt_id", "task", "expected"):
            check_unicode(row[name], f"prompt #{i}: {name}")
        rows.append(row)
    return rows


def _frame_records(frame) -> list[dict]:
    if "prompt" not in frame.columns and "messages" not in frame.columns:
        raise InputError("the prompts DataFrame needs a 'prompt' (or 'messages') column")
    return frame.to_dict("records")


def _parse_messages(source: Any, index: int, system: str | None) -> list[dict]:
    if isinstance(source, str) and source.lstrip().startswith("[{"):
        try:
            source = json.loads(source)
        except ValueError:
            pass
    try:
        return to_messages(source, system)
    except InputError as exc:
        raise InputError(f"prompt #{index}: {exc}") from exc


def _unique(pid: str, used: set) -> str:
    candidate, n = pid, 2
    while candidate in used:
        candidate, n = f"{pid}-{n}", n + 1
    return candidate


def _text_or_none(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value if isinstance(value, str) else json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def make_jobs(rows: list[dict], models: list[str], bodies: dict[str, dict], stream: bool, use_cache: bool,
              repeats: int, timeouts: dict[str, Timeouts], chain: bool = False, retry=None) -> list[Job]:
    """Prompt order × model order × repeat: the order rows come back in. ``bodies``: each
    model's request body (``CallOptions.bodies``)."""
    jobs = []
    for row in rows:
        targets = [models] if chain else [[m] for m in models]
        for target in targets:
            target_bodies = {m: bodies[m] for m in target}
            for repeat in range(repeats):
                jobs.append(Job(prompt_id=row["prompt_id"], prompt=row["prompt"], messages=row["messages"],
                                models=target, bodies=target_bodies, stream=stream, use_cache=use_cache,
                                task=row["task"], expected=row["expected"], repeat=repeat, timeouts=timeouts,
                                retry=retry, policy=row.get("policy"), route_reason=row.get("route_reason")))
    return jobs
