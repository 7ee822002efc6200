"""Everything the command line prints goes through the one display sanitiser
(llmlab/cli/_format.py ``say``/``frame_text``/``Parser``): endpoint-chosen batch ids and statuses,
model names, error messages and argparse's echo of the arguments reach the terminal with ESC,
OSC 8 links, RLO and C1 controls shown as ``\\x1b``/``\\u202e``, never obeyed. Real test servers."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from fakeserver import BatchBehaviour, FakeServer, ModelSpec

from llmlab.cli import _main, main
from llmlab.cli._format import frame_text, say
from llmlab.engine import _batch

CLI = Path(_main.__file__).parent
# What a terminal would obey: C0 (but \t, \n), DEL, C1, bidi controls and isolates, line separators.
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
HOSTILE = {"clear screen": "\x1b[2J\x1b[31mOWNED", "OSC 8 link": "\x1b]8;;https:evil\x07click\x1b]8;;\x07",
           "RLO": "abc\u202edef", "C1 CSI": "\x9b31mred", "C1 OSC": "\x9d8;;x\x9c", "BEL and BS": "a\x07\x08b",
           "carriage return": "fake\rline", "isolate": "\u2066x\u2069", "NUL": "a\x00b"}


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch):
    monkeypatch.setattr(_batch.BatchSession, "poll_first_s", 0.02)


def _clean(out: str) -> bool:
    return RAW.search(out) is None


def test_no_cli_module_writes_to_the_terminal_but_through_the_format_module():
    for path in sorted(CLI.glob("*.py")):
        if path.name == "_format.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                assert name not in ("print", "write", "ArgumentParser", "to_string"), \
                    f"{path.name}:{node.lineno} calls {name}: print through llmlab.cli._format"


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_say_and_frame_text_show_controls_instead_of_obeying_them(capsys, name):
    import pandas as pd

    value = HOSTILE[name]
    say(value)
    say(value, err=True)
    frame = pd.DataFrame({value: [value, "x"], "n": [1, 2]}, index=[value, "i"])
    out = capsys.readouterr()
    assert _clean(out.out) and _clean(out.err) and _clean(frame_text(frame)) and _clean(frame_text(frame, index=True))
    assert "\\x" in out.out or "\\u" in out.out
    lines = frame_text(frame).splitlines()
    assert len({len(line) for line in lines}) == 1  # sanitised before aligning: the columns stay straight


def _prompts(tmp_path) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in ("one", "two")))
    return path


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_every_batch_command_prints_endpoint_ids_sanitised(tmp_path, capsys, name):
    behaviour = BatchBehaviour(name={"batch": HOSTILE[name], "file": HOSTILE[name]})
    with FakeServer({"a": ModelSpec(text="answer")}, batches=behaviour) as srv:
        common = ["--base-url", srv.base_url, "--db", str(tmp_path / "l.sqlite")]
        assert main(["batch", "submit", str(_prompts(tmp_path)), "--models", "a", *common]) == 0
        run_id = capsys.readouterr().out.split("submitted run ")[1].split(":")[0]
        outputs = []
        for argv in (["status", run_id], ["status"], ["resume", run_id], ["status", run_id], ["cancel", run_id]):
            assert main(["batch", *argv, *common]) == 0
            out = capsys.readouterr()
            outputs.append(out.out + out.err)
    assert all(_clean(out) for out in outputs), [out for out in outputs if not _clean(out)]
    assert "batch_fake" in outputs[0] and ("\\x" in outputs[0] or "\\u" in outputs[0])  # shown, escaped


@pytest.mark.filterwarnings("ignore::llmlab.engine._batch.BatchWarning")  # said: tests/test_batch_odd_fields.py
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_batch_status_never_prints_an_endpoint_status_raw(tmp_path, capsys, name):
    behaviour = BatchBehaviour(in_progress_s=30, fields={"status": HOSTILE[name]})
    with FakeServer({"a": ModelSpec(text="answer")}, batches=behaviour) as srv:
        common = ["--base-url", srv.base_url, "--db", str(tmp_path / "l.sqlite")]
        assert main(["batch", "submit", str(_prompts(tmp_path)), "--models", "a", *common]) == 0
        capsys.readouterr()
        assert main(["batch", "status", *common]) == 0
        out = capsys.readouterr()
    assert _clean(out.out + out.err) and " unknown " in out.out


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_errors_of_every_kind_are_printed_sanitised(tmp_path, capsys, monkeypatch, name):
    value = HOSTILE[name]
    log = tmp_path / "l.sqlite"
    with FakeServer({"a": ModelSpec(text="answer")}) as srv:
        main(["batch", "submit", str(_prompts(tmp_path)), "--models", "a", "--wait", "--base-url", srv.base_url,
              "--db", str(log)])
    said = []
    for argv in (["export", str(tmp_path / "o.csv"), "--db", str(log), "--run-id", value],  # matched nothing
                 ["export", str(tmp_path / "o.csv"), "--db", str(tmp_path / f"{value}.sqlite")],  # an error
                 ["batch", "resume", value, "--db", str(log)]):
        main(argv)
        out = capsys.readouterr()
        said.append(out.out + out.err)
    for argv in ([value], ["export", "o.csv", "--status", value], ["batch", "status", "r", value]):
        with pytest.raises(SystemExit):  # argparse's own errors echo the arguments
            main(argv)
        out = capsys.readouterr()
        said.append(out.out + out.err)

    def broken(args):
        raise RuntimeError(f"endpoint said {value}")

    monkeypatch.setattr(_main, "_export", broken)
    assert main(["export", "o.csv"]) == 1
    said.append(capsys.readouterr().err)
    assert all(_clean(text) for text in said), [text for text in said if not _clean(text)]
    assert all(text.strip() for text in said)
    assert "internal error" in said[-1] and "endpoint said" in said[-1]
