"""Bad option values are one-line errors in every front end, never raw exceptions (F10).

``str.isdigit`` accepts '²', which ``int`` refuses; JSON options nested 100,000 deep reached
Python's recursion limit; ``--params '[1,2]'`` crashed in ``dict()``; two model names that render
alike ('m' and full-width 'ｍ', or 'm' and 'm' + ZERO WIDTH SPACE) showed as two rows reading 'm'.
Now: one whole-number reader, one JSON-option reader (no recursion, 64 levels at most) for the
magic, the CLI and prompt files, and one rule for the characters of model names.
"""
from __future__ import annotations

import pytest
from fakeserver import FakeServer, ModelSpec
from IPython.core.error import UsageError
from test_magics import fresh_shell, magics_of

from llmlab import InputError, Lab
from llmlab.base._validate import MAX_OPTION_DEPTH, parse_json_option, whole_number
from llmlab.cli._main import main
from llmlab.magics import load_ipython_extension

NOT_NUMBERS = ["²", "٣", "1²", "1e3", "-1", "+1", " 1", "1.0", "", "1" * 31, "Ⅻ"]


@pytest.fixture
def magic():
    with FakeServer({"m": ModelSpec(text="x")}) as srv:
        sh = fresh_shell()
        load_ipython_extension(sh)
        sh.run_line_magic("config", f'LLMLab.base_url = "{srv.base_url}"')
        try:
            yield magics_of(sh), srv
        finally:
            fresh_shell()


def _one_line_usage(call) -> str:
    with pytest.raises(UsageError) as caught:
        call()
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_whole_numbers_are_plain_ascii_digits():
    assert [whole_number(t) for t in ("0", "7", "0042")] == [0, 7, 42]
    assert [whole_number(t) for t in NOT_NUMBERS] == [None] * len(NOT_NUMBERS)


@pytest.mark.parametrize("text", [t for t in NOT_NUMBERS if t.strip() == t and t] + ["0"])
def test_line_commands_refuse_odd_numbers_in_one_line(magic, text):
    llm, _ = magic
    assert "positive whole number" in _one_line_usage(lambda: llm.llm(f"history {text}"))
    if text != "0":  # seed=0 is a seed
        assert "seed= must be a whole number" in _one_line_usage(lambda: llm.llm(f"grade seed={text}"))


def test_history_takes_a_plain_count(magic):
    llm, _ = magic
    llm.llm("model=m", "hello")
    assert len(llm.llm("history 3")) == 1


def _nested(depth: int, inner: str = "{}") -> str:
    return '{"a": ' * depth + inner + "}" * depth


@pytest.mark.parametrize("key", ["response_format", "tools", "stop", "metadata", "logit_bias"])
@pytest.mark.parametrize("depth", [MAX_OPTION_DEPTH + 1, 2_500, 100_000])
def test_the_magic_line_refuses_deep_json_in_one_line(magic, key, depth):
    llm, srv = magic
    value = "[" * depth + "]" * depth
    message = _one_line_usage(lambda: llm.llm(f"model=m {key}='{value}'", "hi"))
    assert f"{key}: JSON nested deeper than {MAX_OPTION_DEPTH} levels" in message
    assert not [r for r in srv.requests if r.path.endswith("/chat/completions")]


def test_json_options_read_what_they_did():
    assert parse_json_option('{"type": "json_object"}', "x") == {"type": "json_object"}
    assert parse_json_option(_nested(MAX_OPTION_DEPTH - 1), "x")  # 64 levels: kept
    for text, words in (("{x", "invalid JSON (Expecting property name"), ("[1,\n2", "at line 2 column 2"),
                        (_nested(MAX_OPTION_DEPTH), "nested deeper"), ("[" * 10**6, "nested deeper")):
        with pytest.raises(InputError, match=r"^x: ") as caught:
            parse_json_option(text, "x")
        assert words in str(caught.value)


def _cli(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("llmlab: error: ") and err.count("\n") == 1, err
    assert "internal error" not in err and "Traceback" not in err
    return err


@pytest.mark.parametrize("params,words", [
    ("[1,2]", "--params must be a JSON object"), ('"text"', "is neither JSON nor a file"),
    ("[[1,2]]", "--params must be a JSON object"), ("[]", "--params must be a JSON object"),
    ("[" * 100_000 + "]" * 100_000, "--params: JSON nested deeper"), ("{bad", "--params: invalid JSON"),
])
def test_the_cli_refuses_bad_params_in_one_line(tmp_path, capsys, params, words):
    (tmp_path / "p.csv").write_text("prompt\nhello\n")
    with FakeServer({"m": ModelSpec(text="x")}) as srv:
        err = _cli(capsys, ["batch", "submit", str(tmp_path / "p.csv"), "--models", "m", "--params", params,
                            "--db", str(tmp_path / "log.sqlite"), "--base-url", srv.base_url])
        assert not [r for r in srv.requests if not r.path.startswith("/llmlab/")]
    assert words in err


@pytest.mark.parametrize("depth", [MAX_OPTION_DEPTH + 1, 200_000])
def test_a_deeply_nested_prompts_file_is_one_line_everywhere(tmp_path, capsys, depth):
    prompts = tmp_path / "deep.jsonl"
    prompts.write_text('{"prompt": "ok"}\n{"prompt": ' + "[" * depth + "]" * depth + "}\n")
    tools = tmp_path / "tools.json"
    tools.write_text(_nested(depth))
    with FakeServer({"m": ModelSpec(text="x")}) as srv:
        base = ["--db", str(tmp_path / "log.sqlite"), "--base-url", srv.base_url]
        assert "deep.jsonl line 2: JSON nested deeper" in _cli(capsys, ["batch", "submit", str(prompts),
                                                                         "--models", "m", *base])
        assert "--tools: JSON nested deeper" in _cli(capsys, ["batch", "submit", str(prompts), "--models", "m",
                                                              "--tools", str(tools), *base])
        with Lab(base_url=srv.base_url, db=tmp_path / "log.sqlite", quiet=True) as lab:
            with pytest.raises(InputError, match="line 2: JSON nested deeper"):
                lab.sweep(prompts, models=["m"], progress=False)
        assert not [r for r in srv.requests if r.path.endswith("/chat/completions")]


LOOKALIKES = ["m,ｍ", "m,m\u200b", "\u200bm", "m\u202e", "m\u2066x", "m\x1b[31m", "m\x00", "a,ａ", "ﬁ,fi", "m\ufeff"]


@pytest.mark.parametrize("models", LOOKALIKES)
def test_model_names_that_render_alike_or_hide_characters_are_refused(tmp_path, magic, models):
    with FakeServer({"m": ModelSpec(text="x")}) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path / "log.sqlite", quiet=True) as lab:
        for call in (lambda: lab.compare("hi", models=models), lambda: lab.sweep(["hi"], models=models.split(","))):
            with pytest.raises(InputError, match=r"model names? #\d") as caught:
                call()
            assert "\n" not in str(caught.value)
        assert not [r for r in srv.requests if r.path.endswith("/chat/completions")]
    llm, served = magic
    if "\x00" not in models and "\x1b" not in models:  # a line holding those is refused even earlier
        assert "model name" in _one_line_usage(lambda: llm.llm(f"model={models}", "hi"))
    assert not [r for r in served.requests if r.path.endswith("/chat/completions")]


def test_distinct_model_names_still_pass(tmp_path):
    with FakeServer({"m": ModelSpec(text="x"), "ｍ": ModelSpec(text="y"), "GPT-4o": ModelSpec(text="z"),
                     "gpt-4o": ModelSpec(text="w")}) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path / "log.sqlite", quiet=True) as lab:
        assert len(lab.compare("hi", models=["ｍ"]).df) == 1  # full-width alone names one model
        assert len(lab.compare("hi", models=["GPT-4o", "gpt-4o"]).df) == 2  # case may matter to a gateway
