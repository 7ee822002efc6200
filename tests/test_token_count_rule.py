"""A usage token count is a whole number ≥ 0, by the one rule a body's indexes follow
(engine/_call._index_number, attack a7 W6): ``3.0`` is 3 tokens; ``2.5``, ``-1``, ``"3"``, ``true``
are no count — unknown, with a note saying what was sent, and counted locally as a missing count
is (``tokens_estimated``), never 2.5 tokens priced.
Real servers on 127.0.0.1, the real SDK."""
from __future__ import annotations

import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import Lab


def _body(completion_tokens) -> dict:
    return {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello world"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": completion_tokens, "total_tokens": 5}}


def _row(tmp_path, completion_tokens):
    with FakeServer({"odd": ModelSpec(raw_events=[_body(completion_tokens)])}) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite", retries=0) as lab:
        return lab.compare("Hi", models=["odd"], stream=False, cache=False).df.iloc[0]


@pytest.mark.parametrize("sent", [0, 2, 2.0, 7.0, 10**12])
def test_a_whole_count_is_read(tmp_path, sent):
    row = _row(tmp_path, sent)
    assert row["status"] == "ok" and row["completion_tokens"] == sent and not row["tokens_estimated"]


@pytest.mark.parametrize("sent", [2.5, 0.1, -1, -2.0, "3", True, 10**15, 1e300])
def test_a_count_that_is_not_whole_is_unknown_and_said(tmp_path, sent):
    row = _row(tmp_path, sent)
    assert row["status"] == "ok" and row["response_text"] == "hello world"
    assert row["tokens_estimated"] and row["completion_tokens"] == 2   # "hello world", counted here
    assert "usage.completion_tokens was" in row["error_message"] and "not a token count" in row["error_message"]
