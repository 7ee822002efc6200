"""Routing that reads the answer: a learned Verifier and a SelfConsistency cascade — fitted and
tuned on the tune half, judged on held-out prompts (AUROC cross-checked with scikit-learn, one
operating point recomputed by hand), every sample billed, saved as JSON, used live by lab.route
and %%llm model=auto against a real test server, and refusing bad input in one line."""
from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from fakeserver import ModelSpec
from sklearn.metrics import roc_auc_score

from llmlab import InputError, Lab, routing, scoring
from llmlab.routing._matrix import build_matrix
from llmlab.routing._verifier import MIN_LABELLED

WEAK, STRONG = "weak", "strong"
COST = {WEAK: 0.001, STRONG: 0.01}


def _answer(i: int) -> tuple[str, float]:
    """The weak model's answer to prompt i and its score: wrong arithmetic, hedging or a missing
    final answer are mostly wrong; a clean worked answer is mostly right (with some noise)."""
    a, b = 10 + i % 17, 3 + i % 11
    kind = i % 6
    if kind == 0:
        return f"{a} + {b} = {a + b + 1}\n#### {a + b + 1}", 0.0
    if kind == 1:
        return f"I'm not sure, maybe {a + b}?", float(i % 4 == 0)
    right = float(i % 13 != 0)
    return f"First {a} + {b} = {a + b}.\n#### {a + b if right else a + b + 2}", right


def _runs(n: int = 240, samples: int = 1, seed: int = 0) -> pd.DataFrame:
    rows = []
    for i in range(n):
        prompt = f"Tom has {10 + i % 17} apples and gets {3 + i % 11} more. How many? (#{i})"
        text, score = _answer(i)
        for model, k in ((WEAK, samples), (STRONG, 1)):
            for r in range(k):
                # later samples of a wrongly worked answer disagree with it; of a clean one they agree
                sample = text if r == 0 or score == 1.0 else f"#### {r * 7 + i}"
                answer, quality = (sample, score) if model == WEAK else (f"#### {i}", float(i % 29 != 0))
                rows.append({"id": len(rows) + 1, "prompt_id": f"p{i}", "request_id": f"{model}-{i}-{r}",
                             "prompt": prompt, "task": "maths", "requested_model": model, "repeat": r,
                             "attempt": 1, "status": "ok", "response_text": answer,
                             "score": quality if r == 0 else np.nan, "cost_usd": COST[model],
                             "latency_s": 1.0 + r if model == WEAK else 2.0, "waited_s": 0.0,
                             "completion_tokens": float(len(answer.split())), "finish_reason": "stop"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def halves():
    return routing.split(_runs(), test_size=0.5, seed=0, by="task")


@pytest.fixture(scope="module")
def fitted(halves):
    return routing.Verifier(WEAK, STRONG, threshold=0.5).fit(halves[0])


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kw)


def test_held_out_auroc_matches_scikit_learn(fitted, halves):
    test = halves[1]
    report = _quiet(routing.evaluate, test, [fitted], n_boot=0)
    mx = build_matrix(test, "score", [WEAK, STRONG])
    scores, bad = fitted.values(mx), mx.score[:, 0] < 0.5
    independent = roc_auc_score(bad, scores)
    assert report.cascades.loc[fitted.name, "auroc"] == pytest.approx(independent, abs=1e-12)
    assert independent > 0.85           # the planted signals are learnt, on prompts it never saw
    assert not fitted.fitted_on & set(mx.prompt_ids)


def test_one_operating_point_recomputed_by_hand(fitted, halves):
    test = halves[1]
    policy = fitted.with_threshold(0.4)
    report = _quiet(routing.evaluate, test, [policy], n_boot=0)
    weak = test[test["requested_model"] == WEAK].set_index("prompt_id")
    strong = test[test["requested_model"] == STRONG].set_index("prompt_id").loc[weak.index]
    p = np.array([policy.score_answers(prompt, text) for prompt, text in zip(weak["prompt"], weak["response_text"],
                                                                             strict=True)])
    up = p >= 0.4
    cost = COST[WEAK] + np.where(up, COST[STRONG], 0.0)      # the cheap answer is always paid for
    quality = np.where(up, strong["score"], weak["score"])
    row = report.table.loc[policy.name]
    assert row["savings_pct"] == pytest.approx(100 * (1 - cost.sum() / (COST[STRONG] * len(weak))))
    assert row["quality"] == pytest.approx(quality.mean())
    assert row["quality_diff"] == pytest.approx(quality.mean() - strong["score"].mean())
    assert row["latency_p50_s"] == pytest.approx(np.median(np.where(up, 3.0, 1.0)))
    good = weak["score"].to_numpy() >= 0.5
    cascade = report.cascades.loc[policy.name]
    assert cascade["escalated_pct"] == pytest.approx(100 * up.mean())
    assert cascade["precision"] == pytest.approx(good[~up].mean())
    assert cascade["recall"] == pytest.approx((~up)[good].mean())


def test_tune_sets_the_knob_on_out_of_fold_scores_of_the_tune_half(fitted, halves):
    tune_runs, test = halves
    tuned = routing.tune(fitted, tune_runs, max_quality_loss=0.02)
    assert tuned.threshold != fitted.threshold and tuned.tuned_on["prompts"] == 120
    assert tuned._model is fitted._model                 # the knob moved, the fit is kept
    report = _quiet(routing.evaluate, test, [tuned, routing.Oracle()], n_boot=300)
    curve = report.threshold_curve[report.threshold_curve["policy"] == tuned.name]
    assert len(curve) > 10 and report.routellm.loc[tuned.name, "apgr"] > 0.5
    front = report.most_savings(max_quality_loss=0.02)
    best = front.loc[tuned.name]
    assert best["savings_lo"] <= best["savings_pct"] <= best["savings_hi"] and best["quality_diff"] >= -0.02
    assert best["savings_pct"] >= report.table.loc[tuned.name, "savings_pct"] - 1e-9 or \
        report.table.loc[tuned.name, "quality_diff"] < -0.02
    assert front.loc["oracle", "savings_pct"] == pytest.approx(report.table.loc["oracle", "savings_pct"])


def test_self_consistency_bills_every_sample(halves):
    runs = _runs(samples=3)
    policy = routing.SelfConsistency(WEAK, STRONG, samples=3, threshold=0.5)
    report = _quiet(routing.evaluate, runs, [policy], n_boot=0)
    mx = build_matrix(runs, "score", [WEAK, STRONG])
    up = policy.values(mx) >= 0.5
    assert 0 < up.mean() < 1
    cost = 3 * COST[WEAK] + np.where(up, COST[STRONG], 0.0)
    row = report.table.loc[policy.name]
    assert row["total_cost_usd"] == pytest.approx(cost.sum())
    assert row["calls_per_request"] == pytest.approx(3 + up.mean())
    assert row["latency_p95_s"] == pytest.approx(np.percentile(np.where(up, 3.0 + 2.0, 3.0), 95))  # slowest sample
    assert report.cascades.loc[policy.name, "samples"] == 3
    verifier = routing.Verifier(WEAK, STRONG, samples=3).fit(runs)
    assert abs(verifier.coefficients()["agreement"]) > 0     # agreement is one of its features


def test_missing_samples_and_other_bad_input_are_one_line_errors(halves):
    tune_runs = halves[0]
    with pytest.raises(InputError, match=r"fewer than 3 recorded answers of 'weak'.*n=3"):
        _quiet(routing.evaluate, tune_runs, [routing.SelfConsistency(WEAK, STRONG, samples=3)], n_boot=0)
    cases = [
        (lambda: routing.Verifier(WEAK, STRONG, samples=0), "samples= is how many answers"),
        (lambda: routing.SelfConsistency(WEAK, STRONG, samples=1), "from 2 to"),
        (lambda: routing.Verifier(WEAK, WEAK), "the same model"),
        (lambda: routing.Verifier(WEAK, STRONG, checks=[scoring.numeric()]), "needs the expected answer"),
        (lambda: routing.Verifier(WEAK, STRONG).fit(_runs(MIN_LABELLED - 1)),
         f"only {MIN_LABELLED - 1} scored answers.*at least {MIN_LABELLED}"),
        (lambda: routing.Verifier(WEAK, STRONG).fit(tune_runs.assign(score=1.0)), "all 120 answers .* good enough"),
        (lambda: routing.Verifier("tiny", STRONG).fit(tune_runs), "no answers of the cheap model 'tiny'"),
        (lambda: routing.Verifier(WEAK, STRONG).fit(tune_runs.assign(response_text=None)), "have no response_text"),
        (lambda: routing.Verifier(WEAK, STRONG).fit(tune_runs.assign(score=np.nan)), "have no 'score'"),
        (lambda: routing.Verifier(WEAK, STRONG).decide("hi").verdict([{"response_text": "x", "status": "ok"}]),
         "not fitted"),
    ]
    for make, message in cases:
        with pytest.raises(InputError, match=message) as caught:
            make()
        assert "\n" not in str(caught.value)


def test_saved_verifier_scores_exactly_as_the_fitted_one(fitted, tmp_path):
    path = fitted.save(tmp_path / "verifier.json")
    data = json.loads(path.read_text())
    assert data["kind"] == "Verifier" and data["model"]["features"] == fitted.feature_names
    loaded = routing.load_policy(path)
    answers = ["3 + 4 = 8\n#### 8", "3 + 4 = 7\n#### 7", "I'm not sure"]
    assert [loaded.score_answers("q", a) for a in answers] == [fitted.score_answers("q", a) for a in answers]
    assert loaded.name == fitted.name and loaded.threshold == fitted.threshold
    code = ("import json, sys\nsys.modules['sklearn'] = None\nfrom llmlab import routing\n"
            f"v = routing.load_policy({str(path)!r})\n"
            f"print(json.dumps([v.score_answers('q', a) for a in {answers!r}]))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [fitted.score_answers("q", a) for a in answers]   # no scikit-learn needed
    with pytest.raises(InputError, match="does not export as standalone code.*load_policy"):
        fitted.to_code()
    data["model"]["coef"] = data["model"]["coef"][:-1]
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="'coef' must be"):
        routing.load_policy(path)
    with pytest.raises(InputError, match="no training data in memory"):
        routing.tune(routing.load_policy(fitted.save(tmp_path / "again.json")), _runs(60))
    with pytest.raises(InputError, match="Python function"):
        routing.Verifier(WEAK, STRONG, checks=[len]).fit(_runs(60)).save(tmp_path / "f.json")
    checked = routing.Verifier(WEAK, STRONG, checks=["json_valid"]).fit(_runs(60))
    assert routing.load_policy(checked.save(tmp_path / "c.json")).feature_names[-1] == "check:json_valid"
    consistency = routing.SelfConsistency(WEAK, STRONG, samples=4, threshold=0.3, name="sc")
    again = routing.load_policy(consistency.save(tmp_path / "sc.json"))
    assert (again.name, again.samples, again.threshold) == ("sc", 4, 0.3)


LIVE_PROMPT = "Tom has 12 apples and gets 4 more. How many? (#999)"     # like the prompts it was fitted on


@pytest.fixture
def srv(serve):
    return serve({WEAK: ModelSpec(answers=["12 + 4 = 17\n#### 17", "First 12 + 4 = 16.\n#### 16"]),
                  STRONG: ModelSpec(text="#### 4"),
                  "sampler": ModelSpec(answers=["#### 4", "#### 7", "#### 9", "#### 4", "#### 4", "#### 4"])})


@pytest.fixture
def lab(srv, tmp_path):
    with Lab(base_url=srv.base_url, db=str(tmp_path / "runs.sqlite"), retries=0, quiet=True) as lab:
        yield lab


def test_a_verifier_routes_live_and_records_why(lab, srv, fitted):
    policy = fitted.with_threshold(0.5)
    wrong = lab.route(LIVE_PROMPT, policy=policy, cache=False)          # the weak answer's sum is wrong
    assert [r.model for r in srv.requests if r.model] == [WEAK, STRONG]
    assert list(wrong.df["requested_model"]) == [WEAK, STRONG]
    assert wrong.df["route_reason"].iloc[0] == f"{policy.name}: first weak"
    assert wrong.df["route_reason"].iloc[1].startswith("weak's answer rejected: p(not ok) 0.")
    assert wrong.df["route_reason"].iloc[1].endswith("≥ 0.5 → strong")
    kept = lab.route(LIVE_PROMPT + " ", policy=policy, cache=False)      # right this time: kept
    assert list(kept.df["requested_model"]) == [WEAK] and kept.text(WEAK) == "First 12 + 4 = 16.\n#### 16"
    assert set(lab.runs()["policy"]) == {policy.name}


def test_self_consistency_samples_live_and_bills_each_sample(lab, srv):
    policy = routing.SelfConsistency("sampler", STRONG, samples=3, threshold=0.5)
    first = lab.route("What is 2 + 2?", policy=policy, cache=False)          # 4, 7, 9: they disagree
    assert list(first.df["requested_model"]) == ["sampler"] * 3 + [STRONG]
    assert sorted(first.df["repeat"]) == [0, 0, 1, 2] and first.df["run_id"].nunique() == 1
    assert first.df["route_reason"].iloc[-1] == ("sampler's answer rejected: 1 of 3 samples agree "
                                                 "(disagreement 0.67 ≥ 0.5) → strong")
    assert first.df["route_reason"].iloc[0].endswith("first sampler ×3")
    assert first.summary().set_index("model").loc["sampler", "n"] == 3    # three recorded, costed requests
    second = lab.route("What is 2 + 2 now?", policy=policy, cache=False)     # 4, 4, 4: kept
    assert list(second.df["requested_model"]) == ["sampler"] * 3
    assert len(srv.requests_for(STRONG)) == 1


def test_the_llm_magic_routes_through_a_verifier(srv, fitted):
    from IPython.core.interactiveshell import InteractiveShell

    from llmlab.magics import load_ipython_extension, unload_ipython_extension

    shell = InteractiveShell.instance()
    unload_ipython_extension(shell)
    shell.extension_manager.loaded.discard("llmlab")
    load_ipython_extension(shell)
    try:
        shell.run_line_magic("config", f'LLMLab.base_url = "{srv.base_url}"')
        shell.user_ns["checker"] = fitted.with_threshold(0.5)
        res = shell.run_cell_magic("llm", "model=auto policy=checker cache=false", LIVE_PROMPT)
        assert list(res.df["requested_model"]) == [WEAK, STRONG]
    finally:
        unload_ipython_extension(shell)
        shell.extension_manager.loaded.discard("llmlab")
