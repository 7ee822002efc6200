"""Results as tidy DataFrames, per-model summaries, and escaped displays.

A :class:`Result` reads its rows from the log on demand: a million-row sweep is not held in
memory unless ``res.df`` is asked for, and ``res.summary()`` then reads only the columns a summary
needs (``SUMMARY_INPUTS``: numbers, model, request id, status — never the prompts or the answers'
text) and computes the same group-by as for a loaded run: one summary rule.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..analysis._charts import PlotAccessor
from ..base._cost import format_usd, saved_by_cache, saved_by_prompt_cache, spend
from ..base._display import clean_frame, clean_text, esc, html_clean, table_html
from ..base._errors import InputError
from ..base._frames import ShownFrame, shown
from ..base._json import loads
from ..base._record import BOOL_COLUMNS, COLUMNS, FLOAT_COLUMNS

if TYPE_CHECKING:
    from ..store._base import Store

__all__ = ["Result", "records_frame", "summarise", "summarise_stored"]

# A run with at most this many rows is read into ``df`` at once (it then outlives ``lab.close()``).
EAGER_ROWS = 10_000
SUMMARY_COLUMNS = ["model", "n", "errors", "attempts", "cached", "latency_p50_s", "latency_p95_s", "ttft_p50_s",
                   "ttft_answer_p50_s", "tokens_per_s_p50", "prompt_tokens", "cached_tokens", "completion_tokens",
                   "reasoning_tokens", "tokens_estimated", "cost_usd", "saved_by_cache_usd",
                   "saved_by_prompt_cache_usd"]


_INT_COLUMNS = frozenset({"id", "repeat", "attempt", "cache_of", "turns"})


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
    return ShownFrame(data, columns=COLUMNS, copy=False)


def _final_attempts(df: pd.DataFrame) -> pd.DataFrame:
    """Each request's last attempt: what it answered (a fallback chain's last model included)."""
    return df.iloc[_last_attempts(df)]


def _last_attempts(df: pd.DataFrame, model_codes: np.ndarray | None = None) -> np.ndarray:
    """Positions of each request's last attempt (of each (model, request)'s, given the models'
    codes): the highest attempt, the later row on a tie."""
    if len(df) == 0:
        return np.empty(0, dtype=np.int64)
    key = pd.factorize(df["request_id"])[0].astype(np.int64)
    if model_codes is not None:
        key = model_codes.astype(np.int64) * (int(key.max()) + 1) + key
    attempt = pd.to_numeric(df["attempt"], errors="coerce").fillna(0).to_numpy(dtype=float)
    order = np.lexsort((np.arange(len(df)), attempt, key))
    last = np.append(key[order][1:] != key[order][:-1], True)
    return np.sort(order[last])


# What a summary reads: no prompt, messages or answer text.
SUMMARY_INPUTS = ["requested_model", "request_id", "attempt", "status", "cached", "latency_s", "ttft_s",
                  "ttft_answer_s", "output_tokens_per_s", "prompt_tokens", "cached_tokens", "completion_tokens",
                  "reasoning_tokens", "tokens_estimated", "cost_usd", "original_cost_usd", "prompt_cache_saved_usd"]


def summarise(df: pd.DataFrame, models: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per requested model: requests, errors (requests whose last attempt at this model
    failed), attempts, latency/TTFT percentiles (TTFT to the first token of any kind, and to the
    first token of the answer after any reasoning), tokens (of them cached prompt tokens, and
    reasoning tokens of the completion), spend (``cost_usd``, the one cost rule of
    llmlab.base._cost: NaN when unknown), what response-cache hits saved and what the provider's
    prompt cache saved. A group-by on column arrays (rows sorted by model once), whatever the
    number of models."""
    models = list(models) if models else list(dict.fromkeys(df["requested_model"]))
    missing = {c: np.nan for c in _FLOAT_INPUTS} | {"cached": False, "tokens_estimated": False, "attempt": 1}
    df = df.assign(**{c: v for c, v in missing.items() if c not in df.columns})  # a hand-built frame
    codes, names = pd.factorize(df["requested_model"]) if len(df) else (np.empty(0, dtype=np.int64), [])
    where = {name: k for k, name in enumerate(names)}
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    ok = (df["status"] == "ok").to_numpy(dtype=bool)
    last = _last_attempts(df, codes)
    requests = np.bincount(codes[last], minlength=len(names))
    errors = np.bincount(codes[last], weights=~ok[last], minlength=len(names))
    arrays = {c: df[c].to_numpy(dtype=float, na_value=np.nan) for c in _FLOAT_INPUTS}
    arrays |= {c: df[c].fillna(False).to_numpy(dtype=bool) for c in ("cached", "tokens_estimated")}
    costs = df[["status", "cached", "completion_tokens", "cost_usd", "original_cost_usd",  # the cost rule's
                "prompt_cache_saved_usd"]]
    rows = []
    for model in models:
        k = where.get(model)
        rows_of = order[bounds[k]:bounds[k + 1]] if k is not None else order[:0]
        mine = {c: values[rows_of] for c, values in arrays.items()}
        good = ok[rows_of]
        billed = costs.iloc[rows_of]
        rows.append({
            "model": model, "n": int(requests[k]) if k is not None else 0,
            "errors": int(errors[k]) if k is not None else 0, "attempts": len(rows_of),
            "cached": int(mine["cached"].sum()),
            "latency_p50_s": _quantile(mine["latency_s"][good], 0.5),
            "latency_p95_s": _quantile(mine["latency_s"][good], 0.95),
            "ttft_p50_s": _quantile(mine["ttft_s"][good], 0.5),
            "ttft_answer_p50_s": _quantile(mine["ttft_answer_s"][good], 0.5),
            "tokens_per_s_p50": _quantile(mine["output_tokens_per_s"][good], 0.5),
            "prompt_tokens": _total(mine["prompt_tokens"][good]),
            "cached_tokens": _total(mine["cached_tokens"][good]),
            "completion_tokens": _total(mine["completion_tokens"][good]),
            "reasoning_tokens": _total(mine["reasoning_tokens"][good]),
            "tokens_estimated": bool(mine["tokens_estimated"][good].any()),
            "cost_usd": spend(billed),
            "saved_by_cache_usd": saved_by_cache(billed),
            "saved_by_prompt_cache_usd": saved_by_prompt_cache(billed),
        })
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


_FLOAT_INPUTS = ("latency_s", "ttft_s", "ttft_answer_s", "output_tokens_per_s", "prompt_tokens", "cached_tokens",
                 "completion_tokens", "reasoning_tokens", "cost_usd", "original_cost_usd", "prompt_cache_saved_usd")


def summarise_stored(store: Store, run_id: str, models: Sequence[str] | None = None) -> pd.DataFrame:
    """``summarise`` of a run still in the log: the same group-by on the columns it needs, read
    column-wise by the store's bulk path (never the prompts or the answers' text)."""
    return summarise(store.frame(run_id=run_id, columns=SUMMARY_INPUTS), models)


def _quantile(values: np.ndarray, q: float) -> float:
    finite = values[~np.isnan(values)]
    return float(np.quantile(finite, q)) if len(finite) else math.nan


def _assistant_turn(text: str, tool_calls: Any) -> dict:
    """An answer as the assistant's turn: one that called tools carries its calls (the next turn
    answers them by ``tool_call_id``), its text only if it said something besides."""
    if not isinstance(tool_calls, str) or not tool_calls:
        return {"role": "assistant", "content": text}
    calls = [{"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
             for c in loads(tool_calls)]
    return {"role": "assistant", "content": None if text == tool_calls else text, "tool_calls": calls}


def _total(values: np.ndarray) -> float:
    """A sum that is unknown (NaN) when no value is known, as pandas' ``sum(min_count=1)``."""
    known = values[~np.isnan(values)]
    return float(known.sum()) if len(known) else math.nan


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
        # lab.route: the row id of the answer the route served (None: it served none, e.g. its last
        # model failed); ``routed`` False for every other call
        self.routed: bool = False
        self.served: int | None = None

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

    def serving(self, row_id: int | None) -> Result:
        """This result marked as a route's: ``served`` is the row id of the answer it served (the
        ``served`` column of ``df`` is True on that row), which ``text()`` returns."""
        self.routed, self.served = True, row_id
        if self._df is not None:
            self._df = self._with_served(self._df)
        return self

    def _with_served(self, frame: pd.DataFrame) -> pd.DataFrame:
        if not self.routed:
            return frame
        return shown(frame.assign(served=frame["id"].eq(self.served) if self.served is not None else False))

    @property
    def df(self) -> pd.DataFrame:
        """Every attempt as a DataFrame (read from the log on first use for a large run); a route's
        has a ``served`` column (True on the answer it served)."""
        if self._df is None:
            self._load()
        assert self._df is not None
        return self._df

    def _load(self) -> None:
        assert self._store is not None
        frame = self._store.frame(run_id=self.run_id, order="job")
        if self._unlogged is not None and len(self._unlogged):
            frame = pd.concat([frame, self._unlogged], ignore_index=True)
        self._df = self._with_served(shown(frame))

    @property
    def loaded(self) -> bool:
        """Whether the rows are in memory (``df`` was built)."""
        return self._df is not None

    def _stored(self) -> bool:
        return self._df is None and self._store is not None

    def summary(self) -> pd.DataFrame:
        """One row per model (see ``summarise``); displayed through the sanitiser."""
        if self._stored():
            assert self._store is not None
            return shown(summarise_stored(self._store, self.run_id, self.models))
        return shown(summarise(self.df, self.models))

    def text(self, model: str | None = None, prompt_id: str | None = None) -> str | None:
        """The first successful answer of ``model`` (default: the first model) — for a route
        (``lab.route``, ``%%llm model=auto``), by default the answer it served (None if none was:
        a cascade's rejected cheap answer is not its answer)."""
        if self.routed and model is None and prompt_id is None:
            served = self.df[self.df["id"] == self.served] if self.served is not None else self.df.iloc[:0]
            return None if served.empty else served["response_text"].iloc[0]
        rows = self.df[(self.df["requested_model"] == (model or self.models[0])) & (self.df["status"] == "ok")]
        if prompt_id is not None:
            rows = rows[rows["prompt_id"] == prompt_id]
        return None if rows.empty else rows["response_text"].iloc[0]

    def conversation(self, model: str | None = None, prompt_id: str | None = None) -> list[dict]:
        """The messages ``model`` (default: the first; for a route, the one that served) was sent,
        followed by its first ok answer (a route's: the answer it served) as the assistant's turn:
        the earlier turns of a follow-up (``lab.compare([*res.conversation(), {"role": "user",
        "content": "and then?"}], ...)``, or ``%%llm history=res``)."""
        if self.routed and model is None and prompt_id is None:     # a route: the answer it served
            rows = self.df[self.df["id"] == self.served] if self.served is not None else self.df.iloc[:0]
        else:
            rows = self.df[(self.df["requested_model"] == (model or self.models[0])) & (self.df["status"] == "ok")]
        if prompt_id is not None:
            rows = rows[rows["prompt_id"] == prompt_id]
        if rows.empty:
            raise InputError(f"no ok answer of {model or self.models[0]!r} in run {self.run_id} to continue from")
        row = rows.iloc[0]
        return [*loads(row["messages"]), _assistant_turn(row["response_text"], row.get("tool_calls"))]

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
        if self._stored():
            assert self._store is not None
            frame = self._store.frame(run_id=self.run_id, columns=SUMMARY_INPUTS)  # read once for both
        else:
            frame = self.df
        summary = summarise(frame, self.models)
        errors = int(summary["errors"].sum()) if len(summary) else 0
        failed = int((frame["status"] != "ok").sum()) if len(frame) else 0
        lost = 0 if self._unlogged is None else len(self._unlogged)
        unlogged = f" unlogged={lost}" if lost else ""
        return clean_text(f"<llmlab.Result run_id={self.run_id} models={self.models} rows={len(self)} "
                          f"errors={errors} failed_attempts={failed} cost={format_usd(spend(frame))}{unlogged}>")

    def _repr_html_(self) -> str:

        title = f"<b>llmlab run {esc(self.run_id)}</b>{table_html(self.summary())}"
        if self._stored():  # a large run: the answers stay in the log until asked for
            return f"<div>{title}<p>{len(self)} rows in the log: <code>res.df</code> reads them.</p></div>"
        answers = _final_attempts(self.df)[["prompt_id", "requested_model", "status", "response_text", "refusal",
                                            "error_message"]]
        answers = answers.assign(**{c: answers[c].map(_excerpt) for c in ("response_text", "refusal")})
        # Answers are folded: the magic has already shown them side by side above its Out[].
        return (f"<div>{title}<details><summary>answers ({len(answers)})</summary>"
                f"{clean_frame(answers, html_clean).to_html(index=False, escape=True, na_rep='')}</details></div>")


# An answer in the notebook's HTML is an excerpt: a 20 MB answer inlined whole froze the front end
# and grew the .ipynb by 20 MB (res.df keeps every character).
_HTML_ANSWER_CHARS = 2000


def _excerpt(text: Any) -> Any:
    if not isinstance(text, str) or len(text) <= _HTML_ANSWER_CHARS:
        return text
    return f"{text[:_HTML_ANSWER_CHARS]}… ({len(text) - _HTML_ANSWER_CHARS:,} more characters: res.df has them all)"
