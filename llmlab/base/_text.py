"""Text that crosses a boundary must be valid Unicode.

An endpoint can send JSON such as ``"x\\ud800y"``, which decodes to an unpaired surrogate: a
Python ``str`` that cannot be encoded as UTF-8, so writing it to the log, a terminal or a file
fails. Endpoint text is repaired where it enters a row (:func:`repair`); user text is refused
before anything is sent (:func:`check_unicode`). Bytes that are not UTF-8 (an endpoint's body or
stream) are decoded by :class:`Utf8Decoder`: each invalid sequence becomes U+FFFD and is counted,
so the answer around it is kept.

NUL (U+0000) is one rule for every backend — PostgreSQL cannot store it in text, SQLite would
keep it: the user's text holding one is refused before anything is sent (:func:`check_sendable`);
the endpoint's is stored with each NUL replaced by U+FFFD, counted in a note
(:func:`without_nul`), on SQLite as on PostgreSQL.
"""
from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from typing import Any

from ._errors import InputError

__all__ = ["repair", "check_unicode", "check_sendable", "without_nul", "Utf8Decoder", "REPAIRED_NOTE", "BAD_BYTES_NOTE",
           "NUL_NOTE"]

_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"
REPAIRED_NOTE = "note: the endpoint sent {n} invalid character(s) (unpaired UTF-16 surrogates) in {fields}; " \
                "each was replaced with U+FFFD"
NUL_NOTE = "the endpoint sent {n} NUL character(s) (U+0000) in {fields}; each was replaced with U+FFFD " \
           "(a run log cannot hold NUL in text)"
BAD_BYTES_NOTE = "note: the endpoint sent {n} invalid UTF-8 byte sequence(s); each was replaced with U+FFFD"


class Utf8Decoder:
    """Incremental UTF-8 decoding that never fails: a character split across chunks is joined,
    each invalid byte sequence becomes U+FFFD and is counted in ``replaced``."""

    def __init__(self) -> None:
        self.replaced = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")

    def decode(self, data: bytes, final: bool = False) -> str:
        try:
            return self._decoder.decode(data, final)
        except UnicodeDecodeError:
            return self._decode_replacing(data, final)

    def _decode_replacing(self, data: bytes, final: bool) -> str:
        # The strict decoder consumed nothing of ``data``: decode its kept prefix plus ``data``
        # again, counting each replacement (a valid U+FFFD in the input is not one).
        pending, _ = self._decoder.getstate()
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        raw = pending + data
        out, start = [], 0
        while True:
            try:
                out.append(self._decoder.decode(raw[start:], final))
                return "".join(out)
            except UnicodeDecodeError as exc:
                out.append(raw[start:start + exc.start].decode("utf-8"))
                out.append(REPLACEMENT)
                self.replaced += 1
                start += exc.end
                self._decoder.reset()


def repair(text: str) -> tuple[str, int]:
    """``text`` as valid Unicode (surrogate pairs joined, lone surrogates → U+FFFD), and how
    many characters were replaced."""
    if text.isascii() or _SURROGATE.search(text) is None:
        return text, 0
    fixed = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return fixed, fixed.count(REPLACEMENT) - text.count(REPLACEMENT)


def _surrogate_at(text: str) -> int | None:
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
        return None
    except UnicodeEncodeError as exc:
        return exc.start


def _nul_at(text: str) -> int | None:
    position = text.find("\x00")
    return None if position < 0 else position


def _find_in(value: Any, find: Callable[[str], int | None], depth: int = 0) -> int | None:
    """Where ``find`` finds something in a string, or 0 when it does in any string (key or value)
    nested in lists/dicts; None when it finds nothing."""
    if isinstance(value, str):
        return find(value)
    if depth > 50:
        return None
    if isinstance(value, dict):
        items: Any = [*value.keys(), *value.values()]
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        return None
    return 0 if any(_find_in(item, find, depth + 1) is not None for item in items) else None


def check_unicode(value: Any, what: str) -> None:
    """Refuse text that cannot be encoded (one line, the text itself is not echoed)."""
    position = _find_in(value, _surrogate_at)
    if position is not None:
        where = f" at position {position}" if isinstance(value, str) else ""
        raise InputError(
            f"{what} contains an unpaired surrogate character{where} (invalid Unicode, often from a bad "
            "decode); fix the text, e.g. text.encode('utf-8', 'replace').decode()"
        )


def without_nul(text: str) -> tuple[str, int]:
    """``text`` with each NUL replaced by U+FFFD, and how many there were."""
    n = text.count("\x00")
    return (text.replace("\x00", REPLACEMENT), n) if n else (text, 0)


def check_sendable(value: Any, what: str) -> None:
    """What the user sends (prompt, messages, system, parameters): valid Unicode without NUL, or a
    one-line InputError before anything is sent (the text itself is not echoed)."""
    check_unicode(value, what)
    position = _find_in(value, _nul_at)
    if position is not None:
        where = f" at position {position}" if isinstance(value, str) else ""
        raise InputError(f"{what} holds a NUL character (U+0000){where}; a run log cannot store it (PostgreSQL "
                         "refuses it), so nothing was sent: remove it, e.g. text.replace('\\x00', '')")
