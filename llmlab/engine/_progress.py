"""Sweep progress: a live bar while calls run, then one static line that stays.

In a Jupyter kernel the bar is an ipywidgets progress bar shown under a display id; when the sweep
ends it is replaced by static text and its widgets are closed, so a saved notebook shows
"llmlab: 16/16 calls in 11.2 s" (trusted or not) — never a stale "0%" bar or a widget that
cannot be restored. Elsewhere it is tqdm on stderr.
"""
from __future__ import annotations

import html
import sys
import threading
import time
from typing import Any

from ..base._throttle import Throttle

__all__ = ["NotebookProgress", "progress_bar"]


def progress_bar(total: int, enabled: bool) -> Any:
    """An object with ``update(n)`` and ``close()``, or None (disabled, nothing to do, no tqdm)."""
    if not enabled or total == 0:
        return None
    if _in_kernel():
        try:
            return NotebookProgress(total)
        except ImportError:  # no ipywidgets: tqdm's text bar below
            pass
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="llmlab", unit="call", file=sys.stderr)


def _in_kernel() -> bool:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


class _Line:
    """The static record left in the output: text and escaped HTML."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_html_(self) -> str:
        return f'<div class="llmlab-progress" style="color:#555">{html.escape(self.text)}</div>'

    def __repr__(self) -> str:
        return self.text


class NotebookProgress:
    """ipywidgets bar + counter, updated at most ~10 times a second from the engine's thread."""

    def __init__(self, total: int, desc: str = "llmlab") -> None:
        import ipywidgets as w
        from IPython.display import display

        self.total, self.n, self.desc = total, 0, desc
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._bar = w.IntProgress(value=0, min=0, max=total, layout=w.Layout(width="40%"))
        self._label = w.HTML()
        self._box = w.HBox([w.HTML(html.escape(desc)), self._bar, self._label])
        self._throttle = Throttle(self._render, 0.1)
        self._render()
        self._handle = display(self._box, display_id=True)

    def update(self, n: int = 1) -> None:
        with self._lock:
            self.n += n
        self._throttle()

    def _render(self) -> None:
        self._bar.value = min(self.n, self.total)
        self._label.value = html.escape(self._counts())

    def _counts(self) -> str:
        took = time.monotonic() - self._started
        rate = f", {self.n / took:.1f} calls/s" if took > 0 and self.n else ""
        return f"{self.n}/{self.total} calls, {took:.1f} s{rate}"

    def summary(self) -> str:
        stopped = "" if self.n >= self.total else " (stopped)"
        return f"{self.desc}: {self._counts()}{stopped}"

    def close(self) -> None:
        self._throttle.cancel()
        if self._handle is not None:
            self._handle.update(_Line(self.summary()))
        for widget in (*self._box.children, self._box):
            for part in (getattr(widget, "style", None), widget.layout, widget):
                if part is not None:
                    part.close()
