"""Escaped rendering of live comparison columns and results, shared by the magics and the widget.

Model output is untrusted text: every string that reaches HTML goes through ``html.escape`` and
every string that reaches a terminal has its control characters neutralised. No JavaScript is
ever emitted. This module imports nothing heavy (no pandas, ipywidgets or matplotlib at import).
"""
from __future__ import annotations

import html
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._cost import attempt_cost, cost_table, format_usd, with_costs_shown

__all__ = [
    "Board", "Column", "Throttle", "esc", "clean_text", "clean_frame", "html_clean", "metrics_line",
    "column_html", "board_html", "board_text", "table_html", "table_text", "session_costs",
]

# Characters that make text lie about its order or lines: bidi marks, embeddings, overrides and
# isolates (Trojan Source: U+202E shows text reversed), the deprecated format controls next to
# them, and the Unicode line/paragraph separators. Joiners (ZWJ/ZWNJ) stay: scripts need them.
_BIDI = "\u061c\u200e\u200f\u2028-\u202e\u2066-\u206f\U000e0000-\U000e007f"  # + invisible tag characters
# C0/C1 controls except \t and \n: ANSI escapes in model output must not drive the terminal.
_CONTROL_RE = re.compile(f"[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f{_BIDI}]")
# In HTML, whitespace controls are harmless (and \r\n common); the rest is shown, not obeyed.
_HTML_CONTROL_RE = re.compile(f"[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f{_BIDI}]")
_STATUS_COLOURS = {
    "waiting": "#888", "streaming": "#1f77b4", "done": "#2ca02c", "error": "#d62728",
    "cancelled": "#ff7f0e",
}


def _shown(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def esc(value: Any) -> str:
    """HTML-escape anything (quotes too, so it is safe inside attributes); control and bidi
    characters are shown as ``\\u202e`` instead of obeyed."""
    return html.escape(_HTML_CONTROL_RE.sub(_shown, "" if value is None else str(value)), quote=True)


def clean_text(value: Any) -> str:
    """Text safe for a terminal: control and bidi characters shown as ``\\x1b``/``\\u202e``
    instead of executed."""
    text = "" if value is None else str(value)
    return _CONTROL_RE.sub(_shown, text)


def clean_frame(df: Any, clean: Callable[[Any], str] = clean_text) -> Any:
    """A copy of ``df`` whose text cells (and column names) are neutralised by ``clean``."""
    frame = df.copy()
    for column in frame.select_dtypes(include=["object", "string"]).columns:
        frame[column] = frame[column].map(lambda v: v if not isinstance(v, str) else clean(v))
    frame.columns = [clean(c) if isinstance(c, str) else c for c in frame.columns]
    return frame


def html_clean(value: Any) -> str:
    """Neutralise control/bidi characters, leaving HTML escaping to the caller (pandas)."""
    return _HTML_CONTROL_RE.sub(_shown, str(value))


# --------------------------------------------------------------------------- metrics

def _num(record: Mapping[str, Any], key: str) -> float | None:
    value = record.get(key)
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def metrics_line(record: Mapping[str, Any] | None) -> str:
    """``TTFT 0.12 s · 1.30 s · 45 tok · 38.2 tok/s · $0.000012`` from one row (plain text)."""
    if not record:
        return ""
    parts = []
    ttft, latency = _num(record, "ttft_s"), _num(record, "latency_s")
    if ttft is not None:
        parts.append(f"TTFT {ttft:.2f} s")
    if latency is not None:
        parts.append(f"latency {latency:.2f} s")
    tokens = _num(record, "completion_tokens")
    if tokens is not None:
        approx = "~" if record.get("tokens_estimated") else ""
        parts.append(f"{approx}{tokens:.0f} tok")
    rate = _num(record, "output_tokens_per_s")
    if rate is not None:
        parts.append(f"{rate:.1f} tok/s")
    cost = format_usd(attempt_cost(record))
    parts.append("cost unknown" if cost == "unknown" else cost)
    if record.get("cached"):
        original = format_usd(record.get("original_cost_usd"))
        parts.append(f"cached (originally {original})")
    return " · ".join(parts)


# --------------------------------------------------------------------------- state

@dataclass
class Column:
    """What one model's column shows. Requests are the (prompt, repeat) calls for this model."""

    model: str
    status: str = "waiting"
    texts: dict[str, str] = field(default_factory=dict)   # request_id -> text so far
    records: dict[str, dict] = field(default_factory=dict)  # request_id -> final row
    attempts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    version: int = 0  # bumped on every change so views re-render only changed columns

    @property
    def shown_request(self) -> str | None:
        """The first request started for this model: the one whose text the column shows."""
        return next(iter(self.texts), None)

    @property
    def text(self) -> str:
        req = self.shown_request
        return self.texts.get(req, "") if req else ""

    @property
    def record(self) -> dict | None:
        req = self.shown_request
        return self.records.get(req) if req else None

    def counts(self) -> str:
        """``3/5 done`` when the column covers several requests, else ''."""
        total = len(self.texts)
        if total <= 1:
            return ""
        done = sum(1 for r in self.records.values() if r.get("status") == "ok")
        return f"{done}/{total} done"


class Board:
    """Columns fed by engine ``on_event`` callbacks (called from the engine's loop thread)."""

    def __init__(self, models: Iterable[str] = ()):
        self._lock = threading.Lock()
        self.columns: dict[str, Column] = {m: Column(m) for m in models}
        self.records: list[dict] = []
        self.run_ids: list[str] = []

    def column(self, model: str) -> Column:
        if model not in self.columns:  # fallback models appear when they are tried
            self.columns[model] = Column(model)
        return self.columns[model]

    def apply(self, event: Any) -> Column | None:
        """Fold one engine event into the state; return the column it changed."""
        kind = getattr(event, "kind", None)
        model = getattr(event, "model", None)
        if model is None or kind not in ("start", "delta", "done", "error"):
            return None
        req = getattr(event, "request_id", None) or model
        with self._lock:
            col = self.column(model)
            getattr(self, f"_on_{kind}")(col, req, event)
            col.version += 1
            return col

    def _on_start(self, col: Column, req: str, event: Any) -> None:
        col.attempts[req] = col.attempts.get(req, 0) + 1
        col.texts[req] = ""  # a retry starts its text afresh
        col.records.pop(req, None)
        col.status = "streaming"

    def _on_delta(self, col: Column, req: str, event: Any) -> None:
        col.texts[req] = col.texts.get(req, "") + (getattr(event, "text", None) or "")
        col.status = "streaming"

    def _on_done(self, col: Column, req: str, event: Any) -> None:
        text = getattr(event, "text", None)
        if text is not None:
            col.texts[req] = text
        else:
            col.texts.setdefault(req, "")
        self._keep_record(col, req, event)
        col.status = self._settled_status(col)

    def _on_error(self, col: Column, req: str, event: Any) -> None:
        col.texts.setdefault(req, "")
        record = self._keep_record(col, req, event)
        col.error = (record or {}).get("error_message") or getattr(event, "text", None) or "error"
        col.status = self._settled_status(col)

    def _keep_record(self, col: Column, req: str, event: Any) -> dict | None:
        record = getattr(event, "record", None)
        if record is not None:
            record = dict(record)
            col.records[req] = record
            self.records.append(record)
            run_id = record.get("run_id")
            if run_id and run_id not in self.run_ids:
                self.run_ids.append(run_id)
        return record

    @staticmethod
    def _settled_status(col: Column) -> str:
        if len(col.records) < len(col.texts):
            return "streaming"  # other repeats of this model are still running
        shown = col.record or {}
        if shown.get("status", "ok") == "ok":
            return "done"
        return "cancelled" if shown.get("error_type") == "Cancelled" else "error"

    def cancel_unfinished(self) -> None:
        """Mark columns still waiting/streaming as cancelled (after Stop or Ctrl-C)."""
        with self._lock:
            for col in self.columns.values():
                if col.status in ("waiting", "streaming"):
                    col.status = "cancelled"
                    col.version += 1

    def snapshot(self) -> list[Column]:
        with self._lock:
            return [Column(c.model, c.status, dict(c.texts), dict(c.records), dict(c.attempts),
                           c.error, c.version) for c in self.columns.values()]

    def _repr_html_(self) -> str:
        return board_html(self.snapshot())

    def __repr__(self) -> str:
        return board_text(self.snapshot())


# --------------------------------------------------------------------------- rendering

def _status_label(col: Column) -> str:
    label = col.status
    attempt = col.attempts.get(col.shown_request or "", 1)
    if attempt > 1:
        label += f" (attempt {attempt})"
    extra = col.counts()
    return f"{label} · {extra}" if extra else label


def _footer(col: Column) -> str:
    record = col.record
    if col.status in ("error", "cancelled") or (record and record.get("status") == "error"):
        message = (record or {}).get("error_message") or col.error or "error"
        kind = (record or {}).get("error_type")
        return f"{kind}: {message}" if kind else str(message)
    return metrics_line(record)


# Inline styles only from JupyterLab's sanitizer allow-list (an untrusted notebook keeps just
# those: no flex, flex-wrap or gap), so the saved static view looks the same trusted or not.
# ``word-break:normal`` undoes the output area's ``break-all`` on <pre>; the second, unsanitized
# ``break-word`` lets very long tokens wrap where the sanitizer does not strip it. An explicit
# line-height: inside a widget the inherited one is the 28 px control height (double spacing).
_TEXT_STYLE = ("white-space:pre-wrap;word-break:normal;overflow-wrap:break-word;word-break:break-word;"
               "margin:4px 0;font-size:90%;line-height:1.35")
_NAME_STYLE = "word-break:break-all"  # a long model name wraps inside its column
_FOOTER_STYLE = "font-size:80%;color:#555;line-height:1.35;overflow-wrap:break-word"


def column_html(col: Column, width: str | None = None) -> str:
    """One column: header (model, status), escaped text, metrics footer. No scripts, ever.
    ``width`` (a CSS percentage) lays columns side by side as inline blocks that wrap."""
    colour = _STATUS_COLOURS.get(col.status, "#888")
    layout = (f"display:inline-block;vertical-align:top;width:{width};margin:0 0.5% 4px 0"
              if width else "display:block;margin:2px")
    return (
        f'<div class="llmlab-col" style="{layout};box-sizing:border-box;min-width:14em;'
        'border:1px solid #ccc;border-radius:4px;padding:6px;line-height:1.35">'
        f'<div class="llmlab-model" style="font-weight:bold" title="{esc(col.model)}">'
        f'<span style="{_NAME_STYLE}">{esc(col.model)}</span> '
        f'<span class="llmlab-status" style="font-weight:normal;white-space:nowrap;color:{colour}">'
        f'[{esc(_status_label(col))}]</span></div>'
        f'<pre style="{_TEXT_STYLE}">{esc(col.text)}</pre>'
        f'<div class="llmlab-metrics" style="{_FOOTER_STYLE}">{esc(_footer(col))}</div>'
        "</div>"
    )


def board_html(columns: Iterable[Column]) -> str:
    columns = list(columns)
    # Up to four side by side; min-width makes narrow outputs wrap them onto more rows.
    width = f"{100 / min(max(len(columns), 1), 4) - 1:.2f}%"
    inner = "".join(column_html(c, width) for c in columns)  # no whitespace: it would add gaps
    return f'<div class="llmlab-board" style="display:block;width:100%">{inner}</div>'


def board_text(columns: Iterable[Column]) -> str:
    blocks = []
    for col in columns:
        lines = [f"── {clean_text(col.model)} [{_status_label(col)}]", clean_text(col.text).rstrip()]
        footer = _footer(col)
        if footer:
            lines.append(f"   {clean_text(footer)}")
        blocks.append("\n".join(line for line in lines if line != ""))
    return "\n\n".join(blocks)


_TH_RE = re.compile(r"<th>([^<]*)</th>")


def table_html(df: Any, max_rows: int = 50) -> str:
    """A DataFrame as an escaped HTML table (pandas escapes cell text with escape=True) in a box
    that scrolls sideways on its own; headers may wrap after underscores to keep it narrow;
    dollar columns read "unknown" where the cost is unknown, never "$0" or a bare dash."""
    if df is None or len(df) == 0:
        return "<i>no rows</i>"
    table = with_costs_shown(clean_frame(df, html_clean)).to_html(escape=True, index=False, max_rows=max_rows,
                                                                  na_rep="—", float_format=_fmt)
    table = _TH_RE.sub(lambda m: "<th>" + m.group(1).replace("_", "_<wbr>") + "</th>", table)
    return f'<div class="llmlab-table" style="overflow-x:auto;max-width:100%;font-size:90%">{table}</div>'


def table_text(df: Any) -> str:
    """The same table as plain text, control characters neutralised."""
    text = with_costs_shown(df).to_string(index=False, float_format=_fmt)
    return clean_text(text)


def _fmt(value: float) -> str:
    return f"{value:.4g}"


# --------------------------------------------------------------------------- throttling

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


# --------------------------------------------------------------------------- session totals

def session_costs(frames: Iterable[Any]) -> Any:
    """``%llm cost``: spend per model over runs-log frames, and a TOTAL row (llmlab._cost's rule)."""
    import pandas as pd

    frames = [f for f in frames if f is not None and len(f)]
    df = pd.concat(frames, ignore_index=True) if frames else None
    if df is None:
        return cost_table(pd.DataFrame(columns=["requested_model"]), models=[])
    # log order is finish order, not stable: models sorted by name
    return cost_table(df, models=sorted(set(df["requested_model"].astype(str))), total=True)
