"""Live, end to end on the embedded endpoint: a self-consistency cascade — smollm2-135m sampled
three times, escalating to qwen2.5-coder-0.5b when its samples disagree — on bundled graded tasks.
Every sample is a recorded row with its tokens and log-probabilities; the recorded sweep is
evaluated offline (escalation, precision/recall, every sample billed) and the cascade then answers
live through lab.route (the served answer marked). The run prints its figures (escalation,
precision/recall, savings and quality against the strong model). Slow: it runs the local models."""
from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from llmlab import Lab, datasets, routing, scoring

SMALL, STRONG = "smollm2-135m", "qwen2.5-coder-0.5b"
SAMPLES = 3
# what-if list prices for the two local models (they cost $0 on your CPU), so savings mean something
PRICE_AS = {SMALL: "gpt-4o-mini", STRONG: "gpt-4o"}
CALL = {"max_tokens": 24, "temperature": 0.8, "logprobs": True, "top_logprobs": 1, "cache": False}


@pytest.mark.slow
def test_self_consistency_cascade_on_the_local_models(local_server, tmp_path, capsys):
    tasks = datasets.generate(n=8, tasks=["arithmetic", "classify"], seed=3)
    with Lab(base_url=local_server.base_url, db=tmp_path / "runs.sqlite", quiet=True) as lab:
        small = lab.sweep(tasks, models=[SMALL], n=SAMPLES, progress=False, **CALL).df
        strong = lab.sweep(tasks, models=[STRONG], progress=False, **CALL).df
        assert (small["status"] == "ok").all() and (strong["status"] == "ok").all()
        assert sorted(set(small["repeat"])) == list(range(SAMPLES))
        assert small["completion_tokens"].gt(0).all()
        # llama-cpp-python's server sends chat log-probabilities when top_logprobs is given
        assert small["logprob_mean"].notna().all() and (small["logprob_min"] <= small["logprob_mean"]).all()

        runs = scoring.auto(lab.runs(), checkers=tasks)
        policy = routing.SelfConsistency(SMALL, STRONG, samples=SAMPLES, threshold=0.5)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            report = routing.evaluate(runs, [policy, routing.Always(SMALL)], price_as=PRICE_AS, n_boot=200)
        row, cascade = report.table.loc[policy.name], report.cascades.loc[policy.name]
        escalated = cascade["escalated_pct"] / 100
        assert row["calls_per_request"] == pytest.approx(SAMPLES + escalated)
        per_sample = report.models.loc[f"always({SMALL})", "total_cost_usd"]   # one answer each
        assert row["total_cost_usd"] > SAMPLES * per_sample * 0.5                # every sample is billed
        assert math.isnan(cascade["precision"]) or 0 <= cascade["precision"] <= 1
        assert report.routellm.loc[policy.name, "strong_share"] == pytest.approx(escalated)
        figures = {"prompts": int(report.table.loc[policy.name, "requests"]),
                   "escalated_pct": float(cascade["escalated_pct"]), "precision": float(cascade["precision"]),
                   "recall": float(cascade["recall"]), "calls_per_request": float(row["calls_per_request"]),
                   "savings_pct": float(row["savings_pct"]), "quality": float(row["quality"]),
                   "quality_diff": float(row["quality_diff"]),
                   "small_quality": float(report.table.loc[f"always({SMALL})", "quality"])}
        tuned = routing.tune(policy, runs, price_as=PRICE_AS, max_quality_loss=0.05)
        # within [0, 1], or just above 1 when the cheap model alone is good enough ("never"): its
        # sampled answers decide which (a loaded run found the second: 1.0000000000000002)
        assert 0 <= tuned.threshold <= 1 or (tuned.threshold == np.nextafter(1.0, 2.0) and "never" in tuned.name)

        live_prompts = list(tasks["prompt"].head(3))
        results = [lab.route(prompt, policy=policy, **CALL) for prompt in live_prompts]
    for res in results:
        frame = res.df
        first = frame[frame["requested_model"] == SMALL]
        assert sorted(first["repeat"]) == list(range(SAMPLES)) and (first["status"] == "ok").all()
        assert frame["run_id"].nunique() == 1 and set(frame["policy"]) == {policy.name}
        assert first["logprob_mean"].notna().all()
        up = frame[frame["requested_model"] == STRONG]
        assert len(up) <= 1
        if len(up):
            assert "samples agree" in up["route_reason"].iloc[0]
    recorded = np.array([len(r.df) for r in results])
    assert ((recorded == SAMPLES) | (recorded == SAMPLES + 1)).all()
    for res in results:                   # the answer served: the strong one's after an escalation
        served = res.df[res.df["served"]]
        assert len(served) == 1 and res.text() == served["response_text"].item()
        assert served["requested_model"].item() == (STRONG if (res.df["requested_model"] == STRONG).any() else SMALL)
    figures["live_escalated"] = f"{int((recorded > SAMPLES).sum())} of {len(results)}"
    with capsys.disabled():               # the evidence, printed with every run (README quotes it)
        print("\nself-consistency on the embedded endpoint (vs always qwen2.5-coder-0.5b, what-if prices):",
              json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}))
