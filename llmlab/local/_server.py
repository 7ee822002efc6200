"""Start, probe and stop the embedded endpoint process (see ``_child.py`` for what runs inside)."""
from __future__ import annotations

import atexit
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ..base._config import LocalURL
from ..base._errors import INSTALL_LOCAL, LocalServerError
from ..base._files import private_dir, write_private
from ..base._json import loads
from ._identity import EmbeddedURL, model_identities
from ._models import ModelSpec, resolve_models

__all__ = ["LocalServer", "start", "probe", "free_port", "pid_alive", "n_threads", "embedded_url"]

HOST = "127.0.0.1"
START_TIMEOUT_S = 120.0
N_CTX = 2048
# Resident models are kept loaded together up to this total size; beyond it the upstream
# one-model-at-a-time swap is used so a couple of 7B files do not exhaust memory.
KEEP_LOADED_MAX_BYTES = 4 * 1024**3
_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context",
                   "pydantic_settings")
_CHILD_SCRIPT = Path(__file__).with_name("_child.py")


class _Reaper:
    """Servers this process started and still owns; stopped at interpreter exit."""

    def __init__(self) -> None:
        self._servers: list[LocalServer] = []
        self._lock = threading.Lock()
        self._registered = False

    def add(self, server: LocalServer) -> None:
        with self._lock:
            if not self._registered:
                atexit.register(self.stop_all)
                self._registered = True
            self._servers.append(server)

    def discard(self, server: LocalServer) -> None:
        with self._lock:
            if server in self._servers:
                self._servers.remove(server)

    def stop_all(self) -> None:
        for server in list(self._servers):
            # A forked child inherits this list and atexit; only the starter stops its servers.
            if server.owner_pid == os.getpid():
                server.stop()


_REAPER = _Reaper()


class LocalServer:
    """A running embedded endpoint: ``.base_url``, ``.models``, ``.pid``, ``.stop()``.

    ``owned`` is True when this process started it (then it is stopped at exit and by
    ``stop()``); a server reused by :func:`ensure_running` belongs to the process that started it.
    """

    def __init__(self, port: int, models: list[str], pid: int, *, process=None,
                 log_path: Path | None = None, workdir: Path | None = None,
                 on_stop=None) -> None:
        self.port = port
        self.models = list(models)
        self.pid = pid
        self.log_path = log_path
        self.owner_pid = os.getpid() if process is not None else None
        self._process = process
        self._workdir = workdir
        self._on_stop = on_stop
        self._stopped = False

    @property
    def base_url(self) -> str:
        # A LocalURL: a Lab given it never sends this endpoint a key.
        return LocalURL(f"http://{HOST}:{self.port}/v1")

    @property
    def owned(self) -> bool:
        return self._process is not None

    @property
    def running(self) -> bool:
        if self._stopped:
            return False
        if self._process is not None:
            return self._process.poll() is None
        return pid_alive(self.pid)

    def stop(self, force: bool = False) -> None:
        """Stop the server if this process started it (``force=True``: stop a reused one too)."""
        if self._stopped or (not self.owned and not force):
            return
        self._stopped = True
        _REAPER.discard(self)
        _terminate_group(self.pid, self._process)
        if self._on_stop is not None:
            self._on_stop(self)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the server log (owned servers, or reused ones whose log is known)."""
        return _log_tail(self.log_path, lines) if self.log_path else "(log unknown)"

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        owner = "owned" if self.owned else "reused"
        return (f"LocalServer({self.base_url!r}, models={self.models!r}, pid={self.pid}, "
                f"{state}, {owner})")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def _terminate_group(pid: int, process, grace_s: float = 5.0) -> None:
    # The server leads its own session/process group: signal the group so any helper
    # threads-turned-processes die with it, then reap our child so no zombie is left.
    if process is not None and process.poll() is not None:
        # Already exited and reaped (here or by an earlier poll): its pid, and so the group id,
        # is free for the system to give to another process — soon, on a busy machine with a
        # small pid_max (32768) — and killpg would stop that one (another server, someone's job).
        return
    if not hasattr(os, "killpg"):  # Windows: no process groups; the child has no children
        _terminate_one(pid, process, grace_s)
        return
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            break
        if _wait_exit(pid, process, wait_s):
            break
    if process is not None:
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def _terminate_one(pid: int, process, grace_s: float) -> None:
    if process is None:
        os.kill(pid, signal.SIGTERM)
        return
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def _wait_exit(pid: int, process, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return True
        if process is None and not pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _check_port_free(port: int) -> None:
    if not 0 < port < 65536:
        raise LocalServerError(f"port must be 1-65535, got {port}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Same option as uvicorn: connections in TIME_WAIT must not count as "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            raise LocalServerError(f"port {port} on {HOST} is in use; choose another port, or "
                                   "leave it unset (and LLMLAB_LOCAL_PORT too) to use a free "
                                   "one") from None


def _check_server_installed() -> None:
    missing = [m for m in _SERVER_MODULES if _find_spec(m) is None]
    if missing:
        raise LocalServerError(f"llama-cpp-python's server is not installed (missing: "
                               f"{', '.join(missing)}); install it with {INSTALL_LOCAL}")


def _find_spec(name: str):
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):  # ValueError: sys.modules[name] is None (blocked import)
        return None


def is_embedded(url: str) -> bool:
    """Whether ``url`` (a string copied from ``llmlab serve``, an f-string) is an embedded
    endpoint: a loopback host whose port answers llmlab's health check. Such an endpoint never
    gets a key, however its URL was written."""
    try:
        parts = urllib.parse.urlsplit(url)
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError:
        return False
    if port is None or host not in ("127.0.0.1", "localhost", "::1"):
        return False
    return probe(port, timeout=0.5) is not None


def embedded_url(url: str, *, timeout: float = 5.0) -> str:
    """``url`` as an :class:`EmbeddedURL` when the embedded endpoint there reports its models'
    identities (``/llmlab/health``), else ``url`` itself: the cache then keys on the URL, as for
    any endpoint (a server of an older llmlab, one that does not answer)."""
    try:
        port = urllib.parse.urlsplit(url).port
    except ValueError:
        return url
    health = probe(port, timeout=timeout) if port else None
    identities = health.get("identities") if health else None
    if not isinstance(identities, dict) or not all(isinstance(v, dict) for v in identities.values()):
        return url
    return EmbeddedURL(url, identities)


def probe(port: int, timeout: float = 2.0) -> dict | None:
    """``/llmlab/health`` of an llmlab endpoint on ``port``, or None if nothing llmlab answers."""
    url = f"http://{HOST}:{port}/llmlab/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            payload = loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None
    return payload if isinstance(payload, dict) and payload.get("llmlab") else None


def _log_tail(log_path: Path, lines: int = 20) -> str:
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:]) or "(empty log)"


def _child_error(log_path: Path) -> str | None:
    prefix = "llmlab-child: error: "
    try:
        for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(prefix):
                return line[len(prefix):]
    except OSError:
        pass
    return None


def _died(log_path: Path, code) -> LocalServerError:
    reason = _child_error(log_path) or f"the local server exited with code {code} while starting"
    return LocalServerError(f"{reason}; last lines of the server log:\n{_log_tail(log_path)}")


def _config(specs: list[ModelSpec], port: int, n_threads: int, identities: dict | None = None) -> dict:
    models = [{"model": str(s.path), "model_alias": s.alias, "chat_format": s.chat_format,
               "n_ctx": N_CTX, "n_threads": n_threads, "n_threads_batch": n_threads,
               "verbose": False} for s in specs]
    # interrupt_requests=False: upstream's default cuts a running stream short (with a
    # clean [DONE]) whenever another request queues — silent truncation under concurrency.
    # llmlab_identities: not a server setting; the child reports it in /llmlab/health.
    return {"host": HOST, "port": port, "interrupt_requests": False, "models": models,
            "llmlab_identities": identities or {}}


def _child_env() -> dict:
    env = dict(os.environ)
    # OpenMP's default busy-wait collapses throughput (to ~5x slower here) whenever the
    # client or anything else competes for the same cores; passive waiting costs little.
    env.setdefault("OMP_WAIT_POLICY", "passive")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def n_threads() -> int:
    """Threads per model: ``$LLMLAB_LOCAL_THREADS``, else 2 (the tiny models gain little past 2).

    On 2 cores, measured on an idle machine with bench/bench_local.py, 2 threads decode faster
    through the server than 1 (47.8–52.0 vs 41.2–44.7 tok/s on smollm2-135m); under heavy
    background load 1 thread can win, because two compute threads get preempted at OpenMP
    barriers — set ``LLMLAB_LOCAL_THREADS=1`` there.
    """
    value = os.environ.get("LLMLAB_LOCAL_THREADS", "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise LocalServerError(f"LLMLAB_LOCAL_THREADS={value!r} is not a positive integer")
        return int(value)
    return 2


def _spawn(specs: list[ModelSpec], port: int, workdir: Path, log_path: Path, identities: dict):
    config_path = workdir / "server-config.json"
    write_private(config_path, json.dumps(_config(specs, port, n_threads(), identities), indent=2))
    keep = sum(s.path.stat().st_size for s in specs) <= KEEP_LOADED_MAX_BYTES
    cmd = [sys.executable, str(_CHILD_SCRIPT), "--parent-pid", str(os.getpid()),
           "--config", str(config_path), "--scratch-dir", str(workdir)]
    cmd += ["--keep-loaded"] if keep else []
    private_dir(log_path.parent)
    with open(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as log:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=_child_env(), start_new_session=True, close_fds=True)


HEARTBEAT_S = 15.0   # a start-up that takes longer (a busy machine, big models) says it is still going


def _wait_ready(process, port: int, log_path: Path, timeout: float, say=None) -> None:
    began = time.monotonic()
    deadline, next_word = began + timeout, began + HEARTBEAT_S
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            raise _died(log_path, code)
        health = probe(port, timeout=1.0)
        # Only our own child counts: another server may have taken the port since we checked it.
        if health is not None and health.get("pid") == process.pid:
            return
        if say is not None and time.monotonic() >= next_word:
            say(f"still loading the models ({time.monotonic() - began:.0f} s; gives up after {timeout:.0f} s)…")
            next_word += HEARTBEAT_S
        time.sleep(0.1)
    _terminate_group(process.pid, process)
    raise LocalServerError(f"the local server did not answer within {timeout:.0f} s; last lines "
                           f"of the server log:\n{_log_tail(log_path)}")


def start(port: int | None = None, models=None, quiet: bool = False,
          log_path: str | os.PathLike | None = None, timeout: float = START_TIMEOUT_S,
          on_stop=None) -> LocalServer:
    """Start an embedded endpoint on 127.0.0.1 and wait until it answers.

    ``models``: None for every bundled model, or a list of bundled names and/or ``(alias, path)``
    pairs. The server stops with ``.stop()``, at the end of a ``with`` block, at exit of this
    process, or within a second of this process being killed.
    """
    _check_server_installed()
    if port is not None:
        _check_port_free(int(port))
    say = None if quiet else _say
    began = time.monotonic()
    specs = resolve_models(models, say)
    identities = model_identities(specs, n_ctx=N_CTX, say=say)
    if port is None:
        port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="llmlab-local-"))
    log = Path(log_path) if log_path is not None else workdir / "server.log"
    if say is not None:
        say(f"starting the local endpoint with {len(specs)} model(s): {', '.join(s.alias for s in specs)}…")
    process = _spawn(specs, int(port), workdir, log, identities)
    server = LocalServer(int(port), [s.alias for s in specs], process.pid, process=process,
                         log_path=log, workdir=workdir, on_stop=on_stop)
    _REAPER.add(server)
    try:
        _wait_ready(process, int(port), log, timeout, say)
    except BaseException:
        server.stop()
        raise
    if say is not None:
        say(f"local endpoint {server.base_url} ready in {time.monotonic() - began:.1f} s")
    return server


def _say(message: str) -> None:
    print(f"llmlab: {message}", file=sys.stderr, flush=True)
