"""SQLite run log and response cache.

One file (``$LLMLAB_HOME/runs.sqlite`` by default), WAL mode with a busy timeout so several
kernels can append at once, short write transactions, schema created by ordered, named
migrations recorded in ``_migrations`` (as simonw/llm does).
"""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from ._errors import StoreError
from ._files import private_dir
from ._record import BOOL_COLUMNS, COLUMNS, FLOAT_COLUMNS, Record

__all__ = ["Store"]

_RECORD_COLUMNS = [c for c in COLUMNS if c != "id"]
_SQL_TYPES = {c: "REAL" for c in FLOAT_COLUMNS} | \
    {c: "INTEGER" for c in (*BOOL_COLUMNS, "repeat", "attempt", "cache_of")}


# Columns added by later migrations: a migration's effect must never change once released.
_ADDED_LATER = frozenset({"original_cost_usd", "policy", "route_reason"})


def m001_initial(db: sqlite3.Connection) -> None:
    cols = ",\n".join(f"  {c} {_SQL_TYPES.get(c, 'TEXT')}" for c in _RECORD_COLUMNS if c not in _ADDED_LATER)
    db.execute(f"CREATE TABLE runs (\n  id INTEGER PRIMARY KEY AUTOINCREMENT,\n{cols}\n)")
    db.execute("CREATE INDEX runs_run_id ON runs (run_id)")
    db.execute("CREATE INDEX runs_prompt_model ON runs (prompt_id, requested_model)")


def m002_cache(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE cache (key TEXT PRIMARY KEY, row_id INTEGER NOT NULL REFERENCES runs(id),"
               " created_at TEXT NOT NULL)")


def m003_original_cost(db: sqlite3.Connection) -> None:
    # A cache hit spends nothing: its cost_usd becomes 0 and the original's cost moves beside it.
    db.execute("ALTER TABLE runs ADD COLUMN original_cost_usd REAL")
    db.execute("UPDATE runs SET original_cost_usd = cost_usd, cost_usd = 0.0, cost_source = 'cache' WHERE cached = 1")


def m004_route(db: sqlite3.Connection) -> None:
    # lab.route records which policy chose each row's model, and why.
    db.execute("ALTER TABLE runs ADD COLUMN policy TEXT")
    db.execute("ALTER TABLE runs ADD COLUMN route_reason TEXT")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [m001_initial, m002_cache, m003_original_cost, m004_route]
_BUSY_TIMEOUT_S = 30.0


class Store:
    """The persistent log. Thread-safe: one connection guarded by a lock."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._writer = _Writer()
        try:
            self._db = self._connect()
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open run log {self.path}: {exc}; pass Lab(db=...) to use another file") from exc

    def _connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            path = Path(self.path).expanduser()
            private_dir(path.parent)
            # Owner-only from the first byte: prompts and answers can be private.
            os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
            self.path = str(path)
        db = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None,
                             check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
        if self.path != ":memory:":
            _enable_wal(db)
            db.execute("PRAGMA synchronous = NORMAL")
        return db

    def _migrate(self) -> None:
        with self._lock, self._write():
            self._db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
            done = {r[0] for r in self._db.execute("SELECT name FROM _migrations")}
            for migration in MIGRATIONS:
                if migration.__name__ not in done:
                    migration(self._db)
                    self._db.execute("INSERT INTO _migrations VALUES (?, ?)", (migration.__name__, _now()))

    def _write(self):
        return _Transaction(self._db)

    def insert(self, records: Sequence[Record], cache_keys: Sequence[str | None] | None = None) -> None:
        """Append records (setting their ``id``) and, for ok answers, their cache keys."""
        sql = f"INSERT INTO runs ({', '.join(_RECORD_COLUMNS)}) VALUES ({', '.join('?' * len(_RECORD_COLUMNS))})"
        keys = cache_keys or [None] * len(records)
        try:
            with self._lock, self._write():
                for record, key in zip(records, keys, strict=True):
                    row = record.to_row()
                    cur = self._db.execute(sql, [_to_sql(row[c]) for c in _RECORD_COLUMNS])
                    record.id = cur.lastrowid
                    if key is not None and record.status == "ok" and not record.cached:
                        self._db.execute("INSERT OR REPLACE INTO cache VALUES (?, ?, ?)", (key, record.id, _now()))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write to run log {self.path}: {exc}") from exc

    def defer(self, write: Callable[[], None]) -> None:
        """Run ``write`` (inserts) on the store's writer thread, in order, so SQLite stays off the
        event loop that times the calls. :meth:`flush` waits for the queue; a failed write is
        raised there and by every later ``defer`` until then, so a run stops sending (and paying
        for) calls it cannot log."""
        self._writer.put(self, write)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every deferred write is done; raise the first failure (once)."""
        self._writer.drain(timeout)

    def cached(self, keys: Iterable[str]) -> dict[str, dict]:
        """Rows answering each cache key that has one (errors are never cached)."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, dict] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            sql = (f"SELECT cache.key, runs.* FROM cache JOIN runs ON runs.id = cache.row_id "
                   f"WHERE cache.key IN ({', '.join('?' * len(chunk))})")
            with self._lock:
                cur = self._db.execute(sql, chunk)
                names = [d[0] for d in cur.description]
                for values in cur.fetchall():
                    row = dict(zip(names[1:], values[1:], strict=True))
                    found[values[0]] = _from_sql(row)
        return found

    def rows(self, where: str = "", params: Sequence = (), limit: int | None = None) -> list[dict]:
        sql = f"SELECT * FROM runs {where} ORDER BY id"
        if limit is not None:
            sql = f"SELECT * FROM ({sql.replace('ORDER BY id', 'ORDER BY id DESC')} LIMIT {int(limit)}) ORDER BY id"
        with self._lock:
            cur = self._db.execute(sql, list(params))
            names = [d[0] for d in cur.description]
            return [_from_sql(dict(zip(names, values, strict=True))) for values in cur.fetchall()]

    def close(self) -> None:
        try:
            self.flush(timeout=_BUSY_TIMEOUT_S)
        except StoreError:
            pass  # already raised to the run that queued the rows
        with self._lock:
            self._db.close()


def _enable_wal(db: sqlite3.Connection) -> None:
    """Switch a (new) file to WAL. The switch needs an exclusive lock and SQLite reports a
    concurrent opener's lock as 'database is locked' at once, without the busy handler, so
    several processes opening a fresh log together retry here within the busy timeout."""
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class _Writer:
    """The store's writer thread (started on first use): deferred writes, run in order."""

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._queue: list[Callable[[], None]] = []
        self._busy = False
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None

    def put(self, store: Store, write: Callable[[], None]) -> None:
        with self._cv:
            if self._failure is not None:
                raise self._failure
            self._queue.append(write)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, args=(store,), name="llmlab-store", daemon=True)
                self._thread.start()
            self._cv.notify_all()

    def drain(self, timeout: float | None) -> None:
        with self._cv:
            self._cv.wait_for(lambda: not self._queue and not self._busy, timeout)
            failure, self._failure = self._failure, None  # raised once here; the next run tries afresh
        if failure is not None:
            raise failure

    def _run(self, store: Store) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: bool(self._queue))
                batch, self._queue, self._busy = self._queue, [], True
            failure: BaseException | None = None
            for write in batch:
                try:
                    write()
                except Exception as exc:  # kept for flush() and the next put(), which raise it
                    failure = failure or (exc if isinstance(exc, StoreError) else
                                          StoreError(f"cannot write to run log {store.path}: {exc}"))
            with self._cv:
                self._busy = False
                self._failure = self._failure or failure
                self._cv.notify_all()


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT: takes the write lock up front so concurrent writers queue
    on the busy timeout instead of failing with 'database is locked' at commit."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _to_sql(value):
    return int(value) if isinstance(value, bool) else value


def _from_sql(row: dict) -> dict:
    for col in BOOL_COLUMNS:
        if col in row and row[col] is not None:
            row[col] = bool(row[col])
    for col in FLOAT_COLUMNS:
        if col in row and row[col] is None:
            row[col] = float("nan")
    return row
