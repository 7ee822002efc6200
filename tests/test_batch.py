"""Batch API sweeps against the test server's /v1/files + /v1/batches, through the real SDK: parts,
the state machine, partial failures, expiry, cancelling, odd output files, and resuming from the
log without ever sending (or storing) a request twice."""
from __future__ import annotations

import json
import sqlite3

import pandas as pd
import pytest
from fakeserver import BatchBehaviour, FakeServer, ModelSpec, wait_for

from llmlab import EndpointError, InputError, Lab
from llmlab.engine import _batch
from llmlab.engine._batch import BatchWarning

PROMPTS = [f"question {i}" for i in range(7)]
PRICES = {"a": {"input_cost_per_token": 2e-6, "output_cost_per_token": 4e-6,
                "input_cost_per_token_batches": 1e-6, "output_cost_per_token_batches": 2e-6},
          "b": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6}}


def models() -> dict[str, ModelSpec]:
    return {"a": ModelSpec(text="answer from a", prompt_tokens=10, completion_tokens=5),
            "b": ModelSpec(text="answer from b", reasoning="think", prompt_tokens=10, completion_tokens=5),
            "router": ModelSpec(text="priced upstream", reported_cost=0.5),
            "limited": ModelSpec(status=429), "thinker": ModelSpec(text="4", reasoning="2 and 2")}


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch):
    monkeypatch.setattr(_batch.BatchSession, "poll_first_s", 0.05)


def _lab(srv: FakeServer, tmp_path, **kw) -> Lab:
    return Lab(base_url=srv.base_url, db=tmp_path / "runs.sqlite", retries=0, prices=PRICES, **kw)


def _sql(path, query: str, *args):
    db = sqlite3.connect(path)
    try:
        rows = db.execute(query, args).fetchall()
        db.commit()
        return rows
    finally:
        db.close()


def test_a_batch_sweep_stores_ordinary_rows_priced_at_the_batch_price(tmp_path):
    with FakeServer(models(), batches=BatchBehaviour(in_progress_s=1.1)) as srv, _lab(srv, tmp_path) as lab:
        res = lab.sweep(PROMPTS, models=["a", "b", "router"], batch=True, progress=False)
    df = res.df
    assert len(df) == 21 and (df["status"] == "ok").all() and list(df["prompt"][:3]) == ["question 0"] * 3
    assert df["batch_id"].nunique() == 3 and not df["stream"].any()
    described = {b["id"]: b for b in srv.batch_api.state()["batches"]}
    for batch_id, rows in df.groupby("batch_id"):
        wall = described[batch_id]["completed_at"] - described[batch_id]["created_at"]
        assert (rows["latency_s"] == wall).all() and wall >= 1  # the batch's wall time
    a, b, router = (df[df["requested_model"] == m].iloc[0] for m in ("a", "b", "router"))
    assert a["cost_usd"] == pytest.approx(10 * 1e-6 + 5 * 2e-6) and a["cost_source"] == "price_table"
    assert b["cost_usd"] == pytest.approx(15 * 1e-6) and "no Batch API price known for 'b'" in b["error_message"]
    assert b["reasoning_text"] == "think" and router["cost_usd"] == 0.5 and router["cost_source"] == "reported"
    assert sorted(cid for _, cid in srv.batch_requests) == sorted(df["request_id"])  # each sent and paid once
    chat = [r for r in srv.requests if r.path == "/v1/chat/completions"]
    assert chat == []  # nothing went live


def test_parts_respect_the_request_and_size_limits_one_model_each(tmp_path, monkeypatch):
    monkeypatch.setattr(_batch.BatchSession, "max_requests", 3)
    with FakeServer(models()) as srv, _lab(srv, tmp_path) as lab:
        res = lab.sweep(PROMPTS, models=["a", "b"], batch=True, progress=False)
        parts = lab.batch_status(res.run_id)
        monkeypatch.setattr(_batch.BatchSession, "max_requests", 1000)
        monkeypatch.setattr(_batch.BatchSession, "max_bytes", 700)  # about three lines
        small = lab.sweep([p + " again" for p in PROMPTS], models=["a"], batch=True, progress=False)
        by_size = lab.batch_status(small.run_id)
    assert list(parts.groupby("model")["requests"].apply(list)) == [[3, 3, 1], [3, 3, 1]]
    assert list(parts["part"]) == [0, 0, 1, 1, 2, 2] and (parts["status"] == "stored").all()
    batches = srv.batch_api.state()["batches"]
    assert all(b["status"] == "completed" and b["errors"] is None for b in batches)  # one model per file
    sizes = [len(srv.batch_api.files[b["input_file_id"]].data) for b in batches[-len(by_size):]]
    assert len(by_size) >= 3 and max(sizes) <= 700 and by_size["requests"].sum() == 7
    assert len(res.df) == 14 and res.df["request_id"].is_unique


def test_failed_lines_and_a_failed_batch_become_error_rows(tmp_path):
    with FakeServer(models(), batches=BatchBehaviour(max_requests=5)) as srv, _lab(srv, tmp_path) as lab:
        res = lab.sweep(PROMPTS[:3], models=["a", "limited", "nosuch"], batch=True, progress=False)
        over = lab.sweep(PROMPTS, models=["a"], batch=True, progress=False, cache=False)  # 7 lines > its 5
    df = res.df.set_index(["requested_model", "prompt"])
    assert (df.loc["a", "status"] == "ok").all()
    assert set(df.loc["limited", "error_type"]) == {"RateLimitError"}
    assert df.loc["limited", "error_message"].str.startswith("HTTP 429 in the batch").all()
    assert set(df.loc["nosuch", "error_type"]) == {"NotFoundError"}
    failed = over.df
    assert len(failed) == 7 and set(failed["error_type"]) == {"BatchFailed"}
    assert "at most 5 requests" in failed["error_message"].iloc[0]


def test_an_expired_batch_keeps_what_it_answered_and_a_resume_sends_only_the_rest(tmp_path):
    expiring = BatchBehaviour(outcome="expired", expire_after=3)
    with FakeServer(models(), batches=expiring) as srv, _lab(srv, tmp_path) as lab:
        res = lab.sweep(PROMPTS, models=["a"], batch=True, progress=False)
        assert res.df["status"].value_counts().to_dict() == {"ok": 3, "error": 4}
        assert set(res.df.loc[res.df["status"] == "error", "error_type"]) == {"BatchExpired"}
        assert res.df.loc[res.df["status"] == "error", "cost_usd"].isna().all()
        srv.batch_api.behaviour = BatchBehaviour()
        again = lab.sweep(PROMPTS, models=["a"], batch=True, progress=False, resume=res.run_id)
    ok = again.df[again.df["status"] == "ok"]
    assert len(ok) == 7 and ok["prompt_id"].is_unique
    answered = [cid for _, cid in srv.batch_requests]
    assert len(answered) == 7 and len(set(answered)) == 7  # the 3 answered first were not sent again


def test_duplicate_unknown_and_missing_output_lines_are_said_and_counted_once(tmp_path):
    odd = BatchBehaviour(duplicate=2, foreign=1, drop=1)
    with FakeServer(models(), batches=odd) as srv, _lab(srv, tmp_path) as lab:
        with pytest.warns(BatchWarning, match=r"2 duplicate line\(s\).*1 line\(s\) for requests llmlab never sent"):
            res = lab.sweep(PROMPTS, models=["a"], batch=True, progress=False)
    df = res.df
    assert len(df) == 7 and df["request_id"].is_unique
    assert df["status"].value_counts().to_dict() == {"ok": 6, "error": 1}
    missing = df[df["status"] == "error"].iloc[0]
    assert missing["error_type"] == "BatchMissing" and "without an answer" in missing["error_message"]
    assert res.summary().iloc[0]["cost_usd"] == pytest.approx(6 * (10e-6 + 10e-6))


def test_cancel_stores_the_partial_results_and_the_rest_as_cancelled(tmp_path):
    slow = BatchBehaviour(in_progress_s=30, cancelling_s=0.2)
    with FakeServer(models(), batches=slow) as srv, _lab(srv, tmp_path) as lab:
        run_id = lab.batch_submit(PROMPTS, models=["a", "b"])
        assert set(lab.batch_status(run_id)["status"]) <= {"validating", "in_progress"}
        res = lab.batch_cancel(run_id, progress=False)
    df = res.df
    assert len(df) == 14 and set(df["error_type"].dropna()) == {"Cancelled"}
    assert {b["status"] for b in srv.batch_api.state()["batches"]} == {"cancelled"}


def test_a_restarted_kernel_collects_the_batches_from_the_log_and_never_twice(tmp_path):
    slow = BatchBehaviour(in_progress_s=0.3)
    with FakeServer(models(), batches=slow) as srv:
        with _lab(srv, tmp_path) as lab:
            run_id = lab.batch_submit(PROMPTS, models=["a"])
            assert lab.runs(run_id=run_id).empty  # submitted, not waited for
        with _lab(srv, tmp_path) as later:  # a new process: only the log
            res = later.batch_resume(run_id, progress=False)
            again = later.batch_resume(run_id, progress=False)
            assert len(later.runs(run_id=run_id)) == 7
        assert len(res.df) == 7 and (res.df["status"] == "ok").all() and len(again.df) == 7
        assert len(srv.batch_api.batches) == 1 and len(srv.batch_requests) == 7


def test_a_batch_created_just_before_a_crash_is_adopted_not_created_again(tmp_path):
    with FakeServer(models(), batches=BatchBehaviour(in_progress_s=0.2)) as srv:
        with _lab(srv, tmp_path) as lab:
            run_id = lab.batch_submit(PROMPTS, models=["a"])
        # the crash: the batch exists at the endpoint, the log never heard its id
        _sql(tmp_path / "runs.sqlite", "UPDATE batch_parts SET batch_id = NULL, status = 'uploaded'")
        with _lab(srv, tmp_path) as later:
            res = later.batch_resume(run_id, progress=False)
        assert len(srv.batch_api.batches) == 1 and len(res.df) == 7 and (res.df["status"] == "ok").all()


def test_a_part_cut_short_while_planning_is_dropped_and_planned_again(tmp_path):
    with FakeServer(models()) as srv:
        with _lab(srv, tmp_path) as lab:
            first = lab.sweep(PROMPTS[:2], models=["a"], batch=True, progress=False)
            # a second part that was being written when the kernel died: never sent
            _sql(tmp_path / "runs.sqlite", "INSERT INTO batch_parts VALUES ('cut', ?, 'a', 1, ?, 0, NULL, NULL, "
                 "'planning', '2026-01-01T00:00:00+00:00', NULL)", first.run_id, srv.base_url)
            res = lab.sweep(PROMPTS, models=["a"], batch=True, progress=False, resume=first.run_id)
        assert len(res.df) == 7 and (res.df["status"] == "ok").all() and res.df["prompt_id"].is_unique
        assert _sql(tmp_path / "runs.sqlite", "SELECT COUNT(*) FROM batch_parts WHERE part_id = 'cut'") == [(0,)]
        assert len(srv.batch_requests) == 7


def test_a_collection_cut_short_stores_each_row_once(tmp_path):
    with FakeServer(models()) as srv:
        with _lab(srv, tmp_path) as lab:
            res = lab.sweep(PROMPTS, models=["a"], batch=True, progress=False)
        path = tmp_path / "runs.sqlite"
        kept = _sql(path, "SELECT id FROM runs ORDER BY id LIMIT 4")
        _sql(path, f"DELETE FROM runs WHERE id NOT IN ({', '.join(str(r[0]) for r in kept)})")
        _sql(path, "UPDATE batch_parts SET status = 'completed', stored_at = NULL")  # died mid-collection
        with _lab(srv, tmp_path) as later:
            again = later.batch_resume(res.run_id, progress=False)
        assert len(again.df) == 7 and again.df["request_id"].is_unique and len(srv.batch_requests) == 7


def test_an_endpoint_without_the_batch_api_is_one_line_or_live_when_asked(tmp_path):
    with FakeServer(models(), batches=False) as srv, _lab(srv, tmp_path) as lab:
        with pytest.raises(EndpointError, match=r"does not offer the Batch API \(GET /batches answered HTTP 404\)"
                                                r".*batch='auto'") as caught:
            lab.sweep(PROMPTS, models=["a"], batch=True, progress=False)
        assert "\n" not in str(caught.value) and srv.requests_for("a") == []
        live = lab.sweep(PROMPTS, models=["a"], batch="auto", progress=False)
    assert (live.df["status"] == "ok").all() and live.df["batch_id"].isna().all() and len(srv.requests_for("a")) == 7


@pytest.mark.parametrize("call, said", [
    (lambda lab: lab.sweep(PROMPTS, models=["a"], batch="yes"), "batch must be True"),
    (lambda lab: lab.compare("hi", models=["a"], batch=True), "unknown keyword 'batch'"),
    (lambda lab: lab.batch_resume("nope"), "has no batches"),
    (lambda lab: lab.batch_status(""), "run_id must be a run id"),
    (lambda lab: lab.sweep(PROMPTS, models=["a"], batch=True, extra_body={"batch": 1}), "cannot be sent"),
])
def test_bad_batch_arguments_are_one_line_before_anything_is_sent(tmp_path, call, said):
    with FakeServer(models()) as srv, _lab(srv, tmp_path) as lab:
        with pytest.raises(InputError, match=said):
            call(lab)
    assert srv.batch_api.files == {} and srv.batch_requests == []


def test_batches_of_another_endpoint_are_not_resumed_here(tmp_path):
    with FakeServer(models()) as srv, FakeServer(models()) as other:
        with _lab(srv, tmp_path) as lab:
            run_id = lab.batch_submit(PROMPTS, models=["a"])
        with Lab(base_url=other.base_url, db=tmp_path / "runs.sqlite") as elsewhere, \
                pytest.raises(InputError, match="were sent to http://127.0.0.1"):
            elsewhere.batch_resume(run_id)


def test_tools_and_structured_output_go_into_every_batch_line(tmp_path):
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    with FakeServer({"a": ModelSpec(tool_call={"name": "f", "arguments": "{}"})}) as srv, _lab(srv, tmp_path) as lab:
        res = lab.sweep(PROMPTS[:2], models=["a"], batch=True, progress=False, tools=tools,
                        response_format={"type": "json_object"}, reasoning_effort="low")
        data = next(f.data for f in srv.batch_api.files.values() if f.purpose == "batch")
    bodies = [json.loads(line)["body"] for line in data.decode().splitlines()]
    assert all(b["tools"] == tools and b["response_format"] == {"type": "json_object"} for b in bodies)
    assert json.loads(res.df.iloc[0]["tool_calls"])[0]["name"] == "f" and res.df.iloc[0]["reasoning_effort"] == "low"


def test_the_progress_bar_follows_the_batches(tmp_path, capsys):
    with FakeServer(models(), batches=BatchBehaviour(in_progress_s=0.5)) as srv, _lab(srv, tmp_path) as lab:
        lab.sweep(PROMPTS, models=["a", "b"], batch=True, progress=True)
    assert "14/14" in capsys.readouterr().err


def test_the_command_line_submits_follows_and_collects(tmp_path, capsys):
    from llmlab.cli import main

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS[:3]))
    with FakeServer(models(), batches=BatchBehaviour(in_progress_s=0.3)) as srv:
        common = ["--base-url", srv.base_url, "--db", str(tmp_path / "cli.sqlite")]
        assert main(["batch", "submit", str(prompts), "--models", "a,b", "--response-format",
                     '{"type": "json_object"}', *common]) == 0
        out = capsys.readouterr().out
        run_id = out.split("submitted run ")[1].split(":")[0]
        assert "6 requests in 2 batch(es)" in out
        assert main(["batch", "status", run_id, *common]) == 0
        assert run_id in capsys.readouterr().out
        assert main(["batch", "resume", run_id, *common]) == 0
        summary = capsys.readouterr().out
        assert summary.splitlines()[0].split()[:3] == ["model", "calls", "errors"] and len(summary.splitlines()) == 3
        assert main(["batch", "cancel", run_id, *common]) == 0  # nothing left to cancel: the same rows
        assert main(["batch", "resume", "missing", *common]) == 2
        assert "has no batches" in capsys.readouterr().err
        assert main(["batch", "submit", str(prompts), "--models", "a", "--wait", "--response-format",
                     '{"type": "json_object"}', *common]) == 0  # the same requests again: the cache answers
        assert "all 3 requests were answered from the response cache" in capsys.readouterr().out
    assert len(srv.batch_requests) == 6
    assert all(json.loads(line)["body"]["response_format"] == {"type": "json_object"}
               for f in srv.batch_api.files.values() if f.purpose == "batch" for line in f.data.decode().splitlines())


def test_the_magic_sends_a_cell_as_a_batch(tmp_path):
    from test_magics import fresh_shell, magics_of

    from llmlab.magics import load_ipython_extension

    shell = fresh_shell()
    load_ipython_extension(shell)
    try:
        with FakeServer(models()) as srv:
            shell.run_line_magic("config", f'LLMLab.base_url = "{srv.base_url}"')
            shell.run_line_magic("config", f'LLMLab.db = "{tmp_path / "m.sqlite"}"')
            res = shell.run_cell_magic("llm", "model=a,b batch=true", "What is up?")
            with pytest.raises(Exception, match="batch must be true, false or auto"):
                shell.run_cell_magic("llm", "model=a batch=maybe", "x")
            with pytest.raises(Exception, match="can't be combined with fallback"):
                shell.run_cell_magic("llm", "model=a fallback=b batch=true", "x")
        assert isinstance(res.df, pd.DataFrame) and res.df["batch_id"].notna().all() and len(res.df) == 2
        assert magics_of(shell).run_ids == [res.run_id]
    finally:
        fresh_shell()


def test_both_log_backends_keep_the_batches_and_their_rows(db_url):
    with FakeServer(models(), batches=BatchBehaviour(in_progress_s=0.2)) as srv:
        with Lab(base_url=srv.base_url, db=db_url, retries=0) as lab:
            run_id = lab.batch_submit(PROMPTS, models=["a", "b"])
        with Lab(base_url=srv.base_url, db=db_url, retries=0) as later:
            res = later.batch_resume(run_id, progress=False)
            status = later.batch_status(run_id)
    assert len(res.df) == 14 and (res.df["status"] == "ok").all() and res.df["batch_id"].nunique() == 2
    assert list(status["status"]) == ["stored", "stored"] and list(status["requests"]) == [7, 7]
    assert len(srv.batch_requests) == 14


def test_an_answer_that_echoes_the_key_is_stored_without_it(tmp_path, monkeypatch):
    secret = "sk-batch-secret-0123456789abcdef"
    monkeypatch.setenv("GATEWAY_KEY", secret)
    echo = ModelSpec(text=f"your key is {secret} indeed", reasoning=f"I saw {secret}")
    with FakeServer({"echo": echo}, api_key=secret) as srv, \
            Lab(base_url=srv.base_url, api_key_env="GATEWAY_KEY", db=tmp_path / "k.sqlite") as lab:
        res = lab.sweep(["hi"], models=["echo"], batch=True, progress=False)
    row = res.df.iloc[0]
    assert row["status"] == "ok" and secret not in row["response_text"] and secret not in row["reasoning_text"]
    assert secret.encode() not in (tmp_path / "k.sqlite").read_bytes()


def _completed(lab: Lab, run_id: str) -> None:
    """Wait until every part of the batch ended (a batch that never ends fails the test instead of
    hanging the suite)."""
    ended = {"completed", "expired", "cancelled", "failed"}
    wait_for(lambda: set(lab.batch_status(run_id)["status"]) <= ended, timeout=120, what=f"batch {run_id} ended")


@pytest.mark.parametrize("gone", ["output", "error", "both"])
def test_results_files_the_endpoint_no_longer_has_become_error_rows_a_resume_sends_again(tmp_path, gone):
    with FakeServer(models(), batches=BatchBehaviour(in_progress_s=0.2)) as srv, _lab(srv, tmp_path) as lab:
        run_id = lab.batch_submit(PROMPTS[:4], models=["a", "limited"])
        _completed(lab, run_id)
        for batch in srv.batch_api.batches.values():  # deleted (OpenAI's 30 days), metadata and all
            for file_id in {"output": [batch.output_file_id], "error": [batch.error_file_id],
                            "both": [batch.output_file_id, batch.error_file_id]}[gone]:
                srv.batch_api.files.pop(file_id or "", None)
        res = lab.batch_resume(run_id, progress=False)
        df = res.df.set_index("requested_model")
        lost = df[df["error_type"] == "BatchResultsGone"]
        # the requests in a file still there are rows as ever; the others say what happened
        assert len(res.df) == 8 and res.df["request_id"].is_unique
        assert (df.loc["a", "status"] == "ok").all() == (gone == "error")
        failed = {"RateLimitError"} if gone == "output" else {"BatchResultsGone"}
        assert set(df.loc["limited", "error_type"]) == failed
        said = r"results file file-\S+ \(HTTP 404\).* no longer at the endpoint.*resume the sweep"
        assert lost["error_message"].str.contains(said).all()
        assert "\n" not in "".join(lost["error_message"]) and lost["cost_usd"].isna().all()
        assert set(lab.batch_status(run_id)["status"]) == {"stored"}
        paid = len(srv.batch_requests)
        again = lab.sweep(PROMPTS[:4], models=["a", "limited"], batch=True, resume=run_id, progress=False)
        resent = len(srv.batch_requests) - paid
        final = lab.sweep(PROMPTS[:4], models=["a", "limited"], batch=True, resume=run_id, progress=False)
        lab.batch_resume(run_id, progress=False)
    # only the lost and the failed requests are sent again; once answered, never again
    assert resent == len(lost) + (4 if gone == "output" else 0)
    assert len(srv.batch_requests) == paid + resent + 4  # the 429s of 'limited' once more, nothing of 'a'
    answered = final.df[(final.df["requested_model"] == "a") & (final.df["status"] == "ok")]
    assert len(answered) == 4 and answered["prompt_id"].is_unique and again.df["request_id"].is_unique


@pytest.mark.parametrize("status", [404, 410, 500])
def test_results_the_endpoint_still_has_but_will_not_serve_are_never_given_up(tmp_path, status):
    with FakeServer(models(), batches=BatchBehaviour(content_status=status)) as srv, _lab(srv, tmp_path) as lab:
        run_id = lab.batch_submit(PROMPTS[:3], models=["a"])
        _completed(lab, run_id)
        for _ in range(2):
            with pytest.raises(EndpointError, match=rf"cannot download a batch's results.*HTTP {status}.*batch_resume"):
                lab.batch_resume(run_id, progress=False)
        assert lab.runs(run_id=run_id).empty and set(lab.batch_status(run_id)["status"]) == {"completed"}
        srv.batch_api.behaviour.content_status = None  # the gateway is fixed: everything is collected
        res = lab.batch_resume(run_id, progress=False)
    assert len(res.df) == 3 and (res.df["status"] == "ok").all() and len(srv.batch_requests) == 3


@pytest.mark.parametrize("status", ["200", True, 99, 700, None, [200]])
def test_an_output_line_whose_status_code_is_not_an_http_status_is_an_error_row_that_says_so(tmp_path, status):
    with FakeServer(models(), batches=BatchBehaviour(in_progress_s=0.2)) as srv, _lab(srv, tmp_path) as lab:
        run_id = lab.batch_submit(PROMPTS[:2], models=["a"])
        _completed(lab, run_id)
        batch = next(iter(srv.batch_api.batches.values()))
        output = srv.batch_api.files[batch.output_file_id]
        lines = [json.loads(text) for text in output.data.decode().splitlines()]
        lines[0]["response"]["status_code"] = status
        odd = [json.dumps({"custom_id": 7, "response": lines[1]["response"]}), json.dumps([lines[1]]), '"x"']
        output.data = "\n".join([*odd, *map(json.dumps, lines)]).encode()
        with pytest.warns(BatchWarning, match=r"3 unreadable line\(s\)"):
            df = lab.batch_resume(run_id, progress=False).df.set_index("request_id")
    bad = df.loc[lines[0]["custom_id"]]
    assert bad["status"] == "error" and bad["error_type"] == "MalformedResponse"
    assert f"status_code is {status!r}, not an HTTP status" in bad["error_message"]
    assert df.loc[lines[1]["custom_id"], "status"] == "ok" and len(df) == 2


def test_a_free_model_without_a_batch_price_is_priced_at_zero_without_a_note(tmp_path):
    prices = {"local": {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0},
              "paid": {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-6}}
    spec = ModelSpec(text="hi", prompt_tokens=10, completion_tokens=5)
    with FakeServer({"local": spec, "paid": spec}) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path / "f.sqlite", retries=0, prices=prices) as lab:
        df = lab.sweep(PROMPTS[:2], models=["local", "paid"], batch=True, progress=False).df
    local, paid = df[df["requested_model"] == "local"], df[df["requested_model"] == "paid"]
    assert (local["cost_usd"] == 0).all() and local["error_message"].isna().all()
    assert paid["cost_usd"].tolist() == pytest.approx([15e-6, 15e-6])
    assert paid["error_message"].str.contains("no Batch API price known for 'paid'").all()


@pytest.mark.parametrize("named", ["file", "batch"])
def test_an_id_the_endpoint_names_after_the_key_is_refused_not_stored(tmp_path, monkeypatch, named):
    # An id is kept in the log and sent back to poll, so it cannot be redacted like answer text.
    secret = "sk-batch-secret-0123456789abcdef"
    monkeypatch.setenv("GATEWAY_KEY", secret)
    behaviour = BatchBehaviour(name={named: f"-{secret[3:15]}-"})
    with FakeServer(models(), batches=behaviour, api_key=secret) as srv, \
            Lab(base_url=srv.base_url, api_key_env="GATEWAY_KEY", db=tmp_path / "k.sqlite", retries=0) as lab:
        with pytest.raises(EndpointError, match="the id it answered holds your API key") as caught:
            lab.sweep(["hi"], models=["a"], batch=True, progress=False)
        shown = lab.batch_status().to_csv() + lab.batch_status()._repr_html_()
    assert secret[3:15] not in str(caught.value) + shown
    assert secret[3:15].encode() not in (tmp_path / "k.sqlite").read_bytes()
