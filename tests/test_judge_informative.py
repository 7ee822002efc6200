"""A preference source that carries no information certifies nothing (review 22, F0).

A judge that always says "[[A]]" ties every pair under the position swap, one that always says
"[[C]]" ties every pair consistently, one that answers at random agrees with itself as often as
chance; with "a tie is as good as the reference" each would make a useless cheap model look as good
as the strong one. The evidence rule (analysis/_evidence.py) refuses them; a judge that reads the
answers still certifies.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import Lab, routing, scoring
from llmlab.analysis._evidence import EVIDENCE_RULE, judge_evidence
from llmlab.analysis._pairwise import combine_games

N = 60
BAD = {f"Explain topic {k}.": "bad answer" for k in range(N) if k % 10 == 0}   # weak fails 6 of 60
_SHOWN = (r"Assistant A's Answer\]\n{}[^\[]*\[The End of Assistant A's Answer\]\s*"
          r"\[The Start of Assistant B's Answer\]\n{}")
JUDGES = {
    "fair": ModelSpec(replies=[[_SHOWN.format("GOOD", "bad"), "A is right. [[A]]"],
                               [_SHOWN.format("bad", "GOOD"), "B is right. [[B]]"]], text="Both fine. [[C]]"),
    "first": ModelSpec(text="Assistant A is better. [[A]]"),
    "second": ModelSpec(text="Assistant B is better. [[B]]"),
    "tie": ModelSpec(text="Both are fine. [[C]]"),
}
PRICES = {"weak": {"input_cost_per_token": 1e-7, "output_cost_per_token": 1e-7},
          "strong": {"input_cost_per_token": 1e-5, "output_cost_per_token": 1e-5}}


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    """{judge: (runs, prefs, warnings)} — one sweep, each judge against the strong model."""
    models = {"weak": ModelSpec(text="GOOD answer", answers_by_prompt=BAD), "strong": ModelSpec(text="GOOD answer"),
              **JUDGES}
    out = {}
    with FakeServer(models) as srv, Lab(base_url=srv.base_url, db=tmp_path_factory.mktemp("j") / "r.sqlite",
                                        retries=0, prices=PRICES) as lab:
        runs = lab.sweep([f"Explain topic {k}." for k in range(N)], models=["weak", "strong"], progress=False).df
        for judge in JUDGES:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                prefs = scoring.pairwise(runs, judge=judge, lab=lab, against="strong", progress=False)
            out[judge] = (runs, prefs, [str(w.message) for w in caught])
    return out


@pytest.mark.parametrize("judge", ["first", "second", "tie"])
def test_a_blind_judge_is_said_to_carry_no_information_and_certifies_nothing(judged, judge):
    runs, prefs, said = judged[judge]
    assert (prefs["winner"] == "tie").all()                        # the rules, unchanged
    evidence = prefs.attrs["evidence"]
    assert not evidence["informative"] and "all 60 known verdicts are ties" in evidence["why"]
    assert evidence["position_bias_pct"] == (0 if judge == "tie" else 100)
    assert any("carries no information" in s for s in said)
    with pytest.warns(RuntimeWarning, match="carry no information"):
        report = routing.evaluate(runs, [routing.Always("weak")], preferences=prefs, n_boot=300)
    assert report.table.loc["always(weak)", "quality"] == 1.0     # the ties, as measured ...
    assert not report.evidence["informative"] and "uninformative" in report.caption
    with pytest.warns(RuntimeWarning, match="no claim is certified"):
        claim = report.claim(min_savings_pct=40, max_quality_loss=0.05)
    row = claim.loc["always(weak)"]                               # ... but no verdict on them
    assert row["verdict"] == "not enough data" and row["why"].startswith("judge uninformative: all 60")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rec = routing.recommend(runs.assign(task="chat"), preferences=prefs, n_boot=200, learned=False)
        r = scoring.ratings(prefs, n_boot=50)
    assert not rec.claim_holds and rec.policy.needs() == ["strong"] and "carry no information" in rec.why
    assert r.table["ci_lo"].isna().all() and "carry no information" in r.caption


def test_a_judge_that_reads_the_answers_still_certifies(judged):
    runs, prefs, said = judged["fair"]
    assert prefs["winner"].value_counts().to_dict() == {"tie": 54, "a": 6}
    evidence = prefs.attrs["evidence"]
    assert evidence["informative"] and evidence["consistent_pct"] == 100 and evidence["order_z"] > 1.645
    assert not any("no information" in s for s in said)
    report = routing.evaluate(runs, [routing.Always("weak")], preferences=prefs, n_boot=1000)
    claim = report.claim(min_savings_pct=40, max_quality_loss=0.25)
    assert report.table.loc["always(weak)", "quality"] == pytest.approx(0.9)
    assert claim.loc["always(weak)", "verdict"] == "holds"
    assert report.claim(min_savings_pct=40, max_quality_loss=0.01).loc["always(weak)", "verdict"] == "does not hold"


def _frame(games, n=N):
    """A judge frame from (game 1 verdict, game 2 verdict) per pair: model_a shown first in game 1."""
    rows = [{"prompt_id": f"q{k:03d}", "model_a": "strong", "model_b": "weak",
             **combine_games(f"[[{one}]]", f"[[{two}]]")} for k, (one, two) in enumerate(games(n))]
    return pd.DataFrame(rows)


def _runs(n=N):
    return pd.DataFrame([{"id": 2 * k + j + 1, "prompt_id": f"q{k:03d}", "prompt": f"topic {k}", "task": "chat",
                          "requested_model": m, "status": "ok", "response_text": f"{m} says", "repeat": 0,
                          "attempt": 1, "request_id": f"r{k}{m}", "cost_usd": c, "latency_s": 0.5}
                         for k in range(n) for j, (m, c) in enumerate((("weak", 1e-5), ("strong", 1e-3)))])


@pytest.mark.parametrize("letters", ["AB", "ABC", "AAAB", "CCCA"])
def test_random_judges_rarely_pass_the_screen_and_never_certify(letters):
    passed, runs = 0, _runs()
    for seed in range(200):
        verdicts = np.random.default_rng(seed).choice(list(letters), size=(N, 2)).tolist()
        prefs = _frame(lambda n, v=verdicts: v)
        passed += judge_evidence(prefs)["informative"]
        if seed < 25:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                claim = routing.evaluate(runs, [routing.Always("weak")], preferences=prefs, reference="strong",
                                         n_boot=300, seed=seed).claim(max_quality_loss=0.05)
            assert claim.loc["always(weak)", "verdict"] != "holds"
    assert passed <= 0.1 * 200                                     # a one-sided 5 % test: about 10 of 200


@pytest.mark.parametrize(("games", "informative"), [
    (lambda n: [("B", "A")] * n, True),                            # weak always loses, in both orders
    (lambda n: [("A", "B")] * (n // 2) + [("B", "A")] * (n - n // 2), True),
    (lambda n: [("B", "A") if k % 5 else ("A", "A") for k in range(n)], True),   # 20 % position bias
    (lambda n: [("C", "C") if k % 20 else ("A", "B") for k in range(n)], True),  # mostly ties, 3 decisive
    (lambda n: [("A", "A")] * n, False), (lambda n: [("B", "B")] * n, False), (lambda n: [("C", "C")] * n, False),
    (lambda n: [("A", "C"), ("C", "A")] * (n // 2), False),
    (lambda n: [("C", "C") if k % 6 else ("A", "C") for k in range(n)], False),   # ties and one-order wins
])
def test_the_rule_on_shapes_of_verdicts(games, informative):
    evidence = judge_evidence(_frame(games))
    assert evidence["informative"] is informative, evidence["why"]
    assert bool(evidence["why"]) is not informative


def test_single_vote_labels_are_informative_unless_all_ties_and_the_rule_is_stated():
    labels = pd.DataFrame({"prompt_id": ["q1", "q2", "q3"], "model_a": "x", "model_b": "y",
                           "winner": ["a", "tie", None]})
    assert judge_evidence(labels)["informative"] and judge_evidence(labels)["two_orders"] == 0
    ties = labels.assign(winner=["tie", "tie", None])
    assert "all 2 known verdicts are ties" in judge_evidence(ties)["why"]
    assert "no verdict is known" in judge_evidence(labels.assign(winner=None))["why"]
    assert "1.645" in EVIDENCE_RULE and "position alone" in EVIDENCE_RULE


def test_the_judges_own_rows_are_no_candidates_anywhere(tmp_path):
    """lab.runs() holds the judge's calls next to the answers (review 22, F7): pairwise, pointwise
    scoring, summary and routing all leave them out by the one rule (task 'judge'/'pairwise judge')."""
    models = {"weak": ModelSpec(text="GOOD answer", answers_by_prompt=BAD), "strong": ModelSpec(text="GOOD answer"),
              "fair": JUDGES["fair"], "grader": ModelSpec(text="Rating: [[7]]")}
    with FakeServer(models) as srv, Lab(base_url=srv.base_url, db=tmp_path / "r.sqlite", retries=0,
                                        prices=PRICES) as lab:
        lab.sweep([f"Explain topic {k}." for k in range(N)], models=["weak", "strong"], progress=False)
        prefs = scoring.pairwise(lab.runs(), judge="fair", lab=lab, against="strong", progress=False)
        everything = lab.runs()
        assert (everything["task"] == "pairwise judge").sum() == 2 * N
        report = routing.evaluate(everything, [routing.Always("weak")], preferences=prefs, n_boot=100)
        assert report.n_prompts == N and set(report.models.index) == {"always(weak)", "always(strong)"}
        before = len(lab.runs())
        scored = scoring.score(everything, scoring.judge(model="grader", lab=lab))
        assert len(lab.runs()) - before == 2 * N                        # the answers judged, not the judge's rows
        assert scored.attrs["score_judge_rows_left_out"] == 2 * N and scored.attrs["score_unknown"] == 0
        assert scored.loc[scored["task"] == "pairwise judge", "score_reason"].str.contains("not scored").all()
        again = lab.runs()
        assert set(scoring.summary(scoring.score(again, scoring.regex("GOOD"))).index) == {"weak", "strong"}
        assert routing.evaluate(scoring.score(again, scoring.regex("GOOD")), [routing.Always("weak")],
                                n_boot=0).n_prompts == N
