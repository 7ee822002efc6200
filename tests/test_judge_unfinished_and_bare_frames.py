"""A judge reply the model did not finish is unknown, and a bare preference frame names no reference.

Review r23 found, through a real Lab and the real SDK:
- N4: only ``finish_reason == "length"`` made a judge reply unknown; a provisional ``Rating: [[9]]``
  ended by ``content_filter``, ``error``, ``max_tokens`` (Anthropic's word), ``MAX_TOKENS``
  (Gemini's) or ``abort`` was scored 0.889, and in pairwise a content-filtered game counted as a
  whole game. Now anything but the finished reasons (``scoring``'s ``FINISHED``) is a cut reply.
- N3: a frame cut to the preference columns records no reference (no ``against`` column, no attrs)
  and routing took its ``model_a`` — the name that sorts first — as the reference again.
"""
from __future__ import annotations

import io
import warnings

import pandas as pd
import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import InputError, Lab, routing, scoring
from llmlab.analysis._pairwise import PREFERENCE_COLUMNS

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


def _bare(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame cut to the documented preference columns, saved as CSV and read back."""
    text = frame[PREFERENCE_COLUMNS].to_csv(index=False)
    return pd.read_csv(io.StringIO(text), dtype={"prompt_id": str})


def test_a_bare_frame_whose_model_a_merely_sorts_first_needs_a_reference(lab, runs):
    prefs = scoring.pairwise(runs, judge="pick-stop", lab=lab, progress=False)
    ids = runs.set_index(["prompt_id", "requested_model"])["id"]
    for pid in sorted(set(runs["prompt_id"])):
        lab.add_label(grading="g", who="me", prompt_id=pid, model_a=CHEAP, model_b=STRONG, shown_first=CHEAP,
                      vote="B", row_a=int(ids[(pid, CHEAP)]), row_b=int(ids[(pid, STRONG)]))
    for frame in (prefs, lab.labels()):
        bare = _bare(frame)
        assert "against" not in bare.columns and not bare.attrs and (bare["model_a"] == CHEAP).all()
        with pytest.raises(InputError, match="pass reference='<model>'"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            routing.evaluate(runs, [routing.Always(CHEAP)], preferences=bare, n_boot=0)


def test_a_bare_frame_oriented_against_the_name_that_sorts_last_keeps_that_reference(lab, runs):
    # model_a is the sorted-last name in every row: a choice, not the sort order
    prefs = scoring.pairwise(runs, judge="pick-stop", lab=lab, against=STRONG, progress=False)
    bare = _bare(prefs)
    assert (bare["model_a"] == STRONG).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        report = routing.evaluate(runs, [routing.Always(CHEAP)], preferences=bare, n_boot=0)
    assert report.reference == f"always({STRONG})"
