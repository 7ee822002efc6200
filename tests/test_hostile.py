"""Issue 21: nothing runs, leaks or is lost — however hostile the name, the URL, the stream or the
repo. Each class of attack is tried in many generated forms, through the public API, the CLI and
the magics, against real servers on 127.0.0.1 through the real SDK."""
from __future__ import annotations

import itertools
import json

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
