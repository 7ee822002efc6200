"""A judge reply the model did not finish is unknown, whatever verdict it holds.

Review r23 found (N4), through a real Lab and the real SDK:
- only ``finish_reason == "length"`` made a judge reply unknown; a provisional ``Rating: [[9]]``
  ended by ``content_filter``, ``error``, ``max_tokens`` (Anthropic's word), ``MAX_TOKENS``
  (Gemini's) or ``abort`` was scored 0.889, and in pairwise a content-filtered game counted as a
  whole game. Now anything but the finished reasons (``scoring``'s ``FINISHED``) is a cut reply.
"""
from __future__ import annotations

import warnings

import pandas as pd
import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import Lab, scoring

CHEAP, STRONG = "claude-haiku", "claude-opus"       # the cheap model's name sorts first
UNFINISHED = ["content_filter", "error", "max_tokens", "MAX_TOKENS", "abort", "length"]
FINISHED = ["stop", "end_turn", "stop_sequence", "eos"]
N = 6


def _judge_spec(finish: str, text: str) -> ModelSpec:
    # streamed: the verdict's text, then a chunk that ends it with this finish_reason
    return ModelSpec(raw_events=[{"choices": [{"index": 0, "delta": {"content": text}}]},
                                 {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}])


JUDGES = {f"rate-{f}": _judge_spec(f, "Rating: [[9]]") for f in UNFINISHED + FINISHED}
JUDGES |= {f"pick-{f}": _judge_spec(f, "[[B]]") for f in UNFINISHED + FINISHED}
ANSWERS = {CHEAP: ModelSpec(text="bad answer"), STRONG: ModelSpec(text="GOOD answer")}


@pytest.fixture(scope="module")
def server():
    with FakeServer({**ANSWERS, **JUDGES}) as srv:
        yield srv


@pytest.fixture(scope="module")
def lab(server, tmp_path_factory):
    with Lab(base_url=server.base_url, db=tmp_path_factory.mktemp("log") / "runs.sqlite", retries=0) as lab:
        yield lab


@pytest.fixture(scope="module")
def runs(lab):
    prompts = pd.DataFrame({"prompt_id": [f"q{k}" for k in range(N)], "prompt": [f"Question {k}?" for k in range(N)]})
    return lab.sweep(prompts, models=[CHEAP, STRONG], progress=False).df


@pytest.mark.parametrize("finish", UNFINISHED + FINISHED)
def test_a_pointwise_verdict_counts_only_in_a_reply_the_model_finished(lab, runs, finish):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        scored = scoring.score(runs, scoring.judge(f"rate-{finish}", lab))
    if finish in FINISHED:
        assert scored["score"].round(3).eq(0.889).all()                 # [[9]] on the 1-10 scale
    else:
        assert scored["score"].isna().all()
        assert (scored["score_reason"] == f"judge reply cut off (finish_reason={finish})").all()


@pytest.mark.parametrize("finish", UNFINISHED + FINISHED)
def test_a_pairwise_game_counts_only_when_the_judge_finished_its_reply(lab, runs, finish):
    prefs = scoring.pairwise(runs, judge=f"pick-{finish}", lab=lab, progress=False)
    if finish in FINISHED:   # [[B]] in both orders: inconsistent, a tie
        assert (prefs["winner"] == "tie").all()
    else:
        assert prefs["winner"].isna().all() and prefs["verdict_1"].isna().all() and prefs["verdict_2"].isna().all()
        assert prefs["reason"].str.contains(f"judge reply cut off \\(finish_reason={finish}\\)").all()
        assert (prefs["reply_1"] == "[[B]]").all()                       # the judge's words stay visible
