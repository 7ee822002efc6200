"""The one display sanitiser and the escaped tables every view uses.

Model output and model names are untrusted text: every string that reaches HTML goes through
:func:`esc` (``html.escape`` after control and bidi characters are made visible) and every string
that reaches a terminal through :func:`clean_text`; both first remove every secret this process
knows (:func:`llmlab.base._redact.redact_shown`), so a view can show neither a terminal trick nor
a key. No JavaScript is ever emitted. Nothing heavy is imported here (pandas arrives with the
frames it is given).
"""
from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

from ._cost import with_costs_shown
from ._redact import redact_shown

__all__ = ["esc", "clean_text", "clean_frame", "html_clean", "table_html", "table_text", "has_controls"]

# Characters that make text lie about its order or lines: bidi marks, embeddings, overrides and
# isolates (Trojan Source: U+202E shows text reversed), the deprecated format controls next to
# them, and the Unicode line/paragraph separators. Joiners (ZWJ/ZWNJ) stay: scripts need them.
_BIDI = "\u061c\u200e\u200f\u2028-\u202e\u2066-\u206f\U000e0000-\U000e007f"  # + invisible tag characters
# C0/C1 controls except \t and \n: ANSI escapes in model output must not drive the terminal.
_CONTROL_RE = re.compile(f"[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f{_BIDI}]")
# In HTML, whitespace controls are harmless (and \r\n common); the rest is shown, not obeyed.
_HTML_CONTROL_RE = re.compile(f"[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f{_BIDI}]")


def _shown(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def esc(value: Any) -> str:
    """HTML-escape anything (quotes too, so it is safe inside attributes); control and bidi
    characters are shown as ``\\u202e`` instead of obeyed."""
    return html.escape(html_clean("" if value is None else value), quote=True)


def has_controls(text: str) -> bool:
    """Whether ``text`` holds a character the sanitiser would have to neutralise (or a line break)."""
    return _CONTROL_RE.search(text) is not None or "\n" in text or "\t" in text


def clean_text(value: Any) -> str:
    """Text safe for a terminal: control and bidi characters shown as ``\\x1b``/``\\u202e``
    instead of executed."""
    text = "" if value is None else str(value)
    return _CONTROL_RE.sub(_shown, redact_shown(text))


def clean_frame(df: Any, clean: Callable[[Any], str] = clean_text) -> Any:
    """A copy of ``df`` whose text cells (and column names) are neutralised by ``clean``."""
    frame = df.copy()
    for column in frame.select_dtypes(include=["object", "string"]).columns:
        frame[column] = frame[column].map(lambda v: v if not isinstance(v, str) else clean(v))
    frame.columns = [clean(c) if isinstance(c, str) else c for c in frame.columns]
    return frame


def html_clean(value: Any) -> str:
    """Neutralise control/bidi characters (and known secrets), leaving HTML escaping to the
    caller (pandas)."""
    return _HTML_CONTROL_RE.sub(_shown, redact_shown(str(value)))


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
    # width 0 + min-width 100%: the box takes its container's width without widening it (a flex
    # container, such as a widget's HTML area, would otherwise grow to the table's full width).
    box = "overflow-x:auto;width:0px;min-width:100%;font-size:90%"  # units: the sanitiser drops a bare 0
    return f'<div class="llmlab-table" style="{box}">{table}</div>'


def table_text(df: Any) -> str:
    """The same table as plain text, control characters neutralised."""
    text = with_costs_shown(df).to_string(index=False, float_format=_fmt)
    return clean_text(text)


def _fmt(value: float) -> str:
    return f"{value:.4g}"
