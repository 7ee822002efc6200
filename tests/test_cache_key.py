"""The response cache's key: the embedded endpoint is identified by the models it serves (GGUF
digest and size, chat format, context size), not by the port it gets each session; any other
endpoint by its URL, exactly as before (existing caches keep hitting).

Fast tests build keys from real identities of small GGUF-like files; the ``slow`` one runs the
real embedded endpoint twice, on two ports, and checks that the second Lab replays the first's
answer while each row keeps its own real URL.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import pickle
from pathlib import Path

import pytest
from fakeserver import FakeServer, ModelSpec
from fixtures_local import local_endpoint_available

from llmlab import Lab
from llmlab.engine._runner import Job, cache_key
from llmlab.local._identity import EmbeddedURL, model_identities
from llmlab.local._models import ModelSpec as LocalSpec

MESSAGES = [{"role": "user", "content": "Name three colors."}]


def _job(model: str = "m", *, stream: bool = False, body: dict | None = None) -> Job:
    return Job(prompt_id="p", prompt=MESSAGES[0]["content"], messages=MESSAGES, models=[model],
               bodies={model: {"model": model, "max_tokens": 16, **(body or {})}}, stream=stream)


def _gguf(path: Path, body: bytes) -> Path:
    path.write_bytes(b"GGUF" + body)
    return path


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_MODEL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _identities(tmp_path: Path, *specs: tuple[str, bytes, str | None], n_ctx: int = 2048) -> dict:
    files = [LocalSpec(alias, _gguf(tmp_path / f"{alias}-{hashlib.sha256(body).hexdigest()[:8]}.gguf", body), fmt)
             for alias, body, fmt in specs]
    return model_identities(files, n_ctx=n_ctx)


PORTS = [("127.0.0.1", 41001), ("127.0.0.1", 52777), ("localhost", 41001), ("127.0.0.1", 8080)]


@pytest.mark.parametrize("stream", [False, True])
def test_one_local_model_keys_the_same_on_every_port(tmp_path, cache_dir, stream):
    identities = _identities(tmp_path, ("m", b"weights-1" * 50, "chatml"), ("other", b"weights-2" * 50, None))
    for model in ("m", "other"):
        keys = {cache_key(EmbeddedURL(f"http://{host}:{port}/v1", identities), model, _job(model, stream=stream))
                for host, port in PORTS}
        assert len(keys) == 1, model
    # ... also when the other server serves fewer models: the identity is the model's, not the server's
    alone = {"m": identities["m"]}
    assert (cache_key(EmbeddedURL("http://127.0.0.1:1/v1", alone), "m", _job())
            == cache_key(EmbeddedURL("http://127.0.0.1:2/v1", identities), "m", _job()))


def test_what_changes_the_answers_changes_the_key(tmp_path, cache_dir):
    url = "http://127.0.0.1:41001/v1"
    base = _identities(tmp_path, ("m", b"A" * 400, "chatml"))
    variants = {
        "other weights, same size": _identities(tmp_path, ("m", b"B" * 400, "chatml")),
        "one byte differs": _identities(tmp_path, ("m", b"A" * 399 + b"Z", "chatml")),
        "longer file": _identities(tmp_path, ("m", b"A" * 401, "chatml")),
        "other chat format": _identities(tmp_path, ("m", b"A" * 400, None)),
        "other context size": _identities(tmp_path, ("m", b"A" * 400, "chatml"), n_ctx=4096),
    }
    keys = {name: cache_key(EmbeddedURL(url, ids), "m", _job()) for name, ids in variants.items()}
    keys["base"] = cache_key(EmbeddedURL(url, base), "m", _job())
    assert len(set(keys.values())) == len(keys), keys
    # the request still counts as before: another body, another key
    assert cache_key(EmbeddedURL(url, base), "m", _job(body={"temperature": 0.5})) != keys["base"]


def test_remote_endpoints_key_on_their_url_as_before():
    urls = ["https://api.openai.com/v1", "https://gateway.example/v1", "http://127.0.0.1:41001/v1",
            "http://127.0.0.1:52777/v1", "http://localhost:4000/v1"]
    job = _job()
    keys = [cache_key(url, "m", job) for url in urls]
    assert len(set(keys)) == len(urls)
    for url, key in zip(urls, keys, strict=True):  # the pre-identity formula: an existing cache still hits
        payload = json.dumps({"endpoint": url, "model": "m", "messages": MESSAGES,
                              "body": {"model": "m", "max_tokens": 16}, "stream": False, "repeat": 0},
                             sort_keys=True, default=str)
        assert key == hashlib.sha256(payload.encode()).hexdigest()


def test_a_name_the_embedded_endpoint_does_not_serve_keys_on_its_url(tmp_path, cache_dir):
    identities = _identities(tmp_path, ("m", b"w" * 100, None))
    one, two = (EmbeddedURL(f"http://127.0.0.1:{port}/v1", identities) for port in (41001, 41002))
    assert cache_key(one, "gpt-4o", _job("gpt-4o")) != cache_key(two, "gpt-4o", _job("gpt-4o"))
    assert cache_key(one, "gpt-4o", _job("gpt-4o")) == cache_key(str(one), "gpt-4o", _job("gpt-4o"))


def test_the_embedded_url_is_its_url_everywhere_else(tmp_path, cache_dir):
    identities = _identities(tmp_path, ("m", b"w" * 100, None))
    url = EmbeddedURL("http://127.0.0.1:41001/v1", identities)
    assert url == "http://127.0.0.1:41001/v1" and json.dumps(url) == '"http://127.0.0.1:41001/v1"'
    for clone in (copy.deepcopy(url), copy.copy(url), pickle.loads(pickle.dumps(url))):
        assert type(clone) is str and clone == url  # a stored or copied row never carries identities
    url.cache_identity("m")["gguf_sha256"] = "tampered"
    assert url.cache_identity("m") == identities["m"]


def test_a_model_file_is_hashed_once_and_again_when_it_changes(tmp_path, cache_dir):
    path = _gguf(tmp_path / "m.gguf", b"x" * 1000)
    said: list[str] = []
    first = model_identities([LocalSpec("m", path, None)], n_ctx=2048, say=said.append)
    again = model_identities([LocalSpec("m", path, None)], n_ctx=2048, say=said.append)
    assert first == again and len(said) == 1 and "hashing" in said[0]
    assert first["m"]["gguf_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert json.loads((cache_dir / "identities.json").read_text())[str(path)]["sha256"] == first["m"]["gguf_sha256"]
    _gguf(path, b"y" * 1000)  # same size, new content: the new mtime forces a new hash
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))
    changed = model_identities([LocalSpec("m", path, None)], n_ctx=2048, say=said.append)
    assert len(said) == 2 and changed["m"]["gguf_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert changed != first


def test_an_unwritable_model_cache_still_gives_identities(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("LLMLAB_MODEL_CACHE", str(blocker / "cache"))
    path = _gguf(tmp_path / "m.gguf", b"x" * 100)
    assert model_identities([LocalSpec("m", path, None)], n_ctx=2048)["m"]["gguf_bytes"] == 104


def test_two_remote_servers_never_share_answers(tmp_path):
    db = tmp_path / "runs.sqlite"
    with FakeServer({"m": ModelSpec(text="one")}) as first, FakeServer({"m": ModelSpec(text="two")}) as second:
        with Lab(base_url=first.base_url, db=db) as lab:
            assert lab.compare("Hi", models=["m"]).df.loc[0, "response_text"] == "one"
        with Lab(base_url=second.base_url, db=db) as lab:
            row = lab.compare("Hi", models=["m"]).df.iloc[0]
            assert not row["cached"] and row["response_text"] == "two"
            assert lab.compare("Hi", models=["m"]).df.iloc[0]["cached"]  # its own answer is cached


@pytest.mark.slow
@pytest.mark.skipif(not local_endpoint_available(), reason="needs the [local] extra (./dev setup)")
def test_an_embedded_answer_is_replayed_by_a_lab_on_another_port(tmp_path, local_server, monkeypatch):
    from llmlab.local import start

    db = tmp_path / "runs.sqlite"
    ask = {"models": ["smollm2-135m"], "max_tokens": 12, "temperature": 0}
    with Lab(base_url=local_server.base_url, db=db) as lab:  # every bundled model on one port
        first = lab.compare("Name three colors.", **ask).df.iloc[0]
    assert first["status"] == "ok" and not first["cached"]
    # a key that the embedded endpoint is not sent (random: a key of words would be spelled by this
    # test folder's name, "test_an_embedded_answer…", and the db path refused as holding it)
    monkeypatch.setenv("GATEWAY_KEY", "sk-Q7mZ2xR9vT4kW8pN3cB6yH1jD5fG")
    # ... a new session: only this model, on another port; its URL as the server gives it, or
    # as a string with a key configured (recognised as the embedded endpoint, as for the key)
    with start(models=["smollm2-135m"], quiet=True) as other:
        assert other.port != local_server.port
        for url, key in ((other.base_url, None), (str(other.base_url), "GATEWAY_KEY")):
            with Lab(base_url=url, db=db, api_key_env=key) as lab:
                again = lab.compare("Name three colors.", **ask).df.iloc[0]
            assert again["cached"] and again["cache_of"] == first["id"], url
            assert again["response_text"] == first["response_text"]
            assert again["endpoint"] == other.base_url != first["endpoint"]  # each row: its real URL
