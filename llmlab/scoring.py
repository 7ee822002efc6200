# The public face of llmlab.analysis._scoring: its public names and its documentation (the layers never
# import this module; see docs/architecture.md).
from __future__ import annotations

from .analysis import _scoring
from .analysis._scoring import (
    Scorer,
    agreement,
    arithmetic,
    as_scorer,
    auto,
    by_task,
    choice,
    contains,
    exact,
    final_answer,
    from_spec,
    json_schema,
    json_valid,
    judge,
    no_hedging,
    numeric,
    regex,
    score,
    tool_call,
)

__all__ = [
    "Scorer", "score", "exact", "contains", "regex", "json_valid", "numeric", "choice", "judge", "by_task",
    "auto", "from_spec", "as_scorer", "arithmetic", "final_answer", "no_hedging", "agreement", "tool_call",
    "json_schema",
]

__doc__ = _scoring.__doc__  # help() shows the documentation where the code lives
