"""The %%llm option grammar and {{name}} interpolation, as pure functions (no IPython, no network)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from llmlab.engine._options import CallOptions
from llmlab.notebook._magic_options import MagicOptions, OptionError, interpolate, parse_options, placeholders

# --------------------------------------------------------------------------- good lines

GOOD = [
    ("model=a", dict(models=["a"])),
    ("model=smollm2-135m,gemma-3-270m temperature=0 max_tokens=200 system=\"Be terse.\" out=res",
     dict(models=["smollm2-135m", "gemma-3-270m"], temperature=0.0, max_tokens=200,
          system="Be terse.", out="res")),
    ("model=a system='single quoted, with comma'", dict(system="single quoted, with comma")),
    ("model=a top_p=0.9 temperature=2", dict(top_p=0.9, temperature=2.0)),
    ("model=a temperature=.5", dict(temperature=0.5)),
    ("model=a stream=false cache=FALSE", dict(stream=False, cache=False)),
    ("model=a stream=True", dict(stream=True)),
    ("model=a n=3", dict(n=3)),
    ("model=a n=1000", dict(n=1000)),
    ("model=a fallback=b,c", dict(models=["a"], fallback=["b", "c"])),
    ("model=openrouter/openai/gpt-4o-mini:free", dict(models=["openrouter/openai/gpt-4o-mini:free"])),
    ("model=a reasoning_effort=high", dict(reasoning_effort="high")),
    ("model=a seed=42 body.min_p=0.05", dict(seed=42, extra_body={"min_p": 0.05})),
    ("model=a body.top_k=40", dict(extra_body={"top_k": 40})),  # not an OpenAI parameter: explicit body key
    ("model=a body.repetition_penalty=1.1 body.x-y='a,b'",
     dict(extra_body={"repetition_penalty": 1.1, "x-y": "a,b"})),
    ("model=a body.ids=1,2 body.flags=true,null", dict(extra_body={"ids": [1, 2], "flags": [True, None]})),
    ("model=a stop=END,STOP", dict(stop=["END", "STOP"])),
    ("model=a stop='a,b'", dict(stop="a,b")),  # quoted: literal text
    ("model=a logprobs=true", dict(logprobs=True)),
    ("model=a user=null", dict(user=None)),  # null: not sent
    ("model=a seed='42'", dict(seed=42)),  # seed is a whole number, quoted or not
    ("model=a response_format='{\"type\": \"json_object\"}'",
     dict(response_format={"type": "json_object"})),
    ("model=a stop='[\"\\n\", \"END\"]'", dict(stop=["\n", "END"])),
    ("model=a logit_bias={}", dict(logit_bias={})),
    ("model=a timeout=30 retries=0", dict(timeout=30.0, retries=0)),
    ("model=a max_completion_tokens=64 tool_choice=auto", dict(max_completion_tokens=64, tool_choice="auto")),
    ("model=a system=\"has = sign and #hash\"", dict(system="has = sign and #hash")),
    ("  model=a   out=_x1  ", dict(out="_x1")),
    ("model=a max_tokens=+5", dict(max_tokens=5)),
    ("model=a temperature=1e-1", dict(temperature=0.1)),
]


@pytest.mark.parametrize("line, expected", GOOD, ids=[g[0] for g in GOOD])
def test_good_lines(line, expected):
    opts = parse_options(line)
    assert isinstance(opts, MagicOptions) and isinstance(opts.options, CallOptions)
    for key, value in expected.items():
        owner = opts if key in ("models", "fallback", "out") else opts.options
        assert getattr(owner, key) == value, key


def test_defaults_fill_missing_model():
    opts = parse_options("temperature=0", known_defaults={"model": ["x", "y"]})
    assert opts.models == ["x", "y"]
    assert parse_options("model=z", known_defaults={"model": ["x"]}).models == ["z"]
    assert parse_options("", known_defaults={"model": ["x"]}).models == ["x"]


def test_the_line_builds_the_same_options_as_the_python_api():
    opts = parse_options("model=a temperature=0 top_p=0.5 n=2 seed=7 body.top_k=3")
    given = opts.options.given()
    assert given == {"temperature": 0.0, "top_p": 0.5, "n": 2, "seed": 7, "extra_body": {"top_k": 3}}
    assert CallOptions(**given) == opts.options  # the keywords lab.compare receives
    assert opts.options.request_body(512) == {"max_tokens": 512, "temperature": 0.0, "top_p": 0.5, "seed": 7,
                                              "top_k": 3}
    assert parse_options("model=a").options.given() == {}


# --------------------------------------------------------------------------- malformed lines

# (line, fragments that must appear in the one-line message)
BAD = [
    ("", ["no model given", "default_models"]),
    ("temperature=0", ["no model given"]),
    ("model=", ["empty value", "'model'"]),
    ("model=a,,b", ["empty model name"]),
    ("model=a,b,", ["empty model name"]),
    ("model=,a", ["empty model name"]),
    ("model=a,a", ["'a'", "listed twice"]),
    ("model=a model=b", ["'model'", "given twice"]),
    ("model=a seed=1 seed=2", ["'seed'", "given twice"]),
    ("model='a b'", ["whitespace"]),
    ("model=a temperature=3", ["temperature must be a number from 0 to 2", "3.0"]),
    ("model=a temperature=-0.1", ["from 0 to 2"]),
    ("model=a temperature=hot", ["temperature must be a number", "'hot'"]),
    ("model=a temperature=nan", ["must be a number"]),
    ("model=a temperature=0,1", ["takes one number"]),
    ("model=a top_p=1.5", ["top_p must be a number from 0 to 1", "1.5"]),
    ("model=a max_tokens=0", ["max_tokens must be a whole number from 1 to 2,000,000", "not 0"]),
    ("model=a max_tokens=-5", ["from 1 to"]),
    ("model=a max_tokens=100000000000000000000000", ["max_tokens must be a whole number from 1 to 2,000,000"]),
    ("model=a max_completion_tokens=10000000", ["from 1 to 2,000,000"]),
    ("model=a seed=1.5", ["seed must be a whole number"]),
    ("model=a logprobs=yes", ["logprobs must be true or false"]),
    ("model=a response_format=json", ["response_format must be a dict"]),
    ("model=a system_prompt='Be terse.'", ["unknown option 'system_prompt'", "body.system_prompt="]),
    ("model=a output=res", ["unknown option 'output'", "body.output="]),
    ("model=a top_k=40", ["unknown option 'top_k'", "body.top_k=VALUE"]),
    ("model=a body.=1", ["not a valid identifier"]),
    ("model=a body.model=x", ["'model' cannot be sent through extra_body"]),
    ("model=a body.temperature=1", ["'temperature' is a named parameter"]),
    ("model=a body.k=1 body.k=2", ["'body.k'", "given twice"]),
    ("model=a timeout=0", ["timeout must be"]),
    ("model=a retries=-1", ["retries must be a whole number from 0 to 100"]),
    ("model=a max_tokens=1.5", ["whole number"]),
    ("model=a n=0", ["n must be a whole number from 1 to 1,000", "not 0"]),
    ("model=a n=1001", ["from 1 to 1,000"]),
    ("model=a n=abc", ["n must be a whole number"]),
    ("model=a stream=maybe", ["stream must be true or false"]),
    ("model=a cache=2", ["cache must be true or false"]),
    ("model=a out=1abc", ["not a valid Python variable name"]),
    ("model=a out=class", ["Python keyword"]),
    ("model=a out=a.b", ["not a valid Python variable name"]),
    ("model=a out=x,y", ["not a valid Python variable name"]),
    ('model=a system="unterminated', ["unbalanced quotes"]),
    ("model=a system='oops", ["unbalanced quotes"]),
    ("model=a Explain TCP", ["expected key=value", "'Explain'", "cell body"]),
    ("model=a =5", ["missing option name"]),
    ("model=a 1key=v", ["'1key'", "not a valid identifier"]),
    ("model=a bad-key=v", ["'bad-key'", "not a valid identifier"]),
    ("model=a temprature=0", ["unknown option 'temprature'", "Did you mean 'temperature'?"]),
    ("model=a max_token=5", ["Did you mean 'max_tokens'?"]),
    ("models=a,b", ["'models'", "Did you mean 'model'?"]),
    ("model=a Model=b", ["Did you mean 'model'?"]),
    ("model=a sys='x'", ["Did you mean 'system'?"]),
    ("model=a fallbak=b", ["Did you mean 'fallback'?"]),
    ("model=a messages=x", ["'messages'", "can't be set"]),
    ("model=a,b fallback=c", ["fallback", "exactly one model"]),
    ("model=a fallback=a", ["fallback repeats model 'a'"]),
    ("model=a fallback=b,b", ["'b'", "listed twice"]),
    ("model=a fallback=b n=2", ["can't be combined"]),
    ("model=a response_format='{\"type\": json}'", ["response_format", "invalid JSON"]),
    ("model=a response_format={type:x}", ["invalid JSON", "quote JSON"]),
    ("model=a stop=[1,2", ["invalid JSON"]),
    ("model=a stop=a,,b", ["empty item"]),
    ("model=a system=\"\"", ["empty value for 'system'"]),
]


@pytest.mark.parametrize("line, fragments", BAD, ids=[b[0] or "<empty>" for b in BAD])
def test_malformed_lines(line, fragments):
    with pytest.raises(OptionError) as info:
        parse_options(line)
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_enough_malformed_cases():
    assert len(BAD) >= 30


def test_option_error_is_value_error_and_one_line():
    err = OptionError("two\nlines")
    assert isinstance(err, ValueError)
    assert str(err) == "two lines"


def test_hint_only_for_near_misses():
    with pytest.raises(OptionError) as info:
        parse_options("model=a temprature=0")
    assert "Did you mean" in str(info.value)
    # A far-off key is still refused (a typo must never be sent and paid for), with the way to
    # send it on purpose.
    with pytest.raises(OptionError, match=r"unknown option 'repetition_penalty'\. Only .* body\.repetition_penalty="):
        parse_options("model=a repetition_penalty=1.1")


# --------------------------------------------------------------------------- interpolation

NS = {
    "topic": "TCP",
    "doc": SimpleNamespace(title="Handshakes", meta={"lang": "en"}),
    "rows": ["first", "second", "last"],
    "d": {"k": "value", 3: "three"},
    "n": 5,
}


@pytest.mark.parametrize("template, expected", [
    ("About {{topic}}.", "About TCP."),
    ("{{ topic }}", "TCP"),
    ("{{doc.title}}", "Handshakes"),
    ("{{doc.meta['lang']}}", "en"),
    ("{{rows[0]}} / {{rows[-1]}}", "first / last"),
    ('{{d["k"]}} {{d[3]}}', "value three"),
    ("{{n}}", "5"),
    ("no placeholders", "no placeholders"),
])
def test_interpolation(template, expected):
    assert interpolate(template, NS) == expected


@pytest.mark.parametrize("text", [
    "single {braces} and {topic} stay",
    '{"json": {"nested": [1, 2]}}',
    "int a[2][2] = {{1, 2}, {3, 4}};",
    "rust: format!(\"{{}}\", x)",
    'json in double braces {{"a": 1}}',
    "def f():\n    return {k: v for k, v in x}",
])
def test_braces_and_code_left_as_written(text):
    assert interpolate(text, NS) == text


def test_escaped_placeholder_is_literal():
    assert interpolate(r"keep \{{topic}} but {{topic}}", NS) == "keep {{topic}} but TCP"


@pytest.mark.parametrize("template, fragment", [
    ("{{__import__('os')}}", "only names"),
    ("{{__import__}}", "'__'"),
    ("{{topic.upper()}}", "only names"),
    ("{{doc.__class__}}", "'__'"),
    ("{{n + 1}}", "only names"),
    ("{{rows[n]}}", "only names"),
    ("{{rows[0:2]}}", "only names"),
    ("{{d[k]}}", "only names"),
    ("{{topic if n else n}}", "only names"),
    ("{{lambda: 1}}", "only names"),
    ("{{missing}}", "name 'missing' is not defined"),
    ("{{doc.nope}}", "no attribute 'nope'"),
    ("{{rows[10]}}", "IndexError"),
    ('{{d["nope"]}}', "KeyError"),
    ("{{ topic | upper }}", "only names"),
])
def test_interpolation_refuses(template, fragment):
    with pytest.raises(OptionError) as info:
        interpolate(template, NS)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_refused_placeholder_never_evaluates():
    calls = []
    ns = {"f": lambda: calls.append(1), "obj": SimpleNamespace(m=lambda: calls.append(1))}
    for template in ("{{f()}}", "{{obj.m()}}", "{{__import__('os').system('echo hi')}}"):
        with pytest.raises(OptionError):
            interpolate(template, ns)
    assert calls == []


def test_placeholders_lists_references():
    assert placeholders(r"{{a}} {{ b.c }} \{{d}} {{1,2}}") == ["a", "b.c"]
