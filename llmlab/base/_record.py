"""The row schema: one :class:`Record` per attempt, the same in memory, SQLite and DataFrames."""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, fields

__all__ = ["Record", "prompt_id_for", "conversation_hash", "answer_hash", "user_turns", "COLUMNS", "BOOL_COLUMNS",
           "FLOAT_COLUMNS", "INT_COLUMNS", "STORE_ONLY"]


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
    ttft_reasoning_s: float = math.nan  # request sent → first reasoning delta (streams)
    ttft_answer_s: float = math.nan  # request sent → first content or tool-call delta (streams)
    latency_s: float = math.nan
    output_tokens_per_s: float = math.nan
    prompt_tokens: float = math.nan
    completion_tokens: float = math.nan
    cached_tokens: float = math.nan
    cache_creation_tokens: float = math.nan  # prompt tokens written to the provider's prompt cache
    reasoning_tokens: float = math.nan  # part of completion_tokens (NaN: the endpoint did not say)
    tokens_estimated: bool = False
    cost_usd: float = math.nan
    cost_source: str = "unknown"  # reported / price_table / cache / unknown
    original_cost_usd: float = math.nan  # a cache hit: what the original call cost (not spent now)
    prompt_cache_saved_usd: float = math.nan  # what the provider's prompt cache took off cost_usd
    cached: bool = False
    cache_of: int | None = None  # id of the original row a cache hit replays
    finish_reason: str | None = None
    response_text: str = ""
    refusal: str | None = None  # the model's refusal (delta/message.refusal), kept apart from the answer
    reasoning_text: str = ""  # the reasoning the endpoint streamed or returned (reasoning_content…)
    tool_calls: str | None = None  # JSON [{"id", "name", "arguments"}]: arguments as sent (joined)
    reasoning_effort: str | None = None  # as sent to this model
    conversation_hash: str | None = None  # the messages sent, hashed: one conversation across models
    turns: int = 1  # user turns in the messages sent
    batch_id: str | None = None  # the Batch API batch that answered this row
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
    "ttft_s", "ttft_reasoning_s", "ttft_answer_s", "latency_s", "output_tokens_per_s", "prompt_tokens",
    "completion_tokens", "cached_tokens", "cache_creation_tokens", "reasoning_tokens", "tokens_estimated",
    "cost_usd", "cost_source", "original_cost_usd", "prompt_cache_saved_usd", "cached", "cache_of",
    "finish_reason", "response_text", "reasoning_text", "tool_calls", "prompt", "messages", "conversation_hash",
    "turns", "params", "reasoning_effort", "stream", "batch_id", "endpoint", "api_key_env", "policy",
    "route_reason", "logprob_mean", "logprob_min", "refusal",
]
# Stored but not shown in DataFrames: a job's position in its run, so a run's rows come back in
# the order it was asked for (prompt × model × repeat) without keeping that order in memory.
STORE_ONLY = ("seq",)
assert sorted([*COLUMNS, *STORE_ONLY]) == sorted(f.name for f in fields(Record))
BOOL_COLUMNS = ("stream", "tokens_estimated", "cached")
INT_COLUMNS = ("id", "repeat", "attempt", "cache_of", "turns")
FLOAT_COLUMNS = ("waited_s", "ttft_s", "ttft_reasoning_s", "ttft_answer_s", "latency_s", "output_tokens_per_s",
                 "prompt_tokens", "completion_tokens", "cached_tokens", "cache_creation_tokens", "reasoning_tokens",
                 "cost_usd", "original_cost_usd", "prompt_cache_saved_usd", "logprob_mean", "logprob_min")


def prompt_id_for(messages: list[dict]) -> str:
    """Stable across runs, so the same prompt lines up in the log and in routing analysis."""
    digest = hashlib.sha1(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return "p" + digest[:10]


def conversation_hash(messages: list[dict]) -> str:
    """The whole conversation sent (system, every turn), whatever its prompt_id: the same
    conversation asked of several models, or in several runs, has one hash."""
    return hashlib.sha256(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def answer_hash(text: object) -> str | None:
    """Which answer a label was made on: sha256 of the answer text, 16 hex digits (None for no
    text). A label stores the hashes of both answers shown, so a re-sweep whose answers changed
    does not silently inherit labels made on the old ones."""
    if text is None or (isinstance(text, float) and text != text):
        return None
    return hashlib.sha256(str(text).encode()).hexdigest()[:16]


def user_turns(messages: list[dict]) -> int:
    return sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "user")
