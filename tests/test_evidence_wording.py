"""The screen's sentences say what a failed test shows: "cannot be shown to carry information
(N pairs)", not "carries no information", and never "z nan" or "nan %" (review 22c N-c, N-d)."""
from __future__ import annotations

import itertools

import pandas as pd
import pytest

from llmlab.analysis._evidence import evidence_words, judge_evidence


def _judge(orders, labels=0) -> pd.DataFrame:
    rows = [{"prompt_id": f"q{k}", "model_a": "x", "model_b": "y", "verdict_1": v1, "verdict_2": v2,
             "winner": {("A", "B"): "a", ("B", "A"): "b", ("tie", "tie"): "tie"}.get((v1, v2), "tie"),
             "source": "judge:j"} for k, (v1, v2) in enumerate(orders)]
    rows += [{"prompt_id": f"h{k}", "model_a": "x", "model_b": "y", "winner": "ab"[k % 2], "source": "human:me"}
             for k in range(labels)]
    return pd.DataFrame(rows)


FEW = [("A", "B"), ("B", "A"), ("tie", "tie"), ("A", "A")]


@pytest.mark.parametrize("pairs", [2, 3])
def test_a_judge_failing_the_order_test_on_a_few_pairs_cannot_be_shown_to_carry_information(pairs):
    checked = 0
    for orders in itertools.product(FEW, repeat=pairs):
        evidence = judge_evidence(_judge(orders))
        if evidence["informative"] or not evidence["decisive"]:
            continue
        checked += 1
        assert evidence_words(evidence) == f"cannot be shown to carry information ({pairs} pairs)"
        assert evidence_words(evidence, singular=True) == evidence_words(evidence)
    assert checked


@pytest.mark.parametrize("orders, labels", [([("tie", "tie")] * 50, 10), ([("tie", "tie")] * 3, 1),
                                            ([("B", "B")] * 30, 4), ([("A", "A")] * 10, 10)])
def test_no_nan_in_a_reason(orders, labels):
    evidence = judge_evidence(_judge(orders, labels))
    assert not evidence["informative"]
    assert "nan" not in evidence["why"] and "nan" not in evidence_words(evidence)


def test_all_ties_still_carry_no_information():
    evidence = judge_evidence(_judge([("tie", "tie")] * 20))
    assert evidence_words(evidence) == "carry no information"
    assert evidence_words(evidence, singular=True) == "carries no information"
