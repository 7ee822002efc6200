"""Retries, Retry-After, fallback chains, timeouts, the rate limiter, caching of failures and key
redaction — driven end to end through ``Lab`` against the fake server.

Waits are measured from the server's own arrival stamps (``RequestLog.t_mono``), not from what the
engine says it did. Backoff uses ``RetryPolicy(base_s=0.05, seed=0)`` so the file stays fast; the
jitter sequence of a fresh seeded policy is known, so recorded ``waited_s`` values are checked
exactly. Scheduled times are lower bounds (never early); how much later they happen is the
machine's load, so upper bounds allow SLACK, and where a test tells "at once" from "after a
sleep" the sleep it must not take is made far longer than SLACK (``SLOW``). A model that must
still be answering when a deadline passes is held by the server (``hold_after=0``), not slow.
"""
from __future__ import annotations

import email.utils
import itertools
import math
import sqlite3
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest
from fakeserver import FakeServer, ModelSpec

import llmlab.engine._resilience as resilience
from llmlab import Lab, RetryPolicy, Timeouts
from llmlab.engine._call import Redactor
from llmlab.engine._headers import parse_retry_after
from llmlab.engine._resilience import RateLimiter

pytestmark = pytest.mark.filterwarnings("ignore::llmlab.PriceWarning")

TEXT = "one two three four five six"
SLACK = 1.5  # "not much later than" on a loaded 2-core machine (measured at load 9-14: up to 0.35 s
# late, once 1.2 s: an event loop stalled by the load)
SLOW = dict(base_s=30.0, cap_s=60.0)  # a backoff (>= 22.5 s) a test could not mistake for load
AT_ONCE = 5.0  # "at once": far above the load's delays, far below a SLOW backoff or a long Retry-After


def fast(**kw) -> RetryPolicy:
    kw.setdefault("retries", 3)
    kw.setdefault("base_s", 0.05)
    kw.setdefault("seed", 0)
    return RetryPolicy(**kw)


def expected_backoffs(n: int, **kw) -> list[float]:
    """The first ``n`` backoff waits a fresh policy built like ``fast(**kw)`` will draw."""
    policy = fast(**kw)
    return [policy.backoff(i) for i in range(n)]


@pytest.fixture
def make_lab(tmp_path):
    labs: list[Lab] = []

    def _make(srv: FakeServer, **kw) -> Lab:
        kw.setdefault("db", str(tmp_path / "runs.sqlite"))
        if "retries" not in kw:
            kw.setdefault("retry_policy", fast())
        lab = Lab(base_url=srv.base_url, **kw)
        labs.append(lab)
        return lab

    yield _make
    for lab in labs:
        lab.close()


def chat_requests(srv: FakeServer, model: str | None = None):
    reqs = [r for r in srv.requests if r.path == "/v1/chat/completions"]
    return [r for r in reqs if model is None or r.model == model]


def gaps(reqs) -> list[float]:
    return [b.t_mono - a.t_mono for a, b in itertools.pairwise(reqs)]


def _plain(value):
    if isinstance(value, float) and math.isnan(value):
        return None  # a missing string reads back as NaN
    return value.item() if hasattr(value, "item") else value


def rows(df, *cols):
    """The given columns as plain tuples (missing -> None) for exact comparisons."""
    return [tuple(_plain(v) for v in r) for r in df[list(cols)].itertuples(index=False, name=None)]


# --- unit: RetryPolicy, Retry-After parsing, RateLimiter ------------------------------------------

def test_backoff_is_exponential_jittered_and_capped():
    policy = RetryPolicy(base_s=0.5, cap_s=8.0, seed=1)
    draws = [[policy.backoff(n) for n in range(7)] for _ in range(200)]
    for n in range(7):
        values = [d[n] for d in draws]
        nominal = 0.5 * 2 ** n
        assert min(values) >= min(8.0, 0.75 * nominal) - 1e-9
        assert max(values) <= min(8.0, 1.25 * nominal) + 1e-9
        if 1.25 * nominal <= 8.0:  # real jitter, not a constant
            assert max(values) - min(values) > 0.3 * nominal
    assert all(d[6] == 8.0 for d in draws)  # 0.5 * 64 * 0.75 = 24 s: always capped
    # Seeded: reproducible, so the integration tests below can predict waited_s exactly.
    assert expected_backoffs(4) == expected_backoffs(4)


def test_wait_for_counts_retries_and_caps_retry_after():
    policy = RetryPolicy(retries=2, base_s=0.5, retry_after_cap_s=60, seed=0)
    assert policy.wait_for(0, 1.5) == 1.5
    assert policy.wait_for(1, 60.0) == 60.0
    assert policy.wait_for(2, 1.0) is None  # retries used up
    assert policy.wait_for(0, 61.0) is None  # beyond the cap: give up at once, no sleep
    assert 0.375 <= policy.wait_for(1, None) <= 0.625 * 2
    assert RetryPolicy(retries=0).wait_for(0, None) is None


def test_parse_retry_after_seconds_and_http_date():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28.0 <= parse_retry_after(future) <= 30.5
    past = email.utils.formatdate(time.time() - 3600, usegmt=True)
    assert parse_retry_after(past) == 0.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_rpm_bucket(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(resilience.time, "monotonic", clock)
    limiter = RateLimiter(rpm=60)
    # Initial capacity is one minute's budget: 60 requests at once, then one per second.
    assert [limiter.reserve(0) for _ in range(60)] == [0.0] * 60
    assert limiter.reserve(0) == pytest.approx(1.0)
    assert limiter.reserve(0) == pytest.approx(2.0)  # queued behind the previous reservation
    clock.now += 2.0  # both debts repaid, bucket empty
    assert limiter.reserve(0) == pytest.approx(1.0)
    clock.now += 61.0  # refills, but never beyond capacity
    assert [limiter.reserve(0) for _ in range(60)] == [0.0] * 60
    assert limiter.reserve(0) == pytest.approx(1.0)


def test_rate_limiter_tpm_estimate_then_correction(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(resilience.time, "monotonic", clock)
    limiter = RateLimiter(tpm=600)  # 10 tokens/s
    assert limiter.reserve(600) == 0.0
    assert limiter.reserve(100) == pytest.approx(10.0)
    limiter.correct(estimated=100, actual=40)  # used less than estimated: 60 back
    assert limiter.reserve(10) == pytest.approx(5.0)  # debt 100 - 60 + 10 = 50 tokens
    limiter.correct(estimated=10, actual=math.nan)  # usage unknown: the estimate stands
    assert limiter.reserve(0) == pytest.approx(5.0)
    # One request larger than the whole budget does not wait forever.
    clock.now += 3600
    assert RateLimiter(tpm=600).reserve(10_000) == 0.0
    assert not RateLimiter(adaptive=False).active and RateLimiter(rpm=1, adaptive=False).active


def test_redactor_removes_key_and_echoed_fragments():
    key = "sk-proj-QZXWVUTSRQPONMLKJIHGFEDCBAzyxw"
    redact = Redactor([key])
    for text in (f"bad key {key}", f"Incorrect API key provided: {key[:3]}***{key[-4:]}.",
                 f"prefix {key[:8]} only", f"suffix {key[-8:]} only"):
        out = redact.message(text)
        assert key[:8] not in out and key[-8:] not in out and "***" not in out, out
    assert redact("nothing secret here") == "nothing secret here"


# --- retries ------------------------------------------------------------------------------------

@pytest.mark.parametrize("status, error_type", [
    (429, "RateLimitError"), (500, "InternalServerError"), (502, "InternalServerError"),
    (503, "InternalServerError"), (504, "InternalServerError"), (408, None), (409, "ConflictError"),
])
@pytest.mark.parametrize("stream", [True, False])
def test_retryable_status_is_retried_with_backoff(serve, make_lab, status, error_type, stream):
    srv = serve({"m": ModelSpec(text=TEXT, fail_first=2, fail_status=status)})
    lab = make_lab(srv)
    df = lab.compare("hi", models=["m"], cache=False, stream=stream).df
    reqs = chat_requests(srv, "m")
    assert [r.status for r in reqs] == [status, status, 200]
    assert rows(df, "attempt", "status") == [(1, "error"), (2, "error"), (3, "ok")]
    if error_type is not None:
        assert list(df["error_type"][:2]) == [error_type] * 2
    assert df["response_text"].iloc[-1] == TEXT
    assert df["request_id"].nunique() == 1
    waits = expected_backoffs(2)
    assert list(df["waited_s"]) == pytest.approx([0.0, *waits])
    for gap, wait in zip(gaps(reqs), waits, strict=True):
        assert wait - 0.005 <= gap <= wait + SLACK


def test_backoff_grows_to_the_cap_then_gives_up(serve, make_lab):
    srv = serve({"m": ModelSpec(status=503)})
    policy = dict(retries=3, base_s=0.1, cap_s=0.25)
    lab = make_lab(srv, retry_policy=fast(**policy))
    df = lab.compare("hi", models=["m"], cache=False).df
    reqs = chat_requests(srv, "m")
    assert len(reqs) == 4  # 1 + retries
    assert rows(df, "attempt", "status", "error_type") == [
        (n, "error", "InternalServerError") for n in (1, 2, 3, 4)]
    waits = expected_backoffs(3, **policy)
    assert waits[2] == 0.25  # 0.1 * 4 * >=0.75 > cap
    assert list(df["waited_s"]) == pytest.approx([0.0, *waits])
    for gap, wait in zip(gaps(reqs), waits, strict=True):
        assert wait - 0.005 <= gap <= wait + SLACK


def test_lab_retries_argument(serve, make_lab):
    srv = serve({"m": ModelSpec(status=500)})
    lab = make_lab(srv, retries=1)
    lab.retry.base_s = 0.05  # keep it fast; the count comes from retries=1
    df = lab.compare("hi", models=["m"], cache=False).df
    assert len(chat_requests(srv, "m")) == 2 and list(df["attempt"]) == [1, 2]
    srv.reset()
    lab0 = make_lab(srv, retries=0, db=":memory:")
    df0 = lab0.compare("hi", models=["m"], cache=False).df
    assert len(chat_requests(srv, "m")) == 1 and len(df0) == 1


def test_per_call_retries(serve, make_lab):
    srv = serve({"m": ModelSpec(status=503)})
    lab = make_lab(srv)  # Lab policy: 3 retries
    df = lab.compare("hi", models=["m"], cache=False, retries=1).df
    reqs = chat_requests(srv, "m")
    assert all("retries" not in (r.body or {}) for r in reqs)  # never sent to the endpoint
    assert len(reqs) == 2 and len(df) == 2


def test_runner_honours_a_per_job_retry_policy(serve, make_lab):
    """The engine half of per-call retries: a Job carrying its own RetryPolicy overrides the Lab's."""
    from llmlab.engine._runner import Job, Runner

    srv = serve({"m": ModelSpec(status=503)})
    lab = make_lab(srv)  # Lab policy: 3 retries

    async def run(policy, run_id):
        job = Job(prompt_id="p", prompt="hi", messages=[{"role": "user", "content": "hi"}], models=["m"],
                  bodies={"m": {"max_tokens": 8}}, stream=False, use_cache=False, retry=policy)
        async with lab._session() as context:
            await Runner(context, run_id).run([job], concurrency=1)
        return lab.runs(run_id=run_id)  # the runner keeps nothing: every attempt is in the log

    attempts = lab._loop_thread.run(run(RetryPolicy(retries=1, base_s=0.01, seed=0), "run-a"))
    assert attempts["attempt"].tolist() == [1, 2] and len(chat_requests(srv)) == 2
    srv.reset()
    attempts = lab._loop_thread.run(run(None, "run-b"))  # None: the Lab's policy
    assert len(attempts) == 4 and len(chat_requests(srv)) == 4


@pytest.mark.parametrize("case", ["400", "401", "403", "404"])
@pytest.mark.parametrize("stream", [True, False])
def test_client_errors_are_never_retried(serve, make_lab, monkeypatch, case, stream):
    model = "m"
    kw = {}
    if case == "400":
        spec = ModelSpec(status=400)
    elif case == "403":
        spec = ModelSpec(status=403)
    else:
        spec = ModelSpec()
    if case == "404":
        model = "no-such-model"
    srv = serve({"m": spec}, api_key="right-key" if case == "401" else None)
    if case == "401":
        monkeypatch.setenv("MY_KEY", "wrong-key-123456")
        kw["api_key_env"] = "MY_KEY"
    lab = make_lab(srv, retry_policy=fast(**SLOW), **kw)
    t0 = time.monotonic()
    df = lab.compare("hi", models=[model], cache=False, stream=stream).df
    assert time.monotonic() - t0 < AT_ONCE  # no backoff sleep before giving up either
    reqs = chat_requests(srv)
    assert len(reqs) == 1 and reqs[0].status == int(case)
    assert rows(df, "attempt", "status") == [(1, "error")]
    expected = {"400": "BadRequestError", "401": "AuthenticationError", "403": "PermissionDeniedError",
                "404": "NotFoundError"}[case]
    assert df["error_type"].iloc[0] == expected


def test_retry_after_seconds_is_honoured(serve, make_lab):
    srv = serve({"m": ModelSpec(text=TEXT, fail_first=1, fail_status=429, retry_after="1")})
    lab = make_lab(srv)
    df = lab.compare("hi", models=["m"], cache=False).df
    reqs = chat_requests(srv, "m")
    assert [r.status for r in reqs] == [429, 200]
    assert 0.95 <= gaps(reqs)[0] <= 1.0 + SLACK
    assert rows(df, "attempt", "status", "error_type") == [(1, "error", "RateLimitError"), (2, "ok", None)]
    assert list(df["waited_s"]) == pytest.approx([0.0, 1.0])


def test_retry_after_http_date_is_honoured(serve, make_lab):
    # HTTP dates have one-second resolution: the retry must not arrive before the date.
    when = math.ceil(time.time() + 1.2)  # 1.2 to 2.2 s from now
    header = email.utils.formatdate(when, usegmt=True)
    srv = serve({"m": ModelSpec(text=TEXT, fail_first=1, fail_status=503, retry_after=header)})
    lab = make_lab(srv)
    df = lab.compare("hi", models=["m"], cache=False).df
    reqs = chat_requests(srv, "m")
    assert [r.status for r in reqs] == [503, 200]
    assert when - 0.05 <= reqs[1].t_wall <= when + SLACK
    # the wait is counted from when the 503 was read, after the server received the request
    assert when - reqs[0].t_wall - SLACK <= df["waited_s"].iloc[1] <= when - reqs[0].t_wall + 0.01


def test_retry_after_beyond_cap_gives_up_at_once(serve, make_lab):
    srv = serve({"m": ModelSpec(status=429, retry_after="120")})
    lab = make_lab(srv)  # default cap 60 s
    t0 = time.monotonic()
    df = lab.compare("hi", models=["m"], cache=False).df
    assert time.monotonic() - t0 < AT_ONCE
    assert len(chat_requests(srv, "m")) == 1
    assert rows(df, "attempt", "status", "error_type") == [(1, "error", "RateLimitError")]


def test_retry_after_cap_is_configurable(serve, make_lab):
    srv = serve({"m": ModelSpec(status=503, retry_after="30")})
    lab = make_lab(srv, retry_policy=fast(retry_after_cap_s=10))  # 30 s is beyond it: give up at once
    t0 = time.monotonic()
    df = lab.compare("hi", models=["m"], cache=False).df
    assert time.monotonic() - t0 < AT_ONCE  # neither the 30 s nor the 10 s cap was waited
    assert len(chat_requests(srv, "m")) == 1 and len(df) == 1


def test_retry_after_wins_over_backoff_and_stops_after_retries(serve, make_lab):
    srv = serve({"m": ModelSpec(status=429, retry_after="0.3")})
    lab = make_lab(srv, retry_policy=fast(retries=2, base_s=5.0))  # backoff would be 5 s
    df = lab.compare("hi", models=["m"], cache=False).df
    reqs = chat_requests(srv, "m")
    assert len(reqs) == 3
    for gap in gaps(reqs):
        assert 0.29 <= gap <= 0.3 + SLACK
    assert list(df["waited_s"]) == pytest.approx([0.0, 0.3, 0.3])


def test_timeout_is_retried(serve, make_lab):
    srv = serve({"m": ModelSpec(hang_s=60)})
    lab = make_lab(srv, retry_policy=fast(retries=1))
    df = lab.compare("hi", models=["m"], cache=False, timeout=0.3).df
    assert len(chat_requests(srv, "m")) == 2
    assert rows(df, "attempt", "error_type") == [(1, "Timeout"), (2, "Timeout")]


def test_connection_error_is_retried(serve, make_lab):
    srv = serve({"m": ModelSpec(text=TEXT, truncate_after=1)})  # plain body cut in half
    lab = make_lab(srv, retry_policy=fast(retries=1))
    df = lab.compare("hi", models=["m"], cache=False, stream=False).df
    assert len(chat_requests(srv, "m")) == 2
    assert rows(df, "attempt", "status", "error_type") == [(1, "error", "APIConnectionError"),
                                                           (2, "error", "APIConnectionError")]


def test_random_faults_in_a_sweep_every_pair_ends_ok_and_every_attempt_is_a_row(serve, make_lab):
    srv = serve({"a": ModelSpec(text=TEXT, error_rate=0.3, seed=1), "b": ModelSpec(text=TEXT, error_rate=0.3, seed=2)})
    lab = make_lab(srv, retry_policy=fast(retries=8, base_s=0.01))
    prompts = [f"q{i}" for i in range(30)]
    df = lab.sweep(prompts, models=["a", "b"], concurrency=8, progress=False, cache=False).df
    reqs = chat_requests(srv)
    faults = [r for r in reqs if r.status in (429, 503)]
    assert len(faults) >= 10  # the faults really happened
    assert len(df) == len(reqs) == 60 + len(faults)  # one row per request, nothing lost
    assert (df["status"] == "error").sum() == len(faults)
    assert set(df.loc[df["status"] == "error", "error_type"]) <= {"RateLimitError", "InternalServerError"}
    for _, group in df.groupby("request_id"):
        group = group.sort_values("attempt")
        assert list(group["attempt"]) == list(range(1, len(group) + 1))
        assert list(group["status"]) == ["error"] * (len(group) - 1) + ["ok"]
        assert group["requested_model"].nunique() == 1
        assert group["waited_s"].iloc[0] == 0 and (group["waited_s"].iloc[1:] > 0).all()
    ok = df[df["status"] == "ok"]
    assert len(ok) == 60 and not ok.duplicated(["prompt_id", "requested_model"]).any()


def test_malformed_body_is_not_retried_and_falls_back(serve, make_lab):
    srv = serve({"mal": ModelSpec(malformed=True), "b": ModelSpec(text=TEXT)})
    lab = make_lab(srv)
    for stream in (True, False):
        srv.reset()
        df = lab.complete("hi", models=["mal", "b"], cache=False, stream=stream).df
        assert [r.model for r in chat_requests(srv)] == ["mal", "b"]
        assert rows(df, "requested_model", "status", "error_type") == [
            ("mal", "error", "MalformedResponse"), ("b", "ok", None)]


# --- fallback chains ----------------------------------------------------------------------------

def test_fallback_on_final_failure_is_immediate(serve, make_lab):
    srv = serve({"a": ModelSpec(status=503), "b": ModelSpec(status=429, retry_after="5"),
                 "c": ModelSpec(text=TEXT, served_model="c-2024-01-01")})
    lab = make_lab(srv, retry_policy=fast(**SLOW))  # a backoff sleep (or b's 5 s) would show
    t0 = time.monotonic()
    res = lab.complete("hi", models=["a", "b", "c"], cache=False)
    assert time.monotonic() - t0 < AT_ONCE
    assert [r.model for r in chat_requests(srv)] == ["a", "b", "c"]
    assert max(gaps(chat_requests(srv))) < AT_ONCE / 2
    df = res.df
    assert rows(df, "attempt", "requested_model", "status", "error_type") == [
        (1, "a", "error", "InternalServerError"), (2, "b", "error", "RateLimitError"), (3, "c", "ok", None)]
    assert list(df["waited_s"]) == [0.0, 0.0, 0.0]
    assert df["request_id"].nunique() == 1
    answer = df[df["status"] == "ok"].iloc[0]
    assert answer["served_model"] == "c-2024-01-01" and answer["requested_model"] == "c"
    assert answer["attempt"] == 3 and answer["response_text"] == TEXT


def test_last_model_in_chain_is_retried(serve, make_lab):
    srv = serve({"a": ModelSpec(status=500), "b": ModelSpec(text=TEXT, fail_first=2)})
    lab = make_lab(srv)
    df = lab.complete("hi", models=["a", "b"], cache=False).df
    assert [r.model for r in chat_requests(srv)] == ["a", "b", "b", "b"]
    assert rows(df, "attempt", "requested_model", "status") == [
        (1, "a", "error"), (2, "b", "error"), (3, "b", "error"), (4, "b", "ok")]
    assert list(df["waited_s"]) == pytest.approx([0.0, 0.0, *expected_backoffs(2)])


def test_fallback_on_context_length_is_immediate_and_not_retried(serve, make_lab):
    srv = serve({"small": ModelSpec(context_limit=20), "big": ModelSpec(text=TEXT)})
    lab = make_lab(srv, retry_policy=fast(**SLOW))
    prompt = "a long prompt " * 10
    t0 = time.monotonic()
    df = lab.complete(prompt, models=["small", "big"], cache=False).df
    assert time.monotonic() - t0 < AT_ONCE
    assert [(r.model, r.status) for r in chat_requests(srv)] == [("small", 400), ("big", 200)]
    assert rows(df, "attempt", "requested_model", "status", "error_type") == [
        (1, "small", "error", "ContextWindowExceeded"), (2, "big", "ok", None)]
    # As the last model, a context error is final too: no retry.
    srv.reset()
    df = lab.complete(prompt, models=["big", "small"][1:], cache=False).df
    assert len(chat_requests(srv)) == 1 and df["error_type"].tolist() == ["ContextWindowExceeded"]


def test_fallback_on_unknown_model(serve, make_lab):
    srv = serve({"b": ModelSpec(text=TEXT)})
    lab = make_lab(srv)
    df = lab.complete("hi", models=["gone", "b"], cache=False).df
    assert [(r.model, r.status) for r in chat_requests(srv)] == [("gone", 404), ("b", 200)]
    assert rows(df, "requested_model", "status", "error_type") == [
        ("gone", "error", "NotFoundError"), ("b", "ok", None)]
    assert "gone" in df["error_message"].iloc[0]


def test_stream_cut_after_text_keeps_partial_text_and_does_not_fall_back(serve, make_lab):
    srv = serve({"cut": ModelSpec(text=TEXT, truncate_after=2), "b": ModelSpec(text="other")})
    lab = make_lab(srv, retry_policy=fast(retries=1))
    df = lab.complete("hi", models=["cut", "b"], cache=False, stream=True).df
    # The cut is a connection error, retried on the same model; never answered by another model.
    assert [r.model for r in chat_requests(srv)] == ["cut", "cut"]
    assert rows(df, "attempt", "requested_model", "status", "error_type", "response_text") == [
        (1, "cut", "error", "StreamCut", "one two"), (2, "cut", "error", "StreamCut", "one two")]
    assert (df["ttft_s"] > 0).all()


def test_stream_cut_before_first_token_falls_back(serve, make_lab):
    # text="" + truncate_after=0: the connection drops after the role-only chunk, before any token.
    srv = serve({"cut": ModelSpec(text="", truncate_after=0), "b": ModelSpec(text=TEXT)})
    lab = make_lab(srv, retry_policy=fast(**SLOW))
    t0 = time.monotonic()
    df = lab.complete("hi", models=["cut", "b"], cache=False, stream=True).df
    assert time.monotonic() - t0 < AT_ONCE
    assert [r.model for r in chat_requests(srv)] == ["cut", "b"]
    assert list(df["status"]) == ["error", "ok"]
    assert df["error_type"].iloc[0] != "StreamCut" and df["response_text"].iloc[0] == ""
    assert df["served_model"].iloc[1] == "b" and df["response_text"].iloc[1] == TEXT


def test_first_token_timeout_falls_back(serve, make_lab):
    srv = serve({"slow": ModelSpec(text=TEXT, hold_after=0), "b": ModelSpec(text=TEXT)})  # slow never answers
    lab = make_lab(srv)
    t0 = time.monotonic()
    df = lab.complete("hi", models=["slow", "b"], cache=False,
                      timeout={"slow": Timeouts(first_token=0.3)}).df
    assert time.monotonic() - t0 < AT_ONCE
    assert rows(df, "requested_model", "status", "error_type") == [
        ("slow", "error", "FirstTokenTimeout"), ("b", "ok", None)]


# --- timeouts -----------------------------------------------------------------------------------

def test_first_token_timeout(serve, make_lab):
    srv = serve({"slow": ModelSpec(text=TEXT, hold_after=0)})  # headers and role chunk, then nothing
    lab = make_lab(srv, retry_policy=fast(retries=0))
    t0 = time.monotonic()
    df = lab.compare("hi", models=["slow"], cache=False, stream=True,
                     timeout=Timeouts(first_token=0.3)).df
    assert time.monotonic() - t0 < AT_ONCE
    row = df.iloc[0]
    assert row["status"] == "error" and row["error_type"] == "FirstTokenTimeout"
    assert 0.28 <= row["latency_s"] <= 0.3 + SLACK
    assert math.isnan(row["ttft_s"])


def test_first_token_deadline_does_not_limit_gaps_between_tokens(serve, make_lab):
    # A stream whose first token comes at once but whose next one 2.5 s later must not be cut by
    # first_token=1.5 (an HTTP read timeout of first_token would cut it after the first token);
    # 1.5 s leaves the immediate first token room on a loaded machine.
    srv = serve({"gappy": ModelSpec(text="a b", token_delay_s=2.5)})
    lab = make_lab(srv, retry_policy=fast(retries=0))
    df = lab.compare("hi", models=["gappy"], cache=False, stream=True, timeout=Timeouts(first_token=1.5)).df
    assert rows(df, "status", "response_text") == [("ok", "a b")]
    assert df["latency_s"].iloc[0] >= 2.5


def test_first_token_deadline_does_not_apply_to_plain_calls(serve, make_lab):
    srv = serve({"slow": ModelSpec(text=TEXT, delay_s=0.6)})
    lab = make_lab(srv, retry_policy=fast(retries=0))
    df = lab.compare("hi", models=["slow"], cache=False, stream=False, timeout=Timeouts(first_token=0.3)).df
    assert rows(df, "status", "response_text") == [("ok", TEXT)]


def test_first_token_then_total_deadline(serve, make_lab):
    # First tokens in time, then the server holds the stream until the total deadline cuts it:
    # the partial text is kept.
    srv = serve({"m": ModelSpec(text="a b c d e f g h", hold_after=0, hold_at=2)})
    lab = make_lab(srv, retry_policy=fast(retries=0))
    df = lab.compare("hi", models=["m"], cache=False, stream=True,
                     timeout=Timeouts(first_token=1.5, total=2.5)).df
    row = df.iloc[0]
    assert row["error_type"] == "Timeout" and row["status"] == "error"
    assert 2.48 <= row["latency_s"] <= 2.5 + SLACK
    assert row["response_text"] == "a b"


@pytest.mark.parametrize("stream", [True, False])
def test_total_timeout_on_hanging_model(serve, make_lab, stream):
    srv = serve({"hang": ModelSpec(hang_s=60)})
    lab = make_lab(srv, retry_policy=fast(retries=0))
    t0 = time.monotonic()
    df = lab.compare("hi", models=["hang"], cache=False, stream=stream, timeout=0.4).df
    assert time.monotonic() - t0 < AT_ONCE
    row = df.iloc[0]
    assert row["error_type"] == "Timeout"
    assert 0.38 <= row["latency_s"] <= 0.4 + SLACK


def test_per_model_timeouts(serve, make_lab):
    # slow never answers (held); fast takes 0.5 s, longer than slow's 0.2 s deadline, and is ok
    srv = serve({"slow": ModelSpec(text=TEXT, hold_after=0), "fast": ModelSpec(text=TEXT, delay_s=0.5)})
    lab = make_lab(srv, retry_policy=fast(retries=0), timeout={"slow": Timeouts(first_token=0.2)})
    df = lab.compare("hi", models=["slow", "fast"], cache=False).df
    assert rows(df, "requested_model", "status", "error_type") == [
        ("slow", "error", "FirstTokenTimeout"), ("fast", "ok", None)]
    # A per-call '*' applies to every model without its own entry (fast is held now too).
    srv.set_model("fast", ModelSpec(text=TEXT, hold_after=0))
    df = lab.compare("hi", models=["slow", "fast"], cache=False, timeout={"*": 0.3}).df
    assert rows(df, "requested_model", "error_type") == [("slow", "FirstTokenTimeout"), ("fast", "Timeout")]


# --- rate limiter -------------------------------------------------------------------------------

def test_rpm_limiter_is_shared_by_all_calls_of_a_lab(serve, make_lab):
    """rpm=600: 10 requests/s once the initial one-minute budget is spent, across concurrent calls.

    Spending the 600-request initial budget through the endpoint would take longer than the
    refill it causes on a slow machine, so it is drained directly (its semantics are unit-tested
    above); what is checked here is that two concurrent calls of one Lab queue on the same bucket,
    that requests really leave spaced at the server, and that the waits are recorded.
    """
    srv = serve({"m": ModelSpec(text="ok")})
    lab = make_lab(srv, rpm=600)
    lab.compare("warm up", models=["m"], cache=False, stream=False)  # client, token counter
    srv.reset()
    drained = 0
    while lab.limiter.reserve(0) == 0.0:  # the last reservation is in debt by < 1 request
        drained += 1
    t_drained = time.monotonic()
    assert 590 <= drained <= 600
    sweep = lab.submit_sweep(["p0", "p1", "p2"], models=["m"], concurrency=3, progress=False,
                             cache=False, stream=False)
    compare = lab.submit_compare("q", models=["m"], n=3, cache=False, stream=False)
    df = pd.concat([sweep.result(10).df, compare.result(10).df])
    assert (df["status"] == "ok").all() and len(df) == 6
    arrivals = sorted(r.t_mono for r in chat_requests(srv))
    assert len(arrivals) == 6
    for k, t in enumerate(arrivals, start=1):
        assert t - t_drained >= k * 0.1 - 0.02, k  # never faster than the budget
        assert t - t_drained <= (k + 1) * 0.1 + SLACK, k  # and not needlessly slower
    waits = sorted(df["waited_s"])
    for k, wait in enumerate(waits, start=1):
        assert k * 0.1 - 0.02 <= wait <= (k + 1) * 0.1, k


# --- cache, cost per attempt ---------------------------------------------------------------------

def test_failed_attempts_are_never_cached(serve, make_lab):
    srv = serve({"m": ModelSpec(text=TEXT, fail_first=1, fail_status=500)})
    lab = make_lab(srv, retry_policy=fast(retries=0))
    first = lab.compare("hi", models=["m"], cache=True).df
    assert rows(first, "status", "cached") == [("error", False)]
    second = lab.compare("hi", models=["m"], cache=True).df
    assert len(chat_requests(srv, "m")) == 2  # the error was not replayed: the server was called
    assert rows(second, "status", "cached") == [("ok", False)]
    third = lab.compare("hi", models=["m"], cache=True).df
    assert len(chat_requests(srv, "m")) == 2  # now the ok answer is
    assert rows(third, "status", "cached", "response_text") == [("ok", True, TEXT)]
    with sqlite3.connect(lab.store.path) as db:
        cached_status = db.execute("SELECT runs.status FROM cache JOIN runs ON runs.id = cache.row_id").fetchall()
    assert cached_status == [("ok",)]


def test_every_attempt_is_a_row_with_its_cost(serve, make_lab):
    prices = {"m": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}}
    srv = serve({"m": ModelSpec(text=TEXT, fail_first=1, fail_status=429, prompt_tokens=10,
                                completion_tokens=6)})
    lab = make_lab(srv, prices=prices)
    df = lab.compare("hi", models=["m"], cache=False).df
    failed, ok = df.iloc[0], df.iloc[1]
    assert failed["status"] == "error" and math.isnan(failed["cost_usd"])  # no usage for a 429
    assert ok["cost_usd"] == pytest.approx(10e-6 + 12e-6) and ok["cost_source"] == "price_table"
    assert lab.runs()["id"].tolist() == df["id"].tolist()  # every attempt is in the log


# --- the key never leaks -------------------------------------------------------------------------

def test_401_key_fragment_is_redacted_everywhere(serve, make_lab, monkeypatch, capfd, tmp_path):
    key = "sk-proj-QZXWVUTSRQPONMLKJIHGFEDCBAzyxw"
    monkeypatch.setenv("MY_GATEWAY_KEY", key)
    srv = serve({"m": ModelSpec()}, api_key="the-right-key")
    db = tmp_path / "log.sqlite"
    lab = make_lab(srv, api_key_env="MY_GATEWAY_KEY", db=str(db))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = lab.compare("hi", models=["m"], cache=False)
        frame = lab.runs()
        html = res._repr_html_()
        print(res.df.to_string(), res.summary().to_string(), repr(lab))
    assert res.df["error_type"].tolist() == ["AuthenticationError"]
    assert res.df["error_message"].iloc[0]  # a message is kept, only the key is gone
    fragments = [key, key[:8], key[-8:], key[-4:], f"{key[:3]}***"]
    out, err = capfd.readouterr()
    texts = {"frame": frame.to_csv(), "df": res.df.to_csv(), "html": html, "stdout": out, "stderr": err,
             "warnings": " ".join(str(w.message) for w in caught)}
    lab.close()
    for path in Path(db).parent.glob(Path(db).name + "*"):  # the file and its -wal/-shm
        texts[path.name] = path.read_bytes().decode("latin-1")
    for where, text in texts.items():
        for fragment in fragments:
            assert fragment not in text, (where, fragment)
