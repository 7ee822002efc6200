"""A request part holding the process's key is refused before anything is sent (F9).

A gateway logs request bodies (LiteLLM spend logs, Langfuse/Helicone callbacks, stored prompts);
the key belongs only in the Authorization header. Every part the user supplies — the prompt,
``system``, each message's content, name and tool calls, every parameter, ``extra_body`` and
``model_params``, nested at any depth — goes through one check (``check_no_secret``), which names
the part and never the value. A part holds the key when the views would redact it
(``base/_validate.holds_secret``), so text with only chance fragments of the key passes.
"""
from __future__ import annotations

import time

import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import InputError, Lab
from llmlab.base._credentials import check_no_secret, secret_path
from llmlab.base._redact import remember
from llmlab.engine._jobs import to_messages
from llmlab.engine._options import CallOptions

KEYS = ["sk-proj-AAAAbbbbCCCCddddEEEEffff1111", "Zq8xWm4pLr7tNv2KhY5s"]


def _deep(value, depth: int) -> dict:
    for _ in range(depth):
        value = {"properties": {"x": value}}
    return value


def _cases(key: str):
    tool = {"type": "function", "function": {"name": "f", "parameters": _deep({"description": key}, 30)}}
    yield "the prompt", ("my key is " + key,), {}
    yield "the prompt", (key,), {}
    yield "system", ("hello",), {"system": f"use {key}"}
    yield "messages[0]['name']", ([{"role": "user", "content": "x", "name": key}],), {}
    yield "messages[1]['content'][0]['text']", ([{"role": "system", "content": "s"},
                                                  {"role": "user", "content": [{"type": "text", "text": key}]}],), {}
    yield "messages[1]['tool_calls']", ([{"role": "user", "content": "x"},
                                         {"role": "assistant", "content": None, "tool_calls": [
                                             {"id": "1", "type": "function",
                                              "function": {"name": "f", "arguments": f'{{"k": "{key}"}}'}}]},
                                         {"role": "tool", "tool_call_id": "1", "content": "ok"}],), {}
    yield "parameter stop", ("hello",), {"stop": ["x", key]}
    yield "parameter user", ("hello",), {"user": key}
    yield "parameter metadata", ("hello",), {"metadata": {"k": key}}
    yield "parameter metadata", ("hello",), {"metadata": {key: "v"}}
    yield "parameter tools", ("hello",), {"tools": [tool]}
    yield "parameter response_format", ("hello",), {"response_format": {"type": "json_schema", "json_schema": {
        "name": "s", "schema": _deep({"enum": ["a", key]}, 100)}}}
    yield "parameter note", ("hello",), {"extra_body": {"top_k": 4, "note": [[[key]]]}}
    yield "parameter", ("hello",), {"model_params": {"m": {"user": key}}}


@pytest.mark.parametrize("key", KEYS)
def test_every_part_holding_the_key_is_refused_and_nothing_is_sent(monkeypatch, tmp_path, key):
    monkeypatch.setenv("LLMLAB_API_KEY", key)
    with FakeServer({"m": ModelSpec(text="x")}) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path / "log.sqlite", quiet=True) as lab:
        for where, args, kwargs in _cases(key):
            for method, prompt in ((lab.compare, args[0]), (lab.sweep, [args[0]])):
                with pytest.raises(InputError) as caught:
                    method(prompt, models=["m"], **kwargs)
                message = str(caught.value)
                assert key not in message and "\n" not in message, where
                assert "holds your API key" in message or "looks like a credential" in message, where
                assert where.split("[")[0] in message, (where, message)
        assert not [r for r in srv.requests if r.path.endswith("/chat/completions")]
        assert key.encode() not in (tmp_path / "log.sqlite").read_bytes()


def test_the_refusal_names_the_exact_part():
    remember([KEYS[1]])
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c", "name": "me " + KEYS[1]}]
    with pytest.raises(InputError, match=r"^messages\[2\]\['name'\] holds your API key"):
        to_messages(messages)
    with pytest.raises(InputError, match=r"^parameter stop\[1\] holds your API key"):
        CallOptions(stop=["x", KEYS[1]])
    with pytest.raises(InputError, match=r"^system holds your API key"):
        CallOptions(system=KEYS[1])
    assert secret_path({"a": [1, {"b": ("x", KEYS[1])}]}, "v") == "v['a'][1]['b'][1]"


def test_text_that_only_resembles_the_key_is_sent():
    """Chance fragments of the key, which the views leave alone, are sent (the forms they redact are
    refused: test_body_secrets.py)."""
    remember(KEYS)
    for text in ("an API key is secret", KEYS[1][:5], "aaaa and dddd", f"{KEYS[1][:3]} then {KEYS[1][8:11]}"):
        assert to_messages(text)[0]["content"] == text
        CallOptions(system=text, stop=None if text.startswith("sk-proj-A") else [text])  # that shape: refused


def test_a_20000_message_conversation_is_checked_quickly():
    remember(KEYS)
    words = "the quick brown fox jumps over a lazy dog while llmlab checks every message part".split()
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": " ".join(words * 4), "name": f"u{i}"}
                for i in range(20_000)]
    start = time.process_time()  # this process's CPU: a loaded machine's other work does not count
    check_no_secret(messages, "messages")
    took = time.process_time() - start
    assert took < 2.0, took  # about 0.5 s (the views' redaction of 20,000 distinct names)
    messages[-1]["content"] += KEYS[1]
    with pytest.raises(InputError, match=r"messages\[19999\]\['content'\]"):
        check_no_secret(messages, "messages")


def test_nesting_deeper_than_any_stack_is_checked_without_recursion():
    remember(KEYS)
    value: object = KEYS[0]
    for _ in range(100_000):
        value = [value]
    assert secret_path(value, "v") == "v" + "[0]" * 100_000
    loop: list = []
    loop.append(loop)  # a cycle ends the walk instead of looping
    assert secret_path(loop, "v") is None


def test_nothing_is_refused_while_no_key_is_known():
    assert secret_path({"k": KEYS[0]}, "v") is None
    assert to_messages(KEYS[1])[0]["content"] == KEYS[1]
