"""A judge's frame cut to its core columns is not read as human labels (review 22b, G7).

The uninformative-judge screen reads a judge's two orders (verdict_1/verdict_2). Cut to
prompt_id/model_a/model_b/winner (what one saves to CSV; even keeping ``source`` and
``consistent``) the frame looked like single-vote labels, "informative" as soon as one verdict was
decisive, and a random tie-heavy judge certified a useless model in 17 of 100 frames. Now a frame is
a judge's when its ``source`` says ``judge:…`` (or ``attrs["judge"]``, which ``scoring.pairwise``
sets and column selection keeps); without its two orders it cannot be screened and certifies
nothing. For routing claims single votes count as labels only when a source says so.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from test_judge_informative import N, _frame, _runs

from llmlab import routing
from llmlab.analysis._evidence import judge_evidence, source_kind

CORE = ["prompt_id", "model_a", "model_b", "winner"]


def _tie_heavy(seed: int):
    v = np.random.default_rng(seed).choice(list("CCCCCCCCCAB"), size=(N, 2)).tolist()
    return _frame(lambda n, v=v: v)


def _claim(runs, prefs, seed: int = 0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        report = routing.evaluate(runs, [routing.Always("weak")], preferences=prefs, reference="strong",
                                  n_boot=300, seed=seed)
        return report, report.claim(min_savings_pct=40, max_quality_loss=0.05).loc["always(weak)"]


@pytest.mark.parametrize("keep", [[], ["source"], ["source", "consistent"]])
def test_a_random_tie_heavy_judge_cut_to_core_columns_never_certifies(keep):
    runs = _runs()
    for seed in range(40):
        prefs = _tie_heavy(seed).assign(source="judge:j")
        cut = prefs[CORE + keep]
        report, row = _claim(runs, cut, seed)
        assert row["verdict"] != "holds", seed
        if cut["winner"].isin(["a", "b"]).any():
            assert report.evidence["unscreened"] and not report.evidence["informative"]
            assert row["why"].startswith("judge unscreened:")


def test_the_message_says_what_is_missing_and_how_to_keep_it():
    cut = _tie_heavy(1).assign(source="judge:j")[CORE + ["source"]]
    cut.loc[:3, "winner"] = "a"
    with pytest.warns(RuntimeWarning, match=r"cannot be screened: a judge's verdicts \(source judge:…\) without the "
                                            r"judge's two orders \(verdict_1/verdict_2\)"):
        routing.preference_quality(_runs(), cut, reference="strong")
    no_source = cut[CORE]
    with pytest.warns(RuntimeWarning, match=r"verdicts that name no source .*source='human:<who>'"):
        routing.preference_quality(_runs(), no_source, reference="strong")


def test_a_pairwise_frames_attrs_say_judge_after_column_selection():
    prefs = _tie_heavy(2)
    prefs.attrs["judge"] = "j"                       # what scoring.pairwise sets
    assert source_kind(prefs[CORE]) == "judge"
    cut = prefs[CORE].copy()
    cut.loc[:3, "winner"] = "a"
    assert judge_evidence(cut)["unscreened"]         # a judge's frame: even outside routing


def test_labels_stated_as_such_are_screened_as_single_votes():
    labels = _tie_heavy(3)[CORE].assign(source="human:ann")
    labels.loc[:5, "winner"] = "a"
    evidence = judge_evidence(labels, require_source=True)
    assert evidence["kind"] == "labels" and evidence["informative"] and not evidence["unscreened"]
    # without a source, ratings and agreement still read single votes as labels; routing does not
    bare = labels[CORE]
    assert judge_evidence(bare)["informative"]
    assert not judge_evidence(bare, require_source=True)["informative"]


def test_a_full_judge_frame_is_screened_as_before():
    informative = sum(judge_evidence(_tie_heavy(s).assign(source="judge:j"))["informative"] for s in range(100))
    assert informative <= 5


def test_ratings_on_a_cut_judge_frame_have_no_intervals_and_say_why():
    from llmlab import scoring
    cut = _tie_heavy(4).assign(source="judge:j")[CORE + ["source"]]
    cut.loc[:9, "winner"] = "a"
    with pytest.warns(RuntimeWarning, match="cannot be screened"):
        r = scoring.ratings(cut, n_boot=50)
    assert r.table["ci_lo"].isna().all()
