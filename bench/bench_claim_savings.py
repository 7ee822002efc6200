"""Size and power of the claim's savings test (review r22 B4): the Fieller t-test with Hall's
skewness correction now (routing._ratio_test), the percentile bootstrap of Σa*/Σb* (+1 rule) it
replaced.

    .venv/bin/python bench/bench_claim_savings.py [--reps 4000] [--old-reps 1000] [--boot 400] [--seed 22]
                                                  [--ns 20,30,60,100,300] [--no-timing]

Per row: n prompts, a cost shape (a: the router's per-prompt spend, b: the reference's), the
claimed savings S. "size": the true savings are exactly S (E[a] = (1 − S)·E[b]); "power": the true
savings are S + 10 points. A cell is the share of simulations whose one-sided p-value of H0
"savings ≤ S" is below α = 0.05, ± one standard error. The quality side is left out (it is the
score test, tested in tests/test_claim_boundary.py): this is the savings test alone, the claim's
verdict needs both. A claim needs n ≥ 30 for a verdict; n = 20 shows the test itself.
Then the time per claim() on an evaluate report (5 policies).
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from llmlab import routing
from llmlab.routing._ratio_test import savings_p

ALPHA = 0.05
NS = (20, 30, 60, 100, 300)
SAVINGS = (20, 50, 80)


def _costs(rng: np.random.Generator, shape: str, n: int, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-prompt spend (a, b) with E[a] / E[b] = ratio exactly."""
    ln = rng.lognormal
    if shape.startswith("lognormal"):           # independent, same shape
        s = float(shape.split()[1])
        return ratio * ln(0, s, n), ln(0, s, n)
    if shape == "pareto 2.5":                   # heavy-tailed (finite variance only)
        return ratio * (rng.pareto(2.5, n) + 1), rng.pareto(2.5, n) + 1
    if shape == "correlated weak":              # a shared prompt-length factor, each model's own noise
        shared = ln(0, 1.0, n)
        return ratio * shared * ln(0, 0.5, n), shared * ln(0, 0.5, n)
    if shape == "correlated strong":
        shared = ln(0, 1.5, n)
        return ratio * shared * ln(0, 0.2, n), shared * ln(0, 0.2, n)
    if shape == "ties (3 prices)":
        levels = np.array([1.0, 2.0, 4.0])
        return ratio * rng.choice(levels, n), rng.choice(levels, n)
    if shape == "free model, escalate":         # cost 0 unless sent to the strong model (prob ratio)
        b = ln(0, 1.0, n)
        return b * (rng.random(n) < ratio), b
    if shape == "skewed router, flat ref":      # a lognormal router against a fixed-price reference
        return ratio * ln(0, 1.0, n) / np.exp(0.5), np.ones(n)
    if shape == "calls basis":                  # costs unknown: strong calls avoided (0/1 vs 1)
        return (rng.random(n) < ratio).astype(float), np.ones(n)
    raise KeyError(shape)


SHAPES = ("lognormal 0.5", "lognormal 1.0", "lognormal 1.5", "lognormal 2.0", "pareto 2.5", "correlated weak",
          "correlated strong", "ties (3 prices)", "free model, escalate", "skewed router, flat ref", "calls basis")


def _old_p(rng: np.random.Generator, a: np.ndarray, b: np.ndarray, s: float, boot: int) -> float:
    """The replaced test: share of bootstrap savings at or below S, +1 rule."""
    idx = rng.integers(0, len(a), (boot, len(a)))
    with np.errstate(divide="ignore", invalid="ignore"):
        sav = 100 * (1 - a[idx].sum(axis=1) / b[idx].sum(axis=1))
    return float(((sav <= s) | np.isnan(sav)).sum() + 1) / (boot + 1)


def _rate(rng, shape, n, s, true_s, reps, test) -> float:
    hits = 0
    for _ in range(reps):
        a, b = _costs(rng, shape, n, 1 - true_s / 100)
        hits += test(a, b) < ALPHA
    return hits / reps


def _cell(p: float, reps: int) -> str:
    return f"{100 * p:5.1f} ±{100 * np.sqrt(max(p * (1 - p), 0.0025) / reps):3.1f}"


def simulate(reps: int, old_reps: int, boot: int, seed: int, ns: tuple[int, ...] = NS) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    new = lambda s: lambda a, b: savings_p(a[:, None], b, s)[0]       # noqa: E731
    old = lambda s: lambda a, b: _old_p(rng, a, b, s, boot)           # noqa: E731
    for n in ns:
        for shape in SHAPES:
            for s in SAVINGS:
                row = {"n": n, "shape": shape, "S": s}
                for what, true_s in (("size", s), ("power", s + 10)):
                    row[f"{what} new"] = _cell(_rate(rng, shape, n, s, true_s, reps, new(s)), reps)
                    row[f"{what} old"] = _cell(_rate(rng, shape, n, s, true_s, old_reps, old(s)), old_reps)
                rows.append(row)
                print(" | ".join(str(v) for v in row.values()), flush=True)
    return pd.DataFrame(rows)


def claim_time(n: int, repeat: int = 20) -> float:
    """Median seconds of report.claim() on 5 policies × n prompts (2 models)."""
    rng = np.random.default_rng(0)
    rows = []
    for k in range(n):
        for m, c in (("weak", rng.lognormal(0, 1) * 0.3), ("strong", rng.lognormal(0, 1))):
            rows.append({"id": len(rows) + 1, "prompt_id": f"q{k}", "prompt": f"p{k}", "task": "chat",
                         "requested_model": m, "status": "ok", "response_text": "x", "repeat": 0, "attempt": 1,
                         "request_id": f"r{len(rows)}", "cost_usd": c * 1e-3, "latency_s": 0.1,
                         "score": float(rng.random() < (0.8 if m == "weak" else 0.9))})
    runs = pd.DataFrame(rows)
    policies = [routing.Always("weak"), *(routing.Random(p, "weak", "strong", seed=k) for k, p in
                                          enumerate((0.3, 0.5, 0.7), start=1)), routing.Always("strong")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = routing.evaluate(runs, policies, reference="strong", seed=0)
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            report.claim(min_savings_pct=40, max_quality_loss=0.05)
            times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=4000)
    parser.add_argument("--old-reps", type=int, default=1000)
    parser.add_argument("--boot", type=int, default=400)
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--ns", default=",".join(map(str, NS)), help="prompt counts, comma-separated")
    parser.add_argument("--no-timing", action="store_true", help="skip the claim() timing")
    args = parser.parse_args()
    print(f"seed {args.seed}; new test {args.reps} simulations per cell, old {args.old_reps} "
          f"({args.boot} resamples); % with p < {ALPHA}, ± 1 SE")
    table = simulate(args.reps, args.old_reps, args.boot, args.seed, tuple(int(n) for n in args.ns.split(",")))
    print(table.to_string(index=False))
    size = table["size new"].str.split().str[0].astype(float)
    print(f"largest size, new test: {size.max():.1f} % ({table.loc[size.idxmax(), ['n', 'shape', 'S']].tolist()})")
    for n in () if args.no_timing else (100, 1000, 10_000):
        print(f"claim() on 5 policies × {n} prompts: {1000 * claim_time(n):.2f} ms")


if __name__ == "__main__":
    main()
