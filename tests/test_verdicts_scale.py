"""A rating given on a scale the judge states is not read on the rubric's (review 22b, G4, N7).

"Rating (1-5): 4", "Rating: 4 (out of 5)", "Rating: [[4]] out of 5" were read as 4/10 (score 0.33,
where the judge meant 4/5), and "Rating: 8 (out of 5)" as 8. Now a scale stated with the verdict —
in its label, right after its number, or in parentheses on the next line — that is not the
rubric's makes the verdict unknown (``out_of_range``, rule ``other scale``); the rubric's own stated
scale ("Rating: 8/10", "Rating (out of 10): 8") is read as before.
"""
from __future__ import annotations

import itertools
import warnings

import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import Lab, scoring
from llmlab.analysis._verdicts import parse_rating

LABELS = ["Rating: {v}{s}", "Score: {v}{s}", "Rating: [[{v}]]{s}", "My rating: **{v}**{s}", "Final score: [[{v}]]{s}"]
AFTER = [" out of {top}", " (out of {top})", "/{top}", " (1-{top})", " (on a scale of 1-{top})", " (scale 1–{top})",
         ", on a 1-{top} scale", "\n(scale 1–{top})", " (0 to {top})"]
IN_LABEL = ["Rating (1-{top}): {v}", "Rating (out of {top}): {v}", "Score (0-{top}): {v}",
            "Rating (1 to {top}): [[{v}]]"]


def _variants(top: int, value: int) -> list[str]:
    after = [label.format(v=value, s=s.format(top=top)) for label, s in itertools.product(LABELS, AFTER)]
    return after + [label.format(top=top, v=value) for label in IN_LABEL]


@pytest.mark.parametrize("text", _variants(5, 4) + _variants(5, 8) + _variants(100, 80) + _variants(3, 2))
def test_a_rating_on_another_stated_scale_is_unknown(text):
    verdict = parse_rating("The answer is solid.\n" + text)
    assert verdict.value is None and verdict.status == "out_of_range", (text, verdict)


@pytest.mark.parametrize(("text", "value"), [(t, v) for v in (4, 8) for t in _variants(10, v)])
def test_the_rubrics_own_stated_scale_is_read(text, value):
    assert parse_rating("The answer is solid.\n" + text).value == float(value)


def test_on_a_five_point_rubric_the_stated_five_point_scale_is_read_and_a_value_above_it_is_not():
    assert parse_rating("Rating: 4 (out of 5)", scale=(1, 5)).value == 4.0
    assert parse_rating("Rating (1-5): [[4]]", scale=(1, 5)).value == 4.0
    assert parse_rating("Rating: 8 (out of 5)", scale=(1, 5)).value is None
    assert parse_rating("Rating: 8 (out of 5)").value is None                   # N7: was 8.0


def test_numbers_elsewhere_in_the_reply_are_no_stated_scale():
    assert parse_rating("Rating: [[7]]\n\n1. It gets 3/5 steps right.").value == 7.0
    assert parse_rating("It solves 4 out of 5 tasks.\nRating: [[6]]").value == 6.0


def test_a_five_point_judge_scores_unknown_end_to_end(tmp_path):
    judges = {"j5": "Good answer overall.\n\nRating (1-5): 4", "j5b": "Solid.\nRating: 4 (out of 5)",
              "j5c": "Solid.\nRating: [[4]] out of 5", "j10": "Solid.\nRating: [[8]] out of 10"}
    models = {"m": ModelSpec(text="An answer."), **{j: ModelSpec(text=t) for j, t in judges.items()}}
    with FakeServer(models) as srv, Lab(base_url=srv.base_url, db=tmp_path / "r.sqlite", retries=0) as lab:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            runs = lab.sweep(["Explain TCP."], models=["m"], progress=False).df
            scored = {j: scoring.score(runs, scoring.judge(model=j, lab=lab)) for j in judges}
    for j in ("j5", "j5b", "j5c"):
        row = scored[j].loc[scored[j].requested_model == "m"].iloc[0]
        assert row["score"] != row["score"] and "outside the scale" in row["score_reason"], (j, row["score_reason"])
    assert scored["j10"].loc[scored["j10"].requested_model == "m", "score"].iloc[0] == pytest.approx(7 / 9)
