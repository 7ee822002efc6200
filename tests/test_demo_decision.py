"""The demo's "who should answer what" section, from scored runs (no models needed)."""
from __future__ import annotations

import numpy as np
import pandas as pd

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
    title, body, rec = decision_section(_runs(), ["tiny<b>", "big"])
    assert title == "Who should answer what"
    assert rec.per_task.loc["easy", "model"] == "tiny<b>" and rec.per_task.loc["hard", "model"] == "big"
    assert "tiny&lt;b&gt;" in body and "<b>tiny" not in body          # model names are escaped
    assert "Use: " in body and "Per task" in body and "what-if" in body
    assert body.count("<table>") == 2


def test_the_demo_report_ends_with_the_decision(tmp_path, monkeypatch):
    """run_demo end to end against the real test server standing in for the embedded endpoint:
    the labelled sweep goes through the same Lab and the report's last section is the decision."""
    from fakeserver import FakeServer, ModelSpec

    import llmlab.local
    from llmlab.base._config import LocalURL
    from llmlab.cli import _demo

    class FakeLocal:
        def __init__(self, srv):
            self.base_url, self.models = LocalURL(srv.base_url), []

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

    models = {"qwen2.5-coder-0.5b": ModelSpec(text="42"), "smollm2-135m": ModelSpec(text="no idea"),
              "gemma-3-270m": ModelSpec(text="no idea")}
    with FakeServer(models) as srv:
        monkeypatch.setattr(llmlab.local, "start", lambda **kw: FakeLocal(srv))
        out = _demo.run_demo(tmp_path / "demo", n_prompts=1, progress=False, log=lambda *_: None,
                             decision_prompts=40)
    page = (tmp_path / "demo" / "report.html").read_text()
    assert page.rindex("Who should answer what") > page.index("Answers")       # the last section
    assert out.recommendation is not None and "claude-sonnet-4-6" in page     # what-if prices named
    assert len([r for r in srv.requests if r.path.endswith("/chat/completions")]) == 3 * (1 + 40)
