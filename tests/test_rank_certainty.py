"""Ratings' ``rank`` = 1 + the models *certainly* above it: certainty from evidence (disjoint
intervals of two rated models; the exact sign test over direct games where one has no interval;
chains of those), never from one game, never over models that are not linked, never across
components, <NA> for a model with no known verdict. Each case can fail both ways: the review's
cases where nothing is certain, and cases (30-0, 6-0, a chain) where something is."""
from __future__ import annotations

import warnings

import pandas as pd
import pytest

from llmlab import scoring


def _frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["prompt_id", "model_a", "model_b", "winner"])


def _sweep(a: str, b: str, n: int, tag: str) -> list[tuple]:
    return [(f"{tag}{k}", a, b, "a") for k in range(n)]


def _split(a: str, b: str, n: int, tag: str) -> list[tuple]:
    return [(f"{tag}{k}", a, b, "a" if k % 2 else "b") for k in range(n)]


def _ranks(rows, **kw) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = scoring.ratings(_frame(rows), n_boot=100, **kw).table
    return {m: (None if pd.isna(r) else int(r)) for m, r in table["rank"].items()}


def test_one_game_ranks_nobody():
    assert _ranks([("p1", "x", "y", "a")]) == {"x": 1, "y": 1}


def test_one_win_over_a_model_that_split_with_another_does_not_rank_the_other_below_it():
    # the review's case: x beat y once, y and z split 10-10; z never met x
    assert _ranks([("p0", "x", "y", "a")] + _split("y", "z", 20, "q")) == {"x": 1, "y": 1, "z": 1}


def test_thirty_nil_is_certain_but_says_nothing_of_a_model_never_met():
    ranks = _ranks(_sweep("x", "y", 30, "p") + _split("y", "z", 20, "q"))
    assert ranks == {"x": 1, "y": 2, "z": 1}          # x above y for certain; z not linked to x by certainty


def test_the_sign_test_boundary_at_the_documented_level():
    assert _ranks(_sweep("x", "y", 5, "p")) == {"x": 1, "y": 1}           # p = 0.0625 > 0.05
    assert _ranks(_sweep("x", "y", 6, "p")) == {"x": 1, "y": 2}           # p = 0.03125 ≤ 0.05
    assert _ranks(_sweep("x", "y", 6, "p"), level=0.99) == {"x": 1, "y": 1}
    assert _ranks(_sweep("x", "y", 8, "p"), level=0.99) == {"x": 1, "y": 2}  # p = 0.0078


def test_a_chain_of_certainties_is_certain_and_intervals_rank_rated_models():
    # x swept y 30-0 (no interval for x: sign test); y beat z 45-5 (both rated: disjoint intervals)
    rows = _sweep("x", "y", 30, "p") + [(f"q{k}", "y", "z", "a" if k < 45 else "b") for k in range(50)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = scoring.ratings(_frame(rows), n_boot=200).table
    assert table.loc["y", "ci_lo"] > table.loc["z", "ci_hi"]
    assert table["rank"].to_dict() == {"x": 1, "y": 2, "z": 3}
    # the same y–z games split: nothing certain between them, and so nothing between x and z
    rows = _sweep("x", "y", 30, "p") + _split("y", "z", 50, "q")
    assert _ranks(rows) == {"x": 1, "y": 2, "z": 1}


def test_components_are_never_ranked_against_each_other():
    rows = _sweep("x", "y", 30, "p") + _sweep("z", "w", 1, "q")
    assert _ranks(rows) == {"x": 1, "y": 2, "z": 1, "w": 1}


def test_a_model_with_no_known_verdict_has_no_rank_and_a_note_says_so():
    rows = [("p1", "x", "y", None), ("p2", "x", "y", "tie"), ("p3", "y", "z", None)] + _split("x", "y", 20, "q")
    with pytest.warns(RuntimeWarning, match=r"no known verdict for z: no rating and no rank \(<NA>\)"):
        table = scoring.ratings(_frame(rows), n_boot=50).table
    assert table["rank"].dtype == "Int64" and pd.isna(table.loc["z", "rank"])
    assert table.loc[["x", "y"], "rank"].tolist() == [1, 1]


def test_uninformative_verdicts_rank_nobody():
    rows = [(f"p{k}", "x", "y", "tie") for k in range(40)]
    assert _ranks(rows) == {"x": 1, "y": 1}
