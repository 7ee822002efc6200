"""llmlab — compare, measure, cost and route LLMs behind one OpenAI-compatible endpoint.

Public API: :class:`Lab` (the engine), :class:`Result`, :class:`Event`, :class:`Timeouts`,
:class:`RetryPolicy`, :class:`PriceTable`, the exceptions, ``CompareWidget``, ``GradingWidget``, and
``%load_ext llmlab`` for the ``%%llm`` magics.

The package is laid out as its layers (``docs/architecture.md``): front ends ``notebook/`` and
``cli/`` → ``engine/`` → ``routing/`` → ``analysis/`` and ``datasets/`` → ``store/`` and ``local/``
→ ``base/``; each layer imports only those below it. ``scoring``, ``charts``, ``magics`` and
``widgets`` are the public faces of modules inside the layers.

Names are imported on first use (PEP 562): ``%load_ext llmlab`` must stay fast, so the openai
SDK, pandas, matplotlib, ipywidgets and tiktoken load only when something needs them.
"""
from __future__ import annotations

import typing as _typing
from importlib import import_module as _import_module

from .base._errors import (
    ConfigError,
    EndpointError,
    InputError,
    LLMLabError,
    LocalServerError,
    RunInUse,
    StoreError,
)
from .base._version import __version__

if _typing.TYPE_CHECKING:  # what static checkers and IDEs see; at run time these load on first use
    from .base._pricing import Price, PriceTable, PriceWarning
    from .engine._lab import Lab
    from .engine._options import Timeouts
    from .engine._resilience import RetryPolicy
    from .engine._results import Result
    from .engine._runner import Event
    from .notebook._grading import GradingWidget
    from .notebook._widgets import CompareWidget
    from .store._columnar import export_schema

_LAZY = {
    "Lab": ".engine._lab", "Result": ".engine._results", "Event": ".engine._runner", "Timeouts": ".engine._options",
    "RetryPolicy": ".engine._resilience", "Price": ".base._pricing", "PriceTable": ".base._pricing",
    "PriceWarning": ".base._pricing", "CompareWidget": ".notebook._widgets", "export_schema": ".store._columnar",
    "GradingWidget": ".notebook._grading",
}

__all__ = [
    "Lab", "Result", "Event", "Timeouts", "RetryPolicy", "Price", "PriceTable", "PriceWarning",
    "LLMLabError", "ConfigError", "InputError", "StoreError", "RunInUse", "EndpointError",
    "LocalServerError", "CompareWidget", "GradingWidget", "export_schema", "load_ipython_extension",
    "unload_ipython_extension",
    "__version__",
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
    from .notebook._magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: object) -> None:
    from .notebook._magics import unload_ipython_extension as unload

    unload(ipython)
