"""Grading resumes on what is graded — prompt, pair, the answers' hashes, grader — not on the frame
passed: after a restart ``GradingWidget(lab, lab.runs())`` (the judge's own rows and other sweeps
in it) finds the pairs already graded and does not ask them again. Driven from Python, against a
real server on 127.0.0.1 through the openai SDK (tests/fakeserver.py)."""
from __future__ import annotations

import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import InputError, Lab, scoring
from llmlab.widgets import GradingWidget

QUESTIONS = [f"Question {k}?" for k in range(4)]


@pytest.fixture
def server():
    with FakeServer({"alpha": ModelSpec(text="alpha's answer"), "beta": ModelSpec(text="beta's answer"),
                     "judge": ModelSpec(text="[[A]]")}) as srv:
        yield srv


@pytest.fixture
def graded(server, tmp_path):
    """Session 1: ann grades 2 of the 4 pairs of res.df, then the judge judges them (its calls go
    into the same log). Returns (db, the session's grading name, the keys ann graded)."""
    db = str(tmp_path / "runs.sqlite")
    with Lab(base_url=server.base_url, db=db, retries=0) as lab:
        res = lab.sweep(QUESTIONS, models=["alpha", "beta"], progress=False)
        widget = GradingWidget(lab, res.df, who="ann")
        keys = []
        for vote in ("A", "B"):
            keys.append(widget.current.key)
            widget.press(vote)
        assert widget.done == 2
        with pytest.warns(RuntimeWarning, match="carries no information"):     # a judge saying [[A]] always
            scoring.pairwise(res.df, judge="judge", lab=lab, progress=False)
        assert (lab.runs()["requested_model"] == "judge").any()       # the judge's rows are in the log
    return db, widget.grading, keys


def _remaining(widget: GradingWidget) -> list[tuple[str, str, str]]:
    """Every pair the widget still asks, in order (skipping through them: nothing is stored)."""
    return [it.key for it in widget._queue]


def test_lab_runs_after_a_restart_resumes_without_the_judges_rows(server, graded):
    db, name, keys = graded
    with Lab(base_url=server.base_url, db=db, retries=0) as lab:
        for kwargs in ({}, {"models": ["alpha", "beta"]}):
            widget = GradingWidget(lab, lab.runs(), who="ann", **kwargs)
            assert widget.grading == name and len(widget.items) == 4
            assert {(it.model_a, it.model_b) for it in widget.items} == {("alpha", "beta")}   # the judge is no model
            assert widget.done == widget.resumed == 2 and "2 / 4 graded" in widget.progress.value
            assert "Resumed: 2 of 4 pair(s) already graded by ann" in widget.status.value
            assert not set(keys) & set(_remaining(widget))                  # graded pairs not asked again
        widget.press("tie")
        widget.press("A")
        assert widget.current is None and len(lab.labels(grading=name)) == 4
        with pytest.raises(InputError, match="no answers of model 'judge' to grade"):
            GradingWidget(lab, lab.runs(), who="ann", models=["alpha", "judge"])


def test_the_same_pairs_in_a_bigger_frame_or_the_other_orientation_count_as_graded(server, graded):
    db, name, keys = graded
    with Lab(base_url=server.base_url, db=db, retries=0) as lab:
        lab.sweep(["Another question?", "And one more?"], models=["alpha", "beta"], progress=False)
        bigger = GradingWidget(lab, lab.runs(), who="ann")
        assert bigger.grading != name and len(bigger.items) == 6            # another grading: more items
        assert bigger.done == bigger.resumed == 2 and not set(keys) & set(_remaining(bigger))
        flipped = GradingWidget(lab, lab.runs(), who="ann", models=["beta", "alpha"])
        assert {(it.model_a, it.model_b) for it in flipped.items} == {("beta", "alpha")}
        assert flipped.done == 2
        assert {(p, b, a) for p, a, b in keys}.isdisjoint(_remaining(flipped))
        bigger.press("undo")                   # undo takes back ann's latest label on these pairs
        assert bigger.current.key == keys[-1] and bigger.done == 1


def test_another_grader_changed_answers_or_a_named_grading_start_afresh(server, graded):
    db, name, keys = graded
    with Lab(base_url=server.base_url, db=db, retries=0) as lab:
        bob = GradingWidget(lab, lab.runs(), who="bob")
        assert bob.done == bob.resumed == 0 and bob.status.value == ""
        named = GradingWidget(lab, lab.runs(), who="ann", grading="round2")   # grading again on purpose
        assert named.done == 0 and len(named._queue) == 4
        while named.current.key not in keys:
            named.press("skip")
        named.press("skip")                                 # in round2, a pair ann voted on in session 1
        assert GradingWidget(lab, lab.runs(), who="ann").done == 2             # a skip never undoes a vote
        regraded = named.current.key
        named.press("A")
        assert GradingWidget(lab, lab.runs(), who="ann", grading="round2").done == 1
        # round2's vote is ann's too (a new pair, or one she had graded)
        assert GradingWidget(lab, lab.runs(), who="ann").done == 2 + (regraded not in keys)
        server.set_model("beta", ModelSpec(text="beta's new answer"))
        lab.sweep(QUESTIONS, models=["alpha", "beta"], progress=False, cache=False)
        resweep = GradingWidget(lab, lab.runs(), who="ann")     # the latest answers: not the ones graded
        assert resweep.grading == name and resweep.done == 0 and len(resweep._queue) == 4
