"""Bradley–Terry ratings with confidence intervals from a preference frame (Chatbot Arena's method).

    r = scoring.ratings(prefs)          # judge preferences, human labels, or both
    r.table; r.win_rate; r.plot()

**Model.** P(i beats j) = 1 / (1 + 10^((R_j − R_i) / 400)) — the Elo scale; a tie counts as half a
win for each side (as FastChat's fit does). Fitted by Newton's method on the pair counts with a
tiny ridge (1e-4 on the strengths) that keeps a separated fit finite; centred at 1000 within each
group of models that met (or ``anchor`` = 1000 in its group). Unknown winners are dropped and
counted per model — never a loss; a model against itself is dropped.

**The unit of evidence is the (prompt, pair)** (review r22 B3). Several verdicts of one prompt and
pair — stacked sources (a judge frame with ``lab.labels()``), repeats — are first combined into one:
the mean of their known points (win 1, tie 0.5), a win above 0.5, a loss below, a tie at 0.5; it is
unknown only when all are. Every count, fit, interval and test below ("games") is over those.

**Intervals** (``level``, default 95 %): the wider of two — the percentile bootstrap over prompts
(``n_boot`` resamples; a prompt's pairs are resampled together, so correlated verdicts on one
prompt do not look like independent evidence) and the model-based (Fisher information) interval,
which keeps a width where resampling has none (every game a tie, a handful of games).

**What cannot be rated is said, not invented.** Models that never met, directly or through others,
are in different ``component``s: their ratings are not comparable and ranks are within a
component. A model that won every game or lost every one has no finite maximum-likelihood rating:
it is set aside (repeatedly, while another then qualifies), the **others are rated without it** — so
one dud that lost all its games leaves everyone else's ratings and intervals as they were — and it
is shown with rating and interval unknown (NaN, not a number the ridge invented), ``identifiable``
False and a ``bound`` ("above m1, m2" / "below m2"); the warning names only it. A group whose
remaining win graph is still not strongly connected has no finite rating either (``identifiable``
False, NaN interval). All ties give equal ratings, with intervals —
unless the frame carries no information at all (every known verdict a tie, or a judge whose two
orders agree no more often than by position alone: ``analysis._evidence``): the ratings then only
restate the judge, their intervals are NaN and a warning says why.

**Rank** = 1 + the models *certainly above* it, with the whole table's error at most 1 − ``level``
(review r22 W3): each statement behind it — the interval of each rated model, the sign test of each
pair decided by direct games — is made at 1 − (1 − ``level``) / (their number) (Bonferroni), so the
ranks' intervals are wider than the table's ``ci_lo``/``ci_hi`` (at ``level``, per model).
A is certainly above B only on evidence: when both are rated, A's rank interval lies wholly above
B's (the same fit as the table's, at the family level); when either has no interval (it won or lost every game,
or its group has no finite rating), A won more of their **direct** decisive games and the exact
two-sided sign test over those games rejects "equally good" (p ≤ the family's 1 − level; alone: at 95 % that takes
6–0, 8–1, 10–2…; ties say nothing either way); and A above B above C makes A above C. So one game
ranks nobody, a model is never ranked against one it neither met nor is linked to by such steps,
models in different components are never ranked against each other, uninformative verdicts rank
nobody, and a model with no known verdict has rank <NA>. A rank is "how many are certainly
better", not a position: two models may share a rank, and ranks may skip.

**Unknowns are not assumed missing at random** (review 22c R1, the claim's G5 rule). An order
between two models is certified only if it also holds with their unknown verdicts counted against
the higher-rated one: the fit is redone with them as the lower one's wins, and where the
(model-based) intervals then overlap, the higher's ``ci_lo`` and the lower's ``ci_hi`` take that
reading — so the intervals shown overlap, the ranks follow, and a warning names the pair (the
sign-test path counts them as the lower one's wins too). Routing's unknown-lean check
(``analysis._lean.unknown_lean``, routing's copy) runs per pair of models and warns when the half-read
unknowns lean to one side. Ratings stay shown: an order that survives its unknowns stays certified.
"""
from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from ..base._errors import InputError
from ._evidence import evidence_words, judge_evidence
from ._lean import unknown_lean
from ._pairwise import check_preferences

__all__ = ["ratings", "Ratings"]

SCALE = 400 / math.log(10)      # rating points per unit of strength (natural log odds)
BASE = 1000.0
RIDGE = 1e-4
_STEP_CAP = 5.0                 # strength units per Newton step: a separated fit cannot overshoot


@dataclass
class Ratings:
    """What :func:`ratings` found. ``table``: one row per model, best first — ``rating``,
    ``ci_lo``/``ci_hi``, ``rank`` (1 + models certainly above it, by the module doc's rule; <NA>
    for a model with no known verdict), ``games``, ``wins``, ``losses``, ``ties``, ``unknown`` (verdicts dropped),
    ``component``, ``identifiable``. ``win_rate``: row's share of points against column (ties
    half; NaN where they never met); ``games``: games per pair."""

    table: pd.DataFrame
    win_rate: pd.DataFrame
    games: pd.DataFrame
    n_boot: int
    level: float
    notes: list[str]

    @property
    def caption(self) -> str:
        return (f"Bradley–Terry ratings (Elo scale, ties = half a win) of {len(self.table)} models on "
                f"{int(self.games.to_numpy().sum() // 2)} games; {self.level:.0%} CI: the wider of a bootstrap "
                f"over prompts ({self.n_boot} resamples) and the model-based interval"
                + ("; " + "; ".join(self.notes) if self.notes else ""))

    def plot(self, ax: Any = None) -> Any:
        """Ratings with their intervals, best on top; a non-identifiable rating is a hollow marker."""
        from ._charts import figure_and_axes

        fig, ax = figure_and_axes(ax, (7.0, 0.6 * len(self.table) + 1.5))
        t = self.table.iloc[::-1]
        y = np.arange(len(t))
        ok = t["identifiable"].to_numpy(bool)
        err = np.array([t["rating"] - t["ci_lo"], t["ci_hi"] - t["rating"]])
        ax.errorbar(t["rating"][ok], y[ok], xerr=err[:, ok], fmt="o", color="#1f77b4", capsize=4)
        ax.plot(t["rating"][~ok], y[~ok], "o", mfc="none", color="#d62728", label="not identifiable")
        ax.set_yticks(y, [str(m) for m in t.index])
        ax.axvline(BASE, color="#999", lw=0.8, ls=":")
        ax.set_xlabel(f"rating (Elo scale; {self.level:.0%} CI)")
        ax.set_title("Bradley–Terry ratings from pairwise preferences")
        if (~ok).any():
            ax.legend(loc="lower right")
        return fig

    def _repr_html_(self) -> str:
        import html

        return (f"<div><p><b>Ratings</b> — {html.escape(self.caption)}</p>"
                f"{self.table.to_html(float_format=lambda x: f'{x:.1f}')}</div>")


def ratings(preferences: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0, level: float = 0.95,
            anchor: str | None = None) -> Ratings:
    """Bradley–Terry ratings with intervals from a preference frame (see the module doc)."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, numbers.Integral) or n_boot < 0:
        raise InputError(f"n_boot must be a whole number ≥ 0, not {n_boot!r}")
    if isinstance(level, bool) or not isinstance(level, numbers.Real) or not 0 < level < 1:
        raise InputError(f"level must be between 0 and 1 (e.g. 0.95), not {level!r}")
    raw = check_preferences(preferences)
    frame = _per_prompt_pair(raw)
    full = _games(frame)
    if anchor is not None and anchor not in full.models:
        raise InputError(f"anchor {anchor!r} is not among the rated models ({', '.join(full.models)})")
    peeled = _peel(full)
    games = _without(full, peeled != "")         # the others, rated without the models set aside
    fitted = _components(games)
    theta = _fit(games.i, games.j, games.s, np.ones(len(games.s)), len(games.models))
    identifiable = _identifiable(games, fitted)
    centred = _centre(theta, fitted, games.models, anchor)
    component = _components(full)
    notes = _notes(full, component, identifiable, peeled)
    unknowns = _unknown_pairs(frame, games.models)
    family = _family_level(full, identifiable, component, level)
    shown, ranked = (np.where(identifiable, b, np.nan) for b in
                     _intervals(games, centred, fitted, anchor, int(n_boot), seed, (level, family)))
    shown = _unknowns_against(games, unknowns, centred, fitted, *shown, anchor, level, notes)
    # the same reading for the ranks' intervals; its notes would repeat the shown ones'
    ranked = _unknowns_against(games, unknowns, centred, fitted, *ranked, anchor, family, [])
    notes += _lean_notes(raw, unknowns, games.models)   # its half-read orders are in the rows
    evidence = judge_evidence(raw)          # the judge's own two orders, row by row
    if not evidence["informative"]:       # the verdicts measure the judge, not the models: no interval
        shown = ranked = (np.full(len(centred), np.nan), np.full(len(centred), np.nan))
        notes.insert(0, f"the preferences {evidence_words(evidence)} ({evidence['why']}): the ratings only restate the "
                        "judge's verdicts, so their intervals are unknown (NaN)")
    for note in notes:
        warnings.warn(f"ratings: {note}", RuntimeWarning, stacklevel=2)
    rating = np.where(identifiable, BASE + SCALE * centred, np.nan)
    table = _table(full, rating, BASE + SCALE * shown[0], BASE + SCALE * shown[1], component, identifiable, peeled,
                   bool(evidence["informative"]), (ranked, family), unknowns)
    win_rate, counts = _matrices(full)
    return Ratings(table, win_rate, counts, int(n_boot), float(level), notes)


def _per_prompt_pair(frame: pd.DataFrame) -> pd.DataFrame:
    """One verdict per (prompt, pair of models), whatever each row calls ``model_a`` (review r22 B3):
    the mean of its known verdicts' points (a win 1, a tie 0.5), read as a win above 0.5, a loss
    below, a tie at 0.5; unknown only when every verdict of it is. Rows keep the first verdict's
    orientation and order."""
    flip = frame["model_a"].astype(str) > frame["model_b"].astype(str)
    key = pd.Series(list(zip(frame["prompt_id"].astype(str), np.where(flip, frame["model_b"], frame["model_a"]),
                             np.where(flip, frame["model_a"], frame["model_b"]), strict=True)))
    points = frame["winner"].map({"a": 1.0, "b": 0.0, "tie": 0.5}).to_numpy(float)
    points = pd.Series(np.where(flip, 1 - points, points))             # in the sorted pair's orientation
    mean = points.groupby(key.to_numpy(), sort=False).transform("mean").to_numpy()
    first = ~key.duplicated().to_numpy()
    mean = np.where(flip, 1 - mean, mean)[first]                        # back in the first row's orientation
    winner = pd.Series(np.where(mean > 0.5, "a", np.where(mean < 0.5, "b", "tie")), dtype=object)
    return pd.DataFrame({"prompt_id": frame["prompt_id"].to_numpy()[first],
                         "model_a": frame["model_a"].to_numpy()[first], "model_b": frame["model_b"].to_numpy()[first],
                         "winner": winner.where(~np.isnan(mean), None)})


def _family_level(games: _Games, identifiable: np.ndarray, component: np.ndarray, level: float) -> float:
    """The level each statement behind a rank is made at, so that the whole table errs with
    probability at most 1 − ``level`` (review r22 W3; Bonferroni): its statements are the interval
    of each rated model that shares its group with another (all of them covering their truths,
    no order between two of them is wrong) and the sign test of each pair with direct decisive
    games where either has no interval."""
    rated = identifiable & _played(games)
    shared = np.array([rated[component == c].sum() > 1 for c in component]) & rated
    k = len(games.models)
    decisive = np.zeros((k, k), bool)
    decisive[games.i[games.s != 0.5], games.j[games.s != 0.5]] = True
    decisive |= decisive.T
    tests = np.triu(decisive & ~(rated[:, None] & rated[None, :]), 1).sum()
    return 1 - (1 - level) / max(int(shared.sum() + tests), 1)


@dataclass
class _Games:
    models: list[str]
    i: np.ndarray          # model_a index per game
    j: np.ndarray          # model_b index per game
    s: np.ndarray          # model_a's points: 1 win, 0.5 tie, 0 loss
    prompts: np.ndarray
    unknown: dict[str, int]


def _games(frame: pd.DataFrame) -> _Games:
    known = frame["winner"].notna() & (frame["model_a"] != frame["model_b"])
    models = list(dict.fromkeys([*frame["model_a"], *frame["model_b"]]))
    unknown = {m: int(((frame["model_a"] == m) | (frame["model_b"] == m))[frame["winner"].isna()].sum())
               for m in models}
    rows = frame[known]
    if rows.empty:
        raise InputError(f"all verdicts unknown ({int(frame['winner'].isna().sum())} pairs): there is nothing to "
                         "rate — see the reason column (a judge that gave no readable verdict, or failed)")
    index = {m: k for k, m in enumerate(models)}
    return _Games(models, rows["model_a"].map(index).to_numpy(), rows["model_b"].map(index).to_numpy(),
                  rows["winner"].map({"a": 1.0, "b": 0.0, "tie": 0.5}).to_numpy(float),
                  rows["prompt_id"].astype(str).to_numpy(), unknown)


def _peel(games: _Games) -> np.ndarray:
    """Per model "won every game", "lost every game" or "": the models with no finite rating, found
    repeatedly (once a dud is set aside, the model that only beat it may have won every game left)."""
    k = len(games.models)
    kind = np.full(k, "", dtype=object)
    active = np.ones(len(games.s), bool)
    while True:
        i, j, s = games.i[active], games.j[active], games.s[active]
        took = np.bincount(i, s, k) + np.bincount(j, 1 - s, k)
        gave = np.bincount(i, 1 - s, k) + np.bincount(j, s, k)
        new = (np.bincount(i, minlength=k) + np.bincount(j, minlength=k) > 0) & ((took == 0) | (gave == 0))
        if not new.any():
            return kind
        kind[new & (gave == 0)] = "won every game"
        kind[new & (took == 0)] = "lost every game"
        active &= ~(new[games.i] | new[games.j])


def _without(games: _Games, out: np.ndarray) -> _Games:
    keep = ~(out[games.i] | out[games.j])
    return _Games(games.models, games.i[keep], games.j[keep], games.s[keep], games.prompts[keep], games.unknown)


def _fit(i: np.ndarray, j: np.ndarray, s: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    """Penalised Bradley–Terry strengths (natural-log scale) by Newton's method on weighted games."""
    theta = np.zeros(k)
    for _ in range(100):
        p = 1 / (1 + np.exp(theta[j] - theta[i]))
        resid, curv = w * (s - p), w * p * (1 - p)
        grad = np.bincount(i, resid, k) - np.bincount(j, resid, k) - 2 * RIDGE * theta
        hess = np.zeros((k, k))
        np.add.at(hess, (i, i), curv)
        np.add.at(hess, (j, j), curv)
        np.add.at(hess, (i, j), -curv)
        np.add.at(hess, (j, i), -curv)
        hess[np.diag_indices(k)] += 2 * RIDGE
        step = np.linalg.solve(hess, grad)
        step *= min(1.0, _STEP_CAP / max(np.abs(step).max(), 1e-300))
        theta += step
        if np.abs(step).max() < 1e-9:
            break
    return theta


def _components(games: _Games) -> np.ndarray:
    """Connected components of the "met" graph (union–find)."""
    parent = list(range(len(games.models)))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in zip(games.i, games.j, strict=True):
        parent[root(int(a))] = root(int(b))
    roots = [root(x) for x in range(len(parent))]
    return pd.factorize(np.array(roots))[0]


def _identifiable(games: _Games, component: np.ndarray) -> np.ndarray:
    """Ford's condition per component: its "took points from" digraph is strongly connected."""
    k = len(games.models)
    edge = np.zeros((k, k), bool)
    edge[games.i[games.s > 0], games.j[games.s > 0]] = True
    edge[games.j[games.s < 1], games.i[games.s < 1]] = True
    reach = edge | np.eye(k, dtype=bool)
    for m in range(k):                                   # transitive closure (Warshall): k is small
        reach |= reach[:, [m]] & reach[[m], :]
    out = np.ones(k, bool)
    for c in np.unique(component):
        members = np.flatnonzero(component == c)
        out[members] = reach[np.ix_(members, members)].all()
    return out & _played(games)          # a model with no known verdict has no rating at all


def _centre(theta: np.ndarray, component: np.ndarray, models: list[str], anchor: str | None) -> np.ndarray:
    out = theta.copy()
    for c in np.unique(component):
        members = component == c
        zero = theta[models.index(anchor)] if anchor is not None and component[models.index(anchor)] == c \
            else theta[members].mean()
        out[members] -= zero
    return out


def _intervals(games: _Games, centred: np.ndarray, component: np.ndarray, anchor: str | None,
               n_boot: int, seed: int, levels: tuple[float, ...]) -> list[np.ndarray]:
    """Per level, the (lo, hi) pair stacked: the wider of the model-based and the bootstrap interval
    (one set of resamples for all levels)."""
    sd = _model_sd(games, centred, component, anchor)
    reps = None
    if n_boot and len(games.s):
        codes, uniques = pd.factorize(games.prompts)
        counts = np.random.default_rng(seed).multinomial(len(uniques), np.full(len(uniques), 1 / len(uniques)),
                                                         size=n_boot)
        reps = np.array([_centre(_fit(games.i, games.j, games.s, row[codes], len(games.models)), component,
                                 games.models, anchor) for row in counts.astype(float)])
    out = []
    for level in levels:
        z = NormalDist().inv_cdf(0.5 + level / 2)
        lo, hi = centred - z * sd, centred + z * sd
        if reps is not None:
            tail = (1 - level) / 2
            b_lo, b_hi = np.quantile(reps, [tail, 1 - tail], axis=0)
            lo, hi = np.minimum(lo, b_lo), np.maximum(hi, b_hi)
        out.append(np.stack([lo, hi]))
    return out


def _model_sd(games: _Games, centred: np.ndarray, component: np.ndarray, anchor: str | None) -> np.ndarray:
    """Model-based standard deviation of each centred (or anchored) strength: the inverse Fisher
    information of the fit, projected on the component's centring."""
    k = len(games.models)
    p = 1 / (1 + np.exp(centred[games.j] - centred[games.i]))
    curv = p * (1 - p)
    info = np.zeros((k, k))
    np.add.at(info, (games.i, games.i), curv)
    np.add.at(info, (games.j, games.j), curv)
    np.add.at(info, (games.i, games.j), -curv)
    np.add.at(info, (games.j, games.i), -curv)
    cov = np.linalg.pinv(info + 2 * RIDGE * np.eye(k))
    project = np.eye(k)
    for c in np.unique(component):
        members = np.flatnonzero(component == c)
        if anchor is not None and component[games.models.index(anchor)] == c:
            project[members, games.models.index(anchor)] -= 1.0
        else:
            project[np.ix_(members, members)] -= 1.0 / len(members)
    return np.sqrt(np.clip(np.diag(project @ cov @ project.T), 0, None))


def _played(games: _Games) -> np.ndarray:
    k = len(games.models)
    return (np.bincount(games.i, minlength=k) + np.bincount(games.j, minlength=k)) > 0


def _notes(games: _Games, component: np.ndarray, identifiable: np.ndarray, peeled: np.ndarray) -> list[str]:
    notes = []
    played = _played(games)
    if not played.all():
        notes.append("no known verdict for " + ", ".join(m for m, p in zip(games.models, played, strict=True)
                                                           if not p) + ": no rating and no rank (<NA>)")
    groups_met = np.unique(component[played])
    if len(groups_met) > 1:
        groups = [", ".join(games.models[m] for m in np.flatnonzero((component == c) & played)) for c in groups_met]
        notes.append("some models never met, directly or through others — ratings compare only within "
                     f"each group: {' | '.join(groups)}")
    if (~identifiable & played).any():
        names = ", ".join(m for m, ok, p in zip(games.models, identifiable, played, strict=True) if p and not ok)
        said = "; ".join(f"{m} {kind}" for m, kind in zip(games.models, peeled, strict=True) if kind)
        notes.append(f"no finite rating for {names}: within its group a model won every game or lost every one "
                     f"({said or 'its group has no cycle of wins'}; shown as unknown with its bound and rank; "
                     "the others are rated without it)")
    unknown = sum(games.unknown.values()) // 2
    if unknown:
        notes.append(f"{unknown} unknown verdict(s) left out (per model: "
                     + ", ".join(f"{m} {k}" for m, k in games.unknown.items() if k) + ")")
    return notes


def _unknown_pairs(frame: pd.DataFrame, models: list[str]) -> np.ndarray:
    """``u[a, b]``: unknown verdicts between models a and b (symmetric)."""
    index = {m: k for k, m in enumerate(models)}
    u = np.zeros((len(models), len(models)), int)
    rows = frame[frame["winner"].isna() & (frame["model_a"] != frame["model_b"])]
    for a, b in zip(rows["model_a"].map(index), rows["model_b"].map(index), strict=True):
        u[a, b] += 1
        u[b, a] += 1
    return u


def _unknowns_against(games: _Games, u: np.ndarray, centred: np.ndarray, component: np.ndarray, lo: np.ndarray,
                      hi: np.ndarray, anchor: str | None, level: float,
                      notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Review 22c R1 (G5's rule for claims): an order between two rated models is certified only if it
    also holds with their unknown verdicts counted against the higher-rated one. For each such pair
    the fit is redone with them as the lower one's wins (model-based interval); where the intervals
    then overlap, the higher's ``lo`` and the lower's ``hi`` take that reading's — so the intervals
    shown overlap and the rank rule does not certify the order — and a note says so."""
    lo, hi = lo.copy(), hi.copy()
    z = NormalDist().inv_cdf(0.5 + level / 2)
    for a, b in zip(*np.nonzero(np.triu(u)), strict=True):
        if component[a] != component[b] or not (np.isfinite(lo[a]) and np.isfinite(lo[b])):
            continue
        high, low = (a, b) if centred[a] >= centred[b] else (b, a)
        n = int(u[a, b])
        i = np.concatenate([games.i, np.full(n, low)])
        j = np.concatenate([games.j, np.full(n, high)])
        s = np.concatenate([games.s, np.ones(n)])
        worst = _Games(games.models, i, j, s, np.concatenate([games.prompts, np.full(n, "")]), games.unknown)
        theta = _centre(_fit(i, j, s, np.ones(len(s)), len(games.models)), component, games.models, anchor)
        sd = _model_sd(worst, theta, component, anchor)
        w_lo, w_hi = theta[high] - z * sd[high], theta[low] + z * sd[low]
        if lo[high] > hi[low] and not w_lo > w_hi:
            lo[high], hi[low] = min(lo[high], w_lo), max(hi[low], w_hi)
            notes.append(f"{games.models[high]} above {games.models[low]} is not certified: with their {n} unknown "
                         f"verdict(s) counted against {games.models[high]} the intervals overlap, so the intervals "
                         "shown include that reading (unknowns need not be missing at random: a judge failing on one "
                         "model's bad answers hides exactly its losses)")
    return lo, hi


def _lean_notes(frame: pd.DataFrame, u: np.ndarray, models: list[str]) -> list[str]:
    """Routing's unknown-lean check (:func:`llmlab.analysis._lean.unknown_lean`), per pair of
    models with unknown verdicts between them."""
    notes = []
    for a, b in zip(*np.nonzero(np.triu(u)), strict=True):
        ma, mb = models[a], models[b]
        pair = frame[((frame["model_a"] == ma) & (frame["model_b"] == mb))
                     | ((frame["model_a"] == mb) & (frame["model_b"] == ma))]
        for ref in (ma, mb):
            lean = unknown_lean(pair, ref)
            if lean["warning"]:
                notes.append(f"{ma} vs {mb}: {lean['warning']}")
                break
    return notes


def _table(games: _Games, rating, lo, hi, component, identifiable, peeled, informative: bool,
           ranked: tuple[np.ndarray, float], unknowns: np.ndarray | None = None) -> pd.DataFrame:
    k = len(games.models)
    wins = np.bincount(games.i, games.s == 1, k) + np.bincount(games.j, games.s == 0, k)
    losses = np.bincount(games.i, games.s == 0, k) + np.bincount(games.j, games.s == 1, k)
    ties = np.bincount(games.i, games.s == 0.5, k) + np.bincount(games.j, games.s == 0.5, k)
    table = pd.DataFrame({"rating": rating, "ci_lo": lo, "ci_hi": hi, "games": (wins + losses + ties).astype(int),
                          "wins": wins.astype(int), "losses": losses.astype(int), "ties": ties.astype(int),
                          "unknown": [games.unknown[m] for m in games.models], "component": component,
                          "identifiable": identifiable}, index=pd.Index(games.models, name="model"))
    table.insert(3, "rank", _ranks(games, table, informative, ranked, unknowns))
    table["bound"] = [_bound(games, m, kind) for m, kind in enumerate(peeled)]
    order = np.where(peeled == "won every game", np.inf, np.where(peeled == "lost every game", -np.inf, rating))
    table["_order"] = np.nan_to_num(order.astype(float), nan=-1e300)
    return table.sort_values(["component", "_order"], ascending=[True, False], kind="stable").drop(columns="_order")


def _ranks(games: _Games, table: pd.DataFrame, informative: bool, ranked: tuple[np.ndarray, float],
           unknowns: np.ndarray | None = None) -> pd.Series:
    """1 + the models certainly above it (the module doc's rule) by the intervals and the level of
    ``ranked`` (:func:`_family_level`); <NA> for a model with no known verdict."""
    (lo, hi), level = ranked
    above = _certainly_above(games, BASE + SCALE * lo, BASE + SCALE * hi, table["component"].to_numpy(),
                             informative, level, unknowns)
    ranks = 1 + above.sum(axis=0)
    return pd.Series(pd.array([int(r) if p else pd.NA for r, p in zip(ranks, _played(games), strict=True)],
                              dtype="Int64"), index=table.index)


def _certainly_above(games: _Games, lo: np.ndarray, hi: np.ndarray, component: np.ndarray, informative: bool,
                     level: float, unknowns: np.ndarray | None = None) -> np.ndarray:
    """``out[a, b]``: a is certainly above b at ``level``. Two rated models: a's interval lies wholly
    above b's. Where either has no interval (it won or lost every game, or its group has no finite
    rating): a won more of their direct decisive games and the exact two-sided sign test over them
    rejects "equal" (p ≤ 1 − level; ties are not evidence either way). Then closed under "a above b
    above c". Never across components, never for a model with no known verdict, and never on
    uninformative verdicts (they measure the judge, not the models)."""
    k = len(games.models)
    out = np.zeros((k, k), bool)
    if not informative:
        return out
    rated = np.isfinite(lo) & np.isfinite(hi)
    same = component[:, None] == component[None, :]
    out |= same & rated[:, None] & rated[None, :] & (lo[:, None] > hi[None, :])
    wins = np.zeros((k, k), int)
    np.add.at(wins, (games.i[games.s == 1], games.j[games.s == 1]), 1)
    np.add.at(wins, (games.j[games.s == 0], games.i[games.s == 0]), 1)
    u = unknowns if unknowns is not None else np.zeros((k, k), int)
    for a, b in zip(*np.nonzero(wins > wins.T + u), strict=True):    # their unknowns counted as b's wins
        if not (rated[a] and rated[b]) and _sign_test(int(wins[a, b]), int(wins[b, a] + u[a, b])) <= 1 - level:
            out[a, b] = True
    for m in range(k):                                   # transitive closure (Warshall): k is small
        out |= out[:, [m]] & out[[m], :]
    return out


def _sign_test(won: int, lost: int) -> float:
    """Exact two-sided sign test p-value of ``won`` wins against ``lost`` losses (won > lost)."""
    n = won + lost
    return min(1.0, 2 * sum(math.comb(n, x) for x in range(won, n + 1)) / 2 ** n)


def _bound(games: _Games, m: int, kind: str) -> str:
    if not kind:
        return ""
    opponents = sorted({games.models[o] for a, b in zip(games.i, games.j, strict=True) if m in (a, b)
                        for o in (a, b) if o != m})
    return ("above " if kind == "won every game" else "below ") + ", ".join(opponents)


def _matrices(games: _Games) -> tuple[pd.DataFrame, pd.DataFrame]:
    k = len(games.models)
    points, counts = np.zeros((k, k)), np.zeros((k, k))
    np.add.at(points, (games.i, games.j), games.s)
    np.add.at(points, (games.j, games.i), 1 - games.s)
    np.add.at(counts, (games.i, games.j), 1)
    np.add.at(counts, (games.j, games.i), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(counts > 0, points / counts, np.nan)
    index = pd.Index(games.models, name="model")
    return (pd.DataFrame(rate, index=index, columns=games.models),
            pd.DataFrame(counts.astype(int), index=index, columns=games.models))
