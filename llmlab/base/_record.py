"""The row schema: one :class:`Record` per attempt, the same in memory, SQLite and DataFrames."""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, fields

__all__ = ["Record", "prompt_id_for", "COLUMNS", "BOOL_COLUMNS", "FLOAT_COLUMNS", "INT_COLUMNS", "STORE_ONLY"]


@dataclass
class Record:
    run_id: str
    request_id: str
    prompt_id: str
    requested_model: str
    prompt: str
    messages: str  # JSON
    params: str  # JSON
    stream: bool
    endpoint: str
    api_key_env: str | None
    task: str | None = None
    expected: str | None = None
    repeat: int = 0
    attempt: int = 1
    served_model: str | None = None
    status: str = "error"
    error_type: str | None = None
    error_message: str | None = None
    started_at: str = ""  # ISO 8601, UTC
    waited_s: float = 0.0
    ttft_s: float = math.nan
    latency_s: float = math.nan
    output_tokens_per_s: float = math.nan
    prompt_tokens: float = math.nan
    completion_tokens: float = math.nan
    cached_tokens: float = math.nan
    tokens_estimated: bool = False
    cost_usd: float = math.nan
    cost_source: str = "unknown"  # reported / price_table / cache / unknown
    original_cost_usd: float = math.nan  # a cache hit: what the original call cost (not spent now)
    cached: bool = False
    cache_of: int | None = None  # id of the original row a cache hit replays
    finish_reason: str | None = None
    response_text: str = ""
    refusal: str | None = None  # the model's refusal (delta/message.refusal), kept apart from the answer
    policy: str | None = None        # lab.route: the routing policy that chose this model
    route_reason: str | None = None  # lab.route: why, e.g. "length 412 ≥ 250 → gpt-4"
    # token log-probabilities of the answer, when asked for (logprobs=True) and sent; NaN = unknown
    logprob_mean: float = math.nan
    logprob_min: float = math.nan
    id: int | None = field(default=None)
    seq: int | None = None  # the job's position in its run (stored, not shown: see STORE_ONLY)

    def to_row(self) -> dict:
        # A shallow copy: every field is a scalar, and asdict's deep copy costs ~0.3 ms per call.
        return {name: getattr(self, name) for name in _FIELD_NAMES}


# Display order of DataFrames (the dataclass order is constrained by defaults).
_FIELD_NAMES = tuple(f.name for f in fields(Record))

COLUMNS: list[str] = [
    "id", "run_id", "request_id", "prompt_id", "task", "expected", "repeat", "requested_model",
    "served_model", "attempt", "status", "error_type", "error_message", "started_at", "waited_s",
    "ttft_s", "latency_s", "output_tokens_per_s", "prompt_tokens", "completion_tokens",
    "cached_tokens", "tokens_estimated", "cost_usd", "cost_source", "original_cost_usd", "cached", "cache_of",
    "finish_reason", "response_text", "prompt", "messages", "params", "stream", "endpoint",
    "api_key_env", "policy", "route_reason", "logprob_mean", "logprob_min", "refusal",
]
# Stored but not shown in DataFrames: a job's position in its run, so a run's rows come back in
# the order it was asked for (prompt × model × repeat) without keeping that order in memory.
STORE_ONLY = ("seq",)
assert sorted([*COLUMNS, *STORE_ONLY]) == sorted(f.name for f in fields(Record))
BOOL_COLUMNS = ("stream", "tokens_estimated", "cached")
INT_COLUMNS = ("id", "repeat", "attempt", "cache_of")
FLOAT_COLUMNS = ("waited_s", "ttft_s", "latency_s", "output_tokens_per_s", "prompt_tokens",
                 "completion_tokens", "cached_tokens", "cost_usd", "original_cost_usd", "logprob_mean",
                 "logprob_min")


def prompt_id_for(messages: list[dict]) -> str:
    """Stable across runs, so the same prompt lines up in the log and in routing analysis."""
    digest = hashlib.sha1(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return "p" + digest[:10]
