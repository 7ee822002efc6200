"""The ``llmlab`` command: ``llmlab serve``, ``llmlab demo``, ``llmlab export`` and ``llmlab batch``.

Thin by design: parse arguments, call ``llmlab.local`` / ``llmlab.cli._demo``, print. Errors llmlab
raises on purpose become ``llmlab: error: ...`` on stderr and exit code 2, without a traceback.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import time
from pathlib import Path

from ..base._advice import FRONT_END, reworded
from ..base._validate import closest
from ._batch import add_batch_parser, run_batch
from ._format import Parser, frame_text, say
from ._format import format_summary as _format_summary

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    from ..base._version import __version__

    # allow_abbrev=False everywhere: argparse would take --n-prompt for --n-prompts silently;
    # a near miss gets a did-you-mean instead (_parse).
    parser = Parser(prog="llmlab", description="llmlab command line.", allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"llmlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", allow_abbrev=False, help="run the embedded local endpoint in the foreground",
                           description="Serve the bundled models (and any GGUF files) on 127.0.0.1 "
                                       "through an OpenAI-compatible API until Ctrl-C.")
    serve.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    serve.add_argument("--model", action="append", default=[], metavar="PATH",
                       help="a GGUF file to serve too (repeatable)")
    serve.add_argument("--alias", action="append", default=[], metavar="NAME",
                       help="model name for the matching --model (default: the file name)")
    serve.add_argument("--no-bundled", action="store_true", help="serve only the --model files")
    demo = sub.add_parser("demo", allow_abbrev=False, help="run a small benchmark sweep on the local models",
                          description=_DEMO_DESCRIPTION)
    demo.add_argument("--out", default="llmlab-demo", metavar="DIR",
                      help="output folder (default: ./llmlab-demo)")
    demo.add_argument("--models", default=None, metavar="A,B",
                      help="comma-separated bundled models (default: all)")
    demo.add_argument("--n-prompts", type=int, default=None, metavar="K",
                      help="use only the first K demo prompts")
    demo.add_argument("--max-tokens", type=int, default=64, help=argparse.SUPPRESS)
    demo.add_argument("--decision-prompts", type=int, default=64, metavar="N",
                      help="labelled prompts for the report's 'who should answer what' (0 skips it)")
    export = sub.add_parser("export", allow_abbrev=False, help="write the run log (or part of it) to a Parquet file",
                            description="Stream the run log into a Parquet file for DuckDB, Spark or pandas "
                                        "(schema: llmlab.export_schema()).")
    export.add_argument("out", metavar="FILE.parquet")
    export.add_argument("--db", default=None, metavar="PATH_OR_URL",
                        help="log file or postgresql:// URL (default: LLMLAB_DB, else $LLMLAB_HOME/runs.sqlite)")
    export.add_argument("--run-id", action="append", default=None, metavar="ID", help="only this run (repeatable)")
    export.add_argument("--model", action="append", default=None, metavar="NAME",
                        help="only this requested model (repeatable)")
    export.add_argument("--status", choices=["ok", "error"], default=None)
    export.add_argument("--since", default=None, metavar="DATE", help="rows started at or after (ISO; UTC if naive)")
    export.add_argument("--columns", default=None, metavar="A,B", help="comma-separated columns (default: all)")
    add_batch_parser(sub)
    return parser


def _serve_models(args) -> list:
    from ..local import bundled_models

    if args.alias and len(args.alias) != len(args.model):
        raise _usage_error("give one --alias per --model (or none to use the file names)")
    aliases = args.alias or [Path(p).stem for p in args.model]
    models: list = [] if args.no_bundled else [m.alias for m in bundled_models()]
    models += list(zip(aliases, args.model, strict=True))
    if not models:
        raise _usage_error("--no-bundled needs at least one --model PATH")
    return models


def _usage_error(message: str):
    from ..base._errors import InputError

    return InputError(message)


def _serve(args) -> int:
    from ..local import bundled_models, start
    from ..local._ensure import forget_record, record_path, write_record

    server = start(port=args.port, models=_serve_models(args), quiet=True)
    # Recorded so notebooks without a configured endpoint reuse this server.
    shareable = {m.alias for m in bundled_models()} <= set(server.models)
    path = record_path()
    if shareable:
        write_record(server, path)
    # Explicit handlers: a shell may start us with SIGINT ignored (background jobs), and the
    # default SIGTERM would skip the cleanup below.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    say(f"llmlab: serving {', '.join(server.models)}\n  base_url: {server.base_url}\n"
          f"  log: {server.log_path}\nPress Ctrl-C to stop.", flush=True)
    try:
        while server.running:
            time.sleep(0.5)
        return _died(server)
    except KeyboardInterrupt:
        say("\nllmlab: stopping", err=True)
        return 0
    finally:
        server.stop()
        if shareable:
            forget_record(server, path)


def _died(server) -> int:
    say(f"llmlab: error: the local server (pid {server.pid}) exited; last log lines:", err=True)
    say(server.log_tail(), err=True)
    return 2


def _demo(args) -> int:
    from ..local import bundled_models
    from ._demo import run_demo

    models = None if args.models is None else [m.strip() for m in args.models.split(",") if m.strip()]
    out = run_demo(args.out, models=models, n_prompts=args.n_prompts, max_tokens=args.max_tokens,
                   log=lambda msg: say(msg, err=True, flush=True),
                   decision_prompts=args.decision_prompts)
    say(_format_summary(out.summary, out.runs))
    for model in bundled_models():
        if not model.instruct and model.alias in set(out.summary["model"]):
            say(f"note: {model.alias} — {model.description}")
    if out.recommendation is not None:
        _print_decision(out.recommendation, list(out.summary["model"]))
    for skipped in out.skipped_charts:
        say(f"llmlab: warning: chart skipped: {skipped}", err=True)
    names = ", ".join(f.name for f in out.files)
    say(f"\nwrote {len(out.files)} files to {out.out_dir}/ ({names}) — open {out.out_dir / 'report.html'}")
    say(f"{out.covers}.")
    return 0


def _print_decision(rec, models: list[str]) -> None:
    from ._demo_decision import MAX_QUALITY_LOSS, per_task_verdicts, use_line, use_name

    table = rec.per_task[["model", "quality", "quality_diff"]].round(2)
    table["on the test half"] = per_task_verdicts(rec, models)
    say(f"\nwho should answer what (what-if prices; {rec.caption}):")
    say(f"per task, the task map's pick (the cheapest model within {MAX_QUALITY_LOSS:g} of the best on the tune "
          "half), judged on the test half:")
    say(frame_text(table, index=True))
    routers = rec.policies[["models", "tune_savings_pct", "tune_quality_diff", "savings_pct", "quality_diff"]]
    routers.columns = ["models", "tune: saves %", "tune: vs ref", "test: saves %", "test: vs ref"]
    say("routers, picked on the tune half, judged on the test half:")
    say(frame_text(routers.round({"tune: saves %": 0, "test: saves %": 0, "tune: vs ref": 2, "test: vs ref": 2}),
                   index=True))
    say(f"use: {use_name(rec, models)} — {use_line(rec, models)}")


def _export(args) -> int:
    from ..engine._lab import Lab

    columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    _existing_log(args.db)
    with Lab(db=args.db, quiet=True) as lab:
        rows = lab.export(args.out, run_id=args.run_id, model=args.model, status=args.status, since=args.since,
                          columns=columns)
        say(f"wrote {rows} rows from {lab.store.path} to {args.out}")
        if rows == 0:   # a valid empty file, not an error (exit 0, as for any export), but said
            total = lab.store.count()
            why = "the log has no rows" if total == 0 else f"no row of the log's {total:,} matches {_filters(args)}"
            say(f"llmlab export: {why}; {args.out} holds the columns and no rows", err=True)
    return 0


_DEFAULT_LOG = "the default log (LLMLAB_DB, else $LLMLAB_HOME/runs.sqlite)"


def _existing_log(db: str | None) -> None:
    """``export`` reads a log and never creates or converts one: a SQLite file that does not exist
    (a mistyped --db would export an empty new log) or is not an llmlab log (opening it would make
    it one) is refused before it is opened, never echoing a value that may hold a secret."""
    from ..base._config import default_db
    from ..store._open import not_a_log, parse_db

    named = "--db" if db is not None else _DEFAULT_LOG
    target = parse_db(db if db is not None else default_db()[0])
    if target.kind != "sqlite" or target.target == ":memory:":
        return
    path = Path(target.target).expanduser()
    if not path.is_file():
        why = "a mistyped --db would export an empty new log" if db is not None else "nothing was recorded there yet"
        raise _usage_error(f"{named}: no log at {target.shown} ({why}); pass --db with the log's path or "
                           "postgresql:// URL")
    unlike = not_a_log(path)
    if unlike is not None:
        raise _usage_error(f"{named}: {target.shown} is not an llmlab log ({unlike}); it was left as it is")


def _filters(args) -> str:
    given = {"--run-id": args.run_id, "--model": args.model, "--status": args.status, "--since": args.since}
    shown = [f"{flag} {' '.join(v) if isinstance(v, list) else v}" for flag, v in given.items() if v]
    return " ".join(shown) or "the filters"


def _report_error(exc: BaseException, command: str) -> int:
    first, _, rest = reworded(str(exc), f"llmlab {command}").partition("\n")  # the CLI's words: --db, not Lab(db=)
    say(f"llmlab: error: {first}", err=True)
    if rest:  # e.g. the server log tail of a LocalServerError
        say("\n".join(f"  | {line}" for line in rest.splitlines()), err=True)
    return 2


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _did_you_mean(word: str, choices) -> str:
    """The Python API's did-you-mean rule on the names without their dashes (the shared '--' would
    make '--bogus' look like '--out'); nothing when no name is close."""
    bare = {c.lstrip("-"): c for c in choices}
    close = closest(word.lstrip("-"), bare)
    return f" Did you mean {bare[close]!r}?" if close is not None else ""


def _parse(argv: list[str]) -> argparse.Namespace:
    """argparse, plus a did-you-mean hint for a mistyped command or option (argparse < 3.14 has none).

    Options are checked before argparse parses, so a typo gets its hint even where argparse would
    first stop at something else (a missing FILE, an option's value)."""
    parser = _parser()
    _check_command(parser, argv)
    args, extra = parser.parse_known_args(argv)
    if extra:  # argparse would blame the top-level usage for what the command does not take
        command = _innermost(parser, args)
        command.error(f"unexpected argument {extra[0]!r} (see {command.prog} --help)")
    return args


def _innermost(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The (sub)command parser ``args`` were parsed by: llmlab, llmlab demo, llmlab batch submit."""
    for dest in ("command", "batch_command"):
        commands = _subparsers(parser)
        if commands and getattr(args, dest, None) in commands:
            parser = commands[getattr(args, dest)]
    return parser


def _check_command(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """The command word (and, for ``batch``, its action) known, then each level's options."""
    commands = _subparsers(parser)
    word = next((a for a in argv if not a.startswith("-")), None) if commands else None
    if word is not None and word not in commands:
        what = "command" if parser.prog == "llmlab" else "action"
        parser.error(f"unknown {what} {word!r}.{_did_you_mean(word, commands)} "
                     f"{what.capitalize()}s: {', '.join(commands)}.")
    if word is None:
        _check_options(parser, argv)
        return
    split = argv.index(word)
    _check_options(parser, argv[:split])
    _check_command(commands[word], argv[split + 1:])


def _check_options(parser: argparse.ArgumentParser, args: list[str]) -> None:
    """An option ``parser`` does not know → its error, with the closest known option."""
    known = [o for action in parser._actions for o in action.option_strings]
    for arg in args:
        if arg == "--":
            return
        name = arg.split("=", 1)[0]
        if _OPTION.match(name) and name not in known:
            parser.error(f"unrecognized option {name!r}.{_did_you_mean(name, known)}")


_OPTION = re.compile(r"^--?[A-Za-z]")  # not a negative number given as a value
_DEMO_DESCRIPTION = (
    "Start the embedded endpoint; run the 12 demo prompts on each bundled model (36 calls), then "
    "N labelled prompts on each (--decision-prompts, default 64: 192 calls) for the report's "
    "'who should answer what'; write summary.csv, runs.csv, runs.sqlite, chart PNGs and report.html. "
    "About 4 minutes on 2 quiet cores, 6-8 on a busy machine.")


def _check_no_secret_arguments(argv: list[str]) -> None:
    """No argument holds a key value this process may send: the default key variables' and
    --api-key-env's values are known before anything is parsed, used as a name or echoed (a key
    pasted as --db, --run-id or a file name is refused in one line, never shown). --base-url's
    value is the exception: its user:password@ may be the key, and it travels as the header."""
    from ..base._credentials import check_no_secret, remember_keys

    names = [value for flag, value in zip(argv, argv[1:], strict=False) if flag == "--api-key-env"]
    remember_keys(names=names + [a.split("=", 1)[1] for a in argv if a.startswith("--api-key-env=")])
    flag = None
    for number, arg in enumerate(argv, 1):
        name, joined, _ = arg.partition("=") if _OPTION.match(arg) else (arg, "", "")
        if "--base-url" not in (flag, name):
            where = f"the value of {flag}" if flag else f"{name}'s value" if joined else f"argument #{number}"
            check_no_secret(arg, where)
        flag = arg if _OPTION.match(arg) and not joined else None


def main(argv=None) -> int:
    from ..base._errors import LLMLabError

    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        _check_no_secret_arguments(argv)
    except LLMLabError as exc:
        return _report_error(exc, next((a for a in argv if not a.startswith("-")), ""))
    args = _parse(argv)

    words = FRONT_END.set(f"llmlab {args.command}")   # what llmlab advises is said in the CLI's words
    try:
        return {"serve": _serve, "demo": _demo, "export": _export, "batch": run_batch}[args.command](args)
    except (LLMLabError, OSError) as exc:  # OSError: e.g. a file the OS refuses
        return _report_error(exc, args.command)
    except KeyboardInterrupt:
        say("\nllmlab: interrupted", err=True)
        return 130
    except Exception as exc:  # a bug: one line, never a traceback that may show arguments
        if os.environ.get("LLMLAB_DEBUG"):
            raise
        say(f"llmlab: internal error: {type(exc).__name__}: {exc} (set LLMLAB_DEBUG=1 to see the traceback, "
            "and please report it)", err=True)
        return 1
    finally:
        FRONT_END.reset(words)


if __name__ == "__main__":
    sys.exit(main())
