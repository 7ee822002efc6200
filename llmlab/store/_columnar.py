"""Bulk reads: rows of the log → Arrow record batches → a typed DataFrame or a Parquet file.

A large read never builds per-row dicts: Arrow reads each chunk of row tuples the driver returns
in one pass, strings included (pandas' own string inference costs several times more). The
Arrow types are the export schema:

integers ``int64`` (``id``, ``repeat``, ``attempt``, ``cache_of``; nullable), measurements and
token counts ``float64`` (null when unknown: NaN in pandas), ``tokens_estimated``, ``cached`` and
``stream`` ``bool``, ``started_at`` ``timestamp[us, UTC]``, everything else ``string`` (UTF-8).
"""
from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..base._record import BOOL_COLUMNS, COLUMNS, FLOAT_COLUMNS, INT_COLUMNS, STORE_ONLY
from ..base._validate import read_finite
from ._schema import stored_range

__all__ = ["export_schema", "rows_to_batch", "csv_batches", "batches_to_frame"]


def _arrow_type(column: str):
    import pyarrow as pa

    if column in INT_COLUMNS or column in STORE_ONLY:
        return pa.int64()
    if column in FLOAT_COLUMNS:
        return pa.float64()
    if column in BOOL_COLUMNS:
        return pa.bool_()
    return pa.timestamp("us", tz="UTC") if column == "started_at" else pa.string()


def export_schema(columns: Sequence[str] | None = None):
    """The Arrow schema of ``Lab.export`` files (and of every bulk read)."""
    import pyarrow as pa

    return pa.schema([pa.field(c, _arrow_type(c)) for c in (columns or COLUMNS)])


def rows_to_batch(names: Sequence[str], rows: list[tuple]):
    """One chunk of row tuples → a typed Arrow record batch.

    Arrow reads the tuples as one struct array (a single C++ pass: half the time of transposing
    them first); a chunk holding a value of the wrong type (SQLite lets a hand-edited row store
    text in a number column) is converted column by column, the odd values becoming nulls."""
    import pyarrow as pa

    try:
        arrays = pa.array(rows, type=_row_type(tuple(names))).flatten()
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        arrays = [_coerced(name, list(values)) for name, values in zip(names, columns, strict=True)]
    return pa.RecordBatch.from_arrays([_final(name, array) for name, array in zip(names, arrays, strict=True)],
                                      schema=export_schema(names))


@functools.lru_cache(maxsize=64)
def _row_type(names: tuple[str, ...]):
    """A row as the driver returns it: timestamps as text, booleans as 0/1."""
    import pyarrow as pa

    return pa.struct([pa.field(name, _stored_type(name)) for name in names])


def _stored_type(name: str):
    import pyarrow as pa

    if name == "started_at":
        return pa.string()
    return pa.int64() if name in BOOL_COLUMNS else _arrow_type(name)


def _coerced(name: str, values: list):
    import pyarrow as pa

    stored = _stored_type(name)
    try:
        return pa.array(values, type=stored)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        pass
    if pa.types.is_string(stored):
        return pa.array([v if v is None or isinstance(v, str) else str(v) for v in values], type=stored)
    numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").astype(float)
    if pa.types.is_integer(stored):
        numbers = numbers.where(numbers.notna() & (numbers % 1 == 0) & (numbers.abs() < 2**63))
        return pa.array(numbers.astype("Int64"), type=stored)
    return pa.array(numbers.astype(float), type=stored, from_pandas=True)


def _final(name: str, array):
    import pyarrow as pa

    if name == "started_at":
        return _timestamps(array)
    if name in FLOAT_COLUMNS:
        return _finite(name, array)
    return array.cast(pa.bool_()) if name in BOOL_COLUMNS else array


def _finite(name: str, array):
    """A float column through the one finite-number rule (``read_finite`` in the column's
    ``stored_range``): what it refuses — ±inf, a negative cost, a positive log-probability, that a
    hand-edited or a stranger's log holds — reads as null (NaN), counted in a warning. A column
    every value of which is finite and in range (every log llmlab wrote) is kept as it is."""
    import pyarrow as pa
    import pyarrow.compute as pc

    lo, hi = stored_range(name)
    inside = pc.and_(pc.and_(pc.is_finite(array), pc.greater_equal(array, lo)), pc.less_equal(array, hi))
    if pc.all(pc.fill_null(inside, True)).as_py():
        return array
    values = [None if v is None else read_finite(v, lo=lo, hi=hi) for v in array.to_pylist()]
    refused = sum(v is not None for v in array.to_pylist()) - sum(v is not None for v in values)
    bound = (f" ≥ {lo:g}" if lo > -math.inf else "") + (f" ≤ {hi:g}" if hi < math.inf else "")
    warnings.warn(f"the run log holds {refused} value(s) of {name} that are not finite numbers{bound} (a "
                  "hand-edited or a stranger's log?): read as NaN", stacklevel=2)
    return pa.array(values, type=pa.float64())


_CSV_BLOCK = 16 << 20  # bytes of COPY output parsed at a time: memory stays bounded for any size


def csv_batches(names: Sequence[str], chunks: Iterable[Any]) -> Iterator[Any]:
    """PostgreSQL's ``COPY (…) TO STDOUT (FORMAT csv)`` output → typed Arrow batches.

    The server writes the text and Arrow's C++ parser reads it, so no Python object is made per
    value (a row-by-row read makes one per value). In that format a NULL is an empty field and an
    empty string a quoted one, and floats are written exactly (PostgreSQL 12+ writes the shortest
    text that reads back to the same double). A block is parsed on a second thread while the next
    one arrives (the parser releases the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1, thread_name_prefix="llmlab-csv") as parser:
        parsing = None
        for block in _csv_blocks(chunks):
            ahead = parser.submit(_parse_csv, names, block)
            if parsing is not None:
                yield from parsing.result()
            parsing = ahead
        if parsing is not None:
            yield from parsing.result()


def _csv_blocks(chunks: Iterable[Any]) -> Iterator[bytes]:
    """The COPY stream cut into blocks of whole records, about ``_CSV_BLOCK`` bytes each."""
    pending = bytearray()
    for data in chunks:
        pending += data
        if len(pending) >= _CSV_BLOCK and (cut := _records_end(pending)):
            yield bytes(pending[:cut])
            del pending[:cut]
    if pending:
        yield bytes(pending)


def _records_end(buf: bytearray) -> int:
    """Where the last complete record of ``buf`` ends: after a newline with an even number of
    quotes before it (a newline inside a quoted value has an odd number); 0 if none does."""
    pos = buf.rfind(b"\n")
    quotes = buf.count(b'"', 0, pos) if pos >= 0 else 0
    while pos >= 0 and quotes % 2:
        prev = buf.rfind(b"\n", 0, pos)
        quotes -= buf.count(b'"', max(prev, 0), pos)
        pos = prev
    return pos + 1


def _parse_csv(names: Sequence[str], data: bytes) -> list[Any]:
    import pyarrow as pa
    from pyarrow import csv

    # One Arrow block for the whole (bounded) block of records: a record longer than Arrow's block
    # (a long prompt) would otherwise fail the read; a NULL in a one-column read is an empty line.
    table = csv.read_csv(
        pa.BufferReader(data), read_options=csv.ReadOptions(column_names=list(names),
                                                            block_size=max(len(data) + 1, 1 << 20)),
        parse_options=csv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
        convert_options=csv.ConvertOptions(column_types={name: _stored_type(name) for name in names},
                                           null_values=[""], strings_can_be_null=True,
                                           quoted_strings_can_be_null=False))
    schema = export_schema(names)
    return [pa.RecordBatch.from_arrays([_final(name, batch.column(i)) for i, name in enumerate(names)], schema=schema)
            for batch in table.to_batches()]


def _timestamps(strings):
    import pyarrow as pa
    import pyarrow.compute as pc

    strings = pc.if_else(pc.equal(strings, ""), pa.scalar(None, pa.string()), strings)
    try:
        return strings.cast(pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # a hand-edited row: parse what parses
        parsed = pd.to_datetime(pd.Series(strings.to_pylist(), dtype=object), utc=True, errors="coerce",
                                format="ISO8601")
        return pa.array(parsed.dt.tz_convert("UTC"), type=pa.timestamp("us", tz="UTC"))


def batches_to_frame(names: Sequence[str], batches: Iterable[Any]) -> pd.DataFrame:
    """Arrow batches → a DataFrame: nullable Int64 integers, NaN for unknown floats, pandas strings."""
    import pyarrow as pa

    table = pa.Table.from_batches(list(batches), schema=export_schema(names))
    frame = table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get, self_destruct=True)
    for name in names:
        if name in FLOAT_COLUMNS and frame[name].dtype != np.float64:  # (an empty read: object)
            frame[name] = frame[name].astype(float)
    return frame
