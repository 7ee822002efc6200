"""Round 3 attack F5: a key goes only with an endpoint from the same source. A cloned repository's
./.env key is never paired with an endpoint it did not choose (the user's: an argument, the
environment, %config, the CLI); an endpoint ./.env chooses gets only that file's own key (or one the
user names or trusts), and stays on this machine whichever key goes with it. One resolver decides
(llmlab/base/_config.py resolve_endpoint): Lab(), the %%llm magics and the CLI all build a Lab."""
from __future__ import annotations

import sqlite3
import warnings

import pytest
from fakeserver import FakeServer, ModelSpec, auth_fingerprint
from test_magics import fresh_shell

from llmlab import ConfigError, Lab

USER_KEY = "sk-user-REALKEY9999888877776666555544"
REPO_KEY = "sk-attacker-0000111122223333444455556666"


def bearer(key: str) -> str | None:
    return auth_fingerprint(f"Bearer {key}")


def sent(srv: FakeServer) -> list[str | None]:
    return [r.auth_sha256 for r in srv.requests if r.path.endswith("/chat/completions")]


@pytest.fixture
def srv():
    with FakeServer({"m": ModelSpec(text="ok")}) as server:
        yield server


@pytest.fixture
def shell():
    yield fresh_shell()
    fresh_shell()


def _ask(db, **lab_args) -> list[str]:
    """One call through Lab(); the warnings it gave (as text)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Lab(db=db, quiet=True, **lab_args) as lab:
            lab.compare("my confidential business plan", models=["m"], cache=False)
    return [str(w.message) for w in caught if "price" not in str(w.message)]


@pytest.mark.parametrize("url_var", ["LLMLAB_BASE_URL", "OPENAI_BASE_URL", None])  # None: Lab(base_url=...)
@pytest.mark.parametrize("user_var", ["OPENAI_API_KEY", "LLMLAB_API_KEY"])
@pytest.mark.parametrize("repo_var", ["LLMLAB_API_KEY", "OPENAI_API_KEY"])
def test_your_endpoint_gets_your_key_never_the_dotenv_one(tmp_path, monkeypatch, srv, url_var, user_var, repo_var):
    (tmp_path / ".env").write_text(f"{repo_var}={REPO_KEY}\n")
    monkeypatch.setenv(user_var, USER_KEY)
    if url_var:
        monkeypatch.setenv(url_var, srv.base_url)
    notes = _ask(tmp_path / "l.sqlite", **({} if url_var else {"base_url": srv.base_url}))
    assert sent(srv) == [bearer(USER_KEY)]
    if repo_var != user_var and repo_var == "LLMLAB_API_KEY":  # the .env variable came first: it would have won
        assert len(notes) == 1 and "./.env sets LLMLAB_API_KEY" in notes[0] and user_var in notes[0]
        assert "\n" not in notes[0]
    assert not any(REPO_KEY in n or USER_KEY in n for n in notes)


def test_your_endpoint_without_your_key_gets_none_and_says_why(tmp_path, monkeypatch, srv):
    (tmp_path / ".env").write_text(f"LLMLAB_API_KEY={REPO_KEY}\n")
    monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
    notes = _ask(tmp_path / "l.sqlite")
    assert sent(srv) and bearer(REPO_KEY) not in sent(srv)
    assert len(notes) == 1 and "gets no key" in notes[0] and "api_key_env='LLMLAB_API_KEY'" in notes[0]
    assert REPO_KEY not in notes[0]


@pytest.mark.parametrize("opt_in", ["api_key_env", "trusted"])
def test_you_may_pair_a_dotenv_key_with_your_endpoint(tmp_path, monkeypatch, srv, opt_in):
    (tmp_path / ".env").write_text(f"LLMLAB_API_KEY={REPO_KEY}\n")
    monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
    if opt_in == "trusted":
        monkeypatch.setenv("LLMLAB_TRUSTED_KEY_VARS", "LLMLAB_API_KEY")
    notes = _ask(tmp_path / "l.sqlite", **({"api_key_env": "LLMLAB_API_KEY"} if opt_in == "api_key_env" else {}))
    assert sent(srv) == [bearer(REPO_KEY)] and notes == []


def test_a_dotenv_endpoint_keeps_its_own_dotenv_key(tmp_path, monkeypatch, srv):
    (tmp_path / ".env").write_text(f"LLMLAB_BASE_URL={srv.base_url}\nLLMLAB_API_KEY={REPO_KEY}\n")
    monkeypatch.setenv("OPENAI_API_KEY", USER_KEY)
    _ask(tmp_path / "l.sqlite")
    assert sent(srv) == [bearer(REPO_KEY)]


@pytest.mark.parametrize("api_key_env", ["MY_KEY", ""])
def test_a_dotenv_endpoint_elsewhere_is_refused_whatever_key_goes_with_it(tmp_path, monkeypatch, api_key_env):
    (tmp_path / ".env").write_text("LLMLAB_BASE_URL=https://evil.example.com/v1\n")
    monkeypatch.setenv("MY_KEY", USER_KEY)
    with pytest.raises(ConfigError, match="LLMLAB_TRUSTED_HOSTS") as refused:
        Lab(api_key_env=api_key_env, db=":memory:")
    assert USER_KEY not in str(refused.value) and "\n" not in str(refused.value)


def test_the_magic_sends_your_key_to_your_endpoint(tmp_path, monkeypatch, srv, shell, capsys):
    from llmlab.magics import load_ipython_extension

    (tmp_path / ".env").write_text(f"LLMLAB_API_KEY={REPO_KEY}\n")
    (tmp_path / "pyproject.toml").write_text('[tool.llmlab]\napi_key_env = "LLMLAB_API_KEY"\n')
    monkeypatch.setenv("OPENAI_API_KEY", USER_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
    load_ipython_extension(shell)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        shell.run_cell_magic("llm", "model=m cache=false", "another confidential prompt")
    out = capsys.readouterr()
    assert sent(srv) == [bearer(USER_KEY)]
    assert REPO_KEY not in out.out + out.err and USER_KEY not in out.out + out.err


def test_the_profile_key_does_not_follow_a_dotenv_endpoint(tmp_path, monkeypatch, srv, shell):
    from llmlab.magics import load_ipython_extension

    (tmp_path / ".env").write_text(f"LLMLAB_BASE_URL={srv.base_url}\n")
    monkeypatch.setenv("MY_KEY", USER_KEY)
    shell.config.LLMLab.api_key_env = "MY_KEY"  # the IPython profile's key, meant for the profile's endpoint
    load_ipython_extension(shell)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        shell.run_cell_magic("llm", "model=m cache=false", "Hi")
        shell.run_line_magic("config", 'LLMLab.api_key_env = "MY_KEY"')  # paired in this session: sent
        shell.run_cell_magic("llm", "model=m cache=false", "Hi again")
    assert sent(srv) == [bearer("llmlab-no-key"), bearer(USER_KEY)]


def test_no_key_value_reaches_the_log(tmp_path, monkeypatch, srv):
    (tmp_path / ".env").write_text(f"LLMLAB_API_KEY={REPO_KEY}\n")
    monkeypatch.setenv("OPENAI_API_KEY", USER_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", srv.base_url)
    _ask(tmp_path / "l.sqlite")
    dump = "\n".join(sqlite3.connect(tmp_path / "l.sqlite").iterdump())
    assert "OPENAI_API_KEY" in dump and REPO_KEY not in dump and USER_KEY not in dump


def test_the_command_line_sends_your_key_to_your_endpoint(tmp_path, monkeypatch, capsys):
    import json

    from fakeserver import BatchBehaviour

    from llmlab.cli import main
    from llmlab.engine import _batch

    monkeypatch.setattr(_batch.BatchSession, "poll_first_s", 0.05)
    (tmp_path / ".env").write_text(f"LLMLAB_API_KEY={REPO_KEY}\n")
    monkeypatch.setenv("OPENAI_API_KEY", USER_KEY)
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"prompt": "my confidential plan"}) + "\n")
    with FakeServer({"m": ModelSpec(text="ok")}, batches=BatchBehaviour(in_progress_s=0.0)) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            assert main(["batch", "submit", str(prompts), "--models", "m", "--wait", "--db",
                         str(tmp_path / "l.sqlite")]) == 0
        auths = {r.auth_sha256 for r in server.requests if r.path.startswith("/v1/")}
    out = capsys.readouterr()
    assert auths == {bearer(USER_KEY)} and REPO_KEY not in out.out + out.err
