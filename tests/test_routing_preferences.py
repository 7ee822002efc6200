"""Routing on preferences: "at least as good as the reference's answer" as the quality signal."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from llmlab import InputError, routing

WEAK, STRONG = "cheap", "pricey"


def _runs(n: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n):
        hard = k % 3 == 0
        prompt = f"{'prove the theorem about' if hard else 'say hello to'} item {k} {rng.integers(1000)}"
        for model, cost in ((WEAK, 1e-5), (STRONG, 1e-3)):
            rows.append({"id": len(rows) + 1, "prompt_id": f"q{k:03d}", "prompt": prompt, "task": "chat",
                         "requested_model": model, "status": "ok", "response_text": f"{model} says", "repeat": 0,
                         "attempt": 1, "request_id": f"r{len(rows)}", "cost_usd": cost, "latency_s": 0.5})
    return pd.DataFrame(rows)


def _prefs(runs: pd.DataFrame, unknown: int = 0) -> pd.DataFrame:
    """The weak model loses on the "prove" prompts and ties elsewhere; ``unknown`` verdicts unknown."""
    prompts = runs.drop_duplicates("prompt_id")
    winner = np.where(prompts["prompt"].str.startswith("prove"), "a", "tie").astype(object)
    winner[:unknown] = None
    # single votes stated to be labels (a frame naming no source is not screened as labels: review 22b, G7)
    return pd.DataFrame({"prompt_id": prompts["prompt_id"].to_numpy(), "model_a": STRONG, "model_b": WEAK,
                         "winner": winner, "source": "human:grader"})


def test_a_routed_answer_is_good_when_it_is_at_least_as_good_as_the_reference():
    runs = _runs()
    prefs = _prefs(runs, unknown=6)
    with pytest.warns(RuntimeWarning, match="left out 6 of 120 prompts"):
        report = routing.evaluate(runs, [routing.Always(WEAK), routing.Oracle()], preferences=prefs,
                                  reference=STRONG, n_boot=200)
    assert report.reference == f"always({STRONG})"
    assert report.unknown_prompts == 6 and report.unknown_by_model == {WEAK: 6, STRONG: 0}
    assert "6 left out, quality unknown: cheap 6" in report.caption
    assert report.n_prompts == 114
    hard = runs.drop_duplicates("prompt_id").iloc[6:]["prompt"].str.startswith("prove").mean()
    assert report.table.loc[f"always({WEAK})", "quality"] == pytest.approx(1 - hard)
    assert report.models.loc[f"always({STRONG})", "quality"] == 1.0
    assert report.table.loc["oracle", "quality"] == 1.0 and report.table.loc["oracle", "savings_pct"] > 50
    claim = report.claim(min_savings_pct=40, max_quality_loss=0.02)
    assert claim.loc[f"always({WEAK})", "verdict"] == "does not hold"
    assert "6 more left out: quality unknown" in claim.attrs["claim"]


def test_unknown_verdicts_are_never_losses():
    runs = _runs(60)
    prefs = _prefs(runs)
    hard = prefs["winner"] == "a"
    with_unknowns = prefs.assign(winner=np.where(hard, None, prefs["winner"]))    # every loss made unknown
    with pytest.warns(RuntimeWarning, match="left out 20 of 60 prompts"):
        report = routing.evaluate(runs, [routing.Always(WEAK)], preferences=with_unknowns, reference=STRONG,
                                  n_boot=0)
    assert report.table.loc[f"always({WEAK})", "quality"] == 1.0       # the rest were all ties


def test_learned_router_trained_on_preferences_routes_held_out_prompts():
    runs = _runs(240, seed=1)
    prefs = _prefs(runs)
    tune_runs, test_runs = routing.split(runs, test_size=0.5, seed=0)
    learned = routing.Learned(WEAK, STRONG, name="learned").fit(tune_runs, preferences=prefs)
    assert learned.training["score"] == "preference" and learned.training["unknown_labels"] == 0
    hard, easy = learned.predict_proba_prompts(["prove the theorem about x", "say hello to x"])
    assert hard > 0.5 > easy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        report = routing.evaluate(test_runs, [learned, routing.Random(0.5, weak=WEAK, strong=STRONG)],
                                  preferences=prefs, reference=STRONG, n_boot=300)
    row = report.table.loc["learned"]
    assert row["quality"] == 1.0 and row["savings_pct"] > 50
    assert report.routellm.loc["learned", "pgr"] == pytest.approx(1.0)
    held_out = set(test_runs["prompt_id"])
    assert not held_out & learned.fitted_on


def test_recommend_on_preferences_picks_a_router_with_evidence():
    runs = _runs(240, seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rec = routing.recommend(runs, preferences=_prefs(runs), reference=STRONG, n_boot=300, max_quality_loss=0.05)
    assert rec.report.reference == f"always({STRONG})"
    learned = rec.policies.loc["learned"]                      # tuned to lose at most 0.05 on the tune half
    assert learned["savings_pct"] > 50 and learned["quality_diff_ci_lo"] > -0.15
    assert rec.policies.loc["random 50%", "verdict"] == "does not hold"
    assert rec.policy.name in rec.policies.index


def test_preference_quality_columns_and_bad_input():
    runs = _runs(6)
    prefs = _prefs(runs, unknown=1)
    out = routing.preference_quality(runs, prefs, reference=STRONG)
    weak = out[out["requested_model"] == WEAK].set_index("prompt_id")
    assert np.isnan(weak.loc["q000", "preference"]) and weak.loc["q000", "preference_reason"].startswith("unknown")
    assert weak.loc["q003", "preference"] == 0.0 and weak.loc["q001", "preference"] == 1.0
    assert (out.loc[out["requested_model"] == STRONG, "preference"] == 1.0).all()
    both_ways = pd.concat([prefs, prefs.rename(columns={"model_a": "model_b", "model_b": "model_a"})])
    with pytest.raises(InputError, match="needs a reference model"):
        routing.preference_quality(runs, both_ways)
    with pytest.raises(InputError, match="is in no pair"):
        routing.preference_quality(runs, prefs, reference="nobody")
    with pytest.raises(InputError, match="not in the runs"):
        routing.evaluate(runs, [routing.Always(WEAK)], preferences=prefs.assign(prompt_id="elsewhere"))
    with pytest.raises(InputError, match="reference is a model name"):
        routing.evaluate(runs, [routing.Always(WEAK)], preferences=prefs, reference=routing.Always(WEAK))


def test_judge_and_human_frames_together_are_refused_or_settled_by_a_stated_rule_never_by_concat_order():
    runs = _runs(40)
    judge = _prefs(runs).assign(source="judge:j")
    flip = {"a": "b", "b": "a", "tie": "a"}
    human = judge.iloc[:10].assign(source="human:ann", winner=lambda d: d["winner"].map(flip))
    with pytest.raises(InputError, match=r"10 pair\(s\) have verdicts of several sources \(human:ann, judge:j\)"):
        routing.preference_quality(runs, pd.concat([judge, human]), reference=STRONG)
    with pytest.raises(InputError, match="several sources"):
        routing.evaluate(runs, [routing.Always(WEAK)], preferences=pd.concat([judge, human]), reference=STRONG,
                         n_boot=0)
    one = routing.preference_quality(runs, pd.concat([judge, human]), reference=STRONG, duplicates="majority")
    two = routing.preference_quality(runs, pd.concat([human, judge]), reference=STRONG, duplicates="majority")
    assert one["preference"].equals(two["preference"])                  # the order of the concat decides nothing
    assert one.attrs["preference_duplicates_dropped"] == 10
    split = one[(one["requested_model"] == WEAK) & one["prompt_id"].isin(human["prompt_id"])]
    assert split["preference"].isna().all()                             # judge and human disagree: unknown
    last = routing.preference_quality(runs, pd.concat([judge, human]), reference=STRONG, duplicates="last")
    flipped = last[(last["requested_model"] == WEAK) & last["prompt_id"].isin(human["prompt_id"])]
    assert flipped["preference_reason"].str.contains("against").all()


def test_a_prompt_without_any_label_says_no_label_not_an_unknown_verdict():
    runs = _runs(12)
    prefs = _prefs(runs, unknown=2).iloc[:8]                  # q000, q001 unknown; q008.. have no row at all
    out = routing.preference_quality(runs, prefs, reference=STRONG).set_index(["prompt_id", "requested_model"])
    assert out.loc[("q000", WEAK), "preference_reason"] == f"unknown: no known verdict against {STRONG}"
    reason = out.loc[("q010", WEAK), "preference_reason"]
    assert reason == f"unknown: no label or verdict against {STRONG} for this prompt"


def test_a_model_the_preferences_never_judged_is_named_not_blamed_on_the_judge():
    runs = _runs(20)
    third = runs[runs["requested_model"] == WEAK].assign(requested_model="mid", id=lambda d: d["id"] + 10_000)
    with pytest.raises(InputError, match=r"no known 'preference' for model\(s\) mid on any prompt"):
        routing.evaluate(pd.concat([runs, third], ignore_index=True), [routing.Always(WEAK)],
                         preferences=_prefs(runs), reference=STRONG, n_boot=0)


def test_preferences_about_other_prompts_are_counted_and_said():
    runs = _runs(20)
    half = runs[runs["prompt_id"] < "q010"]
    with pytest.warns(RuntimeWarning, match="10 of 20 preferences are about prompts not in these runs"):
        out = routing.preference_quality(half, _prefs(runs), reference=STRONG)
    assert out.attrs["preference_other_prompts"] == 10


def test_a_models_own_error_row_is_a_failure_in_routing_though_the_preference_frame_calls_it_unknown():
    runs = _runs(60)
    prefs = _prefs(runs)
    broken = (runs["requested_model"] == WEAK) & (runs["prompt_id"] == "q001")       # an easy prompt: a tie
    runs.loc[broken, ["status", "response_text"]] = ["error", None]
    prefs.loc[prefs["prompt_id"] == "q001", "winner"] = None          # what scoring.pairwise says of it
    report = routing.evaluate(runs, [routing.Always(WEAK)], preferences=prefs, reference=STRONG, n_boot=0)
    assert report.unknown_prompts == 0 and report.n_prompts == 60     # served nothing: not left out
    hard = runs.drop_duplicates("prompt_id")["prompt"].str.startswith("prove").sum()
    assert report.table.loc[f"always({WEAK})", "quality"] == pytest.approx(1 - (hard + 1) / 60)
