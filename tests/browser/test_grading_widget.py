"""Blind grading in a real JupyterLab + Chromium: buttons, keys, names hidden, a kernel restart
mid-grading that resumes where it stopped, and answers that stay text."""
from __future__ import annotations

import re

import pytest
from notebook_ui import Notebook, write_notebook
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CELLS = [
    "from llmlab import Lab\nlab = Lab()\n"
    "res = lab.sweep(['Name a colour.', 'Name a fruit.', 'Name a tree.'], models=['quick', 'xss-img'], progress=False)",
    "%load_ext llmlab",
    "%llm grade run={res.run_id} who=tester",
    "labels = lab.labels(who='tester')\nprint(len(labels), 'labels;', sorted(labels['shown_first']))",
]


def _restart_kernel(jupyter, name: str) -> None:
    for session in jupyter.api("GET", "/api/sessions") or []:
        if session.get("path", "").endswith(name):
            jupyter.api("POST", f"/api/kernels/{session['kernel']['id']}/restart")


def test_grading_widget_votes_by_button_and_key_and_resumes_after_a_kernel_restart(page, jupyter):
    write_notebook(jupyter.work / "grade.ipynb", CELLS)
    nb = Notebook(page, jupyter, "grade.ipynb").open()
    for i in range(3):
        nb.run(i)
    out = nb.output(2)
    widget = out.locator(".llmlab-grading")
    expect(widget).to_contain_text("0 / 3 graded", timeout=30_000)
    answers = widget.locator("pre")
    expect(answers.nth(1)).to_have_text(re.compile(r"\S"))
    shown = widget.inner_text()
    assert "quick" not in shown and "xss-img" not in shown, "model names shown before the vote"
    assert widget.evaluate("w => w.querySelectorAll('pre img, pre script').length") == 0
    assert "<img src=x onerror=" in shown                       # the hostile answer is shown as text

    widget.locator("button", has_text="A is better").click()
    expect(widget).to_contain_text("1 / 3 graded")
    expect(widget).to_contain_text(re.compile(r"A was (quick|xss-img), B was (quick|xss-img)"))
    keys = widget.locator("input[type=text]")
    keys.click()
    page.keyboard.type("b")
    expect(widget).to_contain_text("2 / 3 graded")
    assert keys.input_value().strip("\u200b\u200c") == ""              # only the pair's invisible mark
    page.keyboard.type("s")                                     # skip the last one, then undo the skip
    expect(widget).to_contain_text("skipped")
    page.keyboard.type("u")
    expect(widget).to_contain_text("Undone")

    _restart_kernel(jupyter, "grade.ipynb")
    nb.wait_ready()
    for i in range(3):
        nb.run(i)
    widget = nb.output(2).locator(".llmlab-grading")
    expect(widget).to_contain_text("2 / 3 graded", timeout=30_000)      # the two votes survived the restart
    widget.locator("input[type=text]").click()
    page.keyboard.type("x")
    expect(widget).to_contain_text("3 / 3 graded")
    expect(widget).to_contain_text("All pairs graded")
    nb.run(3)
    expect(nb.output(3)).to_contain_text("3 labels;")
    assert page.dialogs == [] and page.evaluate("() => window.__pwned") is None


def test_a_double_click_and_two_keys_in_one_go_record_one_vote_each_on_the_pair_shown(page, jupyter):
    cells = [c.replace("tester", "twice") for c in CELLS]     # a grader of its own: the log is the session's
    write_notebook(jupyter.work / "twice.ipynb", cells)
    nb = Notebook(page, jupyter, "twice.ipynb").open()
    for i in range(3):
        nb.run(i)
    widget = nb.output(2).locator(".llmlab-grading")
    expect(widget).to_contain_text("0 / 3 graded", timeout=30_000)
    widget.locator("button", has_text="A is better").dblclick()
    expect(widget).to_contain_text("Ignored 1")                 # the second click was made on the first pair
    expect(widget).to_contain_text("1 / 3 graded")
    widget.locator("input[type=text]").click()
    page.keyboard.insert_text("ab")                             # two keys in one update (as a paste sends them)
    expect(widget).to_contain_text("Ignored 2")
    expect(widget).to_contain_text("2 / 3 graded")
    nb.run(3)
    expect(nb.output(3)).to_contain_text("2 labels;")
