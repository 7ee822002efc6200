"""Agreement between two sets of preferences (judge vs human, judge vs judge), or of a judge with
itself under the position swap.

    scoring.agreement(judge_prefs, lab.labels())     # judge vs human
    scoring.agreement(judge_prefs)                   # the judge vs itself, orders swapped

Both frames are matched on (prompt, pair of models) whatever each calls ``model_a``. A pair
either side left unknown is left out of the estimates — and stated: the ``unknown`` column counts
the pairs a statistic left out, ``as_disagreement`` / ``as_disagreement_lo`` are the share and its
lower bound with every one of them counted as a disagreement (a judge unknown on 12 of 40 pairs,
all where the human said "b", agrees on 28 of 28 known but 28 of 40 = 0.70 at worst), and a
warning says when one side's unknowns fall on one verdict of the other side (a judge failing on
the hard cases): the unknown rate of the pairs where the other side preferred one answer (or a
tie) against the rest's, by the unknown-lean check's two-proportion z (:mod:`._lean`, ``LEAN_Z``).

* **agreement (with ties)** — share of matched pairs with the same winner (a, b or tie): MT-Bench's
  S1 (chance level 1/3);
* **agreement (without ties)** — the same over pairs neither side called a tie: MT-Bench's S2
  (chance level 1/2);
* **Cohen's kappa** — agreement beyond chance over the three outcomes, symmetrised over the two
  orientations of each pair: Cohen's kappa of the verdicts stacked with their mirror image (a and
  b swapped on both sides), so renaming a model changes nothing — read in sorted-name orientation
  the chance agreement followed the names (0.700 -> 0.651 on identical verdicts, review r22 W2);
  chance is then a side's tie rate, with its decisive verdicts split evenly; NaN (undefined) when
  either side always gave one outcome (a judge that only says "tie": its kappa is 0 by
  construction, which would read as a certain "no agreement" with a [0, 0] interval); no
  ``as_disagreement`` (which outcome a disagreeing unknown took moves the chance agreement too);
* with one frame, the two games of each judged pair: ``consistent`` (the same winner in both
  orders) and ``first position wins`` — of the games with a winner, the share won by the answer
  shown first (0.5 = no position bias).

Intervals: percentile bootstrap over prompts (a prompt's pairs are resampled together), ``n_boot``
resamples, seeded; for the shares the wider of that and the Wilson score interval over the pairs
counted. A bootstrap of 8 agreeing labels resamples nothing but agreement — a "95 %" interval
[1, 1] — and at n = 16, true agreement 0.9, it covered the truth in 78 % of simulations; Wilson's
never has zero width ([0.68, 1] for 8 of 8) and keeps its level near 0 and 1
(``tests/test_interval_coverage.py``); the bootstrap keeps the width several pairs of one prompt
add. Kappa's bootstrap interval is widened the same way, by the agreement share's Wilson interval
mapped through kappa = (p − p_e) / (1 − p_e) at the observed chance agreement p_e (8 agreeing
labels, p_e 0.5: [0.35, 1], not [1, 1]); with ``n_boot=0`` kappa has no interval. ``first position
wins`` counts games, but the two games of a pair are one judge on the same two answers — at worst
one observation — so its Wilson interval is over Kish's effective number of games at a correlation
of 1 within a pair (the number of pairs when each has two decisive games).
"""
from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..base._errors import InputError
from ..base._intervals import wilson
from . import _checks
from ._lean import unknown_lean
from ._pairwise import check_preferences, is_unknown, one_per_pair

__all__ = ["agreement"]

_CODES = {"a": 0, "b": 1, "tie": 2}
_UNKNOWN = 3        # a verdict left unknown: equal to no verdict (another unknown included)
_TIE = "\x00tie"    # the group of the pairs the other side tied (no model is named so)
_MIRROR = np.array([1, 0, 2])   # a pair's verdict read the other way round: a <-> b, a tie stays


def agreement(a: Any, b: pd.DataFrame | None = None, *, n_boot: int = 1000, seed: int = 0,
              level: float = 0.95, duplicates: str = "refuse") -> Any:
    """Preference frames: one row per statistic (``estimate``, ``ci_lo``, ``ci_hi``, ``n`` pairs it
    is computed on, ``unknown`` pairs it left out, ``as_disagreement`` / ``as_disagreement_lo`` with
    those counted as disagreements); ``attrs`` hold the pairs matched and the unknowns dropped on
    each side; a warning when one side's unknowns lean on one verdict of the other (module doc).

    A list of ``n`` sampled answers to one prompt instead (``agreement(["#### 3", "#### 3", "4"])``):
    their self-consistency, the share stating the majority final answer (a float; see
    ``routing.Verifier(samples=n)``).

    duplicates: several sources' verdicts on one pair within a frame (two graders, judge and human
    frames concatenated) are refused by default; ``"last"`` or ``"majority"`` settles them by that
    stated rule (:func:`llmlab.analysis._pairwise.one_per_pair`); the rows set aside are counted
    in ``attrs`` (``duplicates_dropped_first`` / ``_second``)."""
    if not isinstance(a, pd.DataFrame) and b is None:
        if isinstance(a, Sequence) and not isinstance(a, str):   # a string is one answer, not its characters
            return _checks.agreement(a).share
        raise InputError("agreement() takes a preference frame (scoring.pairwise(...), lab.labels()) or the "
                         f"sampled answers as a list of texts, not a {type(a).__name__}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, numbers.Integral) or n_boot < 0:
        raise InputError(f"n_boot must be a whole number ≥ 0, not {n_boot!r}")
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not 0 < level < 1:
        raise InputError(f"level must be between 0 and 1 (e.g. 0.95), not {level!r}")
    a = check_preferences(a, what="the first preferences")
    if b is None:
        x, y, prompts, names, info = _swapped(a)
        sides = ("game 1 (model_a shown first)", "game 2 (model_b shown first)")
    else:
        b = check_preferences(b, what="the second preferences")
        x, y, prompts, names, info = _matched(
            one_per_pair(a, duplicates=duplicates, what="the first preferences"),
            one_per_pair(b, duplicates=duplicates, what="the second preferences"))
        sides = ("the first preferences", "the second preferences")
    if not info["matched_pairs"]:
        raise InputError("the two frames share no (prompt, pair of models): nothing to compare "
                         f"({info['only_in_first']} pair(s) only in the first, {info['only_in_second']} only in the "
                         "second) — were they made on the same runs and prompt ids?")
    if not info["compared"]:
        raise InputError(f"no pair has a known winner on both sides: nothing to compare ({info['matched_pairs']} "
                         f"matched; {info['unknown_first']} unknown in the first, {info['unknown_second']} in the "
                         "second)")
    table = _table(x, y, prompts, int(n_boot), seed, level, first_wins=info.pop("first_wins", None))
    table.attrs.update(info)
    lean = _lean_warning(x, y, names, sides)
    if lean:
        worst = table.iloc[0]
        warnings.warn(f"agreement: {lean}; left out, they flatter the agreement — counted as disagreements, "
                      f"{worst.name} is {worst['as_disagreement']:.2f} (lower bound "
                      f"{worst['as_disagreement_lo']:.2f}; the table's unknown and as_disagreement columns)",
                      RuntimeWarning, stacklevel=2)
    return table


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Each row keyed by (prompt, sorted pair); the winner relative to the sorted order."""
    flip = frame["model_a"].astype(str) > frame["model_b"].astype(str)
    winner = pd.Series([None if is_unknown(w) else w for w in frame["winner"]], index=frame.index, dtype=object)
    mirrored = winner.map(lambda w: {"a": "b", "b": "a"}.get(w, w) if w is not None else None)
    return pd.DataFrame({"prompt_id": frame["prompt_id"].astype(str),
                         "first": np.where(flip, frame["model_b"], frame["model_a"]).astype(str),
                         "second": np.where(flip, frame["model_a"], frame["model_b"]).astype(str),
                         "winner": np.where(flip, mirrored, winner)})


def _matched(a: pd.DataFrame, b: pd.DataFrame):
    left, right = _canonical(a), _canonical(b)
    key = ["prompt_id", "first", "second"]
    # one verdict per key and side already (one_per_pair); counted here
    both = left.merge(right, on=key, suffixes=("_1", "_2"))
    known = both["winner_1"].notna() & both["winner_2"].notna()
    info = {"matched_pairs": int(len(both)), "compared": int(known.sum()),
            "unknown_first": int(both["winner_1"].isna().sum()), "unknown_second": int(both["winner_2"].isna().sum()),
            "only_in_first": int(len(left) - len(both)), "only_in_second": int(len(right) - len(both)),
            "duplicates_dropped_first": a.attrs.get("duplicates_dropped", 0),
            "duplicates_dropped_second": b.attrs.get("duplicates_dropped", 0)}
    return (_codes(both["winner_1"]), _codes(both["winner_2"]), both["prompt_id"].to_numpy(),
            (both["first"].to_numpy(), both["second"].to_numpy()), info)


def _swapped(frame: pd.DataFrame):
    """Game 1 vs game 2 of each judged pair, both mapped to model terms."""
    if "verdict_1" not in frame.columns or "verdict_2" not in frame.columns:
        raise InputError("agreement(prefs) alone compares a judge's two orders: the frame needs verdict_1 and "
                         "verdict_2 (scoring.pairwise gives them); pass a second frame to compare two sources")
    v1 = pd.Series([None if is_unknown(v) else v for v in frame["verdict_1"]], index=frame.index, dtype=object)
    v2 = pd.Series([None if is_unknown(v) else v for v in frame["verdict_2"]], index=frame.index, dtype=object)
    known = v1.notna() & v2.notna()
    if not known.any() and v2.isna().all() and v1.notna().any():
        raise InputError("these preferences hold one vote per pair (e.g. human labels): there is no second order "
                         "to compare; pass a second frame")
    wins = pd.concat([v1[known], v2[known]])
    decisive = (wins != "tie").to_numpy()
    prompts = frame["prompt_id"].astype(str).to_numpy()
    pairs = np.flatnonzero(known.to_numpy())
    info = {"matched_pairs": int(len(frame)), "compared": int(known.sum()),
            "unknown_first": int(v1.isna().sum()), "unknown_second": int(v2.isna().sum()),
            "first_wins": ((wins[decisive] == "A").to_numpy(), np.concatenate([prompts[pairs]] * 2)[decisive],
                           np.concatenate([pairs] * 2)[decisive])}
    return (_codes(v1.map({"A": "a", "B": "b", "tie": "tie"})), _codes(v2.map({"A": "b", "B": "a", "tie": "tie"})),
            prompts, (frame["model_a"].astype(str).to_numpy(), frame["model_b"].astype(str).to_numpy()), info)


def _codes(winners: pd.Series) -> np.ndarray:
    return winners.map(_CODES).fillna(_UNKNOWN).to_numpy(dtype=np.int64)


def _lean_warning(x: np.ndarray, y: np.ndarray, names: tuple[np.ndarray, np.ndarray],
                  sides: tuple[str, str]) -> str:
    """Do one side's unknowns fall on one verdict of the other side? The pairs the other side
    decided are grouped by the answer it preferred (or its tie), and each group's unknown rate is
    tested against the rest's — the by-model test of :func:`._lean.unknown_lean`, with the groups
    as its "models" (one copy of the rule and its threshold)."""
    notes = []
    for own, other, (own_side, other_side) in ((x, y, sides), (y, x, sides[::-1])):
        told = other != _UNKNOWN
        if not (own[told] == _UNKNOWN).any():
            continue
        group = np.where(other == 0, names[0], np.where(other == 1, names[1], _TIE))[told]
        frame = pd.DataFrame({"model_a": group, "model_b": "\x00reference",
                              "winner": [None if u else "tie" for u in own[told] == _UNKNOWN]})
        lean = unknown_lean(frame, "\x00reference")
        if lean["warning"]:
            rates = ", ".join(f"{u} of {n} {'tied' if m == _TIE else f'given to {m}'}"
                              for m, (u, n) in sorted(lean["by_model"].items(), key=lambda kv: -kv[1][0] / kv[1][1]))
            notes.append(f"the unknown verdicts of {own_side} are not missing at random — of the pairs {other_side} "
                         f"decided, unknown on {rates}")
    return "; ".join(notes)


def _table(x: np.ndarray, y: np.ndarray, prompts: np.ndarray, n_boot: int, seed: int, level: float,
           first_wins: tuple[np.ndarray, np.ndarray, np.ndarray] | None) -> pd.DataFrame:
    known = (x != _UNKNOWN) & (y != _UNKNOWN)
    left_out = int((~known).sum())
    weights = _weights(prompts[known], n_boot, seed)      # (1 + B) × rows: the data, then resamples
    every = _weights(prompts, n_boot, seed)               # the same over every matched pair
    kx, ky = x[known], y[known]
    with_ties = _share_row("agreement (with ties)", _agree(kx, ky, weights, ties=True),
                           _agree(x, y, every, ties=True), level)
    rows = [with_ties,
            _share_row("agreement (without ties)", _agree(kx, ky, weights, ties=False),
                       _agree(x, y, every, ties=False), level),
            _kappa_row(kx, ky, weights, level, left_out, bootstrap=n_boot > 0)]
    if first_wins is not None:
        won, where, pair = first_wins
        w = _weights(where, n_boot, seed)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = (w * won).sum(axis=1) / w.sum(axis=1)
        # the two games of a pair are one judge on the same two answers: at worst one observation
        # (Kish's effective size at a within-pair correlation of 1)
        sizes = np.unique(pair, return_counts=True)[1]
        effective = float(sizes.sum() ** 2 / (sizes ** 2).sum()) if sizes.size else 0.0
        rows += [{**with_ties, "statistic": "consistent"},
                 _row("first position wins", share, int(won.size), level, unknown=left_out,
                      floor=_wilson_floor(share[0], effective, level))]
    return pd.DataFrame(rows).set_index("statistic")


def _weights(prompts: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Row weights: 1 for the data, then each resample's count of the row's prompt."""
    codes, uniques = pd.factorize(prompts)
    n_prompts = max(len(uniques), 1)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_prompts, np.full(n_prompts, 1 / n_prompts), size=n_boot) if n_boot else \
        np.empty((0, n_prompts))
    return np.vstack([np.ones(n_prompts), counts])[:, codes].astype(float)


def _agree(x, y, weights, *, ties: bool) -> tuple[np.ndarray, int]:
    """The share of the pairs (without ties: neither side called a tie) with the same winner; an
    unknown verdict is in the count, and agrees with nothing."""
    keep = np.ones(len(x), bool) if ties else (x != 2) & (y != 2)
    w = weights[:, keep]
    same = (x[keep] == y[keep]) & (x[keep] != _UNKNOWN)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w * same).sum(axis=1) / w.sum(axis=1), int(keep.sum())


def _kappa(x, y, weights) -> tuple[np.ndarray, np.ndarray]:
    """Cohen's kappa per weight row over the outcomes a, b, tie, symmetrised: every pair counted in
    both orientations (a and b swapped on both sides), so which model a pair names first — the
    sorted names — cannot move the chance agreement (review r22 W2). NaN where either side gave a
    single outcome in that row (only ties: kappa is then 0 or undefined whatever the other side
    did) — and the chance agreement p_e per row."""
    x, y = np.concatenate([x, _MIRROR[x]]), np.concatenate([y, _MIRROR[y]])
    weights = np.hstack([weights, weights])
    onehot_x, onehot_y = np.eye(3)[x], np.eye(3)[y]
    total = weights.sum(axis=1)
    seen_x, seen_y = weights @ onehot_x, weights @ onehot_y
    constant = ((seen_x > 0).sum(axis=1) <= 1) | ((seen_y > 0).sum(axis=1) <= 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_o = (weights * (x == y)).sum(axis=1) / total
        p_e = (seen_x * seen_y).sum(axis=1) / total ** 2
        kappa = np.where(constant | np.isclose(p_e, 1.0), np.nan, _beyond_chance(p_o, p_e))
    return kappa, p_e


def _beyond_chance(p, p_e):
    """Kappa of an agreement share p at chance agreement p_e."""
    return (p - p_e) / (1 - p_e)


def _kappa_row(x, y, weights, level: float, unknown: int, *, bootstrap: bool) -> dict:
    """Kappa's row: its bootstrap interval widened by the agreement share's Wilson interval mapped
    through kappa at the observed chance agreement — a bootstrap of 8 agreeing labels is [1, 1]."""
    kappa, p_e = _kappa(x, y, weights)
    floor = None
    if bootstrap and np.isfinite(kappa[0]):
        lo, hi = wilson(float((x == y).sum()), len(x), level)
        floor = (max(-1.0, float(_beyond_chance(lo, p_e[0]))), float(_beyond_chance(hi, p_e[0])))
    return _row("cohen_kappa", kappa, len(x), level, unknown=unknown, floor=floor)


def _wilson_floor(point: float, n: float, level: float) -> tuple[float, float] | None:
    if not n or not np.isfinite(point):
        return None
    lo, hi = wilson(point * n, n, level)
    return float(lo), float(hi)


def _interval(values: np.ndarray, n: int, level: float,
              floor: tuple[float, float] | None) -> tuple[float, float, float]:
    """Estimate and percentile interval of the resamples, never narrower than ``floor``."""
    point, reps = values[0], values[1:]
    finite = reps[np.isfinite(reps)]
    tail = (1 - level) / 2
    lo, hi = (np.quantile(finite, [tail, 1 - tail]) if n and finite.size and np.isfinite(point) else (np.nan, np.nan))
    if floor is not None:
        lo, hi = np.fmin(lo, floor[0]), np.fmax(hi, floor[1])
    return (float(point) if n else float("nan")), float(lo), float(hi)


def _row(name: str, values: np.ndarray, n: int, level: float, *, unknown: int,
         floor: tuple[float, float] | None) -> dict:
    estimate, lo, hi = _interval(values, n, level, floor)
    return {"statistic": name, "estimate": estimate, "ci_lo": lo, "ci_hi": hi, "n": n, "unknown": unknown,
            "as_disagreement": float("nan"), "as_disagreement_lo": float("nan")}


def _share_row(name: str, known: tuple[np.ndarray, int], every: tuple[np.ndarray, int], level: float) -> dict:
    """A share's row, never narrower than its Wilson interval: over the pairs both sides decided,
    and over every matched pair with the unknowns counted as disagreements."""
    (values, n), (all_values, all_n) = known, every
    row = _row(name, values, n, level, unknown=all_n - n, floor=_wilson_floor(values[0], n, level))
    worst, worst_lo, _ = _interval(all_values, all_n, level, _wilson_floor(all_values[0], all_n, level))
    return {**row, "as_disagreement": worst, "as_disagreement_lo": worst_lo}
