# The public face of llmlab.analysis._scoring (scorers), _pairwise (pairwise judging), _agreement and
# _ratings: their public names and their documentation (the layers never import this module; see
# docs/architecture.md).
from __future__ import annotations

from .analysis import _scoring
from .analysis._agreement import agreement
from .analysis._pairwise import check_preferences, pairwise
from .analysis._ratings import Ratings, ratings
from .analysis._scoring import (
    Scorer,
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
    summary,
    tool_call,
)
from .analysis._verdicts import Verdict, parse_preference, parse_rating
from .base._record import answer_hash

__all__ = [
    "Scorer", "score", "summary", "exact", "contains", "regex", "json_valid", "numeric", "choice", "judge",
    "by_task", "auto", "from_spec", "as_scorer", "arithmetic", "final_answer", "no_hedging", "agreement",
    "tool_call", "json_schema", "pairwise", "check_preferences", "ratings", "Ratings", "parse_rating",
    "parse_preference", "Verdict", "answer_hash",
]

__doc__ = _scoring.__doc__  # help() shows the documentation where the code lives
