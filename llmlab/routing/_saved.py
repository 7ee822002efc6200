"""Saved policies read back: JSON (never pickle), checked field by field before anything is built.

Each policy writes itself (``Policy.to_dict``/``save``); this module is the way back. Rule policies,
verifiers and self-consistency cascades are ``{"format": "llmlab.routing.policy", "version": 1,
"kind": ..., "name": ..., <fields>}`` (a :class:`~llmlab.routing.Verifier` carries its fitted
numbers and its checks as specs); a :class:`~llmlab.routing.Learned` router keeps its own format
(vocabulary, idf, coefficients).
"""
from __future__ import annotations

import math
import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..base._errors import InputError
from ..base._files import others_can_write, read_regular
from ..base._json import loads
from ..base._validate import is_real, one_line
from ._learned import Learned
from ._names import is_name, is_names, shown_value
from ._policies import FORMAT, FORMAT_VERSION, Always, Cascade, Fallback, Policy, Random, TaskMap, Threshold
from ._verifier import MAX_SAMPLES, SelfConsistency, Verifier

__all__ = ["load_policy", "from_dict"]

_KINDS: dict[str, type[Policy]] = {cls.__name__: cls for cls in (Always, TaskMap, Fallback, Random, Threshold,
                                                                 Cascade, Verifier, SelfConsistency)}


MAX_POLICY_BYTES = 256 * 2**20  # a Learned router with a large vocabulary is a few MB; more is not a policy


def _optional_text(v: Any) -> bool:
    return v is None or is_name(v)


def _number(v: Any) -> bool:
    return is_real(v) and math.isfinite(v)


def _probability(v: Any) -> bool:
    return _number(v) and 0 <= v <= 1


def _seed(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -2**63 <= v < 2**63


def _accept(v: Any) -> bool:
    """A checker spec: a kind name, or an object with a "kind" and plain values."""
    if isinstance(v, str):
        return is_name(v)
    return isinstance(v, dict) and is_name(v.get("kind")) and all(
        isinstance(k, str) and (x is None or isinstance(x, (str, bool)) or _number(x)) for k, x in v.items())


def _whole(v: Any, low: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and low <= v <= MAX_SAMPLES


# The schema of each saved policy: (field, check, what it must be).
# Names are one line of plain text (no control or bidi characters), numbers finite; what a kind
# does not list is ignored.
_COMMON: list[tuple[str, Callable[[Any], bool], str]] = [("name", _optional_text, "a name (one line of text) or null")]
_FIELDS: dict[str, list[tuple[str, Callable[[Any], bool], str]]] = {
    "Always": [("model", is_name, "a model name")],
    "TaskMap": [("mapping", lambda v: isinstance(v, dict) and all(is_name(k) and is_name(m) for k, m in v.items()),
                 "an object of task → model name"),
                ("default", _optional_text, "a model name or null")],
    "Fallback": [("models", is_names, "a list of model names")],
    "Random": [("p_strong", _probability, "a number from 0 to 1"), ("weak", is_name, "a model name"),
               ("strong", is_name, "a model name"), ("seed", _seed, "a 64-bit integer")],
    "Threshold": [("feature", is_name, "a column name"), ("threshold", _number, "a finite number"),
                  ("weak", is_name, "a model name"), ("strong", is_name, "a model name")],
    "Cascade": [("models", is_names, "a list of model names"), ("accept", _accept, "a checker spec"),
                ("accept_at", _number, "a finite number")],
    "Verifier": [("weak", is_name, "a model name"), ("strong", is_name, "a model name"),
                 ("samples", lambda v: _whole(v, 1), f"a whole number from 1 to {MAX_SAMPLES}"),
                 ("threshold", _number, "a finite number"),
                 ("checks", lambda v: isinstance(v, list), "a list of checker specs"),
                 ("model", lambda v: isinstance(v, dict), "the fitted model (an object)"),
                 ("named", lambda v: v is None or isinstance(v, bool), "true or false")],
    "SelfConsistency": [("weak", is_name, "a model name"), ("strong", is_name, "a model name"),
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
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InputError(f"unknown saved policy kind {shown_value(kind)}; known: {', '.join(_KINDS)}, Learned")
    for key, ok, what in [*_COMMON, *_FIELDS[cls.__name__]]:
        if not ok(data.get(key)):
            raise InputError(f"saved {kind} policy: {key!r} must be {what}, not {shown_value(data.get(key))}")
    try:
        return cls._from_fields(data, data.get("name"))
    except (KeyError, TypeError, ValueError, OverflowError, RecursionError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"saved {kind} policy is incomplete or malformed ({type(exc).__name__})") from None


def _read_trusted(path: Path) -> str:
    """The file's text, refused when another user could have written it (what it says decides
    where every prompt goes; a Learned router also holds the training prompts' words)."""
    def trusted(info: os.stat_result) -> None:
        if others_can_write(info):
            raise InputError(f"saved policy {path} can be changed by other users (mode "
                             f"{stat.filemode(info.st_mode)}, owner uid {info.st_uid}); if you trust it, make it "
                             f"yours and owner-writable only: chmod go-w {path}")

    return read_regular(path, what="a saved policy", limit=MAX_POLICY_BYTES, check=trusted).decode("utf-8")


def load_policy(path: str | Path) -> Policy:
    """A policy saved with ``policy.save(path)`` (JSON; rule policies and Learned routers),
    checked against the schema of its kind before anything is built."""
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"load_policy() takes a file path, not {type(path).__name__}")
    try:
        data = loads(_read_trusted(Path(path).expanduser()))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read a saved policy from {path}: {one_line(exc)}") from None
    return from_dict(data)  # loads() bounds the depth: from_dict cannot recurse too deep
