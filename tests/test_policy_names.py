"""Routing policies follow the engine's one rule for model names (base/_names.check_model_names).

A policy's model names go into ``router.json`` and its exported code — the files one commits next
to the notebook — so a policy refuses, at construction, at load and again at save/to_code, exactly
what ``lab.compare(models=...)`` refuses: the process's API key as a name (in any form the views
redact), invisible and default-ignorable characters, two names that read the same."""
from __future__ import annotations

import json

import pytest

from llmlab import InputError, routing
from llmlab.base._redact import remember
from llmlab.engine._jobs import check_models

KEY = "sk-proj-Zq7XvB3mK9tR2wLp8NcY4hJd"
ZWSP_KEY = "\u200b".join(KEY)
WIDE_KEY = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in KEY)

BUILDERS = {
    "Always": lambda m: routing.Always(m),
    "TaskMap": lambda m: routing.TaskMap({"t": m}),
    "TaskMap default": lambda m: routing.TaskMap({"t": "a"}, default=m),
    "Fallback": lambda m: routing.Fallback(["a", m]),
    "Random": lambda m: routing.Random(0.5, "a", m),
    "Threshold": lambda m: routing.Threshold("prompt_chars", 10, "a", m),
    "Cascade": lambda m: routing.Cascade(["a", m], accept=lambda text: bool(text)),
    "Learned": lambda m: routing.Learned("a", m),
}


@pytest.fixture
def key_env(monkeypatch):
    monkeypatch.setenv("LLMLAB_API_KEY", KEY)  # known through remember_keys, no Lab needed


@pytest.mark.parametrize("kind", list(BUILDERS))
@pytest.mark.parametrize("name", [KEY, ZWSP_KEY, WIDE_KEY, KEY.upper()], ids=["key", "zwsp", "wide", "upper"])
def test_policy_refuses_the_key_as_a_model_name(key_env, kind, name):
    with pytest.raises(InputError, match="looks like your API key") as info:
        BUILDERS[kind](name)
    assert KEY not in str(info.value) and "Zq7XvB3m" not in str(info.value)


@pytest.mark.parametrize("kind", list(BUILDERS))
@pytest.mark.parametrize("char", ["\u200b", "\u00ad", "\u2060", "\u034f", "\ufe0f", "\u3164", "\u2800", "\ue000"])
def test_policy_refuses_what_the_engine_refuses(kind, char):
    with pytest.raises(InputError, match="invisible character") as engine:
        check_models(["a", "m" + char])
    with pytest.raises(InputError, match="invisible character") as policy:
        BUILDERS[kind]("m" + char)
    assert f"U+{ord(char):04X}" in str(engine.value) and f"U+{ord(char):04X}" in str(policy.value)


def test_policy_refuses_two_names_that_read_the_same():
    with pytest.raises(InputError, match="read the same"):
        routing.Fallback(["gpt-4o", "gpt-4\u043e"])
    routing.Fallback(["a", "b", "a"])  # the same name twice is one model


def test_key_learnt_after_construction_is_refused_at_save_and_to_code(tmp_path):
    policy = routing.Always(KEY)  # no key known yet: a plain name
    remember([KEY])
    with pytest.raises(InputError, match="looks like your API key"):
        policy.save(tmp_path / "router.json")
    with pytest.raises(InputError, match="looks like your API key"):
        policy.to_code()
    assert not (tmp_path / "router.json").exists()


def test_policy_name_and_task_names_hold_no_key(key_env):
    with pytest.raises(InputError, match="looks like your API key"):
        routing.Always("a", name=f"mine {KEY}")
    with pytest.raises(InputError, match="looks like your API key"):
        routing.TaskMap({KEY: "a"})
    with pytest.raises(InputError, match="invisible character U\\+200B"):
        routing.Always("a", name="a\u200b")


def _saved(tmp_path, **fields):
    path = tmp_path / "router.json"
    path.write_text(json.dumps({"format": "llmlab.routing.policy", "version": 1, "kind": "Always",
                                "name": None, "model": "m", **fields}))
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("model", [KEY, ZWSP_KEY, WIDE_KEY])
def test_load_policy_refuses_the_key(key_env, tmp_path, model):
    with pytest.raises(InputError) as info:
        routing.load_policy(_saved(tmp_path, model=model))
    assert "API key" in str(info.value) and KEY not in str(info.value) and "Zq7" not in str(info.value)


@pytest.mark.parametrize("char", ["\u200b", "\u00ad", "\u2060", "\u034f", "\u3164"])
@pytest.mark.parametrize("field", ["model", "name"])
def test_load_policy_refuses_invisible_names(tmp_path, char, field):
    with pytest.raises(InputError, match=f"'{field}' must be"):
        routing.load_policy(_saved(tmp_path, **{field: "m" + char}))


def test_learned_from_dict_refuses_the_key_and_lookalikes(key_env):
    data = _fitted().to_dict()
    for strong in (KEY, "a\u034f", "a\u3164", "a\u200b"):
        with pytest.raises(InputError) as info:
            routing.Learned.from_dict({**data, "strong": strong})
        assert KEY not in str(info.value)


def _fitted():
    from test_routing_learned import planted_runs
    return routing.Learned("a", "b").fit(planted_runs(60, seed=1).replace({"requested_model": {
        "cheap": "a", "big": "b"}}))
