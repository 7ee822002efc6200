"""Sweeps in bounded memory: a small and a large sweep against the instant test server, then a
real Ctrl-C of the large one near its end and a resume that must send only the missing pairs.

Each sweep runs in a fresh child process (its own peak RSS), streaming its prompts from a
generator, at concurrency 64, with the log on. Prints throughput and peak RSS of both sizes and
checks the large one's peak ≤ the small one's + 30 MB.

    .venv/bin/python bench/bench_scale.py                       # 20,000 and 100,000 calls
    .venv/bin/python bench/bench_scale.py --small 2000 --large 10000

Not a test: it prints figures. Exit status 1 if a check fails.
"""
from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from fakeserver import start_subprocess, stop_subprocess  # noqa: E402

MODELS = ["m0", "m1"]
RSS_MARGIN_MB = 30

# Peak RSS of the child's own address space (VmHWM). Not ru_maxrss: Linux folds the high-water mark
# of the memory a process replaced at exec into it, and subprocess starts children with vfork, so a
# child's ru_maxrss includes this parent's peak (the resume "spike" of 463 MB was this process's
# 100,000-request listing, not the resume).
CHILD = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
def peak_rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

import llmlab.engine._results
from llmlab import Lab
llmlab.engine._results.EAGER_ROWS = 0  # both sizes measure the sweep itself: no res.df unless asked
base_url, db, calls, resume = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] or None
models = %(models)r
lab = Lab(base_url=base_url, db=db, concurrency=64, retries=0)
prompts = (f"benchmark prompt number {i}: say something short" for i in range(calls // len(models)))
before = peak_rss_mb()
start = time.perf_counter()
status = "done"
try:
    res = lab.sweep(prompts, models=models, progress=False, cache=False, resume=resume)
    rows, run_id = len(res), res.run_id
except KeyboardInterrupt:
    status, rows, run_id = "interrupted", None, lab.last_run_id
wall = time.perf_counter() - start
print(json.dumps({"status": status, "rows": rows, "run_id": run_id, "wall_s": wall, "rss_before_mb": before,
                  "peak_rss_mb": peak_rss_mb()}), flush=True)
lab.close()
"""


def server_requests(base_url: str) -> int:
    root = base_url.rsplit("/v1", 1)[0]
    with urllib.request.urlopen(root + "/_fakeserver/requests", timeout=60) as resp:
        return sum(1 for r in json.load(resp) if r["path"] == "/v1/chat/completions")


def reset_server(base_url: str) -> None:
    root = base_url.rsplit("/v1", 1)[0]
    urllib.request.urlopen(urllib.request.Request(root + "/_fakeserver/reset", method="POST"), timeout=30).read()


def ok_rows(db: Path) -> int:
    try:
        con = sqlite3.connect(db, timeout=30)  # a WAL reader needs the -shm file writable: not mode=ro
        try:
            return con.execute("SELECT COUNT(*) FROM runs WHERE status = 'ok'").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def run_child(base_url: str, db: Path, calls: int, resume: str = "", interrupt_at: int | None = None) -> dict:
    code = CHILD % {"models": MODELS}
    child = subprocess.Popen([sys.executable, "-c", code, base_url, str(db), str(calls), resume],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    if interrupt_at is not None:
        while child.poll() is None and ok_rows(db) < interrupt_at:
            time.sleep(0.5)
        child.send_signal(signal.SIGINT)  # a real Ctrl-C
    out, err = child.communicate(timeout=7200)
    if child.returncode != 0:
        raise SystemExit(f"child failed ({child.returncode}):\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=20_000, help="calls in the small sweep")
    ap.add_argument("--large", type=int, default=100_000, help="calls in the large sweep")
    ap.add_argument("--interrupt", type=float, default=0.9, help="Ctrl-C the large sweep at this share of rows")
    args = ap.parse_args(argv)
    server, base_url = start_subprocess({m: {"text": "a short fake answer of eight words", "chunk_words": 2}
                                         for m in MODELS})
    good = True
    try:
        with tempfile.TemporaryDirectory(prefix="llmlab-bench-scale-") as tmp:
            small = run_child(base_url, Path(tmp) / "small.sqlite", args.small)
            print(f"small sweep : {args.small:>7,} calls in {small['wall_s']:6.1f} s = "
                  f"{args.small / small['wall_s']:5.0f} calls/s; peak RSS {small['peak_rss_mb']:.0f} MB "
                  f"(after start-up {small['rss_before_mb']:.0f} MB)", flush=True)
            reset_server(base_url)
            db = Path(tmp) / "large.sqlite"
            cut = int(args.large * args.interrupt)
            first = run_child(base_url, db, args.large, interrupt_at=cut)
            done = ok_rows(db)
            sent_first = server_requests(base_url)
            reset_server(base_url)
            second = run_child(base_url, db, args.large, resume=first["run_id"])
            resent = server_requests(base_url)
            final = ok_rows(db)
            large_wall = first["wall_s"] + second["wall_s"]
            peak = max(first["peak_rss_mb"], second["peak_rss_mb"])
            rate = args.large / large_wall
            print(f"large sweep : {args.large:>7,} calls in {large_wall:6.1f} s = {rate:5.0f} calls/s "
                  f"(Ctrl-C at {done:,} ok rows after {first['wall_s']:.1f} s, then resume {second['wall_s']:.1f} s); "
                  f"peak RSS {first['peak_rss_mb']:.0f} MB before the Ctrl-C, {second['peak_rss_mb']:.0f} MB resuming",
                  flush=True)
            print(f"resume      : {resent:,} requests sent for {args.large - done:,} missing pairs "
                  f"(first part sent {sent_first:,}); ok pairs in the log {final:,}/{args.large:,}")
            within = peak <= small["peak_rss_mb"] + RSS_MARGIN_MB
            print(f"memory      : large peak {peak:.0f} MB vs small {small['peak_rss_mb']:.0f} MB + {RSS_MARGIN_MB} MB "
                  f"-> {'ok' if within else 'FAILED'}")
            good = (within and first["status"] == "interrupted" and resent == args.large - done
                    and final == args.large)
    finally:
        stop_subprocess(server)
    print("RESULT:", "ok" if good else "FAILED")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
