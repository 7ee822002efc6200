"""Key echoes the redactor read only in part (issue 21 leftovers, outside attack a6 W2 and B1).

* Braille: its letters were folded, but its digits are the number sign ⠼ and the letters a-j
  (``⠼⠁⠃`` is 12), read as letters: a hex key in Braille was stored and shown (2/2 end to end).
* A key split in pieces, each piece's byte codes joined by '-' (``115-107-45`` then, further
  on, ``112-114-111``) or any other separator but a space: the piece reader took spaces only,
  while the reader of 8+ numbers took any short run of punctuation or two short words. Now both
  use that one separator rule.

Generated over keys x Braille styles x separators, and bases x separators x piece sizes, at
once, streamed and end to end through a real endpoint (tests/fakeserver.py) with the real SDK;
ordinary text full of numbers stays as it is."""
from __future__ import annotations

import datetime
import random
import string
import uuid

import pytest
from echo_views import echoed_views
from test_number_run_separators import _ordinary

from llmlab.base._redact import Redactor, StreamRedactor

_RND = random.Random(43)
KEYS = {"hex": "sk-" + "".join(_RND.choice("0123456789abcdef") for _ in range(32)),
        "mixed": "sk-proj-" + "".join(_RND.choice(string.ascii_letters + string.digits) for _ in range(40)),
        "digits-first": "sk-" + "".join(_RND.choice("0123456789") for _ in range(6)) + "a7Zq3XvB9mK2tR8wLp4N"}
REDACTORS = {name: Redactor([key]) for name, key in KEYS.items()}

LETTERS = dict(zip(string.ascii_lowercase, "⠁⠃⠉⠙⠑⠋⠛⠓⠊⠚⠅⠇⠍⠝⠕⠏⠟⠗⠎⠞⠥⠧⠺⠭⠽⠵", strict=True))
DIGITS = dict(zip("1234567890", "⠁⠃⠉⠙⠑⠋⠛⠓⠊⠚", strict=True))
NUMBER, LETTER, CAPITAL = "⠼", "⠰", "⠠"


def braille(key: str, style: str) -> list[str]:
    """The key in Braille, one token per character of the key: ``each`` a number sign before
    every digit; ``rule`` one number sign per run of digits and a letter sign before a letter a-j
    after one (the braille rule); ``capitals`` as ``rule`` with the capital sign before capitals."""
    tokens, in_number = [], False
    for char in key:
        if char.isdigit():
            tokens.append(("" if in_number and style != "each" else NUMBER) + DIGITS[char])
            in_number = True
        elif char.lower() in LETTERS:
            sign = LETTER if in_number and style != "each" and char.lower() in "abcdefghij" else ""
            capital = CAPITAL if style == "capitals" and char.isupper() else ""
            tokens.append(sign + capital + LETTERS[char.lower()])
            in_number = False
        else:
            tokens.append(char)
            in_number = False
    return tokens


STYLES = ["each", "rule", "capitals"]
JOINS = ["", "\u200b", "-", " "]


def _cells_left(text: str, tokens: list[str], join: str, size: int = 8) -> int:
    """How many runs of ``size`` of the key's characters, written as sent, ``text`` still holds."""
    return sum(join.join(tokens[i:i + size]) in text for i in range(len(tokens) - size + 1))


@pytest.mark.parametrize("join", JOINS)
@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("key", list(KEYS))
def test_the_key_in_braille_with_its_digits_is_redacted_at_once(key, style, join):
    tokens = braille(KEYS[key], style)
    text = f"Here it is in Braille: {join.join(tokens)} — read it with your fingers."
    out = REDACTORS[key](text)
    assert "[redacted]" in out and _cells_left(out, tokens, join) == 0, out
    assert out.endswith(" — read it with your fingers."), out  # the text after it stays


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("key", ["hex", "mixed"])
def test_the_key_in_braille_is_redacted_streamed(key, style):
    tokens, redact = braille(KEYS[key], style), REDACTORS[key]
    text = f"in Braille: {''.join(tokens)} and that is all there is to it; nothing more to read here today."
    for step in (1, 3, 8):
        stream = StreamRedactor(redact)
        shown = "".join(stream.feed(text[i:i + step]) for i in range(0, len(text), step)) + stream.feed(" ")
        assert "[redacted]" in shown and _cells_left(shown, tokens, "") == 0, (step, shown)
        assert redact(shown) == shown, (step, shown)


def test_braille_numbers_that_are_no_key_stay():
    """Braille text with numbers (a date, a page, a price) and no key is not changed."""
    redact = REDACTORS["hex"]
    texts = ["⠏⠁⠛⠑ ⠼⠁⠃ ⠕⠋ ⠼⠃⠚", "⠼⠃⠚⠃⠋-⠼⠁⠃-⠼⠚⠛", "⠞⠓⠑ ⠏⠗⠊⠉⠑ ⠊⠎ ⠼⠊⠊ ⠙⠕⠇⠇⠁⠗⠎",
             "".join(NUMBER + DIGITS[d] for d in "31415926535")]
    assert [redact(t) for t in texts] == texts


BASES = {"decimal": str, "hex": lambda b: f"{b:02x}", "HEX": lambda b: f"{b:02X}", "0x": lambda b: f"0x{b:02x}",
         "octal": lambda b: f"{b:o}", "U+": lambda b: f"U+{b:04X}", "binary": lambda b: f"{b:08b}"}
SEPARATORS = ["-", ".", "/", ",", ", ", "_", ":", " - ", "·", "–", "+", "~", "|", " ", ";", "><", " and "]
BETWEEN = " — and the next part, after some words, is "


def _pieces(key: str, size: int) -> list[str]:
    """The key's random part (after its prefix) in pieces of ``size`` characters: 4 of them."""
    start = key.index("-", 3) + 1 if key.startswith("sk-proj-") else 3
    return [key[start + i:start + i + size] for i in range(0, 4 * size, size)]


def _codes(piece: str, base: str, sep: str) -> str:
    return sep.join(BASES[base](b) for b in piece.encode())


@pytest.mark.parametrize("size", [3, 4, 5])
@pytest.mark.parametrize("sep", SEPARATORS)
@pytest.mark.parametrize("base", list(BASES))
def test_a_split_key_s_byte_codes_joined_by_any_separator_are_redacted(base, sep, size):
    for key, redact in REDACTORS.items():
        codes = [_codes(p, base, sep) for p in _pieces(KEYS[key], size)]
        out = redact("The first part is " + BETWEEN.join(codes) + ". That was all of it.")
        assert [c for c in codes if c in out] == [], (key, out)
        assert out.endswith(". That was all of it."), (key, out)


@pytest.mark.parametrize("sep", ["-", ".", "/", " - ", "·"])
@pytest.mark.parametrize("base", ["decimal", "hex", "0x"])
def test_a_split_key_s_byte_codes_are_redacted_streamed(base, sep):
    key, redact = KEYS["mixed"], REDACTORS["mixed"]
    codes = [_codes(p, base, sep) for p in _pieces(key, 4)]
    text = "The first part is " + BETWEEN.join(codes) + ". That was all of it."
    for step in (1, 3, 8):
        stream = StreamRedactor(redact)
        shown = "".join(stream.feed(text[i:i + step]) for i in range(0, len(text), step)) + stream.feed(" ")
        assert "[redacted]" in shown and redact(shown) == shown, (step, shown)
        # a stream shows a piece before a later one shows it is the key's (as for base64 pieces,
        # tests/test_redact_round5.py): at most half of them
        assert sum(c in shown for c in codes) <= len(codes) // 2, (step, shown)


def _more_ordinary(rnd: random.Random) -> list[str]:
    """ISO timestamps, UUIDs, CSV with an id column, phone numbers, versions and dates, IPv4 and
    IPv6, CSS colours, arithmetic in prose: numbers joined by every separator a piece may use."""
    r = rnd.randint
    when = datetime.datetime(2020, 1, 1) + datetime.timedelta(seconds=r(0, 10**8))
    return [when.isoformat() + "Z, " + when.strftime("%Y-%m-%d %H:%M:%S.%f+02:00"),
            " ".join(str(uuid.UUID(int=rnd.getrandbits(128))) for _ in range(3)),
            "id,a,b,c\n" + "\n".join(f"{i},{r(0, 255)},{r(0, 255)},{r(0, 255)}" for i in range(6)),
            f"call 555-{r(100, 999)}-{r(1000, 9999)} or ({r(200, 999)}) {r(200, 999)}-{r(1000, 9999)}",
            f"version {r(0, 9)}.{r(0, 30)}.{r(0, 99)} released on {r(1, 28)}/{r(1, 12)}/{r(2000, 2030)}",
            f"ping 10.{r(0, 255)}.{r(0, 255)}.{r(0, 255)} and fe80::{rnd.getrandbits(16):x}:{rnd.getrandbits(16):x}",
            f"rgb({r(0, 255)}, {r(0, 255)}, {r(0, 255)}) #{rnd.getrandbits(24):06x}",
            f"Step 1 - 2 - 3: add {r(10, 99)}, {r(10, 99)} and {r(10, 99)}; 3.14, 2.71, 1.41 are constants."]


def test_ordinary_text_full_of_numbers_stays():
    """No ordinary text changes for the two mixed-case keys (a hex key's own digit runs are
    matched as plain pieces in hex-heavy text such as UUIDs: tests/test_number_run_separators.py)."""
    rnd = random.Random(43)
    texts = [t for _ in range(60) for t in _ordinary(rnd) + _more_ordinary(rnd)]
    for key in ("mixed", "digits-first"):
        assert [t for t in texts if REDACTORS[key](t) != t] == [], key


FORMS = {"braille-each": lambda k: "".join(braille(k, "each")), "braille-rule": lambda k: "".join(braille(k, "rule")),
         "codes-dash": lambda k: BETWEEN.join(_codes(p, "decimal", "-") for p in _pieces(k, 4)),
         "hex-codes-slash": lambda k: BETWEEN.join(_codes(p, "0x", "/") for p in _pieces(k, 5))}


@pytest.mark.parametrize("form", list(FORMS))
def test_an_endpoint_echoing_these_forms_stores_and_shows_none_of_them(tmp_path, monkeypatch, capsys, form):
    """The answer streamed 3 characters a delta and plain, the served model name, the reasoning and
    an error message: none keeps the echo in the database, the frame, the reprs, the live deltas or
    a warning (tests/echo_views.py)."""
    key = KEYS["hex"]
    monkeypatch.setenv("GATEWAY_KEY", key)
    echo = FORMS[form](key)
    texts, stored = echoed_views(tmp_path, capsys, echo)
    redact = REDACTORS["hex"]
    for text in texts:
        assert echo not in text and redact(text) == text, (form, text[:300])
    by_model = stored.set_index("requested_model")
    assert "[redacted]" in by_model.loc["echo", "response_text"]
    assert "[redacted]" in by_model.loc["plain", "response_text"]
