"""The fake OpenAI-compatible server, driven through the real ``openai`` SDK over HTTP."""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
from fakeserver import FakeServer, ModelSpec, split_chunks, start_subprocess, stop_subprocess, wait_for
from openai import OpenAI

MSG = [{"role": "user", "content": "say something nice"}]  # 3 words


def client(srv: FakeServer, **kw) -> OpenAI:
    return OpenAI(base_url=srv.base_url, api_key=kw.pop("api_key", "test"), max_retries=kw.pop("max_retries", 0), **kw)


def stream_chunks(cli: OpenAI, model: str, **kw) -> list:
    return list(cli.chat.completions.create(model=model, messages=MSG, stream=True, **kw))


def content_of(chunks: list) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.mark.parametrize("text", ["hello world", "  lead and trail  ", "one", "", "a\nb\tc  d", "   "])
@pytest.mark.parametrize("n", [1, 2, 5])
def test_split_chunks_concatenates_back(text, n):
    chunks = split_chunks(text, n)
    assert "".join(chunks) == text
    assert all(chunks)


def test_plain_answer_usage_and_request_log(serve):
    srv = serve({"fast": ModelSpec(text="hello brave new world")})
    resp = client(srv).chat.completions.create(model="fast", messages=MSG)
    assert resp.object == "chat.completion" and resp.model == "fast"
    assert resp.choices[0].message.content == "hello brave new world"
    assert resp.choices[0].finish_reason == "stop"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens) == (3, 4, 7)
    [log] = srv.requests
    assert (log.method, log.path, log.model, log.status, log.stream) == \
        ("POST", "/v1/chat/completions", "fast", 200, False)
    assert log.body["messages"] == MSG
    assert "authorization" not in log.headers and log.headers["x-stainless-retry-count"] == "0"
    assert abs(log.t_wall - time.time()) < 5 and log.t_mono <= time.monotonic()


def test_answers_per_prompt(serve):
    srv = serve({"knows": ModelSpec(text="no idea", answers_by_prompt={"What is 2+2?": "4"})})
    ask = lambda text: client(srv).chat.completions.create(  # noqa: E731
        model="knows", messages=[{"role": "system", "content": "What is 2+2?"}, {"role": "user", "content": text}])
    assert ask("What is 2+2?").choices[0].message.content == "4"
    assert ask("What is 3+3?").choices[0].message.content == "no idea"   # unknown prompt: ``text``


def test_explicit_token_counts_and_usage_off(serve):
    srv = serve({"m": ModelSpec(prompt_tokens=11, completion_tokens=22), "nousage": ModelSpec(usage=False)})
    cli = client(srv)
    usage = cli.chat.completions.create(model="m", messages=MSG).usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (11, 22, 33)
    assert cli.chat.completions.create(model="nousage", messages=MSG).usage is None
    chunks = stream_chunks(cli, "nousage", stream_options={"include_usage": True})
    assert all(c.choices for c in chunks)


def test_stream_role_chunk_first_content_and_usage_only_when_asked(serve):
    text = "The quick brown fox jumps over the lazy dog."
    srv = serve({"m": ModelSpec(text=text)})
    cli = client(srv)

    plain = stream_chunks(cli, "m")
    assert plain[0].choices[0].delta.role == "assistant" and plain[0].choices[0].delta.content == ""
    assert plain[0].object == "chat.completion.chunk" and plain[0].model == "m"
    assert content_of(plain) == text
    assert len([c for c in plain if c.choices and c.choices[0].delta.content]) == 9
    assert all(c.choices for c in plain), "no usage chunk without include_usage"
    assert plain[-1].choices[0].finish_reason == "stop"
    assert len({c.id for c in plain}) == 1

    with_usage = stream_chunks(cli, "m", stream_options={"include_usage": True})
    assert content_of(with_usage) == text
    last = with_usage[-1]
    assert last.choices == [] and (last.usage.prompt_tokens, last.usage.completion_tokens) == (3, 9)
    assert with_usage[-2].choices[0].finish_reason == "stop"
    assert [r.stream for r in srv.requests] == [True, True]


def test_chunk_words_and_max_tokens_truncate_with_length(serve):
    srv = serve({"m": ModelSpec(text="one two three four five six", chunk_words=2)})
    cli = client(srv)
    chunks = stream_chunks(cli, "m", max_tokens=2, stream_options={"include_usage": True})
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert pieces == ["one two", " three four"]
    assert chunks[-2].choices[0].finish_reason == "length" and chunks[-1].usage.completion_tokens == 2
    resp = cli.chat.completions.create(model="m", messages=MSG, max_completion_tokens=1)
    assert (resp.choices[0].message.content, resp.choices[0].finish_reason) == ("one two", "length")
    resp = cli.chat.completions.create(model="m", messages=MSG, max_tokens=3)
    assert (resp.choices[0].message.content, resp.choices[0].finish_reason) == ("one two three four five six", "stop")


LATE = 1.0  # how much later than scripted a client may see an event on a loaded 2-core machine
# (measured at load 9-14: up to 0.36 s for a first token, 0.22 s for a whole plain answer, and
# 0.1 s for a first byte; event loops stalled up to 1.2 s once in 40 backoff waits)


def test_delay_sets_ttft_while_first_byte_is_immediate(serve):
    # "The first byte comes at once" is shown without the clock: the stream is held where the delay
    # would begin (hold_at=0), and the role chunk is already in. From the release, scheduled times
    # are lower bounds (the server never sends early); how much later the client sees them is the
    # machine's load, so the upper bounds allow LATE.
    delay, gap = 1.0, 0.05
    srv = serve({"held": ModelSpec(text="a b c d", delay_s=delay, token_delay_s=gap, hold_after=0),
                 "slow": ModelSpec(text="a b c d", delay_s=delay, token_delay_s=gap)})
    cli = client(srv)
    cli.models.list()  # warm the connection so the measurement is the server's timing
    times: list[tuple[float, str | None]] = []
    first = threading.Event()

    def read() -> None:
        for chunk in cli.chat.completions.create(model="held", messages=MSG, stream=True):
            times.append((time.monotonic(), chunk.choices[0].delta.content if chunk.choices else None))
            first.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    srv.wait_held("held", 1, timeout=60)
    assert first.wait(60) and len(times) == 1 and not times[0][1]  # the role chunk, no token yet
    t0 = time.monotonic()
    srv.release("held")
    reader.join(60)
    ttft = next(t for t, text in times if text) - t0
    last = [t for t, text in times if text][-1] - t0
    assert delay - 0.005 <= ttft <= delay + LATE, ttft
    assert delay + 3 * gap - 0.005 <= last <= delay + 3 * gap + LATE, last

    t0 = time.monotonic()
    cli.chat.completions.create(model="slow", messages=MSG)
    assert delay + 3 * gap - 0.005 <= time.monotonic() - t0 <= delay + 3 * gap + LATE


def test_served_model_and_reported_costs(serve):
    srv = serve({"alias": ModelSpec(served_model="vendor/model-2024", reported_cost=0.0123, cost_header=0.5)})
    cli = client(srv)
    resp = cli.chat.completions.create(model="alias", messages=MSG)
    assert resp.model == "vendor/model-2024"
    assert resp.usage.model_extra["cost"] == 0.0123 and resp.usage.cost == 0.0123

    raw = cli.chat.completions.with_raw_response.create(model="alias", messages=MSG)
    assert float(raw.headers["x-litellm-response-cost"]) == 0.5
    assert raw.parse().model == "vendor/model-2024"

    raw = cli.chat.completions.with_raw_response.create(
        model="alias", messages=MSG, stream=True, stream_options={"include_usage": True})
    assert raw.headers["x-litellm-response-cost"] == "0.5"
    chunks = list(raw.parse())
    assert {c.model for c in chunks} == {"vendor/model-2024"}
    assert chunks[-1].usage.model_extra["cost"] == 0.0123
    assert [r.model for r in srv.requests] == ["alias"] * 3  # the log keeps the requested name


def test_reasoning_then_content_and_tool_calls(serve):
    srv = serve({
        "thinker": ModelSpec(text="42", reasoning="let me think"),
        "tools": ModelSpec(tool_call={"name": "get_weather", "arguments": '{"city": "Paris"}'}),
    })
    cli = client(srv)
    chunks = stream_chunks(cli, "thinker", stream_options={"include_usage": True})
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    reasoning = [d.model_extra.get("reasoning_content") for d in deltas]
    assert "".join(r for r in reasoning if r) == "let me think"
    assert reasoning.index(" think") < [d.content for d in deltas].index("42")
    usage = chunks[-1].usage
    assert usage.completion_tokens == 4 and usage.completion_tokens_details.reasoning_tokens == 3

    chunks = stream_chunks(cli, "tools")
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].function.name == "get_weather" and calls[0].id.startswith("call_")
    assert "".join(tc.function.arguments or "" for tc in calls) == '{"city": "Paris"}'
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    msg = cli.chat.completions.create(model="tools", messages=MSG).choices[0].message
    assert msg.content is None and msg.tool_calls[0].function.name == "get_weather"
    assert json.loads(msg.tool_calls[0].function.arguments) == {"city": "Paris"}


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning", "openrouter", "both"])
def test_the_sdks_own_stream_accumulator_reads_parallel_tool_calls_and_reasoning(serve, field):
    # client.chat.completions.stream() is the SDK's strictest reader: a repeated id/name would be
    # doubled, an explicit null type trips an assertion, an unindexed list entry raises.
    calls = [{"name": "get_weather", "arguments": '{"city": "Paris"}'}, {"name": "get_time", "arguments": "{}"}]
    srv = serve({"tools": ModelSpec(tool_calls=calls, reasoning="look it up", reasoning_field=field,
                                    cached_tokens=2, prompt_tokens=5)})
    with client(srv).chat.completions.stream(model="tools", messages=MSG,
                                              stream_options={"include_usage": True}) as stream:
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert [(c.id[:9], c.function.name, c.function.arguments) for c in message.tool_calls] == [
        ("call_fake", "get_weather", '{"city": "Paris"}'), ("call_fake", "get_time", "{}")]
    assert final.choices[0].finish_reason == "tool_calls" and message.content is None
    extra = {name: getattr(message, name, None) for name in ("reasoning_content", "reasoning")}
    assert "look it up" in extra.values()
    if field == "openrouter":
        assert [d["text"] for d in message.reasoning_details] == ["look it up"]
    assert final.usage.prompt_tokens_details.cached_tokens == 2
    assert final.usage.completion_tokens_details.reasoning_tokens == 3


def test_fail_first_with_retry_after_then_success_and_reset(serve):
    srv = serve({"flaky": ModelSpec(fail_first=2, fail_status=503, retry_after="7")})
    cli = client(srv)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as err:
            cli.chat.completions.create(model="flaky", messages=MSG)
        assert err.value.status_code == 503 and err.value.response.headers["retry-after"] == "7"
        assert err.value.body["type"] == "server_error"
    assert cli.chat.completions.create(model="flaky", messages=MSG).choices[0].message.content
    assert [r.status for r in srv.requests_for("flaky")] == [503, 503, 200]

    srv.reset()
    assert srv.requests == []
    with pytest.raises(openai.InternalServerError):
        cli.chat.completions.create(model="flaky", messages=MSG)


def test_sdk_retries_honour_retry_after(serve):
    # Retry-After 1 s against the SDK's own first backoff of at most 0.5 s: the gap's lower bound
    # tells them apart, whatever the load.
    srv = serve({"flaky": ModelSpec(fail_first=1, fail_status=429, retry_after="1")})
    resp = client(srv, max_retries=2).chat.completions.create(model="flaky", messages=MSG)
    assert resp.choices[0].finish_reason == "stop"
    logs = srv.requests_for("flaky")
    assert [r.status for r in logs] == [429, 200]
    assert [r.headers["x-stainless-retry-count"] for r in logs] == ["0", "1"]
    assert logs[1].t_mono - logs[0].t_mono >= 0.99


def test_always_status_and_error_rate_is_deterministic(serve):
    srv = serve({"down": ModelSpec(status=429), "noisy": ModelSpec(error_rate=0.5, seed=3)})
    cli = client(srv)
    with pytest.raises(openai.RateLimitError) as err:
        cli.chat.completions.create(model="down", messages=MSG)
    assert err.value.code == "rate_limit_exceeded"

    def run() -> list[int]:
        out = []
        for _ in range(12):
            try:
                cli.chat.completions.create(model="noisy", messages=MSG)
                out.append(200)
            except openai.APIStatusError as e:
                out.append(e.status_code)
        return out

    first = run()
    assert {200, 429, 503} == set(first)
    srv.reset()
    assert run() == first


def test_unknown_model_is_404(serve):
    srv = serve({"m": ModelSpec()})
    with pytest.raises(openai.NotFoundError) as err:
        client(srv).chat.completions.create(model="nope", messages=MSG)
    assert "The model `nope` does not exist or you do not have access to it." in str(err.value)
    assert err.value.code == "model_not_found" and err.value.type == "invalid_request_error"
    assert srv.requests[0].status == 404


def test_wrong_api_key_is_401_echoing_a_fragment(serve):
    srv = serve({"m": ModelSpec()}, api_key="sk-right-key-1234")
    with pytest.raises(openai.AuthenticationError) as err:
        client(srv, api_key="sk-wrong-key-9876").chat.completions.create(model="m", messages=MSG)
    assert err.value.message.endswith("Incorrect API key provided: sk-***9876.")
    assert err.value.code == "invalid_api_key"
    assert client(srv, api_key="sk-right-key-1234").chat.completions.create(model="m", messages=MSG)
    assert [r.status for r in srv.requests] == [401, 200]
    assert all("authorization" not in r.headers for r in srv.requests)
    assert "sk-" not in repr(srv.requests)


def test_truncate_after_cuts_the_connection(serve):
    """The SDK raises APIConnectionError (cause: httpx2.RemoteProtocolError) on a cut body."""
    srv = serve({"cut": ModelSpec(text="a b c d e f", truncate_after=3)})
    cli = client(srv)
    got = []
    with pytest.raises(openai.APIConnectionError) as err:
        for chunk in cli.chat.completions.create(model="cut", messages=MSG, stream=True):
            got.append(chunk.choices[0].delta.content)
    assert "incomplete chunked read" in str(err.value.__cause__)
    assert got == ["", "a", " b", " c"]
    with pytest.raises(openai.APIConnectionError):
        cli.chat.completions.create(model="cut", messages=MSG)
    assert [r.status for r in srv.requests] == [200, 200]


def test_malformed_bodies_raise_json_errors(serve):
    """The SDK lets json.JSONDecodeError (a ValueError) escape, both plain and streamed."""
    srv = serve({"bad": ModelSpec(malformed=True)})
    cli = client(srv)
    with pytest.raises(json.JSONDecodeError):
        cli.chat.completions.create(model="bad", messages=MSG)
    stream = cli.chat.completions.create(model="bad", messages=MSG, stream=True)
    assert next(stream).choices[0].delta.role == "assistant"
    with pytest.raises(json.JSONDecodeError):
        next(stream)


def test_context_limit_is_400_context_length_exceeded(serve):
    srv = serve({"small": ModelSpec(context_limit=20)})
    cli = client(srv)
    assert cli.chat.completions.create(model="small", messages=MSG)  # 18 characters
    with pytest.raises(openai.BadRequestError) as err:
        cli.chat.completions.create(model="small", messages=MSG + [{"role": "user", "content": "more"}])
    assert err.value.code == "context_length_exceeded"
    assert "maximum context length is 20" in err.value.message


def test_body_that_is_not_json_is_400(serve):
    srv = serve({"m": ModelSpec()})
    req = urllib.request.Request(srv.base_url + "/chat/completions", data=b"{nope", method="POST",
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=5)
    assert err.value.code == 400 and json.loads(err.value.read())["error"]["type"] == "invalid_request_error"
    assert srv.requests[0].body is None and srv.requests[0].status == 400


def test_models_list_and_set_model(serve):
    srv = serve({"a": ModelSpec(), "b": ModelSpec()})
    cli = client(srv)
    models = cli.models.list().data
    assert [m.id for m in models] == ["a", "b"] and {m.owned_by for m in models} == {"fakeserver"}
    srv.set_model("c", ModelSpec(text="new"))
    assert [m.id for m in cli.models.list().data] == ["a", "b", "c"]
    assert cli.chat.completions.create(model="c", messages=MSG).choices[0].message.content == "new"
    assert [(r.method, r.path, r.model) for r in srv.requests][0] == ("GET", "/v1/models", None)


def test_hang_sends_nothing_blocks_nobody_and_ends_on_stop(serve):
    srv = serve({"hang": ModelSpec(hang_s=30), "ok": ModelSpec()})
    cli = client(srv)
    t0 = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        cli.chat.completions.create(model="hang", messages=MSG, timeout=0.2)
    assert time.monotonic() - t0 < 10  # the client's 0.2 s, not the 30 s hang

    outcome = []
    other = client(srv)

    def hang_forever():
        try:
            other.chat.completions.create(model="hang", messages=MSG)
        except openai.APIConnectionError as e:
            outcome.append(type(e).__name__)

    thread = threading.Thread(target=hang_forever)
    thread.start()
    wait_for(lambda: len(srv.requests_for("hang")) == 2)  # it hangs in the server, not before it
    assert cli.chat.completions.create(model="ok", messages=MSG).choices[0].message.content
    srv.stop()
    thread.join(30)
    assert not thread.is_alive() and outcome == ["APIConnectionError"]
    assert [r.status for r in srv.requests_for("hang")] == [None, None]


def test_64_concurrent_streams_overlap(serve):
    # All 64 held by the server at one moment: they overlap (no queue in front of the handler),
    # shown without timing them.
    srv = serve({"slow": ModelSpec(text="x y z", hold_after=0)})
    cli = client(srv)

    def one(_):
        return content_of(stream_chunks(cli, "slow"))

    with ThreadPoolExecutor(64) as pool:
        futures = [pool.submit(one, i) for i in range(64)]
        srv.wait_held("slow", 64, timeout=120)
        srv.release("slow")
        answers = [f.result(timeout=120) for f in futures]
    assert answers == ["x y z"] * 64
    assert len(srv.requests) == 64 and {r.status for r in srv.requests} == {200}


def test_subprocess_mode(tmp_path):
    proc, base_url = start_subprocess({"m": {"text": "from afar", "error_statuses": [429]}})
    try:
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        cli = OpenAI(base_url=base_url, api_key="test", max_retries=0)
        assert content_of(list(cli.chat.completions.create(model="m", messages=MSG, stream=True))) == "from afar"
        with urllib.request.urlopen(base_url.removesuffix("/v1") + "/_fakeserver/requests", timeout=5) as r:
            log = json.load(r)
        assert [(e["model"], e["status"], e["stream"]) for e in log] == [("m", 200, True)]
    finally:
        stop_subprocess(proc)
    assert proc.returncode == 0


# --- gates: a hold the test releases, not a delay -----------------------------------------------

class Streamer(threading.Thread):
    """One streamed call in the background: ``first`` is set once the role chunk is in."""

    def __init__(self, cli: OpenAI, model: str) -> None:
        super().__init__(daemon=True)
        self.cli, self.model = cli, model
        self.first = threading.Event()
        self.pieces: list[str | None] = []
        self.error: Exception | None = None
        self.start()

    def run(self) -> None:
        try:
            for chunk in self.cli.chat.completions.create(model=self.model, messages=MSG, stream=True):
                self.pieces.append(chunk.choices[0].delta.content if chunk.choices else None)
                self.first.set()
        except Exception as exc:  # noqa: BLE001 - asserted by the test
            self.error = exc

    def content(self) -> list[str]:
        return [p for p in self.pieces if p]


def test_gate_holds_answers_after_the_first_n_until_released(serve):
    srv = serve({"m": ModelSpec(text="a b c", hold_after=1), "free": ModelSpec(text="free")})
    cli = client(srv)
    assert content_of(stream_chunks(cli, "m")) == "a b c"  # the first one is not held
    streams = [Streamer(cli, "m") for _ in range(3)]
    srv.wait_held("m", 3, timeout=30)
    for s in streams:
        assert s.first.wait(30)  # headers and the role chunk came at once (TTFB), no token yet
    assert [s.content() for s in streams] == [[], [], []] and srv.held("m") == 3
    assert cli.chat.completions.create(model="free", messages=MSG).choices[0].message.content == "free"
    srv.release("m", 1)
    wait_for(lambda: sum(not s.is_alive() for s in streams) == 1)
    assert srv.held("m") == 2
    srv.release("m")  # all, and the gate stays open
    for s in streams:
        s.join(30)
    assert [(s.error, "".join(s.content())) for s in streams] == [(None, "a b c")] * 3
    assert content_of(stream_chunks(cli, "m")) == "a b c" and srv.held("m") == 0


def test_hold_at_sends_that_many_chunks_first_and_plain_answers_send_nothing(serve):
    srv = serve({"m": ModelSpec(text="one two three four", hold_after=0, hold_at=2)})
    cli = client(srv)
    stream = Streamer(cli, "m")
    srv.wait_held("m", 1)
    wait_for(lambda: len(stream.content()) == 2)
    assert stream.content() == ["one", " two"] and stream.is_alive()
    srv.release("m", 1)
    stream.join(30)
    assert "".join(stream.content()) == "one two three four"
    with pytest.raises(openai.APITimeoutError):  # a held plain answer: not a byte
        cli.chat.completions.create(model="m", messages=MSG, timeout=0.3)
    wait_for(lambda: srv.held("m") == 0)  # it left the queue when its client hung up
    srv.release("m", 1)  # nobody held: counts ahead, the next one passes at once
    assert cli.chat.completions.create(model="m", messages=MSG).choices[0].message.content == "one two three four"


def test_held_requests_end_when_their_client_goes_or_at_once_on_stop(serve):
    srv = serve({"m": ModelSpec(hold_after=0)})
    cli = client(srv)
    with pytest.raises(openai.APITimeoutError):
        cli.chat.completions.create(model="m", messages=MSG, timeout=0.3)
    wait_for(lambda: srv.held("m") == 0)  # the client hung up: nothing is left holding
    streams = [Streamer(client(srv), "m") for _ in range(2)]
    srv.wait_held("m", 2)
    t0 = time.monotonic()
    srv.stop()
    for s in streams:
        s.join(30)
    assert time.monotonic() - t0 < 5 and srv.held("m") == 0  # not a 50 ms poll per request
    assert [type(s.error).__name__ for s in streams] == ["APIConnectionError"] * 2


def test_set_model_and_reset_let_go_of_requests_held_by_the_old_gate(serve):
    srv = serve({"m": ModelSpec(text="old", hold_after=0)})
    cli = client(srv)
    held = Streamer(cli, "m")
    srv.wait_held("m", 1)
    srv.set_model("m", ModelSpec(text="new"))
    held.join(30)
    assert "".join(held.content()) == "old"  # answers as it was scripted when it arrived
    srv.set_model("m", ModelSpec(text="again", hold_after=0))
    held = Streamer(cli, "m")
    srv.wait_held("m", 1)
    srv.reset()
    held.join(30)
    assert "".join(held.content()) == "again" and srv.held("m") == 0
    with pytest.raises(AssertionError, match="0 request"):
        srv.wait_held("m", 1, timeout=0.2)


def test_gates_in_subprocess_mode():
    from fakeserver import Remote

    proc, base_url = start_subprocess({"m": {"text": "far away", "hold_after": 1}})
    try:
        remote, cli = Remote(base_url), OpenAI(base_url=base_url, api_key="test", max_retries=0)
        assert cli.chat.completions.create(model="m", messages=MSG).choices[0].message.content == "far away"
        stream = Streamer(cli, "m")
        remote.wait_held("m", 1, timeout=30)
        assert remote.held("m") == 1 and stream.first.wait(30) and stream.content() == []
        with pytest.raises(AssertionError, match="1 request"):
            remote.wait_held("m", 2, timeout=0.2)
        remote.release("m")
        stream.join(30)
        assert "".join(stream.content()) == "far away" and remote.held("m") == 0
        assert [e["path"] for e in remote.requests] == ["/v1/chat/completions"] * 2  # admin calls unlogged
    finally:
        stop_subprocess(proc)
