"""Bulk reads: rows of the log → Arrow record batches → a typed DataFrame or a Parquet file.

A large read never builds per-row dicts: each chunk the driver returns is transposed once (C
speed) and converted column by column by Arrow, strings included (pandas' own string inference
costs several times more). The Arrow types are the export schema:

integers ``int64`` (``id``, ``repeat``, ``attempt``, ``cache_of``; nullable), measurements and
token counts ``float64`` (null when unknown: NaN in pandas), ``tokens_estimated``, ``cached`` and
``stream`` ``bool``, ``started_at`` ``timestamp[us, UTC]``, everything else ``string`` (UTF-8).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._record import BOOL_COLUMNS, COLUMNS, FLOAT_COLUMNS, INT_COLUMNS, STORE_ONLY

__all__ = ["export_schema", "rows_to_batch", "batches_to_frame"]


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
    """One chunk of row tuples → a typed Arrow record batch."""
    import pyarrow as pa

    table = np.empty((len(rows), len(names)), dtype=object)
    if rows:
        table[:] = rows
    return pa.RecordBatch.from_arrays([_column(name, table[:, i]) for i, name in enumerate(names)],
                                      schema=export_schema(names))


def _column(name: str, values: np.ndarray):
    import pyarrow as pa

    target = _arrow_type(name)
    if name == "started_at":
        return _timestamps(pa.array(values, type=pa.string(), from_pandas=True))
    if target == pa.bool_():
        return pa.array(values, type=pa.int64(), from_pandas=True).cast(pa.bool_())
    return pa.array(values, type=target, from_pandas=True)


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
