"""The public API as a user of the openai SDK meets it: explicit keyword-only signatures, every
parameter documented, typos refused with a did-you-mean before anything is sent, the SDK's
chat-completions parameters forwarded, anything else only through ``extra_body``."""
from __future__ import annotations

import asyncio
import inspect
import json

import pytest
from fakeserver import FakeServer, ModelSpec

import llmlab
from llmlab import InputError, Lab
from llmlab.engine._options import BODY_PARAMS, CALL_FIELDS, RESERVED_BODY_KEYS, CallOptions

ENTRY_POINTS = ["compare", "acompare", "submit_compare", "sweep", "asweep", "submit_sweep",
                "complete", "acomplete", "submit_complete"]
TWINS = [("compare", "acompare", "submit_compare"), ("sweep", "asweep", "submit_sweep"),
         ("complete", "acomplete", "submit_complete")]


@pytest.fixture
def server():
    with FakeServer({"fast": ModelSpec(text="alpha beta"), "other": ModelSpec(text="gamma")}) as srv:
        yield srv


@pytest.fixture
def lab(server, tmp_path):
    lab = Lab(base_url=server.base_url, db=tmp_path / "runs.sqlite", retries=0)
    yield lab
    lab.close()


def chat(server: FakeServer) -> list:
    return [r for r in server.requests if r.path.endswith("/chat/completions")]


# --------------------------------------------------------------------------- signatures

@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_signature_lists_every_keyword_and_they_are_keyword_only(name):
    params = inspect.signature(getattr(Lab, name)).parameters
    for keyword in ("models", "system", "temperature", "max_tokens", "top_p", "seed", "stop", "stream", "cache",
                    "timeout", "retries", "retry_policy", "on_event", "extra_body", "response_format", "tools"):
        assert keyword in params, keyword
        assert params[keyword].kind is inspect.Parameter.KEYWORD_ONLY, keyword
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())  # no **kwargs
    assert ("n" in params) == ("complete" not in name)  # a fallback chain gives one answer
    first = list(params)[1]
    assert params[first].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD  # the prompt(s)
    assert params["models"].default is inspect.Parameter.empty  # required


@pytest.mark.parametrize("names", TWINS, ids=[t[0] for t in TWINS])
def test_sync_async_and_submit_twins_take_the_same_keywords(names):
    signatures = [inspect.signature(getattr(Lab, n)) for n in names]
    shapes = [[(p.name, p.kind, p.default) for p in s.parameters.values()] for s in signatures]
    assert shapes[0] == shapes[1] == shapes[2]
    assert inspect.iscoroutinefunction(getattr(Lab, names[1]))


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_docstring_documents_every_parameter(name):
    method = getattr(Lab, name)
    doc = inspect.getdoc(method)
    for param in list(inspect.signature(method).parameters)[1:]:
        assert param in doc, f"{name} does not document {param}"


def test_every_call_keyword_is_a_call_option_and_back():
    keywords = set()
    for name in ENTRY_POINTS:
        keywords |= set(list(inspect.signature(getattr(Lab, name)).parameters)[2:])  # after self, prompt(s)
    assert keywords - {"models"} == set(CALL_FIELDS)


def test_body_keywords_are_exactly_the_sdks_chat_completion_parameters():
    """Read the installed openai SDK: a parameter it adds shows up here as a failure, not as a
    keyword silently missing."""
    from openai.resources.chat.completions import AsyncCompletions

    sdk = set(inspect.signature(AsyncCompletions.create).parameters) - {"self"}
    ours_elsewhere = {"model", "messages", "stream", "stream_options", "n", "timeout", "extra_body"}
    not_body = {"extra_headers", "extra_query"}  # HTTP options, not body keys: not offered
    assert set(BODY_PARAMS) == sdk - ours_elsewhere - not_body
    assert ours_elsewhere - {"extra_body"} <= RESERVED_BODY_KEYS


def test_constructor_is_keyword_only_and_public_names_are_llmlab_names():
    with pytest.raises(TypeError):
        Lab("http://127.0.0.1:9/v1")  # type: ignore[misc]
    for name in ("Lab", "Result", "Timeouts", "InputError", "LLMLabError"):
        assert getattr(llmlab, name).__module__ == "llmlab", name


# --------------------------------------------------------------------------- typos and values

@pytest.mark.parametrize("kwargs, message", [
    ({"max_token": 5}, "unknown keyword 'max_token'. Did you mean 'max_tokens'?"),
    ({"temprature": 0}, "Did you mean 'temperature'?"),
    ({"sytem": "x"}, "Did you mean 'system'?"),
    ({"top_k": 40}, r"extra_body=\{'top_k': ...\}"),
    ({"api_key": "x"}, "api_key looks like a credential.*api_key_env"),  # never "use extra_body"
    ({"extra_headers": {"Authorization": "Bearer x"}}, "extra_headers is not a call parameter.*api_key_env"),
    ({"stream": "false"}, "stream must be True or False"),
    ({"cache": "no"}, "cache must be True or False"),
    ({"cache": 0}, "cache must be True or False"),
    ({"logprobs": "true"}, "logprobs must be True or False"),
    ({"max_tokens": 10**23}, "max_tokens must be a whole number from 1 to 2,000,000"),
    ({"max_completion_tokens": 2_000_001}, "max_completion_tokens must be"),
    ({"max_tokens": 5.0}, "max_tokens must be a whole number"),
    ({"temperature": float("nan")}, "temperature must be a number from 0 to 2"),
    ({"top_p": 2}, "top_p must be a number from 0 to 1"),
    ({"seed": 2**64}, "seed must be a whole number"),
    ({"n": 10**9}, "n must be a whole number from 1 to 1,000"),
    ({"retries": 10**9}, "retries must be a whole number from 0 to 100"),
    ({"stop": 5}, "stop must be a string or a list of strings"),
    ({"response_format": "json"}, "response_format must be a dict"),
    ({"tools": {"a": 1}}, "tools must be a list"),
    ({"extra_body": {"temperature": 3}}, "'temperature' is a named parameter"),
    ({"extra_body": {"stream": False}}, "'stream' cannot be sent through extra_body"),
    ({"extra_body": {"n": 3}}, "use n= for repeats"),
    ({"extra_body": ["top_k"]}, "extra_body must be a dict"),
    ({"on_event": "print"}, "on_event must be a function"),
    ({"retry_policy": 3}, "retry_policy must be an llmlab.RetryPolicy"),
])
def test_bad_keywords_are_one_line_input_errors_and_nothing_is_sent(lab, server, kwargs, message):
    with pytest.raises(InputError, match=message) as info:
        lab.compare("Hi", models=["fast"], **kwargs)
    assert "\n" not in str(info.value)
    assert chat(server) == [] and len(lab.runs()) == 0


def test_typos_are_refused_by_every_twin_before_anything_runs(lab, server):
    with pytest.raises(InputError, match="Did you mean 'max_tokens'"):
        asyncio.run(lab.acompare("Hi", models=["fast"], max_token=5))
    with pytest.raises(InputError, match="Did you mean 'max_tokens'"):
        lab.submit_sweep(["Hi"], models=["fast"], max_token=5)  # at once, not in the Future
    with pytest.raises(InputError, match="progress must be True or False"):
        lab.sweep(["Hi"], models=["fast"], progress="no")
    with pytest.raises(InputError, match="Did you mean 'models'"):
        lab.complete("Hi", model=["fast"])
    with pytest.raises(InputError, match=r"compare\(\) takes the prompt positionally .* models="):
        lab.compare("Hi", ["fast"])  # type: ignore[misc]
    assert chat(server) == []


def test_constructor_values_are_checked_the_same_way(server):
    for kwargs, message in (({"max_tokens": 10**23}, "max_tokens must be a whole number from 1 to 2,000,000"),
                            ({"quiet": "no"}, "quiet must be True or False"),
                            ({"concurrency": True}, "concurrency must be a whole number")):
        with pytest.raises(InputError, match=message):
            Lab(base_url=server.base_url, db=":memory:", **kwargs)


# --------------------------------------------------------------------------- what is sent

def test_sdk_parameters_are_forwarded_and_recorded(lab, server):
    res = lab.compare("Hi", models=["fast"], cache=False, seed=7, stop=["END"], presence_penalty=0.5,
                      response_format={"type": "json_object"}, logprobs=True, top_logprobs=2, user="u1",
                      max_completion_tokens=64)
    (request,) = chat(server)
    body = request.body
    assert body["seed"] == 7 and body["stop"] == ["END"] and body["presence_penalty"] == 0.5
    assert body["response_format"] == {"type": "json_object"} and body["logprobs"] is True
    assert body["top_logprobs"] == 2 and body["user"] == "u1"
    assert body["max_completion_tokens"] == 64 and "max_tokens" not in body  # never both
    params = json.loads(res.df.loc[0, "params"])
    assert params["seed"] == 7 and "max_tokens" not in params


def test_extra_body_reaches_the_endpoint_and_the_log(lab, server):
    res = lab.compare("Hi", models=["fast"], cache=False, max_tokens=5,
                      extra_body={"top_k": 40, "repetition_penalty": 1.1, "chat_template_kwargs": {"x": True}})
    (request,) = chat(server)
    assert request.body["top_k"] == 40 and request.body["repetition_penalty"] == 1.1
    assert request.body["chat_template_kwargs"] == {"x": True} and request.body["max_tokens"] == 5
    assert json.loads(res.df.loc[0, "params"]) == {"max_tokens": 5, "top_k": 40, "repetition_penalty": 1.1,
                                                   "chat_template_kwargs": {"x": True}}


def test_extra_body_is_part_of_the_cache_key(lab, server):
    lab.compare("Hi", models=["fast"], extra_body={"top_k": 1})
    second = lab.compare("Hi", models=["fast"], extra_body={"top_k": 2})
    assert not second.df.loc[0, "cached"] and len(chat(server)) == 2
    third = lab.compare("Hi", models=["fast"], extra_body={"top_k": 2})
    assert third.df.loc[0, "cached"] and len(chat(server)) == 2


def test_the_magic_and_the_api_build_equal_options():
    from llmlab.notebook._magic_options import parse_options

    line = parse_options("model=a temperature=0.5 max_tokens=64 seed=3 stream=false body.top_k=40").options
    api = CallOptions(temperature=0.5, max_tokens=64, seed=3, stream=False, extra_body={"top_k": 40})
    assert line == api and line.request_body(512) == api.request_body(512)
