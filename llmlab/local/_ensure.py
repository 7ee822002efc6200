"""``ensure_running``: one shared embedded endpoint per ``$LLMLAB_HOME``.

The server a process starts is recorded in ``$LLMLAB_HOME/local-server.json``; later processes
(other notebooks, the CLI) reuse it while it is alive. It still belongs to the process that
started it and stops when that process exits; the next caller then starts a fresh one.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from pathlib import Path

from ..base._config import llmlab_home
from ..base._errors import LocalServerError
from ..base._files import private_dir, write_private
from ..base._json import loads
from ._models import bundled_models
from ._server import LocalServer, pid_alive, probe, start

__all__ = ["ensure_running", "record_path", "write_record", "forget_record"]

RECORD_NAME = "local-server.json"


class _ProcessState:
    """What this process knows across calls: its own server and which URLs it announced."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.announced: set[str] = set()


_STATE = _ProcessState()


def record_path() -> Path:
    return llmlab_home() / RECORD_NAME  # read $LLMLAB_HOME now, not at import


def _read_record(path: Path) -> dict | None:
    try:
        data = loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_record(server: LocalServer, path: Path | None = None) -> Path:
    path = path or record_path()
    private_dir(path.parent)
    record = {"pid": server.pid, "port": server.port, "base_url": server.base_url,
              "models": server.models, "owner_pid": os.getpid(),
              "log_path": str(server.log_path) if server.log_path else None,
              "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    return write_private(path, json.dumps(record, indent=2), what="the local server record")


def forget_record(server: LocalServer, path: Path) -> None:
    """Remove the record if it still describes ``server`` (another may have replaced it)."""
    record = _read_record(path)
    if record and record.get("pid") == server.pid and record.get("port") == server.port:
        with contextlib.suppress(OSError):
            path.unlink()


@contextlib.contextmanager
def _file_lock(path: Path):
    # Two notebooks starting at once must end up sharing one server, not racing to start two.
    private_dir(path.parent)
    try:
        import fcntl
    except ImportError:  # Windows: no lock; worst case two servers start
        yield
        return
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _reusable(record: dict | None) -> LocalServer | None:
    if not record:
        return None
    try:
        pid, port = int(record["pid"]), int(record["port"])
    except (KeyError, TypeError, ValueError):
        return None
    if not pid_alive(pid):
        return None
    health = probe(port, timeout=5.0)
    expected = {m.alias for m in bundled_models()}
    if not health or health.get("pid") != pid or not expected <= set(health.get("models", [])):
        return None
    return LocalServer(port, list(health["models"]), pid, log_path=_path_or_none(record))


def _path_or_none(record: dict) -> Path | None:
    value = record.get("log_path")
    return Path(value) if value else None


def _env_port() -> int | None:
    value = os.environ.get("LLMLAB_LOCAL_PORT", "").strip()
    if not value:
        return None
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise LocalServerError(f"LLMLAB_LOCAL_PORT={value!r} is not a port number (1-65535)")
    return int(value)


def ensure_running(quiet: bool = False) -> LocalServer:
    """The embedded endpoint with every bundled model: reuse the recorded one, else start one.

    A started server is recorded under ``$LLMLAB_HOME`` and stopped when this process exits; a
    reused one is left to the process that started it.
    """
    path = record_path()
    with _STATE.lock, _file_lock(path.with_suffix(".lock")):
        server = _reusable(_read_record(path))
        if server is None:
            server = start(port=_env_port(), quiet=True,
                           on_stop=lambda s: forget_record(s, path))
            write_record(server, path)
    if not quiet and server.base_url not in _STATE.announced:
        _STATE.announced.add(server.base_url)
        print(f"llmlab: no endpoint configured; using the embedded local endpoint at "
              f"{server.base_url} (models: {', '.join(server.models)})", file=sys.stderr)
    return server
