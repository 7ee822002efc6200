"""Saved policies read back: JSON (never pickle), checked field by field before anything is built.

Each policy writes itself (``Policy.to_dict``/``save``); this module is the way back. Rule policies,
verifiers and self-consistency cascades are ``{"format": "llmlab.routing.policy", "version": 1,
"kind": ..., "name": ..., <fields>}`` (a :class:`~llmlab.routing.Verifier` carries its fitted
numbers and its checks as specs); a :class:`~llmlab.routing.Learned` router keeps its own format
(vocabulary, idf, coefficients).
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..base._errors import InputError
from ._learned import Learned
from ._policies import FORMAT, FORMAT_VERSION, Always, Cascade, Fallback, Policy, Random, TaskMap, Threshold
from ._verifier import MAX_SAMPLES, SelfConsistency, Verifier

__all__ = ["load_policy", "from_dict"]

_KINDS: dict[str, type[Policy]] = {cls.__name__: cls for cls in (Always, TaskMap, Fallback, Random, Threshold,
                                                                 Cascade, Verifier, SelfConsistency)}


def _text(v: Any) -> bool:
    return isinstance(v, str) and bool(v)


def _names(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(map(_text, v))


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _whole(v: Any, low: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and low <= v <= MAX_SAMPLES


# The schema of each saved policy: (field, check, what it must be).
_FIELDS: dict[str, list[tuple[str, Callable[[Any], bool], str]]] = {
    "Always": [("model", _text, "a model name")],
    "TaskMap": [("mapping", lambda v: isinstance(v, dict) and all(_text(k) and _text(m) for k, m in v.items()),
                 "an object of task → model name")],
    "Fallback": [("models", _names, "a list of model names")],
    "Random": [("p_strong", _number, "a number"), ("weak", _text, "a model name"),
               ("strong", _text, "a model name"), ("seed", lambda v: isinstance(v, int), "an integer")],
    "Threshold": [("feature", _text, "a column name"), ("threshold", _number, "a finite number"),
                  ("weak", _text, "a model name"), ("strong", _text, "a model name")],
    "Cascade": [("models", _names, "a list of model names"), ("accept_at", _number, "a number")],
    "Verifier": [("weak", _text, "a model name"), ("strong", _text, "a model name"),
                 ("samples", lambda v: _whole(v, 1), f"a whole number from 1 to {MAX_SAMPLES}"),
                 ("threshold", _number, "a finite number"),
                 ("checks", lambda v: isinstance(v, list), "a list of checker specs"),
                 ("model", lambda v: isinstance(v, dict), "the fitted model (an object)")],
    "SelfConsistency": [("weak", _text, "a model name"), ("strong", _text, "a model name"),
                        ("samples", lambda v: _whole(v, 2), f"a whole number from 2 to {MAX_SAMPLES}"),
                        ("threshold", _number, "a finite number")],
}


def from_dict(data: Mapping[str, Any]) -> Policy:
    """The policy ``policy.to_dict()`` described."""
    if not isinstance(data, Mapping):
        raise InputError("a saved policy is a JSON object")
    kind = data.get("kind")
    if kind == "Learned":
        return Learned.from_dict({k: v for k, v in data.items() if k != "kind"})
    if data.get("format") != FORMAT or data.get("version") != FORMAT_VERSION:
        raise InputError(f"not a saved llmlab policy of version {FORMAT_VERSION} (\"format\": {FORMAT!r})")
    cls = _KINDS.get(str(kind))
    if cls is None:
        raise InputError(f"unknown saved policy kind {kind!r}")
    for key, ok, what in _FIELDS[cls.__name__]:
        if not ok(data.get(key)):
            raise InputError(f"saved {kind} policy: {key!r} must be {what}, not {data.get(key)!r}")
    try:
        return cls._from_fields(data, data.get("name"))
    except (KeyError, TypeError) as exc:
        raise InputError(f"saved {kind} policy is incomplete or malformed ({exc!r})") from None


def load_policy(path: str | Path) -> Policy:
    """A policy saved with ``policy.save(path)`` (JSON; rule policies and Learned routers)."""
    try:
        data = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read a saved policy from {path}: {exc}") from None
    return from_dict(data)
