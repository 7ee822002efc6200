"""F15: every JSON llmlab reads from a file or from a user's text goes through the one depth-bounded,
recursion-free reader (llmlab.base._json.loads): a price sheet, saved policy, checker spec, prompts
file, CLI option or magic option nested 200,000 deep is a one-line llmlab error, never a raw
RecursionError. The class test: no module of llmlab calls json.load/json.loads itself."""
from __future__ import annotations

import ast
import re
import time
from pathlib import Path

import pytest

import llmlab
from llmlab import ConfigError, InputError, Lab, LLMLabError
from llmlab.analysis._scoring import from_spec
from llmlab.base._pricing import PriceTable

ROOT = Path(llmlab.__file__).parent
DEEP = "[" * 200_000 + "]" * 200_000
# the embedded model server's child process imports nothing of llmlab (run as a script); it reads the
# config llmlab wrote for it and catches RecursionError on a request body
EXEMPT = {"base/_json.py", "local/_child.py"}
READERS = {"load", "loads", "JSONDecoder", "raw_decode"}


def _direct_json_reads(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {"json"} | {alias.asname for node in ast.walk(tree) if isinstance(node, ast.Import)
                        for alias in node.names if alias.name == "json" and alias.asname}  # import json as j
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in READERS:
            base = node.value
            if isinstance(base, ast.Name) and base.id in names or node.attr in ("JSONDecoder", "raw_decode"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} json.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module == "json":
            found += [f"{path.relative_to(ROOT)}:{node.lineno} from json import {a.name}"
                      for a in node.names if a.name in READERS]
    return found


def test_no_module_reads_json_except_through_the_one_reader():
    found = [hit for path in sorted(ROOT.rglob("*.py")) if str(path.relative_to(ROOT)) not in EXEMPT
             for hit in _direct_json_reads(path)]
    assert found == []


def test_the_class_test_sees_a_direct_read(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text("import json\nimport json as j\nfrom json import loads\nx = json.loads('1')\n"
                      "y = json.load(open('f'))\nz = j.loads('2')\n")
    assert len(_direct_json_reads_at(sample)) == 4


def _direct_json_reads_at(path: Path) -> list[str]:
    global ROOT
    saved, ROOT = ROOT, path.parent
    try:
        return _direct_json_reads(path)
    finally:
        ROOT = saved


def _one_line(exc: BaseException) -> str:
    message = str(exc)
    # base/_json's words ("nested too deep") or the option reader's ("nested deeper than 64 levels")
    assert "\n" not in message and re.search(r"nested (too deep|deeper than \d+ levels)", message)
    return message


def test_a_200000_deep_price_sheet_is_a_one_line_error(tmp_path):
    sheet = tmp_path / "deep.json"
    sheet.write_text('{"m": ' + DEEP + "}")
    started = time.perf_counter()
    with pytest.raises(ConfigError) as caught:
        PriceTable.load(sheet)
    assert "deep.json" in _one_line(caught.value)
    with pytest.raises(ConfigError):
        Lab(base_url="http://127.0.0.1:9/v1", db=":memory:", prices=str(sheet))
    assert time.perf_counter() - started < 10


def test_a_deep_saved_policy_is_a_one_line_input_error(tmp_path):
    from llmlab.routing import load_policy

    saved = tmp_path / "policy.json"
    saved.write_text('{"kind": "always", "model": ' + DEEP + "}")
    with pytest.raises(InputError) as caught:
        load_policy(saved)
    _one_line(caught.value)


def test_a_deep_checker_spec_is_a_one_line_input_error():
    with pytest.raises(InputError) as caught:
        from_spec('{"kind": "choice", "labels": ' + DEEP + "}")
    assert "\n" not in str(caught.value)


def test_a_deep_prompts_file_line_is_a_one_line_input_error(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "fine"}\n{"prompt": ' + DEEP + "}\n")
    with Lab(base_url="http://127.0.0.1:9/v1", db=tmp_path / "r.sqlite", quiet=True) as lab, \
            pytest.raises(InputError) as caught:
        lab.sweep(prompts, models=["m"], progress=False)
    assert "line 2" in _one_line(caught.value)


def test_a_deep_cli_json_option_is_a_one_line_input_error(tmp_path):
    from llmlab.cli._batch import _json

    with pytest.raises(InputError) as caught:
        _json("--params", "{\"a\": " + DEEP + "}")
    _one_line(caught.value)
    params = tmp_path / "params.json"
    params.write_text(DEEP)
    with pytest.raises(InputError):
        _json("--params", str(params))


def test_a_deep_magic_option_is_a_one_line_error():
    from llmlab.notebook._magic_options import _json

    with pytest.raises(LLMLabError) as caught:
        _json("response_format", "{\"a\": " + DEEP + "}")
    _one_line(caught.value)


def test_a_deep_pyproject_is_ignored_with_a_warning_not_a_recursion_error(tmp_path):
    from llmlab.notebook._magics import read_pyproject

    config = tmp_path / "pyproject.toml"
    config.write_text("[tool.llmlab]\nmodels = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.warns(UserWarning, match="nested too deep"):
        assert read_pyproject(config) == {}
