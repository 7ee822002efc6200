"""Do unknown verdicts fall on one side? The one check of it, here in the analysis layer (which
may not import routing: the layers of docs/architecture.md): routing runs it on a preference
frame, ``ratings`` per pair of models, and ``scoring.score`` uses :func:`_z` for unknown scores
concentrated on one model.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ._evidence import is_unknown

__all__ = ["unknown_lean", "LEAN_Z"]


# Unknown verdicts are left out as if missing at random; flagged when they are not (a z this large
# by chance is rarer than 1 in 700, one-sided) or when the half-read unknowns all lean one way.
LEAN_Z = 3.0


def unknown_lean(prefs: pd.DataFrame, reference: str) -> dict:
    """Do the unknown verdicts fall on one side? Two checks, each a warning when it fires:

    * **by side** — an unknown pair whose one order was read (the other ambiguous, failed) shows
      which answer that order favoured. If those lean to the reference far more than the known
      decisive verdicts do (a two-proportion z ≥ :data:`LEAN_Z`, or ≥ 5 of them and every one), the
      unknowns hide the other model's losses: e.g. a model writing ``[[B]]`` into its bad answers so
      an honest judge's mention of it is ambiguous, or a judge that fails on one kind of answer.
    * **by model** — with several models against the reference, one model's unknown rate against
      the rest's (z ≥ :data:`LEAN_Z`).

    Returns ``{"half_read", "half_read_for_reference", "known_decisive", "known_for_reference",
    "by_model": {model: (unknown, pairs)}, "warning"}`` (``warning`` empty when neither fires)."""
    out: dict = {"half_read": 0, "half_read_for_reference": 0, "known_decisive": 0, "known_for_reference": 0,
                 "by_model": {}, "warning": ""}
    has_orders = {"verdict_1", "verdict_2"} <= set(prefs.columns)
    by_model: dict[str, list[int]] = {}
    for k, (a, b, winner) in enumerate(zip(prefs["model_a"], prefs["model_b"], prefs["winner"], strict=True)):
        if reference not in (a, b) or a == b:
            continue
        other = b if a == reference else a
        counts = by_model.setdefault(str(other), [0, 0])
        counts[1] += 1
        if not is_unknown(winner):
            if winner in ("a", "b"):
                out["known_decisive"] += 1
                out["known_for_reference"] += (a if winner == "a" else b) == reference
            continue
        counts[0] += 1
        if not has_orders:
            continue
        v1, v2 = prefs["verdict_1"].iloc[k], prefs["verdict_2"].iloc[k]
        read = [(a if v == "A" else b) if game == 1 else (b if v == "A" else a)
                for game, v in ((1, v1), (2, v2)) if not is_unknown(v) and v in ("A", "B")]
        if len(read) == 1 and (is_unknown(v1) or is_unknown(v2)):
            out["half_read"] += 1
            out["half_read_for_reference"] += read[0] == reference
    out["by_model"] = {m: tuple(c) for m, c in by_model.items()}
    notes = []
    n1, k1, n0, k0 = (out["half_read"], out["half_read_for_reference"], out["known_decisive"],
                      out["known_for_reference"])
    if n1 and (_z(k1, n1, k0, n0) >= LEAN_Z or (n1 >= 5 and k1 == n1 and (n0 == 0 or k0 < n0))):
        notes.append(f"of the {n1} unknown verdicts with one order read, {k1} favour {reference} (against {k0} of "
                     f"{n0} known decisive verdicts): the unknowns hide losses of the other side (a model that writes "
                     "a verdict token such as [[B]] into its answers, or a judge failing on one kind of answer)")
    if len(by_model) > 1:
        for m, (u, n) in by_model.items():
            rest_u = sum(c[0] for o, c in by_model.items() if o != m)
            rest_n = sum(c[1] for o, c in by_model.items() if o != m)
            if _z(u, n, rest_u, rest_n) >= LEAN_Z:
                notes.append(f"{m}'s verdicts against {reference} are unknown on {u} of {n} prompts, the other "
                             f"models' on {rest_u} of {rest_n}")
    if notes:
        out["warning"] = ("unknown verdicts are not missing at random — " + "; ".join(notes)
                          + "; leaving them out flatters that side: read the judge's replies (prefs.reason) "
                            "before trusting a claim")
    return out


def _z(k1: int, n1: int, k0: int, n0: int) -> float:
    """One-sided two-proportion z of k1/n1 above k0/n0 (pooled); 0 when either side is empty."""
    if not n1 or not n0:
        return 0.0
    pooled = (k1 + k0) / (n1 + n0)
    if pooled in (0.0, 1.0):
        return 0.0
    return (k1 / n1 - k0 / n0) / float(np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0)))
