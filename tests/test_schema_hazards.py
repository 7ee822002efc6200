"""scoring.json_schema / tool_call on hostile schemas and answers: a pattern that backtracks
catastrophically, nesting past the validator's recursion, a $ref outside the schema, and a large
schema over many rows. A schema the user gives is refused in one line; one a row's request
declared is that row's failing reason; an answer is always a score with a reason."""
from __future__ import annotations

import json
import time

import pandas as pd
import pytest

from llmlab import InputError, scoring
from llmlab.analysis import _structured

EVIL = ["^(a+)+$", "(\\w+\\s?)*$", "(x+x+)+y", "\\s*\\s*x", "^(\\d+\\.?\\d*)+$"]


def frame(texts: list[str], params: list[str] | None = None, calls: list[str] | None = None) -> pd.DataFrame:
    n = len(texts)
    return pd.DataFrame({"response_text": texts, "status": ["ok"] * n, "params": params or ["{}"] * n,
                         "expected": [None] * n, "tool_calls": calls or [None] * n,
                         "prompt_id": [f"p{i}" for i in range(n)], "requested_model": ["m"] * n})


def string_with(pattern: str, where: str) -> dict:
    if where == "pattern":
        return {"type": "object", "properties": {"s": {"type": "string", "pattern": pattern}}}
    if where == "patternProperties":
        return {"type": "object", "patternProperties": {pattern: {"type": "string"}}}
    return {"type": "object", "$defs": {"d": {"items": {"pattern": pattern}}},
            "properties": {"s": {"$ref": "#/$defs/d"}}}


@pytest.mark.parametrize("where", ["pattern", "patternProperties", "nested"])
@pytest.mark.parametrize("pattern", EVIL)
def test_a_given_schema_whose_pattern_can_backtrack_catastrophically_is_refused_naming_its_path(pattern, where):
    expected = {"pattern": r"\$\.properties\.s\.pattern", "patternProperties": r"\$\.patternProperties",
                "nested": r"\$\.\$defs\.d\.items\.pattern"}[where]
    for make in (lambda s: scoring.json_schema(s), lambda s: scoring.tool_call("f", schema=s)):
        with pytest.raises(InputError, match=expected + ".*backtrack catastrophically") as info:
            make(string_with(pattern, where))
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("pattern", EVIL)
def test_a_declared_catastrophic_pattern_is_a_failing_reason_in_well_under_the_time_it_would_take(pattern):
    schema = string_with(pattern, "pattern")
    answer = json.dumps({"s": "a" * 40 + "!"})
    fmt = json.dumps({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}})
    tools = json.dumps({"tools": [{"type": "function", "function": {"name": "f", "parameters": schema}}]})
    call = json.dumps([{"id": "A", "name": "f", "arguments": answer}])
    start = time.perf_counter()
    by_schema = scoring.score(frame([answer], [fmt]), scoring.json_schema()).iloc[0]
    by_call = scoring.score(frame([call], [tools], [call]), scoring.tool_call("f")).iloc[0]
    assert time.perf_counter() - start < 10          # catastrophic: minutes; refused: milliseconds
    for row in (by_schema, by_call):
        assert row["score"] == 0 and "backtrack catastrophically" in row["score_reason"]


@pytest.mark.parametrize("text", ["a" * 4_001, "b" * 100_000, "x" * 1_000_000])
def test_a_safe_pattern_reads_a_bounded_string_and_says_when_one_is_longer(text):
    scorer = scoring.json_schema({"type": "object", "properties": {"s": {"type": "string", "pattern": "^\\s*[a-z]+$"}}})
    start = time.perf_counter()
    row = scoring.score(frame([json.dumps({"s": text})]), scorer).iloc[0]
    assert time.perf_counter() - start < 10
    assert row["score"] == 0 and f"{len(text):,} characters is longer than the 4,000" in row["score_reason"]
    assert scorer.check(json.dumps({"s": "a" * 4_000}), None) == (1.0, "matches the schema")
    assert scorer.check(json.dumps({"s": "A1"}), None)[0] == 0.0


@pytest.mark.parametrize("pattern", ["^\\d{4}-\\d{2}-\\d{2}$", "^[A-Z]{2}\\d+$", "(\\d+,)+", "^a++b$"])
def test_safe_patterns_still_check_as_before(pattern):
    import re
    scorer = scoring.json_schema(string_with(pattern, "pattern"))
    for value in ("2024-01-31", "FR123", "1,2,", "aab", "nope"):
        expected = 1.0 if re.search(pattern, value) else 0.0
        assert scorer.check(json.dumps({"s": value}), None)[0] == expected


def deep_schema(levels: int) -> dict:
    schema: dict = {"type": "object"}
    node = schema
    for _ in range(levels):
        node["properties"] = {"x": {"type": "object"}}
        node = node["properties"]["x"]
    return schema


@pytest.mark.parametrize("levels", [70, 500, 5_000, 50_000])
def test_a_very_deep_given_schema_is_a_one_line_input_error(levels):
    with pytest.raises(InputError, match="nested deeper than 128 levels") as info:
        scoring.json_schema(deep_schema(levels))
    assert "\n" not in str(info.value)
    declared = {"name": "x", "schema": deep_schema(min(levels, 100))}
    fmt = json.dumps({"response_format": {"type": "json_schema", "json_schema": declared}})
    row = scoring.score(frame(["{}"], [fmt]), scoring.json_schema()).iloc[0]
    assert row["score"] == 0 and "nested deeper than 128" in row["score_reason"]


def nested(levels: int, kind: str) -> str:
    if kind == "list":
        return "[" * levels + "]" * levels
    value: dict = {}
    for _ in range(levels):
        value = {"next": value}
    return json.dumps(value)


RECURSIVE = {"$defs": {"n": {"type": ["object", "array"], "properties": {"next": {"$ref": "#/$defs/n"}},
                             "items": {"$ref": "#/$defs/n"}}}, "$ref": "#/$defs/n"}


@pytest.mark.parametrize("kind", ["list", "object"])
@pytest.mark.parametrize("levels", [65, 300, 900, 100_000])
def test_a_deep_answer_against_a_recursive_schema_is_a_failing_score_with_a_reason(levels, kind):
    scorer = scoring.json_schema(RECURSIVE)
    text = nested(levels, kind) if levels < 100_000 or kind == "list" else nested(900, kind)
    row = scoring.score(frame([text]), scorer).iloc[0]
    assert row["score"] == 0
    assert "nested deeper than 64 levels" in row["score_reason"] or "nested too deep" in row["score_reason"]
    assert scorer.check(nested(60, kind), None) == (1.0, "matches the schema")


def test_a_deep_tool_call_argument_is_a_reason_too():
    call = json.dumps([{"id": "A", "name": "f", "arguments": nested(300, "object")}])
    row = scoring.score(frame([call], calls=[call]), scoring.tool_call("f", schema=RECURSIVE)).iloc[0]
    assert row["score"] == 0 and "nested deeper than 64 levels" in row["score_reason"]


@pytest.mark.parametrize("ref", ["http://127.0.0.1:9/schema.json", "https://example.invalid/s.json#/a",
                                 "file:///etc/passwd", "other.json", "urn:x:y"])
@pytest.mark.parametrize("word", ["$ref", "$dynamicRef"])
def test_a_ref_outside_the_schema_is_refused_and_never_fetched(ref, word):
    schema = {"type": "object", "properties": {"a": {word: ref}}}
    with pytest.raises(InputError, match=r"at \$\.properties\.a .*never fetches") as info:
        scoring.json_schema(schema)
    assert "\n" not in str(info.value)
    fmt = json.dumps({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}})
    row = scoring.score(frame(['{"a": 1}'], [fmt]), scoring.json_schema()).iloc[0]
    assert row["score"] == 0 and "never fetches" in row["score_reason"]


def test_refs_the_schema_holds_still_resolve_and_a_missing_local_one_is_a_reason():
    by_id = {"$defs": {"c": {"$id": "urn:city", "type": "string"}}, "properties": {"a": {"$ref": "urn:city"}}}
    assert scoring.json_schema(by_id).check('{"a": "Oslo"}', None) == (1.0, "matches the schema")
    assert scoring.json_schema(by_id).check('{"a": 1}', None)[0] == 0.0
    missing = scoring.json_schema({"properties": {"a": {"$ref": "#/$defs/none"}}})
    value, reason = missing.check('{"a": 1}', None)
    assert value == 0.0 and "cannot be resolved" in reason and "\n" not in reason


def test_a_large_schema_is_compiled_once_for_all_rows():
    big = {"type": "object", "properties": {f"k{i}": {"type": "string", "description": "x" * 100}
                                            for i in range(3000)}, "required": ["k1"]}
    n = 3000
    texts = [json.dumps({"k1": "v"})] * (n - 1) + [json.dumps({"k1": 5})]
    fmt = json.dumps({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": big}}})
    for scorer, params in ((scoring.json_schema(big), ["{}"] * n), (scoring.json_schema(), [fmt] * n)):
        rows = frame(texts)
        # object dtype: one text 3,000 times; pandas' string dtype would copy 1 GB into Arrow (20 s
        # of set-up). The scorer reads the rows the same way; the parse-once cache is by content.
        rows["params"] = pd.Series(params, dtype=object)
        scoring.score(rows.head(1), scorer)           # compiled here, once (seconds under load)
        start = time.perf_counter()
        scored = scoring.score(rows, scorer)
        assert time.perf_counter() - start < 20      # per row it was 24-35 s for these 3,000 rows
        assert scored["score"].sum() == n - 1
        assert scored["score_reason"].iloc[-1] == "does not match the schema: $.k1: 5 is not of type 'string'"
    assert _structured.compile_schema(big) is _structured.compile_schema(json.loads(json.dumps(big)))
    another = (fmt + " ")[:-1]                        # an equal text, another object
    assert _structured.declared_check(fmt) is _structured.declared_check(another)


def test_the_properties_shortcut_gives_the_same_errors_as_jsonschema():
    schema = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"minimum": 3}, "c": {}},
              "additionalProperties": False}
    for value, reason in [({"a": 1}, "$.a: 1 is not of type 'string'"), ({"b": 2, "z": 1}, None),
                          ({"a": "x", "b": 5}, ""), ({"b": 1}, "$.b: 1 is less than the minimum of 3")]:
        got = _structured.schema_problem(value, schema)
        assert got == reason if reason is not None else got.startswith("$: Additional properties")
