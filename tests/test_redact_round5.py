"""The key in pieces, however the pieces are separated or spread (re-attack 5 G1, G2, G10).

G1: an encoded piece is a maximal run of its encoding's own alphabet, so anything else between
two pieces (backticks, ``**``, '.', ':', '/', ``<br>``, ``part1=``, a sentence's full stop, a
markdown link) separates them as a space does; per-piece double encodings decode as whole keys
do. G2: the whole key in octal byte values. G10: runs of 4+ characters of the key standing alone
join over the whole text, whatever stands between them. Each a product of forms, at once, streamed
and end to end through a real endpoint (tests/fakeserver.py)."""
from __future__ import annotations

import base64
import urllib.parse

import pytest
from fakeserver import ModelSpec

from llmlab import InputError, Lab
from llmlab.base._names import check_model_names
from llmlab.base._redact import Redactor, StreamRedactor, remember

KEY = "sk-proj-Zq7XvB3mK9tR2wLp8NcY4hJd"
REDACT = Redactor([KEY])


def _b64(p: str) -> str:
    return base64.b64encode(p.encode()).decode()


ENCODINGS = {
    "base64": _b64,
    "base64 unpadded": lambda p: _b64(p).rstrip("="),
    "base64url": lambda p: base64.urlsafe_b64encode(p.encode()).decode(),
    "hex": lambda p: p.encode().hex(),
    "hex 0x": lambda p: "0x" + p.encode().hex(),
    "hex upper": lambda p: p.encode().hex().upper(),
    "base32": lambda p: base64.b32encode(p.encode()).decode(),
    "base32 lower": lambda p: base64.b32encode(p.encode()).decode().lower(),
    "binary": lambda p: "".join(f"{b:08b}" for b in p.encode()),
    "%-quoted base64": lambda p: urllib.parse.quote(_b64(p), safe=""),
    "base64 of base64": lambda p: _b64(_b64(p)),
    "hex of base64": lambda p: _b64(p).encode().hex(),
}
LAYOUTS = {
    "backticks": lambda ts: "Parts:\n" + "\n".join(f"- `{t}`" for t in ts),
    "bold": lambda ts: " ".join(f"**{t}**" for t in ts),
    "dots": ".".join,
    "colons": ":".join,
    "slashes": "/".join,
    "br": "<br>".join,
    "name=": lambda ts: " ".join(f"part{i}={t}" for i, t in enumerate(ts, 1)),
    "sentences": lambda ts: " ".join(f"Piece {i} is {t}." for i, t in enumerate(ts, 1)),
    "exclaimed": lambda ts: " ".join(f"Piece {i} is {t}!" for i, t in enumerate(ts, 1)),
    "md links": lambda ts: " ".join(f"[{i}](https://x.example/{t})" for i, t in enumerate(ts, 1)),
    "angles": lambda ts: " ".join(f"<{t}>" for t in ts),
    "label after": lambda ts: " ".join(f"{t}: piece {i}" for i, t in enumerate(ts, 1)),
}


def _pieces(size: int) -> list[str]:
    return [KEY[i:i + size] for i in range(0, len(KEY), size)]


def _left(out: str, tokens: list[str]) -> list[str]:
    return [t for t in tokens if t in out]


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_encoded_pieces_with_any_separator_are_redacted(encoding):
    encode, leaks = ENCODINGS[encoding], []
    for size in (4, 7, 8):
        tokens = [encode(p) for p in _pieces(size)]
        for name, layout in LAYOUTS.items():
            text = layout(tokens)
            if len(_left(REDACT(text), tokens)) > 1:  # one end may be too short to join
                leaks.append((size, name))
    assert leaks == []


@pytest.mark.parametrize("name", ["backticks", "sentences", "slashes"])
def test_encoded_pieces_are_redacted_streamed(name):
    tokens = [_b64(p) for p in _pieces(7)]
    text = LAYOUTS[name](tokens)
    for step in (1, 3, 8):
        stream = StreamRedactor(REDACT)
        shown = "".join(stream.feed(text[i:i + step]) for i in range(0, len(text), step)) + stream.feed(" ")
        assert len(_left(shown, tokens)) <= 1, (step, shown)


@pytest.mark.parametrize("joiner", [" ", ", ", "\n", " | "])
@pytest.mark.parametrize("prefix", ["", "0o"])
def test_the_whole_key_in_octal_bytes_is_redacted(joiner, prefix):
    text = "codes: " + joiner.join(f"{prefix}{b:o}" for b in KEY.encode()) + " end"
    out = REDACT(text)
    assert "[redacted]" in out and f"{KEY.encode()[9]:o} {KEY.encode()[10]:o}" not in out.replace(joiner, " ")


FILLER = "The weather was fine and nothing else happened in the meantime, as far as anyone knows. "
SPREAD = {
    "labels": lambda ps, f: f.join(f"Part {i}: {p}" for i, p in enumerate(ps, 1)),
    "backticks": lambda ps, f: f.join(f"part {i}: `{p}`" for i, p in enumerate(ps, 1)),
    "lines": lambda ps, f: "".join(f"{i}. {p}\n{f}\n" for i, p in enumerate(ps, 1)),
    "bold": lambda ps, f: f.join(f"**{p}**" for p in ps),
}


@pytest.mark.parametrize("layout", list(SPREAD))
@pytest.mark.parametrize("size", [4, 7])
@pytest.mark.parametrize("fill", [1, 3, 12])
def test_plain_pieces_far_apart_are_redacted(layout, size, fill):
    pieces = _pieces(size)
    text = SPREAD[layout](pieces, " " + FILLER * fill)
    out = REDACT(text)
    assert len(_left(out, [p for p in pieces if len(p.strip("-")) >= 4])) <= 1, out
    assert FILLER.strip() in out  # the prose between them stays
    # streamed: the first pieces are shown before the rest arrive; each later one joins them
    stream = StreamRedactor(REDACT)
    shown = "".join(stream.feed(text[i:i + 5]) for i in range(0, len(text), 5)) + stream.feed(" ")
    assert REDACT(shown) == shown and len(_left(shown, pieces)) <= len(pieces) // 2, shown


@pytest.mark.parametrize("text", [
    "Project notes: the sk-proj prefix marks project keys; build 4f2a9c1e, tag v1.2.3, see RFC 4648. " * 20,
    "Piece 1 is dGVzdA==. Piece 2 is aGVsbG8=. Piece 3 is d29ybGQ=. Hashes: 9f86d081884c7d65, 2c26b46b68ffc68f.",
    "Use `x = f(y)` and **bold** text, a [link](https://example.org/docs/v1/api.html) and <br> breaks. " * 30,
    "Octal 755 644 700 and 0o777; decimal 115 and 107 apart. The year 2024. Codes 163 153.",
])
def test_ordinary_text_stays(text):
    assert REDACT(text) == text


@pytest.mark.parametrize("joiner", [".", "/", ":", "`", "**"])
def test_a_model_name_of_encoded_pieces_is_refused(joiner):
    remember([KEY])
    name = joiner.join(_b64(p) for p in _pieces(7))
    with pytest.raises(InputError, match="looks like your API key"):
        check_model_names([name])


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_end_to_end_spread_and_encoded_pieces_are_stored_redacted(serve, tmp_path, monkeypatch, stream):
    monkeypatch.setenv("LLMLAB_API_KEY", KEY)
    answers = {"a": LAYOUTS["backticks"]([_b64(p) for p in _pieces(7)]),
               "b": SPREAD["labels"](_pieces(7), " " + FILLER)}
    specs = {m: ModelSpec(chunks=[t[i:i + 3] for i in range(0, len(t), 3)]) if stream else ModelSpec(text=t)
             for m, t in answers.items()}
    srv = serve(specs)
    with Lab(base_url=srv.base_url, db=tmp_path / "r.sqlite", retries=0) as lab:
        df = lab.compare("hi", models=list(answers), stream=stream).df
    stored = (tmp_path / "r.sqlite").read_bytes()
    for text in df.response_text:
        assert "[redacted]" in text
    for piece in _pieces(7)[1:4]:
        assert _b64(piece).encode() not in stored and piece.encode() not in stored


TOKENS = {"vendor key": "sk-proj-abcdefghijklmnopqrstuvwx", "github": "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
          "aws": "AKIAIOSFODNN7EXAMPLE", "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcdefghijklmnopqrs",
          "random 32": "0OkKxVkI2Wi7qCqc2oMiIwkfuVB9UjHu", "hex 40": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
          "base64 of a key": "c2stcHJvai1hYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3g="}
QUERY_FORMS = {"?x=": "?x={}", "?ak=": "?ak={}", "?q=Bearer+": "?q=Bearer+{}", "?x=Bearer%20": "?x=Bearer%20{}",
               "second pair": "?page=2&v={}", "bare name": "?{}", "name=1": "?{}=1"}


@pytest.mark.parametrize("form", list(QUERY_FORMS))
@pytest.mark.parametrize("token", list(TOKENS))
def test_a_token_in_a_url_query_is_masked_under_any_name(form, token):
    from llmlab.base._redact import public_url, url_secrets

    secret = TOKENS[token]
    url = "http://h.example/v1" + QUERY_FORMS[form].format(urllib.parse.quote(secret, safe="=") if "=" in form
                                                           else secret)
    assert secret not in urllib.parse.unquote(public_url(url)) and "[redacted]" in urllib.parse.unquote(public_url(url))
    assert any(secret.rstrip("=") in part for part in url_secrets(url))


@pytest.mark.parametrize("name", ["next", "redirect", "x", "callback"])
@pytest.mark.parametrize("inner", ["http://u:PW1234567@evil.example/x", "https://tok123456@evil.example/",
                                   "http%3A%2F%2Fu%3APW1234567%40evil.example%2Fx"])
def test_a_nested_url_with_credentials_is_masked(name, inner):
    from llmlab.base._redact import public_url

    shown = urllib.parse.unquote(public_url(f"http://h.example/v1?{name}={inner}"))
    assert "PW1234567" not in shown and "tok123456" not in shown and "[redacted]" in shown


@pytest.mark.parametrize("url", ["http://h.example/v1?page=2", "http://h.example/v1?model=gpt-4o-mini&q=hello+world",
                                 "http://h.example/v1?api-version=2024-02-01", "http://h.example/v1?next=http://h/x",
                                 "http://h.example/v1?x=short1token"])
def test_ordinary_url_queries_stay(url):
    from llmlab.base._redact import public_url

    assert public_url(url) == url
