"""One rule for an answer's content and body, streamed or not (F14).

``engine/_call._content`` reads a string, nothing, or a list of text parts (joined) the same for a
plain body and for a stream's deltas; a list holding anything else (an image part, bare strings)
is MalformedResponse on both paths (issue 21 #10: not passed off as the model's words). A UTF-8
byte order mark before a plain JSON body is read past, as a stream's first line is. Real
endpoints (tests/fakeserver.py), no mocked SDK."""
from __future__ import annotations

import json

import pytest
from fakeserver import ModelSpec

from llmlab import Lab

PARTS = {
    "text parts": ([{"type": "text", "text": "hi"}, {"type": "text", "text": " there"}], "hi there"),
    "text and image": ([{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "x"}}], None),
    "bare strings": (["a", "b"], None),
}


def _body(content) -> dict:
    return {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}


def _chunk(content) -> dict:
    return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}]}


def _finish() -> dict:
    return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}


@pytest.mark.parametrize("case", list(PARTS))
def test_content_parts_are_the_same_answer_streamed_or_not(serve, tmp_path, case):
    content, text = PARTS[case]
    plain = serve({"m": ModelSpec(raw_events=[_body(content)])})
    streamed = serve({"m": ModelSpec(raw_events=[_chunk(content), _finish()])})
    rows = {}
    for stream, srv in ((False, plain), (True, streamed)):
        with Lab(base_url=srv.base_url, db=tmp_path / f"{stream}.sqlite", retries=0) as lab:
            rows[stream] = lab.compare("hi", models=["m"], stream=stream).df.iloc[0]
    for row in rows.values():
        if text is None:
            assert [row["status"], row["error_type"]] == ["error", "MalformedResponse"]
        else:
            assert row["status"] == "ok" and row["response_text"] == text, (row["status"], row["error_message"])


def test_a_bom_before_a_plain_body_is_read_past(serve, tmp_path):
    srv = serve({"m": ModelSpec(byte_events=[b"\xef\xbb\xbf" + json.dumps(_body("fine")).encode()])})
    with Lab(base_url=srv.base_url, db=tmp_path / "r.sqlite", retries=0) as lab:
        row = lab.compare("hi", models=["m"], stream=False).df.iloc[0]
    assert row["status"] == "ok" and row["response_text"] == "fine"


@pytest.mark.parametrize("content", [5, True, {"a": 1}, [1, 2], [{"type": "text", "text": 5}], [{"text": "x"}]],
                         ids=repr)
def test_content_that_is_not_text_is_still_malformed(serve, tmp_path, content):
    srv = serve({"m": ModelSpec(raw_events=[_body(content)])})
    with Lab(base_url=srv.base_url, db=tmp_path / "r.sqlite", retries=0) as lab:
        row = lab.compare("hi", models=["m"], stream=False).df.iloc[0]
    assert row["status"] == "error" and row["error_type"] == "MalformedResponse"
