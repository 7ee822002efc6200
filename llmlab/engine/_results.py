"""Results as tidy DataFrames, per-model summaries, and escaped displays.

A :class:`Result` reads its rows from the log on demand: a million-row sweep is not held in
memory unless ``res.df`` is asked for, and ``res.summary()`` is then computed by the store
(counts, token sums and cost groups in SQL, fed to the one cost rule of ``_cost``; percentiles
from one numeric column at a time — never the answers' text).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..analysis._charts import PlotAccessor
from ..base._cost import format_usd, saved_by_cache, spend
from ..base._display import clean_frame, esc, html_clean, table_html
from ..base._record import BOOL_COLUMNS, COLUMNS, FLOAT_COLUMNS

if TYPE_CHECKING:
    from ..store._base import Store

__all__ = ["Result", "records_frame", "summarise", "summarise_stored"]

# A run with at most this many rows is read into ``df`` at once (it then outlives ``lab.close()``).
EAGER_ROWS = 10_000
SUMMARY_COLUMNS = ["model", "n", "errors", "attempts", "cached", "latency_p50_s", "latency_p95_s", "ttft_p50_s",
                   "tokens_per_s_p50", "prompt_tokens", "completion_tokens", "tokens_estimated", "cost_usd",
                   "saved_by_cache_usd"]


_INT_COLUMNS = frozenset({"id", "repeat", "attempt", "cache_of"})


def records_frame(rows: Sequence[dict]) -> pd.DataFrame:
    """Rows (dicts in the Record schema) → a typed DataFrame in column order.

    Built column by column with each column's final dtype (a third of the time of building from
    dicts and converting afterwards: this is most of a single ``compare()``'s own cost)."""
    data: dict[str, Any] = {}
    for col in COLUMNS:
        values = [row.get(col) for row in rows]
        if col in BOOL_COLUMNS:
            data[col] = np.array(values, dtype=bool)
        elif col in FLOAT_COLUMNS:
            data[col] = np.array(values, dtype=float)
        elif col in _INT_COLUMNS:
            data[col] = pd.array(values, dtype="Int64")
        elif col == "started_at":
            data[col] = pd.to_datetime(values, utc=True, format="ISO8601")
        else:
            data[col] = np.array(values, dtype=object)
    return pd.DataFrame(data, columns=COLUMNS, copy=False)


def _final_attempts(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["attempt"]).groupby("request_id", sort=False).tail(1)


def summarise(df: pd.DataFrame, models: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per requested model: requests, errors (requests whose last attempt at this model
    failed), attempts, latency/TTFT percentiles, tokens, spend (``cost_usd``, the one cost rule
    of llmlab.base._cost: NaN when unknown) and what cache hits saved."""
    models = list(models) if models else list(dict.fromkeys(df["requested_model"]))
    rows = []
    for model in models:
        mine = df[df["requested_model"] == model]
        ok = mine[mine["status"] == "ok"]
        final = _final_attempts(mine) if len(mine) else mine
        rows.append({
            "model": model,
            "n": int(final["request_id"].nunique()) if len(mine) else 0,
            "errors": int((final["status"] != "ok").sum()),
            "attempts": len(mine),
            "cached": int(mine["cached"].sum()),
            "latency_p50_s": ok["latency_s"].median(),
            "latency_p95_s": ok["latency_s"].quantile(0.95) if len(ok) else math.nan,
            "ttft_p50_s": ok["ttft_s"].median(),
            "tokens_per_s_p50": ok["output_tokens_per_s"].median(),
            "prompt_tokens": ok["prompt_tokens"].sum(min_count=1),
            "completion_tokens": ok["completion_tokens"].sum(min_count=1),
            "tokens_estimated": bool(ok["tokens_estimated"].any()),
            "cost_usd": spend(mine),
            "saved_by_cache_usd": saved_by_cache(mine),
        })
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def summarise_stored(store: Store, run_id: str, models: Sequence[str] | None = None) -> pd.DataFrame:
    """``summarise`` of a run computed by the store, without reading its rows: counts and token
    sums in SQL; spend and cache savings by the one cost rule (``_cost``) applied to the run's
    cost groups (rows alike for that rule, summed in SQL); percentiles from one numeric column at
    a time (8 bytes a row)."""
    parts = store.aggregates(run_id)
    groups = store.cost_groups(run_id)
    models = list(models) if models else list(parts)
    rows = []
    for model in models:
        agg = parts.get(model)
        if agg is None:
            rows.append(summarise(pd.DataFrame(columns=COLUMNS), [model]).iloc[0].to_dict())
            continue
        mine = groups[groups["requested_model"] == model]
        latency = _ok_values(store, run_id, model, "latency_s")
        rows.append({
            "model": model, "n": agg["n"], "errors": agg["errors"], "attempts": agg["attempts"],
            "cached": agg["cached"],
            "latency_p50_s": _quantile(latency, 0.5), "latency_p95_s": _quantile(latency, 0.95),
            "ttft_p50_s": _quantile(_ok_values(store, run_id, model, "ttft_s"), 0.5),
            "tokens_per_s_p50": _quantile(_ok_values(store, run_id, model, "output_tokens_per_s"), 0.5),
            "prompt_tokens": agg["prompt_tokens"], "completion_tokens": agg["completion_tokens"],
            "tokens_estimated": agg["tokens_estimated"],
            "cost_usd": spend(mine), "saved_by_cache_usd": saved_by_cache(mine),
        })
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _ok_values(store: Store, run_id: str, model: str, column: str) -> np.ndarray:
    _, chunks = store.select(columns=[column], run_id=run_id, model=model, status="ok")
    arrays = [np.array([r[0] for r in chunk], dtype=float) for chunk in chunks]
    values = np.concatenate(arrays) if arrays else np.empty(0)
    return values[~np.isnan(values)]


def _quantile(values: np.ndarray, q: float) -> float:
    return float(np.quantile(values, q)) if len(values) else math.nan


class Result:
    """The rows of one run (one per attempt), in the order asked for (prompt × model × repeat).

    Small runs are read at once; a large one stays in the log until ``df`` is asked for, and
    ``summary()``, ``len()`` and the reprs are then answered by the store. ``unlogged``: answers
    the log could not store (see ``StoreError.result``)."""

    __module__ = "llmlab"

    def __init__(self, df: pd.DataFrame | None, run_id: str, models: Sequence[str], *,
                 store: Store | None = None, unlogged: pd.DataFrame | None = None) -> None:
        assert df is not None or store is not None, "a Result needs rows or a store to read them from"
        self._df = df
        self._store = store
        self.run_id = run_id
        self.models = list(models)
        self._unlogged = unlogged

    @property
    def unlogged(self) -> pd.DataFrame:
        """Finished attempts the log could not store (empty unless a ``StoreError`` was raised)."""
        if self._unlogged is None:
            self._unlogged = records_frame([])  # built on first use: most results never ask
        return self._unlogged

    @classmethod
    def from_store(cls, store: Store, run_id: str, models: Sequence[str], *,
                   unlogged: pd.DataFrame | None = None) -> Result:
        result = cls(None, run_id, models, store=store, unlogged=unlogged)
        if store.count(run_id) <= EAGER_ROWS:
            result._load()
        return result

    @property
    def df(self) -> pd.DataFrame:
        """Every attempt as a DataFrame (read from the log on first use for a large run)."""
        if self._df is None:
            self._load()
        assert self._df is not None
        return self._df

    def _load(self) -> None:
        assert self._store is not None
        frame = self._store.frame(run_id=self.run_id, order="job")
        if self._unlogged is not None and len(self._unlogged):
            frame = pd.concat([frame, self._unlogged], ignore_index=True)
        self._df = frame

    @property
    def loaded(self) -> bool:
        """Whether the rows are in memory (``df`` was built)."""
        return self._df is not None

    def _stored(self) -> bool:
        return self._df is None and self._store is not None

    def summary(self) -> pd.DataFrame:
        if self._stored():
            assert self._store is not None
            return summarise_stored(self._store, self.run_id, self.models)
        return summarise(self.df, self.models)

    def text(self, model: str | None = None, prompt_id: str | None = None) -> str | None:
        """The first successful answer of ``model`` (default: the first model)."""
        rows = self.df[(self.df["requested_model"] == (model or self.models[0])) & (self.df["status"] == "ok")]
        if prompt_id is not None:
            rows = rows[rows["prompt_id"] == prompt_id]
        return None if rows.empty else rows["response_text"].iloc[0]

    @property
    def ok(self) -> bool:
        if self._stored():
            summary = self.summary()
            return bool(summary["n"].sum()) and not summary["errors"].any()
        return bool(len(self.df)) and bool((_final_attempts(self.df)["status"] == "ok").all())

    @property
    def plot(self):

        return PlotAccessor(self.df)

    def __len__(self) -> int:
        if self._stored():
            assert self._store is not None
            return self._store.count(self.run_id)
        return len(self.df)

    def __repr__(self) -> str:
        # The same counts as summary(): a fallback whose first model failed has errors=1.
        summary = self.summary()
        errors = int(summary["errors"].sum()) if len(summary) else 0
        if self._stored():
            assert self._store is not None
            failed = self._store.count(self.run_id, failed=True)
            cost = spend(self._store.cost_groups(self.run_id))
        else:
            failed = int((self.df["status"] != "ok").sum()) if len(self.df) else 0
            cost = spend(self.df)
        lost = 0 if self._unlogged is None else len(self._unlogged)
        unlogged = f" unlogged={lost}" if lost else ""
        return (f"<llmlab.Result run_id={self.run_id} models={self.models} rows={len(self)} "
                f"errors={errors} failed_attempts={failed} cost={format_usd(cost)}{unlogged}>")

    def _repr_html_(self) -> str:

        title = f"<b>llmlab run {esc(self.run_id)}</b>{table_html(self.summary())}"
        if self._stored():  # a large run: the answers stay in the log until asked for
            return f"<div>{title}<p>{len(self)} rows in the log: <code>res.df</code> reads them.</p></div>"
        answers = _final_attempts(self.df)[["prompt_id", "requested_model", "status", "response_text", "refusal",
                                            "error_message"]]
        # Answers are folded: the magic has already shown them side by side above its Out[].
        return (f"<div>{title}<details><summary>answers ({len(answers)})</summary>"
                f"{clean_frame(answers, html_clean).to_html(index=False, escape=True, na_rep='')}</details></div>")
