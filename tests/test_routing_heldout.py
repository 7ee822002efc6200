"""Evidence that holds on prompts unlike the training ones (issue 25): grouped splits, matrices
without answers or costs, intervals for RouteLLM's metrics, conservative tuning, more than two
models, per-task breakdowns, the learned router's AUC and calibration, the data check."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from llmlab import InputError, routing

_COMMON = [f"word{i}" for i in range(400)]


def subject_runs(n: int, *, subjects: int = 12, seed: int = 0, models=("weak", "strong"),
                 skill=None, costs=None) -> pd.DataFrame:
    """A synthetic multiple-choice matrix with subjects, as a published correctness matrix would
    be: each subject has its own words; the weak model's accuracy depends on the subject."""
    rng = np.random.default_rng(seed)
    skill = skill or {"weak": lambda s: 0.35 + 0.6 * s, "mid": lambda s: 0.6 + 0.3 * s, "strong": lambda s: 0.92}
    costs = costs or {"weak": 0.001, "mid": 0.004, "strong": 0.02}
    level = rng.random(subjects)
    rows, rid = [], 0
    for i in range(n):
        s = int(rng.integers(subjects))
        words = list(rng.choice(_COMMON, 12)) + [f"subj{s}term{int(rng.integers(5))}"] * 2
        prompt = f"Q{i}: " + " ".join(words) + "? A) 1 B) 2 C) 3 D) 4"
        for model in models:
            rid += 1
            rows.append({"id": rid, "prompt_id": f"q{i}", "request_id": f"r{rid}", "task": f"subject{s:02d}",
                         "prompt": prompt, "requested_model": model, "repeat": 0, "attempt": 1,
                         "status": "ok", "score": float(rng.random() < skill[model](level[s])),
                         "cost_usd": costs[model], "latency_s": 1.0, "response_text": "B"})
    return pd.DataFrame(rows)


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kw)


# --- 1. grouped splits ------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(6))
def test_a_grouped_split_never_puts_a_group_on_both_sides(seed):
    runs = subject_runs(400, subjects=3 + 4 * seed, seed=seed)
    tune, test = routing.split(runs, groups="task", seed=seed, test_size=0.3)
    assert set(tune["task"]).isdisjoint(test["task"])
    assert set(tune["prompt_id"]).isdisjoint(test["prompt_id"])
    assert len(tune) + len(test) == len(runs)
    assert tune["task"].nunique() >= 1 and test["task"].nunique() >= 1
    share = test["prompt_id"].nunique() / runs["prompt_id"].nunique()
    if seed >= 3:                               # enough groups to come close to the share asked for
        assert abs(share - 0.3) < 0.12


def test_split_summary_kind_and_captions_name_the_split():
    runs = subject_runs(600, subjects=10, seed=1)
    grouped = routing.split(runs, groups="task", seed=2)
    summary = grouped.summary
    assert summary.loc["tune", "groups"] + summary.loc["test", "groups"] == 10
    assert summary["prompts"].sum() == 600 and summary.loc["test", "prompts"] == grouped.test["prompt_id"].nunique()
    assert "grouped split" in grouped.kind and "'task'" in grouped.kind
    policy = routing.Threshold("prompt_chars", 60, weak="weak", strong="strong")
    rep = routing.evaluate(grouped.test, [policy], n_boot=200)
    assert "split: test half of a grouped split" in rep.caption
    assert "grouped split" in rep.claim(min_savings_pct=10, max_quality_loss=0.1).attrs["claim"]
    random_half = routing.split(runs, seed=2)[1]
    assert "split: test half of a random split by prompt, stratified by 'task'" in \
        routing.evaluate(random_half, [policy], n_boot=0).caption
    assert "no recorded split" in routing.evaluate(runs, [policy], n_boot=0).caption
    tune_half = routing.split(runs, seed=2).tune
    assert "split: tune half" in routing.evaluate(tune_half, [policy], n_boot=0).caption


def test_grouped_split_bad_input_is_one_line():
    runs = subject_runs(60, subjects=4)
    with pytest.raises(InputError, match="groups='subject' is not a column"):
        routing.split(runs, groups="subject")
    with pytest.raises(InputError, match="has one group"):
        routing.split(runs.assign(task="all"), groups="task")
    mixed = runs.copy()
    mixed.loc[0, "task"] = "elsewhere"
    with pytest.raises(InputError, match="more than one 'task' value"):
        routing.split(mixed, groups="task")
    with pytest.raises(InputError, match="is not a column"):
        routing.split(runs, groups=["task"])


def test_recommend_warns_when_a_learned_router_is_judged_on_groups_it_saw():
    pytest.importorskip("sklearn")
    runs = subject_runs(300, subjects=6, seed=3)
    with pytest.warns(RuntimeWarning, match="judged on 6 of 6 'task' groups it was trained on"):
        rec = routing.recommend(runs, n_boot=200)
    assert "random split" in rec.caption
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        held = routing.recommend(runs, n_boot=200, groups="task")
    assert not [w for w in seen if "groups it was trained on" in str(w.message)]
    assert "grouped split" in held.caption
