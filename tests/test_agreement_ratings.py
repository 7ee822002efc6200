"""Agreement statistics against an independent computation; Bradley–Terry ratings on tournaments
with known strengths, and on the cases that have no rating to invent."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from llmlab import InputError, scoring

MODELS = ["m0", "m1", "m2", "m3", "m4"]
STRENGTHS = np.array([200.0, 100.0, 0.0, -50.0, -250.0])     # Elo points


def _frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["prompt_id", "model_a", "model_b", "winner"])


def _random_labels(rng, n):
    pairs = [("x", "y"), ("x", "z"), ("y", "z")]
    rows = [(f"p{k // 3}", *pairs[k % 3]) for k in range(n)]
    return [r + (w,) for r, w in zip(rows, rng.choice(["a", "b", "tie"], size=n, p=[0.45, 0.35, 0.2]), strict=True)]


def test_agreement_matches_an_independent_computation():
    rng = np.random.default_rng(3)
    one = _random_labels(rng, 240)
    other = [r[:3] + ((r[3] if rng.random() < 0.6 else rng.choice(["a", "b", "tie"])),) for r in one]
    # the second source names the pairs the other way round: the match is by pair, not by order
    flipped = [(p, b, a, {"a": "b", "b": "a"}.get(w, w)) for p, a, b, w in other]
    table = scoring.agreement(_frame(one), _frame(flipped), n_boot=500)
    x, y = [r[3] for r in one], [r[3] for r in other]
    mirror = {"a": "b", "b": "a", "tie": "tie"}       # kappa counts each pair in both orientations
    assert table.loc["cohen_kappa", "estimate"] == pytest.approx(
        cohen_kappa_score(x + [mirror[u] for u in x], y + [mirror[v] for v in y]))
    assert table.loc["agreement (with ties)", "estimate"] == pytest.approx(np.mean(np.array(x) == np.array(y)))
    decisive = [(u, v) for u, v in zip(x, y, strict=True) if "tie" not in (u, v)]
    assert table.loc["agreement (without ties)", "estimate"] == pytest.approx(np.mean([u == v for u, v in decisive]))
    assert table.loc["agreement (without ties)", "n"] == len(decisive)
    for stat in table.index:
        row = table.loc[stat]
        assert row["ci_lo"] <= row["estimate"] <= row["ci_hi"]
    assert table.attrs["compared"] == 240


def test_agreement_drops_unknowns_on_either_side_and_says_so():
    a = _frame([("p1", "x", "y", "a"), ("p2", "x", "y", None), ("p3", "x", "y", "b"), ("p4", "x", "y", "tie")])
    b = _frame([("p1", "x", "y", "a"), ("p2", "x", "y", "b"), ("p3", "x", "y", None), ("p4", "x", "y", "tie")])
    table = scoring.agreement(a, b, n_boot=0)
    assert table.loc["agreement (with ties)", "estimate"] == 1.0 and table.loc["agreement (with ties)", "n"] == 2
    assert table.attrs["unknown_first"] == 1 and table.attrs["unknown_second"] == 1
    assert np.isnan(table.loc["cohen_kappa", "ci_lo"])                    # no bootstrap asked for


def test_kappa_is_nan_when_chance_agreement_is_certain_never_zero():
    same = _frame([(f"p{k}", "x", "y", "tie") for k in range(5)])   # "a" on both sides is p_e 0.5 (symmetrised)
    table = scoring.agreement(same, same, n_boot=100)
    assert table.loc["agreement (with ties)", "estimate"] == 1.0
    assert np.isnan(table.loc["cohen_kappa", "estimate"])


def test_agreement_refuses_what_it_cannot_compare():
    a = _frame([("p1", "x", "y", None)])
    with pytest.raises(InputError, match="no pair has a known winner on both sides"):
        scoring.agreement(a, a)
    with pytest.raises(InputError, match="one vote per pair"):
        scoring.agreement(_frame([("p1", "x", "y", "a")]).assign(verdict_1="A", verdict_2=None))
    with pytest.raises(InputError, match="n_boot"):
        scoring.agreement(a, a, n_boot=-1)


def test_position_bias_of_a_judge_from_its_two_orders():
    # game 1 shows model_a first, game 2 model_b first (verdicts by position)
    prefs = pd.DataFrame({"prompt_id": ["p1", "p2", "p3", "p4"], "model_a": "x", "model_b": "y",
                          "winner": ["a", "tie", "tie", "b"], "verdict_1": ["A", "A", "A", "B"],
                          "verdict_2": ["B", "A", "tie", "A"]})
    table = scoring.agreement(prefs, n_boot=200)
    assert table.loc["consistent", "estimate"] == 0.5          # p1 and p4 agree in both orders
    # decisive games: A, A, A, B (game 1) and B, A, A (game 2): 5 of 7 won by the answer shown first
    assert table.loc["first position wins", "estimate"] == pytest.approx(5 / 7)
    assert table.loc["first position wins", "n"] == 7


def _tournament(rng, n_prompts=60, ties=0.0):
    rows = []
    for p in range(n_prompts):
        for a in range(5):
            for b in range(a + 1, 5):
                p_a = 1 / (1 + 10 ** ((STRENGTHS[b] - STRENGTHS[a]) / 400))
                winner = "tie" if rng.random() < ties else ("a" if rng.random() < p_a else "b")
                rows.append((f"p{p}", MODELS[a], MODELS[b], winner))
    return _frame(rows)


def test_ratings_reproduce_a_known_order():
    r = scoring.ratings(_tournament(np.random.default_rng(0), n_prompts=120, ties=0.1), n_boot=200)
    assert list(r.table.index) == MODELS
    assert r.table["identifiable"].all() and (r.table["component"] == 0).all()
    assert r.table["rating"].mean() == pytest.approx(1000)
    assert r.table.loc["m0", "rank"] == 1 and r.table.loc["m4", "rank"] == 5
    assert r.win_rate.loc["m0", "m4"] > 0.7 and np.isnan(r.win_rate.loc["m0", "m0"])
    assert (r.games.loc["m0", "m1"], r.games.to_numpy().trace()) == (120, 0)
    fig = r.plot()
    assert fig.axes[0].get_title().startswith("Bradley–Terry")


def test_rating_intervals_cover_the_truth_at_about_the_nominal_rate():
    truth = STRENGTHS - STRENGTHS.mean() + 1000
    covered = []
    for rep in range(40):
        table = scoring.ratings(_tournament(np.random.default_rng(100 + rep)), n_boot=150, seed=rep).table
        table = table.loc[MODELS]
        covered.append(((table["ci_lo"] <= truth) & (truth <= table["ci_hi"])).to_numpy())
    rate = np.mean(covered)
    print(f"\n95 % rating intervals covered the true strength in {rate:.1%} of {np.size(covered)} cases")
    assert 0.88 <= rate <= 1.0


def test_a_single_pair_gets_its_gap_and_a_wide_interval():
    prefs = _frame([("p1", "x", "y", "a"), ("p2", "x", "y", "a"), ("p3", "x", "y", "a"), ("p4", "x", "y", "b")])
    table = scoring.ratings(prefs, n_boot=300).table
    gap = table.loc["x", "rating"] - table.loc["y", "rating"]
    assert gap == pytest.approx(400 * np.log10(3), abs=0.5)
    assert table.loc["x", "ci_hi"] - table.loc["x", "ci_lo"] > 300               # four games say little
    assert (table["rank"] == 1).all()                                             # not separated


def test_all_ties_give_equal_ratings_and_no_interval_never_a_certain_equality():
    # every verdict a tie is what a judge that always says [[C]] (or always [[A]]: the position swap
    # ties every pair) gives: equal ratings with an interval would certify "equal" on no evidence
    for n in (3, 60):
        prefs = _frame([(f"p{k}", *("x", "y", "z", "x")[k % 3:k % 3 + 2], "tie") for k in range(n)])
        with pytest.warns(RuntimeWarning, match=f"carry no information .*all {n} known verdicts are ties"):
            r = scoring.ratings(prefs, n_boot=100)
        assert r.table["rating"].to_numpy() == pytest.approx([1000, 1000, 1000])
        assert r.table["ci_lo"].isna().all() and r.table["ci_hi"].isna().all()
        assert "carry no information" in r.caption


def test_a_clean_sweep_has_no_finite_rating_and_says_so():
    prefs = _frame([("p1", "x", "y", "a"), ("p2", "x", "y", "a"), ("p3", "x", "y", "a")])
    with pytest.warns(RuntimeWarning, match="no finite rating for x, y"):
        r = scoring.ratings(prefs, n_boot=50)
    assert not r.table["identifiable"].any() and r.table["ci_lo"].isna().all()
    assert r.table.index[0] == "x"                                                # the ordering is still shown
    assert "no finite rating" in r.caption


def test_models_that_never_met_are_rated_within_their_own_group():
    prefs = _frame([("p1", "a", "b", "a"), ("p2", "a", "b", "b"), ("p3", "c", "d", "a"), ("p4", "c", "d", "b"),
                    ("p5", "c", "d", "a")])
    with pytest.warns(RuntimeWarning, match="never met"):
        table = scoring.ratings(prefs, n_boot=50).table
    assert table.loc["a", "component"] != table.loc["c", "component"]
    assert table.loc[["a", "b"], "rating"].mean() == pytest.approx(1000)
    assert table.loc[["c", "d"], "rating"].mean() == pytest.approx(1000)


def test_an_anchor_sets_the_scale():
    prefs = _tournament(np.random.default_rng(1), n_prompts=40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = scoring.ratings(prefs, n_boot=50, anchor="m2").table
    assert table.loc["m2", "rating"] == pytest.approx(1000)
    assert table.loc["m2", "ci_lo"] == pytest.approx(1000) and table.loc["m2", "ci_hi"] == pytest.approx(1000)
    with pytest.raises(InputError, match="anchor 'zz'"):
        scoring.ratings(prefs, anchor="zz")


def test_one_model_that_lost_every_game_is_set_aside_and_the_others_keep_their_ratings():
    prefs = _tournament(np.random.default_rng(3), n_prompts=40)
    before = scoring.ratings(prefs, n_boot=100).table
    dud = _frame([(f"d{k}", "m2", "dud", "a") for k in range(10)])
    with pytest.warns(RuntimeWarning, match=r"no finite rating for dud: .*dud lost every game") as caught:
        after = scoring.ratings(pd.concat([prefs, dud], ignore_index=True), n_boot=100).table
    assert not any("m0" in str(w.message) for w in caught)             # only the dud is blamed
    assert after.loc[MODELS, "identifiable"].all()
    assert after.loc[MODELS, "rating"].to_numpy() == pytest.approx(before.loc[MODELS, "rating"].to_numpy(), abs=1e-6)
    assert after.loc[MODELS, "rank"].tolist() == before.loc[MODELS, "rank"].tolist()
    assert np.isnan(after.loc["dud", ["rating", "ci_lo", "ci_hi"]].astype(float)).all()   # unknown, not invented
    # the dud met only m2 (10-0: certain by the sign test); above it for certain: m2 and whoever is
    # certainly above m2 — not every model, most of which it never met
    above_m2 = int((after.loc[MODELS, "ci_lo"] > after.loc["m2", "ci_hi"]).sum())
    assert after.loc["dud", "bound"] == "below m2" and after.loc["dud", "rank"] == 2 + above_m2 < len(MODELS) + 1
    assert after.index[-1] == "dud" and after.loc["dud", "losses"] == 10


def test_a_model_that_won_every_game_ranks_first_and_the_rest_are_rated_without_it():
    rows = ([(f"p{k}", "x", "y", "a") for k in range(5)] + [(f"q{k}", "x", "z", "a") for k in range(5)]
            + [(f"r{k}", "y", "z", w) for k, w in enumerate("aaabbaabab")])
    with pytest.warns(RuntimeWarning, match=r"no finite rating for x: .*x won every game"):
        table = scoring.ratings(_frame(rows), n_boot=100).table
    assert table.index[0] == "x" and table.loc["x", "rank"] == 1 and table.loc["x", "bound"] == "above y, z"
    assert np.isnan(table.loc["x", "rating"]) and table.loc[["y", "z"], "identifiable"].all()
    # 5-0 is not certain at 95 % (sign test p = 0.0625): x is first, but nobody is certainly below it
    assert table.loc["y", "rating"] > table.loc["z", "rating"] and table.loc["y", "rank"] == 1


def test_one_game_gives_no_invented_numbers():
    with pytest.warns(RuntimeWarning, match="no finite rating for x, y"):
        table = scoring.ratings(_frame([("p1", "x", "y", "a")]), n_boot=20).table
    assert table["rating"].isna().all() and table.index.tolist() == ["x", "y"]
    # one game ranks nobody
    assert table["rank"].tolist() == [1, 1] and table["bound"].tolist() == ["above y", "below x"]


def _graded(rows, source):
    return _frame(rows).assign(source=source)


def test_two_graders_on_one_pair_are_refused_unless_a_rule_is_chosen_and_what_is_dropped_is_counted():
    judge = _frame([("p1", "x", "y", "a"), ("p2", "x", "y", "tie"), ("p3", "x", "y", "b")])
    ann = _graded([("p1", "x", "y", "a"), ("p2", "x", "y", "tie"), ("p3", "y", "x", "a")], "human:ann")
    bob = _graded([("p1", "y", "x", "a"), ("p2", "x", "y", "b")], "human:bob")        # bob: y better on p1
    both = pd.concat([ann, bob], ignore_index=True)
    with pytest.raises(InputError, match=r"2 pair\(s\) have verdicts of several sources \(human:ann, human:bob\)"):
        scoring.agreement(judge, both, n_boot=0)
    last = scoring.agreement(judge, both, n_boot=0, duplicates="last")
    assert last.attrs["duplicates_dropped_second"] == 2 and last.attrs["compared"] == 3
    majority = scoring.agreement(judge, both, n_boot=0, duplicates="majority")
    # p1 and p2: ann and bob split -> unknown; p3: ann alone, y beat x as the judge said
    assert majority.attrs["compared"] == 1 and majority.attrs["unknown_second"] == 2
    assert majority.loc["agreement (with ties)", "estimate"] == 1.0
    with pytest.raises(InputError, match="duplicates='first'"):
        scoring.agreement(judge, both, duplicates="first")


def test_a_source_regrading_itself_keeps_its_last_label_and_counts_it():
    judge = _frame([("p1", "x", "y", "a"), ("p2", "x", "y", "a")])
    ann = _graded([("p1", "x", "y", "b"), ("p1", "y", "x", "b"), ("p2", "x", "y", "a")], "human:ann")
    table = scoring.agreement(judge, ann, n_boot=0)
    assert table.attrs["duplicates_dropped_second"] == 1
    assert table.loc["agreement (with ties)", "estimate"] == 1.0          # the re-grade (x better) counts


def test_a_judge_that_always_ties_has_an_undefined_kappa_not_a_certain_zero():
    judge = _frame([(f"p{k}", "x", "y", "tie") for k in range(12)])
    human = _frame([(f"p{k}", "x", "y", w) for k, w in enumerate("abtabtaabbtt".replace("t", "-"))]).replace("-", "tie")
    table = scoring.agreement(judge, human, n_boot=200)
    kappa = table.loc["cohen_kappa"]
    assert np.isnan(kappa["estimate"]) and np.isnan(kappa["ci_lo"]) and np.isnan(kappa["ci_hi"])
    assert table.loc["agreement (with ties)", "estimate"] == pytest.approx(4 / 12)


def test_frames_about_different_prompts_say_so_not_unknown_verdicts():
    one = _frame([("p1", "x", "y", "a"), ("p2", "x", "y", "b")])
    other = _frame([("q1", "x", "y", "a")])
    with pytest.raises(InputError, match=r"share no \(prompt, pair of models\).*2 pair\(s\) only in the first"):
        scoring.agreement(one, other, n_boot=0)


@pytest.mark.parametrize("column", ["model_a", "model_b", "prompt_id"])
def test_a_missing_model_name_or_prompt_is_one_line_input_error(column):
    prefs = _frame([("p1", "x", "y", "a"), ("p2", "x", "y", "b"), ("p3", "x", "z", "a")])
    prefs.loc[1, column] = np.nan
    with pytest.raises(InputError, match=f"1 row\\(s\\) have no {column}"):
        scoring.ratings(prefs, n_boot=0)
