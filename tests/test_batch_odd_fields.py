"""A Batch API endpoint whose Batch/File objects have fields of odd types or values (the SDK builds
them unvalidated): every field llmlab reads goes through one tolerant reader
(llmlab/engine/_batchview.py), so a wrong field is absent with a warning naming it and the paid
answers are still collected — never a TypeError/ValueError out of sweep(batch=True),
batch_resume or ``llmlab batch resume``. An unknown status is a once-said warning and is waited
for only up to an hour past the batch's 24 h window. Real test servers (tests/fakebatch.py)."""
from __future__ import annotations

import math
import sqlite3
import time
import warnings

import pytest
from fakeserver import BatchBehaviour, FakeServer, ModelSpec

from llmlab import EndpointError, Lab
from llmlab.engine import _batch
from llmlab.engine._batch import BatchWarning
from llmlab.engine._batchview import STATUSES, read_batch

PROMPTS = ["q1", "q2", "q3"]
# Wrong values of every JSON type (and out-of-range numbers) for a field of another type.
ODD = {"str": "yesterday", "empty dict": {}, "list": [1, 2], "bool": True, "huge": 10**15, "negative": -10**12,
       "float huge": 1e300, "float": 3.5, "nested list": [["x"]], "markup": "<script>\x1b[2J\u202e"}
TIMES = ("created_at", "completed_at", "expires_at")
IDS = ("output_file_id", "error_file_id")


def _values(kind: str) -> dict:
    """The wrong values for a field of ``kind`` (a value of its own type is not wrong)."""
    skip = {"time": ("float",), "id": ("str", "markup"), "object": ("empty dict",)}[kind]
    return {name: value for name, value in ODD.items() if name not in skip}


CASES = ([(f, n, v) for f in TIMES for n, v in _values("time").items()]
         + [(f, n, v) for f in IDS for n, v in _values("id").items()]
         + [("request_counts", n, v) for n, v in _values("object").items()]
         + [("request_counts", f"completed {n}", {"total": 3, "completed": v, "failed": 0})
            for n, v in _values("time").items() if n != "bool"]  # the SDK itself makes a count's true 1
         + [("metadata", n, v) for n, v in _values("object").items()])


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch):
    monkeypatch.setattr(_batch.BatchSession, "poll_first_s", 0.02)


def _sweep(tmp_path, behaviour: BatchBehaviour, **kw):
    with FakeServer({"a": ModelSpec(text="paid answer")}, batches=behaviour) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path / "runs.sqlite", retries=0, quiet=True) as lab, \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = lab.sweep(PROMPTS, models=["a"], batch=True, progress=False, **kw)
        status = lab.batch_status(res.run_id)
    said = [str(w.message) for w in caught if issubclass(w.category, BatchWarning)]
    return res.df, said, status, len(srv.batch_requests)


@pytest.mark.parametrize(("field", "name", "value"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_an_odd_batch_field_is_absent_with_a_warning_and_the_answers_are_collected(tmp_path, field, name, value):
    df, said, status, paid = _sweep(tmp_path, BatchBehaviour(final_fields={field: value}))
    assert paid == 3 and len(df) == 3 and df["request_id"].is_unique
    named = field if not name.startswith("completed") else "request_counts.completed"
    if field in IDS and field == "output_file_id":
        # the answers' file cannot be named: rows a resume sends again, never a crash or a guess
        assert set(df["error_type"]) == {"BatchResultsGone"}, df["error_message"].tolist()
        assert df["error_message"].str.contains("output_file_id").all()
    else:
        assert (df["status"] == "ok").all() and (df["response_text"] == "paid answer").all(), df["error_message"][0]
    assert any(named in w and "wrong type or value" in w for w in said), said
    assert all("\x1b" not in w and "\u202e" not in w for w in said)
    if field in ("created_at", "completed_at"):
        assert df["latency_s"].isna().all() and df["error_message"].str.contains(field).all()
    assert status["status"].tolist() == ["stored"]


@pytest.mark.parametrize("name", sorted(_values("time")))
def test_an_odd_created_at_while_running_and_when_listed_for_adoption(tmp_path, name):
    """created_at is read when polling and when a resume looks for a batch created before a crash."""
    behaviour = BatchBehaviour(in_progress_s=0.1, fields={"created_at": ODD[name]})
    with FakeServer({"a": ModelSpec(text="paid answer")}, batches=behaviour) as srv:
        with Lab(base_url=srv.base_url, db=tmp_path / "runs.sqlite", retries=0, quiet=True) as lab, \
                pytest.warns(BatchWarning, match="created_at"):
            run_id = lab.batch_submit(PROMPTS, models=["a"])
        db = sqlite3.connect(tmp_path / "runs.sqlite")
        db.execute("UPDATE batch_parts SET batch_id = NULL, status = 'uploaded'")  # the crash before the id
        db.commit()
        db.close()
        with Lab(base_url=srv.base_url, db=tmp_path / "runs.sqlite", retries=0, quiet=True) as later, \
                pytest.warns(BatchWarning, match="created_at"):
            df = later.batch_resume(run_id, progress=False).df
        assert len(srv.batch_api.batches) == 1 and (df["status"] == "ok").all() and len(df) == 3


ERRORS = {"a string": "boom", "a list": ["boom"], "data a string": {"data": "boom"},
          "data of strings": {"data": ["boom"]}, "data of numbers": {"data": [5]},
          "line a string": {"data": [{"line": "one", "message": "too many"}]},
          "message a number": {"data": [{"line": 1, "message": 5}]}}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_a_failed_batch_with_odd_errors_is_the_generic_failure_reason(tmp_path, name):
    behaviour = BatchBehaviour(max_requests=2, final_fields={"errors": ERRORS[name]})
    df, said, _, _ = _sweep(tmp_path, behaviour)
    assert len(df) == 3 and set(df["error_type"]) == {"BatchFailed"}
    assert df["error_message"].str.startswith("the batch failed validation").all()
    assert said and "errors" in said[0]
    if name == "message a number":
        assert "line 1" in df["error_message"].iloc[0]


def test_an_upload_without_a_usable_file_id_is_one_line_before_any_batch(tmp_path):
    for value in (5, None, ["file-1"], {"id": "x"}):
        with pytest.raises(EndpointError, match=r"upload a batch file.*no usable id.*no batch was created"):
            _sweep(tmp_path, BatchBehaviour(upload_fields={"id": value}))


@pytest.mark.parametrize("value", [5, None, ["batch_1"], ""])
def test_a_created_batch_without_a_usable_id_is_one_line_naming_resume(tmp_path, value):
    with pytest.raises(EndpointError, match=r"create a batch.*no usable id.*batch_resume"):
        _sweep(tmp_path, BatchBehaviour(fields={"id": value}))


UNKNOWN = {"a number": 5, "a word": "paused", "markup": "<script>alert(1)</script>",
           "terminal escapes": "\x1b[2J\x1b]8;;http://evil.example/\x07x\x1b]8;;\x07\u202eabc", "null": None,
           "a list": ["completed"], "upper case": "COMPLETED", "padded": " completed"}


@pytest.mark.parametrize("name", sorted(UNKNOWN))
def test_an_unknown_status_is_said_once_and_waited_for_only_until_its_window_ends(tmp_path, monkeypatch, capsys, name):
    monkeypatch.setattr(_batch.BatchSession, "window_s", 0.3)
    monkeypatch.setattr(_batch.BatchSession, "grace_s", 0.0)
    behaviour = BatchBehaviour(fields={"status": UNKNOWN[name], "created_at": int(time.time()), "expires_at": None})
    t0 = time.monotonic()
    with pytest.raises(EndpointError, match=r"still unknown .* after its completion window ended.*batch_resume"):
        _sweep(tmp_path, behaviour)
    assert time.monotonic() - t0 < 10
    err = capsys.readouterr().err
    assert err.count("is not one of the Batch API's") == 1, err  # said at once, once, however many polls
    assert "\x1b" not in err and "\u202e" not in err and "\x07" not in err
    stored = sqlite3.connect(tmp_path / "runs.sqlite").execute("SELECT status FROM batch_parts").fetchall()
    assert stored == [("unknown",)]  # never the endpoint's text in the log


@pytest.mark.parametrize("status", ["in_progress", "validating", "finalizing", "cancelling"])
def test_a_known_status_past_its_window_and_grace_stops_the_wait(tmp_path, monkeypatch, status):
    monkeypatch.setattr(_batch.BatchSession, "grace_s", 0.3)
    past = int(time.time()) - 5
    behaviour = BatchBehaviour(fields={"status": status, "expires_at": past, "created_at": past - 86_400})
    with pytest.raises(EndpointError, match=f"still {status} .*lab.batch_cancel"):
        _sweep(tmp_path, behaviour)


def test_a_batch_within_its_window_is_waited_for(tmp_path, monkeypatch):
    monkeypatch.setattr(_batch.BatchSession, "grace_s", 0.0)
    df, said, _, _ = _sweep(tmp_path, BatchBehaviour(in_progress_s=0.5))
    assert (df["status"] == "ok").all() and not said


def test_the_reader_reads_every_status_and_numbers_as_documented():
    for status in STATUSES:
        assert read_batch({"id": "b", "status": status}).status == status
    good = read_batch({"id": "b", "status": "completed", "created_at": 1_700_000_000, "completed_at": 1_700_000_060,
                       "request_counts": {"completed": 2, "failed": 1}, "metadata": {"llmlab_part": "p"},
                       "errors": {"data": [{"line": 3, "message": "m"}]}})
    assert (good.odd, good.created_at, good.ended_at, good.completed, good.failed, good.part) == \
        ((), 1_700_000_000, 1_700_000_060, 2, 1, "p")
    assert (good.error_line, good.error_message) == (3, "m")
    nan = read_batch({"id": "b", "status": "completed", "created_at": math.nan, "completed_at": math.inf})
    assert nan.created_at is None and nan.ended_at is None and set(nan.odd) == {"created_at", "completed_at"}
    assert read_batch(object()).status == "unknown"  # not even an object with fields: nothing raises
