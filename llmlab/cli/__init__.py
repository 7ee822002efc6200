"""Front end: the ``llmlab`` command (``serve``, ``demo``, ``export``) — parse, call the engine, print.

May import the engine, routing, analysis, datasets, the embedded endpoint and ``base``; never the
notebook front end (the two front ends are independent, checked by an import-linter contract).
"""
from __future__ import annotations

from ._main import main

__all__ = ["main"]
