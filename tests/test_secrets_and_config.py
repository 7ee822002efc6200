"""Configuration precedence, and the API key value never appearing anywhere."""
from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
from fakeserver import FakeServer, ModelSpec

import llmlab
from llmlab import ConfigError, Lab
from llmlab.base._config import resolve_endpoint

SECRET = "sk-live-THISISASECRETVALUE-0123456789abcdef"


def test_base_url_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://openai-var:1/v1")
    assert resolve_endpoint().base_url == "http://openai-var:1/v1"
    monkeypatch.setenv("LLMLAB_BASE_URL", "http://llmlab-var:1/v1/")
    assert resolve_endpoint().base_url == "http://llmlab-var:1/v1"
    assert resolve_endpoint("http://explicit:1/v1").base_url == "http://explicit:1/v1"


def test_dotenv_supplies_url_and_key_name(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("# comment\nLLMLAB_BASE_URL=https://dotenv:9/v1\n"
                                   f"export LLMLAB_API_KEY='{SECRET}'\n")
    with pytest.raises(llmlab.ConfigError, match="LLMLAB_TRUSTED_HOSTS"):  # a project file's host off this machine
        resolve_endpoint()
    monkeypatch.setenv("LLMLAB_TRUSTED_HOSTS", "other, dotenv:9")  # the user's own setting names its origin
    endpoint = resolve_endpoint()
    # The endpoint came from ./.env: its key is read from that same file only.
    assert endpoint == llmlab.base._config.Endpoint("https://dotenv:9/v1", "LLMLAB_API_KEY", key_from_dotenv=True)
    assert SECRET not in repr(endpoint)


def test_key_variable_order(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    assert resolve_endpoint("http://h/v1").api_key_env == "OPENAI_API_KEY"
    monkeypatch.setenv("LLMLAB_API_KEY", "y")
    assert resolve_endpoint("http://h/v1").api_key_env == "LLMLAB_API_KEY"
    assert resolve_endpoint("http://h/v1", "MY_GATEWAY_KEY").api_key_env == "MY_GATEWAY_KEY"


def test_key_value_passed_as_variable_name_is_refused_without_echo():
    with pytest.raises(ConfigError) as info:
        Lab(base_url="http://h/v1", api_key_env=SECRET, db=":memory:")
    assert SECRET not in str(info.value) and "NAME" in str(info.value)


def test_bad_base_url():
    with pytest.raises(ConfigError, match="not an http"):
        Lab(base_url="localhost:4000", db=":memory:")


def test_missing_key_variable_is_a_clear_error(monkeypatch):
    with FakeServer({"m": ModelSpec()}) as srv:
        lab = Lab(base_url=srv.base_url, api_key_env="NOT_SET_ANYWHERE", db=":memory:")
        with pytest.raises(ConfigError, match="NOT_SET_ANYWHERE is not set"):
            lab.compare("Hi", models=["m"])
        lab.close()


def test_no_endpoint_and_no_local_engine_names_the_settings(monkeypatch):
    monkeypatch.setitem(sys.modules, "llmlab.local", None)  # as if the [local] extra were missing
    lab = Lab(db=":memory:")
    with pytest.raises(ConfigError) as info:
        lab.compare("Hi", models=["m"])
    message = str(info.value)
    assert "LLMLAB_BASE_URL" in message and "base_url" in message and 'pip install -e ".[local]"' in message
    assert "\n" not in message


def test_key_never_appears_anywhere(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("GATEWAY_KEY", SECRET)
    db = tmp_path / "log.sqlite"
    models = {"good": ModelSpec(text="fine"), "nope": ModelSpec(status=500)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with FakeServer(models, api_key=SECRET) as srv:
            lab = Lab(base_url=srv.base_url, api_key_env="GATEWAY_KEY", db=db, retries=0)
            ok = lab.compare("Hi", models=["good", "nope", "unknown-model"])
            wrong = Lab(base_url=srv.base_url, api_key_env="OTHER_KEY", db=db, retries=0)
            monkeypatch.setenv("OTHER_KEY", SECRET[:-4] + "XXXX")  # a near-miss key: server echoes a fragment
            denied = wrong.compare("Hi", models=["good"], cache=False)
            print(lab, wrong, ok, denied, ok.summary(), ok.df.to_string(), denied.df.to_string())
            print(ok._repr_html_())
            lab.close(), wrong.close()
    assert ok.df.iloc[0]["status"] == "ok" and ok.df.iloc[0]["api_key_env"] == "GATEWAY_KEY"
    assert denied.df.iloc[0]["error_type"] == "AuthenticationError"
    assert "Incorrect API key" in denied.df.iloc[0]["error_message"]
    out = capsys.readouterr()
    fragments = [SECRET, SECRET[:8], SECRET[-8:], SECRET[-4:], "XXXX"]
    blob = db.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("log.sqlite*"))
    for fragment in fragments:
        for text in (out.out, out.err, ok.df.to_csv(), denied.df.to_csv(), *map(str, (w.message for w in caught))):
            assert fragment not in text
        assert fragment.encode() not in blob


def test_public_api_is_exactly_all():
    import types

    # Submodules (llmlab.routing, llmlab.local, …) become attributes once imported; they are
    # namespaces, not names exported by ``from llmlab import *``.
    public = {name for name in dir(llmlab) if not name.startswith("_")
              and not isinstance(getattr(llmlab, name), types.ModuleType)}
    public -= {"annotations"}
    assert public <= set(llmlab.__all__)
    for name in llmlab.__all__:
        if name != "CompareWidget":
            assert getattr(llmlab, name) is not None


def test_import_stays_light():
    code = ("import sys, llmlab; heavy = [m for m in ('matplotlib', 'ipywidgets', 'tiktoken', 'IPython')"
            " if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
