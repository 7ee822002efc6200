"""Reading a large run log: ``lab.runs()`` (every column, and the analysis columns only), a
run's ``summary()`` while it is still in the log (its columns read, then the group-by), and
``lab.export()`` to Parquet.

Builds a SQLite log of ``--rows`` realistic rows (one run, two models, short answers) with the
store's own schema, then times each read in this process. Prints rows/s and peak RSS.

    .venv/bin/python bench/bench_store.py                  # 1,000,000 rows
    .venv/bin/python bench/bench_store.py --rows 200000
    .venv/bin/python bench/bench_store.py --postgres       # the same rows in a temporary PostgreSQL

Not a test: it prints figures. Exit status 1 if the analysis-column read misses ``--target``
(2 s) or the summary's group-by takes more than 1 s after its read.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from llmlab import Lab  # noqa: E402
from llmlab.engine._results import SUMMARY_INPUTS, Result, summarise  # noqa: E402
from llmlab.store._schema import RECORD_COLUMNS  # noqa: E402

# What routing and summaries need: no prompt, messages or answer text.
ANALYSIS = ["id", "run_id", "request_id", "prompt_id", "task", "repeat", "requested_model", "attempt", "status",
            "started_at", "latency_s", "ttft_s", "prompt_tokens", "completion_tokens", "cost_usd", "cached"]


GROUP_BY_TARGET_S = 1.0  # summary() after its columns are read: a group-by


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(path: Path, rows: int) -> None:
    Lab(db=str(path)).close()  # the schema, by the store's own migrations
    messages = json.dumps([{"role": "user", "content": "benchmark prompt: say something short"}])
    base = {"run_id": "bench-run", "endpoint": "http://127.0.0.1:8000/v1", "params": '{"max_tokens": 512}',
            "prompt": "benchmark prompt: say something short", "messages": messages, "stream": 1,
            "status": "ok", "cost_source": "price_table", "finish_reason": "stop", "tokens_estimated": 0,
            "cached": 0, "attempt": 1, "repeat": 0, "waited_s": 0.0,
            "response_text": "a short fake answer of eight words"}

    def row(i: int) -> list:
        values = {**base, "request_id": f"{i:016x}", "prompt_id": f"p{i // 2:09d}", "requested_model": f"m{i % 2}",
                  "task": ("classify", "extract", "math")[i % 3], "seq": i,
                  "started_at": f"2026-11-30T{i // 3_600_000 % 24:02d}:{i // 60_000 % 60:02d}:"
                                f"{i // 1000 % 60:02d}.{i % 1000:03d}000+00:00",
                  "latency_s": 0.05 + (i % 97) / 1000, "ttft_s": 0.01 + (i % 13) / 1000,
                  "output_tokens_per_s": 300.0, "prompt_tokens": 20.0, "completion_tokens": 8.0,
                  "cost_usd": 1e-5 * (1 + i % 2)}
        if i % 50 == 0:
            values.update(status="error", error_type="RateLimitError", error_message="429 rate limited")
        return [values.get(c) for c in RECORD_COLUMNS]

    sql = f"INSERT INTO runs ({', '.join(RECORD_COLUMNS)}) VALUES ({', '.join('?' * len(RECORD_COLUMNS))})"
    with sqlite3.connect(path) as db:
        for start in range(0, rows, 50_000):
            db.executemany(sql, (row(i) for i in range(start, min(rows, start + 50_000))))


def load_postgres(sqlite_path: Path, url: str) -> None:
    """The same rows in PostgreSQL (schema by the store's own migrations, rows by COPY)."""
    import psycopg

    Lab(db=url).close()
    source = sqlite3.connect(sqlite_path)
    columns = ", ".join(RECORD_COLUMNS)
    with psycopg.connect(url) as conn, conn.cursor() as cur, cur.copy(f"COPY runs ({columns}) FROM STDIN") as copy:
        for row in source.execute(f"SELECT {columns} FROM runs ORDER BY id"):
            copy.write_row(row)
    source.close()


def timed(label: str, rows: int, fn) -> float:
    start, cpu = time.perf_counter(), time.process_time()
    result = fn()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    # This process's CPU beside the wall time: on a shared VM the wall time mostly measures the load.
    print(f"{label:<44} {elapsed:6.2f} s  CPU {cpu:6.2f} s  ({rows / elapsed:>9,.0f} rows/s)  "
          f"peak RSS {rss_mb():5.0f} MB", flush=True)
    return result, elapsed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--target", type=float, default=2.0, help="seconds for the analysis-column read")
    ap.add_argument("--postgres", action="store_true", help="read from a temporary PostgreSQL server instead")
    args = ap.parse_args(argv)
    server = None
    if args.postgres:
        sys.path.insert(0, str(REPO / "tests"))
        from fixtures_postgres import PG_PASSWORD, PostgresServer

        server = PostgresServer().start()
        os.environ["PGPASSWORD"] = PG_PASSWORD
    try:
        return run(args, server)
    finally:
        if server is not None:
            server.stop()


def run(args: argparse.Namespace, server) -> int:
    with tempfile.TemporaryDirectory(prefix="llmlab-bench-store-") as tmp:
        path = Path(tmp) / "runs.sqlite"
        start = time.perf_counter()
        build(path, args.rows)
        print(f"built a {args.rows:,}-row log ({path.stat().st_size / 1e6:.0f} MB) in "
              f"{time.perf_counter() - start:.1f} s", flush=True)
        db = str(path)
        if server is not None:
            db = server.url(server.create_database())
            start = time.perf_counter()
            load_postgres(path, db)
            print(f"copied it into PostgreSQL in {time.perf_counter() - start:.1f} s", flush=True)
        lab = Lab(db=db)
        frame, narrow_s = timed(f"lab.runs(columns=<{len(ANALYSIS)} analysis columns>)", args.rows,
                                lambda: lab.runs(columns=ANALYSIS))
        assert len(frame) == args.rows
        del frame
        result = Result.from_store(lab.store, "bench-run", ["m0", "m1"])
        summary, summary_s = timed("res.summary() (run not loaded: read + group-by)", args.rows, result.summary)
        assert not result.loaded and int(summary["attempts"].sum()) == args.rows
        inputs, read_s = timed(f"  its read: {len(SUMMARY_INPUTS)} columns", args.rows,
                               lambda: lab.store.frame(run_id="bench-run", columns=SUMMARY_INPUTS))
        again, group_s = timed("  its group-by: summarise(frame)", args.rows,
                               functools.partial(summarise, inputs, ["m0", "m1"]))
        assert again.equals(summary)
        inputs = again = None  # free them before the wide reads
        count, _ = timed("lab.export(parquet), every column", args.rows, lambda: lab.export(Path(tmp) / "log.parquet"))
        assert count == args.rows
        frame, full_s = timed("lab.runs(), every column", args.rows, lab.runs)
        assert len(frame) == args.rows
        lab.close()
    ok = narrow_s <= args.target
    grouped = group_s <= GROUP_BY_TARGET_S
    print(f"RESULT ({lab.store.kind}): analysis columns {narrow_s:.2f} s vs target {args.target:.1f} s -> "
          f"{'ok' if ok else 'missed'}; every column {full_s:.2f} s; summary {summary_s:.2f} s = read "
          f"{read_s:.2f} s + group-by {group_s:.2f} s (target ≤ {GROUP_BY_TARGET_S:g} s after the read) -> "
          f"{'ok' if grouped else 'missed'}")
    return 0 if ok and grouped else 1


if __name__ == "__main__":
    sys.exit(main())
