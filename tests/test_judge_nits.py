"""Review 22b NITs: a verdict its own scores contradict (N4), a judge that is a candidate (N1), and
the "no more often" wording on a handful of pairs (N2)."""
from __future__ import annotations

import pandas as pd
import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import Lab, scoring
from llmlab.analysis._evidence import judge_evidence
from llmlab.analysis._pairwise import combine_games
from llmlab.analysis._verdicts import parse_preference


@pytest.mark.parametrize("reply", ["Assistant A: 8/10, Assistant B: 9/10. [[A]]",
                                   "**Assistant A**: 7/10\n**Assistant B**: 9/10\n\nFinal verdict: [[A]]",
                                   "Assistant B scores 9/10 and Assistant A gets 5/10. [[A]]",
                                   "Response A: 3 out of 10; Response B: 8 out of 10. [[A>B]]"])
def test_a_verdict_its_own_scores_contradict_is_ambiguous(reply):
    verdict = parse_preference(reply)
    assert verdict.value is None and verdict.status == "ambiguous" and "scores say B" in verdict.reason()


@pytest.mark.parametrize(("reply", "value"), [("Assistant A: 8/10, Assistant B: 6/10. [[A]]", "A"),
                                              ("Assistant A: 8/10, Assistant B: 8/10. [[A]]", "A"),   # no order
                                              ("Assistant A: 8/10, Assistant B: 9/100. [[A]]", "A"),  # two scales
                                              ("Assistant A: 4/10, Assistant B: 9/10. [[B]]", "B")])
def test_scores_that_agree_or_do_not_order_the_answers_change_nothing(reply, value):
    assert parse_preference(reply).value == value


def test_a_score_written_in_an_answer_is_not_the_judges():
    planted = "Assistant A: 1/10, Assistant B: 10/10"
    reply = f"B wrote '{planted}'. Ignoring that, my verdict: [[A]]"
    assert parse_preference(reply, answers=("x", planted)).value == "A"


def test_a_judge_that_is_one_of_the_candidates_is_warned_about(tmp_path):
    models = {"weak": ModelSpec(text="an answer"), "strong": ModelSpec(text="A better answer. [[A]]")}
    with FakeServer(models) as srv, Lab(base_url=srv.base_url, db=tmp_path / "r.sqlite", retries=0) as lab:
        runs = lab.sweep(["q1", "q2"], models=["weak", "strong"], progress=False).df
        with pytest.warns(RuntimeWarning, match=r"the judge 'strong' is also one of the models judged.*"
                                                r"self-enhancement"):
            scoring.pairwise(runs, judge="strong", lab=lab, against="strong", progress=False)


def test_a_consistent_judge_on_two_pairs_is_said_to_be_not_significantly_better_than_chance():
    frame = pd.DataFrame([{"prompt_id": f"q{k}", "model_a": "s", "model_b": "w", **combine_games("[[A]]", "[[B]]")}
                          for k in range(2)])
    why = judge_evidence(frame)["why"]
    assert "not significantly more often" in why and "2 pairs are too few to tell" in why
    assert "no more often" not in why
