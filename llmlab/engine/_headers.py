"""What an endpoint's response headers say about its rate limits: when to come back, and how
much budget is left.

Read directly (OpenAI, vLLM, LiteLLM's own limits) and as renamed by a gateway: LiteLLM's proxy
forwards every upstream header with an ``llm_provider-`` prefix (``llm_provider-retry-after``),
so each retry hint is looked up both ways and the longest one wins (never hammer a limited key).

Headers honoured (names case-insensitive):

* ``retry-after-ms`` (milliseconds; OpenAI) over ``retry-after`` (seconds or an HTTP date);
* on a 429 with neither, ``x-ratelimit-reset-requests`` / ``-tokens`` (durations such as ``1s``,
  ``6m0s``, ``20ms``, ``1h2m3.5s`` or bare seconds) of the exhausted budget;
* ``x-ratelimit-limit-*`` / ``x-ratelimit-remaining-*`` (requests and tokens) for the adaptive
  limiter. Only the endpoint's own (unprefixed) ones: the ``llm_provider-`` copies describe the
  gateway's upstream key, shared with the gateway's other users, not the budget of ours.
"""
from __future__ import annotations

import email.utils
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from ..base._validate import read_finite

__all__ = ["PROVIDER_PREFIX", "parse_retry_after", "parse_duration", "retry_hint", "LimitState", "limit_state"]

PROVIDER_PREFIX = "llm_provider-"
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|ns|h|m|s)")
_DIMENSIONS = ("requests", "tokens")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (a number of seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return _non_negative(float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def parse_duration(value: str | None) -> float | None:
    """Seconds from a Go-style duration (``1s``, ``6m0s``, ``20ms``, ``1h2m3.5s``) or bare seconds."""
    if not value:
        return None
    value = value.strip().lower()
    try:
        return _non_negative(float(value))
    except ValueError:
        pass
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        return None
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    return sum(float(number) * scale[unit] for number, unit in parts)


def _non_negative(number: float) -> float | None:
    finite = read_finite(number)  # the one finite-number rule (NaN, ±inf: not said)
    return None if finite is None else max(0.0, finite)


def _get(headers: Mapping[str, str] | None, name: str) -> str | None:
    if headers is None:
        return None
    value = headers.get(name)
    return value if isinstance(value, str) else None


def _explicit_hint(headers: Mapping[str, str], prefix: str) -> float | None:
    millis = _get(headers, prefix + "retry-after-ms")
    if millis is not None:
        try:
            seconds = _non_negative(float(millis) / 1000.0)
        except ValueError:
            seconds = None
        if seconds is not None:
            return seconds
    return parse_retry_after(_get(headers, prefix + "retry-after"))


def _reset_hint(headers: Mapping[str, str], prefix: str) -> float | None:
    """The reset of the budget that ran out (remaining ≤ 0 or unknown); else of any budget."""
    exhausted, every = [], []
    for dim in _DIMENSIONS:
        reset = parse_duration(_get(headers, f"{prefix}x-ratelimit-reset-{dim}"))
        if reset is None:
            continue
        every.append(reset)
        remaining = _number(_get(headers, f"{prefix}x-ratelimit-remaining-{dim}"))
        if remaining is None or remaining <= 0:
            exhausted.append(reset)
    chosen = exhausted or every
    return max(chosen) if chosen else None


def retry_hint(headers: Mapping[str, str] | None, status: int | None) -> float | None:
    """Seconds the endpoint asks us to wait before retrying, or None if it does not say."""
    if headers is None:
        return None
    hints = [h for p in ("", PROVIDER_PREFIX) if (h := _explicit_hint(headers, p)) is not None]
    if not hints and status == 429:
        hints = [h for p in ("", PROVIDER_PREFIX) if (h := _reset_hint(headers, p)) is not None]
    return max(hints) if hints else None


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return _non_negative(float(value.strip()))
    except ValueError:
        return None


@dataclass(frozen=True)
class LimitState:
    """The key's budget as the endpoint reported it with one response (None: not reported)."""
    limit_requests: float | None = None
    remaining_requests: float | None = None
    limit_tokens: float | None = None
    remaining_tokens: float | None = None


def limit_state(headers: Mapping[str, str] | None) -> LimitState | None:
    """The endpoint's own ``x-ratelimit-limit-*`` / ``-remaining-*`` headers, if it sent any."""
    if headers is None:
        return None
    limits = {dim: _number(_get(headers, f"x-ratelimit-limit-{dim}")) for dim in _DIMENSIONS}
    if limits["requests"] is None and limits["tokens"] is None:
        return None  # the common case (no limits stated): two lookups, per call
    remaining = {dim: _number(_get(headers, f"x-ratelimit-remaining-{dim}")) for dim in _DIMENSIONS}
    return LimitState(limit_requests=limits["requests"], remaining_requests=remaining["requests"],
                      limit_tokens=limits["tokens"], remaining_tokens=remaining["tokens"])
