"""Owner-only folders and files: prompts, answers and logs can be private.

Every folder llmlab creates (``$LLMLAB_HOME``, the model cache, the demo output, a log's parent)
is made 0700 and every file it writes 0600, whatever the umask. Folders that already exist are
left as they are: they are the user's.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["private_dir", "write_private"]


def private_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` and its missing parents as 0700 folders; return it."""
    path = Path(path).expanduser()
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


def write_private(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write ``data`` to ``path`` readable by its owner only (an existing file is tightened too)."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    return path
