"""Huge numbers and deep nesting are one-line errors everywhere, and nothing is sent (issue 21, a6 B4/B5/W3).

``seed=10**5000`` reached ``repr()`` in the range check's message, which itself raised Python's
``ValueError: Exceeds the limit (4300 digits)``; ``%%llm body.x=<4,301 digits>`` raised it from
``int()``; a ``{{rows[0][0]…}}`` placeholder 1,000 deep was a ``RecursionError``; ``timeout=inf``,
``Timeouts(connect=nan)``, ``RetryPolicy(retries=10**5000)`` and ``tools=[1, 2]`` were taken and
sent. Now one way of showing a refused value (``base/_validate.shown_value``: "a 5,001-digit integer") in every option
check, the finite-number rule for timeouts and a RetryPolicy, the magic's numbers read under the
same rule, placeholders bounded (1,000 characters, 64 parts) and walked without recursion.
Generated over options x values; the Python API through a real server on 127.0.0.1 and the real
SDK, the magics through a real IPython shell.
"""
from __future__ import annotations

import functools
import types

import pytest
from fakeserver import FakeServer, ModelSpec
from IPython.core.error import UsageError
from test_magics import chat_requests, fresh_shell

from llmlab import InputError, Lab, RetryPolicy, Timeouts
from llmlab.magics import load_ipython_extension

# --------------------------------------------------------------------------- values

# Bad for every option that takes a number: JSON carries any integer, but Python writes at most
# 4,300 digits of one, and no option takes NaN or an infinity.
BAD_NUMBERS = {"10**5000": 10**5000, "-10**5000": -(10**5000), "10**4300": 10**4300,
               "inf": float("inf"), "-inf": float("-inf"), "nan": float("nan")}
KEY = "sk-proj-" + "Q7vLm2Xa9TzR4wNc8KpY3hBd6FsJ1gUe5oWi0qAx"


def _deep(depth: int, inner: object = 1) -> object:
    return functools.reduce(lambda value, _: [value], range(depth), inner)


def _one_line(message: str, *names: str) -> None:
    assert "\n" not in message and len(message) < 400, message
    assert "set_int_max_str_digits" not in message and "Traceback" not in message, message
    assert KEY not in message, message
    for name in names:
        assert name in message, (name, message)


def test_the_one_way_of_showing_a_value_is_short_and_never_raises(monkeypatch):
    from llmlab.base._validate import digits_shown, shown_value

    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    monkeypatch.setenv("LLMLAB_API_KEY", KEY)
    from llmlab.base._credentials import remember_keys
    remember_keys()
    values = [*BAD_NUMBERS.values(), "x" * 100_000, _deep(100_000), {"a": [KEY]}, Hostile(), KEY, b"\xff" * 10**6]
    for value in values:
        _one_line(shown_value(value))
    for digits in (21, 4300, 4301, 5001, 100_000):
        assert shown_value(10 ** (digits - 1)) == digits_shown(digits) == f"a {digits:,}-digit integer"
        assert shown_value(-(10**digits - 1)) == f"a {digits:,}-digit integer"
    assert shown_value([1, "a", None]) == "[1, 'a', None]" and shown_value(1.5) == "1.5"


# --------------------------------------------------------------------------- the Python API

# option -> (the keywords that carry value v, what the message names)
API_OPTIONS = {
    "seed": (lambda v: {"seed": v}, "seed"),
    "max_tokens": (lambda v: {"max_tokens": v}, "max_tokens"),
    "max_completion_tokens": (lambda v: {"max_completion_tokens": v}, "max_completion_tokens"),
    "top_logprobs": (lambda v: {"logprobs": True, "top_logprobs": v}, "top_logprobs"),
    "n": (lambda v: {"n": v}, "n must"),
    "retries": (lambda v: {"retries": v}, "retries"),
    "temperature": (lambda v: {"temperature": v}, "temperature"),
    "top_p": (lambda v: {"top_p": v}, "top_p"),
    "presence_penalty": (lambda v: {"presence_penalty": v}, "presence_penalty"),
    "stop": (lambda v: {"stop": ["END", v]}, "stop"),
    "timeout": (lambda v: {"timeout": v}, "timeout"),
    "timeout per model": (lambda v: {"timeout": {"m": v}}, "timeout"),
    "Timeouts.connect": (lambda v: {"timeout": Timeouts(connect=v)}, "Timeouts.connect"),
    "Timeouts.first_token": (lambda v: {"timeout": Timeouts(first_token=v)}, "Timeouts.first_token"),
    "Timeouts.total": (lambda v: {"timeout": Timeouts(total=v)}, "Timeouts.total"),
    "RetryPolicy.retries": (lambda v: {"retry_policy": RetryPolicy(retries=v)}, "RetryPolicy.retries"),
    "RetryPolicy.base_s": (lambda v: {"retry_policy": RetryPolicy(base_s=v)}, "RetryPolicy.base_s"),
    "RetryPolicy.cap_s": (lambda v: {"retry_policy": RetryPolicy(cap_s=v)}, "RetryPolicy.cap_s"),
    "extra_body": (lambda v: {"extra_body": {"top_k": v}}, "extra_body"),
    "metadata": (lambda v: {"metadata": {"k": v}}, "metadata"),
    "logit_bias": (lambda v: {"logit_bias": {"50256": v}}, "logit_bias"),
    "model_params": (lambda v: {"model_params": {"m": {"top_k": v}}}, "model_params"),
    "model_params seed": (lambda v: {"model_params": {"m": {"seed": v}}}, "seed"),
    "response_format": (lambda v: {"response_format": {"type": "json_schema", "json_schema": {
        "name": "s", "schema": {"type": "string", "maxLength": v}}}}, "response_format"),
    "tools": (lambda v: {"tools": [v]}, "tools[0]"),
    "tool parameters": (lambda v: {"tools": [{"type": "function", "function": {
        "name": "f", "parameters": {"type": "integer", "maximum": v}}}]}, "tools"),
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with FakeServer({"m": ModelSpec(text="fine")}) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path_factory.mktemp("log") / "runs.sqlite", quiet=True) as lab:
        yield lab, srv


@pytest.mark.parametrize("value", list(BAD_NUMBERS.values()), ids=list(BAD_NUMBERS))
@pytest.mark.parametrize("option", list(API_OPTIONS))
def test_a_bad_number_in_any_option_is_one_line_and_nothing_is_sent(lab, option, value):
    lab, srv = lab
    build, name = API_OPTIONS[option]
    sent = len(chat_requests(srv))
    for call in (lab.compare, lab.sweep):
        with pytest.raises(InputError) as caught:
            kwargs = build(value)  # RetryPolicy/Timeouts themselves take anything; the call refuses it
            call("hi" if call is lab.compare else ["hi"], models=["m"], cache=False, **kwargs)
        _one_line(str(caught.value), name)
    assert len(chat_requests(srv)) == sent


@pytest.mark.parametrize("option, kwargs", [
    ("tools ints", {"tools": [1, 2]}), ("tools text", {"tools": ["f"]}), ("tools none", {"tools": [None]}),
    ("tools list", {"tools": [[{"type": "function"}]]}), ("functions", {"functions": [1]}),
    ("timeout 1e12", {"timeout": 1e12}), ("connect 1e12", {"timeout": Timeouts(connect=1e12)}),
    ("timeout True", {"timeout": True}), ("RetryPolicy -1", {"retry_policy": RetryPolicy(retries=-1)}),
    ("seed key", {"seed": KEY}), ("stop key", {"stop": [1, KEY]}),
])
def test_bad_shapes_are_refused_before_sending(lab, monkeypatch, option, kwargs):
    lab, srv = lab
    monkeypatch.setenv("LLMLAB_API_KEY", KEY)
    from llmlab.base._credentials import remember_keys
    remember_keys()
    sent = len(chat_requests(srv))
    with pytest.raises(InputError) as caught:
        lab.compare("hi", models=["m"], cache=False, **kwargs)
    _one_line(str(caught.value), option.split()[0].split(".")[0])
    assert len(chat_requests(srv)) == sent


LAB_SETTINGS = {"rpm": lambda v: {"rpm": v}, "tpm": lambda v: {"tpm": v},
                "RetryPolicy.retries": lambda v: {"retry_policy": RetryPolicy(retries=v)},
                "RetryPolicy.cap_s": lambda v: {"retry_policy": RetryPolicy(cap_s=v)}}


@pytest.mark.parametrize("value", list(BAD_NUMBERS.values()), ids=list(BAD_NUMBERS))
@pytest.mark.parametrize("setting", list(LAB_SETTINGS))
def test_a_bad_number_in_a_lab_setting_is_one_line(tmp_path, setting, value):
    # Lab(rpm=inf) was taken (no limit anyone means), Lab(tpm=10**5000) raised Python's ValueError
    with pytest.raises(InputError) as caught:
        Lab(base_url="http://127.0.0.1:9/v1", db=tmp_path / "runs.sqlite", quiet=True, **LAB_SETTINGS[setting](value))
    _one_line(str(caught.value), setting)


NESTED = {"extra_body": lambda v: {"extra_body": {"x": v}}, "metadata": lambda v: {"metadata": {"x": v}},
          "response_format": lambda v: {"response_format": {"type": "json_schema", "json_schema": {"schema": v}}},
          "tools": lambda v: {"tools": [{"type": "function", "function": {"parameters": v}}]},
          "model_params": lambda v: {"model_params": {"m": {"top_k": v}}}}


@pytest.mark.parametrize("depth", [65, 2_000, 100_000])
@pytest.mark.parametrize("option", list(NESTED))
def test_deeply_nested_option_values_are_one_line(lab, option, depth):
    lab, srv = lab
    sent = len(chat_requests(srv))
    with pytest.raises(InputError) as caught:
        lab.compare("hi", models=["m"], cache=False, **NESTED[option](_deep(depth)))
    _one_line(str(caught.value), option, "nested deeper than 64 levels")
    assert len(chat_requests(srv)) == sent


def test_the_largest_good_values_are_still_sent(lab):
    lab, srv = lab
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    good = [{"seed": 2**63 - 1}, {"seed": -(2**63)}, {"max_tokens": 2_000_000}, {"timeout": 1_000_000},
            {"timeout": Timeouts(connect=1_000_000, total=0.5e6)}, {"extra_body": {"top_k": 10**4299}},
            {"tools": [tool]}, {"retry_policy": RetryPolicy(retries=100, base_s=0.0)}, {"extra_body": {"x": _deep(63)}}]
    for kwargs in good:
        sent = len(chat_requests(srv))
        assert lab.compare("hi", models=["m"], cache=False, **kwargs).df["status"].tolist() == ["ok"], kwargs
        assert len(chat_requests(srv)) == sent + 1
    bodies = [r.body for r in chat_requests(srv)]
    assert [tool] in [b.get("tools") for b in bodies] and 10**4299 in [b.get("top_k") for b in bodies]


# --------------------------------------------------------------------------- the magic

@pytest.fixture(scope="module")
def magic():
    with FakeServer({"m": ModelSpec(text="fine")}) as srv:
        sh = fresh_shell()
        load_ipython_extension(sh)
        sh.run_line_magic("config", f'LLMLab.base_url = "{srv.base_url}"')
        sh.run_line_magic("config", 'LLMLab.widgets = "off"')
        try:
            yield sh, srv
        finally:
            fresh_shell()


def _usage(sh, srv, line: str, cell: str = "hi") -> str:
    """The UsageError a %%llm cell raises through IPython's own dispatch, with nothing sent."""
    sent = len(chat_requests(srv))
    with pytest.raises(UsageError) as caught:
        sh.run_cell_magic("llm", line, cell)
    assert len(chat_requests(srv)) == sent
    return str(caught.value)


INTEGER_KEYS = ["seed", "max_tokens", "max_completion_tokens", "top_logprobs", "n", "retries", "body.x", "m:seed",
                "m:body.top_k"]
LONG_INTEGERS = {"4301 digits": "9" * 4301, "5000 digits": "1" + "0" * 4999, "-5000 digits": "-" + "9" * 5000,
                 "+4301 digits": "+" + "7" * 4301}


@pytest.mark.parametrize("value", list(LONG_INTEGERS.values()), ids=list(LONG_INTEGERS))
@pytest.mark.parametrize("key", INTEGER_KEYS)
def test_the_magic_reads_a_too_long_integer_as_one_line(magic, key, value):
    message = _usage(*magic, f"model=m {key}={value}")
    _one_line(message, key, "-digit integer")


NUMBER_KEYS = ["temperature", "top_p", "presence_penalty", "frequency_penalty", "timeout", "body.x",
               "m:temperature", "m:body.min_p"]
HUGE_FLOATS = {"1e400": "1e400", "-1e400": "-1e400", "400 digits.5": "9" * 400 + ".5", "1.0e99999": "1.0e99999"}


@pytest.mark.parametrize("value", list(HUGE_FLOATS.values()), ids=list(HUGE_FLOATS))
@pytest.mark.parametrize("key", NUMBER_KEYS)
def test_the_magic_refuses_a_number_beyond_a_float(magic, key, value):
    _one_line(_usage(*magic, f"model=m {key}={value}"), key.split(":")[-1].removeprefix("body."))


@pytest.mark.parametrize("line", ["model=m tools='[1,2]'", "model=m tools='[\"f\"]'", "model=m timeout=1e12",
                                  "model=m timeout=0", "model=m m:tools='[[]]'"])
def test_the_magic_refuses_bad_timeouts_and_tool_shapes(magic, line):
    _one_line(_usage(*magic, line))


PARTS = {"index": "[0]", "attribute": ".a", "key": "['k']", "mixed": ".a[0]"}


@pytest.mark.parametrize("depth", [65, 100, 333, 1_000, 3_000, 10_000])
@pytest.mark.parametrize("part", list(PARTS))
def test_a_placeholder_nested_deep_is_one_line(magic, part, depth):
    sh, srv = magic
    sh.user_ns["rows"] = [[1]]
    message = _usage(sh, srv, "model=m", "Say {{rows" + PARTS[part] * depth + "}} now")
    _one_line(message, "{{rows")
    assert "placeholder" in message or "parts" in message


@pytest.mark.parametrize("length", [1_001, 100_000])
def test_a_very_long_placeholder_is_one_short_line(magic, length):
    message = _usage(*magic, "model=m", "{{" + "a" * length + "}}")
    _one_line(message, f"{length:,} characters")


def test_placeholders_up_to_the_bound_still_resolve(magic):
    sh, srv = magic
    leaf = types.SimpleNamespace(a=["leaf value"])
    sh.user_ns["rows"] = _deep(64, "deepest")
    sh.user_ns["tree"] = functools.reduce(lambda inner, _: types.SimpleNamespace(a=[inner]), range(31), leaf)
    sh.run_cell_magic("llm", "model=m cache=false", "{{rows" + "[0]" * 64 + "}} and {{tree" + ".a[0]" * 31 + ".a[0]}}")
    assert chat_requests(srv)[-1].body["messages"][-1]["content"] == "deepest and leaf value"


@pytest.mark.parametrize("ref", [KEY, f"rows[{KEY!r}]", "x" * 50 + KEY, KEY + "[0]" * 70, "rows." + KEY,
                                 "a" * 990 + KEY])
def test_a_placeholder_holding_the_key_is_refused_without_echoing_it(magic, monkeypatch, ref):
    monkeypatch.setenv("LLMLAB_API_KEY", KEY)
    magic[0].user_ns["rows"] = [[1]]
    _one_line(_usage(*magic, "model=m", "{{" + ref + "}}"))
