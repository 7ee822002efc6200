"""r23 N2: settling duplicates by majority must not erase what the judge screen reads.

``one_per_pair(duplicates="majority")`` rebuilt every row as source "majority of N" without
verdict_1/verdict_2/consistent, so a lazy judge (ties what it did not read) or a position-biased
one stacked with a few labels read as labels: the lazy-tie guard and the worst-order reading were
off and a claim held with the true loss (0.09) above the margin (0.05). Now only the pairs several
sources judged are settled, each keeping one row of its majority whole (a judge's first)."""
import warnings

import numpy as np
import pandas as pd
import pytest
from test_judge_informative import _frame, _runs
from test_lazy_tie_judge import N, _lazy

from llmlab import routing, scoring
from llmlab.analysis._pairwise import one_per_pair


def _claim(prefs, duplicates, margin=0.05):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        runs = routing.preference_quality(_runs(N), prefs, reference="strong", duplicates=duplicates)
        report = routing.evaluate(runs, [routing.Always("weak")], score="preference", reference="strong", n_boot=300)
        return runs, report.claim(min_savings_pct=40, max_quality_loss=margin).loc["always(weak)"]


def _labels(prefs, k, worse):
    return prefs.iloc[:k][["prompt_id", "model_a", "model_b"]].assign(winner=np.where(worse[:k], "a", "tie"),
                                                                    source="human:h")


def _lazy_stacks():
    prefs, _ = _lazy()
    worse = np.random.default_rng(0).random(N) < 0.10
    return {"100 labels": pd.concat([prefs, _labels(prefs, 100, worse)], ignore_index=True),
            "labels first": pd.concat([_labels(prefs, 100, worse), prefs], ignore_index=True),
            "1 label": pd.concat([prefs, _labels(prefs, 1, worse)], ignore_index=True),
            "its re-run": pd.concat([prefs, prefs.assign(source="judge:j-rerun")], ignore_index=True)}


@pytest.mark.parametrize("stack", ["100 labels", "labels first", "1 label", "its re-run"])
def test_a_lazy_judge_settled_by_majority_still_certifies_nothing(stack):
    runs, row = _claim(_lazy_stacks()[stack], "majority")
    assert runs.attrs["preference_ties_as_losses"] and runs.attrs["preference_tie_pct"] > 95
    assert runs.attrs["preference_evidence"]["kind"] == "judge"
    assert row["verdict"] == "not enough data" and row["verdict_worst_order"] == "does not hold"


def test_a_position_biased_judge_with_one_label_keeps_its_worst_order_reading():
    rng = np.random.default_rng(3)
    worse, biased = rng.random(N) < 0.30, rng.random(N) < 0.40
    games = [("A", "A") if b else (("A", "B") if w else ("C", "C")) for b, w in zip(biased, worse, strict=True)]
    judge = _frame(lambda n: games, n=N).assign(source="judge:pb")
    for k in (1, 100):
        runs, row = _claim(pd.concat([judge, _labels(judge, k, worse)], ignore_index=True), "majority", margin=0.22)
        assert runs.attrs["preference_order_dependent"] > 150
        assert row["verdict"] != "holds"


def _mixes():
    """Duplicate mixes: two and three sources, mirrored orientation, splits; keyed by name."""
    prefs, _ = _lazy()
    prefs = prefs.iloc[:60].reset_index(drop=True)
    rng = np.random.default_rng(7)
    ann = prefs.iloc[:20][["prompt_id", "model_a", "model_b"]].assign(winner=rng.choice(["a", "b", "tie"], 20),
                                                                      source="human:ann")
    bob = ann.iloc[5:15].rename(columns={"model_a": "model_b", "model_b": "model_a"})      # mirrored rows
    bob = bob.assign(winner=bob["winner"].map({"a": "a", "b": "b", "tie": "b"}), source="human:bob")
    return prefs, {"judge + ann": [prefs, ann], "judge + ann + bob (mirrored)": [prefs, ann, bob],
                   "ann + bob": [ann, bob]}


@pytest.mark.parametrize("mix", ["judge + ann", "judge + ann + bob (mirrored)", "ann + bob"])
def test_majority_settles_only_the_crossed_pairs_keeps_rows_whole_and_ignores_concat_order(mix):
    _, mixes = _mixes()
    parts = mixes[mix]
    forward = one_per_pair(pd.concat(parts, ignore_index=True), duplicates="majority")
    backward = one_per_pair(pd.concat(parts[::-1], ignore_index=True), duplicates="majority")
    key = ["prompt_id", "model_a", "model_b"]
    pd.testing.assert_frame_equal(forward.sort_values(key).reset_index(drop=True),
                                  backward.sort_values(key).reset_index(drop=True), check_like=True)
    stacked = pd.concat(parts, ignore_index=True)
    crossed = set(stacked.loc[stacked.duplicated("prompt_id", keep=False), "prompt_id"])
    single = stacked[~stacked["prompt_id"].isin(crossed)]
    mine = forward[~forward["prompt_id"].isin(crossed)]
    # every pair only one source judged: its row, unchanged (source, both orders, consistent)
    pd.testing.assert_frame_equal(mine[list(single.columns)].reset_index(drop=True), single.reset_index(drop=True))
    assert not forward["source"].astype(str).str.startswith("majority").any()
    if "judge:j" in set(stacked["source"]):
        settled = forward[forward["prompt_id"].isin(crossed) & forward["winner"].notna()]
        assert (settled["source"] == "judge:j").sum() > 0            # a judge row of the majority, whole
        assert settled.loc[settled["source"] == "judge:j", "verdict_1"].notna().all()


def test_a_split_is_unknown_with_its_reason_and_no_verdicts_left():
    prefs, _ = _lazy()
    one = prefs.iloc[:1]
    flipped = one.assign(winner="a" if one["winner"].iloc[0] != "a" else "b", source="human:ann")
    out = one_per_pair(pd.concat([one, flipped], ignore_index=True), duplicates="majority")
    assert len(out) == 1 and out["winner"].isna().all() and out["reason"].iloc[0] == "unknown: the 2 sources split"
    assert out[["verdict_1", "verdict_2", "consistent"]].isna().all().all()


def test_agreement_with_majority_still_reads_the_settled_frame():
    prefs, mixes = _mixes()
    ann, bob = mixes["ann + bob"]
    table = scoring.agreement(prefs, pd.concat([ann, bob], ignore_index=True), n_boot=0, duplicates="majority")
    # ann alone on 10 prompts, ann and bob on 10: their splits unknown, the agreements read
    assert table.attrs["compared"] + table.attrs["unknown_second"] == 20
