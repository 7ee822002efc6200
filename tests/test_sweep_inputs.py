"""Streaming sweeps: prompts from files and iterators, rows in the order asked for, bad rows, and a
large run whose Result stays in the log (summary by the store, the one cost rule included)."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import InputError, Lab
from llmlab.engine._results import summarise

pytestmark = pytest.mark.filterwarnings("ignore::llmlab.PriceWarning")

ROWS = [{"prompt_id": "a", "prompt": "first", "task": "t1", "expected": "x"},
        {"prompt_id": "b", "prompt": "second", "task": "t2", "expected": "y"},
        {"prompt_id": "c", "prompt": "third", "task": "t1", "expected": "z"}]


@pytest.fixture
def server():
    srv = FakeServer({"m1": ModelSpec(text="one"), "m2": ModelSpec(text="two", delay_s=0.02)}).start()
    yield srv
    srv.stop()


@pytest.fixture
def lab(server, tmp_path):
    prices = {"m1": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}}
    with Lab(base_url=server.base_url, db=str(tmp_path / "runs.sqlite"), retries=0, prices=prices) as lab:
        yield lab


def _write(tmp_path, kind: str):
    frame = pd.DataFrame(ROWS)
    path = tmp_path / f"prompts.{kind}"
    if kind == "parquet":
        frame.to_parquet(path)
    elif kind == "csv":
        frame.to_csv(path, index=False)
    else:
        path.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    return path


@pytest.mark.parametrize("kind", ["parquet", "csv", "jsonl"])
def test_a_sweep_reads_prompts_from_a_file(lab, tmp_path, kind):
    res = lab.sweep(_write(tmp_path, kind), models=["m1", "m2"], progress=False)
    df = res.df
    assert df["prompt_id"].tolist() == ["a", "a", "b", "b", "c", "c"]  # prompt × model order
    assert df["requested_model"].tolist() == ["m1", "m2"] * 3
    assert df["task"].tolist() == ["t1", "t1", "t2", "t2", "t1", "t1"] and df["expected"].iloc[2] == "y"
    assert (df["status"] == "ok").all()


def test_a_sweep_takes_an_iterator_and_keeps_the_order_asked_for(lab, server):
    prompts = (f"prompt {i}" for i in range(30))  # consumed once, lazily
    res = lab.sweep(prompts, models=["m2", "m1"], concurrency=7, progress=False)
    df = res.df
    assert df["prompt"].tolist() == [f"prompt {i}" for i in range(30) for _ in range(2)]
    assert df["requested_model"].tolist() == ["m2", "m1"] * 30
    assert len([r for r in server.requests if r.path == "/v1/chat/completions"]) == 60


def test_bad_input_in_a_list_or_file_is_refused_before_anything_is_sent(lab, server, tmp_path):
    with pytest.raises(InputError, match=r"prompt #2"):
        lab.sweep(["fine", "also fine", ""], models=["m1"], progress=False)
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"prompt_id": "x", "prompt": "a"}\n{"prompt_id": "x", "prompt": "b"}\n')
    with pytest.raises(InputError, match="appears twice"):
        lab.sweep(dup, models=["m1"], progress=False)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"prompt": "a"}\nnot json\n')
    with pytest.raises(InputError, match="line 2: invalid JSON"):
        lab.sweep(broken, models=["m1"], progress=False)
    with pytest.raises(InputError, match="does not exist"):
        lab.sweep(str(tmp_path / "missing.parquet"), models=["m1"], progress=False)
    with pytest.raises(InputError, match="for one prompt use compare"):
        lab.sweep("just one prompt", models=["m1"], progress=False)
    assert server.requests == []


def test_a_bad_row_in_an_iterator_stops_there_and_resume_continues(lab, server):
    """An iterator is checked as it is read, a batch (256 jobs) at a time: a bad row in the first
    batch stops the sweep before anything is sent; a later one stops it there, keeping every
    finished row, and resume runs the rest."""
    def prompts(n: int, bad: int | None):
        for i in range(n):
            yield "" if i == bad else f"p{i}"

    with pytest.raises(InputError, match="prompt #4"):
        lab.sweep(prompts(6, 4), models=["m1"], progress=False)
    assert server.requests == []
    with pytest.raises(InputError, match="prompt #290"):
        lab.sweep(prompts(300, 290), models=["m1"], concurrency=4, progress=False)
    run_id = lab.last_run_id
    first = lab.runs(run_id=run_id)
    ok = set(first.loc[first["status"] == "ok", "prompt"])
    assert 0 < len(ok) <= 256 and ok <= {f"p{i}" for i in range(256)}
    assert set(first.loc[first["status"] != "ok", "error_type"]) <= {"Cancelled"}
    res = lab.sweep(prompts(300, None), models=["m1"], concurrency=8, progress=False, resume=run_id)
    # What the resume called, from its own rows (one per request sent): the server's log could
    # still receive a request the stopped run had sent before the stop, after any reset here.
    resent = sorted(res.df.loc[~res.df["id"].isin(first["id"]), "prompt"])
    assert resent == sorted({f"p{i}" for i in range(300)} - ok)
    done = res.df[res.df["status"] == "ok"]
    assert sorted(done["prompt"]) == sorted(f"p{i}" for i in range(300)) and done["prompt"].is_unique


def test_a_large_run_stays_in_the_log_and_its_summary_follows_the_cost_rule(lab, monkeypatch):
    import llmlab.engine._results as results

    prompts = [f"q{i}" for i in range(6)]
    lab.sweep(prompts[:3], models=["m1", "m2"], progress=False)  # cached answers for the next run
    monkeypatch.setattr(results, "EAGER_ROWS", 4)
    res = lab.sweep(prompts, models=["m1", "m2"], progress=False)
    assert not res.loaded and len(res) == 12
    stored = res.summary()
    text = repr(res)
    assert not res.loaded  # summary, len and repr came from the store
    expected = summarise(res.df, res.models)
    pd.testing.assert_frame_equal(stored, expected, check_dtype=False)
    assert stored.loc[0, "cached"] == 3 and stored.loc[0, "saved_by_cache_usd"] > 0
    assert pd.isna(stored.loc[1, "cost_usd"])  # m2 has no price: unknown, never $0
    assert "cost=unknown" in text and "rows=12" in text
    assert "res.df" in res._repr_html_() or "<details>" in res._repr_html_()
