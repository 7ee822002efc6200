"""Round 3 attack F11: a run log a project file chose (pyproject.toml [tool.llmlab] db=, ./.env
LLMLAB_DB) is not a cache source. A cloned repository that ships runs.sqlite cannot put its
"answers" in your results: cache reads are off for such a log (its rows still go in), and the
notice says so in one line; a log you chose (Lab(db=...), LLMLAB_DB in your environment, %config)
replays as before. The one place cache reads happen is Store.cached (llmlab/store/_base.py): the
live runner, batch sweeps and the judges (cache=True sweeps) all go through it."""
from __future__ import annotations

import sqlite3
import warnings

import pandas as pd
import pytest
from fakeserver import BatchBehaviour, FakeServer, ModelSpec
from test_magics import fresh_shell

from llmlab import Lab
from llmlab.engine import _batch

PROMPTS = ["Is this contract safe to sign?", "Should I wire the money today?"]
FAKE = "FABRICATED: the contract is safe to sign."
HONEST = "HONEST: do not sign, clause 7 is a trap."


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch):
    monkeypatch.setattr(_batch.BatchSession, "poll_first_s", 0.05)


@pytest.fixture
def shell():
    yield fresh_shell()
    fresh_shell()


@pytest.fixture
def shipped(tmp_path):
    """The attacker's log for the URL the victim will use: built on a server that fabricates, on the
    same port, then the honest server (the victim's endpoint) takes that port."""
    fake = FakeServer({"gpt-4o": ModelSpec(text=FAKE)}).start()
    url = fake.base_url
    with Lab(base_url=url, db=tmp_path / "runs.sqlite", quiet=True) as lab:
        lab.sweep(PROMPTS, models=["gpt-4o"], progress=False)
    port = fake.port
    fake.stop()
    honest = FakeServer({"gpt-4o": ModelSpec(text=HONEST)}, port=port,
                        batches=BatchBehaviour(in_progress_s=0.0)).start()
    yield honest
    honest.stop()


def chats(srv: FakeServer) -> int:
    return sum(r.path.endswith("/chat/completions") for r in srv.requests)


def _quiet_lab(**kw) -> tuple[Lab, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lab = Lab(quiet=True, **kw)
    return lab, [str(w.message) for w in caught]


@pytest.mark.parametrize("how", ["dotenv", "pyproject"])
def test_a_project_chosen_log_never_answers_from_its_cache(tmp_path, monkeypatch, shipped, shell, capsys, how):
    from llmlab.magics import load_ipython_extension

    monkeypatch.setenv("LLMLAB_BASE_URL", shipped.base_url)
    if how == "dotenv":
        (tmp_path / ".env").write_text("LLMLAB_DB=runs.sqlite\n")
    else:
        (tmp_path / "pyproject.toml").write_text('[tool.llmlab]\ndb = "runs.sqlite"\ndefault_models = ["gpt-4o"]\n')
    load_ipython_extension(shell)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = shell.run_cell_magic("llm", "model=gpt-4o", PROMPTS[0])
    notes = capsys.readouterr().err.splitlines() + [str(w.message) for w in caught]
    assert res.df.response_text[0] == HONEST and not res.df.cached[0] and chats(shipped) == 1
    said = [n for n in notes if "not a cache source" in n]
    assert said and all("\n" not in n for n in said)
    rows = sqlite3.connect(tmp_path / "runs.sqlite").execute("SELECT count(*) FROM runs").fetchone()[0]
    assert rows == 3  # the user's answer went in (writes stay on)


def test_a_dotenv_log_is_not_replayed_by_lab_sweeps_judges_or_batches(tmp_path, shipped):
    from llmlab import scoring

    (tmp_path / ".env").write_text("LLMLAB_DB=runs.sqlite\n")
    lab, notes = _quiet_lab(base_url=shipped.base_url)
    with lab:
        live = lab.sweep(PROMPTS, models=["gpt-4o"], progress=False)
        again = lab.sweep(PROMPTS, models=["gpt-4o"], progress=False)  # not even this user's rows: reads are off
        batch = lab.sweep(PROMPTS, models=["gpt-4o"], progress=False, batch=True)
        frame = pd.DataFrame({"prompt": PROMPTS, "response_text": ["a", "b"]})
        judge = scoring.judge("gpt-4o", lab)
        judge(frame)
        sent = chats(shipped)
        judge(frame)  # cache=True, and its own calls are in the log: still asked afresh
    assert [n for n in notes if "not a cache source" in n and "./.env" in n]
    for result in (live, again, batch):
        assert set(result.df.response_text) == {HONEST} and not result.df.cached.any()
    assert sent > 4 and chats(shipped) == 2 * sent - 4 and len(shipped.batch_requests) == 2
    assert not judge.last_result.df.cached.any()


@pytest.mark.parametrize("how", ["argument", "environment", "config"])
def test_a_log_you_chose_replays(tmp_path, monkeypatch, shipped, shell, how):
    from llmlab.magics import load_ipython_extension

    monkeypatch.setenv("LLMLAB_BASE_URL", shipped.base_url)
    (tmp_path / "pyproject.toml").write_text('[tool.llmlab]\ndb = "runs.sqlite"\n')  # adopted, or overridden
    if how == "argument":
        with Lab(db=tmp_path / "runs.sqlite", quiet=True) as lab:
            df = lab.sweep(PROMPTS, models=["gpt-4o"], progress=False).df
    else:
        if how == "environment":
            monkeypatch.setenv("LLMLAB_DB", str(tmp_path / "runs.sqlite"))
            (tmp_path / "pyproject.toml").write_text("[tool.llmlab]\n")
        load_ipython_extension(shell)
        if how == "config":
            shell.run_line_magic("config", 'LLMLab.db = "runs.sqlite"')
        df = shell.run_cell_magic("llm", "model=gpt-4o", PROMPTS[0]).df
    assert df.cached.all() and set(df.response_text) == {FAKE} and chats(shipped) == 0
