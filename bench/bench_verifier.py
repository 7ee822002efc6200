"""Benchmark: a routing.Verifier trained and tuned on 10,000 recorded answers, and scoring one live answer.

    .venv/bin/python bench/bench_verifier.py [--prompts 10000] [--repeat 3]

The rows are RouteLLM's real GSM8K answers (Mixtral's and GPT-4's, 1,319 prompts) resampled to
``--prompts`` prompts, each with its own id and a suffix so no two prompts are the same text: the
verifier reads answers of the real length and shape. Prints, for ``--repeat`` interleaved runs:

* **train + tune** — ``routing.tune(Verifier(...).fit(runs), runs)``: the features of every answer,
  the regularisation chosen by 5-fold cross-validation, the fit, the out-of-fold scores and the
  threshold sweep (target ≤ 10 s on 2 cores);
* **scoring one answer live** — what ``lab.route`` adds to a decision once the cheap answer is in:
  the verifier's ``verdict`` on the answer's row, per answer over 500 real answers, median and
  p95 (target ≤ 5 ms), beside a plain ``Cascade``'s regex accept for scale.
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import pandas as pd

from llmlab import datasets, routing

WEAK, STRONG = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"


def resampled_runs(n_prompts: int, seed: int = 0) -> pd.DataFrame:
    runs = datasets.load("routellm-gsm8k").sort_values(["prompt_id", "requested_model"], ignore_index=True)
    n_real = runs["prompt_id"].nunique()
    picked = np.random.default_rng(seed).integers(0, n_real, size=n_prompts)
    rows = (2 * picked[:, None] + np.arange(2)[None, :]).ravel()      # each prompt's two rows, in order
    out = runs.iloc[rows].reset_index(drop=True)
    case = np.repeat(np.arange(n_prompts), 2)
    out["prompt_id"] = [f"b{i}" for i in case]
    out["request_id"] = [f"r{i}" for i in range(len(out))]
    out["prompt"] = out["prompt"] + pd.Series([f" (case {i})" for i in case])
    out["messages"] = None
    out["id"] = np.arange(1, len(out) + 1)
    return out


def train_and_tune(runs: pd.DataFrame) -> tuple[float, routing.Verifier]:
    start = time.perf_counter()
    tuned = routing.tune(routing.Verifier(WEAK, STRONG).fit(runs), runs, max_quality_loss=0.02)
    return time.perf_counter() - start, tuned


def live_scoring(verifier: routing.Verifier, runs: pd.DataFrame, n: int = 500) -> tuple[list[float], list[float]]:
    weak = runs[runs["requested_model"] == WEAK].head(n)
    cascade = routing.Cascade([WEAK, STRONG], accept={"kind": "regex", "pattern": r"####\s*-?\d"})
    verdict_ms, accept_ms = [], []
    for prompt, row in zip(weak["prompt"], weak.to_dict("records"), strict=True):
        start = time.perf_counter()
        verifier.decide(prompt).verdict([row])          # type: ignore[misc]
        verdict_ms.append(1000 * (time.perf_counter() - start))
        start = time.perf_counter()
        cascade.decide(prompt).accept(row["response_text"])   # type: ignore[misc]
        accept_ms.append(1000 * (time.perf_counter() - start))
    return verdict_ms, accept_ms


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    runs = resampled_runs(args.prompts)
    print(f"runs: {len(runs):,} rows ({args.prompts:,} prompts × 2 models, real GSM8K answers resampled)")
    seconds, verdict, accept = [], [], []
    for _ in range(args.repeat):
        took, tuned = train_and_tune(runs)
        seconds.append(took)
        v, a = live_scoring(tuned, runs)
        verdict += v
        accept += a
    best = min(seconds)
    print(f"train + tune: best {best:.2f} s, median {statistics.median(seconds):.2f} s "
          f"(threshold {tuned.threshold:.3f}, C {tuned.training['C']:g}) — target ≤ 10 s: ratio {best / 10:.2f}")
    p50, p95 = np.percentile(verdict, [50, 95])
    a50 = float(np.percentile(accept, 50))
    print(f"scoring one live answer: median {p50:.2f} ms, p95 {p95:.2f} ms (a regex accept: {a50:.3f} ms) "
          f"— target ≤ 5 ms: ratio {p50 / 5:.2f} (p95 {p95 / 5:.2f})")


if __name__ == "__main__":
    main()
