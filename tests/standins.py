"""Stand-ins for parts the quick tests must not start (shared by the test files)."""
from __future__ import annotations

from llmlab.base._config import LocalURL


class EmbeddedStandIn:
    """What ``llmlab.local.start()`` returns, pointing at a test server instead of llama.cpp:
    front ends that start the embedded endpoint (the demo) run end to end without real models."""

    def __init__(self, srv):
        self.base_url, self.models = LocalURL(srv.base_url), []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass
