"""The bundled prompt set: shape, and every row's expected answer passes its own checker."""
from __future__ import annotations

import json

import pytest

from llmlab import datasets, scoring


@pytest.fixture(scope="module")
def tasks():
    return datasets.load("tasks")


def test_tasks_shape(tasks):
    assert "tasks" in datasets.names()
    assert len(tasks) >= 60
    assert list(tasks.columns) == ["prompt_id", "task", "prompt", "expected", "checker"]
    assert tasks["prompt_id"].is_unique
    assert tasks[["prompt", "expected"]].notna().all().all()
    counts = tasks["task"].value_counts()
    assert {"classify", "extract", "arithmetic", "summarise", "code"} <= set(counts.index)
    assert (counts >= 5).all()


def test_every_checker_is_a_known_scorer(tasks):
    for spec in tasks["checker"]:
        assert isinstance(spec, dict) and "kind" in spec
        scoring.from_spec(spec)              # raises on an unknown kind or bad argument
        scoring.from_spec(json.dumps(spec))  # as stored in a CSV / SQLite round trip


def test_expected_answers_pass_their_own_checker(tasks):
    runs = tasks.assign(response_text=tasks["expected"], status="ok")
    scored = scoring.auto(runs)
    failing = scored.loc[scored["score"] < 1, ["prompt_id", "score_reason"]]
    assert failing.empty, failing.to_string()


def test_a_wrong_answer_fails_every_checker(tasks):
    runs = tasks.assign(response_text="I am not sure.", status="ok")
    scored = scoring.auto(runs)
    assert (scored["score"] == 0).all()


def test_checkers_discriminate_between_rows_of_the_same_task(tasks):
    # each row's expected answer should fail at least one other row of its task (no constant checks)
    runs = tasks.assign(response_text=tasks["expected"], status="ok")
    for task, group in runs.groupby("task"):
        shifted = group.assign(response_text=list(group["response_text"].iloc[1:]) +
                               [group["response_text"].iloc[0]])
        assert scoring.auto(shifted)["score"].mean() < 1, task


def test_unknown_dataset():
    with pytest.raises(ValueError, match="no dataset"):
        datasets.load("nope")
