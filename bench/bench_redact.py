"""The key redactor on hostile text (issue 21). Prints figures measured in one run; not a test.

At once (``Redactor``): 1 MB of six adversarial shapes — 3-character pieces of the key (one
cluster of a quarter of a million pieces, all redacted), a hex word, a base64 word of random bytes,
near-matches (7 characters of the key and one wrong one, none redacted), a C array of random
bytes (one run of numbers) and random base64 with every character doubled. Target: < 1 s of CPU
each; ``Redactor.row`` on two 1 MB fields of pieces. While streaming (``StreamRedactor``): a
200 KB base64 word in 3-character deltas (79-97 s before its held-back end stopped being scanned
again on every delta; target < 2 s) and prose in 8-character deltas, in microseconds per delta.

    python bench/bench_redact.py [--size 1000000]
"""
from __future__ import annotations

import argparse
import base64
import random
import time

from llmlab.base._redact import Redactor, StreamRedactor

KEY = "sk-proj-Zq7XvB3mK9tR2wLp8NcY4hJd"


def shapes(size: int) -> dict[str, str]:
    rnd = random.Random(1)
    pieces = [KEY[i:i + 3] for i in range(len(KEY) - 2)]
    return {"pieces": " ".join(pieces * (size // (4 * len(pieces)) + 1))[:size],
            "hexword": ("ab" * size)[:size],
            "b64word": base64.b64encode(rnd.randbytes(size * 3 // 4)).decode()[:size],
            "near": " ".join(KEY[:7] + rnd.choice("xyz") for _ in range(size // 9))[:size],
            # issue 21 round 2: runs of numbers decoded every way, text read with repeats collapsed
            "numbers": ",".join(f"0x{b:02x}" for b in rnd.randbytes(size // 5))[:size],
            "doubled": "".join(c * 2 for c in base64.b64encode(rnd.randbytes(size * 3 // 8)).decode())[:size]}


def cpu(work, *args: object) -> float:
    started = time.process_time()
    work(*args)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    size = parser.parse_args().size
    redact = Redactor([KEY])
    for name, text in shapes(size).items():
        print(f"at once  {name:8s} {size:>9,} chars {cpu(redact, text):6.2f} s CPU")
    pieces = shapes(size)["pieces"]
    print(f"row      pieces   {size:>9,} chars {cpu(redact.row, [pieces, pieces[::-1]]):6.2f} s CPU (two fields)")
    word = base64.b64encode(random.Random(2).randbytes(150_000)).decode()
    stream = StreamRedactor(redact)
    took = cpu(lambda: [stream.feed(word[i:i + 3]) for i in range(0, len(word), 3)])
    print(f"stream   b64word  {len(word):>9,} chars {took:6.2f} s CPU (3-character deltas)")
    prose = ("The quick brown fox jumps over the lazy dog; models answer in plain prose, with numbers 42 "
             "and code like `x = f(y)` now and then. ") * 20
    stream = StreamRedactor(redact)
    took = cpu(lambda: [stream.feed(prose[i:i + 8]) for i in range(0, len(prose), 8)])
    print(f"stream   prose    {len(prose):>9,} chars {took / (len(prose) / 8) * 1e6:6.1f} µs CPU per 8-character delta")


if __name__ == "__main__":
    main()
