"""One request through the official SDK → one measured, costed :class:`Record`.

Timing uses ``time.perf_counter()`` from the moment the request's first byte is written to its
connection (the HTTP transport's ``trace`` extension, installed by :func:`request_hook`): the
SDK building the request and a new connection's TCP/TLS set-up are one-off costs, not the
model's. TTFT is the arrival of the first non-empty content, tool-call or reasoning delta (not
the first byte, not the role-only chunk), split into the first reasoning delta and the first
answer (content or tool-call) delta. Decode speed is ``(completion_tokens - 1) / (t_last - t_first)``
over every generated delta. Non-streamed calls have no TTFT (NaN).

What the endpoint reports beyond the text is read in the forms gateways send it: reasoning as
``reasoning_content`` (DeepSeek, vLLM before 0.10, LiteLLM), ``reasoning`` (vLLM, OpenRouter) or
OpenRouter's ``reasoning_details``; ``usage.completion_tokens_details.reasoning_tokens``; cached
prompt tokens as ``prompt_tokens_details.cached_tokens``, LiteLLM's ``cache_read_input_tokens``
or DeepSeek's ``prompt_cache_hit_tokens`` (one of them: they mirror each other), and cache writes
as ``cache_creation_tokens``/``cache_write_tokens``/``cache_creation_input_tokens``. A detail of
the wrong type is unknown (NaN) with a note on the row, never a crash or a guess; streamed
tool-call fragments are joined per ``index`` the way the SDK's own accumulator expects them
(``id``/``name`` once, argument strings concatenated), and a fragment that breaks those rules
makes the row a ``MalformedResponse`` with everything that came kept.
"""
from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import math
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx2
import openai

from ..base import _tokens
from ..base._json import JSONTooLarge, loads
from ..base._pricing import Price, PriceTable
from ..base._record import Record
from ..base._redact import Redactor
from ..base._text import BAD_BYTES_NOTE, REPAIRED_NOTE, Utf8Decoder, repair
from ..base._tokens import TokenCounter
from ..base._validate import one_line, read_finite, whole_number
from ._headers import retry_hint
from ._options import Timeouts

__all__ = ["CallSpec", "Timeouts", "Outcome", "call_model", "Redactor", "new_client", "unreachable", "add_note",
           "list_models",
           "price_cost", "fill_usage_details", "record_answer", "RETRYABLE_STATUSES", "status_error_type"]

COST_HEADER = "x-litellm-response-cost"
# More than any one call costs: a reported cost above it is a broken figure (two 1e308s sum to inf)
MAX_REPORTED_COST = 1e6
_CONTEXT_PATTERNS = re.compile(r"context[_ ]length|maximum context|context window|too many tokens", re.I)
# The most one JSON document from the endpoint may hold, in decoded bytes (after gzip/deflate/br):
# a non-streamed body, one SSE line, or one event's data (a gateway sends a whole answer as one).
# The largest real one is 128k tokens: ~0.5 MB of text, ~3 MB if every character is \u-escaped,
# ~10 MB with logprobs. With top_logprobs=20 it is ~200 MB, which parses to ~1.7 GB: that answer
# is read streamed (one token per event), never whole. Reading a document just under the bound
# holds its bytes twice and its text, and parsing it at most ~400 MB more (the JSON container
# bound of base._json; unbounded, 16 MB of [[],[],...] took ~550 MB), while reading a body or
# line whole let a 200 MB one take ~2 GB and an endless one the kernel (OOM).
MAX_DOCUMENT = 16 * 2**20
# The most one answer may hold, in characters: its text, reasoning, refusal and tool calls together
# (ids, names, arguments, and TOOL_CALL_SIZE for each call), streamed (the sum of its deltas, which
# no document bound limits) or not. Four times the largest real answer with its reasoning (128k
# tokens, ~0.5-1 MB), and what the row's later work costs at most: redacting and storing 4 MB took
# 1-33 s and ~1.2 GB (the redactor's number runs), counting it is estimated (base._tokens). Unbounded,
# a 16 MB stream cost 77 s and 4.9 GB, 50 MB a raw MemoryError with the paid answer lost, and an endless
# one under timeout=8 (~800 MB read) aborted the process in the local token count.
MAX_ANSWER = 4 * 2**20
TOOL_CALL_SIZE = 48  # a call's JSON around its id, name and arguments (100,000 calls of "{}" are 4.9 MB)
LOGPROB_SIZE = 8  # a sampled token's logprob (a float held, ~32 bytes; never stored): 128k of them take 1 MB
_LINE_END = re.compile(rb"\r\n|\r|\n")  # the SSE line ends (the SDK's decoder splits at the same)


@dataclass
class CallSpec:
    model: str
    messages: list[dict]
    body: dict  # max_tokens, temperature, and pass-through extra body keys
    stream: bool
    timeouts: Timeouts


@dataclass
class Outcome:
    """What the runner needs besides the record: may it retry, and when."""
    record: Record
    http_status: int | None = None
    retry_after_s: float | None = None
    retryable: bool = False
    context_exceeded: bool = False
    got_text: bool = False
    headers: Any = None  # the response's headers (rate-limit state), when one arrived


@dataclass
class _Stream:
    t0: float
    text: list[str] = field(default_factory=list)
    tool_calls: dict[int, dict] = field(default_factory=dict)
    # the endpoint's tool-call index → the call its fragments now go to (see _merge_tool_call)
    moved: dict[int, int] = field(default_factory=dict)
    reasoning: list[str] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)  # the sampled content tokens' log-probabilities
    refusal: list[str] = field(default_factory=list)  # the model's refusal text (delta/message.refusal)
    bad_bytes: int = 0  # invalid UTF-8 sequences the endpoint sent, each read as U+FFFD
    t_first: float | None = None
    t_last: float | None = None
    t_reasoning: float | None = None  # the first reasoning delta
    t_answer: float | None = None  # the first content or tool-call delta
    malformed: str | None = None  # the first tool-call fragment that breaks the rules: an error row
    notes: list[str] = field(default_factory=list)  # odd usage details, said on the row
    noted: set[str] = field(default_factory=set)  # stream oddities said once each (after the finish, a BOM)
    content_deltas: int = 0
    held: int = 0  # what the answer holds, counted against MAX_ANSWER (see _kept)
    full: bool = False  # a piece passed MAX_ANSWER: kept up to it, then the reading stops
    served_model: str | None = None
    finish_reason: str | None = None
    finished: Any = None  # choice 0's finish_reason as sent: any value (7 too) ends a stream's answer
    usage: dict | None = None  # the endpoint's usage object, as sent
    headers: Any = None
    on_first: Callable[[], None] | None = None
    on_headers: Callable[[], None] | None = None
    t_sent: float | None = None  # when the request's first byte left (the transport's trace)

    on_sent: Callable[[], None] | None = None
    sent_traced: bool = False

    async def trace(self, name: str, info: dict) -> None:
        if name.endswith("send_request_headers.started") and not self.sent_traced:
            self.sent_traced = True
            self.mark_sent()

    def mark_sent(self) -> None:
        self.t_sent = time.perf_counter()
        if self.on_sent is not None:
            self.on_sent()

    @property
    def t_start(self) -> float:
        """Where TTFT and latency count from: the request's first byte, or (no trace: a client
        without llmlab's hook, or a failure before sending) the start of the call."""
        return self.t_sent if self.t_sent is not None else self.t0


# How a stream's chunks are read: the SDK's own stream class, its items left as decoded JSON.
_PLAIN_CHUNKS = openai.AsyncStream[object]

# The call being sent by the current task, for the HTTP client's request hook (contexts are per
# task, so concurrent calls each see their own).
_SENDING: contextvars.ContextVar[_Stream | None] = contextvars.ContextVar("llmlab_sending", default=None)
# The call whose stream the current task is reading, for the SSE decoder's byte count.
_READING: contextvars.ContextVar[_Stream | None] = contextvars.ContextVar("llmlab_reading", default=None)


class _ValidUtf8Events:
    """The SDK's own SSE decoder, fed bytes made valid UTF-8 first: the SDK decodes each line
    strictly, so one invalid byte from the endpoint would lose the whole answer. Each invalid
    sequence becomes U+FFFD and is counted on the call being read (its row gets a note)."""

    def __init__(self) -> None:
        self._events = _SSEDecoder()

    def iter_bytes(self, iterator):  # the SSEBytesDecoder protocol; llmlab's client is async only
        return self._events.iter_bytes(iterator)

    def aiter_bytes(self, iterator):
        return _readable_events(self._events.aiter_bytes(_valid_utf8(iterator)))


class _SSEDecoder(openai._streaming.SSEDecoder):
    """The SDK's SSE decoder, reading a line that starts with a byte order mark without it. The
    spec's decoder skips one at the start of the stream (the SDK's does not), and a gateway that
    encodes each event as "utf-8-sig" puts one before later lines: the SDK would ignore such a
    line as an unknown field ``\ufeffdata`` (the answer lost, the row an empty ok). One inside
    the stream is said on the row."""

    def __init__(self) -> None:
        super().__init__()
        self._first_line = True
        self._held = 0  # characters of the event being read (its lines so far)

    def decode(self, line: str) -> openai._streaming.ServerSentEvent | None:
        if line.startswith("\ufeff"):
            line, state = line[1:], _READING.get()
            if not self._first_line and state is not None and "bom" not in state.noted:
                state.noted.add("bom")
                state.notes.append("the endpoint sent a byte order mark inside the stream (read without it)")
        self._first_line = False
        # an event's data lines are held until the blank line that ends it: bounded like one line
        if not line:
            self._held = 0
        elif line.startswith("data:") or line == "data":
            self._held += len(line)
            if self._held > MAX_DOCUMENT:
                raise _TooLong("an SSE event")
        return super().decode(line)


class _Event(openai._streaming.ServerSentEvent):
    """The SDK's event, its JSON read by :func:`~llmlab.base._json.loads`: the SDK's own
    ``json.loads`` would raise ``RecursionError`` (a crash, not bad JSON) on an event nested deeper
    than Python's stack."""

    def json(self) -> Any:
        return loads(self.data)


async def _readable_events(events):
    """The events the SDK should read. An event with no data (only ``id:``/``retry:`` lines, or
    ``data:`` empty) is not dispatched, as the SSE spec says, instead of failing as JSON. Once the
    answer has a finish_reason, an event that is not JSON (``data:  [DONE] `` with a space too
    many, trailing junk) is skipped with a note: the answer is whole, so it is kept and cached.
    Only events after the finish are parsed here twice (a usage chunk), so the answer's cost stays."""
    state, skipped = _READING.get(), 0
    async for sse in events:
        if not sse.data:
            continue
        if (state is not None and state.finished is not None and not sse.data.startswith("[DONE]")
                and not _is_json(sse.data)):
            skipped += 1
            if skipped == 1:  # one note, however many follow; not quoted: endpoint text is unredacted here
                state.notes.append("the endpoint sent an event that is not JSON after the answer finished "
                                   "(ignored: the answer is whole)")
            continue
        yield _Event(event=sse.event, data=sse.data, id=sse.id, retry=sse.retry)


def _is_json(data: str) -> bool:
    try:
        loads(data)
    except ValueError:
        return False
    return True


async def _valid_utf8(iterator):
    decoder, state, run = Utf8Decoder(), _READING.get(), 0
    async for data in iterator:
        run = _line_run(run, data)
        yield _counted(decoder, state, data, final=False)
    yield _counted(decoder, state, b"", final=True)


def _line_run(run: int, data: bytes) -> int:
    """The bytes since the stream's last line end, after ``data`` (``run`` before it). A line past
    :data:`MAX_DOCUMENT` is refused here, before the SDK's line buffer holds it whole."""
    if run + len(data) <= MAX_DOCUMENT:  # no line in it can pass the bound: only where the last starts
        end = max(data.rfind(b"\n"), data.rfind(b"\r"))
        return run + len(data) if end < 0 else len(data) - end - 1
    # a long line, or a large piece (a compressed body inflates a small read): every line in it
    lengths = [len(line) for line in _LINE_END.split(data)]
    lengths[0] += run
    if max(lengths) > MAX_DOCUMENT:
        raise _TooLong("an SSE line")
    return lengths[-1]


def _counted(decoder: Utf8Decoder, state: _Stream | None, data: bytes, final: bool) -> bytes:
    before = decoder.replaced
    text = decoder.decode(data, final)
    if state is not None:
        state.bad_bytes += decoder.replaced - before
    return text.encode("utf-8")


class _Client(openai.AsyncOpenAI):
    """The SDK's client with the tolerant SSE decoder (``_make_sse_decoder`` is the SDK's hook
    for another decoder) and error bodies read bounded (``_send_request``, its hook for sending)."""

    def _make_sse_decoder(self):
        return _ValidUtf8Events()

    async def _send_request(self, request: httpx2.Request, *, stream: bool, **kwargs: Any) -> httpx2.Response:
        # Always sent streaming, so the HTTP client never reads a body whole: an error body is read
        # here, bounded (the SDK's error path reads one it finds unread whole); others as asked.
        response = await super()._send_request(request, stream=True, **kwargs)
        # (each read closes the response if it fails or is cancelled, as the HTTP client's own does)
        if response.is_error:
            response._content = await _error_body(response)
        elif not stream:
            await response.aread()  # what the HTTP client does unasked (the batch API's answers)
        return response


async def _error_body(response: httpx2.Response) -> bytes:
    """An error status's body for the SDK's message, or none past :data:`MAX_DOCUMENT`: then the
    row keeps its status (retries, Retry-After) and says why its message is only the status."""
    try:
        return await _read_document(response, "an error body")
    except _TooLong as exc:
        state = _SENDING.get()
        if state is not None:
            state.notes.append(str(exc))
        return b""


async def _read_body(response: httpx2.Response) -> bytes:
    """A non-streamed body, bounded. The SDK reads it inside its send, which makes a connection
    lost or timed out on the way ``APIConnectionError``/``APITimeoutError``: the same here, so a
    row's error type does not depend on who read the body (the SDK's own tuples of errors)."""
    try:
        return await _read_document(response, "a body")
    except openai._httpx2.timeout_exceptions() as exc:
        raise openai.APITimeoutError(request=response.request) from exc
    except openai._httpx2.request_exceptions() as exc:
        raise openai.APIConnectionError(request=response.request) from exc


async def _read_document(response: httpx2.Response, what: str) -> bytes:
    """A body as the HTTP client decodes it (gzip, deflate, br inflated), read piece by piece (the
    decoders yield at most 1 MB each, so a small compressed body cannot inflate whole at once).
    Past :data:`MAX_DOCUMENT` decoded bytes, or with a Content-Length past it (refused unread),
    its connection is closed and :class:`_TooLong` raised."""
    length = whole_number(response.headers.get("content-length", ""))
    if length is not None and length > MAX_DOCUMENT:
        await response.aclose()
        raise _TooLong(what, "its connection")
    pieces, size = [], 0
    async with contextlib.aclosing(response.aiter_bytes()) as body:  # closes the connection early too
        async for piece in body:
            size += len(piece)
            if size > MAX_DOCUMENT:
                raise _TooLong(what, "its connection")
            pieces.append(piece)
    return b"".join(pieces)


async def list_models(client: openai.AsyncOpenAI) -> list[tuple[str, str | None]]:
    """The endpoint's ``/v1/models`` as (id, owned_by) pairs, read as a chat body is: bounded
    (:func:`_read_document`), invalid UTF-8 as U+FFFD, JSON by :func:`~llmlab.base._json.loads`
    (any depth, huge integers). Anything but ``{"data": [{"id": "<text>", …}, …]}`` raises
    :class:`_MalformedBody` saying what was wrong: a model without a text id cannot be asked for by
    name, and leaving it out would show a partial list as the whole (a picker missing a model).
    ``owned_by`` is a text or None. Neither is redacted here (the caller does, both at once)."""
    async with client.models.with_streaming_response.list() as raw:
        text, _ = _body_text(await _read_document(raw.http_response, "a model list"))
    what = "the endpoint's /v1/models answer is not a list of models"
    try:
        body = loads(text)
    except ValueError as exc:
        why = str(exc) if isinstance(exc, JSONTooLarge) else f"not JSON: {text[:80]!r}"
        raise _MalformedBody(f"{what}: {why}") from None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        where = (f"it is {_shown(body)}" if not isinstance(body, dict) else
                 f"its data is {_shown(data)}" if "data" in body else "it has no data")
        raise _MalformedBody(f"{what}: {where}")
    models = []
    for n, model in enumerate(data, 1):
        model_id = model.get("id") if isinstance(model, dict) else None
        if not isinstance(model_id, str) or not model_id.strip():
            raise _MalformedBody(f"{what}: model {n} of {len(data)} has no text id: {_shown(model)}")
        owner = model.get("owned_by")
        models.append((repair(model_id)[0], repair(owner)[0] if isinstance(owner, str) else None))
    return models


async def request_hook(request: Any) -> None:
    """The Lab's HTTP client calls this with each request just before sending it: the request
    gets a ``trace`` extension, so the transport tells the call when its first byte leaves."""
    state = _SENDING.get()
    if state is not None:
        state.t_sent = time.perf_counter()  # provisional: the trace refines it once a connection is ready
        request.extensions["trace"] = state.trace


def new_client(base_url: str, key: str) -> openai.AsyncOpenAI:
    """The SDK client a Lab uses: llmlab owns retries (Retry-After, fallback, recording each
    attempt), so the SDK's are off; its HTTP client reports when requests leave; warmed up."""
    http_client = openai.DefaultAsyncHttpxClient(event_hooks={"request": [request_hook]})
    client = _Client(base_url=base_url, api_key=key, max_retries=0, http_client=http_client)
    warm_up(client)
    return client


def warm_up(client: openai.AsyncOpenAI) -> None:
    """Pay the SDK's one-off costs when the client is built, before any clock starts: the chat
    resource modules it imports on first use."""
    _ = client.chat.completions.with_streaming_response


async def call_model(client: openai.AsyncOpenAI, spec: CallSpec, record: Record,
                     counter: TokenCounter, prices: PriceTable, redact: Redactor,
                     on_delta: Callable[[str], None] | None = None,
                     on_headers: Callable[[], None] | None = None) -> Outcome:
    """Send one request and fill ``record``; never raises for endpoint errors. ``on_headers`` is
    called when the response's headers arrive (the request has surely reached the endpoint)."""
    record.started_at = datetime.now(UTC).isoformat()
    state = _Stream(t0=time.perf_counter(), on_headers=on_headers)
    outcome = Outcome(record)
    try:
        await _with_deadlines(_send(client, spec, state, on_delta), spec, state)
        record.status = "ok"
    except asyncio.CancelledError:
        _fail(outcome, "Cancelled", "cancelled before the answer finished", state)
        _finish(outcome, spec, state, counter, prices, redact)
        raise
    except Exception as exc:  # every endpoint failure becomes an error row
        if _ended_after_finish(exc, spec, state, redact):
            record.status = "ok"
        else:
            _classify(outcome, exc, spec, state, redact)
    _finish(outcome, spec, state, counter, prices, redact)
    if outcome.headers is None:
        outcome.headers = state.headers
    return outcome


async def _with_deadlines(coro, spec: CallSpec, state: _Stream) -> None:
    """Run ``coro`` under the first-token deadline (streams), then the total one."""
    first = spec.timeouts.first_token if spec.stream else None
    total = spec.timeouts.total
    loop = asyncio.get_running_loop()
    origin = [loop.time() - (time.perf_counter() - state.t0)]  # moved to the send, like the clock
    limits = [x for x in (first, total) if x is not None]
    try:
        # Until the request leaves (the SDK building it, a connection being set up) only the
        # total limit runs: the first-token clock starts with the send, like TTFT.
        async with asyncio.timeout_at(origin[0] + total if total is not None else None) as scope:
            if limits:
                def sent() -> None:
                    origin[0] = loop.time()
                    scope.reschedule(origin[0] + min(limits))

                state.on_sent = sent
            if first is not None:
                state.on_first = lambda: scope.reschedule(None if total is None else origin[0] + total)
            await coro
    except TimeoutError as exc:
        waiting_first = first is not None and state.t_first is None and (total is None or first <= total)
        raise _DeadlineExceeded("first token" if waiting_first else "total",
                                first if waiting_first else total) from exc


class _DeadlineExceeded(Exception):
    def __init__(self, kind: str, limit: float | None) -> None:
        what = "first token" if kind == "first token" else "complete answer"
        super().__init__(f"no {what} within {limit:g} s")
        self.kind = kind


async def _send(client: openai.AsyncOpenAI, spec: CallSpec, state: _Stream, on_delta) -> None:
    kwargs = dict(model=spec.model, messages=spec.messages, extra_body=spec.body or None,
                  timeout=_http_timeout(spec.timeouts))
    if spec.stream:
        kwargs["stream"] = True
        kwargs["stream_options"] = {"include_usage": True}
    sending = _SENDING.set(state)
    try:
        # Streaming, so the body is read here, bounded (_read_document): the SDK's raw response
        # reads it whole first. Leaving the block closes the connection, however it is left.
        async with client.chat.completions.with_streaming_response.create(**kwargs) as raw:
            await _read_response(raw, spec, state, on_delta)
    finally:
        _SENDING.reset(sending)


async def _read_response(raw: Any, spec: CallSpec, state: _Stream, on_delta) -> None:
    if not state.sent_traced and state.on_sent is not None:
        state.on_sent()  # a transport without the trace: the first-token clock starts now at the latest
    state.headers = raw.headers
    if state.on_headers is not None:
        state.on_headers()
    if not spec.stream:
        text, replaced = _body_text(await _read_body(raw.http_response))
        state.bad_bytes += replaced
        _read_completion(text, state)
        return
    # The SDK decodes the SSE stream (and raises its error events); each chunk stays the JSON it
    # sent instead of becoming a pydantic model: building those took ~45 % of a streamed call's
    # client CPU, and llmlab reads a handful of fields (see _PLAIN_CHUNKS).
    reading = _READING.set(state)
    try:
        async for chunk in await raw.parse(to=_PLAIN_CHUNKS):
            _read_chunk(chunk, state, on_delta)
    finally:
        _READING.reset(reading)
    if state.malformed is not None:
        raise _MalformedToolCall(state.malformed)
    if state.finished is None:
        # A proxy that closes the stream cleanly mid-answer: not an answer to log as ok or cache.
        raise _IncompleteStream("the stream ended without a finish_reason (cut short upstream)")


def _http_timeout(timeouts: Timeouts):
    """Only the connect limit is left to the HTTP client.

    The first-token and total deadlines are enforced by :func:`_with_deadlines` (so they are
    reported as ``FirstTokenTimeout``/``Timeout``). An HTTP read timeout equal to ``first_token``
    would also cut every stream with a pause between tokens longer than ``first_token`` and would
    apply ``first_token`` to non-streamed calls; one equal to ``total`` races the total deadline.
    """
    return httpx2.Timeout(None, connect=timeouts.connect)


def _body_text(data: bytes) -> tuple[str, int]:
    """A whole JSON body's text and how many bytes were not UTF-8: read from its bytes as JSON is
    (UTF-8), whatever content type it claims, invalid bytes as U+FFFD (the answer kept, counted),
    and a byte order mark before it (what some .NET/IIS gateways send) read past, as a stream's
    first line is (_SSEDecoder). One reader for a completion and a model list."""
    decoder = Utf8Decoder()
    text = decoder.decode(data, final=True)
    return text.removeprefix("\ufeff"), decoder.replaced


def _read_completion(response: str, state: _Stream) -> None:
    try:
        response = loads(response)
    except JSONTooLarge:
        raise
    except ValueError:
        raise _MalformedBody(f"the endpoint answered with a non-JSON body: {str(response)[:80]!r}") from None
    _read_completion_body(response, state)


def _read_completion_body(response: Any, state: _Stream) -> None:
    if not isinstance(response, dict) or "choices" not in response:
        raise _MalformedBody(f"the endpoint answered with a body that is not a completion: {str(response)[:80]!r}")
    state.served_model = response.get("model")
    state.usage = _mapping(response.get("usage")) or None
    choices = response["choices"]
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _MalformedBody(f"the endpoint answered with choices that are not a non-empty list of objects: "
                             f"{choices!r:.80}")
    choice = _answer_choice(choices, "answered with")
    if choice is None:  # none numbered 0: a body's first (a chunk's are other choices, streamed one by one)
        choice = choices[0]
    _set_finish(state, choice.get("finish_reason"))
    message = choice.get("message")
    if not isinstance(message, dict):
        raise _MalformedBody(f"the endpoint answered with a message that is not an object: {message!r:.80}")
    _check_role(message, "answered with")
    state.text.append(_kept(state, _content(message.get("content"), "answered with")))
    _read_logprobs(choice, state)
    _add_refusal(state, message)
    reasoning = _reasoning(message)
    if reasoning:
        state.reasoning.append(_kept(state, reasoning))
    _read_message_tool_calls(message.get("tool_calls"), state)
    if state.full:
        raise _AnswerTooLarge("answered with")
    if state.malformed is not None:
        raise _MalformedToolCall(state.malformed)


def _add_refusal(state: _Stream, part: dict) -> None:
    refusal = _text(part.get("refusal"))
    if refusal:
        state.refusal.append(_kept(state, refusal))


def _kept(state: _Stream, piece: str) -> str:
    """``piece`` as far as the answer may still hold it (see :func:`_room`)."""
    return piece[:_room(state, len(piece))] if piece else piece


def _room(state: _Stream, size: int) -> int:
    """How much of a piece of ``size`` characters the answer may still hold: all of it, or what is
    left under :data:`MAX_ANSWER` — then the answer is full, and its reading stops once the chunk
    (or body) that passed the bound is read: each piece of it is kept up to the bound, none past."""
    room = max(MAX_ANSWER - state.held, 0)
    if size > room:
        state.full = True
    kept = min(size, room)
    state.held += kept
    return kept


def _read_message_tool_calls(calls: Any, state: _Stream) -> None:
    """A whole answer's ``message.tool_calls``; arguments sent as an object (as Ollama does) are
    kept as their JSON."""
    if calls is None:
        return
    if not isinstance(calls, list):
        state.malformed = f"the endpoint answered with tool_calls that are not a list: {_shown(calls)}"
        return
    for i, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("arguments"), (dict, list)):
            call = {**call, "function": {**fn, "arguments": json.dumps(fn["arguments"], ensure_ascii=False)}}
        problem = _merge_tool_call(state, call, i)
        if problem is not None:
            state.malformed = f"the endpoint answered with a tool call that {problem}: {_shown(call)}"
            return


def _read_chunk(chunk: Any, state: _Stream, on_delta) -> None:
    now = time.perf_counter()
    if not isinstance(chunk, dict):
        raise _MalformedBody(f"the endpoint streamed a chunk that is not a JSON object: {str(chunk)[:80]!r}")
    state.served_model = state.served_model or chunk.get("model")
    usage = chunk.get("usage")
    if usage is not None:
        state.usage = _mapping(usage)
    for choice in _chunk_choices(chunk):  # choice 0 only: another is an endpoint ignoring n=1
        if state.finished is not None:
            _after_finish(choice, state)
            continue
        _set_finish(state, choice.get("finish_reason"))
        _read_logprobs(choice, state)
        delta = choice.get("delta") or {}
        _check_role(delta, "streamed")
        content = _content(delta.get("content"), "streamed")
        calls = delta.get("tool_calls")
        reasoning = _reasoning(delta)
        _add_refusal(state, delta)
        _mark_times(state, now, bool(content) or bool(calls) or bool(delta.get("refusal")), bool(reasoning))
        if reasoning:
            state.reasoning.append(_kept(state, reasoning))
        if calls is not None:
            _read_fragments(calls, state)
        if content:
            content = _kept(state, content)
            state.text.append(content)
            state.content_deltas += 1
            if on_delta is not None:
                on_delta(content)  # held back and repaired by the runner's live view
    if state.full:  # raised out of the SDK's stream, which closes the response: no more is read
        raise _AnswerTooLarge("streamed")


def _mark_times(state: _Stream, now: float, answered: bool, reasoning: bool) -> None:
    """The delta's times: the first and last generated delta, the first reasoning and answer delta."""
    if answered or reasoning:
        state.t_last = now
        if state.t_first is None:
            state.t_first = now
            if state.on_first is not None:
                state.on_first()
    if reasoning and state.t_reasoning is None:
        state.t_reasoning = now
    if answered and state.t_answer is None:
        state.t_answer = now


def _check_role(part: dict, how: str) -> None:
    """A delta or message written by someone other than the assistant (``role: "user"``) is not
    the model's answer: a malformed one."""
    role = part.get("role")
    if role not in (None, "", "assistant"):
        raise _MalformedBody(f"the endpoint {how} a message from role {_shown(role)}, not the assistant's")


def _after_finish(choice: dict, state: _Stream) -> None:
    """Choice 0 once its finish_reason came: more text (or a second, different finish) is not
    part of the answer, which ended there; said once each on the row, never quoted."""
    delta = choice.get("delta") or {}
    finish = choice.get("finish_reason")
    if "text" not in state.noted and (delta.get("content") or delta.get("tool_calls") or delta.get("refusal")
                                     or _reasoning(delta)):
        state.noted.add("text")
        state.notes.append(f"the endpoint streamed more of the answer after it finished (finish_reason "
                           f"{_finish_shown(state.finished)}): ignored, not part of the answer")
    if finish and finish != state.finished and "finish" not in state.noted:
        state.noted.add("finish")
        state.notes.append(f"the endpoint finished the answer twice ({_finish_shown(state.finished)}, then "
                           f"{_finish_shown(finish)}): the first is kept")


def _set_finish(state: _Stream, value: Any) -> None:
    """Choice 0's finish_reason, by one rule streamed or not: nothing, "" (or another empty value)
    is none yet; a text is the reason; anything else (7, true, {"a": 1}) still ends the answer —
    the endpoint sent its finish — but is no reason: stored as unknown (None), said on the row."""
    if not value:
        return
    state.finished = value
    if isinstance(value, str):
        state.finish_reason = value
    else:
        state.notes.append(f"the endpoint sent finish_reason {_finish_shown(value)}, not a text: the answer "
                           "ended, its finish_reason is unknown")


def _finish_shown(value: Any) -> str:
    """A finish_reason in a note: a text quoted (the reasons are short words), else a number or its kind."""
    return _shown(value) if isinstance(value, str) else _number_shown(value)


def _answer_choice(choices: list, how: str) -> dict | None:
    """The answer among a body's (or a chunk's) choices, by one rule streamed or not: the one with
    index 0 (:func:`_choice_index`), None if none is. Two with index 0 are two answers to one
    request: keeping either would be a guess, so the row is a MalformedResponse."""
    zeros = [c for c in choices if isinstance(c, dict) and _choice_index(c, how) == 0]
    if len(zeros) > 1:
        raise _MalformedBody(f"the endpoint {how} {len(zeros)} choices with index 0: which is the answer is unknown")
    return zeros[0] if zeros else None


def _choice_index(choice: dict, how: str) -> int:
    """A choice's ``index``, one reader for both paths: absent or null is 0 (a lone choice needs
    no number), a whole number ≥ 0 is itself (``0.0`` too: JSON does not tell it from ``0``).
    Anything else (``"0"``, ``[0]``, ``-1``, ``0.5``, and ``true``/``false``, which are not numbers
    in JSON) is MalformedResponse: read as another choice it made a stream's answer vanish into
    a paid retry (IncompleteStream), read as 0 it might be another choice's words."""
    index = choice.get("index")
    if index is None:
        return 0
    number = _index_number(index)
    if number is None:
        raise _MalformedBody(f"the endpoint {how} a choice whose index is not a whole number ≥ 0: "
                             f"{_shown(index)}")
    return number


def _index_number(value: Any) -> int | None:
    """An index a body sent (a choice's, a tool call's), or None unless it is a whole number ≥ 0.
    ``0.0`` is 0: JSON does not tell it from ``0``. ``true``/``false`` are not numbers in JSON,
    though Python's bool is an int; neither are ``"0"`` or ``[0]``."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _chunk_choices(chunk: dict) -> list[dict]:
    """A chunk's choices, each an object with an object (or absent) delta; anything else is a
    malformed answer, not an empty one. Only a usage chunk may carry ``choices: null``."""
    choices = chunk.get("choices", [])
    if choices is None and chunk.get("usage") is not None:
        return []
    if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
        raise _MalformedBody(f"the endpoint streamed choices that are not a list of objects: {choices!r:.80}")
    for choice in choices:
        delta = choice.get("delta")
        if delta is not None and not isinstance(delta, dict):
            raise _MalformedBody(f"the endpoint streamed a delta that is not an object: {delta!r:.80}")
    answer = _answer_choice(choices, "streamed")  # two answers in one chunk are refused as in a body
    return [] if answer is None else [answer]


def _read_logprobs(choice: dict, state: _Stream) -> None:
    """The sampled tokens' log-probabilities of a choice (a chunk's carry only its own tokens).
    OpenAI writes -9999.0 for a probability it did not compute: unknown, not a very unlikely token."""
    entries = _mapping(choice.get("logprobs")).get("content")
    for entry in entries if isinstance(entries, list) else ():
        value = _mapping(entry).get("logprob")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and -9999 < value <= 0:
            if _room(state, LOGPROB_SIZE) < LOGPROB_SIZE:
                return
            state.logprobs.append(float(value))


def _reasoning(part: dict) -> str:
    """The reasoning text of a delta or message, in whichever field the endpoint uses (one of
    them: vLLM in transition and LiteLLM send the same text under two names)."""
    value = part.get("reasoning_content") or part.get("reasoning")
    if value is None:
        details = part.get("reasoning_details")
        if not isinstance(details, list):
            return ""
        return "".join(d.get("text") or d.get("summary") or "" for d in details
                       if isinstance(d, dict) and isinstance(d.get("text") or d.get("summary") or "", str))
    return _text(value)


def _read_fragments(calls: Any, state: _Stream) -> None:
    if state.malformed is not None:
        return
    if not isinstance(calls, list):
        state.malformed = f"the endpoint streamed tool_calls that are not a list: {_shown(calls)}"
        return
    for call in calls:
        problem = _merge_tool_call(state, call, None)
        if problem is not None:
            state.malformed = f"the endpoint streamed a tool-call fragment that {problem}: {_shown(call)}"
            return


def _merge_tool_call(state: _Stream, call: Any, position: int | None) -> str | None:
    """Fold one tool-call fragment into ``state.tool_calls`` (index → id, name, arguments so
    far); what is wrong with it, if anything. ``position``: a whole answer's list position."""
    problem = _fragment_problem(call)
    if problem is not None:
        return problem
    fn = call.get("function") or {}
    name, arguments, call_id = fn.get("name"), fn.get("arguments"), call.get("id")
    calls = state.tool_calls
    index = call.get("index", position)
    if index is None:  # no index (some servers): a new id starts a call, anything else continues the last
        known = {entry["id"] for entry in calls.values()}
        index = max(calls, default=-1) + (1 if not calls or (call_id and call_id not in known) else 0)
    index = _index_number(index)
    if index is None:
        return "has an index that is not a whole number ≥ 0"
    target = state.moved.get(index, index)
    entry = calls.get(target)
    if entry is not None and name and _other(entry["id"], call_id):
        # a new id and name at a used index (servers that number every parallel call 0): the
        # next call, which this index's later fragments continue
        target = state.moved[index] = max(calls) + 1
        entry = None
    if entry is None:
        size = TOOL_CALL_SIZE + len(call_id or "") + len(name or "")
        if _room(state, size) == size:  # a call without room for its id and name is not kept
            calls[target] = {"id": call_id, "name": name, "arguments": _kept(state, arguments or "")}
        return None
    # The SDK's accumulator concatenates every string it is sent: a name or id sent again with
    # another value is not a continuation of this call.
    if _other(entry["name"], name):
        return f"renames call {target} from {entry['name']!r}"
    if _other(entry["id"], call_id):
        return f"changes the id of call {target} from {entry['id']!r}"
    _continue_call(state, entry, call_id, name, arguments or "")
    return None


def _continue_call(state: _Stream, entry: dict, call_id: str | None, name: str | None, arguments: str) -> None:
    """A call's next fragment, held under the answer's bound: an id or name joined after a split
    character grows too (by whatever the fragment sent after it)."""
    new_id, new_name = _continued(entry["id"], call_id), _continued(entry["name"], name)
    grown = len(new_id or "") + len(new_name or "") - len(entry["id"] or "") - len(entry["name"] or "")
    if _room(state, grown) == grown:
        entry["id"], entry["name"] = new_id, new_name
    entry["arguments"] += _kept(state, arguments)


def _other(sent: str | None, value: str | None) -> bool:
    """Whether a fragment's id or name is another one than the call's so far (not the same sent
    again, nor the rest of a character split between fragments)."""
    return bool(sent and value and value != sent and not _split_pair(sent, value))


def _continued(sent: str | None, value: str | None) -> str | None:
    """A call's id or name after its next fragment: joined when the fragment finishes a character
    whose UTF-16 surrogate pair was split between chunks (as content's are), else the first sent."""
    return sent + value if sent and value and _split_pair(sent, value) else sent or value


def _split_pair(before: str, after: str) -> bool:
    return "\ud800" <= before[-1] <= "\udbff" and "\udc00" <= after[0] <= "\udfff"


def _fragment_problem(call: Any) -> str | None:
    if not isinstance(call, dict):
        return "is not an object"
    fn = call.get("function")
    fn = {} if fn is None else fn
    if not isinstance(fn, dict):
        return "has a function that is not an object"
    for what, value in (("name", fn.get("name")), ("arguments", fn.get("arguments")), ("id", call.get("id"))):
        if value is not None and not isinstance(value, str):
            return f"has {what} that {'are' if what == 'arguments' else 'is'} not a string"
    return None


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    except RecursionError:  # legal JSON deeper than the encoder's recursion (see base._json)
        text = "(a value nested too deep to show)"
    return text if len(text) <= 160 else text[:160] + "…"


def _mapping(value: Any) -> dict:
    """A JSON object from the endpoint, or an empty one where it sent something else."""
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    """A text field from the endpoint: absent is empty, a non-string is shown as JSON."""
    if value is None or isinstance(value, str):
        return value or ""
    try:
        return json.dumps(value)
    except RecursionError:  # legal JSON deeper than the encoder's recursion (see base._json)
        return "(a value nested too deep to show)"


def _content(value: Any, how: str) -> str:
    """An answer's content, by one rule whether streamed or not: a string, absent, or a list of
    text parts (OpenAI's content-part form, joined). 5, true, {"a": 1}, bare strings or an image
    part are not text: shown as JSON it would pass for the model's words (issue 21 #10)."""
    if value is None or isinstance(value, str):
        return value or ""
    if isinstance(value, list) and all(isinstance(p, dict) and p.get("type") == "text"
                                       and isinstance(p.get("text"), str) for p in value):
        return "".join(p["text"] for p in value)
    raise _MalformedBody(f"the endpoint {how} content that is not text: {_shown(value)}")


class _MalformedBody(Exception):
    pass


class _MalformedToolCall(Exception):
    """A tool call llmlab cannot join as sent; the message says which fragment and why."""


class _IncompleteStream(Exception):
    pass


class _AnswerTooLarge(_MalformedBody):
    """An answer past :data:`MAX_ANSWER`; what came up to it is kept (a MalformedResponse row, not
    retried: a retry would pay again for the same huge answer)."""

    def __init__(self, how: str) -> None:
        super().__init__(f"the endpoint {how} an answer longer than {MAX_ANSWER / 2**20:g} MB (its text, "
                         "reasoning, refusal, tool calls and logprobs together): stopped reading there "
                         "(the stream was closed); what came up to the bound is kept in this row")


class _TooLong(_MalformedBody):
    """A body, SSE line or event past :data:`MAX_DOCUMENT`: raised while reading it, which ends
    the read and closes its connection (the SDK's stream closes its response on the way out)."""

    def __init__(self, what: str, closed: str = "the stream") -> None:
        super().__init__(f"the endpoint sent {what} longer than {MAX_DOCUMENT / 2**20:g} MB "
                         f"({closed} was closed there)")


def _ended_after_finish(exc: Exception, spec: CallSpec, state: _Stream, redact: Redactor) -> bool:
    """Whether ``exc`` broke a stream only after its answer finished (choice 0's finish_reason
    came; llmlab reads no other choice): the endpoint said the generation is over, so the answer is
    whole, and a dropped connection, a LiteLLM error event or the total deadline passing while
    waiting for ``[DONE]`` (or the usage chunk) cannot change it. Such an ending is a note on the
    ok row (then cached, never retried: a retry pays for the same answer again). A cut *before*
    the finish stays a StreamCut (see :func:`_classify`)."""
    if not spec.stream or state.finished is None or state.malformed is not None:
        return False
    if _is_stream_error(exc):
        how = f"with an error event ({getattr(exc, 'message', exc)})"
    elif isinstance(exc, _DeadlineExceeded):
        how = f"without ending ({exc})"
    elif isinstance(exc, _TooLong):
        how = str(exc).removeprefix("the endpoint ")
    elif isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError)) or _is_transport_error(exc):
        how = f"with the connection closed ({type(exc).__name__})"
    else:
        return False
    missing = "the stream's end ([DONE])" if state.usage is not None else "its usage and [DONE]"
    state.notes.append(redact.message(_one_line(
        f"the stream stopped after the answer finished (finish_reason {_finish_shown(state.finished)}), "
        f"{how}, before {missing}: the answer is whole, kept as ok", limit=400)) or "")
    return True


def _classify(outcome: Outcome, exc: Exception, spec: CallSpec, state: _Stream, redact: Redactor) -> None:
    got_text = bool(state.text and "".join(state.text))
    outcome.got_text = got_text
    if isinstance(exc, openai.APIStatusError):
        outcome.http_status = exc.status_code
        outcome.headers = exc.response.headers
        outcome.retry_after_s = retry_hint(exc.response.headers, exc.status_code)
        outcome.retryable = exc.status_code in RETRYABLE_STATUSES
        message = _api_message(exc)
        outcome.context_exceeded = exc.status_code == 400 and bool(_CONTEXT_PATTERNS.search(message))
        kind = "ContextWindowExceeded" if outcome.context_exceeded else type(exc).__name__
        if exc.status_code == 404:
            message = f"model {spec.model!r} not found at the endpoint (HTTP 404): {message}"
        elif exc.status_code in (400, 422) and not outcome.context_exceeded:
            message += _override_hint(spec, exc.body, message)
        _fail(outcome, kind, redact.message(message), state)
    elif spec.stream and _is_stream_error(exc):
        _classify_stream_error(outcome, exc, state, redact)
    elif isinstance(exc, _IncompleteStream):
        outcome.retryable = True
        _fail(outcome, "StreamCut" if got_text else "IncompleteStream", str(exc), state)
    elif isinstance(exc, _DeadlineExceeded):
        outcome.retryable = True
        _fail(outcome, "FirstTokenTimeout" if exc.kind == "first token" else "Timeout", str(exc), state)
    elif isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError)):
        outcome.retryable = got_text or not unresolvable(exc)   # a name that does not resolve is not a 503
        kind = "StreamCut" if got_text else type(exc).__name__
        message = str(exc) or type(exc).__name__
        if not got_text:  # the SDK's bare "Connection error." names neither the endpoint nor a fix
            message = unreachable(outcome.record.endpoint, exc) or message
        _fail(outcome, kind, redact.message(_one_line(message)), state)
    elif isinstance(exc, _MalformedToolCall):
        message = _one_line(f"{exc}; the text and tool calls that came are kept in this row")
        _fail(outcome, "MalformedResponse", redact.message(message), state)
    elif isinstance(exc, JSONTooLarge):
        _fail(outcome, "MalformedResponse", f"the endpoint sent {exc}", state)
    elif isinstance(exc, (_MalformedBody, json.JSONDecodeError, openai.APIResponseValidationError)):
        message = _one_line(str(exc) if isinstance(exc, _MalformedBody)
                            else f"the endpoint sent a body that is not valid JSON: {exc}")
        _fail(outcome, "MalformedResponse", redact.message(message), state)
    else:  # httpx/httpcore errors raised mid-stream are not wrapped by the SDK
        outcome.retryable = _is_transport_error(exc)
        kind = "StreamCut" if (got_text or state.t_first) and outcome.retryable else type(exc).__name__
        _fail(outcome, kind, redact.message(_one_line(f"{type(exc).__name__}: {exc}")), state)


RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
# The SDK's exception name for each status: what a live call's error row would say.
_STATUS_ERRORS = {400: "BadRequestError", 401: "AuthenticationError", 403: "PermissionDeniedError",
                  404: "NotFoundError", 409: "ConflictError", 422: "UnprocessableEntityError", 429: "RateLimitError"}


def status_error_type(status: int) -> str:
    return _STATUS_ERRORS.get(status, "InternalServerError" if status >= 500 else "APIStatusError")


def _is_stream_error(exc: Exception) -> bool:
    """An SSE error event (the SDK raises a status-less APIError): how LiteLLM's proxy reports an
    upstream stream that broke, or failed, after its 200 was sent."""
    return isinstance(exc, openai.APIError) and not isinstance(
        exc, (openai.APIStatusError, openai.APIConnectionError, openai.APIResponseValidationError))


def _classify_stream_error(outcome: Outcome, exc: Exception, state: _Stream, redact: Redactor) -> None:
    """A cut (retryable, partial text kept) unless the event names a client error (400, 401, …)
    that a retry cannot fix."""
    body = getattr(exc, "body", None)
    code = str(body.get("code") or "") if isinstance(body, dict) else ""
    status = int(code) if code.isdigit() and 100 <= int(code) <= 599 else None
    message = _one_line(f"the stream ended with an error event: {getattr(exc, 'message', exc)}")
    outcome.http_status = status
    if status is not None and 400 <= status < 500 and status not in RETRYABLE_STATUSES:
        outcome.context_exceeded = bool(_CONTEXT_PATTERNS.search(message))
        kind = "ContextWindowExceeded" if outcome.context_exceeded else "APIError"
        _fail(outcome, kind, redact.message(message) or "", state)
        return
    outcome.retryable = True
    _fail(outcome, "StreamCut" if outcome.got_text else "IncompleteStream", redact.message(message) or "", state)
_UNSUPPORTED = re.compile(r"unsupported|not supported|does not support|isn't supported|not allowed|"
                          r"unrecognized|unknown (?:field|parameter)|extra inputs are not permitted", re.I)


def _override_hint(spec: CallSpec, body: Any, message: str) -> str:
    """For a 400 that names a parameter this model rejects: how to change what it gets."""
    inner = body.get("error", body) if isinstance(body, dict) else None
    code = str(inner.get("code") or "") if isinstance(inner, dict) else ""
    if not (code.startswith("unsupported") or _UNSUPPORTED.search(message)):
        return ""
    param = inner.get("param") if isinstance(inner, dict) else None
    if param not in spec.body:
        named = [k for k in spec.body if re.search(rf"(?<![\w.-]){re.escape(k)}(?![\w-])", message)]
        param = max(named, key=len) if named else None  # max_completion_tokens, not a part of it
    if param is None:
        return ""
    override: dict[str, Any] = {param: None}
    if param == "max_tokens":
        override = {"max_completion_tokens": spec.body[param]}  # replaces max_tokens (never both)
    line_value = " ".join(f"{spec.model}:{k}={'null' if v is None else v}" for k, v in override.items())
    return (f" — {spec.model!r} does not take {param!r} as sent; change what this model gets with "
            f"Lab(model_params={{{spec.model!r}: {override!r}}}) (or model_params= on the call, or "
            f"{line_value} on the %%llm line)")


def unreachable(endpoint: str | None, exc: Exception) -> str | None:
    """For a failed connection (refused, unknown host, the connect timeout — the only timeout left
    to the HTTP client): what happened, naming the endpoint (its public URL, as stored) and what to
    check. One wording for rows, ``list_models`` and so every front end; None for other errors."""
    if not isinstance(exc, (openai.APIConnectionError, openai.APITimeoutError)):
        return None
    cause = exc.__cause__ if isinstance(exc.__cause__, Exception) and str(exc.__cause__) else exc
    where = "(set by Lab(base_url=...), LLMLAB_BASE_URL or OPENAI_BASE_URL, %config LLMLab.base_url)"
    if unresolvable(exc):
        return (f"cannot connect to {endpoint or 'the endpoint'}: its host name does not resolve "
                f"({one_line(cause)}); check the host in that URL {where} and this machine's DNS")
    return (f"cannot connect to {endpoint or 'the endpoint'} ({one_line(cause)}); check that the server is "
            f"running and listening at that URL {where} and that no proxy or firewall is in the way")


# getaddrinfo's "no such name" answers (not EAI_AGAIN, a temporary DNS failure worth a retry)
_NO_SUCH_NAME = {getattr(socket, n) for n in ("EAI_NONAME", "EAI_NODATA", "EAI_ADDRFAMILY") if hasattr(socket, n)}


def unresolvable(exc: BaseException) -> bool:
    """Whether a failed connection failed because the host name does not exist (a socket.gaierror
    with a no-such-name code anywhere in its causes): retrying cannot make it resolve."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, socket.gaierror) and current.errno in _NO_SUCH_NAME:
            return True
        current = current.__cause__ or current.__context__
    return False


def _is_transport_error(exc: Exception) -> bool:
    module = type(exc).__module__ or ""
    return module.startswith(("httpx", "httpcore", "h11", "anyio")) or isinstance(exc, (ConnectionError, TimeoutError))


def _api_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return _one_line(str(inner["message"]))
        if isinstance(inner, str):
            return _one_line(inner)
    return _one_line(exc.message or f"HTTP {exc.status_code}")


def _one_line(text: str, limit: int = 500) -> str:
    return one_line(text, limit)  # the one rule (llmlab.base._validate), with the length stored rows allow


def _fail(outcome: Outcome, kind: str, message: str | None, state: _Stream) -> None:
    outcome.record.status = "error"
    outcome.record.error_type = kind
    outcome.record.error_message = message


def _finish(outcome: Outcome, spec: CallSpec, state: _Stream, counter: TokenCounter,
            prices: PriceTable, redact: Redactor) -> None:
    record = outcome.record
    t0 = state.t_start
    record.latency_s = time.perf_counter() - t0
    _fill_answer(record, state, redact)
    if spec.stream:
        record.ttft_s = _since(state.t_first, t0)
        record.ttft_reasoning_s = _since(state.t_reasoning, t0)
        record.ttft_answer_s = _since(state.t_answer, t0)
    _fill_tokens(record, spec, state, counter)
    _fill_cost(record, spec, state, prices)
    _fill_after(record, state)
    # completion_tokens counts reasoning and tool-call tokens too, so the window spans every
    # generated delta, not only content.
    if state.t_first is not None and state.t_last is not None:
        span = state.t_last - state.t_first
        if span > 0 and record.completion_tokens > 1:
            record.output_tokens_per_s = (record.completion_tokens - 1) / span


def _fill_answer(record: Record, state: _Stream, redact: Redactor) -> None:
    """The answer's text fields, valid Unicode, the served model's name redacted."""
    record.served_model = state.served_model
    record.finish_reason = state.finish_reason
    record.response_text = "".join(state.text)
    record.refusal = "".join(state.refusal) or None
    record.reasoning_text = "".join(state.reasoning)
    if state.tool_calls:
        record.tool_calls = json.dumps([state.tool_calls[i] for i in sorted(state.tool_calls)], ensure_ascii=False)
        # what the model said, for views and scorers that read the answer: its calls
        record.response_text = record.response_text or record.tool_calls
    _repair_endpoint_text(record, state.bad_bytes)
    record.served_model = redact(record.served_model)  # before a price warning can quote it


def _fill_after(record: Record, state: _Stream) -> None:
    if state.logprobs:  # otherwise unknown (NaN): not asked for, or the endpoint sent none
        record.logprob_mean = math.fsum(state.logprobs) / len(state.logprobs)
        record.logprob_min = min(state.logprobs)
    for note in state.notes:
        add_note(record, note)


def record_answer(record: Record, body: Any, messages: str, counter: TokenCounter, prices: PriceTable,
                  redact: Redactor) -> None:
    """A whole chat completion that came another way (a Batch API output line) → the row, read
    by the same rules as a live answer and priced at the sheet's batch prices (the live ones,
    with a note, for a model the sheet has no batch price for). ``messages``: the request's, as
    JSON (read only to count the prompt when the answer has no usage). Never raises for the body."""
    state = _Stream(t0=0.0)
    try:
        _read_completion_body(body, state)
        record.status = "ok"
    except (_MalformedBody, _MalformedToolCall) as exc:
        record.status, record.error_type = "error", "MalformedResponse"
        record.error_message = redact.message(_one_line(str(exc)))
    _fill_answer(record, state, redact)
    counted = _count((state.usage or {}).get("completion_tokens")) is not None
    spec = CallSpec(model=record.requested_model, messages=[] if counted else loads(messages), body={},
                    stream=False, timeouts=Timeouts())
    _fill_tokens(record, spec, state, counter)
    price = prices.lookup(record.requested_model)
    model = record.requested_model
    if price is None and record.served_model:
        model, price = record.served_model, prices.lookup(record.served_model)
    reported = _reported_cost(state)
    free = price is not None and price.input_cost_per_token == price.output_cost_per_token == 0  # a local model
    if reported is None and price is not None and not price.has_batch_price() and not free:
        state.notes.append(f"no Batch API price known for {model!r}: priced at its live price (an upper bound)")
    price_cost(record, prices, model, price, reported, batch=True)
    _fill_after(record, state)


def _since(t: float | None, t0: float) -> float:
    return math.nan if t is None else t - t0


def add_note(record: Record, note: str) -> None:
    """Say something about a row in its ``error_message`` (on an ok row: ``note: …``)."""
    if not record.error_message:
        record.error_message = f"note: {note}"
    elif record.error_message.startswith("note: "):
        record.error_message = f"{record.error_message}; {note}"
    else:
        record.error_message = f"{record.error_message} (note: {note})"


def _repair_endpoint_text(record: Record, bad_bytes: int) -> None:
    """Endpoint text enters the row as valid Unicode (surrogate pairs split across chunks joined,
    lone ones → U+FFFD), and the row says when something was replaced."""
    replaced, fields = 0, list[str]()
    for name in ("response_text", "reasoning_text", "tool_calls", "refusal", "served_model", "finish_reason",
                 "error_message"):
        value = getattr(record, name)
        if value is not None and not isinstance(value, str):
            value = str(value)  # e.g. a model name sent as a number
            setattr(record, name, value)
        if value:
            fixed, n = repair(value)
            setattr(record, name, fixed)
            if n:
                replaced, fields = replaced + n, [*fields, name]
    notes = [REPAIRED_NOTE.format(n=replaced, fields=", ".join(fields))] if replaced else []
    if bad_bytes:
        notes.append(BAD_BYTES_NOTE.format(n=bad_bytes))
    for note in notes:
        record.error_message = f"{record.error_message} ({note})" if record.error_message else note


def _count(value: Any) -> float | None:
    """A token count from the endpoint, or None when it is not one: a whole number ≥ 0 (the index
    rule, :func:`_index_number`: ``3.0`` is 3, ``2.5`` tokens is no count) below 10**15."""
    count = _index_number(value)
    return float(count) if count is not None and count < 10**15 else None


def _prompt_count(value: Any, notes: list[str]) -> float:
    """usage.prompt_tokens: 0 when not sent, unknown (NaN, said) when not a count (2**70, 10**5000)."""
    if value is None:
        return 0.0
    count = _count(value)
    if count is None:
        notes.append(f"usage.prompt_tokens was {_number_shown(value)}, not a token count: it is unknown")
        return math.nan
    return count


def _fill_tokens(record: Record, spec: CallSpec, state: _Stream, counter: TokenCounter) -> None:
    usage = state.usage or {}
    completion = _count(usage.get("completion_tokens"))
    if completion is not None:
        record.prompt_tokens = _prompt_count(usage.get("prompt_tokens"), state.notes)
        record.completion_tokens = completion
        record.tokens_estimated = False
        fill_usage_details(record, usage, state.notes, counter)
        return
    if usage.get("completion_tokens") is not None:  # sent, but not a count (2**70, 10**5000, "5")
        state.notes.append(f"usage.completion_tokens was {_number_shown(usage['completion_tokens'])}, not a token "
                           "count: the tokens are counted locally")
    if record.status != "ok" and not record.response_text and not record.reasoning_text:
        return  # nothing was generated; an unknown prompt cost is not guessed for failures
    record.prompt_tokens = float(counter.count_messages(spec.messages))
    reasoning = _local_count(counter, record.reasoning_text, "reasoning", state.notes)
    record.completion_tokens = float(_local_count(counter, record.response_text, "answer", state.notes) + reasoning)
    record.reasoning_tokens = float(reasoning) if record.reasoning_text else math.nan
    record.cached_tokens = record.cache_creation_tokens = 0.0
    record.tokens_estimated = True


def _local_count(counter: TokenCounter, text: str | None, what: str, notes: list[str]) -> int:
    """``text``'s tokens counted here; one too long for tiktoken is estimated, and the row says so."""
    if counter.by_chars(text):
        notes.append(f"the {what} is longer than {_tokens.MAX_COUNTED_CHARS:,} characters: its tokens are estimated as "
                     "⌈chars/4⌉, not counted")
    return counter.count(text)


def fill_usage_details(record: Record, usage: dict, notes: list[str], counter: TokenCounter) -> None:
    """Reasoning, cached and cache-write tokens from a usage object whose prompt and completion
    counts are already in ``record``; odd values are unknown (NaN) and said in ``notes``."""
    details = _details(usage, "prompt_tokens_details", notes)
    odd = details is None  # then a count it would have held is unknown, not 0
    details = details or {}
    cached = _first_count(notes, odd, ("prompt_tokens_details.cached_tokens", details.get("cached_tokens")),
                          ("cache_read_input_tokens", usage.get("cache_read_input_tokens")),
                          ("prompt_cache_hit_tokens", usage.get("prompt_cache_hit_tokens")))
    written = _first_count(notes, odd, ("prompt_tokens_details.cache_creation_tokens",
                                        details.get("cache_creation_tokens")),
                           ("prompt_tokens_details.cache_write_tokens", details.get("cache_write_tokens")),
                           ("cache_creation_input_tokens", usage.get("cache_creation_input_tokens")))
    if cached > record.prompt_tokens:
        notes.append(f"the endpoint reported {cached:.0f} cached of {record.prompt_tokens:.0f} prompt tokens: "
                     "cached_tokens unknown")
        cached = math.nan
    elif written > record.prompt_tokens - (0 if math.isnan(cached) else cached):
        notes.append(f"the endpoint reported {written:.0f} cache-write tokens, more than the uncached prompt "
                     "tokens: cache_creation_tokens unknown")
        written = math.nan
    record.cached_tokens, record.cache_creation_tokens = cached, written
    record.reasoning_tokens = _reasoning_tokens(record, usage, notes, counter)


def _reasoning_tokens(record: Record, usage: dict, notes: list[str], counter: TokenCounter) -> float:
    details = _details(usage, "completion_tokens_details", notes)
    if details is None:
        return math.nan
    value = details.get("reasoning_tokens")
    if value is None:  # not reported: counted locally when the reasoning text came, else unknown
        if not record.reasoning_text:
            return math.nan
        return float(_local_count(counter, record.reasoning_text, "reasoning", notes))
    reasoning = _count(value)
    if reasoning is None:
        notes.append(f"usage.completion_tokens_details.reasoning_tokens was {_shown(value)}, not a token count: "
                     "reasoning_tokens unknown")
        return math.nan
    total = _count(usage.get("total_tokens"))
    apart = reasoning > record.completion_tokens or (
        reasoning > 0 and total is not None and total == record.prompt_tokens + record.completion_tokens + reasoning)
    if apart:  # the endpoint counts them beside completion_tokens; they are output all the same
        notes.append(f"the endpoint counted {reasoning:.0f} reasoning tokens apart from completion_tokens: "
                     "completion_tokens includes them")
        record.completion_tokens += reasoning
    return reasoning


def _details(usage: dict, name: str, notes: list[str]) -> dict | None:
    """A usage details object ({} when absent); None, with a note, when it is not an object."""
    value = usage.get(name)
    if value is None or isinstance(value, dict):
        return value or {}
    notes.append(f"usage.{name} was {_shown(value)}, not an object: its counts are unknown")
    return None


def _first_count(notes: list[str], odd: bool, *candidates: tuple[str, Any]) -> float:
    """The first of the usage fields the endpoint sent (they mirror each other: never summed);
    0 when it sent none (NaN if ``odd``: its details object was unreadable), NaN when the one it
    sent is not a count."""
    for name, value in candidates:
        if value is None:
            continue
        count = _count(value)
        if count is None:
            notes.append(f"usage.{name} was {_shown(value)}, not a token count: it is unknown")
            return math.nan
        return count
    return math.nan if odd else 0.0


def _fill_cost(record: Record, spec: CallSpec, state: _Stream, prices: PriceTable) -> None:
    price = prices.lookup(spec.model)
    model = spec.model
    if price is None and record.served_model:  # an alias: priced as the model the endpoint served
        model, price = record.served_model, prices.lookup(record.served_model)
    price_cost(record, prices, model, price, _reported_cost(state), batch=False)


def price_cost(record: Record, prices: PriceTable, model: str, price: Price | None, reported: float | None,
               batch: bool) -> None:
    """The row's cost (the endpoint's reported cost, else its tokens at ``price``, the Batch API's
    for ``batch``) and what the provider's prompt cache took off it."""
    if reported is not None:
        record.cost_usd, record.cost_source = reported, "reported"
    if math.isnan(record.completion_tokens):
        return
    cached, written = record.cached_tokens, record.cache_creation_tokens
    if not (cached or written):  # 0 (or NaN: unknown, billed as input) — nothing to credit the cache with
        record.prompt_cache_saved_usd = 0.0
    elif price is not None:
        record.prompt_cache_saved_usd = float(price.prompt_cache_saving(cached, written, batch))
    if reported is not None:
        return
    if price is None:
        prices.cost(model, record.prompt_tokens, record.completion_tokens)  # NaN, and the once-per-model warning
        return
    record.cost_usd = float(price.cost(record.prompt_tokens, record.completion_tokens, cached, written, batch))
    record.cost_source = "price_table"


def _reported_cost(state: _Stream) -> float | None:
    """The endpoint's own cost of the call (OpenRouter's and LiteLLM's ``usage.cost``, LiteLLM's
    header), read by the one finite-number rule; one that is not a number of USD from 0 to
    :data:`MAX_REPORTED_COST` (a bool, NaN, negative, -0.0, 1e308) is said in a note and the
    row is priced from the price sheet instead."""
    value, where = (state.usage.get("cost") if state.usage else None), "usage.cost"
    if value is None:
        headers = getattr(state, "headers", None)
        value, where = (headers.get(COST_HEADER) if headers is not None else None), COST_HEADER
    if value is None:
        return None
    cost = read_finite(value, lo=0.0, hi=MAX_REPORTED_COST, text=True)
    if cost is not None and not _minus_sign(value):
        return cost
    state.notes.append(f"the endpoint reported a cost ({where}) of {_number_shown(value)}, not a number of USD from "
                       f"0 to {MAX_REPORTED_COST:g}: priced from the price sheet instead")
    return None


def _minus_sign(value: Any) -> bool:
    """-0.0 (or '-0'): a cost computed with the wrong sign, not a free call."""
    if isinstance(value, str):
        return value.strip().startswith("-")
    return isinstance(value, float) and math.copysign(1.0, value) < 0


_NUMBERISH = re.compile(r"[-+0-9.eE]{1,40}|[-+]?(nan|inf|infinity)", re.IGNORECASE)


def _number_shown(value: Any) -> str:
    """The reported value when it looks like a number (text that does not is never echoed: it may be anything)."""
    if isinstance(value, str):
        return repr(value) if _NUMBERISH.fullmatch(value.strip()) else "a text that is not a number"
    if isinstance(value, float) and math.isinf(value):  # also an integer too long to read (base._json)
        return "a number too large"
    if isinstance(value, (bool, float)) or isinstance(value, int) and abs(value) < 10**20:
        return _shown(value)
    return "a number too large" if isinstance(value, int) else f"a {type(value).__name__}"
