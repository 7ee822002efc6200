"""The demo's "who should answer what" section, from scored runs (no models needed)."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from standins import EmbeddedStandIn

from llmlab.cli._demo_decision import decision_section


def _runs(n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for i in range(n):
        task = ["easy", "hard"][i % 2]
        for model, skill, cost in (("tiny<b>", 0.95 if task == "easy" else 0.2, 0.001), ("big", 0.95, 0.02)):
            rows.append({"id": len(rows), "prompt_id": f"p{i}", "prompt": f"{task} question {i}", "task": task,
                         "requested_model": model, "status": "ok", "score": float(rng.random() < skill),
                         "cost_usd": cost})
    return pd.DataFrame(rows)


def test_section_names_the_model_per_task_and_the_policy_to_use():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        title, body, rec = decision_section(_runs(), ["tiny<b>", "big"])
    # The random split is the demo's choice: said in the section, not warned about on the terminal.
    assert not [w for w in caught if "learned router is judged" in str(w.message)]
    assert "split at random, so the numbers hold for new prompts of these tasks" in body
    assert title == "Who should answer what"
    assert rec.per_task.loc["easy", "model"] == "tiny<b>" and rec.per_task.loc["hard", "model"] == "big"
    assert "tiny&lt;b&gt;" in body and "<b>tiny" not in body          # model names are escaped
    assert "Use: " in body and "Per task" in body and "what-if" in body
    assert body.count("<table>") == 2


def test_a_router_that_loses_quality_on_the_test_half_is_not_used():
    """On these runs the tiny model is right on 'easy' prompts only half the time: the router
    picked on the tune half loses more than the margin on the test half, so the section says
    "use: always big" and why, and a per-task pick that loses quality there is not called one that
    keeps it."""
    from llmlab.cli._demo_decision import per_task_verdicts, use_line, use_name

    runs = _runs()
    runs.loc[(runs["requested_model"] == "tiny<b>") & (runs["task"] == "easy"), "score"] = \
        [float(i % 2) for i in range(60)]
    _, body, rec = decision_section(runs, ["tiny<b>", "big"])
    picked = rec.policies.loc[rec.policies["tune_quality_diff"] >= -0.02, "tune_savings_pct"].idxmax()
    assert rec.policies.loc[picked, "quality_diff"] < -0.02                # the tune half's pick loses on the test half
    assert rec.policy.name == "always(big)" and not rec.claim_holds
    assert use_name(rec, ["tiny<b>", "big"]) == "always big"
    line = use_line(rec, ["tiny<b>", "big"])
    assert line.startswith(f"{picked}, the tune half's pick") and "on the test half, beyond 0.02" in line, line
    assert "<b>Use: always big</b>" in body
    verdicts = per_task_verdicts(rec, ["tiny<b>", "big"])
    for (_, row), verdict in zip(rec.per_task.iterrows(), verdicts, strict=True):
        if row["model"] == "big":
            assert verdict == "the strongest model itself"
        elif row["quality_diff"] < -0.02:
            assert verdict.startswith(f"loses {-row['quality_diff']:.2f}: not kept"), verdict
    assert "no router tried here keeps quality" in body.split("Per task")[0]


def test_a_router_that_saves_next_to_nothing_is_called_always_the_strongest_model():
    """The tiny model is never right: every router keeps quality by sending everything to big —
    used, and said to mean always big in practice."""
    from llmlab.cli._demo_decision import use_line

    runs = _runs()
    runs.loc[runs["requested_model"] == "tiny<b>", "score"] = 0.0
    _, _, rec = decision_section(runs, ["tiny<b>", "big"])
    assert rec.policy.name in rec.policies.index
    line = use_line(rec, ["tiny<b>", "big"])
    assert "so little that in practice this means always the strongest model, big" in line, line
    assert line.startswith("picked on the tune half, where it saves the most within 0.02")


def test_each_router_names_its_models_and_the_tune_half_numbers_it_was_picked_on():
    _, body, rec = decision_section(_runs(), ["tiny<b>", "big"])
    assert rec.policies.loc["length threshold", "models"] == "tiny<b> / big"
    assert "<th>models</th>" in body and "tiny&lt;b&gt; / big" in body
    assert "<th>tune half: savings</th>" in body and "picked on the tune half, judged on the test half" in body
    assert rec.policies.loc["oracle", "tune_savings_pct"] != rec.policies.loc["oracle", "tune_savings_pct"]  # NaN


def test_a_pick_that_loses_quality_on_the_test_half_says_so():
    from llmlab.cli._demo_decision import per_task_verdicts

    _, body, rec = decision_section(_runs(), ["tiny<b>", "big"])
    rec.per_task.loc["easy", "quality_diff"] = -0.43     # as the demo once showed, labelled "keeps quality"
    assert per_task_verdicts(rec, ["tiny<b>", "big"]) == ["loses 0.43: not kept, use big", "the strongest model itself"]
    assert "on the test half" in body and "the task map's pick" in body


def test_the_demo_report_ends_with_the_decision(tmp_path, monkeypatch):
    """run_demo end to end against the real test server standing in for the embedded endpoint:
    the labelled sweep goes through the same Lab and the report's last section is the decision."""
    from fakeserver import FakeServer, ModelSpec

    import llmlab.local
    from llmlab.cli import _demo

    models = {"qwen2.5-coder-0.5b": ModelSpec(text="42"), "smollm2-135m": ModelSpec(text="no idea"),
              "gemma-3-270m": ModelSpec(text="no idea")}
    with FakeServer(models) as srv:
        monkeypatch.setattr(llmlab.local, "start", lambda **kw: EmbeddedStandIn(srv))
        out = _demo.run_demo(tmp_path / "demo", n_prompts=1, progress=False, log=lambda *_: None,
                             decision_prompts=40)
    page = (tmp_path / "demo" / "report.html").read_text()
    assert page.rindex("Who should answer what") > page.index("Answers")       # the last section
    assert out.recommendation is not None and "claude-sonnet-4-6" in page     # what-if prices named
    assert len([r for r in srv.requests if r.path.endswith("/chat/completions")]) == 3 * (1 + 40)


def test_the_demo_command_says_what_it_wrote_and_shows_progress_for_both_sweeps(tmp_path, monkeypatch, capsys):
    """``llmlab demo`` end to end (the test server standing in for the embedded endpoint): a
    progress bar for the demo sweep and for the decision calls, every file it wrote named and
    counted, and the decision in words."""
    from fakeserver import FakeServer, ModelSpec

    import llmlab.local
    from llmlab.cli import main

    models = {"qwen2.5-coder-0.5b": ModelSpec(text="42"), "smollm2-135m": ModelSpec(text="no idea"),
              "gemma-3-270m": ModelSpec(text="no idea")}
    with FakeServer(models) as srv:
        monkeypatch.setattr(llmlab.local, "start", lambda **kw: EmbeddedStandIn(srv))
        assert main(["demo", "--out", str(tmp_path / "d"), "--n-prompts", "2", "--decision-prompts", "40"]) == 0
    out, err = capsys.readouterr()
    written = sorted(p.name for p in (tmp_path / "d").iterdir())
    assert f"wrote {len(written)} files to {tmp_path / 'd'}/ (" in out
    named = out.split(f"wrote {len(written)} files to {tmp_path / 'd'}/ (")[1].split(")")[0].split(", ")
    assert sorted(named) == written and "runs.sqlite" in written
    assert "6/6" in err and "120/120" in err              # a bar for the 2 × 3 calls and the 40 × 3
    assert "40 labelled prompts × 3 models = 120 calls" in err
    assert "on the test half" in out and "use: " in out
