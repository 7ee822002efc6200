"""Intervals of shares keep their level near 0 and 1 (review 22b G2, N5).

A percentile bootstrap of 8 agreeing labels resamples only agreement: "95 %" [1, 1]; at n = 16 and
a true agreement of 0.9 the agreement interval covered the truth in 78 % of simulations."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llmlab import scoring
from llmlab.base._intervals import paired_score_interval, wilson


def _frames(judge: np.ndarray, human: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = [f"q{i}" for i in range(len(judge))]
    return (pd.DataFrame({"prompt_id": ids, "model_a": "x", "model_b": "y", "winner": judge}),
            pd.DataFrame({"prompt_id": ids, "model_a": "x", "model_b": "y", "winner": human}))


def test_all_agreeing_or_all_disagreeing_labels_are_never_a_zero_width_interval():
    a, _ = _frames(np.array(["a"] * 8), np.array(["a"] * 8))
    same = scoring.agreement(a, a, n_boot=200)
    row = same.loc["agreement (without ties)"]
    assert row["estimate"] == 1.0 and row["ci_hi"] == 1.0 and 0.6 < row["ci_lo"] < 0.7       # Wilson: 0.68
    other = scoring.agreement(a, a.assign(winner="b"), n_boot=200).loc["agreement (with ties)"]
    assert other["estimate"] == 0.0 and other["ci_lo"] == 0.0 and 0.3 < other["ci_hi"] < 0.4


@pytest.mark.parametrize(("n", "truth"), [(16, 0.9), (16, 0.7), (50, 0.95)])
def test_agreement_intervals_cover_the_truth_at_about_their_level(n, truth):
    rng = np.random.default_rng(n)
    sims, covered = 120, 0
    for _ in range(sims):
        human = rng.choice(["a", "b"], n)
        judge = np.where(rng.random(n) < truth, human, np.where(human == "a", "b", "a"))
        row = scoring.agreement(*_frames(judge, human), n_boot=200).loc["agreement (without ties)"]
        covered += row["ci_lo"] <= truth <= row["ci_hi"]
    assert covered / sims >= 0.90            # 95 % less 2.5 standard errors of 120 simulations


def test_wilson_and_the_paired_score_interval_cover_near_the_edges():
    rng = np.random.default_rng(5)
    for n, p in [(8, 0.95), (16, 0.9), (30, 0.97), (100, 0.99)]:
        hits = rng.binomial(n, p, size=20_000)
        lo, hi = wilson(hits, n)
        assert ((lo <= p) & (p <= hi)).mean() >= 0.91      # Wilson dips to 92 % at n = 100, p = 0.99
        assert (hi > lo).all()
        d = -(rng.random((n, 4000)) < 1 - p).astype(float)         # losses of a paired difference
        lo, hi = paired_score_interval(d)
        assert ((lo <= -(1 - p)) & (-(1 - p) <= hi)).mean() >= 0.93 and (hi > lo).all()


def test_summary_of_two_known_scores_is_not_certain():
    runs = pd.DataFrame({"requested_model": ["weak"] * 20 + ["strong"] * 20,
                         "score": [1.0, 1.0] + [np.nan] * 18 + [1.0] * 20, "task": "qa"})
    table = scoring.summary(runs)
    assert table.loc["weak", "mean"] == 1.0 and table.loc["weak", "ci_lo"] < 0.5 and table.loc["weak", "ci_hi"] == 1.0
    assert 0.8 < table.loc["strong", "ci_lo"] < 0.9       # 20 of 20: Wilson 0.84
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(400):
        scores = (rng.random(16) < 0.9).astype(float)
        row = scoring.summary(pd.DataFrame({"requested_model": "m", "score": scores})).loc["m"]
        covered += row["ci_lo"] <= 0.9 <= row["ci_hi"]
    assert covered / 400 >= 0.92
