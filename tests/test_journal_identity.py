"""A PostgreSQL log's journal is named by the log as connected, never by its masked URL (attack 4,
F10): two logs whose URLs differ only in a masked part (a search_path in ``options``) get a journal
each, and after an outage each stores its own answers; one log spelled three ways has one journal."""
from __future__ import annotations

import warnings

import pytest
from fakeserver import FakeServer, ModelSpec
from fixtures_postgres import PG_PASSWORD, PG_USER, PostgresServer

from llmlab import Lab, StoreError

pytestmark = pytest.mark.postgres


def _schemas(url: str, *names: str) -> None:
    import psycopg

    with psycopg.connect(url, password=PG_PASSWORD, autocommit=True) as conn:
        for name in names:
            conn.execute(f"CREATE SCHEMA {name}")


def test_logs_differing_only_in_a_masked_part_keep_their_own_journals(pg_url):
    _schemas(pg_url, "team_a", "team_b")
    a, b = f"{pg_url}?options=-csearch_path%3Dteam_a", f"{pg_url}?options=-csearch_path%3Dteam_b"
    with FakeServer({"m": ModelSpec(text="ok")}) as srv, Lab(db=a, base_url=srv.base_url) as lab_a, \
            Lab(db=b, base_url=srv.base_url) as lab_b:
        assert lab_a.store.path == lab_b.store.path  # what is shown is the same…
        assert lab_a.store._journal_file != lab_b.store._journal_file  # …the journals are not


def test_one_log_spelled_three_ways_has_one_journal(postgres_server, pg_url):
    dbname = pg_url.rsplit("/", 1)[1]
    port = postgres_server.port
    spellings = [pg_url, f"host=127.0.0.1 port={port} user={PG_USER} dbname={dbname}",
                 f"postgresql+psycopg://{PG_USER}@127.0.0.1:{port}/{dbname}?sslmode=prefer&application_name=nb2"]
    with FakeServer({"m": ModelSpec(text="ok")}) as srv:
        journals = set()
        for spelling in spellings:
            with Lab(db=spelling, base_url=srv.base_url) as lab:
                journals.add(lab.store._journal_file)
    assert len(journals) == 1


def _pg_ctl(server: PostgresServer, *args: str) -> None:
    server._run(str(server.bindir / "pg_ctl"), "-D", str(server.data), *args)


def test_after_an_outage_each_log_stores_its_own_journaled_answer(monkeypatch, tmp_path):
    import psycopg

    import llmlab.store._base as base

    monkeypatch.setattr(base, "LOG_WAIT_S", 1.0)
    monkeypatch.setenv("PGPASSWORD", PG_PASSWORD)
    server = PostgresServer().start()
    try:
        url = server.url(server.create_database())
        _schemas(url, "team_a", "team_b")
        logs = {team: f"{url}?options=-csearch_path%3D{team}" for team in ("team_a", "team_b")}
        with FakeServer({"m": ModelSpec(text="paid")}) as srv:
            labs = {team: Lab(db=log, base_url=srv.base_url, retries=0) for team, log in logs.items()}
            for team, lab in labs.items():
                lab.compare(f"warm {team}", models=["m"])
            _pg_ctl(server, "-m", "fast", "-w", "stop")
            for team, lab in labs.items():
                with pytest.raises(StoreError, match="journal"):
                    lab.compare(f"paid answer for {team}", models=["m"], cache=False)
            options = f"-p {server.port} -c listen_addresses=127.0.0.1 -k {server.root} -c fsync=off"
            _pg_ctl(server, "-l", str(server.root / "log"), "-o", options, "-w", "start")
            for lab in labs.values():
                lab.close()
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                for log in logs.values():
                    with Lab(db=log, base_url=srv.base_url) as lab:
                        lab.compare("after", models=["m"])
            assert not [w for w in seen if "journal" in str(w.message)], [str(w.message) for w in seen]
        with psycopg.connect(url, password=PG_PASSWORD) as conn:
            for team in logs:
                prompts = [r[0] for r in conn.execute(f"SELECT prompt FROM {team}.runs ORDER BY id")]
                assert f"paid answer for {team}" in prompts and not [p for p in prompts if "team" in p
                                                                      and team not in p], prompts
        assert not list(tmp_path.glob("llmlab-home/journal-*"))
    finally:
        server.stop()


def _row(tmp_path):
    from llmlab.base._record import Record

    return Record(run_id="old-run", request_id="r1", prompt_id="p1", requested_model="m", prompt="journaled by 0.x",
                  messages='[{"role": "user", "content": "journaled by 0.x"}]', params="{}", stream=True,
                  endpoint="http://127.0.0.1:9/v1", api_key_env=None, status="ok", response_text="kept")


def test_a_journal_under_the_old_url_name_is_adopted_only_when_it_is_this_logs(pg_url, tmp_path):
    from llmlab.store import _journal

    with FakeServer({"m": ModelSpec(text="ok")}) as srv:
        with Lab(db=pg_url, base_url=srv.base_url) as lab:
            old, identity = _journal.url_journal_path(lab.store.path), lab.store._log_id
        _journal.append(old, [_row(tmp_path)], [None], log="0" * 32)  # another log's: left alone, silently
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            with Lab(db=pg_url, base_url=srv.base_url) as lab:
                assert len(lab.runs()) == 0
        assert old.exists() and not [w for w in seen if "journal" in str(w.message)]
        old.unlink()
        _journal.append(old, [_row(tmp_path)], [None], log=identity)
        with Lab(db=pg_url, base_url=srv.base_url) as lab:
            assert list(lab.runs().prompt) == ["journaled by 0.x"]
        assert not old.exists()
