"""The one rule for model names, wherever one comes from: a call's ``models=``, a routing policy
(built in Python or loaded from ``router.json``), a learned router, a price sheet.

A model name is shown in every table and written into every file llmlab writes (the run log,
``router.json``, a policy's exported code), so it must be plain text that reads as itself: a
non-empty string, valid Unicode, holding no secret this process has read (the key as a name,
in any form a reader could join back: :func:`~llmlab.base._validate.check_shown_name`), no
invisible character, and no two names of one list reading the same
(:func:`~llmlab.base._validate.check_name_chars`). The keys are made known first
(:func:`~llmlab.base._credentials.remember_keys`), so a policy built before any ``Lab`` is
checked like one built after.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._credentials import remember_keys
from ._errors import InputError
from ._text import check_unicode
from ._validate import check_name_chars, check_shown_name, invisible_error

__all__ = ["check_model_names", "check_shown_text"]


def check_model_names(models: Iterable[Any], what: str = "model name", *, repeats: bool = False) -> list[str]:
    """``models`` as a list of checked names, or a one-line InputError that never echoes a secret.
    ``repeats``: the same name twice is allowed (a policy may name a model in two places)."""
    remember_keys()
    models = list(models)
    if any(not isinstance(m, str) or not m.strip() for m in models):
        raise InputError(f"{what}s must be non-empty strings")
    check_unicode(models, f"a {what}")
    for number, model in enumerate(models, 1):
        check_shown_name(model, f"{what} #{number}")
    check_name_chars(models, what, repeats=repeats)  # after the key check: a ZWSP-joined key is named as the key
    return models


def check_shown_text(value: str, what: str) -> None:
    """A name that is not a model's but is shown and saved the same way (a policy's name, a task):
    no secret, no invisible character."""
    remember_keys()
    check_unicode(value, what)
    check_shown_name(value, what)
    problem = invisible_error(value, what)
    if problem is not None:
        raise problem
