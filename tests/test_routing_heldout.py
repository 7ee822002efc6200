"""Evidence that holds on prompts unlike the training ones (issue 25): grouped splits, matrices
without answers or costs, intervals for RouteLLM's metrics, conservative tuning, more than two
models, per-task breakdowns, the learned router's AUC and calibration, the data check."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from llmlab import InputError, datasets, routing

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


# --- 2. matrices without answers or costs ---------------------------------------------------------

def _wide(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    hard = rng.random(n) < 0.4
    return pd.DataFrame({
        "question": [("a long and winding question " * 6 if h else "short one") + f" #{i}" for i, h in enumerate(hard)],
        "subject": np.where(np.arange(n) % 2, "algebra", "history"),
        "weak_ok": np.where(hard, rng.random(n) < 0.2, rng.random(n) < 0.95),
        "strong_ok": rng.random(n) < 0.95,
        "weak_tokens": rng.integers(5, 50, n), "strong_cost": 0.002})


def test_a_matrix_without_answers_says_costs_are_unknown_and_reports_savings_in_strong_calls():
    with pytest.warns(Warning, match=r"no answers, answer token counts or costs for 'weak', 'strong'") as seen:
        runs = datasets.from_wide(_wide(), prompt="question", scores={"weak": "weak_ok", "strong": "strong_ok"},
                                  task="subject")
    assert len([w for w in seen if "from_wide" in str(w.message)]) == 1
    assert "\n" not in str(seen[0].message)
    policy = routing.Threshold("prompt_chars", 60, weak="weak", strong="strong", name="length")
    with pytest.warns(RuntimeWarning, match="cost unknown for 400 of 400 cells .*no answer token counts"):
        rep = routing.evaluate(runs, [policy, routing.Always("weak")], prices={"weak": "gpt-5-mini",
                                                                              "strong": "gpt-5"}, n_boot=300)
    row = rep.table.loc["length"]
    assert np.isnan(row["total_cost_usd"]) and np.isnan(row["cost_ci_lo"])        # unknown, not 0
    strong_share = rep.per_prompt("length")["served_model"].eq("strong").mean()
    assert row["savings_pct"] == pytest.approx(100 * (1 - strong_share))            # share of strong calls
    assert row["savings_ci_lo"] <= row["savings_pct"] <= row["savings_ci_hi"]
    assert rep.table.loc["always(weak)", "savings_pct"] == pytest.approx(100.0)
    assert rep.savings_basis == "calls to strong (costs unknown)"
    assert "cost unknown for 400 of 400 cells" in rep.caption and "share of strong calls avoided" in rep.caption
    claim = rep.claim(min_savings_pct=30, max_quality_loss=0.1)
    assert "of calls to strong (costs unknown)" in claim.attrs["claim"]
    assert "cost unknown" not in claim.loc["length", "why"] and claim["savings_pct"].notna().all()


def test_a_cascade_that_cannot_see_answers_refuses_in_one_line():
    runs = _quiet_wide(_wide(), prompt="question", scores={"weak": "weak_ok", "strong": "strong_ok"})
    cascade = routing.Cascade(["weak", "strong"], accept=lambda text: text.strip() != "")
    with pytest.raises(InputError, match=r"accepts or escalates on weak's answers, and these runs have none") as info:
        routing.evaluate(runs, [cascade], n_boot=0)
    assert "\n" not in str(info.value)
    with_answers = _quiet_wide(_wide().assign(weak_txt="42"), prompt="question",
                               scores={"weak": "weak_ok", "strong": "strong_ok"}, responses={"weak": "weak_txt"})
    rep = _quiet(routing.evaluate, with_answers, [cascade], n_boot=0)
    assert rep.table.iloc[0]["share_weak"] == 1.0


def _quiet_wide(*args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return datasets.from_wide(*args, **kw)


def test_from_wide_takes_answer_token_counts_or_costs_per_model():
    wide = _wide(100)
    priced = {"weak": "gpt-5-mini", "strong": "gpt-5"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # nothing unknown: no warning at all
        runs = datasets.from_wide(wide, prompt="question", scores={"weak": "weak_ok", "strong": "strong_ok"},
                                  answer_tokens={"weak": "weak_tokens", "strong": 120})
        rep = routing.evaluate(runs, [routing.Always("weak")], prices=priced, n_boot=0)
    assert runs.loc[runs["requested_model"] == "strong", "completion_tokens"].eq(120).all()
    assert rep.savings_basis == "cost" and rep.table.iloc[0]["total_cost_usd"] > 0
    assert "cost unknown" not in rep.caption
    costed = datasets.from_wide(wide, prompt="question", scores={"weak": "weak_ok", "strong": "strong_ok"},
                                costs={"weak": 0.0001, "strong": "strong_cost"})
    assert set(costed["cost_source"]) == {"reported"}
    rep = routing.evaluate(costed, [routing.Always("weak")], n_boot=0)        # recorded costs, no prices
    assert rep.table.iloc[0]["savings_pct"] == pytest.approx(100 * (1 - 0.0001 / 0.002))
    with pytest.warns(Warning, match="no answers, answer token counts or costs for 'strong'"):
        datasets.from_wide(wide, prompt="question", scores={"weak": "weak_ok", "strong": "strong_ok"},
                           costs={"weak": 0.0001})


@pytest.mark.parametrize(("given", "message"), [
    ({"costs": {"weak": -0.1}}, "must be a column name or a number ≥ 0"),
    ({"costs": {"weak": "subject"}}, r"column 'subject' \(weak\) must hold costs in USD ≥ 0; row 0 has 'history'"),
    ({"costs": {"weak": True}}, "must be a column name or a number"),
    ({"answer_tokens": {"weak": "nope"}}, "names no column 'nope'"),
    ({"answer_tokens": {"other": 3}}, "names model 'other', which has no score column"),
    ({"answer_tokens": "weak_tokens"}, "maps each model to a column or a number"),
])
def test_from_wide_refuses_bad_costs_and_token_counts_in_one_line(given, message):
    wide = _wide(20).assign(neg=lambda d: -d["weak_tokens"])
    with pytest.raises(InputError, match=message) as info:
        datasets.from_wide(wide, prompt="question", scores={"weak": "weak_ok", "strong": "strong_ok"}, **given)
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match=r"row 0 has -\d+"):
        datasets.from_wide(wide, prompt="question", scores={"weak": "weak_ok", "strong": "strong_ok"},
                           answer_tokens={"weak": "neg"})


# --- 3. intervals for PGR, APGR and CPT ----------------------------------------------------------

def _known_curve_world(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """A feature f ~ U(0, 1); weak right with p 0.5 − 0.3 f, strong with 0.5 + 0.3 f. Sending the
    prompts with f ≥ 1 − s to strong recovers PGR(s) = 1 − (1 − s)²: APGR = 2/3 (by calls, and by
    cost: a call's cost is fixed), CPT50 = 1 − √½."""
    rng = np.random.default_rng(seed)
    f = rng.random(n)
    ids = [f"p{i}" for i in range(n)]
    frames = [pd.DataFrame({"prompt_id": ids, "prompt": ids, "requested_model": model, "status": "ok",
                            "score": (rng.random(n) < p).astype(float), "cost_usd": cost})
              for model, p, cost in (("weak", 0.5 - 0.3 * f, 0.001), ("strong", 0.5 + 0.3 * f, 0.01))]
    return pd.concat(frames, ignore_index=True), pd.Series(f, index=ids)


def test_apgr_intervals_cover_the_known_value_at_about_their_level():
    truth = {"apgr": 2 / 3, "apgr_cost": 2 / 3, "cpt50": 1 - 0.5 ** 0.5}
    hits = dict.fromkeys(truth, 0)
    reps = 120
    for r in range(reps):
        runs, f = _known_curve_world(300, seed=r)
        row = routing.evaluate(runs, [routing.Threshold(f, 0.5, weak="weak", strong="strong", name="t")],
                               n_boot=300, seed=r).routellm.loc["t"]
        for key, value in truth.items():
            hits[key] += row[f"{key}_ci_lo"] <= value <= row[f"{key}_ci_hi"]
    coverage = {k: v / reps for k, v in hits.items()}
    assert all(0.88 <= c <= 0.99 for c in coverage.values()), coverage


def test_routellm_intervals_share_the_tables_resamples_and_are_labelled():
    runs, f = _known_curve_world(500, seed=1)
    knob = routing.Threshold(f, 0.5, weak="weak", strong="strong", name="t")
    alone = routing.evaluate(runs, [routing.Always("weak")], n_boot=300, seed=4)
    both = routing.evaluate(runs, [routing.Always("weak"), knob], n_boot=300, seed=4)
    pd.testing.assert_series_equal(alone.table.loc["always(weak)"], both.table.loc["always(weak)"])
    r = both.routellm
    assert r.loc["t", "apgr_ci_lo"] <= r.loc["t", "apgr"] <= r.loc["t", "apgr_ci_hi"]
    assert r.loc["t", "pgr_ci_lo"] <= r.loc["t", "pgr"] <= r.loc["t", "pgr_ci_hi"]
    assert r.loc["t", "models"] == 2 and r.loc["t", "note"] == ""
    # the same resamples: a policy identical to always(strong) recovers exactly the whole gap in each
    same = routing.evaluate(runs, [routing.Threshold(f, -1.0, weak="weak", strong="strong", name="all")],
                            n_boot=300, seed=4).routellm.loc["all"]
    assert same["pgr"] == same["pgr_ci_lo"] == same["pgr_ci_hi"] == 1.0
    caption = r.attrs["caption"]
    assert "apgr: area under PGR over the share of calls to the strong model" in caption
    assert "apgr_cost: area under PGR over the share of the strong model's extra cost spent" in caption
    labels = both.plot().axes[0].get_legend_handles_labels()[1]
    assert any("APGR" in s and "by calls" in s and "by cost" in s for s in labels)


def test_cost_based_apgr_weighs_each_prompt_by_what_strong_costs_more():
    runs, f = _known_curve_world(400, seed=2)
    # strong is dear exactly where it helps (high f): by cost the curve is flatter than by calls
    high = runs["prompt_id"].map(f) > 0.5
    runs.loc[(runs["requested_model"] == "strong") & high, "cost_usd"] = 0.1
    row = routing.evaluate(runs, [routing.Threshold(f, 0.5, weak="weak", strong="strong", name="t")],
                           n_boot=0).routellm.loc["t"]
    assert row["apgr_cost"] < row["apgr"] - 0.1
    unknown = runs.assign(cost_usd=np.nan)
    row = _quiet(routing.evaluate, unknown, [routing.Threshold(f, 0.5, weak="weak", strong="strong",
                                                               name="t")], n_boot=100).routellm.loc["t"]
    assert np.isfinite(row["apgr"]) and np.isnan(row["apgr_cost"]) and np.isnan(row["apgr_cost_ci_lo"])


def test_bin_sums_are_paired_with_the_column_sums_on_both_bootstrap_paths():
    from llmlab.routing import _stats

    rng = np.random.default_rng(0)
    for n in (3000, 30_000):                              # exact resampling, then the normal limit
        weights = np.column_stack([np.ones(n), rng.random(n) < 0.3])
        bins = rng.integers(0, 7, n)
        values = np.column_stack([weights[:, 1], rng.random(n)])
        block = _stats.Binned(bins, 8, weights)
        plain = _stats.paired_sums(values, 400, 3)[0]
        sums, (per_bin,) = _stats.paired_sums(values, 400, 3, [block])
        np.testing.assert_array_equal(plain, sums)               # a block never moves the column sums
        np.testing.assert_allclose(per_bin[:, :, 1].sum(axis=1), sums[:, 0], rtol=1e-6)   # same resamples
        assert per_bin.shape == (400, 8, 2) and np.allclose(per_bin[:, 7, :], 0, atol=1e-6)
        if n == 3000:
            counts = np.bincount(bins, minlength=8)
            assert np.all(np.abs(per_bin[:, :7, 0].mean(axis=0) - counts[:7]) < 0.2 * np.sqrt(counts[:7]))


# --- 4. conservative tuning ---------------------------------------------------------------------

def _knob_world(n: int, seed: int) -> pd.DataFrame:
    """A feature f ~ U(0, 1) that says how likely the weak model fails (right with p 0.97 − 0.5 f);
    the strong one is right 90 % of the time."""
    rng = np.random.default_rng(seed)
    f = rng.random(n)
    ids = [f"p{i}" for i in range(n)]
    return pd.concat([pd.DataFrame({"prompt_id": ids, "prompt": ids, "requested_model": model, "status": "ok",
                                    "f": f, "score": (rng.random(n) < p).astype(float), "cost_usd": cost})
                      for model, p, cost in (("weak", 0.97 - 0.5 * f, 0.001), ("strong", 0.9 + 0 * f, 0.01))],
                     ignore_index=True)


def test_conservative_tuning_keeps_the_limit_on_held_out_prompts_in_most_seeds():
    kept: dict = {None: [], 0.95: []}
    saved: dict = {None: [], 0.95: []}
    for seed in range(40):
        tune_runs, test_runs = routing.split(_knob_world(800, seed), seed=seed)
        for confidence in kept:
            tuned = routing.tune(routing.Threshold("f", 0, weak="weak", strong="strong"), tune_runs,
                                 max_quality_loss=0.02, confidence=confidence)
            row = routing.evaluate(test_runs, [tuned], n_boot=0, reference="strong").table.iloc[0]
            kept[confidence].append(row["quality_diff"] >= -0.02)
            saved[confidence].append(row["savings_pct"])
            if confidence is not None:
                assert tuned.tuned_on["confidence"] == 0.95
                assert tuned.tuned_on["quality_loss_bound"] <= 0.02 + 1e-9 or not tuned.tuned_on["feasible"]
    assert np.mean(kept[0.95]) >= 0.75          # about Φ(1.645/√2) = 0.88, less the choice among settings
    assert np.mean(kept[None]) <= 0.65          # on the limit: about half the splits overshoot it
    assert np.mean(saved[0.95]) < np.mean(saved[None])          # the price of the promise


def test_tune_confidence_must_be_a_level_between_0_and_1():
    runs = _knob_world(100, 0)
    knob = routing.Threshold("f", 0, weak="weak", strong="strong")
    for bad in (0, 1, 1.5, -0.1, True, "0.9"):
        with pytest.raises(InputError, match="confidence is the level of the bound on the quality loss") as info:
            routing.tune(knob, runs, confidence=bad)
        assert "\n" not in str(info.value)


def test_tune_with_unknown_costs_minimises_strong_calls():
    runs = _knob_world(400, 1).assign(cost_usd=np.nan)
    tuned = routing.tune(routing.Threshold("f", 0, weak="weak", strong="strong"), runs, max_quality_loss=0.05)
    assert tuned.tuned_on["feasible"] and np.isfinite(tuned.threshold)
    rep = _quiet(routing.evaluate, runs, [tuned], n_boot=0, reference="strong")
    assert rep.table.iloc[0]["savings_pct"] > 20 and rep.savings_basis.startswith("calls to strong")


# --- 5. three models and more -------------------------------------------------------------------

def ladder_runs(n: int, seed: int) -> pd.DataFrame:
    """Easy prompts (word 'plain') every model gets; medium ones ('twisty') the cheap model fails
    and the mid one gets; hard ones ('riddle') only the strong model gets."""
    rng = np.random.default_rng(seed)
    rows, rid = [], 0
    for i in range(n):
        kind = ["plain", "twisty", "riddle"][i % 3]
        words = list(rng.choice(_COMMON[:60], 8)) + [kind]
        rng.shuffle(words)
        right = {"cheap": kind == "plain", "mid": kind != "riddle", "strong": True}
        for model, cost in (("cheap", 0.001), ("mid", 0.005), ("strong", 0.03)):
            rid += 1
            ok = right[model] if rng.random() > 0.05 else not right[model]
            rows.append({"id": rid, "prompt_id": f"s{seed}-{i}", "prompt": " ".join(words), "task": "mixed",
                         "requested_model": model, "status": "ok", "score": float(ok), "cost_usd": cost})
    return pd.DataFrame(rows)


def test_a_learned_router_of_three_models_sends_each_prompt_to_the_cheapest_good_enough():
    pytest.importorskip("sklearn")
    tune_runs, test_runs = ladder_runs(450, seed=1), ladder_runs(300, seed=2)
    router = routing.Learned("cheap", "mid", "strong").fit(tune_runs)
    assert router.needs() == ["cheap", "mid", "strong"] and router.training["n_prompts"] == 450
    assert set(router.training["not_ok_rate"]) == {"cheap", "mid"}
    fresh = test_runs.drop_duplicates("prompt_id")["prompt"]
    p = router.predict_proba_prompts([fresh[fresh.str.contains(w)].iloc[0] for w in ("plain", "twisty", "riddle")])
    assert p.shape == (3, 2)
    assert p[0, 0] < 0.3 and p[1, 0] > 0.7 and p[1, 1] < 0.3 and p[2, 1] > 0.7
    per = routing.evaluate(test_runs, [router], n_boot=0).per_prompt(router.name).merge(
        test_runs.drop_duplicates("prompt_id")[["prompt_id", "prompt"]], on="prompt_id")
    for word, model in (("plain", "cheap"), ("twisty", "mid"), ("riddle", "strong")):
        assert per.loc[per["prompt"].str.contains(word), "served_model"].eq(model).mean() > 0.85
    rep = routing.evaluate(test_runs, [router], n_boot=200)
    row = rep.table.iloc[0]
    assert row["savings_pct"] > 40 and row["quality_diff_ci_lo"] > -0.08
    r = rep.routellm.loc[router.name]
    assert r["models"] == 3 and (r["weak"], r["strong"]) == ("cheap", "strong")
    assert 0.5 < r["pgr"] and r["pgr_ci_lo"] <= r["pgr"] <= r["pgr_ci_hi"]
    assert np.isnan(r["apgr"]) and "3 models: APGR and CPT are defined for a weak/strong pair" in r["note"]


def test_three_model_router_tunes_saves_and_decides_live():
    pytest.importorskip("sklearn")
    import json

    tune_runs = ladder_runs(450, seed=3)
    router = routing.Learned("cheap", "mid", "strong").fit(tune_runs)
    tuned = routing.tune(router, tune_runs, max_quality_loss=0.05)
    assert tuned.tuned_on["feasible"] and tuned.threshold != router.threshold
    data = json.loads(json.dumps(tuned.to_dict()))
    assert data["version"] == 2 and data["models"] == ["cheap", "mid", "strong"] and len(data["coef"]) == 2
    again = routing.Learned.from_dict(data)
    prompts = tune_runs["prompt"].drop_duplicates().tolist()[:30] + ["plain one", ""]
    assert np.array_equal(again.predict_proba_prompts(prompts), tuned.predict_proba_prompts(prompts))
    decision = again.decide(next(p for p in prompts if "twisty" in p))
    assert decision.models == ["mid"] and "p(cheap not ok)" in decision.reason and "→ mid" in decision.reason
    assert routing.load_policy(tuned.save(_tmp_json())).needs() == ["cheap", "mid", "strong"]
    two = routing.Learned("cheap", "strong").fit(tune_runs).to_dict()
    assert two["version"] == 1 and "models" not in two and isinstance(two["intercept"], float)


def _tmp_json():
    import tempfile
    from pathlib import Path

    return Path(tempfile.mkdtemp()) / "router.json"


def test_the_tfidf_features_are_scikit_learns():
    pytest.importorskip("sklearn")
    from sklearn.feature_extraction.text import TfidfVectorizer

    from llmlab.routing._learned import _TOKEN, _TfidfFeatures

    prompts = ladder_runs(120, seed=4)["prompt"].drop_duplicates().tolist() + [
        "", "a", "Élan élan ÉLAN x2 x2 ²³", "zebra zebra zebra", "one two one two", "it's 3.14 — ok?"]
    features, design = _TfidfFeatures.fit(prompts, [None] * len(prompts))
    reference = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, token_pattern=_TOKEN.pattern)
    words = reference.fit_transform(prompts)
    assert features.vocabulary == list(reference.get_feature_names_out())
    np.testing.assert_allclose(features.idf, reference.idf_, rtol=1e-12)
    n = len(features.vocabulary)
    np.testing.assert_allclose(design[:, :n].toarray(), words.toarray(), atol=1e-12)
    np.testing.assert_allclose(features.matrix(prompts, [None] * len(prompts))[:, :n].toarray(), words.toarray(),
                               atol=1e-12)
    lonely, _ = _TfidfFeatures.fit(["alpha beta", "gamma delta"], [None, None])     # nothing in two prompts
    assert lonely.vocabulary == ["alpha", "alpha beta", "beta", "delta", "gamma", "gamma delta"]


# --- 6. per task, AUC and calibration, the data check --------------------------------------------

def test_by_task_gives_per_task_savings_quality_and_routing_shares_with_intervals():
    runs = subject_runs(600, subjects=4, seed=5)
    tasks = sorted(runs["task"].unique())
    mapping = {tasks[0]: "weak", tasks[1]: "weak"}
    rep = routing.evaluate(runs, [routing.TaskMap(mapping, default="strong", name="map"),
                                  routing.Threshold("prompt_chars", 100, weak="weak", strong="strong", name="len")],
                           n_boot=300)
    table = rep.by_task()
    assert set(table.index.get_level_values("policy")) == {"map", "len"}
    assert table.loc["map"]["prompts"].sum() == rep.n_prompts
    row = table.loc[("map", tasks[0])]
    assert row["routed_weak"] == 1.0 and row["routed_weak_ci_lo"] == row["routed_weak_ci_hi"] == 1.0
    assert row["savings_pct"] == pytest.approx(100 * (1 - 0.001 / 0.02))
    assert table.loc[("map", tasks[3]), "routed_strong"] == 1.0 and table.loc[("map", tasks[3]), "savings_pct"] == 0
    for _, r in table.iterrows():
        assert r["quality_ci_lo"] <= r["quality"] <= r["quality_ci_hi"]
        assert r["quality_diff_ci_lo"] <= r["quality_diff"] <= r["quality_diff_ci_hi"]
    one = rep.by_task("len")
    assert list(one.index.get_level_values("policy").unique()) == ["len"]
    with pytest.raises(InputError, match="no column 'subject'"):
        rep.by_task(column="subject")
    with pytest.raises(InputError, match="no policy 'nope'"):
        rep.by_task("nope")


def test_a_learned_routers_auc_falls_on_subjects_it_never_saw():
    pytest.importorskip("sklearn")
    runs = subject_runs(1600, subjects=20, seed=6)
    aucs = {}
    splits = {"random": routing.split(runs, seed=1), "grouped": routing.split(runs, groups="task", seed=1)}
    for kind, halves in splits.items():
        router = routing.Learned("weak", "strong", name="learned").fit(halves.tune)
        rep = routing.evaluate(halves.test, [router], n_boot=0)
        row = rep.auc.loc[("learned", "weak")]
        assert row["held_out"] and row["fitted_on"] == 0 and row["prompts"] == rep.n_prompts
        assert row["auc_ci_lo"] < row["auc"] < row["auc_ci_hi"]
        aucs[kind] = row["auc"]
    # the router learns which subjects are hard: it ranks new prompts of those well, new subjects not
    assert aucs["random"] > 0.6 and aucs["grouped"] < aucs["random"] - 0.1      # measured: 0.65 vs 0.51


def test_auc_and_calibration_say_when_the_prompts_were_in_the_fit():
    pytest.importorskip("sklearn")
    runs = subject_runs(600, subjects=6, seed=7)
    router = routing.Learned("weak", "strong", name="l").fit(runs)
    rep = _quiet(routing.evaluate, runs, [router, routing.Always("weak")], n_boot=0)
    auc = rep.auc
    assert list(auc.index) == [("l", "weak")] and not auc.loc[("l", "weak"), "held_out"]
    assert auc.loc[("l", "weak"), "fitted_on"] == 600
    cal = rep.calibration("l", bins=5)
    assert len(cal) == 5 and cal["prompts"].sum() == 600 and not cal.attrs["held_out"]
    assert 0 <= cal.attrs["ece"] < 0.2 and 0 < cal.attrs["brier"] < 0.3
    filled = cal[cal["prompts"] > 0]
    assert ((filled["observed_ci_lo"] <= filled["observed"]) & (filled["observed"] <= filled["observed_ci_hi"])).all()
    with pytest.raises(InputError, match="reads a learned router's probabilities"):
        rep.calibration("always(weak)")
    with pytest.raises(InputError, match="bins must be a whole number"):
        rep.calibration("l", bins=1)
    with pytest.raises(InputError, match="predicts weak, not 'strong'"):
        rep.calibration("l", model="strong")
    three = routing.Learned("weak", "mid", "strong", name="three").fit(
        subject_runs(400, subjects=4, seed=8, models=("weak", "mid", "strong")))
    held = subject_runs(300, subjects=4, seed=9, models=("weak", "mid", "strong"))
    rows = routing.evaluate(held, [three], n_boot=0).auc
    assert list(rows.index) == [("three", "weak"), ("three", "mid")]


def test_the_data_check_flags_tasks_below_chance_and_all_zero_or_all_one():
    runs = subject_runs(800, subjects=5, seed=10)
    broken = runs.copy()
    strong_s0 = (broken["task"] == "subject00") & (broken["requested_model"] == "strong")
    rng = np.random.default_rng(0)
    broken.loc[strong_s0, "score"] = (rng.random(int(strong_s0.sum())) < 0.03).astype(float)   # a shifted key
    broken.loc[(broken["task"] == "subject01") & (broken["requested_model"] == "weak"), "score"] = 0.0
    broken.loc[(broken["task"] == "subject02") & (broken["requested_model"] == "strong"), "score"] = 1.0
    check = routing.check_data(broken, chance=0.25)
    flags = check["flag"]
    assert flags.loc[("subject00", "strong")] == "below chance"
    assert flags.loc[("subject01", "weak")] == "below chance, all 0"
    assert flags.loc[("subject02", "strong")] == "all 1"
    assert check.attrs["flagged"] == 3 and (flags.iloc[:3] != "").all() and (flags.iloc[3:] == "").all()
    cell = check.loc[("subject00", "strong")]
    assert cell["upper_bound"] < 0.25 and cell["chance"] == 0.25
    assert "3 of 10" in check.attrs["check"]
    per_task = routing.check_data(broken, chance={"subject00": 0.25})          # only declared tasks
    assert per_task.loc[("subject01", "weak"), "flag"] == "all 0"
    assert routing.check_data(runs, chance=0.25).attrs["flagged"] == 0       # the clean matrix
    rep = routing.evaluate(broken, [routing.Always("weak")], n_boot=0)
    assert rep.data_check(chance=0.25).attrs["flagged"] == 3
    for bad in (1.5, -0.1, "0.25", True, {"subject00": 2}):
        with pytest.raises(InputError, match="chance") as info:
            routing.check_data(runs, chance=bad)
        assert "\n" not in str(info.value)


def test_apgr_intervals_from_the_normal_limit_match_exact_resampling():
    from llmlab.routing import _stats

    runs, f = _known_curve_world(25_000, seed=3)       # above 20,000 prompts: the normal limit
    policy = [routing.Threshold(f, 0.5, weak="weak", strong="strong", name="t")]
    columns = ["apgr_ci_lo", "apgr_ci_hi", "cpt50_ci_lo", "cpt50_ci_hi", "pgr_ci_lo", "pgr_ci_hi"]
    normal = routing.evaluate(runs, policy, n_boot=1000).routellm.loc["t", columns]
    limit = _stats.EXACT_BOOTSTRAP_MAX_PROMPTS
    try:
        _stats.EXACT_BOOTSTRAP_MAX_PROMPTS = 10**9
        exact = routing.evaluate(runs, policy, n_boot=1000).routellm.loc["t", columns]
    finally:
        _stats.EXACT_BOOTSTRAP_MAX_PROMPTS = limit
    for metric in ("apgr", "cpt50", "pgr"):
        width = exact[f"{metric}_ci_hi"] - exact[f"{metric}_ci_lo"]
        for end in ("lo", "hi"):
            assert abs(normal[f"{metric}_ci_{end}"] - exact[f"{metric}_ci_{end}"]) < 0.15 * width, (metric, end)
