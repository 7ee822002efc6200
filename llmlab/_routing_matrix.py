"""The prompt × model matrix that routing policies are simulated on.

One cell per (prompt_id, requested_model): the **final attempt of the latest request** with
``repeat == 0`` ("latest" = highest ``id`` when the column exists, else the last row). Cached
rows count like any other (they keep the original latency and cost). Earlier attempts of the
same request (retries) are not added: the cell is what the router would finally have received.

A cell's quality is the row's score (0 for an error row), its cost the recorded ``cost_usd`` or,
with a price sheet, ``prompt_tokens × input price + completion_tokens × output price`` of that
row. An error row whose cost or tokens are unknown costs 0 (nothing was billed); an ok row with
an unknown price costs NaN, and NaN propagates to the totals rather than pretending it is free.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

# Columns a router cannot see before it calls a model: answers, outcomes, grading.
_HIDDEN = frozenset({
    "expected", "checker", "response_text", "status", "error_type", "error_message", "latency_s",
    "ttft_s", "output_tokens_per_s", "completion_tokens", "cost_usd", "cost_source", "cached",
    "finish_reason", "served_model", "attempt", "waited_s", "started_at", "id", "run_id",
    "request_id", "requested_model", "tokens_estimated", "endpoint", "api_key_env", "stream",
    "params",
})
_REQUIRED = ("prompt_id", "requested_model")


@dataclass
class Matrix:
    """Per-cell arrays, prompts × models, over the prompts answered by every needed model."""

    prompt_ids: np.ndarray
    models: list[str]
    score: np.ndarray
    cost: np.ndarray
    latency: np.ndarray
    error: np.ndarray
    rows: np.ndarray            # positions into ``runs`` (iloc) of each cell's row
    runs: pd.DataFrame
    score_column: str
    dropped: int = 0
    price_sheet: str = "recorded cost_usd"
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return len(self.prompt_ids)

    def index(self, model: str) -> int:
        try:
            return self.models.index(model)
        except ValueError:
            raise ValueError(f"model {model!r} has no rows in the runs "
                             f"(models: {', '.join(self.models)})") from None

    def cell_values(self, column: str, j: int) -> np.ndarray:
        """One column of the runs for model ``j``'s cells (e.g. response_text)."""
        if column not in self.runs.columns:
            return np.full(self.n, None, dtype=object)
        return self.runs[column].to_numpy()[self.rows[:, j]]

    def prompt_values(self, column: str) -> np.ndarray:
        """A prompt-level column, read from the first model's row of each prompt."""
        if column in _HIDDEN or column in (self.score_column, f"{self.score_column}_reason"):
            raise ValueError(f"column {column!r} is not known before a model answers; a router "
                             "may only use prompt-level columns (task, prompt, your features)")
        if column not in self.runs.columns:
            raise ValueError(f"no column {column!r} in the runs")
        return self.runs[column].to_numpy()[self.rows[:, 0]]

    def prompt_records(self) -> list[dict]:
        """Router-visible prompt rows as dicts (for user feature functions)."""
        if "records" not in self._cache:
            hidden = _HIDDEN | {self.score_column, f"{self.score_column}_reason"}
            cols = [c for c in self.runs.columns if c not in hidden]
            self._cache["records"] = self.runs.iloc[self.rows[:, 0]][cols].to_dict("records")
        return self._cache["records"]


def build_matrix(runs: pd.DataFrame, score: str, models: Sequence[str] | None,
                 prices: Any = None, price_as: Mapping[str, str] | None = None) -> Matrix:
    """Pivot ``runs`` to a :class:`Matrix` over ``models`` (None = every requested model)."""
    _check_columns(runs, score)
    pos = _selected_positions(runs)
    p_code, prompt_ids = pd.factorize(runs["prompt_id"].to_numpy()[pos])
    m_code, all_models = pd.factorize(runs["requested_model"].to_numpy()[pos])
    wanted = list(all_models) if models is None else list(models)
    missing = [m for m in wanted if m not in set(all_models)]
    if missing:
        raise ValueError(f"no rows for model(s) {', '.join(map(repr, missing))} in the runs "
                         f"(models: {', '.join(map(str, all_models))})")
    cells = _last_cells(pos, p_code, m_code, len(prompt_ids), len(all_models))
    cells = cells[:, [list(all_models).index(m) for m in wanted]]
    complete = (cells >= 0).all(axis=1)
    dropped = int((~complete).sum())
    if dropped:
        warnings.warn(f"routing: dropped {dropped} of {len(prompt_ids)} prompts that lack a row "
                      f"for one of {', '.join(wanted)}", RuntimeWarning, stacklevel=3)
    rows = cells[complete]
    if not len(rows):
        raise ValueError("no prompt has a row for every model the policies need")
    return _fill(runs, rows, np.asarray(prompt_ids, dtype=object)[complete], wanted, score,
                 dropped, prices, price_as)


def _check_columns(runs: pd.DataFrame, score: str) -> None:
    missing = [c for c in _REQUIRED if c not in runs.columns]
    if missing:
        raise ValueError(f"runs lack column(s) {', '.join(missing)} (see docs/architecture.md)")
    if score not in runs.columns:
        raise ValueError(f"runs have no {score!r} column: score them first, e.g. "
                         f"llmlab.scoring.score(runs, scoring.contains())")


def _selected_positions(runs: pd.DataFrame) -> np.ndarray:
    """Row positions with repeat 0, in recording order (by ``id`` when present)."""
    pos = np.arange(len(runs))
    if "repeat" in runs.columns:
        pos = pos[(runs["repeat"].fillna(0).to_numpy() == 0)]
    if "id" in runs.columns:
        pos = pos[np.argsort(runs["id"].to_numpy()[pos], kind="stable")]
    return pos


def _last_cells(pos, p_code, m_code, n_prompts, n_models) -> np.ndarray:
    """prompts × models matrix of the position of each cell's last row (-1: no row)."""
    key = p_code.astype(np.int64) * n_models + m_code
    # the first occurrence in the reversed order is the last row recorded for that cell
    uniq, first_rev = np.unique(key[::-1], return_index=True)
    cells = np.full(n_prompts * n_models, -1, dtype=np.int64)
    cells[uniq] = pos[len(key) - 1 - first_rev]
    return cells.reshape(n_prompts, n_models)


def _fill(runs, rows, prompt_ids, models, score, dropped, prices, price_as) -> Matrix:
    error = _gather(runs, "status", rows, "ok") == "error"
    raw = _gather(runs, score, rows, np.nan).astype(float)
    unscored = np.isnan(raw) & ~error
    if unscored.any():
        warnings.warn(f"routing: {int(unscored.sum())} ok rows have no {score!r}; they count as 0",
                      RuntimeWarning, stacklevel=4)
    quality = np.where(error | np.isnan(raw), 0.0, np.clip(raw, 0.0, 1.0))
    latency = _gather(runs, "latency_s", rows, np.nan).astype(float)
    cost, sheet = _costs(runs, rows, models, error, prices, price_as)
    return Matrix(prompt_ids, list(models), quality, cost, latency, error, rows, runs, score,
                  dropped, sheet)


def _gather(runs: pd.DataFrame, column: str, rows: np.ndarray, default: Any) -> np.ndarray:
    if column not in runs.columns:
        return np.full(rows.shape, default, dtype=object if isinstance(default, str) else float)
    return runs[column].to_numpy()[rows]


def _costs(runs, rows, models, error, prices, price_as) -> tuple[np.ndarray, str]:
    if prices is None and not price_as:
        cost = _gather(runs, "cost_usd", rows, np.nan).astype(float)
        sheet = "recorded cost_usd"
    else:
        cost, sheet = _repriced(runs, rows, models, prices, price_as)
    # a failed call with no known cost billed nothing; an ok call with no price stays NaN
    return np.where(error & np.isnan(cost), 0.0, cost), sheet


def _repriced(runs, rows, models, prices, price_as) -> tuple[np.ndarray, str]:
    """Cost of each cell from its own prompt/completion tokens under another price sheet."""
    from ._pricing import PriceTable, PriceWarning

    if isinstance(prices, Mapping) and prices and all(isinstance(v, str) for v in prices.values()):
        price_as, prices = {**prices, **(price_as or {})}, None   # {model: priced-as} on bundled
    table = PriceTable.load(prices)
    aliases = dict(price_as or {})
    prompt = _gather(runs, "prompt_tokens", rows, np.nan).astype(float)
    completion = _gather(runs, "completion_tokens", rows, np.nan).astype(float)
    cost = np.full(rows.shape, np.nan)
    for j, model in enumerate(models):
        target = aliases.get(model, model)
        price = table.lookup(target)
        if price is None:
            warnings.warn(f"no price for {target!r} in {table.name}: its cost is NaN",
                          PriceWarning, stacklevel=5)
            continue
        cost[:, j] = prompt[:, j] * price.input_cost_per_token + \
            completion[:, j] * price.output_cost_per_token
    return cost, _sheet_name(table.name, aliases)


def _sheet_name(name: str, aliases: Mapping[str, str]) -> str:
    if not aliases:
        return name
    return f"{name}; priced as: " + ", ".join(f"{k} → {v}" for k, v in aliases.items())
