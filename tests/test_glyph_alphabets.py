"""The key in glyph alphabets with no compatibility form (issue 21, outside attack a6 W2): negative
circled and negative squared capitals, regional indicators, Braille letters and upside-down text are
read through the one lookalike table (llmlab/base/_redact.py _LOOKALIKE), in any case. Not read:
Braille digits (a number sign, then the letters a-j) and the b d n p q u of upside-down text."""
from __future__ import annotations

import re

import pytest

from llmlab.base._redact import Redactor, StreamRedactor

KEY = "sk-proj-Qm7Zt2LxV9bR4cWn8Hs3Jd6Ky1Pf5Ga0Ue"
REDACT = Redactor([KEY])
BRAILLE = dict(zip("abcdefghijklmnopqrstuvwxyz", "⠁⠃⠉⠙⠑⠋⠛⠓⠊⠚⠅⠇⠍⠝⠕⠏⠟⠗⠎⠞⠥⠧⠺⠭⠽⠵", strict=True))
TURNED = dict(zip("abcdefghijklmnopqrstuvwxyz", "ɐqɔpǝɟƃɥᴉɾʞlɯuodbɹsʇnʌʍxʎz", strict=True))


def _letters(start: int) -> str:
    return "".join(chr(start + ord(c.lower()) - 97) if c.isalpha() else c for c in KEY)


FORMS = {"negative circled": _letters(0x1F150), "negative squared": _letters(0x1F170),
         "regional indicators": _letters(0x1F1E6),
         "regional indicators, zero-width joined": "\u200b".join(_letters(0x1F1E6)),
         "braille": "".join(BRAILLE.get(c.lower(), c) for c in KEY),
         "upside-down": "".join(TURNED.get(c.lower(), c) for c in KEY)[::-1]}


@pytest.mark.parametrize("name", list(FORMS))
def test_the_key_in_a_glyph_alphabet_is_redacted_at_once_and_streamed(name):
    text = f"the key: {FORMS[name]} ok"
    out = REDACT(text)
    if name == "upside-down":  # its b d n p q u stay, the pieces between them go (and the public 'sk-proj-')
        left = re.findall(r"[^\s\[\]]{3,}", out.replace("[redacted]", " "))
        assert out.count("[redacted]") >= 4 and left == ["the", "key:", "b-ɾoɹd-ʞs"], out
    else:
        assert out == "the key: [redacted] ok"
    stream = StreamRedactor(REDACT)
    shown = "".join(stream.feed(text[i:i + 3]) for i in range(0, len(text), 3)) + stream.feed(" and more ")
    assert "[redacted]" in shown and REDACT(shown) == shown, shown


def test_flags_braille_and_phonetic_text_that_is_no_key_stays():
    text = "Flags 🇺🇸 🇫🇷 🇯🇵, braille ⠓⠑⠇⠇⠕ ⠺⠕⠗⠇⠙, ʇxǝʇ uʍop ǝpısdn, 🅐🅑🅒 and 🆂🅾🆂 signs, [ɔ] and [ɐ] in IPA."
    assert REDACT(text) == text
