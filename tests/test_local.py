"""The embedded local endpoint (llmlab.local), `llmlab serve/demo` and the HTML report.

Fast tests check the error paths and helpers without models; ``slow`` ones run the real
bundled models (SmolLM2-135M-Instruct, Gemma 3 270M base, Qwen2.5-Coder-0.5B-Instruct) on CPU
through one session server.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fixtures_local import local_endpoint_available

from llmlab.cli import main as cli_main
from llmlab.local import LocalServerError, bundled_models, model_cache_dir, start
from llmlab.local._server import pid_alive

needs_llama = pytest.mark.skipif(not local_endpoint_available(),
                                 reason='needs the [local] extra (./dev setup)')
PROMPT = "Name three colors."


def _fake_gguf(path: Path, body: bytes = b"\0" * 64) -> Path:
    path.write_bytes(b"GGUF" + body)
    return path


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    return False


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


# ------------------------------------------------------------------------------ fast tests

def test_import_does_not_load_llama_cpp():
    code = "import sys, llmlab.local; print('llama_cpp' in sys.modules, 'llm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_bundled_models_describe_base_and_instruct():
    models = {m.alias: m for m in bundled_models()}
    assert list(models) == ["smollm2-135m", "gemma-3-270m", "qwen2.5-coder-0.5b"]
    assert models["smollm2-135m"].instruct and models["smollm2-135m"].chat_format == "chatml"
    gemma = models["gemma-3-270m"]
    assert not gemma.instruct and "base model" in gemma.description.lower()
    qwen = models["qwen2.5-coder-0.5b"]
    assert qwen.instruct and qwen.chat_format is None   # the GGUF's own ChatML template
    assert "strong" in qwen.description


def test_model_cache_ignores_per_test_home(monkeypatch, tmp_path):
    assert not str(model_cache_dir()).startswith(os.environ["HOME"])  # conftest's tmp HOME
    monkeypatch.setenv("LLMLAB_MODEL_CACHE", str(tmp_path / "cache"))
    assert model_cache_dir() == tmp_path / "cache"


@needs_llama
def test_port_in_use_is_reported(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(LocalServerError, match=f"port {port} .* in use"):
            start(port=port, models=[("m", _fake_gguf(tmp_path / "m.gguf"))])


@needs_llama
def test_missing_model_file(tmp_path):
    with pytest.raises(LocalServerError, match="not found: .*nope.gguf"):
        start(models=[("mine", tmp_path / "nope.gguf")])


@needs_llama
def test_corrupt_model_file(tmp_path):
    bad = tmp_path / "random.gguf"
    bad.write_bytes(os.urandom(4096))
    with pytest.raises(LocalServerError, match="'junk' is not a GGUF file"):
        start(models=[("junk", bad)])


def test_llama_cpp_missing_names_the_fix():
    code = textwrap.dedent("""
        import sys
        sys.modules['llama_cpp'] = None
        from llmlab.local import start, LocalServerError
        try:
            start(models=[])
        except LocalServerError as exc:
            print(exc)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "not installed" in out.stdout
    assert 'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install -e ".[local]"' in out.stdout


@needs_llama
def test_server_dying_on_load_shows_log_tail(tmp_path):
    # Right magic bytes, garbage after: passes the pre-check, llama.cpp rejects it on load.
    broken = _fake_gguf(tmp_path / "broken.gguf", os.urandom(2048))
    with pytest.raises(LocalServerError) as info:
        start(models=[("broken", broken)], timeout=60)
    message = str(info.value)
    assert message.startswith("cannot load model 'broken'")
    assert "last lines of the server log:" in message and "llmlab-child: error:" in message
    assert not _processes_mentioning(str(broken))


def test_guard_answers_models_and_rejects_unknown_names():
    from llmlab.local._child import _guard

    seen = []

    async def inner(scope, receive, send):  # stands in for llama-cpp-python's app
        seen.append((await receive())["body"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = _guard(inner, ["a", "b"])

    async def call(method, path, body=b""):
        sent = []

        async def receive():
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message):
            sent.append(message)

        await app({"type": "http", "method": method, "path": path}, receive, send)
        return sent[0]["status"], sent[1]["body"]

    status, body = asyncio.run(call("GET", "/v1/models"))
    assert status == 200 and [m["id"] for m in json.loads(body)["data"]] == ["a", "b"]
    status, body = asyncio.run(call("POST", "/v1/chat/completions", b'{"model": "gpt-4o"}'))
    assert status == 404 and json.loads(body)["error"]["code"] == "model_not_found"
    status, _ = asyncio.run(call("POST", "/v1/chat/completions", b'{"model": "b"}'))
    assert status == 200 and seen == [b'{"model": "b"}']  # body replayed to the server


def test_cli_errors_are_one_line(capsys):
    assert cli_main(["demo", "--models", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("llmlab: error: unknown demo model(s) nope") and err.count("\n") == 1
    assert cli_main(["serve", "--model", "a.gguf", "--model", "b.gguf", "--alias", "x"]) == 2
    assert "one --alias per --model" in capsys.readouterr().err


def test_cli_bad_output_folder_is_one_line(capsys, tmp_path):
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x")
    assert cli_main(["demo", "--out", str(a_file / "sub"), "--n-prompts", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("llmlab: error:") and "Traceback" not in err


def test_stale_record_is_not_reused(tmp_path):
    from llmlab.local._ensure import _reusable

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert _reusable({"pid": dead.pid, "port": 1}) is None
    assert _reusable({"pid": "x"}) is None and _reusable(None) is None


def test_a_server_process_already_reaped_is_never_signalled(monkeypatch):
    """Once poll() has reaped the child, its pid (and process group id) may be handed to another
    process: stopping must not send that one SIGTERM (it could be another session's server)."""
    from llmlab.local import _server

    sent = []
    monkeypatch.setattr(_server.os, "killpg", lambda pid, sig: sent.append((pid, sig)))
    done = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    done.wait()
    _server._terminate_group(done.pid, done)
    assert sent == []
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    monkeypatch.setattr(_server.os, "killpg", lambda pid, sig: (sent.append((pid, sig)), os.kill(pid, sig)))
    _server._terminate_group(alive.pid, alive)
    assert sent == [(alive.pid, signal.SIGTERM)] and alive.returncode == -signal.SIGTERM


# ------------------------------------------------------------------------------ slow tests

@pytest.mark.slow
def test_both_models_answer_through_the_openai_sdk(local_server):
    import openai

    client = openai.OpenAI(base_url=local_server.base_url, api_key="unused")
    messages = [{"role": "user", "content": PROMPT}]
    for model in ("smollm2-135m", "gemma-3-270m", "qwen2.5-coder-0.5b"):
        reply = client.chat.completions.create(model=model, messages=messages, max_tokens=12,
                                               temperature=0)
        assert reply.model == model and reply.choices[0].message.content.strip()
        assert reply.usage.completion_tokens > 0
        chunks = list(client.chat.completions.create(
            model=model, messages=messages, max_tokens=12, temperature=0, stream=True,
            stream_options={"include_usage": True}))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()
        assert all(c.usage is None for c in chunks)  # the server never reports streamed usage
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-4o", messages=messages, max_tokens=4)


@pytest.mark.slow
def test_lab_records_streamed_calls_and_queues_concurrent_ones(local_server, tmp_path):
    from llmlab import Lab

    with Lab(base_url=local_server.base_url, db=tmp_path / "runs.sqlite") as lab:
        df = lab.compare(PROMPT, models=local_server.models, max_tokens=12, temperature=0).df
        assert list(df["served_model"]) == local_server.models
        assert (df["status"] == "ok").all() and df["tokens_estimated"].all()
        assert df["ttft_s"].notna().all() and (df["ttft_s"] <= df["latency_s"]).all()
        assert (df["cost_usd"] == 0).all()
        prompts = [f"Count from 1 to {n}." for n in range(3, 7)]
        runs = lab.sweep(prompts, models=["smollm2-135m"], max_tokens=12, temperature=0,
                         concurrency=4, progress=False, cache=False).df
    assert (runs["status"] == "ok").all() and runs["response_text"].str.strip().astype(bool).all()
    # One request at a time: with 4 in flight, the slowest waited for the others.
    assert runs["latency_s"].max() > 2 * runs["latency_s"].min()


@pytest.mark.slow
def test_ensure_running_records_reuses_and_stops_cleanly(capsys, tmp_path):
    from llmlab import Lab
    from llmlab.local import ensure_running
    from llmlab.local._ensure import record_path

    server = ensure_running()
    scratch = str(server._workdir)  # on the server's command line
    try:
        assert record_path().is_file() and server.owned
        assert json.loads(record_path().read_text())["pid"] == server.pid
        again = ensure_running()
        assert again.pid == server.pid and not again.owned
        with Lab(db=tmp_path / "runs.sqlite") as lab:  # no endpoint configured → the same server
            assert lab.base_url == server.base_url
        err = capsys.readouterr().err
        assert err.count("using the embedded local endpoint at " + server.base_url) == 1
        again.stop()  # a reused server is not stopped by its borrower
        assert pid_alive(server.pid)
    finally:
        server.stop()
    assert _wait_gone(server.pid, 30) and not record_path().exists()
    assert not _processes_mentioning(scratch) and not Path(scratch).exists()


@pytest.mark.slow
def test_server_dies_with_its_parent(tmp_path):
    script = textwrap.dedent("""
        import time
        from llmlab.local import start
        server = start(models=["smollm2-135m"], quiet=True)
        print(server.pid, flush=True)
        time.sleep(120)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        child_pid = int(parent.stdout.readline())
        assert pid_alive(child_pid)
    finally:
        parent.kill()  # SIGKILL: no atexit, no cleanup in the parent
        parent.wait()
    # the watchdog polls every 0.5 s; the bound is for a loaded machine, not the watchdog's speed
    assert _wait_gone(child_pid, 60), "server outlived its parent"


@pytest.mark.slow
def test_demo_writes_report_and_stops_its_server(tmp_path, capsys):
    ours = f"--parent-pid {os.getpid()} "
    before = set(_processes_mentioning(ours))
    out = tmp_path / "demo"
    assert cli_main(["demo", "--out", str(out), "--n-prompts", "2", "--max-tokens", "8",
                     "--decision-prompts", "12"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"summary.csv", "runs.csv", "report.html", "latency.png"} <= names
    import pandas as pd

    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 6 and (runs["status"] == "ok").all()   # 2 prompts × 3 bundled models
    page = (out / "report.html").read_text()
    assert "data:image/png;base64," in page and "gemma-3-270m" in page
    # free local models: a what-if price note instead of two empty $0 cost charts
    assert "what-if" in page and not (out / "cost.png").exists()
    printed = capsys.readouterr().out
    assert "smollm2-135m" in printed and "who should answer what" in printed
    # the decision: per task, a model; the policy to use; what-if prices named
    assert "Who should answer what" in page and "Per task" in page and "priced as a hosted one" in page
    assert set(_processes_mentioning(ours)) <= before  # the demo's own server is gone


def _token_count(server, model: str, text: str) -> int:
    import urllib.request

    request = urllib.request.Request(
        server.base_url.removesuffix("/v1") + "/extras/tokenize",
        data=json.dumps({"input": text, "model": model}).encode(),
        headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return len(json.loads(response.read())["tokens"])


@pytest.mark.slow
def test_qwen_prompt_is_rendered_with_its_chatml_template(local_server):
    """The server's raw prompt, checked by its token count (special tokens count one each)."""
    import openai

    model = "qwen2.5-coder-0.5b"
    client = openai.OpenAI(base_url=local_server.base_url, api_key="unused")
    default_system = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    question = "What is 17 + 25? Answer with the number only."
    cases = [([{"role": "system", "content": "Be terse."}, {"role": "user", "content": question}],
              "Be terse."),
             ([{"role": "user", "content": question}], default_system)]
    for messages, system in cases:
        reply = client.chat.completions.create(model=model, messages=messages, max_tokens=8,
                                               temperature=0)
        raw = (f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n"
               "<|im_start|>assistant\n")
        empty_system = raw.replace(system, "")            # llama-cpp-python's own "chatml"
        no_system = raw[raw.index("<|im_start|>user"):]
        assert reply.usage.prompt_tokens == _token_count(local_server, model, raw)
        assert reply.usage.prompt_tokens not in {_token_count(local_server, model, t)
                                                 for t in (empty_system, no_system)}
        answer = reply.choices[0].message.content
        assert answer.strip().rstrip(".") == "42" and "<|im" not in answer
        assert reply.choices[0].finish_reason == "stop"   # stopped at <|im_end|>, not the limit


@pytest.mark.slow
def test_qwen_is_clearly_stronger_on_the_graded_set(local_server, tmp_path):
    """A real quality gap between the weak and strong bundled models; bench/bench_local_quality.py
    measures all three on more prompts (gemma, a rambling base model, is left to it: slow here)."""
    from llmlab import Lab, datasets, scoring

    prompts = datasets.load("graded").head(12)          # every task × difficulty once
    models = ["smollm2-135m", "qwen2.5-coder-0.5b"]
    with Lab(base_url=local_server.base_url, db=tmp_path / "runs.sqlite", quiet=True) as lab:
        res = lab.sweep(prompts, models=models, max_tokens=16, temperature=0, concurrency=1,
                        progress=False)
    runs = scoring.auto(res.df, checkers=prompts)
    accuracy = runs.groupby("requested_model")["score"].mean()
    assert (runs["status"] == "ok").all()
    assert accuracy["qwen2.5-coder-0.5b"] >= 0.5, accuracy
    assert accuracy["qwen2.5-coder-0.5b"] >= accuracy["smollm2-135m"] + 0.25, accuracy
