"""The one cost rule, used by ``Result.summary()``, the charts, ``%llm cost``, the widget's
table and live footers, and the demo report.

- **Spend** is the sum of ``cost_usd`` over the attempts sent now: ok ones, and failed ones
  whose cost is known (a stream cut after tokens were billed, a reported cost).
- **A failed attempt that produced nothing billed nothing**: an error row with no tokens out and
  no known cost (a refused connection, a 5xx, an HTTP error before any text) costs $0 and saved
  $0 — known, not unknown (the routing matrix prices such attempts the same way).
- **Unknown is NaN, never $0**: an attempt that produced tokens (ok, or failed after text
  arrived) but has no price makes the spend unknown. It is shown as "unknown".
- **A cache hit spends $0**: its row has ``cost_usd=0`` (``cost_source="cache"``) and keeps
  what the original call cost in ``original_cost_usd``; totals of those are reported separately
  as ``saved_by_cache_usd``, never added to the spend.
- **Reasoning tokens are output tokens**: they are part of ``completion_tokens`` and priced with
  them. **The provider's prompt cache** is in ``cost_usd`` already (cached prompt tokens at the
  cache-read price, cache writes at the cache-write price, where the sheet has them); what it
  took off is ``prompt_cache_saved_usd``, totalled as ``saved_by_prompt_cache_usd``.
- **A Batch API row** is priced at the sheet's batch prices (``*_batches``), or is the endpoint's
  reported cost.

Row-level helpers take a dict (no pandas) so live displays use the same rule as the tables.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["spend", "saved_by_cache", "saved_by_prompt_cache", "unpriced", "per_1k_calls", "cost_table", "attempt_cost",
           "format_usd",
           "with_costs_shown", "call_costs", "COST_COLUMNS"]

# Columns holding dollars: shown through format_usd ("unknown" for NaN) in every table view.
COST_COLUMNS = ("cost_usd", "saved_by_cache_usd", "cost_per_1k_usd", "original_cost_usd", "prompt_cache_saved_usd",
                "saved_by_prompt_cache_usd")


def _num(value: Any) -> float:
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def attempt_cost(record: Mapping[str, Any]) -> float:
    """What one attempt (a row as a dict) spent now: 0 for a cache hit and for a failed attempt
    that produced nothing, NaN if unknown."""
    if record.get("cached"):
        return 0.0
    cost = _num(record.get("cost_usd"))
    if math.isnan(cost) and record.get("status") == "error" and not _num(record.get("completion_tokens")) > 0:
        return 0.0
    return cost


# What a column means when a hand-built frame leaves it out (charts work on any runs frame).
_DEFAULTS = {"cached": False, "status": "ok", "completion_tokens": math.nan, "prompt_tokens": math.nan,
             "original_cost_usd": math.nan, "cost_usd": math.nan}


def _complete(frame: Any) -> Any:
    missing = {c: v for c, v in _DEFAULTS.items() if c not in frame.columns}
    return frame.assign(**missing) if missing else frame


def _matters(frame: Any) -> Any:
    """Attempts whose unknown cost makes a total unknown: fresh ones that produced tokens."""
    produced = (frame["status"] == "ok") | (frame["completion_tokens"].astype(float) > 0)
    return ~frame["cached"].astype(bool) & produced


def _billed(frame: Any, column: str) -> Any:
    """``column`` (a dollar amount) with the failed attempts that produced nothing at $0."""
    values = frame[column].astype(float)
    nothing = (frame["status"] == "error") & ~(frame["completion_tokens"].astype(float) > 0)
    return values.where(~(nothing & values.isna()), 0.0)


def spend(frame: Any) -> float:
    """USD spent by the attempts in ``frame`` (see the module docstring); NaN when unknown."""
    frame = _complete(frame)
    if len(frame) == 0:
        return 0.0
    fresh = ~frame["cached"].astype(bool)
    if not fresh.any():
        return 0.0  # everything replayed from the cache: nothing was spent now
    costs = _billed(frame, "cost_usd")
    if (costs.isna() & _matters(frame)).any():
        return math.nan
    return float(costs[fresh].sum())


def saved_by_cache(frame: Any) -> float:
    """What the cache hits in ``frame`` cost when first answered (not spent now)."""
    frame = _complete(frame)
    hits = frame[frame["cached"].astype(bool)] if len(frame) else frame
    if len(hits) == 0:
        return 0.0
    return float(hits["original_cost_usd"].astype(float).sum(min_count=len(hits)))


def saved_by_prompt_cache(frame: Any) -> float:
    """What the provider's prompt cache took off the spend of the attempts sent now (NaN when
    cached tokens have no price to tell)."""
    if len(frame) == 0 or "prompt_cache_saved_usd" not in frame.columns:
        return 0.0
    frame = _complete(frame)
    fresh = frame[~frame["cached"].astype(bool)]
    return float(_billed(fresh, "prompt_cache_saved_usd").sum(min_count=len(fresh))) if len(fresh) else 0.0


def unpriced(frame: Any) -> int:
    """Attempts that produced tokens but have no known cost."""
    frame = _complete(frame)
    if len(frame) == 0:
        return 0
    return int((frame["cost_usd"].astype(float).isna() & _matters(frame)).sum())


def call_costs(frame: Any) -> Any:
    """What each call costs as a call (a cache hit at its original's cost): for per-call views."""
    frame = _complete(frame)
    cached = frame["cached"].astype(bool)
    return frame["cost_usd"].astype(float).where(~cached, frame["original_cost_usd"].astype(float))


def per_1k_calls(frame: Any) -> float:
    """Cost of 1,000 successful calls like these, cache hits priced at their original cost."""
    frame = _complete(frame)
    ok = frame[frame["status"] == "ok"] if len(frame) else frame
    if len(ok) == 0:
        return math.nan
    known = call_costs(ok).dropna()
    return float(known.mean() * 1000) if len(known) else math.nan


def cost_table(frame: Any, models: Sequence[str] | None = None, total: bool = False) -> Any:
    """One row per requested model (and a TOTAL row): attempts sent now (``calls``), cache hits,
    unpriced attempts, tokens sent now, spend, what the cache saved, cost per 1,000 calls."""
    import pandas as pd

    columns = ["model", "calls", "cache_hits", "unpriced_calls", "prompt_tokens", "completion_tokens",
               "cost_usd", "saved_by_cache_usd", "cost_per_1k_usd"]
    frame = _complete(frame)
    if models is None:
        models = list(dict.fromkeys(frame["requested_model"].astype(str))) if len(frame) else []
    groups = [(str(m), frame[frame["requested_model"].astype(str) == str(m)]) for m in models]
    if total:
        groups.append(("TOTAL", frame))
    return pd.DataFrame([_cost_row(name, part) for name, part in groups], columns=columns)


def _cost_row(name: str, part: Any) -> dict[str, Any]:
    fresh = part[~part["cached"].astype(bool)] if len(part) else part
    return {
        "model": name, "calls": len(fresh), "cache_hits": len(part) - len(fresh),
        "unpriced_calls": unpriced(part),
        "prompt_tokens": fresh["prompt_tokens"].astype(float).sum(min_count=1) if len(fresh) else 0.0,
        "completion_tokens": fresh["completion_tokens"].astype(float).sum(min_count=1) if len(fresh) else 0.0,
        "cost_usd": spend(part), "saved_by_cache_usd": saved_by_cache(part),
        "cost_per_1k_usd": per_1k_calls(part),
    }


def format_usd(value: Any) -> str:
    """``$0.000123`` / ``$0.0123`` / ``$12.35``; ``unknown`` for NaN (never "$0")."""
    number = _num(value)
    if math.isnan(number):
        return "unknown"
    if number == 0:
        return "$0"
    if abs(number) < 0.01:
        return f"${number:.6f}"
    return f"${number:,.4f}" if abs(number) < 1 else f"${number:,.2f}"


def with_costs_shown(frame: Any) -> Any:
    """A copy for display whose dollar columns are text through :func:`format_usd` (pandas'
    ``formatters=`` skip NaN cells, which would read as a dash or a blank instead of "unknown")."""
    shown = {c: frame[c].map(format_usd) for c in frame.columns if c in COST_COLUMNS}
    return frame.assign(**shown) if shown else frame
