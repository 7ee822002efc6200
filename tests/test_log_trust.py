"""Issue 21, finding 15: the run log is the user's alone. A project file (./.env, pyproject.toml)
may choose a SQLite log only inside its own folder or $LLMLAB_HOME; a log another user owns, or
one the group or the world may read or write, is refused; another application's SQLite database
is never migrated into a log. Every path (Lab(db=), ./.env, the magic, the CLI) opens the log
through llmlab/store/_open.py and _sqlite.py, so each rule is tried through several of them."""
from __future__ import annotations

import hashlib
import os
import pwd
import sqlite3
import stat

import pytest
from fakeserver import FakeServer, ModelSpec
from test_magics import fresh_shell

from llmlab import ConfigError, Lab, StoreError
from llmlab.base._files import others_can_read, others_can_write, owned_by_another


@pytest.fixture
def shell():
    yield fresh_shell()
    fresh_shell()  # the next test's shell has no llmlab and none of this one's %config


@pytest.fixture
def server():
    with FakeServer({"m": ModelSpec(text="the secret plan")}) as srv:
        yield srv


def _rows(path) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT prompt, response_text FROM runs").fetchall()


def _digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


# --------------------------------------------------------------------------- (b) where a project file may put the log

def _outside_values(elsewhere, tmp_path) -> list[str]:
    (tmp_path / "link").symlink_to(elsewhere, target_is_directory=True)
    return [str(elsewhere / "team.sqlite"), f"sqlite:///{elsewhere / 'team.sqlite'}", "../team.sqlite",
            "sub/../../team.sqlite", "link/team.sqlite", "~/llmlab-team.sqlite", str(elsewhere / "\x1b[31mx.sqlite"),
            str(elsewhere / "\u202ex.sqlite")]


def test_a_project_file_may_choose_a_log_only_inside_its_folder(tmp_path, tmp_path_factory, monkeypatch, shell, capsys,
                                                                server):
    from llmlab.magics import load_ipython_extension, unload_ipython_extension

    elsewhere, home = tmp_path_factory.mktemp("elsewhere"), tmp_path_factory.mktemp("userhome")
    monkeypatch.setenv("HOME", str(home))  # ~ is outside the project (conftest puts it inside)
    for value in _outside_values(elsewhere, tmp_path):
        (tmp_path / ".env").write_text(f"LLMLAB_DB={value}\n")
        with pytest.raises(ConfigError, match="outside this project folder") as refused:
            Lab(base_url=server.base_url)
        message = str(refused.value)
        assert "\n" not in message and "\x1b" not in message and "\u202e" not in message
        assert "LLMLAB_DB in your environment, Lab(db=...)" in message
        (tmp_path / ".env").unlink()
        (tmp_path / "pyproject.toml").write_text(f"[tool.llmlab]\ndb = {value!r}\n")
        load_ipython_extension(shell)
        err = capsys.readouterr().err
        assert "ignoring db from ./pyproject.toml" in err and "outside this project folder" in err, (value, err)
        assert "\x1b" not in err and "\u202e" not in err
        assert shell.magics_manager.registry["LLMMagics"].settings.db is None
        unload_ipython_extension(shell)
        (tmp_path / "pyproject.toml").unlink()
    assert list(elsewhere.iterdir()) == [] and not (tmp_path.parent / "team.sqlite").exists()
    assert list(home.iterdir()) == [] and server.requests == []


@pytest.mark.parametrize("value", ["project.sqlite", "sub/dir/project.sqlite", "sqlite:///rel.sqlite",
                                   "{tmp}/abs.sqlite", "{home}/chosen.sqlite", ":memory:", "sqlite://"])
def test_a_log_inside_the_project_or_llmlab_home_is_used(tmp_path, tmp_path_factory, monkeypatch, server, value):
    home = tmp_path_factory.mktemp("llmlab-home")  # outside the project folder
    monkeypatch.setenv("LLMLAB_HOME", str(home))
    value = value.format(tmp=tmp_path, home=home)
    (tmp_path / ".env").write_text(f"LLMLAB_DB={value}\n")
    with Lab(base_url=server.base_url) as lab:
        assert lab.compare("my prompt", models=["m"]).df["response_text"].tolist() == ["the secret plan"]
        path = lab.store.path
    if path != ":memory:":
        assert _rows(path) == [("my prompt", "the secret plan")]
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_the_users_own_setting_may_name_a_log_anywhere(tmp_path, tmp_path_factory, monkeypatch, server):
    elsewhere = tmp_path_factory.mktemp("mine")
    for i, how in enumerate(["env", "Lab(db=)", "env over a project .env"]):
        target = elsewhere / f"log{i}.sqlite"
        if how != "Lab(db=)":
            monkeypatch.setenv("LLMLAB_DB", str(target))
        if how == "env over a project .env":
            (tmp_path / ".env").write_text(f"LLMLAB_DB={tmp_path_factory.mktemp('evil') / 'x.sqlite'}\n")
        with Lab(base_url=server.base_url, db=target if how == "Lab(db=)" else None) as lab:
            lab.compare("mine", models=["m"])
        assert _rows(target) == [("mine", "the secret plan")]


def test_the_magic_uses_a_log_the_user_configures_anywhere(tmp_path, tmp_path_factory, shell, capsys, server):
    from llmlab.magics import load_ipython_extension

    target = tmp_path_factory.mktemp("mine") / "log.sqlite"
    load_ipython_extension(shell)
    shell.run_cell(f"%config LLMLab.base_url = {server.base_url!r}")
    shell.run_cell(f"%config LLMLab.db = {str(target)!r}")
    shell.run_cell("%%llm model=m\nmy private prompt")
    assert _rows(target) == [("my private prompt", "the secret plan")]


# --------------------------------------------------------------------------- (a) a log other users can read or change

def test_the_one_rule_for_files_others_could_change_or_read():
    me, other = os.getuid(), os.getuid() + 1

    def info(mode: int, uid: int) -> os.stat_result:
        return os.stat_result((stat.S_IFREG | mode, 0, 0, 1, uid, 0, 0, 0, 0, 0))

    assert not others_can_write(info(0o600, me)) and not others_can_write(info(0o644, me))
    assert not others_can_write(info(0o600, 0))  # root's files are trusted (as for saved policies)
    for mode in (0o620, 0o602, 0o664, 0o666, 0o777):
        assert others_can_write(info(mode, me))
    assert owned_by_another(info(0o600, other)) and others_can_write(info(0o600, other))
    assert not owned_by_another(info(0o666, me))
    assert [others_can_read(info(m, me)) for m in (0o600, 0o700, 0o640, 0o604, 0o644)] == [False] * 2 + [True] * 3


def _a_log(path, server) -> None:
    with Lab(base_url=server.base_url, db=path) as lab:
        lab.compare("first", models=["m"])


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660, 0o606, 0o664, 0o666, 0o777, 0o620, 0o602], ids=oct)
def test_a_log_others_can_read_or_write_is_refused(tmp_path, server, mode):
    path = tmp_path / "runs.sqlite"
    _a_log(path, server)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # as llmlab makes it, whatever the umask
    path.chmod(mode)
    before = _digest(path)
    with pytest.raises(StoreError, match=r"can be read or changed by other users .*chmod 600") as refused:
        Lab(base_url=server.base_url, db=path)
    assert "\n" not in str(refused.value) and stat.filemode(stat.S_IFREG | mode) in str(refused.value)
    assert _digest(path) == before and stat.S_IMODE(path.stat().st_mode) == mode
    path.chmod(0o600)
    _a_log(path, server)  # owner-only again: used
    assert len(_rows(path)) == 2


@pytest.mark.parametrize("companion", ["-wal", "-shm"])
def test_a_wal_or_shm_file_others_can_read_is_refused_too(tmp_path, server, companion):
    path = tmp_path / "runs.sqlite"
    _a_log(path, server)
    extra = tmp_path / f"runs.sqlite{companion}"
    extra.write_bytes(b"")
    extra.chmod(0o644)
    with pytest.raises(StoreError, match=f"runs.sqlite{companion} can be read or changed by other users"):
        Lab(base_url=server.base_url, db=path)


def _owned_by_someone_else(path, monkeypatch) -> None:
    """Make ``path`` another user's: as root (this sandbox, CI containers) chown it to nobody;
    otherwise llmlab is made to see itself as nobody, so the file's owner is someone else."""
    nobody = pwd.getpwnam("nobody").pw_uid
    if os.geteuid() == 0:
        os.chown(path, nobody, nobody)
    else:
        monkeypatch.setattr(os, "getuid", lambda: nobody)


@pytest.mark.parametrize("mode", [0o600, 0o666], ids=oct)
def test_a_log_another_user_owns_is_refused_and_gets_nothing(tmp_path, server, monkeypatch, mode):
    path = tmp_path / "team.sqlite"
    _a_log(path, server)
    path.chmod(mode)
    _owned_by_someone_else(path, monkeypatch)
    before = _digest(path)
    with pytest.raises(StoreError, match="belongs to another user .*owner uid") as refused:
        Lab(base_url=server.base_url, db=path).compare("my private prompt", models=["m"])
    assert "\n" not in str(refused.value)
    assert _digest(path) == before and _rows(path) == [("first", "the secret plan")]


def test_the_cli_refuses_a_log_others_can_read_in_one_line(tmp_path, server, capsys):
    from llmlab.cli import main

    path = tmp_path / "runs.sqlite"
    _a_log(path, server)
    path.chmod(0o644)
    assert main(["export", str(tmp_path / "out.parquet"), "--db", str(path)]) == 2
    err = capsys.readouterr().err
    assert "can be read or changed by other users" in err and "--db" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "out.parquet").exists()


# --------------------------------------------------------------------------- (c) another application's database

def _app_db(path, statements: list[str], wal: bool = False) -> None:
    with sqlite3.connect(path) as db:
        if wal:
            db.execute("PRAGMA journal_mode = WAL")
        for statement in statements:
            db.execute(statement)
    db.close()
    path.chmod(0o600)


APPS = {
    "a table": ["CREATE TABLE notes (x)", "INSERT INTO notes VALUES ('mine')"],
    "its own runs table": ["CREATE TABLE runs (id INTEGER PRIMARY KEY, what TEXT)", "INSERT INTO runs VALUES (1, 'x')"],
    "llmlab-like tables but no _migrations": ["CREATE TABLE runs (x)", "CREATE TABLE cache (key TEXT)"],
    "a view only": ["CREATE VIEW v AS SELECT 1 AS one"],
    "an autoincrement table": ["CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, x)",
                               "INSERT INTO t (x) VALUES (1)"],
}


@pytest.mark.parametrize("wal", [False, True])
@pytest.mark.parametrize("name", list(APPS))
def test_another_applications_database_is_never_made_a_log(tmp_path, server, name, wal):
    path = tmp_path / "app.sqlite"
    _app_db(path, APPS[name], wal)
    with sqlite3.connect(path) as db:
        schema = db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
    db.close()
    before = _digest(path)
    with pytest.raises(StoreError, match="another application's SQLite database .*left as it is") as refused:
        Lab(base_url=server.base_url, db=path)
    assert "\n" not in str(refused.value) and "Lab(db=...)" in str(refused.value)
    assert _digest(path) == before
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall() == schema
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == mode
    db.close()


def test_the_cli_leaves_another_applications_database_as_it_is(tmp_path, capsys):
    from llmlab.cli import main

    path = tmp_path / "app.sqlite"
    _app_db(path, APPS["its own runs table"])
    before = _digest(path)
    assert main(["export", str(tmp_path / "out.parquet"), "--db", str(path)]) == 2
    err = capsys.readouterr().err
    assert "another application's SQLite database" in err and "--db" in err and "Traceback" not in err
    assert _digest(path) == before


@pytest.mark.parametrize("how", ["an empty file", "a SQLite file with no tables", "a new path"])
def test_an_empty_file_is_a_new_log(tmp_path, server, how):
    path = tmp_path / "new.sqlite"
    if how == "an empty file":
        path.write_bytes(b"")
    elif how == "a SQLite file with no tables":
        with sqlite3.connect(path) as db:
            db.execute("PRAGMA user_version = 0")
            db.execute("VACUUM")
        db.close()
    if path.exists():
        path.chmod(0o600)
    with Lab(base_url=server.base_url, db=path) as lab:
        lab.compare("hello", models=["m"])
    assert _rows(path) == [("hello", "the secret plan")]


@pytest.mark.parametrize("make", ["fifo", "folder", "device"])
def test_a_log_that_is_not_a_file_is_refused_at_once(tmp_path, server, make):
    path = tmp_path / "odd"
    if make == "fifo":
        os.mkfifo(path)
    elif make == "folder":
        path.mkdir()
    else:
        path = "/dev/null"
    with pytest.raises(StoreError, match="not a file|Is a directory"):
        Lab(base_url=server.base_url, db=path)
