"""Looking under a report's averages: per-task results, how well a learned router ranks and is
calibrated, and whether the data themselves look right.

* :func:`by_task` — per task (or any prompt-level column): a policy's quality, its paired
  difference from the reference, savings and where its prompts were routed, each with a
  percentile-bootstrap interval over that task's prompts (the same resampling as the report,
  done within each task).
* :func:`learned_auc` — per learned router and per model it predicts: the AUC of its
  P(not good enough) for the answers that really were not (the chance a bad answer is ranked
  above a good one), with DeLong's interval; and whether the prompts are held out.
* :func:`calibration` — predicted against observed rates of not-good-enough answers, per bin.
* :func:`check_data` — tasks where a model scores significantly below a declared chance rate
  (a grading error, e.g. answer letters shifted), or exactly 0 or exactly 1 on every prompt (a
  broken grader or a saturated task): either inflates the oracle and misleads a router.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from ..base._errors import InputError
from ..base._validate import is_real
from ._learned import Learned
from ._matrix import Matrix, build_matrix, seen_prompts
from ._stats import Outcome, bootstrap_sums, percentile_ci

__all__ = ["by_task", "learned_auc", "calibration", "check_data", "data_check"]


def _groups(mx: Matrix, column: str) -> np.ndarray:
    if not isinstance(column, str) or column not in mx.runs.columns:
        raise InputError(f"no column {column!r} in the runs to break the report down by (a prompt-level column "
                         "such as 'task')")
    values = pd.Series(mx.prompt_values(column), dtype=object)
    return values.where(values.notna(), "(none)").astype(str).to_numpy()


def by_task(mx: Matrix, outcomes: Mapping[str, Outcome], ref: Outcome, *, column: str, n_boot: int,
            seed: int, level: float) -> pd.DataFrame:
    """One row per (policy, task): prompts, quality, quality_diff, savings_pct and the share of
    the task's prompts served by each model (``routed_<model>``), each with ``*_ci_lo/_ci_hi``
    (``savings_ci_*`` as in the report's table)."""
    groups = _groups(mx, column)
    rows = []
    for name, out in outcomes.items():
        for task in sorted(set(groups)):
            at = groups == task
            rows.append({"policy": name, column: task, **_task_row(mx, out, ref, at, n_boot, seed, level)})
    return pd.DataFrame(rows).set_index(["policy", column])


def _task_row(mx: Matrix, out: Outcome, ref: Outcome, at: np.ndarray, n_boot: int, seed: int,
              level: float) -> dict:
    n = int(at.sum())
    routed = (out.served[at][:, None] == np.arange(len(mx.models))[None, :]).astype(float)
    values = np.column_stack([ref.spend[at], ref.quality[at], out.spend[at], out.quality[at], routed])
    with np.errstate(divide="ignore", invalid="ignore"):
        estimates = _task_estimates(values.sum(axis=0)[None], n, mx.models)
        draws = _task_estimates(bootstrap_sums(values, n_boot, seed), n, mx.models) if n_boot else None
    row: dict[str, Any] = {"prompts": n}
    for key, value in estimates.items():
        lo, hi = percentile_ci(draws[key], level) if draws is not None else (np.nan, np.nan)
        ci = "savings_ci" if key == "savings_pct" else f"{key}_ci"      # the report table's names
        row.update({key: float(value[0]), f"{ci}_lo": float(lo), f"{ci}_hi": float(hi)})
    return row


def _task_estimates(sums: np.ndarray, n: int, models: list[str]) -> dict[str, np.ndarray]:
    """The per-task statistics from (resampled) sums of [ref spend, ref quality, spend, quality,
    served by each model]."""
    return {"quality": sums[:, 3] / n, "quality_diff": (sums[:, 3] - sums[:, 1]) / n,
            "savings_pct": 100 * (1 - sums[:, 2] / sums[:, 0]),
            **{f"routed_{m}": sums[:, 4 + j] / n for j, m in enumerate(models)}}


# --- the learned router's ranking and calibration ------------------------------------------------

def _learned_labels(mx: Matrix, policy: Learned) -> tuple[np.ndarray, np.ndarray]:
    """P(not good enough) per prompt and model but the last (prompts × k−1), and whether each
    answer really was not good enough (its score below the router's ``weak_ok_at``, or an error)."""
    p = np.asarray(policy.values(mx), dtype=float).reshape(mx.n, -1)
    ok_at = float(policy.training.get("weak_ok_at", 0.5))
    cols = [mx.index(m) for m in policy.models[:-1]]
    bad = (mx.score[:, cols] < ok_at) | mx.error[:, cols]
    return p, bad


def learned_auc(mx: Matrix, policies: Mapping[str, Any], *, level: float) -> pd.DataFrame:
    """One row per (learned policy, model it predicts): prompts, ``not_ok_rate``, ``auc`` with
    DeLong's ``auc_ci_lo``/``auc_ci_hi``, ``fitted_on`` (of these prompts: by id, or the same
    normalised text under another id) and ``held_out``."""
    rows = []
    for name, policy in policies.items():
        if not isinstance(policy, Learned) or not policy.fitted:
            continue
        p, bad = _learned_labels(mx, policy)
        seen = seen_prompts(mx, policy)         # by id, or the same text under another id
        for i, model in enumerate(policy.models[:-1]):
            auc, lo, hi = _delong(p[:, i], bad[:, i], level)
            rows.append({"policy": name, "model": model, "prompts": mx.n, "not_ok_rate": float(bad[:, i].mean()),
                         "auc": auc, "auc_ci_lo": lo, "auc_ci_hi": hi, "fitted_on": seen, "held_out": seen == 0})
    columns = ["prompts", "not_ok_rate", "auc", "auc_ci_lo", "auc_ci_hi", "fitted_on", "held_out"]
    if not rows:
        return pd.DataFrame(columns=["policy", "model", *columns]).set_index(["policy", "model"])
    return pd.DataFrame(rows).set_index(["policy", "model"])[columns]


def _delong(score: np.ndarray, positive: np.ndarray, level: float) -> tuple[float, float, float]:
    """AUC (ties count half) and DeLong's interval: the variance from each positive's and each
    negative's share of the pairs it wins (mid-ranks; O(n log n))."""
    pos, neg = score[positive], score[~positive]
    m, n = len(pos), len(neg)
    if not m or not n:
        return (float("nan"),) * 3
    ranks = pd.Series(np.concatenate([pos, neg])).rank(method="average").to_numpy()
    within_pos = pd.Series(pos).rank(method="average").to_numpy()
    within_neg = pd.Series(neg).rank(method="average").to_numpy()
    v10 = (ranks[:m] - within_pos) / n              # per positive: share of negatives below it
    v01 = 1 - (ranks[m:] - within_neg) / m          # per negative: share of positives above it
    auc = float(v10.mean())
    se = math.sqrt((v10.var(ddof=1) if m > 1 else 0.0) / m + (v01.var(ddof=1) if n > 1 else 0.0) / n)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    return auc, max(0.0, auc - z * se), min(1.0, auc + z * se)


def calibration(mx: Matrix, policy: Any, *, model: str | None, bins: int, level: float) -> pd.DataFrame:
    """Per equal-width bin of the predicted P(not good enough): prompts, ``predicted`` (mean),
    ``observed`` (the share not good enough) with a Wilson interval; ``attrs``: ``brier``,
    ``ece`` (the prompts-weighted mean |observed − predicted|) and ``held_out``."""
    if not isinstance(policy, Learned):
        raise InputError(f"calibration() reads a learned router's probabilities; {policy.name!r} is a "
                         f"{type(policy).__name__}")
    if isinstance(bins, bool) or not isinstance(bins, numbers.Integral) or not 2 <= bins <= 100:
        raise InputError(f"bins must be a whole number from 2 to 100, not {bins!r}")
    model = model or policy.models[0]
    if model not in policy.models[:-1]:
        raise InputError(f"{policy.name} predicts {', '.join(policy.models[:-1])}, not {model!r}")
    p, bad = _learned_labels(mx, policy)
    i = policy.models.index(model)
    which = np.minimum((p[:, i] * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        at = which == b
        observed, lo, hi = _wilson(int(bad[at, i].sum()), int(at.sum()), level)
        rows.append({"bin": f"{b / bins:.2f}–{(b + 1) / bins:.2f}", "prompts": int(at.sum()),
                     "predicted": float(p[at, i].mean()) if at.any() else np.nan, "observed": observed,
                     "observed_ci_lo": lo, "observed_ci_hi": hi})
    table = pd.DataFrame(rows).set_index("bin")
    filled = table[table["prompts"] > 0]
    table.attrs.update(brier=float(np.mean((p[:, i] - bad[:, i]) ** 2)), model=model,
                       ece=float((filled["prompts"] * (filled["observed"] - filled["predicted"]).abs()).sum() / mx.n),
                       held_out=not seen_prompts(mx, policy))
    return table


def _wilson(hits: int, n: int, level: float) -> tuple[float, float, float]:
    """A share and its Wilson score interval (two-sided at ``level``)."""
    if n == 0:
        return (float("nan"),) * 3
    z = NormalDist().inv_cdf(0.5 + level / 2)
    share = hits / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return share, max(0.0, centre - half), min(1.0, centre + half)


# --- the data check ----------------------------------------------------------------------------

def data_check(mx: Matrix, *, chance: float | Mapping[str, float] | None, column: str,
               level: float = 0.95) -> pd.DataFrame:
    """One row per (task, model): prompts, ``mean`` score, ``upper_bound`` (one-sided at
    ``level``: a Wilson bound, conservative for scores in [0, 1]), the declared ``chance`` and a
    ``flag``: ``below chance`` (the bound itself is below it), ``all 0`` / ``all 1`` (every
    prompt scored exactly that). Flagged rows first; ``attrs["flagged"]`` counts them."""
    rates = _chance(chance)
    groups = _groups(mx, column) if column in mx.runs.columns else np.full(mx.n, "(all)")
    rows = []
    for task in sorted(set(groups)):
        at = groups == task
        for j, model in enumerate(mx.models):
            scores = mx.score[at, j]
            mean = float(scores.mean())
            # one-sided at level = the upper end of a two-sided interval at 2·level − 1
            upper = _wilson(int(round(mean * len(scores))), len(scores), 2 * level - 1)[2]
            rate = rates(task)
            flags = [f for f, hit in (("below chance", rate is not None and upper < rate),
                                      ("all 0", bool((scores == 0).all())), ("all 1", bool((scores == 1).all())))
                     if hit]
            rows.append({column: task, "model": model, "prompts": int(at.sum()), "mean": mean,
                         "upper_bound": upper, "chance": np.nan if rate is None else rate, "flag": ", ".join(flags)})
    table = pd.DataFrame(rows)
    table = table.iloc[np.argsort(table["flag"].eq("").to_numpy(), kind="stable")].set_index([column, "model"])
    table.attrs["flagged"] = int(table["flag"].ne("").sum())
    table.attrs["check"] = (f"{table.attrs['flagged']} of {len(table)} ({column}, model) cells flagged: below a "
                            f"declared chance rate ({level:.0%} one-sided bound) or exactly 0 / 1 on every prompt")
    return table


def _chance(chance: float | Mapping[str, float] | None):
    """``chance`` as a function of the task (None: no chance check)."""
    def valid(value: Any) -> bool:
        return is_real(value) and 0 <= float(value) <= 1

    if chance is None:
        return lambda task: None
    if isinstance(chance, Mapping):
        bad = {k: v for k, v in chance.items() if not valid(v)}
        if bad:
            raise InputError(f"chance rates are shares between 0 and 1 (e.g. 0.25 for four options), not {bad!r}")
        rates = {str(k): float(v) for k, v in chance.items()}
        return lambda task: rates.get(task)
    if not valid(chance):
        raise InputError(f"chance is the score of a random guess, between 0 and 1 (e.g. 0.25 for four options), "
                         f"or {{task: rate}}, not {chance!r}")
    return lambda task: float(chance)


def check_data(runs: pd.DataFrame, *, chance: float | Mapping[str, float] | None = None, score: str = "score",
               models: Sequence[str] | None = None, column: str = "task") -> pd.DataFrame:
    """Check scored runs before routing on them: per (task, model), flags a mean score significantly
    below a declared ``chance`` rate (a float, or ``{task: rate}``; e.g. 0.25 for four options)
    and a task scored exactly 0 or exactly 1 on every prompt (see :func:`data_check`). Every
    prompt answered by all ``models`` counts, tune and test alike."""
    mx = build_matrix(runs, score, models, warn_dropped=False)
    return data_check(mx, chance=chance, column=column)
