"""F12: one finite-number rule (llmlab.base._validate.read_finite / finite_number) for every number
llmlab takes from outside: an endpoint's reported cost, price sheets, saved checker specs. Booleans
are not numbers, -0.0 is 0.0, NaN/inf/out-of-range are refused. Also: a judge reply's control
characters separate (a NUL cannot hide a second, conflicting rating), and a batch output line whose
usage holds a 5,000-digit integer keeps its answer with the tokens unknown. Real servers on
127.0.0.1 (tests/fakeserver.py, tests/fakebatch.py) through the real SDK."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from fakeserver import BatchBehaviour, FakeServer, ModelSpec

from llmlab import ConfigError, InputError, Lab
from llmlab.analysis._scoring import from_spec
from llmlab.analysis._verdicts import parse_preference, parse_rating
from llmlab.base._json import loads
from llmlab.base._pricing import PriceTable
from llmlab.base._validate import finite_number, read_finite
from llmlab.engine import _batch

# --------------------------------------------------------------------------- the rule itself

BAD = [True, False, np.bool_(True), float("nan"), float("inf"), float("-inf"), 10**400, "1", None, [1], {}]


@pytest.mark.parametrize("value", BAD, ids=repr)
def test_read_finite_refuses_what_is_not_a_finite_number(value):
    assert read_finite(value) is None
    with pytest.raises(InputError, match="^tol must be a finite number"):
        finite_number(value, field="tol")


def test_read_finite_maps_minus_zero_to_zero_and_keeps_numbers():
    zero = read_finite(-0.0)
    assert zero == 0.0 and math.copysign(1.0, zero) == 1.0
    assert read_finite(np.float32(0.5)) == 0.5 and read_finite(np.int64(3)) == 3.0 and read_finite(2**70) == 2.0**70
    assert read_finite("1e-6", text=True) == 1e-6 and read_finite(" -0 ", text=True) == 0.0
    for text in ("NaN", "Infinity", "-inf", "0x10", "", "1" * 200):
        assert read_finite(text, text=True) is None


def test_finite_number_bounds_are_inclusive_and_named():
    assert finite_number(0, lo=0.0, hi=1.0, field="x") == 0.0 and finite_number(1, lo=0.0, hi=1.0) == 1.0
    with pytest.raises(InputError, match=r"^x must be a finite number from 0 to 1, not 1\.5$"):
        finite_number(1.5, lo=0.0, hi=1.0, field="x")
    with pytest.raises(InputError, match=r"^x must be a finite number ≥ 0, not -1$"):
        finite_number(-1, lo=0.0, field="x")


# --------------------------------------------------------------------------- reported cost

# gpt-4o-mini is on the bundled sheet: 1M prompt + 1M completion tokens cost $0.75 there
TOKENS = {"prompt_tokens": 10**6, "completion_tokens": 10**6}
SHEET_COST = 0.75


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("cost", [True, -0.0, -1000.0, 1e308, float("inf"), "NaN", "-5", 10**400, [1]], ids=repr)
def test_a_bad_reported_cost_falls_back_to_the_price_sheet_with_a_note(tmp_path, stream, cost):
    spec = ModelSpec(usage_patch={"cost": cost}, **TOKENS)
    with FakeServer({"gpt-4o-mini": spec}) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path / "r.sqlite", quiet=True) as lab:
        row = lab.compare("hi", models=["gpt-4o-mini"], cache=False, stream=stream).df.iloc[0]
    assert row["status"] == "ok" and row["cost_source"] == "price_table"
    assert row["cost_usd"] == pytest.approx(SHEET_COST)
    note = row["error_message"]
    assert "the endpoint reported a cost (usage.cost)" in note and "priced from the price sheet" in note


@pytest.mark.parametrize("header", [-1000.0, -0.0])
def test_a_bad_cost_header_falls_back_to_the_price_sheet(tmp_path, header):
    with FakeServer({"gpt-4o-mini": ModelSpec(cost_header=header, **TOKENS)}) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path / "r.sqlite", quiet=True) as lab:
        row = lab.compare("hi", models=["gpt-4o-mini"], cache=False).df.iloc[0]
    assert row["cost_source"] == "price_table" and row["cost_usd"] == pytest.approx(SHEET_COST)
    assert "x-litellm-response-cost" in row["error_message"]


def test_a_good_reported_cost_still_wins_and_two_huge_ones_never_sum_to_inf(tmp_path):
    models = {"gpt-4o-mini": ModelSpec(usage_patch={"cost": 0.0}, **TOKENS),
              "gpt-4o": ModelSpec(usage_patch={"cost": 0.002}, **TOKENS),
              "x1": ModelSpec(usage_patch={"cost": 1e308}), "x2": ModelSpec(usage_patch={"cost": 1e308})}
    with FakeServer(models) as srv, Lab(base_url=srv.base_url, db=tmp_path / "r.sqlite", quiet=True) as lab, \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = lab.compare("hi", models=list(models), cache=False)
    df = res.df.set_index("requested_model")
    assert df.loc["gpt-4o-mini", "cost_usd"] == 0.0 and df.loc["gpt-4o-mini", "cost_source"] == "reported"
    assert df.loc["gpt-4o", "cost_usd"] == 0.002 and df.loc["gpt-4o", "cost_source"] == "reported"
    assert not np.isinf(res.df["cost_usd"].astype(float)).any()


# --------------------------------------------------------------------------- price sheets

@pytest.mark.parametrize("field", ["input_cost_per_token", "output_cost_per_token", "cache_read_input_token_cost",
                                   "input_cost_per_token_batches"])
@pytest.mark.parametrize("value", [True, False, np.bool_(True)], ids=repr)
def test_a_bool_price_is_refused_in_one_line_naming_model_and_field(field, value):
    entry = {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6, field: value}
    with pytest.raises(ConfigError) as caught:
        PriceTable.load({"my-model": entry})
    message = str(caught.value)
    assert "\n" not in message and "'my-model'" in message and field in message


def test_a_minus_zero_price_is_zero():
    price = PriceTable.load({"m": {"input_cost_per_token": -0.0, "output_cost_per_token": "-0"}}).lookup("m")
    assert math.copysign(1.0, price.input_cost_per_token) == 1.0 and price.output_cost_per_token == 0.0


# --------------------------------------------------------------------------- checker specs

@pytest.mark.parametrize("spec", [
    {"kind": "numeric", "tol": float("nan")}, {"kind": "numeric", "tol": -1}, {"kind": "numeric", "tol": float("inf")},
    {"kind": "numeric", "tol": True}, {"kind": "numeric", "tol": "0.1"}, {"kind": "numeric", "rel": float("nan")},
    {"kind": "numeric", "rel": -0.5}, {"kind": "exact", "normalize": "yes"}, {"kind": "exact", "normalize": 1},
    {"kind": "contains", "case": "no"}, {"kind": "json_valid", "compare": 0},
    '{"kind": "numeric", "tol": NaN}',
], ids=repr)
def test_a_checker_spec_with_a_number_or_flag_that_is_not_one_is_refused(spec):
    with pytest.raises(InputError) as caught:
        from_spec(spec)
    assert "\n" not in str(caught.value)


def test_good_checker_specs_still_score():
    assert from_spec({"kind": "numeric", "tol": 0.5}).check("about 5.4", "5")[0] == 1.0
    assert from_spec({"kind": "numeric", "tol": -0.0}).check("5", "5")[0] == 1.0
    assert from_spec({"kind": "exact", "normalize": False}).check("A", "a")[0] == 0.0


# --------------------------------------------------------------------------- judge verdicts

@pytest.mark.parametrize("sep", ["\x00", "\x01", "\x1b", "\x7f", "\x85", "\x9b"], ids=repr)
def test_a_control_character_does_not_hide_a_second_conflicting_rating(sep):
    verdict = parse_rating(f"Rating: [[1]]{sep}[[10]]", scale=(1, 10))
    assert not verdict.known and verdict.status == "ambiguous"
    assert not parse_rating(f"Rating: 1{sep}Rating: 10", scale=(1, 10)).known
    assert not parse_preference(f"[[A]]{sep}[[B]]").known


def test_a_control_character_alone_does_not_lose_a_rating():
    assert parse_rating("Rating: [[7]]\x00", scale=(1, 10)).value == 7.0
    assert parse_rating("Rating:\x00[[8]]", scale=(1, 10)).value == 8.0


# --------------------------------------------------------------------------- a 5,000-digit integer

def test_loads_reads_an_integer_too_long_for_python_as_infinity_and_keeps_the_rest():
    value = loads('{"usage": {"prompt_tokens": ' + "9" * 5000 + ', "n": -' + "1" * 5000 + '}, "text": "kept"}')
    assert value == {"usage": {"prompt_tokens": math.inf, "n": -math.inf}, "text": "kept"}
    deep = loads("[" * 1500 + "9" * 5000 + "]" * 1500)  # the recursion-free path too
    for _ in range(1500):
        deep = deep[0]
    assert deep == math.inf


def test_a_batch_line_with_a_5000_digit_usage_keeps_its_answer(tmp_path, monkeypatch):
    monkeypatch.setattr(_batch.BatchSession, "poll_first_s", 0.02)
    behaviour = BatchBehaviour(output_edit=("987654321", "9" * 5000))
    with FakeServer({"a": ModelSpec(text="paid answer", prompt_tokens=987654321, completion_tokens=5)},
                    batches=behaviour) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path / "r.sqlite", retries=0, quiet=True) as lab, \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = lab.sweep(["q1", "q2"], models=["a"], batch=True, progress=False).df
    assert list(df["status"]) == ["ok", "ok"] and list(df["response_text"]) == ["paid answer"] * 2
    odd = df[df["error_message"].fillna("").str.contains("usage.prompt_tokens")]
    assert len(odd) == 1 and "not a token count: it is unknown" in odd["error_message"].iloc[0]
    assert math.isnan(odd["prompt_tokens"].iloc[0]) and odd["completion_tokens"].iloc[0] == 5


# --------------------------------------------------------------------------- other ways in

@pytest.mark.parametrize("value", [True, float("nan"), -1.0, 1e4, "x"], ids=repr)
def test_a_price_built_by_hand_passes_the_same_rule(value):
    from llmlab import Price

    with pytest.raises(ConfigError) as caught:
        Price(value, 1e-6)
    assert "\n" not in str(caught.value) and "input_cost_per_token" in str(caught.value)
    with pytest.raises(ConfigError):
        Price(1e-6, 1e-6, input_cost_per_token_batches=value)
    assert Price(-0.0, 2).input_cost_per_token == 0.0


def test_a_price_so_large_that_a_cost_would_overflow_is_refused():
    with pytest.raises(ConfigError, match="'m'"):
        PriceTable.load({"m": {"input_cost_per_token": 1e300, "output_cost_per_token": 1e-6}})


def test_a_lone_carriage_return_does_not_hide_a_second_rating():
    assert not parse_rating("Rating: [[1]]\r[[10]]", scale=(1, 10)).known
    assert parse_rating("Rating: [[7]]\r\nThanks.\r\n", scale=(1, 10)).value == 7.0


def test_a_completion_count_that_is_not_one_is_said_and_counted_locally(tmp_path):
    with FakeServer({"m": ModelSpec(text="two words", usage_patch={"completion_tokens": 10**16})}) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path / "r.sqlite", quiet=True) as lab, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        row = lab.compare("hi", models=["m"], cache=False).df.iloc[0]
    assert row["tokens_estimated"] and 0 < row["completion_tokens"] < 10
    assert "usage.completion_tokens was 10000000000000000, not a token count" in row["error_message"]
