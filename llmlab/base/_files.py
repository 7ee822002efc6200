"""Owner-only folders, and the one way llmlab writes a file: atomically, owner-only.

Every folder llmlab creates (``$LLMLAB_HOME``, the model cache, the demo output, a log's parent)
is made 0700, whatever the umask. Folders that already exist are left as they are: they are the
user's.

Every file llmlab writes — saved policies, Parquet exports, reports, demo CSVs and charts,
local-server records — goes through :func:`private_file`: the bytes go to a temporary file in
the same folder (0600 from its first byte), are flushed to disk, and only then replace the
target with one ``os.replace``. A failure at any point (a value that cannot be encoded, a full
disk, Ctrl-C) leaves the old file exactly as it was and no temporary file behind. Text that
cannot be encoded is an :class:`InputError` naming the field (:func:`json_text`), before the
first byte is written. A target that exists but is not a regular file (a device such as
``/dev/null``, a FIFO, a socket, a folder) is refused, never replaced: as root, ``os.replace``
would turn ``/dev/null`` into a JSON file. So is a symbolic link, dangling or not (see
:func:`_check_replaceable`): neither cut nor followed. Temporary files a killed writer left behind are
removed by the next write of the same file.

Files llmlab reads that a project may ship (saved policies, price sheets) go through
:func:`read_regular`: a FIFO or a device is refused before anything blocks on it or reads
without end, and the size is bounded.

Whether other users could change (or read) a file llmlab trusts or fills is decided by
:func:`others_can_write` and :func:`others_can_read`, the one rule for saved policies and run logs.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from glob import escape as glob_escape
from pathlib import Path
from typing import IO, Any

from ._errors import InputError

__all__ = ["file_target", "private_dir", "private_file", "write_private", "write_json", "json_text", "json_problem",
           "read_regular", "owned_by_another", "others_can_write", "others_can_read", "file_kind"]

_MAX_DEPTH = 64  # deeper JSON is refused (a policy is a few levels deep)
_STALE_PARTIAL_S = 60.0  # a temporary file older than this was left by a writer that died


def private_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` and its missing parents as 0700 folders; return it."""
    path = file_target(path)
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue  # created concurrently by someone else: theirs
        os.chmod(folder, 0o700)  # mkdir's mode is filtered by the umask
    return path


@contextlib.contextmanager
def private_file(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """A binary file to write ``path`` through: on a clean exit it replaces ``path`` (owner-only,
    on disk); on any exception the old file stays as it was. OS errors become one-line
    :class:`InputError`\\ s naming the file."""
    target = file_target(path)
    _check_replaceable(target)
    try:
        private_dir(target.parent)
        _remove_stale_partials(target)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")  # 0600
    except OSError as exc:
        raise _cannot_write(target, exc) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        raise _cannot_write(target, exc) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _sync_folder(target.parent)


def _check_replaceable(target: Path) -> None:
    """A symlink is refused, dangling or not: replacing it would cut the link (its target, maybe
    shared, keeps the old bytes), and writing through it would let a link a cloned repository
    ships put a file anywhere the user may write (``report.html -> ~/.bashrc``). A symlinked
    folder on the way is the user's layout and is followed."""
    try:
        mode = target.lstat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        raise _cannot_write(target, exc) from None
    if stat.S_ISLNK(mode):
        raise InputError(f"cannot write {target}: it is a symbolic link, not a file; nothing was written "
                         "(write to the file it points to, or remove the link)")
    if not stat.S_ISREG(mode):
        raise InputError(f"cannot write {target}: it is {_kind(mode)}, not a file; nothing was written "
                         f"(choose a file name)")


def _kind(mode: int) -> str:
    kinds = [(stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a device"),
             (stat.S_ISBLK, "a device"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket")]
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _remove_stale_partials(target: Path) -> None:
    """Temporary files of ``target`` a killed writer left (each holds a whole copy, 0600)."""
    cutoff = time.time() - _STALE_PARTIAL_S
    for leftover in target.parent.glob(f".{glob_escape(target.name)}.*.partial"):
        with contextlib.suppress(OSError):  # another writer's, removed or renamed meanwhile
            if leftover.is_file() and not leftover.is_symlink() and leftover.stat().st_mtime < cutoff:
                leftover.unlink()


def read_regular(path: Path, *, what: str, limit: int, check: Callable[[os.stat_result], None] | None = None,
                 follow_symlinks: bool = True) -> bytes:
    """The bytes of ``path`` — a regular file (a FIFO, a device or a folder is an InputError before
    anything blocks on it) of at most ``limit`` bytes; ``check`` sees the fstat of the file opened
    (not of one swapped in after a check). ``follow_symlinks=False``: a symlink is an InputError
    too (for files only llmlab writes, never as links). OS errors are raised as they are."""
    _check_regular(path, os.stat(path, follow_symlinks=follow_symlinks).st_mode, what)  # a socket cannot be opened
    nofollow = 0 if follow_symlinks else getattr(os, "O_NOFOLLOW", 0)  # a link swapped in meanwhile: ELOOP
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | nofollow)  # a FIFO's open would wait for a writer
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)  # what was opened, not what the path named a moment before
        _check_regular(path, info.st_mode, what)
        if check is not None:
            check(info)
        os.set_blocking(fd, True)
        data = file.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"cannot read {what} from {path}: it is larger than {limit // 2**20} MB")
    return data


def owned_by_another(info: os.stat_result) -> bool:
    """Whether the file ``info`` describes belongs to a user other than this one or root (POSIX)."""
    return os.name == "posix" and info.st_uid not in (os.getuid(), 0)


def others_can_write(info: os.stat_result) -> bool:
    """Whether a user other than this one (or root) could have written the file ``info`` describes
    (POSIX): another user owns it, or it is group- or world-writable."""
    return owned_by_another(info) or (os.name == "posix" and bool(info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)))


def others_can_read(info: os.stat_result) -> bool:
    """Whether the group or the world may read the file ``info`` describes (POSIX)."""
    return os.name == "posix" and bool(info.st_mode & (stat.S_IRGRP | stat.S_IROTH))


def file_kind(mode: int) -> str | None:
    """What a ``st_mode`` that is not a regular file is ("a device", "a FIFO", ...), or None."""
    return None if stat.S_ISREG(mode) else _kind(mode)


def _check_regular(path: Path, mode: int, what: str) -> None:
    if not stat.S_ISREG(mode):
        raise InputError(f"cannot read {what} from {path}: it is {_kind(mode)}, not a file")


def file_target(path: str | os.PathLike) -> Path:
    """``path`` with ``~`` expanded; one that names no file (a NUL byte, ``~nouser``) is an
    InputError, not the OS's ValueError or pathlib's RuntimeError."""
    if "\0" in os.fsdecode(path):
        raise InputError(f"cannot write {os.fsdecode(path)!r}: a file name cannot hold a NUL byte (\\x00); "
                         f"nothing was written")
    try:
        return Path(path).expanduser()
    except RuntimeError:  # ~user for a user this system does not know (or no home to expand ~ to)
        raise InputError(f"cannot write {os.fsdecode(path)!r}: its ~ names no known home folder; "
                         f"give the full path; nothing was written") from None


def _cannot_write(target: Path, exc: OSError) -> InputError:
    return InputError(f"cannot write {target}: {exc.strerror or exc}; the file was left as it was")


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); nothing to do where folders cannot be opened."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_private(path: str | os.PathLike, data: bytes | str, *, what: str = "the text") -> Path:
    """Write ``data`` to ``path`` through :func:`private_file`; text that cannot be encoded as
    UTF-8 is an InputError naming ``what``, and nothing is written."""
    if isinstance(data, str):
        try:
            data = data.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputError(f"{what} has an invalid character at position {exc.start} (an unpaired surrogate); "
                             f"nothing was written to {Path(path).name}") from None
    target = file_target(path)
    with private_file(target) as fh:
        fh.write(data)
    return target


def write_json(path: str | os.PathLike, value: Any, *, what: str) -> Path:
    """``value`` as JSON (:func:`json_text`) written through :func:`private_file`."""
    return write_private(path, json_text(value, what=what), what=what)


def json_text(value: Any, *, what: str) -> str:
    """``value`` as strict JSON text, or an InputError naming the field that cannot be written:
    a string with an unpaired surrogate, a number that is NaN or infinite, a key that is not a
    string, a value JSON has no form for, nesting deeper than 64."""
    problem = json_problem(value)
    if problem is not None:
        raise InputError(f"{what}: {problem}; nothing was written")
    return json.dumps(value, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def json_problem(value: Any) -> str | None:
    """Why ``value`` is not strict JSON (see :func:`json_text`: "training['k'] is nan, which …"),
    or None: also what a value read back must pass to be saved again."""
    problem = _unwritable(value, "", 0)
    return None if problem is None else f"{problem[0] or 'the value'} {problem[1]}"


def _unwritable(value: Any, where: str, depth: int) -> tuple[str, str] | None:
    if depth > _MAX_DEPTH:
        return where, f"is nested more than {_MAX_DEPTH} levels deep"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return where, f"has an invalid character at position {exc.start} (an unpaired surrogate)"
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return where, f"is {value}, which JSON cannot hold (use a finite number)"
    if value is None or isinstance(value, (bool, int, float)):
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{where}[{key!r}]" if where else str(key)
            if not isinstance(key, str):
                return inner, "has a key that is not a string"
            found = _unwritable(key, inner, depth + 1) or _unwritable(item, inner, depth + 1)
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = _unwritable(item, f"{where}[{i}]", depth + 1)
            if found:
                return found
        return None
    return where, f"is a {type(value).__name__}, which JSON cannot hold"
