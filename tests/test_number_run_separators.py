"""The key's byte codes joined by any separator a reader skips (issue 21, outside attack a6 B1).

"Any run of 8+ separated numbers read every way it decodes" held only for the separators
``[\\s,;:|{}\\[\\]()]``: ``115-107-45-…``, ``115.107.45.…``, ``0x73/0x6b/…``, ``U+0073-U+006B-…``,
octal ``163-153-55-…`` or binary ``01110011·01101011·…`` were stored and shown as they came.
Now a separator is any short run of characters that are no letter or digit, or a short word
(`` and ``). Generated over separators x number bases, at once and streamed, and end to end
through a real endpoint (tests/fakeserver.py) with the real SDK; ordinary text full of numbers
(dates, versions, IP addresses, phone numbers, CSV rows, tables, numeric arrays) stays as it is."""
from __future__ import annotations

import itertools
import random

import pytest
from echo_views import echoed_views

from llmlab.base._redact import Redactor, StreamRedactor

KEYS = {"mixed": "sk-proj-Qm7Zt2LxV9bR4cWn8Hs3Jd6Ky1Pf5Ga0Ue", "hex": "sk-3f9a0c41d27be8856a1f0e93c4d7b260"}
REDACTORS = {name: Redactor([key]) for name, key in KEYS.items()}
BASES = {"decimal": str, "hex": lambda b: f"{b:02x}", "HEX": lambda b: f"{b:02X}", "0x": lambda b: f"0x{b:02x}",
         "U+": lambda b: f"U+{b:04X}", "octal": lambda b: f"{b:o}", "0o": lambda b: f"0o{b:o}",
         "binary": lambda b: f"{b:08b}", "utf-16 units": lambda b: f"{b:04x}"}
SEPARATORS = [".", "-", "/", "+", "_", "·", "•", "–", "—", "~", "*", "&", "#", "><", "=", "^", "%", "!", "?", "@",
              "'", "`", "$", "\\", "--", "..", "->", " - ", ". ", " / ", " · ", ", ", " and ", " or ", ", and ",
              " then ", "|", " ", "\t", "\n", ",\n    ", ";", ":"]


def _tokens(key: str, base: str) -> list[str]:
    return [BASES[base](b) for b in key.encode()]


def _windows_left(text: str, tokens: list[str], sep: str, size: int = 8) -> int:
    """How many runs of ``size`` consecutive codes of the key, joined as sent, ``text`` still holds."""
    return sum(sep.join(tokens[i:i + size]) in text for i in range(len(tokens) - size + 1))


@pytest.mark.parametrize("sep", SEPARATORS)
@pytest.mark.parametrize("base", list(BASES))
def test_the_key_s_codes_joined_by_any_separator_are_redacted_at_once(sep, base):
    for key, redact in REDACTORS.items():  # a mixed-case key and a hex one
        text = f"the key: {sep.join(_tokens(KEYS[key], base))} done"
        assert redact(text) == redact.row([text, "ok"])[0] == "the key: [redacted] done", key


@pytest.mark.parametrize("sep", [".", "-", "/", "·", " and ", " - ", "><"])
@pytest.mark.parametrize("base", ["decimal", "0x", "U+", "octal", "binary"])
def test_the_key_s_codes_joined_by_any_separator_are_redacted_streamed(sep, base):
    """However the stream is cut, it shows nothing the at-once redactor finds and at most the
    first 7 codes (shown before the 8th shows they are the key's)."""
    tokens, redact = _tokens(KEYS["mixed"], base), REDACTORS["mixed"]
    text = f"codes: {sep.join(tokens)} done, that is all of them for today"
    for step in (1, 3, 8):
        stream = StreamRedactor(redact)
        shown = "".join(stream.feed(text[i:i + step]) for i in range(0, len(text), step)) + stream.feed(" ")
        assert "[redacted]" in shown and redact(shown) == shown, (step, shown)
        assert _windows_left(shown, tokens, sep, 3) <= 5, (step, shown)  # 3 codes at a time: only the first 7


def test_a_run_with_mixed_separators_after_other_numbers_and_hex_words_is_redacted_alone():
    """The date and 'bad' (a hex number, no decimal one) join the run of numbers, and are kept:
    only the stretch that decodes to the key is redacted."""
    tokens = _tokens(KEYS["mixed"], "decimal")
    seps = itertools.islice(itertools.cycle(["-", ".", "/", " and ", "·"]), len(tokens) - 1)
    codes = "".join(t + s for t, s in zip(tokens, [*seps, ""], strict=True))
    assert REDACTORS["mixed"](f"On 2026-12-07 the bad key was {codes}.") == "On 2026-12-07 the bad key was [redacted]."


def _ordinary(rnd: random.Random) -> list[str]:
    """Text full of numbers that is no key: dates, times, versions, IP addresses, phone numbers,
    CSV rows, a markdown table, C and numpy arrays, hex dumps, UUIDs, lists in words."""
    r = rnd.randint
    return [
        f"on {r(1990, 2030)}-{r(1, 12):02d}-{r(1, 28):02d}, {r(1, 28):02d}.{r(1, 12):02d}.{r(1990, 2030)}, "
        f"{r(1990, 2030)}/{r(1, 12):02d}/{r(1, 28):02d}"
        f" at {r(0, 23):02d}:{r(0, 59):02d}:{r(0, 59):02d}.{r(0, 999):03d}",
        " ".join(f"v{r(0, 20)}.{r(0, 40)}.{r(0, 99)}" for _ in range(8)) + " and 1.2.3.4.5.6.7.8.9.10",
        ", ".join(f"{r(1, 254)}.{r(0, 255)}.{r(0, 255)}.{r(0, 255)}" for _ in range(6)),
        f"+1-{r(200, 999)}-{r(200, 999)}-{r(1000, 9999)}, +44 {r(10, 99)} {r(1000, 9999)} {r(1000, 9999)}, "
        f"+49.{r(100, 999)}.{r(100, 999)}.{r(10, 99)}.{r(10, 99)}",
        "\n".join(",".join(str(r(0, 255)) for _ in range(12)) for _ in range(5)),
        "| a | b | c | d |\n|---|---|---|---|\n" + "\n".join(
            "| " + " | ".join(str(r(0, 300)) for _ in range(4)) + " |" for _ in range(6)),
        f"uint8_t b[] = {{{', '.join(f'0x{r(0, 255):02x}' for _ in range(16))}}};  "
        f"y = [{'-'.join(str(r(0, 255)) for _ in range(10))}]",
        " ".join(f"{r(0, 255)}{rnd.choice('-./+_·•–~*&#')}" for _ in range(20)),
        "-".join(f"{rnd.getrandbits(b):0{b // 4}x}" for b in (32, 16, 16, 16, 48)),
        " and ".join(str(r(0, 255)) for _ in range(10)) + ". Then " + " or ".join(str(r(0, 999)) for _ in range(10)),
    ]


def test_ordinary_text_full_of_numbers_stays():
    rnd = random.Random(21)
    texts = [t for _ in range(40) for t in _ordinary(rnd)]
    redact = REDACTORS["mixed"]  # a hex key's digit runs are matched as plain pieces in digit-heavy text
    assert [t for t in texts if redact(t) != t] == []


FORMS = {"decimal-dash": ("decimal", "-"), "decimal-dot": ("decimal", "."), "0x-slash": ("0x", "/"),
         "U+dash": ("U+", "-"), "octal-and": ("octal", " and "), "binary-middle-dot": ("binary", "·")}


@pytest.mark.parametrize("form", list(FORMS))
def test_an_endpoint_echoing_the_codes_stores_and_shows_none_of_them(tmp_path, monkeypatch, capsys, form):
    """The answer streamed 3 characters a delta and plain, the served model name, the reasoning and
    an error message: none keeps 8 of the key's codes in the database, the frame, the reprs, the
    live deltas or a warning (the served model's price warning quotes its name)."""
    key = KEYS["mixed"]
    monkeypatch.setenv("GATEWAY_KEY", key)
    tokens = _tokens(key, FORMS[form][0])
    sep = FORMS[form][1]
    codes = sep.join(tokens)
    texts, stored = echoed_views(tmp_path, capsys, codes, lead="codes: ")
    redact = REDACTORS["mixed"]
    for text in texts:
        assert _windows_left(text, tokens, sep) == 0 and redact(text) == text, (form, text[:300])
    by_model = stored.set_index("requested_model")
    assert "[redacted]" in by_model.loc["echo", "response_text"]
    assert "[redacted]" in by_model.loc["plain", "response_text"]
