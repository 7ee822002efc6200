"""What an answer is when an endpoint streams oddly (llmlab.engine._call): text after choice 0
finished is not part of it (a note says so), a second, different finish does not replace the
first, a message from a role other than the assistant's is a MalformedResponse, and a byte order
mark before a line is read past (the SSE spec skips one at the stream's start; the SDK does not)."""
from __future__ import annotations

import json

import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import Lab


def _chunk(delta: dict | None, finish=None, index: int = 0) -> dict:
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}


def _event(payload: dict) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _rows(tmp_path, spec: ModelSpec, stream: bool = True):
    with FakeServer({"odd": spec, "good": ModelSpec(text="fine")}) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite", retries=0) as lab:
        df = lab.compare("Hi", models=["odd", "good"], stream=stream, cache=False).df.set_index("requested_model")
    assert df.loc["good", ["status", "response_text"]].tolist() == ["ok", "fine"]  # the sibling is untouched
    return df.loc["odd"]


_CALL = {"tool_calls": [{"index": 0, "id": "x", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}
AFTER_FINISH = {
    "content": [_chunk({"content": "whole"}), _chunk({}, "stop"), _chunk({"content": " and more"})],
    "content in the finishing chunk, then more": [_chunk({"content": "whole"}, "stop"), _chunk({"content": "!"})],
    "many late chunks": [_chunk({"content": "whole"}), _chunk({}, "stop")] + [_chunk({"content": "x"})] * 50,
    "reasoning": [_chunk({"content": "whole"}), _chunk({}, "stop"), _chunk({"reasoning_content": "hmm"})],
    "refusal": [_chunk({"content": "whole"}), _chunk({}, "stop"), _chunk({"refusal": "no"})],
    "tool call": [_chunk({"content": "whole"}), _chunk({}, "stop"), _chunk(_CALL)],
    "late text with a usage chunk": [_chunk({"content": "whole"}), _chunk({}, "stop"), _chunk({"content": "z"}),
                                     {"id": "c", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}],
}


@pytest.mark.parametrize("name", sorted(AFTER_FINISH))
def test_what_a_stream_sends_after_the_answer_finished_is_not_part_of_it(tmp_path, name):
    row = _rows(tmp_path, ModelSpec(raw_events=AFTER_FINISH[name]))
    assert [row["status"], row["response_text"], row["finish_reason"]] == ["ok", "whole", "stop"], row["error_message"]
    assert row["error_message"].count("after it finished") == 1, row["error_message"]
    assert "and more" not in row["error_message"]  # the late text is not quoted
    assert not isinstance(row["reasoning_text"], str) or "hmm" not in row["reasoning_text"]
    assert not isinstance(row["refusal"], str) or row["refusal"] == ""
    assert not isinstance(row["tool_calls"], str)
    if name == "late text with a usage chunk":
        assert row["completion_tokens"] == 1  # a usage chunk after the finish is still read


def test_a_second_finish_does_not_replace_the_first(tmp_path):
    row = _rows(tmp_path, ModelSpec(raw_events=[_chunk({"content": "a"}, "stop"), _chunk({"content": "b"}, "length")]))
    assert [row["status"], row["response_text"], row["finish_reason"]] == ["ok", "a", "stop"]
    assert "finished the answer twice" in row["error_message"] and '"length"' in row["error_message"]
    assert row["error_message"].count("after it finished") == 1


def test_the_same_finish_sent_again_is_not_an_oddity(tmp_path):
    # gateways repeat the finish chunk (with usage): nothing to say
    events = [_chunk({"content": "a"}), _chunk({}, "stop"), _chunk({}, "stop"), _chunk({"content": ""}, "stop")]
    row = _rows(tmp_path, ModelSpec(raw_events=events))
    assert [row["status"], row["response_text"], row["finish_reason"]] == ["ok", "a", "stop"]
    assert not isinstance(row["error_message"], str), row["error_message"]


def test_another_choice_finishing_does_not_end_choice_0(tmp_path):
    events = [_chunk({"content": "A"}), _chunk({}, "length", index=1), _chunk({"content": "B"}), _chunk({}, "stop")]
    row = _rows(tmp_path, ModelSpec(raw_events=events))
    assert [row["status"], row["response_text"], row["finish_reason"]] == ["ok", "AB", "stop"]


ROLES = ["user", "system", "developer", "tool", "function", "User", 5, {"r": 1}, ["assistant"]]


@pytest.mark.parametrize("role", ROLES, ids=str)
@pytest.mark.parametrize("stream", [True, False])
def test_a_message_from_another_role_is_a_malformed_answer_not_the_models(tmp_path, role, stream):
    events = ([_chunk({"role": role, "content": "I am the user"}), _chunk({}, "stop")] if stream else
              [{"choices": [{"index": 0, "message": {"role": role, "content": "I am the user"},
                             "finish_reason": "stop"}]}])
    row = _rows(tmp_path, ModelSpec(raw_events=events), stream=stream)
    assert [row["status"], row["error_type"]] == ["error", "MalformedResponse"]
    assert "not the assistant's" in row["error_message"]


def test_a_role_changing_mid_stream_is_malformed_with_the_text_so_far_kept(tmp_path):
    events = [_chunk({"role": "assistant", "content": "mine "}), _chunk({"role": "user", "content": "yours"}),
              _chunk({}, "stop")]
    row = _rows(tmp_path, ModelSpec(raw_events=events))
    assert [row["status"], row["error_type"], row["response_text"]] == ["error", "MalformedResponse", "mine "]


@pytest.mark.parametrize("role", ["assistant", None, ""], ids=repr)
@pytest.mark.parametrize("stream", [True, False])
def test_the_assistant_role_or_none_is_an_answer(tmp_path, role, stream):
    events = ([_chunk({"role": role, "content": "hello"}), _chunk({}, "stop")] if stream else
              [{"choices": [{"index": 0, "message": {"role": role, "content": "hello"}, "finish_reason": "stop"}]}])
    row = _rows(tmp_path, ModelSpec(raw_events=events), stream=stream)
    assert [row["status"], row["response_text"]] == ["ok", "hello"], row["error_message"]


_BOM = "\ufeff".encode()
BOMS = {  # the stream's bytes after the fake's role chunk: each BOM is inside the stream
    "before a data line": [_BOM + _event(_chunk({"content": "bom"})), _event(_chunk({}, "stop"))],
    "split over two sends": [_BOM[:1], _BOM[1:] + _event(_chunk({"content": "bom"})), _event(_chunk({}, "stop"))],
    "before every line": [_BOM + _event(_chunk({"content": "b"})), _BOM + _event(_chunk({"content": "om"})),
                          _BOM + _event(_chunk({}, "stop"))],
}


@pytest.mark.parametrize("name", sorted(BOMS))
def test_a_byte_order_mark_inside_a_stream_does_not_lose_the_answer(tmp_path, name):
    row = _rows(tmp_path, ModelSpec(sse_bytes=BOMS[name]))
    assert [row["status"], row["response_text"]] == ["ok", "bom"]
    assert row["error_message"].count("byte order mark") == 1


@pytest.mark.parametrize("prefix", [_BOM + _event(_chunk({"content": "first "})),
                                    _BOM + _event(_chunk({"content": "first "})).replace(b"\n", b"\r\n")],
                         ids=["LF", "CRLF"])
def test_a_byte_order_mark_starting_the_stream_is_skipped_silently_as_sse_says(tmp_path, prefix):
    row = _rows(tmp_path, ModelSpec(text="hello there", sse_prefix=prefix))
    assert [row["status"], row["response_text"]] == ["ok", "first hello there"]
    assert not isinstance(row["error_message"], str), row["error_message"]
