"""A scriptable OpenAI-compatible HTTP server for llmlab's tests and benchmarks.

Standard library only. It speaks enough of the OpenAI chat API for the real ``openai`` SDK:
``POST /v1/chat/completions`` (plain JSON or SSE streaming, with chunked transfer encoding and
HTTP/1.1 keep-alive) and ``GET /v1/models``. Every model is a :class:`ModelSpec` that scripts
what the "model" does::

    with FakeServer({"fast": ModelSpec(text="hello world", delay_s=0.05)}) as srv:
        client = OpenAI(base_url=srv.base_url, api_key="test")
        ...
        srv.requests          # one RequestLog per HTTP request, in arrival order

Knobs (see ModelSpec): answer ``text`` (or, per prompt, ``answers_by_prompt``: the last user message →
its answer, as a model that knows some answers) split into ``chunk_words``-word chunks, ``delay_s`` before
the first generated chunk (the role-only chunk is sent at once, so TTFB ~ 0 and TTFT ~ delay_s),
``token_delay_s`` between chunks, usage (``usage``, ``prompt_tokens``, ``completion_tokens``),
reported cost (``reported_cost`` in the usage object, ``cost_header`` as
``x-litellm-response-cost``), ``served_model``, ``reasoning`` (streamed first, under
``reasoning_field``: DeepSeek's/LiteLLM's ``reasoning_content``, vLLM's ``reasoning``, OpenRouter's
``reasoning`` + ``reasoning_details``, or both names; ``max_tokens`` counts it), ``tool_call`` /
``tool_calls`` (parallel calls streamed as the SDK's accumulator needs them: ``id``, ``type`` and
``name`` once, then argument pieces per ``index``), usage details as OpenAI sends them
(``prompt_tokens_details``, ``completion_tokens_details``; ``usage_details=False`` leaves them
out), ``cached_tokens``/``cache_creation_tokens`` in each gateway's ``cache_style``, and faults:
``status`` (always fail), ``fail_first``/``fail_status``/``retry_after``, ``error_rate``,
``hang_s`` (no bytes at all), ``truncate_after`` (connection dropped mid-body), ``malformed``
(body that is not JSON), ``context_limit`` (400 context_length_exceeded), ``error_event_after``
(a stream cut the way LiteLLM's proxy reports one: an SSE ``data: {"error": {...}}`` event after
that many content chunks), ``answers`` (a different answer per request, cycled: sampled repeats),
``replies`` (the answer chosen by patterns found in the prompt: a judge that reads what it grades),
``logprobs`` (token log-probabilities, sent when asked; ``logprobs_need_top`` as llama-cpp-python),
``unsupported_params`` (400 naming a body parameter the model rejects, worded like OpenAI or like
LiteLLM's ``UnsupportedParamsError``), ``fail_headers`` (extra headers on injected failures:
``llm_provider-retry-after``, ``retry-after-ms``, ``x-ratelimit-reset-*``).

Gateway-style rate limits: ``FakeServer(rate_limit=RateLimit(rpm=..., tpm=..., window_s=60))`` is a
per-key sliding window (the key is the Authorization header): every chat answer carries
``x-ratelimit-limit-*``, ``x-ratelimit-remaining-*`` and ``x-ratelimit-reset-*`` (requests,
and tokens when ``tpm`` is set; reset = when the oldest counted request leaves the window, as a
duration like ``1.25s``), and a request over the limit gets a 429 with those headers (plus
``retry-after`` when ``retry_after=True``). Tokens are counted as prompt words + max tokens.

Batch API: ``/v1/files`` and ``/v1/batches`` as OpenAI serves them (tests/fakebatch.py:
the state machine, output and error files, expiry, cancelling, faults); each line is answered by
the model scripts above. ``FakeServer(batches=BatchBehaviour(...))`` scripts it, ``batches=False``
is an endpoint without it (404), ``srv.batch_requests`` lists every line run (what a provider bills).

Hostile endpoints: ``error_message`` sets what injected failures say, ``usage_patch`` odd usage
values, ``chunks`` the exact content deltas, ``raw_events`` any JSON as the stream's events (or
the plain body), ``byte_events`` exact bytes as each event's data (invalid UTF-8, a character
cut between sends), ``sse_bytes`` the stream's exact bytes (any SSE lines), ``deep_json`` a chunk
(or body) with a field nested that many levels deep. ``text`` and
``served_model`` may hold lone surrogates: they go out as JSON
``"\ud800"`` escapes. ``RequestLog.auth_sha256`` tells which key arrived without logging it.

Gates (a hold, not a delay): ``hold_after=n`` answers the model's first ``n`` requests as
scripted and holds every later one until the test lets it go, so "still in flight when X happens"
is a fact, not a race with the clock::

    srv = FakeServer({"m": ModelSpec(hold_after=4)}).start()
    ...                               # start 8 calls
    srv.wait_held("m", 4, timeout=60) # the synchronisation point: 4 requests are held right now
    ...                               # cancel, interrupt, reload: the held calls cannot finish first
    srv.release("m")                  # or release("m", n): the n oldest held (or next) go on

A held stream has sent its headers, the role chunk and ``hold_at`` generated chunks (reasoning,
content or tool-call deltas; 0: TTFB at once, no token yet, like ``delay_s``); a held plain answer
has sent nothing. Only answers are held (injected failures are not). A held request ends when it
is released (then answers as scripted), when its client disconnects, or at once on ``stop()``
(connection dropped); ``reset()``/``set_model()`` start a fresh gate and let go of those held by
the old one. ``srv.held(model)`` is how many are held now.

``FakeServer(embedded=True)`` also answers ``GET /llmlab/health`` as llmlab's embedded endpoint
does (``{"llmlab": true, "pid": …, "models": […]}``).

Every injected failure (``status``, ``fail_first``, ``error_rate``) carries ``Retry-After`` when
``retry_after`` is set. Unknown models answer 404, a wrong key 401 (echoing a key fragment, as
OpenAI does), a body that is not a JSON object 400.

Timing: sockets use TCP_NODELAY and every SSE event is sent the moment it is due (events due at
the same instant share one ``send``), so the client sees events within ~1 ms of the scripted
time (plus GIL scheduling when client and server share a process;
benchmarks use :func:`start_subprocess` to avoid that). Run standalone with
``python tests/fakeserver.py --port 0 --config '{"m": {"text": "hi"}}'``: it prints
``READY <base_url>`` and serves until SIGTERM/SIGINT. A separate process has no shared
``requests`` list, so it also answers ``GET /_fakeserver/requests`` (the log as JSON),
``POST /_fakeserver/reset``, and the gates' ``GET /_fakeserver/held`` ({model: held now}),
``POST /_fakeserver/release`` ({"model", "n"}) and ``POST /_fakeserver/wait_held`` ({"model", "n",
"timeout"}: 200 once that many are held, 408 if not in time); none of these is logged.
:class:`Remote` calls them like the in-process methods.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import itertools
import json
import os
import random
import re
import select
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from fakebatch import BatchAPI, BatchBehaviour

__all__ = ["FakeServer", "ModelSpec", "RateLimit", "Remote", "BatchBehaviour", "RequestLog", "auth_fingerprint",
           "collect", "split_chunks", "start_subprocess", "stop_subprocess", "wait_for"]


@dataclass
class ModelSpec:
    """What one fake model does. All fields are optional."""

    text: str = "The quick brown fox jumps over the lazy dog."
    chunk_words: int = 1
    delay_s: float = 0.0
    token_delay_s: float = 0.0
    usage: bool = True
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reported_cost: float | None = None
    cost_header: float | None = None
    served_model: str | None = None
    reasoning: str | None = None
    # which delta/message field carries ``reasoning``: "reasoning_content" (DeepSeek, LiteLLM, older
    # vLLM), "reasoning" (vLLM ≥ 0.10), "openrouter" (``reasoning`` plus indexed ``reasoning_details``)
    # or "both" (vLLM in transition: the same text under both names)
    reasoning_field: str = "reasoning_content"
    reasoning_apart: bool = False  # completion_tokens leaves the reasoning tokens out (total has them)
    tool_call: dict | None = None
    tool_calls: list | None = None  # several {"name", "arguments"}: parallel calls, index 0, 1, …
    cached_tokens: int | None = None  # prompt tokens read from the prompt cache
    cache_creation_tokens: int | None = None  # prompt tokens written to it
    # how usage reports them: "openai" (prompt_tokens_details.cached_tokens), "litellm" (its
    # Anthropic mapping: details + top-level cache_read/cache_creation_input_tokens), "deepseek"
    # (prompt_cache_hit/miss_tokens too), "openrouter" (details with cache_write_tokens)
    cache_style: str = "openai"
    usage_details: bool = True  # prompt/completion_tokens_details, as OpenAI always sends them
    status: int | None = None
    fail_first: int = 0
    fail_status: int = 503
    retry_after: str | None = None
    error_rate: float = 0.0
    error_statuses: tuple = (429, 503)
    seed: int = 0
    hang_s: float = 0.0
    truncate_after: int | None = None
    malformed: bool = False
    context_limit: int | None = None
    no_finish: bool = False  # a stream that ends cleanly ([DONE]) without a finish_reason chunk
    error_event_after: int | None = None
    error_event: dict | None = None  # the event's "error" object; default: LiteLLM's connection error
    # streamed: how the stream ends once the finish chunk was sent, instead of usage + [DONE]:
    # "cut" (connection dropped), "cut_after_usage", "error_event" (LiteLLM's, after the usage chunk),
    # "error_event_before_usage", "hang" (nothing more, the connection left open: a total deadline)
    after_finish: str | None = None
    unsupported_params: tuple = ()
    unsupported_style: str = "openai"  # or "litellm"
    fail_headers: dict = field(default_factory=dict)
    error_message: str | None = None  # the message of injected failures (status/fail_first/error_rate)
    usage_patch: dict | None = None  # merged into the usage object as is (odd types, huge numbers)
    chunks: list | None = None  # the content deltas exactly (instead of ``text`` split into words)
    raw_events: list | None = None  # streamed: these JSON values as the events after the role chunk;
    # plain: the first one as the whole body
    answers: list | None = None  # one answer text per request, in turn (cycled): a model whose samples differ
    # [[pattern, text], ...]: the text of the first pattern found (re.search, DOTALL) in the messages'
    # text, else ``text`` — a model that reads its prompt (a judge that prefers one answer).
    replies: list | None = None
    # The sampled token's log-probability of each content chunk, cycled, sent only when the request
    # asks (logprobs=true) as OpenAI's choices[].logprobs.content; None: the endpoint sends none.
    logprobs: list | None = None
    logprobs_need_top: bool = False  # llama-cpp-python's server: logprobs only when top_logprobs is given too
    byte_events: list | None = None  # like raw_events, but each event's data as these exact bytes
    # (invalid UTF-8); a list of pieces is one event in several sends; a str is its latin-1 bytes
    # streamed: these exact bytes as the stream after the role chunk, one send each (any SSE: id:,
    # retry:, event: and comment lines, events without data, CRLF), then the usual [DONE]
    sse_bytes: list | None = None
    sse_prefix: bytes | None = None  # streamed: these exact bytes first, before the role chunk (a BOM)
    answers_by_prompt: dict | None = None  # the last user message's text -> its answer (any other: ``text``)
    hold_after: int | None = None  # answers after the first hold_after are held until released (a gate)
    hold_at: int = 0  # a held stream first sends this many generated chunks (raw/byte/malformed: none)
    # a chunk (streamed: an extra one just before the finish chunk; plain: the body) that carries an
    # extra field "x_nested" nested this many arrays deep (json.dumps cannot write it: built as text)
    deep_json: int | None = None

    def __post_init__(self) -> None:
        # JSON configs (subprocess mode) deliver lists.
        self.error_statuses = tuple(self.error_statuses)
        self.unsupported_params = tuple(self.unsupported_params)
        if self.retry_after is not None:
            self.retry_after = str(self.retry_after)


@dataclass
class RateLimit:
    """A per-key sliding-window limit, like a gateway's: at most ``rpm`` requests and ``tpm``
    tokens (prompt words + max tokens) within any ``window_s`` seconds."""

    rpm: int | None = None
    tpm: int | None = None
    window_s: float = 60.0
    retry_after: bool = False  # also send retry-after (whole seconds, rounded up) on a 429


class _Window:
    """Admitted (arrival time, tokens) of one key within the window."""

    def __init__(self) -> None:
        self.entries: collections.deque = collections.deque()
        self.tokens = 0

    def expire(self, now: float, window_s: float) -> None:
        while self.entries and self.entries[0][0] <= now - window_s:
            self.tokens -= self.entries.popleft()[1]

    def reset_s(self, now: float, window_s: float) -> float:
        return max(0.0, self.entries[0][0] + window_s - now) if self.entries else 0.0


def _request_tokens(body: dict) -> int:
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    limit = limit if isinstance(limit, int) and not isinstance(limit, bool) else 0
    return sum(len(t.split()) for t in _message_texts(body.get("messages"))) + max(limit, 0)


@dataclass
class RequestLog:
    """One HTTP request as the server saw it. ``status`` is None if no response was started."""

    t_wall: float
    t_mono: float
    method: str
    path: str
    model: str | None = None
    body: dict | None = None
    headers: dict = field(default_factory=dict)
    status: int | None = None
    stream: bool = False
    auth_sha256: str | None = None  # sha256 of the Authorization header: which key came, never the key


# Headers that carry secrets never reach the log (names compared lower-case).
_SECRET_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "proxy-authorization"})
_ADMIN_PREFIX = "/_fakeserver/"
_CONNECTION_ERRORS = (OSError,)  # ConnectionResetError, BrokenPipeError, socket timeouts


class _Abort(Exception):
    """Drop the connection without finishing the response."""


def auth_fingerprint(header: str | None) -> str | None:
    """sha256 of an Authorization header value (tests compare it with the hash of an expected one)."""
    return None if header is None else hashlib.sha256(header.encode("utf-8", "surrogateescape")).hexdigest()


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it is truthy and return its value, within a generous bound (a
    synchronisation point, not a timing claim): AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"{what} not met within {timeout} s"
        time.sleep(0.01)
    return value


def split_chunks(text: str, chunk_words: int = 1) -> list[str]:
    """Split into groups of ``chunk_words`` words; ``"".join(result) == text``.

    Whitespace leads each word (like real tokenizers' " word" tokens); trailing whitespace joins
    the last chunk.
    """
    words = re.findall(r"\s*\S+", text)
    if not words:
        return [text] if text else []
    tail = text[sum(map(len, words)):]
    words[-1] += tail
    n = max(1, int(chunk_words))
    return ["".join(words[i:i + n]) for i in range(0, len(words), n)]


def _scripted_reply(spec: ModelSpec, body: dict) -> str:
    prompt = "\n".join(_message_texts(body.get("messages")))
    for pattern, text in spec.replies or []:
        if re.search(pattern, prompt, re.DOTALL):
            return str(text)
    return spec.text


def _message_texts(messages: Any) -> list[str]:
    """All text in a messages list: string contents and ``{"type": "text"}`` parts."""
    texts: list[str] = []
    for msg in messages if isinstance(messages, list) else []:
        content = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return texts


# status -> (error type, error code, default message), shaped like OpenAI's answers.
_ERROR_KINDS = {
    400: ("invalid_request_error", None, "Bad request."),
    401: ("invalid_request_error", "invalid_api_key", "Unauthorized."),
    403: ("permission_error", None, "You are not allowed to use this model."),
    404: ("invalid_request_error", "not_found", "Not found."),
    408: ("timeout", None, "Request timed out."),
    409: ("invalid_request_error", None, "Conflict."),
    422: ("invalid_request_error", None, "Unprocessable entity."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request."),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", "overloaded", "The engine is currently overloaded, please try again later."),
    504: ("server_error", None, "Gateway timeout."),
}


def error_body(status: int, message: str | None = None, code: str | None = None,
               param: str | None = None) -> dict:
    type_, default_code, default_message = _ERROR_KINDS.get(status, ("api_error", None, "Error."))
    return {"error": {"message": message or default_message, "type": type_,
                      "param": param, "code": code or default_code}}


@dataclass
class _Answer:
    """The scripted output of one chat request, before it is framed as JSON or SSE."""

    reasoning: list[str]
    content: list[str]
    tools: list[tuple[str, list[str]]] | None  # (name, argument fragments) per call
    finish_reason: str
    usage: dict
    logprobs: list[dict] | None = None  # one OpenAI logprob entry per content chunk, when asked for

    @property
    def n_chunks(self) -> int:
        return len(self.reasoning) + len(self.content) + sum(len(args) for _, args in self.tools or [])


def _plan_answer(spec: ModelSpec, body: dict) -> _Answer:
    reasoning = split_chunks(spec.reasoning, spec.chunk_words) if spec.reasoning else []
    tools = None
    content: list[str] = []
    finish = "stop"
    calls = spec.tool_calls if spec.tool_calls is not None else [spec.tool_call] if spec.tool_call else None
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    limit = limit if isinstance(limit, int) and not isinstance(limit, bool) else None
    if calls is not None:
        tools = [(str(c.get("name", "tool")), split_chunks(str(c.get("arguments", "")), spec.chunk_words))
                 for c in calls]
        finish = "tool_calls"
    else:
        text = spec.text
        if spec.answers_by_prompt:
            user = [m for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"]
            asked = _message_texts(user[-1:])
            text = spec.answers_by_prompt.get(asked[0] if asked else "", spec.text)
        content = list(spec.chunks) if spec.chunks is not None else split_chunks(text, spec.chunk_words)
    if limit is not None and len(reasoning) + len(content) > limit:  # the limit counts reasoning too
        reasoning, content = reasoning[:max(limit, 0)], content[:max(limit - len(reasoning), 0)]
        finish = "length"
    answer = _Answer(reasoning, content, tools, finish, {}, _logprob_entries(spec, body, content))
    answer.usage = _usage(spec, body, answer)
    return answer


def _usage(spec: ModelSpec, body: dict, answer: _Answer) -> dict:
    prompt = spec.prompt_tokens
    if prompt is None:
        prompt = sum(len(t.split()) for t in _message_texts(body.get("messages")))
    completion = spec.completion_tokens
    if completion is None:
        completion = answer.n_chunks
    reasoning = len(answer.reasoning)
    reported = completion - reasoning if spec.reasoning_apart else completion
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": reported,
                             "total_tokens": prompt + completion}
    if spec.usage_details:
        usage["prompt_tokens_details"] = {"cached_tokens": spec.cached_tokens or 0, "audio_tokens": 0}
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
    elif reasoning:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    _cache_fields(spec, usage, prompt)
    if spec.reported_cost is not None:
        usage["cost"] = spec.reported_cost
    usage.update(spec.usage_patch or {})
    return usage


def _logprob_entries(spec: ModelSpec, body: dict, content: list[str]) -> list[dict] | None:
    """OpenAI's ``logprobs.content`` entries, one per content chunk (each chunk is one token here)."""
    top = body.get("top_logprobs")
    if not spec.logprobs or body.get("logprobs") is not True or (spec.logprobs_need_top and top is None):
        return None
    entries = []
    for i, token in enumerate(content):
        value = float(spec.logprobs[i % len(spec.logprobs)])
        alternatives = [{"token": token, "logprob": value, "bytes": list(token.encode())}]
        alternatives += [{"token": f"alt{j}", "logprob": value - j, "bytes": None} for j in range(1, int(top or 0))]
        entries.append({"token": token, "logprob": value, "bytes": list(token.encode()),
                        "top_logprobs": alternatives[:int(top or 0)]})
    return entries


def _cache_fields(spec: ModelSpec, usage: dict, prompt: int) -> None:
    """Cached and cache-write tokens the way each gateway reports them (mirrored, never to be summed)."""
    read, written = spec.cached_tokens or 0, spec.cache_creation_tokens or 0
    if not (read or written):
        return
    details = usage.setdefault("prompt_tokens_details", {})
    details["cached_tokens"] = read
    if spec.cache_style == "litellm":
        details.update(cache_creation_tokens=written, cache_write_tokens=written, text_tokens=prompt - read - written)
        usage.update(cache_read_input_tokens=read, cache_creation_input_tokens=written)
    elif spec.cache_style == "deepseek":
        usage.update(prompt_cache_hit_tokens=read, prompt_cache_miss_tokens=prompt - read)
    elif spec.cache_style == "openrouter":
        details["cache_write_tokens"] = written
    elif written:
        details["cache_write_tokens"] = written


class _Waiter:
    """One held request (compared by identity)."""

    released = False


class _Gate:
    """One model's hold_after gate; every field is guarded by FakeServer._changed.

    ``waiting`` has one entry per held request, oldest first: release(model, n) lets the first n go;
    what is left over of n (fewer were held) lets that many later arrivals pass (``credits``).
    A request whose client went away leaves the queue without using a release.
    """

    def __init__(self, hold_after: int | None) -> None:
        self.free = hold_after
        self.open = hold_after is None
        self.arrived = 0
        self.credits = 0
        self.waiting: list[_Waiter] = []

    @property
    def held(self) -> int:
        return len(self.waiting)

    def holds(self) -> bool:
        """Whether the answer arriving now is one to hold (it passes the first ``free``)."""
        self.arrived += 1
        return not self.open and self.free is not None and self.arrived > self.free

    def release(self, n: int | None) -> None:
        if n is None:
            self.open = True
            return
        for _ in range(int(n)):
            if self.waiting:
                self.waiting.pop(0).released = True
            else:
                self.credits += 1


def _client_gone(conn: socket.socket) -> bool:
    """The client closed the connection (readable with nothing to read). A held request cannot
    notice otherwise: it sends nothing that would fail. poll, not select: a long test session's
    descriptors can pass select's limit of 1024."""
    try:
        poller = select.poll()
        poller.register(conn, select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0)) and conn.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):  # reset, or closed by stop()
        return True


class _ModelState:
    """Per-model counters behind fail_first, error_rate and the gate; replaced by reset()/set_model()."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.seen = 0
        self.answered = 0
        self.rng = random.Random(spec.seed)
        self.gate = _Gate(spec.hold_after)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer

    # --- connection bookkeeping -------------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        except _CONNECTION_ERRORS:
            pass
        finally:
            self.server.fake._track(self.connection, add=False)

    def parse_request(self) -> bool:
        # Stamp arrival as soon as the request line is in, before headers/body are read.
        self._t_wall, self._t_mono = time.time(), time.monotonic()
        self._log: RequestLog | None = None
        return super().parse_request()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output clean
        pass

    def _take_headers(self) -> bytes:
        # end_headers() without the send, so the headers can share a packet with the first event.
        self._headers_buffer.append(b"\r\n")
        data = b"".join(self._headers_buffer)
        self._headers_buffer = []
        return data

    def send_response(self, code: int, message: str | None = None) -> None:
        log = getattr(self, "_log", None)  # unset when the request line itself was rejected
        if log is not None:
            log.status = code
        super().send_response(code, message)

    # --- dispatch ---------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        fake = self.server.fake
        raw = self._raw = self._read_body()
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        self._query = dict(parse_qsl(self.path.split("?", 1)[1])) if "?" in self.path else {}
        try:
            body = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            body = None
        if path.startswith(_ADMIN_PREFIX):
            return self._admin(path, body if isinstance(body, dict) else {})
        self._log = RequestLog(
            t_wall=self._t_wall, t_mono=self._t_mono, method=self.command, path=path,
            model=body.get("model") if isinstance(body, dict) and isinstance(body.get("model"), str) else None,
            body=body if isinstance(body, dict) else None,
            headers={k.lower(): v for k, v in self.headers.items() if k.lower() not in _SECRET_HEADERS},
            auth_sha256=auth_fingerprint(self.headers.get("Authorization")),
            stream=bool(body.get("stream")) if isinstance(body, dict) else False,
        )
        fake._record(self._log)
        try:
            self._route(path, body)
        except _Abort:
            self.close_connection = True
        except _CONNECTION_ERRORS:
            self.close_connection = True  # client went away mid-response

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0  # the body then reads as empty, which answers 400
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        """A request body in chunked transfer encoding (an upload of unknown length)."""
        parts = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _route(self, path: str, body: Any) -> None:
        fake = self.server.fake
        if not fake._authorized(self.headers.get("Authorization")):
            return self._send_auth_error()
        if self.command == "GET" and path == "/v1/models":
            return self._send_json(200, fake._models_list())
        if self.command == "GET" and path == "/llmlab/health" and fake.embedded:
            return self._send_json(200, {"llmlab": True, "pid": os.getpid(), "models": sorted(fake._states)})
        if self.command == "GET" and path.startswith("/v1/models/"):
            name = path[len("/v1/models/"):]
            if fake._spec(name) is None:
                return self._send_model_not_found(name)
            return self._send_json(200, fake._model_entry(name))
        if path.startswith(("/v1/files", "/v1/batches")) and fake.batch_api is not None:
            status, payload, kind = fake.batch_api.route(self.command, path, self._query, self._raw,
                                                         self.headers.get("Content-Type") or "")
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            return self._send_body(status, data, content_type=kind)
        # any prefix, as gateways have (/openai/deployments/NAME/…, a token in the path)
        if path.endswith("/chat/completions") and self.command == "POST":
            if not isinstance(body, dict):
                msg = "We could not parse the JSON body of your request. (fakeserver: expected a JSON object)"
                return self._send_error(400, msg)
            return self._chat(body)
        return self._send_error(404, f"Invalid URL ({self.command} {path})", code="unknown_url")

    # --- plain responses --------------------------------------------------------------------
    def _send_json(self, status: int, payload: Any, headers: dict | None = None) -> None:
        self._send_body(status, json.dumps(payload).encode(), headers)

    def _send_body(self, status: int, data: bytes, headers: dict | None = None, cut: bool = False,
                   content_type: str = "application/json") -> None:
        """Headers and body in one send; ``cut`` sends half the body, then drops the connection."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_fake{next(self.server.fake._ids)}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.wfile.write(self._take_headers() + (data[:len(data) // 2] if cut else data))
        if cut:
            raise _Abort

    def _send_error(self, status: int, message: str | None = None, code: str | None = None,
                    headers: dict | None = None, param: str | None = None) -> None:
        self._send_json(status, error_body(status, message, code, param), headers)

    def _send_auth_error(self) -> None:
        header = self.headers.get("Authorization") or ""
        key = header[7:] if header.lower().startswith("bearer ") else ""
        if not key:
            msg = ("You didn't provide an API key. You need to provide your API key in an Authorization "
                   "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
            return self._send_error(401, msg, code=None)
        # Echo a fragment exactly like OpenAI so the engine's redaction gets exercised.
        self._send_error(401, f"Incorrect API key provided: {key[:3]}***{key[-4:]}.")

    def _send_model_not_found(self, name: str) -> None:
        msg = f"The model `{name}` does not exist or you do not have access to it."
        self._send_error(404, msg, code="model_not_found")

    def _admin(self, path: str, body: dict) -> None:
        fake = self.server.fake
        if path == _ADMIN_PREFIX + "requests":
            return self._send_json(200, [dataclasses.asdict(r) for r in fake.requests])
        if path == _ADMIN_PREFIX + "batches" and fake.batch_api is not None:
            return self._send_json(200, fake.batch_api.state())
        if path == _ADMIN_PREFIX + "reset" and self.command == "POST":
            fake.reset()
            return self._send_json(200, {"ok": True})
        if path == _ADMIN_PREFIX + "held":
            return self._send_json(200, fake._held_counts())
        if path == _ADMIN_PREFIX + "release" and self.command == "POST":
            try:
                fake.release(str(body.get("model")), body.get("n"))
            except KeyError as exc:
                return self._send_error(404, str(exc.args[0]))
            return self._send_json(200, {"ok": True})
        if path == _ADMIN_PREFIX + "wait_held" and self.command == "POST":
            model, n = str(body.get("model")), int(body.get("n", 1))
            try:
                fake.wait_held(model, n, float(body.get("timeout", 30.0)))
            except AssertionError as exc:
                return self._send_error(408, str(exc))
            return self._send_json(200, {"held": fake.held(model)})
        self._send_error(404, f"Invalid URL ({self.command} {path})")

    # --- chat completions -------------------------------------------------------------------
    def _chat(self, body: dict) -> None:
        fake = self.server.fake
        name = body.get("model")
        spec = fake._spec(name) if isinstance(name, str) else None
        if spec is None:
            return self._send_model_not_found(str(name))
        if spec.hang_s > 0 and fake._stopping.wait(spec.hang_s):
            raise _Abort  # server stopping: leave without a byte
        self._limit_headers = fake._admit(self.headers.get("Authorization") or "", body)
        if self._limit_headers.pop("_rejected", None):
            msg = f"Rate limit reached for requests (fakeserver: sliding window on this key, model '{name}')"
            return self._send_error(429, msg, headers=self._limit_headers)
        failure = fake._injected_failure(name)
        if failure is not None:
            status, why = failure
            headers = {"Retry-After": spec.retry_after} if spec.retry_after is not None else {}
            headers.update(spec.fail_headers)
            message = spec.error_message or \
                f"{error_body(status)['error']['message']} (fakeserver: {why} for model '{name}')"
            return self._send_error(status, message, headers=headers)
        rejected = [p for p in spec.unsupported_params if p in body]
        if rejected:
            return self._send_unsupported(rejected[0], name, spec.unsupported_style)
        if spec.context_limit is not None:
            size = sum(len(t) for t in _message_texts(body.get("messages")))
            if size > spec.context_limit:
                msg = (f"This model's maximum context length is {spec.context_limit} tokens. However, your "
                       f"messages resulted in {size} tokens. Please reduce the length of the messages.")
                return self._send_error(400, msg, code="context_length_exceeded", param="messages")
        if spec.answers:
            spec = dataclasses.replace(spec, text=str(spec.answers[fake._next_answer(name) % len(spec.answers)]))
        if spec.replies:
            spec = dataclasses.replace(spec, text=_scripted_reply(spec, body))
        answer = _plan_answer(spec, body)
        served = spec.served_model or name
        gate = fake._gate_for(name)
        if body.get("stream"):
            return _StreamWriter(self, spec, body, answer, served, gate).run()
        if gate is not None:
            fake._hold(gate, self.connection)
        return self._chat_plain(spec, answer, served)

    def _extra_headers(self, spec: ModelSpec) -> dict:
        headers = dict(getattr(self, "_limit_headers", {}))
        if spec.cost_header is not None:
            headers["x-litellm-response-cost"] = str(spec.cost_header)
        return headers

    def _send_unsupported(self, param: str, model: str, style: str) -> None:
        if style == "litellm":  # LiteLLM's proxy, drop_params off
            msg = (f"litellm.UnsupportedParamsError: openai does not support parameters: ['{param}'], for "
                   f"model={model}. To drop these, set `litellm.drop_params=True` or for proxy:\n\n"
                   "`litellm_settings:\n drop_params: true`\n")
            return self._send_error(400, msg, headers=self._extra_headers(ModelSpec()))
        msg = f"Unsupported parameter: '{param}' is not supported with this model."
        self._send_error(400, msg, code="unsupported_parameter", param=param,
                         headers=self._extra_headers(ModelSpec()))

    def _chat_plain(self, spec: ModelSpec, answer: _Answer, served: str) -> None:
        # Same total time a stream would take, so plain and streamed latencies are comparable.
        self.server.fake._sleep(spec.delay_s + spec.token_delay_s * max(answer.n_chunks - 1, 0))
        if spec.malformed:
            return self._send_body(200, b"<html>oops</html>")
        if spec.raw_events is not None:
            return self._send_body(200, json.dumps(spec.raw_events[0]).encode())
        if spec.byte_events is not None:
            return self._send_body(200, _as_bytes(spec.byte_events[0]))
        payload = _completion_json(answer, served, self.server.fake, spec)
        self._send_body(200, _with_nested(payload, spec.deep_json), self._extra_headers(spec),
                        cut=spec.truncate_after is not None)


def _with_nested(payload: dict, depth: int | None) -> bytes:
    """``payload`` as JSON, with a field ``x_nested`` of ``depth`` nested arrays when ``depth`` is set."""
    data = json.dumps(payload).encode()
    if depth is None:
        return data
    return data[:-1] + b', "x_nested": ' + b"[" * depth + b"]" * depth + b"}"


def _as_bytes(data: bytes | str) -> bytes:
    return data if isinstance(data, bytes) else data.encode("latin-1")


def _reasoning_fields(spec: ModelSpec, text: str) -> dict:
    """``text`` under the field(s) the scripted server uses for reasoning (OpenRouter's details carry
    an ``index``, one block here: the SDK's accumulator merges entries by it)."""
    style = spec.reasoning_field
    if style == "openrouter":
        return {"reasoning": text, "reasoning_details": [{"type": "reasoning.text", "text": text, "index": 0,
                                                          "format": "unknown"}]}
    if style == "both":
        return {"reasoning": text, "reasoning_content": text}
    return {style: text}


def _completion_json(answer: _Answer, served: str, fake: FakeServer, spec: ModelSpec) -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": "".join(answer.content), "refusal": None}
    if answer.reasoning:
        message.update(_reasoning_fields(spec, "".join(answer.reasoning)))
    if answer.tools is not None:
        message["content"] = None
        message["tool_calls"] = [{"id": f"call_fake{next(fake._ids)}", "type": "function",
                                  "function": {"name": name, "arguments": "".join(args)}}
                                 for name, args in answer.tools]
    payload: dict[str, Any] = {
        "id": f"chatcmpl-fake{next(fake._ids)}", "object": "chat.completion", "created": int(time.time()),
        "model": served, "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "message": message, "finish_reason": answer.finish_reason,
                     "logprobs": None if answer.logprobs is None else {"content": answer.logprobs, "refusal": None}}],
    }
    if spec.usage:
        payload["usage"] = answer.usage
    return payload


class _StreamWriter:
    """Frames one answer as SSE over chunked transfer encoding.

    Events are queued and sent the moment the stream is about to pause (or ends), so every event
    leaves at its scripted time while events due at the same instant share one ``send``: with
    client and server in one process each extra send costs a GIL hand-off, which is what limits
    how many concurrent streams a test can run.
    """

    def __init__(self, handler: _Handler, spec: ModelSpec, body: dict, answer: _Answer, served: str,
                 gate: _Gate | None = None) -> None:
        self.h, self.spec, self.answer, self.gate = handler, spec, answer, gate
        self.fake = handler.server.fake
        options = body.get("stream_options")
        self.include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        self.base = {"id": f"chatcmpl-fake{next(self.fake._ids)}", "object": "chat.completion.chunk",
                     "created": int(time.time()), "model": served, "system_fingerprint": "fp_fake"}
        self.pending: list[bytes] = []

    def run(self) -> None:
        h = self.h
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream; charset=utf-8")
        h.send_header("Cache-Control", "no-cache")
        h.send_header("Transfer-Encoding", "chunked")
        h.send_header("x-request-id", f"req_fake{next(self.fake._ids)}")
        for name, value in h._extra_headers(self.spec).items():
            h.send_header(name, value)
        self.pending.append(h._take_headers())
        role = {"role": "assistant", "content": None if self.answer.tools is not None else ""}
        if self.spec.sse_prefix is not None:
            self._frame(self.spec.sse_prefix)
        self._event(self._chunk(role))
        scripted = (self.spec.raw_events, self.spec.byte_events, self.spec.sse_bytes)
        if self.spec.malformed or any(x is not None for x in scripted):
            self._hold()  # no generated chunks to count: held right after the role chunk
        if self.spec.malformed:
            self._frame(b"data: {not json\n\n")
            return self._done()
        if self.spec.raw_events is not None:
            for payload in self.spec.raw_events:
                self._frame(b"data: " + json.dumps(payload).encode() + b"\n\n")
            return self._done()
        if self.spec.sse_bytes is not None:
            for piece in self.spec.sse_bytes:
                self._frame(_as_bytes(piece))
                self._pause(0.005)
            return self._done()
        if self.spec.byte_events is not None:
            for data in self.spec.byte_events:
                pieces = [_as_bytes(p) for p in (data if isinstance(data, list) else [data])]
                pieces[0] = b"data: " + pieces[0]
                pieces[-1] += b"\n\n"
                for piece in pieces:  # a list: one event in several sends (a character cut between them)
                    self._frame(piece)
                    self._pause(0.005)
            return self._done()
        self._generate()
        if self.spec.truncate_after is not None:
            self._cut()  # fewer chunks than truncate_after: still cut before the finish chunk
        if self.spec.deep_json is not None:
            self._frame(b"data: " + _with_nested(self._chunk({}), self.spec.deep_json) + b"\n\n")
        if not self.spec.no_finish:
            self._event(self._chunk({}, finish=self.answer.finish_reason))
        self._end_after_finish(("cut", "error_event_before_usage", "hang"))
        if self.include_usage and self.spec.usage:
            self._event({**self.base, "choices": [], "usage": self.answer.usage})
        self._end_after_finish(("cut_after_usage", "error_event"))
        self._done()

    def _end_after_finish(self, here: tuple) -> None:
        how = self.spec.after_finish
        if how not in here:
            return
        if how.startswith("error_event"):
            self._error_event()
        if how == "hang":
            self._flush()
            self.fake._sleep(30.0)
        self._cut()

    def _generate(self) -> None:
        a, cut = self.answer, self.spec.truncate_after
        # (delta, counts toward truncate_after): reasoning and the tool-call header do not.
        deltas = [(_reasoning_fields(self.spec, r), False) for r in a.reasoning]
        # each content chunk carries its own token's entry (a chunk's logprobs cover its tokens only)
        entries = [{"content": [e], "refusal": None} for e in a.logprobs] if a.logprobs else [None] * len(a.content)
        logprobs = [None] * len(a.reasoning) + entries
        deltas += [({"content": c}, True) for c in a.content]
        for index, (name, args) in enumerate(a.tools or []):
            # As OpenAI streams them (and as the SDK's accumulator needs them): id, type and name
            # once, in the call's first fragment; then only the index and argument pieces.
            head = {"index": index, "id": f"call_fake{next(self.fake._ids)}", "type": "function",
                    "function": {"name": name, "arguments": ""}}
            deltas.append(({"tool_calls": [head]}, False))
            deltas += [({"tool_calls": [{"index": index, "function": {"arguments": p}}]}, True) for p in args]
        answered = 0
        if self.spec.error_event_after == 0:
            self._error_event()
        for i, (delta, counts) in enumerate(deltas):
            if i == self.spec.hold_at:
                self._hold()
            self._pause(self.spec.delay_s if i == 0 else self.spec.token_delay_s)
            self._event(self._chunk(delta, logprobs=logprobs[i] if i < len(logprobs) else None))
            answered += counts
            if cut is not None and answered >= cut:
                self._cut()
            if self.spec.error_event_after is not None and answered >= self.spec.error_event_after:
                self._error_event()
        self._hold()  # fewer chunks than hold_at: held before the finish chunk

    def _error_event(self) -> None:
        """What LiteLLM's proxy sends when its upstream stream breaks: one error event, then the
        (cleanly terminated) end of the HTTP body, no finish_reason, no [DONE]."""
        error = self.spec.error_event or {
            "message": "litellm.APIConnectionError: APIConnectionError: OpenAIException - Connection error.",
            "type": None, "param": None, "code": "500"}
        self._event({"error": error})
        self.pending.append(b"0\r\n\r\n")
        self._flush()
        raise _Abort

    def _chunk(self, delta: dict, finish: str | None = None, logprobs: dict | None = None) -> dict:
        chunk = {**self.base, "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}]}
        if self.include_usage:
            chunk["usage"] = None  # OpenAI sends an explicit null on every non-usage chunk
        return chunk

    def _event(self, payload: dict) -> None:
        self._frame(b"data: " + json.dumps(payload).encode() + b"\n\n")

    def _frame(self, data: bytes) -> None:
        self.pending.append(b"%x\r\n%s\r\n" % (len(data), data))

    def _flush(self) -> None:
        if self.fake._stopping.is_set():
            raise _Abort
        if self.pending:
            self.h.wfile.write(b"".join(self.pending))
            self.pending.clear()

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            self._flush()
            self.fake._sleep(seconds)

    def _cut(self) -> None:
        self._flush()
        raise _Abort

    def _hold(self) -> None:
        """Wait at the gate (once per stream), after sending everything before this point."""
        if self.gate is not None:
            gate, self.gate = self.gate, None
            self._flush()
            self.fake._hold(gate, self.h.connection)

    def _done(self) -> None:
        self._frame(b"data: [DONE]\n\n")
        self.pending.append(b"0\r\n\r\n")
        self._flush()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections would otherwise block stop()
    request_queue_size = 512  # the default backlog of 5 drops SYNs under 64 concurrent connects
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeServer) -> None:
        self.fake = fake
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn), which can stall in sandboxes.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], _CONNECTION_ERRORS):
            super().handle_error(request, client_address)


class FakeServer:
    """The test server: ``start()``/``stop()`` or use as a context manager."""

    def __init__(self, models: dict[str, ModelSpec] | None = None, port: int = 0,
                 api_key: str | None = None, host: str = "127.0.0.1", rate_limit: RateLimit | None = None,
                 batches: BatchBehaviour | bool = True,
                 embedded: bool = False) -> None:
        self.api_key = api_key
        self.embedded = embedded  # answer GET /llmlab/health as llmlab's embedded endpoint does
        self.rate_limit = rate_limit
        # the Files and Batch APIs (tests/fakebatch.py); False: an endpoint without them (404)
        behaviour = BatchBehaviour() if batches is True else batches or None
        self.batch_api = BatchAPI(behaviour, self._batch_line) if behaviour is not None else None
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a gate's held count or release changed
        self._states = {name: _ModelState(spec) for name, spec in (models or {}).items()}
        self._log: list[RequestLog] = []
        self._conns: set[socket.socket] = set()
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._httpd = _HTTPServer((host, port), self)
        self.host, self.port = self._httpd.server_address[:2]
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> FakeServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=f"fakeserver:{self.port}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; hanging, held and in-flight requests end at once (their connections are closed)."""
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def requests(self) -> list[RequestLog]:
        with self._lock:
            return list(self._log)

    def requests_for(self, model: str) -> list[RequestLog]:
        return [r for r in self.requests if r.model == model]

    def reset(self) -> None:
        if self.batch_api is not None:
            self.batch_api = BatchAPI(self.batch_api.behaviour, self._batch_line)
        with self._changed:
            self._log.clear()
            self._windows.clear()
            self._open_gates(self._states.values())
            self._states = {name: _ModelState(st.spec) for name, st in self._states.items()}

    def set_model(self, name: str, spec: ModelSpec) -> None:
        """Add or replace a model; its fail_first/error_rate counters and its gate start afresh."""
        with self._changed:
            self._open_gates([self._states[name]] if name in self._states else [])
            self._states[name] = _ModelState(spec)

    # --- gates (ModelSpec.hold_after) ---------------------------------------------------------
    def held(self, model: str) -> int:
        """How many requests of ``model`` its gate holds right now."""
        with self._lock:
            state = self._states.get(model)
            return state.gate.held if state else 0

    def wait_held(self, model: str, n: int, timeout: float = 30.0) -> None:
        """Block until at least ``n`` requests of ``model`` are held at once: the point where a
        test knows those calls are in flight and cannot finish. AssertionError after ``timeout``."""
        def count() -> int:
            state = self._states.get(model)
            return state.gate.held if state else 0

        with self._changed:
            if not self._changed.wait_for(lambda: count() >= n, timeout):
                raise AssertionError(f"fakeserver: {count()} request(s) of {model!r} held after {timeout} s, "
                                     f"expected {n}")

    def release(self, model: str, n: int | None = None) -> None:
        """Let held requests of ``model`` go on: ``n`` of them (oldest first; those not yet held
        count ahead for the next arrivals), or all with ``n=None``, which also opens the gate."""
        with self._changed:
            state = self._states.get(model)
            if state is None:
                raise KeyError(f"fakeserver: no model {model!r}")
            state.gate.release(n)
            self._changed.notify_all()

    # --- used by the handler ----------------------------------------------------------------
    def _open_gates(self, states: Any) -> None:
        # with _changed held: requests held under a replaced spec answer as they were scripted
        for state in states:
            state.gate.open = True
        self._changed.notify_all()

    def _held_counts(self) -> dict[str, int]:
        with self._lock:
            return {name: state.gate.held for name, state in self._states.items()}

    def _gate_for(self, name: str) -> _Gate | None:
        """The gate this answer must wait at, or None when it passes unheld."""
        with self._lock:
            gate = self._states[name].gate
            return gate if gate.holds() else None

    def _hold(self, gate: _Gate, conn: socket.socket) -> None:
        """Wait until released; stop() or the client going away ends the request (no more bytes)."""
        with self._changed:
            if gate.credits:
                gate.credits -= 1
                return
            me = _Waiter()
            gate.waiting.append(me)
            self._changed.notify_all()
            try:
                while not (me.released or gate.open):
                    if self._stopping.is_set() or _client_gone(conn):
                        raise _Abort
                    self._changed.wait(0.05)  # also polls for a client that went away
            finally:
                if me in gate.waiting:
                    gate.waiting.remove(me)
                self._changed.notify_all()

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    def _record(self, log: RequestLog) -> None:
        with self._lock:
            self._log.append(log)

    def _spec(self, name: str) -> ModelSpec | None:
        with self._lock:
            state = self._states.get(name)
        return state.spec if state else None

    def _authorized(self, header: str | None) -> bool:
        return self.api_key is None or header == f"Bearer {self.api_key}"

    def _sleep(self, seconds: float) -> None:
        if seconds > 0 and self._stopping.wait(seconds):
            raise _Abort

    def _admit(self, key: str, body: dict) -> dict:
        """Count a request against its key's window: the x-ratelimit-* headers to send, and
        ``_rejected`` when it is over the limit (not counted then)."""
        limit = self.rate_limit
        if limit is None:
            return {}
        now, tokens = time.monotonic(), _request_tokens(body)
        with self._lock:
            window = self._windows.setdefault(key, _Window())
            window.expire(now, limit.window_s)
            over = (limit.rpm is not None and len(window.entries) >= limit.rpm) or \
                (limit.tpm is not None and window.entries and window.tokens + tokens > limit.tpm)
            if not over:
                window.entries.append((now, tokens))
                window.tokens += tokens
            reset = f"{window.reset_s(now, limit.window_s):.3f}s"
            headers: dict[str, Any] = {}
            if limit.rpm is not None:
                headers.update({"x-ratelimit-limit-requests": str(limit.rpm), "x-ratelimit-reset-requests": reset,
                                "x-ratelimit-remaining-requests": str(max(0, limit.rpm - len(window.entries)))})
            if limit.tpm is not None:
                headers.update({"x-ratelimit-limit-tokens": str(limit.tpm), "x-ratelimit-reset-tokens": reset,
                                "x-ratelimit-remaining-tokens": str(max(0, limit.tpm - window.tokens))})
            if over:
                headers["_rejected"] = True
                if limit.retry_after:
                    headers["retry-after"] = str(max(1, -int(-window.reset_s(now, limit.window_s) // 1)))
        return headers

    def _next_answer(self, name: str) -> int:
        """How many answers this model has given (which of its ``answers`` comes next)."""
        with self._lock:
            state = self._states[name]
            state.answered += 1
            return state.answered - 1

    def _injected_failure(self, name: str) -> tuple[int, str] | None:
        """(status, reason) if this request must fail; advances the model's counters."""
        with self._lock:
            state = self._states[name]
            spec = state.spec
            state.seen += 1
            if spec.status is not None:
                return spec.status, "status"
            if state.seen <= spec.fail_first:
                return spec.fail_status, f"fail_first {state.seen}/{spec.fail_first}"
            if spec.error_rate > 0 and state.rng.random() < spec.error_rate:
                return state.rng.choice(spec.error_statuses), f"error_rate {spec.error_rate}"
        return None

    def _batch_line(self, body: dict) -> tuple[int, dict]:
        """One Batch API request line answered as a live non-streamed call would be: the model's
        scripted answer, or the error a live call would get (unknown model, injected failure,
        unsupported parameter, context length)."""
        name = body.get("model")
        spec = self._spec(name) if isinstance(name, str) else None
        if spec is None:
            return 404, error_body(404, f"The model `{name}` does not exist or you do not have access to it.",
                                   code="model_not_found")
        failure = self._injected_failure(name)
        if failure is not None:
            status, why = failure
            return status, error_body(status, spec.error_message or f"fakeserver: {why} for model '{name}'")
        rejected = [p for p in spec.unsupported_params if p in body]
        if rejected:
            return 400, error_body(400, f"Unsupported parameter: '{rejected[0]}' is not supported with this model.",
                                   code="unsupported_parameter", param=rejected[0])
        if spec.raw_events is not None:
            return 200, spec.raw_events[0]
        return 200, _completion_json(_plan_answer(spec, body), spec.served_model or name, self, spec)

    @property
    def batch_requests(self) -> list[tuple[str, str]]:
        """(batch id, custom_id) of every batch line the server ran (what a provider bills)."""
        return list(self.batch_api.answered) if self.batch_api is not None else []

    def _model_entry(self, name: str) -> dict:
        return {"id": name, "object": "model", "created": 0, "owned_by": "fakeserver"}

    def _models_list(self) -> dict:
        with self._lock:
            names = list(self._states)
        return {"object": "list", "data": [self._model_entry(n) for n in names]}


# --- separate-process mode -------------------------------------------------------------------

def start_subprocess(models: dict[str, dict], port: int = 0, api_key: str | None = None,
                     timeout: float = 10.0, rate_limit: dict | None = None,
                     batches: dict | bool = True) -> tuple[subprocess.Popen, str]:
    """Run a FakeServer in its own process (no shared GIL); returns (process, base_url).

    Stop it with :func:`stop_subprocess` (or ``proc.terminate(); proc.wait()``).
    """
    cmd = [sys.executable, __file__, "--port", str(port), "--config", json.dumps(models)]
    if api_key is not None:
        cmd += ["--api-key", api_key]
    if rate_limit is not None:
        cmd += ["--rate-limit", json.dumps(rate_limit)]
    if batches is not True:
        cmd += ["--batches", json.dumps(batches)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("READY "):
        stop_subprocess(proc)
        raise RuntimeError(f"fakeserver subprocess did not start (got {line!r}, exit code {proc.returncode})")
    return proc, line.split(" ", 1)[1].strip()


def stop_subprocess(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout:
        proc.stdout.close()


class Remote:
    """The admin endpoints of a FakeServer in another process, as the in-process methods."""

    def __init__(self, base_url: str) -> None:
        self.root = base_url.removesuffix("/v1") + _ADMIN_PREFIX.rstrip("/")

    def _call(self, what: str, body: dict | None = None, timeout: float = 30.0) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.root}/{what}", data=data, method="GET" if body is None else "POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            if exc.code == 408:  # wait_held ran out of time: the server says how many it holds
                raise AssertionError(json.load(exc)["error"]["message"]) from None
            raise

    @property
    def requests(self) -> list[dict]:
        return self._call("requests")

    def reset(self) -> None:
        self._call("reset", {})

    def held(self, model: str) -> int:
        return int(self._call("held").get(model, 0))

    def wait_held(self, model: str, n: int, timeout: float = 30.0) -> None:
        self._call("wait_held", {"model": model, "n": n, "timeout": timeout}, timeout=timeout + 30)

    def release(self, model: str, n: int | None = None) -> None:
        self._call("release", {"model": model, "n": n})


def collect(procs: list[subprocess.Popen], server: subprocess.Popen, timeout: float) -> list[tuple[str, str]]:
    """Each client process's (stdout, stderr) once it ends; any still running after ``timeout``
    is killed, and the server subprocess is stopped whatever happened."""
    try:
        return [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
        stop_subprocess(server)


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="llmlab fake OpenAI-compatible server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--config", default="{}", help="JSON object {model name: ModelSpec fields}")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--rate-limit", default=None, help="JSON object of RateLimit fields")
    parser.add_argument("--batches", default="true", help="JSON: BatchBehaviour fields, or false (no Batch API)")
    args = parser.parse_args(argv)
    models = {name: ModelSpec(**fields) for name, fields in json.loads(args.config).items()}
    rate_limit = RateLimit(**json.loads(args.rate_limit)) if args.rate_limit else None
    batches = json.loads(args.batches)
    batches = BatchBehaviour(**batches) if isinstance(batches, dict) else bool(batches)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with FakeServer(models, port=args.port, api_key=args.api_key, host=args.host, rate_limit=rate_limit,
                    batches=batches) as srv:
        print(f"READY {srv.base_url}", flush=True)
        while not stop.wait(0.2):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(_main())
