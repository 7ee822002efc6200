"""./.env and ./pyproject.toml — the two files every cloned project ships — are read only as
regular files of at most 1 MB (attack 4, F6): a /proc file, a FIFO or a huge file is one warning
"ignoring …", never a raw OSError, a wait or a 300 MB read."""
from __future__ import annotations

import os
import threading
import warnings

import pytest

from llmlab import Lab


def _quietly(action):
    """``action()`` in a thread (a FIFO that blocks fails the test, not the run) and its warnings."""
    box: dict = {}

    def run() -> None:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            try:
                box["value"] = action()
            except Exception as exc:  # noqa: BLE001 - the test looks at it
                box["error"] = exc
            box["warnings"] = [str(w.message) for w in seen]

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), "reading the project file blocked"
    return box


def _make(tmp_path, name: str, kind: str) -> None:
    target = tmp_path / name
    if kind == "pagemap":
        os.symlink("/proc/self/pagemap", target)
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "big":
        target.write_bytes(b"A=" + b"x" * (2 * 2**20) + b"\n" if name == ".env" else b"x = '" + b"y" * 2**21 + b"'\n")


@pytest.mark.parametrize("kind", ["pagemap", "fifo", "big"])
def test_a_dotenv_that_is_not_a_small_regular_file_is_ignored_with_one_warning(tmp_path, kind):
    _make(tmp_path, ".env", kind)
    box = _quietly(lambda: Lab(base_url="http://127.0.0.1:9/v1", db=":memory:").close())
    assert "error" not in box, box.get("error")
    assert [w for w in box["warnings"] if w.startswith("ignoring ./.env")], box["warnings"]


@pytest.mark.parametrize("kind", ["pagemap", "fifo", "big"])
def test_a_pyproject_that_is_not_a_small_regular_file_is_ignored_with_one_warning(tmp_path, kind):
    from llmlab.notebook._magics import read_pyproject

    _make(tmp_path, "pyproject.toml", kind)
    box = _quietly(read_pyproject)
    assert box.get("value") == {} and "error" not in box, box.get("error")
    assert [w for w in box["warnings"] if "ignoring" in w and "pyproject.toml" in w], box["warnings"]


def test_a_small_dotenv_is_still_read(tmp_path):
    from llmlab.base._config import read_dotenv

    (tmp_path / ".env").write_text("LLMLAB_DB=runs.sqlite\nexport X='y'\n")
    assert read_dotenv() == {"LLMLAB_DB": "runs.sqlite", "X": "y"}
