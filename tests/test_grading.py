"""Blind grading, driven from Python: votes, keys, skip, undo, a restart, and %llm grade."""
from __future__ import annotations

import pandas as pd
import pytest
from fakeserver import FakeServer, ModelSpec
from IPython.core.error import UsageError
from test_magics import fresh_shell, magics_of

from llmlab import InputError, Lab
from llmlab.magics import load_ipython_extension
from llmlab.widgets import GradingWidget

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def server():
    with FakeServer({"alpha": ModelSpec(text="alpha's answer"), "beta": ModelSpec(text=XSS),
                     "gamma": ModelSpec(text="gamma's answer")}) as srv:
        yield srv


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "runs.sqlite")


@pytest.fixture
def runs(server, db):
    with Lab(base_url=server.base_url, db=db) as lab:
        return lab.sweep([f"Question {k}?" for k in range(4)], models=["alpha", "beta"], progress=False).df


def _shown(widget: GradingWidget) -> str:
    return widget.prompt_view.value + widget.answer_views["A"].value + widget.answer_views["B"].value


def _type(widget: GradingWidget, keys: str) -> None:
    """What the browser sends: the key box's value (the mark of the pair shown) with the keys typed."""
    widget.keys.value = widget.keys.value + keys


def test_votes_go_into_the_log_blind_and_grading_resumes_after_a_restart(server, db, runs):
    lab = Lab(base_url=server.base_url, db=db)
    widget = GradingWidget(lab, runs, who="ann")
    assert "0 / 4 graded" in widget.progress.value
    first = widget.current
    assert "alpha" not in _shown(widget).replace("alpha&#x27;s answer", "")     # names hidden before the vote
    assert XSS not in _shown(widget) and "&lt;img src=x" in _shown(widget)     # answers are text
    widget.press("A")
    assert "1 / 4 graded" in widget.progress.value
    assert f"A was {first.shown_first}" in widget.status.value                 # revealed after the vote
    _type(widget, "b")                                                          # a key typed in the key box
    assert widget.keys.value.strip("\u200b\u200c") == "" and "2 / 4 graded" in widget.progress.value
    skipped = widget.current
    _type(widget, "s")
    assert "2 / 4 graded" in widget.progress.value and widget.current != skipped
    widget.press("undo")                                                        # undoes the skip
    assert widget.current == skipped
    widget.press("tie")
    labels = lab.labels(grading=widget.grading)
    assert len(labels) == 3 and (labels["who"] == "ann").all()
    assert set(labels["shown_first"]) <= {"alpha", "beta"}
    lab.close()

    # a new kernel: the same runs and pairs resume the same grading at the fourth pair
    again = Lab(base_url=server.base_url, db=db)
    resumed = GradingWidget(again, again.runs(run_id=runs["run_id"].iloc[0]), who="ann")
    assert resumed.grading == widget.grading and "3 / 4 graded" in resumed.progress.value
    assert resumed.current.key not in set(zip(labels["prompt_id"], labels["model_a"], labels["model_b"], strict=True))
    resumed.press("both_bad")
    assert resumed.current is None and "All pairs graded" in resumed.prompt_view.value
    assert resumed.buttons["A"].disabled
    prefs = again.labels(grading=widget.grading)
    assert len(prefs) == 4 and prefs["both_bad"].sum() == 1
    row = prefs.set_index("prompt_id").loc[first.prompt_id]                  # "A is better": the model shown as A
    assert row[{"a": "model_a", "b": "model_b"}[row["winner"]]] == first.shown_first
    again.close()


def test_a_pair_counts_as_graded_only_on_the_answers_its_label_was_made_on(db):
    questions = [f"Question {k}?" for k in range(3)]
    with FakeServer({"alpha": ModelSpec(text="alpha's answer"), "beta": ModelSpec(text="beta's answer")}) as srv, \
            Lab(base_url=srv.base_url, db=db) as lab:
        widget = GradingWidget(lab, lab.sweep(questions, models=["alpha", "beta"], progress=False).df, who="ann")
        for _ in range(3):
            widget.press("A")
        same = GradingWidget(lab, lab.sweep(questions, models=["alpha", "beta"], progress=False, cache=False).df,
                             who="ann")
        srv.set_model("beta", ModelSpec(text="beta's new answer"))
        new_runs = lab.sweep(questions, models=["alpha", "beta"], progress=False, cache=False).df
        resweep = GradingWidget(lab, new_runs, who="ann")
        assert same.grading == resweep.grading == widget.grading
        assert "3 / 3 graded" in same.progress.value and same.current is None
        assert "0 / 3 graded" in resweep.progress.value and "beta&#x27;s new answer" in _shown(resweep)
        resweep.press("tie")
        assert resweep.done == 1 and len(lab.labels(grading=widget.grading)) == 4   # the old labels stay in the log


def test_undo_after_a_restart_takes_back_the_graders_last_stored_label(server, db, runs):
    with Lab(base_url=server.base_url, db=db) as lab:
        nothing = GradingWidget(lab, runs, who="ann")
        nothing.press("undo")
        assert "Nothing to undo" in nothing.status.value
        first = GradingWidget(lab, runs, who="ann")
        voted = [first.current]
        first.press("A")
        voted.append(first.current)
        first.press("B")
        GradingWidget(lab, runs, who="bob").press("tie")           # another grader's label is not mine to undo
    with Lab(base_url=server.base_url, db=db) as again:            # a new kernel: the widget has no history
        widget = GradingWidget(again, runs, who="ann")
        assert "2 / 4 graded" in widget.progress.value
        widget.press("undo")
        assert widget.current == voted[1] and "1 / 4 graded" in widget.progress.value
        widget.press("undo")
        assert widget.current == voted[0] and widget.done == 0
        assert len(again.labels(who="bob")) == 1 and again.labels(who="ann").empty


def test_a_click_or_key_made_on_a_pair_no_longer_shown_is_counted_not_recorded(server, db, runs):
    with Lab(base_url=server.base_url, db=db) as lab:
        widget = GradingWidget(lab, runs, who="ann")
        first, button = widget.current, widget.buttons["A"]
        button.click()
        button.click()                        # a double-click: the second arrives on the first pair's button
        assert widget.ignored == 1 and "Ignored 1" in widget.status.value and "A was" in widget.status.value
        assert lab.labels(grading=widget.grading)["prompt_id"].tolist() == [first.prompt_id]
        second, stale = widget.current, widget.keys.value
        _type(widget, "ab")                   # two keys in one update: the first votes, the second is ignored
        labels = lab.labels(grading=widget.grading)
        assert widget.ignored == 2 and len(labels) == 2 and labels["prompt_id"].iloc[-1] == second.prompt_id
        widget.keys.value = stale + "abx"     # a late update repeats the keys handled: only "x" is new (ignored)
        assert widget.ignored == 3 and len(lab.labels(grading=widget.grading)) == 2
        assert labels["winner"].iloc[-1] == {second.shown_first: "a"}.get(second.model_a, "b")
        third = widget.current
        widget.keys.value = stale + "t"       # typed while the second pair was still shown: ignored
        assert widget.ignored == 4 and widget.current == third and len(lab.labels(grading=widget.grading)) == 2
        widget.buttons["undo"].click()
        button.click()                        # a late click on the first pair's button
        widget.press("undo")
        assert widget.ignored == 5 and len(lab.labels(grading=widget.grading)) == 0


def test_hidden_sides_are_random_but_stable(server, db, runs):
    with Lab(base_url=server.base_url, db=db) as lab:
        one = GradingWidget(lab, runs, who="x", seed=1)
        two = GradingWidget(lab, runs, who="y", seed=1)
        other = GradingWidget(lab, runs, who="z", seed=2, grading="another")
    assert [(i.key, i.shown_first) for i in one.items] == [(i.key, i.shown_first) for i in two.items]
    sides = [i.shown_first for i in other.items] + [i.shown_first for i in one.items]
    assert {"alpha", "beta"} == set(sides)


def test_bad_grading_requests_are_one_line_errors(server, db, runs):
    with Lab(base_url=server.base_url, db=db) as lab:
        for kwargs, message in (({"models": ["alpha"]}, "compares two models"),
                                ({"models": ["alpha", "delta"]}, "no answers of model 'delta'")):
            with pytest.raises(InputError, match=message):
                GradingWidget(lab, runs, **kwargs)
        with pytest.raises(InputError, match="recorded runs"):
            GradingWidget(lab, pd.DataFrame({"x": [1]}))


def test_llm_grade_opens_the_widget_on_the_sessions_last_run(server, db):
    shell = fresh_shell()
    load_ipython_extension(shell)
    try:
        shell.run_line_magic("config", f'LLMLab.base_url = "{server.base_url}"')
        shell.run_line_magic("config", f'LLMLab.db = "{db}"')
        with pytest.raises(UsageError, match="no run to grade yet"):
            shell.run_line_magic("llm", "grade")
        shell.run_cell_magic("llm", "model=alpha,gamma", "Explain DNS.")
        widget = shell.run_line_magic("llm", "grade who=ann seed=3 reveal=false")
        assert isinstance(widget, GradingWidget) and len(widget.items) == 1 and not widget.reveal
        widget.press("A")
        assert "was" not in widget.status.value                                  # reveal=false: never named
        assert len(magics_of(shell).lab.labels(who="ann")) == 1
        for line, message in (("grade colour=red", "is not one of"), ("grade seed=x", "whole number"),
                              ("grade models=alpha", "compares two models"), ("grade run=nope", "no rows")):
            with pytest.raises(UsageError, match=message):
                shell.run_line_magic("llm", line)
    finally:
        fresh_shell()


@pytest.mark.parametrize("who", ["nul\x00", "line\nbreak", "tab\tbed", "del\x7f"])
def test_control_characters_in_a_label_are_refused_on_every_backend(server, db, who):
    with Lab(base_url=server.base_url, db=db) as lab:
        with pytest.raises(InputError, match="must not hold control characters"):
            lab.add_label(grading="g", who=who, prompt_id="p1", model_a="x", model_b="y", shown_first="x", vote="A")
        assert lab.labels().empty


def test_undoing_a_label_that_is_not_there_says_so(server, db):
    with Lab(base_url=server.base_url, db=db) as lab:
        label = lab.add_label(grading="g", who="ann", prompt_id="p1", model_a="x", model_b="y", shown_first="x",
                              vote="A")
        lab.undo_label(label)
        with pytest.raises(InputError, match=f"no label {label} to undo"):
            lab.undo_label(label)                       # undone already
        with pytest.raises(InputError, match="no label 999999 to undo"):
            lab.undo_label(999999)


def test_the_hidden_side_cannot_be_recomputed_from_what_the_widget_shows(server, db, runs):
    import hashlib
    import json

    def public_guess(widget, item):   # every input is on screen: the grading's name, the prompt's id, the models
        h = hashlib.sha256(json.dumps([str(p) for p in (0, widget.grading, "side", item.prompt_id, item.model_a,
                                                        item.model_b)]).encode()).hexdigest()
        return item.model_a if int(h, 16) % 2 == 0 else item.model_b

    with Lab(base_url=server.base_url, db=db) as lab:
        widgets = [GradingWidget(lab, runs, who="x", grading=f"g{k}") for k in range(12)]
        again = GradingWidget(lab, runs, who="x", grading="g0")   # the same kernel: the same sides
    guessed = [public_guess(w, it) == it.shown_first for w in widgets for it in w.items]
    assert 0.15 < sum(guessed) / len(guessed) < 0.85          # 48 sides: chance, not 100 %
    assert [i.shown_first for i in again.items] == [i.shown_first for i in widgets[0].items]
