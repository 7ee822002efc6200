"""Benchmark: routing.Learned fit + tune on 10,000 prompts (target ≤ 10 s on 2 cores), against a
plain scikit-learn fit of the same features timed in the same run.

    .venv/bin/python bench/bench_learned.py [--prompts 10000] [--repeat 2]

The prompts are synthetic multiple-choice questions of 57 subjects (~90 words each, a vocabulary
of 3,000 words plus 80 per subject), so the TF-IDF has the size of a real published matrix's.
"Plain" is what one would write by hand: ``TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)``
then ``LogisticRegression()`` fitted once — no choice of C, no out-of-fold predictions. Learned
does more: the same features (n-grams in ≥ 2 prompts), C chosen by 4-fold cross-validation, and
the out-of-fold probabilities that tune sweeps. Prints the best and median of N runs and the ratio.
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import pandas as pd

from llmlab import routing

SUBJECTS = 57


def synthetic_runs(n_prompts: int, *, models: tuple[str, ...] = ("weak", "strong"), seed: int = 0) -> pd.DataFrame:
    """One row per (prompt, model): the weak model's accuracy depends on the subject and on a
    hidden difficulty the words hint at; the strong model is right 90 % of the time."""
    rng = np.random.default_rng(seed)
    common = np.array([f"w{i}" for i in range(3000)])
    skill = rng.uniform(0.3, 0.95, SUBJECTS)
    subject = rng.integers(0, SUBJECTS, n_prompts)
    hard = rng.random(n_prompts) < 0.4
    prompts = []
    for i in range(n_prompts):
        words = list(rng.choice(common, int(rng.integers(20, 120))))
        words += [f"s{subject[i]}x{k}" for k in rng.integers(0, 80, 8)] + (["tricky"] if hard[i] else [])
        rng.shuffle(words)
        prompts.append("Question: " + " ".join(words) + " ? A) x B) y C) z D) w")
    frames = []
    for j, model in enumerate(models):
        p_ok = 0.9 if j == len(models) - 1 else skill[subject] * np.where(hard, 0.5, 1.0) ** (1 / (j + 1))
        frames.append(pd.DataFrame({
            "prompt_id": [f"q{i}" for i in range(n_prompts)], "task": [f"subject{s}" for s in subject],
            "prompt": prompts, "requested_model": model, "status": "ok",
            "score": (rng.random(n_prompts) < p_ok).astype(float), "cost_usd": 0.001 * 5 ** j, "repeat": 0}))
    return pd.concat(frames, ignore_index=True)


def plain_fit(runs: pd.DataFrame) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    weak = runs[runs["requested_model"] == "weak"]
    x = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit_transform(weak["prompt"])
    LogisticRegression().fit(x, (weak["score"] < 0.5).astype(int))


def learned_fit_tune(runs: pd.DataFrame, models: tuple[str, ...] = ("weak", "strong")) -> routing.Learned:
    return routing.tune(routing.Learned(*models).fit(runs), runs, max_quality_loss=0.02)


def _seconds(fn, cpu: list | None = None) -> float:
    start, start_cpu = time.perf_counter(), time.process_time()
    fn()
    if cpu is not None:
        cpu.append(time.process_time() - start_cpu)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    runs = synthetic_runs(args.prompts)
    three = synthetic_runs(args.prompts, models=("weak", "mid", "strong"))
    print(f"runs: {args.prompts:,} prompts × 2 models, {SUBJECTS} subjects")
    plain, ours, plain_cpu, ours_cpu = [], [], [], []
    for _ in range(args.repeat):         # interleaved: this VM's speed drifts within a minute
        plain.append(_seconds(lambda: plain_fit(runs), plain_cpu))
        ours.append(_seconds(lambda: learned_fit_tune(runs), ours_cpu))
    ratio = min(ours) / min(plain)
    # the target is for two cores; on a loaded VM the CPU time says what two free cores would take
    free = "OK" if min(ours_cpu) <= 10 else "SLOW"
    verdict = "OK" if min(ours) <= 10 else f"SLOW here (CPU {min(ours_cpu):.1f} s: {free} on 2 free cores)"
    print(f"plain scikit-learn fit (tfidf + LogisticRegression, once): best {min(plain):.2f} s, "
          f"median {statistics.median(plain):.2f} s (CPU {min(plain_cpu):.2f} s)")
    print(f"Learned.fit + tune (C by 4-fold CV, out-of-fold sweep): best {min(ours):.2f} s, "
          f"median {statistics.median(ours):.2f} s (CPU {min(ours_cpu):.2f} s, both cores) (target ≤ 10 s) "
          f"{verdict}; {ratio:.2f}× the plain fit")
    three_s = _seconds(lambda: learned_fit_tune(three, ("weak", "mid", "strong")))
    print(f"three models (two classifiers) fit + tune: {three_s:.2f} s")


if __name__ == "__main__":
    main()
