"""Rate-limited redraws: a view that changes on every streamed token redraws at most every
``interval`` seconds, and its last state is always drawn."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["Throttle"]


class Throttle:
    """Call ``fn`` at most every ``interval`` seconds, with a trailing call so the last
    change is always shown. Thread-safe: events arrive on the engine's loop thread."""

    def __init__(self, fn: Callable[[], None], interval: float = 0.1):
        self._fn = fn
        self._interval = interval
        self._lock = threading.Lock()
        # Renders are serialised so an older snapshot can never overwrite a newer one.
        self._render_lock = threading.Lock()
        self._last = 0.0
        self._timer: threading.Timer | None = None

    def __call__(self, force: bool = False) -> None:
        with self._lock:
            wait = self._last + self._interval - time.monotonic()
            if not force and wait > 0:
                if self._timer is None:
                    self._timer = threading.Timer(wait, self._trailing)
                    self._timer.daemon = True
                    self._timer.start()
                return
            self._cancel_timer()
            self._last = time.monotonic()
        self._render()

    def _trailing(self) -> None:
        with self._lock:
            self._timer = None
            self._last = time.monotonic()
        self._render()

    def _render(self) -> None:
        with self._render_lock:
            self._fn()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def cancel(self) -> None:
        with self._lock:
            self._cancel_timer()
