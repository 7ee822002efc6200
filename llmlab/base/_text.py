"""Text that crosses a boundary must be valid Unicode.

An endpoint can send JSON such as ``"x\\ud800y"``, which decodes to an unpaired surrogate: a
Python ``str`` that cannot be encoded as UTF-8, so writing it to the log, a terminal or a file
fails. Endpoint text is repaired where it enters a row (:func:`repair`); user text is refused
before anything is sent (:func:`check_unicode`).
"""
from __future__ import annotations

import re
from typing import Any

from ._errors import InputError

__all__ = ["repair", "check_unicode", "REPAIRED_NOTE"]

_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"
REPAIRED_NOTE = "note: the endpoint sent {n} invalid character(s) (unpaired UTF-16 surrogates) in {fields}; " \
                "each was replaced with U+FFFD"


def repair(text: str) -> tuple[str, int]:
    """``text`` as valid Unicode (surrogate pairs joined, lone surrogates → U+FFFD), and how
    many characters were replaced."""
    if text.isascii() or _SURROGATE.search(text) is None:
        return text, 0
    fixed = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return fixed, fixed.count(REPLACEMENT) - text.count(REPLACEMENT)


def _find_surrogate(value: Any, depth: int = 0) -> int | None:
    """Position of the first unpaired surrogate in a string, or in any string (key or value)
    nested in lists/dicts (then 0); None when there is none."""
    if isinstance(value, str):
        if value.isascii():
            return None
        try:
            value.encode("utf-8")
            return None
        except UnicodeEncodeError as exc:
            return exc.start
    if depth > 50:
        return None
    if isinstance(value, dict):
        items: Any = [*value.keys(), *value.values()]
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        return None
    for item in items:
        if _find_surrogate(item, depth + 1) is not None:
            return 0
    return None


def check_unicode(value: Any, what: str) -> None:
    """Refuse text that cannot be encoded (one line, the text itself is not echoed)."""
    position = _find_surrogate(value)
    if position is not None:
        where = f" at position {position}" if isinstance(value, str) else ""
        raise InputError(
            f"{what} contains an unpaired surrogate character{where} (invalid Unicode, often from a bad "
            "decode); fix the text, e.g. text.encode('utf-8', 'replace').decode()"
        )
