"""Scorers: each built-in on good, wrong and malformed answers; dispatch; the judge's sweep call."""
from __future__ import annotations

import json
import re
import types

import numpy as np
import pandas as pd
import pytest

from llmlab import InputError, scoring


def _rows(texts, expected, status=None, **extra):
    df = pd.DataFrame({"prompt_id": [f"p{i}" for i in range(len(texts))],
                       "response_text": texts, "expected": expected, **extra})
    df["status"] = status if status is not None else "ok"
    return df


# --- single scorers -------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected,want", [
    ("Positive.", "positive", 1.0),
    ("  positive  ", "Positive", 1.0),
    ('"Paris"', "paris", 1.0),
    ("positive sentiment", "positive", 0.0),
    ("negative", "positive", 0.0),
    (None, "positive", 0.0),
    ("positive", None, 0.0),
])
def test_exact(text, expected, want):
    assert scoring.exact()(text, expected) == want


def test_exact_raw_is_case_sensitive():
    assert scoring.exact(normalize=False)("Paris", "paris") == 0.0
    assert scoring.exact(normalize=False)(" Paris ", "Paris") == 1.0


def test_contains_case_and_alternatives():
    s = scoring.contains()
    assert s("The answer is PARIS, France", "paris") == 1.0
    assert s("Lyon", "paris") == 0.0
    assert s("it is chat", ["chien", "chat"]) == 1.0
    assert scoring.contains(case=True)("PARIS", "paris") == 0.0
    assert s(None, "paris") == 0.0
    assert s(float("nan"), "paris") == 0.0


def test_regex_fixed_pattern_and_from_expected():
    fixed = scoring.regex(r"^\d+$")
    assert fixed.uses_expected is False
    assert fixed("42", None) == 1.0
    assert fixed("forty-two", None) == 0.0
    from_expected = scoring.regex()
    assert from_expected.uses_expected is True
    assert from_expected("def add(a, b):", r"def\s+add") == 1.0


def test_regex_never_raises_on_bad_input():
    score, reason = scoring.regex().check("abc", "([unclosed")
    assert score == 0.0 and reason.startswith("invalid pattern")
    score, reason = scoring.regex(r"x").check(None, None)
    assert (score, reason) == (0.0, "no answer")


def test_json_valid():
    s = scoring.json_valid()
    assert s('{"a": 1}', None) == 1.0
    assert s('```json\n{"a": 1}\n```', None) == 1.0
    score, reason = s.check("Here it is: {'a': 1}", None)
    assert score == 0.0 and reason.startswith("invalid JSON")
    assert s.check(None, None) == (0.0, "no answer")
    keyed = scoring.json_valid(keys=["a", "b"])
    assert keyed.check('{"a": 1}', None) == (0.0, "missing keys: b")
    assert keyed.check("[1, 2]", None)[0] == 0.0


def test_json_compare_gives_partial_credit():
    s = scoring.json_valid(compare=True)
    assert s.uses_expected
    expected = json.dumps({"item": "apples", "quantity": 3, "city": "Oslo"})
    assert s('{"item": "Apples", "quantity": "3", "city": "Oslo"}', expected) == 1.0
    score, reason = s.check('{"item": "pears", "quantity": 3, "city": "Oslo"}', expected)
    assert score == pytest.approx(2 / 3) and "item" in reason
    assert s.check('{"item": "apples"}', "not json") == (0.0, "expected is not JSON")


@pytest.mark.parametrize("text,want_last,want_first", [
    ("42", 1.0, 1.0),
    ("3 + 39 = 42", 1.0, 0.0),
    ("42, because 6*7", 0.0, 1.0),
    ("The total is 1,042 dollars", 0.0, 0.0),
])
def test_numeric_first_or_last(text, want_last, want_first):
    assert scoring.numeric()(text, "42") == want_last
    assert scoring.numeric(which="first")(text, "42") == want_first


def test_numeric_tolerance_separators_and_failures():
    assert scoring.numeric()("1,234.5", "1234.5") == 1.0
    assert scoring.numeric(tol=0.01)("3.14159", "3.14") == 1.0
    assert scoring.numeric(tol=0.001)("3.14159", "3.14") == 0.0
    assert scoring.numeric(rel=0.1)("105", "100") == 1.0
    assert scoring.numeric()("x = -3", "-3") == 1.0
    assert scoring.numeric().check("no idea", "4") == (0.0, "no number in answer")
    assert scoring.numeric().check("4", "four") == (0.0, "expected is not a number")
    assert scoring.numeric().check(None, "4") == (0.0, "no number in answer")
    with pytest.raises(ValueError):
        scoring.numeric(which="middle")


def test_choice_takes_first_label_word():
    s = scoring.choice(["positive", "negative"])
    assert s("Positive, not negative.", "positive") == 1.0
    assert s("It is negative; some would say positive", "positive") == 0.0
    assert s("NEGATIVE", "negative") == 1.0
    # whole words only: "negatively" is not the label "negative"
    assert s.check("negatively charged", "negative") == (0.0, "no label found")
    assert s.check("", "negative") == (0.0, "no label found")
    assert s.check(None, "negative") == (0.0, "no answer")


def test_callable_scorer_coerces_and_survives_exceptions():
    assert scoring.as_scorer(lambda t, e: t == e)("a", "a") == 1.0
    assert scoring.as_scorer(lambda t, e: 3.5)("a", "b") == 1.0       # clipped
    assert scoring.as_scorer(lambda t, e: -1)("a", "b") == 0.0
    assert scoring.as_scorer(lambda t, e: None).check("a", "b")[0] == 0.0

    def fragile(text, expected):
        return len(text) > 2

    with pytest.warns(RuntimeWarning, match="raised on 1 of 2 rows"):
        out = scoring.score(_rows(["abc", None], ["x", "y"]), fragile)
    assert out["score"].tolist() == [1.0, 0.0]
    assert out["score_reason"][1].startswith("scorer raised TypeError")


# --- score(): error rows, copy, columns -----------------------------------------------------

def test_score_adds_columns_on_a_copy_and_zeroes_error_rows():
    df = _rows(["positive", "positive", None], ["positive"] * 3, status=["ok", "error", "error"])
    out = scoring.score(df, scoring.exact(), column="q")
    assert "q" not in df.columns
    assert out["q"].tolist() == [1.0, 0.0, 0.0]
    assert out["q_reason"].tolist() == ["exact match", "error row", "error row"]


def test_score_accepts_specs_and_kind_names():
    df = _rows(["positive"], ["positive"])
    assert scoring.score(df, "exact")["score"][0] == 1.0
    assert scoring.score(df, {"kind": "choice", "labels": ["positive", "negative"]})["score"][0] == 1.0
    assert scoring.score(df, '{"kind": "regex", "pattern": "^pos"}')["score"][0] == 1.0
    with pytest.raises(ValueError, match="unknown checker kind"):
        scoring.score(df, {"kind": "bleu"})


# --- dispatch ---------------------------------------------------------------------------------

def test_by_task_dispatch_and_default():
    df = _rows(["positive", "42", "Paris!"], ["positive", "42.0", "paris"],
               task=["classify", "arithmetic", "geo"])
    s = scoring.by_task({"classify": scoring.choice(["positive", "negative"]),
                         "arithmetic": scoring.numeric()}, default=scoring.exact())
    out = scoring.score(df, s)
    assert out["score"].tolist() == [1.0, 1.0, 1.0]
    assert out["score_reason"][1].startswith("numeric")
    assert out["score_reason"][2].startswith("exact")


def test_by_task_without_default_refuses_unmapped_tasks():
    df = _rows(["x"], ["x"], task=["poetry"])
    with pytest.raises(ValueError, match="poetry"):
        scoring.score(df, scoring.by_task({"classify": scoring.exact()}))


def test_auto_uses_checker_column_dicts_or_json():
    df = _rows(["yes", "7", "nope"], ["yes", "7", "yes"])
    df["checker"] = [{"kind": "choice", "labels": ["yes", "no"]}, '{"kind": "numeric"}',
                     {"labels": ["yes", "no"], "kind": "choice"}]
    out = scoring.auto(df)
    assert out["score"].tolist() == [1.0, 1.0, 0.0]
    assert "_llmlab_checker_key" not in out.columns


def test_auto_with_checkers_from_dataset_and_missing_specs():
    df = _rows(["7", "7"], ["7", "7"])
    table = pd.DataFrame({"prompt_id": ["p0"], "checker": [{"kind": "numeric"}]})
    with pytest.raises(ValueError, match="no scorer"):
        scoring.auto(df, checkers=table)
    out = scoring.auto(df, checkers=table, default=scoring.exact())
    assert out["score"].tolist() == [1.0, 1.0]
    assert out["score_reason"][1].startswith("exact")


# --- judge ------------------------------------------------------------------------------------

class _FakeLab:
    """Answers judge prompts by a rule on the graded answer; records how sweep was called."""

    def __init__(self, replies):
        self.replies, self.calls = replies, []

    def sweep(self, prompts, **kwargs):
        self.calls.append((prompts.copy(), kwargs))
        rows = []
        for pid, prompt in zip(prompts["prompt_id"], prompts["prompt"], strict=True):
            answer = re.search(r"\[The Start of Assistant's Answer\]\n(.*?)\n\[The End", prompt, re.S).group(1)
            reply = self.replies[answer]
            failed = reply is RuntimeError
            rows.append({"prompt_id": pid, "attempt": 1, "status": "error" if failed else "ok",
                         "error_type": "APITimeoutError" if failed else None,
                         "response_text": None if failed else reply})
        return types.SimpleNamespace(df=pd.DataFrame(rows), run_id="r1")


def test_judge_sends_one_recorded_sweep_and_parses_verdicts():
    lab = _FakeLab({"good": "1. Accurate.\n2. Cites 3 sources from 2021.\nRating: [[8]]",
                    "fine": "[[10]]\nIt is complete.", "odd": "I cannot say", "slow": RuntimeError,
                    "big": "Rating: [[42]]"})
    df = _rows(["good", "fine", "odd", "slow", "big", "never sent", ""],
               ["ref"] * 7, status=["ok"] * 5 + ["error", "ok"],
               prompt=["q"] * 7, requested_model=["m"] * 7)
    with pytest.warns(RuntimeWarning, match="3 of 6 verdicts unknown"):
        out = scoring.score(df, scoring.judge(model="judge-model", lab=lab, rubric="Be strict."))
    assert len(lab.calls) == 1
    sent, kwargs = lab.calls[0]
    assert kwargs == {"models": ["judge-model"], "temperature": 0, "max_tokens": 512,
                      "cache": True, "progress": False}
    assert len(sent) == 5                       # error row and empty answer are not judged
    assert sent["prompt_id"].is_unique
    assert "Be strict." in sent["prompt"].iloc[0] and "ref" in sent["prompt"].iloc[0]
    scores = out["score"].tolist()
    assert scores[:2] == pytest.approx([7 / 9, 1.0])           # (n - 1) / 9: the list before is not read
    assert np.isnan(scores[2:5]).all()                          # unknown, never 0
    assert scores[5:] == [0.0, 0.0]                             # an error row and no answer are failures
    reasons = out["score_reason"].tolist()
    assert reasons[2] == "unknown: no verdict in the judge reply"
    assert reasons[3] == "judge call failed: APITimeoutError"
    assert reasons[4] == "unknown: verdict outside the scale (42.0)"
    assert reasons[5] == "error row" and reasons[6] == "no answer"
    assert out.attrs["score_unknown"] == 3


def test_judge_spec_in_data_is_refused():
    with pytest.raises(ValueError, match="needs a Lab"):
        scoring.from_spec({"kind": "judge"})


def test_scores_are_floats_in_unit_interval():
    df = _rows(["a", "b", None], ["a", "a", "a"])
    out = scoring.score(df, lambda t, e: np.nan if t is None else 2.0)
    assert out["score"].between(0, 1).all() and out["score"].dtype == float


def test_by_task_rows_without_task_use_default():
    df = _rows(["4", "4"], ["4", "5"], task=[None, "arithmetic"])
    out = scoring.score(df, scoring.by_task({"arithmetic": scoring.numeric()}, default=scoring.exact()))
    assert out["score"].tolist() == [1.0, 0.0]
    assert out["score_reason"][0].startswith("exact")


def test_summary_counts_unknown_scores_and_never_averages_them_as_zero():
    df = pd.DataFrame({"requested_model": ["a", "a", "a", "b", "b"], "score": [1.0, 0.5, np.nan, 0.0, np.nan]})
    table = scoring.summary(df)
    assert table.loc["a", ["answers", "known", "unknown"]].tolist() == [3, 2, 1]
    assert table.loc["a", "mean"] == pytest.approx(0.75) and table.loc["a", "unknown_pct"] == pytest.approx(100 / 3)
    assert table.loc["a", "ci_lo"] < 0.75 < table.loc["a", "ci_hi"]
    assert table.loc["b", "mean"] == 0.0 and table.loc["b", "ci_lo"] == 0.0    # one known score: Wilson, not none
    assert table.loc["b", "ci_hi"] == pytest.approx(0.7935, abs=1e-3)
    with pytest.raises(InputError, match="scored runs"):
        scoring.summary(df.drop(columns="score"))
