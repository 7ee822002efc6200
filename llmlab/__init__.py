"""llmlab — compare, measure, cost and route LLMs behind one OpenAI-compatible endpoint.

Public API: :class:`Lab` (the engine), :class:`Result`, :class:`Event`, :class:`Timeouts`,
:class:`RetryPolicy`, :class:`PriceTable`, the exceptions, ``CompareWidget``, and
``%load_ext llmlab`` for the ``%%llm`` magics.

Names are imported on first use (PEP 562): ``%load_ext llmlab`` must stay fast, so the openai
SDK, pandas, matplotlib, ipywidgets and tiktoken load only when something needs them.
"""
from __future__ import annotations

import typing as _typing
from importlib import import_module as _import_module

from ._errors import ConfigError, EndpointError, InputError, LLMLabError, LocalServerError, StoreError

if _typing.TYPE_CHECKING:  # what static checkers and IDEs see; at run time these load on first use
    from ._columnar import export_schema
    from ._lab import Lab
    from ._options import Timeouts
    from ._pricing import Price, PriceTable, PriceWarning
    from ._resilience import RetryPolicy
    from ._results import Result
    from ._runner import Event
    from .widgets import CompareWidget

__version__ = "0.1.0"

_LAZY = {
    "Lab": "._lab", "Result": "._results", "Event": "._runner", "Timeouts": "._options",
    "RetryPolicy": "._resilience", "Price": "._pricing", "PriceTable": "._pricing",
    "PriceWarning": "._pricing", "CompareWidget": ".widgets", "export_schema": "._columnar",
}

__all__ = [
    "Lab", "Result", "Event", "Timeouts", "RetryPolicy", "Price", "PriceTable", "PriceWarning",
    "LLMLabError", "ConfigError", "InputError", "StoreError", "EndpointError", "LocalServerError",
    "CompareWidget", "export_schema", "load_ipython_extension", "unload_ipython_extension", "__version__",
]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        value = getattr(_import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'llmlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def load_ipython_extension(ipython: object) -> None:
    """``%load_ext llmlab``: register the ``%llm`` / ``%%llm`` magics."""
    from .magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: object) -> None:
    from .magics import unload_ipython_extension as unload

    unload(ipython)
