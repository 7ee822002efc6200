"""Call parameters that carry credentials are refused: a key's only way in is the variable named
by ``api_key_env`` (values are never echoed).

``api_key=``, ``Authorization=``, ``extra_headers={...}``, a ``Bearer …`` or vendor-key-shaped
value, and a URL with credentials in it (``https://user:pw@host``, ``?token=``), at the top level,
in ``extra_body``, ``body.NAME=`` and ``model_params``, nested or not.
"""
from __future__ import annotations

import re
from typing import Any

from ._errors import InputError
from ._redact import CREDENTIAL_NAME, url_has_credentials

__all__ = ["check_no_credentials", "credential_error"]

# Inside nested values only header-like names are refused (a tool schema may well have a
# 'password' property).
_NESTED_CREDENTIAL = re.compile(
    r"^(authorization|proxy-authorization|x-api-key|api-key|api_key|apikey|cookie|x-auth-token"
    r"|access_token|auth_token)$", re.IGNORECASE)
_CREDENTIAL_VALUE = re.compile(r"^\s*(bearer|basic|token)\s+\S{8,}|^\s*(sk|pk|rk|gsk|xai|hf|ghp|gho|github_pat|"
                               r"glpat|AIza|sk-ant|sk-or|sk-proj)[-_][A-Za-z0-9_-]{12,}\s*$", re.IGNORECASE)
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
    """Refuse call parameters that look like credentials (their values are never echoed)."""
    for name, value in params.items():
        where = str(name) if CREDENTIAL_NAME.search(str(name)) else _credential_path(value, str(name))
        if where:
            raise _refusal(where)
