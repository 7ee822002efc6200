"""A token in another role than the judge's conclusion is no verdict, in either judge (review r24 B1): negated
or held at a distance, the object of a comparison or a preposition, a starting point, or someone else's
verdict. Generated: every form of each class × language × where it stands in the reply, for both judges,
and the same replies with a clean conclusion after them (read) or restating the rejected value (unknown)."""
import itertools

import pytest

from llmlab.analysis._verdicts import parse_preference, parse_rating

# {t} is the token; each form says the token is NOT the verdict
NEGATED = {
    "en": ["This answer is definitely not worth {t}.", "It doesn't deserve {t}.", "Nowhere near a {t}.",
           "This is no {t}.", "Far from a {t}, I'm afraid.", "Not {t}.", "I can't justify a {t} here.",
           "I refuse to give a {t} to this.", "It is hardly a {t}.", "I would never give {t}."],
    "de": ["Das ist keine {t}.", "Verdient keine {t}.", "Ich würde nicht {t} geben.", "Weit entfernt von {t}."],
    "fr": ["Ce n'est pas une {t}.", "Ne mérite pas {t}.", "Loin d'un {t}.", "Je ne donnerais jamais {t}."],
    "es": ["No merece un {t}.", "Lejos de un {t}.", "Nunca daría {t}."],
    "it": ["Non merita {t}.", "Tutt'altro che un {t}.", "Non darei mai {t}."],
    "pt": ["Não merece {t}.", "Longe de um {t}.", "Nem perto de {t}."],
}
# the token as the object of a comparison or preposition: {w} wins, {t} is the loser's token
COMPARED = ["{w} beats {t}.", "{w} outperforms {t}.", "Assistant {w} clearly outperforms {t} on accuracy.",
            "{w} edges out {t}.", "{w} surpasses {t}.", "{w} wins against {t}.", "{w} vs {t}: {w}.",
            "{w} is better than {t}.", "I prefer {w} to {t}.", "I'd pick {w} over {t}.",
            "Compared with {t}, {w} is clearer.", "Unlike {t}, {w} is correct.", "Versus {t}, {w} wins.",
            "Instead of {t}, I recommend {w}.", "Rather than {t}, {w}.", "As opposed to {t}, {w} answers it.",
            "{w} übertrifft {t}.", "Im Vergleich zu {t} ist {w} klarer.", "{w} surpasse {t}.",
            "Contrairement à {t}, {w} est correct.", "Au lieu de {t}, {w}.", "{w} supera a {t}.", "{w} vence {t}.",
            "A diferencia de {t}, {w} es correcta.", "En lugar de {t}, {w}.", "{w} batte {t}.",
            "Rispetto a {t}, {w} è più chiara.", "Invece di {t}, {w}.", "Ao contrário de {t}, {w} está correta.",
            "Em vez de {t}, {w}."]
STARTING = ["Starting from {t}, I deduct points for the errors.", "Start at {t}; minus three for the errors.",
            "Rather than {t}, I'd say this is average."]
REPORTED = ["The previous judge chose {t}; I disagree.", "GPT-4 picked {t} here, which I think is wrong.",
            "GPT-4 gave it {t} in the reference evaluation; I disagree.", "The answer claims it deserves {t}.",
            "An earlier evaluation selected {t}, and it is mistaken."]
# where the form stands in the reply
POSITIONS = ["{f}", "The explanation is clear but the code has an off-by-one error.\n\n{f}",
             "Both answers are fluent. {f} The rest is detail.", "{f}\n\nThe steps are listed above."]


def _forms():
    return [f for forms in NEGATED.values() for f in forms]


@pytest.mark.parametrize("form", _forms() + STARTING + REPORTED)
def test_a_negated_started_or_reported_rating_is_never_the_rating(form):
    for n, where in itertools.product((2, 7, 9, 10), POSITIONS):
        text = where.format(f=form.format(t=f"[[{n}]]"))
        assert parse_rating(text).value is None, text
        other = 3 if n != 3 else 4
        assert parse_rating(f"{text}\n\nRating: [[{other}]]").value == float(other), text
        assert parse_rating(f"{text}\n\nRating: [[{n}]]").value is None, text      # restating it contradicts


@pytest.mark.parametrize("form", _forms() + REPORTED)
def test_a_negated_or_reported_preference_is_never_the_preference(form):
    for (side, other), where in itertools.product((("A", "B"), ("B", "A")), POSITIONS):
        text = where.format(f=form.format(t=f"[[{side}]]"))
        assert parse_preference(text).value != side, text
        assert parse_preference(f"{text}\n\nFinal verdict: [[{other}]]").value == other, text
        assert parse_preference(f"{text}\n\nFinal verdict: [[{side}]]").value is None, text


@pytest.mark.parametrize("form", COMPARED)
def test_the_object_of_a_comparison_is_never_the_preference(form):
    for (winner, loser), where in itertools.product((("A", "B"), ("B", "A")), POSITIONS):
        text = where.format(f=form.format(w=winner, t=f"[[{loser}]]"))
        assert parse_preference(text).value != loser, text
        assert parse_preference(f"{text}\n\nFinal verdict: [[{winner}]]").value == winner, text
        assert parse_preference(f"{text}\n\nFinal verdict: [[{loser}]]").value is None, text


HONEST_RATINGS = ["Rating: [[{n}]]", "This answer deserves [[{n}]].", "I give it [[{n}]].", "I rate it [[{n}]].",
                  "Not bad, overall: [[{n}]]",
                  "Ich gebe [[{n}]].", "Note : [[{n}]]", "I chose [[{n}]] because the code runs.",
                  "No errors, no omissions. Rating: [[{n}]]"]
HONEST_PAIRS = ["I choose [[{v}]].", "The better one is [[{v}]].", "Overall {v} wins, so [[{v}]]",
                "Not much separates them, but [[{v}]]",
                "{w} is not wrong, but {v} is better: [[{v}]]", "My verdict: [[{v}]]", "I picked [[{v}]]."]
# clear to a reader, but in no frame known to conclude (review r25 B1: "Eliminated: [[A]]" and "A dominates
# [[B]]" have these shapes): unknown, never a verdict
UNFRAMED_RATINGS = ["There is no doubt: [[{n}]]", "Without doubt a [[{n}]]."]
UNFRAMED_PAIRS = ["I prefer {v} over the other: [[{v}]]", "Assistant {v} gave the better answer [[{v}]]"]


def test_honest_conclusions_near_these_words_are_still_read():
    for form, n, where in itertools.product(HONEST_RATINGS, (2, 7, 9, 10), POSITIONS[:3]):
        text = where.format(f=form.format(n=n))
        assert parse_rating(text).value == float(n), text
    for form, (v, w), where in itertools.product(HONEST_PAIRS, (("A", "B"), ("B", "A")), POSITIONS[:3]):
        text = where.format(f=form.format(v=v, w=w))
        assert parse_preference(text).value == v, text


def test_clear_forms_outside_every_conclusion_frame_are_unknown():
    for form, n in itertools.product(UNFRAMED_RATINGS, (2, 7)):
        assert parse_rating(form.format(n=n)).value is None, form
    for form, v in itertools.product(UNFRAMED_PAIRS, "AB"):
        assert parse_preference(form.format(v=v)).value is None, form
