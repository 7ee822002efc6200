"""LLMLAB_TRUSTED_HOSTS names origins, not bare names (re-attack 5, G12): trusting the host of
https://api.corp.example/v1 must not let a cloned repository's ./.env move that endpoint to
http:// (the key in clear) or to another port (another service on the host). A bare host is
https on 443 only; a key never goes to a project file's non-loopback http:// endpoint; the user's
own plain-http endpoint with a key is warned about in one line."""
from __future__ import annotations

import itertools
import re
import warnings

import pytest

from llmlab import ConfigError, Lab
from llmlab.base._config import check_project_endpoint, resolve_endpoint

KEY = "sk-user-Zq7XvB3mK9tR2wLp8NcY4hJd"
HOSTS = ["api.corp.example", "10.0.0.5", "2001:db8::1"]


def _netloc(host: str, upper: bool, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return (shown.upper() if upper else shown) + ("" if port is None else f":{port}")


def _urls(host: str):
    """(url, scheme, effective port) over schemes × written ports × case × userinfo × path."""
    for scheme, port, upper, (user, path) in itertools.product(
            ["http", "https"], [None, 80, 443, 8080, 8443], [False, True], [("", "/v1"), ("u@", "")]):
        effective = port or {"http": 80, "https": 443}[scheme]
        yield f"{scheme}://{user}{_netloc(host, upper, port)}{path}", scheme, effective


def _bare_entries(host: str) -> list[str]:
    """Ways of writing 'this host, over https on 443' in LLMLAB_TRUSTED_HOSTS."""
    bracketed = f"[{host}]" if ":" in host else host
    return [host, host.upper(), f" {host} ", f"{bracketed}:443", f"https://{bracketed}", f"https://{bracketed}:443",
            f"HTTPS://{bracketed.upper()}/", f"other.example, {host}"]


def _key_sources(monkeypatch, source: str) -> str | None:
    """Give the project's endpoint a key the way ``source`` says; the api_key_env to pass."""
    if source == "trusted env key":  # the attacker's case: the user trusts OPENAI_API_KEY for project files
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("LLMLAB_TRUSTED_KEY_VARS", "OPENAI_API_KEY")
    elif source == "named":
        monkeypatch.setenv("MY_KEY", KEY)
        return "MY_KEY"
    return None


def _resolve(tmp_path, url: str, api_key_env: str | None, dotenv_key: bool):
    extra = f"LLMLAB_API_KEY={KEY}\n" if dotenv_key else ""
    (tmp_path / ".env").write_text(f"LLMLAB_BASE_URL={url}\n{extra}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the withheld-key notice is another test's
        return resolve_endpoint(api_key_env=api_key_env)


@pytest.mark.parametrize("source", ["trusted env key", "named", "the .env's own key"])
@pytest.mark.parametrize("host", HOSTS)
def test_a_trusted_bare_host_is_https_on_443_only(tmp_path, monkeypatch, host, source):
    api_key_env = _key_sources(monkeypatch, source)
    wrong, cases = [], list(itertools.product(_bare_entries(host), list(_urls(host))))
    for entry, (url, scheme, port) in cases:
        monkeypatch.setenv("LLMLAB_TRUSTED_HOSTS", entry)
        try:
            endpoint = _resolve(tmp_path, url, api_key_env, source == "the .env's own key")
            outcome = "key" if endpoint.api_key_env else "no key"
        except ConfigError as exc:
            assert "\n" not in str(exc) and KEY not in str(exc)
            outcome = "refused"
        expected = "key" if (scheme, port) == ("https", 443) else "refused"
        if outcome != expected:
            wrong.append((entry, url, outcome))
    assert not wrong, f"{len(wrong)} of {len(cases)}: {wrong[:5]}"


ORIGIN_ENTRIES = {"https://api.corp.example:8443": ("https", 8443), "api.corp.example:8443": ("https", 8443),
                  "http://api.corp.example:8000": ("http", 8000), "http://api.corp.example": ("http", 80),
                  "HTTP://API.CORP.EXAMPLE:8000/": ("http", 8000), "https://api.corp.example:443": ("https", 443)}


@pytest.mark.parametrize("entry", sorted(ORIGIN_ENTRIES))
def test_an_origin_entry_trusts_that_origin_and_http_never_gets_a_key(tmp_path, monkeypatch, entry):
    monkeypatch.setenv("LLMLAB_TRUSTED_HOSTS", entry)
    wrong = []
    for (url, scheme, port), dotenv_key in itertools.product([*_urls("api.corp.example"),
                                                              ("http://api.corp.example:8000/v1", "http", 8000)],
                                                             [False, True]):
        try:
            outcome = "key" if _resolve(tmp_path, url, None, dotenv_key).api_key_env else "no key"
        except ConfigError as exc:
            outcome = "unencrypted" if "unencrypted" in str(exc) else "refused"
        if (scheme, port) != ORIGIN_ENTRIES[entry]:
            expected = "refused"
        else:
            expected = ("unencrypted" if scheme == "http" else "key") if dotenv_key else "no key"
        if outcome != expected:
            wrong.append((url, dotenv_key, outcome))
    assert not wrong, wrong[:5]


@pytest.mark.parametrize("own", ["https://api.corp.example:8443/v1", "https://u@API.corp.example:8443"])
def test_the_users_own_endpoint_adds_its_origin_on_a_trusted_host_only(monkeypatch, own):
    monkeypatch.setenv("OPENAI_BASE_URL", own)
    monkeypatch.setenv("LLMLAB_TRUSTED_HOSTS", "api.corp.example")
    check_project_endpoint("https://api.corp.example:8443/other", "pyproject.toml", "OPENAI_API_KEY")
    check_project_endpoint("https://api.corp.example/v1", "pyproject.toml", "OPENAI_API_KEY")
    for url in ["http://api.corp.example:8443/v1", "https://api.corp.example:8444/v1"]:
        with pytest.raises(ConfigError, match="LLMLAB_TRUSTED_HOSTS"):
            check_project_endpoint(url, "pyproject.toml", None)
    monkeypatch.setenv("LLMLAB_TRUSTED_HOSTS", "https://api.corp.example:9443, other.example")
    with pytest.raises(ConfigError, match="LLMLAB_TRUSTED_HOSTS"):  # the host itself is not trusted
        check_project_endpoint("https://api.corp.example:8443/v1", "pyproject.toml", None)


@pytest.mark.parametrize("url, entry", [("http://evil.example/v1", "http://evil.example"),
                                        ("https://evil.example:8443/v1", "https://evil.example:8443"),
                                        ("http://[2001:db8::1]:8000/v1", "http://[2001:db8::1]:8000"),
                                        ("http://EVIL.example:8080/v1", "http://evil.example:8080")])
def test_the_refusal_names_the_entry_that_would_trust_it(monkeypatch, url, entry):
    with pytest.raises(ConfigError, match=re.escape(f"add {entry} to LLMLAB_TRUSTED_HOSTS")):
        check_project_endpoint(url, "./.env", None)
    monkeypatch.setenv("LLMLAB_TRUSTED_HOSTS", entry)
    check_project_endpoint(url, "./.env", None)  # what it advised is enough (with no key)


def test_lab_and_the_magics_refuse_a_project_http_endpoint_on_a_trusted_host(tmp_path, monkeypatch, capsys):
    from IPython.core.interactiveshell import InteractiveShell

    from llmlab.magics import load_ipython_extension, unload_ipython_extension

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("LLMLAB_TRUSTED_KEY_VARS", "OPENAI_API_KEY")
    monkeypatch.setenv("LLMLAB_TRUSTED_HOSTS", "http://api.corp.example")
    (tmp_path / ".env").write_text("LLMLAB_BASE_URL=http://api.corp.example/v1\n")
    with pytest.raises(ConfigError, match="OPENAI_API_KEY would travel unencrypted"):
        Lab(db=":memory:")
    (tmp_path / ".env").unlink()
    (tmp_path / "pyproject.toml").write_text("[tool.llmlab]\nbase_url = 'http://api.corp.example/v1'\n")
    shell = InteractiveShell.instance()
    unload_ipython_extension(shell)
    try:
        load_ipython_extension(shell)
        err = capsys.readouterr().err
        assert "ignoring base_url from ./pyproject.toml" in err and "unencrypted" in err and KEY not in err
    finally:
        unload_ipython_extension(shell)
        shell.config.pop("LLMLab", None)


def _plain_http_warnings(monkeypatch, how: str, url: str, key: str) -> list[str]:
    monkeypatch.setenv(key, KEY)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if how == "argument":
            resolve_endpoint(url, None if key == "OPENAI_API_KEY" else key)
        else:
            monkeypatch.setenv(how, url)
            resolve_endpoint(None, None if key == "OPENAI_API_KEY" else key)
    return [str(w.message) for w in caught if "plain http" in str(w.message)]


LOCAL_OR_HTTPS = ["https://api.openai.com/v1", "http://127.0.0.1:4000/v1", "http://localhost:8000/v1",
                  "http://[::1]:8000/v1", "http://127.8.9.10/v1"]


@pytest.mark.parametrize("how", ["argument", "LLMLAB_BASE_URL", "OPENAI_BASE_URL"])
@pytest.mark.parametrize("key", ["OPENAI_API_KEY", "MY_GATEWAY_KEY"])
@pytest.mark.parametrize("url", ["http://api.openai.com/v1", "http://10.0.0.5:8000/v1", "http://[2001:db8::1]/v1",
                                 "http://u:pw@lan-box:8000"])
def test_the_users_own_plain_http_endpoint_with_a_key_is_one_warning(monkeypatch, how, key, url):
    found = _plain_http_warnings(monkeypatch, how, url, key)
    assert len(found) == 1 and "\n" not in found[0] and key in found[0] and KEY not in found[0]
    assert "pw" not in found[0].split("unencrypted")[0].split("//")[1].split("/")[0]  # no userinfo shown
    # https, this machine, or no key: nothing to say
    assert all(_plain_http_warnings(monkeypatch, how, other, key) == [] for other in LOCAL_OR_HTTPS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert resolve_endpoint(url, "").api_key_env is None
    assert not [w for w in caught if "plain http" in str(w.message)]
