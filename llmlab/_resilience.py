"""Retry policy and the per-key rate limiter.

Gateways apply rate limits per key across all models, so one limiter is shared by every call of
a ``Lab``. It is a pair of token buckets (requests and tokens per minute) guarded by a thread
lock, so calls from the Lab's own loop and from a user's loop (``await lab.acompare``) share it.
"""
from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

__all__ = ["RetryPolicy", "RateLimiter"]


@dataclass
class RetryPolicy:
    """``retries`` extra attempts per model for 429/5xx/timeouts/connection errors.

    Backoff is ``base_s * 2**n`` (n = 0, 1, …) with ±25 % jitter, capped at ``cap_s``. A
    ``Retry-After`` header is honoured up to ``retry_after_cap_s``; a longer one ends that model's
    attempts at once (waiting minutes inside a notebook cell helps nobody).
    """

    __module__ = "llmlab"
    retries: int = 3
    base_s: float = 0.5
    cap_s: float = 8.0
    retry_after_cap_s: float = 60.0
    seed: int | None = None
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def backoff(self, retry_number: int) -> float:
        delay = self.base_s * 2 ** retry_number * self._rng.uniform(0.75, 1.25)
        return min(self.cap_s, delay)

    def wait_for(self, retry_number: int, retry_after_s: float | None) -> float | None:
        """Seconds to wait before retry ``retry_number`` (0-based), or None to give up."""
        if retry_number >= self.retries:
            return None
        if retry_after_s is not None:
            return None if retry_after_s > self.retry_after_cap_s else retry_after_s
        return self.backoff(retry_number)


class _Bucket:
    def __init__(self, per_minute: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.level = float(per_minute)
        self.stamp = time.monotonic()

    def take(self, amount: float, now: float) -> float:
        """Take ``amount`` (possibly into debt); return seconds until the debt is repaid."""
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        self.level -= amount
        return 0.0 if self.level >= 0 else -self.level / self.rate


class RateLimiter:
    """Requests-per-minute and tokens-per-minute budget for one API key."""

    def __init__(self, rpm: float | None = None, tpm: float | None = None) -> None:
        self._lock = threading.Lock()
        self._requests = _Bucket(rpm) if rpm else None
        self._tokens = _Bucket(tpm) if tpm else None

    @property
    def active(self) -> bool:
        return self._requests is not None or self._tokens is not None

    def reserve(self, tokens: float) -> float:
        """Reserve one request and ``tokens``; return how long to wait before sending."""
        now = time.monotonic()
        with self._lock:
            waits = [0.0]
            if self._requests is not None:
                waits.append(self._requests.take(1, now))
            if self._tokens is not None:
                waits.append(self._tokens.take(min(tokens, self._tokens.capacity), now))
            return max(waits)

    def correct(self, estimated: float, actual: float) -> None:
        """Give back (or take more of) the token budget once usage is known."""
        if self._tokens is None or actual != actual:  # NaN: usage unknown, keep the estimate
            return
        with self._lock:
            taken = min(estimated, self._tokens.capacity)  # reserve() never takes more than this
            self._tokens.level += taken - actual
