"""Warnings that point at the user's line and are shown once per key per process.

The engine runs on a background loop thread (``_loop.LoopThread``), where no user frame exists:
a plain ``warnings.warn`` there points at llmlab's own source. Inside ``LoopThread.run`` the
warnings are therefore collected (a context variable, inherited by the tasks the run starts)
and re-emitted in the calling thread, with the stack level of the first frame outside llmlab
and IPython's magic machinery: the user's script line or notebook cell.
"""
from __future__ import annotations

import contextvars
import sys
import threading
import warnings
from collections.abc import Coroutine
from pathlib import Path
from types import FrameType
from typing import Any

from ._display import clean_text

__all__ = ["collecting", "emit", "warn_once"]

_PACKAGE = str(Path(__file__).resolve().parents[1])  # the llmlab package folder
_SINK: contextvars.ContextVar[list[Warning] | None] = contextvars.ContextVar("llmlab_warnings", default=None)


class _Shown:
    """Keys already warned about in this process ("once per model per kernel"). Python's own
    "once" action cannot do this: its registry is cleared whenever any library touches the
    warning filters, which pandas and matplotlib do all the time."""

    def __init__(self) -> None:
        self._keys: set[tuple[type, str]] = set()
        self._lock = threading.Lock()

    def first(self, key: tuple[type, str]) -> bool:
        with self._lock:
            if key in self._keys:
                return False
            self._keys.add(key)
            return True

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()


SHOWN = _Shown()


def warn_once(key: str, warning: Warning) -> None:
    """Warn about ``key`` (e.g. a model name) once per process, pointing at the caller."""
    if SHOWN.first((type(warning), key)):
        emit(warning)


def emit(warning: Warning) -> None:
    """Warn now at the user's frame or, inside ``LoopThread.run``, hand it to the calling thread.
    The message is shown like every view (known secrets removed, control characters visible)."""
    warning.args = (clean_text(str(warning)),)
    sink = _SINK.get()
    if sink is not None:
        sink.append(warning)
        return
    level = _user_level()
    if level is None:  # a background thread with no user code on its stack (the widget's run)
        warnings.warn_explicit(str(warning), type(warning), filename="llmlab", lineno=0)
    else:
        warnings.warn(warning, stacklevel=level)


async def collecting(coro: Coroutine, sink: list[Warning]) -> Any:
    """Await ``coro`` with warnings going to ``sink`` (run on the loop thread)."""
    token = _SINK.set(sink)
    try:
        return await coro
    finally:
        _SINK.reset(token)


# Machinery between the user and llmlab: IPython running a cell magic, the event loop and
# threads that run llmlab's own work.
_MACHINERY = ("IPython.core.", "asyncio.", "concurrent.futures.", "threading")


def _internal(frame: FrameType) -> bool:
    filename = frame.f_code.co_filename
    if filename.startswith(_PACKAGE) or filename.startswith("<decorator-gen"):
        return True
    return str(frame.f_globals.get("__name__", "")).startswith(_MACHINERY)


def _user_level() -> int | None:
    """``stacklevel`` for a ``warnings.warn`` made by our caller: the first frame outside llmlab
    and that machinery; None when there is none."""
    frame: FrameType | None = sys._getframe(2)  # the frame that called emit()'s caller
    level = 2
    while frame is not None and _internal(frame):
        frame = frame.f_back
        level += 1
    return level if frame is not None else None
