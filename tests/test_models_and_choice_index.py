"""What an endpoint's ``/v1/models`` and a choice's ``index`` may be (issue 21, attack a6 B2, B3, B6).

``lab.list_models()`` reads the body by one rule (``engine/_call.py`` ``list_models``): anything but
``{"data": [{"id": "<text>", …}, …]}`` is one ``EndpointError`` line saying what was wrong (never
a raw TypeError, never a non-text id listed as a model name), and both fields of a model (``id``
and ``owned_by``) go through the row redactor together. A choice's ``index`` has one reader on
both paths (``_choice_index``; a tool call's index has the same whole-number reader): absent, null
or a whole number is read, anything else is a ``MalformedResponse`` on both — never a streamed
answer skipped into a paid retry.
Real servers on 127.0.0.1, the real SDK.
"""
from __future__ import annotations

import base64
import json
import random
import string
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fakeserver import FakeServer, ModelSpec
from IPython.core.error import UsageError

from llmlab import EndpointError, Lab
from llmlab.base._redact import Redactor

_rng = random.Random(21)
KEY = "sk-proj-" + "".join(_rng.choice(string.ascii_letters + string.digits) for _ in range(40))


class _ModelsServer:
    """Answers ``GET /v1/models`` with ``body`` (bytes, exactly); anything else 404."""

    def __init__(self) -> None:
        self.body = b'{"data": []}'
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:
                found = self.path.endswith("/models")
                data = owner.body if found else b'{"error": {"message": "no"}}'
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        threading.Thread(target=self.http.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/v1"


@pytest.fixture
def models_server(monkeypatch):
    monkeypatch.setenv("LLMLAB_API_KEY", KEY)
    srv = _ModelsServer()
    yield srv
    srv.http.shutdown()
    srv.http.server_close()


def _listed(srv: _ModelsServer, body) -> object:
    srv.body = body if isinstance(body, bytes) else json.dumps(body).encode()
    with Lab(base_url=srv.url, db=":memory:") as lab:
        return lab.list_models()


# --------------------------------------------------------------------------- B3: malformed bodies

_NOT_LISTS = [None, "abc", 5, 1.5, True, {"id": "x"}, {}]
_NOT_MODELS = [1, "m", None, True, [], ["m"], {}, {"object": "model"}, {"id": None}, {"id": 5}, {"id": 1e308},
               {"id": True}, {"id": {"a": 1}}, {"id": ["m"]}, {"id": ""}, {"id": "  "}, {"name": "m"}]
MALFORMED = {
    **{f"data {json.dumps(d)}": {"object": "list", "data": d} for d in _NOT_LISTS},
    **{f"top-level {json.dumps(b)}": b for b in [[1, 2], [{"id": "m"}], "models", 7, None, True]},
    "no data": {"object": "list"},
    "empty object": {},
    **{f"model {json.dumps(m)}": {"data": [m]} for m in _NOT_MODELS},
    **{f"good, then {json.dumps(m)}": {"data": [{"id": "ok"}, m]} for m in [1, {"id": 2}, {"owned_by": "x"}]},
    "html": b"<html>down</html>",
    "empty body": b"",
    "truncated JSON": b'{"data": [{"id": "m"',
    "id a 5000-digit integer": b'{"data": [{"id": ' + b"9" * 5000 + b"}]}",
    "nested 100,000 deep": b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
}
# What each message must say (what was wrong), by the kind of body.
_SAYS = {"data": "data", "top-level": "it is", "no data": "no data", "empty object": "no data",
         "model": "has no text id", "good,": "model 2 of 2 has no text id", "html": "not JSON",
         "empty body": "not JSON", "truncated": "not JSON", "id a": "has no text id", "nested": "nested too deep"}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_a_malformed_models_answer_is_one_endpoint_error_saying_what_was_wrong(models_server, name):
    with pytest.raises(EndpointError) as refused:
        _listed(models_server, MALFORMED[name])
    message = str(refused.value)
    assert "\n" not in message and "/v1/models answer is not a list of models" in message, message
    says = next(v for k, v in _SAYS.items() if name.startswith(k))
    assert says in message, message
    for internal in ("attribute", "iterable", "subscriptable", "_set_private", "Traceback", "recursion"):
        assert internal not in message, message


GOOD = {
    "empty list": ({"object": "list", "data": []}, []),
    "ids and owners": ({"object": "list", "data": [{"id": "a", "object": "model", "owned_by": "me"}, {"id": "b"}]},
                       [("a", "me"), ("b", None)]),
    "owner not a text": ({"data": [{"id": "a", "owned_by": 5}, {"id": "b", "owned_by": {"x": 1}}]},
                         [("a", None), ("b", None)]),
    "extra fields": ({"data": [{"id": "a", "created": "yesterday", "meta": [1]}], "has_more": False}, [("a", None)]),
    "byte order mark": ("\ufeff" + json.dumps({"data": [{"id": "a"}]}), [("a", None)]),
    "lone surrogate": (b'{"data": [{"id": "\\ud800x"}]}', [("\ufffdx", None)]),
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_a_well_formed_models_answer_is_listed(models_server, name):
    body, rows = GOOD[name]
    df = _listed(models_server, body.encode() if isinstance(body, str) else body)
    assert [(m, o if isinstance(o, str) else None) for m, o in zip(df["model"], df["owned_by"], strict=True)] == rows


def test_percent_llm_models_shows_the_one_line(models_server):
    from test_magics import fresh_shell

    from llmlab.magics import load_ipython_extension

    shell = fresh_shell()
    load_ipython_extension(shell)
    try:
        shell.run_line_magic("config", f'LLMLab.base_url = "{models_server.url}"')
        models_server.body = b'{"object": "list", "data": null}'
        with pytest.raises(UsageError) as refused:
            shell.run_line_magic("llm", "models")
        message = str(refused.value)
        assert message.startswith("%llm: EndpointError: cannot list models"), message
        assert "not a list of models: its data is null" in message and "TypeError" not in message
        models_server.body = b'{"data": [{"id": "m", "owned_by": "me"}]}'
        assert shell.run_line_magic("llm", "models")["model"].tolist() == ["m"]
    finally:
        fresh_shell()


# --------------------------------------------------------------------------- B2: owned_by redacted

_B64 = base64.b64encode(KEY.encode()).decode()
OWNERS = {
    "the key": ("m", KEY, [KEY]),
    "base64 of the key": ("m", _B64, [_B64]),
    "hex of the key": ("m", KEY.encode().hex(), [KEY.encode().hex()]),
    "key in a sentence": ("m", f"org of {KEY} ltd", [KEY, KEY[8:20]]),
    "halves over id and owner": (KEY[:24], KEY[24:], [KEY[:24], KEY[24:]]),
    # each half alone too short to be a key echo: only the row (both fields) joins them
    **{f"{n}+{n} over id and owner": (f"gpt-{KEY[10:10 + n]}", f"org {KEY[10 + n:10 + 2 * n]}",
                                      [KEY[10:10 + n], KEY[10 + n:10 + 2 * n]]) for n in (6, 7)},
}


@pytest.mark.parametrize("name", sorted(OWNERS))
def test_no_field_of_a_listed_model_keeps_the_key(models_server, name):
    model_id, owner, pieces = OWNERS[name]
    df = _listed(models_server, {"data": [{"id": "plain", "owned_by": "openai"},
                                          {"id": model_id, "owned_by": owner}]})
    cells = df.to_csv() + repr(df.values.tolist()) + df.to_string()
    for piece in pieces:
        assert piece not in cells, (piece, df.iloc[:, :2].values.tolist())
    assert "[redacted]" in df.loc[1, "owned_by"]
    assert df.loc[0, ["model", "owned_by"]].tolist() == ["plain", "openai"]  # ordinary text is untouched


def test_the_split_forms_need_the_row():
    # The premise of the n+n forms: one field alone is not a key echo; both together are.
    redact = Redactor([KEY])
    for n in (6, 7):
        model_id, owner, _ = OWNERS[f"{n}+{n} over id and owner"]
        assert [redact(model_id), redact(owner)] == [model_id, owner]
        assert redact.row([model_id, owner]) == ["gpt-[redacted]", "org [redacted]"]


# --------------------------------------------------------------------------- B6: a choice's index

def _chunk(delta: dict, index, finish=None) -> dict:
    choice = {"delta": delta, "finish_reason": finish}
    if index != "ABSENT":
        choice["index"] = index
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [choice]}


def _body(index) -> dict:
    choice = {"message": {"role": "assistant", "content": "hello world"}, "finish_reason": "stop"}
    if index != "ABSENT":
        choice["index"] = index
    return {"id": "c", "object": "chat.completion", "created": 1, "model": "m", "choices": [choice],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


def _row(tmp_path, index, stream: bool):
    events = ([_chunk({"content": "hello "}, index), _chunk({"content": "world"}, index),
               _chunk({}, index, "stop")] if stream else [_body(index)])
    with FakeServer({"odd": ModelSpec(raw_events=events)}) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path / f"l{stream}.sqlite", retries=2) as lab:
        row = lab.compare("Hi", models=["odd"], stream=stream, cache=False).df.iloc[0]
        calls = sum(1 for r in srv.requests if r.path.endswith("/chat/completions"))
    return row, calls


READ = ["ABSENT", None, 0, 0.0, -0.0]
REFUSED = ["0", "00", "", "zero", [0], [], {"i": 0}, {}, True, False, -1, -0.5, 0.5, 1e-300, float("inf"),
           float("nan")]


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "plain"])
@pytest.mark.parametrize("index", READ, ids=repr)
def test_an_index_that_is_absent_null_or_zero_keeps_the_answer(tmp_path, index, stream):
    row, calls = _row(tmp_path, index, stream)
    assert [row["status"], row["response_text"], row["finish_reason"], calls] == ["ok", "hello world", "stop", 1], \
        row["error_message"]


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "plain"])
@pytest.mark.parametrize("index", REFUSED, ids=repr)
def test_an_index_that_is_not_a_whole_number_is_malformed_on_both_paths_and_not_retried(tmp_path, index, stream):
    row, calls = _row(tmp_path, index, stream)
    assert [row["status"], row["error_type"], calls] == ["error", "MalformedResponse", 1], \
        (row["error_type"], row["error_message"], calls)
    how = "streamed" if stream else "answered with"
    assert f"the endpoint {how} a choice whose index is not a whole number ≥ 0: " in row["error_message"]


def test_a_bad_index_after_good_chunks_is_malformed_and_keeps_what_came(tmp_path):
    events = [_chunk({"content": "hello "}, 0), _chunk({"content": "world"}, "0"), _chunk({}, 0, "stop")]
    with FakeServer({"odd": ModelSpec(raw_events=events)}) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite", retries=2) as lab:
        row = lab.compare("Hi", models=["odd"], stream=True, cache=False).df.iloc[0]
        calls = sum(1 for r in srv.requests if r.path.endswith("/chat/completions"))
    assert [row["status"], row["error_type"], calls] == ["error", "MalformedResponse", 1]
    assert '"0"' in row["error_message"]


def test_another_choices_chunks_are_still_skipped_and_a_bad_index_there_is_malformed(tmp_path):
    other = [_chunk({"content": "A"}, 0), _chunk({"content": "x"}, 1), _chunk({}, 0, "stop")]
    row, _ = _row_of(tmp_path, other)
    assert [row["status"], row["response_text"]] == ["ok", "A"]
    row, _ = _row_of(tmp_path, [_chunk({"content": "A"}, 0), _chunk({"content": "x"}, "1"), _chunk({}, 0, "stop")])
    assert row["error_type"] == "MalformedResponse"


def _row_of(tmp_path, events):
    with FakeServer({"odd": ModelSpec(raw_events=events)}) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite", retries=0) as lab:
        return lab.compare("Hi", models=["odd"], stream=True, cache=False).df.iloc[0], srv


# --------------------------------------------------------------------------- one index rule for tool calls too

def _tool_chunk(index) -> dict:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
    if index != "ABSENT":
        call["index"] = index
    return _chunk({"tool_calls": [call]}, 0)


@pytest.mark.parametrize("index", READ[:1] + READ[2:], ids=repr)
def test_a_tool_call_index_is_read_by_the_choice_index_rule(tmp_path, index):
    # The same whole-number reader as a choice's index (_index_number): 0.0 is 0 for both.
    row, _ = _row_of(tmp_path, [_tool_chunk(index), _chunk({}, 0, "tool_calls")])
    assert row["status"] == "ok", row["error_message"]
    assert [(c["name"], json.loads(c["arguments"])) for c in json.loads(row["tool_calls"])] == [("f", {"x": 1})]


@pytest.mark.parametrize("index", REFUSED, ids=repr)
def test_a_tool_call_index_that_is_not_a_whole_number_is_malformed(tmp_path, index):
    row, _ = _row_of(tmp_path, [_tool_chunk(index), _chunk({}, 0, "tool_calls")])
    assert row["error_type"] == "MalformedResponse"
    assert "index that is not a whole number ≥ 0" in row["error_message"]
