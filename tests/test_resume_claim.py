"""One process at a time runs a run: a second resume of the same run (another kernel, a scheduler's
retry), or a resume while the original sweep still sends, is refused at once with ``RunInUse`` —
nothing is sent twice and a run never holds two ok rows for one (prompt, model, repeat). A killed
holder leaves the run free. Real processes, a real fake server, on SQLite and PostgreSQL."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fakeserver import BatchBehaviour, FakeServer, ModelSpec

import llmlab
from llmlab import Lab, RunInUse, StoreError

pytestmark = pytest.mark.filterwarnings("ignore::llmlab.PriceWarning")

TEXT = "an answer"
PROMPTS = [f"question {i}" for i in range(20)]

# A child that sweeps (resume= given: resumes) and prints its pid and run id as soon as it has one.
CHILD = textwrap.dedent("""
    import json, os, sys, time, warnings
    warnings.simplefilter("ignore")
    from llmlab import Lab
    url, db, resume, prompts = sys.argv[1], sys.argv[2], sys.argv[3] or None, json.loads(sys.argv[4])
    with Lab(base_url=url, db=db, retries=0) as lab:
        fut = lab.submit_sweep(prompts, models=["m"], resume=resume, progress=False, cache=False, concurrency=4)
        while lab.last_run_id is None and not fut.done():
            time.sleep(0.005)
        print("RUN", os.getpid(), lab.last_run_id, flush=True)
        res = fut.result()
        print("DONE", len(res.df), flush=True)
""")


@pytest.fixture
def held():
    """A server that holds every answer until the test lets it go."""
    server = FakeServer({"m": ModelSpec(text=TEXT, hold_after=0)}).start()
    yield server
    server.stop()


@pytest.fixture
def quick():
    server = FakeServer({"m": ModelSpec(text=TEXT)}).start()
    yield server
    server.stop()


def chat(srv: FakeServer) -> int:
    return len([r for r in srv.requests if r.path == "/v1/chat/completions"])


def first_five(quick: FakeServer, db: str) -> str:
    """A run that stored prompts 0–4 only (the interrupted sweep)."""
    with Lab(base_url=quick.base_url, db=db, retries=0) as lab:
        run_id = lab.sweep(PROMPTS[:5], models=["m"], progress=False, cache=False).run_id
    quick.reset()
    return run_id


def start_child(tmp_path: Path, url: str, db: str, resume: str, prompts: list[str]) -> subprocess.Popen:
    import json

    script = tmp_path / "child.py"
    script.write_text(CHILD)
    return subprocess.Popen([sys.executable, str(script), url, db, resume, json.dumps(prompts)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)


def announced(proc: subprocess.Popen) -> tuple[int, str]:
    line = proc.stdout.readline().split()
    assert line and line[0] == "RUN", (line, proc.stderr.read() if proc.poll() is not None else "")
    return int(line[1]), line[2]


def finish(proc: subprocess.Popen) -> tuple[str, str]:
    try:
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return out, err


def ok_rows_per_pair(db: str, run_id: str) -> dict[tuple[str, str, int], int]:
    with Lab(base_url="http://127.0.0.1:9/v1", db=db) as lab:
        rows = lab.runs(run_id)
    ok = rows[rows["status"] == "ok"]
    return ok.groupby(["prompt", "requested_model", "repeat"]).size().to_dict()


def test_a_second_resume_in_another_process_is_refused_and_nothing_is_paid_twice(db_url, tmp_path, held, quick):
    """Process A resumes the run (its requests are in flight, held); this process resumes the same
    run against another server at the same time: refused at once, nothing sent there. Before the
    claim: this resume sent all 15 missing requests too and the run held 2 ok rows per pair."""
    run_id = first_five(quick, db_url)
    proc = start_child(tmp_path, held.base_url, db_url, run_id, PROMPTS)
    try:
        pid, announced_run = announced(proc)
        assert announced_run == run_id
        held.wait_held("m", 4, timeout=120)  # A holds the claim: its first requests are in flight
        with Lab(base_url=quick.base_url, db=db_url, retries=0) as lab:
            t0 = time.monotonic()
            with pytest.raises(RunInUse) as refused:
                lab.sweep(PROMPTS, models=["m"], resume=run_id, progress=False, cache=False)
            elapsed = time.monotonic() - t0
        assert chat(quick) == 0  # nothing was sent by the refused resume
        message = str(refused.value)
        assert "\n" not in message and run_id in message and f"pid {pid} on host " in message, message
        assert isinstance(refused.value, StoreError) and llmlab.RunInUse is RunInUse
        assert elapsed < 10, elapsed  # refused at once, not after a wait (10 s: a loaded 2-core machine)
    finally:
        held.release("m")
    out, err = finish(proc)
    assert proc.returncode == 0 and "DONE 20" in out, (out, err)
    assert chat(held) == 15  # each missing pair sent once
    pairs = ok_rows_per_pair(db_url, run_id)
    assert len(pairs) == 20 and set(pairs.values()) == {1}


def test_a_resume_while_the_original_sweep_still_runs_is_refused(db_url, tmp_path, held, quick):
    """The original sweep is still sending in process A when someone resumes its run id."""
    proc = start_child(tmp_path, held.base_url, db_url, "", PROMPTS)
    try:
        pid, run_id = announced(proc)
        held.wait_held("m", 4, timeout=120)
        with Lab(base_url=quick.base_url, db=db_url, retries=0) as lab:
            with pytest.raises(RunInUse, match=f"pid {pid} on host "):
                lab.sweep(PROMPTS, models=["m"], resume=run_id, progress=False, cache=False)
        assert chat(quick) == 0
    finally:
        held.release("m")
    out, err = finish(proc)
    assert proc.returncode == 0 and "DONE 20" in out, (out, err)
    assert chat(held) == 20
    pairs = ok_rows_per_pair(db_url, run_id)
    assert len(pairs) == 20 and set(pairs.values()) == {1}


def test_a_killed_holder_leaves_the_run_free(db_url, tmp_path, held, quick):
    """kill -9 of the process resuming the run: the lock dies with it (no lease to expire), and the
    next resume sends only the pairs still missing, once."""
    run_id = first_five(quick, db_url)
    proc = start_child(tmp_path, held.base_url, db_url, run_id, PROMPTS)
    try:
        announced(proc)
        held.wait_held("m", 4, timeout=120)
    finally:
        proc.send_signal(signal.SIGKILL)
        finish(proc)
    held.release("m")
    deadline = time.monotonic() + 30
    with Lab(base_url=quick.base_url, db=db_url, retries=0) as lab:
        while True:  # a PostgreSQL backend ends its session a moment after its client died
            try:
                res = lab.sweep(PROMPTS, models=["m"], resume=run_id, progress=False, cache=False)
                break
            except RunInUse:
                assert time.monotonic() < deadline, "the killed holder's claim outlived it"
                time.sleep(0.05)
    assert chat(quick) == 15 and len(res.df[res.df["status"] == "ok"]) == 20
    pairs = ok_rows_per_pair(db_url, run_id)
    assert len(pairs) == 20 and set(pairs.values()) == {1}
    if "://" not in db_url:  # the claim file the killed process left was taken over and removed
        assert not [p for p in os.listdir(tmp_path) if "-claim-" in p]


@pytest.mark.parametrize("labs", ["one Lab", "two Labs"])
def test_two_resumes_in_one_process_and_a_resume_after_the_first_ends(db_url, labs):
    """Two calls of one kernel resuming one run (submit_sweep, then sweep; through one Lab or two
    on the same log): the second is refused; once the first has finished the claim is free again,
    and a resume then has nothing left to send."""
    two_calls(db_url, labs)


def test_two_resumes_of_an_in_memory_log():
    """``:memory:`` is one Lab's own log: its claims are the process's."""
    two_calls(":memory:", "one Lab")


def test_a_log_reached_through_a_symlink_is_the_same_log(tmp_path):
    """SQLite: the claim is the log file's, whichever path names it."""
    real = tmp_path / "runs.sqlite"
    os.symlink(real, tmp_path / "alias.sqlite")
    two_calls(str(real), "two Labs", second_db=str(tmp_path / "alias.sqlite"))


def two_calls(db: str, labs: str, second_db: str | None = None) -> None:
    srv = FakeServer({"m": ModelSpec(text=TEXT, hold_after=5)}).start()  # 5 answered, then held
    try:
        with Lab(base_url=srv.base_url, db=db, retries=0) as lab, \
                Lab(base_url=srv.base_url, db=(second_db or db) if labs == "two Labs" else ":memory:",
                    retries=0) as second:
            other = second if labs == "two Labs" else lab
            run_id = lab.sweep(PROMPTS[:5], models=["m"], progress=False, cache=False).run_id
            fut = lab.submit_sweep(PROMPTS, models=["m"], resume=run_id, progress=False, cache=False, concurrency=4)
            try:
                srv.wait_held("m", 4, timeout=120)
                sent = chat(srv)
                with pytest.raises(RunInUse, match=f"another call in this process \\(pid {os.getpid()} on host "):
                    # (a timeout: without the claim its requests would be held too, never answered)
                    other.sweep(PROMPTS, models=["m"], resume=run_id, progress=False, cache=False, timeout=5)
                assert chat(srv) == sent == 9  # the refused resume sent nothing
            finally:
                srv.release("m")
            first = fut.result(timeout=120)
            assert len(first.df[first.df["status"] == "ok"]) == 20 and chat(srv) == 20
            again = other.sweep(PROMPTS, models=["m"], resume=run_id, progress=False, cache=False)
            assert chat(srv) == 20 and len(again.df) == len(first.df) == 20
    finally:
        srv.stop()


COLLECTOR = textwrap.dedent("""
    import sys, warnings
    warnings.simplefilter("ignore")
    from llmlab import Lab
    url, db, run_id = sys.argv[1], sys.argv[2], sys.argv[3]
    with Lab(base_url=url, db=db, retries=0) as lab:
        print("DONE", len(lab.batch_resume(run_id, progress=False).df), flush=True)
""")


def test_a_second_batch_collection_of_a_run_is_refused(db_url, tmp_path):
    """A batch run submitted here is being collected by another process (its batch still in
    progress): collecting it here too is refused at once; the run's rows are stored once."""
    # in progress until the test lets it finish (the fake reads its behaviour at every poll)
    srv = FakeServer({"m": ModelSpec(text=TEXT)}, batches=BatchBehaviour(in_progress_s=3600)).start()
    try:
        with Lab(base_url=srv.base_url, db=db_url, retries=0) as lab:
            run_id = lab.batch_submit(PROMPTS[:6], models=["m"], progress=False)
            before = len(srv.requests)  # what the submission asked: the collector's polls come after
            script = tmp_path / "collect.py"
            script.write_text(COLLECTOR)
            proc = subprocess.Popen([sys.executable, str(script), srv.base_url, db_url, run_id],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
            try:
                deadline = time.monotonic() + 60  # the collector polls the batch: it holds the claim
                while not [r for r in srv.requests[before:] if r.method == "GET" and r.path.startswith("/v1/batches/")]:
                    assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
                    time.sleep(0.02)
                with pytest.raises(RunInUse, match=f"pid {proc.pid} on host "):
                    lab.batch_resume(run_id, progress=False)
                with pytest.raises(RunInUse):
                    lab.sweep(PROMPTS[:6], models=["m"], resume=run_id, batch=True, progress=False)
            finally:
                srv.batch_api.behaviour = BatchBehaviour()  # the batch completes at the next poll
                out, err = finish(proc)
            assert proc.returncode == 0 and "DONE 6" in out, (out, err)
            assert len(srv.batch_api.state()["batches"]) == 1
        pairs = ok_rows_per_pair(db_url, run_id)
        assert len(pairs) == 6 and set(pairs.values()) == {1}
    finally:
        srv.stop()


def test_a_claim_file_that_is_not_the_users_own_file_is_refused(tmp_path, quick):
    """SQLite: the claim file beside the log follows the log's file rules: a symlink (or a file
    others may read) planted there is refused before anything is sent, never followed."""
    from llmlab.store._claims import claim_path

    db = str(tmp_path / "runs.sqlite")
    run_id = first_five(quick, db)
    with Lab(base_url=quick.base_url, db=db, retries=0) as lab:
        path = claim_path(lab.store.path, lab.store._log_id, run_id)
        target = tmp_path / "elsewhere"
        target.write_text("")
        os.symlink(target, path)
        with pytest.raises(StoreError, match="claim"):
            lab.sweep(PROMPTS, models=["m"], resume=run_id, progress=False, cache=False)
        os.unlink(path)
        Path(path).write_text("")
        os.chmod(path, 0o644)
        with pytest.raises(StoreError, match="not owner-only"):
            lab.sweep(PROMPTS, models=["m"], resume=run_id, progress=False, cache=False)
        os.unlink(path)
        assert chat(quick) == 0 and target.read_text() == ""
        assert len(lab.sweep(PROMPTS, models=["m"], resume=run_id, progress=False, cache=False).df) == 20
    assert chat(quick) == 15
