"""``llmlab batch submit | status | resume | cancel``: Batch API sweeps from the shell.

Every batch is in the run log the moment it is created, so ``submit`` returns at once (or
``--wait``s) and ``resume`` — in this shell, another one, or a notebook's ``lab.batch_resume`` —
collects the results later without sending anything twice.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..base._json import loads
from ._format import format_summary, frame_text, say

__all__ = ["add_batch_parser", "run_batch"]

_DB_HELP = "log file or postgresql:// URL (default: LLMLAB_DB, else $LLMLAB_HOME/runs.sqlite)"


def add_batch_parser(sub: Any) -> None:
    batch = sub.add_parser("batch", allow_abbrev=False, help="sweeps through the endpoint's Batch API",
                           description="Submit a sweep as Batch API batches (half price where offered, "
                                       "answered within 24 h), follow them, collect or cancel them.")
    commands = batch.add_subparsers(dest="batch_command", required=True, metavar="ACTION")
    submit = commands.add_parser("submit", allow_abbrev=False, help="submit a sweep's requests as batches",
                                 description="Every prompt × every model, sent as one batch per model and part "
                                             "(≤ 50,000 requests); prints the run id and returns (or --wait).")
    submit.add_argument("prompts", metavar="PROMPTS", help="a .jsonl, .csv or .parquet file with a prompt "
                                                           "(or messages) column")
    submit.add_argument("--models", required=True, metavar="A,B", help="comma-separated models")
    submit.add_argument("--system", default=None, help="a system message for every prompt")
    submit.add_argument("--max-tokens", type=int, default=None, metavar="N")
    submit.add_argument("--n", type=int, default=1, metavar="K", help="repeats per model")
    submit.add_argument("--tools", default=None, metavar="JSON_OR_FILE", help="the tools (a JSON list, or a file)")
    submit.add_argument("--response-format", default=None, metavar="JSON_OR_FILE",
                        help='e.g. {"type": "json_schema", "json_schema": {...}} (JSON, or a file)')
    submit.add_argument("--params", default=None, metavar="JSON",
                        help='other request keywords as a JSON object, e.g. {"temperature": 0, "seed": 7}')
    submit.add_argument("--wait", action="store_true", help="wait for the batches and store their rows")
    status = commands.add_parser("status", allow_abbrev=False, help="where a run's batches are",
                                 description="One line per batch: its status (asked afresh), request counts.")
    status.add_argument("run_id", nargs="?", default=None, metavar="RUN_ID", help="default: every run's batches")
    resume = commands.add_parser("resume", allow_abbrev=False, help="wait for a run's batches and store them",
                                 description="Create what the log says was not yet created (never twice), wait "
                                             "for every batch of the run and store its rows.")
    resume.add_argument("run_id", metavar="RUN_ID")
    cancel = commands.add_parser("cancel", allow_abbrev=False, help="cancel a run's unfinished batches",
                                 description="Cancel the run's unfinished batches and store what they had "
                                             "answered; the rest become Cancelled error rows.")
    cancel.add_argument("run_id", metavar="RUN_ID")
    for parser in (submit, status, resume, cancel):
        parser.add_argument("--db", default=None, metavar="PATH_OR_URL", help=_DB_HELP)
        parser.add_argument("--base-url", default=None, metavar="URL",
                            help="the endpoint (default: LLMLAB_BASE_URL, else OPENAI_BASE_URL)")
        parser.add_argument("--api-key-env", default=None, metavar="NAME",
                            help="the NAME of the variable holding the key (default: LLMLAB_API_KEY, OPENAI_API_KEY)")


def run_batch(args: argparse.Namespace) -> int:
    from ..engine._lab import Lab

    with Lab(base_url=args.base_url, api_key_env=args.api_key_env, db=args.db, quiet=True) as lab:
        if args.batch_command == "submit":
            return _submit(lab, args)
        if args.batch_command == "status":
            frame = lab.batch_status(args.run_id)
            say(frame_text(frame.drop(columns=["endpoint"])) if len(frame) else "no batches in the log")
            return 0
        progress = sys.stderr.isatty()
        result = lab.batch_cancel(args.run_id, progress=progress) if args.batch_command == "cancel" \
            else lab.batch_resume(args.run_id, progress=progress)
        return _report(result)


def _submit(lab: Any, args: argparse.Namespace) -> int:
    keywords = _keywords(args)
    run_id = lab.batch_submit(args.prompts, models=args.models, **keywords)
    cached = lab.store.count(run_id)  # answered from the response cache: nothing to send
    if not lab.store.batch_parts(run_id):
        say(f"run {run_id}: all {cached} requests were answered from the response cache; nothing was sent")
        return 0
    parts = lab.batch_status(run_id)
    also = f" ({cached} more answered from the response cache)" if cached else ""
    say(f"submitted run {run_id}: {int(parts['requests'].sum())} requests in {len(parts)} batch(es){also}; "
          f"`llmlab batch status {run_id}` follows them, `llmlab batch resume {run_id}` stores them")
    if not args.wait:
        return 0
    return _report(lab.batch_resume(run_id, progress=sys.stderr.isatty()))


def _keywords(args: argparse.Namespace) -> dict[str, Any]:
    from ..base._errors import InputError

    keywords: dict[str, Any] = dict(_json("--params", args.params) or {}) if args.params else {}
    if not isinstance(keywords, dict):
        raise InputError("--params must be a JSON object of request keywords, e.g. {\"temperature\": 0}")
    for name, value in (("system", args.system), ("max_tokens", args.max_tokens),
                        ("tools", _json("--tools", args.tools)),
                        ("response_format", _json("--response-format", args.response_format))):
        if value is not None:
            keywords[name] = value
    if args.n != 1:
        keywords["n"] = args.n
    return keywords


def _json(option: str, value: str | None) -> Any:
    """A JSON option's value: the JSON itself, or a file holding it."""
    from ..base._errors import InputError

    if value is None:
        return None
    text = value
    if not value.lstrip().startswith(("{", "[")):
        path = Path(value).expanduser()
        if not path.is_file():
            raise InputError(f"{option}: {value!r} is neither JSON nor a file")
        text = path.read_text(encoding="utf-8")
    try:
        return loads(text)
    except ValueError as exc:
        raise InputError(f"{option}: not valid JSON ({exc})") from None


def _report(result: Any) -> int:
    say(format_summary(result.summary()))
    return 0
