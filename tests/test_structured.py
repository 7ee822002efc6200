"""Tool calls and structured output end to end: sent through every front end, recorded in their
own column, checked by scoring.tool_call / scoring.json_schema with a reason on failure; and the
views that show reasoning apart from the answer."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import InputError, Lab, charts, scoring
from llmlab.notebook._board import Board, board_html, board_text, metrics_line

WEATHER = {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["C", "F"]}},
           "required": ["city"], "additionalProperties": False}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}]
FORMAT = {"type": "json_schema", "json_schema": {"name": "weather", "schema": WEATHER, "strict": True}}


@pytest.fixture
def server():
    models = {
        "good-tool": ModelSpec(tool_call={"name": "get_weather", "arguments": '{"city": "Paris", "unit": "C"}'}),
        "bad-args": ModelSpec(tool_call={"name": "get_weather", "arguments": '{"city": 42}'}),
        "broken-args": ModelSpec(tool_call={"name": "get_weather", "arguments": '{"city": "Par'}),
        "other-tool": ModelSpec(tool_call={"name": "get_time", "arguments": "{}"}),
        "talker": ModelSpec(text="It is sunny in Paris."),
        "json-good": ModelSpec(chunks=['```json\n{"city": ', '"Oslo"}\n```']),
        "json-bad": ModelSpec(chunks=['{"city": "Oslo", "unit": "K"}']),
        "thinker": ModelSpec(text="4", reasoning="two and two <b>make</b> four", delay_s=0.02, token_delay_s=0.02),
    }
    with FakeServer(models) as srv:
        yield srv


@pytest.fixture
def lab(server, tmp_path):
    with Lab(base_url=server.base_url, db=tmp_path / "runs.sqlite", retries=0) as lab:
        yield lab


def test_tool_call_scorer_reads_the_tool_calls_column_and_the_declared_parameters(lab, server):
    models = ["good-tool", "bad-args", "broken-args", "other-tool", "talker"]
    df = lab.compare("Weather in Paris?", models=models, tools=TOOLS, tool_choice="auto").df
    assert all(r.body["tools"] == TOOLS and r.body["tool_choice"] == "auto" for r in server.requests)
    scored = scoring.score(df, scoring.tool_call("get_weather")).set_index("requested_model")
    assert scored.loc["good-tool", "score"] == 1
    assert scored.loc["good-tool", "score_reason"] == "called get_weather (checked against its schema)"
    assert scored.loc["bad-args", "score"] == 0
    assert "$.city: 42 is not of type 'string'" in scored.loc["bad-args", "score_reason"]
    assert "arguments are invalid JSON" in scored.loc["broken-args", "score_reason"]
    assert scored.loc["other-tool", "score_reason"] == "no call to 'get_weather' (called 'get_time')"
    assert scored.loc["talker", "score_reason"].startswith("no tool call")
    values = scoring.score(df, scoring.tool_call("get_weather", arguments={"city": "Paris", "unit": "F"}))
    assert values.set_index("requested_model").loc["good-tool", "score"] == 0.5  # one of two values right


def test_tool_call_scorer_takes_the_expected_call_from_each_row(lab):
    rows = pd.DataFrame({"prompt": ["Paris?", "Time?"],
                         "expected": ['{"name": "get_weather", "arguments": {"city": "Paris"}}', "get_weather"]})
    df = lab.sweep(rows, models=["good-tool", "other-tool"], tools=TOOLS, progress=False).df
    scored = scoring.score(df, scoring.tool_call())
    assert list(scored["score"]) == [1.0, 0.0, 1.0, 0.0]
    assert scoring.tool_call().uses_expected and not scoring.tool_call("f").uses_expected


def test_json_schema_scorer_uses_the_schema_the_request_sent_or_the_one_given(lab, server):
    df = lab.compare("Weather as JSON", models=["json-good", "json-bad", "talker"], response_format=FORMAT).df
    assert server.requests[0].body["response_format"] == FORMAT
    scored = scoring.score(df, scoring.json_schema()).set_index("requested_model")
    assert scored.loc["json-good", "score"] == 1 and scored.loc["json-good", "score_reason"] == "matches the schema"
    assert scored.loc["json-bad", "score"] == 0
    assert "$.unit: 'K' is not one of ['C', 'F']" in scored.loc["json-bad", "score_reason"]
    assert scored.loc["talker", "score_reason"].startswith("invalid JSON")
    given = scoring.score(df, scoring.json_schema({"type": "object", "required": ["country"]}))
    assert "'country' is a required property" in given.set_index("requested_model").loc["json-good", "score_reason"]
    plain = lab.compare("again", models=["json-good"]).df  # asked without a schema: nothing to check against
    assert scoring.score(plain, scoring.json_schema()).iloc[0]["score_reason"].startswith("no schema")


def test_schema_scorers_refuse_a_bad_schema_before_scoring_and_work_as_specs():
    with pytest.raises(InputError, match="not a valid JSON Schema"):
        scoring.json_schema({"type": "no-such-type"})
    with pytest.raises(InputError, match="must be a JSON Schema object"):
        scoring.tool_call("f", schema=["not", "a", "schema"])
    spec = scoring.from_spec({"kind": "json_schema", "schema": WEATHER})
    assert spec('{"city": "Rome"}') == 1 and spec('{"town": "Rome"}') == 0
    tool = scoring.from_spec({"kind": "tool_call", "name": "f"})
    assert tool('[{"id": "c", "name": "f", "arguments": "{}"}]') == 1 and tool("plain text") == 0


def test_views_show_reasoning_apart_and_tool_calls_as_calls(lab):
    board = Board(["thinker", "good-tool"])
    res = lab.compare("2+2?", models=["thinker", "good-tool"], on_event=board.apply)
    html, text = board_html(board.snapshot()), board_text(board.snapshot())
    assert "<details" in html and "reasoning · 5 tokens" in html
    assert "two and two &lt;b&gt;make&lt;/b&gt; four" in html and "<b>make" not in html  # escaped
    assert "[reasoning] two and two" in text
    assert '→ get_weather({"city": "Paris", "unit": "C"})' in text
    row = res.df.iloc[0].to_dict()
    line = metrics_line(row)
    assert f"answer from {row['ttft_answer_s']:.2f} s" in line and "(5 reasoning)" in line
    summary = res.summary().set_index("model")
    assert summary.loc["thinker", "reasoning_tokens"] == 5
    assert summary.loc["thinker", "ttft_answer_p50_s"] > summary.loc["thinker", "ttft_p50_s"]


def test_the_ttft_chart_marks_the_first_answer_token_after_reasoning(lab):
    df = lab.sweep(["a", "b", "c"], models=["thinker", "talker"], progress=False).df
    ax = charts.ttft(df).axes[0]
    diamonds = [line for line in ax.lines if line.get_marker() == "D"]
    assert len(diamonds) == 1 and len(diamonds[0].get_ydata()) == 3  # the thinker's three answers
    assert ax.get_legend() is not None
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["first answer token (after reasoning)"]


def test_a_sweep_takes_a_column_of_conversations(lab, server):
    chats = [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
              {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "How are you?"}],
             json.dumps([{"role": "user", "content": "One turn"}])]
    df = lab.sweep(pd.DataFrame({"messages": chats, "task": ["chat", "chat"]}), models=["talker"],
                   progress=False).df
    assert list(df["prompt"]) == ["How are you?", "One turn"] and list(df["turns"]) == [2, 1]
    # the sweep sends its rows concurrently: which request the server saw first is not promised
    assert chats[0] in [r.body["messages"] for r in server.requests]
    assert df["conversation_hash"].nunique() == 2


@pytest.mark.parametrize("messages, said", [
    ([{"role": "usr", "content": "Hi"}], "role 'usr' is not one of system, developer, user"),
    ([{"role": "user"}], "needs 'role' and 'content'"),
    ([{"role": "user", "content": None}], "a 'user' message has content None"),
    ([{"role": "system", "content": "s"}, {"role": "assistant", "content": None}], "'assistant' message has content"),
    ([{"role": "user", "content": 5}], r"content must be its text or a list of content parts.*not int '5'"),
    ([{"role": "user", "content": {"text": "Hi"}}], "not dict"),
    ([{"role": "user", "content": ["Hi"]}], "not list"),
    ([{"role": "user", "content": [{"text": "no type"}]}], "list of content parts"),
])
def test_bad_messages_are_refused_before_anything_is_sent(lab, server, messages, said):
    with pytest.raises(InputError, match=said):
        lab.compare(messages, models=["talker"])
    with pytest.raises(InputError, match=said):
        lab.sweep(pd.DataFrame({"messages": [messages]}), models=["talker"])
    assert server.requests == []


def test_the_last_user_turn_of_content_parts_is_shown_as_its_text(lab, server):
    parts = [{"type": "text", "text": "<b>What is</b>"}, {"type": "image_url", "image_url": {"url": "data:,"}},
             {"type": "text", "text": "this?"}]
    chat = [{"role": "user", "content": "first"}, {"role": "assistant", "content": [{"type": "text", "text": "a"}]},
            {"role": "user", "content": parts}]
    row = lab.compare(chat, models=["talker"]).df.iloc[0]
    assert row["status"] == "ok" and row["prompt"] == "<b>What is</b> [image_url] this?" and row["turns"] == 2
    assert server.requests[0].body["messages"] == chat  # sent as given
    html = lab.compare(chat, models=["talker"])._repr_html_()
    assert "<b>What is</b>" not in html  # model-facing text is escaped wherever it is shown


def test_a_tool_calling_turn_may_have_no_content(lab, server):
    chat = [{"role": "user", "content": "Paris?"},
            {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                                  "function": {"name": "get_weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]
    row = lab.compare(chat, models=["talker"]).df.iloc[0]
    assert row["status"] == "ok" and row["prompt"] == "Paris?" and row["turns"] == 1
    assert server.requests[0].body["messages"] == chat


@pytest.mark.parametrize("stream", [True, False])
def test_a_conversation_continues_from_a_tool_call_with_the_calls_in_the_assistant_turn(lab, server, stream):
    first = lab.compare("Paris?", models=["good-tool"], stream=stream, tools=TOOLS)
    turns = first.conversation("good-tool")
    call = json.loads(first.df.iloc[0]["tool_calls"])[0]
    assert turns[-1] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": call["id"], "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "C"}'}}]}
    answered = [*turns, {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}]
    follow = lab.compare(answered, models=["talker"], tools=TOOLS)
    assert follow.df.iloc[0]["status"] == "ok" and server.requests[-1].body["messages"] == answered


def test_result_conversation_continues_from_an_answer(lab):
    first = lab.compare("Hi", models=["talker", "thinker"])
    assert first.conversation() == [{"role": "user", "content": "Hi"},
                                    {"role": "assistant", "content": "It is sunny in Paris."}]
    assert first.conversation("thinker")[-1] == {"role": "assistant", "content": "4"}
    follow = lab.compare([*first.conversation(), {"role": "user", "content": "And tomorrow?"}], models=["talker"])
    assert follow.df.iloc[0]["turns"] == 2 and follow.df.iloc[0]["prompt"] == "And tomorrow?"
    with pytest.raises(InputError, match="no ok answer"):
        lab.compare("x", models=["bad-args"]).conversation("nope")
    assert math.isnan(follow.df.iloc[0]["reasoning_tokens"]) or follow.df.iloc[0]["reasoning_tokens"] == 0
