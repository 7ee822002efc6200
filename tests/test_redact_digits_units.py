"""A key's digits in any script, its byte codes joined by a unit, and the redactor's memory (issue 21, a7).

* B1: a hex key written with another script's decimal digits (Arabic-Indic ٤, Devanagari ४, Thai ๔,
  NKo, Adlam, … every Unicode Nd block) or dingbat/enclosed digits (➃ ❹ ④ ⑷ ⒋) was kept: the fold
  read its letters only. Generated over every Nd block of this Python's unicodedata x key shapes;
  ordinary Arabic, Hindi, Thai, Bengali and Persian prose with numbers and dates stays.
* B2: byte codes with a unit or glued by a letter (``115x107x45``, ``115px 107px``, ``73h 6Bh``)
  were no number run; now they are, at once and streamed; CSS, screen sizes, assembler and
  times stay.
* W1: 1 MB of ``1 2 1 2`` took 300 MB (a backtracking frame per number, a match object per
  number); the peak is now linear and small (under 64 bytes a character).
End to end through a real endpoint (tests/fakeserver.py) with the real SDK."""
from __future__ import annotations

import random
import tracemalloc
import unicodedata

import pytest
from echo_views import echoed_views

from llmlab.base._redact import Redactor, StreamRedactor

KEYS = {"hex": "sk-3f9a0c41d27be8856a1f0e93c4d7b260", "digits-first": "sk-9183746502a1b2c3d4e5f60718293a4b",
        "mixed": "sk-proj-Qm7Zt2LxV9bR4cWn8Hs3Jd6Ky1Pf5Ga0Ue"}
REDACTORS = {name: Redactor([key]) for name, key in KEYS.items()}
# Every block of ten decimal digits (Unicode guarantees Nd digits come as 0-9 in a row)
ZEROS = sorted({code - unicodedata.digit(chr(code)) for code in range(0x110000)
                if unicodedata.category(chr(code)) == "Nd" and code >= 0x80})
# Digit sets no NFKD fold reads as ASCII (dingbats, negative circled) and ones it does (circled,
# parenthesized, with a full stop, double circled), by the code point of 1 (0 where one exists)
ENCLOSED = {"dingbat-sans": (0x2780, 0x1F10B), "dingbat-negative-sans": (0x278A, 0x1F10C),
            "negative-circled": (0x2776, 0x24FF), "circled": (0x2460, 0x24EA), "parenthesized": (0x2474, None),
            "full-stop": (0x2488, 0x1F100), "double-circled": (0x24F5, None)}


def _digits(key: str, one: int, zero: int | None) -> str:
    return "".join(chr(one + int(c) - 1) if c in "123456789" else chr(zero) if c == "0" and zero else c for c in key)


def _in_script(key: str, zero: int) -> str:
    return "".join(chr(zero + int(c)) if c.isdigit() else c for c in key)


def test_every_nd_digit_block_is_read_as_ascii_digits():
    assert len(ZEROS) >= 60 and 0x660 in ZEROS and 0x1E950 in ZEROS  # Arabic-Indic ... Adlam
    kept = [(hex(zero), name) for zero in ZEROS for name, key in KEYS.items()
            if REDACTORS[name](f"the key is {_in_script(key, zero)} today") != "the key is [redacted] today"]
    assert kept == []


@pytest.mark.parametrize("form", list(ENCLOSED))
def test_enclosed_and_dingbat_digits_are_read_as_ascii_digits(form):
    for name, key in KEYS.items():
        text = f"key: {_digits(key, *ENCLOSED[form])}."
        assert REDACTORS[name](text) == "key: [redacted].", (name, text)


@pytest.mark.parametrize("zero", [0x660, 0x966, 0xE50, 0x1040, 0x1E950])
def test_a_key_in_script_digits_is_redacted_streamed(zero):
    key, redact = KEYS["hex"], REDACTORS["hex"]
    written = _in_script(key, zero)
    text = f"here it is: {written} and that is all for today"
    for step in (1, 3, 8):
        stream = StreamRedactor(redact)
        shown = "".join(stream.feed(text[i:i + step]) for i in range(0, len(text), step)) + stream.feed(" ")
        assert "[redacted]" in shown and written[6:18] not in shown and redact(shown) == shown, (step, shown)


def _prose(rnd: random.Random) -> list[str]:
    """Ordinary text in scripts with their own digits: dates, prices, phone numbers, lists."""
    def num(zero: int, value: int) -> str:
        return "".join(chr(zero + int(c)) for c in str(value))
    r = rnd.randint
    return [
        f"في يوم {num(0x660, r(1, 28))}/{num(0x660, r(1, 12))}/{num(0x660, r(1990, 2030))} دفعنا "
        f"{num(0x660, r(10, 99999))} ريالاً، والهاتف {num(0x660, r(10**8, 10**9))}.",
        f"दिनांक {num(0x966, r(1, 28))}-{num(0x966, r(1, 12))}-{num(0x966, r(1990, 2030))} को "
        f"{num(0x966, r(1, 999))} लोग आए; कुल ₹{num(0x966, r(1000, 10**7))}, कमरा {num(0x966, r(1, 500))}।",
        f"วันที่ {num(0xE50, r(1, 28))} เดือน {num(0xE50, r(1, 12))} ปี {num(0xE50, r(2500, 2600))} "
        f"ราคา {num(0xE50, r(10, 99999))} บาท โทร {num(0xE50, r(10**8, 10**9))}",
        "তালিকা: " + ", ".join(num(0x9E6, r(0, 9999)) for _ in range(12)),
        "سال " + " و ".join(num(0x6F0, r(1300, 1410)) for _ in range(10)),
        " ".join(f"{chr(0x2460 + r(0, 8))} {chr(0x2776 + r(0, 8))} {chr(0x2780 + r(0, 8))}" for _ in range(8)),
    ]


def test_ordinary_prose_with_script_digits_stays():
    rnd = random.Random(22)
    texts = [t for _ in range(40) for t in _prose(rnd)]
    changed = [(name, t) for name, redact in REDACTORS.items() for t in texts if redact(t) != t]
    assert changed == []


UNIT_FORMS = {"x-joined": lambda codes: "x".join(map(str, codes)),
              "px": lambda codes: " ".join(f"{c}px" for c in codes),
              "pt-comma": lambda codes: ", ".join(f"{c}pt" for c in codes),
              "asm-h": lambda codes: " ".join(f"{c:02X}h" for c in codes),
              "asm-h-comma": lambda codes: ", ".join(f"0{c:02X}h" for c in codes)}


@pytest.mark.parametrize("form", list(UNIT_FORMS))
def test_byte_codes_with_a_unit_are_redacted_at_once_and_streamed(form):
    for name, key in KEYS.items():
        redact, written = REDACTORS[name], UNIT_FORMS[form](key.encode())
        text = f"the codes: {written} done, that is all of them for today"
        assert redact(text) == "the codes: [redacted] done, that is all of them for today", (name, text)
        for step in (1, 3, 8):
            stream = StreamRedactor(redact)
            shown = "".join(stream.feed(text[i:i + step]) for i in range(0, len(text), step)) + stream.feed(" ")
            assert "[redacted]" in shown and written[40:60] not in shown and redact(shown) == shown, (step, shown)


@pytest.mark.parametrize("text", [
    "margin: 12px 14px 16px 18px; padding: 1px 2px 3px 4px; border: 0px 1px 0px 1px; font: 13px/18px",
    "Screens: 1920x1080, 2560x1440, 3840x2160, 1280x720, 1366x768, 800x600, 1024x768 and 640x480.",
    "mov ax, 4Ch ; int 21h ; db 0Dh, 0Ah, 24h, 41h, 42h, 43h, 44h, 45h, 0FFh, 7Fh",
    "Laps: 1h 2m 3s, 4h 5m 6s, 7h 8m 9s; 10km 12km 15km 21km 42km; grid 2x2x2x2x2x2x2x2x2",
    "sizes 8pt 9pt 10pt 11pt 12pt 14pt 18pt 24pt 36pt 48pt 72pt",
])
def test_ordinary_numbers_with_units_stay(text):
    for redact in REDACTORS.values():
        assert redact(text) == text
        whole = text + " and that is all of them for today"  # a run of numbers is held until it ends
        stream = StreamRedactor(redact)
        shown = "".join(stream.feed(whole[i:i + 3]) for i in range(0, len(whole), 3)) + stream.feed(" ")
        assert shown.startswith(text + " and"), shown


@pytest.mark.parametrize("unit", ["1 2 ", "115 107 ", "ab12\n"])
def test_the_redactor_s_memory_is_linear_and_small(unit):
    """Peak memory (Python's allocations) while redacting 512 KB of numbers or base64 lines: under
    64 bytes a character (27-54 now; it was 163-328: a backtracking frame per number in the run's
    regular expression, a match object per number, lists of positions)."""
    size = 1 << 19
    text = (unit * (size // len(unit) + 1))[:size]
    tracemalloc.start()
    try:
        REDACTORS["mixed"](text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * size, f"{peak / size:.0f} bytes per character"


FORMS = {"arabic-indic": lambda key: _in_script(key, 0x660), "devanagari": lambda key: _in_script(key, 0x966),
         "dingbat": lambda key: _digits(key, 0x2780, 0x1F10B), "x-joined": lambda key: "x".join(map(str, key.encode())),
         "asm-h": lambda key: " ".join(f"{c:02X}h" for c in key.encode())}


@pytest.mark.parametrize("form", list(FORMS))
def test_an_endpoint_echoing_the_form_stores_and_shows_none_of_it(tmp_path, monkeypatch, capsys, form):
    """Streamed 3 characters a delta and plain, the served model name, the reasoning, an error:
    the database, the frame, the reprs, the live deltas and the price warning keep none of it."""
    key = KEYS["hex"]
    monkeypatch.setenv("GATEWAY_KEY", key)
    written = FORMS[form](key)
    texts, stored = echoed_views(tmp_path, capsys, written, lead="it: ")
    middle = written[len(written) // 3:len(written) // 3 + 12]
    for text in texts:
        assert middle not in text and REDACTORS["hex"](text) == text, (form, text[:300])
    assert "[redacted]" in stored.set_index("requested_model").loc["echo", "response_text"]


def _named(key: str) -> str:
    return "".join(f"\\N{{{unicodedata.name(c)}}}" for c in key)


@pytest.mark.parametrize("name", list(KEYS))
def test_python_named_escapes_are_read_at_once_and_streamed(name):
    """``\\N{LATIN SMALL LETTER S}…`` (a7 W2): read as \\u escapes are; a stream holds a run of them
    (their names hold spaces) as it holds a run of numbers."""
    key, redact = KEYS[name], REDACTORS[name]
    written = _named(key)
    text = f"print('{written}') and that is all for today"
    assert redact(text) == "print('[redacted]') and that is all for today"
    for step in (1, 3, 8):
        stream = StreamRedactor(redact)
        shown = "".join(stream.feed(text[i:i + step]) for i in range(0, len(text), step)) + stream.feed(" ")
        names = [n for n in shown.split("\\N{")[1:] if "}" in n]
        assert "[redacted]" in shown and len(names) <= 7 and redact(shown) == shown, (step, shown)


def test_named_escapes_of_no_key_stay():
    text = r"Use \N{BULLET} or \N{EM DASH}; \N{NO SUCH NAME} is an error; \N{LATIN SMALL LETTER A}\N{DIGIT ONE}"
    assert all(redact(text) == text for redact in REDACTORS.values())
