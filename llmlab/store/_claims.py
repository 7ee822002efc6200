"""Run claims: one process at a time runs (sends the requests of) a given run.

A sweep, a resume of it (``sweep(..., resume=run_id)``), a batch submission and a batch
collection (``batch_resume``/``batch_cancel``) each hold their run's claim while they work; a
second one for the same run — another kernel resuming it, a scheduler retrying the job while the
first attempt still runs, a resume while the original sweep is still sending — is refused at once,
before anything is sent, with :class:`RunInUse` naming who holds it. So a run is never paid twice
and never holds two ok rows for one (prompt, model, repeat).

Refused, not waited for (decided): the holder may take hours (a 10,000-prompt sweep, a batch
answered within 24 h), so a wait would either hang the cell with no word of why or end in the same
error later; refusing at once says who runs it, and re-running ``resume=`` once it is done sends
only what is still missing.

The claims are locks the operating system or the server drops with their holder, so a crashed
or killed kernel never leaves a run claimed:

* SQLite: an ``flock`` on a small owner-only file beside the log (``<log>-claim-<hash>``, holding
  "pid N on host H"), removed when the claim ends; a killed process's lock dies with it (a file
  it leaves is taken over by the next claim). ``flock`` locks are per open file, so two Labs of
  one process exclude each other too.
* PostgreSQL: a session advisory lock (``pg_try_advisory_lock`` on a hash of the log's identity
  and the run id) on a connection of its own, opened for the claim (its ``application_name`` says
  who holds it); the server drops it when the session ends — a killed kernel's at once, a lost
  machine's within about a minute (the session's TCP keepalives).
* ``:memory:`` (one process by definition) and platforms without ``flock``: claims within the
  process.
"""
from __future__ import annotations

import hashlib
import os
import socket
import stat
from collections.abc import Callable

from ..base._errors import RunInUse, StoreError
from ..base._files import file_kind, others_can_read, others_can_write, owned_by_another

try:
    import fcntl
except ImportError:  # Windows: claims within the process only
    fcntl = None  # type: ignore[assignment]

__all__ = ["RunInUse", "owner_text", "claim_key", "claim_file", "refused"]

_OWNER_BYTES = 256


def owner_text() -> str:
    """Who this process is, as a claim names it: ``pid N on host H``."""
    return f"pid {os.getpid()} on host {socket.gethostname()}"


def refused(run_id: str, owner: str | None) -> RunInUse:
    """The one-line refusal of a claim another holder has (``owner``: its "pid N on host H")."""
    here = owner == owner_text()
    who = ("another call in this process" + f" ({owner})" if here
           else f"another process ({owner})" if owner else "another process")
    return RunInUse(f"run {run_id!r} is being run by {who}: nothing was sent. Wait for it to finish (then "
                    f"resume={run_id!r} sends only what is still missing) or start a new run")


def claim_key(log_id: str, run_id: str) -> int:
    """A signed 64-bit key for the run's claim in this log (PostgreSQL advisory locks)."""
    digest = hashlib.sha256(f"llmlab-run-claim\0{log_id}\0{run_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def claim_path(log_path: str, log_id: str, run_id: str) -> str:
    digest = hashlib.sha256(f"{log_id}\0{run_id}".encode()).hexdigest()[:20]
    return f"{log_path}-claim-{digest}"


def claim_file(log_path: str, log_id: str, run_id: str) -> Callable[[], None] | None:
    """Take the run's claim beside the SQLite log ``log_path``: the release, or None where flock
    is not available. :class:`RunInUse` when another open file holds it; StoreError when the
    claim file is no owner-only regular file."""
    if fcntl is None:
        return None
    path = claim_path(log_path, log_id, run_id)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) \
        | getattr(os, "O_CLOEXEC", 0)
    while True:
        try:
            fd = os.open(path, flags, 0o600)
        except OSError as exc:
            raise StoreError(f"cannot claim run {run_id!r} in {log_path}: {path}: {exc.strerror or exc}") from None
        try:
            opened = os.fstat(fd)
            _check_claim_file(path, opened)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = os.pread(fd, _OWNER_BYTES, 0).decode("utf-8", "replace").strip() or None
                raise refused(run_id, owner) from None
            # The holder before us removes the file as it lets go: locked, the path must still name
            # the file we opened, else our lock is on a file no one else will open — try again.
            try:
                now = os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                now = None
            if now is None or (now.st_dev, now.st_ino) != (opened.st_dev, opened.st_ino):
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.pwrite(fd, owner_text().encode(), 0)
        except BaseException:
            _close_quietly(fd)
            raise
        return _release_file(path, fd)


def _release_file(path: str, fd: int) -> Callable[[], None]:
    def release() -> None:
        try:
            os.unlink(path)  # while still locked: a waiter that opened it tries again (see above)
        except OSError:
            pass
        _close_quietly(fd)

    return release


def _check_claim_file(path: str, info: os.stat_result) -> None:
    kind = file_kind(info.st_mode)
    if kind is not None or owned_by_another(info) or others_can_write(info) or others_can_read(info):
        what = kind or f"not owner-only (mode {stat.filemode(info.st_mode)}, owner uid {info.st_uid})"
        raise StoreError(f"run claim file {path} is {what}; remove it (no llmlab process makes it so) and run again")


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
