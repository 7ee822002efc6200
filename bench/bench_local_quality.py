"""Quality gap and speed of the bundled local models on the generated ``graded`` prompt set.

Starts the embedded endpoint with every bundled model (timing the start-up: it includes loading
all three models), sweeps the first ``--n`` prompts of ``datasets.load("graded")`` (balanced:
every 12 prompts cover each task × difficulty once) through each model one call at a time, scores
them with each prompt's own checker, and prints per model: accuracy with a 95 % Wilson interval,
accuracy per task and per difficulty, and the per-answer latency (median, p95).

    .venv/bin/python bench/bench_local_quality.py [--n 120] [--max-tokens 48] [--threads 2]
"""
from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=120)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=None, help="LLMLAB_LOCAL_THREADS")
    parser.add_argument("--csv", type=Path, default=None, help="also write the scored rows here")
    args = parser.parse_args()
    if args.threads:
        os.environ["LLMLAB_LOCAL_THREADS"] = str(args.threads)

    from llmlab import Lab, datasets, scoring
    from llmlab.local import bundled_models, start

    prompts = datasets.load("graded").head(args.n)
    models = [m.alias for m in bundled_models()]
    began = time.monotonic()
    with start(quiet=True) as server:
        startup = time.monotonic() - began
        print(f"start-up with {', '.join(models)}: {startup:.1f} s")
        with tempfile.TemporaryDirectory() as tmp, \
                Lab(base_url=server.base_url, db=Path(tmp) / "runs.sqlite", quiet=True) as lab:
            res = lab.sweep(prompts, models=models, max_tokens=args.max_tokens, temperature=0,
                            concurrency=1, cache=False, progress=False)
    runs = scoring.auto(res.df, checkers=prompts).merge(prompts[["prompt_id", "difficulty"]],
                                                        on="prompt_id")
    if args.csv:
        runs.to_csv(args.csv, index=False)
    report(runs, models, len(prompts))


def report(runs, models: list[str], n: int) -> None:
    print(f"\n{n} prompts, temperature 0, one call at a time")
    print(f"{'model':<20}{'accuracy':>9}  {'95% CI':<13}{'p50 s':>7}{'p95 s':>7}{'errors':>7}")
    for model in models:
        rows = runs[runs["requested_model"] == model]
        k = int((rows["score"] >= 0.5).sum())
        lo, hi = wilson(k, len(rows))
        lat = rows.loc[rows["status"] == "ok", "latency_s"]
        print(f"{model:<20}{k / len(rows):>9.3f}  [{lo:.2f}, {hi:.2f}]  {lat.median():>6.2f}"
              f"{lat.quantile(0.95):>7.2f}{int((rows['status'] == 'error').sum()):>7}")
    for by in ("task", "difficulty"):
        table = runs.pivot_table(index=by, columns="requested_model", values="score", aggfunc="mean")
        print(f"\naccuracy by {by}:\n{table[models].round(3).to_string()}")


if __name__ == "__main__":
    main()
