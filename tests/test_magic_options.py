"""The %%llm option grammar and {{name}} interpolation, as pure functions (no IPython, no network)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from llmlab._magic_options import MagicOptions, OptionError, interpolate, parse_options, placeholders

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
    ("model=a reasoning_effort=high", dict(extra={"reasoning_effort": "high"})),
    ("model=a seed=42 min_p=0.05", dict(extra={"seed": 42, "min_p": 0.05})),
    ("model=a top_k=40", dict(extra={"top_k": 40})),  # a real parameter, not a typo of top_p
    ("model=a stop=END,STOP", dict(extra={"stop": ["END", "STOP"]})),
    ("model=a stop='a,b'", dict(extra={"stop": "a,b"})),  # quoted: literal text
    ("model=a logprobs=true", dict(extra={"logprobs": True})),
    ("model=a user=null", dict(extra={"user": None})),
    ("model=a seed='42'", dict(extra={"seed": "42"})),  # quoted: stays a string
    ("model=a response_format='{\"type\": \"json_object\"}'",
     dict(extra={"response_format": {"type": "json_object"}})),
    ("model=a stop='[\"\\n\", \"END\"]'", dict(extra={"stop": ["\n", "END"]})),
    ("model=a logit_bias={}", dict(extra={"logit_bias": {}})),
    ("model=a system=\"has = sign and #hash\"", dict(system="has = sign and #hash")),
    ("  model=a   out=_x1  ", dict(out="_x1")),
    ("model=a max_tokens=+5", dict(max_tokens=5)),
    ("model=a temperature=1e-1", dict(temperature=0.1)),
]


@pytest.mark.parametrize("line, expected", GOOD, ids=[g[0] for g in GOOD])
def test_good_lines(line, expected):
    opts = parse_options(line)
    assert isinstance(opts, MagicOptions)
    for key, value in expected.items():
        assert getattr(opts, key) == value, key


def test_defaults_fill_missing_model():
    opts = parse_options("temperature=0", known_defaults={"model": ["x", "y"]})
    assert opts.models == ["x", "y"]
    assert parse_options("model=z", known_defaults={"model": ["x"]}).models == ["z"]
    assert parse_options("", known_defaults={"model": ["x"]}).models == ["x"]


def test_call_kwargs_drop_unset_and_carry_extras():
    opts = parse_options("model=a temperature=0 top_p=0.5 n=2 seed=7")
    assert opts.call_kwargs() == {"temperature": 0.0, "top_p": 0.5, "n": 2, "seed": 7}
    assert parse_options("model=a").call_kwargs() == {}


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
    ("model=a temperature=3", ["temperature=3", "out of range", "0–2"]),
    ("model=a temperature=-0.1", ["out of range"]),
    ("model=a temperature=hot", ["temperature must be a number", "'hot'"]),
    ("model=a temperature=nan", ["must be a number"]),
    ("model=a temperature=0,1", ["takes one number"]),
    ("model=a top_p=1.5", ["top_p=1.5", "out of range", "0–1"]),
    ("model=a max_tokens=0", ["max_tokens=0", "out of range"]),
    ("model=a max_tokens=-5", ["out of range"]),
    ("model=a max_tokens=1.5", ["whole number"]),
    ("model=a n=0", ["n=0", "out of range", "1–1000"]),
    ("model=a n=1001", ["out of range"]),
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
    # A far-off key is an endpoint parameter, sent as-is.
    assert parse_options("model=a repetition_penalty=1.1").extra == {"repetition_penalty": 1.1}


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
