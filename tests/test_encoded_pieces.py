"""The key echoed as the encoding of each short piece is redacted (attack-4 F1).

``Redactor._decoded_pieces`` decodes every short token (base64, base64url, base32, hex,
quoted-printable, base85, a group of decimal byte values) once, reads the decoded texts one after
another and joins their pieces as plain pieces are joined: the base64 of each 4-8-character piece
of the key is the key to a reader who decodes them. End to end through a real endpoint
(tests/fakeserver.py), plain and streamed 3 characters a chunk."""
from __future__ import annotations

import base64

import pytest
from fakeserver import ModelSpec

from llmlab import Lab
from llmlab.base._redact import Redactor

KEY = "sk-proj-Zq7XvB3mK9tR2wLp8NcY4hJd"

ENCODINGS = {
    "base64": lambda p: base64.b64encode(p.encode()).decode(),
    "base64 unpadded": lambda p: base64.b64encode(p.encode()).decode().rstrip("="),
    "base64url": lambda p: base64.urlsafe_b64encode(p.encode()).decode(),
    "base32": lambda p: base64.b32encode(p.encode()).decode(),
    "base85": lambda p: base64.b85encode(p.encode()).decode(),
    "hex": lambda p: p.encode().hex(),
    "quoted-printable": lambda p: "".join(f"={ord(c):02X}" for c in p),
    "decimal bytes": lambda p: " ".join(str(ord(c)) for c in p),
}


def _pieces(size: int) -> list[str]:
    return [KEY[i:i + size] for i in range(0, len(KEY), size)]


@pytest.mark.parametrize("size", [4, 7, 8, 11])
@pytest.mark.parametrize("name", list(ENCODINGS))
@pytest.mark.parametrize("sep", [" ", "\n", " | "], ids=["space", "newline", "pipe"])
def test_each_piece_encoded_alike_is_redacted(name, size, sep):
    encode = ENCODINGS[name]
    text = "Here are the parts: " + sep.join(encode(p) for p in _pieces(size)) + " done."
    out = Redactor([KEY])(text)
    assert "[redacted]" in out
    left = [tok for tok in out.replace("|", " ").split() if tok not in ("[redacted]", "Here", "are", "the",
                                                                        "parts:", "done.")]
    assert len(left) <= 1, (out, left)  # at most one piece's token may stand (an end too short to join)
    assert out.startswith("Here are the parts:") and out.endswith("done.")


@pytest.mark.parametrize("text", [
    "The build ids were 4f2a 9c1e b7d0 and the release tags v1.2.3 v1.2.4 — see RFC 4648 for base64.",
    "dGVzdA== aGVsbG8= d29ybGQ= Zm9vYmFy YmF6cXV4",  # base64 of test, hello, world, foobar, bazqux
    "115 101 99 114 101 116 | 112 97 115 115",  # decimal bytes of 'secret', 'pass'
    "MZXW6YTBOI====== ONSWG4TFOQ======",  # base32 of foobar, secret
])
def test_encoded_text_that_is_not_the_key_stays(text):
    assert Redactor([KEY])(text) == text


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_end_to_end_the_answer_is_stored_redacted(serve, tmp_path, monkeypatch, stream):
    monkeypatch.setenv("LLMLAB_API_KEY", KEY)
    answer = "Here are the parts: " + " ".join(ENCODINGS["base64"](p) for p in _pieces(7))
    spec = ModelSpec(chunks=[answer[i:i + 3] for i in range(0, len(answer), 3)]) if stream else ModelSpec(text=answer)
    srv = serve({"m": spec})
    with Lab(base_url=srv.base_url, db=tmp_path / "r.sqlite", retries=0) as lab:
        row = lab.compare("hi", models=["m"], stream=stream).df.iloc[0]
    assert row["status"] == "ok" and "[redacted]" in row["response_text"]
    for token in (ENCODINGS["base64"](p) for p in _pieces(7)[:4]):
        assert token not in row["response_text"]
    assert b"c2stcHJvag" not in (tmp_path / "r.sqlite").read_bytes()
