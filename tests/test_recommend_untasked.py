"""recommend on runs swept without tasks, and with a task whose verdicts are all unknown (review 22, F1)."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from llmlab import routing

N = 80


def _runs(tasks) -> pd.DataFrame:
    rows = []
    for k in range(N):
        for model, cost in (("weak", 1e-5), ("strong", 1e-3)):
            rows.append({"id": len(rows) + 1, "prompt_id": f"p{k:03d}", "prompt": f"question {k} " + "x" * (k % 7),
                         "task": tasks(k), "requested_model": model, "status": "ok", "response_text": f"{model} says",
                         "repeat": 0, "attempt": 1, "request_id": f"r{len(rows)}", "cost_usd": cost, "latency_s": 0.5})
    return pd.DataFrame(rows)


def _prefs(unknown=lambda k: False) -> pd.DataFrame:
    return pd.DataFrame({"prompt_id": [f"p{k:03d}" for k in range(N)], "model_a": "strong", "model_b": "weak",
                         "winner": [None if unknown(k) else ("b" if k % 4 else "a") for k in range(N)],
                         "verdict_1": [None if unknown(k) else ("B" if k % 4 else "A") for k in range(N)],
                         "verdict_2": [None if unknown(k) else ("A" if k % 4 else "B") for k in range(N)]})


def _recommend(runs, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return routing.recommend(runs, n_boot=100, learned=False, **options)


@pytest.mark.parametrize("shape", ["None", "NaN", "no column", "mixed"])
def test_runs_without_tasks_are_one_task(shape):
    tasks = {"None": lambda k: None, "NaN": lambda k: np.nan, "no column": lambda k: None,
             "mixed": lambda k: "chat" if k % 2 else None}[shape]
    runs = _runs(tasks)
    if shape == "no column":
        runs = runs.drop(columns="task")
    scored = runs.assign(score=[float(k % 4 != 0) if m == "weak" else 1.0
                                for k, m in zip(runs["prompt_id"].str[1:].astype(int), runs["requested_model"],
                                                strict=True)])
    for rec in (_recommend(runs, preferences=_prefs(), reference="strong"), _recommend(scored)):
        expected = ["(none)", "chat"] if shape == "mixed" else ["(none)"]
        assert sorted(rec.per_task.index) == sorted(expected)
        assert (rec.per_task["prompts"] > 0).all() and (rec.per_task["note"] == "").all()
        assert rec.report.n_prompts > 0


def test_a_task_whose_verdicts_are_all_unknown_is_left_out_and_said_not_fatal():
    runs = _runs(lambda k: "chat" if k < 60 else "rare")
    rec = _recommend(runs, preferences=_prefs(unknown=lambda k: k >= 60), reference="strong")
    assert rec.per_task.loc["chat", "prompts"] > 0 and rec.per_task.loc["chat", "note"] == ""
    rare = rec.per_task.loc["rare"]
    assert rare["prompts"] == 0 and rare["note"].startswith("unknown, left out") and np.isnan(rare["quality"])
    assert rec.report.unknown_prompts > 0                       # the rare prompts, left out of the evidence too
