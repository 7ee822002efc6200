"""Shared fixtures. Every test runs with a private $LLMLAB_HOME and no endpoint/key variables."""
from __future__ import annotations

from pathlib import Path

import pytest
from fakeserver import FakeServer, ModelSpec

_TESTS = Path(__file__).resolve().parent
_quick_subset: list[int] = []  # the `-m "not slow" tests` count, when this session collected all of tests/

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


def _collects_all_of_tests(config: pytest.Config) -> bool:
    """Whether this session collected every test file under tests/, exactly as
    `pytest --collect-only -m "not slow" tests` does: the folder itself is an argument and nothing
    skips files at collection (-k, -m and --deselect act later, after the hook below counts)."""
    folder = any(Path(arg.split("::")[0]).resolve() == _TESTS for arg in config.args)
    skipping = (config.getoption("ignore", None) or config.getoption("ignore_glob", None)
                or config.getoption("lf", False) or config.getoption("stepwise", False))
    return folder and not skipping


@pytest.hookimpl(tryfirst=True)  # before -m/-k/--deselect drop items: the count is of the whole quick subset
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Count the quick subset once from this session's own collection, so that the README's
    rounded figure (test_readme) is checked without a second 60-second collection of the suite."""
    if _collects_all_of_tests(config):
        _quick_subset.append(sum(1 for item in items if _TESTS in item.path.parents
                                 and all(mark.name != "slow" for mark in item.iter_markers())))


@pytest.fixture(scope="session")
def quick_subset_count() -> int | None:
    """How many tests `pytest -m "not slow" tests` selects, or None when this session did not
    collect all of tests/ (the caller then collects in a subprocess)."""
    return _quick_subset[-1] if _quick_subset else None


# The embedded llama.cpp endpoint, started once per session for the end-to-end tests.
from fixtures_local import _local_session_server, local_server  # noqa: E402,F401

# A real PostgreSQL server (session-scoped) and the db_url fixture parametrised over both backends.
from fixtures_postgres import db_url, pg_url, postgres_server  # noqa: E402,F401
