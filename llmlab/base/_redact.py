"""Keeping secrets out of everything llmlab stores or shows.

* :class:`Redactor` removes a key value — and any run of ``MIN_RUN`` or more consecutive
  characters of it, in any letter case — from text; ``message()`` also masks the ``sk-ab***wxyz``
  echoes of 401 answers. The runner applies it to every text field of a row before the row is
  written, so params, endpoint, answers and error messages are all covered.
* :func:`public_url` drops ``user:password@`` from a URL (what is stored and shown);
  :func:`url_secrets` returns those parts, so they are redacted too.
* :func:`check_no_credentials` refuses call parameters that carry a credential (``api_key=``,
  ``extra_headers={"Authorization": ...}``): the key's only way in is the variable named by
  ``api_key_env``.
"""
from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any

from ._errors import InputError

__all__ = ["Redactor", "StreamRedactor", "MIN_RUN", "REDACTED", "public_url", "url_secrets",
           "check_no_credentials", "credential_error"]

MIN_RUN = 8  # an echo of 8+ consecutive characters of the key counts as the key
REDACTED = "[redacted]"
_MIN_SECRET = 4  # shorter values would redact ordinary words
_ECHO = re.compile(r"\S*\*{3,}\S*")  # 'sk-ab***wxyz': what OpenAI-style 401s echo


class Redactor:
    """Removes secret values, and fragments of them, from text."""

    def __init__(self, secrets: list[str]) -> None:
        variants: set[str] = set()
        for secret in secrets:
            if not isinstance(secret, str) or len(secret) < _MIN_SECRET:
                continue
            # The forms a value takes inside JSON (params) and URLs (endpoint) count as well.
            variants |= {secret, json.dumps(secret)[1:-1], urllib.parse.quote(secret, safe="")}
        self._whole = sorted((v.lower() for v in variants if len(v) < MIN_RUN), key=len, reverse=True)
        long = [v.lower() for v in variants if len(v) >= MIN_RUN]
        self._grams = {v[i:i + MIN_RUN] for v in long for i in range(len(v) - MIN_RUN + 1)}
        # Every run of MIN_RUN characters of a secret contains one of its 4-grams that start at a
        # multiple of 4: a cheap pre-check before the exact search.
        self._probes = {v[i:i + 4] for v in long for i in range(0, len(v) - 3, 4)}
        self._folded = sorted(long + self._whole, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._whole or self._grams)

    def __call__(self, text: Any) -> Any:
        if not isinstance(text, str) or not text or not self:
            return text
        folded = text.lower()
        if len(folded) != len(text):  # a few non-ASCII letters change length when lowered
            folded = text
        if not any(p in folded for p in self._probes) and not any(w in folded for w in self._whole):
            return text
        spans = self._spans(folded)
        if not spans:
            return text
        out, last = [], 0
        for start, end in spans:
            out += [text[last:start], REDACTED]
            last = end
        out.append(text[last:])
        return "".join(out)

    def _spans(self, folded: str) -> list[tuple[int, int]]:
        marks: list[tuple[int, int]] = []
        for needle in (*self._grams, *self._whole):
            start = folded.find(needle)
            while start != -1:
                marks.append((start, start + len(needle)))
                start = folded.find(needle, start + 1)
        marks.sort()
        merged: list[tuple[int, int]] = []
        for start, end in marks:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        return merged

    def open_tail(self, text: str) -> int:
        """Length of the longest end of ``text`` that is a piece of a secret: text a stream must
        hold back, since the next delta may complete a run that has to be redacted."""
        folded = text.lower()
        for length in range(min(len(folded), len(self._folded[0]) if self._folded else 0), 0, -1):
            tail = folded[-length:]
            if any(tail in secret for secret in self._folded):
                return length
        return 0

    def message(self, text: str | None) -> str | None:
        """An error message: secrets and masked key echoes (``sk-ab***wxyz``) removed."""
        text = self(text)
        return _ECHO.sub(REDACTED, text) if text else text


class StreamRedactor:
    """Redacts a stream delta by delta: text that may be the start of a secret is held back
    until the next delta shows whether it is one (runs split across deltas are caught too), and
    so is a trailing UTF-16 high surrogate, which the next delta may pair."""

    def __init__(self, redact: Redactor) -> None:
        self._redact = redact
        self._held = ""

    def feed(self, text: str) -> str:
        buffer = self._held + text
        keep = self._redact.open_tail(buffer) if self._redact else 0
        if buffer and "\ud800" <= buffer[-1] <= "\udbff":
            keep = max(keep, 1)
        self._held = buffer[len(buffer) - keep:] if keep else ""
        return self._redact(buffer[:len(buffer) - keep])


def _split(url: str) -> urllib.parse.SplitResult | None:
    try:
        return urllib.parse.urlsplit(url)
    except ValueError:
        return None


def _query_secrets(query: str) -> list[tuple[str, str]]:
    """(name, value) of query parameters whose names say they carry a credential (?api-key=…)."""
    return [(n, v) for n, v in urllib.parse.parse_qsl(query, keep_blank_values=True)
            if v and _CREDENTIAL_NAME.search(n)]


def public_url(url: Any) -> Any:
    """``url`` without ``user:password@`` and with credential query values (``?api-key=…``)
    replaced: the form that is stored and shown."""
    if not isinstance(url, str) or ("@" not in url and "?" not in url):
        return url
    parts = _split(url)
    if parts is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    query = parts.query
    if _query_secrets(query):
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        query = urllib.parse.urlencode([(n, REDACTED if v and _CREDENTIAL_NAME.search(n) else v) for n, v in pairs],
                                       safe="[]")
    return urllib.parse.urlunsplit(parts._replace(netloc=host, query=query))


def url_secrets(url: Any) -> list[str]:
    """The user name, password and credential query values inside a URL (all count as secrets),
    decoded and raw."""
    parts = _split(url) if isinstance(url, str) else None
    if parts is None:
        return []
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    raw = [p for p in userinfo.split(":", 1) if p] + [v for _, v in _query_secrets(parts.query)]
    return [*raw, *(urllib.parse.unquote(p) for p in raw)]


# Top-level parameter names that carry credentials (or headers, which llmlab never sends per
# call: extra keys travel in the JSON body, where a header would only be logged).
_CREDENTIAL_NAME = re.compile(
    r"(api[-_ ]?key|apikey|authori[sz]ation|auth[-_]?token|access[-_]?token|refresh[-_]?token|id[-_]?token"
    r"|session[-_]?token|bearer|secret|passw(or)?d|credential|private[-_]?key|cookie)"
    r"|^(key|token|auth|headers|extra_headers|default_headers|extra_query|default_query|http_client)$",
    re.IGNORECASE)
# Inside nested values only header-like names are refused (a tool schema may well have a
# 'password' property).
_NESTED_CREDENTIAL = re.compile(
    r"^(authorization|proxy-authorization|x-api-key|api-key|api_key|apikey|cookie|x-auth-token"
    r"|access_token|auth_token)$", re.IGNORECASE)
_CREDENTIAL_VALUE = re.compile(r"^\s*(bearer|basic|token)\s+\S{8,}|^\s*(sk|pk|rk|gsk|xai|hf|ghp|gho|github_pat|"
                               r"glpat|AIza|sk-ant|sk-or|sk-proj)[-_][A-Za-z0-9_-]{12,}\s*$", re.IGNORECASE)


def _credential_path(value: Any, path: str, depth: int = 0) -> str | None:
    if isinstance(value, str):
        return path if _CREDENTIAL_VALUE.search(value) else None
    if depth > 20:
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
    return _refusal(name) if _CREDENTIAL_NAME.search(name) else None


_KEY_ADVICE = ("put the key in an environment variable (or ./.env) and pass its NAME, e.g. "
               "Lab(api_key_env='MY_GATEWAY_KEY') or %config LLMLab.api_key_env = 'MY_GATEWAY_KEY'")
_HEADER_PARAMS = frozenset({"headers", "extra_headers", "default_headers", "extra_query", "default_query",
                            "http_client"})


def _refusal(where: str) -> InputError:
    if where in _HEADER_PARAMS:
        return InputError(f"{where} is not a call parameter: llmlab sends no per-call headers or query "
                          f"(they would travel in the JSON body and be logged); for the key, {_KEY_ADVICE}")
    return InputError(f"parameter {where} looks like a credential; llmlab never sends or logs keys as call "
                      f"parameters: {_KEY_ADVICE}")


def check_no_credentials(params: dict) -> None:
    """Refuse call parameters that look like credentials (their values are never echoed)."""
    for name, value in params.items():
        where = str(name) if _CREDENTIAL_NAME.search(str(name)) else _credential_path(value, str(name))
        if where:
            raise _refusal(where)
