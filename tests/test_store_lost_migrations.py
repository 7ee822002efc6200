"""A run log whose ``_migrations`` table lost records (issue 21, outside attack a6 p13).

With ``m001_initial`` deleted, the table emptied or a migration in the middle removed, opening
the log ran the migrations again over its own tables and failed with the database's words
("cannot open run log …: table runs already exists", "duplicate column name: …"). Now the one
schema step both backends share refuses it in one line that says what is wrong and what to do,
and changes nothing. Generated over which records are lost, on SQLite and PostgreSQL (the suite's
real server), through ``Lab`` and ``llmlab export``."""
from __future__ import annotations

import sqlite3

import pytest
from fixtures_postgres import PG_PASSWORD

from llmlab import Lab, StoreError
from llmlab.cli._main import main
from llmlab.store._schema import MIGRATIONS

NAMES = [m.__name__ for m in MIGRATIONS]
# which records go: m001, all of them, and each one with a later one kept
LOSSES = {"m001": [NAMES[0]], "all": NAMES, **{name: [name] for name in NAMES[1:-1]},
          "m001-and-m002": NAMES[:2], "every-other": NAMES[:-1:2]}


def _forget(db: str, names: list[str]) -> None:
    """Delete the records of ``names`` from the log's _migrations, with the backend's own driver."""
    if db.startswith("postgresql"):
        import psycopg

        with psycopg.connect(db, password=PG_PASSWORD, autocommit=True) as conn:
            conn.execute("DELETE FROM _migrations WHERE name = ANY(%s)", [names])
        return
    with sqlite3.connect(db) as conn:
        conn.executemany("DELETE FROM _migrations WHERE name = ?", [(n,) for n in names])


def _rows(db: str) -> list[tuple]:
    if db.startswith("postgresql"):
        import psycopg

        with psycopg.connect(db, password=PG_PASSWORD) as conn:
            return conn.execute("SELECT name FROM _migrations ORDER BY name").fetchall()
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT name FROM _migrations ORDER BY name").fetchall()


@pytest.mark.parametrize("loss", list(LOSSES))
def test_a_log_that_lost_migration_records_is_refused_saying_why(db_url, monkeypatch, loss):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-Qz7Xv9Bm2Kt8Rw4Lp3Nc")
    Lab(db=db_url).close()
    _forget(db_url, LOSSES[loss])
    before = _rows(db_url)
    with pytest.raises(StoreError) as caught:
        Lab(db=db_url)
    message = str(caught.value)
    first = next(n for n in NAMES if n in LOSSES[loss])
    assert f"has llmlab's tables but its _migrations table has no record of {first}" in message, message
    assert "edited or not written by llmlab" in message and "pass Lab(db=...) for another log" in message
    assert "already exists" not in message and "duplicate column" not in message, message
    assert "\n" not in message and PG_PASSWORD not in message
    assert _rows(db_url) == before  # nothing was changed


@pytest.mark.parametrize("loss", ["m001", "all", "m005_job_order"])
def test_llmlab_export_on_such_a_log_exits_2_with_the_one_line(tmp_path, capsys, monkeypatch, loss):
    db = str(tmp_path / "runs.sqlite")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-Qz7Xv9Bm2Kt8Rw4Lp3Nc")
    Lab(db=db).close()
    _forget(db, LOSSES[loss])
    assert main(["export", str(tmp_path / "out.parquet"), "--db", db]) == 2
    err = capsys.readouterr().err
    assert "its _migrations table has no record of" in err and "pass --db PATH for another log" in err, err
    assert "Traceback" not in err and not (tmp_path / "out.parquet").exists()


def test_a_log_with_every_record_opens_as_before(db_url, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-Qz7Xv9Bm2Kt8Rw4Lp3Nc")
    Lab(db=db_url).close()
    Lab(db=db_url).close()
    assert [r[0] for r in _rows(db_url)] == sorted(NAMES)
