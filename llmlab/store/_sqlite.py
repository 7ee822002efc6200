"""The SQLite backend (the default, ``$LLMLAB_HOME/runs.sqlite``): WAL mode with a busy timeout
so several kernels on one machine can append at once, short ``BEGIN IMMEDIATE`` write
transactions; a corrupt file is recognised as such.

A log holds every prompt and answer, so the file is the user's alone: created owner-only, and an
existing one (or its ``-wal``/``-shm``) that another user owns, or that the group or the world may
read or write, is refused before anything is written to it (the rule of
:func:`llmlab.base._files.others_can_write`, which ``load_policy`` applies too). Another
application's SQLite database (tables, none of them llmlab's ``_migrations``) is refused as well,
never migrated; an empty file is a new log."""
from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
import time
from pathlib import Path

from ..base._advice import advice
from ..base._errors import ConfigError, StoreError
from ..base._files import file_kind, others_can_read, others_can_write, owned_by_another, private_dir
from ..base._validate import one_line
from ._base import BUSY_TIMEOUT_S, Store
from ._claims import claim_file
from ._schema import Dialect, made_objects

__all__ = ["SQLiteStore", "not_a_log"]

_HEADER = b"SQLite format 3\x00"   # the first 16 bytes of every SQLite database file


class SQLiteStore(Store):
    """One SQLite file. Thread-safe: one connection guarded by a lock."""

    kind = "sqlite"
    dialect = Dialect(real="REAL", integer="INTEGER", id_column="INTEGER PRIMARY KEY AUTOINCREMENT")

    def __init__(self, path: str | os.PathLike, *, chosen_by: str | None = None) -> None:
        self.path, self.chosen_by = str(path), chosen_by
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        try:
            self._open_patiently(self._open_once)
        except (StoreError, ConfigError):
            self.close()
            raise
        except (sqlite3.Error, OSError) as exc:
            failure = self._failure(exc, "open")
            self.close()
            raise failure from None

    def _open_once(self) -> None:
        if self._db is not None:  # an earlier attempt met the log locked: a fresh connection
            self._db.close()
        self._db = self._connect()
        self._check_readable()
        self._migrate()
        self._open_journal()

    def _connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            path = Path(self.path).expanduser()
            private_dir(path.parent)
            _create_private(path)
            self.path = str(path)
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                             check_same_thread=False)
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        # The file's schema (a view, an index's expression, a default) runs no function with side
        # effects and no virtual table: it may come from a stranger (a cloned repository's log).
        db.execute("PRAGMA trusted_schema = OFF")
        if self.path != ":memory:":
            try:
                _refuse_foreign(db, self.path)  # before WAL: switching would change the file
                _enable_wal(db)
                db.execute("PRAGMA synchronous = NORMAL")
            except BaseException:
                db.close()  # not kept open on a file that is refused or cannot be read
                raise
        return db

    def _check_readable(self) -> None:
        """A cheap look at the schema and the newest rows (the pages a sweep touches first);
        the full check runs only on a failure (see ``_failure``)."""
        assert self._db is not None
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table in ("runs", "cache"):
            if table in tables:
                self._db.execute(f"SELECT * FROM {table} ORDER BY rowid DESC LIMIT 2").fetchall()

    @contextlib.contextmanager
    def _conn(self):
        with self._lock:
            yield self._open_db()

    @contextlib.contextmanager
    def _write(self):
        with self._lock:
            db = self._open_db()
            # BEGIN IMMEDIATE takes the write lock up front: concurrent writers queue on the busy
            # timeout instead of failing with 'database is locked' at commit.
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _open_db(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError(f"run log {self.path} is closed (lab.close() was called); make a new Lab")
        return self._db

    def _table_columns(self, db, table: str) -> list[tuple[str, bool]]:
        # table_info: (cid, name, type, notnull, dflt_value, pk); a NOT NULL column with no default
        # needs a value on every insert.
        return [(r[1], bool(r[3]) and r[4] is None and not r[5])
                for r in db.execute(f"PRAGMA table_info({table})").fetchall()]

    def _insert_returning_id(self, db, sql: str, values: list) -> int:
        cursor = db.execute(sql, values)
        if cursor.rowcount != 1 or cursor.lastrowid is None:  # lastrowid would be an older row's
            raise self.not_stored(f"{max(cursor.rowcount, 0)} rows inserted for 1")
        return cursor.lastrowid

    def _changes(self, db) -> int:
        return db.total_changes

    def _foreign_objects(self, db) -> list[str]:
        """Every object of sqlite_master that is not one of the migrations' own — by type, name and,
        for an index, its SQL (a UNIQUE index under llmlab's name is not llmlab's)."""
        made = made_objects(self.dialect)
        found = []
        for kind, name, table, sql in db.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
                "ORDER BY type = 'table', name"):
            if (kind, name) not in made or (kind != "table" and " ".join((sql or "").split()) !=
                                            " ".join(made[(kind, name)].split())):
                found.append(f"{kind} {name!r}" + (f" on {table!r}" if table != name else ""))
        return found

    def _claim_outside(self, run_id: str):
        # an flock beside the log (``_claims``), the file it really is (a log reached through a
        # symlink is the same log); an in-memory log is this process's alone
        if self.path == ":memory:":
            return None
        return claim_file(os.path.realpath(self.path), self._log_id, run_id)

    def _transient(self, exc: Exception) -> bool:
        # another process holds the write lock past the busy timeout: it will let go
        return isinstance(exc, sqlite3.OperationalError) and any(w in str(exc).lower() for w in ("locked", "busy"))

    def _failure(self, exc: Exception, doing: str) -> StoreError:
        if isinstance(exc, sqlite3.DatabaseError) and _corrupt(exc) and self.path != ":memory:":
            detail = self._integrity() or one_line(exc)
            return StoreError(
                f"run log {self.path} is damaged ({detail}); nothing more is sent. Move it aside and "
                f"{advice('another_log')}; `sqlite3 {self.path} .recover > recovered.sql` saves what it can")
        return super()._failure(exc, doing)

    def _integrity(self) -> str | None:
        try:
            with self._lock:
                rows = sqlite3.connect(self.path, timeout=5).execute("PRAGMA quick_check(3)").fetchall()
        except sqlite3.Error as exc:
            return one_line(exc)
        lines = [line.strip() for r in rows if r[0] != "ok" for line in str(r[0]).splitlines()]
        problems = [line for line in lines if line and not line.startswith("***")]
        return "; ".join(problems)[:300] if problems else None

    def close(self) -> None:
        try:
            self.flush(timeout=BUSY_TIMEOUT_S)
        except StoreError:
            pass  # already raised to the run that queued the rows
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def _create_private(path: Path) -> None:
    """The log file, owner-only from its first byte when it is new; an existing one is checked
    as opened (fstat: not a file swapped in after a look), and so are its -wal and -shm files
    (they hold the latest rows)."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR | getattr(os, "O_NONBLOCK", 0), 0o600)  # a FIFO never blocks
    try:
        _refuse_shared(path, os.fstat(fd))
    finally:
        os.close(fd)
    for companion in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            _refuse_shared(companion, os.stat(companion))
        except FileNotFoundError:
            continue


def _refuse_shared(path: Path, info: os.stat_result) -> None:
    """A StoreError when ``path`` is no file, or other users could read or change what is stored."""
    kind = file_kind(info.st_mode)
    if kind is not None:
        raise StoreError(f"run log {path} is {kind}, not a file; {advice('another_log')}")
    mode = stat.filemode(info.st_mode)
    if owned_by_another(info):
        raise StoreError(f"run log {path} belongs to another user (owner uid {info.st_uid}, mode {mode}), who could "
                         f"read every prompt and answer stored there; nothing was written; {advice('another_log')}")
    if others_can_write(info) or others_can_read(info):
        raise StoreError(f"run log {path} can be read or changed by other users (mode {mode}): every prompt and "
                         f"answer stored there would be theirs; nothing was written. Make it owner-only "
                         f"(chmod 600 {path}) or {advice('another_log')}")


def _refuse_foreign(db: sqlite3.Connection, path: str) -> None:
    """Another application's SQLite database is not made a log: migrating it would add llmlab's
    tables next to its own. A file with no tables (new, empty) is a new log; every llmlab log has
    ``_migrations`` (made in the same transaction as its other tables)."""
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")}
    if names and "_migrations" not in names:
        raise StoreError(f"run log {path} is another application's SQLite database (it has tables, none of them "
                         f"llmlab's _migrations) and was left as it is; a log needs a file of its own: "
                         f"{advice('another_log')}")


def not_a_log(path: str | os.PathLike) -> str | None:
    """Why the existing file ``path`` is not an llmlab log (an empty file, not SQLite, SQLite
    without the runs table), or None when it is one (or looks damaged: opening it says how). Read
    only: a reader must not turn someone's file into a log."""
    path = Path(path).expanduser()
    with open(path, "rb") as f:
        head = f.read(len(_HEADER))
    if not head:
        return "an empty file"
    if head != _HEADER:
        return "not a SQLite file"
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return None    # damaged: SQLiteStore names it and says how to recover
    return None if "runs" in tables else "a SQLite database without llmlab's runs table"


def _corrupt(exc: sqlite3.DatabaseError) -> bool:
    if isinstance(exc, sqlite3.OperationalError) and "malformed" not in str(exc):
        return False  # locked, read-only, disk full: the file itself is fine
    text = str(exc).lower()
    return any(s in text for s in ("malformed", "not a database", "corrupt", "disk i/o"))


def _enable_wal(db: sqlite3.Connection) -> None:
    """Switch a (new) file to WAL. The switch needs an exclusive lock and SQLite reports a
    concurrent opener's lock as 'database is locked' at once, without the busy handler, so
    several processes opening a fresh log together retry here within the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
