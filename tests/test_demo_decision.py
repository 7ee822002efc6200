"""The demo's "who should answer what" section, from scored runs (no models needed)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from llmlab._demo_decision import decision_section


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
