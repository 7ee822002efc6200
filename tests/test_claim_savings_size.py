"""The claim's savings test keeps its size at the claimed boundary (review r22 B4).

The savings side was a percentile-bootstrap p-value of Σa*/Σb* (+1 rule): with the true savings
exactly S it held 7.8 % of claims (30 prompts, lognormal costs) for a stated 5 %, and 17.9 % of
claims for a router that is free except on the prompts it escalates (S 80 %). It is now the
Fieller t-test of mean(a − r0·b), Hall's skewness correction, the exact binomial test for 0/1
calls (routing._ratio_test); bench/bench_claim_savings.py has the full size/power table."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from llmlab import routing
from llmlab.routing._ratio_test import savings_bound, savings_p, student_cdf, student_quantile

WEAK, STRONG = "router", "reference"


def _runs(a: np.ndarray, b: np.ndarray) -> pd.DataFrame:
    """Runs of two models on len(a) prompts: costs a (WEAK) and b (STRONG), equal quality."""
    n = len(a)
    frame = pd.DataFrame({
        "id": np.arange(1, 2 * n + 1), "prompt_id": np.repeat([f"q{i}" for i in range(n)], 2),
        "prompt": np.repeat([f"prompt {i}" for i in range(n)], 2), "task": "chat",
        "requested_model": np.tile([WEAK, STRONG], n), "status": "ok", "response_text": "x", "repeat": 0,
        "attempt": 1, "request_id": [f"r{i}" for i in range(2 * n)],
        "cost_usd": np.column_stack([a, b]).ravel() * 1e-3, "latency_s": 0.1, "score": 1.0})
    return frame


def _claim(a: np.ndarray, b: np.ndarray, savings: float, seed: int = 0) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        report = routing.evaluate(_runs(a, b), [routing.Always(WEAK)], reference=STRONG, n_boot=200, seed=seed)
        return report.claim(min_savings_pct=savings, max_quality_loss=0.2).loc[f"always({WEAK})"]


def _free_unless_escalated(rng: np.random.Generator, n: int, share: float) -> tuple[np.ndarray, np.ndarray]:
    """A router that costs nothing (a free local model) except on the share of prompts it sends
    on, where it costs what the reference does: true savings exactly 1 − share."""
    b = rng.lognormal(0, 1.0, n)
    return b * (rng.random(n) < share), b


def test_at_the_boundary_a_free_model_that_escalates_is_certified_at_most_alpha():
    # 30 prompts, escalating 20 %: true savings exactly 80 %. The bootstrap held 14/100 (17.9 % in
    # the bench); the bound is 5 % + 2 standard errors of 100 simulations (9.4 %).
    rng = np.random.default_rng(2222)
    sims = 100
    holds = sum(_claim(*_free_unless_escalated(rng, 30, 0.2), 80, seed=k)["verdict"] == "holds" for k in range(sims))
    assert holds / sims <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / sims)


def test_the_size_at_the_boundary_many_simulations():
    # the test itself on 2,000 samples per case, the finding's cases (lognormal costs, independent
    # or sharing a prompt-length factor; the bootstrap held 7.8 %, 7.8 %, 8.0 %): at most 5 % + 3
    # standard errors (6.5 %)
    rng = np.random.default_rng(7)
    for n, sigma, shared in [(30, 1.0, 0.0), (30, 1.5, 0.0), (30, 0.5, 1.0)]:
        rejected = 0
        for _ in range(2000):
            common = rng.lognormal(0, shared, n)
            a, b = 0.5 * common * rng.lognormal(0, sigma, n), common * rng.lognormal(0, sigma, n)
            rejected += savings_p(a[:, None], b, 50.0)[0] < 0.05
        assert rejected / 2000 <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 2000), (n, sigma, shared)


def test_a_clear_saving_still_holds_and_a_clear_shortfall_does_not_hold():
    rng = np.random.default_rng(3)
    b = rng.lognormal(0, 1.0, 60)
    assert _claim(0.3 * b * rng.lognormal(0, 0.3, 60), b, 40)["verdict"] == "holds"
    row = _claim(0.9 * b * rng.lognormal(0, 0.3, 60), b, 40)
    assert row["verdict"] == "does not hold" and row["why"] == "saves too little"


def test_the_claims_bound_and_p_value_are_the_tests():
    rng = np.random.default_rng(11)
    b = rng.lognormal(0, 1.0, 50)
    a = 0.55 * b * rng.lognormal(0, 0.8, 50)
    row = _claim(a, b, 30)
    assert row["savings_lo"] == pytest.approx(savings_bound(a[:, None], b, 0.05)[0], rel=1e-9)
    assert row["p_value"] == pytest.approx(max(savings_p(a[:, None], b, 30)[0], 0.8 ** 50), rel=1e-9)


# --- exact values on hand-computable cases ---------------------------------------------------

def test_student_cdf_and_quantile_match_closed_forms():
    t = np.array([-3.0, -1.0, 0.0, 0.5, 2.0])
    assert np.allclose(student_cdf(t, 1), 0.5 + np.arctan(t) / np.pi, atol=1e-15)          # Cauchy
    assert np.allclose(student_cdf(t, 2), 0.5 + t / (2 * np.sqrt(2 + t * t)), atol=1e-15)
    assert student_quantile(0.75, 1) == pytest.approx(1.0, abs=1e-11)
    assert student_quantile(0.95, 2) == pytest.approx(2.919985580353725, abs=1e-10)
    assert student_quantile(0.05, 2) == pytest.approx(-2.919985580353725, abs=1e-10)
    assert list(student_cdf(np.array([-np.inf, np.inf]), 7)) == [0.0, 1.0]


def test_two_prompts_give_the_cauchy_p_value_and_its_fieller_bound():
    # a = [1, 3], b = [2, 2], S = 50 % (r0 = 0.5): z = [0, 2], mean 1, sd √2, t = 1, df 1
    # -> p = 1/2 + atan(1)/π = 3/4; the other side 1/4. Skewness of a − R·b = [−1, 1] is 0.
    a, b = np.array([[1.0], [3.0]]), np.array([2.0, 2.0])
    assert savings_p(a, b, 50)[0] == pytest.approx(0.75, abs=1e-14)
    assert savings_p(a, b, 50, upper=True)[0] == pytest.approx(0.25, abs=1e-14)
    # bound at q = 1/4: c = 1, k = 1/2, the quadratic 4r² − 8r + 3 = 0 -> r = 1.5, savings −50 %
    assert savings_bound(a, b, 0.25)[0] == pytest.approx(-50.0, abs=1e-9)


def test_three_prompts_give_the_two_df_p_value():
    # a = [1, 2, 3], b = [2, 2, 2], S = −50 % (r0 = 1.5): z = [−2, −1, 0], t = −√3, df 2
    a, b = np.array([[1.0], [2.0], [3.0]]), np.full(3, 2.0)
    assert savings_p(a, b, -50)[0] == pytest.approx(0.5 - np.sqrt(3) / (2 * np.sqrt(5)), abs=1e-14)


def test_calls_on_a_fixed_price_are_a_binomial_share_tested_exactly():
    # 4 prompts, one escalated to the reference's price: P(Binomial(4, 1/2) ≤ 1) = 5/16 at S 50 %
    a, b = np.array([[0.0], [2.0], [0.0], [0.0]]), np.full(4, 2.0)
    assert savings_p(a, b, 50)[0] == pytest.approx(5 / 16, abs=1e-14)
    assert savings_p(a, b, 50, upper=True)[0] == pytest.approx(15 / 16, abs=1e-14)
    # the bound is Clopper–Pearson's: P(Binomial(4, p) ≤ 1) = 5/16 at p = 1/2, savings 50 %
    assert savings_bound(a, b, 5 / 16)[0] == pytest.approx(50.0, abs=1e-9)
    # 30 prompts, none escalated, S 90 %: P(Binomial(30, 0.1) = 0) = 0.9 ** 30 = 0.042
    assert savings_p(np.zeros((30, 1)), np.ones(30), 90)[0] == pytest.approx(0.9 ** 30, rel=1e-12)


def test_a_router_at_exactly_the_claimed_ratio_is_no_evidence_either_way():
    b = np.random.default_rng(1).lognormal(0, 1.0, 40)
    a = (0.5 * b)[:, None]                       # savings exactly 50 % on every prompt
    assert savings_p(a, b, 50)[0] == 0.5 and savings_p(a, b, 50, upper=True)[0] == 0.5
    # 1 point less is clear: z = 0.01·b, its t is √n·mean(b)/sd(b); the bound is exactly 50 %
    assert savings_p(a, b, 49)[0] < 1e-3 and savings_bound(a, b, 0.05)[0] == pytest.approx(50.0, abs=1e-9)


def test_unknown_spend_and_too_few_prompts_give_no_evidence():
    a = np.array([[1.0, np.nan], [0.5, 1.0], [0.2, 2.0]])
    p = savings_p(a, np.ones(3), 10)
    assert p[1] == 1.0 and np.isnan(savings_bound(a, np.ones(3), 0.05)[1])
    assert savings_p(np.array([[0.1]]), np.array([1.0]), 10)[0] == 1.0


def test_the_bound_clears_the_claim_exactly_when_the_test_rejects_and_p_grows_with_s():
    rng = np.random.default_rng(5)
    for rep in range(60):
        n = int(rng.integers(3, 300))
        b = rng.lognormal(0, 1.5, n)
        a = np.column_stack([0.3 * rng.lognormal(0, 0.5, n), 0.6 * rng.lognormal(0, 1.5, n) * (rng.random(n) < 0.4)])
        q = (0.05, 0.01, 0.0125, 0.7)[rep % 4]
        lo = savings_bound(a, b, q)
        grid = np.linspace(-100, 100, 81)
        p = np.array([savings_p(a, b, s) for s in grid])
        assert (np.diff(p, axis=0) >= -1e-12).all()      # a larger claim is never easier
        for j in range(2):
            near = np.abs(grid - lo[j]) < 1e-6
            assert np.array_equal((lo[j] > grid)[~near], (p[:, j] < q)[~near])


def test_a_reference_whose_mean_is_not_clear_of_zero_certifies_no_savings():
    # one huge reference cost among 29 tiny ones: √n·mean(b)/sd(b) = 1 < t quantile
    b = np.r_[np.full(29, 1e-6), 1.0]
    a = np.full((30, 1), 1e-7)
    assert savings_bound(a, b, 0.05)[0] == -np.inf
    assert (np.array([savings_p(a, b, s)[0] for s in (-50, 0, 50, 99)]) >= 0.05).all()
