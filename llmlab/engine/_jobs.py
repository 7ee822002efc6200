"""Turn user arguments (a prompt, messages, a list or DataFrame of prompts) into :class:`Job`s.

Everything is validated here, before anything is sent or recorded: bad input gets one clear
:class:`InputError`.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..base._credentials import check_no_secret
from ..base._errors import InputError
from ..base._json import loads
from ..base._names import check_model_names
from ..base._record import conversation_hash, prompt_id_for, user_turns
from ..base._text import check_sendable
from ..base._validate import did_you_mean, parse_json_option
from ._options import Timeouts
from ._runner import Job

__all__ = ["to_messages", "check_models", "make_jobs", "PromptSource"]


def to_messages(prompt: Any, system: str | None = None) -> list[dict]:
    if isinstance(prompt, str):
        if not prompt.strip():
            raise InputError("the prompt is empty; pass the text to send")
        messages = [{"role": "user", "content": prompt}]
    elif isinstance(prompt, Sequence) and prompt and all(isinstance(m, dict) for m in prompt):
        messages = [dict(m) for m in prompt]
        for m in messages:
            _check_message(m)
        try:
            json.dumps(messages, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InputError(f"messages must be JSON values (strings, lists, dicts): {exc}") from exc
    else:
        raise InputError("the prompt must be a non-empty string or a list of {'role', 'content'} messages")
    check_sendable(messages, "the prompt" if isinstance(prompt, str) else "messages")
    # every part (content, name, tool calls) travels in the body that gateways log
    check_no_secret(prompt if isinstance(prompt, str) else messages, "the prompt" if isinstance(prompt, str)
                    else "messages")
    if system is not None:
        if not isinstance(system, str):
            raise InputError("system must be a string")
        check_sendable(system, "system")
        check_no_secret(system, "system")
        if messages[0].get("role") != "system":
            messages.insert(0, {"role": "system", "content": system})
    return messages


# The chat-completions roles; an assistant turn that called tools may have no content.
_ROLES = ("system", "developer", "user", "assistant", "tool", "function")


def _check_message(m: dict) -> None:
    role = m.get("role")
    if "role" not in m or ("content" not in m and not (role == "assistant" and m.get("tool_calls"))):
        raise InputError("each message needs 'role' and 'content', e.g. {'role': 'user', 'content': 'Hi'}")
    if role not in _ROLES:
        raise InputError(f"message role {role!r} is not one of {', '.join(_ROLES)}.{did_you_mean(str(role), _ROLES)}")
    content = m.get("content")
    if content is None and not (role == "assistant" and m.get("tool_calls")):
        raise InputError(f"a {role!r} message has content None; give its text (only an assistant turn that "
                         "called tools may have none)")
    parts_ok = isinstance(content, list) and all(isinstance(p, dict) and isinstance(p.get("type"), str)
                                                 for p in content)
    if content is not None and not isinstance(content, str) and not parts_ok:
        raise InputError(f"a {role!r} message's content must be its text or a list of content parts like "
                         f"{{'type': 'text', 'text': ...}}, not {type(content).__name__} {str(content)[:40]!r}")


def last_user_text(messages: list[dict]) -> str:
    """The last user turn as text: a list of content parts shows its text parts, the others
    (an image, audio) by their type."""
    for m in reversed(messages):
        if m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, list) and all(isinstance(p, dict) for p in content):
                return " ".join(p["text"] if p.get("type") == "text" and isinstance(p.get("text"), str)
                                else f"[{p.get('type')}]" for p in content)
            return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    return ""


def check_models(models: Any) -> list[str]:
    """The model names, checked: a list of distinct non-empty strings, none holding a secret
    (the key a session has read, a URL's credentials) — refused before anything is sent, since
    a model name is shown everywhere."""
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",")]
    if not models or not isinstance(models, Iterable):
        raise InputError("no models given; pass models=['model-a', 'model-b']")
    return check_model_names(models)  # the one rule (base/_names): policies and price sheets use it too


_FILE_SUFFIXES = (".parquet", ".csv", ".jsonl", ".ndjson")


class PromptSource:
    """Sweep input, normalised lazily to dicts with messages, prompt, prompt_id, task, expected.

    ``prompts``: a list of strings (or of messages lists / dicts), a DataFrame with a ``prompt``
    (or ``messages``) column, a path to a Parquet, CSV or JSONL file with such columns, or any
    iterator. Everything except a one-shot iterator is checked in full by :meth:`check` before
    anything is sent; an iterator is checked as it is consumed (a bad row stops the sweep there,
    with the finished rows kept)."""

    def __init__(self, prompts: Any, system: str | None) -> None:
        self.system = system
        self._open, self.replayable = _opener(prompts)
        self.count: int | None = None

    def check(self) -> None:
        """Validate every prompt (and count them) without keeping them, when the input can be read twice."""
        if self.replayable:
            self.count = sum(1 for _ in self)
            if self.count == 0:
                raise InputError("no prompts given; pass at least one")

    def __iter__(self) -> Iterator[dict]:
        used: set[str] = set()
        for i, rec in enumerate(self._open()):
            if not isinstance(rec, dict):
                rec = {"prompt": rec}
            source = rec.get("messages") if _present(rec.get("messages")) else rec.get("prompt")
            messages = _parse_messages(source, i, self.system)
            pid = _text_or_none(rec.get("prompt_id")) or _unique(prompt_id_for(messages), used)
            if pid in used:
                raise InputError(f"prompt_id {pid!r} appears twice; prompt ids must be unique")
            used.add(pid)
            row = {"messages": messages, "prompt": last_user_text(messages), "prompt_id": pid,
                   "task": _text_or_none(rec.get("task")), "expected": _text_or_none(rec.get("expected"))}
            for name in ("prompt_id", "task", "expected"):
                check_sendable(row[name], f"prompt #{i}: {name}")
            yield row


def _opener(prompts: Any) -> tuple[Callable[[], Iterator[Any]], bool]:
    import pandas as pd

    if isinstance(prompts, (str, os.PathLike)) and (isinstance(prompts, os.PathLike)
                                                     or prompts.lower().endswith(_FILE_SUFFIXES)):
        path = _prompt_file(prompts)
        return (lambda: _read_file(path)), True
    if isinstance(prompts, pd.DataFrame):
        if "prompt" not in prompts.columns and "messages" not in prompts.columns:
            raise InputError("the prompts DataFrame needs a 'prompt' (or 'messages') column")
        columns = [c for c in ("prompt", "messages", "prompt_id", "task", "expected") if c in prompts.columns]
        frame = prompts[columns]
        return (lambda: (dict(zip(columns, values, strict=True)) for values in frame.itertuples(index=False))), True
    if isinstance(prompts, str):
        raise InputError("sweep takes a list of prompts, a DataFrame or a .parquet/.csv/.jsonl path; "
                         "for one prompt use compare()")
    if isinstance(prompts, Sequence):
        return (lambda: iter(prompts)), True
    if isinstance(prompts, Iterable):
        iterator = iter(prompts)
        return (lambda: iterator), False
    raise InputError("prompts must be a list of strings, a DataFrame with a 'prompt' or 'messages' column, "
                     "a .parquet/.csv/.jsonl path, or an iterator")


def _prompt_file(value: Any) -> Path:
    path = Path(value).expanduser()
    if path.suffix.lower() not in _FILE_SUFFIXES:
        raise InputError(f"prompts file {path} must end in .parquet, .csv or .jsonl")
    if not path.is_file():
        raise InputError(f"prompts file {path} does not exist")
    return path


def _read_file(path: Path) -> Iterator[dict]:
    """Rows of a prompts file, a chunk at a time (never the whole file in memory)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
                yield from batch.to_pylist()
        elif suffix == ".csv":
            import pandas as pd

            for chunk in pd.read_csv(path, chunksize=10_000, dtype=str, keep_default_na=False):
                yield from chunk.to_dict("records")
        else:
            with path.open(encoding="utf-8") as lines:
                for number, line in enumerate(lines, 1):
                    if line.strip():
                        yield _json_line(line, path, number)
    except InputError:
        raise
    except ImportError as exc:
        raise InputError(f"reading {path.name} needs pyarrow: pip install pyarrow ({exc})") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read prompts file {path}: {' '.join(str(exc).split())}") from None


def _json_line(line: str, path: Path, number: int) -> dict:
    # the one JSON-option reader: a line nested 200,000 deep is a one-line error, not a RecursionError
    value = parse_json_option(line, f"{path.name} line {number}")
    return value if isinstance(value, dict) else {"prompt": value}


def _present(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isnan(value)
    return value is not None and value != ""  # "" is an empty CSV cell


def _parse_messages(source: Any, index: int, system: str | None) -> list[dict]:
    if isinstance(source, str) and source.lstrip().startswith("[{"):
        try:
            source = loads(source)
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


def make_jobs(rows: Iterable[dict], models: list[str], bodies: dict[str, dict], stream: bool, use_cache: bool,
              repeats: int, timeouts: dict[str, Timeouts], chain: bool = False, retry=None,
              first_seq: int = 0) -> Iterator[Job]:
    """Prompt order × model order × repeat, lazily: the order rows come back in (``seq``, from
    ``first_seq``: a run made of several steps, such as a cascade's, keeps its steps in order).
    ``bodies``: each model's request body (``CallOptions.bodies``)."""
    seq = first_seq
    for row in rows:
        conversation, turns = conversation_hash(row["messages"]), user_turns(row["messages"])
        targets = [models] if chain else [[m] for m in models]
        for target in targets:
            target_bodies = {m: bodies[m] for m in target}
            for repeat in range(repeats):
                yield Job(prompt_id=row["prompt_id"], prompt=row["prompt"], messages=row["messages"],
                          models=target, bodies=target_bodies, stream=stream, use_cache=use_cache,
                          task=row["task"], expected=row["expected"], repeat=repeat, timeouts=timeouts,
                          retry=retry, policy=row.get("policy"), route_reason=row.get("route_reason"), seq=seq,
                          conversation_hash=conversation, turns=turns)
                seq += 1
