"""Review 22c G0c: a lazy judge that says [[C]] in both orders on what it did not read passes the
screen on its few decisive verdicts, and "tie = as good" would certify a true loss above the
margin. Above LAZY_TIE_PCT % consistent ties a claim must also hold with the ties as losses;
above TIES_WARN_PCT % a warning says so. A judge that reads the answers still certifies
(test_judge_informative, test_position_bias_claim)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from test_judge_informative import _frame, _runs

from llmlab import routing
from llmlab.routing._preferences import LAZY_TIE_PCT, TIES_WARN_PCT

N = 600


def _lazy(reads=0.10, seed=0):
    """p_tie_lazy: weak truly worse on ~9 %, better on ~9 %; the judge reads `reads` of the pairs, ties the rest."""
    rng = np.random.default_rng(seed)
    worse = rng.random(N) < 0.10
    better = (~worse) & (rng.random(N) < 0.10)
    read = rng.random(N) < reads
    games = [("A", "B") if (r and w) else ("B", "A") if (r and b) else ("C", "C")
             for r, w, b in zip(read, worse, better, strict=True)]
    return _frame(lambda n: games, n=N).assign(source="judge:j"), worse.mean()


def test_a_lazy_tie_judge_certifies_nothing_and_is_warned_about():
    prefs, true_loss = _lazy()
    assert true_loss > 0.05
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = routing.evaluate(_runs(N), [routing.Always("weak")], preferences=prefs, reference="strong",
                                  n_boot=500)
    said = [str(w.message) for w in caught]
    assert any("the judge ties 98 % of the pairs" in s and "with the ties as losses" in s for s in said)
    assert report.evidence["informative"]            # the screen alone passes it
    row = report.claim(min_savings_pct=40, max_quality_loss=0.05).loc["always(weak)"]
    assert row["quality_diff"] > -0.05                # as ties, it would hold
    assert row["verdict"] == "not enough data" and row["verdict_worst_order"] != "holds"
    assert "the judge's ties (98 %" in row["why"]


def test_recommend_keeps_the_reference_on_a_lazy_tie_judge():
    prefs, _ = _lazy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rec = routing.recommend(_runs(N), preferences=prefs, reference="strong", max_quality_loss=0.05)
    assert not rec.claim_holds and rec.policy.needs() == ["strong"]
    assert "ties" in rec.why


def test_between_the_two_thresholds_only_a_warning():
    # a judge reading 60 % of the pairs: ~85 % consistent ties — warned about, ties still "as good"
    prefs, _ = _lazy(reads=0.6, seed=1)
    ties = 100 * (prefs["winner"] == "tie").mean()
    assert TIES_WARN_PCT < ties < LAZY_TIE_PCT
    with pytest.warns(RuntimeWarning, match=r"the judge ties \d+ % of the pairs") as caught:
        runs = routing.preference_quality(_runs(N), prefs, reference="strong")
    assert not any("with the ties as losses" in str(w.message) for w in caught)
    assert not runs.attrs["preference_ties_as_losses"]


def test_labels_that_tie_a_lot_are_not_a_lazy_judge():
    prefs, _ = _lazy()
    labels = prefs.drop(columns=["verdict_1", "verdict_2", "consistent"]).assign(source="human:ann")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = routing.preference_quality(_runs(N), labels, reference="strong")
    assert not any("ties" in str(w.message) for w in caught)
    assert runs.attrs["preference_tie_pct"] is None and not runs.attrs["preference_ties_as_losses"]
