"""Held out means held-out texts (review 22b G3): the same prompt under two ids never lands on
both sides of a split, and a router fitted on a text is not "held out" on a copy of it."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from llmlab import routing

WEAK, STRONG = "weak", "strong"


def _runs(n_texts: int = 100, copies: int = 2, seed: int = 0) -> pd.DataFrame:
    """Each text under ``copies`` ids (the copies differ in case and spacing); weak's correctness a
    coin flip per text — nothing generalises beyond memorising the text."""
    rng = np.random.default_rng(seed)
    words = np.array("alpha beta gamma delta omega sigma kappa lambda zeta theta iota rho".split())
    texts = [" ".join(rng.choice(words, 6)) + f" item{k}" for k in range(n_texts)]
    ok = rng.random(n_texts) < 0.5
    rows = []
    for c in range(copies):
        for k, text in enumerate(texts):
            shown = text.upper() if c % 2 else "  " + text.replace(" ", "   ")
            for model, cost in ((WEAK, 1e-5), (STRONG, 1e-3)):
                rows.append({"id": len(rows) + 1, "prompt_id": f"p{c}-{k:03d}", "prompt": shown, "task": "qa",
                             "requested_model": model, "status": "ok", "response_text": "x", "repeat": 0,
                             "attempt": 1, "request_id": f"r{len(rows)}", "cost_usd": cost, "latency_s": 0.5,
                             "score": 1.0 if model == STRONG else float(ok[k])})
    return pd.DataFrame(rows)


def _key(text: str) -> str:
    return " ".join(text.casefold().split())


def test_a_random_split_keeps_every_copy_of_a_text_on_one_side_and_says_so():
    runs = _runs()
    with pytest.warns(RuntimeWarning, match="100 prompt texts appear under more than one prompt_id"):
        tune, test = routing.split(runs, test_size=0.5, seed=0)
    assert not set(tune["prompt"].map(_key)) & set(test["prompt"].map(_key))
    assert test["prompt_id"].nunique() == 100 and tune["prompt_id"].nunique() == 100


def test_without_duplicates_nothing_is_said_and_the_share_is_kept():
    runs = _runs(copies=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                    # no duplicate warning
        tune, test = routing.split(runs, test_size=0.3, seed=4)
    assert test["prompt_id"].nunique() == 30


def test_a_router_fitted_on_a_text_is_not_held_out_on_its_copy():
    runs = _runs()
    first, second = runs[runs["prompt_id"].str.startswith("p0-")], runs[runs["prompt_id"].str.startswith("p1-")]
    learned = routing.Learned(WEAK, STRONG).fit(first)
    with pytest.warns(RuntimeWarning, match="fitted on the same text as 100 of these 100 prompts under other"):
        report = routing.evaluate(second, [learned], n_boot=0)
    auc = report.auc.iloc[0]
    assert not auc["held_out"] and auc["fitted_on"] == 100


def test_a_learned_router_on_noise_is_at_chance_on_the_held_out_half():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        tune, test = routing.split(_runs(200), test_size=0.5, seed=0)
        learned = routing.Learned(WEAK, STRONG).fit(tune)
        auc = routing.evaluate(test, [learned], n_boot=0).auc.iloc[0]
    assert auc["held_out"] and auc["auc"] < 0.65          # was 0.83 when copies leaked across the split


def test_a_grouped_split_warns_when_a_text_is_in_both_halves():
    runs = _runs(40)
    runs["task"] = np.where(runs["prompt_id"].str.startswith("p0-"), "first", "second")
    with pytest.warns(RuntimeWarning, match="40 prompt texts are in both halves under different prompt_ids"):
        routing.split(runs, test_size=0.5, groups="task", seed=0)


def test_a_knob_tuned_on_a_text_is_not_held_out_on_its_copy():
    runs = _runs()
    runs["prompt_chars"] = runs["prompt"].str.len()
    first, second = runs[runs["prompt_id"].str.startswith("p0-")], runs[runs["prompt_id"].str.startswith("p1-")]
    tuned = routing.tune(routing.Threshold("prompt_chars", 0, weak=WEAK, strong=STRONG), first, max_quality_loss=0.05)
    with pytest.warns(RuntimeWarning, match=r"tuned \(its threshold set\) on the same text as 100 of these 100"):
        routing.evaluate(second, [tuned], n_boot=0)
