"""lab.route: answer with the model a policy picks, record the policy and the reason; policies
saved as JSON and exported as code decide exactly as the originals. Real test server, real SDK."""
from __future__ import annotations

import inspect
import json
import re

import numpy as np
import pandas as pd
import pytest
from fakeserver import ModelSpec

from llmlab import InputError, Lab, routing

WEAK, STRONG = "weak", "strong"


@pytest.fixture
def srv(serve):
    return serve({WEAK: ModelSpec(text="I think it is 7"), STRONG: ModelSpec(text="#### 12"),
                  "down": ModelSpec(status=503)})


@pytest.fixture
def lab(srv, tmp_path):
    with Lab(base_url=srv.base_url, db=str(tmp_path / "runs.sqlite"), retries=0, quiet=True) as lab:
        yield lab


def _sent(srv) -> list[str]:
    return [r.model for r in srv.requests if r.path.endswith("/chat/completions")]


def test_task_map_routes_and_records_policy_and_reason(lab, srv):
    policy = routing.TaskMap({"maths": STRONG}, default=WEAK, name="by task")
    res = lab.route("What is 3 + 4?", policy=policy, task="maths", cache=False)
    assert _sent(srv) == [STRONG]
    row = res.df.iloc[0]
    assert (row["requested_model"], row["policy"], row["route_reason"]) == (STRONG, "by task", "task 'maths' → strong")
    assert row["task"] == "maths" and row["response_text"] == "#### 12"
    logged = lab.runs().iloc[-1]                            # stored before the result came back
    assert logged["policy"] == "by task" and logged["route_reason"].endswith("→ strong")
    other = lab.route("Hello", policy=policy, task="chat", cache=False).df.iloc[0]
    assert other["requested_model"] == WEAK and "not mapped → default weak" in other["route_reason"]


def test_length_threshold_reason_names_the_value(lab, srv):
    policy = routing.Threshold("prompt_chars", 20, weak=WEAK, strong=STRONG)
    long_row = lab.route("x" * 30, policy=policy, cache=False).df.iloc[0]
    short_row = lab.route("short", policy=policy, cache=False).df.iloc[0]
    assert long_row["requested_model"] == STRONG and long_row["route_reason"] == "length 30 ≥ 20 → strong"
    assert short_row["requested_model"] == WEAK and short_row["route_reason"] == "length 5 < 20 → weak"


def test_cascade_escalates_only_when_the_answer_is_rejected(lab, srv):
    final_number = {"kind": "regex", "pattern": r"####\s*-?\d+"}
    res = lab.route("What is 3 * 4?", policy=routing.Cascade([WEAK, STRONG], accept=final_number), cache=False)
    assert _sent(srv) == [WEAK, STRONG]
    assert list(res.df["requested_model"]) == [WEAK, STRONG] and res.df["run_id"].nunique() == 1
    assert res.df["route_reason"].iloc[0].endswith("first weak")
    assert res.df["route_reason"].iloc[1] == "weak's answer rejected by the accept rule → strong"
    kept = lab.route("Again?", policy=routing.Cascade([STRONG, WEAK], accept=final_number), cache=False)
    assert list(kept.df["requested_model"]) == [STRONG]      # accepted: the second model is never called


def test_fallback_moves_on_when_a_model_fails(lab, srv):
    res = lab.route("hi", policy=routing.Fallback(["down", WEAK]), cache=False)
    assert list(zip(res.df["requested_model"], res.df["status"], strict=True)) == [("down", "error"), (WEAK, "ok")]
    assert set(res.df["policy"]) == {"fallback(down → weak)"}


def test_policies_that_read_labels_or_bad_arguments_send_nothing(lab, srv):
    for policy, match in ((routing.Oracle(), "reads the labels"), ("weak", "routing policy"),
                          (routing.TaskMap({"a": WEAK}), "no model for task")):
        with pytest.raises(InputError, match=match):
            lab.route("hi", policy=policy, task="b")
    with pytest.raises(InputError, match="features="):
        lab.route("hi", policy=routing.Threshold("difficulty", 0.5, weak=WEAK, strong=STRONG))
    with pytest.raises(InputError, match="(?i)did you mean .task."):
        lab.route("hi", policy=routing.Always(WEAK), taks="x")
    assert _sent(srv) == []


def test_route_signature_is_explicit_and_matches_its_async_twin():
    sync, asyn = inspect.signature(Lab.route), inspect.signature(Lab.aroute)
    assert list(sync.parameters) == list(asyn.parameters)
    for name in ("policy", "task", "features", "temperature", "max_tokens", "stream", "cache", "timeout"):
        assert sync.parameters[name].kind is inspect.Parameter.KEYWORD_ONLY


def test_learned_router_routes_live(lab, srv):
    rows = []
    for i in range(40):
        hard = i % 2 == 0
        prompt = f"{'integral of a hard function' if hard else 'add two small numbers'} #{i}"
        for model, score in ((WEAK, 0.0 if hard else 1.0), (STRONG, 1.0)):
            rows.append({"id": len(rows), "prompt_id": f"p{i}", "prompt": prompt, "requested_model": model,
                         "status": "ok", "score": score, "task": "maths"})
    learned = routing.Learned(WEAK, STRONG, threshold=0.5).fit(pd.DataFrame(rows))
    hard = lab.route("integral of a hard function #99", policy=learned, task="maths", cache=False).df.iloc[0]
    easy = lab.route("add two small numbers #98", policy=learned, task="maths", cache=False).df.iloc[0]
    assert hard["requested_model"] == STRONG
    assert re.fullmatch(r"p\(weak not ok\) [\d.]+ ≥ 0\.5 → strong", hard["route_reason"])
    assert easy["requested_model"] == WEAK


@pytest.mark.parametrize("policy", [
    routing.Always(WEAK), routing.TaskMap({"maths": STRONG}, default=WEAK),
    routing.Threshold("prompt_chars", 12, weak=WEAK, strong=STRONG, name="len"),
    routing.Random(0.5, weak=WEAK, strong=STRONG, seed=3), routing.Fallback([WEAK, STRONG]),
    routing.Cascade([WEAK, STRONG], accept={"kind": "regex", "pattern": r"\d+$"}),
])
def test_saved_policies_decide_like_the_originals(policy, tmp_path):
    path = policy.save(tmp_path / "policy.json")
    assert json.loads(path.read_text())["kind"] == type(policy).__name__      # JSON, not pickle
    loaded = routing.load_policy(path)
    assert type(loaded) is type(policy) and loaded.name == policy.name
    for prompt, task in (("short", "maths"), ("a much longer prompt here", "chat"), ("x", None)):
        mine, theirs = policy.decide(prompt, task=task), loaded.decide(prompt, task=task)
        assert (mine.models, mine.mode, mine.reason) == (theirs.models, theirs.mode, theirs.reason)


def test_unsaveable_policies_say_why(tmp_path):
    with pytest.raises(InputError, match="checker spec"):
        routing.Cascade([WEAK, STRONG], accept=lambda text: True).save(tmp_path / "c.json")
    with pytest.raises(InputError, match="not a deployable router"):
        routing.Oracle().save(tmp_path / "o.json")
    with pytest.raises(InputError, match="cannot read"):
        routing.load_policy(tmp_path / "missing.json")


def test_to_code_is_the_guides_pick_model():
    for policy in (routing.TaskMap({"code": STRONG, "chat": WEAK}, default=WEAK),
                   routing.Threshold("prompt_chars", 12, weak=WEAK, strong=STRONG), routing.Always(STRONG)):
        namespace: dict = {}
        exec(policy.to_code(), namespace)   # noqa: S102 - our own generated source
        for prompt, task in (("short", "code"), ("a much longer prompt", "chat"), ("x", "other")):
            assert namespace["pick_model"](prompt, task) == policy.decide(prompt, task=task).models[0]
    cascade = routing.Cascade([WEAK, STRONG], accept={"kind": "regex", "pattern": r"####\s*\d+"})
    namespace = {}
    exec(cascade.to_code(), namespace)      # noqa: S102
    pick = namespace["pick_model"]
    assert pick("q") == WEAK and pick("q", None, ["no idea"]) == STRONG and pick("q", None, ["#### 4"]) is None
    with pytest.raises(InputError, match="save this one"):
        routing.Learned(WEAK, STRONG).to_code()


def test_random_route_is_fixed_per_prompt():
    policy = routing.Random(0.5, weak=WEAK, strong=STRONG, seed=0)
    picks = [policy.decide(f"prompt {i}").models[0] for i in range(400)]
    assert picks == [policy.decide(f"prompt {i}").models[0] for i in range(400)]
    assert 0.4 < np.mean([p == STRONG for p in picks]) < 0.6


def test_offline_and_live_agree_for_random_and_fallback(lab, srv, serve, tmp_path):
    # Random: the draw belongs to the prompt, so a subset and live routing agree with the full run
    runs = pd.DataFrame([{"id": i * 2 + k, "prompt_id": f"p{i}", "prompt": f"question {i}", "requested_model": m,
                          "status": "ok", "score": 1.0} for i in range(40) for k, m in enumerate((WEAK, STRONG))])
    policy = routing.Random(0.5, weak=WEAK, strong=STRONG, seed=2)
    offline = routing.evaluate(runs, [policy], n_boot=0).per_prompt(policy.name).set_index("prompt_id")
    subset = routing.evaluate(runs[runs["prompt_id"].isin([f"p{i}" for i in range(10)])], [policy],
                              n_boot=0).per_prompt(policy.name).set_index("prompt_id")
    for i in range(40):
        assert offline.loc[f"p{i}", "served_model"] == policy.decide(f"question {i}").models[0]
    assert (subset["served_model"] == offline.loc[subset.index, "served_model"]).all()
    # Fallback after a stream cut that showed text: live serves the cut answer, and so does evaluate
    cut = serve({"cut": ModelSpec(text="one two three four", truncate_after=2), STRONG: ModelSpec(text="ok")})
    with Lab(base_url=cut.base_url, db=str(tmp_path / "cut.sqlite"), retries=0, quiet=True) as other:
        live = other.route("Q", policy=routing.Fallback(["cut", STRONG]), cache=False).df
        recorded = other.sweep(["Q"], models=["cut", STRONG], cache=False).df.assign(score=1.0)
    assert list(live["requested_model"]) == ["cut"]
    served = routing.evaluate(recorded, [routing.Fallback(["cut", STRONG])], n_boot=0).per_prompt(
        f"fallback(cut → {STRONG})")
    assert list(served["served_model"]) == ["cut"]


def test_a_cascade_with_a_bad_model_sends_nothing(lab, srv):
    for models in ([WEAK, ""], [WEAK, WEAK]):
        with pytest.raises(InputError):
            lab.route("hi", policy=routing.Cascade(models, accept=lambda t: False))
    assert _sent(srv) == []


def test_saved_policies_are_checked_and_exports_stay_faithful(tmp_path):
    bad = {"format": "llmlab.routing.policy", "version": 1, "kind": "Threshold", "feature": "prompt_chars",
           "threshold": "250", "weak": WEAK, "strong": STRONG}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(InputError, match="'threshold' must be a finite number"):
        routing.load_policy(tmp_path / "bad.json")
    with pytest.raises(InputError, match="not a string"):
        routing.TaskMap({1: STRONG}, default=WEAK).to_code()
    with pytest.raises(InputError, match="only rule policies"):
        routing.Cascade([WEAK, STRONG], accept={"kind": "regex", "pattern": "^A", "flags": "MULTILINE"}).to_code()
    with pytest.raises(InputError, match="not a finite number"):
        routing.Threshold("prompt_chars", float("-inf"), weak=WEAK, strong=STRONG).save(tmp_path / "t.json")


def test_tune_never_promises_what_the_policy_cannot_do():
    runs = pd.DataFrame([{"id": i * 2 + k, "prompt_id": f"p{i}", "prompt": f"q{i}", "requested_model": m,
                          "status": "ok", "score": float(m == STRONG), "feat": np.nan if i < 3 else float(i),
                          "cost_usd": 0.01 if m == STRONG else 0.001}
                         for i in range(6) for k, m in enumerate((WEAK, STRONG))])
    tuned = routing.tune(routing.Threshold("feat", 0, weak=WEAK, strong=STRONG), runs, max_quality_loss=0)
    assert not tuned.tuned_on["feasible"] and np.isfinite(tuned.threshold)
    row = routing.evaluate(runs, [tuned], n_boot=0).table.iloc[0]
    assert row["quality"] == pytest.approx(0.5)          # the NaN prompts stay weak, as route sends them
