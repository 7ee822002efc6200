# The public face of llmlab.analysis._charts: its public names and its documentation (the layers never
# import this module; see docs/architecture.md).
from __future__ import annotations

from .analysis import _charts
from .analysis._charts import (
    CHARTS,
    TITLES,
    PlotAccessor,
    cost,
    cost_vs_latency,
    latency,
    throughput,
    ttft,
)

__all__ = ["latency", "ttft", "throughput", "cost", "cost_vs_latency", "PlotAccessor", "CHARTS", "TITLES"]

__doc__ = _charts.__doc__  # help() shows the documentation where the code lives
