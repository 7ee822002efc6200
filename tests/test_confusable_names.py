"""Two model names that render alike are refused in one line, before anything is sent (F3).

``check_name_chars`` (base/_validate) refuses every character that prints nothing or prints
differently on every machine — Unicode's Default_Ignorable_Code_Point set (COMBINING GRAPHEME
JOINER, variation selectors, Hangul fillers, Mongolian selectors …), format characters, private-use
and unassigned code points, line separators, BRAILLE PATTERN BLANK — and compares names by a
skeleton (NFKC, then the redactor's table of Cyrillic/Greek/small-capital lookalikes), so 'gpt-4o'
and 'gpt-4о' (Cyrillic о) are "read the same". ASCII names are compared as written."""
from __future__ import annotations

import pytest
from fakeserver import ModelSpec

from llmlab import InputError, Lab, routing
from llmlab.base._validate import check_name_chars, name_skeleton
from llmlab.engine._jobs import check_models

INVISIBLE = ["\u034f", "\u115f", "\u1160", "\u3164", "\uffa0", "\ufe00", "\ufe0f", "\U000e0100", "\U000e01ef",
             "\u180b", "\u180f", "\u17b4", "\u17b5", "\u2800", "\u200b", "\u2060", "\u00ad", "\ue000",
             "\U000f0000", "\u0378", "\u2028", "\u2029", "\ufff0"]
LOOKALIKES = [("gpt-4o", "gpt-4\u043e"), ("gpt-4o", "gpt-4\u03bf"), ("llama-3", "ll\u0430ma-3"),
              ("claude", "\u0441laude"), ("mistral", "mi\u0455tral"), ("m", "\uff4d"), ("Opus", "\u041epus"),
              ("kimi", "\u03baimi"), ("m x", "m\u2000x")]


@pytest.mark.parametrize("char", INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
def test_invisible_characters_are_refused(char):
    with pytest.raises(InputError, match=f"model name #2 holds the invisible character U\\+{ord(char):04X}"):
        check_models(["m", "m" + char])


@pytest.mark.parametrize(("one", "two"), LOOKALIKES)
def test_lookalike_names_read_the_same(one, two):
    assert name_skeleton(two) == one
    with pytest.raises(InputError, match="model names #1 and #2 read the same") as info:
        check_models([one, two])
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("names", [["gpt-4o", "gpt-40"], ["a", "A"], ["l", "1", "I"], ["m", "\u1e43"],
                                   ["\u0413\u0438\u0433\u0430", "Giga"]])
def test_names_that_read_differently_pass(names):
    check_name_chars(names)


def test_compare_sends_nothing_for_lookalikes(serve, tmp_path):
    srv = serve({"gpt-4o": ModelSpec(text="hi")})
    with Lab(base_url=srv.base_url, db=tmp_path / "r.sqlite", retries=0) as lab:
        for models in (["gpt-4o", "gpt-4\u043e"], ["gpt-4o", "gpt-4o\u034f"], ["gpt-4o", "gpt-4o\u3164"]):
            with pytest.raises(InputError):
                lab.compare("hi", models=models)
    assert srv.requests == []


def test_a_policy_is_refused_the_same_way():
    with pytest.raises(InputError, match="read the same"):
        routing.Cascade(["gpt-4o", "gpt-4\u043e"], accept=lambda text: bool(text))
