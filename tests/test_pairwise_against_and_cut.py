"""A pairwise frame records its reference in a column, and a cut judge reply stays readable.

Through a real Lab, the real SDK and the fake endpoint:
- ``scoring.pairwise`` writes ``against`` as a column (as ``lab.labels()`` does): a frame made
  without ``against=`` needs ``reference=`` also once saved as CSV and read back (CSV drops
  ``attrs``), where routing used to take the name that sorts first as the reference — a wrong winner
  from correct verdicts (review r22 B5); one made with ``against=`` keeps its reference.
- a judge reply cut off at ``max_tokens`` is unknown (JudgeCut) and its text stays in the game's
  ``reply_1``/``reply_2`` as the log recorded it, with the reason saying the reply was cut.
"""
from __future__ import annotations

import io
import warnings

import pandas as pd
import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import InputError, Lab, routing, scoring

CHEAP, STRONG = "claude-haiku", "claude-opus"       # the cheap model's name sorts first
# A fair judge reads the two answers it is shown: the one saying GOOD wins.
_SHOWN = (r"Assistant A's Answer\]\n{}[^\[]*\[The End of Assistant A's Answer\]\s*"
          r"\[The Start of Assistant B's Answer\]\n{}")
_A_GOOD, _B_GOOD = _SHOWN.format("GOOD", "bad"), _SHOWN.format("bad", "GOOD")
# Shown the good answer first, the cutter thinks aloud past max_tokens (a hypothetical [[B]] before its
# verdict, and text a display must escape); shown it second it answers at once.
LONG = ("<b>Step 1</b> \x1b[31mIf Assistant A had been wrong I would say [[B]] but let me check both answers "
        "again carefully, line by line, before I give the final verdict on them here")
MAX_TOKENS = 20
JUDGES = {"fair": ModelSpec(replies=[[_A_GOOD, "A is right. [[A]]"], [_B_GOOD, "B is right. [[B]]"]],
                            text="[[C]]"),
          "cutter": ModelSpec(replies=[[_A_GOOD, LONG], [_B_GOOD, "B is right. [[B]]"]], text="[[C]]")}
ANSWERS = {CHEAP: ModelSpec(text="bad answer"), STRONG: ModelSpec(text="GOOD answer")}
N = 12


@pytest.fixture(scope="module")
def server():
    with FakeServer({**ANSWERS, **JUDGES}) as srv:
        yield srv


@pytest.fixture
def lab(server, tmp_path):
    with Lab(base_url=server.base_url, db=tmp_path / "runs.sqlite", retries=0) as lab:
        yield lab


@pytest.fixture
def runs(lab):
    prompts = pd.DataFrame({"prompt_id": [f"q{k:02d}" for k in range(N)],
                            "prompt": [f"Question {k}?" for k in range(N)]})
    return lab.sweep(prompts, models=[CHEAP, STRONG], progress=False).df


def _csv(frame):
    """The frame saved with to_csv and read back (attrs are lost on the way)."""
    return pd.read_csv(io.StringIO(frame.to_csv(index=False)), dtype={"prompt_id": str})


def _evaluate(runs, prefs, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return routing.evaluate(runs, [routing.Always(CHEAP)], preferences=prefs, n_boot=0, **kw)


@pytest.mark.parametrize("saved", [False, True], ids=["in memory", "csv"])
def test_a_pairwise_frame_made_without_against_needs_a_reference(lab, runs, saved):
    prefs = scoring.pairwise(runs, judge="fair", lab=lab, progress=False)
    assert (prefs["model_a"] == CHEAP).all() and (prefs["winner"] == "b").all()   # the strong model won
    prefs = _csv(prefs) if saved else prefs
    with pytest.raises(InputError, match="without against=.*pass reference='<model>'"):
        _evaluate(runs, prefs)
    with pytest.raises(InputError, match="pass reference='<model>'"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        routing.recommend(runs, preferences=prefs, learned=False)
    report = _evaluate(runs, prefs, reference=STRONG)
    assert report.reference == f"always({STRONG})"
    assert report.models.loc[f"always({CHEAP})", "quality"] == 0.0          # it lost every pair
    assert prefs["against"].isna().all()                                     # the column says: none chosen


@pytest.mark.parametrize("saved", [False, True], ids=["in memory", "csv"])
def test_a_pairwise_frame_made_against_a_model_keeps_it_as_the_reference(lab, runs, saved):
    prefs = scoring.pairwise(runs, judge="fair", lab=lab, against=STRONG, progress=False)
    assert (prefs["model_a"] == STRONG).all()
    prefs = _csv(prefs) if saved else prefs
    report = _evaluate(runs, prefs)
    assert report.reference == f"always({STRONG})"
    assert report.models.loc[f"always({CHEAP})", "quality"] == 0.0
    assert (prefs["against"] == STRONG).all()


@pytest.mark.parametrize("saved", [False, True], ids=["in memory", "csv"])
def test_labels_and_a_pairwise_frame_record_no_reference_in_the_same_column(lab, runs, saved):
    ids = runs.set_index(["prompt_id", "requested_model"])["id"]
    for pid in sorted(set(runs["prompt_id"])):
        lab.add_label(grading="g", who="me", prompt_id=pid, model_a=CHEAP, model_b=STRONG, shown_first=CHEAP,
                      vote="B", row_a=int(ids[(pid, CHEAP)]), row_b=int(ids[(pid, STRONG)]))
    for prefs in (lab.labels(), scoring.pairwise(runs, judge="fair", lab=lab, progress=False)):
        prefs = _csv(prefs) if saved else prefs
        with pytest.raises(InputError, match="without against=.*pass reference='<model>'"):
            _evaluate(runs, prefs)
        assert prefs["against"].isna().all()


def _cut_frame(lab, runs, **kw):
    prefs = scoring.pairwise(runs, judge="cutter", lab=lab, max_tokens=MAX_TOKENS, progress=False, **kw)
    logged = lab.runs(model="cutter")
    cut = logged[logged["finish_reason"] == "length"]["response_text"]
    assert len(cut) == N and cut.nunique() == 1
    return prefs, cut.iloc[0]


@pytest.mark.parametrize(("against", "cut_game"), [(None, 2), (STRONG, 1)],
                         ids=["cut in game 2", "cut in game 1"])
def test_a_cut_judge_reply_is_unknown_and_its_text_stays_visible(lab, runs, against, cut_game):
    # game 1 shows model_a first: the good answer is first in game 1 when the strong model is model_a
    prefs, cut_text = _cut_frame(lab, runs, against=against)
    assert cut_text == " ".join(LONG.split(" ")[:MAX_TOKENS])                  # recorded as the endpoint cut it
    whole = 3 - cut_game
    assert prefs["winner"].isna().all() and prefs[f"verdict_{cut_game}"].isna().all()
    assert (prefs[f"verdict_{whole}"] == "B").all()
    assert (prefs[f"reply_{cut_game}"] == cut_text).all()                       # not None: the judge's own words
    assert (prefs[f"reply_{whole}"] == "B is right. [[B]]").all()
    assert (prefs["reason"] == f"unknown: game {cut_game}: judge reply cut off (finish_reason=length)").all()
    back = _csv(prefs)
    assert (back[f"reply_{cut_game}"] == cut_text).all() and back["winner"].isna().all()
