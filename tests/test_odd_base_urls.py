"""A base_url that is no URL the SDK can send to — from an argument, the environment, ./.env or
pyproject.toml — is one ConfigError line before anything is sent, never a raw ValueError from the
trust check or httpx.InvalidURL from the first call (re-attack 5, G9)."""
from __future__ import annotations

import pytest

from llmlab import ConfigError, Lab
from llmlab.base._validate import check_url

ODD = ["http://[::1/v1", "http://127.0.0.1:9x/v1", "http://127.0.0.1:99999/v1", "http://127.0.0.1:0/v1",
       "http://127.0.0.1:8000/v1\x1b[31m", "http://127.0.0.1:8000/v\x00", "http://127.0.0.1:8000/v1\u202e",
       "http://127.0.0.1:8000/" + "a" * 70_000, "http://:8000/v1"]


@pytest.mark.parametrize("url", ODD, ids=range(len(ODD)))
def test_an_odd_url_is_one_config_error(url):
    with pytest.raises(ConfigError) as info:
        check_url(url)
    message = str(info.value)
    assert "\n" not in message and "not an http(s) URL" in message and "\x1b" not in message and "\x00" not in message


@pytest.mark.parametrize("url", ODD[:3], ids=range(3))
@pytest.mark.parametrize("where", ["argument", "dotenv"])
def test_lab_refuses_it_wherever_it_comes_from(tmp_path, monkeypatch, url, where):
    monkeypatch.chdir(tmp_path)
    if where == "dotenv":
        (tmp_path / ".env").write_text(f"LLMLAB_BASE_URL={url}\n")
        monkeypatch.delenv("LLMLAB_BASE_URL", raising=False)
        monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="not an http"):
        Lab(base_url=url if where == "argument" else None, db=tmp_path / "l.sqlite")


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/v1", "https://api.openai.com/v1", "http://[::1]:8000/v1",
                                 "https://gw.example/v1?api-version=2024-06-01", "http://localhost/v1/"])
def test_ordinary_urls_still_pass(url):
    assert check_url(url) == url.rstrip("/")
