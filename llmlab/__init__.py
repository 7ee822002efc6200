"""llmlab — compare, measure, cost and route LLMs behind one OpenAI-compatible endpoint.

Public API: :class:`Lab` (the engine), :class:`Result`, :class:`Event`, :class:`Timeouts`,
:class:`RetryPolicy`, :class:`PriceTable`, the exceptions, and ``%load_ext llmlab`` for the
``%%llm`` magics. ``CompareWidget`` loads ipywidgets only when first used.
"""
from __future__ import annotations

from ._call import Timeouts
from ._errors import ConfigError, InputError, LLMLabError, LocalServerError, StoreError
from ._lab import Lab
from ._pricing import Price, PriceTable, PriceWarning
from ._resilience import RetryPolicy
from ._results import Result
from ._runner import Event

__version__ = "0.1.0"

__all__ = [
    "Lab", "Result", "Event", "Timeouts", "RetryPolicy", "Price", "PriceTable", "PriceWarning",
    "LLMLabError", "ConfigError", "InputError", "StoreError", "LocalServerError",
    "CompareWidget", "load_ipython_extension", "__version__",
]


def load_ipython_extension(ipython) -> None:
    """``%load_ext llmlab``: register the ``%llm`` / ``%%llm`` magics."""
    from .magics import load_ipython_extension as load

    load(ipython)


def __getattr__(name: str):
    # ipywidgets is heavy; import it only when the widget is asked for.
    if name == "CompareWidget":
        from .widgets import CompareWidget

        return CompareWidget
    raise AttributeError(f"module 'llmlab' has no attribute {name!r}")
