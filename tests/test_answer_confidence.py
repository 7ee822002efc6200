"""Confidence from the endpoint: asked-for token log-probabilities are stored as per-answer
summaries (mean and minimum), unknown (NaN, never 0) when not asked for or not sent — through the
Python API, the %%llm line, cache hits and a log written before the columns existed."""
from __future__ import annotations

import math
import sqlite3

import pytest
from fakeserver import ModelSpec
from IPython.core.interactiveshell import InteractiveShell

from llmlab import Lab
from llmlab.magics import load_ipython_extension, unload_ipython_extension

TEXT = "one two three four"          # four content chunks, one word (token) each
VALUES = [-0.5, -0.1, -2.0, -0.2]


@pytest.fixture
def srv(serve):
    return serve({"lp": ModelSpec(text=TEXT, logprobs=VALUES), "none": ModelSpec(text=TEXT),
                  "llamacpp": ModelSpec(text=TEXT, logprobs=VALUES, logprobs_need_top=True),
                  "sentinel": ModelSpec(text=TEXT, logprobs=[-0.5, -9999.0])})


@pytest.fixture
def lab(srv, tmp_path):
    with Lab(base_url=srv.base_url, db=str(tmp_path / "runs.sqlite"), retries=0, quiet=True) as lab:
        yield lab


@pytest.mark.parametrize("stream", [True, False])
def test_mean_and_minimum_of_the_answer_tokens_are_recorded(lab, stream):
    res = lab.compare("hi", models=["lp"], logprobs=True, top_logprobs=2, stream=stream, cache=False)
    row = res.df.iloc[0]
    assert row["logprob_mean"] == pytest.approx(sum(VALUES) / 4) and row["logprob_min"] == -2.0
    stored = lab.runs().iloc[-1]
    assert (stored["logprob_mean"], stored["logprob_min"]) == (row["logprob_mean"], row["logprob_min"])


def test_unknown_is_nan_never_zero(lab):
    not_asked = lab.compare("hi", models=["lp"], cache=False).df.iloc[0]
    not_sent = lab.compare("hi", models=["none"], logprobs=True, top_logprobs=1, cache=False).df.iloc[0]
    for row in (not_asked, not_sent):
        assert math.isnan(row["logprob_mean"]) and math.isnan(row["logprob_min"])


def test_llama_cpp_style_server_needs_top_logprobs(lab):
    """llama-cpp-python's server returns chat logprobs only when top_logprobs is given as well."""
    bare = lab.compare("hi", models=["llamacpp"], logprobs=True, cache=False).df.iloc[0]
    assert math.isnan(bare["logprob_mean"])
    zero = lab.compare("hi", models=["llamacpp"], logprobs=True, top_logprobs=0, cache=False).df.iloc[0]
    assert zero["logprob_min"] == -2.0


def test_the_not_computed_sentinel_is_not_a_token_probability(lab):
    row = lab.compare("hi", models=["sentinel"], logprobs=True, top_logprobs=1, cache=False).df.iloc[0]
    assert row["logprob_mean"] == -0.5 and row["logprob_min"] == -0.5   # the -9999.0 entries are skipped


def test_a_cache_hit_keeps_the_original_confidence(lab, srv):
    first = lab.compare("hi", models=["lp"], logprobs=True, top_logprobs=1).df.iloc[0]
    again = lab.compare("hi", models=["lp"], logprobs=True, top_logprobs=1).df.iloc[0]
    assert bool(again["cached"]) and len(srv.requests_for("lp")) == 1
    assert (again["logprob_mean"], again["logprob_min"]) == (first["logprob_mean"], first["logprob_min"])


def test_the_llm_magic_line_asks_for_them_too(srv):
    shell = InteractiveShell.instance()
    unload_ipython_extension(shell)
    shell.extension_manager.loaded.discard("llmlab")
    load_ipython_extension(shell)
    try:
        shell.run_line_magic("config", f'LLMLab.base_url = "{srv.base_url}"')
        res = shell.run_cell_magic("llm", "model=lp logprobs=true top_logprobs=1 cache=false", "hi")
        body = srv.requests_for("lp")[-1].body
        assert body["logprobs"] is True and body["top_logprobs"] == 1
        assert res.df.iloc[0]["logprob_min"] == -2.0
    finally:
        unload_ipython_extension(shell)
        shell.extension_manager.loaded.discard("llmlab")


def test_a_log_from_before_the_columns_gains_them_as_unknown(tmp_path, srv):
    path = tmp_path / "old.sqlite"
    with Lab(base_url=srv.base_url, db=str(path), retries=0, quiet=True) as lab:
        lab.compare("hi", models=["lp"], cache=False)
    with sqlite3.connect(path) as conn:     # the log as an llmlab without m008 (nor the later ones) left it
        for table, column in (("runs", "logprob_mean"), ("runs", "logprob_min"), ("runs", "refusal"),
                              ("labels", "answer_a_hash"), ("labels", "answer_b_hash")):
            conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.execute("DELETE FROM _migrations WHERE name >= 'm008'")
    with Lab(base_url=srv.base_url, db=str(path), retries=0, quiet=True) as lab:
        old = lab.runs().iloc[0]
        assert math.isnan(old["logprob_mean"]) and math.isnan(old["logprob_min"])
        fresh = lab.compare("hi", models=["lp"], logprobs=True, top_logprobs=1, cache=False).df.iloc[0]
        assert fresh["logprob_min"] == -2.0
    with sqlite3.connect(path) as conn:
        assert ("m008_answer_confidence",) in conn.execute("SELECT name FROM _migrations").fetchall()
