"""Results as tidy DataFrames, per-model summaries, and escaped displays."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ._cost import format_usd, saved_by_cache, spend
from ._display import table_html
from ._record import BOOL_COLUMNS, COLUMNS, FLOAT_COLUMNS

__all__ = ["Result", "records_frame", "summarise"]


_INT_COLUMNS = frozenset({"id", "repeat", "attempt", "cache_of"})


def records_frame(rows: Sequence[dict]) -> pd.DataFrame:
    """Rows (dicts in the Record schema) → a typed DataFrame in column order.

    Built column by column with each column's final dtype (a third of the time of building from
    dicts and converting afterwards: this is most of a single ``compare()``'s own cost)."""
    import numpy as np

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
    of llmlab._cost: NaN when unknown) and what cache hits saved."""
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
    return pd.DataFrame(rows)


class Result:
    """The rows of one run (one per attempt), in requested model order."""

    __module__ = "llmlab"

    def __init__(self, df: pd.DataFrame, run_id: str, models: Sequence[str]) -> None:
        self.df = df
        self.run_id = run_id
        self.models = list(models)

    def summary(self) -> pd.DataFrame:
        return summarise(self.df, self.models)

    def text(self, model: str | None = None, prompt_id: str | None = None) -> str | None:
        """The first successful answer of ``model`` (default: the first model)."""
        rows = self.df[(self.df["requested_model"] == (model or self.models[0])) & (self.df["status"] == "ok")]
        if prompt_id is not None:
            rows = rows[rows["prompt_id"] == prompt_id]
        return None if rows.empty else rows["response_text"].iloc[0]

    @property
    def ok(self) -> bool:
        return bool(len(self.df)) and bool((_final_attempts(self.df)["status"] == "ok").all())

    @property
    def plot(self):
        from .charts import PlotAccessor

        return PlotAccessor(self.df)

    def __len__(self) -> int:
        return len(self.df)

    def __repr__(self) -> str:
        # The same counts as summary(): a fallback whose first model failed has errors=1.
        summary = self.summary()
        errors = int(summary["errors"].sum()) if len(summary) else 0
        failed = int((self.df["status"] != "ok").sum()) if len(self.df) else 0
        return (f"<llmlab.Result run_id={self.run_id} models={self.models} rows={len(self.df)} "
                f"errors={errors} failed_attempts={failed} cost={format_usd(spend(self.df))}>")

    def _repr_html_(self) -> str:
        answers = _final_attempts(self.df)[["prompt_id", "requested_model", "status", "response_text", "error_message"]]
        # Answers are folded: the magic has already shown them side by side above its Out[].
        from ._display import clean_frame, esc, html_clean

        return (f"<div><b>llmlab run {esc(self.run_id)}</b>{table_html(self.summary())}"
                f"<details><summary>answers ({len(answers)})</summary>"
                f"{clean_frame(answers, html_clean).to_html(index=False, escape=True, na_rep='')}</details></div>")
