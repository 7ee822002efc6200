"""JSON from an endpoint, however deep it nests.

``json.loads`` recurses once per nesting level, so JSON nested deeper than Python's recursion
limit (about 1,000 levels, less inside a deep call stack) raises ``RecursionError``: not a parse
error, so it would escape every ``except ValueError`` as a crash. :func:`loads` is ``json.loads``
for everything it can read; what it cannot is read again here without recursion, up to
:data:`MAX_JSON_DEPTH` levels (legal JSON, whatever Python's stack), and anything deeper is a
:class:`JSONTooDeep` — a ``ValueError`` with a one-line message, read like any other bad JSON.
A document of more than :data:`MAX_JSON_CONTAINERS` arrays and objects is refused before it is
parsed (:class:`JSONTooLarge`): each costs ~60-200 bytes parsed, so 16 MB of ``[[],[],…]`` or
``[{"a":0},…]`` took ~550 MB to read; bounded, a 16 MB document takes at most ~400 MB.
"""
from __future__ import annotations

import json
import re
from json.scanner import NUMBER_RE
from typing import Any

__all__ = ["MAX_JSON_CONTAINERS", "MAX_JSON_DEPTH", "JSONTooDeep", "JSONTooLarge", "loads"]

# json's own string reader and number pattern: strings and numbers read exactly as json.loads reads them
_scanstring = json.decoder.scanstring  # type: ignore[attr-defined]

# Deeper than any real API response; a bound keeps a hostile payload's cost linear and small.
MAX_JSON_DEPTH = 2_000
# Twice the most a real document holds at the endpoint's document bound (engine/_call MAX_DOCUMENT,
# 16 MB): the densest is a completion's logprobs, an object and its bytes array per ~20-35 bytes
# ({"token":"a","logprob":-0.1,"bytes":[97]}), ~0.8M at 16 MB; an answer's text adds its brackets.
MAX_JSON_CONTAINERS = 2_000_000

_WHITESPACE = re.compile(r"[ \t\n\r]*")
# json.loads reads these too (NaN and the infinities are Python's extension, on by default).
_CONSTANTS = {"null": None, "true": True, "false": False, "NaN": float("nan"),
              "Infinity": float("inf"), "-Infinity": float("-inf")}


class JSONTooLarge(ValueError):
    """JSON that would cost too much to read: more than :data:`MAX_JSON_CONTAINERS` arrays and
    objects, or (:class:`JSONTooDeep`) nested deeper than :data:`MAX_JSON_DEPTH`."""


class JSONTooDeep(JSONTooLarge):
    def __init__(self) -> None:
        super().__init__(f"JSON nested too deep (more than {MAX_JSON_DEPTH:,} levels)")


def loads(text: str | bytes) -> Any:
    """``json.loads(text)``; JSON nested deeper than :data:`MAX_JSON_DEPTH` is :class:`JSONTooDeep`,
    with more than :data:`MAX_JSON_CONTAINERS` arrays and objects :class:`JSONTooLarge`.

    An integer longer than Python converts (4,300 digits; ``json.loads`` raises ValueError for the
    whole document) is read as ±infinity: a number too large for any use, which every number rule
    (:func:`~llmlab.base._validate.read_finite`, token counts) refuses — the rest of the document
    (a batch line's answer) is kept."""
    if isinstance(text, (bytes, bytearray)):  # as json.loads reads bytes
        text = bytes(text).decode(json.detect_encoding(text), "surrogatepass")
    # Counted with the brackets inside strings (an upper bound): two passes in C, before any parse
    if text.count("[") + text.count("{") > MAX_JSON_CONTAINERS:
        raise JSONTooLarge(f"JSON with more than {MAX_JSON_CONTAINERS:,} arrays and objects")
    try:
        return json.loads(text)
    except RecursionError:
        return _loads_flat(text)
    except ValueError as exc:
        if "digits" not in str(exc):
            raise
    try:
        return json.loads(text, parse_int=_integer)
    except RecursionError:
        return _loads_flat(text)


def _integer(digits: str) -> int | float:
    try:
        return int(digits)
    except ValueError:  # longer than sys.get_int_max_str_digits()
        return float("-inf") if digits.startswith("-") else float("inf")


def _loads_flat(text: str) -> Any:
    """The same parse with an explicit stack of the containers being filled (``[container, key]``)."""
    stack: list[list[Any]] = []
    pos = _skip(text, 0)
    while True:
        value, pos, opened = _value(text, pos)
        if isinstance(value if opened is None else opened, (list, dict)) and len(stack) >= MAX_JSON_DEPTH:
            raise JSONTooDeep()  # an empty container is a level too
        if opened is not None:
            key, pos = _key(text, pos) if isinstance(opened, dict) else (None, pos)
            stack.append([opened, key])
            continue
        while True:  # a value is whole: store it, then a comma (next value) or the container's close
            if not stack:
                if _skip(text, pos) != len(text):
                    raise json.JSONDecodeError("Extra data", text, pos)
                return value
            entry = stack[-1]
            container = entry[0]
            if isinstance(container, list):
                container.append(value)
            else:
                container[entry[1]] = value
            pos = _skip(text, pos)
            char = text[pos:pos + 1]
            if char == ",":
                pos = _skip(text, pos + 1)
                if isinstance(container, dict):
                    entry[1], pos = _key(text, pos)
                break
            if char != ("]" if isinstance(container, list) else "}"):
                raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)
            stack.pop()
            value, pos = container, pos + 1


def _value(text: str, pos: int) -> tuple[Any, int, list | dict | None]:
    """The scalar or empty container at ``pos`` and the position after it, or a container that
    has members (third item: filled by the caller) and the position of its first member."""
    char = text[pos:pos + 1]
    if char in ("[", "{"):
        after = _skip(text, pos + 1)
        empty: list | dict = [] if char == "[" else {}
        if text[after:after + 1] == ("]" if char == "[" else "}"):
            return empty, after + 1, None
        return None, after, empty
    if char == '"':
        string, end = _scanstring(text, pos + 1)
        return string, end, None
    for name, constant in _CONSTANTS.items():
        if text.startswith(name, pos):
            return constant, pos + len(name), None
    number = NUMBER_RE.match(text, pos)
    if number is None:
        raise json.JSONDecodeError("Expecting value", text, pos)
    integer, fraction, exponent = number.groups()
    value = float(integer + (fraction or "") + (exponent or "")) if fraction or exponent else _integer(integer)
    return value, number.end(), None


def _key(text: str, pos: int) -> tuple[str, int]:
    """An object's key and the position of its value."""
    if text[pos:pos + 1] != '"':
        raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, pos)
    key, pos = _scanstring(text, pos + 1)
    pos = _skip(text, pos)
    if text[pos:pos + 1] != ":":
        raise json.JSONDecodeError("Expecting ':' delimiter", text, pos)
    return key, _skip(text, pos + 1)


def _skip(text: str, pos: int) -> int:
    match = _WHITESPACE.match(text, pos)
    return match.end() if match else pos
