"""The stream redactor (llmlab/base/_redact.py StreamRedactor) against the at-once one: however a
stream is cut into deltas, the text it shows holds nothing the at-once Redactor still finds, and
a long word costs it about as much as the word's length (issue 21, #14)."""
from __future__ import annotations

import base64
import random
import time

import pytest

from llmlab.base._redact import Redactor, StreamRedactor

KEYS = ["sk-proj-Qm7Zt2LxV9bR4cWn8Hs3Jd6Ky1Pf5Ga0Ue", "sk-live-Z9Y8X7W6V5U4T3S2R1Q0-abcdefghIJKLMNOP"]
REDACTORS = {key: Redactor([key]) for key in KEYS}


def _part(rnd: random.Random, key: str) -> str:
    """One part of a hostile answer: a piece of the key, the key encoded or split, a long junk
    word ending in the key's start, a base64 blob of random bytes, or ordinary filler."""
    r = rnd.random()
    if r < 0.35:
        at = rnd.randrange(len(key) - 3)
        return key[at:at + rnd.randint(3, 12)]
    if r < 0.45:
        return base64.b64encode(key.encode()).decode()
    if r < 0.5:
        return key.encode().hex()
    if r < 0.55:
        return "".join(f"%{ord(c):02X}" for c in key[rnd.randrange(8):])
    if r < 0.6:
        return "".join(f"\\u{ord(c):04x}" for c in key[rnd.randrange(8):])
    if r < 0.65:
        half = rnd.randrange(4, len(key) - 4)
        return key[:half] + rnd.choice([" ", "\u200b", "**", " and "]) + key[half:]
    if r < 0.7:
        return rnd.choice("xyab=") * rnd.randint(100, 900) + key[:rnd.randint(4, 20)]
    if r < 0.74:
        return base64.b64encode(rnd.randbytes(rnd.randint(30, 900))).decode()
    if r < 0.77:
        return key[rnd.randint(0, 6):]
    if r < 0.8:  # issue 21 round 2: forms read by decoding, undoubling or lookalike letters
        part = key[rnd.randrange(8):]
        return rnd.choice([" ".join(base64.b64encode(part.encode()).decode()), "".join(c * 2 for c in part),
                           " ".join(f"{b:08b}" for b in part.encode()), "".join(chr(0xE0000 + ord(c)) for c in part),
                           "{" + ",".join(f"0x{b:02x}" for b in part.encode()) + "}", part.encode("utf-16-be").hex(),
                           "".join(f"\\{b:x} " for b in part.encode())])
    return rnd.choice(["the", "a", "***", "y" * rnd.randint(1, 60), "\u200b", "-", "lorem ipsum", "\n", "..."])


def _stream(rnd: random.Random) -> tuple[str, list[str]]:
    key = rnd.choice(KEYS)
    parts = [_part(rnd, key) for _ in range(rnd.randint(1, 30))]
    text = rnd.choice([" ", "", "\u200b", " | ", "\n"]).join(parts) + rnd.choice(["", " end"])
    step = rnd.choice([1, 3, 8, 64, 0])  # 0: deltas of 1 to 20 characters
    if step:
        return key, [text[i:i + step] for i in range(0, len(text), step)]
    deltas, at = [], 0
    while at < len(text):
        size = rnd.randint(1, 20)
        deltas.append(text[at:at + size])
        at += size
    return key, deltas


def _shown_leaks(count: int, seed: int) -> list[tuple[int, str]]:
    rnd, leaks = random.Random(seed), []
    for n in range(count):
        key, deltas = _stream(rnd)
        stream = StreamRedactor(REDACTORS[key])
        shown = "".join(stream.feed(delta) for delta in deltas)
        low = shown.lower()
        if REDACTORS[key](shown) != shown or any(key[i:i + 8].lower() in low for i in range(len(key) - 7)):
            leaks.append((n, shown[-300:]))
    return leaks


def test_a_randomized_stream_shows_nothing_the_at_once_redactor_finds():
    assert _shown_leaks(200, seed=21) == []


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_750_more_randomized_streams_per_seed_show_nothing_the_at_once_redactor_finds(seed):
    assert _shown_leaks(750, seed=seed) == []  # 750 per seed: 1,700 streams with the 200 above (~20 s)


@pytest.mark.parametrize("alphabet", ["base64", "hex"])
def test_a_200_kb_word_streamed_3_characters_at_a_time_costs_about_its_length(alphabet):
    """A base64 image or a hash dump: the held-back end of a word is no longer scanned again on
    every delta (79-97 s before), only once per _MAX_HOLD characters that arrive."""
    rnd = random.Random(3)
    data = rnd.randbytes(150_000)
    word = (base64.b64encode(data).decode() if alphabet == "base64" else data.hex())[:200_000]
    stream = StreamRedactor(REDACTORS[KEYS[0]])
    started = time.process_time()
    shown = "".join(stream.feed(word[i:i + 3]) for i in range(0, len(word), 3))
    took = time.process_time() - started
    print(f"200 KB {alphabet} word in 3-character deltas: {took:.2f} s of CPU")
    assert took < 2
    assert word.startswith(shown) and len(word) - len(shown) <= 1024  # shown as it arrives, the end held


def test_a_megabyte_of_hostile_text_is_redacted_at_once_in_seconds():
    """1 MB of 3-character pieces of the key (a quarter of a million pieces in one cluster), of
    near-matches (7 characters of the key and a wrong one), a base64 word of random bytes and a hex
    word: up to 2.5 s of CPU (5.8-21.9 s on a loaded machine) each when pieces were found twice,
    mapped through a Python list of every character and sorted with Python keys; under 1 s each
    now (bench/bench_redact.py)."""
    key, rnd, size = KEYS[0], random.Random(1), 1_000_000
    pieces = " ".join([key[i:i + 3] for i in range(len(key) - 2)] * (size // 160 + 1))[:size]
    near = " ".join(key[:7] + rnd.choice("xyz") for _ in range(size // 9))[:size]
    b64word = base64.b64encode(rnd.randbytes(size * 3 // 4)).decode()[:size]
    hexword = ("ab" * size)[:size]
    redact = Redactor([key])
    started = time.process_time()
    out = {name: redact(text) for name, text in
           {"pieces": pieces, "near": near, "b64word": b64word, "hexword": hexword}.items()}
    took = time.process_time() - started
    print(f"4 MB of hostile text redacted at once in {took:.2f} s of CPU")
    assert took < 12
    short = {piece for piece in pieces.split() if sum(c.isalnum() for c in piece) < 3}  # no piece: out of scope
    assert set(out["pieces"].split()) <= {"[redacted]", *short} and "[redacted]" in out["pieces"]
    assert (out["near"], out["hexword"]) == (near, hexword)
    # A megabyte of random base64 holds, by chance, a few 3-letter pieces that join into 8 of the
    # key's characters (a handful of redactions); kilobytes of it hold none (see the next test).
    assert out["b64word"].count("[redacted]") < 10


def test_ordinary_text_code_and_random_base64_are_left_untouched():
    """What the forms caught must not cost: prose, this project's README and code, 100 KB of
    lorem ipsum and base64 of random bytes (an image, a hash) hold no key, so none is redacted."""
    from pathlib import Path

    root = Path(__file__).parents[1]
    rnd = random.Random(5)
    words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut".split()
    lorem = " ".join(rnd.choice(words) for _ in range(20_000))[:100_000]
    texts = {"lorem": lorem, "README": (root / "README.md").read_text(encoding="utf-8"),
             **{f"base64-{n}": base64.b64encode(rnd.randbytes(7_500)).decode() for n in range(4)},
             **{path.name: path.read_text(encoding="utf-8") for path in (root / "llmlab" / "engine").glob("*.py")}}
    for key, redact in REDACTORS.items():
        for name, text in texts.items():
            assert redact(text) == text, (key, name)
