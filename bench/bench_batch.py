"""Batch API sweeps at scale (issue 24). Prints figures measured in one run; not a test.

A sweep of 100,000 requests (50,000 prompts × 2 models: two batches of the 50,000 OpenAI allows)
through ``lab.batch_submit`` + ``lab.batch_resume`` against the test server in its own process,
its batches completing at once (the server still answers every line). Each size runs in a fresh
process, so its peak RSS is its own: prepare (prompts read from a JSONL file, parts planned in the
log, JSONL written and uploaded) + wait + download + store, and the memory of 10,000 requests
against 100,000 (targets: ≤ 60 s on 2 cores; ≤ 1.2× the 10k figure).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fakeserver import start_subprocess, stop_subprocess  # noqa: E402

_CHILD = """
import json, resource, sys, time
from llmlab import Lab
from llmlab.engine import _batch
_batch.BatchSession.poll_first_s = 0.2
base_url, db, prompts = sys.argv[1], sys.argv[2], sys.argv[3]
start = time.perf_counter()
with Lab(base_url=base_url, db=db, prices={m: {"input_cost_per_token": 1e-7, "output_cost_per_token": 2e-7}
                                            for m in ("m1", "m2")}) as lab:
    run_id = lab.batch_submit(prompts, models=["m1", "m2"], cache=False)
    submitted, submit_rss = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res = lab.batch_resume(run_id, progress=False)
    done = time.perf_counter()
    rows, ok = lab.store.count(run_id), lab.store.count(run_id) - lab.store.count(run_id, failed=True)
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"rows": rows, "ok": ok, "submit_s": submitted - start, "collect_s": done - submitted,
                  "total_s": done - start, "submit_rss_mb": submit_rss, "cpu_s": usage.ru_utime + usage.ru_stime,
                  "peak_rss_mb": usage.ru_maxrss / 1024}))
"""


def one_size(base_url: str, tmp: Path, prompts: int) -> dict:
    source = tmp / f"prompts-{prompts}.jsonl"
    with source.open("w") as out:
        for i in range(prompts):
            out.write(json.dumps({"prompt": f"Question number {i}: what is {i} plus {i}?"}) + "\n")
    proc = subprocess.run([sys.executable, "-c", _CHILD, base_url, str(tmp / f"log-{prompts}.sqlite"), str(source)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"the {prompts}-prompt run failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prompts", type=int, default=50_000, help="prompts of the large run (× 2 models)")
    args = parser.parse_args()
    models = {"m1": {"text": "The answer is twice the number, as usual.", "prompt_tokens": 14,
                     "completion_tokens": 9}, "m2": {"text": "Double it.", "prompt_tokens": 14,
                                                     "completion_tokens": 3}}
    proc, base_url = start_subprocess(models, timeout=30)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            small = one_size(base_url, Path(tmp), args.prompts // 10)
            large = one_size(base_url, Path(tmp), args.prompts)
    finally:
        stop_subprocess(proc)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # both clients and the server, now all ended
    server_cpu = children.ru_utime + children.ru_stime - small["cpu_s"] - large["cpu_s"]
    for prompts, run in ((args.prompts // 10, small), (args.prompts, large)):
        assert run["rows"] == run["ok"] == 2 * prompts, run
        print(f"   {2 * prompts:>7,} requests: submit (read, plan in the log, write + upload JSONL) "
              f"{run['submit_s']:.1f} s, "
              f"wait + download + store {run['collect_s']:.1f} s, total {run['total_s']:.1f} s, "
              f"client CPU {run['cpu_s']:.1f} s, peak RSS {run['peak_rss_mb']:.0f} MB "
              f"({run['submit_rss_mb']:.0f} MB once submitted)")
    print(f"1. {large['rows']:,}-request batch sweep (2 models, one batch per 50,000), instant completion: "
          f"{large['total_s']:.1f} s end to end (target <= 60 s on 2 cores); "
          f"{large['rows'] / large['total_s']:,.0f} requests/s; CPU: the client {large['cpu_s']:.1f} s, the test "
          f"server {server_cpu:.1f} s for both sizes (they overlap on 2 cores; load now {os.getloadavg()[0]:.1f})")
    print(f"2. memory: peak RSS {large['peak_rss_mb']:.0f} MB for {large['rows']:,} requests vs "
          f"{small['peak_rss_mb']:.0f} MB for {small['rows']:,} "
          f"-> ratio {large['peak_rss_mb'] / small['peak_rss_mb']:.2f} (target <= 1.2; the 10,000-row Result is read "
          f"into memory, a larger one stays in the log); once submitted {large['submit_rss_mb']:.0f} vs "
          f"{small['submit_rss_mb']:.0f} MB -> {large['submit_rss_mb'] / small['submit_rss_mb']:.2f}")
    print(f"   (this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; "
          f"measured at {time.strftime('%Y-%m-%d %H:%M')})")


if __name__ == "__main__":
    main()
