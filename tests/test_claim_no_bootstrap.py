"""``claim()`` needs no bootstrap: its quality test (Tango's paired score test) and its savings
bound (Fieller's t, skewness-corrected) are analytic, so ``evaluate(..., n_boot=0)`` gives the
same claim as ``n_boot=1000``. ``most_savings()`` does resample (the best point is chosen again in
every replicate) and still says so in one line."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from llmlab import InputError, routing

WEAK, STRONG = "cheap", "pricey"
CLAIM_COLUMNS = ["savings_pct", "savings_lo", "quality_diff", "quality_diff_lo", "p_value", "p_holm", "verdict"]


def _runs(n: int, loss: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    strong_ok = rng.random(n) < 0.8
    weak_ok = strong_ok & (rng.random(n) >= loss)
    rows = []
    for k in range(n):
        for model, cost, ok in ((WEAK, 1e-5 * (1 + rng.random()), weak_ok[k]), (STRONG, 1e-3, strong_ok[k])):
            rows.append({"id": len(rows) + 1, "prompt_id": f"q{k:03d}", "prompt": f"question {k}", "task": "math",
                         "requested_model": model, "status": "ok", "response_text": "42" if ok else "41",
                         "score": float(ok), "repeat": 0, "attempt": 1, "request_id": f"r{len(rows)}",
                         "cost_usd": cost, "latency_s": 0.5})
    return pd.DataFrame(rows)


def _report(runs: pd.DataFrame, n_boot: int):
    policies = [routing.Always(WEAK), routing.Always(STRONG)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return routing.evaluate(runs, policies, reference=STRONG, n_boot=n_boot)


@pytest.mark.parametrize(("n", "loss", "seed"), [(40, 0.0, 1), (120, 0.02, 2), (300, 0.1, 3), (500, 0.01, 4)])
def test_a_claim_without_bootstrap_replicates_is_the_claim_with_them(n, loss, seed):
    runs = _runs(n, loss, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        plain = _report(runs, 0).claim(min_savings_pct=40, max_quality_loss=0.05)
        resampled = _report(runs, 1000).claim(min_savings_pct=40, max_quality_loss=0.05)
    pd.testing.assert_frame_equal(plain[CLAIM_COLUMNS], resampled[CLAIM_COLUMNS])
    assert plain.loc[f"always({WEAK})", "verdict"] in {"holds", "does not hold", "not enough data"}


def test_most_savings_still_needs_replicates_and_says_so():
    report = _report(_runs(60, 0.0, 5), 0)
    with pytest.raises(InputError, match=r"most_savings\(\) needs bootstrap replicates: evaluate\(\.\.\., n_boot="):
        report.most_savings(max_quality_loss=0.05)
