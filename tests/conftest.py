"""Shared fixtures. Every test runs with a private $LLMLAB_HOME and no endpoint/key variables."""
from __future__ import annotations

import pytest
from fakeserver import FakeServer, ModelSpec

_ISOLATED_VARS = (
    "LLMLAB_BASE_URL", "OPENAI_BASE_URL", "LLMLAB_API_KEY", "OPENAI_API_KEY",
    "LLMLAB_HOME", "LLMLAB_LOCAL_PORT", "LLMLAB_DB", "PGPASSWORD", "PGPASSFILE", "PGHOST", "PGUSER",
)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    for name in _ISOLATED_VARS:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "llmlab-home"
    monkeypatch.setenv("LLMLAB_HOME", str(home))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    monkeypatch.chdir(tmp_path)
    from llmlab.base._redact import forget_all
    from llmlab.base._warnings import SHOWN

    SHOWN.clear()  # "once per model per process" must not leak between tests
    forget_all()  # nor the secrets an earlier test's Lab read
    return home


@pytest.fixture
def serve():
    """serve(models, **kw) -> a started FakeServer, stopped at teardown."""
    servers: list[FakeServer] = []

    def _serve(models: dict[str, ModelSpec], **kw) -> FakeServer:
        srv = FakeServer(models, **kw).start()
        servers.append(srv)
        return srv

    yield _serve
    for srv in servers:
        srv.stop()


# The embedded llama.cpp endpoint, started once per session for the end-to-end tests.
from fixtures_local import _local_session_server, local_server  # noqa: E402,F401

# A real PostgreSQL server (session-scoped) and the db_url fixture parametrised over both backends.
from fixtures_postgres import db_url, pg_url, postgres_server  # noqa: E402,F401
