"""How the command line prints a summary table: the report's columns, headers and number formats
(one rule for both; a dollar that is unknown reads "unknown"), the whole summary left to the CSV."""
from __future__ import annotations

from typing import Any

__all__ = ["format_summary"]


def format_summary(summary: Any, runs: Any = None) -> str:
    from ..analysis._report import summary_text

    return summary_text(summary, runs)
