"""The journal: finished attempts a log could not take, kept in a file until it can.

When the log stays locked (another process holds SQLite's write lock) or its server stays
unreachable (PostgreSQL down) past ``LOG_WAIT_S``, the rows a run could not store are appended here
— one JSON line each, owner-only, flushed to disk — instead of being lost. The next time the log
accepts a write (the next open, or the next run's first write) the journal is claimed (renamed, so
two processes never replay it twice), its rows are inserted, and it is removed. A SQLite log's
journal sits next to it (``runs.sqlite.llmlab-journal``); a PostgreSQL log's under
``$LLMLAB_HOME`` (``journal-<hash of the log's identity, database and schema>.jsonl``).

A journal is only a file next to the log, which a cloned folder may ship; so it is replayed only
when it passes the log's own file rules and belongs to this log. It must be a regular file (not
a symlink, FIFO or device: refused before anything blocks or reads without end), owned by this
user, writable and readable by no one else, at most ``MAX_JOURNAL_BYTES`` (256 MB: appending
past it fails like a full disk, so llmlab never writes one it would not replay), and every line
must name this log: the identity is a hash of when the log was created (its ``m001_initial``
migration time, to the microsecond — which only someone who can read the log knows). A journal
that fails any of this is left where it is, untouched, with one warning naming why, and nothing
from it is stored. One that passes is as trusted as the log itself, so its answers become cache
entries again as they would have been. A journal written by an llmlab before this rule names no
log and is refused the same way.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from ..base._config import llmlab_home
from ..base._errors import InputError
from ..base._files import others_can_read, others_can_write, owned_by_another, private_dir, read_regular
from ..base._json import loads
from ..base._record import Record

__all__ = ["MAX_JOURNAL_BYTES", "journal_path", "url_journal_path", "adopt", "log_identity", "append", "check",
           "claim", "read", "put_back", "restore", "Refused"]

_FIELDS = {f.name for f in fields(Record)}
MAX_JOURNAL_BYTES = 256 * 2**20


class Refused(Exception):
    """The journal is not this log's (or breaks the file rules): why, in a few words."""


def log_identity(created_at: str) -> str:
    """What a journal records of the log it belongs to: a hash of the log's creation time."""
    return hashlib.sha256(f"llmlab-log:{created_at}".encode()).hexdigest()[:32]


def journal_path(kind: str, path: str, identity: str) -> Path | None:
    """Where a log's journal lives (None for an in-memory log: nothing outlives it). A SQLite log's
    sits next to its file; a PostgreSQL log's is named by ``identity`` — the log as connected
    (its ``log_identity``, database and schema), never by the URL it was spelled with: two logs
    whose URLs differ only in a masked part (``options=-csearch_path=…``) get two journals, one
    log spelled two ways (``host=h user=u dbname=d``, ``postgresql://u@h:5432/d``) gets one."""
    if kind == "sqlite":
        return None if path == ":memory:" else Path(f"{path}.llmlab-journal")
    digest = hashlib.sha256(f"llmlab-journal:{identity}".encode()).hexdigest()[:24]
    return llmlab_home() / f"journal-{digest}.jsonl"


def url_journal_path(shown: str) -> Path:
    """Where an llmlab before the identity rule kept a PostgreSQL log's journal (a hash of the
    masked URL, which two logs could share)."""
    return llmlab_home() / f"journal-{hashlib.sha256(shown.encode()).hexdigest()[:16]}.jsonl"


def adopt(old: Path, path: Path, *, log: str) -> None:
    """An old URL-named journal becomes this log's (renamed to ``path``) when it passes the file
    rules and every line names this log (``log``); one holding another log's lines is left where
    it is, for that log to adopt, and nothing is warned about it here."""
    if not os.path.lexists(old) or os.path.lexists(path):
        return
    try:
        data = read_regular(old, what="the journal", limit=MAX_JOURNAL_BYTES, check=_check_file,
                            follow_symlinks=False)
        names = set()
        for line in data.decode("utf-8", errors="replace").splitlines():
            with contextlib.suppress(ValueError, RecursionError):
                entry = loads(line)
                names.add(entry.get("log") if isinstance(entry, dict) else None)
        if names == {log}:
            os.rename(old, path)
    except (InputError, OSError, Refused):
        return


def append(path: Path, records: Sequence[Record], keys: Sequence[str | None], *, log: str) -> None:
    """Add rows (and their cache keys) to the journal of the log whose identity is ``log``, on
    disk before this returns. An OSError when the journal would pass ``MAX_JOURNAL_BYTES``."""
    private_dir(path.parent)
    lines = [json.dumps({"log": log, "row": _storable(r.to_row()), "key": k}, ensure_ascii=False) + "\n"
             for r, k in zip(records, keys, strict=True)]
    data = "".join(lines).encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        if os.fstat(fd).st_size + len(data) > MAX_JOURNAL_BYTES:
            raise OSError(errno.EFBIG, f"the journal would pass {MAX_JOURNAL_BYTES // 2**20} MB, the most a log "
                                       f"replays")
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _storable(row: dict) -> dict:
    """Text any log can hold (an unpaired surrogate escaped, as the runner stores a refused row)."""
    return {k: v.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(v, str) else v
            for k, v in row.items()}


def check(path: Path) -> None:
    """:class:`Refused` when the journal at ``path`` breaks the log's file rules (looked at without
    following a link or opening it, so before it is claimed); nothing when it is fine or absent."""
    with contextlib.suppress(FileNotFoundError):
        _check_file(os.lstat(path))


def _check_file(info: os.stat_result) -> None:
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISREG(info.st_mode):
        raise Refused("it is not a regular file (llmlab writes a journal as one, never as a link)")
    if owned_by_another(info):
        raise Refused(f"it belongs to another user (owner uid {info.st_uid})")
    if others_can_write(info) or others_can_read(info):
        raise Refused(f"other users can read or change it (mode {stat.filemode(info.st_mode)}; llmlab writes 0600)")
    if info.st_size > MAX_JOURNAL_BYTES:
        raise Refused(f"it is larger than {MAX_JOURNAL_BYTES // 2**20} MB")


def claim(path: Path) -> Path | None:
    """Take the journal for replaying (renamed: another process finds none); None if there is none."""
    taken = path.with_name(f"{path.name}.{os.getpid()}.replaying")
    try:
        os.replace(path, taken)
    except FileNotFoundError:
        return None
    return taken


def read(taken: Path, *, log: str) -> tuple[list[Record], list[str | None]]:
    """The rows of a claimed journal (a line cut short by a crash is skipped); :class:`Refused`
    when the file breaks the rules (checked again on the file opened) or a line names another log."""
    try:
        data = read_regular(taken, what="the journal", limit=MAX_JOURNAL_BYTES, check=_check_file,
                            follow_symlinks=False)
    except (InputError, OSError) as exc:
        raise Refused(f"it cannot be read as a file ({exc})") from None
    records, keys = [], []
    for line in data.decode("utf-8", errors="replace").splitlines():
        try:
            entry = loads(line)
            row = {k: v for k, v in entry["row"].items() if k in _FIELDS}
            record = Record(**{**row, "id": None})
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
            continue
        if entry.get("log") != log:
            raise Refused("it was not written for this log (it names another log, or none)")
        records.append(record)
        keys.append(entry.get("key") if isinstance(entry.get("key"), str) else None)
    return records, keys


def put_back(taken: Path, path: Path) -> None:
    """A refused journal goes back where it was, as it was (unless a new one took its place)."""
    with contextlib.suppress(OSError):
        if not os.path.lexists(path):
            os.rename(taken, path)


def restore(taken: Path, path: Path) -> None:
    """Put a claimed journal back (its rows could not be replayed yet), keeping newer lines."""
    with contextlib.suppress(OSError):
        newer = path.read_bytes() if path.exists() else b""
        data = taken.read_bytes() + newer
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        taken.unlink()
