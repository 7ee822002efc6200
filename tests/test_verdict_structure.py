"""A verdict token is read as the conclusion by structure, not by a phrase list (review r23 N1, W-b,
W-c): generated grammars (opener x clause x token form x tail, seeded) of conditioned, described,
revised and loser-naming tokens give no wrong known verdict, fenced code is never a verdict, and
real-looking verdicts whose preamble says would / might / if / had are still read."""
from __future__ import annotations

import itertools
import random

from llmlab.analysis._verdicts import parse_preference, parse_rating

OTHER = {"A": "B", "B": "A"}


def _sample(grammar: dict[str, tuple[str, ...]], template: str, count: int, seed: int, *,
            token: str = "") -> list[tuple[str, dict]]:
    """``count`` replies drawn from the grammar's product (seeded), each with the parts it was built
    from: ``v``/``w`` the sides, ``h`` a high rating, ``n`` an honest low one, ``token`` the verdict token."""
    rng = random.Random(seed)
    keys = list(grammar)
    combos = list(itertools.product(*(grammar[k] for k in keys)))
    out = []
    for combo in rng.sample(combos, min(count, len(combos))):
        parts = dict(zip(keys, combo, strict=True))
        parts["v"] = rng.choice("AB")
        parts["w"] = OTHER[parts["v"]]
        parts["h"] = rng.choice((8, 9, 10))
        parts["n"] = parts["h"] - 3
        parts["token"] = token.format(**parts)
        text = template.format(**parts)
        out.append((text.format(**parts), parts))      # parts may hold {v}, {w}, {h} themselves
    return out


def _wrong_ratings(replies: list[tuple[str, dict]]) -> list[tuple[str, float]]:
    return [(t, v.value) for t, p in replies if (v := parse_rating(t)).value == p["h"]]


def _wrong_preferences(replies: list[tuple[str, dict]]) -> list[tuple[str, str]]:
    return [(t, v.value) for t, p in replies if (v := parse_preference(t)).value == p["v"]]


CONDITIONED = {
    "opener": ("Provided", "Assuming", "Supposing", "If", "Unless", "In a world where", "Only if", "Ideally, if"),
    "clause": ("the units were right", "the code compiled", "it cited its sources", "the proof held",
               "the second step were fixed"),
    "main": ("it deserves {token}", "I'd give it {token}", "it'd get {token}", "the rating is {token}",
             "{token}", "I would say {token}", "this earns {token}"),
    "tail": ("", ". It does not.", "; it is not so.", ". Sadly it is wrong.", ". As it stands, it is weak."),
}
INVERTED = {
    "opener": ("Had the units been right", "Were the code correct", "Had it cited sources",
               "Should the proof hold", "Were it complete"),
    "main": ("it deserves {token}", "I'd give it {token}", "{token}", "the rating is {token}", "it'd get {token}"),
    "tail": ("", ". It is not.", "; sadly it is wrong.", ". It falls short."),
}
MODAL = {
    "subject": ("A careful answer", "This", "The response", "It", "Any reviewer", "A version with sources"),
    "verb": ("would have earned {token}", "could have been a {token}", "might get {token}",
             "would be a {token} with sources", "'d get {token}", "would deserve {token}"),
    "tail": ("", ". It is weak.", "; as written, far less.", ". In fact it is poor."),
}


def test_a_token_in_a_condition_or_a_modal_not_the_judges_is_never_the_rating():
    replies = _sample(CONDITIONED, "{opener} {clause}, {main}{tail}", 900, 1, token="[[{h}]]")
    replies += _sample(INVERTED, "{opener}, {main}{tail}", 400, 2, token="[[{h}]]")
    replies += _sample(MODAL, "{subject} {verb}{tail}", 400, 3, token="[[{h}]]")
    replies = [(t.replace(" 'd", "'d"), p) for t, p in replies]
    assert len(replies) > 800
    assert _wrong_ratings(replies) == []


def test_a_conditioned_pairwise_token_is_never_the_preference():
    replies = _sample(CONDITIONED, "{opener} {clause}, {main}{tail} Assistant {w} is better.", 900, 4,
                      token="[[{v}]]")
    replies += _sample(INVERTED, "{opener}, {main}{tail} So {w} wins.", 400, 5, token="[[{v}]]")
    assert _wrong_preferences(replies) == []


REVISED = {
    "prefix": ("My first instinct was", "Previously I said", "It is tempting to give", "At first glance,",
               "I started at", "A quick read suggests", "On the surface,", "I was about to write",
               "Earlier I wrote", "In the best case"),
    "revision": (", but the math is wrong.", "; correcting myself, it is poor.", ", yet the answer is wrong.",
                 ". Actually, it is poor.", ", though the answer is wrong.", ". On reflection, it is poor.",
                 " - no, the answer is wrong.", "? No. It is poor.", "\nWait, the answer is wrong.",
                 ", however the second half is wrong.", ". Scratch that: it is poor.", "? Hardly. It is poor.",
                 ". That was a mistake; it is poor.", "\nEdit: the answer is wrong.", "; in reality the answer fails."),
}


def test_a_token_that_later_text_revises_is_never_the_verdict():
    ratings = _sample(REVISED, "{prefix} [[{h}]]{revision}", 200, 6)
    pairs = _sample(REVISED, "{prefix} [[{v}]]{revision}", 200, 7)
    assert len(ratings) == len(pairs) == len(REVISED["prefix"]) * len(REVISED["revision"])
    assert _wrong_ratings(ratings) == [] and _wrong_preferences(pairs) == []


DESCRIBED = {
    "subject": ("Rating: [[{h}]]", "[[{h}]]", "A score of [[{h}]]", "The top mark, [[{h}]],", "Note: [[{h}]]"),
    "predicate": ("is given only to", "=", "goes to", "is earned by", "stands for", "is the score for",
                  "marks", "is kept for", "belongs to", "describes", "would require"),
    "object": ("flawless answers", "a perfect reply", "answers with sources"),
    "after": ("", " This answer has several errors.", " This one is mediocre.", "; this one is not."),
}
LOSER = {
    "before": ("The loser is", "Worse answer:", "Weaker response:", "Rejected:", "I would avoid", "Anything but",
               "Less helpful:", "Inferior:", "Losing answer:", "The weaker one is", "Less accurate answer:",
               "Second place:", "Runner-up:", "The weaker of the two is", "Clearly worse overall:"),
    "after": ("", " Assistant {w} is right."),
}
LOSER_PREDICATES = ("is worse", "loses", "falls short", "trails", "comes second", "is outperformed", "lags behind",
                    "is the weaker answer", "fails to answer", "is beaten on accuracy", "ist schlechter",
                    "est moins bon", "es peor", "è peggiore")


def test_a_described_rating_token_is_never_the_rating():
    replies = _sample(DESCRIBED, "{subject} {predicate} {object}.{after}", 700, 8)
    assert len(replies) == 660
    assert _wrong_ratings(replies) == []


def test_a_token_that_names_the_loser_is_never_the_winner():
    before = _sample(LOSER, "{before} [[{v}]].{after}", 100, 9)
    after = [(f"[[{v}]] {p}.{tail}", {"v": v}) for v, p, tail in
             itertools.product("AB", LOSER_PREDICATES, ("", " The other one is right."))]
    assert _wrong_preferences(before) == [] and _wrong_preferences(after) == []


FENCED = ("```\n{token}\n```", "```python\nx = \"{token}\"\n```", "```json\n{{\"verdict\": \"{token}\"}}\n```",
          "```text\nexample output: {token}\n```", "```\n{token}")      # the last one is never closed


def test_a_token_inside_a_fenced_code_block_is_never_a_verdict():
    pairs = [(f"{fence.format(token=token.format(v=v))}\nAssistant {OTHER[v]} is better.", {"v": v})
             for fence, token, v in itertools.product(FENCED, ("[[{v}]]", "Final verdict: [{v}]", "[[{v}>>B]]"),
                                                     "AB") if "{v}>>B" not in token or v == "A"]
    ratings = [(f"{fence.format(token=token.format(h=h))}\nThe answer is wrong.", {"h": h})
               for fence, token, h in itertools.product(FENCED, ("[[{h}]]", "Rating: [[{h}]]", "Rating: {h}/10",
                                                                "Rating: {h}"), (8, 9, 10))]
    assert _wrong_preferences(pairs) == [] and _wrong_ratings(ratings) == []
    # outside the fence, the same tokens are read
    assert parse_preference("```\nx = 1\n```\nFinal verdict: [[B]]").value == "B"
    assert parse_rating("```\nx = 1\n```\nRating: 7").value == 7


REAL_PAIRS = {
    "preamble": ("Assistant {w} might confuse the user", "{w}'s answer, while detailed, had several errors",
                 "{w} could have been clearer and is less accurate", "The user would benefit more from {v}",
                 "{w} would have been close had it checked the units, and {v} did check them",
                 "{w} would mislead a beginner", "Both were helpful, but {v} was more accurate"),
    "connector": (", so ", ": ", ". Therefore ", "; ", ". "),
    "verdict": ("[[{v}]]", "my verdict is [[{v}]]", "I would have to go with [[{v}]]", "I'd pick [[{v}]]",
                "Final verdict: [[{v}]]"),
    "tail": ("", ".", " because it is accurate.", ", as {w} would mislead the user.",
             "\n\n{w} does not answer the question.", "\nExplanation: {w} is not wrong, but {v} is clearer."),
}
REAL_RATINGS = {
    "preamble": ("The answer could have been shorter, but it is correct", "The response had minor issues",
                 "It would help to add an example", "A table might have helped", "If anything, it is verbose",
                 "The answer, which had a small typo, is otherwise right"),
    "connector": (", so ", ": ", ". ", ". Overall, "),
    "verdict": ("Rating: [[{n}]]", "[[{n}]]", "I would rate it [[{n}]]", "I'd give it [[{n}]]"),
    "tail": ("", ".", " - it would benefit from sources.", ", which would be higher with examples.",
             "\n\nThe answer could cite sources.", ", because the steps are right."),
}


def test_real_looking_verdicts_with_would_might_if_had_are_read():
    pairs = _sample(REAL_PAIRS, "{preamble}{connector}{verdict}{tail}", 2000, 10)
    ratings = _sample(REAL_RATINGS, "{preamble}{connector}{verdict}{tail}", 2000, 11)
    assert len(pairs) > 1000 and len(ratings) > 500
    # a bare token after a judgment and a colon ("B would mislead a beginner: [[A]]") is in no frame known
    # to conclude, the shape of "Eliminated: [[A]]" (review r25 B1): unknown, never another verdict
    unframed = [(t, p) for t, p in pairs + ratings if p["connector"] == ": " and p["verdict"].startswith("[[")]
    misread = [t for t, p in pairs if (p["connector"], p["verdict"][:2]) != (": ", "[[")
               and parse_preference(t).value != p["v"]]
    misread += [t for t, p in ratings if (p["connector"], p["verdict"][:2]) != (": ", "[[")
                and parse_rating(t).value != p["n"]]
    assert misread == [], misread[:5]
    assert unframed and all((parse_rating(t) if "n" in p["verdict"] else parse_preference(t)).value is None
                            for t, p in unframed)
