"""Checks that read the answer alone: its arithmetic re-computed without eval, a final answer
stated, refusal/hedging phrases, the agreement of sampled answers — as functions, as scorers and as
a cascade's saved accept rule."""
from __future__ import annotations

import pytest

from llmlab import InputError, routing, scoring
from llmlab.analysis._checks import agreement, equations, evaluate, final_answer, hedges, numbers


@pytest.mark.parametrize(("text", "holds"), [
    ("3 * 4 = 12", True), ("$5 + $7 = $12", True), ("12/4=3", True), ("13 - 4 = 10", False),
    ("8 / 3 = 2.67", True),                              # to the precision written
    ("8 / 3 = 3", True),                                 # a whole number may be rounded
    ("1,150 \\* 50 = 57,500", True), ("8 x $5 x 60% = $24", True),
    ("(80 + 55 + 100) / 3 = 235 / 3 = 78.33", True),     # a chain, link by link
    ("<<32/2*3/4=9.6>>", False),                          # GSM8K's calculator annotation
    ("so 3 x 4 = 13 apples", False), ("2 + 2 = 5", False),
    ("6 x 6 = 36 / 12 = 3 pizzas", True),                # a run-on chain: the first number is the claim
    ("(12 / 20) x 100 = 60%", True), ("remove 7 / 1/2 = 14 toys", True),
    ("x = 86 / 3 ≈ 28.67", None), ("x * 4 + 8 = 40", None), ("3 * 45 = 1 * x", None),   # not judged
    ("100 yards * 2 * 15 = 3000 yards", None),           # a word inside the expression: skipped
    ("no maths here", None),
])
def test_arithmetic_is_recomputed_or_left_alone(text, holds):
    found = equations(text)
    assert (None if not found else all(e.holds for e in found)) is holds


def test_expressions_are_parsed_never_evaluated_as_python():
    for hostile in ("__import__('os').system('echo hi') = 0", "2**100000 = 1", "[1]*9 = 9", "1e308*10 = 1"):
        assert equations(hostile) == []
    with pytest.raises(ValueError):
        evaluate("__import__('os')")
    assert evaluate("(2 + 3) * 4 - 10 / 4") == pytest.approx(17.5) and evaluate("50%") == 0.5
    assert equations("10 / 0 = 3") == [] and equations(None) == []


def test_final_answer_and_numbers():
    assert numbers("I had $1,200 and spent -3.5 on 2024-01-05") == [1200.0, -3.5, 2024.0, 1.0, 5.0]
    stated = final_answer("16 - 3 = 13 eggs, 13 * 2 = 26\n#### 26")
    assert (stated.value, stated.marked, stated.is_last) == (26.0, True, True)
    assert final_answer("#### 18 or maybe 20").is_last is False
    assert final_answer("The answer is: $1,250.").value == 1250.0 and final_answer("\\boxed{7}").marked
    unmarked = final_answer("she has 9 left")
    assert (unmarked.value, unmarked.marked) == (9.0, False) and final_answer("none").value is None


def test_hedges_name_their_kind():
    assert hedges("I’m not sure, but approximately 5 — sorry, assuming 2 per box") == \
        ["unsure", "approximate", "assumption", "correction"]
    assert hedges("I cannot answer that.") == ["refusal"]
    assert hedges("There is not enough information.") == ["cannot be determined"]
    assert hedges("#### 42") == [] and hedges(None) == []


def test_agreement_is_the_majority_final_answers_share():
    found = agreement(["so #### 18", "The answer is 18", "#### 20", "I don't know"])
    assert (found.share, found.answer, found.distinct, found.n) == (0.5, 18.0, 3, 4)
    assert agreement(["#### 1", "#### 2"]).answer == 1.0            # a tie goes to the first stated
    labels = agreement(["Positive.", "positive", "negative", None])      # answers without numbers: their words
    assert (labels.share, labels.answer, labels.distinct) == (0.5, "positive", 2)
    assert agreement([None, "", "  "]).share == 0.0 and agreement([]).n == 0
    assert scoring.agreement(["#### 3", "#### 3.0", "#### 3"]) == 1.0


def test_scorers_need_no_expected_answer_and_say_why():
    wrong, right = "13 - 4 = 10\n#### 10", "13 - 4 = 9\n#### 9"
    for scorer in (scoring.arithmetic(), scoring.final_answer(), scoring.no_hedging()):
        assert scorer.uses_expected is False
    assert scoring.arithmetic().check(wrong, None) == (0.0, "1 of 1 equations wrong: '13 - 4 = 10' is 9")
    assert scoring.arithmetic().check(right, None)[0] == 1.0
    assert scoring.arithmetic().check("hello", None) == (1.0, "no equation to re-compute")
    assert scoring.final_answer().check("#### 9", None) == (1.0, "final answer 9")
    assert scoring.final_answer().check("#### 9 or 10", None)[1] == "final answer 9 is not the last number written"
    assert scoring.final_answer().check("nine", None)[0] == 0.0
    assert scoring.no_hedging().check("maybe, I think 4", None) == (0.0, "hedges: unsure")
    assert scoring.from_spec("arithmetic").name == "arithmetic"
    assert scoring.from_spec({"kind": "no_hedging"}).check(None, None)[0] == 1.0


def test_a_cascade_accepts_on_a_check_and_saves_it(tmp_path):
    cascade = routing.Cascade(["weak", "strong"], accept="arithmetic")
    loaded = routing.load_policy(cascade.save(tmp_path / "c.json"))
    for text, kept in (("2 + 2 = 4", True), ("2 + 2 = 5", False)):
        assert cascade.decide("q").accept(text) is kept and loaded.decide("q").accept(text) is kept
    with pytest.raises(InputError, match="expected answer"):
        routing.Cascade(["weak", "strong"], accept=scoring.numeric())
