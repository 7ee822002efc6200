"""The live side-by-side comparison widget (ipywidgets 8) and the live columns it shares with
the ``%%llm`` magic.

Imported only on demand (``llmlab.CompareWidget`` is resolved lazily) because ipywidgets is
slow to import. Engine events arrive on the engine's loop thread; widget values are plain
traitlets, safe to set from there, and renders are throttled to ~10/s.
"""
from __future__ import annotations

import base64
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as w

from ..analysis import _charts as charts
from ..base._display import clean_text, esc, table_html
from ..base._errors import EndpointError, InputError
from ..base._throttle import Throttle
from ..base._validate import one_line
from ..engine._loop import CANCEL_GRACE_S
from ..engine._options import CALL_FIELDS, CallOptions, unknown_keyword
from ._board import Board, board_html, column_html

__all__ = ["CompareWidget", "LiveColumns"]


class LiveColumns:
    """One HTML widget per model column, re-rendered from a ``Board`` as events arrive."""

    def __init__(self, board: Board, interval: float = 0.1):
        self.board = board
        self.box = w.Box(layout=w.Layout(display="flex", flex_flow="row wrap", width="100%"))
        self._views: dict[str, w.HTML] = {}
        self._shown: dict[str, int] = {}
        self._throttle = Throttle(self.render, interval)
        self.render()

    def on_event(self, event: Any) -> None:
        """The engine's ``on_event`` callback."""
        if self.board.apply(event) is not None:
            # Start/finish changes are rare and worth showing at once; deltas are throttled.
            self._throttle(force=getattr(event, "kind", "") != "delta")

    def render(self) -> None:
        columns = self.board.snapshot()
        added = False
        for col in columns:
            view = self._views.get(col.model)
            if view is None:
                view = self._views[col.model] = w.HTML(layout=w.Layout(flex="1 1 0", min_width="16em"))
                added = True
            if self._shown.get(col.model) != col.version:
                view.value = column_html(col)
                self._shown[col.model] = col.version
        if added:
            self.box.children = tuple(self._views[c.model] for c in columns)

    def flush(self) -> None:
        """Cancel any pending throttled render and show the final state now."""
        self._throttle(force=True)

    def stop(self) -> None:
        """No more renders (the final state stays shown)."""
        self._throttle.cancel()

    def close(self) -> None:
        self._throttle.cancel()
        for view in self._views.values():
            view.close()
        self.box.close()


class CompareWidget:
    """Prompt, model picker and settings; Run streams every selected model side by side.

    ``CompareWidget(lab=None)`` builds a default ``Lab`` when none is given. Run starts
    ``lab.submit_compare(...)`` (the kernel stays free); Stop cancels in-flight calls, and
    finished calls stay recorded in the log. ``wait()`` blocks until the table and charts are in.
    ``options``: more of ``compare``'s keywords for every run (``{"tools": [...], "tool_choice":
    "auto"}``, ``{"response_format": {...}}``, ``{"system": "..."}``), checked here.
    """

    __module__ = "llmlab"

    def __init__(self, lab: Any = None, *, models: Sequence[str] | None = None, prompt: str = "",
                 options: Mapping[str, Any] | None = None) -> None:
        self.options = _checked_options(options)
        self._lab = lab
        self.future = None
        self.result = None
        self.board: Board | None = None
        self.live: LiveColumns | None = None
        self._started = 0.0
        self._finished = threading.Event()
        self._finished.set()
        self._build(prompt)
        self.refresh_models(select=models)

    # -- layout -----------------------------------------------------------------------------
    def _build(self, prompt: str) -> None:
        # "auto" rather than 100 %: in the column box that fills the width minus the widgets'
        # 2 px margins; 100 % plus the margins made the whole widget scroll sideways by 4 px.
        full = w.Layout(width="auto")
        self.prompt = w.Textarea(value=prompt, placeholder="Prompt…", rows=4, layout=full)
        self.models = w.SelectMultiple(options=[], rows=6, description="models")
        self.refresh_button = w.Button(description="↻", tooltip="Reload the endpoint's models",
                                       layout=w.Layout(width="3em"))
        self.temperature = w.FloatSlider(value=0.0, min=0.0, max=2.0, step=0.05, description="temperature")
        self.max_tokens = w.IntText(value=getattr(self._lab, "max_tokens", 512), description="max_tokens")
        self.cache = w.Checkbox(value=True, description="use cache", indent=False)
        self.run_button = w.Button(description="Run", button_style="primary", icon="play")
        self.stop_button = w.Button(description="Stop", button_style="warning", icon="stop", disabled=True)
        self.status = w.HTML()
        self.columns = w.VBox(layout=full)
        # Its own scroll box: a wide metrics table scrolls here, not at the bottom of the widget.
        self.table = w.HTML(layout=w.Layout(width="auto", overflow="auto"))
        self.chart_outputs = {key: w.Output() for key in charts.CHARTS}
        self.charts = w.Tab(children=list(self.chart_outputs.values()))
        for i, key in enumerate(self.chart_outputs):
            self.charts.set_title(i, charts.TITLES[key])
        self.run_button.on_click(lambda _: self.run())
        self.stop_button.on_click(lambda _: self.stop())
        self.refresh_button.on_click(lambda _: self.refresh_models())
        settings = w.VBox([self.temperature, self.max_tokens, self.cache,
                           w.HBox([self.run_button, self.stop_button])])
        self.ui = w.VBox([self.prompt, w.HBox([self.models, self.refresh_button, settings]),
                          self.status, self.columns, self.table, self.charts])

    def _repr_mimebundle_(self, **kwargs):
        # The live widget, plus a static view for front ends that cannot show it: an untrusted
        # notebook (JupyterLab renders only sanitized HTML there) or a saved one opened without
        # a kernel — instead of the raw ``VBox(children=(Textarea(...`` repr.
        bundle = self.ui._repr_mimebundle_(**kwargs) or {}
        bundle["text/plain"] = self._static_text()
        bundle["text/html"] = self._static_html()
        return bundle

    def _static_text(self) -> str:
        models = ", ".join(self.models.value or self.models.options) or "none listed"
        return clean_text(f"<CompareWidget: models {models}; a live widget in Jupyter with a running kernel>")

    def _static_html(self) -> str:
        head = (f'<div class="llmlab-compare" style="color:#555">llmlab CompareWidget — models: '
                f'{esc(", ".join(self.models.value or self.models.options) or "none listed")}. '
                "The live widget (prompt, Run, Stop, charts) shows in Jupyter with a running kernel.</div>")
        if self.board is None:
            return head
        return head + board_html(self.board.snapshot()) + self.table.value

    @property
    def lab(self):
        if self._lab is None:
            from ..engine._lab import Lab

            self._lab = Lab()
        return self._lab

    def refresh_models(self, select: Sequence[str] | None = None) -> None:
        """Fill the model list from the endpoint's ``/v1/models``."""
        try:
            names = [str(m) for m in self.lab.list_models()["model"]]
        except EndpointError as exc:  # it says what failed, where and what to check
            self._set_status("error", one_line(exc))
            return
        except Exception as exc:  # an unreachable endpoint must not break the widget
            self._set_status("error", f"could not list models: {one_line(exc)}")
            return
        keep = [m for m in (select or self.models.value) if m in names]
        self.models.options = names
        self.models.value = tuple(keep)

    # -- run / stop --------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return not self._finished.is_set()

    def run(self):
        """Start comparing the selected models; returns the ``Future`` (or None if invalid)."""
        if self.running:
            return self.future
        prompt, models = self.prompt.value, list(self.models.value)
        if not prompt.strip():
            self._set_status("error", "Type a prompt first.")
            return None
        if not models:
            self._set_status("error", "Select at least one model.")
            return None
        board, live = self._start_view(models)
        try:
            future = self.lab.submit_compare(
                prompt, models=models, **{**self.options, "temperature": float(self.temperature.value),
                                          "max_tokens": int(self.max_tokens.value), "cache": bool(self.cache.value),
                                          "on_event": live.on_event})
        except Exception as exc:  # bad values, a closed Lab: reported in the widget, not raised
            self._set_status("error", one_line(exc))
            self._set_running(False)
            self._finished.set()
            return None
        self._started = time.monotonic()
        self.future = future
        future.add_done_callback(lambda done: self._on_done(done, board, live))
        return future

    def stop(self) -> None:
        """Cancel in-flight calls; rows of finished calls stay in the log."""
        if self.future is not None and self.running and not self.future.done():
            self._set_status("streaming", "Stopping…")  # before cancel(): it may finish at once
            self.future.cancel()

    def wait(self, timeout: float | None = None):
        """Block until the run (and its table and charts) is finished; return the Result."""
        if not self._finished.wait(timeout):
            raise TimeoutError("the comparison is still running")
        return self.result

    def _start_view(self, models: list[str]) -> tuple[Board, LiveColumns]:
        self.result = None
        if self.live is not None:
            self.live.close()
        board = self.board = Board(models)
        live = self.live = LiveColumns(board)
        self.columns.children = (live.box,)
        self.table.value = ""
        for out in self.chart_outputs.values():
            out.outputs = ()
        self._set_running(True)
        self._set_status("streaming", f"Running {len(models)} model(s)…")
        return board, live

    def _set_running(self, running: bool) -> None:
        if running:
            self._finished.clear()
        self.run_button.disabled = running
        self.stop_button.disabled = not running

    def _set_status(self, status: str, message: str) -> None:
        colour = {"error": "#d62728", "done": "#2ca02c", "cancelled": "#ff7f0e"}.get(status, "#555")
        self.status.value = f'<span style="color:{colour}">{esc(message)}</span>'

    # -- finishing (off the engine's loop thread: charts take a moment) -----------------------
    def _on_done(self, future, board: Board, live: LiveColumns) -> None:
        threading.Thread(target=self._finish, args=(future, board, live), name="llmlab-widget-finish",
                         daemon=True).start()

    def _finish(self, future, board: Board, live: LiveColumns) -> None:
        try:
            if future.cancelled():
                self._finish_cancelled(future, board, live)
            elif future.exception() is not None:
                board.cancel_unfinished()
                self._set_status("error", one_line(future.exception()))
            else:
                result = self.result = future.result()
                self._show(result.df, result.summary(), live)
                took = time.monotonic() - self._started
                self._set_status("done", f"Done in {took:.1f} s (run {result.run_id}).")
        except Exception as exc:  # never leave the buttons stuck in "running"
            self._set_status("error", f"display failed: {one_line(exc)}")
        finally:
            live.flush()
            self._set_running(False)
            self._finished.set()

    def _finish_cancelled(self, future, board: Board, live: LiveColumns) -> None:
        # Cancelling marks the Future at once; the engine then records the cancelled attempts.
        finished = getattr(future, "finished", None)
        if finished is not None:
            finished.wait(CANCEL_GRACE_S)
        board.cancel_unfinished()
        live.flush()  # say it at once; the table and charts of what was recorded follow
        self._set_status("cancelled", _stopped_message(board.records))
        frame = self._logged_rows(board)
        if frame is not None and len(frame):
            from ..engine._results import summarise

            self._show(frame, summarise(frame, list(board.columns)), live)

    def _logged_rows(self, board: Board):
        if not board.run_ids:
            return None
        import pandas as pd

        return pd.concat([self.lab.runs(run_id=r) for r in board.run_ids], ignore_index=True)

    def _show(self, df, summary, live: LiveColumns) -> None:
        live.flush()
        self.table.value = table_html(summary)
        for key, draw in charts.CHARTS.items():
            self.chart_outputs[key].outputs = (_figure_output(draw(df)),)


_OWN = ("temperature", "max_tokens", "cache", "on_event")  # the widget's own controls set these


def _checked_options(options: Mapping[str, Any] | None) -> dict[str, Any]:
    options = dict(options or {})
    for name in options:
        if name not in CALL_FIELDS or name in ("n", "concurrency", "progress", "resume", "batch"):
            raise unknown_keyword(name, sorted(CALL_FIELDS - set(_OWN)), "CompareWidget option")
        if name in _OWN:
            raise InputError(f"CompareWidget option {name!r} is one of the widget's own controls; set it there")
    CallOptions(**options)  # every value checked now, as compare() would
    return options


def _figure_output(fig) -> dict:
    """An Output-widget entry holding the figure as PNG (no pyplot, no shell needed)."""
    png = base64.b64encode(fig._repr_png_()).decode("ascii")
    title = fig.axes[0].get_title().split("\n")[0] if fig.axes else "chart"  # not the "not shown" line
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": png, "text/plain": f"<Figure: {title}>"}}


def _stopped_message(records: list[dict]) -> str:
    done = sum(1 for r in records if r.get("status") == "ok")
    cut = sum(1 for r in records if r.get("error_type") == "Cancelled")
    kept = f"; {cut} cut short, kept in the log as Cancelled rows with their partial text" if cut else ""
    return f"Stopped: {done} finished call(s) recorded{kept}."
