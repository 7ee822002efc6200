"""F14: lab.close() from another thread while a run goes on. The thread that ran it gets one
llmlab error line naming the run and how to resume it (not a bare concurrent.futures.CancelledError);
every call the endpoint answered is a row (ok, or Cancelled while in flight), and a resume in a new
Lab finishes the run. Real server on 127.0.0.1 (tests/fakeserver.py) through the real SDK."""
from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import Lab, LLMLabError

PROMPTS = [f"q{i}" for i in range(24)]
SENT_BATCHES = "select count(*) from batch_parts where batch_id is not null"


def _run_and_close(lab: Lab, call, ready=lambda: True) -> BaseException | None:
    caught: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # noqa: B036 - the point is what the thread gets
            caught.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 20
    time.sleep(0.3)
    while not ready() and time.monotonic() < deadline:
        time.sleep(0.05)
    lab.close()
    thread.join(30)
    assert not thread.is_alive()
    return caught[0] if caught else None


def _count(db, sql: str) -> int:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:  # the log (or its table) is not made yet
        return 0
    finally:
        con.close()


def _rows(db) -> tuple[int, int]:
    con = sqlite3.connect(db)
    try:
        return con.execute("select count(*), coalesce(sum(status = 'ok'), 0) from runs").fetchone()
    except sqlite3.OperationalError:  # the log is not made yet
        return 0, 0
    finally:
        con.close()


def test_closing_the_lab_mid_sweep_is_one_line_naming_the_run_and_the_resume(tmp_path):
    db = tmp_path / "runs.sqlite"
    with FakeServer({"m": ModelSpec(text="paid answer", delay_s=0.2)}) as srv:
        lab = Lab(base_url=srv.base_url, db=db, quiet=True, concurrency=4)
        exc = _run_and_close(lab, lambda: lab.sweep(PROMPTS, models=["m"], progress=False),
                             ready=lambda: db.exists() and _rows(db)[1] >= 4)
        answered = len([r for r in srv.requests if r.path.endswith("/chat/completions")])
        run_id = lab.last_run_id
        assert isinstance(exc, LLMLabError), repr(exc)
        message = str(exc)
        assert "\n" not in message and run_id in message
        assert "finished calls are saved" in message and f"resume={run_id!r}" in message
        stored, ok = _rows(db)
        assert stored == answered and 0 < ok < len(PROMPTS)  # nothing paid for is lost
        with Lab(base_url=srv.base_url, db=db, quiet=True, concurrency=8) as again:
            res = again.sweep(PROMPTS, models=["m"], progress=False, resume=run_id)
        assert (res.df["status"] == "ok").sum() == len(PROMPTS)


def test_closing_the_lab_mid_compare_is_an_llmlab_error_too(tmp_path):
    with FakeServer({"m": ModelSpec(text="slow", delay_s=2.0)}) as srv:
        lab = Lab(base_url=srv.base_url, db=tmp_path / "runs.sqlite", quiet=True)
        exc = _run_and_close(lab, lambda: lab.compare("hi", models=["m"]))
    assert isinstance(exc, LLMLabError) and lab.last_run_id in str(exc), repr(exc)


def test_a_closed_lab_refuses_a_new_run_in_one_line(tmp_path):
    lab = Lab(base_url="http://127.0.0.1:9/v1", db=tmp_path / "runs.sqlite", quiet=True)
    lab.close()
    with pytest.raises(LLMLabError, match="closed"):
        lab.sweep(["q"], models=["m"], progress=False)


def test_a_submitted_run_cut_short_by_close_is_an_llmlab_error_on_its_future(tmp_path):
    with FakeServer({"m": ModelSpec(text="slow", delay_s=2.0)}) as srv:
        lab = Lab(base_url=srv.base_url, db=tmp_path / "runs.sqlite", quiet=True)
        future = lab.submit_sweep(["a", "b"], models=["m"], progress=False)
        time.sleep(0.5)
        lab.close()
        with pytest.raises(LLMLabError, match="closed") as caught:
            future.result(timeout=10)
    assert "\n" not in str(caught.value)


def test_closing_the_lab_while_a_batch_run_waits_names_batch_resume_and_loses_nothing(tmp_path, monkeypatch):
    from fakeserver import BatchBehaviour

    from llmlab.engine import _batch

    monkeypatch.setattr(_batch.BatchSession, "poll_first_s", 0.05)
    db = tmp_path / "runs.sqlite"
    with FakeServer({"m": ModelSpec(text="batch answer")}, batches=BatchBehaviour(in_progress_s=3.0)) as srv:
        lab = Lab(base_url=srv.base_url, db=db, quiet=True, retries=0)
        exc = _run_and_close(lab, lambda: lab.sweep(["a", "b"], models=["m"], batch=True, progress=False),
                             ready=lambda: _count(db, SENT_BATCHES) > 0)
        run_id = lab.last_run_id
        assert isinstance(exc, LLMLabError), repr(exc)
        assert "\n" not in str(exc) and run_id in str(exc) and f"batch_resume({run_id!r})" in str(exc)
        with Lab(base_url=srv.base_url, db=db, quiet=True) as again:
            res = again.batch_resume(run_id, progress=False)
    assert sorted(res.df["response_text"]) == ["batch answer", "batch answer"]
