"""The run log on both backends: a SQLite file and a real PostgreSQL server (``db_url`` runs each
test once per backend), plus what only one backend has (a damaged SQLite file, a PostgreSQL URL)."""
from __future__ import annotations

import concurrent.futures
import json
import math
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import pandas as pd
import pytest
from fakeserver import FakeServer, ModelSpec, Remote, collect, start_subprocess, stop_subprocess, wait_for

from llmlab import ConfigError, InputError, Lab, StoreError
from llmlab.base._record import Record, answer_hash
from llmlab.engine._results import summarise
from llmlab.store._open import open_store
from llmlab.store._schema import MIGRATIONS

pytestmark = pytest.mark.filterwarnings("ignore::llmlab.PriceWarning")

TEXT = "alpha beta gamma"


def _record(**kw) -> Record:
    base = dict(run_id="r", request_id="q", prompt_id="p", requested_model="m", prompt="hi",
                messages="[]", params="{}", stream=True, endpoint="http://x", api_key_env=None)
    return Record(**{**base, **kw})


def _sql(db_url: str, statement: str, params=()) -> list[tuple]:
    """Run one statement on the log with the backend's own driver (as another tool would)."""
    if db_url.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(db_url, autocommit=True) as conn:
            cur = conn.execute(statement.replace("?", "%s"), params)
            return cur.fetchall() if cur.description else []
    with sqlite3.connect(db_url) as conn:
        return conn.execute(statement, params).fetchall()


@pytest.fixture
def server():
    srv = FakeServer({"fast": ModelSpec(text=TEXT), "slow": ModelSpec(text=TEXT, delay_s=0.05),
                      "flaky": ModelSpec(text=TEXT, fail_first=1, fail_status=503),
                      "down": ModelSpec(status=500)}).start()
    yield srv
    srv.stop()


def chat_requests(srv: FakeServer):
    return [r for r in srv.requests if r.path == "/v1/chat/completions"]


def test_migrations_are_named_recorded_and_idempotent(db_url):
    open_store(db_url).close()
    open_store(db_url).close()
    names = [r[0] for r in _sql(db_url, "SELECT name FROM _migrations ORDER BY name")]
    assert names == [m.__name__ for m in MIGRATIONS] == ["m001_initial", "m002_cache", "m003_original_cost",
                                                         "m004_route", "m005_job_order", "m006_labels",
                                                         "m007_call_details",
                                                         "m008_answer_confidence", "m009_refusal",
                                                         "m010_label_answers"]


def test_round_trip_keeps_nan_bools_and_the_cache_rules(db_url):
    store = open_store(db_url)
    try:
        rec = _record(status="ok", cached=True, ttft_s=math.nan, latency_s=0.5)
        store.insert([rec], ["key1"])
        assert store.cached(["key1"]) == {}  # a cached replay is never itself a cache entry
        with Lab(db=db_url) as lab:
            frame = lab.runs()
        assert frame.loc[0, "id"] == rec.id and frame.loc[0, "cached"] == True  # noqa: E712 - numpy bool
        assert math.isnan(frame.loc[0, "ttft_s"]) and frame.loc[0, "latency_s"] == 0.5
        fresh, failed = _record(status="ok", response_text="fresh"), _record(status="error")
        store.insert([fresh], ["key2"])
        store.insert([failed], ["key3"])
        hits = store.cached(["key2", "key3"])
        assert set(hits) == {"key2"} and hits["key2"]["response_text"] == "fresh"
        newer = _record(status="ok", response_text="newer")
        store.insert([newer], ["key2"])  # the unique key points at the newest answer
        assert store.cached(["key2"])["key2"]["response_text"] == "newer"
    finally:
        store.close()


def test_a_log_from_a_newer_llmlab_is_refused_before_anything_is_sent(db_url, server):
    Lab(db=db_url).close()
    _sql(db_url, "INSERT INTO _migrations VALUES ('m042_from_the_future', 'x')")
    with pytest.raises(StoreError, match=r"newer llmlab .*m042_from_the_future.*upgrade llmlab.*Lab\(db="):
        Lab(base_url=server.base_url, db=db_url)
    assert chat_requests(server) == []


def test_a_new_required_column_is_refused_but_a_new_optional_one_is_fine(db_url, server):
    Lab(db=db_url).close()
    _sql(db_url, "ALTER TABLE runs ADD COLUMN note TEXT")  # nullable: an older llmlab can still write
    with Lab(base_url=server.base_url, db=db_url) as lab:
        assert lab.compare("hi", models=["fast"]).ok
    _sql(db_url, "ALTER TABLE runs ADD COLUMN judge TEXT NOT NULL DEFAULT 'x'")  # has a default: fine too
    Lab(db=db_url).close()
    _sql(db_url, "ALTER TABLE cache ADD COLUMN owner TEXT")
    _sql(db_url, "UPDATE cache SET owner = 'x'")
    if db_url.startswith("postgresql://"):
        _sql(db_url, "ALTER TABLE cache ALTER COLUMN owner SET NOT NULL")
    else:  # SQLite cannot add a NOT NULL column without a default to a table: make one from scratch
        _sql(db_url, "CREATE TABLE cache2 (key TEXT PRIMARY KEY, row_id INTEGER NOT NULL, created_at TEXT NOT NULL,"
                     " owner TEXT NOT NULL)")
        _sql(db_url, "DROP TABLE cache")
        _sql(db_url, "ALTER TABLE cache2 RENAME TO cache")
    server.reset()
    with pytest.raises(StoreError, match=r"newer llmlab \(unknown column 'owner'"):
        Lab(base_url=server.base_url, db=db_url)
    assert chat_requests(server) == []


def test_runs_filters_columns_and_limit_are_pushed_into_sql(db_url, server):
    with Lab(base_url=server.base_url, db=db_url, retries=0) as lab:
        first = lab.sweep(["a", "b", "c"], models=["fast", "down"], progress=False)
        cut = pd.Timestamp.now(tz="UTC")
        second = lab.compare("d", models=["fast"])
        everything = lab.runs()
        assert len(everything) == 7 and everything["id"].is_monotonic_increasing
        assert set(lab.runs(run_id=first.run_id)["prompt"]) == {"a", "b", "c"}
        assert len(lab.runs(run_id=[first.run_id, second.run_id])) == 7
        assert set(lab.runs(model="down")["status"]) == {"error"}
        ok = lab.runs(status="ok", model=["fast"])
        assert len(ok) == 4 and set(ok["requested_model"]) == {"fast"}
        assert lab.runs(since=cut)["prompt"].tolist() == ["d"]
        assert lab.runs(since=cut.tz_convert(None).isoformat())["prompt"].tolist() == ["d"]  # naive = UTC
        assert lab.runs(limit=2)["id"].tolist() == everything["id"].tolist()[-2:]
        narrow = lab.runs(columns=["requested_model", "latency_s", "cost_usd"], status="ok")
        assert list(narrow.columns) == ["requested_model", "latency_s", "cost_usd"] and len(narrow) == 4
        assert narrow["latency_s"].dtype == float
        empty = lab.runs(run_id="nope")
        assert len(empty) == 0 and list(empty.columns) == list(everything.columns)
        assert everything.dtypes.equals(lab.runs(run_id=first.run_id).dtypes)
        assert len(lab.runs(limit=10**30)) == 7  # more than there is: all
        with pytest.raises(InputError) as refused:   # the rule, not a bound nobody could reach
            lab.runs(limit=1.5)
        assert str(refused.value) == "limit must be a whole number ≥ 0 (or None for every row), not 1.5"
        for bad, message in [({"limit": "5; DROP TABLE runs"}, "limit must be"), ({"status": "fine"}, "status"),
                             ({"columns": ["response_text", "secret"]}, "unknown column 'secret'"),
                             ({"since": "last tuesday"}, "since="), ({"model": 3}, "model must")]:
            with pytest.raises(InputError, match=message):
                lab.runs(**bad)
        assert len(lab.runs()) == 7


def test_summary_from_the_store_equals_the_dataframe_summary(db_url, server, monkeypatch):
    import llmlab.engine._results as results

    prices = {"fast": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}}
    with Lab(base_url=server.base_url, db=db_url, retries=1, prices=prices) as lab:
        monkeypatch.setattr(results, "EAGER_ROWS", 5)  # this run is "large": it stays in the log
        res = lab.sweep([f"q{i}" for i in range(4)], models=["fast", "flaky", "down", "slow"], progress=False,
                        retry_policy=None, cache=False)
        assert not res.loaded
        stored = res.summary()
        assert not res.loaded  # computed by the store, without reading the rows
        n_rows = len(res)
        assert n_rows > 16 and not res.ok and "errors=4" in repr(res)
        expected = summarise(res.df, res.models)
        assert len(res.df) == n_rows
        assert res.loaded
        pd.testing.assert_frame_equal(stored, expected, check_dtype=False)
        assert stored.loc[0, "cost_usd"] > 0 and math.isnan(stored.loc[3, "cost_usd"])  # 'slow' has no price
        assert res.df["prompt"].tolist()[:4] == ["q0", "q0", "q0", "q0"]  # prompt × model order, from seq


def test_export_writes_parquet_with_the_documented_schema(db_url, server, tmp_path):
    import pyarrow.parquet as pq

    from llmlab import export_schema

    with Lab(base_url=server.base_url, db=db_url, retries=0) as lab:
        lab.sweep(["a", "b"], models=["fast", "down"], progress=False)
        path = tmp_path / "log.parquet"
        assert lab.export(path) == 4
        table = pq.read_table(path)
        assert table.schema.equals(export_schema(), check_metadata=False)
        back = table.to_pandas()
        assert back["response_text"].tolist() == lab.runs()["response_text"].tolist()
        assert back["started_at"].dt.tz is not None and (path.stat().st_mode & 0o777) == 0o600
        assert lab.export(path, model="down", columns=["prompt", "status"]) == 2
        assert pq.read_table(path).column_names == ["prompt", "status"]
        with pytest.raises(InputError, match=".parquet"):
            lab.export(tmp_path / "log.csv")


def test_resume_reads_done_pairs_from_the_log(db_url, server):
    with Lab(base_url=server.base_url, db=db_url, retries=0) as lab:
        res = lab.sweep(["a", "b"], models=["fast", "down"], progress=False)
        server.reset()
        lab.sweep(["a", "b"], models=["fast", "down"], progress=False, resume=res.run_id)
        assert sorted(r.body["model"] for r in chat_requests(server)) == ["down", "down"]
        with pytest.raises(InputError, match="no run with that id"):
            lab.sweep(["a"], models=["fast"], progress=False, resume="no-such-run")


def test_the_shared_cache_answers_another_kernel(db_url, server):
    with Lab(base_url=server.base_url, db=db_url) as one, Lab(base_url=server.base_url, db=db_url) as two:
        one.compare("cache me", models=["fast"])
        server.reset()
        replay = two.compare("cache me", models=["fast"])
        assert chat_requests(server) == [] and replay.df["cached"].all()


def test_closed_lab_reads_are_a_clear_error(db_url):
    from llmlab import LLMLabError

    lab = Lab(db=db_url)
    store = lab.store
    lab.close()
    with pytest.raises(LLMLabError, match="closed"):
        lab.runs()
    with pytest.raises(StoreError, match="closed"):
        store.frame()


def test_labels_are_stored_at_once_undone_in_place_and_read_as_preferences(db_url):
    pair = dict(grading="g1", prompt_id="p1", model_a="x", model_b="y")
    with Lab(db=db_url) as lab:
        first = lab.add_label(who="ann", shown_first="y", vote="A", **pair)   # y shown as A won
        lab.add_label(who="ann", shown_first="x", vote="skip", **{**pair, "prompt_id": "p2"})
        lab.add_label(who="bob", shown_first="x", vote="both_bad", **pair)
        wrong = lab.add_label(who="ann", shown_first="x", vote="B", **{**pair, "prompt_id": "p3"})
        lab.undo_label(wrong)
        with pytest.raises(InputError, match="vote must be one of"):
            lab.add_label(who="ann", shown_first="x", vote="left", **pair)
        with pytest.raises(InputError, match="shown_first must be model_a or model_b"):
            lab.add_label(who="ann", shown_first="z", vote="A", **pair)
    with Lab(db=db_url) as again:                          # another kernel, after a restart: all there
        prefs = again.labels()
        mine = again.labels(who="ann")
        stored = again.store.labels(grading="g1", undone=True)[1]
    assert first >= 1 and len(stored) == 4
    assert prefs[["prompt_id", "who", "winner", "both_bad", "verdict_1"]].values.tolist() == [
        ["p1", "ann", "b", False, "A"], ["p1", "bob", "tie", True, "tie"]]
    assert list(prefs["source"]) == ["human:ann", "human:bob"] and prefs["consistent"].isna().all()
    assert mine["shown_first"].tolist() == ["y"] and mine["label_id"].tolist() == [first]
    assert pd.Timestamp(mine["labelled_at"].iloc[0]).tzinfo is not None


def test_labels_name_their_answers_and_a_resweep_with_new_answers_sets_old_ones_aside(db_url, server):
    from llmlab import routing, scoring

    def sweep(lab):
        return lab.sweep(["q1", "q2"], models=["fast", "slow"], progress=False, cache=False).df

    def label_all(lab, runs):
        ids = runs.set_index(["prompt_id", "requested_model"])["id"]
        for pid in runs["prompt_id"].unique():          # the slow model's answer wins every pair
            lab.add_label(grading="g", who="ann", prompt_id=pid, model_a="fast", model_b="slow", shown_first="fast",
                          vote="B", row_a=int(ids[(pid, "fast")]), row_b=int(ids[(pid, "slow")]))

    with Lab(base_url=server.base_url, db=db_url) as lab:
        old = sweep(lab)
        label_all(lab, old)
        with pytest.raises(InputError, match="is not 'slow'.s answer to prompt"):
            lab.add_label(grading="g", who="ann", prompt_id=old["prompt_id"].iloc[0], model_a="fast",
                          model_b="slow", shown_first="fast", vote="A", row_a=int(old["id"].iloc[0]),
                          row_b=int(old["id"].iloc[0]))
        lab.add_label(grading="g", who="bob", prompt_id=old["prompt_id"].iloc[0], model_a="fast", model_b="slow",
                      shown_first="fast", vote="A")                                 # names no answers: unchecked
        same = sweep(lab)                                                           # a re-sweep, same answers
        server.set_model("slow", ModelSpec(text="a new answer"))
        new = sweep(lab)                                                            # a re-sweep, new answers
        labels = lab.labels()
    ann, bob = labels[labels["who"] == "ann"], labels[labels["who"] == "bob"]
    assert ann["answer_a_hash"].tolist() == [answer_hash(TEXT)] * 2 and bob["answer_a_hash"].isna().all()
    assert (scoring.check_preferences(ann, runs=same) is ann)
    with pytest.raises(InputError, match=r"2 label\(s\) were made on other answers than these runs'"):
        scoring.check_preferences(ann, runs=new)
    with pytest.warns(RuntimeWarning, match="1 of 3 labels name no answers"):
        used = routing.preference_quality(same, labels, reference="fast", duplicates="last")
    assert used.attrs["preference_answers_changed"] == 0 and used.attrs["preference_answers_unchecked"] == 1
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        moved = routing.preference_quality(new, labels, reference="fast")
    assert moved.attrs["preference_answers_changed"] == 2 and moved.attrs["preference_answers_unchecked"] == 1
    said = " ".join(str(w.message) for w in seen)
    assert "2 of 3 labels were made on other answers" in said and "1 of 3 labels name no answers" in said
    slow = moved[moved["requested_model"] == "slow"].set_index("prompt_id")["preference"]
    assert slow.loc[bob["prompt_id"].iloc[0]] == 0.0 and slow.isna().sum() == 1       # only bob's label is used
    with pytest.raises(InputError, match="all 2 labels were made on other answers"):
        routing.preference_quality(new, ann, reference="fast")


# -- SQLite only ---------------------------------------------------------------------------------
def _damage(path) -> None:
    """Overwrite the middle pages of a log with garbage, as a failing disk or a bad copy would."""
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.seek(4096)
        f.write(b"\xde\xad\xbe\xef" * ((size - 8192) // 4))


def _filled_log(tmp_path, server) -> str:
    db = str(tmp_path / "runs.sqlite")
    with Lab(base_url=server.base_url, db=db) as lab:
        lab.sweep([f"prompt {i} " + "x" * 400 for i in range(120)], models=["fast"], progress=False)
    sqlite3.connect(db).execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    return db


def test_a_damaged_log_is_refused_at_open_with_what_to_do(tmp_path, server):
    from pathlib import Path

    db = _filled_log(tmp_path, server)
    _damage(Path(db))
    server.reset()
    with pytest.raises(StoreError, match=r"damaged .*nothing more is sent.*Lab\(db=.*\.recover") as info:
        lab = Lab(base_url=server.base_url, db=db)
        lab.runs()  # if the open could not see it, the first read must
    assert "\n" not in str(info.value) and chat_requests(server) == []


def test_a_store_failure_mid_sweep_keeps_the_answers_and_sends_nothing_more(tmp_path, server, monkeypatch):
    """The server holds every answer and the test lets them go one at a time, so each write holds
    one row and which calls are in flight when the log fails is a fact: the 4th write fails with 3
    calls held; those 3 answers are kept unlogged and nothing more is sent (7 of 40)."""
    server.set_model("gated", ModelSpec(text=TEXT, hold_after=0))
    db = str(tmp_path / "runs.sqlite")
    with Lab(base_url=server.base_url, db=db) as lab:
        store = lab.store
        real_insert = store.insert
        calls, written, failed = {"n": 0}, threading.Semaphore(0), threading.Event()

        def failing(records, keys=None):
            calls["n"] += 1
            if calls["n"] > 3:
                failed.set()
                raise StoreError(f"cannot write to run log {db}: database or disk is full")
            real_insert(records, keys)
            written.release()

        monkeypatch.setattr(store, "insert", failing)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            sweep = pool.submit(lab.sweep, [f"p{i}" for i in range(40)], models=["gated"], concurrency=4,
                                progress=False)
            try:
                for _ in range(3):
                    server.wait_held("gated", 4, timeout=60)  # the 4 slots are in flight
                    server.release("gated", 1)  # one answer: one row, one write
                    assert written.acquire(timeout=60)
                server.wait_held("gated", 4, timeout=60)
                server.release("gated", 1)
                assert failed.wait(60)  # the 4th write failed with 3 calls held
                assert server.held("gated") == 3
            finally:
                server.release("gated")  # the held calls answer (and nothing hangs if a wait failed)
            with pytest.raises(StoreError, match=r"disk is full; \d+ finished attempt\(s\) were not logged") as info:
                sweep.result(timeout=60)
        result = info.value.result
        assert len(chat_requests(server)) == 7  # 3 logged, the failed one, the 3 in flight: not 40
        assert len(store.frame(run_id=result.run_id)) == 3
        assert len(result.unlogged) == 4 and (result.unlogged["response_text"] == TEXT).all()
        assert len(result.df) == 7  # logged + unlogged: every answer kept
        assert "unlogged=" in repr(result)


def test_password_in_a_postgres_url_is_refused_and_never_shown():
    with pytest.raises(ConfigError, match="PGPASSWORD") as info:
        Lab(db="postgresql://alice:hunter2-secret@127.0.0.1:1/x")
    assert "hunter2" not in str(info.value)
    with pytest.raises(ConfigError, match="PGPASSWORD") as info:
        Lab(db="postgresql://alice@127.0.0.1:1/x?password=hunter2-secret")
    assert "hunter2" not in str(info.value)


def test_bulk_reads_survive_hand_edited_values_of_the_wrong_type(tmp_path, monkeypatch):
    """SQLite lets any column hold any type: a row edited by hand (or by another tool) reads with
    its odd values as unknown, and the other rows of its chunk keep theirs."""
    import sqlite3

    import llmlab.store._base as store_module

    monkeypatch.setattr(store_module, "_FETCH_ROWS", 4)
    db = str(tmp_path / "runs.sqlite")
    store = open_store(db)
    store.insert([_record(latency_s=0.5, started_at="2026-01-01T00:00:00+00:00") for _ in range(6)])
    store.flush()
    with sqlite3.connect(db) as con:
        con.execute("UPDATE runs SET latency_s = 'fast', attempt = 'second', prompt_id = 123, cached = 'yes', "
                    "started_at = 'yesterday' WHERE id = 2")
        con.execute("UPDATE runs SET repeat = 2.0, cost_usd = '0.25' WHERE id = 5")
    frame = store.frame()
    assert frame["latency_s"].isna().tolist() == [False, True, False, False, False, False]
    assert frame["attempt"].iloc[1] is pd.NA and frame["attempt"].iloc[0] == 1
    assert frame["prompt_id"].iloc[1] == "123" and pd.isna(frame["started_at"].iloc[1])
    assert frame["repeat"].iloc[4] == 2 and frame["cost_usd"].iloc[4] == 0.25
    assert str(frame["attempt"].dtype) == "Int64" and frame["latency_s"].dtype == float
    store.close()


def test_bulk_reads_keep_types_when_a_column_starts_empty(tmp_path, monkeypatch):
    """Bulk reads convert a chunk at a time: a log whose first rows have no TTFT or task (plain
    calls) and later rows do must still read every value with the column's own type."""
    import llmlab.store._base as store_module

    monkeypatch.setattr(store_module, "_FETCH_ROWS", 3)
    db = str(tmp_path / "runs.sqlite")
    store = open_store(db)
    plain = [_record(stream=False, started_at="2026-01-01T00:00:00+00:00") for _ in range(7)]
    streamed = [_record(ttft_s=0.25, task="classify", cache_of=3, started_at="2026-01-02T00:00:00.5+00:00")
                for _ in range(5)]
    store.insert(plain + streamed)
    frame = store.frame()
    assert frame["ttft_s"].isna().sum() == 7 and (frame["ttft_s"].iloc[7:] == 0.25).all()
    assert frame["task"].isna().sum() == 7 and (frame["task"].iloc[7:] == "classify").all()
    assert frame["cache_of"].tolist()[6:8] == [pd.NA, 3] and str(frame["cache_of"].dtype) == "Int64"
    assert frame["started_at"].iloc[-1] == pd.Timestamp("2026-01-02T00:00:00.5Z")
    assert frame["stream"].tolist() == [False] * 7 + [True] * 5
    assert store.frame(limit=2)["ttft_s"].tolist() == [0.25, 0.25]
    store.close()


# -- several writers -----------------------------------------------------------------------------
WRITER = textwrap.dedent("""
    import pathlib, sys, time, warnings
    warnings.simplefilter("ignore")
    from llmlab import Lab
    base_url, db, name, n, concurrency, together = sys.argv[1:7]
    pathlib.Path(f"{name}.ready").touch()  # the writers start together: each waits for the others
    deadline = time.monotonic() + 120
    while len(list(pathlib.Path().glob("*.ready"))) < int(together) and time.monotonic() < deadline:
        time.sleep(0.005)
    lab = Lab(base_url=base_url, db=db, retries=0)
    print("READY", flush=True)
    res = lab.sweep([f"{name} prompt {i}" for i in range(int(n))], models=["a", "b"], concurrency=int(concurrency),
                    progress=False, cache=False, stream=False)
    print("RUN", res.run_id, len(res), int((res.df["status"] != "ok").sum()), flush=True)
    lab.close()
""")


def _writer(tmp_path, base_url, db, name, n, concurrency, together=1) -> subprocess.Popen:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    return subprocess.Popen([sys.executable, str(script), base_url, db, name, str(n), str(concurrency), str(together)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)


@pytest.mark.postgres
def test_two_processes_append_500_rows_each_to_postgres(pg_url, tmp_path):
    # "a" is held until both writers have all 16 slots waiting on it (their "b" rows are in by
    # then): both runs write before and after the release, whatever the machine's speed.
    proc_srv, base_url = start_subprocess({"a": {"text": TEXT, "hold_after": 0}, "b": {"text": TEXT}})
    writers = [_writer(tmp_path, base_url, pg_url, name, 250, 16, together=2) for name in ("w1", "w2")]
    try:
        Remote(base_url).wait_held("a", 32, timeout=180)
        assert len(_sql(pg_url, "SELECT DISTINCT run_id FROM runs")) == 2  # both have written rows already
        Remote(base_url).release("a")
    except BaseException:
        stop_subprocess(proc_srv)  # the held calls end at once: the writers do not wait them out
        raise
    finally:
        results = collect(writers, proc_srv, timeout=180)
    for w, (out, err) in zip(writers, results, strict=True):
        assert w.returncode == 0 and " 500 0" in out, (out, err)
    rows = _sql(pg_url, "SELECT id, run_id, prompt, requested_model, status, response_text FROM runs ORDER BY id")
    assert len(rows) == 1000 and len({r[0] for r in rows}) == 1000
    assert all(r[4] == "ok" and r[5] == TEXT for r in rows)
    by_run: dict[str, list] = {}
    for r in rows:
        by_run.setdefault(r[1], []).append(r)
    assert sorted(len(v) for v in by_run.values()) == [500, 500]
    first, second = ([r[0] for r in v] for v in by_run.values())
    assert min(second) < max(first) and min(first) < max(second)  # they really wrote at the same time


def test_a_killed_writer_loses_only_its_in_flight_row(db_url, tmp_path):
    with FakeServer({"a": ModelSpec(text=TEXT, delay_s=0.05), "b": ModelSpec(text=TEXT, delay_s=0.05)}) as srv:
        writer = _writer(tmp_path, srv.base_url, db_url, "k", 500, 1)
        try:
            assert writer.stdout.readline().strip() == "READY"
            deadline = time.monotonic() + 60
            while len(chat_requests(srv)) < 12 and time.monotonic() < deadline:
                time.sleep(0.01)
            writer.kill()  # SIGKILL: no clean-up of any kind
            writer.communicate(timeout=10)
        finally:
            if writer.poll() is None:
                writer.kill()
        sent = len(chat_requests(srv))
    rows = _sql(db_url, "SELECT status, response_text FROM runs")
    assert sent >= 12 and sent - 1 <= len(rows) <= sent  # at most the one in flight is missing
    assert all(status == "ok" and text == TEXT for status, text in rows)  # nothing half-written
    with Lab(db=db_url) as lab:  # and the log opens and reads cleanly afterwards
        assert len(lab.runs()) == len(rows)


@pytest.mark.postgres
def test_an_unreachable_postgres_is_a_store_error_before_anything_is_sent(server, monkeypatch):
    import socket

    import llmlab.store._base as store_base

    monkeypatch.setattr(store_base, "LOG_WAIT_S", 2.0)  # a refused open is retried this long (120 s in use)

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    started = time.monotonic()
    with pytest.raises(StoreError, match=r"cannot open run log postgresql://.*start the server") as info:
        lab = Lab(base_url=server.base_url, db=f"postgresql://llmlab@127.0.0.1:{port}/team")
        lab.compare("hi", models=["fast"])
    assert "\n" not in str(info.value) and time.monotonic() - started < 15
    assert chat_requests(server) == []


def test_llmlab_export_on_the_command_line(db_url, server, tmp_path, capsys):
    import pyarrow.parquet as pq

    from llmlab.cli import main

    with Lab(base_url=server.base_url, db=db_url, retries=0) as lab:
        lab.sweep(["a", "b", "c"], models=["fast", "down"], progress=False)
    out = tmp_path / "ok.parquet"
    assert main(["export", str(out), "--db", db_url, "--status", "ok", "--columns", "prompt,response_text"]) == 0
    assert "wrote 3 rows" in capsys.readouterr().out
    table = pq.read_table(out)
    assert table.column_names == ["prompt", "response_text"] and sorted(table["prompt"].to_pylist()) == ["a", "b", "c"]
    assert main(["export", str(out), "--db", db_url, "--columns", "prompt,api_key"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("llmlab: error: unknown column 'api_key'") and err.count("\n") == 1


def test_rows_waiting_together_are_committed_in_one_transaction(tmp_path):
    """The writer commits the rows that queued up while it was busy in one transaction; a group
    holding a row the log refuses falls back to writing each on its own (its own handling)."""
    from llmlab.store._base import DeferredRows

    store = open_store(str(tmp_path / "runs.sqlite"))
    inserts: list[int] = []
    real_insert = store.insert

    def counting_insert(records, keys=None):
        inserts.append(len(records))
        return real_insert(records, keys)

    store.insert = counting_insert  # type: ignore[method-assign]
    done, written = [], []

    def rows(record: Record) -> DeferredRows:
        def write() -> None:
            written.append(record.request_id)
            try:
                real_insert([record])
            except StoreError:
                record.error_message = "refused"
        return DeferredRows([record], None, write, lambda: done.append(record.request_id))

    def writer_busy() -> bool:
        return store._writer is not None and store._writer._busy

    with store._lock:  # the writer takes the first row, then waits here while four more queue up
        store.defer(rows(_record(request_id="r0")))
        wait_for(writer_busy, timeout=10, what="the writer busy")
        for i in range(1, 5):
            store.defer(rows(_record(request_id=f"r{i}")))
    store.flush()
    assert inserts == [4] and done == ["r1", "r2", "r3", "r4"] and written == ["r0"]  # r0: alone
    bad = _record(request_id="bad", response_text="x\ud800")  # SQLite cannot encode a lone surrogate
    with store._lock:
        store.defer(rows(_record(request_id="r5")))
        wait_for(writer_busy, timeout=10, what="the writer busy")
        for record in (_record(request_id="r6"), bad, _record(request_id="r7")):
            store.defer(rows(record))
    store.flush()
    assert inserts == [4, 3] and written == ["r0", "r5", "r6", "bad", "r7"] and bad.error_message == "refused"
    assert sorted(store.frame()["request_id"]) == ["r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"]
    store.close()


AWKWARD_TEXTS = ["", "NULL", "a,b", 'say "hi"', "two\nlines", 'x"\ny,\r\nz"', "\\.", " padded ", "ünï😀", "\\N"]


@pytest.mark.parametrize("block", [None, 40])
def test_bulk_reads_return_every_value_exactly(db_url, monkeypatch, block):
    """Whatever the backend's bulk path (PostgreSQL: the server's CSV parsed by Arrow, in blocks
    that may end inside a quoted value), text, NULLs and floats come back exactly."""
    import llmlab.store._columnar as columnar

    if block is not None:
        monkeypatch.setattr(columnar, "_CSV_BLOCK", block)
    floats = [0.1 + 0.2, 1e-300, 123456789.12345679, 2.0**-1074, 1.7976931348623157e308, 5e-324, None, 0.0,
              -0.25, 1 / 3]
    records = [_record(request_id=f"q{i}", response_text=text, task=None if i % 3 else text,
                       error_message=text if i % 2 else None, latency_s=floats[i] if floats[i] is not None
                       else float("nan"), cached=bool(i % 2), attempt=i + 1,
                       started_at=f"2026-01-0{1 + i % 9}T00:00:00.{i:06d}+00:00")
               for i, text in enumerate(AWKWARD_TEXTS)]
    store = open_store(db_url)
    store.insert(records)
    frame = store.frame()
    assert frame["response_text"].tolist() == AWKWARD_TEXTS
    def values(column: str) -> list:
        return [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in frame[column]]

    assert values("task") == [None if i % 3 else t for i, t in enumerate(AWKWARD_TEXTS)]
    assert values("error_message") == [t if i % 2 else None for i, t in enumerate(AWKWARD_TEXTS)]
    got = frame["latency_s"].tolist()
    assert [g if f is not None else None for g, f in zip(got, floats, strict=True)] == floats and math.isnan(got[6])
    assert frame["cached"].tolist() == [bool(i % 2) for i in range(10)]
    assert frame["attempt"].tolist() == list(range(1, 11))
    assert frame["started_at"].iloc[9] == pd.Timestamp("2026-01-01T00:00:00.000009Z")
    narrow = store.frame(columns=["id", "response_text"], model="m", run_id="r")
    assert narrow["response_text"].tolist() == AWKWARD_TEXTS
    one = store.frame(columns=["task"])  # a NULL in a one-column read is an empty CSV line
    assert [None if pd.isna(v) else v for v in one["task"]] == values("task")
    store.close()


def test_bulk_reads_take_rows_larger_than_the_readers_blocks(db_url):
    store = open_store(db_url)
    long_prompt = "a long context, line after line\n" * 100_000  # 3.2 MB of text in one row
    messages = json.dumps([{"role": "user", "content": long_prompt}])
    store.insert([_record(request_id="small"), _record(request_id="big", prompt=long_prompt, messages=messages)])
    frame = store.frame()
    assert frame["request_id"].tolist() == ["small", "big"] and frame["prompt"].iloc[1] == long_prompt
    store.close()


PG_CSV = b'1,"a,b",\n2,"line1\nline2 ""q""",""\n3,"",x\n4,"\r\n",\n'


def test_copy_csv_is_cut_only_between_records_wherever_the_chunks_end(monkeypatch):
    """PostgreSQL's COPY CSV cut at every byte, parsed in tiny blocks: a block never ends inside a
    quoted value (newlines in it included), NULL (empty) and '' (quoted) stay apart."""
    import llmlab.store._columnar as columnar

    monkeypatch.setattr(columnar, "_CSV_BLOCK", 5)
    for size in range(1, len(PG_CSV) + 1):
        chunks = [PG_CSV[i:i + size] for i in range(0, len(PG_CSV), size)]
        names = ["id", "prompt", "task"]
        frame = columnar.batches_to_frame(names, columnar.csv_batches(names, chunks))
        assert frame["id"].tolist() == [1, 2, 3, 4], size
        assert frame["prompt"].tolist() == ["a,b", 'line1\nline2 "q"', "", "\r\n"], size
        assert [None if pd.isna(v) else v for v in frame["task"]] == [None, "", "x", None], size
