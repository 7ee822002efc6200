"""Async fan-out: concurrency bound, response cache, retries, fallback chains, rate limit.

Every attempt becomes a :class:`Record` that is written to the store as soon as it finishes,
before anything is returned — an interrupted sweep keeps every finished call.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime

import openai

from ..base._errors import StoreError
from ..base._pricing import PriceTable
from ..base._record import Record
from ..base._redact import StreamRedactor, public_url
from ..base._text import NUL_NOTE, repair, without_nul
from ..base._tokens import TokenCounter
from ..local._identity import EmbeddedURL
from ..store._base import DeferredRows, LogUnavailable, Store
from ._call import CallSpec, Outcome, Redactor, add_note, call_model
from ._loop import post
from ._options import Timeouts
from ._resilience import RateLimiter, RetryPolicy

__all__ = ["Job", "Event", "Runner", "RunContext", "cache_key", "batches", "effort_sent", "new_record",
           "redact_record"]

_NOT_CACHE_KEYS = ("stream", "stream_options")
_MIN_BATCH = 256  # jobs pulled (and cache-checked in one query) at a time


@dataclass
class Job:
    """One logical request: a prompt for one model, or for a fallback chain of models."""
    prompt_id: str
    prompt: str
    messages: list[dict]
    models: list[str]
    bodies: dict[str, dict]  # each model's request body: exactly what it is sent (and its params)
    stream: bool
    use_cache: bool = True
    task: str | None = None
    expected: str | None = None
    repeat: int = 0
    timeouts: dict[str, Timeouts] = field(default_factory=dict)
    retry: RetryPolicy | None = None  # per-call policy; None: the Lab's
    policy: str | None = None         # lab.route: the routing policy's name and its reason
    route_reason: str | None = None
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    seq: int | None = None  # position in the run: rows read back in the order asked for
    conversation_hash: str | None = None  # of ``messages`` (computed once per prompt, not per call)
    turns: int = 1  # user turns in ``messages``


@dataclass
class Event:
    """What a live display needs: ``start``, ``delta`` (``text`` = new text), ``done``/``error``
    (``text`` = the whole answer, ``record`` = the row as a dict)."""

    __module__ = "llmlab"
    kind: str
    model: str
    prompt_id: str
    request_id: str
    text: str = ""
    record: dict | None = None


@dataclass
class RunContext:
    client: openai.AsyncOpenAI
    store: Store
    prices: PriceTable
    counter: TokenCounter
    limiter: RateLimiter
    retry: RetryPolicy
    redact: Redactor
    endpoint: str
    api_key_env: str | None

    def __post_init__(self) -> None:
        if not isinstance(self.endpoint, (EmbeddedURL, _SentURL)):
            self.endpoint = _SentURL.of(self.endpoint, sent=str(self.client.base_url.copy_with(fragment=None)))


class _SentURL(str):
    """A remote endpoint's URL as stored and shown (masked) carrying a hash of the URL its requests
    go to, for the cache key alone: two endpoints that differ only in a part the masked form hides
    (a token in the path, a credential in the query, a token host label) never share answers. The
    real URL is never kept: only its SHA-256, which is hashed again into the key. A plain ``str``
    everywhere else; copies and pickles are plain strings, so no row carries it."""

    sent_sha256: str

    @classmethod
    def of(cls, shown: str, *, sent: str) -> str:
        """``shown`` itself when the URL sent has nothing masked (its key is the URL as before this
        rule, so an existing cache still hits: user:password@ and the fragment are never sent)."""
        if public_url(sent) == sent:
            return shown
        self = super().__new__(cls, shown)
        self.sent_sha256 = hashlib.sha256(sent.encode("utf-8", "surrogatepass")).hexdigest()
        return self

    def __reduce__(self):
        return (str, (str(self),))


def cache_key(endpoint: str, model: str, job: Job) -> str:
    body = {k: v for k, v in job.bodies[model].items() if k not in _NOT_CACHE_KEYS}
    # stream is part of the key: a replayed non-streamed row has no TTFT to give a streamed request
    payload = json.dumps({"endpoint": _answered_by(endpoint, model), "model": model, "messages": job.messages,
                          "body": body, "stream": job.stream, "repeat": job.repeat}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _answered_by(endpoint: str, model: str) -> str | dict:
    """Who answers ``model`` there: a remote endpoint's URL (two servers never share answers;
    keys as before this rule, so existing caches still hit) and, when the stored URL masks a part
    that is sent, the hash of the URL as sent (:class:`_SentURL`); or, on the embedded endpoint,
    the model's identity — GGUF digest and size, chat format, context size — which outlives the
    port it gets each session (its rows keyed on the port miss once). A name it does not serve
    keys on the URL. The API key is not part of it (see the README's cache paragraph): rotating
    a key, or a teammate with their own key on the same gateway, still hits."""
    if isinstance(endpoint, _SentURL):
        return {"sent_sha256": endpoint.sent_sha256}  # not the shown URL: its masked fragment is never sent
    identity = endpoint.cache_identity(model) if isinstance(endpoint, EmbeddedURL) else None
    return endpoint if identity is None else {"embedded": identity}


class Runner:
    """Runs jobs for one ``run_id``; returns each job's attempts in job order."""

    def __init__(self, ctx: RunContext, run_id: str, on_event: Callable[[Event], None] | None = None,
                 progress=None) -> None:
        self.ctx = ctx
        self.run_id = run_id
        self._on_event = on_event
        self._progress = progress
        self._callback_failed = False
        self.store_error: StoreError | None = None
        self.unlogged: list[Record] = []

    async def run(self, jobs: Iterable[Job], concurrency: int) -> None:
        """Run every job; each attempt is written to the store as it finishes.

        Memory stays bounded whatever the number of jobs: they are pulled from the iterable a
        batch at a time, a task is created only when a concurrency slot is free, and nothing is
        kept once written (a :class:`Result` reads the rows back from the store). If the store
        stops accepting rows, no further request is sent; answers that could not be written are
        kept in ``unlogged`` and ``store_error`` says why."""
        gate = asyncio.Semaphore(concurrency)

        async def one(job: Job) -> None:
            try:
                await self._run_job(job)
            finally:
                gate.release()
            self._advance()

        try:
            async with asyncio.TaskGroup() as group:
                for batch in batches(jobs, max(2 * concurrency, _MIN_BATCH)):
                    for job in await self._replay_cached(batch):
                        await gate.acquire()
                        if self.store_error is not None:
                            gate.release()
                            return
                        group.create_task(one(job))
        except ExceptionGroup as group_error:
            # The first failure, not a TaskGroup wrapper, reaches the caller.
            raise group_error.exceptions[0] from None
        finally:
            self._flush()  # every finished attempt is in the log (or in ``unlogged``) before anything returns

    def _flush(self) -> None:
        try:
            self.ctx.store.flush()
        except StoreError as exc:
            self.store_error = self.store_error or exc

    async def _replay_cached(self, jobs: list[Job]) -> list[Job]:
        """Answer a batch's cache hits in one transaction; return the jobs that still need a call."""
        keys = {i: cache_key(self.ctx.endpoint, job.models[0], job) for i, job in enumerate(jobs) if job.use_cache}
        hits = self._cache_lookup(keys.values()) if keys else {}
        replayed = [self._replay(jobs[i], hits[key]) for i, key in keys.items() if key in hits]
        if replayed:
            await self._awrite(replayed)
            for record in replayed:
                self._emit("done", record, record.response_text)
            self._advance(len(replayed))
        done = {record.request_id for record in replayed}
        return [job for job in jobs if job.request_id not in done]

    def _cache_lookup(self, keys: Iterable[str]) -> dict[str, dict]:
        if self.store_error is not None:
            return {}
        try:
            return self.ctx.store.cached(keys)
        except StoreError as exc:
            self.store_error = exc
            return {}

    def _replay(self, job: Job, row: dict) -> Record:
        record = self._new_record(job, job.models[0], attempt=1)
        for name in _REPLAYED:
            setattr(record, name, row[name])
        record.cached, record.cache_of = True, row["id"]
        # Nothing is spent on a replay; what the original cost stays visible beside it (llmlab.base._cost).
        record.cost_usd, record.cost_source, record.original_cost_usd = 0.0, "cache", row["cost_usd"]
        record.prompt_cache_saved_usd = 0.0
        record.started_at = datetime.now(UTC).isoformat()
        return record

    def _new_record(self, job: Job, model: str, attempt: int, waited: float = 0.0) -> Record:
        return new_record(self.ctx, self.run_id, job, model, attempt, waited)

    def emit_row(self, record: Record) -> None:
        """A row that was answered another way (a batch): its ``done``/``error`` event."""
        self._emit("done" if record.status == "ok" else "error", record, record.response_text)

    async def replay_cached(self, jobs: list[Job]) -> list[Job]:
        """Answer ``jobs``' cache hits from the log (written and counted); the jobs still to send."""
        try:
            return await self._replay_cached(jobs)
        finally:
            self._flush()

    async def _run_job(self, job: Job) -> list[Record]:
        attempts: list[Record] = []
        for position, model in enumerate(job.models):
            outcome = await self._run_model(job, model, attempts, last=position == len(job.models) - 1)
            if outcome is None or outcome.record.status == "ok" or (job.stream and outcome.got_text):
                break  # a stream that already showed text is not answered again by another model
        return attempts

    async def _run_model(self, job: Job, model: str, attempts: list[Record], last: bool) -> Outcome | None:
        waited, retry_number, outcome = 0.0, 0, None
        while True:
            if self.store_error is not None:
                return outcome  # never send a request whose answer cannot be stored
            estimate = self._estimate_tokens(job, model) if self.ctx.limiter.counts_tokens else 0.0
            throttled, ticket = await self._throttle(estimate, model)
            waited += throttled
            outcome = await self._attempt(job, model, len(attempts) + 1, waited, estimate, ticket)
            attempts.append(outcome.record)
            if outcome.record.status == "ok" or outcome.context_exceeded or not outcome.retryable:
                return outcome
            if not last and not outcome.got_text:
                return outcome  # another model can answer now: no backoff sleep
            wait = (job.retry or self.ctx.retry).wait_for(retry_number, outcome.retry_after_s)
            if wait is None:
                return outcome
            retry_number += 1
            await asyncio.sleep(wait)
            waited = wait

    async def _throttle(self, estimate: float, model: str) -> tuple[float, list[float] | None]:
        limiter = self.ctx.limiter
        if not limiter.active:
            return 0.0, None
        wait, ticket = limiter.acquire(estimate, model)
        waited = wait
        while wait > 0:
            await asyncio.sleep(wait)
            wait = limiter.settle(ticket)  # planned before earlier sends' headers came: checked again
            waited += wait
        return waited, ticket

    def _estimate_tokens(self, job: Job, model: str) -> float:
        body = job.bodies[model]
        max_out = body.get("max_tokens") or body.get("max_completion_tokens") or 0
        return self.ctx.counter.count_messages(job.messages) + max_out

    async def _attempt(self, job: Job, model: str, attempt: int, waited: float, estimate: float,
                       ticket: list[float] | None) -> Outcome:
        record = self._new_record(job, model, attempt, waited)
        spec = CallSpec(model=model, messages=job.messages, body=job.bodies[model], stream=job.stream,
                        timeouts=job.timeouts.get(model) or job.timeouts.get("*") or Timeouts())
        self._emit("start", record)
        stream = StreamRedactor(self.ctx.redact)  # live deltas never show a key, even split across chunks
        on_delta = (lambda text: self._emit("delta", record, repair(stream.feed(text))[0])) if self._on_event else None
        try:
            # The endpoint's window counts a request from its arrival, which the headers' arrival
            # bounds: a send that left late (a busy loop, the first call's set-up) is logged then.
            on_headers = (lambda: self.ctx.limiter.sent(ticket)) if ticket is not None else None
            outcome = await call_model(self.ctx.client, spec, record, self.ctx.counter, self.ctx.prices,
                                       self.ctx.redact, on_delta, on_headers)
        except asyncio.CancelledError:
            self._write([record])  # the cancelled attempt stays visible in the log
            self._emit("error", record, record.response_text)
            raise
        except Exception as exc:  # an answer nothing anticipated: this attempt's row, not the run
            outcome = _unexpected(record, exc, self.ctx.redact)
        key = cache_key(self.ctx.endpoint, model, job) if job.use_cache else None
        await self._awrite([record], [key])
        self.ctx.limiter.observe(outcome.headers, outcome.http_status, outcome.retry_after_s, model)
        if estimate:
            self.ctx.limiter.correct(estimate, _total_tokens(record))
        self._emit("done" if record.status == "ok" else "error", record, record.response_text)
        return outcome

    async def _awrite(self, records: list[Record], keys: list[str | None] | None = None) -> None:
        """``_write``, then wait (without blocking the loop) until the rows are in the log or known
        unloggable: a job's slot frees only once its row is stored, so a killed process loses
        only the calls in flight, never a finished answer waiting in the writer's queue."""
        stored: Future[None] = Future()
        self._write(records, keys, stored)
        await asyncio.wrap_future(stored)

    def _write(self, records: list[Record], keys: list[str | None] | None = None,
               stored: Future[None] | None = None) -> None:
        """Store rows with every text field redacted (here, before any event shows them); the
        insert runs on the store's writer thread, off the loop that times calls. Once the log has
        failed (damaged, full, read-only, gone), rows are kept in ``unlogged``, ``store_error``
        says why, and ``run`` sends nothing more."""
        for record in records:
            redact_record(record, self.ctx.redact)
        if self.store_error is None:
            try:
                self.ctx.store.defer(DeferredRows(records, keys, functools.partial(self._insert, records, keys, stored),
                                                  functools.partial(_release, stored),
                                                  functools.partial(self._lost, records, stored)))
                return
            except StoreError as exc:  # an earlier deferred write failed
                self.store_error = self.store_error or exc
        self.unlogged.extend(records)
        _release(stored)

    def _insert(self, records: list[Record], keys: list[str | None] | None = None,
                stored: Future[None] | None = None) -> None:
        """On the writer thread. A row the log refuses (text it cannot encode, a value it cannot
        hold) is stored again as an error row with escaped text, so it stays visible and its
        siblings go on; if the log refuses that too, the rows go to ``unlogged`` and it raises."""
        try:
            self._store_rows(records, keys)
        except StoreError as exc:
            self.unlogged.extend(r for r in records if r.id is None)  # stored ones have their id
            self.store_error = self.store_error or exc  # seen by the loop thread: nothing more is sent
            raise
        finally:
            _release(stored)

    def _lost(self, records: list[Record], stored: Future[None] | None, exc: StoreError) -> None:
        """On the writer thread: the log stayed unavailable and these rows went to its journal."""
        self.unlogged.extend(r for r in records if r.id is None)
        self.store_error = self.store_error or exc  # nothing more is sent
        _release(stored)

    def _store_rows(self, records: list[Record], keys: list[str | None] | None) -> None:
        try:
            self.ctx.store.insert(records, keys)
            return
        except LogUnavailable:
            raise  # the log, not the rows: they are in its journal, never stored again as errors
        except StoreError as exc:
            if len(records) > 1:  # find the bad row(s): one at a time
                for i, record in enumerate(records):
                    self._store_rows([record], None if keys is None else [keys[i]])
                return
            first_error = exc
        record = records[0]
        original = replace(record)
        _escape_record(record, first_error)
        try:
            self.ctx.store.insert([record])
        except StoreError:
            record.__dict__.update(original.__dict__)  # the answer as it came, for ``unlogged``
            raise first_error from None

    def _emit(self, kind: str, record: Record, text: str = "") -> None:
        if self._on_event is None:
            return
        row = record.to_row() if kind in ("done", "error") else None
        post(self._deliver, Event(kind, record.requested_model, record.prompt_id, record.request_id, text, row))

    def _deliver(self, event: Event) -> None:
        """On the run's callback thread (``_loop.post``): the loop never waits for a display."""
        assert self._on_event is not None
        try:
            self._on_event(event)
        except Exception as exc:  # a broken display must not lose the sweep
            if not self._callback_failed:
                self._callback_failed = True
                warnings.warn(f"on_event callback failed ({type(exc).__name__}: {exc}); calls go on",
                              RuntimeWarning, stacklevel=2)

    def _advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.update(n)


def new_record(ctx: RunContext, run_id: str, job: Job, model: str, attempt: int = 1, waited: float = 0.0) -> Record:
    """An attempt's row before it is sent: everything known about the request."""
    return Record(
        run_id=run_id, request_id=job.request_id, prompt_id=job.prompt_id, requested_model=model,
        prompt=job.prompt, messages=json.dumps(job.messages, ensure_ascii=False),
        params=json.dumps(job.bodies[model], sort_keys=True, default=str), stream=job.stream,
        endpoint=ctx.endpoint, api_key_env=ctx.api_key_env, task=job.task,
        expected=job.expected, repeat=job.repeat, attempt=attempt, waited_s=waited,
        policy=job.policy, route_reason=job.route_reason, seq=job.seq,
        reasoning_effort=effort_sent(job.bodies[model]), conversation_hash=job.conversation_hash, turns=job.turns,
    )


# What a cache hit replays of its original row (the answer and how it was measured).
_REPLAYED = ("served_model", "status", "ttft_s", "ttft_reasoning_s", "ttft_answer_s", "latency_s",
             "output_tokens_per_s", "prompt_tokens", "completion_tokens", "cached_tokens", "cache_creation_tokens",
             "reasoning_tokens", "tokens_estimated", "finish_reason", "response_text", "reasoning_text", "tool_calls",
             "refusal", "logprob_mean", "logprob_min")


def effort_sent(body: dict) -> str | None:
    """The reasoning effort a body asks for: ``reasoning_effort``, or OpenRouter's
    ``reasoning: {"effort": ...}`` sent through extra_body."""
    effort = body.get("reasoning_effort")
    if effort is None and isinstance(body.get("reasoning"), dict):
        effort = body["reasoning"].get("effort")
    return effort if isinstance(effort, str) else None


def _release(stored: Future[None] | None) -> None:
    """Tell the waiting attempt its row is stored; it may have been cancelled meanwhile (Ctrl-C),
    which cancels this future too."""
    if stored is not None:
        with contextlib.suppress(InvalidStateError):
            stored.set_result(None)


def batches(jobs: Iterable[Job], size: int) -> Iterator[list[Job]]:
    batch: list[Job] = []
    for job in jobs:
        batch.append(job)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
def _unexpected(record: Record, exc: Exception, redact: Redactor) -> Outcome:
    record.status, record.error_type = "error", "UnexpectedResponse"
    detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:500]
    record.error_message = redact.message(f"llmlab could not process the endpoint's answer ({detail})")
    return Outcome(record)


_TEXT_FIELDS = tuple(f.name for f in fields(Record) if f.type in ("str", "str | None"))
# Text the endpoint wrote: searched for every form of a key it may echo back (split, encoded,
# masked); the rest of a row (the user's prompt, parameters, names) for the key and its runs.
_ENDPOINT_FIELDS = frozenset({"response_text", "refusal", "reasoning_text", "tool_calls", "served_model",
                              "error_message", "finish_reason"})


def redact_record(record: Record, redact: Redactor) -> None:
    """Every text field of a row without the key and storable in every log (before it is stored
    or shown): the one place every row (live, batch) goes through."""
    if redact:
        _redact_fields(record, redact)
    _replace_nul(record)


def _replace_nul(record: Record) -> None:
    """One rule for every backend: a NUL the endpoint sent (PostgreSQL cannot store one in text,
    SQLite would) is U+FFFD, counted in a note; the row is stored and its siblings go on. (The
    user's text with a NUL was refused before it was sent.)"""
    count, names = 0, list[str]()
    for name in _TEXT_FIELDS:
        value = getattr(record, name)
        if value and "\x00" in value:
            fixed, n = without_nul(value)
            setattr(record, name, fixed)
            count, names = count + n, [*names, name]
    if count:
        add_note(record, NUL_NOTE.format(n=count, fields=", ".join(names)))


def _redact_fields(record: Record, redact: Redactor) -> None:
    # The endpoint's fields together: a key split between the reasoning and the answer is found.
    endpoint = [name for name in _TEXT_FIELDS if name in _ENDPOINT_FIELDS]
    for name, value in zip(endpoint, redact.row([getattr(record, name) for name in endpoint]), strict=True):
        setattr(record, name, value)
    for name in _TEXT_FIELDS:
        value = getattr(record, name)
        if value and name not in _ENDPOINT_FIELDS:
            setattr(record, name, redact.runs(value))


def _escape_record(record: Record, exc: Exception) -> None:
    """Make a row storable whatever broke it: text as escaped UTF-8, numbers checked."""
    for f in fields(Record):
        value = getattr(record, f.name)
        if isinstance(value, str):
            setattr(record, f.name, _escaped(value))
        elif isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**63:
            setattr(record, f.name, None if f.name in ("cache_of", "id") else 0)
        elif value is not None and not isinstance(value, (str, int, float, bool)):
            setattr(record, f.name, _escaped(str(value)))
    detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
    was = record.status
    record.status, record.error_type, record.cached = "error", "LogWriteError", False
    record.error_message = (f"this attempt (status {was!r}) could not be logged as it was ({detail}); "
                            f"its text is stored escaped. Earlier: {record.error_message or '-'}")
    record.error_message = _escaped(record.error_message)


def _escaped(text: str) -> str:
    """Text every log can hold: an unpaired surrogate as ``\\udXXX``, a NUL as ``\\x00``."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def _total_tokens(record: Record) -> float:
    return record.prompt_tokens + record.completion_tokens  # NaN when usage is unknown

