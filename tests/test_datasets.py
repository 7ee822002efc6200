"""The bundled prompt sets: shape, and every row's expected answer passes its own checker."""
from __future__ import annotations

import json
import re

import pytest
from pandas.testing import assert_frame_equal

from llmlab import InputError, datasets, scoring


@pytest.fixture(scope="module")
def tasks():
    return datasets.load("tasks")


def test_tasks_shape(tasks):
    assert datasets.names() == ["graded", "routellm-gsm8k", "tasks"]
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


# --- the generated "graded" set -----------------------------------------------------------------

@pytest.fixture(scope="module")
def graded():
    return datasets.load("graded")


def test_graded_is_big_balanced_and_unique(graded):
    assert len(graded) >= 300
    assert list(graded.columns) == ["prompt_id", "task", "difficulty", "prompt", "expected", "checker"]
    assert graded["prompt_id"].is_unique and graded["prompt"].is_unique
    assert set(graded["task"]) == set(datasets.GRADED_TASKS)
    cells = graded.groupby(["task", "difficulty"]).size()
    assert set(graded["difficulty"]) == {1, 2, 3} and cells.max() - cells.min() <= 1
    for task, labels in (("classify", {"positive", "negative"}), ("yes_no", {"yes", "no"})):
        for _, group in graded[graded["task"] == task].groupby("difficulty"):
            counts = group["expected"].value_counts()
            assert set(counts.index) == labels and counts.max() - counts.min() <= 1, (task, counts)


def test_graded_expected_answers_pass_and_wrong_ones_fail(graded):
    scored = scoring.auto(graded.assign(response_text=graded["expected"], status="ok"))
    failing = scored.loc[scored["score"] < 1, ["prompt_id", "score_reason"]]
    assert failing.empty, failing.to_string()
    assert (scoring.auto(graded.assign(response_text="I am not sure.", status="ok"))["score"] == 0).all()
    for task, group in graded.groupby("task"):   # another prompt's answer mostly fails: real labels
        rolled = group.assign(response_text=list(group["expected"].iloc[1:]) + [group["expected"].iloc[0]],
                              status="ok")
        assert scoring.auto(rolled)["score"].mean() < 0.7, task


def test_graded_is_deterministic_nested_and_seeded():
    a = datasets.generate(n=300, seed=7)
    assert_frame_equal(a, datasets.generate(n=300, seed=7))
    assert_frame_equal(a.head(120), datasets.generate(n=120, seed=7))
    other = datasets.generate(n=300, seed=8)
    assert len(set(a["prompt"]) & set(other["prompt"])) < 30   # another seed, other prompts
    assert set(a["prompt_id"]).isdisjoint(other["prompt_id"])   # ids name their seed: no collisions
    assert datasets.load("graded").equals(datasets.generate(n=480, seed=0))


def test_graded_answers_are_computed_right():
    rows = datasets.generate(n=600, seed=3)
    for row in rows.itertuples():
        text = row.prompt
        if row.task == "yes_no" and " greater than " in text:
            left, right = text.split("?")[0].removeprefix("Is ").split(" greater than ")
            value = eval(left.replace("×", "*"), {"__builtins__": {}})   # digits and × only
            assert (value > int(right)) == (row.expected == "yes"), text
        elif row.task == "yes_no":
            number = int(text.split()[1])
            assert (number % 2 == 0) == (row.expected == "yes"), text
        elif row.task == "arithmetic" and row.difficulty < 3:
            expression = text.split("?")[0].removeprefix("What is ").replace("×", "*")
            assert eval(expression, {"__builtins__": {}}) == int(row.expected), text
        elif row.task == "arithmetic":
            a, b, c = (int(x) for x in re.findall(r"\d+", text))
            change = re.search(r"buys \d+ \w+ at", text)
            assert int(row.expected) == (c - a * b if change else a * b - c), text
        elif row.task == "extract" and row.difficulty == 3:
            facts = dict(part.rsplit(" is ", 1) for part in
                         text.split("\n")[0].removeprefix("Text: ").removesuffix(" years old.")
                         .replace(" and ", ", ").split(", "))
            ages = {name: int(age) for name, age in facts.items()}
            pick = (min if "youngest" in text else max)(ages, key=ages.get)
            assert pick == row.expected, text
        elif row.task != "classify":
            assert row.expected in text, text


def test_graded_subsets_of_tasks_and_bad_arguments():
    only = datasets.generate(n=30, seed=0, tasks=["yes_no", "arithmetic"])
    assert set(only["task"]) == {"yes_no", "arithmetic"} and len(only) == 30
    import numpy as np

    assert datasets.generate(n=np.int64(12), seed=np.int32(0)).equals(datasets.generate(n=12, seed=0))
    big = datasets.generate(n=2400, seed=1)   # the limit: 200 per (task, level), all unique
    assert big["prompt"].is_unique
    for bad in ({"n": 0}, {"n": 2401}, {"n": 1.5}, {"n": True}, {"seed": "x"}, {"tasks": ["poetry"]},
                {"tasks": []}, {"n": 601, "tasks": ["classify"]}):
        with pytest.raises(InputError):
            datasets.generate(**bad)
