"""Re-attack 5 G5/G8: a log llmlab made, to which someone (a cloned repository's author) added a
trigger, a rule, a view, a table or an index, or whose numbers were hand-edited.

* A project file's (./.env, pyproject.toml) log holding any object llmlab's migrations did not
  make is refused in one ConfigError line naming it, before anything is sent.
* A log the user chose is opened with a warning naming the object, and whatever its triggers do,
  every answer paid for is either stored exactly as sent or reported (a LogWriteError row, or a
  StoreError holding it in ``.result.unlogged``): never dropped in silence, never rewritten.
* A float column's -inf/inf/negative cost reads as NaN (with a warning), never as a number.

Each rule is tried over a grammar of variants (timing x event x table x body, views, tables,
indexes; PostgreSQL triggers, rules and views) on real SQLite files and a real PostgreSQL server,
end to end through Lab and the fake endpoint server."""
from __future__ import annotations

import itertools
import math
import shutil
import sqlite3
import warnings

import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import ConfigError, Lab, StoreError
from llmlab.base._record import FLOAT_COLUMNS
from llmlab.base._validate import read_finite
from llmlab.store._schema import MIGRATIONS
from llmlab.store._sqlite import SQLiteStore

ANSWER = "the paid answer"
TAMPERED = "[tampered] buy evil.example"


@pytest.fixture
def server():
    with FakeServer({"m": ModelSpec(text=ANSWER)}) as srv:
        yield srv


def _chat(srv: FakeServer) -> list:
    return [r for r in srv.requests if r.path.endswith("/chat/completions")]


# -- the grammar of SQLite objects a stranger may add -------------------------------------------
_BODIES = {
    "ignore": "SELECT RAISE(IGNORE);",
    "rewrite": f"UPDATE runs SET response_text = '{TAMPERED}', status = 'ok';",
    "copy": "INSERT INTO loot VALUES ('x');",
    "delete": "DELETE FROM runs;",
}
_TABLES = ("runs", "cache", "labels", "_migrations")
TRIGGERS = {f"{when} {event} ON {table} / {body}":
            [f"CREATE TRIGGER t_x {when} {event} ON {table} BEGIN {_BODIES[body]} END"]
            for when, event, table, body in itertools.product(("BEFORE", "AFTER"), ("INSERT", "UPDATE", "DELETE"),
                                                              _TABLES, _BODIES)}
OTHERS = {
    "a view": ["CREATE VIEW shown AS SELECT * FROM runs"],
    "a view with an INSTEAD OF trigger": ["CREATE VIEW shown AS SELECT * FROM runs",
                                          "CREATE TRIGGER t_v INSTEAD OF INSERT ON shown BEGIN SELECT 1; END"],
    "a table": ["CREATE TABLE notes (x)"],
    "an index": ["CREATE INDEX runs_mine ON runs (response_text)"],
    "an expression index": ["CREATE INDEX runs_len ON runs (length(response_text))"],
    "a partial index": ["CREATE INDEX runs_ok ON runs (status) WHERE status = 'ok'"],
    "llmlab's index made UNIQUE": ["DROP INDEX runs_run_id", "CREATE UNIQUE INDEX runs_run_id ON runs (run_id)"],
    "llmlab's index on another column": ["DROP INDEX runs_started_at",
                                         "CREATE INDEX runs_started_at ON runs (response_text)"],
}
OBJECTS = {**TRIGGERS, **OTHERS}


def _llmlab_log(path, statements: list[str]) -> None:
    """A log made by llmlab itself (a copy of one: opening each anew would double the test's
    time), then changed by hand."""
    template = path.parent / "template.sqlite"
    if not template.exists():
        Lab(db=template, quiet=True).close()
    shutil.copyfile(template, path)
    path.chmod(0o600)
    _llmlab_statements(path, statements)


def _first_object(statements: list[str]) -> str:
    """The name the refusal names first: a trigger or view before any table."""
    names = [s.split()[2] if s.split()[1] in ("TRIGGER", "VIEW", "TABLE", "INDEX") else s.split()[3]
             for s in statements if s.startswith("CREATE")]
    return sorted(names, key=lambda n: (n in ("notes", "loot"), n))[0]


def test_a_project_files_log_holding_any_object_llmlab_did_not_make_is_refused_before_sending(tmp_path, server):
    refused = 0
    for i, (name, statements) in enumerate(OBJECTS.items()):
        path = tmp_path / f"log{i}.sqlite"
        _llmlab_log(path, statements)
        (tmp_path / ".env").write_text(f"LLMLAB_DB=./{path.name}\n")
        with pytest.raises(ConfigError) as caught:
            Lab(base_url=server.base_url, quiet=True)
        message = str(caught.value)
        assert "\n" not in message and "./.env chooses the run log" in message, (name, message)
        assert f"'{_first_object(statements)}'" in message and "nothing was sent" in message, (name, message)
        refused += 1
    assert refused == len(OBJECTS) == 104
    assert _chat(server) == []


def test_pyprojects_log_with_a_trigger_is_refused_by_the_magic(tmp_path, server):
    from test_magics import fresh_shell

    shell = fresh_shell()
    try:
        _llmlab_log(tmp_path / "runs.sqlite", TRIGGERS["AFTER INSERT ON runs / rewrite"])
        (tmp_path / "pyproject.toml").write_text('[tool.llmlab]\ndb = "runs.sqlite"\n')
        shell.run_line_magic("load_ext", "llmlab")
        shell.run_line_magic("config", f'LLMLab.base_url = "{server.base_url}"')
        with pytest.raises(Exception, match=r"pyproject.toml.*chooses the run log .*trigger 't_x' on 'runs'"):
            shell.run_cell_magic("llm", "model=m", "hello")
        assert _chat(server) == []
    finally:
        fresh_shell()


def _answer_kept(lab: Lab, path, cache: bool = True) -> str:
    """One paid call through a tampered log: how its answer ended up ('stored', 'error row',
    'unlogged'); fails if it vanished or reads as anything but what the endpoint sent."""
    try:
        res = lab.compare("my secret business prompt", models=["m"], cache=cache)
    except StoreError as exc:
        unlogged = exc.result.unlogged  # type: ignore[attr-defined]
        assert list(unlogged["response_text"]) == [ANSWER]
        outcome = "unlogged"
    else:
        assert len(res.df) == 1 and list(res.df["response_text"]) == [ANSWER], res.df
        outcome = "stored" if res.df["status"].iloc[0] == "ok" else "error row"
        assert outcome == "stored" or res.df["error_type"].iloc[0] == "LogWriteError"
    with sqlite3.connect(path) as db:
        texts = [r[0] for r in db.execute("SELECT response_text FROM runs")]
    db.close()
    assert set(texts) <= {ANSWER}, texts  # what the log holds is what the endpoint sent
    return outcome


@pytest.mark.parametrize("when", ["before open", "after open"])
def test_a_users_tampered_log_warns_and_never_loses_or_rewrites_an_answer(tmp_path, server, when):
    outcomes: dict[str, int] = {}
    tried = {name: statements for name, statements in TRIGGERS.items() if " ON runs " in name or " ON cache " in name}
    for i, (name, statements) in enumerate(tried.items()):
        path = tmp_path / f"log{i}.sqlite"
        _llmlab_log(path, [] if when == "after open" else statements)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            lab = Lab(base_url=server.base_url, db=path, quiet=True)
        said = [str(w.message) for w in seen if "which llmlab did not make" in str(w.message)]
        assert bool(said) == (when == "before open"), (name, said)
        assert all("trigger 't_x'" in s for s in said)
        if when == "after open":
            _llmlab_statements(path, statements)
        with lab, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outcome = _answer_kept(lab, path)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if name in _NEVER_STORED:
            assert outcome != "stored", (name, outcome)
    assert sum(outcomes.values()) == len(tried) == 48
    assert outcomes.get("stored", 0) >= 24  # UPDATE and DELETE triggers do not touch an insert


# the triggers that change what an insert stores (the others touch nothing an insert does)
_NEVER_STORED = {"BEFORE INSERT ON runs / ignore", "BEFORE INSERT ON runs / copy", "AFTER INSERT ON runs / rewrite",
                 "AFTER INSERT ON runs / copy", "AFTER INSERT ON runs / delete", "BEFORE INSERT ON cache / ignore",
                 "AFTER INSERT ON cache / rewrite", "AFTER INSERT ON cache / copy", "AFTER INSERT ON cache / delete"}


def _llmlab_statements(path, statements: list[str]) -> None:
    """The statements, run on the log by hand (the loot table is the repository's own)."""
    with sqlite3.connect(path) as db:
        if any("loot" in s for s in statements):
            db.execute("CREATE TABLE loot (x)")
        for statement in statements:
            db.execute(statement)
    db.close()


def test_a_constraint_that_drops_rows_in_silence_is_a_failed_write(tmp_path, server):
    """runs rebuilt with ON CONFLICT IGNORE (same name, same columns: the schema check cannot tell):
    the second answer would vanish; the insert's row count says it did not go in."""
    path = tmp_path / "l.sqlite"
    Lab(db=path, quiet=True).close()
    with sqlite3.connect(path) as db:
        sql = db.execute("SELECT sql FROM sqlite_master WHERE name = 'runs'").fetchone()[0]
        db.execute("ALTER TABLE runs RENAME TO old_runs")
        db.execute(sql.rstrip().rstrip(")") + ", UNIQUE (requested_model) ON CONFLICT IGNORE)")
        db.execute("DROP TABLE old_runs")
    db.close()
    for modes in ("project", "user"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if modes == "project":
                (tmp_path / ".env").write_text("LLMLAB_DB=./l.sqlite\n")
                lab = Lab(base_url=server.base_url, quiet=True)
            else:
                (tmp_path / ".env").unlink()
                lab = Lab(base_url=server.base_url, db=path, quiet=True)
            with lab:
                outcome = _answer_kept(lab, path, cache=False)
            assert outcome in (("stored",) if modes == "project" else ("unlogged", "error row")), (modes, outcome)


def test_every_log_an_older_llmlab_made_still_opens_without_a_word(tmp_path, server):
    for upto in range(1, len(MIGRATIONS) + 1):
        path = tmp_path / f"old{upto}.sqlite"
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
            for migration in MIGRATIONS[:upto]:
                for statement in migration(SQLiteStore.dialect):
                    db.execute(statement)
                db.execute("INSERT INTO _migrations VALUES (?, '2026-01-01T00:00:00+00:00')", (migration.__name__,))
        db.close()
        path.chmod(0o600)
        (tmp_path / ".env").write_text(f"LLMLAB_DB=./{path.name}\n")
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*did not make")
            with Lab(base_url=server.base_url, quiet=True) as lab:
                assert lab.compare("hi", models=["m"], cache=False).ok
    assert len(_chat(server)) == len(MIGRATIONS)


# -- G8: numbers a hand-edited log holds --------------------------------------------------------
_ODD = (9e999, -9e999, -1.0, -1e-300, 1.0)


def _expected(column: str, value: float) -> float | None:
    """What a column may hold: a finite number; a cost or a token count ≥ 0, a log-probability ≤ 0."""
    lo, hi = -math.inf, math.inf
    if column.startswith("logprob_"):
        hi = 0.0
    elif column.endswith("_tokens") or column in ("cost_usd", "original_cost_usd"):
        lo = 0.0
    return read_finite(value, lo=lo, hi=hi)


def test_a_shipped_logs_odd_numbers_read_as_nan_with_a_warning(tmp_path, server):
    path = tmp_path / "runs.sqlite"
    with Lab(base_url=server.base_url, db=path, quiet=True) as lab:
        lab.sweep([f"p{i}" for i in range(len(_ODD) + 1)], models=["m"], cache=False, progress=False)
    with sqlite3.connect(path) as db:
        ids = [r[0] for r in db.execute("SELECT id FROM runs ORDER BY id")]
        for row_id, value in zip(ids, _ODD, strict=False):  # the last row keeps llmlab's own values
            db.execute(f"UPDATE runs SET {', '.join(f'{c} = ?' for c in FLOAT_COLUMNS)} WHERE id = ?",
                       [value] * len(FLOAT_COLUMNS) + [row_id])
    db.close()
    (tmp_path / ".env").write_text("LLMLAB_DB=./runs.sqlite\n")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with Lab(base_url=server.base_url, quiet=True) as lab:
            df = lab.runs()
    for column in FLOAT_COLUMNS:
        for value, got in zip(_ODD, df[column].iloc[:len(_ODD)], strict=True):
            want = _expected(column, value)
            assert (math.isnan(got) if want is None else got == want), (column, value, got)
        assert math.isfinite(df[column].sum()), column
        refused = sum(_expected(column, v) is None for v in _ODD)
        assert any(f"{refused} value(s) of {column} " in str(w.message) for w in seen), (column, refused)
    assert df["cost_usd"].iloc[-1] != -math.inf and len(df) == len(_ODD) + 1


def test_a_cached_row_with_odd_numbers_reads_as_nan(tmp_path, server):
    path = tmp_path / "runs.sqlite"
    with Lab(base_url=server.base_url, db=path, quiet=True) as lab:
        lab.compare("hi", models=["m"])
    with sqlite3.connect(path) as db:
        db.execute("UPDATE runs SET cost_usd = -9e999, latency_s = 9e999, logprob_mean = 2.0, prompt_tokens = -5")
    db.close()
    store = SQLiteStore(path)
    try:
        (key,) = [r[0] for r in sqlite3.connect(path).execute("SELECT key FROM cache")]
        row = store.cached([key])[key]
    finally:
        store.close()
    for column in ("cost_usd", "latency_s", "logprob_mean", "prompt_tokens"):  # -inf, inf, > 0, < 0
        assert math.isnan(row[column]), (column, row[column])


# -- PostgreSQL: triggers, rules and views on llmlab's tables -----------------------------------
_PG_FUNCTIONS = {
    "drop": "CREATE FUNCTION f_x() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$",
    "rewrite": ("CREATE FUNCTION f_x() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN NEW.response_text := '{TAMPERED}'; RETURN NEW; END $$"),
}
PG_OBJECTS = {
    **{f"{when} {event} ON {table} / {fn}": [_PG_FUNCTIONS[fn], f"CREATE TRIGGER t_x {when} {event} ON {table} "
                                             "FOR EACH ROW EXECUTE FUNCTION f_x()"]
       for when, event, table, fn in itertools.product(("BEFORE", "AFTER"), ("INSERT", "UPDATE"),
                                                       ("runs", "cache", "labels"), _PG_FUNCTIONS)},
    "a statement trigger": [_PG_FUNCTIONS["drop"],
                            "CREATE TRIGGER t_x AFTER INSERT ON runs FOR EACH STATEMENT EXECUTE FUNCTION f_x()"],
    "a rule DO INSTEAD NOTHING": ["CREATE RULE r_x AS ON INSERT TO runs DO INSTEAD NOTHING"],
    "a rule DO ALSO": ["CREATE TABLE loot (p TEXT)",
                       "CREATE RULE r_x AS ON INSERT TO runs DO ALSO INSERT INTO loot VALUES (NEW.prompt)"],
    "a rule on cache": ["CREATE RULE r_x AS ON UPDATE TO cache DO INSTEAD NOTHING"],
    "runs as a view": ["ALTER TABLE runs RENAME TO r_x", "CREATE VIEW runs AS SELECT * FROM r_x"],
}


def _pg(url: str, statements: list[str]) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def _pg_reset(url: str) -> None:
    _pg(url, ["DROP SCHEMA public CASCADE", "CREATE SCHEMA public"])


@pytest.mark.postgres
def test_a_project_files_postgresql_log_with_triggers_rules_or_views_is_refused(pg_url, tmp_path, server):
    for name, statements in PG_OBJECTS.items():
        _pg_reset(pg_url)
        Lab(db=pg_url, quiet=True).close()
        _pg(pg_url, statements)
        (tmp_path / ".env").write_text(f"LLMLAB_DB={pg_url}\n")
        with pytest.raises(ConfigError, match=r"^\./\.env chooses the run log .*(trigger 't_x'|rule 'r_x'|"
                                              r"view 'runs').*nothing was sent") as caught:
            Lab(base_url=server.base_url, quiet=True)
        assert "\n" not in str(caught.value), name
    assert _chat(server) == []


@pytest.mark.postgres
def test_a_users_postgresql_log_with_triggers_warns_and_never_drops_an_answer(pg_url, server):
    import psycopg

    for name, statements in PG_OBJECTS.items():
        if "view" in name:
            continue
        _pg_reset(pg_url)
        Lab(db=pg_url, quiet=True).close()
        _pg(pg_url, statements)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            lab = Lab(base_url=server.base_url, db=pg_url, quiet=True)
        assert any("which llmlab did not make" in str(w.message) for w in seen), name
        with lab, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                res = lab.compare("my secret business prompt", models=["m"], cache=False)
            except StoreError as exc:
                assert list(exc.result.unlogged["response_text"]) == [ANSWER], name  # type: ignore[attr-defined]
            else:
                assert len(res.df) == 1, (name, res.df)
        with psycopg.connect(pg_url) as conn:
            texts = [r[0] for r in conn.execute("SELECT response_text FROM runs")]
        assert texts == [] or "rewrite" in name or ANSWER in texts, (name, texts)
