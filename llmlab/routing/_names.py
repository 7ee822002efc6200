"""The policies' name rules, on top of the engine's one rule for model names (base/_names).

:func:`is_name`: a name read from a saved policy (a model, a policy, a task, a column) is one line
of plain text — no control, bidi, invisible or default-ignorable character (the engine's
``invisible_char``), no lone surrogate, at most 1,000 characters. Every saved kind (``_saved``) and
the saved :class:`~llmlab.routing.Learned` router (``_learned``) check their fields with it.

:func:`check_policy`: every policy, built in Python or loaded, and again before it is saved or
exported as code: its models pass :func:`~llmlab.base._names.check_model_names` (the key as a model
name, invisible characters, two names that read the same — exactly what ``lab.compare`` refuses),
its name and task names pass :func:`~llmlab.base._names.check_shown_text`."""
from __future__ import annotations

from typing import Any

from ..base._credentials import remember_keys
from ..base._errors import InputError
from ..base._names import check_model_names, check_shown_text
from ..base._text import check_unicode
from ..base._validate import invisible_char
from ..base._validate import shown_value as base_shown_value

__all__ = ["MAX_NAME", "is_name", "is_names", "shown_value", "check_policy"]

MAX_NAME = 1000  # characters (and names in a list): longer is not a name


def is_name(v: Any) -> bool:
    """A name: one line of plain text, not only spaces, nothing invisible (the engine's rule)."""
    return (isinstance(v, str) and 0 < len(v) <= MAX_NAME and bool(v.strip()) and _valid_unicode(v)
            and invisible_char(v) is None)


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
    """A saved field's value in a message: a JSON container by its kind and size (the file's words),
    anything else by the one rule of base._validate (any length of integer or text, no secret)."""
    if isinstance(value, (dict, list)):
        return f"a JSON {'object' if isinstance(value, dict) else 'array'} of {len(value)}"
    remember_keys()
    return base_shown_value(value)


def check_policy(policy: Any) -> None:
    """Refuse a policy whose models or names the engine would refuse (one line, no secret echoed)."""
    label = type(policy).__name__
    try:
        models = policy.needs()
    except NotImplementedError:
        models = None
    if models is not None:
        check_model_names(models, f"{label} model name", repeats=True)
    for what, text in policy._shown_names():
        if isinstance(text, str):
            check_shown_text(text, f"{label} {what}")
