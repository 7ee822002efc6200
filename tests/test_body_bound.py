"""A non-streamed body, and any error status's body, has the bound of one JSON document (issue 21,
"non-streamed bodies unbounded").

``engine/_call.MAX_DOCUMENT`` (16 MB of decoded bytes: after gzip/deflate) bounds a non-streamed
completion's body as it bounds one SSE line or event (test_stream_bounds.py). The SDK's raw
response read a body whole before llmlab saw it: 200 MB took a fresh process to ~1.8 GB, a gzip
bomb (1 MB on the wire) past 8 GB, an endless body until the total deadline. Now the body is read
piece by piece and past the bound the row is a MalformedResponse, stored, and the connection is
closed there; an error status keeps its status (retries, Retry-After) with a note instead of a
message read from a body past the bound. ``base._json.MAX_JSON_CONTAINERS`` bounds what one
document under the bound can cost to parse. The forms run with the bound set to 64 KiB; the
peak-RSS tests run a fresh process at the real bound. Raw socket servers on 127.0.0.1, the real SDK.
"""
from __future__ import annotations

import itertools
import json
import os
import re
import socket
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable, Iterable

import pytest
from fakeserver import ModelSpec

from llmlab import Lab
from llmlab.base import _json
from llmlab.engine import _call

SMALL = 64 * 1024
HEAD = (b'{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
        b'"message":{"role":"assistant","content":"')
TAIL = b'"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}'


def _completion(size: int) -> bytes:
    """A valid completion of exactly ``size`` bytes: its answer is that many bytes less the JSON around it."""
    return HEAD + b"a" * (size - len(HEAD) - len(TAIL)) + TAIL


def _endless() -> Iterable[bytes]:
    """A completion's start, then its answer without end (as a broken or hostile endpoint sends)."""
    yield HEAD
    while True:
        yield b"a" * 65536


def _compressed(pieces: Iterable[bytes], encoding: str) -> Iterable[bytes]:
    """``pieces`` gzip- or deflate-encoded, flushed as they go: ~1 KB on the wire per MB inflated."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    for piece in pieces:
        yield packer.compress(piece * 16) + packer.flush(zlib.Z_SYNC_FLUSH)
    yield packer.flush()


class _Hostile:
    """A raw HTTP server answering every request with ``status``, ``headers`` and the body
    ``pieces()`` (endless is fine), framed ``chunked``, by ``length`` (the Content-Length sent, any
    value), or by closing the connection. ``closed`` counts the responses the client hung up on
    (a send failed) or closed after reading them; ``requests`` counts the requests."""

    def __init__(self, pieces: Callable[[], Iterable[bytes]], status: int = 200, headers: Iterable[str] = (),
                 framing: str = "chunked", length: int | None = None) -> None:
        self.pieces, self.status, self.headers, self.framing, self.length = pieces, status, headers, framing, length
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.closed = threading.Semaphore(0)
        self.requests = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            _read_request(conn)
            self.requests += 1
            head = [f"HTTP/1.1 {self.status} X", "Content-Type: application/json", "Connection: close",
                    *self.headers]
            head += (["Transfer-Encoding: chunked"] if self.framing == "chunked"
                     else [f"Content-Length: {self.length}"] if self.framing == "length" else [])
            conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
            for piece in self.pieces():
                conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if self.framing == "chunked" else piece)
            conn.sendall(b"0\r\n\r\n" if self.framing == "chunked" else b"")
            conn.settimeout(30)
            if conn.recv(1) == b"":  # the client closed (a timeout is no hang-up)
                self.closed.release()
        except (ConnectionError, BrokenPipeError):
            self.closed.release()  # the client hung up while it was sending
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.sock.close()


def _read_request(conn: socket.socket) -> None:
    """The whole request, its body too: what follows on the connection is the client's hang-up."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536) or b"\r\n\r\n"
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    while length is not None and len(body) < int(length.group(1)):
        body += conn.recv(65536) or b" " * int(length.group(1))


@pytest.fixture
def small_bound(monkeypatch):
    monkeypatch.setattr(_call, "MAX_DOCUMENT", SMALL)


@pytest.fixture
def hostile():
    servers: list[_Hostile] = []

    def start(*args, **kw) -> _Hostile:
        servers.append(_Hostile(*args, **kw))
        return servers[-1]

    yield start
    for srv in servers:
        srv.close()


def _call_once(srv: _Hostile, tmp_path, stream: bool = False, retries: int = 0, closes: int = 1):
    """One call's row, its stored row, after ``closes`` responses were hung up on during the call."""
    with Lab(base_url=srv.url, db=tmp_path / f"r{stream}.sqlite", retries=retries) as lab:
        row = lab.compare("hi", models=["m"], stream=stream, timeout=30).df.iloc[0]
        for _ in range(closes):
            assert srv.closed.acquire(timeout=30)  # by the call itself, before the Lab closes
        stored = lab.runs().iloc[-1]
    return row, stored


TOO_LONG = f"the endpoint sent a body longer than {SMALL / 2**20:g} MB (its connection was closed there)"
GZIP_SMALL = b"".join(_compressed([_completion(4 * 2**20)], "gzip"))  # 4 MB inflated, a few KB sent
# a body past the bound however it is framed or encoded: each would be read whole (or for ever)
PAST = {"chunked": dict(pieces=_endless),
        "ended by closing": dict(pieces=_endless, framing="close"),
        "Content-Length past the bound": dict(pieces=_endless, framing="length", length=10**12),
        "Content-Length past the bound, body short": dict(pieces=lambda: [_completion(300)], framing="length",
                                                          length=SMALL + 1),
        "gzip, chunked": dict(pieces=lambda: _compressed(_endless(), "gzip"), headers=["Content-Encoding: gzip"]),
        "deflate, chunked": dict(pieces=lambda: _compressed(_endless(), "deflate"),
                                 headers=["Content-Encoding: deflate"]),
        "gzip, Content-Length under the bound": dict(pieces=lambda: [GZIP_SMALL], headers=["Content-Encoding: gzip"],
                                                     framing="length", length=len(GZIP_SMALL))}


@pytest.mark.parametrize("form", PAST)
def test_a_body_past_the_bound_is_a_stored_malformed_row_and_its_connection_closed(hostile, tmp_path, small_bound,
                                                                                  form):
    row, stored = _call_once(hostile(**PAST[form]), tmp_path)
    for r in (row, stored):
        assert [r["status"], r["error_type"], r["error_message"]] == ["error", "MalformedResponse", TOO_LONG]
        assert not r["response_text"]


@pytest.mark.parametrize(("framing", "encoding"), list(itertools.product(("length", "chunked"), ("identity", "gzip"))))
def test_a_body_at_the_bound_is_read_and_one_byte_more_is_not(hostile, tmp_path, small_bound, framing, encoding):
    for size in (SMALL, SMALL + 1):
        body = _completion(size)
        sent = zlib.compress(body, 9, wbits=31) if encoding == "gzip" else body
        srv = hostile(pieces=lambda sent=sent: [sent[:len(sent) // 2], sent[len(sent) // 2:]], framing=framing,
                      length=len(sent), headers=[f"Content-Encoding: {encoding}"])
        row, _ = _call_once(srv, tmp_path / str(size))
        if size == SMALL:
            assert row["status"] == "ok" and row["response_text"] == "a" * (size - len(HEAD) - len(TAIL))
        else:
            assert [row["error_type"], row["error_message"]] == ["MalformedResponse", TOO_LONG]


def _error_body(message: str, size: int) -> bytes:
    body = json.dumps({"error": {"message": message, "type": "x"}}).encode()
    return body[:-1] + b" " * (size - len(body)) + b"}"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("form", ["chunked", "gzip, chunked", "Content-Length past the bound"])
def test_an_error_body_past_the_bound_keeps_its_status_and_is_not_read(hostile, tmp_path, small_bound, form, stream):
    srv = hostile(status=503, **{**PAST[form], "headers": [*PAST[form].get("headers", []), "Retry-After: 0"]})
    row, stored = _call_once(srv, tmp_path, stream=stream, retries=1, closes=2)
    note = TOO_LONG.replace("a body", "an error body")
    for r in (row, stored):
        assert [r["status"], r["error_type"]] == ["error", "InternalServerError"]
        assert r["error_message"] == f"Error code: 503 (note: {note})"
    assert srv.requests == 2  # retried as any 503 is


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_an_error_body_at_the_bound_gives_its_message(hostile, tmp_path, small_bound, stream):
    body = _error_body("the parameter 'x' is bad", SMALL)
    srv = hostile(status=400, pieces=lambda: [body], framing="length", length=len(body))
    row, _ = _call_once(srv, tmp_path, stream=stream)
    assert [row["error_type"], row["error_message"]] == ["BadRequestError", "the parameter 'x' is bad"]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_json_with_more_arrays_and_objects_than_the_bound_is_a_malformed_row(serve, tmp_path, monkeypatch, stream):
    monkeypatch.setattr(_json, "MAX_JSON_CONTAINERS", 1000)
    for many, log in ((990, "under"), (1000, "over")):  # the body or chunk's own objects and arrays add ~10
        body = {"id": "c", "object": "chat.completion", "created": 1, "model": "m", "x": [[]] * many,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}]}
        chunk = {**body, "object": "chat.completion.chunk",
                 "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}
        srv = serve({"m": ModelSpec(raw_events=[chunk if stream else body])})
        with Lab(base_url=srv.base_url, db=tmp_path / f"{log}.sqlite", retries=0) as lab:
            row = lab.compare("hi", models=["m"], stream=stream).df.iloc[0]
        if log == "under":
            assert row["status"] == "ok" and row["response_text"] == "hi", row["error_message"]
        else:
            assert [row["error_type"], row["error_message"]] == [
                "MalformedResponse", "the endpoint sent JSON with more than 1,000 arrays and objects"]


# --------------------------------------------------------------------------- peak RSS, at the real bound

_CHILD = """
import json, sys
from llmlab import Lab
with Lab(base_url=sys.argv[1], db=sys.argv[2], retries=0) as lab:
    row = lab.compare("hi", models=["m"], stream=False, timeout=60).df.iloc[0]
peak = [int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM")][0]
print(json.dumps({"peak_mb": peak / 1024, "error_type": str(row["error_type"])}))
"""
MB = 2**20
# each would be held whole (or read for ever, up to the child's 60 s) without the bound
HUGE = {"endless": dict(pieces=_endless),
        "gzip bomb": dict(pieces=lambda: _compressed(_endless(), "gzip"), headers=["Content-Encoding: gzip"]),
        "error status": dict(pieces=_endless, status=503),
        # just under the bound, and as costly to parse as the JSON container bound lets a document be
        "objects just under the bound": dict(
            pieces=lambda: [b"[", b'{"a":0,"b":1},' * ((16 * MB - 100) // 14), b"{}]"], framing="close")}


@pytest.mark.slow  # a fresh process (~3 s to import) reading 16 MB through the loopback
@pytest.mark.parametrize("case", HUGE)
def test_a_hostile_body_leaves_a_fresh_process_small(hostile, tmp_path, case):
    srv = hostile(**HUGE[case])
    child = subprocess.run([sys.executable, "-c", _CHILD, srv.url, str(tmp_path / "r.sqlite")], capture_output=True,
                           text=True, timeout=300, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert child.returncode == 0, child.stderr[-2000:]
    result = json.loads(child.stdout.splitlines()[-1])
    # ~175 MB is the imports (pandas, pyarrow); before the bound: 1.8 GB for 200 MB, > 8 GB for the bomb
    assert result["peak_mb"] < 600, result
    assert result["error_type"] in ("MalformedResponse", "InternalServerError")
