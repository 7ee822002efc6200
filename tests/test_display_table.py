"""Issue 21 W1: one table of invisible characters, refused in names and made visible in every view.

The oracle here is built independently of llmlab: Unicode's general categories (controls, format
characters, surrogates, private use, unassigned, line/paragraph separators) from ``unicodedata``,
Unicode's Default_Ignorable_Code_Point list as DerivedCoreProperties.txt publishes it, and BRAILLE
PATTERN BLANK. Every code point of it is tried in the text and HTML sanitisers and in the name rule;
a sample (each range's first and last code point) through a real result of a local test server, the
magic and the CLI. Answers keep the joiners and selectors that shape their neighbours; names do not.
"""
from __future__ import annotations

import sqlite3
import unicodedata

import pandas as pd
import pytest
from fakeserver import ModelSpec

from llmlab import InputError, Lab
from llmlab.base._display import clean_frame, clean_text, esc, html_clean
from llmlab.base._names import check_model_names
from llmlab.base._validate import invisible_char

_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
# DerivedCoreProperties.txt (Unicode 15), Default_Ignorable_Code_Point, as published.
_DEFAULT_IGNORABLE = [(0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
                      (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
                      (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
                      (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF)]
_FILLERS = [0x2800]  # BRAILLE PATTERN BLANK: a symbol that prints as a space


@pytest.fixture
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    from llmlab.magics import load_ipython_extension, unload_ipython_extension

    sh = InteractiveShell.instance()
    unload_ipython_extension(sh)
    sh.extension_manager.loaded.discard("llmlab")
    sh.config.pop("LLMLab", None)
    load_ipython_extension(sh)
    yield sh
    unload_ipython_extension(sh)
    sh.config.pop("LLMLab", None)


def _oracle() -> list[int]:
    ignorable = {c for lo, hi in _DEFAULT_IGNORABLE for c in range(lo, hi + 1)}
    return [c for c in range(0x110000)
            if unicodedata.category(chr(c)) in _CATEGORIES or c in ignorable or c in _FILLERS]


TABLE = _oracle()
_SET = frozenset(TABLE)
VISIBLE = [c for c in range(0x110000) if c not in _SET]


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _ranges(points: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for c in points:
        if out and c == out[-1][1] + 1:
            out[-1] = (out[-1][0], c)
        else:
            out.append((c, c))
    return out


# Each range's first and last code point: what the end-to-end tests send (the whole table is tried
# in the sanitisers themselves below).
SAMPLE = sorted({chr(c) for lo, hi in _ranges(TABLE) for c in (lo, hi)})
LAYOUT = {"text": "\t\n", "html": "\t\n\r"}


def _raw(view: str, layout: str) -> list[str]:
    """The table's characters ``view`` shows raw (layout apart)."""
    return sorted({f"U+{ord(c):04X}" for c in view if ord(c) in _SET and c not in layout})


def test_the_table_is_the_oracle():
    from llmlab.base._display import hidden_ranges

    assert [c for lo, hi in hidden_ranges() for c in range(lo, hi + 1)] == TABLE


@pytest.mark.parametrize("strict", [True, False], ids=["name", "answer"])
@pytest.mark.parametrize("view", ["text", "html"])
def test_every_code_point_of_the_table_is_shown_as_an_escape(view, strict):
    # '·' (a visible punctuation) between them: nothing for a joiner or selector to shape.
    clean = clean_text if view == "text" else html_clean
    kept = LAYOUT[view]
    text = "".join("·" + chr(c) for c in TABLE)
    shown = clean(text, strict=strict) if strict else clean(text)
    assert shown == "".join("·" + (chr(c) if chr(c) in kept else _escape(chr(c))) for c in TABLE)


@pytest.mark.parametrize("view", ["text", "html"])
def test_every_other_code_point_is_shown_as_itself(view):
    text = "".join(map(chr, VISIBLE))
    assert (clean_text if view == "text" else html_clean)(text) == text


def test_the_name_rule_refuses_every_code_point_of_the_table_and_nothing_else():
    assert [c for c in TABLE if invisible_char(f"m{chr(c)}x") != chr(c)] == []
    assert [c for c in VISIBLE if invisible_char(f"m{chr(c)}x") is not None] == []


def test_check_model_names_refuses_the_sample_in_one_line():
    for char in SAMPLE:
        with pytest.raises(InputError, match=f"invisible character U\\+{ord(char):04X}") as info:
            check_model_names([f"gpt-4o{char}"])
        assert "\n" not in str(info.value) and not _raw(str(info.value), "")


def test_compare_sends_nothing_for_a_name_holding_any_of_the_sample(serve, tmp_path):
    srv = serve({"m": ModelSpec(text="x")})
    with Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite", quiet=True) as lab:
        for char in SAMPLE:
            with pytest.raises(InputError, match=f"U\\+{ord(char):04X}"):
                lab.compare("Hi", models=["m", f"gpt{char}-4o"])
    assert not [r for r in srv.requests if r.model]


def _spaced(chars) -> str:
    return "·".join(chars)


def test_a_served_name_and_an_answer_holding_the_table_show_it_in_every_view(serve, tmp_path):
    hostile = _spaced(SAMPLE)
    srv = serve({"m": ModelSpec(text=f"answer·{hostile}", served_model=f"gpt-4o·{hostile}")})
    with Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite", quiet=True) as lab:
        res = lab.compare("Hi", models=["m"])
        stored = res.df["served_model"].iloc[0]
        assert res.df["response_text"].iloc[0].startswith("answer·")
        # A name written to the log by an older version or another tool reaches summary() too.
        with sqlite3.connect(tmp_path / "l.sqlite") as db:
            db.execute("UPDATE runs SET requested_model = ? WHERE requested_model = 'm'", (f"m·{hostile}",))
        from llmlab.engine._results import Result

        old = Result(lab.runs(res.run_id), res.run_id, [f"m·{hostile}"])
        with pd.option_context("display.max_colwidth", None, "display.width", 10**6, "display.max_columns", None):
            views = {"repr(res)": repr(old), "res html": old._repr_html_(), "summary": repr(old.summary()),
                     "summary html": old.summary()._repr_html_(), "df": repr(res.df), "df html": res.df._repr_html_(),
                     "runs": repr(lab.runs())}
    for name, view in views.items():
        assert not _raw(view, LAYOUT["html" if "html" in name else "text"]), name
    shown_here = [c for c in SAMPLE if c in stored and c not in "\t\n\r"]
    assert len(shown_here) > len(SAMPLE) * 0.9  # surrogates and NUL are stored as U+FFFD
    missing = [f"U+{ord(c):04X}" for c in shown_here if _escape(c) not in views["df"]]
    assert not missing
    assert not [c for c in shown_here if _escape(c) not in views["summary"]]


def test_list_models_and_the_models_magic_show_hidden_ids(serve, tmp_path, shell):
    names = [f"gpt-4o{c}" for c in SAMPLE if c not in "\t\n\r"]
    srv = serve({name: ModelSpec(text="x") for name in [*names, "plain"]})
    with Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite", quiet=True) as lab:
        listed = lab.list_models()
        with pd.option_context("display.max_rows", None, "display.max_colwidth", None):
            text, html = repr(listed), listed._repr_html_()
    assert not _raw(text, "\t\n") and not _raw(html, "\t\n\r")
    assert len({m for m in listed["model"]}) == len(names) + 1
    shell.run_line_magic("config", f'LLMLab.base_url = "{srv.base_url}"')
    shell.run_line_magic("config", f'LLMLab.db = "{tmp_path / "m.sqlite"}"')
    frame = shell.run_line_magic("llm", "models")
    cells = list(frame["model"])
    assert not [c for c in cells if _raw(c, "")]
    assert len(set(cells)) == len(cells)  # no two rows read the same


def _magic_sample() -> list[str]:
    """The sample without what the option line splits on (whitespace)."""
    return [c for c in SAMPLE if not c.isspace() and c != "\x00"]


def test_the_magic_refuses_the_names(serve, tmp_path, shell):
    from IPython.core.error import UsageError

    srv = serve({"m": ModelSpec(text="x")})
    shell.run_line_magic("config", f'LLMLab.base_url = "{srv.base_url}"')
    shell.run_line_magic("config", f'LLMLab.db = "{tmp_path / "m.sqlite"}"')
    for char in _magic_sample()[::7]:
        with pytest.raises(UsageError, match=f"invisible character U\\+{ord(char):04X}") as info:
            shell.run_cell_magic("llm", f"model=m,gpt{char}-4o", "Hi")
        assert not _raw(str(info.value), "")
    assert not [r for r in srv.requests if r.model]


def test_the_cli_refuses_the_names(serve, tmp_path, capsys):
    from llmlab.cli._main import main

    (tmp_path / "p.csv").write_text("prompt\nhello\n")
    srv = serve({"m": ModelSpec(text="x")})
    for char in [c for c in _magic_sample() if not 0xD800 <= ord(c) <= 0xDFFF][::11]:
        code = main(["batch", "submit", str(tmp_path / "p.csv"), "--models", f"m,gpt{char}-4o",
                     "--db", str(tmp_path / "log.sqlite"), "--base-url", srv.base_url])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        assert f"invisible character U+{ord(char):04X}" in err and not _raw(err, "\n")
    assert not [r for r in srv.requests if r.path.endswith("/chat/completions") or "batches" in r.path]


# --------------------------------------------------------------------------- answers stay readable

READABLE = {
    "persian ZWNJ": "من می\u200cخواهم این کتاب\u200cها را بخوانم",
    "devanagari ZWJ": "क्\u200dष and र्\u200dय",
    "arabic ZWJ": "ل\u200dا",
    "emoji family": "\U0001F468\u200d\U0001F469\u200d\U0001F467",
    "technologist with skin tone": "\U0001F469\U0001F3FD\u200d\U0001F4BB",
    "rainbow flag": "\U0001F3F3\ufe0f\u200d\U0001F308",
    "heart on fire": "\u2764\ufe0f\u200d\U0001F525",
    "red heart": "I \u2764\ufe0f it",
    "keycap": "press 1\ufe0f\u20e3 or #\ufe0f\u20e3",
    "text style": "\u2764\ufe0e",
}
STRICT_IN_ANSWERS = {
    "ZWNJ in latin": ("pass\u200cword", ["\u200c"]),
    "ZWJ in cyrillic": ("моде\u200dль", ["\u200d"]),
    "two joiners": ("می\u200c\u200cخواهم", ["\u200c", "\u200c"]),
    "ZWJ at the start": ("\u200d\U0001F600", ["\u200d"]),
    "ZWJ after a letter": ("a\u200d\U0001F600", ["\u200d"]),
    "selector after a letter": ("gpt-4o\ufe0f", ["\ufe0f"]),
    "selector after a digit": ("gpt-4\ufe0f", ["\ufe0f"]),
    "selector run (smuggling)": ("\U0001F600\ufe0f\ufe00\ufe01", ["\ufe00", "\ufe01"]),
    "supplementary selectors": ("\U0001F600\U000E0100\U000E0101", ["\U000E0100", "\U000E0101"]),
    "tag characters": ("\U0001F3F4\U000E0067\U000E0062\U000E007F", ["\U000E0067", "\U000E0062", "\U000E007F"]),
    "ZWSP": ("gpt\u200b4o", ["\u200b"]),
    "ZWJ after an escaped selector": ("a\ufe0f\u200d\U0001F600", ["\ufe0f", "\u200d"]),
}


@pytest.mark.parametrize("text", READABLE.values(), ids=READABLE.keys())
def test_answers_keep_the_joiners_that_shape_them_and_names_do_not(text):
    assert clean_text(text) == text and html_clean(text) == text
    assert esc(text) == text
    hidden = [c for c in text if ord(c) in _SET]
    for strict in (clean_text(text, strict=True), html_clean(text, strict=True), esc(text, strict=True)):
        assert not _raw(strict, "") and all(_escape(c) in strict for c in hidden)
    with pytest.raises(InputError, match="invisible character"):
        check_model_names([text])


@pytest.mark.parametrize("text,escaped", STRICT_IN_ANSWERS.values(), ids=STRICT_IN_ANSWERS.keys())
def test_answers_escape_every_other_use(text, escaped):
    kept = [c for c in text if ord(c) in _SET]
    for char in escaped:
        kept.remove(char)
    for view in (clean_text(text), html_clean(text)):
        assert [c for c in view if ord(c) in _SET] == kept and view.count("\\") == len(escaped), view
        assert all(_escape(c) in view for c in escaped)


def test_a_frame_shows_answers_readable_and_names_strict():
    persian = READABLE["persian ZWNJ"]
    frame = pd.DataFrame({"model": ["مدل\u200cیک", "gpt\u200b"], "response_text": [persian, persian],
                          "col\u200cumn": ["a", "b"]})
    for clean in (clean_text, html_clean):
        shown = clean_frame(frame, clean)
        assert list(shown["model"]) == ["مدل\\u200cیک", "gpt\\u200b"]
        assert list(shown["response_text"]) == [persian, persian]
        assert list(shown.columns)[-1] == "col\\u200cumn"
