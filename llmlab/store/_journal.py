"""The journal: finished attempts a log could not take, kept in a file until it can.

When the log stays locked (another process holds SQLite's write lock) or its server stays
unreachable (PostgreSQL down) past ``LOG_WAIT_S``, the rows a run could not store are appended here
— one JSON line each, owner-only, flushed to disk — instead of being lost. The next time the log
accepts a write (the next open, or the next run's first write) the journal is claimed (renamed, so
two processes never replay it twice), its rows are inserted, and it is removed. A SQLite log's
journal sits next to it (``runs.sqlite.llmlab-journal``); a PostgreSQL log's under
``$LLMLAB_HOME`` (``journal-<hash of the URL>.jsonl``).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from ..base._config import llmlab_home
from ..base._files import private_dir
from ..base._json import loads
from ..base._record import Record

__all__ = ["journal_path", "append", "claim", "read", "restore"]

_FIELDS = {f.name for f in fields(Record)}


def journal_path(kind: str, path: str) -> Path | None:
    """Where a log's journal lives (None for an in-memory log: nothing outlives it)."""
    if kind == "sqlite":
        return None if path == ":memory:" else Path(f"{path}.llmlab-journal")
    return llmlab_home() / f"journal-{hashlib.sha256(path.encode()).hexdigest()[:16]}.jsonl"


def append(path: Path, records: Sequence[Record], keys: Sequence[str | None]) -> None:
    """Add rows (and their cache keys) to the journal, on disk before this returns."""
    private_dir(path.parent)
    lines = [json.dumps({"row": _storable(r.to_row()), "key": k}, ensure_ascii=False) + "\n"
             for r, k in zip(records, keys, strict=True)]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, "".join(lines).encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _storable(row: dict) -> dict:
    """Text any log can hold (an unpaired surrogate escaped, as the runner stores a refused row)."""
    return {k: v.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(v, str) else v
            for k, v in row.items()}


def claim(path: Path) -> Path | None:
    """Take the journal for replaying (renamed: another process finds none); None if there is none."""
    taken = path.with_name(f"{path.name}.{os.getpid()}.replaying")
    try:
        os.replace(path, taken)
    except FileNotFoundError:
        return None
    return taken


def read(taken: Path) -> tuple[list[Record], list[str | None]]:
    """The rows of a claimed journal (a line cut short by a crash is skipped)."""
    records, keys = [], []
    for line in taken.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = loads(line)
            row = {k: v for k, v in entry["row"].items() if k in _FIELDS}
            record = Record(**{**row, "id": None})
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        records.append(record)
        keys.append(entry.get("key") if isinstance(entry.get("key"), str) else None)
    return records, keys


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
