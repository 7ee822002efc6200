"""The live comparison board shared by ``%%llm`` and the widget: per-model columns, their
metrics footers and the session's cost table, rendered escaped (HTML) or neutralised (text)."""
from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..base._cost import attempt_cost, cost_table, format_usd
from ..base._display import clean_text, esc
from ..base._json import loads

__all__ = ["Board", "Column", "metrics_line", "tool_calls_text", "column_html", "board_html", "board_text",
           "session_costs"]

_STATUS_COLOURS = {
    "waiting": "#888", "streaming": "#1f77b4", "done": "#2ca02c", "error": "#d62728",
    "cancelled": "#ff7f0e",
}


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
    """``TTFT 0.12 s · 1.30 s · 45 tok · 38.2 tok/s · $0.000012`` from one row (plain text); a
    reasoning model's line also says when its answer began and how many tokens were reasoning,
    and a prompt-cache hit how many prompt tokens it served."""
    if not record:
        return ""
    parts = []
    ttft, latency = _num(record, "ttft_s"), _num(record, "latency_s")
    if ttft is not None:
        parts.append(f"TTFT {ttft:.2f} s")
    answer = _num(record, "ttft_answer_s")
    if answer is not None and _num(record, "ttft_reasoning_s") is not None:
        parts.append(f"answer from {answer:.2f} s")
    if latency is not None:
        parts.append(f"{'batch ' if record.get('batch_id') else ''}latency {latency:.2f} s")
    tokens = _num(record, "completion_tokens")
    if tokens is not None:
        approx = "~" if record.get("tokens_estimated") else ""
        reasoning = _num(record, "reasoning_tokens")
        of_which = f" ({reasoning:.0f} reasoning)" if reasoning else ""
        parts.append(f"{approx}{tokens:.0f} tok{of_which}")
    cached = _num(record, "cached_tokens")
    if cached:
        parts.append(f"{cached:.0f} prompt tok from cache")
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

    @property
    def reasoning(self) -> str:
        """The shown request's reasoning, once its row is in (shown apart from the answer)."""
        return str((self.record or {}).get("reasoning_text") or "")

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
        record = self._keep_record(col, req, event)
        calls = tool_calls_text((record or {}).get("tool_calls"))
        if calls and col.texts[req] == (record or {}).get("tool_calls"):  # the answer is its calls: as calls
            col.texts[req] = calls
        elif calls:
            col.texts[req] = f"{col.texts[req]}\n{calls}"
        refusal = (record or {}).get("refusal")
        if refusal:  # a refusal is the model's answer too: shown, marked as what it is
            col.texts[req] = f"{col.texts[req]}\n[refusal] {refusal}".lstrip("\n")
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


def tool_calls_text(calls: Any) -> str:
    """``→ get_weather({"city": "Paris"})`` per call, from a row's ``tool_calls`` JSON."""

    try:
        parsed = loads(calls) if isinstance(calls, str) else None
    except ValueError:
        return ""
    if not isinstance(parsed, list):
        return ""
    return "\n".join(f"→ {c.get('name')}({c.get('arguments') or ''})" for c in parsed if isinstance(c, dict))


def _reasoning_html(col: Column) -> str:
    if not col.reasoning:
        return ""
    tokens = _num(col.record or {}, "reasoning_tokens")
    label = f"reasoning · {tokens:.0f} tokens" if tokens is not None else "reasoning"
    return (f'<details class="llmlab-reasoning" style="{_FOOTER_STYLE}"><summary>{esc(label)}</summary>'
            f'<pre style="{_TEXT_STYLE};color:#666">{esc(col.reasoning)}</pre></details>')


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
        f'{_reasoning_html(col)}<pre style="{_TEXT_STYLE}">{esc(col.text)}</pre>'
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
        lines = [f"── {clean_text(col.model)} [{_status_label(col)}]"]
        if col.reasoning:
            shown = col.reasoning if len(col.reasoning) <= 300 else col.reasoning[:300] + "…"
            lines.append(f"   [reasoning] {clean_text(shown).strip()}")
        lines.append(clean_text(col.text).rstrip())
        footer = _footer(col)
        if footer:
            lines.append(f"   {clean_text(footer)}")
        blocks.append("\n".join(line for line in lines if line != ""))
    return "\n\n".join(blocks)


# --------------------------------------------------------------------------- session totals

def session_costs(frames: Iterable[Any]) -> Any:
    """``%llm cost``: spend per model over runs-log frames, and a TOTAL row (llmlab.base._cost's rule)."""
    import pandas as pd

    frames = [f for f in frames if f is not None and len(f)]
    df = pd.concat(frames, ignore_index=True) if frames else None
    if df is None:
        return cost_table(pd.DataFrame(columns=["requested_model"]), models=[])
    # log order is finish order, not stable: models sorted by name
    return cost_table(df, models=sorted(set(df["requested_model"].astype(str))), total=True)
