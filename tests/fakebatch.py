"""The Files and Batch APIs of the test server (``/v1/files``, ``/v1/batches``), as OpenAI documents
them and the ``openai`` SDK expects them (see tests/fakeserver.py, which serves them).

Uploads are multipart (``file``, ``purpose``); a batch's input file is validated when it is
created (JSONL, ``POST``, the batch's ``url``, unique ``custom_id``s, one model, at most
``max_requests`` lines — otherwise the batch ``failed`` with ``errors``), then every line is
answered by the server's own model scripts, as a live non-streamed call would be. The state
machine: ``validating → in_progress → finalizing → completed``, or ``→ failed`` (validation),
``in_progress → expired`` (the window ran out: the lines answered so far in the output file, the
rest ``batch_expired`` in the error file), ``→ cancelling → cancelled`` (partial results). Each
phase lasts what :class:`BatchBehaviour` says (0: instant). The output file's lines come in
reverse order (OpenAI promises no order); failed requests go to the error file as
``response.status_code`` ≥ 400 lines. Faults: ``duplicate`` answered custom_ids twice,
``drop`` custom_ids from both files, ``foreign`` lines for custom_ids never sent,
``max_file_bytes`` on uploads, ``content_status`` an error for every file's content (its
metadata still there). A file deleted from ``files`` is gone, as after OpenAI's 30 days.
"""
from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["BatchBehaviour", "BatchAPI", "parse_multipart"]

ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses")
TERMINAL = ("completed", "failed", "expired", "cancelled")


@dataclass
class BatchBehaviour:
    """How the fake's batches behave. Durations in seconds (0: that phase is instant)."""

    validating_s: float = 0.0
    in_progress_s: float = 0.0
    finalizing_s: float = 0.0
    cancelling_s: float = 0.0
    outcome: str = "completed"  # or "expired": the window closes after ``expire_after`` lines
    expire_after: int = 0
    duplicate: int = 0  # the first N answered requests appear twice in the output file
    drop: int = 0  # the last N requests are in neither file (a provider losing them)
    foreign: int = 0  # N output lines for custom_ids the input never had
    max_file_bytes: int = 200 * 2**20
    content_status: int | None = None  # GET /files/{id}/content answers this error (a misrouted gateway)
    max_requests: int = 50_000
    name: dict = field(default_factory=dict)  # {"file" or "batch": text} put into those ids (a hostile endpoint)
    # fields of every Batch object as sent replaced by these values (odd types: a hostile endpoint);
    # final_fields only once the batch reached its terminal status; upload_fields: the upload's File object
    fields: dict = field(default_factory=dict)
    final_fields: dict = field(default_factory=dict)
    upload_fields: dict = field(default_factory=dict)
    # (old, new): text replaced once in the output file's first line as sent (what json.dumps cannot
    # write: a usage count of 5,000 digits)
    output_edit: tuple[str, str] | None = None


@dataclass
class _File:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def object(self) -> dict:
        return {"id": self.id, "object": "file", "bytes": len(self.data), "created_at": self.created_at,
                "filename": self.filename, "purpose": self.purpose, "status": "processed", "expires_at": None,
                "status_details": None}


@dataclass
class _Batch:
    id: str
    input_file_id: str
    endpoint: str
    metadata: dict | None
    created: float
    model: str | None = None
    errors: list = field(default_factory=list)
    total: int = 0
    lines: list = field(default_factory=list)  # (custom_id, answered) in input order: the work to do
    results: list = field(default_factory=list)  # (custom_id, status code, body) once processed
    processed: threading.Event = field(default_factory=threading.Event)
    cancelled_at: float | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    final: str | None = None  # the terminal status once reached
    times: dict = field(default_factory=dict)  # the phases' Unix times, fixed once final
    counts: dict | None = None  # request_counts, fixed once final


class BatchAPI:
    """The Files and Batches endpoints of one server; ``answer(body) -> (status, json)`` answers
    one request line as the server's chat endpoint would (non-streamed)."""

    def _id(self, prefix: str, kind: str) -> str:
        return f"{prefix}{self.behaviour.name.get(kind, '')}{next(self._ids)}"

    def __init__(self, behaviour: BatchBehaviour, answer: Callable[[dict], tuple[int, dict]]) -> None:
        self.behaviour = behaviour
        self._answer = answer
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.files: dict[str, _File] = {}
        self.batches: dict[str, _Batch] = {}
        self.answered: list[tuple[str, str]] = []  # (batch id, custom_id) of every line run: what was paid for

    # -- routing ----------------------------------------------------------------------------
    def route(self, method: str, path: str, query: dict, raw: bytes, content_type: str) -> tuple[int, Any, str]:
        """(status, JSON payload or bytes, content type) for a Files/Batches request."""
        # ids arrive percent-encoded (the SDK quotes path parameters): an id with odd characters is found
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")[1:]]  # after "v1"
        if parts[0] == "files":
            return self._files(method, parts[1:], query, raw, content_type)
        return self._batches(method, parts[1:], query, raw)

    def _files(self, method: str, rest: list[str], query: dict, raw: bytes, content_type: str):
        if method == "POST" and not rest:
            return self._upload(raw, content_type)
        if method == "GET" and not rest:
            with self._lock:
                data = [f.object() for f in self.files.values()]
            return 200, {"object": "list", "data": data, "has_more": False}, "application/json"
        file = self.files.get(rest[0]) if rest else None
        if file is None:
            return _error(404, f"No such File object: {rest[0] if rest else ''}")
        if method == "GET" and rest[1:] == ["content"]:
            if self.behaviour.content_status is not None:
                return _error(self.behaviour.content_status, f"Cannot read the content of {file.id}.")
            return 200, file.data, "application/octet-stream"
        if method == "GET" and len(rest) == 1:
            return 200, file.object(), "application/json"
        if method == "DELETE" and len(rest) == 1:
            with self._lock:
                self.files.pop(file.id, None)
            return 200, {"id": file.id, "object": "file", "deleted": True}, "application/json"
        return _error(404, f"Invalid URL ({method} /v1/files/{'/'.join(rest)})")

    def _upload(self, raw: bytes, content_type: str):
        fields = parse_multipart(raw, content_type)
        upload, purpose = fields.get("file"), fields.get("purpose", (None, b""))[1].decode()
        if upload is None:
            return _error(400, "Missing required parameter: 'file'.")
        if purpose not in ("batch", "assistants", "fine-tune", "vision", "user_data", "evals"):
            return _error(400, f"Invalid value for 'purpose': {purpose!r}.")
        if len(upload[1]) > self.behaviour.max_file_bytes:
            return _error(400, f"File is too large: {len(upload[1])} bytes, at most "
                               f"{self.behaviour.max_file_bytes} for purpose 'batch'.")
        file = _File(self._id("file-fake", "file"), upload[0] or "upload", purpose, upload[1], int(time.time()))
        with self._lock:
            self.files[file.id] = file
        return 200, {**file.object(), **self.behaviour.upload_fields}, "application/json"

    def _batches(self, method: str, rest: list[str], query: dict, raw: bytes):
        if method == "POST" and not rest:
            return self._create(raw)
        if method == "GET" and not rest:
            return 200, self._list(query), "application/json"
        batch = self.batches.get(rest[0]) if rest else None
        if batch is None:
            return _error(404, f"No batch found with id '{rest[0] if rest else ''}'.")
        if method == "GET" and len(rest) == 1:
            return 200, self.describe(batch), "application/json"
        if method == "POST" and rest[1:] == ["cancel"]:
            return self._cancel(batch)
        return _error(404, f"Invalid URL ({method} /v1/batches/{'/'.join(rest)})")

    # -- batches ----------------------------------------------------------------------------
    def _create(self, raw: bytes):
        try:
            body = json.loads(raw)
        except ValueError:
            return _error(400, "We could not parse the JSON body of your request.")
        if body.get("completion_window") != "24h":
            return _error(400, "Invalid value for 'completion_window': only '24h' is supported.")
        if body.get("endpoint") not in ENDPOINTS:
            return _error(400, f"Invalid value for 'endpoint': {body.get('endpoint')!r}.")
        file = self.files.get(str(body.get("input_file_id")))
        if file is None or file.purpose != "batch":
            return _error(400, f"Invalid 'input_file_id': {body.get('input_file_id')!r} is not a batch file.")
        batch = _Batch(self._id("batch_fake", "batch"), file.id, body["endpoint"], body.get("metadata"), time.time())
        with self._lock:
            self.batches[batch.id] = batch
        created = self.describe(batch)  # before any work: a new batch is always validating
        threading.Thread(target=self._validate_and_run, args=(batch, file.data), daemon=True).start()
        return 200, created, "application/json"

    def _validate_and_run(self, batch: _Batch, data: bytes) -> None:
        requests = self._validate(batch, data)
        if not batch.errors:
            for custom_id, line in requests:
                batch.results.append((custom_id, *self._answer(line["body"])))
        batch.processed.set()

    def _validate(self, batch: _Batch, data: bytes) -> list[tuple[str, dict]]:
        seen: set[str] = set()
        requests: list[tuple[str, dict]] = []
        models: set[str] = set()
        for number, text in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if not text.strip():
                continue
            problem, line = _check_line(text, batch.endpoint, seen)
            if problem:
                batch.errors.append({"code": problem[0], "line": number, "message": problem[1], "param": None})
                continue
            seen.add(line["custom_id"])
            models.add(str(line["body"].get("model")))
            requests.append((line["custom_id"], line))
        if len(models) > 1:
            batch.errors.append({"code": "mixed_models", "line": None, "param": "body.model",
                                 "message": "Each input file can only include requests to a single model."})
        if len(requests) > self.behaviour.max_requests:
            batch.errors.append({"code": "too_many_requests", "line": None, "param": None,
                                 "message": f"A batch can have at most {self.behaviour.max_requests} requests."})
        batch.total, batch.model = len(requests), next(iter(models), None)
        return requests

    def _cancel(self, batch: _Batch):
        status = self.describe(batch)["status"]
        if status in TERMINAL or status == "cancelling":
            return _error(409, f"Cannot cancel a batch with status '{status}'.")
        batch.cancelled_at = time.time()
        return 200, self.describe(batch), "application/json"

    def _list(self, query: dict) -> dict:
        with self._lock:
            ordered = sorted(self.batches.values(), key=lambda b: b.created, reverse=True)  # newest first
        after = query.get("after")
        if after:
            ids = [b.id for b in ordered]
            ordered = ordered[ids.index(after) + 1:] if after in ids else []
        limit = max(1, min(100, int(query.get("limit") or 20)))
        page = [self.describe(b) for b in ordered[:limit]]
        return {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None, "has_more": len(ordered) > limit}

    # -- the state machine -------------------------------------------------------------------
    def _status(self, batch: _Batch, now: float) -> tuple[str, dict]:
        """The batch's status now and the Unix times of the phases it has passed."""
        b = self.behaviour
        t = {"created_at": batch.created}
        validated = batch.created + b.validating_s
        if batch.final is not None:
            return batch.final, batch.times
        if now < validated or not batch.processed.is_set():
            if batch.cancelled_at is not None:
                return self._cancelling(batch, now, t)
            return "validating", t
        if batch.errors:
            return self._finish(batch, "failed", validated, t)
        t["in_progress_at"] = validated
        if batch.cancelled_at is not None:
            return self._cancelling(batch, now, t)
        running_until = validated + b.in_progress_s
        if now < running_until:
            return "in_progress", t
        if b.outcome == "expired":
            return self._finish(batch, "expired", running_until, t)
        t["finalizing_at"] = running_until
        if now < running_until + b.finalizing_s:
            return "finalizing", t
        return self._finish(batch, "completed", running_until + b.finalizing_s, t)

    def _cancelling(self, batch: _Batch, now: float, t: dict) -> tuple[str, dict]:
        assert batch.cancelled_at is not None
        t["cancelling_at"] = batch.cancelled_at
        if now < batch.cancelled_at + self.behaviour.cancelling_s or not batch.processed.is_set():
            return "cancelling", t
        return self._finish(batch, "cancelled", batch.cancelled_at + self.behaviour.cancelling_s, t)

    def _finish(self, batch: _Batch, status: str, at: float, times: dict) -> tuple[str, dict]:
        """Reach a terminal status once: write the output and error files."""
        with self._lock:
            if batch.final is None:
                self._write_files(batch, status, self._done_lines(batch, status))
                batch.times = {**times, f"{status}_at": at}
                batch.final = status
        return batch.final, batch.times

    def _done_lines(self, batch: _Batch, status: str) -> int:
        """How many lines ran before the batch ended (all of them, for a completed batch)."""
        if status == "expired":
            return min(self.behaviour.expire_after, batch.total)
        if status == "cancelled":
            b = self.behaviour
            ran = (batch.cancelled_at or batch.created) - batch.created - b.validating_s
            share = 0.0 if ran <= 0 else min(1.0, ran / b.in_progress_s) if b.in_progress_s else 1.0
            return int(batch.total * share)
        return batch.total if status == "completed" else 0

    def _write_files(self, batch: _Batch, status: str, done: int) -> None:
        b = self.behaviour
        kept = batch.results[:max(0, len(batch.results) - b.drop)] if status == "completed" else batch.results
        ok_lines, error_lines = [], []
        for i, (custom_id, code, body) in enumerate(kept):
            if i >= done:
                if status in ("expired", "cancelled"):
                    error_lines.append(_line(custom_id, None, {"code": f"batch_{status}", "message": _UNRUN[status]}))
                continue
            self.answered.append((batch.id, custom_id))
            line = _line(custom_id, {"status_code": code, "request_id": f"req_fake{next(self._ids)}", "body": body})
            (ok_lines if code == 200 else error_lines).append(line)
        ok_lines += ok_lines[:b.duplicate]
        ok_lines += [_line(f"never-sent-{k}", {"status_code": 200, "request_id": "req_x", "body": {}})
                     for k in range(b.foreign)]
        ok_lines.reverse()  # no order is promised
        if b.output_edit and ok_lines:
            ok_lines[0] = ok_lines[0].replace(*b.output_edit, 1)
        batch.output_file_id = self._store_file(batch, "output", ok_lines)
        batch.error_file_id = self._store_file(batch, "error", error_lines)
        answered = sum(1 for _, code, _ in kept[:done] if code == 200)
        batch.counts = {"total": batch.total, "completed": answered, "failed": batch.total - answered}

    def _store_file(self, batch: _Batch, kind: str, lines: list[str]) -> str | None:
        if not lines:
            return None
        file = _File(f"file-fake{next(self._ids)}", f"{batch.id}_{kind}.jsonl", "batch_output",
                     ("\n".join(lines) + "\n").encode(), int(time.time()))
        self.files[file.id] = file
        return file.id

    def describe(self, batch: _Batch) -> dict:
        """The Batch object, as ``client.batches.retrieve`` returns it."""
        status, times = self._status(batch, time.time())
        counts = batch.counts or self._running_counts(batch, status, times)
        payload = {
            "id": batch.id, "object": "batch", "endpoint": batch.endpoint, "model": batch.model,
            "errors": {"object": "list", "data": batch.errors} if batch.errors else None,
            "input_file_id": batch.input_file_id, "completion_window": "24h", "status": status,
            "output_file_id": batch.output_file_id, "error_file_id": batch.error_file_id,
            "expires_at": int(batch.created + 86400), "request_counts": counts, "metadata": batch.metadata,
            **{f"{phase}_at": None for phase in ("in_progress", "finalizing", "completed", "failed", "expired",
                                                 "cancelling", "cancelled")},
        }
        payload.update({k: int(v) for k, v in times.items() if v is not None})
        payload.update(self.behaviour.fields)
        if status in TERMINAL:
            payload.update(self.behaviour.final_fields)
        return payload

    def _running_counts(self, batch: _Batch, status: str, times: dict) -> dict:
        if status == "validating":
            return {"total": 0, "completed": 0, "failed": 0}
        b = self.behaviour
        started = times.get("in_progress_at") or batch.created
        share = min(1.0, (time.time() - started) / b.in_progress_s) if b.in_progress_s else 1.0
        return {"total": batch.total, "completed": int(batch.total * share), "failed": 0}

    def state(self) -> dict:
        """For the subprocess admin endpoint: files, batches and what was answered."""
        return {"answered": self.answered, "behaviour": asdict(self.behaviour),
                "batches": [self.describe(b) for b in self.batches.values()]}


_UNRUN = {"expired": "This request could not be executed before the completion window expired.",
          "cancelled": "This request was not executed: the batch was cancelled."}


def _check_line(text: str, endpoint: str, seen: set[str]) -> tuple[tuple[str, str] | None, dict]:
    try:
        line = json.loads(text)
    except ValueError:
        return ("invalid_json_line", "This line is not parseable as valid JSON."), {}
    if not isinstance(line, dict) or not isinstance(line.get("body"), dict):
        return ("invalid_request", "Each line must be an object with a 'body' object."), {}
    custom_id = line.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return ("missing_required_parameter", "Missing required parameter: 'custom_id'."), {}
    if custom_id in seen:
        return ("duplicate_custom_id", f"The custom_id '{custom_id}' is not unique within the batch."), {}
    if line.get("method") != "POST":
        return ("invalid_method", "Only POST is supported."), {}
    if line.get("url") != endpoint:
        return ("mismatched_url", f"The url {line.get('url')!r} does not match the batch endpoint {endpoint!r}."), {}
    return None, line


def _line(custom_id: str, response: dict | None, error: dict | None = None) -> str:
    return json.dumps({"id": f"batch_req_{custom_id}", "custom_id": custom_id, "response": response,
                       "error": error})


def _error(status: int, message: str) -> tuple[int, dict, str]:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return status, {"error": {"message": message, "type": kind, "param": None, "code": None}}, "application/json"


def parse_multipart(raw: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    """``multipart/form-data`` fields → {name: (filename or None, bytes)}."""
    if "boundary=" not in content_type:
        return {}
    boundary = content_type.split("boundary=", 1)[1].split(";")[0].strip().strip('"').encode()
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in raw.split(b"--" + boundary)[1:]:
        if part.startswith(b"--"):
            break
        head, _, body = part.lstrip(b"\r\n").partition(b"\r\n\r\n")
        disposition = next((h for h in head.decode("utf-8", "replace").split("\r\n")
                            if h.lower().startswith("content-disposition")), "")
        params = dict(_param(p) for p in disposition.split(";")[1:])
        if "name" in params:
            fields[params["name"]] = (params.get("filename"), body[:-2] if body.endswith(b"\r\n") else body)
    return fields


def _param(text: str) -> tuple[str, str]:
    key, _, value = text.strip().partition("=")
    return key, value.strip('"')
