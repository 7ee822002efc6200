"""The one rule for a name read from a saved policy (a model, a policy, a task, a column): one
line of plain text — no control or bidi character, no lone surrogate, at most 1,000 characters.
Every saved kind (``_saved``) and the saved :class:`~llmlab.routing.Learned` router (``_learned``)
check their names with it."""
from __future__ import annotations

from typing import Any

from ..base._display import has_controls
from ..base._errors import InputError
from ..base._text import check_unicode
from ..base._validate import one_line

__all__ = ["MAX_NAME", "is_name", "is_names", "shown_value"]

MAX_NAME = 1000  # characters (and names in a list): longer is not a name


def is_name(v: Any) -> bool:
    """A name: one line of plain text."""
    return isinstance(v, str) and 0 < len(v) <= MAX_NAME and not has_controls(v) and _valid_unicode(v)


def is_names(v: Any) -> bool:
    """A list of one to 1,000 names."""
    return isinstance(v, list) and 0 < len(v) <= MAX_NAME and all(map(is_name, v))


def _valid_unicode(v: str) -> bool:
    try:
        check_unicode(v, "a name")
    except InputError:
        return False
    return True


def shown_value(value: Any) -> str:
    """A saved field's value in a message: short, and never a deep structure's repr (which recurses)."""
    if isinstance(value, (dict, list)):
        return f"a JSON {'object' if isinstance(value, dict) else 'array'} of {len(value)}"
    return one_line(repr(value), 60)
