"""A request part, a db/export path and a name hold a secret by one rule (re-attack 5 G7).

``_validate.holds_secret``: the text holds a secret this process has read iff the redaction every
view applies (``redact_shown``) would change it. The body check (``check_no_secret``), the path
checks (``Lab(db=…)``, exports) and model names and labels (``check_shown_name``) all use it, so
what the log and the views would show as [redacted] — lookalike letters, a combining mark per
letter, %XX / \\uXXXX / &#NN; escapes, halves split by NBSP or a newline, base64, 8 characters of
the key — is never sent. Text that merely holds 3-character fragments of the key by chance (prose,
ids, an image's bytes in a data: URL) is still sent."""
from __future__ import annotations

import base64
import codecs
import itertools
import random
import re
from pathlib import Path

import pytest
from fakeserver import ModelSpec

from llmlab import InputError, Lab
from llmlab.base._credentials import check_no_secret, secret_path
from llmlab.base._redact import redact_shown, remember

KEYS = ["sk-proj-Zq7XvB3mK9tR2wLp8NcY4hJd", "gw-9f3Qx7Lm2Vb8Tz4Rk6Wn1Yc5Hs0"]
_CYRILLIC = str.maketrans("aceopxyKMHTB", "асеорхуКМНТВ")


def _forms(key: str) -> dict[str, str]:
    """The key in every form the views redact: each is refused in every part of a request."""
    half = len(key) // 2
    return {
        "cyrillic lookalikes": key.translate(_CYRILLIC),
        "combining acute on each letter": "".join(c + "\u0301" for c in key),
        "combining dot below on each letter": "".join(c + "\u0323" for c in key),
        "%XX": "".join(f"%{ord(c):02X}" for c in key),
        "\\uXXXX": "".join(f"\\u{ord(c):04x}" for c in key),
        "&#NN;": "".join(f"&#{ord(c)};" for c in key),
        "&#xHH;": "".join(f"&#x{ord(c):x};" for c in key),
        "NBSP in the middle": key[:half] + "\u00a0" + key[half:],
        "newline in the middle": key[:half] + "\n" + key[half:],
        "space in the middle": key[:half] + " " + key[half:],
        "tab in the middle": key[:half] + "\t" + key[half:],
        "reversed": key[::-1],
        "base64": base64.b64encode(key.encode()).decode(),
        "hex": key.encode().hex(),
        "rot13": codecs.encode(key, "rot13"),
        "every letter doubled": "".join(c * 2 for c in key),
        "12 characters of it": key[-12:],  # (a vendor prefix, "sk-proj-", is no secret)
        "one letter changed": key[:-1] + ("X" if key[-1] != "X" else "Y"),
        "upper case": key.upper(),
        "full-width": "".join(chr(ord(c) + 0xFEE0) for c in key),
        "zero-width joined": "\u200b".join(key),
    }


def _parts(text: str):
    """(where the refusal names, the prompt, keyword arguments) for ``text`` in each request part."""
    tool = {"type": "function", "function": {"name": "f", "description": text,
                                             "parameters": {"type": "object", "properties": {}}}}
    yield "system", "hi", {"system": "note " + text}
    yield "the prompt", "note " + text, {}
    yield "messages[0]['content'][1]['text']", [{"role": "user", "content": [
        {"type": "text", "text": "hi"}, {"type": "text", "text": text}]}], {}
    yield "messages[0]['name']", [{"role": "user", "content": "hi", "name": "u " + text}], {}
    yield "parameter tools", "hi", {"tools": [tool]}
    yield "parameter stop", "hi", {"stop": ["x", text + " end"]}
    yield "parameter metadata", "hi", {"metadata": {"note": text}}


@pytest.mark.parametrize("key", KEYS)
def test_every_form_the_views_redact_is_refused_in_every_part_and_nothing_is_sent(serve, tmp_path, monkeypatch,
                                                                                   key):
    monkeypatch.setenv("LLMLAB_API_KEY", key)
    srv = serve({"m": ModelSpec(text="ok")})
    refused = 0
    with Lab(base_url=srv.base_url, db=tmp_path / "r.sqlite", retries=0, quiet=True) as lab:
        for form, text in _forms(key).items():
            assert redact_shown(text) != text, form  # the views show it as [redacted] ...
            for where, prompt, kwargs in _parts(text):  # ... so it is never sent
                with pytest.raises(InputError, match="holds your API key|looks like a credential") as caught:
                    lab.compare(prompt, models=["m"], cache=False, **kwargs)
                message = str(caught.value)
                assert where.split("[")[0] in message and key not in message and "\n" not in message, (form, where)
                refused += 1
        assert lab.compare("an ordinary prompt", models=["m"], cache=False).df.status.tolist() == ["ok"]
    assert refused == len(_forms(key)) * 7
    assert len([r for r in srv.requests if r.path.endswith("/chat/completions")]) == 1
    assert key.encode() not in (tmp_path / "r.sqlite").read_bytes()


def _prose(rnd: random.Random, words: list[str]) -> str:
    return " ".join(rnd.choice(words) for _ in range(rnd.randint(3, 60)))


def _fragments(rnd: random.Random, key: str) -> str:
    """3-character pieces of the key far apart in ordinary words: what any text holds by chance."""
    pieces = [key[i:i + 3] for i in rnd.sample(range(len(key) - 2), 3)]
    return (" word " * 12).join(pieces)


def test_a_body_is_refused_exactly_when_the_views_would_redact_it():
    """One predicate, both ways, over 2,000 generated texts per key: the key's forms embedded in
    prose (each refused) and prose, README words, ids, hashes and chance fragments (each sent)."""
    words = sorted(set(re.findall(r"[A-Za-z][A-Za-z0-9_-]{1,14}", (Path(__file__).parents[1] / "README.md")
                                  .read_text(encoding="utf-8"))))
    rnd = random.Random(5)
    for key in KEYS:
        remember([key])
        # README words that are pieces of a key remembered so far (its redaction section quotes
        # `-Zq7XvB`, the first key's) are no prose: "obj Zq7XvB" is 8 characters of that key
        runs = {k[i:i + 6].lower() for k in KEYS[:KEYS.index(key) + 1] for i in range(len(k) - 5)}
        prose_words = [w for w in words if not any(r in w.lower() for r in runs)]
        forms = list(_forms(key).values())
        refused = sent = 0
        for n in range(2000):
            kind = n % 4
            if kind == 0:
                text = _prose(rnd, prose_words) + " " + rnd.choice(forms) + " " + _prose(rnd, prose_words)
            elif kind == 1:
                text = _prose(rnd, prose_words)
            elif kind == 2:
                text = f"id {rnd.randbytes(16).hex()} commit {rnd.randbytes(20).hex()[:12]} {_prose(rnd, prose_words)}"
            else:
                text = _fragments(rnd, key)
            found = secret_path({"messages": [{"content": text}]}, "v") is not None
            assert found == (redact_shown(text) != text), text
            assert found == (kind == 0), text
            refused, sent = refused + found, sent + (not found)
        assert (refused, sent) == (500, 1500)


def test_an_image_is_sent_and_the_key_as_a_data_url_is_not():
    """A data: URL's bytes that are no text (an image) are no text any log reads: 1 MB of random
    bytes holds 3-character pieces of a key by chance, and is still sent; the key as a text data:
    URL (base64 of it, or written plainly after 'base64,') is refused."""
    rnd = random.Random(2)
    for key in KEYS:
        remember([key])
        for size in (10_000, 300_000, 1_000_000):
            image = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + rnd.randbytes(size)).decode()
            assert secret_path([{"type": "image_url", "image_url": {"url": image}}], "m") is None
        for payload in (base64.b64encode(key.encode()).decode(), key, base64.b64encode(b"note: " + key.encode())
                        .decode()):
            part = {"type": "image_url", "image_url": {"url": "data:text/plain;base64," + payload}}
            assert secret_path([{"role": "user", "content": [part]}], "messages") == \
                "messages[0]['content'][0]['image_url']['url']"


@pytest.mark.parametrize(("form", "folder"), [
    ("a letter inserted", lambda k: k[:20] + "x" + k[20:]),
    ("cyrillic", lambda k: k.translate(_CYRILLIC)),
    ("%XX", lambda k: "".join(f"%{ord(c):02X}" for c in k)),
    ("12 characters", lambda k: "backup-" + k[8:20]),
    ("reversed", lambda k: k[::-1]),
])
def test_no_folder_is_made_for_a_db_path_holding_a_near_form_of_the_key(tmp_path, monkeypatch, form, folder):
    key = KEYS[0]
    monkeypatch.setenv("LLMLAB_API_KEY", key)
    target = tmp_path / "runs" / folder(key) / "x.sqlite"
    with pytest.raises(InputError, match="^db holds your API key") as caught:
        Lab(base_url="http://127.0.0.1:9/v1", db=target)
    assert key not in str(caught.value)
    assert not (tmp_path / "runs").exists(), form


def test_check_no_secret_names_the_part_for_every_form_and_wrapper():
    """Forms x wrappers (alone, in a sentence, in quotes, in a JSON string, on its own line)."""
    for key in KEYS:
        remember([key])
        wrappers = ["{}", "my key is {} thanks", '"{}"', '{{"k": "{}"}}', "line one\n{}\nline three"]
        for text, wrapper in itertools.product(_forms(key).values(), wrappers):
            value = wrapper.format(text)
            with pytest.raises(InputError, match=r"^system holds your API key"):
                check_no_secret(value, "system")


@pytest.mark.parametrize("text", ["Error code: 401 - Incorrect API key provided: sk-proj-****************.",
                                  "my key starts with sk-proj- is that right?", "keys look like sk-proj-AAAA…",
                                  "export OPENAI_API_KEY=sk-proj-...", "ghp_ and sk- are key prefixes"])
def test_a_text_naming_only_the_keys_vendor_prefix_is_sent(text):
    """"sk-proj-" is 8 characters of every OpenAI project key and of every error message quoting
    one: the views may blank it, but a prompt asking about it holds nothing secret."""
    remember([KEYS[0], "ghp_" + KEYS[1]])
    check_no_secret({"messages": [{"content": text}]}, "messages")
    for form in (KEYS[0], KEYS[0][8:], "sk-proj-" + KEYS[0][8:16], KEYS[1]):
        with pytest.raises(InputError):
            check_no_secret({"messages": [{"content": text + " " + form}]}, "messages")
