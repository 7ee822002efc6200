"""Retry policy and the per-key rate limiter.

Gateways apply rate limits per key across all models, so one limiter is shared by every call of
a ``Lab``, guarded by a thread lock (calls from the Lab's own loop and from a user's loop share
it). Two parts:

* the user's fixed budget, ``Lab(rpm=, tpm=)``: a pair of token buckets;
* the endpoint's budget, learned (:class:`_Adaptive`): from ``x-ratelimit-limit-*`` /
  ``-remaining-*`` headers, and from 429s (which also pause every call for the retry hint).
"""
from __future__ import annotations

import bisect
import collections
import math
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from ._headers import LimitState, limit_state

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


class _Adaptive:
    """The endpoint's per-key budget as learned from its answers, kept as a sliding window.

    Every send is logged at the time it may leave; once the endpoint has stated its limits
    (``x-ratelimit-limit-*``), a send waits until the last ``window_s`` seconds hold fewer than
    the limit's requests and tokens. An entry moves to when its answer's headers came if that
    is later (the endpoint counted it on arrival), so a send planned after entries then still in
    flight is checked again when due (:meth:`settle`). A sliding window is at least as strict as the token buckets
    and fixed windows gateways use, so it is safe against each, and exactly as strict as the
    tightest. The budget is the stated limit less what others use of the key (limit − remaining −
    our own sends in the window). A 429 shrinks it to ``_CUT`` × (once per burst of 429s) and it
    grows back by ``_RECOVERY`` of the limit per window, never beyond the stated limit. A 429's
    retry hint pauses every send of the key when the 429 came with the key's limit headers, else
    only that model's (a gateway's 429 without them may be one upstream's).
    """

    _CUT = 0.8
    _RECOVERY = 0.25
    _MARGIN_S = 0.02  # entries are logged when the answer's headers arrive, after the endpoint counted them

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.log: collections.deque[list[float]] = collections.deque()  # [send time, tokens], in time order
        self.logged_tokens = 0.0
        self.limits: dict[str, float] = {}  # "requests"/"tokens" → the endpoint's stated limit
        self.others: dict[str, float] = {"requests": 0.0, "tokens": 0.0}
        self.cut_scale, self.cut_at = 1.0, -math.inf
        self.pauses: dict[str | None, float] = {}  # model (None: every model) → paused until

    def _budget(self, dim: str, now: float) -> float | None:
        limit = self.limits.get(dim)
        if limit is None:
            return None
        scale = min(1.0, self.cut_scale + self._RECOVERY * (now - self.cut_at) / self.window_s)
        return max(1.0, (limit - self.others[dim]) * scale)

    def _prune(self, now: float) -> None:
        log = self.log
        while log and log[0][0] <= now - self.window_s:
            self.logged_tokens -= log.popleft()[1]

    def when(self, tokens: float, now: float, model: str | None) -> list[float]:
        """The earliest time a send of ``tokens`` fits; logs it there (the entry is returned so
        :meth:`sent` can move it to when it really left)."""
        self._prune(now)
        t = max(now, self.pauses.get(None, now), self.pauses.get(model, now))
        if self.limits:
            t = max(t, self.log[-1][0] if self.log else t,  # first come, first served
                    self._earliest(len(self.log), tokens, now))
        return self._insert(t, tokens)

    def _earliest(self, upto: int, tokens: float, now: float) -> float:
        """When a send of ``tokens`` after the first ``upto`` logged entries fits the budget."""
        log, t = self.log, -math.inf
        requests = self._budget("requests", now)
        if requests is not None and upto >= requests:
            t = log[upto - int(requests)][0] + self.window_s + self._MARGIN_S
        budget = self._budget("tokens", now)
        if budget is not None:
            used = min(tokens, budget)
            for k in range(upto - 1, -1, -1):
                used += log[k][1]
                if used > budget:
                    return max(t, log[k][0] + self.window_s + self._MARGIN_S)
        return t

    def _insert(self, t: float, tokens: float) -> list[float]:
        entry = [t, tokens]
        if self.log and self.log[-1][0] > t:
            bisect.insort(self.log, entry)
        else:
            self.log.append(entry)
        self.logged_tokens += tokens
        return entry

    def _index(self, entry: list[float]) -> int | None:
        for i in range(len(self.log) - 1, -1, -1):  # a recent entry: search from the newest end
            if self.log[i] is entry:
                return i
        return None  # already out of the window

    def sent(self, entry: list[float], now: float) -> None:
        """A send left at ``now``, later than planned (a busy loop): the endpoint's window counts it
        from its arrival, so ours must too."""
        i = self._index(entry) if now > entry[0] else None
        if i is not None:
            self._move(i, now)

    def settle(self, entry: list[float], now: float) -> float:
        """A planned send is due. The sends it was planned after may since have been logged later
        (their answers' headers came late, a loaded machine): its place is checked again against
        the entries before it. How much longer it waits (0: it may leave now)."""
        self._prune(now)
        i = self._index(entry)
        if i is None or not self.limits:
            return 0.0
        t = self._earliest(i, entry[1], now)
        if t <= max(now, entry[0]):
            return 0.0
        self._move(i, t)
        return t - now

    def _move(self, i: int, t: float) -> None:
        """Move the ``i``-th entry to ``t``, the same object (it is a caller's ticket)."""
        entry = self.log[i]
        del self.log[i]
        entry[0] = t
        bisect.insort(self.log, entry)

    def _ours(self, now: float) -> dict[str, float]:
        """Our sends (and their tokens) in the window up to ``now``; later ones are still queued."""
        self._prune(now)
        count, tokens = len(self.log), self.logged_tokens
        for sent, amount in reversed(self.log):
            if sent <= now:
                break
            count, tokens = count - 1, tokens - amount
        return {"requests": count, "tokens": tokens}

    def observe(self, headers: Mapping[str, str] | None, status: int | None, retry_s: float | None,
                model: str | None, now: float) -> None:
        state = limit_state(headers)
        stated = False
        if state is not None and (state.limit_requests or state.limit_tokens):
            stated = True
            self._learn(state, now)
        if status != 429:
            return
        if retry_s is not None:
            scope = None if stated else model
            self.pauses[scope] = max(self.pauses.get(scope, now), now + min(retry_s, self.window_s))
        if self.limits and now - self.cut_at >= max(1.0, retry_s or 0.0):  # one cut per burst of 429s
            self.cut_scale = self._CUT * min(1.0, self.cut_scale + self._RECOVERY * (now - self.cut_at) / self.window_s)
            self.cut_at = now

    def _learn(self, state: LimitState, now: float) -> None:
        ours = self._ours(now)
        for dim, limit, remaining in (("requests", state.limit_requests, state.remaining_requests),
                                      ("tokens", state.limit_tokens, state.remaining_tokens)):
            if limit:
                self.limits[dim] = limit
                if remaining is not None:  # what the endpoint counted that we did not send
                    self.others[dim] = max(0.0, limit - remaining - ours[dim])


class RateLimiter:
    """The per-key budget: the user's fixed requests/tokens per minute, and the endpoint's, learned
    from its headers and 429s (``adaptive``)."""

    def __init__(self, rpm: float | None = None, tpm: float | None = None, adaptive: bool = True,
                 window_s: float = 60.0) -> None:
        self._lock = threading.Lock()
        self._requests = _Bucket(rpm) if rpm else None
        self._tokens = _Bucket(tpm) if tpm else None
        self._adaptive = _Adaptive(window_s) if adaptive else None

    @property
    def active(self) -> bool:
        """True when sends must be reserved (a fixed budget, or learning the endpoint's)."""
        return self._requests is not None or self._tokens is not None or self._adaptive is not None

    @property
    def counts_tokens(self) -> bool:
        """True when a token budget is known: only then is a call's token use estimated."""
        return self._tokens is not None or (self._adaptive is not None and "tokens" in self._adaptive.limits)

    def reserve(self, tokens: float, model: str | None = None) -> float:
        """Reserve one request and ``tokens``; return how long to wait before sending."""
        return self.acquire(tokens, model)[0]

    def acquire(self, tokens: float, model: str | None = None) -> tuple[float, list[float] | None]:
        """:meth:`reserve`, and a ticket to hand to :meth:`sent` once the request really leaves."""
        now = time.monotonic()
        with self._lock:
            wait = 0.0
            if self._requests is not None:
                wait = max(wait, self._requests.take(1, now))
            if self._tokens is not None:
                wait = max(wait, self._tokens.take(min(tokens, self._tokens.capacity), now))
            if self._adaptive is None:
                return wait, None
            # Every send is logged, learned limit or not: the endpoint's "remaining" is judged against them.
            entry = self._adaptive.when(tokens, now + wait, model)
            return max(wait, entry[0] - now), entry

    def settle(self, ticket: list[float] | None) -> float:
        """Just before a send that waited for its planned time leaves: how much longer it must
        wait, the sends it was planned after having since been logged later (see ``_Adaptive``)."""
        if ticket is None or self._adaptive is None:
            return 0.0
        now = time.monotonic()
        with self._lock:
            return self._adaptive.settle(ticket, now)

    def sent(self, ticket: list[float] | None) -> None:
        if ticket is not None and self._adaptive is not None:
            now = time.monotonic()
            if now > ticket[0] + 0.001:
                with self._lock:
                    self._adaptive.sent(ticket, now)

    def observe(self, headers: Mapping[str, str] | None, status: int | None, retry_s: float | None,
                model: str | None = None) -> None:
        """Learn from one answer to ``model``: its rate-limit headers, and whether it was a 429."""
        if self._adaptive is None or (status != 429 and headers is None):
            return
        with self._lock:
            self._adaptive.observe(headers, status, retry_s, model, time.monotonic())

    def correct(self, estimated: float, actual: float) -> None:
        """Give back (or take more of) the token budget once usage is known."""
        if self._tokens is None or actual != actual:  # NaN: usage unknown, keep the estimate
            return
        with self._lock:
            taken = min(estimated, self._tokens.capacity)  # reserve() never takes more than this
            self._tokens.level += taken - actual
