"""A log's journal (``<log>.llmlab-journal``) is a file a cloned folder may ship next to the log a
user names: it is replayed only when it passes the log's own file rules (a regular file, not a
link, this user's, no one else may read or change it, at most 256 MB) and every line names this
log (a hash of the log's creation time). Anything else is left where it is, untouched, with one
warning, and nothing from it — no row, no cache entry — is stored; nothing blocks on a FIFO or
reads a device without end.
"""
from __future__ import annotations

import json
import os
import sqlite3
import stat
import threading
import warnings
from dataclasses import fields
from pathlib import Path

import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import Lab
from llmlab.base._record import Record
from llmlab.store import _journal

PROMPT = "Is this contract safe to sign?"


@pytest.fixture
def server():
    with FakeServer({"gpt-4o": ModelSpec(text="HONEST answer")}) as srv:
        yield srv


def _chat(srv: FakeServer) -> int:
    return sum(r.path.endswith("/chat/completions") for r in srv.requests)


def _fabricated(tmp_path: Path) -> tuple[Record, str]:
    """A real row and cache key for PROMPT, answered "FABRICATED" (made in a log of its own)."""
    src = tmp_path / "elsewhere" / "src.sqlite"
    with FakeServer({"gpt-4o": ModelSpec(text="FABRICATED")}) as srv:
        base_url = srv.base_url
        with Lab(base_url=base_url, db=src, retries=0) as lab:
            lab.compare(PROMPT, models=["gpt-4o"])
    con = sqlite3.connect(src)
    con.row_factory = sqlite3.Row
    row = dict(con.execute("SELECT * FROM runs").fetchone())
    key = con.execute("SELECT key FROM cache").fetchone()[0]
    con.close()
    names = {f.name for f in fields(Record)}
    return Record(**{k: v for k, v in row.items() if k in names and k != "id"}), key


def _open(url: str, db: Path) -> tuple[Lab, list[str]]:
    """A Lab on ``db`` (opened in a thread: a journal that blocks fails the test, not the run)."""
    box: dict = {}

    def opening() -> None:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            box["lab"] = Lab(base_url=url, db=db, retries=0)
        box["warned"] = [str(w.message) for w in seen]

    thread = threading.Thread(target=opening, daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "opening the log blocked on its journal"
    return box["lab"], box["warned"]


def _cache_keys(db: Path) -> list[str]:
    con = sqlite3.connect(db)
    try:
        return [r[0] for r in con.execute("SELECT key FROM cache")]
    finally:
        con.close()


def _assert_refused(server, db: Path, journal: Path, why: str, key: str) -> None:
    before = os.lstat(journal)
    lab, warned = _open(server.base_url, db)
    with lab:
        res = lab.compare(PROMPT, models=["gpt-4o"])
        assert res.df["response_text"].iloc[0] == "HONEST answer" and not bool(res.df["cached"].iloc[0])
        assert len(lab.runs()) == 1 and _chat(server) == 1  # nothing imported; the request was sent
    assert key not in _cache_keys(db) and len(_cache_keys(db)) == 1  # the honest answer's entry alone
    assert len(warned) == 1 and why in warned[0] and "was not replayed" in warned[0] and "\n" not in warned[0]
    after = os.lstat(journal)  # left where it was, as it was
    assert (after.st_ino, after.st_mode, after.st_size, after.st_uid) == (
        before.st_ino, before.st_mode, before.st_size, before.st_uid)


def _journal_lines(path: Path, record: Record, key: str, log: str | None) -> None:
    entry = {"row": record.to_row(), "key": key} | ({"log": log} if log is not None else {})
    path.write_text(json.dumps(entry) + "\n")
    os.chmod(path, 0o600)


def test_a_planted_journal_naming_no_log_is_not_imported(tmp_path, server):
    """The attack: a cloned folder ships only the journal; the user names the log themselves."""
    db = tmp_path / "runs.sqlite"
    record, key = _fabricated(tmp_path)
    journal = tmp_path / "runs.sqlite.llmlab-journal"
    _journal_lines(journal, record, key, log=None)
    _assert_refused(server, db, journal, "not written for this log", key)


@pytest.mark.parametrize("log", ["0" * 32, "guessed", "", 7])
def test_a_journal_naming_another_log_is_not_imported(tmp_path, server, log):
    db = tmp_path / "runs.sqlite"
    record, key = _fabricated(tmp_path)
    journal = tmp_path / "runs.sqlite.llmlab-journal"
    _journal_lines(journal, record, key, log=log)
    _assert_refused(server, db, journal, "not written for this log", key)


def test_another_logs_real_journal_is_refused_and_its_own_log_replays_it(tmp_path, server):
    record, key = _fabricated(tmp_path)
    with Lab(base_url=server.base_url, db=tmp_path / "a.sqlite") as a:
        identity_a = a.store._log_id
    with Lab(base_url=server.base_url, db=tmp_path / "b.sqlite") as b:
        assert b.store._log_id != identity_a  # two logs, two identities
    journal = tmp_path / "b.sqlite.llmlab-journal"
    _journal.append(journal, [record], [key], log=identity_a)
    _assert_refused(server, tmp_path / "b.sqlite", journal, "not written for this log", key)
    os.replace(journal, tmp_path / "a.sqlite.llmlab-journal")
    lab, warned = _open(server.base_url, tmp_path / "a.sqlite")  # where it belongs: rows and cache entries
    with lab:
        assert warned == [] and list(lab.runs()["response_text"]) == ["FABRICATED"]
    assert _cache_keys(tmp_path / "a.sqlite") == [key]  # as trusted as the log: its cache entry too
    assert not (tmp_path / "a.sqlite.llmlab-journal").exists()


def test_one_line_naming_another_log_refuses_the_whole_journal(tmp_path, server):
    db = tmp_path / "runs.sqlite"
    with Lab(base_url=server.base_url, db=db) as lab:
        identity = lab.store._log_id
    record, key = _fabricated(tmp_path)
    journal = tmp_path / "runs.sqlite.llmlab-journal"
    _journal.append(journal, [record], [key], log=identity)
    with journal.open("a") as f:
        f.write(json.dumps({"row": record.to_row(), "key": key, "log": "0" * 32}) + "\n")
    _assert_refused(server, db, journal, "not written for this log", key)


def _fifo(path: Path, target: Path) -> None:
    os.mkfifo(path, 0o600)


def _zero(path: Path, target: Path) -> None:
    os.symlink("/dev/zero", path)


def _link_to_own(path: Path, target: Path) -> None:
    os.symlink(target, path)  # a link to a journal that would pass: links are never followed


def _folder(path: Path, target: Path) -> None:
    path.mkdir(mode=0o700)


def _mode(mode: int):
    def make(path: Path, target: Path) -> None:
        os.replace(target, path)
        os.chmod(path, mode)
    return make


def _huge(path: Path, target: Path) -> None:
    os.replace(target, path)
    os.truncate(path, _journal.MAX_JOURNAL_BYTES + 1)  # sparse: refused before a byte is read


def _other_owner(path: Path, target: Path) -> None:
    os.replace(target, path)
    os.chown(path, 65534, 65534)


HOSTILE = [(_fifo, "not a regular file"), (_zero, "not a regular file"), (_link_to_own, "not a regular file"),
           (_folder, "not a regular file"), (_mode(0o644), "other users can read or change it"),
           (_mode(0o660), "other users can read or change it"), (_mode(0o602), "other users can read or change it"),
           (_huge, "larger than 256 MB")]
if os.name == "posix" and os.geteuid() == 0:  # only root can give a file to another user
    HOSTILE.append((_other_owner, "belongs to another user (owner uid 65534)"))


@pytest.mark.parametrize(("make", "why"), HOSTILE, ids=lambda v: getattr(v, "__name__", None) or str(v)[:20])
def test_a_journal_breaking_the_logs_file_rules_is_left_alone(tmp_path, server, make, why):
    db = tmp_path / "runs.sqlite"
    with Lab(base_url=server.base_url, db=db) as lab:
        identity = lab.store._log_id
    record, key = _fabricated(tmp_path)
    own = tmp_path / "own-journal"
    _journal.append(own, [record], [key], log=identity)  # would be replayed as a plain 0600 file
    make(tmp_path / "runs.sqlite.llmlab-journal", own)
    _assert_refused(server, db, tmp_path / "runs.sqlite.llmlab-journal", why, key)


def test_a_refused_journal_is_warned_about_once_per_lab(tmp_path, server):
    db = tmp_path / "runs.sqlite"
    os.mkfifo(tmp_path / "runs.sqlite.llmlab-journal", 0o600)
    lab, warned = _open(server.base_url, db)
    with lab, warnings.catch_warnings(record=True) as later:
        warnings.simplefilter("always")
        for _ in range(3):  # every write looks for a journal to replay first
            lab.compare(PROMPT, models=["gpt-4o"], cache=False)
    assert len(warned) == 1 and [str(w.message) for w in later if "journal" in str(w.message)] == []


def test_a_journal_never_grows_past_what_a_log_replays(tmp_path):
    path = tmp_path / "j"
    record = Record(run_id="r", request_id="q", prompt_id="p", requested_model="m", prompt="hi", messages="[]",
                    params="{}", stream=False, endpoint="http://127.0.0.1:9/v1", api_key_env=None, status="ok")
    _journal.append(path, [record], [None], log="x")
    os.truncate(path, _journal.MAX_JOURNAL_BYTES - 10)
    with pytest.raises(OSError, match="256 MB"):
        _journal.append(path, [record], [None], log="x")
    assert os.path.getsize(path) == _journal.MAX_JOURNAL_BYTES - 10  # nothing half-written
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_each_backend_replays_its_own_journal_and_refuses_a_planted_one(db_url, tmp_path, server):
    record, key = _fabricated(tmp_path)
    with Lab(base_url=server.base_url, db=db_url) as lab:
        journal, identity = lab.store._journal_file, lab.store._log_id
    _journal.append(journal, [record], [key], log="0" * 32)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with Lab(base_url=server.base_url, db=db_url) as lab:
            assert len(lab.runs()) == 0
    assert [w for w in seen if "was not replayed" in str(w.message)] and journal.exists()
    journal.unlink()
    _journal.append(journal, [record], [key], log=identity)
    with Lab(base_url=server.base_url, db=db_url) as lab:
        assert list(lab.runs()["response_text"]) == ["FABRICATED"] and lab.store._log_id == identity
    assert not journal.exists()
