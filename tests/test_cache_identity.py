"""The response cache identifies a remote endpoint by the URL its requests go to, not by the
masked URL that is stored and shown: two endpoints that differ only in a part the masked form
hides (a token in the path, a credential in the query, a token host label, a ``;token=`` path
parameter) never share answers. The URL sent is kept only as a hash inside the key; rows keep the
masked URL. A URL with nothing masked that is sent keys exactly as before (existing caches hit);
``user:password@`` and the fragment are never sent, so they never split the cache; nor does the
API key (decided: see the README's cache paragraph).
"""
from __future__ import annotations

import copy
import hashlib
import json
import pickle

import openai
import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import Lab
from llmlab.base._redact import public_url, without_userinfo
from llmlab.engine._runner import Job, RunContext, cache_key

MESSAGES = [{"role": "user", "content": "Name three colors."}]
T1, T2 = "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6", "ffffeeeeddddccccbbbbaaaa99998888"

# (URL with tenant A's secret, the same with tenant B's): equal once masked, different as sent
SECRET_PAIRS = [
    (f"https://gateway.ai.cloudflare.com/v1/{T1}/gw/openai", f"https://gateway.ai.cloudflare.com/v1/{T2}/gw/openai"),
    (f"https://gw.example/tenant/{T1}/v1", f"https://gw.example/tenant/{T2}/v1"),
    ("https://gw.example/v1?api-key=tenantAAAA1234", "https://gw.example/v1?api-key=tenantBBBB5678"),
    ("https://gw.example/v1?token=aaaa1111bbbb2222", "https://gw.example/v1?token=cccc3333dddd4444"),
    (f"https://{T1}.gateway.example/v1", f"https://{T2}.gateway.example/v1"),
    (f"https://gw.example/v1;token={T1}", f"https://gw.example/v1;token={T2}"),
    (f"https://u:pw@gw.example/{T1}/v1#x", f"https://u:pw@gw.example/{T2}/v1#x"),
]
# URLs whose sent form has nothing masked: keyed on the stored URL, byte-for-byte as before
PLAIN_URLS = ["https://api.openai.com/v1", "https://gateway.example/v1", "http://127.0.0.1:41001/v1",
              "http://localhost:4000/v1", "https://openrouter.ai/api/v1", "https://gw.example/v1?api-version=2024-06-01",
              "https://alice:pw@gw.example/v1", "https://gw.example/v4#frag1", "https://gw.example/openai/deployments/gpt4o"]


def _job(model: str = "m") -> Job:
    return Job(prompt_id="p", prompt=MESSAGES[0]["content"], messages=MESSAGES, models=[model],
               bodies={model: {"model": model, "max_tokens": 16}}, stream=False)


def _context(url: str) -> RunContext:
    """The run context a Lab builds: the stored URL masked, the client given the URL as sent."""
    client = openai.AsyncOpenAI(base_url=without_userinfo(url), api_key="test")
    return RunContext(client=client, store=None, prices=None, counter=None, limiter=None,  # type: ignore[arg-type]
                      retry=None, redact=None, endpoint=public_url(url), api_key_env=None)  # type: ignore[arg-type]


def _old_key(endpoint: str, model: str = "m") -> str:
    """The formula before this rule (and before the embedded endpoint's identities)."""
    payload = json.dumps({"endpoint": endpoint, "model": model, "messages": MESSAGES,
                          "body": {"model": model, "max_tokens": 16}, "stream": False, "repeat": 0},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


@pytest.mark.parametrize(("a", "b"), SECRET_PAIRS)
def test_endpoints_differing_only_in_a_masked_part_never_share_a_key(a, b):
    one, two = _context(a), _context(b)
    assert one.endpoint == two.endpoint  # the stored and shown URL is the same masked text
    assert cache_key(one.endpoint, "m", _job()) != cache_key(two.endpoint, "m", _job())
    # and neither is the old key of the masked URL, which both shared
    assert _old_key(str(one.endpoint)) not in {cache_key(c.endpoint, "m", _job()) for c in (one, two)}


@pytest.mark.parametrize(("a", "b"), SECRET_PAIRS)
def test_the_url_sent_is_never_kept_only_hashed(a, b):
    endpoint = _context(a).endpoint
    secrets = [T1, "tenantAAAA1234", "aaaa1111bbbb2222"]
    for form in (str(endpoint), repr(endpoint), json.dumps(endpoint), pickle.dumps(endpoint).decode("latin-1"),
                 repr(vars(endpoint))):
        assert not any(s in form for s in secrets), form
    for clone in (copy.copy(endpoint), copy.deepcopy(endpoint), pickle.loads(pickle.dumps(endpoint))):
        assert type(clone) is str and clone == endpoint  # a stored or copied row is the masked URL


@pytest.mark.parametrize("url", PLAIN_URLS)
def test_a_url_with_nothing_masked_keys_exactly_as_before(url):
    ctx = _context(url)
    assert type(ctx.endpoint) is str
    assert cache_key(ctx.endpoint, "m", _job()) == _old_key(public_url(url))
    assert cache_key(ctx.endpoint, "gpt-4o", _job("gpt-4o")) == _old_key(public_url(url), "gpt-4o")


def test_what_is_never_sent_never_splits_the_cache():
    """user:password@ (the key goes in its header) and the fragment: the same requests."""
    variants = [f"https://alice:pw1@gw.example/{T1}/v1", f"https://bob:pw2@gw.example/{T1}/v1",
                f"https://gw.example/{T1}/v1", f"https://gw.example/{T1}/v1#one", f"https://gw.example/{T1}/v1#two"]
    assert len({cache_key(_context(u).endpoint, "m", _job()) for u in variants}) == 1
    plain = ["https://alice:pw1@gw.example/v1", "https://bob:pw2@gw.example/v1", "https://gw.example/v1"]
    assert len({cache_key(_context(u).endpoint, "m", _job()) for u in plain}) == 1


def _chat(srv: FakeServer) -> list[str]:
    return [r.path for r in srv.requests if r.path.endswith("/chat/completions")]


def test_a_second_tenant_on_the_same_gateway_is_sent_its_request(tmp_path):
    db = tmp_path / "runs.sqlite"
    with FakeServer({"m": ModelSpec(text="answer")}) as srv:
        root = srv.base_url.removesuffix("/v1")
        for token in (T1, T2, T1):
            with Lab(base_url=f"{root}/gw/{token}/v1", db=db, retries=0) as lab:
                row = lab.compare("Hi", models=["m"]).df.iloc[0]
                assert row["endpoint"] == f"{root}/gw/[redacted]/v1"  # stored masked, as before
        assert _chat(srv) == [f"/gw/{T1}/v1/chat/completions", f"/gw/{T2}/v1/chat/completions"]
        with Lab(base_url=f"{root}/gw/{T2}/v1", db=db, retries=0) as lab:
            assert bool(lab.compare("Hi", models=["m"]).df["cached"].iloc[0])  # each tenant replays its own
            assert len(_chat(srv)) == 2
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("runs.sqlite"))
    assert T1.encode() not in stored and T2.encode() not in stored  # neither the rows nor the keys hold it


def test_a_plain_endpoint_replays_across_labs(tmp_path):
    """Its key is the URL's as before (the formula is checked above), so a later Lab hits."""
    db = tmp_path / "runs.sqlite"
    with FakeServer({"m": ModelSpec(text="answer")}) as srv:
        for _ in range(2):
            with Lab(base_url=srv.base_url, db=db, retries=0) as lab:
                cached = lab.compare("Hi", models=["m"]).df["cached"].iloc[0]
        assert bool(cached) and len(_chat(srv)) == 1


def test_another_key_on_the_same_url_shares_the_cache(tmp_path, monkeypatch):
    """Decided (README): the key says who pays, not what answers — a rotated key, or a teammate
    with their own key on the same gateway, replays the answers stored for that URL."""
    db = tmp_path / "runs.sqlite"
    with FakeServer({"m": ModelSpec(text="answer")}) as srv:
        for key in ("sk-proj-AAAAbbbbCCCCddddEEEEffff1111", "sk-proj-ZZZZyyyyXXXXwwwwVVVVuuuu2222"):
            monkeypatch.setenv("LLMLAB_API_KEY", key)
            with Lab(base_url=srv.base_url, db=db, retries=0) as lab:
                lab.compare("Hi", models=["m"])
        assert len(_chat(srv)) == 1


def test_each_backend_stores_the_masked_url_and_keys_each_tenant_apart(db_url):
    with FakeServer({"m": ModelSpec(text="answer")}) as srv:
        root = srv.base_url.removesuffix("/v1")
        for token in (T1, T2, T2):
            with Lab(base_url=f"{root}/gw/{token}/v1", db=db_url, retries=0) as lab:
                lab.compare("Hi", models=["m"])
                rows = lab.runs()
        assert len(_chat(srv)) == 2 and list(rows["cached"]) == [False, False, True]
        assert set(rows["endpoint"]) == {f"{root}/gw/[redacted]/v1"}
