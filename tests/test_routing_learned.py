"""routing Learned: fit on scored runs, predict from the prompt alone, save/load as JSON exactly."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from llmlab import InputError
from llmlab.routing import Learned, Random, evaluate

WEAK, STRONG = "cheap", "big"
_WORDS = ["apple", "river", "stone", "cloud", "music", "paper", "glass", "tiger", "bread", "light",
          "candle", "window", "garden", "rocket", "pencil", "forest"]


def planted_runs(n: int, seed: int, hard_word: str = "zebra", noise: float = 0.05) -> pd.DataFrame:
    """A prompt × 2-model run log: prompts containing ``hard_word`` defeat the weak model.

    The strong model is right 95 % of the time everywhere; the weak one on ~95 % of the easy
    prompts and ~5 % of the hard ones; a third of the prompts are hard. Lengths are alike, so
    only the word tells them apart.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        words = list(rng.choice(_WORDS, size=8))
        hard = i % 3 == 0
        if hard:
            words[int(rng.integers(8))] = hard_word
        prompt = "Please answer: " + " ".join(words) + "?"
        task = ["alpha", "beta"][i % 2]
        for model, p_ok in ((WEAK, 0.05 if hard else 0.95), (STRONG, 0.95)):
            good = rng.random() < (p_ok if not noise else p_ok)
            rows.append({"prompt_id": f"s{seed}-{i}", "task": task, "prompt": prompt,
                         "requested_model": model, "status": "ok", "score": float(good),
                         "cost_usd": 0.001 if model == WEAK else 0.01, "latency_s": 0.1,
                         "repeat": 0})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def tune():
    return planted_runs(240, seed=1)


@pytest.fixture(scope="module")
def test_runs():
    return planted_runs(240, seed=2)


@pytest.fixture(scope="module")
def fitted(tune):
    return Learned(WEAK, STRONG).fit(tune)


def test_fit_predicts_the_planted_signal(fitted, test_runs):
    prompts = test_runs.drop_duplicates("prompt_id")["prompt"]
    p = fitted.predict_proba_prompts(prompts.tolist())
    hard = prompts.str.contains("zebra").to_numpy()
    assert p.shape == (len(prompts),) and ((p > 0) & (p < 1)).all()
    assert p[hard].mean() > 0.6 and p[~hard].mean() < 0.2     # held-out prompts: new word mixes
    assert fitted.training["n_prompts"] == 240 and fitted.training["weak"] == WEAK
    assert 0.3 < fitted.training["weak_not_ok_rate"] < 0.4


def test_beats_random_on_held_out_prompts(fitted, test_runs):
    learned_share = float(np.mean(fitted.predict_proba_prompts(
        test_runs.drop_duplicates("prompt_id")["prompt"].tolist()) >= 0.5))
    report = evaluate(test_runs, [fitted, Random(learned_share, weak=WEAK, strong=STRONG)], n_boot=0)
    table = report.table
    learned, rand = table.iloc[0], table.iloc[1]
    # random routing at the same share of strong calls, in expectation (its realised draws vary)
    q_weak, q_strong = (report.models.loc[f"always({m})", "quality"] for m in (WEAK, STRONG))
    expected_random = learned_share * q_strong + (1 - learned_share) * q_weak
    assert learned["quality"] > expected_random + 0.12     # same share of strong calls, better picks
    assert learned["quality"] > rand["quality"]
    assert learned["quality"] > 0.85 and learned["savings_pct"] > 40
    assert learned.name.startswith("learned(")


def test_threshold_is_the_knob_and_values_are_probabilities(tune, test_runs):
    router = Learned(WEAK, STRONG, threshold=0.0).fit(tune)
    low = evaluate(test_runs, [router], n_boot=0).table.iloc[0]
    router.threshold = 1.01
    high = evaluate(test_runs, [router], n_boot=0).table.iloc[0]
    assert low[f"share_{STRONG}"] == 1.0 and high[f"share_{WEAK}"] == 1.0


def test_routellm_sweep_covers_the_learned_router(fitted, test_runs):
    report = evaluate(test_runs, [fitted], n_boot=0)
    row = report.routellm.iloc[0]
    assert row["apgr"] > 0.8   # a good router recovers most of the gap early; random gives 0.5


def test_json_round_trip_reproduces_probabilities_exactly(fitted, test_runs):
    data = json.loads(json.dumps(fitted.to_dict()))
    again = Learned.from_dict(data)
    prompts = test_runs["prompt"].tolist()[:200] + ["", "Zebra!", "a", "zebra zebra zebra"]
    tasks = (test_runs["task"].tolist()[:200] + [None, "alpha", "gamma", "beta"])
    assert np.array_equal(fitted.predict_proba_prompts(prompts, tasks),
                          again.predict_proba_prompts(prompts, tasks))
    assert again.name == fitted.name and again.threshold == fitted.threshold
    assert (again.weak, again.strong) == (WEAK, STRONG)
    assert {"vocabulary", "idf", "coef", "intercept", "scaler_mean", "scaler_scale",
            "threshold", "tasks"} <= set(data)


def test_own_predictions_match_scikit_learn(fitted, test_runs):
    prompts = test_runs["prompt"].tolist()
    tasks = test_runs["task"].tolist()
    ours = fitted.predict_proba_prompts(prompts, tasks)
    theirs = fitted._estimators[0].predict_proba(fitted._features.matrix(prompts, tasks))[:, 1]
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True,
                                 vocabulary=fitted._features.vocabulary)
    vectorizer.idf_ = fitted._features.idf
    words = fitted._features.matrix(prompts, tasks)[:, :len(fitted._features.vocabulary)]
    np.testing.assert_allclose(words.toarray(), vectorizer.transform(prompts).toarray(), atol=1e-12)


def test_saved_router_predicts_without_scikit_learn(fitted, tmp_path):
    path = tmp_path / "router.json"
    path.write_text(json.dumps(fitted.to_dict()))
    expected = fitted.predict_proba_prompts(["Please answer: zebra?", "Please answer: apple?"]).tolist()
    code = (
        "import json, sys\n"
        "sys.modules['sklearn'] = None\n"          # importing scikit-learn now fails
        "from llmlab.routing import Learned\n"
        f"r = Learned.from_dict(json.load(open({str(path)!r})))\n"
        "print(json.dumps(r.predict_proba_prompts(['Please answer: zebra?', 'Please answer: apple?']).tolist()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == expected


def test_refuses_runs_without_the_weak_models_scores(tune):
    with pytest.raises(InputError, match="no rows for the weak model 'tiny'"):
        Learned("tiny", STRONG).fit(tune)
    with pytest.raises(InputError, match="no 'score' column"):
        Learned(WEAK, STRONG).fit(tune.drop(columns="score"))
    unscored = tune.copy()
    unscored.loc[(unscored["requested_model"] == WEAK).to_numpy().nonzero()[0][:3], "score"] = np.nan
    with pytest.warns(RuntimeWarning, match=r"3 prompts have no known 'score' \(cheap: 3"):
        fitted = Learned(WEAK, STRONG).fit(unscored)          # unknown labels: left out and counted
    assert fitted.training["unknown_labels"] == 3
    assert fitted.training["n_prompts"] == unscored["prompt_id"].nunique() - 3
    everything = unscored.copy()
    everything.loc[everything["requested_model"] == WEAK, "score"] = np.nan
    with pytest.raises(InputError, match="all verdicts unknown"):
        Learned(WEAK, STRONG).fit(everything)
    strong_only = tune[tune["requested_model"] == STRONG]
    with pytest.raises(InputError, match="weak model"):
        Learned(WEAK, STRONG).fit(strong_only)


def test_fit_uses_only_the_weak_models_rows_and_error_rows_are_not_ok(tune):
    weak_only = tune[tune["requested_model"] == WEAK].copy()
    a = Learned(WEAK, STRONG).fit(tune).predict_proba_prompts(["Please answer: zebra apple?"])
    b = Learned(WEAK, STRONG).fit(weak_only).predict_proba_prompts(["Please answer: zebra apple?"])
    assert np.array_equal(a, b)
    errors = weak_only.assign(status="error", score=np.nan)
    with pytest.warns(RuntimeWarning, match="all not good enough"):
        router = Learned(WEAK, STRONG).fit(errors)
    assert router.training["weak_not_ok_rate"] == 1.0
    assert (router.predict_proba_prompts(["anything"]) > 0.99).all()


def test_weak_ok_at_sets_what_good_enough_means(tune):
    partial = tune.assign(score=np.where(tune["score"] > 0, 0.7, 0.0))
    lenient = Learned(WEAK, STRONG).fit(partial, weak_ok_at=0.6)
    with pytest.warns(RuntimeWarning, match="all not good enough"):
        strict = Learned(WEAK, STRONG).fit(partial, weak_ok_at=0.8)
    assert lenient.training["weak_not_ok_rate"] < 0.5 and strict.training["weak_not_ok_rate"] == 1.0


def test_unfitted_and_bad_arguments():
    router = Learned(WEAK, STRONG)
    with pytest.raises(InputError, match="not fitted"):
        router.predict_proba_prompts(["x"])
    with pytest.raises(InputError, match="not fitted"):
        router.to_dict()
    for models, kwargs in ((("a", "a"), {}), (("a", "b"), {"features": "bow"}), (("a", "b"), {"threshold": "high"}),
                           (("", "b"), {}), (("a",), {}), (("a", 3), {})):
        with pytest.raises(InputError):
            Learned(*models, **kwargs)
    with pytest.raises(InputError, match="format"):
        Learned.from_dict({"weak": "a"})
    with pytest.raises(InputError, match="version"):
        Learned.from_dict({"format": "llmlab.routing.Learned", "version": 99})


def test_live_prediction_input_errors(fitted):
    assert fitted.predict_proba_prompts("Please answer: zebra?").shape == (1,)
    assert fitted.predict_proba_prompts([]).shape == (0,)
    for bad in (None, 3):
        with pytest.raises(InputError, match="a prompt or a list of prompts"):
            fitted.predict_proba_prompts(bad)
    with pytest.raises(InputError, match="2 items for 1 prompts"):
        fitted.predict_proba_prompts(["x"], tasks=["a", "b"])


def test_tampered_save_is_refused(fitted):
    data = fitted.to_dict()
    data["coef"] = data["coef"][:-1]
    with pytest.raises(InputError, match="coefficients"):
        Learned.from_dict(data)
    data = fitted.to_dict()
    data["ngram_range"] = [1, 3]
    with pytest.raises(InputError, match="ngram_range"):
        Learned.from_dict(data)
    for key, value, message in (("idf", [1.0], "idf must be"), ("coef", None, "coef must hold finite numbers"),
                                ("weak", 3, "'weak' must be a model name"),
                                ("vocabulary", [1, 2], "distinct strings"),
                                ("scaler_scale", [0.0, 1.0], "positive"),
                                ("intercept", float("nan"), "intercept must hold finite numbers"),
                                ("threshold", float("nan"), "threshold")):
        data = fitted.to_dict()
        data[key] = value
        with pytest.raises(InputError, match=message):
            Learned.from_dict(data)


def test_tuned_and_saved_routers_keep_a_true_name(fitted, tune):
    from llmlab.routing import tune as tune_knob

    tuned = tune_knob(fitted, tune, max_quality_loss=0.05)
    assert tuned.threshold != fitted.threshold and f"p ≥ {tuned.threshold:g}:" in tuned.name
    np.testing.assert_array_equal(tuned.predict_proba_prompts(["zebra"]), fitted.predict_proba_prompts(["zebra"]))
    again = Learned.from_dict(json.loads(json.dumps(tuned.to_dict())))
    assert again.name == tuned.name and again.threshold == tuned.threshold
    all_strong = tuned.with_threshold(float("-inf"))
    assert Learned.from_dict(all_strong.to_dict()).threshold == float("-inf")
    named = Learned(WEAK, STRONG, name="mine").fit(tune)
    assert Learned.from_dict(named.to_dict()).name == "mine" and named.with_threshold(0.2).name == "mine"


def test_callable_features_and_custom_estimator(tune, test_runs):
    def has_zebra(prompts, tasks):
        return [[float("zebra" in p), len(p)] for p in prompts]

    own = Learned(WEAK, STRONG, features=has_zebra).fit(tune)
    report = evaluate(test_runs, [own], n_boot=0).table.iloc[0]
    assert report["quality"] > 0.85 and own.name.startswith("learned(has_zebra")
    with pytest.raises(InputError, match="features function.*cannot be saved without pickle"):
        own.to_dict()

    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=20, random_state=0)
    custom = Learned(WEAK, STRONG, estimator=forest).fit(tune)
    assert not hasattr(forest, "estimators_")       # the given estimator is cloned, not fitted
    assert evaluate(test_runs, [custom], n_boot=0).table.iloc[0]["quality"] > 0.85
    with pytest.raises(InputError, match="RandomForestClassifier.*cannot be saved"):
        custom.to_dict()

    from sklearn.linear_model import LogisticRegression

    strong_reg = Learned(WEAK, STRONG, estimator=LogisticRegression(C=0.1)).fit(tune)
    again = Learned.from_dict(strong_reg.to_dict())   # any logistic regression saves
    assert np.array_equal(again.predict_proba_prompts(["zebra"]), strong_reg.predict_proba_prompts(["zebra"]))


def test_bad_feature_function_is_one_line(tune):
    with pytest.raises(InputError, match="finite"):
        Learned(WEAK, STRONG, features=lambda prompts, tasks: [[1.0]]).fit(tune)


def test_importing_llmlab_routing_does_not_load_scikit_learn():
    code = ("import sys, llmlab, llmlab.routing, llmlab.routing._learned; "
            "print([m for m in ('sklearn', 'scipy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
