"""Judge verdicts: right or unknown, on 521 real judge replies and on the awkward forms one by one."""
from __future__ import annotations

import json
import math
import time
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


# --- no reply stalls the kernel: every pattern is linear in the reply's length --------------------

_RUNS = (" ", "\n", " \n", "\t", "*", "[", "[[", "[[1", "[[ ", "1", "1.", "a", "A", "A ", "Rating: ", "I rate ",
         "[[A", "[[A>", ". ", "\n*", "out of ", "/", "`", '"', "than ")
_PREFIXES = ("", "Rating: [[7", "[[", "[[A", "[[7/", "The rating is ", "I would rate it ", "verdict ", "**[[")
_SUFFIXES = ("", "x", "]]", "%")


def _slowest(n: int) -> tuple[float, str]:
    worst = (0.0, "")
    for run in _RUNS:
        for prefix in _PREFIXES:
            for suffix in _SUFFIXES:
                text = prefix + run * (n // len(run)) + suffix
                start = time.thread_time()
                parse_rating(text)
                parse_preference(text)
                shape = f"{prefix!r} + {run!r} * {n // len(run)} + {suffix!r}"
                worst = max(worst, (time.thread_time() - start, shape))
    return worst


def test_degenerate_replies_of_any_shape_are_read_in_linear_time():
    # Before: "[[1" + 2,000 spaces took 8 s (cubic), "[[" + 16,000 spaces 9 s (quadratic). A reply of
    # 6,000 characters of any repeated shape (900 shapes) parses in a few milliseconds now; the bound
    # is generous yet a quadratic pattern (about 1 s at this length) fails it. CPU time of this thread:
    # a loaded machine's other processes (a stress run: 0.42 s of wall time once) do not count.
    seconds, shape = _slowest(6_000)
    assert seconds < 0.4, shape


@pytest.mark.parametrize("text", [
    "[[1" + " " * 20_000, "[[1" + "\n" * 20_000 + "x", "[[" + " " * 80_000, "Rating: [[7" + "\n \t" * 10_000 + "x",
    "[[A" + " " * 40_000 + ">", "\n*" * 40_000, "The rating is " + "1" * 40_000 + "%", "a" * 80_000 + ".5",
    "[[A]]" * 8_000, "[[1.1]][[1.2]][[1.3]][[1.4]]" * 5_000, "verdict " + " " * 40_000 + "[B", "I rate " * 10_000,
])
def test_known_pathological_replies_parse_fast(text):
    # ~0.01–0.3 s each unloaded; the old patterns took 8 s to minutes on these (cubic / quadratic)
    start = time.thread_time()
    parse_rating(text)
    parse_preference(text)
    assert time.thread_time() - start < 2.0


def test_runs_of_whitespace_do_not_change_a_verdict():
    assert parse_rating("Rating:\n\n\n   [[   7  \n ]]").value == 7.0
    assert parse_rating("Rating: [[7" + " " * 3000 + "]]").value == 7.0
    assert parse_preference("[[ \n  A \t >> \n B  ]]").value == "A"


# --- prefer unknown over wrong: the shapes that used to give a known, wrong verdict ---------------

@pytest.mark.parametrize("text", [
    "Rating: [[4]], [[1]], [[3]] \n\n```json\n[4, 1, 3]\n```",          # the answer's three ratings echoed
    "So 9 for the first answer, 5 for the second.\n\nRating: [[9]], [[5]]",
    "Rating: [[10]] for style, [[4]] for accuracy",
    "A perfect answer would get Rating: [[10]]. This one misses the point: [[3]]",
    "- part one: [[2]]\n- part two: [[2]]\n\nBoth parts together: \"[[3]]\"",   # a quoted final is kept
    "I would rate the reference answer 10 and the assistant's answer 4.",
    "I would give the reference a 10; the assistant's answer gets a 3.",
    "The response correctly answers 9 out of 10 sub-questions, but its reasoning is wrong.",
    "The answer got 3/10 of the facts wrong; overall it is decent.",
    "I'd give it 4 stars out of 5.",
    "I'd give it 4 out of 5 stars.",
    "Score: 4\n\n(on a 1-5 scale)",
    "As the docs say [[1]], the answer is right. Overall rating: 9/10",
    "```\nRating: [[3]]\n```\n(the assistant's answer contained that line) Rating: 9/10",
    "```python\nprint(x[[1]])\n```\nThe code is fine.",
    "I rate it higher than 5 would suggest, a solid 8.",
])
def test_ambiguous_ratings_are_unknown_or_the_right_one(text):
    right = {"Both parts together": 3.0, "Rating: 9/10": 9.0, "solid 8": 8.0}
    expected = next((v for k, v in right.items() if k in text), None)
    assert parse_rating(text).value in (None, expected)


@pytest.mark.parametrize(("text", "value"), [
    ("The solution uses `arr[[2]]` to select the row, which is correct. Rating: 8/10", 8.0),   # indexing
    ("The code `df.iloc[[3]]` is right but slow.\nScore: 7", 7.0),
    ("I would give it 2 points for effort, but as an answer it is a 6/10.", 6.0),
    ("Score: 3 of the 5 steps are correct, so overall 6/10.", 6.0),
    ("Rating: [[8]]\n\nNote: a rating of 10 would need citations.", 8.0),
    ("The answer deserves 6/10 for its accuracy.", 6.0),
    ("I rate it 7 out of 10.", 7.0),
    ("Rating: 8.5", 8.5),
])
def test_ratings_next_to_other_numbers_are_read(text, value):
    assert parse_rating(text).value == value


@pytest.mark.parametrize(("text", "value"), [
    ("Assistant A is better than [[B]].", None),
    ("[[A]] is worse than [[B]]", None),
    ("My final verdict is that assistant A is better than [B].", None),
    ("My verdict: neither is better than [B]'s citations suggest; A wins.", None),
    ("I'll output [[A]] if A is better. Here A is better.", None),
    ('Format: "[[A]]" if A is better, "[[B]]" if B is better, "[[C]]" for a tie.\nAssistant B is better.', None),
    ('Format: "[[A]]" if A is better, "[[B]]" if B is better, "[[C]]" for a tie.\nB is better. [[B]]', "B"),
    ("[[B]] when accuracy matters, which it always does.", "B"),
    ("My final verdict: [B]", "B"),
])
def test_preferences_that_name_a_loser_or_restate_the_format_are_not_verdicts(text, value):
    assert parse_preference(text).value == value
