"""Agreement states what it leaves out, and its intervals never claim more than the sample shows.

* A judge unknown on 12 of 40 pairs, all where the human said "b", agreed 28 of 28 known: the old
  table said 1.0 [0.88, 1.0] and nothing else. Every form of it here — which side is unknown, on
  which verdict of the other, either orientation of the pair, every spelling of "unknown", several
  pairs of models, the judge against itself — states the unknowns (``unknown``), the share with
  them as disagreements (``as_disagreement``: 28 / 40 = 0.70) and warns when they lean.
* Cohen's kappa of 8 agreeing labels had the bootstrap's interval [1, 1]; it is floored by the
  agreement share's Wilson interval mapped through kappa.
* ``first position wins`` counts the two games of a pair, one judge on the same two answers: its
  interval is the one of the pairs, not of twice as many independent games.
"""
from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest

from llmlab import scoring
from llmlab.base._intervals import wilson

UNKNOWN_SPELLINGS = [None, np.nan, pd.NA]
FLIP = {"a": "b", "b": "a", "tie": "tie"}


def _frame(winners, models=("x", "y"), flip=False, source=None) -> pd.DataFrame:
    a, b = models[::-1] if flip else models
    rows = {"prompt_id": [f"q{k}" for k in range(len(winners))], "model_a": a, "model_b": b,
            "winner": [FLIP.get(w, w) if flip and isinstance(w, str) else w for w in winners]}
    frame = pd.DataFrame(rows)
    return frame.assign(source=source) if source else frame


def _agreement(*frames, **options):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = scoring.agreement(*frames, n_boot=options.pop("n_boot", 200), **options)
    return table, [str(w.message) for w in caught if str(w.message).startswith("agreement:")]


# (the verdict of the other side the unknowns sit on, the other verdicts)
LEANS = [("b", "a"), ("a", "b"), ("tie", "a"), ("tie", "b"), ("a", "tie")]


@pytest.mark.parametrize("on, rest, unknown_side, flip",
                         [(on, rest, side, flip) for (on, rest), side, flip
                          in itertools.product(LEANS, ("first", "second"), (False, True))])
def test_unknowns_on_one_verdict_of_the_other_side_are_stated_bounded_and_warned(on, rest, unknown_side, flip):
    told = [rest] * 20 + [on] * 20
    for spelling in UNKNOWN_SPELLINGS:
        hidden = [*told[:28], *[spelling] * 12]      # unknown on 12 of the 20 `on`
        judge, human = _frame(hidden, flip=flip, source="judge:j"), _frame(told, source="human:me")
        frames = (judge, human) if unknown_side == "first" else (human, judge)
        table, warned = _agreement(*frames)
        row = table.loc["agreement (with ties)"]
        assert (row["estimate"], row["n"], row["unknown"]) == (1.0, 28, 12)
        assert row["as_disagreement"] == pytest.approx(28 / 40)
        assert row["as_disagreement_lo"] == pytest.approx(float(wilson(28, 40)[0]), abs=0.05)
        assert row["as_disagreement_lo"] < row["ci_lo"]
        assert table.loc["cohen_kappa", "unknown"] == 12
        assert len(warned) == 1, warned
        side = "the first preferences" if unknown_side == "first" else "the second preferences"
        assert f"unknown verdicts of {side} are not missing at random" in warned[0]
        assert ("12 of 20 tied" if on == "tie" else f"12 of 20 given to {'x' if on == 'a' else 'y'}") in warned[0]
        assert "counted as disagreements, agreement (with ties) is 0.70" in warned[0]


def test_without_ties_counts_the_unknowns_that_could_have_counted():
    # the human's ties are out of "without ties" whatever the judge said; the unknowns on its "b" are in
    human = ["a"] * 10 + ["tie"] * 10 + ["b"] * 10
    judge = ["a"] * 10 + [None] * 5 + ["tie"] * 5 + [None] * 4 + ["b"] * 6
    table, _ = _agreement(_frame(judge), _frame(human))
    row = table.loc["agreement (without ties)"]
    assert (row["n"], row["unknown"], row["as_disagreement"]) == (16, 4, pytest.approx(16 / 20))
    both = table.loc["agreement (with ties)"]
    assert (both["n"], both["unknown"], both["as_disagreement"]) == (21, 9, pytest.approx(21 / 30))


@pytest.mark.parametrize("seed", range(3))
def test_unknowns_at_random_are_stated_but_not_warned_about(seed):
    rng = np.random.default_rng(seed)
    human = list(rng.choice(["a", "b", "tie"], size=60))
    judge = [None if k % 5 == 0 else w for k, w in enumerate(human)]      # every fifth pair, whatever it was
    table, warned = _agreement(_frame(judge), _frame(human))
    assert table.loc["agreement (with ties)", "unknown"] == 12 and not warned
    assert table.loc["agreement (with ties)", "as_disagreement"] == pytest.approx(48 / 60)


def test_several_pairs_of_models_group_the_unknowns_by_the_answer_preferred():
    rows, judged = [], []
    for k in range(30):
        for other in ("m1", "m2"):
            human = "a" if k % 2 else "b"           # ref preferred on odd prompts
            rows.append((f"p{k}", "ref", other, human))
            judged.append((f"p{k}", other, "ref", None if human == "a" and k < 20 else FLIP[human]))
    human = pd.DataFrame(rows, columns=["prompt_id", "model_a", "model_b", "winner"])
    judge = pd.DataFrame(judged, columns=["prompt_id", "model_a", "model_b", "winner"])
    table, warned = _agreement(judge, human)
    assert table.loc["agreement (with ties)", "unknown"] == 20 and len(warned) == 1
    assert "20 of 30 given to ref" in warned[0]


@pytest.mark.parametrize("lost", ["verdict_1", "verdict_2"])
def test_a_judge_against_itself_states_the_orders_left_unknown(lost):
    # one order fails exactly where the other order preferred y (model_b)
    n = 40
    v1 = ["A"] * 20 + ["B"] * 20
    v2 = ["B"] * 20 + ["A"] * 20
    orders = {"verdict_1": v1, "verdict_2": v2}
    orders[lost] = [v if k < 28 else None for k, v in enumerate(orders[lost])]
    prefs = pd.DataFrame({"prompt_id": [f"q{k}" for k in range(n)], "model_a": "x", "model_b": "y",
                          "winner": ["a"] * 20 + ["b"] * 8 + [None] * 12, **orders})
    table, warned = _agreement(prefs)
    row = table.loc["consistent"]
    assert (row["estimate"], row["unknown"], row["as_disagreement"]) == (1.0, 12, pytest.approx(0.7))
    assert len(warned) == 1 and "12 of 20 given to y" in warned[0]


# ---------------------------------------------------------------- kappa: never zero width

def _symmetric_chance(one, other) -> float:
    """Kappa's chance agreement with each pair counted in both orientations: a side's decisive
    verdicts split evenly between a and b."""
    def shares(w):
        decisive = sum(v != "tie" for v in w) / len(w)
        return np.array([decisive / 2, decisive / 2, 1 - decisive])
    return float(shares(one) @ shares(other))


@pytest.mark.parametrize("n", [4, 6, 8, 12, 20, 40])
def test_kappa_of_perfect_agreement_is_floored_by_the_mapped_wilson_interval(n):
    spelled = {"a": "a", "b": "b", "t": "tie"}
    for labels in ("ab", "abt", "aab", "abtt"):
        winners = [spelled[labels[k % len(labels)]] for k in range(n)]
        table, _ = _agreement(_frame(winners), _frame(winners, flip=True))
        kappa = table.loc["cohen_kappa"]
        p_e = _symmetric_chance(winners, winners)
        floor = (float(wilson(n, n)[0]) - p_e) / (1 - p_e)
        assert kappa["estimate"] == 1.0 and kappa["ci_hi"] == 1.0, labels
        assert kappa["ci_lo"] == pytest.approx(max(floor, -1.0)), labels
        assert kappa["ci_lo"] < 1.0


def test_eight_agreeing_labels_give_kappa_about_0_35_not_a_certain_1():
    winners = ["a", "b"] * 4
    table, _ = _agreement(_frame(winners), _frame(winners))
    assert table.loc["cohen_kappa", "ci_lo"] == pytest.approx(0.351, abs=1e-3)


@pytest.mark.parametrize("seed", range(4))
def test_kappa_interval_is_never_narrower_than_the_mapped_share_interval(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(6, 60))
    one = list(rng.choice(["a", "b", "tie"], size=n))
    other = [w if rng.random() < 0.8 else rng.choice(["a", "b", "tie"]) for w in one]
    table, _ = _agreement(_frame(one), _frame(other))
    kappa = table.loc["cohen_kappa"]
    if np.isnan(kappa["estimate"]):
        return
    agree = sum(u == v for u, v in zip(one, other, strict=True))
    p_e = _symmetric_chance(one, other)
    lo, hi = (float(v) for v in wilson(agree, n))
    assert kappa["ci_lo"] <= max((lo - p_e) / (1 - p_e), -1.0) + 1e-12
    assert kappa["ci_hi"] >= (hi - p_e) / (1 - p_e) - 1e-12
    assert kappa["ci_lo"] < kappa["ci_hi"]


# ---------------------------------------------------------------- first position wins: clustered by pair

@pytest.mark.parametrize("pairs, first_wins", list(itertools.product([2, 5, 25], [0, 1, 2])))
def test_first_position_interval_counts_a_pair_once_not_its_two_games(pairs, first_wins):
    # first_wins: 0 — the judge picks the same answer in both orders (one game won by each position),
    # 1 — the answer shown first wins both games, 2 — the answer shown second wins both
    v1, v2 = {0: ("A", "B"), 1: ("A", "A"), 2: ("B", "B")}[first_wins]
    prefs = pd.DataFrame({"prompt_id": [f"q{k}" for k in range(pairs)], "model_a": "x", "model_b": "y",
                          "winner": "a" if first_wins == 0 else "tie", "verdict_1": v1, "verdict_2": v2})
    table, _ = _agreement(prefs)
    row = table.loc["first position wins"]
    share = {0: 0.5, 1: 1.0, 2: 0.0}[first_wins]
    lo, hi = (float(v) for v in wilson(share * pairs, pairs))
    assert row["n"] == 2 * pairs
    assert row["ci_lo"] <= lo + 1e-12 and row["ci_hi"] >= hi - 1e-12


def test_a_pair_with_one_decisive_game_counts_as_less_than_a_whole_pair_of_games():
    # 4 pairs: two with both games decisive (first wins both), two with one decisive game and a tie
    prefs = pd.DataFrame({"prompt_id": ["q1", "q2", "q3", "q4"], "model_a": "x", "model_b": "y",
                          "winner": "tie", "verdict_1": ["A", "A", "A", "tie"], "verdict_2": ["A", "A", "tie", "A"]})
    table, _ = _agreement(prefs)
    effective = 6 ** 2 / (2 ** 2 + 2 ** 2 + 1 + 1)          # Kish: (Σ m)² / Σ m²
    assert table.loc["first position wins", "ci_lo"] == pytest.approx(float(wilson(effective, effective)[0]))
