"""Filter checking for ``Lab.runs`` / ``Lab.export``, and the Parquet export.

The Parquet file has one row per attempt and the columns of the row schema
(docs/architecture.md) with the Arrow types of :func:`._columnar.export_schema`, so DuckDB,
Spark and pandas read it as is.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from ..base._errors import InputError
from ..base._files import file_target, private_file
from ..base._record import COLUMNS
from ..base._text import check_unicode
from ..base._validate import check_count, did_you_mean, one_line, shown_value

if TYPE_CHECKING:
    from ._base import Store

__all__ = ["log_filters", "write_parquet"]

_STATUSES = ("ok", "error")
_SQL_MAX_INT = 2**63 - 1  # SQLite's largest integer


def log_filters(*, run_id: Any, model: Any, status: Any, since: Any, columns: Any, limit: Any) -> dict:
    """Check ``runs()``/``export()`` arguments (one clear InputError each) → ``Store.select`` keywords."""
    if limit is not None:
        limit = min(check_count("limit", limit, " (or None for every row)"), _SQL_MAX_INT)  # more than there is: all
    if status is not None and status not in _STATUSES:
        raise InputError(f"status must be 'ok' or 'error', not {status!r}")
    return {"run_id": _names("run_id", run_id), "model": _names("model", model), "status": status,
            "since": _since(since), "columns": _columns(columns), "limit": limit}


def _names(name: str, value: Any) -> list[str] | None:
    if value is None:
        return None
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, Sequence) or not values or not all(isinstance(v, str) and v for v in values):
        raise InputError(f"{name} must be a string or a non-empty list of strings, not {one_line(repr(value), 60)}")
    for v in values:
        check_unicode(v, name)
    return list(values)


def _since(value: Any) -> str | None:
    if value is None:
        return None
    import pandas as pd

    if not isinstance(value, (str, datetime, date)):
        raise InputError(f"since must be a datetime or an ISO date string, not {shown_value(value)}")
    # pandas' own message repeats the whole value (a 100 kB text, a key pasted by mistake): not shown.
    # "nan", "NaT" and "" parse to NaT, which matches no row: a filter that silently empties the
    # frame; a year before 1 ("-1" is year -1) is no time a log can hold.
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError):
        stamp = pd.NaT
    if pd.isna(stamp) or stamp.year < 1:
        raise InputError(f"since={shown_value(value)} is not a date/time: give one such as '2026-05-01' or "
                         f"'2026-05-01T12:00Z'")
    stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
    return stamp.isoformat()  # the stored form (ISO 8601, UTC): text order is time order


def _columns(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise InputError(f"columns must be a non-empty list of column names, not {value!r}")
    unknown = [c for c in value if c not in COLUMNS]
    if unknown:
        raise InputError(f"unknown column {unknown[0]!r}.{did_you_mean(str(unknown[0]), COLUMNS)} "
                         f"The log has: {', '.join(COLUMNS)}")
    return list(dict.fromkeys(value))


def write_parquet(store: Store, path: str | os.PathLike, filters: dict) -> int:
    """Stream the selected rows into ``path`` (written to a temporary name, then renamed)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ._columnar import export_schema

    target = file_target(path)
    if target.suffix.lower() != ".parquet":
        raise InputError(f"export writes Parquet: give a path ending in .parquet, not {target.name!r}")
    names, batches = store.select_batches(**filters)
    schema = export_schema(names)
    rows = 0
    # the answers and prompts are as private as the log: owner-only, and an export that fails
    # halfway leaves the earlier file as it was
    with private_file(target) as fh, pq.ParquetWriter(fh, schema, compression="zstd") as writer:
        for batch in batches:
            writer.write_table(pa.Table.from_batches([batch], schema=schema))
            rows += batch.num_rows
    return rows
