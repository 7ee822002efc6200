"""Pairwise judging through a real Lab against the fake endpoint: position swap, unknowns, cost gate."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import InputError, Lab, routing, scoring

# A fair judge reads the two answers it is shown: the one saying GOOD wins; both or neither: a tie.
_SHOWN = (r"Assistant A's Answer\]\n{}[^\[]*\[The End of Assistant A's Answer\]\s*"
          r"\[The Start of Assistant B's Answer\]\n{}")
_A_GOOD, _B_GOOD = _SHOWN.format("GOOD", "bad"), _SHOWN.format("bad", "GOOD")
JUDGES = {
    "fair": ModelSpec(replies=[[_A_GOOD, "1. A is right.\n2. B is wrong.\n[[A]]"],
                               [_B_GOOD, "B gives the right answer, A does not. [[B]]"]],
                      text="Both are equally good. [[C]]", prompt_tokens=300, completion_tokens=20),
    "first": ModelSpec(text="The first answer is better. [[A]]"),
    "garbage": ModelSpec(text="I cannot compare these answers."),
    "down": ModelSpec(status=503),
}
ANSWERS = {"alpha": ModelSpec(text="GOOD answer"), "beta": ModelSpec(text="bad answer"),
           "gamma": ModelSpec(text="GOOD answer too")}


@pytest.fixture(scope="module")
def server():
    with FakeServer({**ANSWERS, **JUDGES}) as srv:
        yield srv


@pytest.fixture
def lab(server, tmp_path):
    prices = {"fair": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}}
    with Lab(base_url=server.base_url, db=tmp_path / "runs.sqlite", retries=0, prices=prices) as lab:
        yield lab


@pytest.fixture
def runs(lab):
    prompts = pd.DataFrame({"prompt_id": ["q1", "q2", "q3"], "prompt": ["Explain TCP.", "Summarise this.", "Why?"],
                            "expected": ["A handshake.", None, None]})
    return lab.sweep(prompts, models=["alpha", "beta", "gamma"], progress=False).df


def test_each_pair_is_judged_in_both_orders_and_recorded(lab, runs, server, capsys):
    server.reset()
    prefs = scoring.pairwise(runs, judge="fair", lab=lab, reference="expected")
    assert list(prefs.columns[:5]) == ["prompt_id", "model_a", "model_b", "winner", "consistent"]
    assert len(prefs) == 3 * 3 and len(server.requests_for("fair")) == 3 * 3 * 2
    by_pair = prefs.groupby(["model_a", "model_b"])["winner"].agg(set).to_dict()
    assert by_pair == {("alpha", "beta"): {"a"}, ("alpha", "gamma"): {"tie"}, ("beta", "gamma"): {"b"}}
    assert prefs["consistent"].all() and set(prefs["verdict_1"]) >= {"A", "B", "tie"}
    assert (prefs["source"] == "judge:fair").all()
    assert "pairwise: 9 pairs × 2 orders = 18 judge calls to fair" in capsys.readouterr().err
    logged = lab.runs(model="fair")
    assert len(logged) == 18 and (logged["task"] == "pairwise judge").all()
    shown = [r.body["messages"][1]["content"] for r in server.requests_for("fair")]
    assert sum("[The Start of Reference Answer]\nA handshake." in t for t in shown) == 6   # q1's 3 pairs × 2
    again = scoring.pairwise(runs, judge="fair", lab=lab, reference="expected", progress=False)
    assert len(server.requests_for("fair")) == 18                                        # answered from cache
    pd.testing.assert_frame_equal(again, prefs)


def test_swapping_the_model_order_mirrors_every_verdict(lab, runs):
    forward = scoring.pairwise(runs, judge="fair", lab=lab, models=["alpha", "beta", "gamma"], progress=False)
    backward = scoring.pairwise(runs, judge="fair", lab=lab, models=["gamma", "beta", "alpha"], progress=False)
    mirrored = backward.rename(columns={"model_a": "model_b", "model_b": "model_a",
                                        "verdict_1": "verdict_2", "verdict_2": "verdict_1",
                                        "reply_1": "reply_2", "reply_2": "reply_1"})
    mirrored["winner"] = mirrored["winner"].map({"a": "b", "b": "a", "tie": "tie"})
    key = ["prompt_id", "model_a", "model_b"]
    joined = forward.merge(mirrored, on=key, suffixes=("", "_m"))
    assert len(joined) == 9
    for column in ("winner", "consistent", "verdict_1", "verdict_2"):
        assert (joined[column] == joined[f"{column}_m"]).all(), column


def test_a_judge_that_always_prefers_the_first_answer_yields_ties(lab, runs):
    prefs = scoring.pairwise(runs, judge="first", lab=lab, progress=False)
    assert (prefs["winner"] == "tie").all() and not prefs["consistent"].any()
    assert prefs["reason"].str.contains("the two orders disagree").all()
    bias = scoring.agreement(prefs)
    assert bias.loc["first position wins", "estimate"] == 1.0
    assert bias.loc["consistent", "estimate"] == 0.0


def test_a_judge_returning_garbage_gives_all_verdicts_unknown_not_a_rating(lab, runs):
    with pytest.warns(RuntimeWarning, match="all verdicts unknown"):
        prefs = scoring.pairwise(runs, judge="garbage", lab=lab, progress=False)
    assert prefs["winner"].isna().all() and prefs["consistent"].isna().all()
    assert prefs["reason"].str.startswith("unknown: game 1: no verdict in the judge reply").all()
    with pytest.raises(InputError, match="all verdicts unknown"):
        scoring.ratings(prefs)


def test_a_failed_judge_call_is_unknown_and_never_a_loss(lab, runs):
    with pytest.warns(RuntimeWarning, match="all verdicts unknown"):
        down = scoring.pairwise(runs, judge="down", lab=lab, models=["alpha", "beta"], progress=False)
    assert down["winner"].isna().all()
    assert down["reason"].str.contains("judge call failed: InternalServerError").all()
    fair = scoring.pairwise(runs, judge="fair", lab=lab, progress=False)
    others = fair[(fair["model_a"] != "beta") & (fair["model_b"] != "beta")]
    mixed = pd.concat([others, down], ignore_index=True)                 # beta's games are all unknown
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        table = scoring.ratings(mixed, n_boot=50).table
    assert table.loc["beta", "losses"] == 0 and table.loc["beta", "games"] == 0
    assert np.isnan(table.loc["beta", "rating"]) and not table.loc["beta", "identifiable"]
    assert table.loc["beta", "unknown"] == 3 and table.loc["alpha", "unknown"] == 3


def _broken(runs, *cells):
    broken = runs.copy()
    for prompt, model in cells:
        at = (broken["prompt_id"] == prompt) & (broken["requested_model"] == model)
        broken.loc[at, ["status", "response_text"]] = ["error", None]
    return broken


def test_a_model_whose_call_failed_is_unknown_not_a_loss_and_the_judge_is_not_asked(lab, runs, server):
    # one 503 of alpha's provider says nothing of alpha's answers: no win for beta, no 0 in routing
    broken = _broken(runs, ("q2", "alpha"))
    server.reset()
    prefs = scoring.pairwise(broken, judge="first", lab=lab, models=["alpha", "beta"], progress=False)
    row = prefs.set_index("prompt_id").loc["q2"]
    assert row["winner"] is None and row["reason"].startswith("unknown: alpha's call failed (an error row)")
    assert "errors='loss'" in row["reason"] and prefs.attrs["errored"] == 1 and prefs.attrs["unknown"] == 1
    assert len(server.requests_for("first")) == 4            # q1 and q3 only, two orders each
    quality = routing.preference_quality(broken, prefs, reference="beta")
    at = (quality["prompt_id"] == "q2") & (quality["requested_model"] == "alpha")
    assert quality.loc[at, "preference"].isna().all()


def test_errors_loss_counts_a_failed_call_as_a_loss_and_two_failures_tie(lab, runs):
    broken = _broken(runs, ("q2", "alpha"), ("q3", "alpha"), ("q3", "beta"))
    prefs = scoring.pairwise(broken, judge="first", lab=lab, models=["alpha", "beta"], errors="loss",
                             progress=False).set_index("prompt_id")
    assert prefs.loc["q2", "winner"] == "b" and prefs.loc["q2", "reason"] == "alpha's call failed (an error row)"
    assert prefs.loc["q3", "winner"] == "tie"
    with pytest.raises(InputError, match="errors='lose'.*'unknown'.*'loss'"):
        scoring.pairwise(broken, judge="first", lab=lab, errors="lose", progress=False)


def test_only_failed_calls_do_not_blame_the_judge(lab, runs):
    broken = _broken(runs, *[(p, "alpha") for p in ("q1", "q2", "q3")])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)          # the judge was never asked: no warning about it
        prefs = scoring.pairwise(broken, judge="first", lab=lab, models=["alpha", "beta"], progress=False)
    assert prefs["winner"].isna().all() and prefs.attrs["errored"] == 3


def test_the_judges_own_rows_are_left_out_of_the_runs_and_said(lab, runs, capsys):
    scoring.pairwise(runs, judge="first", lab=lab, models=["alpha", "beta"], progress=False)
    whole = lab.runs()
    assert "first" in set(whole["requested_model"])           # the log holds the judge's rows
    prefs = scoring.pairwise(whole, judge="first", lab=lab, models=["alpha", "beta"])
    assert set(prefs["model_a"]) | set(prefs["model_b"]) == {"alpha", "beta"}
    assert prefs.attrs["judge_rows_left_out"] >= 6
    assert "judge row(s) of the runs left out (judge_rows=True keeps them)" in capsys.readouterr().err
    with pytest.raises(InputError, match="no answers of model 'first'"):
        scoring.pairwise(whole, judge="first", lab=lab, models=["alpha", "first"], progress=False)
    kept = scoring.pairwise(whole, judge="first", lab=lab, models=["alpha", "first"], judge_rows=True,
                            progress=False, max_calls=10_000)
    assert kept.attrs["judge_rows_left_out"] == 0 and len(kept) == 0   # kept, but no prompt in common


def test_large_sets_show_the_cost_and_wait_for_a_yes(lab, runs, server):
    server.reset()
    with pytest.raises(InputError, match=r"18 judge calls to fair.*≈ \$.* at most.*pass max_calls=18"):
        scoring.pairwise(runs, judge="fair", lab=lab, max_calls=10)
    assert server.requests_for("fair") == []
    prefs = scoring.pairwise(runs, judge="fair", lab=lab, against="beta", max_calls=12, progress=False)
    assert set(zip(prefs["model_a"], prefs["model_b"], strict=True)) == {("beta", "alpha"), ("beta", "gamma")}
    server.reset()                               # every call is cached now: max_calls still counts them
    with pytest.raises(InputError, match=r"12 judge calls to fair.*\(cached calls are free\).*pass max_calls=12"):
        scoring.pairwise(runs, judge="fair", lab=lab, against="beta", max_calls=11, progress=False)
    again = scoring.pairwise(runs, judge="fair", lab=lab, against="beta", max_calls=12, progress=False)
    assert server.requests_for("fair") == [] and again["winner"].tolist() == prefs["winner"].tolist()


def test_preference_frames_are_checked_with_one_line_errors(runs):
    good = pd.DataFrame({"prompt_id": ["q1"], "model_a": ["alpha"], "model_b": ["beta"], "winner": ["a"]})
    cases = {
        "not one of 'a', 'b', 'tie'": good.assign(winner="A"),
        "name a single model": good.assign(model_b="alpha"),
        "are empty": good.iloc[:0],
        "has no rows in the runs": good.assign(model_b="delta"),
        "not in the runs": good.assign(prompt_id="q9"),
        "lack column": good.drop(columns="winner"),
    }
    for message, frame in cases.items():
        with pytest.raises(InputError, match=message) as info:
            scoring.check_preferences(frame, runs=runs)
        assert "\n" not in str(info.value)
    assert scoring.check_preferences(good, runs=runs) is good
    for bad in (good.assign(winner="A"), good.iloc[:0], "prefs"):
        with pytest.raises(InputError):
            scoring.ratings(bad)


def test_bad_arguments_are_refused_before_any_call(lab, runs, server):
    server.reset()
    for kwargs, message in (({"models": ["alpha"]}, "at least two models"),
                            ({"models": ["alpha", "delta"]}, "no answers of model 'delta'"),
                            ({"reference": "nope"}, "no such column")):
        with pytest.raises(InputError, match=message):
            scoring.pairwise(runs, judge="fair", lab=lab, **kwargs)
    with pytest.raises(InputError, match="must be a DataFrame"):
        scoring.pairwise([1, 2], judge="fair", lab=lab)
    assert server.requests == []


def test_unknowns_are_never_counted_as_losses_in_ratings():
    rows = [("p1", "x", "y", "a"), ("p2", "x", "y", "b"), ("p3", "x", "y", "tie"), ("p4", "x", "y", None),
            ("p5", "x", "y", None)]
    prefs = pd.DataFrame(rows, columns=["prompt_id", "model_a", "model_b", "winner"])
    with pytest.warns(RuntimeWarning, match="2 unknown verdict"):
        r = scoring.ratings(prefs, n_boot=100)
    assert r.table.loc["x", "rating"] == pytest.approx(1000) and r.table.loc["y", "rating"] == pytest.approx(1000)
    assert (r.table["games"] == 3).all() and (r.table["unknown"] == 2).all()
    assert r.win_rate.loc["x", "y"] == pytest.approx(0.5)
    assert np.isfinite(r.table["ci_lo"]).all()


def test_the_judge_sees_the_whole_conversation_and_system_prompt_not_only_the_last_message(lab, server):
    convo = [{"role": "system", "content": "Answer as a pirate."}, {"role": "user", "content": "Name a sea."},
             {"role": "assistant", "content": "The Caribbean, arr."}, {"role": "user", "content": "Another?"}]
    runs = lab.sweep(pd.DataFrame({"prompt_id": ["c1"], "messages": [convo]}), models=["alpha", "beta"],
                     progress=False).df
    server.reset()
    scoring.pairwise(runs, judge="first", lab=lab, progress=False)
    shown = server.requests_for("first")[0].body["messages"][1]["content"]
    question = shown.split("[The Start of Assistant A's Answer]")[0]
    for part in ("[System]\nAnswer as a pirate.", "[User]\nName a sea.", "[Assistant]\nThe Caribbean, arr.",
                 "[User]\nAnother?"):
        assert part in question
    single = lab.sweep(["Explain UDP."], models=["alpha", "beta"], progress=False).df
    server.reset()
    scoring.pairwise(single, judge="first", lab=lab, progress=False)
    shown = server.requests_for("first")[0].body["messages"][1]["content"]
    assert "[User Question]\nExplain UDP.\n" in shown and "[User]" not in shown   # one message: as before


def test_the_pointwise_judge_sees_the_conversation_as_the_pairwise_judge_does(lab, server):
    convo = [{"role": "system", "content": "Answer as a pirate."}, {"role": "user", "content": "Name a sea."},
             {"role": "assistant", "content": "The Caribbean, arr."}, {"role": "user", "content": "Another?"}]
    runs = lab.sweep(pd.DataFrame({"prompt_id": ["c2"], "messages": [convo]}), models=["alpha"], progress=False).df
    server.reset()
    scoring.score(runs, scoring.judge(model="first", lab=lab))
    shown = server.requests_for("first")[0].body["messages"][0]["content"]
    question = shown.split("[The Start of Assistant's Answer]")[0]
    for part in ("[System]\nAnswer as a pirate.", "[User]\nName a sea.", "[Assistant]\nThe Caribbean, arr.",
                 "[User]\nAnother?"):
        assert part in question
