"""Fault-injection benchmark: a large sweep against the fake server with 429/503 faults.

Runs the fake OpenAI-compatible server in its own process (so it does not share our GIL), injects
``--error-rate`` of 429/503 answers, and sweeps ``--calls`` (prompt, model) pairs at
``--concurrency`` with fast backoff. Prints: completion, ok rows per (prompt, model) pair, error
attempts and retries, wall time against the latency-bound ideal (calls × latency / concurrency),
throughput, and peak RSS.

    .venv/bin/python bench/bench_faults.py                  # 10,000 calls, 5 % faults, 64 wide
    .venv/bin/python bench/bench_faults.py --calls 2000 --no-stream

Not a test: it prints figures. Exit status 1 if some pair has no ok row or RSS exceeds the target.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
import urllib.request
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from fakeserver import start_subprocess, stop_subprocess  # noqa: E402

from llmlab import Lab, RetryPolicy  # noqa: E402

RSS_TARGET_MB = 300


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def server_log(base_url: str) -> list[dict]:
    root = base_url.rsplit("/v1", 1)[0]
    with urllib.request.urlopen(root + "/_fakeserver/requests", timeout=30) as resp:
        return json.load(resp)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=10_000, help="(prompt, model) pairs")
    ap.add_argument("--models", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--delay", type=float, default=0.05, help="server latency per call, s")
    ap.add_argument("--error-rate", type=float, default=0.05)
    ap.add_argument("--retry-after", default=None, help="Retry-After header on injected faults")
    ap.add_argument("--retries", type=int, default=8)
    ap.add_argument("--stream", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--cache", action=argparse.BooleanOptionalAction, default=False)
    ap.add_argument("--db", default=None, help="SQLite file (default: a fresh temporary one)")
    args = ap.parse_args(argv)

    warnings.simplefilter("ignore")  # fake models have no price: one PriceWarning each
    models = [f"m{i}" for i in range(args.models)]
    n_prompts = -(-args.calls // args.models)
    prompts = [f"benchmark prompt number {i}: say something short" for i in range(n_prompts)]
    calls = n_prompts * len(models)
    spec = {"text": "a short fake answer of eight words", "chunk_words": 2, "delay_s": args.delay,
            "error_rate": args.error_rate, "error_statuses": [429, 503]}
    if args.retry_after is not None:
        spec["retry_after"] = args.retry_after
    server, base_url = start_subprocess({m: {**spec, "seed": i} for i, m in enumerate(models)})
    tmp = tempfile.TemporaryDirectory(prefix="llmlab-bench-")
    db = args.db or str(Path(tmp.name) / "runs.sqlite")
    rss_before = rss_mb()
    try:
        lab = Lab(base_url=base_url, db=db, concurrency=args.concurrency,
                  retry_policy=RetryPolicy(retries=args.retries, base_s=0.05, cap_s=1.0, seed=0))
        t0, cpu0 = time.perf_counter(), time.process_time()
        res = lab.sweep(prompts, models=models, concurrency=args.concurrency, progress=False,
                        stream=args.stream, cache=args.cache)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        df = res.df
        log = server_log(base_url)
        lab.close()
    finally:
        stop_subprocess(server)
    rss_peak = rss_mb()

    ok = df[df["status"] == "ok"]
    errors = df[df["status"] != "ok"]
    pairs_ok = ok.groupby(["prompt_id", "requested_model"]).size()
    missing = calls - len(pairs_ok)
    duplicates = int((pairs_ok > 1).sum())
    ideal = calls * args.delay / args.concurrency
    chat = [r for r in log if r["path"] == "/v1/chat/completions"]
    injected = sum(1 for r in chat if r["status"] in (429, 503))

    print(f"sweep: {n_prompts} prompts x {len(models)} models = {calls} calls, concurrency {args.concurrency}, "
          f"server latency {args.delay * 1000:.0f} ms, {args.error_rate:.0%} injected 429/503, "
          f"stream={args.stream}, cache={args.cache}")
    print(f"rows recorded      : {len(df)} ({len(ok)} ok, {len(errors)} error attempts)")
    print(f"error types        : {errors['error_type'].value_counts().to_dict()}")
    print(f"server requests    : {len(chat)} ({injected} injected faults)")
    print(f"pairs with ok row  : {len(pairs_ok)}/{calls} (missing {missing}, duplicated {duplicates})")
    print(f"attempts per pair  : max {int(df.groupby('request_id')['attempt'].max().max())}, "
          f"retried pairs {int((df.groupby('request_id').size() > 1).sum())}")
    print(f"waited (backoff)   : total {df['waited_s'].sum():.1f} s, max {df['waited_s'].max():.2f} s")
    print(f"latency ok p50/p95 : {ok['latency_s'].quantile(0.5) * 1000:.0f} / "
          f"{ok['latency_s'].quantile(0.95) * 1000:.0f} ms")
    print(f"wall time          : {wall:.1f} s  (ideal calls x latency / concurrency = {ideal:.1f} s; "
          f"x{wall / ideal:.1f})")
    print(f"throughput         : {calls / wall:.0f} calls/s ({len(chat) / wall:.0f} requests/s)")
    print(f"client CPU         : {cpu:.1f} s ({cpu / len(chat) * 1000:.1f} ms per request; "
          f"{cpu / wall:.0%} of one core over the wall time)")
    print(f"peak RSS           : {rss_peak:.0f} MB (before the sweep {rss_before:.0f} MB; target < {RSS_TARGET_MB} MB)")
    tmp.cleanup()
    good = missing == 0 and duplicates == 0 and len(ok) == calls and rss_peak < RSS_TARGET_MB
    print("RESULT:", "ok" if good else "FAILED")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
