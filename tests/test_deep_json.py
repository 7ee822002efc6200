"""Issue 21: JSON nested deeper than Python's recursion, from an endpoint, is a malformed answer
(one line, nothing cached, the sibling calls unaffected), and legal deep JSON is still read."""
from __future__ import annotations

import json
import random

import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import Lab
from llmlab.base._json import MAX_JSON_DEPTH, JSONTooDeep, loads


def _document(rng: random.Random, depth: int = 0):
    pick = rng.random()
    if depth > 4 or pick < 0.3:
        return rng.choice([None, True, False, 0, -17, 2.5e-3, 10**30, "", 'a"\\\u00e9\n\u2028', "\ud83d\ude00"])
    if pick < 0.65:
        return [_document(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(["a", "b", "é", '"', ""]): _document(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def test_loads_reads_what_json_reads_however_deep():
    rng = random.Random(21)
    for _ in range(500):
        text = json.dumps(_document(rng), indent=rng.choice([None, 1]), ensure_ascii=rng.random() < 0.5)
        inner = rng.randint(1, MAX_JSON_DEPTH - 10)  # the same document below many levels: past json's stack
        wrapped = "[" * inner + text + "]" * inner
        value = loads(wrapped)
        for _ in range(inner):
            assert isinstance(value, list) and len(value) == 1
            value = value[0]
        assert value == json.loads(text)


@pytest.mark.parametrize("text", [
    "[" * 100_000 + "]" * 100_000,
    '{"a":' * 100_000 + "1" + "}" * 100_000,
    '[{"k":' * 50_000 + "0" + "}]" * 50_000,
    '[{"k": [' * 40_000,  # not even closed: still refused by depth, not by RecursionError
    "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1),
])
def test_loads_refuses_json_nested_deeper_than_the_limit(text):
    assert len(loads("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)) == 1  # the limit itself is legal
    with pytest.raises(JSONTooDeep) as info:
        loads(text)
    assert isinstance(info.value, ValueError) and "nested too deep" in str(info.value)


@pytest.mark.parametrize("text", ["[" * 1500 + "1,]" + "]" * 1499, "[" * 1500, "[" * 1500 + "]" * 1501,
                                  "[" * 1500 + "x", '{"a":' * 1500 + "1" + "}" * 1499 + "]"])
def test_loads_reports_bad_deep_json_as_bad_json(text):
    with pytest.raises(json.JSONDecodeError):
        loads(text)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "plain"])
def test_json_nested_too_deep_before_the_finish_is_a_malformed_row(tmp_path, stream):
    models = {"deep": ModelSpec(text="lost words", deep_json=100_000), "good": ModelSpec(text="fine words")}
    with FakeServer(models) as srv, Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite", retries=0) as lab:
        for _ in range(2):  # nothing cached: the second run asks again
            df = lab.compare("Hi", models=["deep", "good"], stream=stream).df.set_index("requested_model")
            row = df.loc["deep"]
            assert (row["status"], row["error_type"]) == ("error", "MalformedResponse"), row["error_message"]
            assert row["error_message"] == (f"the endpoint sent JSON nested too deep (more than "
                                            f"{MAX_JSON_DEPTH:,} levels)")
            assert df.loc["good", "status"] == "ok" and df.loc["good", "response_text"] == "fine words"
        assert len(srv.requests_for("deep")) == 2 and len(srv.requests_for("good")) == 1


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "plain"])
def test_legal_deep_json_in_a_valid_chunk_is_read(tmp_path, stream):
    models = {"deep": ModelSpec(text="kept words", deep_json=1_000)}
    with FakeServer(models) as srv, Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite", retries=0) as lab:
        row = lab.compare("Hi", models=["deep"], stream=stream).df.iloc[0]
    assert row["status"] == "ok", (row["error_type"], row["error_message"])
    assert row["response_text"] == "kept words"
