"""Benchmark: routing.evaluate on 5 policies × 100,000 prompts × 5 models (500k synthetic rows).

    .venv/bin/python bench/bench_routing.py [--prompts 100000] [--repeat 5]

Prints the best and median seconds of N interleaved runs of evaluate with the default bootstrap
(1,000 paired resamples; target ≤ 2 s) and without it, the exact resampling's own time at this
size for reference (evaluate draws the sums from their normal limit above 20,000 prompts), and the
process's peak RSS.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import time
import warnings

import numpy as np
import pandas as pd

from llmlab import routing
from llmlab.routing._stats import _resampled_sums

MODELS = [("tiny", 0.30, 0.2e-6), ("small", 0.50, 1e-6), ("mid", 0.70, 3e-6),
          ("large", 0.85, 10e-6), ("huge", 0.90, 30e-6)]
TASKS = np.array(["classify", "extract", "arithmetic", "code", "summarise"])


def synthetic_runs(n_prompts: int, seed: int = 2024) -> pd.DataFrame:
    """One row per (prompt, model) with the schema columns routing reads, ~2% error rows.

    The seed differs from Random's default 0: the same stream would correlate its coin flips
    with the prompts' difficulty."""
    rng = np.random.default_rng(seed)
    hard = rng.random(n_prompts)
    task = TASKS[rng.integers(0, len(TASKS), n_prompts)]
    prompt_tokens = rng.integers(20, 2000, n_prompts).astype(float)
    frames = []
    for j, (model, skill, price) in enumerate(MODELS):
        error = rng.random(n_prompts) < 0.02
        completion = rng.integers(5, 400, n_prompts).astype(float)
        good = rng.random(n_prompts) < skill + (1 - skill) * (1 - hard)
        frames.append(pd.DataFrame({
            "id": np.arange(n_prompts) * len(MODELS) + j,
            "prompt_id": pd.Index(np.arange(n_prompts)).astype(str),
            "task": task, "requested_model": model, "repeat": 0, "attempt": 1,
            "status": np.where(error, "error", "ok"),
            "score": np.where(error, 0.0, good.astype(float)),
            "prompt_tokens": prompt_tokens, "completion_tokens": np.where(error, np.nan, completion),
            "cost_usd": np.where(error, np.nan, (prompt_tokens + 4 * completion) * price),
            "latency_s": (j + 1) * 0.3 + completion * 0.01 * (j + 1),
            "response_text": np.where(good, "answer", "??"),
            "difficulty": np.clip(hard + rng.normal(0, 0.15, n_prompts), 0, 1),
        }))
    return pd.concat(frames, ignore_index=True)


def policies() -> list:
    return [
        routing.TaskMap({"classify": "tiny", "extract": "small", "arithmetic": "mid",
                         "code": "large"}, default="huge"),
        routing.Fallback(["small", "mid", "huge"]),
        routing.Cascade(["small", "large"], accept=lambda text: text != "??"),
        routing.Threshold("difficulty", 0.6, weak="small", strong="huge"),
        routing.Oracle(),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--boot", type=int, default=1000)
    args = parser.parse_args()
    runs = synthetic_runs(args.prompts)
    print(f"runs: {len(runs):,} rows ({args.prompts:,} prompts × {len(MODELS)} models), "
          f"{len(policies())} policies")
    warnings.simplefilter("ignore")
    rss_before = _peak_rss_mb()
    plain, boot = [], []
    for _ in range(args.repeat):   # interleaved: this VM's speed drifts within a minute
        plain.append(_seconds(lambda: routing.evaluate(runs, policies(), n_boot=0)))
        boot.append(_seconds(lambda: routing.evaluate(runs, policies(), n_boot=args.boot)))
    verdict = "OK" if min(boot) <= 2 else "SLOW"
    print(f"evaluate, no bootstrap: best {min(plain):.2f} s, median {statistics.median(plain):.2f} s")
    print(f"evaluate, default bootstrap ({args.boot} resamples, {len(policies()) + len(MODELS) + 1} paired "
          f"series): best {min(boot):.2f} s, median {statistics.median(boot):.2f} s (target ≤ 2 s) {verdict}")
    values = np.random.default_rng(0).random((args.prompts, 2 * (len(policies()) + len(MODELS) + 1)))
    exact = _seconds(lambda: _resampled_sums(values, args.boot, 0))
    print(f"for reference, exact resampling of {args.prompts:,} prompts × {values.shape[1]} series: {exact:.2f} s")
    print(f"peak RSS: {_peak_rss_mb():.0f} MB (runs built: {rss_before:.0f} MB)")


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
