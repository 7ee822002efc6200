"""Judge verdicts: right or unknown, on 521 real judge replies and on the awkward forms one by one."""
from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest

from llmlab.analysis._verdicts import parse_preference, parse_rating

CORPUS = Path(__file__).parent / "data" / "judge_replies.jsonl"


def _corpus() -> list[dict]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]


def _parsed(row: dict):
    if row["kind"] == "single":
        return parse_rating(row["text"], scale=(1, row["scale_max"]))
    return parse_preference(row["text"])


def _same(got, expected) -> bool:
    if got is None or expected is None:
        return got is None and expected is None
    return math.isclose(float(got), float(expected)) if isinstance(got, float) else got == expected


def test_real_judge_replies_are_read_right_on_at_least_99_percent_and_never_wrongly():
    rows = _corpus()
    outcome = Counter()
    wrong, missed = [], []
    for row in rows:
        verdict = _parsed(row)
        if _same(verdict.value, row["expected"]):
            outcome["right"] += 1
        elif verdict.value is None:
            missed.append(row["id"])
        else:
            wrong.append((row["id"], row["expected"], verdict.value))
    accuracy = outcome["right"] / len(rows)
    print(f"\nverdicts right on {outcome['right']} of {len(rows)} real replies ({accuracy:.2%}); "
          f"unknown where one existed: {missed}; wrong: {wrong}")
    assert len(rows) == 521 and {r["kind"] for r in rows} == {"single", "pair"}
    assert wrong == []                      # an unread verdict is unknown, never a wrong one
    assert accuracy >= 0.99


def test_the_corpus_covers_the_awkward_cases():
    rows = _corpus()
    tags = Counter(t for r in rows for t in r["tags"])
    for tag in ("numbered_list_before_verdict", "numbers_before_verdict", "no_verdict", "verdict_first",
                "non_english", "decimal", "scale_1_100", "multiple_distinct_delimited", "strong_preference"):
        assert tags[tag] >= 3, tag
    assert sum(r["expected"] is None for r in rows) >= 100          # replies that give no verdict
    assert sum("[[C]] for a tie" in r["text"] for r in rows) >= 20
    assert all(r["source"].count(":") >= 1 and "@" in r["source"] for r in rows)


def test_last_one_wins_would_have_been_wrong_where_ratings_disagree():
    # The evidence behind "candidates must agree": where a real reply holds two different delimited
    # ratings not in the rubric's form, the later one is a hypothetical, never the verdict.
    conflicting = [r for r in _corpus() if r["kind"] == "single" and _parsed(r).status == "ambiguous"
                   and _parsed(r).rule == "delimited"]
    assert len(conflicting) == 2
    for row in conflicting:
        last = float(row["text"].rsplit("[[", 1)[1].split("]]")[0])
        assert last != float(row["expected"])


@pytest.mark.parametrize(("text", "value", "rule"), [
    ("Rating: [[7]]", 7.0, "delimited"),
    ("1. Accuracy: 9/10\n2. Depth: 4/10\n3. It cites 2 studies from 2019.\n\nRating: [[6]]", 6.0, "delimited"),
    ("[[8]]\nThe answer is correct; step 3 of 5 is terse.", 8.0, "delimited"),          # verdict first
    ("Good. Rating: [[ 7.5 ]]", 7.5, "delimited"),
    ("Rating: **[[9]]**", 9.0, "delimited"),
    ("Rating: [[8/10]]", 8.0, "delimited"),
    ("評価：［［6］］", 6.0, "delimited"),                                               # full-width brackets
    ("I must use the format \"Rating: [[5]]\". The answer is weak.\nRating: [[3]]", 3.0, "delimited"),
    ("Rating: [[8]]\n...would be even better, earning [[9]] or [[10]].", 8.0, "delimited"),  # the rubric's form
    ("The code uses arr[0] and input[100]. Rating: [[4]], and again: [[4]]", 4.0, "delimited"),
    ("Rating: 7/10", 7.0, "label"),
    ("Overall rating: 8 out of 10", 8.0, "label"),
    ("5", 5.0, "bare"),
    ("[Rating]\n[7/10]", 7.0, "bracket under a rating header"),
    ("I would rate the assistant's answer as a [9].", 9.0, "rate [n]"),
    ("I would rate this response a 9 out of 10.", 9.0, "first person"),
    ("The assistant's answer deserves 6/10 for its accuracy.", 6.0, "N out of 10"),
    ("The assistant's answer is rated as a 10, a perfect match.", 10.0, "passive"),
])
def test_ratings_are_read(text, value, rule):
    verdict = parse_rating(text)
    assert (verdict.value, verdict.status, verdict.rule) == (value, "ok", rule)


@pytest.mark.parametrize(("text", "status"), [
    ("I'm sorry, but I can't evaluate this response.", "no_verdict"),          # a refusal
    ("", "empty"),
    (None, "empty"),
    ("The answer lists 3 steps and 2 examples; it was written in 2021.", "no_verdict"),
    ("Rating: [[", "no_verdict"),                                               # truncated
    ("Rating: [[85]]", "out_of_range"),
    ("Rating: [[0]]", "out_of_range"),
    ("Rating: [[8/100]]", "out_of_range"),
    ("Rating: [[N/A]]", "invalid_token"),
    ("Rating: [[6]] ... on reflection, Rating: [[7]]", "ambiguous"),
    ("It would earn [[9]], or after a fix [[10]].", "ambiguous"),
    ("Accuracy, depth and style: ratings of 9, 8 and 7 out of 10 respectively.", "no_verdict"),
    ("Confidence: 9/10", "no_verdict"),
    ("The assistant's rating is 9, while the reference answer is 10.", "no_verdict"),
])
def test_no_verdict_is_unknown_never_a_number(text, status):
    verdict = parse_rating(text)
    assert verdict.value is None and verdict.status == status
    assert verdict.reason()


@pytest.mark.parametrize(("text", "value"), [
    ("Assistant B is more precise.\n\n[[B]]", "B"),
    ("[[A]]", "A"),
    ("Both are equally good: [[C]] for a tie.", "tie"),            # a real verdict, not an echo
    ("[[tie]]", "tie"),
    ("My final verdict is: [[A>>B]]", "A"),
    ("My final verdict is [[B>A]].", "B"),
    ("[[A=B]]", "tie"),
    ("**[[b]]**", "B"),
    ('Output "[[A]]" if assistant A is better, "[[B]]" if assistant B is better, and "[[C]]" for a tie.\n'
     "Assistant A answers the question.\n[[A]]", "A"),
    ("Final verdict: [B]", "B"),
    ("A", "A"),
])
def test_preferences_are_read(text, value):
    assert parse_preference(text).value == value


@pytest.mark.parametrize(("text", "status"), [
    ("[[A]] ... wait, Assistant B covers the edge case: [[B]]", "ambiguous"),
    ("[[1", "no_verdict"),
    ("Both answers have merit.", "no_verdict"),
    ("$ERROR$", "no_verdict"),
    ("   ", "empty"),
])
def test_unreadable_preferences_are_unknown(text, status):
    verdict = parse_preference(text)
    assert verdict.value is None and verdict.status == status
