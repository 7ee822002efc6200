"""Interrupting a sweep (``future.cancel()`` and a real Ctrl-C), resuming it, and two processes
appending to one SQLite log at once."""
from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from fakeserver import FakeServer, ModelSpec, Remote, collect, start_subprocess, stop_subprocess, wait_for

from llmlab import Lab, RetryPolicy

pytestmark = pytest.mark.filterwarnings("ignore::llmlab.PriceWarning")

TEXT = "alpha beta gamma delta"
REPO = Path(__file__).resolve().parent.parent


def chat_requests(srv: FakeServer):
    return [r for r in srv.requests if r.path == "/v1/chat/completions"]


def db_rows(path: Path) -> list[dict]:
    with sqlite3.connect(path, timeout=30) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM runs ORDER BY id")]


def check_complete_rows(rows: list[dict]) -> None:
    """Nothing half-written: ok rows carry the whole answer, the others are recorded errors."""
    for r in rows:
        assert r["status"] in ("ok", "error"), r
        assert r["started_at"] and r["latency_s"] is not None and r["run_id"] and r["request_id"]
        if r["status"] == "ok":
            assert r["response_text"] == TEXT and (r["error_type"] is None or r["error_type"] != r["error_type"])
        else:
            assert r["error_type"] == "Cancelled", r


@pytest.fixture
def srv():
    # "held" answers its first 4 calls at once and holds the rest until released: with concurrency
    # 4 the second wave is in flight, and stays there, when the test interrupts the run.
    server = FakeServer({"quick": ModelSpec(text=TEXT), "held": ModelSpec(text=TEXT, hold_after=4)}).start()
    yield server
    server.stop()


def test_cancel_keeps_finished_rows_and_resume_runs_only_the_missing_pairs(srv, tmp_path):
    prompts = [f"prompt {i}" for i in range(12)]
    lab = Lab(base_url=srv.base_url, db=str(tmp_path / "runs.sqlite"), retry_policy=RetryPolicy(retries=0))
    try:
        submitted = time.monotonic()
        fut = lab.submit_sweep(prompts, models=["held"], concurrency=4, progress=False, cache=False)
        # The first wave of 4 is answered at once; the second is held: cancel while it is in flight.
        srv.wait_held("held", 4, timeout=60)
        wait_for(lambda: len(lab.runs()) >= 4, timeout=60)
        t0 = time.monotonic()
        fut.cancel()
        assert fut.finished.wait(30)  # the held calls never end by themselves: finishing means they were cut
        elapsed = time.monotonic() - t0
        assert elapsed < 5.0, elapsed  # promptly, with room for a loaded 2-core machine
        assert fut.cancelled()
        first = lab.runs()
        check_complete_rows(first.to_dict("records"))
        assert first["run_id"].nunique() == 1
        run_id = first["run_id"].iloc[0]
        ok = first[first["status"] == "ok"]
        cancelled = first[first["error_type"] == "Cancelled"]
        assert len(ok) == 4 and len(cancelled) == 4  # the held wave was cut; the queued 4 never started
        assert len(first) == len(chat_requests(srv)) == 8  # every request sent is one row
        # Ended by the cancel, not before: a row's clock starts when its request leaves, before the
        # server stamps it, and stops at the cut, after t0. (Bounding it above by the server's
        # stamps was a race: a request leaves before it is stamped.)
        last_held = max(r.t_mono for r in chat_requests(srv)[4:])
        assert (cancelled["latency_s"] >= t0 - last_held).all()
        assert (cancelled["latency_s"] <= time.monotonic() - submitted).all()
        assert ok["prompt"].is_unique

        srv.set_model("held", ModelSpec(text=TEXT))  # the gate is gone: the resume runs freely
        srv.reset()
        res = lab.sweep(prompts, models=["held"], concurrency=8, progress=False, cache=False, resume=run_id)
        resent = sorted(json.dumps(r.body["messages"]) for r in chat_requests(srv))
        missing = sorted(json.dumps([{"role": "user", "content": p}]) for p in prompts if p not in set(ok["prompt"]))
        assert resent == missing  # only the pairs without an ok row were called again
        assert res.run_id == run_id
        final = res.df
        assert set(final["run_id"]) == {run_id}
        done = final[final["status"] == "ok"]
        assert sorted(done["prompt"]) == sorted(prompts) and done["prompt"].is_unique
        assert len(final) == len(first) + len(missing)  # the old rows are kept
        # Resuming a complete run calls nothing.
        srv.reset()
        lab.sweep(prompts, models=["held"], progress=False, cache=False, resume=run_id)
        assert chat_requests(srv) == []
    finally:
        lab.close()


def test_cancel_during_backoff_records_no_phantom_attempt(tmp_path):
    with FakeServer({"down": ModelSpec(status=503)}) as server:
        # a backoff of at least 45 s: no second attempt can slip in before the cancel, however slow
        lab = Lab(base_url=server.base_url, db=str(tmp_path / "runs.sqlite"),
                  retry_policy=RetryPolicy(retries=3, base_s=60.0, cap_s=120.0, seed=0))
        try:
            fut = lab.submit_compare("hi", models=["down"], cache=False)
            wait_for(lambda: len(lab.runs()) == 1, timeout=60)
            t0 = time.monotonic()
            fut.cancel()
            assert fut.finished.wait(30) and time.monotonic() - t0 < 5.0  # not the backoff
            frame = lab.runs()
            assert frame["error_type"].tolist() == ["InternalServerError"]
            assert len(chat_requests(server)) == 1
        finally:
            lab.close()


SIGINT_SCRIPT = textwrap.dedent("""
    import sys, warnings
    warnings.simplefilter("ignore")
    from llmlab import Lab, RetryPolicy
    base_url, db = sys.argv[1], sys.argv[2]
    lab = Lab(base_url=base_url, db=db, retry_policy=RetryPolicy(retries=0))
    print("READY", flush=True)
    try:
        lab.sweep([f"prompt {i}" for i in range(12)], models=["held"], concurrency=4, progress=False,
                  cache=False)
    except KeyboardInterrupt:
        print("INTERRUPTED", flush=True)
        sys.exit(42)
    print("FINISHED", flush=True)
""")


def test_keyboard_interrupt_in_a_real_process(srv, tmp_path):
    db = tmp_path / "runs.sqlite"
    script = tmp_path / "sweep.py"
    script.write_text(SIGINT_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), srv.base_url, str(db)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert proc.stdout.readline().strip() == "READY"

        def finished_rows():
            try:
                return db.exists() and len(db_rows(db)) >= 4
            except sqlite3.OperationalError:
                return False  # tables not created yet
        srv.wait_held("held", 4, timeout=120)  # the second wave is in flight and cannot finish
        wait_for(finished_rows, timeout=120)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 42, (out, err)
    assert "INTERRUPTED" in out and "FINISHED" not in out
    # Prompt: the held calls never end by themselves and 4 prompts were still queued; the bound
    # only says "did not wait for a timeout" with room for a loaded 2-core machine.
    assert elapsed < 10.0, elapsed
    rows = db_rows(db)
    check_complete_rows(rows)
    ok = [r for r in rows if r["status"] == "ok"]
    cancelled = [r for r in rows if r["status"] == "error"]
    assert len(ok) == 4 and len(cancelled) == 4  # the first wave finished, the held wave was cut
    assert len(rows) == len(chat_requests(srv)) == 8  # the queued prompts were never sent


WRITER_SCRIPT = textwrap.dedent("""
    import pathlib, sys, time, warnings
    warnings.simplefilter("ignore")
    from llmlab import Lab
    base_url, db, name = sys.argv[1], sys.argv[2], sys.argv[3]
    pathlib.Path(f"{name}.ready").touch()  # both writers open the fresh log at the same moment
    deadline = time.monotonic() + 120
    while len(list(pathlib.Path().glob("*.ready"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    lab = Lab(base_url=base_url, db=db, retries=0)
    res = lab.sweep([f"{name} prompt {i}" for i in range(100)], models=["a", "b"], concurrency=16,
                    progress=False, cache=False, stream=False)
    errors = res.df[res.df["status"] != "ok"]
    print("RUN", res.run_id, len(res.df), len(errors), flush=True)
    lab.close()
""")


def test_two_processes_append_to_one_log(tmp_path):
    # "a" is held: each writer stores its "b" rows until its 16 slots all wait on "a"; released
    # only once both are stalled there, so both runs write before and after that point.
    proc_srv, base_url = start_subprocess({"a": {"text": TEXT, "hold_after": 0}, "b": {"text": TEXT}})
    db = tmp_path / "shared.sqlite"
    script = tmp_path / "writer.py"
    script.write_text(WRITER_SCRIPT)
    writers = [subprocess.Popen([sys.executable, str(script), base_url, str(db), name],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
               for name in ("w1", "w2")]
    try:
        Remote(base_url).wait_held("a", 32, timeout=180)
        assert len({r["run_id"] for r in db_rows(db)}) == 2  # both have written rows already
        Remote(base_url).release("a")
    except BaseException:
        stop_subprocess(proc_srv)  # the held calls end at once: the writers do not wait them out
        raise
    finally:
        results = collect(writers, proc_srv, timeout=180)
    for w, (out, err) in zip(writers, results, strict=True):
        assert w.returncode == 0, err
        assert "locked" not in err.lower() and "Traceback" not in err, err
        assert " 200 0" in out, out
    rows = db_rows(db)
    assert len(rows) == 400
    assert all(r["status"] == "ok" and r["response_text"] == TEXT for r in rows)
    runs = {}
    for r in rows:
        runs.setdefault(r["run_id"], []).append(r)
    assert sorted(len(v) for v in runs.values()) == [200, 200]
    assert len({r["id"] for r in rows}) == 400
    for v in runs.values():
        assert len({(r["prompt"], r["requested_model"]) for r in v}) == 200
    # The two runs really wrote at the same time (their rows interleave in the log).
    (first_ids, second_ids) = ([r["id"] for r in v] for v in runs.values())
    assert min(second_ids) < max(first_ids) and min(first_ids) < max(second_ids)
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("SELECT count(*) FROM _migrations").fetchone()[0] >= 2


def test_many_connections_open_a_fresh_log_at_once(tmp_path):
    """Switching a new file to WAL needs an exclusive lock; a concurrent opener used to get
    'database is locked' at once (the busy timeout does not cover it). Threads with their own
    connections race exactly like processes do, and much faster."""
    from llmlab.store._sqlite import SQLiteStore as Store

    failures: list[Exception] = []
    for round_ in range(80):
        path = tmp_path / f"fresh{round_}.sqlite"
        barrier = threading.Barrier(6)

        def open_it(barrier=barrier, path=path):
            barrier.wait()
            try:
                Store(path).close()
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                failures.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert failures == []


def test_cancelling_while_finished_rows_wait_for_the_log_stores_them_and_returns(srv, tmp_path):
    """Rows queued for the writer when their calls are cancelled (Ctrl-C, Stop) are still stored
    (in one transaction when several wait together), and neither the run nor close() hangs."""
    lab = Lab(base_url=srv.base_url, db=str(tmp_path / "runs.sqlite"), retry_policy=RetryPolicy(retries=0))
    try:
        lab.compare("warm", models=["quick"], cache=False)
        # Two synchronisation points, seen where the engine meets the log: the rows handed to its
        # writer, and the run's final flush (reached once the cancel has gone through every call).
        handed: list = []
        flushing = threading.Event()
        defer, flush = lab.store.defer, lab.store.flush
        lab.store.defer = lambda write: (handed.append(write), defer(write))[1]
        with lab.store._lock:  # the log is busy: finished rows queue up in the writer
            fut = lab.submit_sweep([f"p{i}" for i in range(8)], models=["quick"], concurrency=8,
                                   progress=False, cache=False)
            wait_for(lambda: len(handed) == 8, timeout=60)  # every answer is in; each waits for its row
            lab.store.flush = lambda *a, **kw: (flushing.set(), flush(*a, **kw))[1]
            fut.cancel()
            assert flushing.wait(60)  # cancelled while all eight rows still wait for the log
        assert fut.finished.wait(30)
        rows = lab.runs()
        assert len(rows) == len(chat_requests(srv)) == 9  # every request sent is one stored row
        assert set(rows["status"]) <= {"ok", "error"} and (rows["status"] == "ok").sum() >= 1
    finally:
        t0 = time.monotonic()
        lab.close()
        assert time.monotonic() - t0 < 5
