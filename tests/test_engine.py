"""The core engine against a real HTTP test server, through the real openai SDK."""
from __future__ import annotations

import asyncio
import json
import math
import warnings

import pandas as pd
import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import EndpointError, InputError, Lab, PriceWarning
from llmlab.base._record import COLUMNS


@pytest.fixture
def server():
    models = {
        "fast": ModelSpec(text="alpha beta gamma delta", delay_s=0.0),
        "slow": ModelSpec(text="one two three four five", delay_s=0.25, token_delay_s=0.01),
        "nousage": ModelSpec(text="tokens counted locally here", usage=False),
        "gpt-5": ModelSpec(text="priced by the table", prompt_tokens=1000, completion_tokens=200),
        "router": ModelSpec(text="billed by the gateway", reported_cost=0.0123),
        "proxy": ModelSpec(text="billed by the proxy", cost_header=0.0456),
        "alias": ModelSpec(text="served elsewhere", served_model="alias-2025-01-01"),
        "thinker": ModelSpec(text="answer", reasoning="let me think", delay_s=0.0),
        "tool": ModelSpec(tool_call={"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}),
        "broken": ModelSpec(malformed=True),
    }
    with FakeServer(models) as srv:
        yield srv


@pytest.fixture
def lab(server, tmp_path):
    lab = Lab(base_url=server.base_url, db=tmp_path / "runs.sqlite", retries=0)
    yield lab
    lab.close()


def test_rows_follow_requested_order_and_schema(lab):
    res = lab.compare("Say hi", models=["slow", "fast", "alias"], cache=False)
    assert list(res.df["requested_model"]) == ["slow", "fast", "alias"]
    assert list(res.df.columns) == COLUMNS
    assert (res.df["status"] == "ok").all()
    assert res.df.loc[2, "served_model"] == "alias-2025-01-01"
    assert res.df.loc[0, "response_text"] == "one two three four five"
    assert res.df["started_at"].dt.tz is not None
    assert list(res.summary()["model"]) == ["slow", "fast", "alias"]


def test_ttft_matches_server_delay_and_non_stream_has_none(lab):
    res = lab.compare("Hi", models=["slow"], cache=False)
    row = res.df.iloc[0]
    # The server's times are lower bounds; a loaded 2-core machine sees them up to ~0.4 s late.
    assert 0.25 <= row["ttft_s"] <= 0.25 + 1.0
    assert row["latency_s"] >= 0.25 + 0.04 and row["latency_s"] > row["ttft_s"]  # four more chunks 10 ms apart
    # The speed spans the deltas, not the wait for the first one: (5-1) tokens over a window no
    # longer than latency - TTFT (~100 tokens/s on a quiet machine; measured speed is bench/'s).
    window = row["latency_s"] - row["ttft_s"]
    assert row["output_tokens_per_s"] >= (row["completion_tokens"] - 1) / window * (1 - 1e-9)
    plain = lab.compare("Hi", models=["slow"], cache=False, stream=False).df.iloc[0]
    assert math.isnan(plain["ttft_s"]) and plain["latency_s"] >= 0.25
    assert math.isnan(plain["output_tokens_per_s"])


def test_ttft_counts_reasoning_and_tool_call_deltas(lab):
    res = lab.compare("Weather?", models=["thinker", "tool"], cache=False)
    assert res.df["ttft_s"].notna().all()
    tool = res.df.iloc[1]
    assert tool["finish_reason"] == "tool_calls"
    assert json.loads(tool["response_text"])[0]["name"] == "get_weather"


def test_usage_reported_vs_estimated(lab, server):
    res = lab.compare("Count these tokens please", models=["fast", "nousage"], cache=False)
    fast, local = res.df.iloc[0], res.df.iloc[1]
    assert not fast["tokens_estimated"] and fast["completion_tokens"] == 4
    assert local["tokens_estimated"]
    # tiktoken cl100k (shipped offline) counts "tokens counted locally here" as 4 tokens
    assert local["completion_tokens"] == 4
    assert local["prompt_tokens"] > 4
    sent = server.requests_for("fast")[-1].body
    assert sent["stream_options"] == {"include_usage": True}


def test_each_cost_source(lab):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = lab.compare("Price me", models=["gpt-5", "router", "proxy", "fast"], cache=False)
        lab.compare("Price me again", models=["fast"], cache=False)
    df = res.df.set_index("requested_model")
    assert df.loc["gpt-5", "cost_source"] == "price_table"
    assert df.loc["gpt-5", "cost_usd"] == pytest.approx(1000 * 1.25e-6 + 200 * 1e-5)
    assert (df.loc["router", "cost_source"], df.loc["router", "cost_usd"]) == ("reported", 0.0123)
    assert (df.loc["proxy", "cost_source"], df.loc["proxy", "cost_usd"]) == ("reported", 0.0456)
    assert df.loc["fast", "cost_source"] == "unknown" and math.isnan(df.loc["fast", "cost_usd"])
    unknown = [w for w in caught if issubclass(w.category, PriceWarning)]
    assert len(unknown) == 1 and "'fast'" in str(unknown[0].message)
    assert math.isnan(res.summary().set_index("model").loc["fast", "cost_usd"])


def test_user_prices_override(server, tmp_path):
    lab = Lab(base_url=server.base_url, db=":memory:", prices={"fast": {"input_cost_per_token": 1e-6,
                                                                         "output_cost_per_token": 2e-6}})
    row = lab.compare("Hi", models=["fast"]).df.iloc[0]
    assert row["cost_source"] == "price_table"
    assert row["cost_usd"] == pytest.approx(row["prompt_tokens"] * 1e-6 + row["completion_tokens"] * 2e-6)
    lab.close()


def test_cache_hit_replays_without_calling(lab, server):
    first = lab.compare("Cache me", models=["slow", "fast"])
    calls = len(server.requests)
    again = lab.compare("Cache me", models=["slow", "fast"])
    assert len(server.requests) == calls
    assert again.df["cached"].all() and not first.df["cached"].any()
    assert list(again.df["latency_s"]) == list(first.df["latency_s"])
    assert list(again.df["cache_of"]) == list(first.df["id"])
    lab.compare("Cache me", models=["fast"], cache=False)
    assert len(server.requests) == calls + 1
    lab.compare("Cache me", models=["fast"], temperature=0.5)  # other parameters: a miss
    assert len(server.requests) == calls + 2


def test_errors_are_rows_and_never_cached(lab, server):
    res = lab.compare("Hi", models=["fast", "missing", "broken"])
    df = res.df.set_index("requested_model")
    assert df.loc["fast", "status"] == "ok"
    assert df.loc["missing", "error_type"] == "NotFoundError"
    assert "'missing'" in df.loc["missing", "error_message"]
    assert df.loc["broken", "error_type"] == "MalformedResponse"
    before = len(server.requests)
    lab.compare("Hi", models=["missing", "broken"])
    assert len(server.requests) == before + 2


def test_persistence_across_labs(server, tmp_path):
    db = tmp_path / "shared.sqlite"
    with Lab(base_url=server.base_url, db=db) as one:
        run = one.compare("Persist", models=["fast", "slow"]).run_id
    with Lab(base_url=server.base_url, db=db) as two:
        log = two.runs()
        assert list(log[log["run_id"] == run]["requested_model"]) == ["fast", "slow"] or \
            sorted(log[log["run_id"] == run]["requested_model"]) == ["fast", "slow"]
        assert len(two.runs(run_id=run)) == 2
        assert two.compare("Persist", models=["fast"]).df["cached"].all()
    assert (db.stat().st_mode & 0o777) == 0o600


def test_sweep_carries_columns(lab):
    prompts = pd.DataFrame({"prompt": ["What is 2+2?", "Name a colour."], "prompt_id": ["q1", "q2"],
                            "task": ["arithmetic", "open"], "expected": ["4", None]})
    res = lab.sweep(prompts, models=["fast", "slow"], progress=False)
    assert list(res.df["prompt_id"]) == ["q1", "q1", "q2", "q2"]
    assert list(res.df["requested_model"]) == ["fast", "slow", "fast", "slow"]
    assert list(res.df["task"]) == ["arithmetic", "arithmetic", "open", "open"]
    assert res.df["expected"].iloc[0] == "4" and pd.isna(res.df["expected"].iloc[3])
    listed = lab.sweep(["a", "b", "c"], models=["fast"], progress=False)
    assert listed.df["prompt_id"].is_unique and len(listed.df) == 3


def test_repeats_and_extra_params_are_sent_and_recorded(lab, server):
    res = lab.compare("Hi", models=["fast"], n=3, top_p=0.5, reasoning_effort="high", cache=False)
    assert len(res.df) == 3 and list(res.df["repeat"]) == [0, 1, 2]
    body = server.requests_for("fast")[-1].body
    assert body["top_p"] == 0.5 and body["reasoning_effort"] == "high" and body["max_tokens"] == 512
    params = json.loads(res.df.iloc[0]["params"])
    assert params == {"max_tokens": 512, "reasoning_effort": "high", "top_p": 0.5}


def test_max_tokens_always_sent(lab, server):
    lab.compare("Hi", models=["fast"], max_tokens=7, stream=False)
    assert server.requests_for("fast")[-1].body["max_tokens"] == 7


def test_sync_api_inside_running_loop(lab):
    async def notebook_cell():
        sync = lab.compare("From a running loop", models=["fast"], cache=False)
        awaited = await lab.acompare("From a running loop", models=["fast"], cache=False)
        swept = await lab.asweep(["x", "y"], models=["fast"], progress=False)
        return sync, awaited, swept

    sync, awaited, swept = asyncio.run(notebook_cell())
    assert sync.df["status"].eq("ok").all() and awaited.df["status"].eq("ok").all()
    assert len(swept.df) == 2


def test_one_model_failing_never_hides_others(lab):
    res = lab.compare("Hi", models=["missing", "fast"])
    assert list(res.df["status"]) == ["error", "ok"]


@pytest.mark.parametrize("call, message", [
    (lambda lab: lab.compare("   ", models=["fast"]), "prompt is empty"),
    (lambda lab: lab.compare("Hi", models=[]), "no models"),
    (lambda lab: lab.compare("Hi", models=["fast", "fast"]), "listed twice"),
    (lambda lab: lab.compare("Hi", models=["fast"], max_tokens=0), "max_tokens"),
    (lambda lab: lab.compare("Hi", models=["fast"], temperature="hot"), "temperature"),
    (lambda lab: lab.compare("Hi", models=["fast"], n=0), "n must"),
    (lambda lab: lab.compare("Hi", models=["fast"], model="x"), "unknown keyword 'model'. Did you mean 'models'"),
    (lambda lab: lab.compare("Hi", models=["fast"], extra_body={"model": "x"}), "'model' cannot be sent"),
    (lambda lab: lab.compare("Hi", models=["fast"], extra_body={"weird": object()}), "JSON"),
    (lambda lab: lab.sweep([], models=["fast"]), "no prompts"),
    (lambda lab: lab.sweep(pd.DataFrame({"text": ["a"]}), models=["fast"]), "'prompt'"),
    (lambda lab: lab.sweep(pd.DataFrame({"prompt": ["a", "b"], "prompt_id": ["x", "x"]}), models=["fast"]), "twice"),
    (lambda lab: lab.sweep(["a"], models=["fast"], resume="nope"), "no run"),
])
def test_bad_input_is_one_clear_error_and_records_nothing(lab, server, call, message):
    with pytest.raises(InputError, match=message) as info:
        call(lab)
    assert "\n" not in str(info.value)
    assert server.requests == [] and len(lab.runs()) == 0


def test_unreachable_endpoint_is_an_error_row(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lab = Lab(base_url=f"http://user:pw@127.0.0.1:{port}/v1", api_key_env="", db=":memory:", retries=0)
    row = lab.compare("Hi", models=["a"]).df.iloc[0]
    assert row["status"] == "error" and row["error_type"] == "APIConnectionError"
    # Not the SDK's bare "Connection error.": the endpoint (public form) and what to check.
    assert row["error_message"].startswith(f"cannot connect to http://127.0.0.1:{port}/v1 (")
    assert "server is running" in row["error_message"] and "LLMLAB_BASE_URL" in row["error_message"]
    assert "pw" not in row["error_message"] and "user" not in row["error_message"]
    with pytest.raises(EndpointError, match=rf"^cannot list models: cannot connect to http://127.0.0.1:{port}/v1 "):
        lab.list_models()
    lab.close()


def test_async_twins_return_same_shape(lab):
    res = asyncio.run(lab.acompare("Hi", models=["fast", "slow"], cache=False))
    assert list(res.df["requested_model"]) == ["fast", "slow"]


def test_async_twin_closes_its_client_with_the_call(server):
    """``asyncio.run(lab.acompare(...))`` closes its loop afterwards: the call's HTTP client (and
    its keep-alive connections) must not outlive it, or it is torn down later on a dead loop."""
    import time

    lab = Lab(base_url=server.base_url, db=":memory:")
    res = asyncio.run(lab.acompare("Hi", models=["fast", "slow"], cache=False))
    assert res.df["status"].eq("ok").all()
    deadline = time.monotonic() + 60
    while server._conns and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not server._conns, "keep-alive connections left open by a client bound to a closed loop"
    lab.compare("Hi", models=["fast"], cache=False)  # the Lab's own loop keeps its client for reuse
    assert len(server._conns) >= 1
    lab.close()


def test_stream_closed_cleanly_without_finish_is_an_error_and_not_cached(lab, server):
    server.set_model("halfway", ModelSpec(text="The answer is", no_finish=True))
    first = lab.compare("Hi", models=["halfway"]).df
    assert first["status"].eq("error").all() and first["error_type"].iloc[0] == "StreamCut"
    assert first["response_text"].iloc[-1] == "The answer is"
    again = lab.compare("Hi", models=["halfway"]).df
    assert not again["cached"].any()


def test_decode_speed_spans_reasoning_tokens_too(lab, server):
    server.set_model("reasoner", ModelSpec(text="short answer here", reasoning=" ".join(["think"] * 40),
                                           token_delay_s=0.01))
    row = lab.compare("Hi", models=["reasoner"], cache=False).df.iloc[0]
    # 43 generated tokens over the window from the first reasoning delta (~0.42 s, ~100 tokens/s
    # quiet), not over the 2 content deltas: that window is at least as long as the reasoning
    # before the answer, and no longer than latency - TTFT (both hold at any load).
    tokens = row["completion_tokens"] - 1
    assert row["output_tokens_per_s"] <= tokens / (row["ttft_answer_s"] - row["ttft_s"]) * (1 + 1e-9)
    assert row["output_tokens_per_s"] >= tokens / (row["latency_s"] - row["ttft_s"]) * (1 - 1e-9)


def test_cache_separates_streamed_and_plain_calls(lab, server):
    plain = lab.compare("Same", models=["slow"], stream=False).df.iloc[0]
    streamed = lab.compare("Same", models=["slow"], stream=True).df.iloc[0]
    assert not streamed["cached"] and streamed["ttft_s"] > 0 and math.isnan(plain["ttft_s"])


def test_close_with_a_call_in_flight_resolves_the_future(server, tmp_path):
    server.set_model("sleepy", ModelSpec(text="late", hold_after=0))  # held until the server stops
    lab = Lab(base_url=server.base_url, db=tmp_path / "log.sqlite")
    future = lab.submit_compare("Hi", models=["sleepy"], cache=False)
    server.wait_held("sleepy", 1, timeout=60)  # in flight, and it cannot finish by itself
    lab.close()
    assert future.done() and future.finished.wait(30)
    with Lab(base_url=server.base_url, db=tmp_path / "log.sqlite") as again:
        assert list(again.runs()["error_type"]) == ["Cancelled"]


@pytest.mark.parametrize("make, message", [
    (lambda url: Lab(base_url=url, api_key_env="gsk_4f9aSECRETSECRET12XyZ", db=":memory:"), "upper-case NAME"),
    (lambda url: Lab(base_url=123, db=":memory:"), "base_url must be a string"),
    (lambda url: Lab(base_url=url, api_key_env=123, db=":memory:"), "NAME"),
    (lambda url: Lab(base_url=url, rpm="60", db=":memory:"), "rpm must be"),
])
def test_bad_constructor_arguments_are_clear(server, make, message):
    from llmlab import LLMLabError

    with pytest.raises(LLMLabError, match=message) as info:
        make(server.base_url)
    assert "SECRET" not in str(info.value)


def test_bad_messages_timeouts_and_foreign_options_are_input_errors(lab, server):
    from llmlab import Timeouts

    with pytest.raises(InputError, match="content must be its text or a list of content parts"):
        lab.compare([{"role": "user", "content": {"a set"}}], models=["fast"])
    with pytest.raises(InputError, match="JSON"):
        lab.compare([{"role": "user", "content": [{"type": "text", "text": {"a set"}}]}], models=["fast"])
    with pytest.raises(InputError, match="Timeouts.total"):
        lab.compare("Hi", models=["fast"], timeout=Timeouts(total=-1))
    with pytest.raises(InputError, match="unknown keyword 'n'"):
        lab.complete("Hi", models=["fast"], n=2)
    assert server.requests == []


def test_store_failure_is_the_store_error_not_a_task_group(lab, monkeypatch):
    from llmlab import StoreError

    def broken(*args, **kwargs):
        raise StoreError("cannot write to run log: disk full")

    monkeypatch.setattr(lab.store, "insert", broken)
    with pytest.raises(StoreError, match="disk full"):
        lab.compare("Hi", models=["fast"], cache=False)


# --------------------------------------------------------------------------- warnings

def test_price_warning_points_at_the_callers_line_once_per_model(server, tmp_path):
    import asyncio
    import sys

    first = Lab(base_url=server.base_url, db=tmp_path / "a.sqlite")
    second = Lab(base_url=server.base_url, db=":memory:")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            line = sys._getframe().f_lineno + 1
            first.compare("Hi", models=["fast"], cache=False)
            second.compare("Hi again", models=["fast"], cache=False)  # another Lab, same process

            async def main():
                return await second.acompare("Async", models=["slow"], cache=False), \
                    sys._getframe().f_lineno - 1

            _, async_line = asyncio.run(main())
        priced = [w for w in caught if issubclass(w.category, PriceWarning)]
        assert [str(w.message).split("'")[1] for w in priced] == ["fast", "slow"]  # once per model
        assert (priced[0].filename, priced[0].lineno) == (__file__, line)   # not llmlab/_call.py
        assert (priced[1].filename, priced[1].lineno) == (__file__, async_line)
    finally:
        first.close()
        second.close()


def test_a_host_name_that_does_not_resolve_is_said_and_not_retried():
    """``.invalid`` never resolves (RFC 6761): the row says DNS/host, not "is the server running",
    after one attempt (retrying cannot make a name exist); list_models says the same."""
    import socket

    try:
        socket.getaddrinfo("no-such-host.invalid", 80)
    except socket.gaierror as exc:
        if exc.errno != socket.EAI_NONAME:
            pytest.skip(f"this machine's resolver answers {exc} (no 'no such name' to test with)")
    with Lab(base_url="http://no-such-host.invalid:8000/v1", api_key_env="", db=":memory:", quiet=True,
             retries=3) as lab:
        res = lab.compare("Hi", models=["m"])
        row = res.df.iloc[0]
        assert len(res.df) == 1 and row["attempt"] == 1 and row["status"] == "error"
        assert "its host name does not resolve" in row["error_message"]
        assert "check the host in that URL" in row["error_message"] and "is running" not in row["error_message"]
        with pytest.raises(EndpointError, match="its host name does not resolve"):
            lab.list_models()
