"""Issue 21: nothing runs, leaks or is lost — however hostile the name, the URL, the stream or the
repo. Each class of attack is tried in many generated forms, through the public API, the CLI and
the magics, against real servers on 127.0.0.1 through the real SDK."""
from __future__ import annotations

import ast
import itertools
import json

import numpy as np
import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import Lab

# --------------------------------------------------------------------------- helpers


@pytest.fixture
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    from llmlab.magics import unload_ipython_extension

    sh = InteractiveShell.instance()
    unload_ipython_extension(sh)
    sh.config.pop("LLMLab", None)
    yield sh
    unload_ipython_extension(sh)
    sh.config.pop("LLMLab", None)


@pytest.fixture
def usual_umask():
    """The common 022 umask, under which plain mkdir/open give 0755/0644."""
    import os

    old = os.umask(0o022)
    yield
    os.umask(old)


def _finish() -> list[dict]:
    return [{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]


def _content(text: str) -> dict:
    return {"choices": [{"index": 0, "delta": {"content": text}}]}


def _sse(payload: dict) -> bytes:
    return json.dumps(payload).encode()


# --------------------------------------------------------------------------- 6. streams

EMOJI = ["\U0001F600", "\U0001F4A9", "\U0001F9EA", "\U00010348", "\U0001D11E"]


def _split_pairs() -> list[tuple[list[str], str]]:
    """Answers whose UTF-16 surrogate pairs are cut between chunks at every place a cut can go."""
    cases = []
    for emoji in EMOJI:
        pair = emoji.encode("utf-16-be")
        high = chr(int.from_bytes(pair[:2], "big"))
        low = chr(int.from_bytes(pair[2:], "big"))
        for before, after in itertools.product(["", "a", "héllo "], ["", "b", " wörld"]):
            cases.append(([before + high, low + after], before + emoji + after))
            cases.append(([before, high, low, after], before + emoji + after))
    return cases


SPLIT_PAIRS = _split_pairs()


@pytest.mark.parametrize("chunks, joined", SPLIT_PAIRS[::3], ids=lambda v: repr(v)[:30])
def test_a_surrogate_pair_split_across_chunks_is_joined_and_stored(tmp_path, chunks, joined):
    with FakeServer({"m": ModelSpec(chunks=[c for c in chunks if c])}) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite", retries=0) as lab:
        shown: list[str] = []
        res = lab.compare("Hi", models=["m"], on_event=lambda e: shown.append(e.text) if e.kind == "delta" else None)
        row = res.df.iloc[0]
        assert (row["status"], row["response_text"]) == ("ok", joined), row["error_message"]
        assert not isinstance(row["error_message"], str)  # nothing was replaced
        assert "".join(shown) == joined  # the live view joins the pair too
        again = lab.compare("Hi", models=["m"])  # cached: resume never pays again
        assert again.df["cached"].iloc[0] and len(srv.requests) == 1


# invalid UTF-8 of every kind: a stray continuation byte, cut 2/3/4-byte sequences, overlong forms,
# encoded surrogates, bytes UTF-8 never uses
BAD_BYTES = [b"\x80", b"\xbf", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xc0\xaf", b"\xe0\x80\xaf",
             b"\xed\xa0\x80", b"\xf5\x80\x80\x80", b"\xff", b"\xfe\xff", b"\xf8\x88\x80\x80\x80"]


def _bad_utf8_cases() -> list[tuple[bytes, str]]:
    cases = []
    for bad in BAD_BYTES:
        for before, after in [("", ""), ("ok ", ""), ("", " ok"), ("é", "😀")]:
            raw = before.encode() + bad + after.encode()
            cases.append((raw, raw.decode("utf-8", "replace")))
    return cases


BAD_UTF8 = _bad_utf8_cases()


def _event_with(raw: bytes) -> bytes:
    """An SSE content event whose JSON string holds ``raw`` bytes as they are."""
    head, tail = _sse(_content("\x00")).split(b"\\u0000")
    return head + raw + tail


@pytest.mark.parametrize("raw, expected", BAD_UTF8, ids=lambda v: repr(v)[:24])
@pytest.mark.parametrize("stream", [True, False])
def test_invalid_utf8_from_the_endpoint_keeps_the_answer(tmp_path, raw, expected, stream):
    events = [_event_with(b"start "), _event_with(raw), _sse(_finish()[0])]
    plain = (_sse({"choices": [{"message": {"content": "\x00"}, "finish_reason": "stop"}]})
             .replace(b"\\u0000", b"start " + raw))
    spec = ModelSpec(byte_events=events if stream else [plain])
    with FakeServer({"m": spec}) as srv, Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite", retries=0) as lab:
        row = lab.compare("Hi", models=["m"], stream=stream).df.iloc[0]
        assert row["status"] == "ok", (row["error_type"], row["error_message"])
        assert row["response_text"] == "start " + expected
        n = expected.count("\ufffd")
        assert f"sent {n} invalid UTF-8 byte sequence(s)" in row["error_message"]
        assert lab.runs()["response_text"].iloc[0] == row["response_text"]  # stored, not only returned


def test_a_character_cut_between_two_sends_is_joined(tmp_path):
    text = "é😀中"
    raw = text.encode()
    head, tail = _sse(_content("\x00")).split(b"\\u0000")
    for cut in range(1, len(raw)):
        # one event in two sends (two HTTP chunks), the cut inside a character
        spec = ModelSpec(byte_events=[[head + raw[:cut], raw[cut:] + tail], _sse(_finish()[0])])
        with FakeServer({"m": spec}) as srv, Lab(base_url=srv.base_url, db=":memory:", retries=0) as lab:
            row = lab.compare("Hi", models=["m"]).df.iloc[0]
        assert (row["status"], row["response_text"]) == ("ok", text), row["error_message"]
        assert not isinstance(row["error_message"], str)


# --------------------------------------------------------------------------- weak: malformed answers

MALFORMED_STREAMS = {
    "choices-null": [{"choices": None}, _content("x"), *_finish()],
    "choices-dict": [{"choices": {"x": 1}}, *_finish()],
    "choices-string": [{"choices": "none"}, *_finish()],
    "choice-string": [{"choices": ["s"]}, *_finish()],
    "choice-null": [{"choices": [None]}, *_finish()],
    "delta-list": [{"choices": [{"delta": ["a", "b"]}]}, *_finish()],
    "delta-string": [{"choices": [{"delta": "text"}]}, *_finish()],
    "delta-number": [{"choices": [{"delta": 3}]}, *_finish()],
    "delta-list-later": [_content("partial "), {"choices": [{"delta": [{"content": "x"}]}]}, *_finish()],
}


def _event(payload: dict, nl: bytes = b"\n") -> bytes:
    return b"data: " + json.dumps(payload).encode() + nl + nl


_ANSWER, _FIN = _event(_content("whole answer")), _event(_finish()[0])
_USAGE = _event({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 41, "total_tokens": 44}})
# Events SSE itself says to ignore (no data: never dispatched; comments): anywhere in the stream.
SSE_IGNORED = {
    "id-only": b"id: 7\n\n", "retry-only": b"retry: 1000\n\n", "id-and-retry": b"id: 7\nretry: 9999999999999\n\n",
    "event-only": b"event: ping\n\n", "empty-data": b"data:\n\n", "empty-data-space": b"data: \n\n",
    "comment": b": keep-alive\n\n", "unknown-field": b"foo: bar\n\n", "crlf-id": b"id: 9\r\n\r\n",
}


@pytest.mark.parametrize("where", ["before", "between", "after-finish", "after-usage"])
@pytest.mark.parametrize("name", sorted(SSE_IGNORED))
def test_an_event_sse_ignores_is_ignored_anywhere(tmp_path, name, where):
    parts = [_ANSWER, _FIN, _USAGE]
    parts.insert({"before": 0, "between": 1, "after-finish": 2, "after-usage": 3}[where], SSE_IGNORED[name])
    with FakeServer({"m": ModelSpec(sse_bytes=parts)}) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite", retries=0) as lab:
        row = lab.compare("Hi", models=["m"]).df.iloc[0]
    assert [row["status"], row["response_text"], row["completion_tokens"]] == ["ok", "whole answer", 41], \
        row["error_message"]
    assert not isinstance(row["error_message"], str), row["error_message"]  # nothing to say: SSE allows it


# Events that are not JSON, after the answer's finish_reason: the answer is whole and kept (a note).
JUNK_AFTER_FINISH = {
    "done-spaced": b"data:  [DONE] \n\n", "done-tab": b"data: \t[DONE]\n\n", "done-lower": b"data: [done]\n\n",
    "done-quoted": b'data: "[DONE]"x\n\n', "junk": b"data: }{\n\n", "html": b"data: <html>502</html>\n\n",
    "truncated-json": b'data: {"choices": [\n\n', "deep-json": b"data: " + b"[" * 100_000 + b"\n\n",
    "many-junk": b"data: x\n\n" * 500,
}


@pytest.mark.parametrize("usage_after", [True, False])
@pytest.mark.parametrize("name", sorted(JUNK_AFTER_FINISH))
def test_junk_after_the_finish_keeps_the_answer_with_a_note(tmp_path, name, usage_after):
    parts = [_ANSWER, _FIN, JUNK_AFTER_FINISH[name], *([_USAGE] if usage_after else [])]
    with FakeServer({"m": ModelSpec(sse_bytes=parts)}) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite", retries=0) as lab:
        row = lab.compare("Hi", models=["m"]).df.iloc[0]
        again = lab.compare("Hi", models=["m"]).df.iloc[0]
        paid = len(srv.requests)
    assert [row["status"], row["response_text"]] == ["ok", "whole answer"], row["error_message"]
    assert row["error_message"].count("not JSON after the answer finished") == 1
    assert row["completion_tokens"] == (41 if usage_after else row["completion_tokens"])
    assert again["response_text"] == "whole answer" and paid == 1  # cached: a resume pays nothing again


@pytest.mark.parametrize("name", sorted(set(JUNK_AFTER_FINISH) - {"deep-json"}))  # that one: RecursionError
def test_junk_before_the_finish_is_still_an_error_row(tmp_path, name):
    parts = [_ANSWER, JUNK_AFTER_FINISH[name], _FIN]
    with FakeServer({"m": ModelSpec(sse_bytes=parts)}) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite", retries=0) as lab:
        row = lab.compare("Hi", models=["m"], cache=False).df.iloc[0]
    assert [row["status"], row["error_type"]] == ["error", "MalformedResponse"]


NOT_TEXT = {"int": 5, "float": 1.5, "bool": True, "dict": {"a": 1}, "nested-list": [[["x"]]],
            "list-of-str": ["x"], "image-part": [{"type": "image_url", "image_url": {"url": "x"}}],
            "part-text-int": [{"type": "text", "text": 5}]}


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("name", sorted(NOT_TEXT))
def test_content_that_is_not_text_is_a_malformed_answer(tmp_path, name, stream):
    value = NOT_TEXT[name]
    events = ([_content("ok "), {"choices": [{"index": 0, "delta": {"content": value}}]}, *_finish()] if stream
              else [{"choices": [{"index": 0, "message": {"role": "assistant", "content": value},
                                  "finish_reason": "stop"}]}])
    with FakeServer({"odd": ModelSpec(raw_events=events), "good": ModelSpec(text="fine")}) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite", retries=0) as lab:
        df = lab.compare("Hi", models=["odd", "good"], stream=stream, cache=False).df.set_index("requested_model")
    assert df.loc["odd", ["status", "error_type"]].tolist() == ["error", "MalformedResponse"]
    assert "content that is not text" in df.loc["odd", "error_message"]
    assert df.loc["good", "status"] == "ok"


@pytest.mark.parametrize("stream", [True, False])
def test_content_as_text_parts_is_joined(tmp_path, stream):
    parts = [{"type": "text", "text": "whole "}, {"type": "text", "text": "answer"}]
    events = ([{"choices": [{"index": 0, "delta": {"content": parts}}]}, *_finish()] if stream
              else [{"choices": [{"index": 0, "message": {"role": "assistant", "content": parts},
                                  "finish_reason": "stop"}]}])
    with FakeServer({"m": ModelSpec(raw_events=events)}) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite", retries=0) as lab:
        row = lab.compare("Hi", models=["m"], stream=stream, cache=False).df.iloc[0]
    assert [row["status"], row["response_text"]] == ["ok", "whole answer"]


OTHER_CHOICES = {
    "before": [{"choices": [{"index": 1, "delta": {"content": "B"}}]}, _content("A"), *_finish()],
    "same-chunk": [{"choices": [{"index": 1, "delta": {"content": "B"}}, {"index": 0, "delta": {"content": "A"}}]},
                   *_finish()],
    "other-finishes-first": [_content("A"), {"choices": [{"index": 1, "delta": {}, "finish_reason": "length"}]},
                             {"choices": [{"index": 2, "delta": {"content": "C"}}]}, *_finish()],
    "tool-call-in-other": [_content("A"), {"choices": [{"index": 1, "delta": {"tool_calls": [
        {"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}]}}]}, *_finish()],
}


@pytest.mark.parametrize("name", sorted(OTHER_CHOICES))
def test_only_choice_0_forms_a_streamed_answer(tmp_path, name):
    with FakeServer({"m": ModelSpec(raw_events=OTHER_CHOICES[name])}) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite", retries=0) as lab:
        row = lab.compare("Hi", models=["m"], cache=False).df.iloc[0]
    assert [row["status"], row["response_text"], row["finish_reason"]] == ["ok", "A", "stop"], row["error_message"]
    assert not isinstance(row["tool_calls"], str)  # choice 1's call is not choice 0's


@pytest.mark.parametrize("name", sorted(MALFORMED_STREAMS))
def test_a_malformed_stream_is_an_error_row_never_an_empty_ok(tmp_path, name):
    spec = ModelSpec(raw_events=MALFORMED_STREAMS[name])
    with FakeServer({"odd": spec, "good": ModelSpec(text="fine")}) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite", retries=0) as lab:
        df = lab.compare("Hi", models=["odd", "good"], cache=False).df.set_index("requested_model")
    assert df.loc["odd", ["status", "error_type"]].tolist() == ["error", "MalformedResponse"]
    assert df.loc["good", "status"] == "ok"


@pytest.mark.parametrize("body", [
    {"choices": None}, {"choices": []}, {"choices": {"0": {}}}, {"choices": [None]}, {"choices": [[]]},
    {"choices": [{"message": None, "finish_reason": "stop"}]},
    {"choices": [{"message": ["a"], "finish_reason": "stop"}]},
    {"choices": [{"message": "text", "finish_reason": "stop"}]},
])
def test_a_malformed_answer_is_an_error_row_never_an_empty_ok(tmp_path, body):
    with FakeServer({"odd": ModelSpec(raw_events=[body])}) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite", retries=0) as lab:
        row = lab.compare("Hi", models=["odd"], stream=False, cache=False).df.iloc[0]
    assert [row["status"], row["error_type"]] == ["error", "MalformedResponse"]


REFUSALS = ["I can't help with that.", "Нет.", "\u202eevil\u202c refusal", "multi\nline"]


@pytest.mark.parametrize("refusal", REFUSALS)
@pytest.mark.parametrize("stream", [True, False])
def test_a_refusal_has_its_own_column_and_is_shown(tmp_path, refusal, stream):
    if stream:
        pieces = [refusal[:3], refusal[3:]]
        spec = ModelSpec(raw_events=[{"choices": [{"delta": {"content": None, "refusal": p}}]} for p in pieces]
                         + _finish())
    else:
        spec = ModelSpec(raw_events=[{"choices": [{"message": {"content": None, "refusal": refusal},
                                                   "finish_reason": "stop"}]}])
    with FakeServer({"m": spec}) as srv, Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite", retries=0) as lab:
        res = lab.compare("Hi", models=["m"], stream=stream)
        row = res.df.iloc[0]
        assert (row["status"], row["refusal"], row["response_text"]) == ("ok", refusal, "")
        assert lab.runs()["refusal"].iloc[0] == refusal
        html = res._repr_html_()
    import html as markup

    from llmlab.base._display import clean_text

    assert all(line in markup.unescape(html) for line in clean_text(refusal).splitlines())
    assert "\u202e" not in html


# --------------------------------------------------------------------------- weak: key echoes

KEY = "sk-proj-Qm7Zt2LxV9bR4cWn8Hs3Jd6Ky1Pf5Ga0Ue"


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


_SMALL_CAPITALS = dict(zip("abcdefghijklmnopqrstuvwxyz", "ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘꞯʀꜱᴛᴜᴠᴡxʏᴢ", strict=True))


def key_forms(key: str = KEY) -> dict[str, str]:
    """Every form of ``key`` an endpoint could echo that a reader could join back into it."""
    import base64
    import codecs
    import gzip
    import urllib.parse
    import zlib

    half = len(key) // 2
    forms = {"whole": key, "upper": key.upper(), "swapcase": key.swapcase(), "reversed": key[::-1],
             "rot13": codecs.encode(key, "rot13"),
             "halves-in-words": f"first half: {key[:half]} and the second half: {key[half:]}",
             "halves-swapped": f"the end is {key[half:]} and the start is {key[:half]}",
             "fullwidth": _fullwidth(key), "fullwidth-zero-width": "\u200b".join(_fullwidth(key)),
             "percent": "".join(f"%{ord(c):02X}" for c in key),
             "percent-half": key[:half] + "".join(f"%{ord(c):02x}" for c in key[half:]),
             "u-escapes": "".join(f"\\u{ord(c):04x}" for c in key),
             "u-brace-escapes": "".join(f"\\u{{{ord(c):x}}}" for c in key),
             "x-escapes": "".join(f"\\x{ord(c):02x}" for c in key),
             "html-decimal": "".join(f"&#{ord(c)};" for c in key),
             "html-hex": "".join(f"&#x{ord(c):x};" for c in key),
             "base64": base64.b64encode(key.encode()).decode(),
             "base64-unpadded": base64.b64encode(key.encode()).decode().rstrip("="),
             "base64-urlsafe": base64.urlsafe_b64encode(key.encode()).decode(),
             "base64-of-sentence": base64.b64encode(f"the key is {key}".encode()).decode(),
             "base64-of-hex": base64.b64encode(key.encode().hex().encode()).decode(),
             "base32": base64.b32encode(key.encode()).decode(),
             "hex": key.encode().hex(), "HEX": key.encode().hex().upper(),
             "hex-colons": ":".join(f"{b:02x}" for b in key.encode()),
             "hex-spaces": " ".join(f"{b:02x}" for b in key.encode()),
             "masked-ends": f"{key[:3]}****{key[-4:]}", "masked-start": f"{key[:6]}********",
             "masked-dots": f"{key[:5]}...{key[-4:]}", "masked-bullets": f"{key[:4]}•••••{key[-3:]}",
             "in-json": json.dumps({"api_key": key}), "in-url": f"https://x.example/?k={urllib.parse.quote(key)}",
             "letters-listed": ", ".join(key), "letters-quoted": " + ".join(f"'{c}'" for c in key),
             # found by the self-review: lookalike letters, more escapes and encodings
             "cyrillic-lookalikes": key.translate(str.maketrans("aceopxyKMHT", "асеорхуКМНТ")),
             "greek-lookalikes": key.translate(str.maketrans("opvkt", "ορνκτ")),
             "octal-escapes": "".join(f"\\{b:03o}" for b in key.encode()),
             "0x-bytes": " ".join(f"0x{b:02x}" for b in key.encode()),
             "0x-bytes-commas": ", ".join(f"0x{b:02X}" for b in key.encode()),
             "percent-twice": urllib.parse.quote(urllib.parse.quote(key, safe=""), safe=""),
             "base85": base64.b85encode(key.encode()).decode(),
             "ascii85": base64.a85encode(key.encode()).decode(),
             "base64-wrapped": "\n".join(base64.b64encode(key.encode()).decode()[i:i + 12] for i in range(0, 60, 12)),
             "math-bold": "".join(chr(0x1D41A + ord(c) - 97) if c.islower() else c for c in key),
             "decimal-bytes": " ".join(str(b) for b in key.encode()), "decimal-list": json.dumps(list(key.encode())),
             "decimal-commas": ",".join(str(b) for b in key.encode()),
             "quoted-printable": "".join(f"={b:02X}" for b in key.encode()),
             "circled": "".join(chr(0x24D0 + ord(c) - 97) if c.islower() else c for c in key),
             # issue 21: ROT47, compressed then encoded, three encodings deep
             "rot47": "".join(chr(33 + (ord(c) - 33 + 47) % 94) for c in key),
             "zlib-base64": base64.b64encode(zlib.compress(key.encode())).decode(),
             "gzip-base64": base64.b64encode(gzip.compress(key.encode(), mtime=0)).decode(),
             "zlib-hex": zlib.compress(key.encode()).hex(),
             "base64-of-hex-of-base64": base64.b64encode(base64.b64encode(key.encode()).hex().encode()).decode(),
             "base64-thrice": base64.b64encode(base64.b64encode(base64.b64encode(key.encode()))).decode(),
             # issue 21 round 2: forms a reader undoes at a glance or with any tool
             "tag-characters": "".join(chr(0xE0000 + ord(c)) for c in key),
             "small-capitals": "".join(_SMALL_CAPITALS.get(c.lower(), c) for c in key),
             "doubled": "".join(c * 2 for c in key), "tripled": "".join(c * 3 for c in key),
             "doubled-split": " ".join("".join(c * 2 for c in key[i:i + 5]) for i in range(0, len(key), 5)),
             "binary-spaced": " ".join(f"{b:08b}" for b in key.encode()),
             "binary-joined": "".join(f"{b:08b}" for b in key.encode()),
             "utf16be-hex": key.encode("utf-16-be").hex(), "utf16le-hex": key.encode("utf-16-le").hex(),
             "utf32be-hex": key.encode("utf-32-be").hex(),
             "utf16-units-spaced": " ".join(f"{ord(c):04x}" for c in key),
             "u-plus": " ".join(f"U+{ord(c):04X}" for c in key),
             "css-escapes": "".join(f"\\{b:x} " for b in key.encode()),
             "css-escapes-joined": "".join(f"\\{b:x}" for b in key.encode()),
             "c-array": "{" + ",".join(f"0x{b:02x}" for b in key.encode()) + "}",
             "js-array-decimal": "[" + ",".join(str(b) for b in key.encode()) + "]",
             "base64-spaced": " ".join(base64.b64encode(key.encode()).decode()),
             "base64-commas": ", ".join(base64.b64encode(key.encode()).decode()),
             "base64-spaced-after-a-letter": "a " + " ".join(base64.b64encode(key.encode()).decode()),
             "hex-spaced-per-digit": " ".join(key.encode().hex())}
    for size in (7, 5, 4):
        pieces = [key[i:i + size] for i in range(0, len(key), size)]
        for name, sep in [("space", " "), ("newline", "\n"), ("bar", " | "), ("bold", "**"), ("tick", "` `"),
                          ("words", " and then "), ("zwsp", "\u200b"), ("tag", "<b></b>")]:
            forms[f"split{size}-{name}"] = sep.join(pieces)
        forms[f"split{size}-backwards"] = " then ".join(reversed(pieces))
    for size in (7, 6, 5, 4):  # every other piece: half the key, no two pieces adjacent in it
        pieces = [key[i:i + size] for i in range(0, len(key), size)]
        forms[f"apart{size}-even"], forms[f"apart{size}-odd"] = " ".join(pieces[0::2]), " ".join(pieces[1::2])
    for joiner in ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u034f"]:
        forms[f"joined-U+{ord(joiner):04X}"] = joiner.join(key)
    return forms


KEY_FORMS = key_forms()


def rejoinable(text: str, key: str = KEY) -> list[str]:
    """Runs of 5 letters/digits of ``key`` that ``text`` still spells (ignoring what separates
    them, case and compatibility forms): what a reader could join back."""
    import unicodedata

    def skeleton(value: str) -> str:
        value = unicodedata.normalize("NFKD", value).lower()
        return "".join(c for c in value if c.isascii() and c.isalnum())

    wanted, seen = skeleton(key), skeleton(text)
    return [wanted[i:i + 5] for i in range(len(wanted) - 4) if wanted[i:i + 5] in seen]


def test_every_form_of_the_key_is_redacted_and_ordinary_text_is_not():
    from llmlab.base._redact import Redactor

    redact = Redactor([KEY])
    for name, form in KEY_FORMS.items():
        out = redact(f"Here you go: {form} — done.")
        assert "[redacted]" in out and not rejoinable(out), (name, out)
    from pathlib import Path

    for path in [Path(__file__).parents[1] / "README.md", Path(__file__).parents[1] / "docs" / "architecture.md"]:
        text = path.read_text(encoding="utf-8")
        assert redact(text) == text  # prose, code, tables, URLs, base64-ish identifiers: untouched


def test_a_key_with_its_own_doubled_letters_is_caught_doubled_tripled_and_as_written():
    """Runs of a repeated character are collapsed on both sides: a key's own doubles still match."""
    from llmlab.base._redact import Redactor

    key = "sk-aabbQQ77xyzz-MmNn99kkLp0"
    redact = Redactor([key])
    for form in [key, "".join(c * 2 for c in key), "".join(c * 3 for c in key), key.upper(),
                 " ".join("".join(c * 2 for c in key[i:i + 6]) for i in range(0, len(key), 6))]:
        out = redact(f"the key: {form} ok")
        assert out == "the key: [redacted] ok", (form, out)
    for ordinary in ["aabbcc 1122 bookkeeper committee", "sskk--pprroojj", "zz-mm and 99"]:
        assert redact(ordinary) == ordinary


def test_a_key_split_over_the_fields_of_one_row_is_redacted_in_each_and_ordinary_rows_are_not():
    """Redactor.row: runs of 6+ characters of the key that are apart and in different fields (the
    reasoning, the answer, the served model name) but span 8 of its characters together."""
    import base64
    import random
    from pathlib import Path

    from llmlab.base._redact import Redactor

    redact = Redactor([KEY])
    for size, part in [(7, KEY), (6, KEY[8:])]:  # 6 or more letters and digits each
        pieces = [part[i:i + size] for i in range(0, len(part), size)]
        for fields in ([pieces[1], pieces[3], pieces[5]], [f"first {pieces[0]}", None, f"then {pieces[2]} done"],
                       [f"m-{pieces[4]}", f"reasoning {pieces[1]} " + "x " * 2000, pieces[3]]):
            out = redact.row(fields)
            for before, after in zip(fields, out, strict=True):
                assert (before is None) == (after is None)
                if before:
                    assert not any(p in after for p in pieces if len(p) == size), (fields, out)
    assert redact.row([pieces[1], "no key here"]) == [pieces[1], "no key here"]  # one piece: under 8
    rnd = random.Random(4)
    root = Path(__file__).parents[1]
    texts = [(root / "README.md").read_text(encoding="utf-8"), (root / "docs" / "architecture.md").read_text(),
             *(base64.b64encode(rnd.randbytes(30_000)).decode() for _ in range(2))]
    assert redact.row(texts) == texts
    # a hex key in hex dumps: 4-5 digit chance pieces join in each field already (see
    # test_stream_redaction), the row adds none of its own
    hex_redact = Redactor([rnd.randbytes(20).hex()])
    dumps = [rnd.randbytes(50_000).hex() for _ in range(3)]
    assert hex_redact.row(dumps) == [hex_redact(dump) for dump in dumps]


@pytest.mark.parametrize("name", sorted(KEY_FORMS))
def test_an_endpoint_echoing_the_key_in_any_form_stores_and_shows_none_of_it(tmp_path, monkeypatch, capsys, name):
    monkeypatch.setenv("GATEWAY_KEY", KEY)
    form = KEY_FORMS[name]
    small = [form[i:i + 3] for i in range(0, len(form), 3)]  # a few characters per delta
    models = {"echo": ModelSpec(chunks=["your key: ", *small, " ok"], served_model=f"m-{form[:60]}"),
              "plain": ModelSpec(text=f"your key: {form} ok"),
              "thinks": ModelSpec(text="ok", reasoning=f"the key is {form}",
                                  tool_call={"name": "send", "arguments": json.dumps({"k": form})}),
              "fail": ModelSpec(status=400, error_message=f"bad key {form}")}
    live: list[str] = []
    with FakeServer(models) as srv, Lab(base_url=srv.base_url, api_key_env="GATEWAY_KEY",
                                        db=tmp_path / "l.sqlite", retries=0) as lab:
        res = lab.compare("Hi", models=["echo", "fail"], on_event=lambda e: live.append(e.text))
        plain = lab.compare("Hi", models=["plain", "thinks"], stream=False)
        lab.compare("Hi", models=["thinks"])
        print(res, res.summary(), res._repr_html_(), res.df.to_string(), plain.df.to_string())
        stored = lab.runs()
    out = capsys.readouterr().out
    texts = [*stored["response_text"], *stored["served_model"].dropna(), *stored["error_message"].dropna(),
             *stored["reasoning_text"].dropna(), *stored["tool_calls"].dropna().map(str), "".join(live), out]
    from llmlab.base._redact import Redactor

    again = Redactor([KEY])  # forms no 5-letter run shows (doubled, binary): nothing left to find
    for text in texts:
        assert not rejoinable(text) and again(text) == text, (name, text[:200])
    assert "[redacted]" in stored.set_index("requested_model").loc["echo", "response_text"]


@pytest.mark.parametrize("stream", [True, False])
def test_a_key_split_between_the_reasoning_and_the_answer_is_stored_in_neither(tmp_path, monkeypatch, stream):
    """The runner redacts a row's endpoint fields together (Redactor.row): 7-character pieces of
    the key, half in the reasoning and half in the answer and the served model name, none
    alone a run the per-field search finds."""
    monkeypatch.setenv("GATEWAY_KEY", KEY)
    pieces = [KEY[i:i + 7] for i in range(0, len(KEY), 7)]
    models = {"split": ModelSpec(reasoning=f"first part {pieces[1]} and then", text=f"the rest: {pieces[3]} ok",
                                 served_model=f"m-{pieces[5]}")}
    with FakeServer(models) as srv, Lab(base_url=srv.base_url, api_key_env="GATEWAY_KEY",
                                        db=tmp_path / "l.sqlite", retries=0) as lab:
        lab.compare("Hi", models=["split"], stream=stream)
        row = lab.runs().iloc[0]
    stored = [row["reasoning_text"], row["response_text"], row["served_model"]]
    assert all("[redacted]" in text for text in stored), stored
    assert not any(piece in text for piece in pieces[1::2] for text in stored), stored
    assert row["response_text"].startswith("the rest: ")  # the answer around the piece is kept


# --------------------------------------------------------------------------- 3. the key as a model name

def key_model_names(key: str = KEY) -> list[str]:
    return [key, key.upper(), f"gpt-4o-{key}", f"{key}/chat", f"openai/{key[3:]}", key[5:20], key[-12:],
            f"model {key[:7]} {key[7:14]} {key[14:]}", "\u200b".join(key), _fullwidth(key)]


@pytest.fixture
def key_lab(tmp_path, monkeypatch):
    monkeypatch.setenv("GATEWAY_KEY", KEY)
    with FakeServer({"m": ModelSpec(text="fine")}) as srv, \
            Lab(base_url=srv.base_url, api_key_env="GATEWAY_KEY", db=tmp_path / "l.sqlite") as lab:
        yield lab, srv


CALLS = {
    "compare": lambda lab, m: lab.compare("Hi", models=["m", m]),
    "compare-string": lambda lab, m: lab.compare("Hi", models=f"m,{m}"),
    "sweep": lambda lab, m: lab.sweep(["a", "b"], models=[m], progress=False),
    "complete": lambda lab, m: lab.complete("Hi", models=["m", m]),
    "submit": lambda lab, m: lab.submit_compare("Hi", models=[m]).result(timeout=10),
    "route": lambda lab, m: lab.route("Hi", policy=__import__("llmlab.routing", fromlist=["Always"]).Always(m)),
}


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("index", range(len(key_model_names())))
def test_a_model_name_holding_the_key_is_refused_before_sending(key_lab, capsys, call, index):
    from llmlab import InputError

    lab, srv = key_lab
    name = key_model_names()[index]
    with pytest.raises(InputError, match="looks like your API key") as info:
        CALLS[call](lab, name)
    assert not [r for r in srv.requests if r.path.endswith("/chat/completions")]
    assert len(lab.runs()) == 0
    assert not rejoinable(str(info.value)) and not rejoinable(repr(info.value))
    out = capsys.readouterr()
    assert not rejoinable(out.out + out.err)


def test_the_magic_refuses_a_key_as_model_name_in_one_line(tmp_path, monkeypatch, shell, capsys):
    from llmlab.magics import load_ipython_extension

    monkeypatch.setenv("GATEWAY_KEY", KEY)
    load_ipython_extension(shell)
    with FakeServer({"m": ModelSpec(text="fine")}) as srv:
        shell.run_line_magic("config", f'LLMLab.base_url = "{srv.base_url}"')
        shell.run_line_magic("config", 'LLMLab.api_key_env = "GATEWAY_KEY"')
        shell.run_line_magic("config", f'LLMLab.db = "{tmp_path / "l.sqlite"}"')
        for name in key_model_names():
            if " " in name:
                continue  # the magic's model= takes no spaces
            result = shell.run_cell(f"%%llm model=m,{name}\nHi")
            assert result.error_in_exec is not None or result.error_before_exec is not None
        assert not [r for r in srv.requests if r.path.endswith("/chat/completions")]
    out = capsys.readouterr()
    assert "looks like your API key" in out.err + out.out
    assert "Traceback" not in out.err + out.out
    assert not rejoinable(out.out + out.err)


# --------------------------------------------------------------------------- weak: URL credentials

URL_TOKEN = "Tk7bQ2xZ9mW4vN8pL3sR6dF1gH5jK0aE"


def credential_urls(base: str) -> list[str]:
    """``base`` (…/v1) with a credential in every place a URL can carry one."""
    root, _, _ = base.rpartition("/v1")
    host = root.split("://", 1)[1]
    return [f"{base}?code={URL_TOKEN}", f"{base}?sig={URL_TOKEN}&sv=2024", f"{base}?token={URL_TOKEN}",
            f"{base}?api-version=1&access_token={URL_TOKEN}", f"{base}?X-Amz-Signature={URL_TOKEN}",
            f"{base}#{URL_TOKEN}", f"{base}#access_token={URL_TOKEN}&x=1", f"{root}/{URL_TOKEN}/v1",
            f"{root}/gw/sk-{URL_TOKEN}/v1", f"{base};token={URL_TOKEN}", f"{root}/v1;key={URL_TOKEN}",
            f"http://user:{URL_TOKEN}@{host}/v1", f"http://{URL_TOKEN}@{host}/v1",
            f"http://u:{URL_TOKEN.replace('Q', '%51')}@{host}/v1",
            f"http://{URL_TOKEN}.localhost:{host.split(':')[1]}/v1",
            # names a deny-list of exact names missed: any name holding a credential word, short
            # names with a token value, an escaped '=', path tokens with dots or dashes
            *(f"{base}?api-version=2024-06-01&{name}={URL_TOKEN}" for name in [
                "subscription-key", "Ocp-Apim-Subscription-Key", "private_token", "hf_token", "openai_key",
                "authkey", "access-key", "app_key", "user_key", "passphrase", "license", "token[]", "k", "tok",
                "pat", "st", "login"]),
            f"{base}?api_key%3D{URL_TOKEN}", f"{base}?u=alice&p={URL_TOKEN}", f"{base};jsessionid={URL_TOKEN}",
            f"{root}/eyJhbGciOiJIUzI1NiJ9.{URL_TOKEN}.c2ln/v1", f"{root}/sk-ant-api03-{URL_TOKEN}/v1"]


def test_token_like_url_parts_are_secrets_and_ordinary_ones_are_not():
    from llmlab.base._redact import public_url, url_has_credentials

    for url in ["https://h.example/v1/AKIAIOSFODNN7EXAMPLE", "https://h.example/eyJhbGciOi.eyJzdWIiOiIx.abc/v1",
                "https://h.example/sk-ant-api03-abcdefghijklmnop/v1", "https://h.example/v1?hf_token=hf_abc123def456"]:
        assert url_has_credentials(url) and "[redacted]" in public_url(url), url
    for url in ["https://x.example/search?q=hello&p=2&page=3&k=5&keywords=cats+dogs&author=Jane&design=flat",
                "https://x.example/v1/models/gpt-4o-mini-2024-07-18?api-version=2024-06-01&deployment=my-dep",
                "https://x.example/a?monkey=banana-split&signup=true&passage=12&st=2024"]:
        assert not url_has_credentials(url) and public_url(url) == url, url


def test_a_base_url_carrying_credentials_is_used_but_stored_and_shown_masked(tmp_path, capsys):
    with FakeServer({"m": ModelSpec(text="fine")}) as srv:
        for url in credential_urls(srv.base_url):
            with Lab(base_url=url, db=tmp_path / "l.sqlite", retries=0) as lab:
                res = lab.compare("Hi", models=["m"], cache=False)
                print(lab, lab.base_url, res, res.df.to_string(), res._repr_html_())
                assert URL_TOKEN not in res.df["endpoint"].iloc[0] and not rejoinable(lab.base_url, URL_TOKEN), url
    out = capsys.readouterr().out
    assert not rejoinable(out, URL_TOKEN)
    blob = b"".join(p.read_bytes() for p in tmp_path.glob("l.sqlite*"))
    assert not rejoinable(blob.decode("utf-8", "replace"), URL_TOKEN)


CREDENTIAL_PARAMS = [
    {"extra_body": {"webhook": f"https://user:{URL_TOKEN}@hooks.example/x"}},
    {"extra_body": {"callback": {"url": f"https://hooks.example/x?token={URL_TOKEN}"}}},
    {"metadata": {"link": f"https://files.example/a?sig={URL_TOKEN}"}},
    {"model_params": {"m": {"extra_url": f"https://u:{URL_TOKEN}@x.example"}}},
    {"model_params": {"*": {"tools_url": [f"https://x.example/v1;token={URL_TOKEN}"]}}},
    {"extra_body": {"target": f"https://x.example/#access_token={URL_TOKEN}"}},
]


@pytest.mark.parametrize("params", CREDENTIAL_PARAMS, ids=lambda p: next(iter(p)))
def test_credentials_inside_parameter_urls_are_refused(tmp_path, params):
    from llmlab import InputError

    with FakeServer({"m": ModelSpec(text="fine")}) as srv, Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite") as lab:
        with pytest.raises(InputError, match="looks like a credential") as info:
            lab.compare("Hi", models=["m"], **params)
        assert not [r for r in srv.requests if r.path.endswith("/chat/completions")]
    assert URL_TOKEN not in str(info.value)
    with FakeServer({"m": ModelSpec(text="fine")}) as srv:
        with pytest.raises(InputError, match="looks like a credential"):
            Lab(base_url=srv.base_url, db=":memory:", model_params=params.get("model_params")).compare(
                "Hi", models=["m"], **{k: v for k, v in params.items() if k != "model_params"}) \
                if "model_params" in params else lab.compare("Hi", models=["m"], **params)


def test_ordinary_urls_in_parameters_still_pass(tmp_path):
    with FakeServer({"m": ModelSpec(text="fine")}) as srv, Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite") as lab:
        res = lab.compare("Hi", models=["m"], metadata={"docs": "https://docs.example/page#section-2",
                                                         "img": "https://cdn.example/a.png?w=200"})
    assert res.df["status"].iloc[0] == "ok"


# --------------------------------------------------------------------------- 7. terminal and bidi tricks

HOSTILE_CHARS = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
                 "\u200e", "\u200f", "\u061c", "\u2028", "\u2029", "\x1b[31m", "\x1b]8;;http://evil.example\x07",
                 "\x9b2J", "\x9d0;title\x9c", "\r", "\x08", "\x07", "\x00", "\x7f", "\U000e0041"]
RAW_CONTROLS = [c for c in "".join(HOSTILE_CHARS) if not c.isprintable() or c in "\u2028\u2029"]


def _raw(text: str) -> list[str]:
    """The control/bidi characters ``text`` would obey (newlines and tabs are layout, and so
    is a carriage return in HTML)."""
    layout = "\n\t\r" if "</" in text else "\n\t"
    return sorted({repr(c) for c in text if c in RAW_CONTROLS and c not in layout})


@pytest.mark.parametrize("char", HOSTILE_CHARS, ids=repr)
def test_no_view_obeys_control_or_bidi_characters(tmp_path, shell, monkeypatch, char):
    import sqlite3

    from llmlab import InputError
    from llmlab.analysis._charts import cost_vs_latency, latency
    from llmlab.analysis._report import render_report, standard_sections
    from llmlab.base._validate import invisible_char
    from llmlab.engine._results import Result
    from llmlab.magics import load_ipython_extension

    model = f"evil{char}model"
    # A control, format or other invisible character (a line separator too) in a name asked for is
    # refused; such a name still reaches the views from a log written before that rule (or by
    # another tool): put there below.
    refused = invisible_char(model) is not None
    asked = "evil-model" if refused else model
    models = {asked: ModelSpec(text=f"answer {char}gnp.exe", served_model=f"served{char}x"),
              "fail": ModelSpec(status=400, error_message=f"bad {char} request")}
    shown: list[dict] = []
    monkeypatch.setattr(shell.display_pub, "publish", lambda data, *a, **kw: shown.append(data))
    load_ipython_extension(shell)
    with FakeServer(models) as srv:
        with Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite", retries=0) as lab:
            if refused:
                with pytest.raises(InputError, match="invisible character U\\+") as info:
                    lab.compare("Hi", models=[model, "fail"])
                assert not _raw(str(info.value)) and not [r for r in srv.requests if r.model]
            res = lab.compare("Hi", models=[asked, "fail"])
        if refused:
            with sqlite3.connect(tmp_path / "l.sqlite") as db:
                db.execute("UPDATE runs SET requested_model = ? WHERE requested_model = ?", (model, asked))
        with Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite", retries=0) as lab:
            res = Result(lab.runs(res.run_id), res.run_id, [model, "fail"])
            views = [repr(res), res._repr_html_(), repr(res.summary()), res.summary()._repr_html_(), repr(res.df),
                     res.df._repr_html_(), repr(lab.runs()), repr(lab)]
            with pytest.raises(Exception) as dup:
                lab.compare("Hi", models=[model, model])
            views.append(str(dup.value))
            for chart in (latency, cost_vs_latency):
                fig = chart(res.df)
                views += [t.get_text() for ax in fig.axes for t in [*ax.get_xticklabels(), *ax.texts]]
                views += [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
            views.append(render_report(standard_sections(res.summary(), res.df, {}), {"models": model}))
        shell.run_line_magic("config", f'LLMLab.base_url = "{srv.base_url}"')
        shell.run_line_magic("config", f'LLMLab.db = "{tmp_path / "m.sqlite"}"')
        shell.run_cell(f"%%llm model={asked.replace(' ', '')},fail out=r\nHi")
    views += [str(v) for data in shown for v in data.values()]
    for view in views:
        assert not _raw(view), (_raw(view), view[:300])
    # data as sent (a NUL is U+FFFD on every backend: PostgreSQL cannot store one)
    assert res.df.set_index("requested_model").loc[model, "response_text"] == f"answer {char}gnp.exe".replace("\x00",
                                                                                                             "\ufffd")


# --------------------------------------------------------------------------- 1. code injection via to_code()

def hostile_names() -> list[str]:
    """Names that try to leave a string literal, a docstring or a comment, in every quoting."""
    closers = ['"""', "'''", '"', "'", '\\', '\\"""', '"""\\', "\n", "\r\n", "\u2028", "\u2029", "\x00", "\x0c",
               "{}", "{0}", "}}{{", "#", "\t", "\\N{BULLET}", "\\u0022\\u0022\\u0022", "\ud800", "é\u202e"]
    payload = "\nimport os; os.system('touch /tmp/pwned')\n"
    names = []
    for closer in closers:
        names += [closer, f"m{closer}", f"{closer}{payload}", f"x{closer}{payload}{closer}",
                  f"{closer}) or __import__('os')"]
    return names


HOSTILE_NAMES = hostile_names()


def _a_name(name: str) -> bool:
    """Whether the engine's one rule for model names (base/_names) takes ``name``: the others are
    refused by every policy when it is built, so they never reach a file or exported code."""
    from llmlab import InputError
    from llmlab.base._names import check_model_names

    try:
        check_model_names([name])
    except InputError:
        return False
    return True


def _policies(name: str):
    from llmlab import routing

    plain = "gpt-4o"
    return [routing.Always(name, name=name), routing.TaskMap({name: name, "t": plain}, default=name, name=name),
            routing.TaskMap({"t": plain}, default=None, name=name),
            routing.Threshold("prompt_chars", 120, weak=name, strong=plain, name=name),
            routing.Cascade([name, plain], accept={"kind": "regex", "pattern": "####"}, name=name)]


def _string_constants(code: str) -> tuple[set[str], ast.Module]:
    tree = ast.parse(code)
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}, tree


@pytest.mark.parametrize("index", range(len(HOSTILE_NAMES)))
def test_exported_code_carries_every_name_as_a_literal(index):
    from llmlab import InputError

    name = HOSTILE_NAMES[index]
    if not _a_name(name):
        with pytest.raises(InputError) as info:
            _policies(name)
        assert "\n" not in str(info.value)
        return
    for policy in _policies(name):
        code = policy.to_code()
        code.encode("ascii")  # pure ASCII: no encoding, bidi or line-separator trick survives
        strings, tree = _string_constants(code)
        assert name in strings, (type(policy).__name__, code)
        # the module is what llmlab writes and nothing else: assignments, imports of re, one function
        top = [type(n).__name__ for n in tree.body]
        assert set(top) <= {"Expr", "Assign", "Import", "FunctionDef"}, top
        assert all(isinstance(n, ast.Import) and [a.name for a in n.names] == ["re"]
                   for n in tree.body if isinstance(n, ast.Import))
        assert [n.name for n in tree.body if isinstance(n, ast.FunctionDef)] == ["pick_model"]
        calls = {n.func.id if isinstance(n.func, ast.Name) else n.func.attr
                 for n in ast.walk(tree) if isinstance(n, ast.Call)}
        assert calls <= {"get", "compile", "search", "len", "ValueError"}, calls
        namespace: dict = {}
        exec(compile(tree, "<exported>", "exec"), namespace)  # runs, and does nothing but define
        assert namespace["POLICY"] == name
        if type(policy).__name__ == "Always":
            assert namespace["pick_model"]("hi") == name
        if type(policy).__name__ == "Threshold":
            assert namespace["pick_model"]("x" * 200) == "gpt-4o" and namespace["pick_model"]("x") == name


class _LoudStr(str):
    def __repr__(self) -> str:  # what ascii() of the object itself would write into the module
        return "__import__('os').system('touch /tmp/pwned')"

    __str__ = __repr__


@pytest.mark.parametrize("make", [lambda n: np.str_(n), _LoudStr], ids=["numpy-str_", "str-subclass-repr"])
def test_exported_code_carries_a_str_subclass_as_its_text(make):
    for name in ["gpt-5", *filter(_a_name, HOSTILE_NAMES[::7])]:
        for policy in _policies(make(name)):
            strings, tree = _string_constants(policy.to_code())
            assert name in strings and not [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                                             and getattr(n.func, "id", getattr(n.func, "attr", "")) in
                                             {"str_", "system", "__import__"}]


@pytest.mark.parametrize("number", [np.int64(50), np.int32(50), np.float32(50.0), np.float64(50.0), np.uint8(50)],
                         ids=lambda n: type(n).__name__)
def test_a_numpy_threshold_is_a_number_carried_as_a_plain_literal(number, tmp_path):
    # A threshold read from a DataFrame is a numpy number; numpy 2's repr (np.int64(50)) in generated
    # code would not even run, and it must not be refused as "not a number".
    from llmlab import routing

    policy = routing.Threshold("prompt_chars", number, weak="small", strong="big")
    assert type(policy.threshold) in (int, float) and policy.threshold == 50
    namespace: dict = {}
    exec(compile(policy.to_code(), "<policy>", "exec"), namespace)  # noqa: S102 - our own generated module
    assert namespace["pick_model"]("x" * 50) == "big" and namespace["pick_model"]("x" * 49) == "small"
    policy.save(tmp_path / "router.json")
    assert routing.load_policy(tmp_path / "router.json").threshold == 50


def test_exported_code_of_a_hostile_saved_router_json_stays_inert(tmp_path):
    from llmlab import routing

    for name in HOSTILE_NAMES:
        if "\ud800" in name or "\x00" in name or "\n" in name or "\r" in name or "\u2028" in name \
                or "\u2029" in name or "\t" in name or "\x0c" in name or "\u202e" in name:
            continue  # a saved file refuses names that are not one line of plain text (below)
        path = tmp_path / "router.json"
        path.write_text(json.dumps({"format": "llmlab.routing.policy", "version": 1, "kind": "TaskMap",
                                    "name": name, "mapping": {name: name}, "default": name}))
        code = routing.load_policy(path).to_code()
        strings, _ = _string_constants(code)
        assert name in strings


# --------------------------------------------------------------------------- 2. save() never destroys a file

UNWRITABLE = [
    ("name", lambda r: r.Always("m", name="bad\ud800name")),
    ("model", lambda r: r.Always("m\udfff", name="ok")),
    ("mapping['t\\udc00']", lambda r: r.TaskMap({"t\udc00": "m"})),
    ("mapping['t']", lambda r: r.TaskMap({"t": "m\ud800"})),
    ("default", lambda r: r.TaskMap({"t": "m"}, default="\ud83d")),
    ("models[1]", lambda r: r.Fallback(["a", "b\ud800"], name="ok")),
    ("weak", lambda r: r.Random(0.5, weak="w\ud800", strong="s", name="ok")),
]


@pytest.mark.parametrize("field, make", UNWRITABLE, ids=[u[0] for u in UNWRITABLE])
def test_an_unwritable_policy_leaves_the_old_file_intact(tmp_path, field, make):
    from llmlab import InputError, routing

    (tmp_path / "out").mkdir()
    path = tmp_path / "out" / "router.json"
    routing.Always("good").save(path)
    before = path.read_bytes()
    with pytest.raises(InputError, match="unpaired surrogate") as info:
        make(routing).save(path)  # refused when built now (the engine's name rule), before save
    assert "\n" not in str(info.value)
    assert path.read_bytes() == before and routing.load_policy(path).model == "good"
    assert [p.name for p in path.parent.iterdir()] == ["router.json"]  # no temporary file left


def test_every_file_llmlab_writes_is_atomic_and_owner_only(tmp_path, usual_umask):
    import os
    import stat

    from llmlab import routing
    from llmlab.analysis._report import write_report
    from llmlab.base._files import write_private

    with FakeServer({"m": ModelSpec(text="fine")}) as srv, Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite") as lab:
        lab.compare("Hi", models=["m"])
        targets = {"policy": tmp_path / "p.json", "export": tmp_path / "e.parquet", "report": tmp_path / "r.html",
                   "file": tmp_path / "f.bin"}
        for path in targets.values():
            path.write_bytes(b"old")
            path.chmod(0o644)
        routing.Always("m").save(targets["policy"])
        lab.export(targets["export"])
        write_report(targets["report"], [], {"x": 1})
        write_private(targets["file"], b"new")
    for what, path in targets.items():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, what
        assert path.read_bytes() != b"old", what
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


NAMELESS = {"nul-in-name": "{d}/x\x00.json", "nul-in-folder": "{d}/a\x00b/x.json", "nul-only": "\x00",
            "unknown-user": "~llmlab-no-such-user/x.json", "unknown-user-alone": "~llmlab-no-such-user",
            "unknown-user-deep": "~llmlab-no-such-user/a/b/c.json"}


@pytest.mark.parametrize("writer", ["policy", "export", "report", "file"])
@pytest.mark.parametrize("name", sorted(NAMELESS))
def test_a_path_that_names_no_file_is_one_line_input_error(tmp_path, name, writer):
    from llmlab import InputError, routing
    from llmlab.analysis._report import write_report
    from llmlab.base._files import write_private

    target = NAMELESS[name].format(d=tmp_path).replace(".json", "") + (".parquet" if writer == "export" else ".json")
    with FakeServer({"m": ModelSpec(text="fine")}) as srv, Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite") as lab:
        lab.compare("Hi", models=["m"])
        before = sorted(p.name for p in tmp_path.rglob("*"))
        write = {"policy": lambda: routing.Always("m").save(target), "export": lambda: lab.export(target),
                 "report": lambda: write_report(target, [], {"x": 1}), "file": lambda: write_private(target, b"x")}
        with pytest.raises(InputError) as err:
            write[writer]()
        assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no file, folder or .partial made
    assert "\n" not in str(err.value) and "nothing was written" in str(err.value)


def _not_files(folder, suffix: str = ".json") -> dict:
    """Paths that exist but are not regular files: a FIFO, a socket, a folder, a symlink to a
    FIFO and (as root, which notebooks in containers often are) a null device of our own."""
    import os
    import socket

    kinds = {kind: folder / f"{kind}{suffix}" for kind in ("fifo", "socket", "folder", "symlink-to-fifo")}
    os.mkfifo(kinds["fifo"])
    socket.socket(socket.AF_UNIX).bind(str(kinds["socket"]))
    kinds["folder"].mkdir()
    kinds["symlink-to-fifo"].symlink_to(kinds["fifo"])
    if os.geteuid() == 0:
        kinds["device"] = folder / f"null{suffix}"
        os.mknod(kinds["device"], 0o666 | __import__("stat").S_IFCHR, os.makedev(1, 3))
    return kinds


@pytest.mark.parametrize("writer", ["policy", "export", "report", "file"])
def test_a_target_that_is_not_a_file_is_refused_never_replaced(tmp_path, writer):
    # As root, os.replace onto /dev/null turns the device into a JSON file.
    import os

    from llmlab import InputError, routing
    from llmlab.analysis._report import write_report
    from llmlab.base._files import write_private

    odd = tmp_path / "odd"
    odd.mkdir()
    with FakeServer({"m": ModelSpec(text="fine")}) as srv, Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite") as lab:
        lab.compare("Hi", models=["m"])
        for kind, target in _not_files(odd, ".parquet" if writer == "export" else ".json").items():
            before = os.lstat(target)
            write = {"policy": lambda t: routing.Always("m").save(t), "export": lab.export,
                     "report": lambda t: write_report(t, [], {"x": 1}), "file": lambda t: write_private(t, b"x")}
            with pytest.raises(InputError, match="not a file; nothing was written") as err:
                write[writer](target)
            after = os.lstat(target)
            assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino), kind
            assert "\n" not in str(err.value)
    assert not [p for p in tmp_path.rglob("*.partial")]


def test_reading_a_fifo_a_device_or_an_endless_file_is_refused_at_once(tmp_path, monkeypatch):
    import threading

    from llmlab import ConfigError, InputError, routing
    from llmlab.base import _pricing

    kinds = _not_files(tmp_path)
    (tmp_path / "zero.json").symlink_to("/dev/zero")  # a cloned repo can ship this symlink
    kinds["symlink-to-/dev/zero"] = tmp_path / "zero.json"
    outcomes: dict = {}

    def attempt() -> None:
        for kind, path in kinds.items():
            for reader, error in ((routing.load_policy, InputError),
                                  (lambda p: Lab(db=":memory:", prices=p), ConfigError)):
                try:
                    reader(path)
                except error as exc:
                    outcomes[kind, error.__name__] = str(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=60)  # a FIFO's open blocked forever; /dev/zero read until memory ran out
    assert not worker.is_alive(), "a read blocked"
    assert len(outcomes) == 2 * len(kinds) and all("\n" not in m for m in outcomes.values())
    assert all("not a file" in message for message in outcomes.values()), outcomes
    monkeypatch.setattr(_pricing, "MAX_SHEET_BYTES", 1000)
    (tmp_path / "big.json").write_text(json.dumps({"m": {"input_cost_per_token": 1e-6, "pad": "x" * 2000}}))
    with pytest.raises(ConfigError, match="larger than"):
        Lab(db=":memory:", prices=tmp_path / "big.json")


def test_a_save_removes_the_temporary_files_a_killed_writer_left(tmp_path):
    import os
    import time

    from llmlab import routing

    stale, fresh, other = (tmp_path / ".router.json.k1ll3d.partial", tmp_path / ".router.json.n0w.partial",
                           tmp_path / ".other.json.old.partial")
    for leftover in (stale, fresh, other):
        leftover.write_text("a whole old copy")
    os.utime(stale, (time.time() - 3600,) * 2)
    os.utime(other, (time.time() - 3600,) * 2)
    routing.Always("m").save(tmp_path / "router.json")
    assert not stale.exists() and fresh.exists() and other.exists()  # a running writer's, another file's: kept


@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666, 0o622, 0o777, 0o620, 0o602])
def test_a_saved_policy_others_can_write_is_refused(tmp_path, mode):
    from llmlab import InputError, routing

    path = tmp_path / "router.json"
    routing.Always("m").save(path)
    assert routing.load_policy(path).model == "m"  # as saved: 0600
    path.chmod(0o644)
    assert routing.load_policy(path).model == "m"  # readable by others, writable by the owner only
    path.chmod(mode)
    with pytest.raises(InputError, match="other users.*chmod go-w"):
        routing.load_policy(path)


def test_an_export_that_fails_halfway_leaves_the_old_file(tmp_path, monkeypatch):
    from llmlab import InputError

    with FakeServer({"m": ModelSpec(text="fine")}) as srv, Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite") as lab:
        lab.sweep(["a", "b", "c"], models=["m"], progress=False)
        target = tmp_path / "out.parquet"
        lab.export(target)
        before = target.read_bytes()
        import pyarrow.parquet as pq

        def broken(self, table, *a, **kw):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(pq.ParquetWriter, "write_table", broken)
        with pytest.raises(InputError, match="No space left"):
            lab.export(target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if "out.parquet" in p.name] == ["out.parquet"]


# --------------------------------------------------------------------------- weak: one schema for saved policies

def _saved(kind: str, **fields) -> dict:
    return {"format": "llmlab.routing.policy", "version": 1, "kind": kind, **fields}


BAD_SAVED = {
    "nan-threshold": '{"format": "llmlab.routing.policy", "version": 1, "kind": "Threshold", "feature": '
                     '"prompt_chars", "threshold": NaN, "weak": "a", "strong": "b"}',
    "inf-threshold": json.dumps(_saved("Threshold", feature="prompt_chars", threshold=1, weak="a", strong="b"))
                     .replace(": 1,", ": Infinity,"),
    "-inf-threshold": json.dumps(_saved("Threshold", feature="prompt_chars", threshold=1, weak="a", strong="b"))
                      .replace(": 1,", ": -Infinity,"),
    "huge-threshold": json.dumps(_saved("Threshold", feature="prompt_chars", threshold=10**400, weak="a", strong="b")),
    "1e999-threshold": json.dumps(_saved("Threshold", feature="prompt_chars", threshold=1, weak="a", strong="b"))
                       .replace(": 1,", ": 1e999,"),
    "5000-digit-int": json.dumps(_saved("Always", model="m")).replace('"m"', "9" * 5000),
    "default-int": json.dumps(_saved("TaskMap", mapping={"a": "m"}, default=5)),
    "default-object": json.dumps(_saved("TaskMap", mapping={"a": "m"}, default={"x": 1})),
    "default-list": json.dumps(_saved("TaskMap", mapping={"a": "m"}, default=["m"])),
    "mapping-model-int": json.dumps(_saved("TaskMap", mapping={"a": 3})),
    "deep-array": "[" * 100_000 + "]" * 100_000,
    "deep-field": json.dumps(_saved("Always", model="m")).replace('"m"', "[" * 50_000 + "]" * 50_000),
    "deep-object": "{\"a\": " * 50_000 + "1" + "}" * 50_000,
    "p-strong-2": json.dumps(_saved("Random", p_strong=2, weak="a", strong="b", seed=0)),
    "seed-huge": json.dumps(_saved("Random", p_strong=0.5, weak="a", strong="b", seed=10**30)),
    "seed-float": json.dumps(_saved("Random", p_strong=0.5, weak="a", strong="b", seed=0.5)),
    "accept-bad-regex": json.dumps(_saved("Cascade", models=["a", "b"], accept={"kind": "regex", "pattern": "("},
                                          accept_at=0.5)),
    "accept-unknown-field": json.dumps(_saved("Cascade", models=["a", "b"], accept={"kind": "regex", "nope": 1},
                                              accept_at=0.5)),
    **{f"accept-flags-{flags}": json.dumps(_saved("Cascade", models=["a", "b"], accept_at=0.5,
                                                  accept={"kind": "regex", "pattern": "x", "flags": flags}))
       for flags in ["__import__", "DEBUG", "I|DEBUG", "compile", "TEMPLATE", 128, 2 | 128, -1, 1.5, True, ["I"]]},
    "accept-list": json.dumps(_saved("Cascade", models=["a", "b"], accept=[1], accept_at=0.5)),
    "name-int": json.dumps(_saved("Always", model="m", name=5)),
    "name-newline": json.dumps(_saved("Always", model="m", name="a\nimport os")),
    "name-bidi": json.dumps(_saved("Always", model="m", name="a\u202eb")),
    "model-empty": json.dumps(_saved("Always", model="")),
    "model-surrogate": json.dumps(_saved("Always", model="a")).replace('"a"', '"\\ud800"'),
    "kind-list": json.dumps(_saved(["Always"], model="m")),  # type: ignore[arg-type]
    "kind-unknown": json.dumps(_saved("Evil", model="m")),
    "not-json": "{not json",
    "array": "[1, 2]",
    "learned-junk": json.dumps({"kind": "Learned", "format": "llmlab.routing.Learned", "version": 1}),
    "bytes-not-utf8": b"\xff\xfe{}".decode("latin-1"),
}


@pytest.mark.parametrize("name", sorted(BAD_SAVED))
def test_a_hostile_saved_policy_is_one_line_input_error(tmp_path, name):
    from llmlab import InputError, routing

    path = tmp_path / "router.json"
    text = BAD_SAVED[name]
    path.write_bytes(text.encode("latin-1") if name == "bytes-not-utf8" else text.encode("utf-8", "surrogatepass"))
    with pytest.raises(InputError) as info:
        routing.load_policy(path)
    assert "\n" not in str(info.value) and len(str(info.value)) < 400


@pytest.fixture(scope="module")
def saved_learned() -> dict[int, dict]:
    """A fitted Learned router's JSON, in both formats: version 1 (weak/strong), version 2 (models)."""
    from test_routing_heldout import ladder_runs

    from llmlab import routing

    runs = ladder_runs(120, seed=1)
    return {len(models): json.loads(json.dumps(routing.Learned(*models).fit(runs).to_dict()))
            for models in (("cheap", "strong"), ("cheap", "mid", "strong"))}


LEARNED_NAMES = ["a\nb", "x\x1b[31mred", "\u202eevil", "\ud800", "a" * 5000, "", "\x00", "m\u2028", "\u2066x\u2069",
                 "<script>alert(1)</script>", " ", "gpt-4o-mini", "é", *HOSTILE_NAMES[::7]]


def _loads(path, data) -> str | None:
    """None when load_policy reads ``data`` back, else its one-line InputError."""
    from llmlab import InputError, routing

    path.write_text(json.dumps(data))
    path.chmod(0o600)
    try:
        routing.load_policy(path)
    except InputError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 400
        return str(exc)
    return None


@pytest.mark.parametrize("index", range(len(LEARNED_NAMES)))
def test_a_saved_learned_router_checks_names_by_the_rule_of_every_saved_policy(tmp_path, saved_learned, index):
    name = LEARNED_NAMES[index]
    ok = _loads(tmp_path / "always.json", _saved("Always", model=name, name=name)) is None  # the one rule
    for field, data in [("weak", {**saved_learned[2], "weak": name}), ("strong", {**saved_learned[2], "strong": name}),
                        ("models[1]", {**saved_learned[3], "models": ["cheap", name, "strong"]}),
                        ("name", {**saved_learned[3], "name": name}), ("name", {**saved_learned[2], "name": name})]:
        refused = _loads(tmp_path / "router.json", data)
        assert (refused is None) == ok, (field, name[:20], refused)
        if refused is not None:
            assert f"'{field}' must be a" in refused and "one line of text" in refused
    hostile = any(c in name for c in "\n\x1b\u202e\ud800\x00\u2028\u2066") or not name.strip() or len(name) > 1000
    assert ok is not hostile


@pytest.mark.parametrize("training, said", [([1, 2], "'training' must be a JSON object, not a JSON array of 2"),
                                            ("str", "'training' must be a JSON object, not 'str'"),
                                            (5, "must be a JSON object, not 5"), (True, "not True"),
                                            ({"k": "\ud800"}, "training['k'] has an invalid character"),
                                            ({"deep": json.loads("[" * 70 + "]" * 70)}, "nested more than 64"),
                                            ({"C": float("nan")}, "training['C'] is nan")])
def test_a_saved_learned_routers_training_is_a_json_object(tmp_path, saved_learned, training, said):
    from llmlab import InputError, routing

    for data in (saved_learned[2], saved_learned[3]):
        bad = {**data, "training": training}
        (tmp_path / "router.json").write_text(json.dumps(bad, allow_nan=True))
        with pytest.raises(InputError, match="saved learned router") as info:
            routing.load_policy(tmp_path / "router.json")
        assert said in str(info.value) and "\n" not in str(info.value)
        with pytest.raises(InputError, match="saved learned router"):
            routing.Learned.from_dict(bad)
    for fine in (None, {}, {"n_prompts": 120, "note": "<b>x</b>", "nested": {"a": [1, 2.5, None]}}):
        loaded = routing.Learned.from_dict({**saved_learned[3], "training": fine})
        assert loaded.training == (fine or {})
        loaded.save(tmp_path / "again.json")  # what loads can be saved again
        assert routing.load_policy(tmp_path / "again.json").training == (fine or {})


# --------------------------------------------------------------------------- weak: raw exceptions → one line

def _runs_for_routing():
    import pandas as pd

    from llmlab.datasets import from_wide

    frame = pd.DataFrame({"prompt": [f"question {i}" for i in range(20)], "task": ["a", "b"] * 10,
                          "cheap": [1.0, 0.0] * 10, "dear": [1.0] * 20})
    return from_wide(frame, prompt="prompt", task="task", scores={"cheap": "cheap", "dear": "dear"})


RAW_CASES = {
    "route-task-list": lambda r, runs: r.TaskMap({"a": "m"}).decide("hi", task=["a"]),
    "route-task-dict": lambda r, runs: r.TaskMap({"a": "m"}).decide("hi", task={"a": 1}),
    "decide-prompt-int": lambda r, runs: r.Always("m").decide(5),
    "decide-features-list": lambda r, runs: r.Threshold("d", 0.5, weak="w", strong="s").decide("hi", features=[1]),
    "huge-feature": lambda r, runs: r.Threshold("d", 0.5, weak="w", strong="s").decide("hi", features={"d": 10**400}),
    "huge-threshold": lambda r, runs: r.Threshold("prompt_chars", 10**400, weak="w", strong="s"),
    "nan-threshold": lambda r, runs: r.Threshold("prompt_chars", float("nan"), weak="w", strong="s"),
    "claim-string": lambda r, runs: r.evaluate(runs, [r.Always("cheap")], n_boot=50).claim(min_savings_pct="40"),
    "claim-nan": lambda r, runs: r.evaluate(runs, [r.Always("cheap")], n_boot=50).claim(max_quality_loss=float("nan")),
    "claim-huge": lambda r, runs: r.evaluate(runs, [r.Always("cheap")], n_boot=50).claim(alpha=10**400),
    "fit-task-map-nan": lambda r, runs: r.fit_task_map(runs, max_quality_loss=float("nan")),
    "fit-task-map-string": lambda r, runs: r.fit_task_map(runs, max_quality_loss="0.1"),
    "tune-inf": lambda r, runs: r.tune(r.Threshold("prompt_chars", 0, weak="cheap", strong="dear"), runs,
                                       max_quality_loss=float("inf")),
    "split-by-nope": lambda r, runs: r.split(runs, by="nope"),
    "split-by-typo": lambda r, runs: r.split(runs, by="tsk"),
    "save-not-a-path": lambda r, runs: r.Always("m").save(5),
    "load-not-a-path": lambda r, runs: r.load_policy(None),
}


@pytest.mark.parametrize("name", sorted(RAW_CASES))
def test_bad_routing_input_is_one_line_input_error(name):
    from llmlab import InputError, routing

    with pytest.raises(InputError) as info:
        RAW_CASES[name](routing, _runs_for_routing())
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("frame, scores", [
    ({"prompt": ["a"], "s": [1.0], "s2": [1.0]}, {"m": "s"}),
    ({"prompt": ["a\ud800"], "s": [1.0]}, {"m": "s"}),
    ({"prompt": ["a"], "s": [1.0]}, {"m\ud800": "s"}),
    ({"prompt": ["a"], "s": [1.0], "t": ["x\udc00"]}, {"m": "s"}),
], ids=["duplicate-columns", "surrogate-prompt", "surrogate-model", "surrogate-task"])
def test_from_wide_refuses_duplicate_columns_and_surrogates(frame, scores):
    import pandas as pd

    from llmlab import InputError
    from llmlab.datasets import from_wide

    df = pd.DataFrame(frame, dtype=object)
    if "s2" in df.columns:
        df.columns = ["prompt", "s", "s"]
    with pytest.raises(InputError):
        from_wide(df, prompt="prompt", scores=scores, task="t" if "t" in df.columns else None)


@pytest.mark.parametrize("price", [-1, -1e-9, float("nan"), float("inf"), float("-inf"), 10**400, "x", None])
def test_a_price_that_is_not_a_finite_number_at_least_zero_is_refused(price):
    from llmlab import ConfigError
    from llmlab.base._pricing import PriceTable

    with pytest.raises(ConfigError):
        PriceTable.load({"m": {"input_cost_per_token": price, "output_cost_per_token": 1e-6}})
    with pytest.raises(ConfigError):
        Lab(db=":memory:", base_url="http://127.0.0.1:9/v1", prices={"m": {"input_cost_per_token": 0,
                                                                            "output_cost_per_token": price}})


# --------------------------------------------------------------------------- 4. database values

PW = "Pw9-Zq7xLk2"


def secret_db_values() -> list[str]:
    """Every way a password (or a secret of a db value) can ride along; the server at 127.0.0.1:9
    is closed, so a value that is opened fails fast."""
    host = "127.0.0.1:9"
    values = []
    for scheme in ["postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2", "postgresql+asyncpg",
                   "POSTGRESQL+psycopg"]:
        values += [f"{scheme}://u:{PW}@{host}/db", f"{scheme}://:{PW}@{host}/db", f"{scheme}://u@{host}/db?password={PW}",
                   f"{scheme}://u@{host}/db?sslmode=require&password={PW}", f"{scheme}://u%3A{PW}@{host}/db",
                   f"{scheme}://u:{PW.replace('Z', '%5A')}@{host}/db"]
    for pad in [" ", "\t", "\n", "  ", "\u00a0"]:
        values += [f"{pad}postgresql+psycopg://u:{PW}@{host}/db", f"postgresql://u:{PW}@{host}/db{pad}"]
    values += [f"host=127.0.0.1 port=9 password={PW}", f"host=127.0.0.1 port=9 password='{PW}'",
               f"password={PW} host=127.0.0.1", f"dbname=x password = {PW}", f"host=127.0.0.1 port=9 user=u:{PW}"]
    values += [f"mysql://u:{PW}@h/db", f"mssql+pyodbc://u:{PW}@h/db", f"oracle://u:{PW}@h/x", f"redis://:{PW}@h",
               f"sqlite:{PW}", f"postgresql:u:{PW}@h/db", f"postgresql:/{PW}", f"sqlite://{PW}/x", f"sqlite:///x?key={PW}",
               f"ftp://u:{PW}@h/x", f"postgresql://[::1/{PW}"]
    # URL-shaped without a supported scheme: never a file named with the password
    values += [f"//u:{PW}@h/db", f"u:{PW}@h:5432/db", f"a:{PW}@h/db", f"{PW}:@h/db", f"C:{PW}@h/db",
               f"postgresql%3A%2F%2Fu%3A{PW}%40h%2Fdb", f"postgresql\uff1a//u:{PW}@h/db",
               f"postgresql\uff03//u:{PW}@h/db", f"postgresql#//u:{PW}@h/db", f"x/postgresql//u:{PW}@h/db",
               f"postgresql%253A%252F%252Fu:{PW}@h"]
    return values


def masked_db_values() -> list[str]:
    """Values that are valid and hold secrets to mask (opening them fails: nothing listens)."""
    return [f"postgresql://u@127.0.0.1:9/db#{PW}", f"host=127.0.0.1 port=9 options='-c password={PW}'",
            f"host=127.0.0.1 port=9 passfile=/tmp/{PW}", f"postgresql://u@127.0.0.1:9/db?options=-c%20x%3D{PW}",
            f"host=127.0.0.1 port=9 sslpassword={PW}", f"service={PW}", f"host=127.0.0.1 port=9 service={PW}"]


def _no_pw(*texts) -> None:
    for text in texts:
        assert PW not in str(text) and PW.lower() not in str(text).lower(), str(text)[:300]


def _no_pw_files(root) -> None:
    assert not [p for p in root.rglob("*") if PW in p.name or p.name.startswith(("sqlite:", "postgres"))]


@pytest.fixture
def brief_open_wait(monkeypatch):
    """Nothing listens at these values' ports: a refused open is retried 0.3 s, not 120 s."""
    import llmlab.store._base as base

    monkeypatch.setattr(base, "LOG_WAIT_S", 0.3)


@pytest.mark.parametrize("value", secret_db_values() + masked_db_values(), ids=lambda v: v[:40])
def test_a_db_value_never_becomes_a_file_or_shows_its_secret(tmp_path, capsys, brief_open_wait, value):
    from llmlab import LLMLabError

    with pytest.raises(LLMLabError) as info:
        Lab(db=value, base_url="http://127.0.0.1:9/v1")
    _no_pw(str(info.value), repr(info.value), capsys.readouterr())
    _no_pw_files(tmp_path)


URL_LIKE_DB_VALUES = [v for v in secret_db_values() + masked_db_values() if "/" not in v.split(":")[0]]


@pytest.mark.parametrize("value", URL_LIKE_DB_VALUES[::2], ids=lambda v: v[:40])
def test_a_db_value_passed_as_a_path_is_refused_not_made_a_file(tmp_path, capsys, monkeypatch, brief_open_wait,
                                                                value):
    from pathlib import PurePosixPath

    from llmlab import LLMLabError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(LLMLabError) as info:
        Lab(db=PurePosixPath(value.strip()), base_url="http://127.0.0.1:9/v1")
    _no_pw(str(info.value), repr(info.value), capsys.readouterr())
    _no_pw_files(tmp_path)


@pytest.mark.parametrize("value", secret_db_values()[::3] + masked_db_values(), ids=lambda v: v[:40])
def test_export_with_a_bad_db_exits_non_zero_and_shows_no_secret(tmp_path, capsys, brief_open_wait, value):
    from llmlab.cli import main

    code = main(["export", str(tmp_path / "out.parquet"), "--db", value])
    out = capsys.readouterr()
    assert code != 0 and "wrote" not in out.out and "Traceback" not in out.err
    _no_pw(out.out, out.err)
    _no_pw_files(tmp_path)
    assert not (tmp_path / "out.parquet").exists()


def test_export_of_a_log_that_does_not_exist_is_an_error(tmp_path, capsys):
    from llmlab.cli import main

    for db in [str(tmp_path / "missing.sqlite"), f"sqlite:///{tmp_path / 'missing.sqlite'}"]:
        assert main(["export", str(tmp_path / "out.parquet"), "--db", db]) == 2
        assert "no log at" in capsys.readouterr().err
    assert not list(tmp_path.glob("missing*")) and not (tmp_path / "out.parquet").exists()


def test_the_magic_refuses_a_db_with_a_secret_and_forgets_it(tmp_path, shell, capsys):
    from llmlab.magics import load_ipython_extension

    load_ipython_extension(shell)
    for value in secret_db_values()[::4]:
        shell.run_cell(f"%config LLMLab.db = {value!r}")
    out = capsys.readouterr()
    _no_pw(out.out, out.err, dict(shell.config.get("LLMLab", {})))
    _no_pw_files(tmp_path)


@pytest.mark.parametrize("form, where", [("sqlite:///rel.sqlite", "rel.sqlite"),
                                         ("sqlite:///sub/dir/x.db", "sub/dir/x.db"),
                                         ("sqlite:////{tmp}/abs.sqlite", "abs.sqlite"),
                                         ("plain.sqlite", "plain.sqlite")])
def test_sqlite_urls_name_the_file_they_say(tmp_path, form, where):
    with FakeServer({"m": ModelSpec(text="ok")}) as srv, \
            Lab(db=form.format(tmp=str(tmp_path).lstrip("/")), base_url=srv.base_url) as lab:
        lab.compare("Hi", models=["m"])
        assert "sqlite:" not in lab.store.path
    assert (tmp_path / where).is_file() and not list(tmp_path.glob("sqlite*"))


def test_sqlite_memory_urls_keep_nothing_on_disk(tmp_path):
    for form in ["sqlite://", "sqlite:///:memory:", ":memory:"]:
        with FakeServer({"m": ModelSpec(text="ok")}) as srv, Lab(db=form, base_url=srv.base_url) as lab:
            lab.compare("Hi", models=["m"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]


# --------------------------------------------------------------------------- 5. a cloned repo's database, endpoint

FOREIGN_DBS = ["postgresql://alice@evil.example/x", "postgres://alice@evil.example:5432/x",
               "postgresql+psycopg://alice@evil.example/x", "host=evil.example dbname=x user=alice",
               "host=localhost,evil.example dbname=x", "postgresql://alice@localhost/x?host=evil.example",
               "hostaddr=203.0.113.7 dbname=x", "postgresql://alice@[2001:db8::1]/x", "service=prod",
               "postgresql://alice@127.0.0.1.evil.example/x", "postgresql://alice@localhost.evil.example/x"]
# a unix socket outside a standard socket folder may be any local user's, and a Linux abstract
# socket (@name) has no permissions (attack 4, F17; /tmp is no standard folder: attack 5, G6)
FOREIGN_SOCKETS = ["host=/tmp/someone_elses_dir dbname=x user=alice", "postgresql:///x?host=/tmp/evil",
                   "postgresql://alice@%2Ftmp%2Fevil/x", "host=@abstract_sock dbname=x",
                   "host=/home/bob/sock dbname=x", "host=/var/run/postgresql/../../tmp/evil dbname=x",
                   "host=/TMP dbname=x", "host=/run/postgresql,/tmp/evil dbname=x",
                   "host=/tmp dbname=x", "postgresql:///x?host=/tmp", "host=/tmp/ port=5999 dbname=x"]


@pytest.mark.parametrize("value", FOREIGN_DBS + FOREIGN_SOCKETS)
def test_a_project_dotenv_cannot_send_your_database_password_to_its_host(tmp_path, monkeypatch, value):
    from llmlab import ConfigError

    monkeypatch.setenv("PGPASSWORD", PW)
    (tmp_path / ".env").write_text(f"LLMLAB_DB={value}\n")
    with pytest.raises(ConfigError, match="LLMLAB_TRUSTED_HOSTS") as info:
        Lab(base_url="http://127.0.0.1:9/v1")
    assert "password" in str(info.value) and ("alice" in str(info.value) or "alice" not in value)
    _no_pw(str(info.value))


@pytest.mark.parametrize("value", FOREIGN_DBS[:4])
def test_a_project_pyproject_cannot_choose_a_foreign_database(tmp_path, monkeypatch, shell, capsys, value):
    from llmlab.magics import load_ipython_extension

    (tmp_path / "pyproject.toml").write_text(f"[tool.llmlab]\ndb = {value!r}\n")
    load_ipython_extension(shell)
    err = capsys.readouterr().err
    assert "ignoring db from ./pyproject.toml" in err and "evil.example" in err
    magics = shell.magics_manager.registry["LLMMagics"]
    assert magics.settings.db is None


def test_a_project_database_on_this_machine_is_used_and_a_trusted_host_is_allowed(tmp_path, monkeypatch):
    from llmlab.base._config import check_project_database
    from llmlab.store._open import check_chosen_db

    for local in ["postgresql://alice@localhost/x", "postgresql://alice@127.0.0.1:5433/x", "host=/var/run/postgresql",
                  "postgresql://alice@[::1]/x", "dbname=x", "sqlite:///x.sqlite", "x.sqlite"]:
        check_chosen_db(local, "./.env")
    monkeypatch.setenv("LLMLAB_TRUSTED_HOSTS", "evil.example,prod")
    check_chosen_db("postgresql://alice@evil.example/x", "./.env")
    check_chosen_db("service=prod", "./.env")
    check_project_database("x", ("evil.example",), "alice", None, "./.env")


@pytest.mark.parametrize("url", ["http://evil.example/v1", "https://evil.example:8443/v1", "http://10.0.0.5/v1",
                                 "http://127.0.0.1.evil.example/v1", "http://[2001:db8::1]/v1"])
def test_a_project_file_cannot_send_your_prompts_to_a_foreign_endpoint(tmp_path, monkeypatch, shell, capsys, url):
    from llmlab import ConfigError
    from llmlab.magics import load_ipython_extension

    (tmp_path / ".env").write_text(f"LLMLAB_BASE_URL={url}\n")
    with pytest.raises(ConfigError, match="LLMLAB_TRUSTED_HOSTS"):
        Lab(db=":memory:")
    (tmp_path / ".env").unlink()
    (tmp_path / "pyproject.toml").write_text(f"[tool.llmlab]\nbase_url = {url!r}\n")
    load_ipython_extension(shell)
    assert "ignoring base_url from ./pyproject.toml" in capsys.readouterr().err
    import urllib.parse

    parts = urllib.parse.urlsplit(url)  # an entry names an origin: scheme, host and port
    monkeypatch.setenv("LLMLAB_TRUSTED_HOSTS", f"{parts.scheme}://{parts.netloc}")
    (tmp_path / ".env").write_text(f"LLMLAB_BASE_URL={url}\n")
    Lab(db=":memory:").close()  # the user's own setting names the host


@pytest.mark.parametrize("password", ["chooses", "LLMLAB_TRUSTED_HOSTS", "every%20prompt%20with%20the%20key",
                                      "PostgreSQL"])
@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1"])
def test_a_project_files_url_password_cannot_blank_words_out_of_llmlabs_messages(tmp_path, password, host):
    # The "secret" in a URL a cloned repo chose is the repo's, not the user's: remembered as one, it
    # would redact its 3-character pieces out of the trust notice and of every later message.
    from llmlab import ConfigError
    from llmlab.base._display import clean_text

    (tmp_path / ".env").write_text(f"LLMLAB_BASE_URL=http://x:{password}@{host}/v1\n")
    if host == "127.0.0.1":
        Lab(db=":memory:").close()
    else:
        with pytest.raises(ConfigError) as refused:
            Lab(db=":memory:")
        notice = str(refused.value)
        assert "./.env chooses the endpoint http://evil.example/v1" in notice and "every prompt" in notice
        assert "add http://evil.example to LLMLAB_TRUSTED_HOSTS" in notice and "[redacted]" not in notice
    message = "cannot open run log host=db: the PostgreSQL URL chooses every prompt with the key"
    assert clean_text(message) == message


# --------------------------------------------------------------------------- 8. re-entry

REENTRY = {
    "compare": lambda lab: lab.compare("again", models=["m"]),
    "sweep": lambda lab: lab.sweep(["x"], models=["m"], progress=False),
    "complete": lambda lab: lab.complete("again", models=["m"]),
    "route": lambda lab: lab.route("again", policy=__import__("llmlab.routing", fromlist=["Always"]).Always("m")),
    "list_models": lambda lab: lab.list_models(),
    "close": lambda lab: lab.close(),
    "submit_compare.result": lambda lab: lab.submit_compare("again", models=["m"]).result(),
    "submit_compare.result(timeout)": lambda lab: lab.submit_compare("again", models=["m"]).result(timeout=None),
    "submit_compare.exception": lambda lab: lab.submit_compare("again", models=["m"]).exception(),
    "submit_sweep.result": lambda lab: lab.submit_sweep(["x"], models=["m"], progress=False).result(),
    "submit_complete.result": lambda lab: lab.submit_complete("again", models=["m"]).result(),
}


@pytest.mark.parametrize("kind", ["start", "delta", "done", "error"])
@pytest.mark.parametrize("call", sorted(REENTRY))
def test_blocking_on_the_labs_own_loop_from_on_event_is_an_error_not_a_deadlock(tmp_path, call, kind):
    import threading
    import warnings

    from llmlab import InputError

    with FakeServer({"m": ModelSpec(text="hi there"), "bad": ModelSpec(status=400)}) as srv:
        lab = Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite", retries=0)
        caught: list[BaseException] = []

        def callback(event):
            if event.kind == kind and not caught:
                try:
                    REENTRY[call](lab)
                except BaseException as exc:  # noqa: BLE001 - recorded for the assertions
                    caught.append(exc)

        box: dict = {}

        def run():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                box["res"] = lab.compare("Hi", models=["m", "bad"], on_event=callback)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(30)
        assert not thread.is_alive(), f"{call} from on_event({kind}) deadlocked"
        assert len(caught) == 1 and isinstance(caught[0], InputError), caught
        assert "own event-loop thread" in str(caught[0]) and "\n" not in str(caught[0])
        assert set(box["res"].df["status"]) == {"ok", "error"}
        assert lab.compare("after", models=["m"]).df["status"].iloc[0] == "ok"  # the Lab still works
        lab.close()


# --------------------------------------------------------------------------- weak: the embedded endpoint as a string

def test_the_embedded_endpoint_gets_no_key_however_its_url_is_written(tmp_path, monkeypatch):
    from fakeserver import auth_fingerprint

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("GATEWAY_KEY", KEY)
    sent_key = auth_fingerprint(f"Bearer {KEY}")
    with FakeServer({"m": ModelSpec(text="hi")}, embedded=True) as srv:
        port = srv.port
        forms = [srv.base_url, f"http://127.0.0.1:{port}/v1", f"http://localhost:{port}/v1", f"http://127.0.0.1:{port}/v1/",
                 f"http://LOCALHOST:{port}/v1"]
        for url in forms:
            for kwargs in ({}, {"api_key_env": "GATEWAY_KEY"}):
                with Lab(base_url=url, db=":memory:", **kwargs) as lab:
                    assert lab.compare("Hi", models=["m"]).df["status"].iloc[0] == "ok", url
                    assert lab.api_key_env is None
        monkeypatch.setenv("LLMLAB_BASE_URL", f"http://localhost:{port}/v1")
        with Lab(db=":memory:") as lab:
            lab.compare("Hi", models=["m"])
        assert sent_key not in {r.auth_sha256 for r in srv.requests}
    with FakeServer({"m": ModelSpec(text="hi")}) as other:  # any other local server still gets its key
        with Lab(base_url=other.base_url, db=":memory:") as lab:
            lab.compare("Hi", models=["m"])
        assert sent_key in {r.auth_sha256 for r in other.requests}


# --------------------------------------------------------------------------- weak: a locked log, a killed backend

def _hold_lock(path, seconds: float | None, started, release=None) -> None:
    """Hold the log's write lock for ``seconds``, or (None) until ``release`` is set: a lock held
    past the wait limit is let go once the test saw the limit end the wait, not after a time the
    waiting side might not reach first on a loaded machine."""
    import sqlite3
    import time

    db = sqlite3.connect(path, isolation_level=None, timeout=30)
    db.execute("BEGIN EXCLUSIVE")
    started.set()
    if seconds is None:
        release.wait(60)
    else:
        time.sleep(seconds)
    db.execute("ROLLBACK")
    db.close()


@pytest.fixture
def short_waits(monkeypatch):
    """The busy timeout and the wait limit scaled down (30 s and 120 s in use) so a test can hold
    a lock past both in a few seconds."""
    import llmlab.store._base as base
    import llmlab.store._sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_S", 0.3)
    monkeypatch.setattr(base, "LOG_WAIT_S", 2.0)


@pytest.fixture
def long_limit(short_waits, monkeypatch):
    """For a lock held past the busy timeout but let go within the limit: the busy timeout short,
    the limit far above the hold (a loaded machine may wake the holder late)."""
    import llmlab.store._base as base

    monkeypatch.setattr(base, "LOG_WAIT_S", 60.0)


def _hold_lock_elsewhere(path, seconds: float | None):
    """Another process holds the log's write lock for ``seconds``, or (None) until a line on its
    stdin (returned once it holds it)."""
    import subprocess
    import sys

    # umask 077: a fresh file is owner-only, as another llmlab makes it (a log others can read is refused)
    code = ("import os, sqlite3, sys, time; os.umask(0o077); "
            "db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30); "
            "db.execute('BEGIN EXCLUSIVE'); print('held', flush=True); "
            "time.sleep(float(sys.argv[2])) if sys.argv[2] != 'gate' else sys.stdin.readline(); "
            "db.execute('ROLLBACK')")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path), "gate" if seconds is None else str(seconds)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.parametrize("log", ["existing", "fresh"])
@pytest.mark.parametrize("held", [0.8, 1.5])
def test_opening_a_log_another_process_locked_waits_for_it(tmp_path, long_limit, log, held):
    import time

    path = tmp_path / "l.sqlite"
    if log == "existing":
        with Lab(db=path):
            pass
    proc = _hold_lock_elsewhere(path, held)
    t0 = time.monotonic()
    with FakeServer({"m": ModelSpec(text="fine")}) as srv, Lab(base_url=srv.base_url, db=path) as lab:
        waited = time.monotonic() - t0
        assert lab.compare("Hi", models=["m"]).df.iloc[0]["status"] == "ok"
        stored = lab.runs()
    proc.wait(10)
    assert waited > 0.3  # past the busy timeout: the open waited (it used to fail here)
    assert len(stored) == 1


@pytest.mark.parametrize("log", ["existing", "fresh"])
def test_opening_a_log_locked_past_the_limit_is_one_line_store_error(tmp_path, short_waits, log):
    import time

    from llmlab import StoreError

    path = tmp_path / "l.sqlite"
    if log == "existing":
        with Lab(db=path):
            pass
    proc = _hold_lock_elsewhere(path, None)  # held until the open gave up
    t0 = time.monotonic()
    try:
        with pytest.raises(StoreError, match="cannot open run log .*locked") as err:
            Lab(db=path)
        waited = time.monotonic() - t0
    finally:
        proc.communicate("\n", timeout=30)
    assert 1.0 < waited < 20 and "\n" not in str(err.value)  # LOG_WAIT_S (2 s here), not the 30 s busy timeout


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("held", [0.8, 1.6])
def test_a_log_locked_past_the_busy_timeout_keeps_the_answer(tmp_path, long_limit, stream, held):
    import threading

    path = tmp_path / "l.sqlite"
    with FakeServer({"m": ModelSpec(text="kept")}) as srv, Lab(base_url=srv.base_url, db=path, retries=0) as lab:
        started = threading.Event()
        holder = threading.Thread(target=_hold_lock, args=(str(path), held, started))
        holder.start()
        started.wait(5)
        res = lab.compare("Hi", models=["m"], stream=stream)
        holder.join()
        row = res.df.iloc[0]
        assert (row["status"], row["response_text"]) == ("ok", "kept")  # not a LogWriteError
        assert not isinstance(row["error_type"], str) and len(lab.runs()) == 1


def test_a_log_locked_past_the_limit_journals_the_answer_and_the_next_open_stores_it(tmp_path, short_waits):
    import os
    import stat
    import threading

    from llmlab import StoreError

    path = tmp_path / "l.sqlite"
    with FakeServer({"m": ModelSpec(text="kept"), "n": ModelSpec(text="also")}) as srv:
        with Lab(base_url=srv.base_url, db=path, retries=0) as lab:
            started, release = threading.Event(), threading.Event()
            holder = threading.Thread(target=_hold_lock, args=(str(path), None, started, release))
            holder.start()
            started.wait(5)
            try:
                with pytest.raises(StoreError, match="journal") as info:
                    lab.compare("Hi", models=["m", "n"])
            finally:
                release.set()  # held until the wait limit ended the write
                holder.join()
            assert sorted(info.value.result.unlogged["response_text"]) == ["also", "kept"]
            journal = tmp_path / "l.sqlite.llmlab-journal"
            assert journal.is_file() and stat.S_IMODE(os.stat(journal).st_mode) == 0o600
            again = lab.compare("Later", models=["m"])  # the next run's first write replays it
            assert again.df["status"].iloc[0] == "ok"
            assert not journal.exists()
            rows = lab.runs()
        assert sorted(rows["response_text"]) == ["also", "kept", "kept"]
        assert set(rows["status"]) == {"ok"} and not rows["error_type"].notna().any()


def test_a_journal_left_by_a_killed_run_is_stored_when_the_log_opens(tmp_path, short_waits):
    import threading

    from llmlab import StoreError

    path = tmp_path / "l.sqlite"
    with FakeServer({"m": ModelSpec(text="kept")}) as srv:
        lab = Lab(base_url=srv.base_url, db=path, retries=0)
        started, release = threading.Event(), threading.Event()
        holder = threading.Thread(target=_hold_lock, args=(str(path), None, started, release))
        holder.start()
        started.wait(5)
        try:
            with pytest.raises(StoreError):
                lab.compare("Hi", models=["m"])
        finally:
            release.set()  # held until the wait limit ended the write
            holder.join()
        lab._loop_thread.close()  # the process "dies": no close(), no further write
    with Lab(base_url="http://127.0.0.1:9/v1", db=path) as fresh:
        rows = fresh.runs()
    assert list(rows["response_text"]) == ["kept"] and not (tmp_path / "l.sqlite.llmlab-journal").exists()


@pytest.mark.postgres
def test_killed_postgres_backends_are_reconnected_and_the_sweep_goes_on(pg_url):
    import psycopg
    from fixtures_postgres import PG_PASSWORD

    kills = {"n": 0}

    def kill_others(event):
        if event.kind == "done" and kills["n"] < 3:
            kills["n"] += 1
            with psycopg.connect(pg_url, password=PG_PASSWORD, autocommit=True) as conn:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE datname = current_database() AND pid <> pg_backend_pid()")

    prompts = [f"question {i}" for i in range(12)]
    with FakeServer({"m": ModelSpec(text="fine", delay_s=0.01)}) as srv, \
            Lab(base_url=srv.base_url, db=pg_url, retries=0, concurrency=2) as lab:
        res = lab.sweep(prompts, models=["m"], progress=False, on_event=kill_others)
        assert kills["n"] == 3
        assert len(res.df) == 12 and set(res.df["status"]) == {"ok"}
        assert len(lab.runs()) == 12  # reads reconnect too


@pytest.mark.parametrize("stream", [False, True])
def test_the_notebook_html_of_a_huge_answer_is_an_excerpt_and_the_row_keeps_it_all(tmp_path, stream):
    huge = "word " * 100_000  # 500 KB; a 20 MB one inlined whole froze the front end
    with FakeServer({"huge": ModelSpec(text=huge, chunk_words=5000), "ok": ModelSpec(text="fine")}) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite") as lab:
        res = lab.compare("x", models=["huge", "ok"], stream=stream)
    html = res._repr_html_()
    assert len(html) < 20_000 and "498,000 more characters: res.df has them all" in html and "fine" in html
    assert res.df.set_index("requested_model").loc["huge", "response_text"] == huge
