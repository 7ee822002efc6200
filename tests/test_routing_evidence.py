"""Routing evidence: answers that do not depend on the policy list, prompt identity, billing of
retries, cached-token repricing, PGR for every two-model policy, split/tune, the claim test, and
the real RouteLLM GSM8K matrix."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from llmlab import InputError, PriceTable, datasets, routing


def _matrix_runs(quality: dict[str, np.ndarray], cost: dict[str, float], *, tasks=None, texts=None,
                 missing: dict[str, list[int]] | None = None) -> pd.DataFrame:
    """One ok row per (prompt, model): score from ``quality``, a fixed cost per call."""
    n = len(next(iter(quality.values())))
    rows, rid = [], 0
    for model, q in quality.items():
        for i in range(n):
            if missing and i in missing.get(model, []):
                continue
            rid += 1
            rows.append({"id": rid, "prompt_id": f"p{i}", "request_id": f"r-{model}-{i}",
                         "prompt": texts[i] if texts else f"prompt number {i} " + "x" * (i % 7),
                         "task": tasks[i] if tasks else "t", "requested_model": model, "repeat": 0,
                         "attempt": 1, "status": "ok", "score": float(q[i]), "cost_usd": cost[model],
                         "latency_s": 1.0, "waited_s": 0.0, "prompt_tokens": 100.0,
                         "completion_tokens": 10.0, "cached_tokens": 0.0, "response_text": "ans",
                         "cost_source": "price_table", "cached": False})
    return pd.DataFrame(rows)


THREE = _matrix_runs(
    {"cheap": np.array([1, 0, 1, 0, 1, 1]), "mid": np.array([1, 1, 0, 1, 1, 1]),
     "strong": np.array([1, 1, 1, 1, 1, 0])},
    {"cheap": 0.001, "mid": 0.01, "strong": 0.1}, missing={"strong": [5]})


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kw)


def test_adding_policies_never_moves_another_policys_numbers():
    base = _quiet(routing.evaluate, THREE, [routing.Always("cheap")], n_boot=200)
    more = _quiet(routing.evaluate, THREE, [routing.Always("cheap"), routing.Always("mid"), routing.Oracle()],
                  n_boot=200)
    pd.testing.assert_series_equal(base.table.loc["always(cheap)"], more.table.loc["always(cheap)"])
    assert base.reference == more.reference == "always(strong)"     # best quality among all models
    assert base.n_prompts == more.n_prompts == 5
    assert base.dropped_by_model == {"cheap": 0, "mid": 0, "strong": 1}
    assert "strong lacked 1" in base.caption


def test_models_argument_defines_the_sample_and_policies_outside_it_are_refused():
    two = _quiet(routing.evaluate, THREE, [routing.Always("cheap")], models=["cheap", "mid"], n_boot=0)
    assert two.n_prompts == 6 and two.reference == "always(mid)"
    with pytest.raises(InputError, match="'strong' is not in the matrix"):
        routing.evaluate(THREE, [routing.Always("strong")], models=["cheap", "mid"], n_boot=0)


def test_dropping_prompts_warns_with_counts_per_model():
    with pytest.warns(RuntimeWarning, match="strong: 1"):
        routing.evaluate(THREE, [routing.Always("cheap")], n_boot=0)


def test_a_reused_prompt_id_with_another_text_is_an_error_naming_both():
    runs = THREE[THREE["requested_model"] != "strong"].copy()
    other = runs.copy()
    other["id"] += 1000
    other.loc[other["prompt_id"] == "p0", "prompt"] = "a completely different question"
    with pytest.raises(InputError, match=r"prompt_id 'p0' names two different prompts.*completely different"):
        routing.evaluate(pd.concat([runs, other]), [routing.Always("cheap")], n_boot=0)
    same = runs.copy()
    same["id"] += 1000           # the same prompts recorded twice: the latest rows count, no error
    routing.evaluate(pd.concat([runs, same]), [routing.Always("cheap")], n_boot=0)


def _retry_runs() -> pd.DataFrame:
    """p0 on A: a cut stream billed $0.004 (2 s, after a 0 s wait), then ok at $0.020 (1 s after 0.5 s)."""
    runs = _matrix_runs({"A": np.array([1, 1]), "B": np.array([1, 1])}, {"A": 0.020, "B": 0.05})
    cut = runs.iloc[[0]].copy()
    cut["id"], cut["status"], cut["cost_usd"], cut["latency_s"] = 0, "error", 0.004, 2.0
    cut["score"] = np.nan
    failed_free = runs.iloc[[1]].copy()      # a 429 on p1: nothing generated, no cost known
    failed_free["id"], failed_free["status"], failed_free["cost_usd"] = -1, "error", np.nan
    failed_free["completion_tokens"], failed_free["latency_s"] = np.nan, 0.1
    runs.loc[0, ["waited_s", "attempt"]] = [0.5, 2]
    return pd.concat([cut, failed_free, runs], ignore_index=True)


def test_retries_are_billed_and_waited_for_by_default():
    runs = _retry_runs()
    billed = routing.evaluate(runs, [routing.Always("A")], n_boot=0)
    row = billed.table.loc["always(A)"]
    assert row["total_cost_usd"] == pytest.approx(0.020 + 0.004 + 0.020)
    pp = billed.per_prompt("always(A)").set_index("prompt_id")
    assert pp.loc["p0", "latency_s"] == pytest.approx(2.0 + 0.5 + 1.0)
    assert pp.loc["p1", "latency_s"] == pytest.approx(0.1 + 1.0)
    assert billed.retries["attempts"] == 2 and "retries billed: 2" in billed.caption
    final_only = routing.evaluate(runs, [routing.Always("A")], n_boot=0, count_retries=False)
    assert final_only.table.loc["always(A)", "total_cost_usd"] == pytest.approx(0.040)
    assert final_only.per_prompt("always(A)").set_index("prompt_id").loc["p0", "latency_s"] == pytest.approx(1.0)
    assert "not billed" in final_only.caption


def test_a_failed_attempt_with_tokens_but_no_price_is_unknown_not_free():
    runs = _retry_runs()
    runs.loc[0, "cost_usd"] = np.nan                # the cut stream produced tokens, price unknown
    rep = routing.evaluate(runs, [routing.Always("A")], n_boot=0)
    assert np.isnan(rep.table.loc["always(A)", "total_cost_usd"])


def test_repricing_uses_cached_token_prices_like_the_lab():
    runs = _matrix_runs({"A": np.array([1, 0])}, {"A": 0.0})
    runs["prompt_tokens"], runs["cached_tokens"], runs["completion_tokens"] = 1000.0, 800.0, 100.0
    rep = routing.evaluate(runs, [routing.Always("A")], prices={"A": "gpt-5"}, n_boot=0)
    price = PriceTable.load(None).lookup("gpt-5")
    one = PriceTable.load(None).cost("gpt-5", 1000.0, 100.0, 800.0, warn=False)
    assert one == pytest.approx(price.cost(1000.0, 100.0, 800.0)) and one < price.cost(1000.0, 100.0, 0.0)
    assert rep.table.loc["always(A)", "total_cost_usd"] == pytest.approx(2 * one)
    assert "cached" in rep.caption and "gpt-5" in rep.caption


def test_caption_names_the_recorded_cost_sources():
    rep = _quiet(routing.evaluate, THREE, [routing.Always("cheap")], n_boot=0)
    assert "recorded cost_usd (price_table 15 cells)" in rep.caption


# --- PGR / APGR / CPT for every two-model policy ---------------------------------------------

GAP = _matrix_runs({"weak": np.array([1, 0, 0, 1, 0, 1, 0, 0]), "strong": np.array([1, 1, 1, 1, 1, 1, 0, 1])},
                   {"weak": 0.001, "strong": 0.01},
                   tasks=["easy", "hard", "hard", "easy", "hard", "easy", "hard", "hard"])


def test_every_two_model_policy_gets_pgr():
    policies = [routing.Cascade(["weak", "strong"], accept=lambda text: False, name="cascade"),
                routing.TaskMap({"easy": "weak", "hard": "strong"}, name="taskmap"),
                routing.Fallback(["weak", "strong"], name="fallback"),
                routing.Always("weak"), routing.Oracle(["weak", "strong"], name="oracle2")]
    rep = routing.evaluate(GAP, policies, n_boot=0)
    r = rep.routellm
    assert set(r.index) == {"cascade", "taskmap", "fallback", "oracle2"}   # Always has one model
    q_w, q_s = 3 / 8, 7 / 8
    assert r.loc["taskmap", "pgr"] == pytest.approx((rep.table.loc["taskmap", "quality"] - q_w) / (q_s - q_w))
    assert r.loc["taskmap", "pgr"] == pytest.approx(1.0)       # the task map recovers the whole gap
    assert r.loc["cascade", "pgr"] == pytest.approx(1.0) and r.loc["cascade", "strong_share"] == 1.0
    assert r.loc["fallback", "pgr"] == pytest.approx(0.0)
    assert np.isnan(r.loc["taskmap", "apgr"])                  # no knob, no sweep


def test_threshold_reports_cpt_20_50_80():
    feature = {f"p{i}": v for i, v in enumerate([0.1, 0.9, 0.8, 0.2, 0.7, 0.3, 0.5, 0.6])}
    rep = routing.evaluate(GAP, [routing.Threshold(feature, 0.5, weak="weak", strong="strong", name="thr")],
                           n_boot=0)
    row = rep.routellm.loc["thr"]
    # the feature ranks the 4 prompts where strong beats weak first: PGR 0.25 per strong prompt
    # (linear inside the crossing segment, as RouteLLM's np.interp)
    assert row["cpt20"] == pytest.approx(0.1) and row["cpt50"] == pytest.approx(0.25)
    assert row["cpt80"] == pytest.approx(0.4)
    assert row["apgr"] == pytest.approx(0.75) == row["optimal_apgr"]


# --- split, tune, claim -------------------------------------------------------------------------

def _claim_runs(n: int, seed: int = 1, weak_skill_easy: float = 0.97) -> pd.DataFrame:
    """Easy prompts (short) the weak model almost always gets; hard (long) ones it rarely does."""
    rng = np.random.default_rng(seed)
    hard = rng.random(n) < 0.3
    texts = [("long hard question " * 12 if h else "short easy one") + f" #{i}" for i, h in enumerate(hard)]
    weak = np.where(hard, rng.random(n) < 0.3, rng.random(n) < weak_skill_easy)
    strong = rng.random(n) < 0.95
    tasks = np.where(np.arange(n) % 2, "a", "b").tolist()
    return _matrix_runs({"weak": weak, "strong": strong}, {"weak": 0.001, "strong": 0.02},
                        tasks=tasks, texts=texts)


def test_split_is_by_prompt_stratified_and_seeded():
    runs = _claim_runs(200)
    tune_runs, test_runs = routing.split(runs, test_size=0.5, seed=3, by="task")
    assert set(tune_runs["prompt_id"]).isdisjoint(test_runs["prompt_id"])
    assert len(tune_runs) + len(test_runs) == len(runs)
    assert test_runs.groupby("prompt_id")["requested_model"].nunique().eq(2).all()
    counts = test_runs.drop_duplicates("prompt_id")["task"].value_counts()
    assert counts["a"] == counts["b"] == 50
    again = routing.split(runs, test_size=0.5, seed=3, by="task")[1]
    assert list(again["prompt_id"]) == list(test_runs["prompt_id"])
    with pytest.raises(InputError, match="test_size"):
        routing.split(runs, test_size=1.5)


def test_tune_picks_the_cheapest_threshold_that_keeps_quality_on_the_tune_half():
    tune_runs, _ = routing.split(_claim_runs(400), seed=0)
    knob = routing.Threshold("prompt_chars", 0, weak="weak", strong="strong")
    tuned = routing.tune(knob, tune_runs, max_quality_loss=0.02)
    assert 20 < tuned.threshold <= 240            # between the easy and the hard prompts' lengths
    assert knob.threshold == 0 and tuned.tuned_on["prompts"] == 200
    rep = routing.evaluate(tune_runs, [tuned], n_boot=0)
    assert rep.table.iloc[0]["quality_diff"] >= -0.02 - 1e-12
    with pytest.raises(InputError, match="no knob"):
        routing.tune(routing.Always("weak"), tune_runs)


def test_claim_holds_when_the_evidence_is_there():
    tune_runs, test_runs = routing.split(_claim_runs(3000), seed=0)
    tuned = routing.tune(routing.Threshold("prompt_chars", 0, weak="weak", strong="strong", name="length"),
                         tune_runs, max_quality_loss=0.02)
    rep = routing.evaluate(test_runs, [tuned, routing.Random(0.5, weak="weak", strong="strong", name="coin"),
                                       routing.Oracle()], n_boot=1000)
    claim = rep.claim(min_savings_pct=40, max_quality_loss=0.05)
    assert claim.loc["length", "verdict"] == "holds"
    assert claim.loc["length", "savings_lo"] > 40 and claim.loc["length", "quality_diff_lo"] > -0.05
    assert claim.loc["coin", "verdict"] == "does not hold"       # random loses ~0.2 of quality
    assert claim.loc["oracle", "verdict"].startswith("not tested")
    assert claim.loc["length", "p_holm"] >= claim.loc["length", "p_value"]
    assert "Holm" in claim.attrs["claim"]


def test_claim_says_not_enough_data_with_the_sample_size_needed():
    tune_runs, test_runs = routing.split(_claim_runs(60, seed=5, weak_skill_easy=0.9), seed=0)
    tuned = routing.tune(routing.Threshold("prompt_chars", 0, weak="weak", strong="strong", name="length"),
                         tune_runs, max_quality_loss=0.05)
    claim = routing.evaluate(test_runs, [tuned], n_boot=1000).claim(min_savings_pct=30, max_quality_loss=0.1)
    row = claim.loc["length"]
    assert row["verdict"] == "not enough data"
    assert row["prompts_needed"] > 30


def test_holm_adjustment_is_monotone_and_never_below_the_raw_p():
    runs = _claim_runs(600)
    policies = [routing.Threshold("prompt_chars", t, weak="weak", strong="strong", name=f"t{t}")
                for t in (30, 100, 200, 400)]
    claim = routing.evaluate(runs, policies, n_boot=500).claim(min_savings_pct=20, max_quality_loss=0.05)
    tested = claim.dropna(subset=["p_value"]).sort_values("p_value")
    assert (tested["p_holm"] >= tested["p_value"] - 1e-12).all()
    assert tested["p_holm"].is_monotonic_increasing


def test_claim_needs_no_bootstrap_and_most_savings_does():
    # claim()'s tests are analytic (tests/test_claim_no_bootstrap.py compares it with n_boot=1000)
    rep = routing.evaluate(GAP, [routing.Always("weak")], n_boot=0)
    assert rep.claim().loc["always(weak)", "verdict"] in {"holds", "does not hold", "not enough data"}
    with pytest.raises(InputError, match="n_boot"):
        rep.most_savings()


# --- real recorded data ---------------------------------------------------------------------

def test_routellm_gsm8k_loads_in_the_runs_schema():
    from llmlab.base._record import COLUMNS

    runs = datasets.load("routellm-gsm8k")
    assert len(runs) == 2 * 1319 and runs["prompt_id"].nunique() == 1319
    assert set(COLUMNS) <= set(runs.columns) and "score" in runs.columns
    means = runs.groupby("requested_model")["score"].mean()
    assert means["mistralai/Mixtral-8x7B-Instruct-v0.1"] == pytest.approx(0.638, abs=5e-4)
    assert means["gpt-4-1106-preview"] == pytest.approx(0.857, abs=5e-4)
    assert runs["tokens_estimated"].all() and runs["cost_usd"].isna().all()
    assert (runs["task"] == "gsm8k").all() and runs["expected"].str.fullmatch(r"-?\d+(\.\d+)?").all()
    assert runs["completion_tokens"].gt(0).all()
    assert "routellm-gsm8k" in datasets.names()


def test_routellm_models_have_dated_prices():
    sheet = PriceTable.load(None)
    for model in ("mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"):
        price = sheet.lookup(model)
        assert price is not None and price.source and price.date


def test_from_wide_turns_a_published_matrix_into_runs():
    wide = pd.DataFrame({"q": ["1+1?", "2+2?"], "a_ok": [True, False], "b_ok": [1.0, 0.5],
                         "a_txt": ["2", "5"], "kind": ["add", "add"]})
    runs = datasets.from_wide(wide, prompt="q", scores={"a": "a_ok", "b": "b_ok"},
                              responses={"a": "a_txt"}, task="kind")
    assert len(runs) == 4 and list(runs["score"]) == [1.0, 0.0, 1.0, 0.5]
    assert list(runs.loc[runs["requested_model"] == "a", "response_text"]) == ["2", "5"]
    assert runs["prompt_id"].str.startswith("p").all() and runs["task"].eq("add").all()
    rep = routing.evaluate(runs, [routing.Always("a")], prices={"a": "gpt-5", "b": "gpt-5"}, n_boot=0)
    assert rep.table.loc["always(a)", "total_cost_usd"] > 0
    with pytest.raises(InputError, match="no column"):
        datasets.from_wide(wide, prompt="q", scores={"a": "missing"})
    with pytest.raises(InputError, match="booleans or numbers"):
        datasets.from_wide(wide, prompt="q", scores={"a": "a_txt"})


def test_claim_on_the_real_gsm8k_matrix_reaches_a_verdict():
    runs = datasets.load("routellm-gsm8k")
    strong, weak = "gpt-4-1106-preview", "mistralai/Mixtral-8x7B-Instruct-v0.1"
    rep = routing.evaluate(runs, [routing.Always(weak), routing.Random(0.5, weak=weak, strong=strong)],
                           prices=PriceTable.load(None), n_boot=1000)
    claim = rep.claim(min_savings_pct=40, max_quality_loss=0.02)
    assert rep.reference == f"always({strong})"
    verdicts = {"holds", "does not hold", "not enough data", "not tested (reference or reads the labels)"}
    assert set(claim["verdict"]) <= verdicts
    assert claim.loc[f"always({weak})", "verdict"] == "does not hold"   # loses 0.22 of quality


def test_a_cache_hit_costs_what_the_original_call_cost():
    runs = _matrix_runs({"A": np.array([1, 1])}, {"A": 0.02})
    runs.loc[1, ["cached", "cost_usd", "original_cost_usd", "cost_source"]] = [True, 0.0, 0.02, "cache"]
    rep = routing.evaluate(runs, [routing.Always("A")], n_boot=0)
    assert rep.table.loc["always(A)", "total_cost_usd"] == pytest.approx(0.04)


def test_tune_sweeps_a_learned_router_on_out_of_fold_predictions():
    from llmlab.routing._matrix import build_matrix

    rng = np.random.default_rng(0)
    n = 120
    words = rng.choice(["apple", "pear", "plum", "fig", "kiwi", "lime"], size=(n, 3))
    texts = [" ".join(w) + f" #{i}" for i, w in enumerate(words)]
    weak = rng.random(n) < np.where(["fig" in t for t in texts], 0.2, 0.8)    # a weak, noisy signal
    runs = _matrix_runs({"weak": weak, "strong": np.ones(n)}, {"weak": 0.001, "strong": 0.01}, texts=texts)
    learned = routing.Learned("weak", "strong").fit(runs)
    mx = build_matrix(runs, "score", ["weak", "strong"])
    wrong = (mx.score[:, 0] < 0.5).astype(float)
    in_sample = np.abs(learned.values(mx) - wrong).mean()
    held_out = np.abs(learned.out_of_fold_values(runs, mx) - wrong).mean()
    assert held_out > in_sample + 0.02            # on its own training prompts it looks better
    tuned = routing.tune(learned, runs, max_quality_loss=0.05)
    assert tuned.threshold != learned.threshold and tuned.fitted


def test_fit_task_map_picks_the_cheapest_model_that_keeps_each_tasks_quality():
    tasks = ["easy"] * 4 + ["hard"] * 4
    runs = _matrix_runs({"cheap": np.array([1, 1, 1, 1, 0, 0, 1, 0]), "dear": np.array([1, 1, 1, 1, 1, 1, 1, 1])},
                        {"cheap": 0.001, "dear": 0.01}, tasks=tasks)
    policy = routing.fit_task_map(runs, max_quality_loss=0.02)
    assert policy.mapping == {"easy": "cheap", "hard": "dear"} and policy.default == "dear"
    loose = routing.fit_task_map(runs, max_quality_loss=0.8)
    assert loose.mapping == {"easy": "cheap", "hard": "cheap"}


def test_recommend_chooses_per_task_models_and_a_policy_with_evidence():
    rng = np.random.default_rng(4)
    n = 400
    tasks = np.where(np.arange(n) % 2, "easy", "hard")
    cheap = np.where(tasks == "easy", rng.random(n) < 0.97, rng.random(n) < 0.3)
    strong = rng.random(n) < 0.97
    runs = _matrix_runs({"cheap": cheap, "strong": strong}, {"cheap": 0.001, "strong": 0.02}, tasks=list(tasks))
    rec = routing.recommend(runs, max_quality_loss=0.05, min_savings_pct=30, learned=False, n_boot=500)
    assert rec.per_task.loc["easy", "model"] == "cheap" and rec.per_task.loc["hard", "model"] == "strong"
    assert rec.policy.name == "task map" and rec.claim_holds
    assert rec.policies.loc["task map", "verdict"] == "holds"
    assert rec.per_task.loc["easy", "quality_diff_ci_lo"] > -0.1
    assert "reference always(strong)" in rec.caption


def test_recommend_routes_between_the_best_model_and_the_best_cheaper_one_not_the_worst():
    """Three models: the two-model routers' cheap side is the best model that costs less than the
    strongest (here 'mid'), not the worst one ('junk', right on nothing), and each router's
    models are in the table."""
    rng = np.random.default_rng(7)
    n = 200
    runs = _matrix_runs({"junk": np.zeros(n), "mid": rng.random(n) < 0.8, "strong": rng.random(n) < 0.95},
                        {"junk": 0.0005, "mid": 0.002, "strong": 0.02}, tasks=["t"] * n)
    rec = routing.recommend(runs, learned=False, n_boot=200)
    assert rec.policies.loc["length threshold", "models"] == "mid / strong"
    assert rec.policies.loc["random 50%", "models"] == "mid / strong"
    assert rec.policies.loc["oracle", "models"] == "junk / mid / strong"


def test_the_recommended_router_is_picked_on_the_tune_half_and_vetoed_by_the_test_half():
    """The pick reads the tune-half columns only (the most savings within the margin there; ties:
    the better quality there); the test half keeps it only within the margin."""
    from llmlab.routing._recommend import _pick

    table = pd.DataFrame({"verdict": ["does not hold"] * 4, "tune_savings_pct": [30.0, 30.0, 50.0, 10.0],
                          "tune_quality_diff": [-0.02, -0.01, -0.05, 0.0], "quality_diff": [0.0, -0.01, 0.0, 0.02]},
                         index=["a", "b", "too lossy on tune", "best on test"])
    assert _pick(table, 0.02) == ("b", "picked on the tune half, where it saves the most within 0.02")
    table.loc["b", "quality_diff"] = -0.03
    chosen, why = _pick(table, 0.02)
    assert chosen is None and why.startswith("b, the tune half's pick") and "loses 0.03 on the test half" in why
    table["tune_quality_diff"] = -0.5
    assert _pick(table, 0.02) == (None, "no router kept quality within 0.02 on the tune half")


def test_review_regressions_ids_retries_tiny_samples_and_served_prices():
    # a row without a prompt_id or model is refused, never folded into another prompt's cell
    runs = _matrix_runs({"A": np.array([1, 1]), "B": np.array([1, 0])}, {"A": 0.01, "B": 0.02})
    for column in ("prompt_id", "requested_model"):
        broken = runs.copy()
        broken.loc[0, column] = None
        with pytest.raises(InputError, match=f"no {column}"):
            routing.evaluate(broken, [routing.Always("A")], n_boot=0)
    # two matrices from the same source concatenated: no invented retries
    wide = pd.DataFrame({"q": [f"question {i}" for i in range(5)], "a": [1.0] * 5, "b": [0.0] * 5})
    one = datasets.from_wide(wide, prompt="q", scores={"a": "a", "b": "b"})
    two = datasets.from_wide(wide.assign(q=wide["q"] + "?"), prompt="q", scores={"a": "a", "b": "b"})
    both = routing.evaluate(pd.concat([one, two]), [routing.Always("a")], prices={"a": "gpt-5", "b": "gpt-5"},
                            n_boot=0)
    assert both.retries["attempts"] == 0
    # rows without a request id are never each other's retries
    loose = runs.assign(request_id=None)
    assert routing.evaluate(loose, [routing.Always("A")], n_boot=0).table.iloc[0]["total_cost_usd"] == \
        pytest.approx(0.02)
    # one or two prompts never give a verdict
    tiny = routing.evaluate(runs, [routing.Always("A")], reference="B", n_boot=200).claim(
        min_savings_pct=10, max_quality_loss=0.5)
    assert tiny.loc["always(A)", "verdict"] == "not enough data" and "at least 30" in tiny.loc["always(A)", "why"]
    # an alias is priced by the model the endpoint served, as the Lab prices it
    served = runs.assign(served_model=np.where(runs["requested_model"] == "A", "gpt-5", "gpt-5-mini"))
    rep = routing.evaluate(served, [routing.Always("A")], price_as={"B": "gpt-5"}, n_boot=0)
    assert rep.table.iloc[0]["total_cost_usd"] > 0


def test_claim_bounds_agree_with_the_verdicts_after_holm_stops():
    rng = np.random.default_rng(7)
    n = 300
    runs = _matrix_runs({"w": rng.random(n) < 0.9, "s": rng.random(n) < 0.92}, {"w": 0.001, "s": 0.01})
    policies = [routing.Random(p, weak="w", strong="s", name=f"r{p}") for p in (0.1, 0.3, 0.5, 0.7)]
    claim = routing.evaluate(runs, policies, n_boot=999).claim(min_savings_pct=20, max_quality_loss=0.05)
    for _, row in claim.iterrows():
        clears = row["savings_lo"] > 20 and row["quality_diff_lo"] > -0.05
        assert (row["verdict"] == "holds") == clears, row


def test_split_shares_are_exact_and_do_not_depend_on_row_order_or_missing_tasks():
    runs = _matrix_runs({"A": np.ones(30), "B": np.ones(30)}, {"A": 1.0, "B": 2.0},
                        tasks=[["x", "y", None][i % 3] for i in range(30)])
    tune_a, test_a = routing.split(runs, test_size=0.5, seed=1)
    _, test_b = routing.split(runs.iloc[::-1], test_size=0.5, seed=1)
    assert test_a["prompt_id"].nunique() == 15 and set(test_a["prompt_id"]) == set(test_b["prompt_id"])
    many = _matrix_runs({"A": np.ones(100), "B": np.ones(100)}, {"A": 1.0, "B": 2.0},
                        tasks=[f"t{i // 2}" for i in range(100)])
    assert routing.split(many, test_size=0.2, seed=0)[1]["prompt_id"].nunique() == 20


def test_large_samples_draw_sums_from_the_bootstraps_normal_limit():
    from llmlab.routing import _stats

    rng = np.random.default_rng(0)
    values = np.column_stack([rng.random(30_000) < 0.7, rng.exponential(0.01, 30_000), np.full(30_000, np.nan)])
    exact = _stats._resampled_sums(values, 2000, 1)[0]
    normal = _stats.bootstrap_sums(values, 2000, 1)          # n > 20,000: the normal limit
    for j in (0, 1):
        lo_e, hi_e = np.percentile(exact[:, j], [2.5, 97.5])
        lo_n, hi_n = np.percentile(normal[:, j], [2.5, 97.5])
        width = hi_e - lo_e
        assert abs(lo_e - lo_n) < 0.1 * width and abs(hi_e - hi_n) < 0.1 * width
    assert np.isnan(normal[:, 2]).all()
    # paired: the correlation between columns survives
    both = np.column_stack([values[:, 0], values[:, 0] * 2 + rng.random(30_000)])
    draws = _stats.bootstrap_sums(both, 500, 0)
    assert np.corrcoef(draws.T)[0, 1] > 0.9


def test_review_regressions_inputs_and_warnings():
    runs = _matrix_runs({"A": np.array([1, 0, 1, 1]), "B": np.array([1, 1, 1, 0])}, {"A": 0.01, "B": 0.02})
    # numpy numbers are numbers
    assert routing.evaluate(runs, [routing.Always("A")], n_boot=np.int64(20)).n_boot == 20
    assert len(routing.split(runs, test_size=np.float32(0.5))[1]) == 4
    # messages stored as lists (not JSON text) still identify prompts; None messages fall back to prompt
    listed = runs.assign(messages=[[{"role": "user", "content": p}] for p in runs["prompt"]])
    routing.evaluate(listed, [routing.Always("A")], n_boot=0)
    clash = pd.concat([runs.assign(messages=None),
                       runs.assign(messages=None, id=runs["id"] + 100, prompt="another text")])
    with pytest.raises(InputError, match="two different prompts"):
        routing.evaluate(clash, [routing.Always("A")], n_boot=0)
    # from_wide refuses a row without prompt text
    with pytest.raises(InputError, match="no prompt text"):
        datasets.from_wide(pd.DataFrame({"q": ["x", None], "s": [1.0, 0.0]}), prompt="q", scores={"m": "s"})
    # a learned router judged on the prompts it was fitted on says so
    learned = routing.Learned("A", "B").fit(runs)
    with pytest.warns(RuntimeWarning, match="fitted on 4 of these 4 prompts"):
        routing.evaluate(runs, [learned], n_boot=0)
