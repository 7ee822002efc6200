"""How the command line prints a summary table (a dollar that is unknown reads "unknown")."""
from __future__ import annotations

from typing import Any

__all__ = ["format_summary"]


def format_summary(summary: Any) -> str:
    import pandas as pd

    from ..base._cost import with_costs_shown

    with pd.option_context("display.width", 160, "display.max_columns", 30,
                           "display.float_format", "{:.3g}".format):
        return with_costs_shown(summary).to_string(index=False)  # unknown cost reads "unknown"
