"""One SSE line or event has a bound; choice 0 and its finish_reason are read by one rule streamed
or not; a tool call's name or id split inside a character is joined (re-attack 5 G11, F16).

``engine/_call.MAX_DOCUMENT`` (16 MB, the bound of one JSON document: a non-streamed body too, see
test_body_bound.py) bounds one SSE line at the byte reader, before the SDK's
line buffer holds it, and one event's data lines at the SSE decoder; past it the row is a
MalformedResponse and the stream is closed (an endless line took ~5x its size in memory and then
read as "the stream ended without a finish_reason"). The generated forms run with the bound set
to 4 KiB so each stays small; one test sends an endless line at the real bound. Real servers on
127.0.0.1 (tests/fakeserver.py, a raw socket server), the real SDK."""
from __future__ import annotations

import itertools
import json
import socket
import threading

import pandas as pd
import pytest
from fakeserver import ModelSpec

from llmlab import Lab
from llmlab.engine import _call

SMALL = 4096


def _row(serve, tmp_path, spec: ModelSpec, stream: bool = True, log: str = "r"):
    srv = serve({"m": spec})
    with Lab(base_url=srv.base_url, db=tmp_path / f"{log}{stream}.sqlite", retries=0) as lab:
        return lab.compare("hi", models=["m"], stream=stream).df.iloc[0]


def _chunk(delta: dict, finish=None, index=0) -> dict:
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}


def _ev(payload: dict) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


ANSWER = _ev(_chunk({"content": "part"}))
FINISH = _ev(_chunk({}, "stop"))
# the start of a line that never ends: every kind of SSE line the decoder buffers
STARTS = {"data": b'data: {"x": "', "bare": b"data:", "comment": b": ", "event": b"event: ",
          "id": b"id: ", "unknown field": b"junk: ", "BOM data": b'\xef\xbb\xbfdata: {"x": "',
          "no field": b""}
ENDINGS = {"LF": b"\n", "CRLF": b"\r\n", "CR": b"\r"}


def _long_line(start: bytes, sends: int) -> list[bytes]:
    body = b"a" * (SMALL + 100 - len(start))
    step = -(-len(body) // sends)
    pieces = [body[i:i + step] for i in range(0, len(body), step)]
    return [start + pieces[0], *pieces[1:]]  # never an empty send: it would end the chunked body


@pytest.fixture
def small_bound(monkeypatch):
    monkeypatch.setattr(_call, "MAX_DOCUMENT", SMALL)


# every start x one send or seven x after nothing or an answer, each with one of the line endings in turn
LINE_CASES = [(*case, list(ENDINGS)[n % len(ENDINGS)])
              for n, case in enumerate(itertools.product(STARTS, (1, 7), ("nothing", "an answer")))]


@pytest.mark.parametrize(("start", "sends", "before", "ending"), LINE_CASES)
def test_a_line_past_the_bound_is_a_malformed_row(serve, tmp_path, small_bound, start, sends, before, ending):
    end = ENDINGS[ending]
    # what came before is read: lines and events under the bound, comment lines and events past it in all
    lead = [b": " + b"z" * 1000 + end] * 5 + [_ev(_chunk({"content": "w" * (SMALL - 200)})).replace(b"\n", end),
                                             *[ANSWER.replace(b"\n", end)] * 5] if before == "an answer" else []
    row = _row(serve, tmp_path, ModelSpec(sse_bytes=[*lead, *_long_line(STARTS[start], sends), b"\n\n", FINISH]))
    assert [row["status"], row["error_type"]] == ["error", "MalformedResponse"]
    assert row["error_message"].startswith(f"the endpoint sent an SSE line longer than {SMALL / 2**20:g} MB")
    assert row["response_text"] == ("w" * (SMALL - 200) + "part" * 5 if lead else "")


@pytest.mark.parametrize(("lines", "ending"), list(itertools.product((2, 9, 64), ENDINGS)))
def test_an_event_of_many_data_lines_past_the_bound_is_a_malformed_row(serve, tmp_path, small_bound, lines,
                                                                       ending):
    end = ENDINGS[ending]
    line = b"data: " + b"b" * (SMALL // lines + 10) + end
    row = _row(serve, tmp_path, ModelSpec(sse_bytes=[line] * lines + [end, FINISH]))
    assert [row["status"], row["error_type"]] == ["error", "MalformedResponse"]
    assert row["error_message"].startswith(f"the endpoint sent an SSE event longer than {SMALL / 2**20:g} MB")


@pytest.mark.parametrize("what", ["line", "event"])
def test_a_long_line_after_the_finish_keeps_the_whole_answer(serve, tmp_path, small_bound, what):
    junk = _long_line(STARTS["data"], 3) if what == "line" else [b"data: " + b"c" * 1000 + b"\n"] * 5
    row = _row(serve, tmp_path, ModelSpec(sse_bytes=[ANSWER, FINISH, *junk, b"\n\n"]))
    assert row["status"] == "ok" and row["response_text"] == "part"
    assert f"SSE {what} longer than" in row["error_message"]


class _EndlessLine:
    """A raw HTTP server whose stream is one line that does not end: 20 MB of it (no more on a
    shared machine), then it waits, the line still open, until the client closes the connection."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        conn.recv(65536)
        try:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
                         b'data: {"x": "')
            for _ in range(20):
                conn.sendall(b"a" * 2**20)
            conn.recv(1)  # b"" once the client has closed
        except OSError:
            pass  # the client closed while it was sending
        finally:
            self.closed.set()
            conn.close()
            self.sock.close()


@pytest.mark.slow  # 16 MB through the loopback: 2-20 s; the small-bound forms above are quick
def test_an_endless_line_is_cut_at_16_mb_and_its_connection_closed(tmp_path):
    srv = _EndlessLine()
    with Lab(base_url=srv.url, db=tmp_path / "r.sqlite", retries=0) as lab:
        row = lab.compare("hi", models=["m"], stream=True, timeout=60).df.iloc[0]
        assert srv.closed.wait(30)  # by the call itself, before the Lab closes
    assert [row["status"], row["error_type"]] == ["error", "MalformedResponse"]
    assert row["error_message"].startswith("the endpoint sent an SSE line longer than 16 MB")


# --------------------------------------------------------------------------- finish_reason (F16)

def _body(choices: list) -> dict:
    return {"id": "c", "object": "chat.completion", "created": 1, "model": "m", "choices": choices,
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


def _answer(finish, index=0, text="hi", stream=False) -> list[dict]:
    if stream:
        return [_chunk({"content": text}, index=index), _chunk({}, finish, index=index)]
    return [_body([{"index": index, "message": {"role": "assistant", "content": text}, "finish_reason": finish}])]


@pytest.mark.parametrize("finish", [7, -1, 2.5, True, {"a": 1}, ["stop"], 10**30], ids=repr)
def test_a_finish_reason_that_is_not_a_text_is_unknown_and_said_streamed_or_not(serve, tmp_path, finish):
    for stream in (False, True):
        row = _row(serve, tmp_path, ModelSpec(raw_events=_answer(finish, stream=stream)), stream)
        assert row["status"] == "ok" and row["response_text"] == "hi"
        assert pd.isna(row["finish_reason"])
        assert "finish_reason" in row["error_message"] and "not a text" in row["error_message"]


@pytest.mark.parametrize("finish", [0, False, "", [], {}], ids=repr)
def test_an_empty_finish_reason_is_none_streamed_or_not(serve, tmp_path, finish):
    for stream in (False, True):
        events = _answer(finish, stream=stream)
        if stream:  # not a finish: the stream's real one follows
            events.append(_chunk({}, "length"))
        row = _row(serve, tmp_path, ModelSpec(raw_events=events), stream)
        assert row["status"] == "ok"
        assert row["finish_reason"] == "length" if stream else pd.isna(row["finish_reason"])
        assert not isinstance(row["error_message"], str) or "finish_reason" not in row["error_message"]


# --------------------------------------------------------------------------- choice 0 (F16)

SAME_INDEX = {"0 and 0": (0, 0), "absent and 0": (None, 0), "absent twice": (None, None), "0.0 and 0": (0.0, 0),
              "0, 1 and 0": (0, 1, 0)}


def _choice(index, text: str, stream: bool) -> dict:
    part = ({"delta": {"content": text}} if stream
            else {"message": {"role": "assistant", "content": text}, "finish_reason": "stop"})
    return part if index is None else {"index": index, **part}


@pytest.mark.parametrize(("case", "stream"), list(itertools.product(SAME_INDEX, (False, True))))
def test_two_choices_with_index_0_are_a_malformed_row(serve, tmp_path, case, stream):
    choices = [_choice(i, f"answer {n}", stream) for n, i in enumerate(SAME_INDEX[case])]
    events = [_chunk({"content": "x"}) | {"choices": choices}, _chunk({}, "stop")] if stream else [_body(choices)]
    row = _row(serve, tmp_path, ModelSpec(raw_events=events), stream)
    assert [row["status"], row["error_type"]] == ["error", "MalformedResponse"]
    assert "choices with index 0" in row["error_message"]


@pytest.mark.parametrize("order", [(1, 0), (2, 1, 0), (3, 0, 1)])
def test_a_body_answer_is_choice_0_wherever_it_is_listed(serve, tmp_path, order):
    choices = [_choice(i, f"answer {i}", False) for i in order]
    row = _row(serve, tmp_path, ModelSpec(raw_events=[_body(choices)]), False)
    assert row["status"] == "ok" and row["response_text"] == "answer 0"


# --------------------------------------------------------------------------- split characters in tool calls (F16)

EMOJI = ["\U0001F600", "\U0001F4A9", "\U00010348", "\U0001D11E"]


def _halves(ch: str) -> tuple[str, str]:
    units = ch.encode("utf-16-le")
    return units[:2].decode("utf-16-le", "surrogatepass"), units[2:].decode("utf-16-le", "surrogatepass")


def _tool_chunk(call: dict) -> bytes:
    # json.dumps writes a lone surrogate as its \ud83d escape, as a hostile or careless endpoint does
    return _ev(_chunk({"tool_calls": [call]}))


def _tool_row(serve, tmp_path, first: dict, more: dict, log: str = "r"):
    return _row(serve, tmp_path, ModelSpec(sse_bytes=[_tool_chunk(first), _tool_chunk(more),
                                                      _ev(_chunk({}, "tool_calls"))]), log=log)


@pytest.mark.parametrize(("ch", "field", "where"),
                         list(itertools.product(EMOJI, ("name", "id"), ("end", "middle", "alone"))))
def test_a_tool_name_or_id_split_inside_a_character_is_joined(serve, tmp_path, ch, field, where):
    high, low = _halves(ch)
    head, tail = {"end": ("get", ""), "middle": ("get", "_x"), "alone": ("", "")}[where]
    first, rest = head + high, low + tail
    call = {"index": 0, "id": "t1", "type": "function", "function": {"name": "f", "arguments": ""}}
    more: dict = {"index": 0, "function": {"arguments": "{}"}}
    if field == "name":
        call["function"]["name"], more["function"]["name"] = first, rest
    else:
        call["id"], more["id"] = first, rest
    row = _tool_row(serve, tmp_path, call, more)
    assert row["status"] == "ok", row["error_message"]
    [sent] = json.loads(row["tool_calls"])
    assert sent[field] == head + ch + tail and sent["arguments"] == "{}"
    # only a split character continues a name: another one (a low half after no high one) is a rename
    more = {"index": 0, "function": {"name": rest + "x" if where == "alone" else "g" + low, "arguments": "{}"}}
    row = _tool_row(serve, tmp_path, {"index": 0, "id": "t1", "function": {"name": "f", "arguments": ""}}, more, "b")
    assert [row["status"], row["error_type"]] == ["error", "MalformedResponse"] and "renames" in row["error_message"]
