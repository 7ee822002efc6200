"""Call parameters that carry credentials are refused: a key's only way in is the variable named
by ``api_key_env`` (values are never echoed).

``api_key=``, ``Authorization=``, ``extra_headers={...}``, a ``Bearer …`` or vendor-key-shaped
value, and a URL with credentials in it (``https://user:pw@host``, ``?token=``), at the top level,
in ``extra_body``, ``body.NAME=`` and ``model_params``, nested or not.

Any part of a request (parameters, ``system``, every message's content and name) holding a
secret this process knows (:func:`check_no_secret`: in any form the views would redact — upper
case, lookalike letters, escaped, encoded, split — the one rule of ``_validate.holds_secret``) is
refused too, however deep: a gateway logs
request bodies, never the Authorization header. The values are known from the start:
:func:`remember_keys` runs when a ``Lab``, the CLI or the magics start, before any argument is
checked or echoed, so the first call of every entry point is checked like the later ones.
"""
from __future__ import annotations

import base64
import contextlib
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ._config import KEY_VARS, Endpoint, read_key
from ._errors import ConfigError, InputError
from ._redact import CREDENTIAL_NAME, KEY_PREFIX, known_secrets, remember, url_has_credentials
from ._validate import holds_secret

__all__ = ["check_no_credentials", "credential_error", "check_no_secret", "secret_path", "remember_keys"]

# Inside nested values only header-like names are refused (a tool schema may well have a
# 'password' property).
_NESTED_CREDENTIAL = re.compile(
    r"^(authorization|proxy-authorization|x-api-key|api-key|api_key|apikey|cookie|x-auth-token"
    r"|access_token|auth_token)$", re.IGNORECASE)
_CREDENTIAL_VALUE = re.compile(rf"^\s*(bearer|basic|token)\s+\S{{8,}}|^\s*{KEY_PREFIX}[A-Za-z0-9_-]{{12,}}\s*$",
                               re.IGNORECASE)
_MAX_DEPTH = 20


def _credential_path(value: Any, path: str, depth: int = 0) -> str | None:
    if isinstance(value, str):
        return path if _CREDENTIAL_VALUE.search(value) or url_has_credentials(value) else None
    if depth > _MAX_DEPTH:
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            name = str(key)
            inner = f"{path}[{name!r}]"
            if _NESTED_CREDENTIAL.match(name):
                return inner
            found = _credential_path(item, inner, depth + 1)
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = _credential_path(item, f"{path}[{i}]", depth + 1)
            if found:
                return found
    return None


def credential_error(name: str) -> InputError | None:
    """The one-line refusal for a parameter *name* that carries a credential, else None."""
    return _refusal(name) if CREDENTIAL_NAME.search(name) else None


_KEY_ADVICE = ("put the key in an environment variable (or ./.env) and pass its NAME, e.g. "
               "Lab(api_key_env='MY_GATEWAY_KEY') or %config LLMLab.api_key_env = 'MY_GATEWAY_KEY'")
_HEADER_PARAMS = frozenset({"headers", "extra_headers", "default_headers", "extra_query", "default_query",
                            "http_client"})


def _refusal(where: str) -> InputError:
    if where in _HEADER_PARAMS:
        return InputError(f"{where} is not a call parameter: llmlab sends no per-call headers or query "
                          f"(they would travel in the JSON body and be logged); for the key, {_KEY_ADVICE}")
    return InputError(f"parameter {where} looks like a credential (a key, a token, or a URL with credentials in "
                      f"it); llmlab never sends or logs credentials as call parameters: {_KEY_ADVICE}")


def check_no_credentials(params: dict) -> None:
    """Refuse call parameters that look like credentials or hold a known key value (their values
    are never echoed)."""
    for name, value in params.items():
        where = str(name) if CREDENTIAL_NAME.search(str(name)) else _credential_path(value, str(name))
        if where:
            raise _refusal(where)
        check_no_secret(value, f"parameter {name}")


def remember_keys(endpoint: Endpoint | None = None, *, names: Iterable[str] = ()) -> None:
    """Make the key values this process may send known secrets now, before any argument is checked
    or echoed: the default key variables and the variables ``names`` lists, as the environment
    holds them, and ``endpoint``'s key as its client will read it. An environment (and ./.env)
    read, no network; a missing or malformed key is no error here (reading a log needs no key)."""
    values = [os.environ.get(name) or "" for name in (*KEY_VARS, *names) if isinstance(name, str) and name]
    remember([v for value in values for v in (value, value.strip())])  # a pasted newline: both spellings
    if endpoint is not None and endpoint.api_key_env is not None:
        with contextlib.suppress(ConfigError):  # unset or malformed: said when a client needs it
            read_key(endpoint)


def secret_path(value: Any, where: str) -> str | None:
    """Where in ``value`` (a string, or JSON-like lists and dicts nested to any depth) a known
    secret appears, as ``where[0]['name']``; None if nowhere. A string holds one when the views
    would redact it (:func:`~llmlab.base._validate.holds_secret`, the one rule): what the log
    would show as [redacted] is never sent."""
    if not known_secrets():  # nothing to find: no walk
        return None
    # A loop, not recursion (any depth, linear cost); each part keeps (its key, its parent's
    # index) in ``steps``, so a path is spelled only for the part found.
    steps: list[tuple[Any, int]] = []
    stack: list[tuple[Any, int]] = [(value, -1)]
    seen: set[int] = set()
    while stack:
        item, step = stack.pop()
        if isinstance(item, str):
            if holds_secret(_text_of(item)):
                return where + _spelled(steps, step)
            continue
        if not isinstance(item, (Mapping, list, tuple)) or id(item) in seen:
            continue
        seen.add(id(item))
        pairs = list(item.items()) if isinstance(item, Mapping) else list(enumerate(item))
        for key, inner in reversed(pairs):  # reversed: the first part is looked at first
            if isinstance(key, str) and holds_secret(key):
                return where + _spelled(steps, step) + " (a key)"
            steps.append((key, step))
            stack.append((inner, len(steps) - 1))
    return None


# A data: URL carrying base64 (an image, audio, a file as a message part).
_DATA_URL = re.compile(r"data:[^,]{0,256};base64,", re.IGNORECASE)


def _text_of(value: str) -> str:
    """What of a request string is text: all of it, but the payload of a data: URL that is no UTF-8
    text (an image's bytes) — no log or view reads those as text, and random bytes hold pieces of
    any key by chance (a 100 KB image, 2 times in 20; 1 MB, 3 in 5). A text payload (the key as
    base64) is checked with the rest."""
    found = _DATA_URL.match(value)
    if found is None:
        return value
    try:
        payload = base64.b64decode(value[found.end():], validate=True)
    except ValueError:  # no base64: text, checked as such
        return value
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return value[:found.end()]
    return value


def _spelled(steps: list[tuple[Any, int]], step: int) -> str:
    keys = []
    while step >= 0:
        key, step = steps[step]
        keys.append(f"[{key!r}]" if isinstance(key, (str, int)) else "[…]")
    return "".join(reversed(keys))


def check_no_secret(value: Any, where: str) -> None:
    """Refuse a request part holding a key value this process knows, in one line naming the part
    (``system``, ``messages[2]['name']``, ``parameter tools[0]…``), never the value."""
    found = secret_path(value, where)
    if found:
        raise InputError(f"{found} holds your API key (a secret this process has read); refused before anything "
                         f"was sent or written (a request body reaches the endpoint's logs, a file name every "
                         f"listing): remove it, and {_KEY_ADVICE}")
