"""Ratings do not certify an order the unknowns could reverse (review 22c, R1).

With unknown verdicts exactly on one model's bad answers (a judge failing there, or a model planting
a verdict), Bradley–Terry on the known verdicts alone ranked the truly equal weak model 1 and strong
2 with disjoint intervals, and ratings ran no unknown-lean check. Now an order between two rated
models is certified only if it also holds with their unknown verdicts counted against the higher
one (the claim's G5 rule): the intervals include that reading, the ranks follow, a warning says so;
and routing's unknown-lean check runs per pair of models.
"""
from __future__ import annotations

import warnings

import pandas as pd
import pytest

from llmlab import scoring
from llmlab.analysis._pairwise import combine_games


def _prefs(mode: str, n_bad: int = 15) -> pd.DataFrame:
    rows = []
    for k in range(60):
        if k < n_bad:        # weak truly worse: the judge fails on both orders, or reads only one
            g = (None, None) if mode == "both" else (None, "[[B]]")
        elif k < 30:
            g = ("[[B]]", "[[A]]")          # weak better, both orders
        else:
            g = ("[[C]]", "[[C]]")
        rows.append({"prompt_id": f"q{k:03d}", "model_a": "strong", "model_b": "weak", **combine_games(*g),
                     "source": "judge:j"})
    return pd.DataFrame(rows)


def _rate(prefs):
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        r = scoring.ratings(prefs, n_boot=200)
    return r, [str(w.message) for w in ws]


@pytest.mark.parametrize("mode", ["both", "half"])
def test_unknowns_on_one_models_bad_answers_certify_no_order(mode):
    r, said = _rate(_prefs(mode))
    t = r.table
    assert t.loc["weak", "rank"] == 1 and t.loc["strong", "rank"] == 1
    assert t.loc["weak", "ci_lo"] <= t.loc["strong", "ci_hi"]             # the intervals overlap
    assert any("weak above strong is not certified" in m and "15 unknown" in m for m in said)
    if mode == "half":      # the read orders all favour strong: routing's lean check, run by ratings
        assert any("not missing at random" in m and "15 favour strong" in m for m in said)


def test_an_order_that_survives_its_unknowns_stays_certified():
    rows = [{"prompt_id": f"q{k:03d}", "model_a": "strong", "model_b": "weak",
             **combine_games("[[A]]", "[[B]]"), "source": "judge:j"} for k in range(40)]
    rows += [{"prompt_id": f"u{k}", "model_a": "strong", "model_b": "weak", **combine_games(None, None),
              "source": "judge:j"} for k in range(2)]
    rows += [{"prompt_id": f"t{k}", "model_a": "strong", "model_b": "weak", **combine_games("[[C]]", "[[C]]"),
              "source": "judge:j"} for k in range(20)]
    rows += [{"prompt_id": f"w{k}", "model_a": "strong", "model_b": "weak", **combine_games("[[B]]", "[[A]]"),
              "source": "judge:j"} for k in range(5)]
    r, said = _rate(pd.DataFrame(rows))
    assert r.table.loc["strong", "rank"] == 1 and r.table.loc["weak", "rank"] == 2
    assert not any("not certified" in m or "not missing at random" in m for m in said)


def test_without_unknowns_nothing_changes():
    prefs = _prefs("both", n_bad=0)
    r, said = _rate(prefs)
    assert not any("not certified" in m for m in said)
    assert r.table.loc["weak", "rank"] == 1 and r.table.loc["strong", "rank"] == 2   # weak truly better here
