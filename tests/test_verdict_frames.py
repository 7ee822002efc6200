"""A delimited token is a verdict only in a frame known to conclude (review r25 B1).

The frames nobody listed are generated, not listed: verbs, prepositions and labels are pseudo-words
from a seeded syllable generator, so no table of known bad phrasings can pass this test — only the
allow-list (a token alone, after a verdict label, or the judge's choosing clause) can."""
from __future__ import annotations

import itertools
import random
import re

from llmlab.analysis._verdicts import parse_preference, parse_rating

# the allow-list's own words (a generated word that happens to be one would be a real frame)
_ALLOWED = re.compile(r"(?i)rating|score|grade|verdict|winner|decision|choice|pick|result|overall|output|note|nota|"
                      r"voto|wahl|urteil|fazit|choix|give|rate|award|assign|prefer|choose|select|declare|chose|gave")
_SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]


def _words(rng: random.Random, count: int) -> list[str]:
    """``count`` pseudo-words of two to four syllables, none holding an allow-listed word."""
    out: list[str] = []
    while len(out) < count:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))
        if not _ALLOWED.search(word):
            out.append(word)
    return out


_PAIR_SHAPES = ("{x} {w1}s [[{y}]]", "{x} is {w1} {w2} [[{y}]]", "{x} {w1}s {w2} [[{y}]].", "{W1}: [[{y}]]",
                "{W1} {w2}: [[{y}]]", "{x}, {w1} [[{y}]]", "No {w1} it is [[{y}]].", "{W1} {w2} [[{y}]]")
_RATING_SHAPES = ("{W1} a [[{n}]].", "No {w1} this is a [[{n}]].", "It {w1}s {w2} [[{n}]].", "{W1} {w2}: [[{n}]]",
                  "{W1}: [[{n}]]", "It is {w1} {w2} a [[{n}]].", "The answer {w1}s [[{n}]].")
_PLACES = ("{f}", "The answer is fluent but has flaws. {f}", "Some points are right.\n{f}\nThe rest is prose.")


def _cases(shapes: tuple[str, ...], seed: int) -> list[str]:
    rng = random.Random(seed)
    words = _words(rng, 120)
    out = []
    for shape, place in itertools.product(shapes, _PLACES):
        for _ in range(12):
            w1, w2 = rng.sample(words, 2)
            frame = shape.format(x=rng.choice(("A", "B", "Assistant A", "Assistant B")), y=rng.choice("AB"),
                                 n=rng.randint(1, 10), w1=w1, w2=w2, W1=w1.capitalize())
            out.append(place.format(f=frame))
    return out


def test_a_token_in_a_generated_non_conclusion_frame_is_never_a_verdict():
    pairs, ratings = _cases(_PAIR_SHAPES, 2501), _cases(_RATING_SHAPES, 2502)
    assert len(pairs) > 250 and len(ratings) > 250
    read = [(t, v) for t in pairs if (v := parse_preference(t).value) is not None]
    read += [(t, v) for t in ratings if (v := parse_rating(t).value) is not None]
    assert read == [], read[:5]


def test_the_same_tokens_in_a_conclusion_frame_are_read():
    # the control: the generator's noise around a frame that concludes leaves the verdict readable
    rng = random.Random(2503)
    for w1, w2 in zip(_words(rng, 40), _words(rng, 40), strict=True):
        prose = f"{w1.capitalize()} {w2}s the point."
        assert parse_preference(f"{prose}\nFinal verdict: [[B]]").value == "B"
        assert parse_preference(f"{prose} I choose [[A]].").value == "A"
        assert parse_rating(f"{prose}\nRating: [[7]]").value == 7.0
        assert parse_rating(f"{prose} I give it a [[4]].").value == 4.0
