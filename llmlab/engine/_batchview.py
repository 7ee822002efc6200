"""A Batch API object as llmlab reads it: every field through one tolerant reader.

The SDK builds ``Batch`` and ``FileObject`` replies without validating them, so each field is
whatever the endpoint sent: ``created_at: "yesterday"``, ``10**15``, ``errors: "boom"``, a status
of ``5``. :func:`read_batch` is the only place llmlab looks at a Batch object's fields (the
session and the collector see only a :class:`BatchView`): a field of the wrong type or out of
range is treated as absent and named in ``odd``, so the answers the endpoint holds can still be
collected — never a ``TypeError`` out of ``sweep(batch=True)``, ``batch_resume`` or the CLI.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["BatchView", "STATUSES", "TERMINAL", "UNKNOWN", "read_batch", "uploaded_id", "read_field"]

# The Batch API's statuses (OpenAI's reference); anything else is UNKNOWN, stored and shown as that.
STATUSES = ("validating", "in_progress", "finalizing", "completed", "failed", "expired", "cancelling", "cancelled")
TERMINAL = ("completed", "failed", "expired", "cancelled")
UNKNOWN = "unknown"
# Unix times a batch can have: 2000 up to 2200 (10**15 would be year 31,690,708; 1, what the SDK
# makes of ``true``, is 1970: neither is when a batch ran)
_EARLIEST, _LATEST = 946_684_800, 7_258_118_400
_MOST = 10**12  # a request count or line number beyond this is not one
_ENDS = ("completed_at", "expired_at", "cancelled_at", "failed_at")


@dataclass(frozen=True)
class BatchView:
    """The fields of a Batch object llmlab uses, each of its documented type or None."""

    id: str | None
    status: str  # one of STATUSES, or UNKNOWN
    sent_status: str  # what the endpoint sent as status, for a warning (shown escaped by emit)
    output_file_id: str | None
    error_file_id: str | None
    created_at: int | None
    ended_at: int | None  # when it reached its terminal status
    expires_at: int | None
    completed: int | None  # request_counts
    failed: int | None
    error_line: int | None  # the first of ``errors.data`` (a failed validation)
    error_message: str | None
    part: str | None  # metadata.llmlab_part: the log's part this batch was created for
    odd: tuple[str, ...]  # the fields read as absent because of their type or value

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


def read_field(obj: Any, name: str) -> Any:
    """``obj.name`` or ``obj[name]`` (the SDK keeps a nested object it could not build as a dict),
    None when absent; never raises."""
    if isinstance(obj, dict):
        return obj.get(name)
    try:
        return getattr(obj, name, None)
    except Exception:  # a property of an odd object: absent  # noqa: BLE001
        return None


class _Reader:
    """Typed getters over one object; each value that is present but not of its type is noted."""

    def __init__(self, obj: Any, prefix: str = "") -> None:
        self.obj, self.prefix = obj, prefix
        self.odd: list[str] = []

    def _bad(self, name: str) -> None:
        self.odd.append(self.prefix + name)

    def text(self, name: str) -> str | None:
        value = read_field(self.obj, name)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            return value
        self._bad(name)
        return None

    def number(self, name: str, low: int, high: int) -> int | None:
        value = read_field(self.obj, name)
        if value is None:
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isfinite(value) and low <= value <= high:
                return int(value)
        self._bad(name)
        return None

    def time(self, name: str) -> int | None:
        if read_field(self.obj, name) == 0:
            return None  # 0: an endpoint's "not yet", like None
        return self.number(name, _EARLIEST, _LATEST)

    def nested(self, name: str) -> _Reader | None:
        """A reader over the object in ``name``; None when absent (noted when it is not an object)."""
        value = read_field(self.obj, name)
        if value is None:
            return None
        if isinstance(value, (str, bytes, int, float, list, tuple)):
            self._bad(name)
            return None
        return _Reader(value, f"{self.prefix}{name}.")


def read_batch(batch: Any) -> BatchView:
    """``batch`` (an SDK ``Batch``, or anything the endpoint sent in its place) as a BatchView."""
    r = _Reader(batch)
    status = read_field(batch, "status")
    known = status if isinstance(status, str) and status in STATUSES else UNKNOWN
    if known == UNKNOWN:
        r.odd.append("status")
    counts = r.nested("request_counts")
    line, message = _first_error(r)
    metadata = r.nested("metadata")
    part = read_field(metadata.obj, "llmlab_part") if metadata is not None else None
    ends = [t for t in (r.time(name) for name in _ENDS) if t is not None]
    return BatchView(
        id=r.text("id"), status=known, sent_status=status if isinstance(status, str) else repr(status),
        output_file_id=r.text("output_file_id"), error_file_id=r.text("error_file_id"),
        created_at=r.time("created_at"), ended_at=ends[0] if ends else None, expires_at=r.time("expires_at"),
        completed=counts.number("completed", 0, _MOST) if counts else None,
        failed=counts.number("failed", 0, _MOST) if counts else None,
        error_line=line, error_message=message, part=part if isinstance(part, str) else None,
        odd=tuple(dict.fromkeys(r.odd + (counts.odd if counts else []))))


def _first_error(r: _Reader) -> tuple[int | None, str | None]:
    """The line and message of ``errors.data[0]`` (why a batch failed validation), as far as readable."""
    errors = r.nested("errors")
    if errors is None:
        return None, None
    data = read_field(errors.obj, "data")
    if data is None:
        return None, None
    first = data[0] if isinstance(data, list) and data else None
    if not isinstance(data, list) or (data and (first is None or isinstance(first, (str, int, float, list)))):
        r.odd.append("errors.data")
        return None, None
    if first is None:
        return None, None
    entry = _Reader(first, "errors.data[0].")
    line, message = entry.number("line", 1, _MOST), entry.text("message")
    r.odd.extend(entry.odd)
    return line, message


def uploaded_id(reply: Any) -> str | None:
    """A File object's id (the upload's answer), or None when it has none that is text."""
    value = read_field(reply, "id")
    return value if isinstance(value, str) and value else None
