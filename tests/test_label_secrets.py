"""A label the log stores (a grader's name, a grading's name, the pair it names) never holds the
key: ``%llm grade who=<key>``, ``GradingWidget(who=<key>)`` and ``lab.add_label(...)`` are a one-line
InputError before anything is shown or stored (the key is read first, so it is known even before
the Lab's first call), and the value is never echoed. One check: Lab.check_label_names."""
from __future__ import annotations

import sqlite3

import pytest
from fakeserver import FakeServer, ModelSpec
from IPython.core.error import UsageError
from test_magics import fresh_shell

from llmlab import InputError, Lab
from llmlab.magics import load_ipython_extension
from llmlab.widgets import GradingWidget

KEY = "sk-live-Q7mZ2xR9vT4kW8pN3cB6yH1jD5fG0sLq"  # random: no words of the tests' folder names
LABEL = dict(grading="g1", who="ann", prompt_id="p1", model_a="alpha", model_b="beta", shown_first="alpha",
             vote="A")


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("MY_KEY", KEY)
    with FakeServer({"alpha": ModelSpec(text="a"), "beta": ModelSpec(text="b")}) as srv:
        yield srv


def _labels(db) -> int:
    return sqlite3.connect(db).execute("SELECT count(*) FROM labels").fetchone()[0]


@pytest.mark.parametrize("field", ["who", "grading", "prompt_id", "model_a", "shown_first"])
@pytest.mark.parametrize("form", ["{k}", "ann {k}", "{k}-grader"])
def test_a_label_holding_the_key_is_refused_before_the_first_call(tmp_path, server, field, form):
    db = tmp_path / "l.sqlite"
    fields = {**LABEL, field: form.format(k=KEY)}
    if field == "model_a":
        fields["shown_first"] = fields["model_a"]
    with Lab(base_url=server.base_url, api_key_env="MY_KEY", db=db) as lab:  # no call yet: the key is unread
        with pytest.raises(InputError) as refused:
            lab.add_label(**fields)
        lab.add_label(**LABEL)  # a plain label still goes in
    message = str(refused.value)
    assert KEY not in message and "\n" not in message and field in message and "secret" in message
    assert _labels(db) == 1 and KEY not in "\n".join(sqlite3.connect(db).iterdump())


def test_the_grading_widget_refuses_the_key_as_grader_or_grading(tmp_path, server):
    with Lab(base_url=server.base_url, api_key_env="MY_KEY", db=tmp_path / "l.sqlite") as lab:
        runs = lab.compare("Hi", models=["alpha", "beta"]).df
        for kwargs in ({"who": KEY}, {"grading": f"session {KEY}"}):
            with pytest.raises(InputError) as refused:
                GradingWidget(lab, runs, **kwargs)
            assert KEY not in str(refused.value)


def test_llm_grade_who_key_is_one_line_and_stores_nothing(tmp_path, server, capsys):
    shell = fresh_shell()
    load_ipython_extension(shell)
    db = tmp_path / "l.sqlite"
    try:
        shell.run_line_magic("config", f'LLMLab.base_url = "{server.base_url}"')
        shell.run_line_magic("config", 'LLMLab.api_key_env = "MY_KEY"')
        shell.run_line_magic("config", f'LLMLab.db = "{db}"')
        shell.run_cell_magic("llm", "model=alpha,beta", "Explain DNS.")
        for line in (f"grade who={KEY}", f"grade name={KEY}", f"grade wh={KEY}"):
            with pytest.raises(UsageError) as refused:
                shell.run_line_magic("llm", line)
            assert KEY not in str(refused.value) and "\n" not in str(refused.value)
        out = capsys.readouterr()
        assert KEY not in out.out + out.err
    finally:
        fresh_shell()
    assert _labels(db) == 0


@pytest.mark.parametrize("where", ["task", "name"])
def test_a_route_labelled_with_the_key_is_refused_before_sending(tmp_path, server, where):
    from llmlab import routing

    policy = routing.Always("alpha", name=KEY if where == "name" else None)
    db = tmp_path / "l.sqlite"
    with Lab(base_url=server.base_url, api_key_env="MY_KEY", db=db) as lab:
        with pytest.raises(InputError) as refused:
            lab.route("Hi", policy=policy, task=f"t {KEY}" if where == "task" else None)
    assert KEY not in str(refused.value) and "\n" not in str(refused.value)
    assert not [r for r in server.requests if r.path.endswith("/chat/completions")]
    assert KEY not in "\n".join(sqlite3.connect(db).iterdump())
