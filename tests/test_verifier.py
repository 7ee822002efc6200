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
from fakeserver import ModelSpec, wait_for
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


# --- live robustness: the verdict off the loop, the served answer, what the policy needs ---------

def test_a_slow_verdict_never_delays_the_labs_other_calls(serve, tmp_path, halves):
    """The verdict runs on a worker thread: a check that takes 2.5 s (here a sleep; before the fix,
    a backtracking regex) delays only its own route, never the timing of another call in flight."""
    import threading
    import time

    live = threading.Event()  # slow only once fitted: the fit reads 60 answers (60 × 2.5 s)

    def slow(text: str) -> float:
        if live.is_set():
            time.sleep(2.5)
        return 1.0

    verifier = routing.Verifier(WEAK, STRONG, checks=[slow]).fit(_runs(60))
    live.set()
    srv = serve({WEAK: ModelSpec(text="#### 2"), STRONG: ModelSpec(text="#### 2"),
                 "other": ModelSpec(text="one two three four five six seven eight nine ten", token_delay_s=0.1)})
    with Lab(base_url=srv.base_url, db=str(tmp_path / "r.sqlite"), retries=0, quiet=True, timeout=5) as lab:
        other = lab.submit_compare("tell me", models=["other"], cache=False)
        wait_for(lambda: srv.requests_for("other"), what="the other call in flight")
        started = time.perf_counter()
        lab.route("What is 1 + 1?", policy=verifier, cache=False)
        assert time.perf_counter() - started >= 2.5                     # the route waited for its verdict
        row = other.result().df.iloc[0]
    assert row["status"] == "ok" and row["latency_s"] < 2.0, (row["status"], row["latency_s"])   # ~1 s


@pytest.mark.parametrize("answer", [
    "(" * 400 + "1" + ")" * 400 + " + 1 = 2\n#### 2", "1" + " -" * 1000 + " 1 = 0\n#### 0",
    "<<" + "(" * 600 + "2" + ")" * 600 + "*3=6>>6", "So the answer is" + "\n" * 900 + "...",
    "#### " + " " * 20_000 + "x", "\\boxed{" + " " * 20_000, "```json\n" + " " * 20_000 + "x",
])
def test_a_hostile_answer_is_judged_live_quickly_never_a_traceback(serve, tmp_path, fitted, answer):
    import time

    srv = serve({WEAK: ModelSpec(chunks=[answer]), STRONG: ModelSpec(text="#### 2")})
    with Lab(base_url=srv.base_url, db=str(tmp_path / "r.sqlite"), retries=0, quiet=True) as lab:
        started = time.perf_counter()
        res = lab.route("What is 1 + 1?", policy=fitted, cache=False)
        assert time.perf_counter() - started < 3.0
    assert list(res.df["requested_model"])[0] == WEAK and res.served is not None


def test_a_hostile_answer_among_the_training_answers_is_read_like_any_other():
    hostile = ["(" * 400 + "1" + ")" * 400 + " + 1 = 2\n#### 2", "So the answer is" + "\n" * 900,
               "<<" + "(" * 600 + "2" + ")" * 600 + "*3=6>>6", "#### " + " " * 20_000 + "x"]
    runs = _runs(120)
    weak = runs.index[(runs["requested_model"] == WEAK)][:len(hostile)]
    runs.loc[weak, "response_text"] = hostile
    assert routing.Verifier(WEAK, STRONG).fit(runs).fitted


def test_text_is_the_answer_the_route_served(lab, srv, fitted):
    policy = routing.SelfConsistency("sampler", STRONG, samples=3, threshold=0.5)
    escalated = lab.route("What is 2 + 2?", policy=policy, cache=False)          # 4, 7, 9: up to strong
    assert escalated.text() == "#### 4" == escalated.df.loc[escalated.df["served"], "response_text"].item()
    assert escalated.df["served"].tolist() == [False, False, False, True]
    assert escalated.df.loc[escalated.df["served"], "requested_model"].item() == STRONG
    assert escalated.conversation()[-1] == {"role": "assistant", "content": "#### 4"}
    kept = lab.route("What is 2 + 2 now?", policy=policy, cache=False)          # 4, 4, 4: sample 0 served
    assert kept.df["served"].tolist() == [True, False, False] and kept.text() == "#### 4"
    verified = lab.route(LIVE_PROMPT, policy=fitted.with_threshold(0.5), cache=False)   # wrong sum: up
    assert verified.text() == "#### 4" and verified.text(WEAK) == "12 + 4 = 17\n#### 17"
    plain = lab.route("q", policy=routing.Cascade([WEAK, STRONG], accept=lambda t: False), cache=False)
    assert plain.text() == "#### 4" and plain.served == int(plain.df["id"].iloc[-1])
    one = lab.route("q", policy=routing.Always(STRONG), cache=False)
    assert one.text() == "#### 4" and one.df["served"].tolist() == [True]
    assert "served" not in lab.compare("q", models=[STRONG], cache=False).df.columns


def test_a_route_whose_last_model_fails_served_nothing(serve, tmp_path, fitted):
    srv = serve({WEAK: ModelSpec(text="12 + 4 = 17\n#### 17"), "down": ModelSpec(status=500)})
    policy = routing.Verifier(WEAK, "down")
    policy._model, policy._checks, policy.training = fitted._model, fitted._checks, fitted.training
    with Lab(base_url=srv.base_url, db=str(tmp_path / "r.sqlite"), retries=0, quiet=True) as lab:
        res = lab.route(LIVE_PROMPT, policy=policy.with_threshold(0.0), cache=False)
    assert list(res.df["requested_model"]) == [WEAK, "down"]
    assert res.served is None and res.text() is None and not res.df["served"].any()


def test_an_unfitted_verifier_is_refused_before_anything_is_sent(lab, srv):
    with pytest.raises(InputError, match="not fitted"):
        lab.route("1 + 1?", policy=routing.Verifier(WEAK, STRONG, samples=5), cache=False)
    assert srv.requests == [] and len(lab.runs()) == 0


def _logprob_runs() -> pd.DataFrame:
    """Answers that look alike but for their confidence: only the log-probabilities tell them apart."""
    rows = []
    for i in range(120):
        ok = i % 2 == 0
        for model in (WEAK, STRONG):
            rows.append({"id": len(rows) + 1, "prompt_id": f"p{i}", "prompt": "The capital of France?",
                         "requested_model": model, "repeat": 0, "status": "ok", "response_text": "Paris",
                         "score": float(ok) if model == WEAK else 1.0, "cost_usd": COST[model], "latency_s": 1.0,
                         "completion_tokens": 1.0, "finish_reason": "stop",
                         "logprob_mean": (-0.05 if ok else -2.5) if model == WEAK else np.nan,
                         "logprob_min": (-0.1 if ok else -4.0) if model == WEAK else np.nan})
    return pd.DataFrame(rows)


def test_a_verifier_fitted_on_logprobs_asks_for_them_live(serve, tmp_path):
    verifier = routing.Verifier(WEAK, STRONG, threshold=0.6).fit(_logprob_runs())
    assert verifier.uses_logprobs and not routing.Verifier(WEAK, STRONG).fit(_runs(60)).uses_logprobs
    assert verifier.decide("q").options == {"logprobs": True, "top_logprobs": 1}
    srv = serve({WEAK: ModelSpec(text="Paris", logprobs=[-2.5], logprobs_need_top=True),
                 STRONG: ModelSpec(text="Paris")})
    with Lab(base_url=srv.base_url, db=str(tmp_path / "r.sqlite"), retries=0, quiet=True) as lab:
        unsure = lab.route("The capital of France?", policy=verifier, cache=False)     # nothing passed
        assert list(unsure.df["requested_model"]) == [WEAK, STRONG]
        assert unsure.df["logprob_mean"].iloc[0] == pytest.approx(-2.5)
        weak_body = srv.requests_for(WEAK)[0].body
        assert weak_body["logprobs"] is True and weak_body["top_logprobs"] == 1
        assert "logprobs" not in srv.requests_for(STRONG)[0].body            # only the calls it reads
        with pytest.warns(RuntimeWarning, match="log-probabilities: with logprobs=False"):
            blind = lab.route("The capital of France?", policy=verifier, cache=False, logprobs=False)
        assert np.isnan(blind.df["logprob_mean"].iloc[0])
        kept = lab.route("The capital of France?", policy=verifier, cache=False, top_logprobs=3)
        assert srv.requests_for(WEAK)[-1].body["top_logprobs"] == 3           # the caller's own value kept
        assert kept.df["logprob_mean"].iloc[0] == pytest.approx(-2.5)


# --- a saved verifier is checked against one schema: every hostile form a one-line InputError ----

def _hostile(data: dict, where: str, value) -> dict:
    data = json.loads(json.dumps(data))
    node = data
    *path, last = where.split(".")
    for key in path:
        node = node[key]
    if value is _DROP:
        node.pop(last)
    else:
        node[last] = value
    return data


_DROP = object()


class _Each:
    """A value for every feature of the saved model (the right length: refused for what it holds)."""

    def __init__(self, value) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"each {self.value!r}"
_HOSTILE = [
    ("model.coef", _Each("0.1")), ("model.coef", _Each(True)), ("model.coef", _Each([1.0])),
    ("model.coef", [0.1]), ("model.coef", "0.1"), ("model.coef", _Each(1e300)), ("model.coef", None),
    ("model.intercept", 10 ** 400), ("model.intercept", "1"), ("model.intercept", True), ("model.intercept", None),
    ("model.scale", _Each(1e-308)), ("model.scale", _Each(0)), ("model.scale", _Each(-1.0)),
    ("model.fill", _Each(1e308)), ("model.mean", _Each({})), ("model", []), ("model.features", "abc"),
    ("checks", ["{not json"]), ("checks", [{"kind": "regex", "pattern": "("}]),
    ("checks", [{"kind": "regex", "pattern": "^(a+)+$"}]), ("checks", [{"kind": "regex", "pattern": r"\s*\s*x"}]),
    ("checks", [123]), ("checks", "json_valid"), ("name", ["a"]), ("name", {"a": 1}), ("named", "yes"),
    ("training.weak_ok_at", "abc"), ("training.weak_ok_at", None), ("training.C", -1.0),
    ("training.n_prompts", 1.5), ("training", []), ("training.surprise", 1), ("fitted_on", "p1"),
    ("fitted_on", [[1]]), ("samples", True), ("threshold", "0.5"), ("weak", None),
]


@pytest.mark.parametrize("where,value", _HOSTILE, ids=[f"{w}={str(v)[:20]}" for w, v in _HOSTILE])
def test_a_hostile_saved_verifier_is_refused_in_one_line(fitted, tmp_path, where, value):
    import time

    if isinstance(value, _Each):
        value = [value.value] * len(fitted.feature_names)
    data = _hostile(fitted.to_dict(), where, value)
    path = tmp_path / "v.json"
    path.write_text(json.dumps(data))
    started = time.thread_time()
    with pytest.raises(InputError) as caught:
        routing.load_policy(path)
    assert "\n" not in str(caught.value) and time.thread_time() - started < 1.0


def test_a_saved_verifier_keeps_what_evaluate_needs(fitted, halves, tmp_path):
    loaded = routing.load_policy(fitted.save(tmp_path / "v.json"))
    assert loaded.fitted_on == fitted.fitted_on and loaded.training == fitted.training
    with pytest.warns(RuntimeWarning, match="fitted on 120 of these 120 prompts"):
        routing.evaluate(halves[0], [loaded], n_boot=0)
    tuned = _quiet(routing.tune, fitted, halves[0])
    with pytest.warns(RuntimeWarning, match=r"tuned \(its threshold set\) on 120"):
        routing.evaluate(halves[0], [tuned], n_boot=0)
    deep = "[" * 100_000 + "]" * 100_000
    (tmp_path / "deep.json").write_text(deep)
    with pytest.raises(InputError, match="nested too deep"):
        routing.load_policy(tmp_path / "deep.json")


def test_built_in_scorer_checks_are_saved_and_read_back(tmp_path):
    runs = _runs(60)
    checked = routing.Verifier(WEAK, STRONG, checks=[scoring.json_valid(), scoring.regex(r"^#+"),
                                                     {"kind": "no_hedging"}]).fit(runs)
    loaded = routing.load_policy(checked.save(tmp_path / "c.json"))
    answers = ["#### 3", '{"a": 1}', "I'm not sure"]
    assert [loaded.score_answers("q", a) for a in answers] == [checked.score_answers("q", a) for a in answers]


def test_small_inputs_are_refused_or_worded_right(fitted, halves):
    for prompt in (None, 123, ["q"]):
        with pytest.raises(InputError, match="the prompt is a text"):
            fitted.score_answers(prompt, "#### 3")
    for answers in (None, 123, 1.5):
        with pytest.raises(InputError, match="the answers are a text"):
            fitted.score_answers("q", answers)
    report = _quiet(routing.evaluate, halves[1], [fitted], n_boot=50)
    for loss in ("x", None, -0.1, float("nan"), True, 10 ** 400):
        with pytest.raises(InputError, match="max_quality_loss is an absolute"):
            report.most_savings(max_quality_loss=loss)
    with pytest.raises(InputError, match=r"is not fitted: fit it on the tune half"):
        routing.tune(routing.Verifier(WEAK, STRONG), halves[0])
    one = _runs(60).assign(response_text=lambda f: f["response_text"].where(f["id"] != 1, None))
    with pytest.raises(InputError, match=r"1 answer of 'weak' has no response_text"):
        routing.Verifier(WEAK, STRONG).fit(one)
