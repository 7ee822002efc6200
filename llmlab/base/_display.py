"""The one display sanitiser and the escaped tables every view uses.

Model output and model names are untrusted text: every string that reaches HTML goes through
:func:`esc` (``html.escape`` after the invisible characters are made visible) and every string
that reaches a terminal through :func:`clean_text`; both first remove every secret this process
knows (:func:`llmlab.base._redact.redact_shown`), so a view can show neither a terminal trick, nor
a hidden character, nor a key. The characters made visible are one table (:func:`hidden_ranges`):
the same the name rule refuses in a name you send (:func:`invisible_char`), so a served model
``gpt-4o\\u200b`` reads as that, never as ``gpt-4o``. No JavaScript is ever emitted. Nothing
heavy is imported here (pandas arrives with the frames it is given).
"""
from __future__ import annotations

import bisect
import functools
import html
import re
import unicodedata
from collections.abc import Callable, Iterable
from typing import Any

from ._cost import with_costs_shown
from ._redact import redact_shown

__all__ = ["esc", "clean_text", "clean_frame", "html_clean", "table_html", "table_text",
           "invisible_char", "hidden_ranges", "IGNORABLE"]

# Code points that print nothing: Unicode's Default_Ignorable_Code_Point (SOFT HYPHEN, COMBINING
# GRAPHEME JOINER, the Hangul fillers, Mongolian variation selectors, ZERO WIDTH SPACE/JOINERs, bidi
# marks, WORD JOINER and the invisible operators, variation selectors, BOM, tag characters) and
# every format character (Unicode Cf), as of Unicode 15; written out here, nothing downloaded.
_IGNORABLE_RANGES = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x0600, 0x0605), (0x061C, 0x061C), (0x06DD, 0x06DD), (0x070F, 0x070F),
    (0x0890, 0x0891), (0x08E2, 0x08E2), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F),
    (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x1343F), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF))
# The one table of characters a reader cannot see as themselves, used by every view (shown as an
# escape such as ``\u200b``) and by the name rule (refused in a name you send): those ranges, every
# control, format character, lone surrogate, private-use and unassigned code point (noncharacters
# too), the line and paragraph separators, and BRAILLE PATTERN BLANK (a symbol that prints as a space).
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_BLANK_SYMBOLS = ((0x2800, 0x2800),)
# Planes 4-13 hold no character yet (all Cn) and 15-16 only private use and noncharacters: taken
# whole rather than read point by point (tests/test_display_table.py checks against a full scan).
_WHOLE_PLANES = ((0x40000, 0xDFFFF), (0xF0000, 0x10FFFF))
_SCANNED = ((0x0, 0x3FFFF), (0xE0000, 0xEFFFF))
# '1' for a hidden category, '0' for the others (every letter pair that can name one): the scan below
# then maps code points to flags with map() and join(), no Python loop per code point.
_FLAG = {f"{major}{minor}": "1" if f"{major}{minor}" in _HIDDEN_CATEGORIES else "0"
         for major in "CLMNPSZ" for minor in "cfsonlumetdpikz"}
# Layout, not a trick: a terminal keeps tabs and newlines, HTML carriage returns too.
_LAYOUT = {"name": "", "text": "\t\n", "html": "\t\n\r"}
IGNORABLE = re.compile("[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in _IGNORABLE_RANGES) + "]")


def _category_ranges(lo: int, hi: int) -> list[tuple[int, int]]:
    """The runs of code points from ``lo`` to ``hi`` whose category is hidden (~50 ms for the table, once)."""
    flags = "".join(map(_FLAG.__getitem__, map(unicodedata.category, map(chr, range(lo, hi + 1)))))
    return [(lo + m.start(), lo + m.end() - 1) for m in re.finditer("1+", flags)]


def _merged(ranges: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(hi, out[-1][1]))
        else:
            out.append((lo, hi))
    return tuple(out)


@functools.cache
def hidden_ranges() -> tuple[tuple[int, int], ...]:
    """The table: sorted, merged inclusive code point ranges (built on first use, not at import)."""
    scanned = [run for lo, hi in _SCANNED for run in _category_ranges(lo, hi)]
    return _merged([*scanned, *_WHOLE_PLANES, *_IGNORABLE_RANGES, *_BLANK_SYMBOLS])


def _char_class(ranges: Iterable[tuple[int, int]], layout: str) -> str:
    """One regex character class for ``ranges`` less the ``layout`` characters."""
    parts = []
    for lo, hi in ranges:
        for kept in sorted(ord(c) for c in layout if lo <= ord(c) <= hi):
            parts.append((lo, kept - 1))
            lo = kept + 1
        parts.append((lo, hi))
    return "[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in parts if a <= b) + "]"


@functools.cache
def _starts() -> list[int]:
    return [lo for lo, _ in hidden_ranges()]


def _hidden(char: str) -> bool:
    """Whether ``char`` is in the table (a binary search over its ranges)."""
    code = ord(char)
    at = bisect.bisect_right(_starts(), code) - 1
    return at >= 0 and code <= hidden_ranges()[at][1]


def _bmp_part(astral: bool) -> list[tuple[int, int]]:
    """The table's BMP part, and every astral character with ``astral``: ``re`` compiles the BMP
    part of a class to a bitmap but tries each astral range after it one by one (354 of them made
    every character 20x slower), so astral characters are decided by :func:`_astral_shown`."""
    bmp = [(lo, min(hi, 0xFFFF)) for lo, hi in hidden_ranges() if lo <= 0xFFFF]
    return [*bmp, (0x10000, 0x10FFFF)] if astral else bmp


@functools.cache
def _pattern(view: str, astral: bool) -> re.Pattern:
    return re.compile(_char_class(_bmp_part(astral), _LAYOUT[view]))


# Astral characters of the table are the non-printable ones (Python's str.isprintable: Cc, Cf, Cs, Co,
# Cn, Zl, Zp, Zs; no astral space exists) and the supplementary variation selectors, which are marks.
_VS_SUPPLEMENT = re.compile("[\\U000e0100-\\U000e01ef]")
_ASTRAL = re.compile("[\\U00010000-\\U0010ffff]+")


def _astral_hidden(text: str) -> bool:
    """Whether ``text`` holds an astral character of the table: checked in C for all of them at once,
    so text full of emoji is read with the BMP class alone (no call per emoji)."""
    if len(text.encode("utf-16-le", "surrogatepass")) == 2 * len(text):  # no astral character: 2 ms/MB,
        return False                                                      # a regex scan takes 6
    astral = "".join(_ASTRAL.findall(text))
    return bool(astral) and (not astral.isprintable() or _VS_SUPPLEMENT.search(astral) is not None)


def _astral_shown(char: str) -> str:
    """An astral character (an emoji, a CJK extension ideograph) as itself, or escaped if in the table."""
    return char if char.isprintable() and _VS_SUPPLEMENT.match(char) is None else _escaped(char)


# ASCII text (most of it) is checked against the table's ASCII part without building the whole table.
_ASCII = {view: re.compile(_char_class(_category_ranges(0, 0x7F), layout)) for view, layout in _LAYOUT.items()}


def invisible_char(text: str) -> str | None:
    """The first character of ``text`` in the table (a reader cannot see it as itself), or None."""
    if text.isascii():
        found = _ASCII["name"].search(text)
        return None if found is None else found.group()
    return next((c for c in text if _hidden(c)), None)


# Answers stay readable (names stay strict): where a table character visibly changes how its
# neighbours render it is kept — one joiner between two letters of a script it shapes (Persian
# 'می‌خواهم', Devanagari half forms), one ZWJ inside an emoji sequence, one emoji/text presentation
# selector after a symbol or a keycap digit. A run of them, or one anywhere else, is escaped.
_SHAPED_SCRIPTS = ((0x0600, 0x0DFF), (0x1000, 0x109F), (0x1780, 0x18AF))  # Arabic … Sinhala, Myanmar, Khmer, Mongolian
_JOINERS = "\u200c\u200d"
_EMOJI_PUNCTUATION = "\u203c\u2049\u3030\u303d"
_EMOJI_MODIFIERS = range(0x1F3FB, 0x1F400)


def _visible(char: str) -> bool:
    return bool(char) and not _hidden(char)


def _shaped_letter(char: str) -> bool:
    return (_visible(char) and unicodedata.category(char)[0] in "LM"
            and any(lo <= ord(char) <= hi for lo, hi in _SHAPED_SCRIPTS))


def _emoji(char: str) -> bool:
    return _visible(char) and (unicodedata.category(char) == "So" or ord(char) in _EMOJI_MODIFIERS)


def _presented(before: str, after: str) -> bool:
    """An emoji/text presentation selector kept: after a non-ASCII symbol, or a keycap digit."""
    if _visible(before) and (unicodedata.category(before)[0] == "S" and not before.isascii()
                             or before in _EMOJI_PUNCTUATION):
        return True
    return before != "" and before in "0123456789#*" and after == "\u20e3"


def _kept(char: str, earlier: str, before: str, after: str) -> bool:
    """Whether the table character ``char`` stays in an answer, given the two characters before it
    and the one after ('' past either end)."""
    if char in _JOINERS and _shaped_letter(before) and _shaped_letter(after):
        return True
    if char == "\u200d":
        emoji_before = _emoji(before) or (before == "\ufe0f" and _presented(earlier, char))
        return emoji_before and _visible(after) and unicodedata.category(after) == "So"
    return char in "\ufe0e\ufe0f" and _presented(before, after)


def _shown_unless_kept(match: re.Match) -> str:
    char, text, at = match.group(), match.string, match.start()
    if char[0] >= "\U00010000":
        return _astral_shown(char)
    kept = _kept(char, text[max(at - 2, 0):max(at - 1, 0)], text[max(at - 1, 0):at], text[at + 1:at + 2])
    return char if kept else _escaped(char)


def _shown_if_hidden(match: re.Match) -> str:
    char = match.group()
    return _astral_shown(char) if char[0] >= "\U00010000" else _escaped(char)


@functools.cache
def _prose_pattern(view: str, astral: bool) -> re.Pattern:
    """:func:`_pattern` that does not match a joiner between two shaped letters (a regex, not a call
    per joiner: Persian sets one every few words); slower per character, so used only when needed."""
    others = _char_class(_bmp_part(astral), _LAYOUT[view] + _JOINERS)
    shaped = _char_class([(c, c) for lo, hi in _SHAPED_SCRIPTS for c in range(lo, hi + 1)
                          if _shaped_letter(chr(c))], "")
    return re.compile(f"{others}|(?<!{shaped})[{_JOINERS}]|[{_JOINERS}](?!{shaped})")


def _neutralised(text: str, view: str, strict: bool) -> str:
    if text.isascii():
        return _ASCII[view].sub(_shown_if_hidden, text)
    astral = _astral_hidden(text)
    if strict:
        return _pattern(view, astral).sub(_shown_if_hidden, text)
    joined = "\u200c" in text or "\u200d" in text
    return (_prose_pattern(view, astral) if joined else _pattern(view, astral)).sub(_shown_unless_kept, text)


def _escaped(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def esc(value: Any, *, strict: bool = False) -> str:
    """HTML-escape anything (quotes too, so it is safe inside attributes); every character of the
    table (controls, bidi, zero-width …) is shown as ``\\u202e`` instead of obeyed. ``strict``:
    for a name, no joiner or selector kept (see :func:`clean_text`)."""
    return html.escape(html_clean("" if value is None else value, strict=strict), quote=True)


def clean_text(value: Any, *, strict: bool = False) -> str:
    """Text safe for a terminal: every character of the table shown as ``\\x1b``/``\\u202e``/
    ``\\u200b`` instead of executed or hidden. Not ``strict`` (answers): a joiner or presentation
    selector that visibly shapes its neighbours stays (:func:`_kept`); ``strict`` (names): none does."""
    text = "" if value is None else str(value)
    return _neutralised(redact_shown(text), "text", strict)


# Columns of free text (answers, prompts, messages): readable; every other text column (model ids,
# owners, labels, statuses) and every column name is a name, shown strictly.
_PROSE_COLUMNS = frozenset({"response_text", "reasoning_text", "refusal", "prompt", "error_message", "text",
                            "answer", "reasoning", "messages", "expected", "score_reason"})


def clean_frame(df: Any, clean: Callable[..., str] = clean_text) -> Any:
    """A copy of ``df`` whose text cells (and column names) are neutralised by ``clean``
    (:func:`clean_text` or :func:`html_clean`): strictly but in the free-text columns."""
    frame = df.copy()
    for column in frame.select_dtypes(include=["object", "string"]).columns:
        strict = column not in _PROSE_COLUMNS
        frame[column] = frame[column].map(lambda v, s=strict: v if not isinstance(v, str) else clean(v, strict=s))
    frame.columns = [clean(c, strict=True) if isinstance(c, str) else c for c in frame.columns]
    return frame


def html_clean(value: Any, *, strict: bool = False) -> str:
    """Neutralise the table's characters (and known secrets) as :func:`clean_text` does, leaving
    HTML escaping to the caller (pandas)."""
    return _neutralised(redact_shown(str(value)), "html", strict)


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
