"""Exceptions raised by llmlab.

Every error llmlab raises on purpose derives from :class:`LLMLabError`, so callers can
catch one class. Messages are one line and say what to do next.

    LLMLabError
    ├── ConfigError        – no endpoint, bad key-variable name, bad price sheet, bad settings
    ├── InputError         – bad arguments to compare/sweep/complete (also a ValueError)
    ├── StoreError         – the SQLite run log cannot be opened or written
    │   └── RunInUse       – another process is running (or resuming) that run: nothing was sent
    ├── EndpointError      – a non-model request to the endpoint failed (listing models)
    └── LocalServerError   – the embedded llama.cpp endpoint cannot start or died

A failed *model call* is not an exception: it becomes a row with ``status="error"``.

A message is shown like every other view: known secrets removed, control and bidi characters
made visible (a hostile model name cannot drive the terminal a traceback is printed to).
"""
from __future__ import annotations

from typing import Any

from ._display import clean_text

__all__ = ["LLMLabError", "ConfigError", "InputError", "StoreError", "RunInUse", "EndpointError", "LocalServerError"]


class LLMLabError(Exception):
    """Base class of every error llmlab raises on purpose."""

    __module__ = "llmlab"

    def __init__(self, *args: Any) -> None:
        super().__init__(*(clean_text(a) if isinstance(a, str) else a for a in args))


class ConfigError(LLMLabError):
    """Configuration is missing or invalid (endpoint, key variable, prices, settings)."""

    __module__ = "llmlab"


class InputError(LLMLabError, ValueError):
    """Arguments given to the engine are invalid; nothing was sent or recorded."""

    __module__ = "llmlab"


class StoreError(LLMLabError):
    """The run log cannot be opened or written."""

    __module__ = "llmlab"


class RunInUse(StoreError):
    """Another process (or another call of this one) holds the run's claim — the run is being
    swept, resumed or collected there; nothing was sent (``llmlab.store._claims``)."""

    __module__ = "llmlab"


class EndpointError(LLMLabError):
    """The endpoint refused or failed a request that is not a model call (e.g. /v1/models)."""

    __module__ = "llmlab"


# The one install command that builds llama.cpp the way that works on every CPU (native flags
# crash with a general protection fault in libggml-cpu on some).
# llmlab is installed from its checkout (it is not on the package index).
INSTALL_LOCAL = 'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install -e ".[local]" (in the llmlab checkout; or ./dev setup)'


class LocalServerError(LLMLabError):
    """The embedded local endpoint cannot start, or it died."""

    __module__ = "llmlab"
