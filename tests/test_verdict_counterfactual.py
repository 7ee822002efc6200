"""Verdicts in conditionals, counterfactuals and scale descriptions are none (review r22 B1, B7, W1):
generated grammars (template x filler x verdict, seeded) give no wrong known verdict, and the same
grammars' honest replies are still read."""
from __future__ import annotations

import random

import pandas as pd

from llmlab.analysis._scoring import JudgeCut, final_answers
from llmlab.analysis._verdicts import parse_preference, parse_rating

FILLERS = ("", "The answer is clear and well organised.", "It cites two sources from 2019.",
           "Step 3 of 5 is terse, but the rest is fine.", "Overall the tone is helpful.")
CONDITIONS = ("If the answer had cited sources", "Had it included units", "If the code compiled",
              "If Assistant A had been correct", "Were it accurate", "Had the reply been complete")


def _replies(templates: tuple[str, ...], count: int, seed: int, **choices: tuple) -> list[tuple[str, dict]]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        picked = {k: rng.choice(v) for k, v in choices.items()}
        out.append((rng.choice(templates).format(filler=rng.choice(FILLERS), **picked), picked))
    return out


COUNTERFACTUAL_PAIRS = (
    "{filler} {cond}, I would choose [[{v}]]. But it is wrong, so the other assistant is better.",
    "{filler} {cond} I'd say [[{v}]]; as it stands, the other answer is better.",
    "I was going to say [[{v}]], but after checking, the other assistant is actually better. {filler}",
    "{filler} Normally the more detailed answer, [[{v}]], would win, but here it is factually wrong.",
    "{filler} {cond}, my verdict would be [{v}]. It is not.",
    "{filler} Final verdict would have been [{v}] had it cited sources; the other one is better.",
)
COUNTERFACTUAL_RATINGS = (
    "{filler} {cond}, it would earn [[{h}]]. As it is, it is a poor answer.",
    "A perfect answer would get [[{h}]]. {filler} This one misses the point.",
    "{filler} With the bug fixed it would deserve [[{h}]]; as written it deserves far less.",
    "I initially thought [[{h}]], but the code does not compile. {filler}",
    "{filler} {cond}, I would rate it a {h}. It is not.",
    "A complete answer would score {h}/10. {filler} This one misses half the question.",
    "{filler} {cond}, the rating would be {h}/10.",
)
SCALE_DESCRIBED = (
    "Rating: [[{h}]] is reserved for flawless answers. {filler} This one earns [[{n}]].",
    "Rating: [[{h}]] would be for a perfect answer; this one is a [[{n}]]. {filler}",
    "Note that Rating: [[{h}]] means perfect. {filler} The response gets [[{n}]].",
    "{filler} The answer is decent, [[{n}]]. (Rating: [[{h}]] is only for perfect answers.)",
    "Rating: [[{h}]] is for harmful answers; {filler} this one is harmless: [[{n}]].",
)
HONEST_PAIRS = ("{filler} Assistant {v} is better. [[{v}]]", "{filler}\n\nFinal verdict: [[{v}]]",
                "[[{v}]]\n{filler}", "{filler} I would choose [[{v}]].", "{filler} My final verdict is [{v}].")
HONEST_RATINGS = ("{filler}\n\nRating: [[{n}]]", "[[{n}]]\n{filler}", "{filler} I would rate it {n} out of 10.",
                  "{filler} Therefore, the rating for this response would be {n} out of 10.",
                  "{filler} I would rate the response as follows: Rating: [[{n}]]")
FOREIGN_PAIRS = ("Assistant {w} ist besser als [[{v}]].", "Ich würde nicht [[{v}]] wählen. Assistent {w} ist besser.",
                 "Je ne choisirais pas [[{v}]].", "No elegiría [[{v}]].", "La respuesta {w} es mejor que [[{v}]].",
                 "Wenn {v} korrekt wäre, würde ich [[{v}]] wählen.", "Si {v} était correct, je choisirais [[{v}]].")
SIDES = ("A", "B")
HIGH, LOW = tuple(range(8, 11)), tuple(range(1, 7))


def test_a_lone_counterfactual_preference_is_never_the_verdict():
    replies = _replies(COUNTERFACTUAL_PAIRS, 3000, 1, v=SIDES, cond=CONDITIONS)
    known = [(t, v.value) for t, _ in replies if (v := parse_preference(t)).known]
    assert known == []          # the real verdict is in words: any known value read here is wrong


def test_a_lone_counterfactual_rating_is_never_the_verdict():
    replies = _replies(COUNTERFACTUAL_RATINGS, 3000, 2, h=HIGH, cond=CONDITIONS)
    known = [(t, v.value) for t, _ in replies if (v := parse_rating(t)).known]
    assert known == []


def test_a_rubric_form_describing_the_scale_never_wins():
    replies = _replies(SCALE_DESCRIBED, 3000, 3, h=(1, 10), n=tuple(range(2, 10)))
    wrong = [(t, v.value) for t, p in replies if (v := parse_rating(t)).known and v.value != p["n"]]
    assert wrong == []


def test_other_languages_comparisons_negations_and_conditionals_are_never_the_named_token():
    replies = _replies(FOREIGN_PAIRS, 2000, 4, v=SIDES, w=SIDES)
    wrong = [(t, v.value) for t, p in replies if (v := parse_preference(t)).value == p["v"]]
    assert wrong == []


def test_honest_replies_of_the_same_grammars_are_still_read():
    pairs = _replies(HONEST_PAIRS, 2000, 5, v=SIDES)
    ratings = _replies(HONEST_RATINGS, 2000, 6, n=LOW + HIGH)
    read = sum(parse_preference(t).value == p["v"] for t, p in pairs)
    read += sum(parse_rating(t).value == p["n"] for t, p in ratings)
    assert read == 4000


def test_a_judge_reply_cut_off_at_max_tokens_is_unknown_even_with_a_verdict_in_it():
    df = pd.DataFrame({"prompt_id": ["p1", "p2"], "attempt": [1, 1], "status": ["ok", "ok"],
                       "response_text": ["Rating: [[8]]\nOn reflection", "Rating: [[8]]"],
                       "finish_reason": ["length", "stop"]})
    cut, whole = final_answers(df, ["p1", "p2"])
    assert isinstance(cut, JudgeCut) and cut.reason() == "judge reply cut off (finish_reason=length)"
    assert whole == "Rating: [[8]]"
