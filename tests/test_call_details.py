"""Modern calls measured truly: reasoning, cached prompt tokens, tool calls, conversations — read
from the forms gateways send them, through the real SDK, against the test server."""
from __future__ import annotations

import json
import math
import sqlite3

import pandas as pd
import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import Lab
from llmlab.base._pricing import Price
from llmlab.store._open import open_store
from llmlab.store._schema import MIGRATIONS, Dialect

PRICES = {  # USD per token, round numbers so expected costs are exact
    "cheap": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, "cache_read_input_token_cost": 1e-7,
              "cache_creation_input_token_cost": 1.25e-6},
}


def _lab(srv: FakeServer, tmp_path, **kw) -> Lab:
    return Lab(base_url=srv.base_url, db=tmp_path / "runs.sqlite", retries=0, **kw)


def _row(lab: Lab, model: str, prompt="Hi", **kw):
    return lab.compare(prompt, models=[model], cache=False, **kw).df.iloc[0]


# -- reasoning ------------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["reasoning_content", "reasoning", "openrouter", "both"])
@pytest.mark.parametrize("stream", [True, False])
def test_reasoning_text_and_tokens_in_every_gateway_form(tmp_path, field, stream):
    spec = ModelSpec(text="the answer", reasoning="first I think hard", reasoning_field=field)
    with FakeServer({"thinker": spec}) as srv, _lab(srv, tmp_path) as lab:
        row = _row(lab, "thinker", stream=stream)
    assert row["status"] == "ok" and row["response_text"] == "the answer"
    assert row["reasoning_text"] == "first I think hard"  # once, even when sent under two names
    assert row["reasoning_tokens"] == 4 and row["completion_tokens"] == 6  # reasoning is part of the output


def test_ttft_splits_into_first_reasoning_and_first_answer_token(tmp_path):
    spec = ModelSpec(text="four", reasoning="two plus two", delay_s=0.1, token_delay_s=0.06)
    with FakeServer({"thinker": spec, "plain": ModelSpec(text="x y", delay_s=0.05)}) as srv, \
            _lab(srv, tmp_path) as lab:
        row, plain = _row(lab, "thinker"), _row(lab, "plain")
    assert row["ttft_s"] == row["ttft_reasoning_s"]
    assert 0.095 <= row["ttft_reasoning_s"] <= 0.1 + 1.0  # the server's 0.1 s; a loaded machine sees it late
    # three reasoning deltas 60 ms apart, then the answer: sent no earlier than 0.1 + 3 x 0.06
    assert row["ttft_answer_s"] >= 0.275 and row["ttft_answer_s"] > row["ttft_reasoning_s"]
    assert plain["ttft_s"] == plain["ttft_answer_s"] and math.isnan(plain["ttft_reasoning_s"])


def test_reasoning_deltas_without_content_start_no_clock_and_a_reasoning_only_answer_is_kept(tmp_path):
    empty = [{"choices": [{"delta": {"reasoning_content": None, "content": None}}]},
             {"choices": [{"delta": {"reasoning": "", "reasoning_details": []}}]},
             {"choices": [{"delta": {"reasoning_details": [{"type": "reasoning.encrypted", "data": "x"}]}}]}]
    late = ModelSpec(raw_events=[*empty, {"choices": [{"delta": {"content": "hi"}}]},
                                 {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}])
    # a reasoning model whose whole budget went on reasoning: an ok row, empty answer, reasoning kept
    spent = ModelSpec(text="never said", reasoning="a b c d e f")
    with FakeServer({"late": late, "spent": spent}) as srv, _lab(srv, tmp_path) as lab:
        row = _row(lab, "late")
        cut = _row(lab, "spent", max_tokens=4)
    assert row["response_text"] == "hi" and row["reasoning_text"] == ""
    assert math.isnan(row["ttft_reasoning_s"]) and row["ttft_s"] == row["ttft_answer_s"]
    assert cut["status"] == "ok" and cut["finish_reason"] == "length"
    assert cut["response_text"] == "" and cut["reasoning_text"] == " a b c d"[1:]
    assert cut["reasoning_tokens"] == 4 and math.isnan(cut["ttft_answer_s"])


def test_reasoning_counted_apart_from_completion_tokens_is_added_once(tmp_path):
    spec = ModelSpec(text="one two", reasoning="r1 r2 r3", reasoning_apart=True)
    with FakeServer({"gemini-like": spec}) as srv, _lab(srv, tmp_path, prices={"gemini-like": PRICES["cheap"]}) as lab:
        row = _row(lab, "gemini-like", prompt="a b c")
    assert row["reasoning_tokens"] == 3 and row["completion_tokens"] == 5
    assert "apart from completion_tokens" in row["error_message"] and row["status"] == "ok"
    assert row["cost_usd"] == pytest.approx(3 * 1e-6 + 5 * 2e-6)


def test_reasoning_effort_is_sent_and_recorded_as_each_model_got_it(tmp_path):
    with FakeServer({"a": ModelSpec(), "b": ModelSpec(), "c": ModelSpec()}) as srv, _lab(srv, tmp_path) as lab:
        df = lab.compare("Hi", models=["a", "b"], reasoning_effort="high", cache=False,
                         model_params={"b": {"reasoning_effort": "low"}}).df
        router = _row(lab, "c", extra_body={"reasoning": {"effort": "minimal"}})
        none = _row(lab, "c")
    assert list(df["requested_model"]) == ["a", "b"] and list(df["reasoning_effort"]) == ["high", "low"]
    sent = {r.body["model"]: r.body["reasoning_effort"] for r in srv.requests[:2]}  # arrival order is not promised
    assert sent == {"a": "high", "b": "low"}
    assert router["reasoning_effort"] == "minimal" and pd.isna(none["reasoning_effort"])


def test_cost_counts_reasoning_tokens_as_output(tmp_path):
    with FakeServer({"cheap": ModelSpec(text="x y", reasoning="a b c d e f g h")}) as srv, \
            _lab(srv, tmp_path, prices=PRICES) as lab:
        row = _row(lab, "cheap", prompt="p q")
    assert row["completion_tokens"] == 10 and row["reasoning_tokens"] == 8
    assert row["cost_usd"] == pytest.approx(2 * 1e-6 + 10 * 2e-6)


def test_reasoning_tokens_unknown_when_not_reported_and_counted_locally_when_text_came(tmp_path):
    with FakeServer({"bare": ModelSpec(usage_details=False), "local": ModelSpec(usage=False, reasoning="think")}) \
            as srv, _lab(srv, tmp_path) as lab:
        bare, local = _row(lab, "bare"), _row(lab, "local")
    assert math.isnan(bare["reasoning_tokens"]) and bare["cached_tokens"] == 0
    assert local["tokens_estimated"] and local["reasoning_tokens"] == 1


# -- cached prompt tokens -------------------------------------------------------------------

@pytest.mark.parametrize("style", ["openai", "litellm", "deepseek", "openrouter"])
def test_cached_and_cache_write_tokens_in_every_gateway_form_are_counted_once(tmp_path, style):
    spec = ModelSpec(text="ok", prompt_tokens=1000, completion_tokens=10, cached_tokens=600,
                     cache_creation_tokens=0 if style == "deepseek" else 300, cache_style=style)
    with FakeServer({"cheap": spec}) as srv, _lab(srv, tmp_path, prices=PRICES) as lab:
        res = lab.compare("Hi", models=["cheap"], cache=False)
    row = res.df.iloc[0]
    written = 0 if style == "deepseek" else 300
    assert row["cached_tokens"] == 600 and row["cache_creation_tokens"] == written
    expected = (1000 - 600 - written) * 1e-6 + 600 * 1e-7 + written * 1.25e-6 + 10 * 2e-6
    assert row["cost_usd"] == pytest.approx(expected)
    saved = 600 * (1e-6 - 1e-7) + written * (1e-6 - 1.25e-6)  # writes cost more than plain input
    assert row["prompt_cache_saved_usd"] == pytest.approx(saved)
    summary = res.summary().iloc[0]
    assert summary["cached_tokens"] == 600
    assert summary["saved_by_prompt_cache_usd"] == pytest.approx(saved)


def test_cached_tokens_without_a_cache_price_are_billed_as_input(tmp_path):
    prices = {"plain": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6}}
    with FakeServer({"plain": ModelSpec(prompt_tokens=100, completion_tokens=1, cached_tokens=50)}) as srv, \
            _lab(srv, tmp_path, prices=prices) as lab:
        row = _row(lab, "plain")
    assert row["cached_tokens"] == 50 and row["cost_usd"] == pytest.approx(101e-6)
    assert row["prompt_cache_saved_usd"] == 0


@pytest.mark.parametrize("patch, column, said", [
    ({"prompt_tokens_details": "lots"}, "cached_tokens", "usage.prompt_tokens_details was \"lots\""),
    ({"prompt_tokens_details": {"cached_tokens": "600"}}, "cached_tokens", "cached_tokens was \"600\""),
    ({"prompt_tokens_details": {"cached_tokens": 5000}}, "cached_tokens", "5000 cached of 1000"),
    ({"prompt_tokens_details": {"cached_tokens": -3}}, "cached_tokens", "was -3"),
    ({"prompt_tokens_details": None, "cache_read_input_tokens": [1]}, "cached_tokens",
     "cache_read_input_tokens was [1]"),
    ({"prompt_tokens_details": {"cache_creation_tokens": 2000}}, "cache_creation_tokens", "2000 cache-write"),
    ({"completion_tokens_details": 7}, "reasoning_tokens", "completion_tokens_details was 7"),
    ({"completion_tokens_details": {"reasoning_tokens": True}}, "reasoning_tokens", "reasoning_tokens was true"),
    ({"completion_tokens_details": {"reasoning_tokens": float("inf")}}, "reasoning_tokens", "Infinity"),
])
@pytest.mark.parametrize("stream", [True, False])
def test_usage_details_of_the_wrong_type_are_unknown_and_said_never_a_crash(tmp_path, patch, column, said, stream):
    spec = ModelSpec(text="fine", prompt_tokens=1000, completion_tokens=10, usage_patch=patch)
    with FakeServer({"cheap": spec}) as srv, _lab(srv, tmp_path, prices=PRICES) as lab:
        row = _row(lab, "cheap", stream=stream)
    assert row["status"] == "ok" and row["response_text"] == "fine"
    assert math.isnan(row[column]) and said in row["error_message"]
    assert row["error_message"].startswith("note: ")
    # an unknown cached count is billed as ordinary input: the cost stays known
    assert row["cost_usd"] == pytest.approx(1000 * 1e-6 + 10 * 2e-6)


def test_price_rule_treats_unknown_cache_counts_as_input_elementwise():
    import numpy as np

    price = Price(1e-6, 2e-6, cache_read_input_token_cost=1e-7)
    costs = price.cost(np.array([100.0, 100.0]), np.array([1.0, 1.0]), np.array([50.0, np.nan]))
    assert costs == pytest.approx([50e-6 + 5e-6 + 2e-6, 100e-6 + 2e-6])
    batch = Price(1e-6, 2e-6, input_cost_per_token_batches=5e-7)
    assert batch.cost(100, 10, batch=True) == pytest.approx(100 * 5e-7 + 10 * 2e-6)  # output: no batch price
    assert batch.has_batch_price() and not price.has_batch_price()


# -- tool calls -----------------------------------------------------------------------------

TWO_CALLS = [{"name": "get_weather", "arguments": '{"city": "Paris", "unit": "C"}'},
             {"name": "get_time", "arguments": '{"tz": "CET"}'}]


@pytest.mark.parametrize("stream", [True, False])
def test_parallel_tool_calls_get_their_own_column_with_streamed_fragments_joined(tmp_path, stream):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    with FakeServer({"tool": ModelSpec(tool_calls=TWO_CALLS, chunk_words=1)}) as srv, _lab(srv, tmp_path) as lab:
        row = _row(lab, "tool", stream=stream, tools=tools, tool_choice="auto")
    calls = json.loads(row["tool_calls"])
    assert [(c["name"], json.loads(c["arguments"])) for c in calls] == [
        ("get_weather", {"city": "Paris", "unit": "C"}), ("get_time", {"tz": "CET"})]
    assert all(c["id"].startswith("call_fake") for c in calls) and calls[0]["id"] != calls[1]["id"]
    assert row["finish_reason"] == "tool_calls" and json.loads(row["response_text"]) == calls
    assert srv.requests[0].body["tools"] == tools and srv.requests[0].body["tool_choice"] == "auto"


def test_tool_call_fragments_without_an_index_continue_the_last_call(tmp_path):
    first = {"id": "c1", "function": {"name": "f", "arguments": '{"a"'}}
    events = [{"choices": [{"delta": {"tool_calls": [first]}}]},
              {"choices": [{"delta": {"tool_calls": [{"function": {"arguments": ": 1}"}}]}}]},
              {"choices": [{"delta": {"tool_calls": [{"id": "c2", "function": {"name": "g", "arguments": "{}"}}]}}]},
              {"choices": [{"delta": {"tool_calls": [{"id": "c2", "function": {"name": "g"}}]}}]},
              {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}]
    with FakeServer({"lax": ModelSpec(raw_events=events)}) as srv, _lab(srv, tmp_path) as lab:
        row = _row(lab, "lax")
    assert row["status"] == "ok", row["error_message"]
    assert json.loads(row["tool_calls"]) == [{"id": "c1", "name": "f", "arguments": '{"a": 1}'},
                                             {"id": "c2", "name": "g", "arguments": "{}"}]


def _fragments(*calls: tuple) -> list[dict]:
    """One chunk per (index, id, name, arguments) fragment, then the finish (None: left out)."""
    def fragment(index, call_id, name, arguments):
        fn = {k: v for k, v in (("name", name), ("arguments", arguments)) if v is not None}
        return {k: v for k, v in (("index", index), ("id", call_id), ("function", fn)) if v is not None}
    return [*({"choices": [{"delta": {"tool_calls": [fragment(*c)]}}]} for c in calls),
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}]


# Servers that number every parallel call 0 (a new id and name at a used index is the next call,
# which that index's later fragments continue), in one piece or many, mixed with real indexes.
SAME_INDEX = {
    "whole": ([(0, "c1", "f", '{"a": 1}'), (0, "c2", "g", "{}")], [("c1", "f", '{"a": 1}'), ("c2", "g", "{}")]),
    "in-pieces": ([(0, "c1", "f", '{"a"'), (0, None, None, ": 1}"), (0, "c2", "g", "{"), (0, None, None, "}")],
                  [("c1", "f", '{"a": 1}'), ("c2", "g", "{}")]),
    "three": ([(0, "c1", "f", "{}"), (0, "c2", "g", ""), (0, "c2", None, "[]"), (0, "c3", "h", "1")],
              [("c1", "f", "{}"), ("c2", "g", "[]"), ("c3", "h", "1")]),
    "mixed-with-real-indexes": ([(0, "c1", "f", "{"), (1, "c2", "g", "{}"), (0, None, None, "}"),
                                 (0, "c3", "h", "["), (1, None, None, ""), (0, None, None, "]")],
                                [("c1", "f", "{}"), ("c2", "g", "{}"), ("c3", "h", "[]")]),
    "id-repeated-each-fragment": ([(0, "c1", "f", "{"), (0, "c1", "f", "}"), (0, "c2", "g", "["), (0, "c2", "g", "]")],
                                  [("c1", "f", "{}"), ("c2", "g", "[]")]),
}


@pytest.mark.parametrize("name", sorted(SAME_INDEX))
def test_parallel_calls_all_numbered_zero_are_kept_apart(tmp_path, name):
    sent, kept = SAME_INDEX[name]
    message = {"role": "assistant", "content": None, "tool_calls": [
        {"index": 0, "id": c, "type": "function", "function": {"name": n, "arguments": a}}
        for _, c, n, a in sent if n is not None]}
    plain = {"choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}]}
    with FakeServer({"streamed": ModelSpec(raw_events=_fragments(*sent)), "plain": ModelSpec(raw_events=[plain])}) \
            as srv, _lab(srv, tmp_path) as lab:
        rows = {m: _row(lab, m, stream=m == "streamed") for m in ("streamed", "plain")}
    got = json.loads(rows["streamed"]["tool_calls"])
    assert rows["streamed"]["status"] == "ok", rows["streamed"]["error_message"]
    assert [(c["id"], c["name"], c["arguments"]) for c in got] == kept
    if name == "whole":  # a whole answer's calls all given index 0
        assert [c["id"] for c in json.loads(rows["plain"]["tool_calls"])] == ["c1", "c2"]


@pytest.mark.parametrize("sent, said", [
    ([(0, "c1", "f", "{}"), (0, "c2", None, "{}")], "changes the id of call 0 from 'c1'"),  # a new id alone
    ([(0, "c1", "f", "{}"), (0, None, "g", "{}")], "renames call 0 from 'f'"),  # a new name alone
    ([(0, "c1", "f", "{}"), (0, "c2", "g", ""), (0, None, "h", "")], "renames call 1 from 'g'"),
])
def test_a_fragment_that_changes_a_call_without_starting_one_is_still_malformed(tmp_path, sent, said):
    with FakeServer({"odd": ModelSpec(raw_events=_fragments(*sent))}) as srv, _lab(srv, tmp_path) as lab:
        row = _row(lab, "odd")
    assert row["status"] == "error" and row["error_type"] == "MalformedResponse" and said in row["error_message"]


def test_a_malformed_fragment_is_an_error_row_that_keeps_what_came(tmp_path):
    events = [{"choices": [{"delta": {"content": "Let me check. "}}]},
              {"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f"}}]}}]},
              {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": {"a": 1}}}]}}]},
              {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
              {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 9}}]
    with FakeServer({"bad": ModelSpec(raw_events=events)}) as srv, _lab(srv, tmp_path, prices=PRICES) as lab:
        res = lab.compare("Hi", models=["bad"], cache=True)
        again = lab.compare("Hi", models=["bad"], cache=True)
    row = res.df.iloc[0]
    assert row["status"] == "error" and row["error_type"] == "MalformedResponse"
    assert "arguments that are not a string" in row["error_message"] and '{"a": 1}' in row["error_message"]
    assert row["response_text"] == "Let me check. " and json.loads(row["tool_calls"])[0]["name"] == "f"
    assert row["completion_tokens"] == 9  # billed tokens are kept, counted once
    assert not again.df.iloc[0]["cached"]  # an error is never replayed from the cache


def test_tools_and_response_format_reach_the_body_from_every_front_end(tmp_path):
    from llmlab.notebook._magic_options import parse_options

    schema = {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}, "strict": True}}
    tools = [{"type": "function", "function": {"name": "f"}}]
    opts = parse_options(f"model=m response_format='{json.dumps(schema)}' tools='{json.dumps(tools)}' "
                         "tool_choice=required parallel_tool_calls=false")
    assert opts.options.request_body(64) == {"max_tokens": 64, "response_format": schema, "tools": tools,
                                             "tool_choice": "required", "parallel_tool_calls": False}


# -- conversations --------------------------------------------------------------------------

def test_a_conversation_is_stored_with_its_hash_turns_and_last_user_turn(tmp_path):
    chat = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4"}, {"role": "user", "content": "And times 3?"}]
    with FakeServer({"a": ModelSpec(), "b": ModelSpec()}) as srv, _lab(srv, tmp_path) as lab:
        df = lab.compare(chat, models=["a", "b"], cache=False).df
        other = lab.compare(chat[:2], models=["a"], cache=False).df.iloc[0]
    assert list(df["prompt"]) == ["And times 3?"] * 2 and list(df["turns"]) == [2, 2]
    assert df["conversation_hash"].nunique() == 1 and other["conversation_hash"] != df["conversation_hash"][0]
    assert json.loads(df["messages"][0]) == chat and other["turns"] == 1
    assert srv.requests[0].body["messages"] == chat


def test_a_cache_hit_replays_reasoning_and_tool_calls(tmp_path):
    with FakeServer({"thinker": ModelSpec(reasoning="hmm", tool_calls=TWO_CALLS)}) as srv, _lab(srv, tmp_path) as lab:
        first = lab.compare("Hi", models=["thinker"]).df.iloc[0]
        hit = lab.compare("Hi", models=["thinker"]).df.iloc[0]
    assert hit["cached"] and hit["cost_usd"] == 0 and hit["prompt_cache_saved_usd"] == 0
    for column in ("reasoning_text", "tool_calls", "reasoning_tokens", "ttft_reasoning_s", "ttft_answer_s"):
        assert hit[column] == first[column], column


# -- the log --------------------------------------------------------------------------------

def test_a_log_written_before_the_new_columns_is_migrated_in_place(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    dialect = Dialect(real="REAL", integer="INTEGER", id_column="INTEGER PRIMARY KEY AUTOINCREMENT")
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    for migration in MIGRATIONS[:5]:
        for statement in migration(dialect):
            db.execute(statement)
        db.execute("INSERT INTO _migrations VALUES (?, 'then')", (migration.__name__,))
    db.execute("INSERT INTO runs (run_id, request_id, prompt_id, requested_model, prompt, messages, params, stream, "
               "endpoint, status, response_text, cached, tokens_estimated, repeat, attempt, seq) VALUES "
               "('r', 'q', 'p', 'm', 'hi', '[]', '{}', 1, 'http://x', 'ok', 'old answer', 0, 0, 0, 1, 0)")
    db.commit()
    db.close()
    path.chmod(0o600)  # as llmlab made it: a log other users can read is refused
    open_store(str(path)).close()
    with Lab(db=path) as lab:
        row = lab.runs().iloc[0]
    assert row["response_text"] == "old answer" and row["turns"] == 1
    assert math.isnan(row["reasoning_tokens"]) and pd.isna(row["tool_calls"]) and pd.isna(row["batch_id"])
