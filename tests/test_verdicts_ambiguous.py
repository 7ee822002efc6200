"""Ambiguous judge replies are unknown, never a guess (review 22, F2 / F2b): list numbers under a
label, a label sentence naming two ratings, a delimited verdict contradicted in another form, and
negated pairwise tokens — the reviewer's cases and generated variants of each shape."""
from __future__ import annotations

import itertools
import time

import pytest

from llmlab.analysis._verdicts import parse_preference, parse_rating

REVIEWED = [
    ("Rating:\n1. Helpfulness: 8/10\n2. Accuracy: 7/10\n3. Depth: 7/10\nOverall: 7/10", 7.0),   # the overall, or none
    ("Score:\n1) correctness 9\n2) style 7", None),
    ("Rating: 5 for style, 2 for accuracy.", None),
    ("Rating: 10 is reserved for perfect answers; this one gets a 6.", None),
    ("Score: 3 errors found. Rating 2.", None),
    ("Grade: 5th-grade reading level. I'd rate it 8/10.", 8.0),
    ("**Rating:**\n\n1. **Helpfulness**: 8/10\n2. **Accuracy**: 9/10\n\nOverall, a strong answer.", None),
    ("### Score:\n\n1. Correctness - 9\n2. Clarity - 8", None),
    ("I would rate it 8 out of 10.\nRating: [[3]]", None),
    ("Overall: 8/10\n\nRating: [[3]]", None),
    ("The answer deserves 8/10.\n\nRating: [[3]]", None),
    ("Rating (out of 10): 8\n[[3]]", None),
    ("Final score: 8/10\nRating: [[3]]", None),
    ("My rating: 9/10.\n[[2]]", None),
]


@pytest.mark.parametrize(("text", "value"), REVIEWED)
def test_the_reviewed_replies_are_unknown_or_right(text, value):
    verdict = parse_rating(text)
    assert verdict.value == value, verdict
    if value is None:
        assert verdict.status in ("ambiguous", "no_verdict")


HEADERS = ["Rating:", "Score:", "**Rating:**", "### Score:", "Grade:", "Overall rating:", "**Score**:", "Rating :"]
BREAKS = ["\n", "\n\n", "\n \n", " \n"]
MARKERS = ["1. ", "1) ", "- ", "* ", "(1) ", "1.", "1 - "]
ITEMS = [("Helpfulness: {}/10", "Accuracy: {}/10"), ("**Helpfulness**: {}/10", "**Accuracy**: {}/10"),
         ("Correctness - {}", "Clarity - {}"), ("correctness {}", "style {}"), ("Helpfulness ({}/10)", "Depth ({}/10)")]


def _second(marker: str) -> str:
    return marker.replace("1", "2")


@pytest.mark.parametrize(("header", "gap", "marker"), list(itertools.product(HEADERS, BREAKS, MARKERS)))
def test_a_list_under_a_label_is_never_read_as_its_first_number(header, gap, marker):
    for first, second in ITEMS:
        body = f"{marker}{first.format(8)}\n{_second(marker)}{second.format(6)}"
        text = header + gap + body
        assert parse_rating(text).value is None, text                    # two criteria, no overall
        assert parse_rating(text + "\n\nOverall: 7/10").value in (None, 7.0), text
        assert parse_rating(text + "\n\nRating: [[7]]").value == 7.0, text    # the delimited verdict stands


@pytest.mark.parametrize("header", HEADERS)
def test_a_rating_alone_on_the_line_below_its_label_is_read(header):
    for gap, value in itertools.product(BREAKS, ("7", "7/10", "[7]", "**7**", "7 out of 10")):
        assert parse_rating(f"{header}{gap}{value}\n\nGood answer.").value == 7.0, (header, gap, value)


@pytest.mark.parametrize("template", [
    "Rating: {a} for style, {b} for accuracy.", "Score: {a} for the code; {b} for the explanation.",
    "Rating: {a} is reserved for perfect answers; this one gets a {b}.", "Rating: {a} (would be {b} with sources).",
    "Score: {a}/10 on style and {b}/10 on facts.", "Final score: {a} or {b}, depending on the reader.",
])
def test_a_label_sentence_naming_two_ratings_is_ambiguous(template):
    for a, b in itertools.permutations((2, 5, 9, 10), 2):
        text = template.format(a=a, b=b)
        verdict = parse_rating(text)
        assert verdict.value is None and verdict.status == "ambiguous", (text, verdict)


OTHER_FORMS = ["I would rate it {x} out of 10.", "Overall: {x}/10", "The answer deserves {x}/10.",
               "Rating (out of 10): {x}", "Final score: {x}/10", "My rating: {x}/10.", "I'd give it a {x}.",
               "The assistant's answer is rated as a {x}.", "Score: {x}"]


@pytest.mark.parametrize("form", OTHER_FORMS)
def test_a_delimited_verdict_contradicted_in_another_form_is_ambiguous(form):
    for (x, y), gap, verdict in itertools.product(itertools.permutations((3, 6, 8), 2), ("\n", "\n\n", " "),
                                                  ("Rating: [[{y}]]", "[[{y}]]")):
        text = form.format(x=x) + gap + verdict.format(y=y)
        assert parse_rating(text).value is None, text
        agreeing = form.format(x=y) + gap + verdict.format(y=y)
        assert parse_rating(agreeing).value == float(y), agreeing       # the same rating twice is fine


NEGATED = ["so I won't choose {t}", "I would not pick {t}", "{t} is off the table", "I cannot say {t}",
           "{t} is wrong here", "I refuse to output {t}", "I don't think {t} is right", "{t} would be incorrect"]


@pytest.mark.parametrize("shape", NEGATED)
def test_a_negated_preference_token_is_not_the_verdict(shape):
    for token, value in (("[[A]]", "A"), ("[[B]]", "B")):
        other = "B" if value == "A" else "A"
        alone = f"Assistant {other} makes an error, but {shape.format(t=token)}; {other} is correct."
        assert parse_preference(alone).value is None, alone
        then = f"{shape.format(t=token)[0].upper()}{shape.format(t=token)[1:]}. My final verdict: [[{other}]]"
        assert parse_preference(then).value == other, then


@pytest.mark.parametrize("text", [
    "Assistant A is clearly better. [[A]]", "I choose [[B]].", "Not much separates them, but [[A]]",
    "There is no doubt, so [[B]]", "Both are not bad. [[C]]", "[[A]]\n\nA is not wrong anywhere.",
])
def test_plain_verdicts_near_negative_words_are_still_read(text):
    assert parse_preference(text).value is not None, text


@pytest.mark.parametrize("text", [
    "Rating:" + "\n" * 20_000 + "1", "Rating:\n" * 10_000, "Rating: 5" + " 1" * 20_000,
    "won't " * 10_000 + "[[A]]", "[[A]] is " * 8_000, "Score: 7" + " for" * 20_000, "Overall:" + " \n" * 20_000,
    "- **Helpfulness**: 8/10\n" * 4_000 + "Rating: [[8]]", "Rating (" * 10_000 + "): 8",
])
def test_the_new_rules_stay_linear(text):
    start = time.thread_time()
    parse_rating(text)
    parse_preference(text)
    assert time.thread_time() - start < 2.0
