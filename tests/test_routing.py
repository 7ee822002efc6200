"""Routing policies on hand-built runs whose every number is known; bootstrap; RouteLLM metrics;
what-if pricing."""
from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from llmlab import routing, scoring

# Four prompts, a cheap model A and a strong model B. Quality 1/0 per cell; A fails on p3.
#            p1      p2      p3       p4
# A score    1       0       (error)  1        cost .001 each (error: unknown → 0), latency 1 (p3 0.5)
# B score    1       1       1        0        cost .010 each, latency 2
CELLS = {
    ("p1", "A"): ("ok", 1.0, 0.001, 1.0, "yes"), ("p2", "A"): ("ok", 0.0, 0.001, 1.0, ""),
    ("p3", "A"): ("error", 0.0, np.nan, 0.5, None), ("p4", "A"): ("ok", 1.0, 0.001, 1.0, "yes"),
    ("p1", "B"): ("ok", 1.0, 0.010, 2.0, "b"), ("p2", "B"): ("ok", 1.0, 0.010, 2.0, "b"),
    ("p3", "B"): ("ok", 1.0, 0.010, 2.0, "b"), ("p4", "B"): ("ok", 0.0, 0.010, 2.0, "b"),
}
TASKS = {"p1": "classify", "p2": "classify", "p3": "code", "p4": "code"}
FEATURE = {"p1": 0.1, "p2": 0.9, "p3": 0.8, "p4": 0.2}


def _runs(cells=CELLS) -> pd.DataFrame:
    rows = []
    for i, ((pid, model), (status, score, cost, lat, text)) in enumerate(cells.items()):
        rows.append({"id": i + 1, "prompt_id": pid, "task": TASKS[pid], "prompt": "x" * (10 * int(pid[1])),
                     "expected": "secret", "requested_model": model, "repeat": 0, "attempt": 1,
                     "status": status, "score": score, "cost_usd": cost, "latency_s": lat,
                     # a failed call that generated nothing records no tokens (as _call.py does)
                     "prompt_tokens": 100.0 if status == "ok" else np.nan,
                     "completion_tokens": 10.0 if status == "ok" else np.nan, "response_text": text,
                     "router_score": FEATURE[pid], "cached": False})
    return pd.DataFrame(rows)


def _eval(policies, **kw):
    kw.setdefault("n_boot", 0)
    return routing.evaluate(_runs(), policies, **kw)


def test_single_models_and_default_reference():
    rep = _eval([routing.Always("A"), routing.Always("B")])
    t = rep.table
    assert rep.reference == "always(B)"                 # best mean quality (.75 vs .5)
    assert t.loc["always(A)", "total_cost_usd"] == pytest.approx(0.003)   # failed call costs 0
    assert t.loc["always(A)", "quality"] == pytest.approx(0.5)
    assert t.loc["always(A)", "failed_pct"] == pytest.approx(25.0)
    assert t.loc["always(B)", "cost_per_1k_usd"] == pytest.approx(10.0)
    assert t.loc["always(A)", "savings_pct"] == pytest.approx(100 * (1 - 0.003 / 0.04))
    assert t.loc["always(A)", "retained_pct"] == pytest.approx(100 * 0.5 / 0.75)
    assert t.loc["always(B)", "savings_pct"] == pytest.approx(0.0)
    assert list(rep.models.index) == ["always(A)", "always(B)"]


def test_fallback_pays_for_the_failed_attempt():
    rep = _eval([routing.Fallback(["A", "B"])])
    row = rep.table.iloc[0]
    assert row["total_cost_usd"] == pytest.approx(0.013)
    assert row["quality"] == pytest.approx(0.75)          # p2's wrong-but-ok A answer is served
    assert row["calls_per_request"] == pytest.approx(5 / 4)
    assert row["share_A"] == pytest.approx(4 / 5) and row["share_B"] == pytest.approx(1 / 5)
    pp = rep.per_prompt(row.name).set_index("prompt_id")
    assert pp.loc["p3", "models_tried"] == "A → B" and pp.loc["p3", "served_model"] == "B"
    assert pp.loc["p3", "latency_s"] == pytest.approx(2.5)
    assert pp.loc["p2", "served_model"] == "A"


def test_cascade_escalates_on_rejected_answers_and_sums_cost_and_latency():
    rep = _eval([routing.Cascade(["A", "B"], accept=lambda text: bool(text))])
    row = rep.table.iloc[0]
    assert row["total_cost_usd"] == pytest.approx(0.023)  # .001 + (.001+.010) + (0+.010) + .001
    assert row["quality"] == pytest.approx(1.0)
    assert row["savings_pct"] == pytest.approx(100 * (1 - 0.023 / 0.04))
    assert row["retained_pct"] == pytest.approx(100 / 0.75)
    pp = rep.per_prompt(row.name).set_index("prompt_id")
    assert pp["models_tried"].to_dict() == {"p1": "A", "p2": "A → B", "p3": "A → B", "p4": "A"}
    assert pp["latency_s"].tolist() == pytest.approx([1.0, 3.0, 2.5, 1.0])


def test_cascade_refuses_a_scorer_that_reads_expected():
    with pytest.raises(ValueError, match="expected answer"):
        routing.Cascade(["A", "B"], accept=scoring.exact())
    with pytest.raises(ValueError, match="answer text only"):
        routing.Cascade(["A", "B"], accept=lambda text, expected: text == expected)
    routing.Cascade(["A", "B"], accept=scoring.regex(r"\w"))            # answer-only: fine


def test_cascade_with_answer_only_scorer_and_explicit_row_predicate():
    by_scorer = _eval([routing.Cascade(["A", "B"], accept=scoring.regex(r"^yes$"))]).table.iloc[0]
    assert by_scorer["total_cost_usd"] == pytest.approx(0.023)
    peek = routing.Cascade(["A", "B"], accept=routing.on_row(lambda r: r["score"] >= 1))
    row = _eval([peek]).table.iloc[0]
    assert row["total_cost_usd"] == pytest.approx(0.023)
    assert peek.uses_labels is True


def test_task_map_threshold_random_oracle():
    rep = _eval([
        routing.TaskMap({"classify": "A"}, default="B"),
        routing.Threshold(FEATURE, 0.5, weak="A", strong="B", name="thr-map"),
        routing.Threshold("router_score", 0.5, weak="A", strong="B", name="thr-col"),
        routing.Threshold(lambda row: FEATURE[row["prompt_id"]], 0.5, "A", "B", name="thr-fn"),
        routing.Oracle(),
    ])
    t = rep.table
    assert t.loc["task_map", "total_cost_usd"] == pytest.approx(0.022)
    assert t.loc["task_map", "quality"] == pytest.approx(0.5)
    for name in ("thr-map", "thr-col", "thr-fn"):
        assert t.loc[name, "total_cost_usd"] == pytest.approx(0.022)
        assert t.loc[name, "quality"] == pytest.approx(1.0)
        assert t.loc[name, "share_B"] == pytest.approx(0.5)
    assert t.loc["oracle", "quality"] == pytest.approx(1.0)
    assert t.loc["oracle", "total_cost_usd"] == pytest.approx(0.022)   # p1 tie → cheaper A
    assert rep.oracle["quality"] == pytest.approx(1.0)


def test_threshold_may_not_route_on_hidden_columns():
    for column in ("expected", "score", "response_text", "latency_s"):
        with pytest.raises(ValueError, match="not known before"):
            _eval([routing.Threshold(column, 0.5, "A", "B")])


def test_prompt_chars_feature():
    # prompt lengths 10, 20, 30, 40 chars: ≥ 25 → B for p3, p4
    rep = _eval([routing.Threshold("prompt_chars", 25, "A", "B")])
    pp = rep.per_prompt(rep.table.index[0])
    assert pp["served_model"].tolist() == ["A", "A", "B", "B"]


def test_task_map_without_default_names_unmapped_tasks():
    with pytest.raises(ValueError, match="code"):
        _eval([routing.TaskMap({"classify": "A"})])


def test_random_share_is_seeded():
    runs = _synthetic(4000, seed=3)
    a = routing.evaluate(runs, [routing.Random(0.3, "m0", "m2", seed=1)], n_boot=0).table.iloc[0]
    b = routing.evaluate(runs, [routing.Random(0.3, "m0", "m2", seed=1)], n_boot=0).table.iloc[0]
    assert a["share_m2"] == b["share_m2"]
    assert abs(a["share_m2"] - 0.3) < 0.03


# --- the matrix: which row is a cell ----------------------------------------------------------

def test_final_attempt_of_latest_request_repeat_zero():
    runs = _runs()
    extra = runs[(runs.prompt_id == "p2") & (runs.requested_model == "A")].copy()
    retry = extra.assign(id=100, attempt=2, score=1.0, cost_usd=0.002)     # later retry succeeded
    repeat = extra.assign(id=200, repeat=1, score=0.0, cost_usd=9.0)       # repeat 1 is ignored
    older = extra.assign(id=0, score=1.0, cost_usd=5.0)                    # an older request
    runs = pd.concat([runs, repeat, retry, older], ignore_index=True).sample(frac=1, random_state=0)
    row = routing.evaluate(runs, [routing.Always("A")], n_boot=0).table.iloc[0]
    assert row["quality"] == pytest.approx(0.75)
    assert row["total_cost_usd"] == pytest.approx(0.004)


def test_prompts_missing_a_needed_model_are_dropped_and_counted():
    runs = _runs()
    runs = runs[~((runs.prompt_id == "p4") & (runs.requested_model == "B"))]
    with pytest.warns(RuntimeWarning, match="dropped 1 of 4"):
        rep = routing.evaluate(runs, [routing.Always("A"), routing.Always("B")], n_boot=0)
    assert rep.dropped_prompts == 1 and rep.n_prompts == 3
    assert "1 dropped" in repr(rep)
    assert rep.dropped_by_model == {"A": 0, "B": 1}
    # the sample belongs to the models, not to the policies: Always("A") alone sees the same 3
    # prompts; models=["A"] is how to keep all four
    with pytest.warns(RuntimeWarning):
        assert routing.evaluate(runs, [routing.Always("A")], n_boot=0).n_prompts == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert routing.evaluate(runs, [routing.Always("A")], models=["A"], n_boot=0).n_prompts == 4


def test_unknown_model_and_unscored_runs_are_errors():
    with pytest.raises(ValueError, match="'C' is not in the matrix"):
        _eval([routing.Always("C")])
    with pytest.raises(ValueError, match="no rows for model"):
        _eval([routing.Always("A")], models=["A", "C"])
    with pytest.raises(ValueError, match="score them first"):
        routing.evaluate(_runs().drop(columns="score"), [routing.Always("A")])


# --- RouteLLM metrics ---------------------------------------------------------------------------

def test_routellm_pgr_apgr_cpt_on_known_curve():
    rep = _eval([routing.Threshold(FEATURE, 0.5, weak="A", strong="B", name="thr")])
    r = rep.routellm.loc["thr"]
    # strong share 0, .25, .5, .75, 1 → quality .5, .75, 1, .75, .75 → PGR 0, 1, 2, 1, 1
    assert (r["weak_quality"], r["strong_quality"]) == pytest.approx((0.5, 0.75))
    assert r["apgr"] == pytest.approx(1.125)
    assert r["cpt50"] == pytest.approx(0.125)
    assert r["cpt80"] == pytest.approx(0.2)
    assert r["strong_share"] == pytest.approx(0.5) and r["pgr"] == pytest.approx(2.0)
    assert r["optimal_apgr"] == pytest.approx(1.5)     # gains 1, 1, 0, 0 in the best order
    curve = rep.threshold_curve
    assert set(curve.columns) >= {"policy", "threshold", "strong_share", "quality", "cost_usd", "pgr"}
    ends = curve.sort_values("strong_share").iloc[[0, -1]]
    assert ends["pgr"].tolist() == [0.0, 1.0]
    assert ends["cost_usd"].tolist() == pytest.approx([0.003, 0.04])


def test_uninformative_feature_has_random_apgr():
    runs = _synthetic(500, seed=5)
    runs["const"] = 1.0
    rep = routing.evaluate(runs, [routing.Threshold("const", 0.5, "m0", "m2", name="c")], n_boot=0)
    assert rep.routellm.loc["c", "apgr"] == pytest.approx(0.5)
    assert rep.routellm.loc["c", "cpt50"] == pytest.approx(0.5)
    assert rep.routellm.loc["c", "cpt80"] == pytest.approx(0.8)


def test_perfect_feature_reaches_optimal_apgr():
    runs = _synthetic(800, seed=6)
    wide = runs.pivot(index="prompt_id", columns="requested_model", values="score")
    gain = (wide["m2"] - wide["m0"]).rename("gain")
    rep = routing.evaluate(runs, [routing.Threshold(gain, 0.5, "m0", "m2", name="g")],
                           n_boot=0, sweep_points=1001)
    r = rep.routellm.loc["g"]
    assert r["apgr"] > 0.9 * r["optimal_apgr"] and r["apgr"] > 0.7


# --- bootstrap ----------------------------------------------------------------------------------

def test_bootstrap_ci_contains_point_and_shrinks_with_more_prompts():
    widths = []
    for n in (60, 2400):
        rep = routing.evaluate(_synthetic(n, seed=1), [routing.Threshold("feat", 0.5, "m0", "m2")],
                               n_boot=500, seed=0)
        row = rep.table.iloc[0]
        for col in ("cost", "quality", "savings"):
            point = row["cost_per_1k_usd" if col == "cost" else f"{col}_pct" if col == "savings" else col]
            assert row[f"{col}_ci_lo"] <= point <= row[f"{col}_ci_hi"]
        widths.append(row["quality_ci_hi"] - row["quality_ci_lo"])
    assert widths[1] < widths[0] / 3        # ~ sqrt(40) narrower


def test_bootstrap_is_reproducible_and_reference_has_zero_width_savings():
    runs = _synthetic(300, seed=2)
    a = routing.evaluate(runs, [routing.Always("m2"), routing.Always("m0")], n_boot=200, seed=7)
    b = routing.evaluate(runs, [routing.Always("m2"), routing.Always("m0")], n_boot=200, seed=7)
    pd.testing.assert_frame_equal(a.table, b.table)
    ref = a.table.loc[a.reference]
    assert ref["savings_ci_lo"] == ref["savings_ci_hi"] == 0   # paired resamples


# --- what-if pricing ----------------------------------------------------------------------------

def _token_runs():
    # "local-in" reads a lot and writes little, "local-out" the reverse; both score 1
    rows = []
    for i in range(3):
        for model, (pt, ct) in {"local-in": (1000.0, 10.0), "local-out": (10.0, 1000.0)}.items():
            rows.append({"prompt_id": f"p{i}", "requested_model": model, "status": "ok",
                         "score": 1.0, "cost_usd": 0.0, "latency_s": 1.0,
                         "prompt_tokens": pt, "completion_tokens": ct})
    return pd.DataFrame(rows)


def test_repricing_uses_each_rows_token_mix():
    # two sheets with the same input+output sum, priced on the real token mix, must differ
    flat = {"local-in": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6},
            "local-out": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6}}
    skew = {"local-in": {"input_cost_per_token": 1.5e-6, "output_cost_per_token": 0.5e-6},
            "local-out": {"input_cost_per_token": 1.5e-6, "output_cost_per_token": 0.5e-6}}
    policies = [routing.Always("local-in"), routing.Always("local-out")]
    a = routing.evaluate(_token_runs(), policies, prices=flat, n_boot=0).table["total_cost_usd"]
    b = routing.evaluate(_token_runs(), policies, prices=skew, n_boot=0).table["total_cost_usd"]
    assert a["always(local-in)"] == pytest.approx(3 * 1010e-6)
    assert b["always(local-in)"] == pytest.approx(3 * (1500e-6 + 5e-6))
    assert b["always(local-out)"] == pytest.approx(3 * (15e-6 + 500e-6))
    recorded = routing.evaluate(_token_runs(), policies, n_boot=0)
    assert recorded.table["total_cost_usd"].tolist() == [0.0, 0.0]
    assert recorded.price_sheet == "recorded cost_usd"


def test_price_as_hosted_models_on_the_bundled_sheet():
    from llmlab.base._pricing import PriceTable

    gpt5 = PriceTable.load().lookup("gpt-5")
    rep = routing.evaluate(_token_runs(), [routing.Always("local-in")],
                           prices={"local-in": "gpt-5", "local-out": "claude-haiku-4-5"}, n_boot=0)
    want = 3 * (1000 * gpt5.input_cost_per_token + 10 * gpt5.output_cost_per_token)
    assert rep.table["total_cost_usd"].iloc[0] == pytest.approx(want)
    assert "local-in → gpt-5" in rep.price_sheet and "bundled" in rep.price_sheet
    assert "local-in → gpt-5" in repr(rep) and "local-in → gpt-5" in rep._repr_html_()


def test_unknown_price_is_nan_not_free():
    from llmlab.base._pricing import PriceWarning

    with pytest.warns(PriceWarning):
        rep = routing.evaluate(_token_runs(), [routing.Always("local-in")],
                               price_as={"local-in": "no-such-model"}, prices=None, n_boot=0)
    assert np.isnan(rep.table["total_cost_usd"].iloc[0])


# --- plot and report --------------------------------------------------------------------------

def test_plot_returns_a_labelled_figure():
    rep = routing.evaluate(_synthetic(200, seed=4), [routing.Threshold("feat", 0.5, "m0", "m2"),
                                                      routing.Random(0.5, "m0", "m2"),
                                                      routing.Oracle()], n_boot=100)
    fig = rep.plot()
    ax = fig.axes[0]
    assert "cost vs quality" in ax.get_title()
    assert "USD" in ax.get_xlabel() and "quality" in ax.get_ylabel()
    labels = ax.get_legend_handles_labels()[1]
    assert any("Pareto" in s for s in labels) and any("oracle" in s for s in labels)
    assert any(s.startswith("sweep:") for s in labels) and any("random" in s for s in labels)


def test_html_escapes_policy_names():
    rep = _eval([routing.Always("A", name="<b>x</b>")])
    assert "<b>x</b>" not in rep._repr_html_() and "&lt;b&gt;" in rep._repr_html_()


# --- synthetic data -----------------------------------------------------------------------------

def _synthetic(n: int, seed: int) -> pd.DataFrame:
    """n prompts × 3 models; m2 is best and dearest; ``feat`` predicts where m2 beats m0."""
    rng = np.random.default_rng(seed)
    hard = rng.random(n)
    feat = np.clip(hard + rng.normal(0, 0.2, n), 0, 1)
    rows = {"prompt_id": [], "requested_model": [], "score": [], "cost_usd": [], "latency_s": [],
            "feat": [], "status": []}
    for j, (model, skill, price) in enumerate([("m0", 0.3, 0.001), ("m1", 0.6, 0.004),
                                               ("m2", 0.9, 0.02)]):
        ok = (rng.random(n) < skill + (1 - skill) * (1 - hard)).astype(float)
        rows["prompt_id"] += [f"p{i}" for i in range(n)]
        rows["requested_model"] += [model] * n
        rows["score"] += list(ok)
        rows["cost_usd"] += list(price * (0.5 + rng.random(n)))
        rows["latency_s"] += list((j + 1) * (0.5 + rng.random(n)))
        rows["feat"] += list(feat)
        rows["status"] += ["ok"] * n
    return pd.DataFrame(rows)


# --- end to end: a real Lab sweep against the fake endpoint ---------------------------------

def test_sweep_score_judge_evaluate_end_to_end(tmp_path):
    from fakeserver import FakeServer, ModelSpec

    from llmlab import Lab, datasets

    tasks = datasets.load("tasks")
    tasks = tasks[tasks["task"] == "classify"].head(8)   # 4 positive, 4 negative reviews
    specs = {"weak": ModelSpec(text="positive", prompt_tokens=50, completion_tokens=1),
             "strong": ModelSpec(text="Negative.", prompt_tokens=50, completion_tokens=2),
             "judge": ModelSpec(text="Correct. Rating: [[8]]", prompt_tokens=200, completion_tokens=5)}
    prices = {m: {"input_cost_per_token": p, "output_cost_per_token": 2 * p}
              for m, p in {"weak": 1e-7, "strong": 1e-5, "judge": 1e-6}.items()}
    with FakeServer(specs) as srv:
        lab = Lab(base_url=srv.base_url, db=tmp_path / "runs.sqlite", retries=0, prices=prices)
        try:
            res = lab.sweep(tasks, models=["weak", "strong"], progress=False)
            runs = scoring.auto(res.df, checkers=tasks)
            judged = scoring.score(res.df, scoring.judge(model="judge", lab=lab), column="judge")
            n_logged = len(lab.runs())
        finally:
            lab.close()
    assert judged["judge"].tolist() == pytest.approx([7 / 9] * 16)
    assert n_logged == 16 + 16                              # judge calls are recorded too
    rep = routing.evaluate(runs, [routing.Always("weak"), routing.Always("strong"),
                                  routing.Oracle()], n_boot=50)
    assert rep.n_prompts == 8 and rep.dropped_prompts == 0
    expected_q = (tasks["expected"] == "positive").mean()
    assert rep.table.loc["always(weak)", "quality"] == pytest.approx(expected_q)
    assert rep.table.loc["always(weak)", "total_cost_usd"] == pytest.approx(8 * (50e-7 + 2e-7))
    assert rep.table.loc["oracle", "quality"] == pytest.approx(1.0)


def test_explicit_reference_model_or_policy():
    rep = _eval([routing.Always("B"), routing.TaskMap({"classify": "A"}, default="B")], reference="A")
    assert rep.reference == "always(A)"
    assert rep.table.loc["always(B)", "savings_pct"] == pytest.approx(100 * (1 - 0.04 / 0.003))
    assert rep.table.loc["always(B)", "retained_pct"] == pytest.approx(150.0)
    rep = _eval([routing.Always("B"), routing.TaskMap({"classify": "A"}, default="B")],
                reference="task_map")
    assert rep.table.loc["task_map", "savings_pct"] == pytest.approx(0.0)


def test_feature_with_wrong_keys_warns():
    with pytest.warns(RuntimeWarning, match="unknown"):
        _eval([routing.Threshold({1: 0.5, 2: 0.9}, 0.5, "A", "B")])


@pytest.mark.parametrize("mapping, default", [
    ({"a": "m"}, 5), ({"a": "m"}, ["m"]), ({"a": "m"}, {"x": 1}), ({"a": "m"}, ""), ({"a": "m"}, float("nan")),
    ({"a": "m"}, b"m"), ({"a": 3}, None), ({"a": None}, "m"), ({"a": ["m"]}, "m"), ({"a": ""}, None),
    (["a", "m"], None), ("a=m", "m"),
], ids=lambda v: type(v).__name__)
def test_a_task_map_whose_models_are_not_names_is_one_line_input_error(mapping, default):
    from llmlab import InputError

    with pytest.raises(InputError, match="task_map: .*(model name|dict of task)") as info:
        routing.TaskMap(mapping, default=default)
    assert "\n" not in str(info.value)
    assert routing.TaskMap({"a": "m"}, default=None).decide("hi", task="a").models == ["m"]  # names are fine
