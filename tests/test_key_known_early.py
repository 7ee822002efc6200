"""The key values a Lab, the CLI or the magics will use are known secrets from the start (F7/F8).

Before, the key became known only when a call first built a client, so a fresh Lab's first
``batch_submit(models=[KEY])`` uploaded the key as a model name, ``Lab(db=KEY)`` named a file after
it and CLI messages echoed it. Now every entry point refuses it on its first call, in one line that
never shows it, and nothing is sent or written; a Lab with no key still opens and reads a log.
"""
from __future__ import annotations

import os

import pytest
from fakeserver import FakeServer, ModelSpec
from test_magics import fresh_shell, magics_of

from llmlab import InputError, Lab
from llmlab.cli._main import main
from llmlab.magics import load_ipython_extension

# a vendor-shaped key, and one no credential pattern recognises (only knowing its value refuses it)
KEYS = ["sk-proj-AAAAbbbbCCCCddddEEEEffff1111", "Zq8xWm4pLr7tNv2KhY5s"]
# where the key comes from: a default variable, or one the Lab is told to use
SOURCES = [("LLMLAB_API_KEY", None), ("OPENAI_API_KEY", None), ("MY_GATEWAY_KEY", "MY_GATEWAY_KEY")]


def _sent(srv: FakeServer) -> list:
    """Requests to the OpenAI API (not the embedded-endpoint probe of /llmlab/health)."""
    return [r for r in srv.requests if not r.path.startswith("/llmlab/")]


def _first_calls(key: str):
    yield "batch_submit", lambda lab: lab.batch_submit(["hello"], models=[key])
    yield "sweep(batch)", lambda lab: lab.sweep(["hello"], models=[key + "-x"], batch=True, progress=False)
    yield "compare", lambda lab: lab.compare("hello", models=["m", key])
    yield "sweep", lambda lab: lab.sweep(["hello"], models=[key], progress=False)
    yield "complete", lambda lab: lab.complete("hello", models=["m", f"{key}"])
    yield "compare(system)", lambda lab: lab.compare("hello", models=["m"], system=f"key: {key}")
    yield "compare(stop)", lambda lab: lab.compare("hello", models=["m"], stop=[key])


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("var,api_key_env", SOURCES)
def test_every_first_call_refuses_the_key_and_sends_nothing(monkeypatch, tmp_path, key, var, api_key_env):
    monkeypatch.setenv(var, key)
    with FakeServer({"m": ModelSpec(text="x")}) as srv:
        for name, call in _first_calls(key):
            db = tmp_path / f"{name}.sqlite"
            with Lab(base_url=srv.base_url, api_key_env=api_key_env, db=db, quiet=True, retries=0) as lab:
                with pytest.raises(InputError) as caught:
                    call(lab)
                message = str(caught.value)
                assert "\n" not in message and key not in message, name
                assert "API key" in message or "credential" in message, name
            assert _sent(srv) == [], name  # no model list, no upload, no chat call
            assert key.encode() not in db.read_bytes(), name


@pytest.mark.parametrize("key", KEYS)
def test_a_path_holding_the_key_is_refused_and_no_file_is_made(monkeypatch, tmp_path, key):
    monkeypatch.setenv("LLMLAB_API_KEY", key)
    for db in (key, tmp_path / key / "x.sqlite", f"{tmp_path}/log-{key}.sqlite"):
        with pytest.raises(InputError, match="db holds your API key") as caught:
            Lab(db=db, base_url="http://127.0.0.1:9/v1")
        assert key not in str(caught.value)
    with Lab(db=tmp_path / "log.sqlite", base_url="http://127.0.0.1:9/v1") as lab:
        for path in (tmp_path / f"{key}.parquet", tmp_path / key / "o.parquet"):
            with pytest.raises(InputError, match="path holds your API key"):
                lab.export(path)
        assert key not in repr(lab)
    assert not any(key in name for _, dirs, files in os.walk(tmp_path) for name in dirs + files)


def test_errors_before_the_first_call_never_show_the_key(monkeypatch, tmp_path):
    key = KEYS[1]
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with Lab(db=tmp_path / "log.sqlite", base_url="http://127.0.0.1:9/v1") as lab:
        for call in (lambda: lab.batch_status(key), lambda: lab.compare("x", models=["m"], temperature=key),
                     lambda: lab.sweep(["x"], models=["m"], resume=key)):
            with pytest.raises(InputError) as caught:
                call()
            assert key not in str(caught.value)


def test_a_lab_without_a_key_still_reads_its_log(tmp_path):
    """Resolving early never requires a key: a log opens and reads with none set."""
    with FakeServer({"m": ModelSpec(text="x")}) as srv:
        with Lab(base_url=srv.base_url, api_key_env="", db=tmp_path / "log.sqlite", quiet=True) as lab:
            lab.compare("hi", models=["m"])
    with Lab(base_url="http://127.0.0.1:9/v1", api_key_env="UNSET_VARIABLE", db=tmp_path / "log.sqlite") as lab:
        assert len(lab.runs()) == 1
        assert lab.export(tmp_path / "o.parquet") == 1


CLI_CASES = [
    ["export", "o.parquet", "--db", "{key}"],
    ["export", "o.parquet", "--db={key}"],
    ["export", "o.parquet", "--db", "{log}", "--run-id", "{key}"],
    ["export", "{key}.parquet", "--db", "{log}"],
    ["export", "o.parquet", "--db", "{log}", "--model", "{key}"],
    ["batch", "submit", "prompts.csv", "--models", "{key}", "--db", "{log}", "--base-url", "{url}"],
    ["batch", "submit", "prompts.csv", "--models", "m", "--tools", "{key}", "--db", "{log}", "--base-url", "{url}"],
    ["batch", "submit", "prompts.csv", "--models", "m", "--system", "my key {key}", "--db", "{log}"],
    ["batch", "status", "{key}", "--db", "{log}"],
    ["batch", "status", "--db", "{log}", "--api-key-env", "OTHER_KEY", "--bogus-{other}"],
    ["{key}"],
]


@pytest.mark.parametrize("case", CLI_CASES, ids=lambda c: " ".join(c)[:40])
@pytest.mark.parametrize("key", KEYS)
def test_the_cli_refuses_the_key_in_any_argument_before_parsing(monkeypatch, tmp_path, capsys, case, key):
    other = "Xy7" + key[::-1]
    monkeypatch.setenv("LLMLAB_API_KEY", key)
    monkeypatch.setenv("OTHER_KEY", other)  # named by --api-key-env: known too
    (tmp_path / "prompts.csv").write_text("prompt\nhello\n")
    with FakeServer({"m": ModelSpec(text="x")}) as srv:
        argv = [a.format(key=key, other=other, log=tmp_path / "log.sqlite", url=srv.base_url) for a in case]
        assert main(argv) == 2
        assert _sent(srv) == []
    err = capsys.readouterr().err
    assert err.startswith("llmlab: error: ") and err.count("\n") == 1 and "holds your API key" in err
    assert key not in err and other not in err
    assert not (tmp_path / "log.sqlite").exists() and not (tmp_path / "o.parquet").exists()
    assert not any(key in name for _, dirs, files in os.walk(tmp_path) for name in dirs + files)


def test_the_cli_lets_the_key_travel_in_base_url_userinfo(monkeypatch, tmp_path, capsys):
    key = KEYS[0]
    monkeypatch.setenv("LLMLAB_API_KEY", key)
    with FakeServer({"m": ModelSpec(text="x")}) as srv:
        url = srv.base_url.replace("http://", f"http://u:{key}@")
        code = main(["batch", "status", "--db", str(tmp_path / "log.sqlite"), "--base-url", url])
    out = capsys.readouterr()
    assert code == 0 and key not in out.out + out.err


@pytest.mark.parametrize("line", ["model={key}", "model=m stop={key}", "model=m system='x {key}'"])
def test_the_magics_know_the_key_on_their_first_line(monkeypatch, line):
    key = KEYS[1]
    monkeypatch.setenv("MY_GATEWAY_KEY", key)
    with FakeServer({"m": ModelSpec(text="x")}) as srv:
        sh = fresh_shell()
        load_ipython_extension(sh)
        try:
            sh.run_line_magic("config", f'LLMLab.base_url = "{srv.base_url}"')
            sh.run_line_magic("config", 'LLMLab.api_key_env = "MY_GATEWAY_KEY"')
            from IPython.core.error import UsageError

            with pytest.raises(UsageError) as caught:
                magics_of(sh).llm(line.format(key=key), "hello")
            assert key not in str(caught.value) and "API key" in str(caught.value)
            assert _sent(srv) == []
        finally:
            fresh_shell()
