"""The demo's HTML report (structure, numbers, marks, cost note) and the CLI's --version / hints."""
from __future__ import annotations

import math
from html.parser import HTMLParser

import pandas as pd
import pytest
from standins import EmbeddedStandIn

from llmlab import Lab
from llmlab.analysis._report import Section, charts_section, render_report, standard_sections, summary_section
from llmlab.base._version import __version__
from llmlab.cli import main as cli_main
from llmlab.cli._demo import score_answers
from llmlab.engine._results import summarise

PNG = b"\x89PNG\r\n\x1a\n"


def _row(prompt_id, model, text, expected=None, task="arithmetic", cost=0.0, status="ok", **kw):
    row = {"id": 1, "run_id": "r1", "request_id": f"{prompt_id}-{model}", "prompt_id": prompt_id,
           "task": task, "expected": expected, "repeat": 0, "prompt": f"<q> {prompt_id}?", "requested_model": model,
           "attempt": 1, "status": status, "error_type": None, "error_message": None,
           "ttft_s": 0.25, "latency_s": 1.5, "output_tokens_per_s": 30.0, "prompt_tokens": 18.0,
           "completion_tokens": 16.0, "tokens_estimated": True, "cost_usd": cost,
           "cost_source": "price_table", "cached": False, "response_text": text}
    row.update(kw)
    return row


def _runs(cost=0.0):
    rows = [
        _row("arith-add", "smollm2-135m", "17 + 25 = 38.", "42", cost=cost),
        _row("arith-add", "gemma-3-270m", "The answer is 42", "42", cost=cost),
        _row("classify-sentiment", "smollm2-135m", "Negative.", "negative", task="classify", cost=cost),
        _row("creative-haiku", "gemma-3-270m", "rain <b>falls</b>", None, task="creative", cost=cost),
    ]
    return pd.DataFrame(rows)


class _Tables(HTMLParser):
    """Collects every table as a list of rows of cell texts, plus figcaptions and section titles."""

    def __init__(self):
        super().__init__()
        self.tables, self.captions, self.h2 = [], [], []
        self._cell = self._where = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""
        elif tag in ("figcaption", "h2"):
            self._where = tag
            (self.captions if tag == "figcaption" else self.h2).append("")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(self._cell.strip())
            self._cell = None
        elif tag in ("figcaption", "h2"):
            self._where = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        if self._where == "figcaption":
            self.captions[-1] += data
        elif self._where == "h2":
            self.h2[-1] += data


def _page(runs, charts=None):
    runs = score_answers(runs)
    summary = summarise(runs, ["smollm2-135m", "gemma-3-270m"])
    page = render_report(standard_sections(summary, runs, charts or {"latency": PNG}), {"run": "r1"})
    parsed = _Tables()
    parsed.feed(page)
    return page, parsed


def test_summary_has_human_headers_integer_tokens_and_right_answers():
    page, parsed = _page(_runs())
    header, *rows = parsed.tables[0]
    assert header[0] == "model" and "latency p50 (s)" in header and "tokens out" in header
    assert not any("_" in h for h in header)  # no raw identifiers such as latency_p50_s
    # attempts == calls and nothing cached: those columns say nothing and are left out
    assert "attempts" not in header and "from cache" not in header
    smol = dict(zip(header, rows[0], strict=True))
    assert smol["tokens out"] == "~32" and smol["tokens in"] == "~36"  # 2 calls × 16, estimated
    assert smol["right answers"] == "1 / 2" and smol["cost (USD)"] == "$0"
    assert "16.000" not in page and "32.0" not in page


def test_answers_mark_expected_right_or_wrong_and_drop_empty_columns():
    page, parsed = _page(_runs())
    answers = parsed.tables[-1]
    header = answers[0]
    assert "error_message" not in header and "error" not in header  # all empty: dropped
    rows = [dict(zip(header, r, strict=True)) for r in answers[1:]]
    # The prompt's text, escaped (its id on hover), not only the id.
    wrong = next(r for r in rows if r["model"] == "smollm2-135m" and r["prompt"] == "<q> arith-add?")
    right = next(r for r in rows if r["model"] == "gemma-3-270m" and r["prompt"] == "<q> arith-add?")
    assert "&lt;q&gt; arith-add?" in page and "title='arith-add'" in page
    assert wrong["expected"] == "✗ 42" and right["expected"] == "✓ 42"
    haiku = next(r for r in rows if r["prompt"] == "<q> creative-haiku?")
    assert haiku["expected"] == "" and haiku["tokens out"] == "~16"
    assert "expected 42, got 38" in page  # the reason, as a tooltip
    assert "rain &lt;b&gt;falls&lt;/b&gt;" in page and "<b>falls</b>" not in page


def test_free_models_get_a_what_if_cost_note_instead_of_cost_charts():
    page, parsed = _page(_runs(cost=0.0))
    assert "Cost" in parsed.h2 and "Local models cost nothing" in page and "what-if" in page
    cost_table = parsed.tables[1]
    assert cost_table[0][:2] == ["model", "calls"] and "as claude-haiku-4-5" in cost_table[0]
    assert all(cell.startswith("$") for cell in cost_table[1][2:])
    _, priced = _page(_runs(cost=0.002))
    assert "Cost" not in priced.h2  # real prices: the charts say it


def test_an_answer_cut_at_max_tokens_says_so():
    runs = _runs()
    runs["finish_reason"] = ["stop", "length", "stop", "stop"]
    page, parsed = _page(runs)
    header = parsed.tables[-1][0]
    rows = [dict(zip(header, r, strict=True)) for r in parsed.tables[-1][1:]]
    assert [r["answer"].endswith("[cut at max_tokens]") for r in rows] == [False, True, False, False]
    assert "the token limit ended the answer" in page
    _, uncut = _page(_runs().assign(finish_reason="stop"))
    assert "cut at max_tokens" not in "".join(str(t) for t in uncut.tables)


def test_error_rows_show_their_error_in_the_answer():
    runs = _runs()
    runs.loc[3, ["status", "error_type", "error_message", "response_text"]] = [
        "error", "NotFoundError", "model <x> not found", ""]
    page, parsed = _page(runs)
    header = parsed.tables[-1][0]
    last = dict(zip(header, parsed.tables[-1][-1], strict=True))
    assert last["answer"] == "NotFoundError: model <x> not found"
    assert "model &lt;x&gt; not found" in page


def test_chart_captions_are_sentences_not_identifiers():
    section = charts_section({"latency": PNG, "cost_vs_latency": PNG, "my_chart": PNG})
    parsed = _Tables()
    parsed.feed(section.body)
    assert parsed.captions[0].startswith("Latency per call")
    assert parsed.captions[1].startswith("Cost against latency")
    assert parsed.captions[2] == "My chart"


def test_report_is_a_list_of_sections_anyone_can_extend():
    runs = score_answers(_runs())
    sections = standard_sections(summarise(runs), runs, {})
    sections.append(Section("Who should answer what", "<p>routing</p>", "routing"))
    page = render_report(sections, {"note": "<i>x</i>"}, title="t <b>")
    assert page.index("Summary per model") < page.index("Answers") < page.index("Who should answer what")
    assert "id='routing'" in page and "<i>x</i>" not in page and "t &lt;b&gt;" in page


def test_report_escapes_model_output():
    runs = pd.DataFrame([_row("p0", "<b>m</b>", "<script>alert(1)</script>", cost=math.nan)])
    page = render_report([summary_section(summarise(runs), runs)] + standard_sections(
        summarise(runs), runs, {"latency": PNG})[1:], {"note": "<i>x</i>"})
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>m</b>" not in page and "<i>x</i>" not in page
    assert "data:image/png;base64," in page


# --------------------------------------------------------------------------- CLI

def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli_main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"llmlab {__version__}"


@pytest.mark.parametrize(("argv", "hint"), [
    (["dmeo"], "Did you mean 'demo'?"),
    (["serv", "--port", "1"], "Did you mean 'serve'?"),
    (["demo", "--n-promts", "2"], "Did you mean '--n-prompts'?"),
    (["serve", "--alais=x"], "Did you mean '--alias'?"),
    (["demo", "--n-prompt", "2"], "Did you mean '--n-prompts'?"),      # no abbreviations: a hint instead
    (["export", "--colums", "model"], "Did you mean '--columns'?"),     # before the missing FILE
    (["export", "--column", "model", "x.parquet"], "Did you mean '--columns'?"),
    (["--verison"], "Did you mean '--version'?"),
])
def test_mistyped_command_or_option_gets_a_suggestion(capsys, argv, hint):
    with pytest.raises(SystemExit) as exit_:
        cli_main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and hint in err
    assert err.splitlines()[-1].startswith("llmlab") and "Traceback" not in err


def test_no_parser_takes_abbreviations():
    from llmlab.cli._main import _parser, _subparsers

    parser = _parser()
    assert parser.allow_abbrev is False
    assert {name: sub.allow_abbrev for name, sub in _subparsers(parser).items()} == \
        {"serve": False, "demo": False, "export": False, "batch": False}
    actions = _subparsers(_subparsers(parser)["batch"])
    assert {name: sub.allow_abbrev for name, sub in actions.items()} == \
        {"submit": False, "status": False, "resume": False, "cancel": False}


def test_a_mistyped_export_column_or_log_gets_a_suggestion(tmp_path, capsys):
    db = tmp_path / "runs.sqlite"
    with Lab(db=db, base_url="http://127.0.0.1:9/v1", api_key_env=""):
        pass
    assert cli_main(["export", str(tmp_path / "o.parquet"), "--db", str(db), "--columns", "model"]) == 2
    assert "unknown column 'model'. Did you mean 'requested_model'?" in capsys.readouterr().err
    assert cli_main(["export", str(tmp_path / "o.parquet"), "--db", str(tmp_path / "runz.sqlite")]) == 2
    assert "no log at" in capsys.readouterr().err and not (tmp_path / "runz.sqlite").exists()
    assert cli_main(["demo", "--models", "qwen2.5-coder", "--out", str(tmp_path / "d")]) == 2
    assert "Did you mean 'qwen2.5-coder-0.5b'?" in capsys.readouterr().err


def test_unrelated_word_gets_the_command_list_but_no_guess(capsys):
    with pytest.raises(SystemExit):
        cli_main(["frobnicate"])
    err = capsys.readouterr().err
    assert "unknown command 'frobnicate'" in err and "Did you mean" not in err and "serve, demo" in err


# --------------------------------------------------------------------------- CLI edge cases


@pytest.fixture
def local_stand_in(monkeypatch):
    """stand_in(srv): ``llmlab.local.start`` returns the test server ``srv`` as the embedded
    endpoint (what ``llmlab demo`` starts), so the demo runs end to end without real models."""
    import llmlab.local

    def stand_in(srv) -> None:
        monkeypatch.setattr(llmlab.local, "start", lambda **kw: EmbeddedStandIn(srv))
    return stand_in


@pytest.mark.parametrize(("argv", "message"), [
    (["--decision-prompts", "-5"], "--decision-prompts must be a whole number from 0 to 2,400, not -5"),
    (["--decision-prompts", "99999"], "--decision-prompts must be a whole number from 0 to 2,400"),
    (["--max-tokens", "0"], "--max-tokens must be a whole number from 1 to 2,000,000, not 0"),
    (["--n-prompts", "999"], "--n-prompts must be a whole number from 1 to 12, not 999"),
    (["--models", ""], "--models names no model; give some of smollm2-135m"),
    (["--models", " , "], "--models names no model"),
    (["--out", "a-file"], "--out a-file is a file, not a folder"),
    (["--out", "/proc/nope"], "--out /proc/nope: cannot make that folder (No such file or directory)"),
])
def test_every_demo_argument_is_checked_before_the_endpoint_starts(argv, message, tmp_path, monkeypatch, capsys):
    import llmlab.local

    def started(**kw):
        raise AssertionError("the endpoint was started before the arguments were checked")
    monkeypatch.setattr(llmlab.local, "start", started)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("mine")
    assert cli_main(["demo", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"llmlab: error: {message}"), err
    assert not (tmp_path / "llmlab-demo").exists()        # nothing made for a run that cannot start
    assert (tmp_path / "a-file").read_text() == "mine"


def test_an_option_like_no_other_gets_no_guess_and_an_extra_word_its_commands_usage(capsys):
    with pytest.raises(SystemExit):
        cli_main(["demo", "--bogus"])
    err = capsys.readouterr().err
    assert "unrecognized option '--bogus'." in err and "Did you mean" not in err    # not '--out'
    with pytest.raises(SystemExit) as exit_:
        cli_main(["demo", "extra"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("usage: llmlab demo ")
    assert "llmlab demo: error: unexpected argument 'extra' (see llmlab demo --help)" in err


def _log(path, rows=2):
    from fakeserver import FakeServer, ModelSpec

    with FakeServer({"m": ModelSpec(text="ok")}) as srv, Lab(db=path, base_url=srv.base_url, api_key_env="") as lab:
        lab.sweep([f"p{i}" for i in range(rows)], models=["m"], progress=False)


@pytest.mark.parametrize(("content", "why"), [
    (b"", "an empty file"), (b"my notes\n", "not a SQLite file"),
    (None, "a SQLite database without llmlab's runs table"),
])
def test_export_never_turns_a_file_into_a_log(content, why, tmp_path, capsys):
    import sqlite3

    db = tmp_path / "mine.sqlite"
    if content is None:
        sqlite3.connect(db).execute("CREATE TABLE notes (text)").connection.close()
    else:
        db.write_bytes(content)
    before = db.read_bytes()
    assert cli_main(["export", str(tmp_path / "o.parquet"), "--db", str(db)]) == 2
    assert f"--db: {db} is not an llmlab log ({why}); it was left as it is" in capsys.readouterr().err
    assert db.read_bytes() == before and not (tmp_path / "o.parquet").exists()


def test_an_export_matching_nothing_says_so_and_the_default_log_must_exist(tmp_path, capsys, isolated_env):
    import pyarrow.parquet as pq

    db = tmp_path / "runs.sqlite"
    _log(db)
    out = tmp_path / "o.parquet"
    assert cli_main(["export", str(out), "--db", str(db), "--model", "nope", "--since", "2020-01-01"]) == 0
    captured = capsys.readouterr()
    assert f"wrote 0 rows from {db} to {out}" in captured.out
    assert captured.err == f"llmlab export: no row of the log's 2 matches --model nope --since 2020-01-01; {out} " \
                           "holds the columns and no rows\n"
    assert pq.read_table(out).num_rows == 0
    assert cli_main(["export", str(out)]) == 2      # no --db, and nothing recorded in $LLMLAB_HOME yet
    assert f"the default log (LLMLAB_DB, else $LLMLAB_HOME/runs.sqlite): no log at {isolated_env / 'runs.sqlite'} " \
           "(nothing was recorded there yet)" in capsys.readouterr().err
    assert not (isolated_env / "runs.sqlite").exists()


def test_the_cli_advises_in_its_own_words(tmp_path, capsys):
    """A damaged log: the CLI says --db PATH where the Python API says Lab(db=...)."""
    db = tmp_path / "runs.sqlite"
    _log(db, rows=40)
    data = bytearray(db.read_bytes())
    data[100:3100] = b"\xff" * 3000
    db.write_bytes(bytes(data))
    assert cli_main(["export", str(tmp_path / "o.parquet"), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "is damaged" in err and "pass --db PATH for another log" in err and "Lab(db=" not in err
    from llmlab import StoreError

    with pytest.raises(StoreError, match=r"pass Lab\(db=\.\.\.\) for another log"):
        Lab(db=db, base_url="http://127.0.0.1:9/v1", api_key_env="")


def test_ctrl_c_in_the_demo_gives_the_demos_advice_not_the_python_apis(tmp_path, capsys, local_stand_in):
    """A real interrupt (SIGINT to this process while the demo's calls are held):
    the demo says where the finished calls are, not lab.sweep(..., resume=...)."""
    import os
    import signal
    import threading

    from fakeserver import FakeServer, ModelSpec

    with FakeServer({"smollm2-135m": ModelSpec(text="x", hold_after=1)}) as srv:
        local_stand_in(srv)

        def interrupt():
            srv.wait_held("smollm2-135m", 1, timeout=60)
            os.kill(os.getpid(), signal.SIGINT)   # a real Ctrl-C: it wakes the main thread's wait
        threading.Thread(target=interrupt, daemon=True).start()
        try:
            assert cli_main(["demo", "--models", "smollm2-135m", "--out", str(tmp_path / "d"), "--n-prompts", "3",
                             "--decision-prompts", "0"]) == 130
        finally:
            srv.release("smollm2-135m")
    err = capsys.readouterr().err
    assert "llmlab: interrupted; finished calls are saved. They are in the demo's runs.sqlite (run '" in err
    assert "lab.sweep" not in err


def test_the_demo_says_what_each_output_covers_and_why_a_section_is_missing(tmp_path, capsys, local_stand_in):
    """One model: the decision section says it was not run and why; the files say what they
    cover (the CSVs: the demo run; runs.sqlite: every call, an earlier run's rows too)."""
    import pandas as pd
    from fakeserver import FakeServer, ModelSpec

    out = tmp_path / "d"
    with FakeServer({"smollm2-135m": ModelSpec(text="Lyon")}) as srv:
        local_stand_in(srv)
        argv = ["demo", "--models", "smollm2-135m", "--out", str(out), "--n-prompts", "2"]
        assert cli_main(argv) == 0
        capsys.readouterr()
        assert cli_main(argv) == 0        # a second run into the same folder
    captured = capsys.readouterr()
    assert "who should answer what — not run: it compares two or more models, and --models gave one " \
           "(smollm2-135m)" in captured.err
    assert len(pd.read_csv(out / "runs.csv")) == 2
    assert "summary.csv, runs.csv, the charts and the summary cover the 2 demo calls (run " in captured.out
    assert "runs.sqlite holds every call: 4 rows — the 2 demo calls (run " in captured.out
    assert ", and 2 rows of earlier runs in this folder." in captured.out
    report = (out / "report.html").read_text()
    assert "demo sweep wall time" in report and "for 2 calls, sent one at a time" in report
    assert "not run: it compares two or more models" in report


def test_the_terminal_summary_is_the_reports_table_in_text():
    """The columns that matter, with the report's headers and number formats (8.7, not 8.75 beside
    it); all-empty columns (reasoning_tokens) and the CSV's other columns are left to the CSV."""
    import pandas as pd

    from llmlab.analysis._report import summary_section
    from llmlab.cli._format import format_summary

    summary = pd.DataFrame([{"model": "m<b>", "n": 2, "errors": 0, "attempts": 2, "cached": 0,
                             "latency_p50_s": 1.1357, "latency_p95_s": 2.0, "ttft_p50_s": 0.5, "ttft_answer_p50_s": 0.5,
                             "tokens_per_s_p50": 8.746, "prompt_tokens": 305.0, "cached_tokens": 0.0,
                             "completion_tokens": 267.0, "reasoning_tokens": float("nan"), "tokens_estimated": True,
                             "cost_usd": 0.0, "saved_by_cache_usd": 0.0, "saved_by_prompt_cache_usd": 0.0}])
    text = format_summary(summary)
    header, row = text.splitlines()
    assert header.split() == ["model", "calls", "errors", "latency", "p50", "(s)", "latency", "p95", "(s)", "TTFT",
                              "p50", "(s)", "tokens/s", "p50", "tokens", "in", "tokens", "out", "cost", "(USD)"]
    assert row.split() == ["m<b>", "2", "0", "1.14", "2.00", "0.50", "8.7", "~305", "~267", "$0"]
    html = summary_section(summary).body
    assert all(f">{cell}<" in html for cell in ("1.14", "8.7", "~305", "$0"))   # the same figures
