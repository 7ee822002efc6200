"""User code llmlab runs itself during a run — ``on_event``, a Threshold's feature function, a
Cascade's accept rule — under one rule (llmlab.engine._loop): a ``SystemExit``/``KeyboardInterrupt``
from it cancels the run (finished answers stored) and is raised in the caller's thread, never a
hang; ``on_event`` runs off the loop, so a callback that waits for another thread's call of the
same Lab does not block the loop that call needs. Each hang-prone case runs in a subprocess (or a
daemon thread) with a generous bound: a hang fails the test instead of stalling the suite."""
from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import InputError, Lab
from llmlab.routing import Always, Cascade, Threshold

ROOT = Path(__file__).resolve().parents[1]

_PRELUDE = """
import json, sqlite3, sys, warnings
warnings.simplefilter("ignore")
sys.path.insert(0, {tests!r})
from fakeserver import FakeServer, ModelSpec
from llmlab import Lab
from llmlab.routing import Cascade, Threshold
srv = FakeServer({{"a": ModelSpec(text="first answer"), "b": ModelSpec(text="second answer", delay_s=0.3)}}).start()
lab = Lab(base_url=srv.base_url, db={db!r}, retries=0)
seen = []
def on(kind, exc):
    def callback(event):
        if event.kind == "done":
            seen.append(event.record["request_id"])
        if event.kind == kind:
            raise exc
    return callback
"""

# name -> (the call, the exception it raises, the kind of exception expected in the caller)
_ESCAPES = {
    "on_event start SystemExit": ("lab.compare('q', models=['a', 'b'], on_event=on('start', SystemExit(3)))",
                                  "SystemExit"),
    "on_event done SystemExit": ("lab.compare('q', models=['a', 'b'], on_event=on('done', SystemExit(3)))",
                                 "SystemExit"),
    "on_event done KeyboardInterrupt": (
        "lab.compare('q', models=['a', 'b'], on_event=on('done', KeyboardInterrupt()))", "KeyboardInterrupt"),
    "on_event delta SystemExit (stream)": (
        "lab.compare('q', models=['a', 'b'], stream=True, on_event=on('delta', SystemExit(3)))", "SystemExit"),
    "on_event done GeneratorExit in sweep": (
        "lab.sweep(['q', 'r', 's'], models=['a', 'b'], progress=False, on_event=on('done', GeneratorExit()))",
        "GeneratorExit"),
    "submit_compare future": (
        "lab.submit_compare('q', models=['a', 'b'], on_event=on('done', SystemExit(3))).result(timeout=50)",
        "SystemExit"),
    "Cascade accept SystemExit": (
        "lab.route('q', policy=Cascade(['a', 'b'], accept=lambda t: (_ for _ in ()).throw(SystemExit(4))))",
        "SystemExit"),
    "Threshold feature KeyboardInterrupt": (
        "lab.route('q', policy=Threshold(lambda row: (_ for _ in ()).throw(KeyboardInterrupt()), 1, 'a', 'b'))",
        "KeyboardInterrupt"),
}

_AFTER = """
try:
    {call}
    print("RETURNED")
except BaseException as exc:
    print("CAUGHT", type(exc).__name__)
rows = sqlite3.connect({db!r}).execute("select request_id, status, response_text from runs").fetchall()
print("ROWS", json.dumps(rows))
print("SEEN", json.dumps(seen))
again = lab.compare("after", models=["a"]).df
print("AFTER", again["status"].iloc[0], again["response_text"].iloc[0])
lab.close()
srv.stop()
"""


@pytest.mark.parametrize("case", sorted(_ESCAPES))
def test_a_base_exception_from_user_code_ends_the_run_in_the_caller_not_a_hang(tmp_path, case):
    call, expected = _ESCAPES[case]
    db = str(tmp_path / "l.sqlite")
    script = _PRELUDE.format(tests=str(ROOT / "tests"), db=db) + _AFTER.format(call=call, db=db)
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "PYTHONPATH": str(ROOT), "LLMLAB_API_KEY": "sk-test"})
    except subprocess.TimeoutExpired:
        pytest.fail(f"{case}: the call hung (> 60 s)")
    lines = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in done.stdout.splitlines() if " " in line}
    assert lines.get("CAUGHT") == expected, (done.stdout, done.stderr[-2000:])
    assert time.monotonic() - started < 45
    rows = json.loads(lines["ROWS"])
    ok = {request_id for request_id, status, _ in rows if status == "ok"}
    # every answer whose "done" event the callback saw was stored before it saw it
    assert set(json.loads(lines["SEEN"])) <= ok, (rows, lines["SEEN"])
    assert all(status in ("ok", "error") for _, status, _ in rows)
    if "done" in case:
        assert ok, rows  # the finished answer is in the log
    assert lines["AFTER"] == "ok first answer"  # the Lab's loop survived: the next call works


# ------------------------------------------------------------------ indirect re-entry (another thread)

INDIRECT = {
    "compare": lambda lab: lab.compare("inner", models=["m"]).df["status"].iloc[0],
    "sweep": lambda lab: lab.sweep(["x", "y"], models=["m"], progress=False).df["status"].iloc[0],
    "route": lambda lab: lab.route("inner", policy=Always("m")).df["status"].iloc[0],
    "submit_compare.result": lambda lab: lab.submit_compare("inner", models=["m"]).result().df["status"].iloc[0],
    "list_models": lambda lab: "ok" if "m" in str(lab.list_models()) else "missing",
    "compare with its own on_event": lambda lab: lab.compare("inner", models=["m"],
                                                             on_event=lambda e: None).df["status"].iloc[0],
}


@pytest.mark.parametrize("kind", ["start", "delta", "done"])
@pytest.mark.parametrize("call", sorted(INDIRECT))
def test_on_event_waiting_for_another_threads_call_of_the_same_lab_does_not_block_the_loop(tmp_path, call, kind):
    with FakeServer({"m": ModelSpec(text="hi there friend")}) as srv:
        lab = Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite", retries=0)
        pool = concurrent.futures.ThreadPoolExecutor(2)
        inner: list = []

        def callback(event):
            if event.kind == kind and len(inner) < 2:
                inner.append(pool.submit(INDIRECT[call], lab).result(timeout=20))

        box: dict = {}

        def run():
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                box["res"] = lab.compare("Hi", models=["m"], stream=True, on_event=callback)
            box["warnings"] = [str(w.message) for w in caught]

        started = time.monotonic()
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(60)
        assert not thread.is_alive(), f"{call} in another thread from on_event({kind}) deadlocked"
        assert time.monotonic() - started < 20  # no wait ran out: the inner calls ran at once
        assert inner == ["ok"] * len(inner) and inner, inner
        assert not [w for w in box["warnings"] if "on_event" in w]  # the callback did not fail (no TimeoutError)
        assert box["res"].df["status"].tolist() == ["ok"]
        pool.shutdown()
        lab.close()


def test_a_direct_blocking_call_from_on_event_is_still_the_one_line_error(tmp_path):
    # on_event runs on a thread of the run's own: the run waits for it, so waiting for a run
    # there (or closing the Lab) is refused at once, as README promises
    with FakeServer({"m": ModelSpec(text="hi")}) as srv:
        lab = Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite")
        errors: list[BaseException] = []
        box: dict = {}

        def callback(event):
            if event.kind == "done":
                for again in (lambda: lab.compare("x", models=["m"]), lambda: box["future"].result(), lab.close):
                    try:
                        again()
                    except InputError as exc:
                        errors.append(exc)

        box["future"] = lab.submit_compare("Hi", models=["m"], on_event=callback)
        assert box["future"].result(timeout=60).df["status"].tolist() == ["ok"]
        assert len(errors) == 3 and all("own event-loop thread" in str(e) and "\n" not in str(e) for e in errors)
        lab.close()


def test_on_event_sees_every_event_in_order_before_the_call_returns_and_off_the_loop(tmp_path):
    with FakeServer({"a": ModelSpec(text="one two three four"), "b": ModelSpec(text="five six", delay_s=0.05)}) as srv:
        lab = Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite")
        events: list = []

        def callback(event):
            time.sleep(0.002)  # a slow display: the loop does not wait for it
            events.append((event.request_id, event.kind, threading.current_thread().name))

        res = lab.sweep(["p", "q", "r"], models=["a", "b"], stream=True, on_event=callback, progress=False)
        at_return = list(events)
        time.sleep(0.2)
        assert events == at_return  # nothing arrives after the call returned
        assert all(name.endswith("-callbacks") for _, _, name in events)
        by_request: dict = {}
        for request_id, kind, _ in events:
            by_request.setdefault(request_id, []).append(kind)
        assert set(by_request) == set(res.df["request_id"])
        for kinds in by_request.values():
            assert kinds[0] == "start" and kinds[-1] == "done" and set(kinds[1:-1]) == {"delta"}, kinds
        lab.close()


def test_an_ordinary_exception_in_user_code_is_still_warned_or_raised_as_before(tmp_path):
    with FakeServer({"a": ModelSpec(text="no"), "b": ModelSpec(text="yes")}) as srv:
        lab = Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite")
        with pytest.warns(RuntimeWarning, match="on_event callback failed"):
            res = lab.compare("q", models=["a", "b"], on_event=lambda e: 1 / 0)
        assert res.df["status"].tolist() == ["ok", "ok"]

        def feature(row):
            raise ValueError("bad feature")

        with pytest.raises(ValueError, match="bad feature"):
            lab.route("q", policy=Threshold(feature, 1, "a", "b"))
        accepted = lab.route("q", policy=Cascade(["a", "b"], accept=lambda text: text == "no"))
        assert accepted.df["requested_model"].tolist() == ["a"]
        lab.close()
