"""The log's schema: the ``runs``, ``cache`` and ``labels`` tables as ordered, named migrations (as simonw/llm
does), each a list of statements for a backend's :class:`Dialect`.

A new :class:`~llmlab.base._record.Record` column comes with its own migration; a log carrying a
migration this llmlab does not know was written by a newer llmlab and is refused at open.
"""
from __future__ import annotations

import functools
import math
import sqlite3
from collections.abc import Callable

from ..base._record import BOOL_COLUMNS, COLUMNS, FLOAT_COLUMNS, INT_COLUMNS, STORE_ONLY

__all__ = ["Dialect", "MIGRATIONS", "KNOWN_MIGRATIONS", "RECORD_COLUMNS", "LABEL_COLUMNS", "made_objects",
           "stored_range", "MIGRATIONS_TABLE"]

RECORD_COLUMNS = [c for c in COLUMNS if c != "id"] + list(STORE_ONLY)
LABEL_COLUMNS = ("created_at", "who", "grading", "prompt_id", "model_a", "model_b", "shown_first", "vote", "winner",
                 "row_a", "row_b", "answer_a_hash", "answer_b_hash")
_INT_COLUMNS = (*INT_COLUMNS, *STORE_ONLY)
# Frozen: a new Record column comes with its own migration (``_check_columns`` notices a missing one).
_M001_COLUMNS = (
    "run_id", "request_id", "prompt_id", "task", "expected", "repeat", "requested_model", "served_model",
    "attempt", "status", "error_type", "error_message", "started_at", "waited_s", "ttft_s", "latency_s",
    "output_tokens_per_s", "prompt_tokens", "completion_tokens", "cached_tokens", "tokens_estimated", "cost_usd",
    "cost_source", "cached", "cache_of", "finish_reason", "response_text", "prompt", "messages", "params",
    "stream", "endpoint", "api_key_env",
)


class Dialect:
    """What differs in the DDL between backends."""

    def __init__(self, *, real: str, integer: str, id_column: str) -> None:
        self.real, self.integer, self.id_column = real, integer, id_column

    def column_type(self, column: str) -> str:
        if column in FLOAT_COLUMNS:
            return self.real
        return self.integer if column in (*BOOL_COLUMNS, *_INT_COLUMNS) else "TEXT"


# -- migrations: ordered, named, each a list of statements for a dialect -------------------------
def m001_initial(d: Dialect) -> list[str]:
    cols = ",\n".join(f"  {c} {d.column_type(c)}" for c in _M001_COLUMNS)
    return [f"CREATE TABLE runs (\n  id {d.id_column},\n{cols}\n)",
            "CREATE INDEX runs_run_id ON runs (run_id)",
            "CREATE INDEX runs_prompt_model ON runs (prompt_id, requested_model)"]


def m002_cache(d: Dialect) -> list[str]:
    return [f"CREATE TABLE cache (key TEXT PRIMARY KEY, row_id {d.integer} NOT NULL REFERENCES runs(id),"
            " created_at TEXT NOT NULL)"]


def m003_original_cost(d: Dialect) -> list[str]:
    # A cache hit spends nothing: its cost_usd becomes 0 and the original's cost moves beside it.
    return [f"ALTER TABLE runs ADD COLUMN original_cost_usd {d.real}",
            "UPDATE runs SET original_cost_usd = cost_usd, cost_usd = 0.0, cost_source = 'cache' WHERE cached = 1"]


def m004_route(d: Dialect) -> list[str]:
    # lab.route records which policy chose each row's model, and why.
    return ["ALTER TABLE runs ADD COLUMN policy TEXT", "ALTER TABLE runs ADD COLUMN route_reason TEXT"]


def m005_job_order(d: Dialect) -> list[str]:
    return [f"ALTER TABLE runs ADD COLUMN seq {d.integer}",
            "CREATE INDEX runs_run_seq ON runs (run_id, seq)",
            "CREATE INDEX runs_started_at ON runs (started_at)"]


def m006_labels(d: Dialect) -> list[str]:
    # Human preference labels (blind grading): who, when, which pair, which order was shown, the vote.
    # An undo keeps the row and sets undone_at; a skip is a row whose vote is 'skip' and winner NULL.
    return [f"CREATE TABLE labels (\n  id {d.id_column},\n  created_at TEXT NOT NULL,\n  who TEXT NOT NULL,\n"
            "  grading TEXT NOT NULL,\n  prompt_id TEXT NOT NULL,\n  model_a TEXT NOT NULL,\n  model_b TEXT NOT NULL,\n"
            f"  shown_first TEXT NOT NULL,\n  vote TEXT NOT NULL,\n  winner TEXT,\n  row_a {d.integer},\n"
            f"  row_b {d.integer},\n  undone_at TEXT\n)",
            "CREATE INDEX labels_grading ON labels (grading, who)"]


_M007_COLUMNS = ("ttft_reasoning_s", "ttft_answer_s", "cache_creation_tokens", "reasoning_tokens",
                 "prompt_cache_saved_usd", "reasoning_text", "tool_calls", "reasoning_effort", "conversation_hash",
                 "turns", "batch_id")


def m007_call_details(d: Dialect) -> list[str]:
    """Reasoning, prompt caching, tool calls and conversations as columns of their own; and the
    Batch API's parts (one batch per model and part) with the requests each holds, written
    before a batch is created so a restarted kernel finds it and never sends a request twice."""
    columns = [f"ALTER TABLE runs ADD COLUMN {c} {d.column_type(c)}" for c in _M007_COLUMNS]
    # Rows written before this migration sent one user turn (sweeps of conversations are new).
    return [*columns, "UPDATE runs SET turns = 1",
            "CREATE TABLE batch_parts (part_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, model TEXT NOT NULL, "
            f"part {d.integer} NOT NULL, endpoint TEXT NOT NULL, requests {d.integer} NOT NULL, "
            "input_file_id TEXT, batch_id TEXT, status TEXT NOT NULL, created_at TEXT NOT NULL, stored_at TEXT)",
            "CREATE INDEX batch_parts_run ON batch_parts (run_id)",
            "CREATE TABLE batch_requests (part_id TEXT NOT NULL REFERENCES batch_parts(part_id), "
            "custom_id TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (part_id, custom_id))"]


def m008_answer_confidence(d: Dialect) -> list[str]:
    # Per-answer summaries of the token log-probabilities (NULL: not asked for or not sent).
    return [f"ALTER TABLE runs ADD COLUMN logprob_mean {d.real}", f"ALTER TABLE runs ADD COLUMN logprob_min {d.real}"]


def m009_refusal(d: Dialect) -> list[str]:
    # A model's refusal (OpenAI's message/delta.refusal) has a column of its own, beside the answer.
    return ["ALTER TABLE runs ADD COLUMN refusal TEXT"]


def m010_label_answers(d: Dialect) -> list[str]:
    # Which answers a label was made on (base._record.answer_hash of each); NULL: made before this
    # migration or without the rows, so unchecked.
    return ["ALTER TABLE labels ADD COLUMN answer_a_hash TEXT", "ALTER TABLE labels ADD COLUMN answer_b_hash TEXT"]


MIGRATIONS: list[Callable[[Dialect], list[str]]] = [m001_initial, m002_cache, m003_original_cost, m004_route,
                                                         m005_job_order, m006_labels, m007_call_details,
                                                         m008_answer_confidence, m009_refusal, m010_label_answers]
KNOWN_MIGRATIONS = {m.__name__ for m in MIGRATIONS}


@functools.lru_cache(maxsize=4)
def made_objects(dialect: Dialect) -> dict[tuple[str, str], str]:
    """{(type, name): sql} of every table and index llmlab's migrations make (SQLite's own
    ``sqlite_…`` objects aside): what a log may hold, found by migrating an empty in-memory
    database, so a new migration's objects are known without a second list of them."""
    db = sqlite3.connect(":memory:")
    try:
        db.execute(MIGRATIONS_TABLE)
        for migration in MIGRATIONS:
            for statement in migration(dialect):
                db.execute(statement)
        return {(kind, name): sql or "" for kind, name, sql in db.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")}
    finally:
        db.close()


MIGRATIONS_TABLE = "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)"
# What a numeric column may hold (anything else a hand-edited or foreign log holds reads as NaN): a
# finite number; a cost or a token count ≥ 0 (a negative one would falsify every sum of them), a
# log-probability ≤ 0. (What the prompt cache saved may be negative: a call that only writes to it.)
_AT_LEAST_0 = ("cost_usd", "original_cost_usd", "prompt_tokens", "completion_tokens", "cached_tokens",
               "cache_creation_tokens", "reasoning_tokens")
_RANGES = {**dict.fromkeys(_AT_LEAST_0, (0.0, math.inf)),
           **dict.fromkeys(("logprob_mean", "logprob_min"), (-math.inf, 0.0))}


def stored_range(column: str) -> tuple[float, float]:
    """(lo, hi) of a float column as read back from a log."""
    return _RANGES.get(column, (-math.inf, math.inf))
