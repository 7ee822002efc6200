"""Issue 21: opening a PostgreSQL log waits like opening a locked SQLite one — for a migration lock
or a table lock another session holds, and for a server that refuses connections — up to
``LOG_WAIT_S``, then one StoreError line saying what to do. Real server, real second session."""
from __future__ import annotations

import socket
import threading
import time
import types
from urllib.parse import urlsplit

import psycopg
import pytest
from fixtures_postgres import PG_PASSWORD

import llmlab.store._base as store_base
from llmlab import Lab, StoreError
from llmlab.store._postgres import _SCHEMA_LOCK

pytestmark = pytest.mark.postgres


def _session(url: str) -> psycopg.Connection:
    return psycopg.connect(url, password=PG_PASSWORD, autocommit=True)


def _opening(url: str) -> tuple[threading.Thread, dict]:
    """``Lab(db=url)`` in a thread; the outcome (the Lab or the error) lands in the dict."""
    out: dict = {}

    def open_lab() -> None:
        try:
            out["lab"] = Lab(db=url, base_url="http://127.0.0.1:9/v1")
        except Exception as exc:  # noqa: BLE001 - the test asserts on it
            out["error"] = exc

    thread = threading.Thread(target=open_lab, daemon=True)
    thread.start()
    return thread, out


def _wait_until_blocked(observer: psycopg.Connection, locktype: str, thread: threading.Thread) -> None:
    """The gate: another backend of this database waits for a lock of ``locktype``."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and thread.is_alive():
        waiting = observer.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE NOT l.granted AND l.locktype = %s AND a.datname = current_database()", [locktype]).fetchone()
        if waiting and waiting[0]:
            return
        time.sleep(0.02)
    raise AssertionError(f"the open never waited for the {locktype} lock (finished: {not thread.is_alive()})")


def _opens_and_works(thread: threading.Thread, out: dict) -> None:
    thread.join(30)
    assert not thread.is_alive() and "error" not in out, out.get("error")
    with out["lab"] as lab:  # open, migrated and readable
        assert len(lab.runs()) == 0


@pytest.mark.parametrize("log", ["fresh", "existing"])
def test_opening_waits_for_the_migration_lock_another_session_holds(pg_url, log):
    if log == "existing":
        Lab(db=pg_url, base_url="http://127.0.0.1:9/v1").close()
    with _session(pg_url) as holder, _session(pg_url) as observer:
        holder.execute("SELECT pg_advisory_lock(%s)", [_SCHEMA_LOCK])  # what a migrating kernel holds
        thread, out = _opening(pg_url)
        _wait_until_blocked(observer, "advisory", thread)
        assert thread.is_alive() and not out  # still waiting, not failed
        holder.execute("SELECT pg_advisory_unlock(%s)", [_SCHEMA_LOCK])
        _opens_and_works(thread, out)


def test_opening_waits_for_a_table_lock_another_session_holds(pg_url):
    Lab(db=pg_url, base_url="http://127.0.0.1:9/v1").close()
    with _session(pg_url) as holder, _session(pg_url) as observer:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE _migrations IN ACCESS EXCLUSIVE MODE")  # a long ALTER, a manual LOCK
        thread, out = _opening(pg_url)
        _wait_until_blocked(observer, "relation", thread)
        assert thread.is_alive() and not out
        holder.execute("ROLLBACK")
        _opens_and_works(thread, out)


@pytest.mark.parametrize("lock", ["advisory", "table"])
def test_a_lock_held_past_the_limit_is_one_store_error_line(pg_url, monkeypatch, lock):
    Lab(db=pg_url, base_url="http://127.0.0.1:9/v1").close()
    monkeypatch.setattr(store_base, "LOG_WAIT_S", 1.5)
    with _session(pg_url) as holder:
        if lock == "advisory":
            holder.execute("SELECT pg_advisory_lock(%s)", [_SCHEMA_LOCK])
        else:
            holder.execute("BEGIN")
            holder.execute("LOCK TABLE _migrations IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        with pytest.raises(StoreError) as info:
            Lab(db=pg_url, base_url="http://127.0.0.1:9/v1")
        waited = time.monotonic() - started
    message = str(info.value)
    assert 1.2 < waited < 6, waited  # the limit (1.5 s here), not forever and not at once
    assert "\n" not in message and "another session holds a lock" in message and "still after waiting 1.5 s" in message
    assert "end that session's transaction" in message and PG_PASSWORD not in message


class _Forwarder:
    """A TCP port that refuses connections until :meth:`listen`, then forwards them to PostgreSQL."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        self.port = self.sock.getsockname()[1]

    def listen(self) -> None:
        self.sock.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with src, dst:
            while data := src.recv(65536):
                dst.sendall(data)

    def close(self) -> None:
        self.sock.close()


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=f"{parts.username}@127.0.0.1:{port}").geturl()


def test_a_refused_connection_at_open_is_retried_until_the_server_listens(pg_url, monkeypatch):
    parts = urlsplit(pg_url)
    forwarder = _Forwarder((parts.hostname or "127.0.0.1", parts.port or 5432))
    retrying = threading.Event()

    def sleep(seconds: float) -> None:  # the open's backoff, observed: it was refused and will retry
        retrying.set()
        time.sleep(seconds)

    monkeypatch.setattr(store_base, "time", types.SimpleNamespace(monotonic=time.monotonic, sleep=sleep))
    try:
        thread, out = _opening(_through(pg_url, forwarder.port))
        assert retrying.wait(30) and thread.is_alive() and not out
        forwarder.listen()
        _opens_and_works(thread, out)
    finally:
        forwarder.close()


def test_a_server_refusing_past_the_limit_is_one_store_error_line(pg_url, monkeypatch):
    forwarder = _Forwarder(("127.0.0.1", 9))  # never listens
    monkeypatch.setattr(store_base, "LOG_WAIT_S", 1.5)
    started = time.monotonic()
    try:
        with pytest.raises(StoreError) as info:
            Lab(db=_through(pg_url, forwarder.port), base_url="http://127.0.0.1:9/v1")
    finally:
        forwarder.close()
    waited = time.monotonic() - started
    message = str(info.value)
    assert 0.7 < waited < 6, waited
    assert "\n" not in message and "Connection refused" in message and "still after waiting 1.5 s" in message
    assert "start the server or fix the URL" in message


def test_a_wrong_password_at_open_is_said_at_once(pg_url, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "not-the-password")
    started = time.monotonic()
    with pytest.raises(StoreError, match="password authentication failed") as info:
        Lab(db=pg_url, base_url="http://127.0.0.1:9/v1")
    message = str(info.value)
    assert time.monotonic() - started < 5 and "\n" not in message and "still after waiting" not in message
