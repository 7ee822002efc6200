"""A stream whose answer finished (choice 0's finish_reason came) and which then breaks — the
connection dropped, LiteLLM's proxy's SSE error event, no ``[DONE]`` before the total deadline — is
a whole answer: an ok row with a note, cached, sent once. A break *before* the finish stays a
StreamCut (partial text kept, retried). Real fake servers on 127.0.0.1 (tests/fakeserver.py)."""
from __future__ import annotations

import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import Lab, RetryPolicy

TEXT = "one two three four five"
ENDINGS = ["cut", "cut_after_usage", "error_event", "error_event_before_usage", "hang"]
# LiteLLM's error event objects: its connection error (default), a client error code, no code, odd code types
EVENTS = [None, {"message": "litellm.BadRequestError: blocked", "type": None, "param": None, "code": "400"},
          {"message": "upstream went away"}, {"message": "x", "code": 429}, {"message": "x", "code": ["500"]}]


def _chat(srv: FakeServer) -> list:
    return [r for r in srv.requests if r.path == "/v1/chat/completions"]


def _run(tmp_path, spec: ModelSpec, *, cache: bool = True, repeat: int = 1, stream: bool = True, **kw):
    with FakeServer({"m": spec}) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite", quiet=True,
                retry_policy=RetryPolicy(retries=3, base_s=0.01, seed=0), **kw) as lab:
        frames = [lab.compare("hi", models=["m"], cache=cache, stream=stream).df for _ in range(repeat)]
        return frames, len(_chat(srv))


@pytest.mark.parametrize("tools", [False, True])
@pytest.mark.parametrize("ending", ENDINGS)
def test_a_break_after_the_finish_is_an_ok_row_with_a_note_sent_once_and_cached(tmp_path, ending, tools):
    spec = ModelSpec(text=TEXT, after_finish=ending,
                     tool_call={"name": "lookup", "arguments": '{"q": "x"}'} if tools else None)
    kw = {"timeout": 1.5} if ending == "hang" else {}
    (first, again), sent = _run(tmp_path, spec, repeat=2, **kw)
    assert sent == 1  # not retried, and the second compare is answered from the cache
    row = first.iloc[0]
    assert len(first) == 1 and row["status"] == "ok", row["error_message"]
    assert row["finish_reason"] == ("tool_calls" if tools else "stop")
    if tools:
        assert '"lookup"' in row["tool_calls"]
    else:
        assert row["response_text"] == TEXT
    note = row["error_message"]
    assert note.startswith("note: ") and note.count("after the answer finished") == 1, note
    assert ("usage" in note) == (ending in ("cut", "error_event_before_usage", "hang")), note
    assert row["completion_tokens"] > 0  # reported (usage came) or counted (it did not)
    assert bool(again.iloc[0]["cached"]) and again.iloc[0]["response_text"] == row["response_text"]


@pytest.mark.parametrize("event", EVENTS, ids=range(len(EVENTS)))
def test_every_kind_of_error_event_after_the_finish_is_a_note_naming_it(tmp_path, event):
    (df,), sent = _run(tmp_path, ModelSpec(text=TEXT, after_finish="error_event", error_event=event), cache=False)
    row = df.iloc[0]
    assert sent == 1 and row["status"] == "ok" and row["response_text"] == TEXT
    assert "error event" in row["error_message"]
    message = (event or {}).get("message", "Connection error")
    assert str(message).split(":")[0] in row["error_message"]


def test_the_note_is_redacted(tmp_path, monkeypatch):
    key = "sk-proj-ZZZZyyyyXXXXwwwwVVVVuuuu1234"
    monkeypatch.setenv("LLMLAB_API_KEY", key)
    (df,), _ = _run(tmp_path, ModelSpec(text=TEXT, after_finish="error_event",
                                        error_event={"message": f"auth {key} dropped"}), cache=False)
    assert df.iloc[0]["status"] == "ok" and key not in df.iloc[0]["error_message"]


@pytest.mark.parametrize("cut", [1, 3])
def test_a_cut_before_the_finish_is_still_a_retried_stream_cut(tmp_path, cut):
    (df,), sent = _run(tmp_path, ModelSpec(text=TEXT, truncate_after=cut))
    assert sent == 4 and set(df["error_type"]) == {"StreamCut"} and set(df["status"]) == {"error"}
    assert set(df["response_text"]) == {" ".join(TEXT.split()[:cut])}  # the partial text kept
    assert not df["cached"].any()


def test_an_error_event_before_the_finish_is_still_a_stream_cut(tmp_path):
    (df,), sent = _run(tmp_path, ModelSpec(text=TEXT, error_event_after=2))
    assert sent == 4 and set(df["error_type"]) == {"StreamCut"}


def test_a_non_streamed_call_is_unchanged(tmp_path):
    (df,), sent = _run(tmp_path, ModelSpec(text=TEXT, after_finish="cut"), cache=False, stream=False)
    assert sent == 1 and df.iloc[0]["status"] == "ok"  # the knob only shapes streams
