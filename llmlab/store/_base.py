"""The run log and response cache: every query, backend-neutral, and the writer thread.

A backend (:mod:`._sqlite`, :mod:`._postgres`) supplies connections (``_conn``/``_write``), its
placeholder, its :class:`~._schema.Dialect` and how it reports table columns; everything else —
migrating, refusing a newer llmlab's log, inserts, cache look-ups, resumes, counts, bulk reads —
is written once here. Every database error becomes a one-line :class:`StoreError` that says what to
do.
"""
from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from ..base._advice import advice
from ..base._errors import ConfigError, StoreError
from ..base._record import BOOL_COLUMNS, COLUMNS, FLOAT_COLUMNS, Record
from ..base._validate import one_line, read_finite
from ..base._version import __version__
from . import _claims, _journal
from ._schema import (
    KNOWN_MIGRATIONS,
    LABEL_COLUMNS,
    MIGRATIONS,
    MIGRATIONS_TABLE,
    RECORD_COLUMNS,
    Dialect,
    stored_range,
)

__all__ = ["Store", "DeferredRows", "LogUnavailable", "BUSY_TIMEOUT_S", "LOG_WAIT_S", "BATCH_PART_COLUMNS"]

BUSY_TIMEOUT_S = 30.0
BATCH_PART_COLUMNS = ("part_id", "run_id", "model", "part", "endpoint", "requests", "input_file_id", "batch_id",
                      "status", "created_at", "stored_at")
# How long a write (or a read) waits for a log that is locked by another process or whose server
# is unreachable, retrying with backoff (a reconnect each time), before its rows go to the journal.
LOG_WAIT_S = 120.0
_BACKOFF_S = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


class LogUnavailable(StoreError):
    """The log was locked or unreachable for ``LOG_WAIT_S``: nothing is wrong with the rows (they
    are in the journal and stored when the log next accepts a write)."""


_CLAIMS_LOCK = threading.Lock()  # guards every Store's in-process claims
_FETCH_ROWS = 20_000  # rows per fetchmany: bulk reads convert column-wise, chunk by chunk


class Store:
    """Every query of the log. Subclasses provide connections; all public methods raise
    :class:`StoreError` (never a driver exception)."""

    kind = "?"
    param = "?"
    dialect: Dialect
    path: str
    # The project file that chose this log (./.env, pyproject.toml), None when the user did. A log a
    # project chose is never a cache source: :meth:`cached` finds nothing in it (rows still go in).
    chosen_by: str | None = None
    _writer: _Writer | None = None  # started on the first deferred write

    # -- backend hooks ----------------------------------------------------------------------
    def _conn(self) -> contextlib.AbstractContextManager:  # a connection for reads
        raise NotImplementedError

    def _write(self) -> contextlib.AbstractContextManager:  # a connection in a write transaction
        raise NotImplementedError

    def _table_columns(self, db, table: str) -> list[tuple[str, bool]]:  # (name, required) pairs
        raise NotImplementedError

    def _lock_schema(self, db) -> None:  # serialise concurrent migrations (SQLite: BEGIN IMMEDIATE does)
        pass

    def _insert_returning_id(self, db, sql: str, values: list) -> int:
        """Insert one row and return its id; a :class:`StoreError` (``not_stored``) when the log
        stored no row (a trigger or rule dropped it)."""
        raise NotImplementedError

    def _foreign_objects(self, db) -> list[str]:
        """The objects of the log llmlab's migrations do not make ("trigger t on runs"), as found
        before migrating (a trigger would run in the migration too)."""
        raise NotImplementedError

    def _changes(self, db) -> int | None:  # rows changed on this connection so far, triggers' included
        return None

    def _failure(self, exc: Exception, doing: str) -> StoreError:
        return StoreError(f"cannot {doing} run log {self.path}: {one_line(exc)}")

    def _transient(self, exc: Exception) -> bool:  # locked, or the server went away: worth waiting for
        return False

    def _transient_at_open(self, exc: Exception) -> bool:  # worth waiting for before the log is open
        return self._transient(exc)

    _open_deadline: float | None = None  # when an open stops waiting (``_open_patiently``)
    _journal_file: Any = None  # the journal's path (``_journal.journal_path``), set by ``_open_journal``
    _log_id = ""  # what this log's journal lines name (``_journal.log_identity``), set by ``_migrate``
    _journal_refused = False  # its journal is not this log's: left alone (warned once)
    _journaling = False  # the log stayed unavailable: rows go to the journal until the next flush
    _claimed: set[str] | None = None  # the runs this Store's callers hold the claim of (``claim_run``)

    def close(self) -> None:
        raise NotImplementedError

    # -- schema -----------------------------------------------------------------------------
    def _migrate(self) -> None:
        with self._write() as db:
            self._lock_schema(db)
            self._refuse_foreign_objects(self._foreign_objects(db))
            db.execute(MIGRATIONS_TABLE)
            done = [r[0] for r in db.execute("SELECT name FROM _migrations").fetchall()]
            _refuse_newer(self.path, [n for n in done if n not in KNOWN_MIGRATIONS], "migration")
            self._refuse_lost_records(db, done)
            for migration in MIGRATIONS:
                if migration.__name__ not in done:
                    for statement in migration(self.dialect):
                        db.execute(statement)
                    db.execute(f"INSERT INTO _migrations VALUES ({self.param}, {self.param})",
                               (migration.__name__, _now()))
            self._check_columns(db)
            created = db.execute(f"SELECT applied_at FROM _migrations WHERE name = {self.param}",
                                 ("m001_initial",)).fetchone()
            self._log_id = _journal.log_identity(str(created[0]))

    def _refuse_lost_records(self, db, done: list[str]) -> None:
        """A log whose ``_migrations`` lost the record of a migration its tables have (m001 deleted,
        the table emptied, one in the middle removed) would be migrated again over its own tables
        and fail with the database's words ("table runs already exists"): refused saying why."""
        names = [m.__name__ for m in MIGRATIONS]
        last = max((names.index(n) for n in done if n in names), default=0)  # the latest recorded
        lost = [n for n in names[:last] if n not in done]
        if not done and self._table_columns(db, "runs"):
            lost = names[:1]
        if lost:
            raise StoreError(f"run log {self.path} has llmlab's tables but its _migrations table has no record of "
                             f"{lost[0]}: it was edited or not written by llmlab; nothing was changed. Move it aside "
                             f"or {advice('another_log')}")

    def _refuse_foreign_objects(self, found: list[str]) -> None:
        """A log holding an object llmlab did not make — a trigger that drops or rewrites the answers
        llmlab stores, a view, a table or an index — is refused when a project file chose it (a
        cloned repository's log must not decide what is stored or shown), and warned about when the
        user did (their own view or index, a DBA's audit trigger on a shared server, stays usable;
        every insert still checks it stored exactly its rows)."""
        if not found:
            return
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        what = f"{one_line(found[0], 120)}{more}, which llmlab did not make"
        if self.chosen_by is not None:
            raise ConfigError(f"{self.chosen_by} chooses the run log {self.path}, which holds {what}: it could drop "
                              f"or change the answers stored and shown; nothing was sent. Remove it from the log or "
                              f"{advice('another_log')}")
        warnings.warn(f"run log {self.path} holds {what}; it could drop or change the answers stored and shown "
                      "(every insert is checked: a row it drops or changes is a failed write)", stacklevel=2)

    def _check_columns(self, db) -> None:
        """Refuse a log whose tables need values this llmlab cannot write (a newer llmlab's)."""
        for table, known in (("runs", {"id", *RECORD_COLUMNS}), ("cache", {"key", "row_id", "created_at"}),
                             ("labels", {"id", "undone_at", *LABEL_COLUMNS})):
            columns = self._table_columns(db, table)
            missing = known - {name for name, _ in columns}
            if missing:
                raise StoreError(f"run log {self.path}: table {table} lacks column {sorted(missing)[0]!r}; "
                                 f"it was not made by llmlab — {advice('another_log')}")
            _refuse_newer(self.path, [n for n, required in columns if required and n not in known], "column")

    # -- writes -----------------------------------------------------------------------------
    def insert(self, records: Sequence[Record], cache_keys: Sequence[str | None] | None = None) -> None:
        """Append records (setting their ``id``) and, for fresh ok answers, their cache keys.
        One short transaction: all of them or none. A locked or unreachable log is waited for
        (with backoff, reconnecting) up to ``LOG_WAIT_S``; then the rows go to the journal and
        :class:`LogUnavailable` is raised. Journaled rows are replayed first, once the log takes
        writes again."""
        keys = list(cache_keys or [None] * len(records))
        if self._journaling:
            raise self._journaled(records, keys, None)
        try:
            self._patiently(lambda: self._write_now(records, keys))
        except _StillUnavailable as waited:
            raise self._journaled(records, keys, waited.cause) from None

    def _journaled(self, records: Sequence[Record], keys: list[str | None], cause: Exception | None) -> StoreError:
        self._journaling = True
        if self._journal_file is None:
            return self._failure(cause or RuntimeError("unavailable"), "write to")
        try:
            _journal.append(self._journal_file, records, keys, log=self._log_id)
        except OSError as exc:
            return StoreError(f"cannot write to run log {self.path} ({one_line(cause or 'unavailable')}) nor to "
                              f"its journal {self._journal_file} ({one_line(exc)})")
        why = f" for {LOG_WAIT_S:g} s ({one_line(cause)})" if cause is not None else ""
        return LogUnavailable(f"run log {self.path} could not be written{why}; the finished attempts are kept in "
                              f"{self._journal_file} and stored when the log next takes a write")

    def _open_patiently(self, open_once: Callable[[], None]) -> None:
        """``open_once()`` (connect, migrate, replay the journal), retried with backoff while another
        process has the log locked (or, for a server, refuses connections), up to ``LOG_WAIT_S`` like
        every read and write; then its error. A server that waits for locks itself is told to stop
        waiting at ``_open_deadline`` (see ``PostgresStore._lock_schema``)."""
        deadline, attempt = time.monotonic() + LOG_WAIT_S, 0
        self._open_deadline = deadline
        while True:
            try:
                return open_once()
            except StoreError:
                raise
            except Exception as exc:  # noqa: BLE001 - the caller makes the last one a StoreError line
                delay = _BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)]
                if not self._transient_at_open(exc) or time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                attempt += 1

    def _patiently(self, action: Callable[[], Any]) -> Any:
        """``action()``, retried with backoff while the log is locked or unreachable, up to
        ``LOG_WAIT_S``; then :class:`_StillUnavailable`."""
        deadline = time.monotonic() + LOG_WAIT_S
        for attempt in range(10**6):
            try:
                return action()
            except _Unavailable as exc:
                delay = _BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)]
                if time.monotonic() + delay > deadline:
                    raise _StillUnavailable(exc.cause) from None
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _write_now(self, records: Sequence[Record], keys: Sequence[str | None]) -> None:
        try:
            self._replay_journal()  # what an earlier run journaled goes first
        except StoreError:
            pass  # a journal the log refuses stays where it is (for the user to see); new rows go on
        self._insert_once(records, keys)

    def _journal_identity(self) -> str:
        """What names a log's journal besides its path: the log as connected (PostgreSQL adds
        its database and schema)."""
        return self._log_id

    def _open_journal(self) -> None:
        """Where this log's journal is; rows left there by an earlier run are stored now."""
        self._journal_file = _journal.journal_path(self.kind, self.path, self._journal_identity())
        if self.kind == "postgresql" and self._journal_file is not None:
            _journal.adopt(_journal.url_journal_path(self.path), self._journal_file, log=self._log_id)
        try:
            self._replay_journal()
        except (_Unavailable, StoreError):
            pass  # replayed by the first write that gets through

    def _replay_journal(self) -> None:
        if self._journal_file is None or self._journal_refused or not os.path.lexists(self._journal_file):
            return
        try:
            _journal.check(self._journal_file)
            taken = _journal.claim(self._journal_file)
            if taken is None:
                return  # another process took it
            try:
                records, keys = _journal.read(taken, log=self._log_id)
            except _journal.Refused:
                _journal.put_back(taken, self._journal_file)
                raise
        except _journal.Refused as why:
            self._journal_refused = True
            warnings.warn(f"run log {self.path}: its journal {self._journal_file} was not replayed: {why}; it was "
                          f"left as it is and nothing from it was stored (remove it if it is not yours)",
                          stacklevel=2)
            return
        try:
            if records:
                self._insert_once(records, keys)
        except BaseException:
            _journal.restore(taken, self._journal_file)
            raise
        taken.unlink()

    def _insert_once(self, records: Sequence[Record], keys: Sequence[str | None]) -> None:
        p = self.param
        sql = f"INSERT INTO runs ({', '.join(RECORD_COLUMNS)}) VALUES ({', '.join([p] * len(RECORD_COLUMNS))})"
        upsert = (f"INSERT INTO cache VALUES ({p}, {p}, {p}) "
                  "ON CONFLICT (key) DO UPDATE SET row_id = excluded.row_id, created_at = excluded.created_at")
        try:
            with self._write() as db:
                ids, before, changes = [], self._changes(db), 0
                for record, key in zip(records, keys, strict=True):
                    row_id = self._insert_returning_id(db, sql, _values(record))
                    ids.append(row_id)
                    if key is not None and record.status == "ok" and not record.cached:
                        db.execute(upsert, (key, row_id, _now()))
                        changes += 1
                self._check_changes(db, before, len(ids) + changes)
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - every driver error becomes one StoreError line
            if self._transient(exc):
                raise _Unavailable(exc) from None
            raise self._failure(exc, "write to") from None
        for record, row_id in zip(records, ids, strict=True):
            record.id = row_id  # only once committed

    def _check_changes(self, db, before: int | None, expected: int) -> None:
        """Exactly the rows meant were changed: a trigger that also rewrites a row (or copies a prompt
        elsewhere) makes the write a failed one, rolled back — its rows go the way of any refused write."""
        after = self._changes(db)
        if before is not None and after is not None and after - before != expected:
            raise self.not_stored(f"{after - before} rows changed for {expected}")

    def not_stored(self, detail: str) -> StoreError:
        return StoreError(f"run log {self.path} did not store the rows as written ({detail}: a trigger, rule or "
                          f"constraint of the log dropped or changed them); nothing of them was kept there")

    def defer(self, write: Callable[[], None]) -> None:
        """Run ``write`` (inserts) on the store's writer thread, in order, so the database stays off
        the event loop that times the calls. :meth:`flush` waits for the queue; a failed write is
        raised there and by every later ``defer`` until then, so a run stops sending (and paying
        for) calls it cannot log. A :class:`DeferredRows` waiting next to others is committed with
        them in one transaction (one commit instead of one per row when many calls finish
        together); if that transaction fails, each is written on its own, as ``write()``."""
        if self._writer is None:
            self._writer = _Writer()
        self._writer.put(self, write)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every deferred write is done; raise the first failure (once). The next run
        tries the log afresh (and replays the journal)."""
        if self._writer is not None:
            try:
                self._writer.drain(timeout)
            finally:
                self._journaling = False

    def _flush_before_close(self) -> None:
        try:
            self.flush(timeout=BUSY_TIMEOUT_S)
        except StoreError:
            pass  # already raised to the run that queued the rows

    # -- human labels -------------------------------------------------------------------------
    def add_label(self, label: dict) -> int:
        """Store one label (the columns of ``LABEL_COLUMNS``; ``created_at`` is now) at once, in its
        own transaction — a grader's vote is in the log before the next item shows. Its id."""
        values = [_now() if c == "created_at" else label.get(c) for c in LABEL_COLUMNS]
        sql = (f"INSERT INTO labels ({', '.join(LABEL_COLUMNS)}) "
               f"VALUES ({', '.join([self.param] * len(LABEL_COLUMNS))})")
        try:
            with self._write() as db:
                before = self._changes(db)
                row_id = self._insert_returning_id(db, sql, values)
                self._check_changes(db, before, 1)
                return row_id
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - every driver error becomes one StoreError line
            raise self._failure(exc, "write to") from None

    def undo_label(self, label_id: int) -> bool:
        """Mark a label undone (kept in the log with ``undone_at``; ``labels()`` leaves it out);
        False if no label of that id is left to undo."""
        sql = f"UPDATE labels SET undone_at = {self.param} WHERE id = {self.param} AND undone_at IS NULL"
        try:
            with self._write() as db:
                return db.execute(sql, (_now(), int(label_id))).rowcount > 0
        except Exception as exc:  # noqa: BLE001 - every driver error becomes one StoreError line
            raise self._failure(exc, "write to") from None

    def labels(self, *, grading: str | None = None, who: str | None = None,
               undone: bool = False) -> tuple[list[str], list[tuple]]:
        """Label rows (oldest first) of a grading and/or grader; undone ones only if ``undone``."""
        clauses, params = [] if undone else ["undone_at IS NULL"], []
        for column, value in (("grading", grading), ("who", who)):
            if value is not None:
                clauses.append(f"{column} = {self.param}")
                params.append(value)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        names: list[str] = ["id", *LABEL_COLUMNS, "undone_at"]
        rows = [values for _, values in self._query(f"SELECT {', '.join(names)} FROM labels {where} ORDER BY id",
                                                     params)]
        return names, rows

    def answers(self, ids: Sequence[int]) -> dict[int, tuple]:
        """{row id: (prompt_id, requested_model, response_text)} of those of ``ids`` in the log."""
        ids = list(dict.fromkeys(int(i) for i in ids))
        if not ids:
            return {}
        sql = (f"SELECT id, prompt_id, requested_model, response_text FROM runs "
               f"WHERE id IN ({', '.join([self.param] * len(ids))})")
        return {int(values[0]): tuple(values[1:]) for _, values in self._query(sql, ids)}

    # -- run claims (see ``_claims``) ---------------------------------------------------------
    @contextlib.contextmanager
    def claim_run(self, run_id: str) -> Iterator[None]:
        """Hold ``run_id``'s claim while the block runs: :class:`~._claims.RunInUse` at once when
        another process, or another call of this one, holds it (nothing is sent then)."""
        with _CLAIMS_LOCK:
            if self._claimed is None:
                self._claimed = set()
            held = self._claimed
            if run_id in held:
                raise _claims.refused(run_id, _claims.owner_text())
            held.add(run_id)
        try:
            release = self._claim_outside(run_id)
        except BaseException:
            with _CLAIMS_LOCK:
                held.discard(run_id)
            raise
        try:
            yield
        finally:
            try:
                if release is not None:
                    release()
            finally:
                with _CLAIMS_LOCK:
                    held.discard(run_id)

    def _claim_outside(self, run_id: str) -> Callable[[], None] | None:  # the backend's claim; its release
        return None

    # -- reads ------------------------------------------------------------------------------
    def cached(self, keys: Iterable[str]) -> dict[str, dict]:
        """Rows answering each cache key that has one (errors are never cached). A log a project file
        chose answers none: a cloned repository's log cannot put its answers in your results."""
        if self.chosen_by is not None:
            return {}
        keys = list(dict.fromkeys(keys))
        found: dict[str, dict] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            sql = (f"SELECT cache.key, runs.* FROM cache JOIN runs ON runs.id = cache.row_id "
                   f"WHERE cache.key IN ({', '.join([self.param] * len(chunk))})")
            for names, values in self._query(sql, chunk):
                found[values[0]] = _from_sql(dict(zip(names[1:], values[1:], strict=True)))
        return found

    def done(self, run_id: str, jobs: Sequence[tuple[str, str, int]]) -> set[tuple[str, str, int]]:
        """Which (prompt_id, model, repeat) of ``jobs`` already have an ok row in ``run_id``."""
        found: set[tuple[str, str, int]] = set()
        prompt_ids = list(dict.fromkeys(j[0] for j in jobs))
        for start in range(0, len(prompt_ids), 500):
            chunk = prompt_ids[start:start + 500]
            sql = (f"SELECT prompt_id, requested_model, repeat FROM runs WHERE run_id = {self.param} "
                   f"AND status = 'ok' AND prompt_id IN ({', '.join([self.param] * len(chunk))})")
            found.update((r[0], r[1], int(r[2])) for _, r in self._query(sql, [run_id, *chunk]))
        return found & set(jobs)

    def has_run(self, run_id: str) -> bool:
        sql = f"SELECT 1 FROM runs WHERE run_id = {self.param} LIMIT 1"
        return any(True for _ in self._query(sql, [run_id]))

    def count(self, run_id: str | None = None, *, failed: bool = False) -> int:
        where, params = self._where(run_id=run_id, model=None, status=None, since=None)
        if failed:
            where += (" AND " if where else "WHERE ") + "status <> 'ok'"
        return int(next(self._query(f"SELECT COUNT(*) FROM runs {where}", params))[1][0])

    # -- the Batch API's parts (llmlab.engine._batch) ------------------------------------------
    def add_batch_part(self, part: Mapping[str, Any]) -> None:
        """A part's row (its requests follow with :meth:`add_batch_requests`)."""
        self._execute(f"INSERT INTO batch_parts ({', '.join(BATCH_PART_COLUMNS)}) VALUES "
                      f"({', '.join([self.param] * len(BATCH_PART_COLUMNS))})",
                      [[part.get(c) for c in BATCH_PART_COLUMNS]])

    def add_batch_requests(self, part_id: str, rows: Sequence[tuple[str, str]]) -> None:
        """(custom_id, the request's row so far as JSON) of a part, in one transaction."""
        p = self.param
        self._execute(f"INSERT INTO batch_requests (part_id, custom_id, record) VALUES ({p}, {p}, {p})",
                      [(part_id, custom_id, record) for custom_id, record in rows])

    def update_batch_part(self, part_id: str, **changes: Any) -> None:
        unknown = set(changes) - set(BATCH_PART_COLUMNS)
        assert not unknown, unknown
        sets = ", ".join(f"{name} = {self.param}" for name in changes)
        self._execute(f"UPDATE batch_parts SET {sets} WHERE part_id = {self.param}", [[*changes.values(), part_id]])

    def drop_batch_part(self, part_id: str) -> None:
        """A part that was never sent (its planning was cut short), with its requests."""
        p = self.param
        self._execute([f"DELETE FROM batch_requests WHERE part_id = {p}",
                       f"DELETE FROM batch_parts WHERE part_id = {p}"], [[part_id]])

    def batch_parts(self, run_id: str | None = None) -> list[dict]:
        """The parts of ``run_id`` (every run's when None), in the order they were planned."""
        where, params = (f"WHERE run_id = {self.param}", [run_id]) if run_id is not None else ("", [])
        sql = f"SELECT {', '.join(BATCH_PART_COLUMNS)} FROM batch_parts {where} ORDER BY created_at, part"
        return [dict(zip(names, values, strict=True)) for names, values in self._query(sql, params)]

    def batch_requests(self, part_id: str, custom_ids: Sequence[str] | None = None,
                       ids_only: bool = False) -> Iterator[tuple[str, str | None]]:
        """(custom_id, row JSON) of a part's requests — all, or those named — a chunk at a time."""
        what = "custom_id, NULL" if ids_only else "custom_id, record"
        if custom_ids is None:
            sql = f"SELECT {what} FROM batch_requests WHERE part_id = {self.param} ORDER BY custom_id"
            yield from (tuple(values) for _, values in self._query(sql, [part_id]))
            return
        ids = list(custom_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            sql = (f"SELECT {what} FROM batch_requests WHERE part_id = {self.param} "
                   f"AND custom_id IN ({', '.join([self.param] * len(chunk))})")
            yield from (tuple(values) for _, values in self._query(sql, [part_id, *chunk]))

    def stored_requests(self, run_id: str, batch_id: str) -> set[str]:
        """Request ids with a row from ``batch_id`` already (a collection cut short is not stored twice)."""
        p = self.param
        sql = f"SELECT request_id FROM runs WHERE run_id = {p} AND batch_id = {p}"
        return {values[0] for _, values in self._query(sql, [run_id, batch_id])}

    def _execute(self, sql: str | Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Statements (each run over ``rows``) in one write transaction, as one StoreError line."""
        try:
            with self._write() as db:
                for statement in [sql] if isinstance(sql, str) else sql:
                    db.cursor().executemany(statement, [list(r) for r in rows])
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - every driver error becomes one StoreError line
            raise self._failure(exc, "write to") from None

    def select(self, *, columns: Sequence[str] | None = None, run_id: str | Sequence[str] | None = None,
               model: str | Sequence[str] | None = None, status: str | None = None, since: str | None = None,
               limit: int | None = None, order: str = "id") -> tuple[list[str], Iterator[list[tuple]]]:
        """Column names and an iterator of row chunks (tuples) matching the filters, in SQL."""
        names, sql, params = self._select_sql(columns=columns, run_id=run_id, model=model, status=status,
                                              since=since, limit=limit, order=order)
        strip = len(names) if limit is not None else None  # the helper column of a limited read
        return names, (chunk if strip is None else [row[:strip] for row in chunk]
                       for _, chunk in self._raw_chunks(sql, params))

    def _select_sql(self, *, columns, run_id, model, status, since, limit, order) -> tuple[list[str], str, list]:
        names = list(columns) if columns is not None else list(COLUMNS)
        where, params = self._where(run_id=run_id, model=model, status=status, since=since)
        order_by = "seq, attempt, id" if order == "job" else "id"
        sql = f"SELECT {', '.join(names)} FROM runs {where} ORDER BY {order_by}"
        if limit is not None:  # the last ``limit`` rows, still oldest first
            sql = (f"SELECT * FROM (SELECT {', '.join(names)}, id AS _id FROM runs {where} ORDER BY id DESC "
                   f"LIMIT {int(limit)}) AS last_rows ORDER BY _id")
        return names, sql, params

    def select_batches(self, **filters: Any) -> tuple[list[str], Iterator[Any]]:
        """``select`` as typed Arrow record batches (see ``_columnar``)."""
        from ._columnar import rows_to_batch

        names, chunks = self.select(**filters)
        return names, (rows_to_batch(names, chunk) for chunk in chunks)

    def frame(self, **filters: Any):
        """``select`` as a typed DataFrame, built column-wise (never per-row dicts)."""
        from ._columnar import batches_to_frame

        names, batches = self.select_batches(**filters)
        return batches_to_frame(names, batches)

    def _where(self, *, run_id, model, status, since) -> tuple[str, list]:
        clauses, params = [], []
        for column, value in (("run_id", run_id), ("requested_model", model), ("status", status)):
            if value is None:
                continue
            values = [value] if isinstance(value, str) else list(value)
            clauses.append(f"{column} IN ({', '.join([self.param] * len(values))})")
            params += values
        if since is not None:
            clauses.append(f"started_at >= {self.param}")
            params.append(since)
        return ("WHERE " + " AND ".join(clauses) if clauses else ""), params

    def _query(self, sql: str, params: Sequence) -> Iterator[tuple[list[str], tuple]]:
        for names, chunk in self._raw_chunks(sql, params):
            for values in chunk:
                yield names, values

    def _raw_chunks(self, sql: str, params: Sequence) -> Iterator[tuple[list[str], list[tuple]]]:
        """The query's rows a chunk at a time. A locked or unreachable log is waited for (with
        backoff, reconnecting each time) up to ``LOG_WAIT_S``, as long as no chunk was read."""
        deadline, attempt = time.monotonic() + LOG_WAIT_S, 0
        while True:
            started = False
            try:
                with self._conn() as db:
                    cur = db.execute(sql, list(params))
                    names = [d[0] for d in cur.description]
                    while chunk := cur.fetchmany(_FETCH_ROWS):
                        started = True
                        yield names, chunk
                return
            except StoreError:
                raise
            except Exception as exc:  # noqa: BLE001 - every driver error becomes one StoreError line
                delay = _BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)]
                if started or not self._transient(exc) or time.monotonic() + delay > deadline:
                    raise self._failure(exc, "read") from None
                time.sleep(delay)
                attempt += 1


class _Unavailable(Exception):
    """One attempt met a locked or unreachable log (``cause``: the driver's error)."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _StillUnavailable(_Unavailable):
    """The log stayed locked or unreachable for ``LOG_WAIT_S``."""


def _refuse_newer(path: str, unknown: list[str], what: str) -> None:
    if unknown:
        raise StoreError(f"run log {path} was written by a newer llmlab (unknown {what} {unknown[0]!r}; this is "
                         f"llmlab {__version__}): upgrade llmlab (pip install -U llmlab) or {advice('another_log')}; "
                         "nothing was sent")


class DeferredRows:
    """A deferred insert the writer may commit together with its neighbours: on success it sets
    the records' ids and calls ``done``; otherwise the writer calls the object itself (``write``:
    the caller's own handling of refused rows)."""

    def __init__(self, records: Sequence[Record], keys: Sequence[str | None] | None,
                 write: Callable[[], None], done: Callable[[], None],
                 lost: Callable[[StoreError], None] | None = None) -> None:
        self.records, self.keys, self._write, self.done = records, keys, write, done
        self.lost = lost  # the rows went to the journal (the log was unavailable): not stored

    def __call__(self) -> None:
        self._write()


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
            for write in _grouped(store, batch):
                try:
                    write()
                except Exception as exc:  # kept for flush() and the next put(), which raise it
                    failure = failure or (exc if isinstance(exc, StoreError) else
                                          StoreError(f"cannot write to run log {store.path}: {exc}"))
            with self._cv:
                self._busy = False
                self._failure = self._failure or failure
                self._cv.notify_all()


def _grouped(store: Store, batch: list[Callable[[], None]]) -> Iterator[Callable[[], None]]:
    """The batch's writes, each run of waiting rows as one write that commits them together."""
    i = 0
    while i < len(batch):
        j = i
        while j < len(batch) and isinstance(batch[j], DeferredRows):
            j += 1
        if j - i > 1:
            yield functools.partial(_insert_together, store, cast("list[DeferredRows]", batch[i:j]))
            i = j
        else:
            yield batch[i]
            i += 1


def _insert_together(store: Store, group: list[DeferredRows]) -> None:
    """One transaction for the group; if the log refuses it, each is written on its own (with its
    own handling of refused rows) and the first failure is raised once all have been tried."""
    records = [r for rows in group for r in rows.records]
    keys = [k for rows in group for k in (rows.keys or [None] * len(rows.records))]
    try:
        store.insert(records, keys)
    except LogUnavailable as exc:  # all of them are in the journal: none is written again
        for rows in group:
            if rows.lost is not None:
                rows.lost(exc)
        raise
    except StoreError:
        failure: Exception | None = None
        for rows in group:
            try:
                rows()
            except Exception as exc:  # noqa: BLE001 - the writer reports the first one
                failure = failure or exc
        if failure is not None:
            raise failure from None
        return
    for rows in group:
        rows.done()


def _now() -> str:
    return datetime.now(UTC).isoformat()



def _values(record: Record) -> list:
    return [_to_sql(getattr(record, c)) for c in RECORD_COLUMNS]


def _to_sql(value):
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value != value:
        return None  # NaN is "unknown": NULL in both backends (PostgreSQL would keep a real NaN)
    return value


def _from_sql(row: dict) -> dict:
    for col in BOOL_COLUMNS:
        if col in row and row[col] is not None:
            row[col] = bool(row[col])
    for col in FLOAT_COLUMNS:  # the one finite-number rule: -inf, a negative cost… are unknown (NaN)
        if col in row:
            lo, hi = stored_range(col)
            number = read_finite(row[col], lo=lo, hi=hi)
            row[col] = float("nan") if number is None else number
    return row
