"""An order-dependent verdict is no evidence of "as good" for a routing claim (review 22b, G0b).

A judge that reads the answers on 30 % of the pairs and says "[[A]]" otherwise passes the screen
(its reads make its two orders agree more often than chance), yet under "inconsistent = tie" and
"tie = as good" the cheap model's losses shrink ×0.3: the claim held at a true loss of 0.09 with a
margin of 0.05, and recommend sent everything to the cheap model. Now a claim on preferences is
certified only if it holds with the order-dependent pairs as ties *and* as losses (both reported),
a position bias above 20 % is warned about, and recommend checks the pick on both readings.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from test_judge_informative import _frame, _runs

from llmlab import InputError, routing
from llmlab.routing._matrix import build_matrix


def _partly_blind(n: int, reads: float, worse: float, seed: int = 0):
    """Per pair: the judge reads the answers with probability ``reads`` (strong wins where weak is
    worse, else a tie, in both orders); otherwise it says [[A]] in both games (position)."""
    rng = np.random.default_rng(seed)
    bad, read = rng.random(n) < worse, rng.random(n) < reads
    games = [("A", "B") if (r and w) else ("C", "C") if r else ("A", "A") for r, w in zip(read, bad, strict=True)]
    return _frame(lambda k: games, n=n), _runs(n), float(bad.mean())


def test_a_partly_position_driven_judge_certifies_nothing_and_is_warned_about():
    prefs, runs, truth = _partly_blind(600, reads=0.30, worse=0.10)
    assert truth == pytest.approx(0.09, abs=0.01)
    with pytest.warns(RuntimeWarning, match=r"two orders disagree on 70 % of the pairs \(position bias above 20 %"):
        report = routing.evaluate(runs, [routing.Always("weak")], preferences=prefs, reference="strong", n_boot=1000)
    assert report.evidence["informative"]                     # it passes the screen, as before
    assert report.table.loc["always(weak)", "quality_diff"] == pytest.approx(-0.018, abs=0.002)   # the ties
    assert report.worst_order is not None and "order-dependent pairs" in report.caption
    claim = report.claim(min_savings_pct=40, max_quality_loss=0.05)
    row = claim.loc["always(weak)"]
    assert row["verdict"] == "not enough data" and row["verdict_worst_order"] == "does not hold"
    assert row["quality_diff_worst_order"] < -0.5 and "417 order-dependent pairs" in row["why"]
    assert "certified only if it also holds" in claim.attrs["claim"]


def test_recommend_does_not_send_everything_to_the_cheap_model_on_such_a_judge():
    prefs, runs, _ = _partly_blind(600, reads=0.30, worse=0.10)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = routing.recommend(runs, preferences=prefs, reference="strong", max_quality_loss=0.05, n_boot=300,
                                learned=False)
    assert any("position bias above 20 %" in str(w.message) for w in caught)
    assert rec.policy.needs() == ["strong"] and not rec.claim_holds
    assert "order-dependent pairs" in rec.why and "position bias" in rec.why
    assert (rec.policies["quality_diff_worst_order"].drop(["oracle"], errors="ignore") < -0.5).any()


def test_a_judge_with_little_position_bias_still_certifies_on_both_readings():
    # reads 92 % of the pairs (weak never worse: ties), position on the rest
    prefs, runs, _ = _partly_blind(400, reads=0.92, worse=0.0, seed=3)
    prefs.loc[:9, ["verdict_1", "verdict_2", "winner", "consistent"]] = ["B", "A", "b", True]   # some weak wins
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = routing.evaluate(runs, [routing.Always("weak")], preferences=prefs, reference="strong", n_boot=1000)
    assert not any("position bias" in str(w.message) for w in caught)       # below 20 %: no warning
    bias = report.evidence["position_bias_pct"]
    assert 0 < bias < 20
    claim = report.claim(min_savings_pct=40, max_quality_loss=0.2)
    row = claim.loc["always(weak)"]
    assert row["verdict"] == "holds" and row["verdict_worst_order"] == "holds"
    assert row["quality_diff_worst_order"] == pytest.approx(-bias / 100, abs=0.01)


def test_the_worse_order_reading_of_each_pair():
    # game 1 shows strong (model_a) first, game 2 weak first
    games = [("A", "A"),     # strong wins shown first, weak wins shown first: position → loss
             ("tie", "A"),   # tie, then weak (shown first) wins: strong won in neither order → good
             ("A", "tie"),   # strong wins, then tie: a loss in its worse order
             ("B", "A"),     # weak wins in both: consistent, good
             ("A", "B"),     # strong in both: a loss on both readings
             ("C", "C")]     # a consistent tie: good
    prefs = _frame(lambda n: games, n=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = routing.preference_quality(_runs(6), prefs, reference="strong")
    weak = out[out["requested_model"] == "weak"].set_index("prompt_id")
    assert weak["preference"].tolist() == [1.0, 1.0, 1.0, 1.0, 0.0, 1.0]
    assert weak["preference_worst_order"].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    assert out.attrs["preference_order_dependent"] == 2
    # a router never reads either reading
    mx = build_matrix(out, "preference_worst_order", None, None, None, count_retries=True)
    for column in ("preference", "preference_worst_order", "preference_reason"):
        with pytest.raises(InputError, match="not known before a model answers"):
            mx.prompt_values(column)


def test_labels_without_two_orders_have_one_reading():
    labels = pd.DataFrame({"prompt_id": [f"q{k:03d}" for k in range(40)], "model_a": "strong", "model_b": "weak",
                           "winner": ["tie"] * 36 + ["a"] * 4, "source": "human:ann"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        report = routing.evaluate(_runs(40), [routing.Always("weak")], preferences=labels, reference="strong",
                                  n_boot=200)
    assert report.worst_order is None
    assert "verdict_worst_order" not in report.claim(max_quality_loss=0.2).columns
