"""A sqlite:/// URL's path, a plain path and a Path follow one rule: what reads as a URL, a libpq
keyword string, another database's connection string or credentials is never a file path; a
libpq keyword string with a non-ASCII space or a control character is refused (attack 4, F9, F8)."""
from __future__ import annotations

import urllib.parse
from pathlib import Path

import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import Lab, LLMLabError

PW = "S3cretPW9x"


@pytest.fixture
def brief_open_wait(monkeypatch):
    """Nothing listens at these values' ports: a refused open is retried 0.3 s, not 120 s."""
    import llmlab.store._base as base

    monkeypatch.setattr(base, "LOG_WAIT_S", 0.3)


def _no_pw(*texts) -> None:
    for text in texts:
        assert PW not in str(text) and PW.lower() not in str(text).lower(), str(text)[:300]


def _no_pw_files(root: Path) -> None:
    made = [p for p in root.rglob("*") if PW in p.name or PW in str(p.relative_to(root))]
    assert not made, made


def connection_paths(tmp: Path) -> list[str]:
    """Paths that are other shapes of a connection (with the password in them); an absolute one
    points into ``tmp`` so a value taken for a file name lands there."""
    inside = urllib.parse.quote(f"{tmp}/u:{PW}@h", safe="")
    return [f"u:{PW}@h/db", f"postgresql://u:{PW}@h/db", f"host=h password={PW}", f"dbname=x password = {PW}",
            f"u%3A{PW}%40h/db", f"u%253A{PW}%2540h/db", f"postgresql%3A%2F%2Fu%3A{PW}%40h%2Fdb",
            f"Driver={{ODBC Driver 18}};Server=h;Database=d;UID=u;PWD={PW};",
            f"Server=h;Database=d;User Id=u;Password={PW};", f"Data Source=h;Initial Catalog=d;Password={PW}",
            f"u/{PW}@h:1521/orcl", f"u/{PW}@//h:1521/orcl", f"u/{PW}@orcl",
            f"sub/u:{PW}@h/db", f"u\uff1a{PW}@h/db", f"{PW}@x.sqlite", f"{PW}@h/db", inside]


def _db_forms(tmp: Path) -> list[str]:
    paths = connection_paths(tmp)
    return [f"sqlite:///{p}" for p in paths] + [f"sqlite+pysqlite:///{p}" for p in paths[::3]] \
        + [p for p in paths if not p.startswith(("postgresql://", "host=", "dbname="))]


@pytest.mark.parametrize("index", range(len(_db_forms(Path("/t")))))
def test_a_sqlite_url_or_path_shaped_like_a_connection_is_refused_never_a_file(tmp_path, capsys, brief_open_wait,
                                                                                 index):
    value = _db_forms(tmp_path)[index]
    with pytest.raises(LLMLabError) as info:
        Lab(db=value, base_url="http://127.0.0.1:9/v1")
    assert "\n" not in str(info.value) and "****" in str(info.value)
    _no_pw(str(info.value), repr(info.value), capsys.readouterr())
    _no_pw_files(tmp_path)


@pytest.mark.parametrize("value", connection_paths(Path("/t"))[::2], ids=lambda v: v[:30])
def test_the_same_paths_as_a_path_object_are_refused(tmp_path, capsys, brief_open_wait, value):
    with pytest.raises(LLMLabError) as info:
        Lab(db=Path(value), base_url="http://127.0.0.1:9/v1")
    _no_pw(str(info.value), capsys.readouterr())
    _no_pw_files(tmp_path)


def test_the_cli_refuses_a_sqlite_url_with_credentials(tmp_path, capsys):
    from llmlab.cli import main

    code = main(["export", str(tmp_path / "out.parquet"), "--db", f"sqlite:///u:{PW}@h/db"])
    out = capsys.readouterr()
    assert code != 0 and "Traceback" not in out.err
    _no_pw(out.out, out.err)
    _no_pw_files(tmp_path)


@pytest.mark.parametrize("name", ["./exp@v2/runs.sqlite", "x=1.sqlite", "runs 2024-01-01.sqlite", "a.b-c_d.db"])
def test_ordinary_paths_still_open_as_files(tmp_path, name):
    with FakeServer({"m": ModelSpec(text="ok")}) as srv, Lab(db=f"sqlite:///{name}", base_url=srv.base_url) as lab:
        lab.compare("Hi", models=["m"])
    assert (tmp_path / name).is_file()


def test_a_relative_path_starting_user_at_host_is_refused_and_dot_slash_opens_it(tmp_path):
    with pytest.raises(LLMLabError, match=r"\*\*\*\*"):
        Lab(db="exp@v2/runs.sqlite", base_url="http://127.0.0.1:9/v1")
    assert not (tmp_path / "exp@v2").exists()


# --------------------------------------------------------------------------- F8: Unicode spaces in keyword strings

SPACES = ["\u00a0", "\u2003", "\u3000", "\u200b", "\u2028", "\x1c", "\x85"]


@pytest.mark.parametrize("space", SPACES, ids=lambda s: f"U+{ord(s):04X}")
def test_a_keyword_string_with_a_unicode_space_is_refused_without_its_password(tmp_path, capsys, brief_open_wait,
                                                                                space):
    for value in [f"host=127.0.0.1{space}password={PW} port=9 dbname=x",
                  f"dbname=x{space}password={PW} host=127.0.0.1 port=9"]:
        with pytest.raises(LLMLabError) as info:
            Lab(db=value, base_url="http://127.0.0.1:9/v1")
        assert f"U+{ord(space):04X}" in str(info.value) and "\n" not in str(info.value)
        _no_pw(str(info.value), repr(info.value), capsys.readouterr())


@pytest.mark.parametrize("value", [f"host='127.0.0.1 password={PW}' port=9 dbname=x",
                                   f"postgresql://u@127.0.0.1:9/x?host=127.0.0.1%20password%3D{PW}",
                                   f"host=127.0.0.1 port=9 user='u password={PW}'"], ids=["quoted", "url", "user"])
def test_a_password_glued_to_a_printed_value_is_refused(tmp_path, capsys, brief_open_wait, value):
    with pytest.raises(LLMLabError) as info:
        Lab(db=value, base_url="http://127.0.0.1:9/v1")
    _no_pw(str(info.value), repr(info.value), capsys.readouterr())


def test_a_project_dotenv_with_a_no_break_space_never_prints_the_password(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text(f"LLMLAB_DB=host=evil.example\u00a0password={PW}\n")
    with pytest.raises(LLMLabError) as info:
        Lab(base_url="http://127.0.0.1:9/v1")
    _no_pw(str(info.value))
