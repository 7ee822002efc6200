"""Sweeps through the Batch API: ``/v1/files`` + ``/v1/batches`` instead of one live call each.

A sweep's jobs are written as JSONL, one **part** per model and at most ``MAX_REQUESTS`` lines or
``MAX_BYTES`` (OpenAI's limits: 50,000 requests, 200 MB), each uploaded and created as its own
batch. Every step is in the log *before* the next one is taken, so a restarted kernel (or
``llmlab batch resume``) carries on from the log and never sends a request twice:

1. **planned** — the part's row and each request's row-to-be (``batch_parts``/``batch_requests``
   of migration m007), written as the JSONL is;
2. **uploaded** — the input file's id; a part found here on resume is looked up among the
   endpoint's batches by its ``metadata.llmlab_part`` before anything is created (a batch
   created just before a crash is adopted, not paid for twice);
3. **submitted** — the batch id and, from then on, its status, polled with backoff;
4. **stored** — the output and error files read a line at a time: each answer becomes an
   ordinary row (``batch_id`` set, ``latency_s`` = the batch's wall time, the cost at the sheet's
   batch price or the endpoint's reported one), each failed line an error row, each request the
   batch did not answer an error row that says why (as does each request of a results file the
   endpoint no longer has: a resume sends those again). Rows already stored from that batch are
   skipped, so a collection cut short and resumed counts nothing twice; an output line for a
   request already answered (a duplicate) or never sent is left out and said in one warning.

An endpoint without the Batch API is an :class:`~llmlab.EndpointError` in one line before
anything is uploaded (``batch="auto"`` sends the calls live instead).
"""
from __future__ import annotations

import asyncio
import json
import math
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, ClassVar, Literal

import openai

from ..base._display import clean_text
from ..base._errors import EndpointError
from ..base._json import loads
from ..base._record import Record
from ..base._validate import one_line
from ..base._warnings import emit
from ._batchview import STATUSES, TERMINAL, BatchView, read_batch, read_field, uploaded_id
from ._call import RETRYABLE_STATUSES, add_note, record_answer, status_error_type
from ._headers import retry_hint
from ._runner import Job, RunContext, cache_key, new_record, redact_record

__all__ = ["BatchSession", "MAX_REQUESTS", "MAX_BYTES", "TERMINAL", "BatchWarning", "pending_requests"]

MAX_REQUESTS = 50_000  # per batch: OpenAI's limit
MAX_BYTES = 190 * 2**20  # per input file: OpenAI's 200 MB, less room for the multipart framing
POLL_FIRST_S, POLL_MAX_S, POLL_GROWTH = 0.5, 60.0, 1.5
# How long a batch may stay unfinished: its completion window (24 h from created_at, or the
# endpoint's expires_at if later), then this grace for the endpoint to mark it expired; past that,
# polling stops with an EndpointError (the batch stays in the log: a resume looks again).
WINDOW_S, GRACE_S = 86_400.0, 3_600.0
_URL: Literal["/v1/chat/completions"] = "/v1/chat/completions"
# What the endpoint names a file or a batch by, and its status: kept in the log as it is.
_ENDPOINT_IDS = ("id", "status", "input_file_id", "output_file_id", "error_file_id")
_CHUNK = 1000  # requests per log write, lines per stored chunk
_UNSUPPORTED = (404, 405, 501)
# A request a finished batch did not answer, by the batch's final status: (error_type, why).
_UNANSWERED = {
    "completed": ("BatchMissing", "the batch completed without an answer or an error for this request"),
    "expired": ("BatchExpired", "the batch expired (24 h window) before this request ran"),
    "cancelled": ("Cancelled", "the batch was cancelled before this request ran"),
    "failed": ("BatchFailed", "the batch failed validation"),
}


_LINE_ERRORS = {"batch_expired": "BatchExpired", "batch_cancelled": "Cancelled"}
# A results file the endpoint no longer has (OpenAI deletes batch files after 30 days; a user may
# delete them): its requests can never be collected, so they become error rows a resume re-sends.
_GONE = (404, 410)


class BatchWarning(UserWarning):
    """A Batch API output file said something odd (duplicate or unknown lines); nothing was stored twice."""

    __module__ = "llmlab"


@dataclass
class _Part:
    """A part being written: its JSONL on disk, requests not yet in the log."""

    part_id: str
    model: str
    index: int
    file: IO[bytes]
    count: int = 0
    size: int = 0
    pending: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class BatchSession:
    """One run's batches: submit jobs, wait for and store their results, cancel, report."""

    ctx: RunContext
    run_id: str
    progress: Any = None
    on_record: Callable[[Record], None] | None = None
    # The limits and the first poll's wait, as class attributes (tests shrink them)
    poll_first_s: ClassVar[float] = POLL_FIRST_S
    window_s: ClassVar[float] = WINDOW_S
    grace_s: ClassVar[float] = GRACE_S
    max_requests: ClassVar[int] = MAX_REQUESTS
    max_bytes: ClassVar[int] = MAX_BYTES
    _shown: int = 0  # requests the progress bar shows as done
    _parts: dict[str, _Part] = field(default_factory=dict)  # each model's part being written
    _counts: dict[str, int] | None = None
    _warned: set[tuple] = field(default_factory=set)  # (batch id, odd fields) said in a warning

    # -- the endpoint -------------------------------------------------------------------------
    async def check_support(self) -> None:
        """One cheap GET: an endpoint without the Batch API is refused before anything is uploaded."""
        try:
            page = await self.ctx.client.batches.list(limit=1)
            _ = page.data
        except openai.APIStatusError as exc:
            if exc.status_code in _UNSUPPORTED:
                raise EndpointError(
                    f"the endpoint at {self.ctx.endpoint} does not offer the Batch API (GET /batches answered "
                    f"HTTP {exc.status_code}): run the sweep without batch=True, or with batch='auto' to make "
                    "these calls live instead") from None
            raise self._failed("reach the Batch API", exc) from None
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            raise self._failed("reach the Batch API", exc) from None

    async def _control(self, what: str, call: Callable[[], Awaitable[Any]]) -> Any:
        """A files/batches request, retried on 429/5xx/connection errors like a live call."""
        number = 0
        while True:
            try:
                return self._checked(what, await call())
            except openai.APIStatusError as exc:
                if exc.status_code not in RETRYABLE_STATUSES:
                    raise self._failed(what, exc) from None
                wait = self.ctx.retry.wait_for(number, retry_hint(exc.response.headers, exc.status_code))
                failure: Exception = exc
            except (openai.APIConnectionError, openai.APITimeoutError) as exc:
                wait, failure = self.ctx.retry.wait_for(number, None), exc
            if wait is None:
                raise self._failed(what, failure) from None
            number += 1
            await asyncio.sleep(wait)

    def _checked(self, what: str, reply: Any) -> Any:
        """``reply`` once its ids and status hold no secret: the log keeps them and llmlab sends
        them back to poll or cancel, so (unlike answer text) they cannot be redacted — refused."""
        for name in _ENDPOINT_IDS:
            value = getattr(reply, name, None)
            if isinstance(value, str) and self.ctx.redact(value) != value:
                raise EndpointError(
                    f"cannot {what} at {self.ctx.endpoint}: the {name} it answered holds your API key (or "
                    f"part of it), which llmlab neither stores nor sends back; ask the endpoint's operator")
        return reply

    def _failed(self, what: str, exc: Exception) -> EndpointError:
        detail = exc.message if isinstance(exc, openai.APIError) else str(exc)
        status = f" (HTTP {exc.status_code})" if isinstance(exc, openai.APIStatusError) else ""
        return EndpointError(self.ctx.redact.message(one_line(
            f"cannot {what} at {self.ctx.endpoint}{status}: {detail}; the run's batches are in the log — "
            f"carry on with lab.batch_resume({self.run_id!r}) (or llmlab batch resume {self.run_id})")))

    def _view(self, reply: Any) -> BatchView:
        """A Batch object the endpoint answered, read by the one tolerant reader; a field of the
        wrong type or value (absent from then on) or an unknown status is said once per batch."""
        view = read_batch(reply)
        if view.odd and (view.id, view.odd) not in self._warned:
            self._warned.add((view.id, view.odd))
            message = self.ctx.redact.message(one_line(_odd_fields(view, self.run_id), 1000))
            if "status" in view.odd:  # the wait may last hours; a warning shows only when the call returns
                print(f"llmlab: {clean_text(message)}", file=sys.stderr)
            emit(BatchWarning(message))
        return view

    def _no_id(self, what: str, reply: Any, after: str) -> EndpointError:
        sent = read_field(reply, "id")
        return EndpointError(self.ctx.redact.message(one_line(
            f"cannot {what} at {self.ctx.endpoint}: its answer has no usable id (id: {type(sent).__name__} "
            f"{sent!r:.60}); {after}")))

    # -- submitting ---------------------------------------------------------------------------
    async def plan(self, jobs: Iterable[Job]) -> int:
        """Write ``jobs`` into their model's open part, sending each part that fills up (upload,
        create); how many requests were planned. :meth:`send_open` sends the rest."""
        if self._counts is None:  # parts per model so far: a resumed run's new parts number on
            self._counts = {}
            for known in self.ctx.store.batch_parts(self.run_id):
                self._counts[known["model"]] = self._counts.get(known["model"], 0) + 1
        total = 0
        for job in jobs:
            model = job.models[0]
            line, record = self._request(job, model)
            part = self._parts.get(model)
            if part is not None and (part.count >= self.max_requests or part.size + len(line) > self.max_bytes):
                await self._send(self._parts.pop(model))
                part = None
            if part is None:
                part = self._parts[model] = self._open(model, self._counts.get(model, 0))
                self._counts[model] = self._counts.get(model, 0) + 1
            part.file.write(line)
            part.count, part.size = part.count + 1, part.size + len(line)
            part.pending.append((job.request_id, record))
            total += 1
            if len(part.pending) >= _CHUNK:
                await self._keep(part)
        return total

    async def send_open(self) -> None:
        """Send every part still open (the last of each model)."""
        for model in list(self._parts):
            await self._send(self._parts.pop(model))

    def discard_open(self) -> None:
        """Planning was cut short: the open parts were never sent (their log rows say "planning",
        which a resume drops)."""
        for part in self._parts.values():
            part.file.close()
        self._parts.clear()

    def _request(self, job: Job, model: str) -> tuple[bytes, str]:
        """The request's JSONL line, and its row-to-be (with its cache key) as JSON."""
        body = {"model": model, "messages": job.messages, **job.bodies[model]}
        line = json.dumps({"custom_id": job.request_id, "method": "POST", "url": _URL, "body": body},
                          ensure_ascii=False).encode() + b"\n"
        record = new_record(self.ctx, self.run_id, job, model)
        skeleton = {name: getattr(record, name) for name in _SKELETON}
        skeleton["_cache_key"] = cache_key(self.ctx.endpoint, model, job) if job.use_cache else None
        return line, json.dumps(skeleton, ensure_ascii=False)

    def _open(self, model: str, index: int) -> _Part:
        part_id = uuid.uuid4().hex[:16]
        self.ctx.store.add_batch_part({"part_id": part_id, "run_id": self.run_id, "model": model, "part": index,
                                       "endpoint": self.ctx.endpoint, "requests": 0, "status": "planning",
                                       "created_at": _now()})
        return _Part(part_id, model, index, tempfile.TemporaryFile())

    async def _keep(self, part: _Part) -> None:
        rows, part.pending = part.pending, []
        await asyncio.to_thread(self.ctx.store.add_batch_requests, part.part_id, rows)

    async def _send(self, part: _Part) -> None:
        """Log the part's requests, then upload its file and create its batch, logging each step."""
        await self._keep(part)
        self.ctx.store.update_batch_part(part.part_id, requests=part.count, status="planned")
        try:
            await self._upload_and_create(part.part_id, part.file)
        finally:
            part.file.close()

    async def _upload_and_create(self, part_id: str, file: IO[bytes]) -> None:
        file.seek(0)
        uploaded = await self._control("upload a batch file", lambda: self.ctx.client.files.create(
            file=(f"llmlab-{part_id}.jsonl", file, "application/jsonl"), purpose="batch"))
        new_id = uploaded_id(uploaded)
        if new_id is None:
            raise self._no_id("upload a batch file", uploaded, "no batch was created from it")
        self.ctx.store.update_batch_part(part_id, input_file_id=new_id, status="uploaded")
        await self._create(part_id, new_id)

    async def _create(self, part_id: str, input_file_id: str) -> None:
        reply = await self._control("create a batch", lambda: self.ctx.client.batches.create(
            input_file_id=input_file_id, endpoint=_URL, completion_window="24h",
            metadata={"llmlab_run": self.run_id, "llmlab_part": part_id}))
        batch = self._view(reply)
        if batch.id is None:
            raise self._no_id("create a batch", reply, f"the batch may run: lab.batch_resume({self.run_id!r}) "
                                                       "looks for it among the endpoint's batches")
        self.ctx.store.update_batch_part(part_id, batch_id=batch.id, status=batch.status)

    async def _resubmit(self, part: dict) -> None:
        """A part the log says was never created (or may have been, just before a crash)."""
        if part["status"] == "planning":  # cut short while planning: nothing was sent
            self.ctx.store.drop_batch_part(part["part_id"])
            return
        if part["status"] == "uploaded":
            found = await self._find(part["part_id"], part["created_at"])
            if found is not None:
                self.ctx.store.update_batch_part(part["part_id"], batch_id=found.id, status=found.status)
                return
        with tempfile.TemporaryFile() as file:
            for _, record in self.ctx.store.batch_requests(part["part_id"]):
                file.write(_line_of(loads(record or "{}")))
            await self._upload_and_create(part["part_id"], file)

    async def _find(self, part_id: str, planned_at: str) -> Any:
        """The endpoint's batch created for ``part_id`` (by its metadata), if there is one: the
        listing is newest first, so it stops at batches older than the part."""
        since = datetime.fromisoformat(planned_at).timestamp() - 60
        async for batch in self.ctx.client.batches.list(limit=100):
            seen = read_batch(batch)  # others' batches too: never a warning for those
            if seen.part == part_id and seen.id is not None:
                return self._view(self._checked("find a batch", batch))
            if seen.created_at is not None and seen.created_at < since:
                break
        return None

    # -- waiting and storing ------------------------------------------------------------------
    async def finish(self) -> None:
        """Create what the log says is not yet created, then poll every unfinished batch of the
        run (backing off to a minute) and store each as soon as it ends."""
        for part in self.ctx.store.batch_parts(self.run_id):
            if part["batch_id"] is None:
                await self._resubmit(part)
        waiting = [p for p in self.ctx.store.batch_parts(self.run_id) if p["status"] != "stored"]
        self._advance(sum(p["requests"] for p in self.ctx.store.batch_parts(self.run_id)
                          if p["status"] == "stored") - self._shown)
        delay, since = self.poll_first_s, time.time()
        while waiting:
            running: dict[str, int] = {}
            for part in list(waiting):
                batch = await self._retrieve(part["batch_id"])
                if batch.status != part["status"]:
                    self.ctx.store.update_batch_part(part["part_id"], status=batch.status)
                if batch.finished:
                    await self._store(part, batch)
                    waiting.remove(part)
                else:
                    self._check_window(part["batch_id"], batch, since)
                    running[part["part_id"]] = (batch.completed or 0) + (batch.failed or 0)
            stored = sum(p["requests"] for p in self.ctx.store.batch_parts(self.run_id) if p["status"] == "stored")
            self._advance(stored + sum(running.values()) - self._shown)
            if waiting:
                await asyncio.sleep(delay)
                delay = min(delay * POLL_GROWTH, POLL_MAX_S)

    async def _retrieve(self, batch_id: str) -> BatchView:
        return self._view(await self._control("read a batch's status",
                                              lambda: self.ctx.client.batches.retrieve(batch_id)))

    def _check_window(self, batch_id: str, batch: BatchView, since: float) -> None:
        """Stop waiting for a batch still unfinished ``grace_s`` after its completion window ended
        (its created_at + 24 h or its expires_at, whichever is later; without either, 24 h from
        when this wait began): the endpoint should have expired it by then."""
        ends = [t for t in (batch.expires_at, batch.created_at and batch.created_at + self.window_s) if t]
        end = max(ends) if ends else since + self.window_s
        if time.time() <= end + self.grace_s:
            return
        raise EndpointError(self.ctx.redact.message(one_line(
            f"batch {batch_id} at {self.ctx.endpoint} is still {batch.status} "
            f"{(time.time() - end) / 3600:.1f} h after its completion window ended "
            f"({datetime.fromtimestamp(end, UTC):%Y-%m-%d %H:%M} UTC): llmlab stopped waiting for it; "
            f"the run's batches are in the log — look again later with lab.batch_resume({self.run_id!r}) "
            f"(or llmlab batch resume {self.run_id}), or cancel them with lab.batch_cancel({self.run_id!r})")))

    def _advance(self, n: int) -> None:
        if self.progress is not None and n > 0:
            self.progress.update(n)
            self._shown += n

    async def _store(self, part: dict, batch: BatchView) -> None:
        """Every request of a finished batch as a row: answers, failed lines, unanswered ones."""
        collector = _Collector(self, part, batch, self.ctx.store.stored_requests(self.run_id, part["batch_id"]))
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                await collector.read(file_id)
        await collector.unanswered()
        collector.warn()
        self.ctx.store.update_batch_part(part["part_id"], status="stored", stored_at=_now())

    async def cancel(self) -> int:
        """Ask the endpoint to cancel every unfinished batch of the run; how many were."""
        cancelled = 0
        for part in self.ctx.store.batch_parts(self.run_id):
            if part["batch_id"] is None or part["status"] in (*TERMINAL, "stored", "cancelling"):
                continue
            try:
                batch = self._view(self._checked("cancel a batch",
                                                 await self.ctx.client.batches.cancel(part["batch_id"])))
            except openai.APIStatusError as exc:
                if exc.status_code != 409:  # 409: it has just finished; stored like any other
                    raise self._failed("cancel a batch", exc) from None
                continue
            self.ctx.store.update_batch_part(part["part_id"], status=batch.status)
            cancelled += 1
        return cancelled

    async def status(self) -> list[dict]:
        """The run's parts as the log has them, each unfinished one's status asked afresh."""
        rows = []
        for part in self.ctx.store.batch_parts(self.run_id):
            row = {**part, "completed": math.nan, "failed": math.nan}
            if part["batch_id"] is not None and part["status"] != "stored":
                batch = await self._retrieve(part["batch_id"])
                row.update(status=batch.status, completed=_or_nan(batch.completed), failed=_or_nan(batch.failed))
            rows.append(row)
        return rows


# What a request's row-to-be keeps (the rest is filled from its answer).
_SKELETON = ("run_id", "request_id", "prompt_id", "requested_model", "prompt", "messages", "params", "endpoint",
             "api_key_env", "task", "expected", "repeat", "policy", "route_reason", "seq", "reasoning_effort",
             "conversation_hash", "turns")


class _Collector:
    """Turns one finished batch's output and error files into rows, a chunk of lines at a time."""

    def __init__(self, session: BatchSession, part: dict, batch: BatchView, stored: set[str]) -> None:
        self.s, self.part, self.batch = session, part, batch
        self.before = stored  # custom_ids (= request ids) stored by an earlier collection cut short
        self.seen: set[str] = set()  # custom_ids read in this one
        self.duplicates = self.foreign = self.unreadable = 0
        self.gone: list[str] = []  # "file-… (HTTP 404)" of each results file the endpoint no longer has
        start, end = batch.created_at, batch.ended_at
        self.started_at = datetime.fromtimestamp(start, UTC).isoformat() if start else _now()
        self.latency = float(end - start) if start and end and end >= start else math.nan
        # said on each row: what of the Batch object was unreadable (and so what is unknown)
        self.note = (f"the batch's {', '.join(batch.odd)} had the wrong type or value (read as absent"
                     f"{'; latency unknown' if math.isnan(self.latency) else ''})") if batch.odd else None

    async def read(self, file_id: str) -> None:
        lines: list[str] = []
        content = self.s.ctx.client.files.with_streaming_response.content
        try:
            async with content(file_id) as response:
                async for text in response.iter_lines():
                    if text.strip():
                        lines.append(text)
                    if len(lines) >= _CHUNK:
                        await self._rows(lines)
                        lines = []
        except openai.APIStatusError as exc:
            if exc.status_code not in _GONE or not await self._file_gone(file_id):
                raise self.s._failed("download a batch's results", exc) from None
            self.gone.append(f"{file_id} (HTTP {exc.status_code})")
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            raise self.s._failed("download a batch's results", exc) from None
        await self._rows(lines)

    async def _file_gone(self, file_id: str) -> bool:
        """Whether the endpoint has no such file at all (not merely no content route for it, as a
        misrouted gateway may answer): only then are its requests given up on."""
        try:
            await self.s.ctx.client.files.retrieve(file_id)
        except openai.APIStatusError as exc:
            return exc.status_code in _GONE
        except openai.APIError:  # unreachable now: not known to be gone
            return False
        return False

    async def _rows(self, lines: list[str]) -> None:
        parsed: dict[str, dict] = {}
        for text in lines:
            try:
                line = loads(text)
                custom_id = line["custom_id"]
            except (ValueError, KeyError, TypeError):
                custom_id = None
            if not isinstance(custom_id, str):  # not a line of the format (a list, an object without one)
                self.unreadable += 1
                continue
            if custom_id in self.seen or custom_id in parsed:
                self.duplicates += 1
                continue
            if custom_id in self.before:  # its row is in the log already
                self.seen.add(custom_id)
                continue
            parsed[custom_id] = line
        known = dict(self.s.ctx.store.batch_requests(self.part["part_id"], list(parsed)))
        self.foreign += len(parsed) - len(known)
        records = [self._record(loads(known[cid] or "{}"), parsed[cid]) for cid in parsed if cid in known]
        await self._insert(records)

    async def _insert(self, records: list[tuple[Record, str | None]]) -> None:
        if not records:
            return
        rows, keys = [r for r, _ in records], [k for _, k in records]
        for row in rows:  # endpoint text may echo the key: never stored or shown
            if self.note is not None:
                add_note(row, self.note)
            redact_record(row, self.s.ctx.redact)
        await asyncio.to_thread(self.s.ctx.store.insert, rows, keys)
        self.seen.update(r.request_id for r in rows)
        if self.s.on_record is not None:
            for record in rows:
                self.s.on_record(record)

    def _base(self, skeleton: dict) -> tuple[Record, str | None]:
        key = skeleton.pop("_cache_key", None)
        record = Record(**{**skeleton, "stream": False})
        record.batch_id, record.started_at, record.latency_s = self.part["batch_id"], self.started_at, self.latency
        return record, key

    def _record(self, skeleton: dict, line: dict) -> tuple[Record, str | None]:
        record, key = self._base(skeleton)
        ctx, response, error = self.s.ctx, line.get("response"), line.get("error")
        if isinstance(response, dict) and response.get("status_code") == 200:
            record_answer(record, response.get("body"), record.messages, ctx.counter, ctx.prices, ctx.redact)
            return record, key
        record.status = "error"
        reply = response if isinstance(response, dict) else {}
        status = reply.get("status_code")
        if isinstance(status, int) and not isinstance(status, bool) and 100 <= status < 600:
            body = reply.get("body")
            inner = body.get("error", body) if isinstance(body, dict) else body
            message = inner.get("message") if isinstance(inner, dict) else inner
            record.error_type = status_error_type(status)
            record.error_message = f"HTTP {status} in the batch: {message or 'no message'}"
        elif isinstance(error, dict):
            code = str(error.get("code") or "")
            record.error_type = _LINE_ERRORS.get(code, "BatchError")
            record.error_message = f"{code or 'error'}: {error.get('message') or 'no message'}"
        elif isinstance(response, dict):
            record.error_type = "MalformedResponse"
            record.error_message = (f"the batch's line has a response whose status_code is "
                                    f"{response.get('status_code')!r:.40}, not an HTTP status")
        else:
            record.error_type, record.error_message = "MalformedResponse", "the batch's line has no response or error"
        record.error_message = ctx.redact.message(one_line(record.error_message, 500))
        return record, None

    async def unanswered(self) -> None:
        """Error rows for the part's requests in neither file (all of a failed batch's)."""
        batch = self.batch
        kind, why = _UNANSWERED.get(batch.status, _UNANSWERED["completed"])
        if batch.status == "failed" and (batch.error_line or batch.error_message):
            where = f" (line {batch.error_line})" if batch.error_line else ""
            why = f"the batch failed validation{where}: {batch.error_message or 'no message'}"
        unreadable = [name for name in ("output_file_id", "error_file_id") if name in batch.odd]
        if self.gone or unreadable:
            kind = "BatchResultsGone"
            where = (f"results file {' and '.join(self.gone)} is no longer at the endpoint" if self.gone
                     else f"{' and '.join(unreadable)} the endpoint answered is not a file id")
            why = (f"the batch's {where}, so its answer cannot be collected: resume the sweep to send the "
                   "request again")
        ids = [cid for cid, _ in self.s.ctx.store.batch_requests(self.part["part_id"], ids_only=True)]
        missing = [cid for cid in ids if cid not in self.seen and cid not in self.before]
        for start in range(0, len(missing), _CHUNK):
            chunk = dict(self.s.ctx.store.batch_requests(self.part["part_id"], missing[start:start + _CHUNK]))
            records: list[tuple[Record, str | None]] = []
            for cid in missing[start:start + _CHUNK]:
                record, _ = self._base(loads(chunk[cid] or "{}"))
                record.status, record.error_type = "error", kind
                record.error_message = self.s.ctx.redact.message(one_line(why, 500))
                records.append((record, None))
            await self._insert(records)

    def warn(self) -> None:
        odd = [f"{n} {what}" for n, what in ((self.duplicates, "duplicate line(s) for requests already answered"),
                                             (self.foreign, "line(s) for requests llmlab never sent"),
                                             (self.unreadable, "unreadable line(s)")) if n]
        if odd:
            emit(BatchWarning(f"batch {self.part['batch_id']}'s results had {', '.join(odd)}: left out, each "
                              "request is stored once"))


def pending_requests(store: Any, run_id: str) -> set[tuple[str, str, int]]:
    """(prompt_id, model, repeat) of the run's requests sent in a batch not stored yet: a resume
    never sends them again."""
    pending: set[tuple[str, str, int]] = set()
    for part in store.batch_parts(run_id):
        if part["status"] not in ("stored", "planning"):
            for _, record in list(store.batch_requests(part["part_id"])):
                row = loads(record or "{}")
                pending.add((row.get("prompt_id"), row.get("requested_model"), int(row.get("repeat") or 0)))
    return pending


def _line_of(record: dict) -> bytes:
    """A request's JSONL line rebuilt from its logged row (resume: the file was never uploaded)."""
    body = {"model": record["requested_model"], "messages": loads(record["messages"]),
            **loads(record["params"])}
    return json.dumps({"custom_id": record["request_id"], "method": "POST", "url": _URL, "body": body},
                      ensure_ascii=False).encode() + b"\n"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _or_nan(count: int | None) -> float:
    return math.nan if count is None else count


def _odd_fields(batch: BatchView, run_id: str) -> str:
    """The warning for a Batch object with fields llmlab could not read (each named) or an
    unknown status (what it is treated as, how long llmlab waits, how to stop)."""
    said = []
    if "status" in batch.odd:
        said.append(f"its status {batch.sent_status[:80]!r} is not one of the Batch API's ({', '.join(STATUSES)}): "
                    "treated as still running (stored as 'unknown'); llmlab waits until an hour after its "
                    "24 h completion window ends — interrupt to stop earlier, the batch stays in the log "
                    f"(lab.batch_resume({run_id!r}) looks again, lab.batch_cancel({run_id!r}) cancels it)")
    other = [name for name in batch.odd if name != "status"]
    if other:
        said.append(f"its {', '.join(other)} had the wrong type or value: read as absent")
    return f"batch {batch.id or '(no id)'}: " + "; ".join(said)
