"""Routing policies, each vectorised over prompts.

A policy's :meth:`route` returns, per prompt, the ordered model indices it calls as an int
matrix (prompts × depth, left-aligned, -1 padding); the last index of each row is the model whose
answer is served. Cost and latency are the sums over the models called.

Honesty rule: a policy may use only what a real router knows when it decides — the prompt-level
columns (task, prompt, your own features) and, for Fallback/Cascade, the answers of models it has
already called. ``expected`` and scores are off limits, except in :class:`Oracle` (an upper
bound, labelled as such) and in a Cascade whose ``accept`` is an explicit :func:`on_row`
predicate (you opted in).
"""
from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .. import scoring
from .._errors import InputError
from ._matrix import Matrix

__all__ = ["Policy", "Always", "TaskMap", "Fallback", "Cascade", "Threshold", "Random",
           "Oracle", "on_row"]


class Policy:
    """Base class: ``name``, ``needs()`` (models called; None = all) and ``route(matrix)``;
    ``decide(prompt)`` for live use, ``save(path)``/``to_dict()`` and ``to_code()`` to deploy."""

    name: str = "policy"
    tuned_on: dict[str, Any] | None = None   # set by routing.tune / fit_task_map: what chose the knob

    def needs(self) -> list[str] | None:
        raise NotImplementedError

    def route(self, mx: Matrix) -> np.ndarray:
        raise NotImplementedError

    def decide(self, prompt: str, *, task: str | None = None, prompt_id: str | None = None,
               features: Mapping[str, Any] | None = None) -> Any:
        """The models to call for one live prompt, in order, and why (a ``Decision``)."""
        from ._live import decide

        return decide(self, prompt, task=task, prompt_id=prompt_id, features=features)

    def to_dict(self) -> dict:
        """A JSON-able description (``routing.load_policy`` reads it back; never pickle)."""
        from ._live import to_dict

        return to_dict(self)

    def save(self, path: Any) -> Any:
        """Write the policy as JSON to ``path``; returns the path."""
        from ._live import save

        return save(self, path)

    def to_code(self) -> str:
        """Python source of a standalone ``pick_model(prompt, task=None)`` (rule policies)."""
        from ._live import to_code

        return to_code(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class Always(Policy):
    """Every prompt goes to ``model``."""

    def __init__(self, model: str, name: str | None = None) -> None:
        self.model = model
        self.name = name or f"always({model})"

    def needs(self):
        return [self.model]

    def route(self, mx):
        return np.full((mx.n, 1), mx.index(self.model), dtype=np.int64)


class TaskMap(Policy):
    """The gateway guide's ``pick_model``: ``mapping[task]``, else ``default``."""

    def __init__(self, mapping: Mapping[str, str], default: str | None = None,
                 name: str | None = None) -> None:
        self.mapping, self.default = dict(mapping), default
        self.name = name or "task_map"

    def needs(self):
        return list(dict.fromkeys([*self.mapping.values(), *([self.default] if self.default else [])]))

    def route(self, mx):
        tasks = pd.Series(mx.prompt_values("task")).astype(object)
        index = {task: mx.index(model) for task, model in self.mapping.items()}
        picked = tasks.map(index)
        if picked.isna().any():
            if self.default is None:
                unmapped = sorted(map(str, pd.unique(tasks[picked.isna()])))
                raise InputError(f"{self.name}: no model for task(s) {', '.join(unmapped)} "
                                 "and no default=")
            picked = picked.fillna(mx.index(self.default))
        return picked.to_numpy(dtype=np.int64)[:, None]


class Fallback(Policy):
    """Call ``models`` in order until one does not fail (recorded ``status == "error"``).

    Every failed attempt's cost and latency count; if all fail the last error is served (quality 0).
    """

    def __init__(self, models: Sequence[str], name: str | None = None) -> None:
        if not models:
            raise InputError("Fallback needs at least one model")
        self.models = list(models)
        self.name = name or f"fallback({' → '.join(self.models)})"

    def needs(self):
        return self.models

    def route(self, mx):
        cols = np.array([mx.index(m) for m in self.models])
        # As the engine does live: a stream that failed after showing text (a StreamCut) is served
        # as it is, never answered again by another model.
        shown = np.column_stack([_streamed_text(mx, j) for j in cols])
        return _chain(cols, ~mx.error[:, cols] | shown)


class _RowPredicate:
    def __init__(self, fn: Callable[[dict], Any]) -> None:
        self.fn = fn
        self.name = getattr(fn, "__name__", "predicate")


def on_row(fn: Callable[[dict], Any]) -> _RowPredicate:
    """Mark a cascade ``accept`` predicate that sees the whole recorded row (a dict, including
    ``expected`` and scores). This breaks the honesty rule on purpose — use it to model an
    acceptance test you really have (e.g. unit tests you can run), not to peek at the labels."""
    return _RowPredicate(fn)


class Cascade(Policy):
    """Try ``models`` cheapest first; escalate while the answer is not accepted.

    ``accept`` looks at the **answer only**: a scorer that ignores ``expected`` (e.g.
    ``scoring.json_valid()``, ``scoring.regex(r"^\\d+$")``; accepted when its score ≥
    ``accept_at``) or a function ``f(response_text) -> bool``. A scorer that needs ``expected``
    is refused — a router never has the reference answer — unless wrapped in :func:`on_row`.
    An error row is never accepted. Cost and latency are the sums over the models tried.
    """

    def __init__(self, models: Sequence[str], accept: Any, accept_at: float = 0.5,
                 name: str | None = None) -> None:
        if len(models) < 2:
            raise InputError("Cascade needs at least two models (cheap first)")
        self.models, self.accept_at = list(models), accept_at
        self._accept = _answer_test(accept)
        # what save() writes: a checker spec survives JSON, a Python function does not
        self.accept_spec: Any = dict(accept) if isinstance(accept, Mapping) else \
            accept if isinstance(accept, str) else None
        self.uses_labels = isinstance(accept, _RowPredicate)
        label = getattr(accept, "name", getattr(accept, "__name__", "accept"))
        self.name = name or f"cascade({' → '.join(self.models)} | {label})"

    def needs(self):
        return self.models

    def route(self, mx):
        cols = np.array([mx.index(m) for m in self.models])
        accepted = np.zeros((mx.n, len(cols)), dtype=bool)
        for k, j in enumerate(cols[:-1]):
            accepted[:, k] = self._accepted(mx, j) & ~mx.error[:, j]
        return _chain(cols, accepted)

    def _accepted(self, mx: Matrix, j: int) -> np.ndarray:
        if self._accept[0] == "row":
            records = mx.runs.iloc[mx.rows[:, j]].to_dict("records")
            values = _apply(self._accept[1], records, self.name)
        else:
            values = _apply(self._accept[1], mx.cell_values("response_text", j), self.name)
        return np.array([_truthy(v, self.accept_at) for v in values], dtype=bool)


def _answer_test(accept: Any) -> tuple[str, Callable]:
    if isinstance(accept, _RowPredicate):
        return "row", accept.fn
    if isinstance(accept, (scoring.Scorer, Mapping)) or isinstance(accept, str):
        scorer = scoring.as_scorer(accept)
        if scorer.uses_expected:
            raise InputError(
                f"Cascade accept={scorer.name} needs the expected answer, which a router never "
                "has; use a check of the answer alone (json_valid(), regex(pattern), a function "
                "of the text) or, deliberately, routing.on_row(predicate)")
        return "text", lambda text: scorer.check(text, None)[0]
    if callable(accept):
        if not scoring._accepts_one_argument(accept):
            raise InputError("Cascade accept= functions get the answer text only: f(text) -> bool "
                             "(wrap a row predicate in routing.on_row)")
        return "text", accept
    raise InputError(f"accept= must be a scorer, a function of the answer or on_row(...), not {accept!r}")


def _apply(fn: Callable, items: Sequence[Any] | np.ndarray, label: str) -> list[Any]:
    out, failures = [], 0
    for item in items:
        try:
            out.append(fn(item))
        except Exception:  # an odd answer must not abort the simulation: it is not accepted
            failures += 1
            out.append(False)
    if failures:
        warnings.warn(f"{label}: accept raised on {failures} answers (treated as not accepted)",
                      RuntimeWarning, stacklevel=4)
    return out


def _truthy(value: Any, at: float) -> bool:
    if isinstance(value, (bool, np.bool_)) or value is None:
        return bool(value)
    try:
        return float(value) >= at
    except (TypeError, ValueError):
        return bool(value)


class Threshold(Policy):
    """``strong`` when the prompt's feature ≥ ``threshold``, else ``weak``.

    ``feature``: ``"prompt_chars"`` (length of the prompt text), the name of a prompt-level
    column (e.g. a classifier's score you merged into the runs), a mapping or Series
    ``{prompt_id: value}``, or a function of the router-visible prompt row (a dict). A missing
    feature value (NaN) routes to ``weak``.
    """

    def __init__(self, feature: Any, threshold: float, weak: str, strong: str,
                 name: str | None = None) -> None:
        self.feature, self.threshold, self.weak, self.strong = feature, threshold, weak, strong
        self._label = feature if isinstance(feature, str) else getattr(feature, "__name__", "feature")
        self._named = name is not None
        self.name = name or self._default_name()

    def _default_name(self) -> str:
        return f"threshold({self._label} ≥ {self.threshold:g}: {self.weak} | {self.strong})"

    def with_threshold(self, threshold: float) -> Threshold:
        """A copy with another threshold (what :func:`routing.tune` sets)."""
        from ._split import with_knob

        twin = with_knob(self, threshold, self.name)
        if not self._named:
            twin.name = twin._default_name()
        return twin

    def needs(self):
        return [self.weak, self.strong]

    def values(self, mx: Matrix) -> np.ndarray:
        """The feature per prompt (float, NaN when unknown)."""
        f = self.feature
        if isinstance(f, str) and f == "prompt_chars":
            return np.array([len(p) if isinstance(p, str) else np.nan
                             for p in mx.prompt_values("prompt")], dtype=float)
        if isinstance(f, str):
            return pd.to_numeric(pd.Series(mx.prompt_values(f)), errors="coerce").to_numpy(float)
        if isinstance(f, (Mapping, pd.Series)):
            series = f if isinstance(f, pd.Series) else pd.Series(dict(f), dtype=float)
            return pd.to_numeric(series.reindex(mx.prompt_ids), errors="coerce").to_numpy(float)
        if callable(f):
            return np.array([_as_float(f(r)) for r in mx.prompt_records()], dtype=float)
        raise InputError(f"Threshold feature must be a column name, a mapping or a function, not {f!r}")

    def route(self, mx):
        values = self.values(mx)
        if mx.n and np.isnan(values).all():
            # usually a feature keyed by something other than prompt_id: say so, don't guess
            warnings.warn(f"{self.name}: the feature is unknown (NaN) for every prompt, so all "
                          "go to the weak model; check its keys/column", RuntimeWarning, stacklevel=3)
        strong = values >= self.threshold
        return np.where(strong, mx.index(self.strong), mx.index(self.weak)).astype(np.int64)[:, None]


class Random(Policy):
    """``strong`` with probability ``p_strong`` per prompt: the no-information baseline. The draw is
    fixed by (``seed``, prompt text), so the same prompt always takes the same route — offline in
    :func:`evaluate` and live in ``lab.route`` alike, whatever else is in the sample."""

    def __init__(self, p_strong: float, weak: str, strong: str, seed: int = 0,
                 name: str | None = None) -> None:
        if isinstance(p_strong, bool) or not isinstance(p_strong, (int, float)) or not 0 <= p_strong <= 1:
            raise InputError(f"p_strong must be a number in [0, 1], not {p_strong!r}")
        self.p_strong, self.weak, self.strong, self.seed = p_strong, weak, strong, seed
        self.name = name or f"random({p_strong:.0%} {strong} else {weak})"

    def needs(self):
        return [self.weak, self.strong]

    def route(self, mx):
        texts = mx.prompt_values("prompt") if "prompt" in mx.runs.columns else mx.prompt_ids
        strong = np.array([uniform_draw(self.seed, str(t)) < self.p_strong for t in texts], dtype=bool)
        return np.where(strong, mx.index(self.strong), mx.index(self.weak)).astype(np.int64)[:, None]


def uniform_draw(seed: int, prompt: str) -> float:
    """A draw in [0, 1) fixed by (seed, prompt): the same prompt always takes the same route."""
    digest = hashlib.sha256(f"{seed}\x1f{prompt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class Oracle(Policy):
    """Per prompt, the cheapest model among those with the best score: an upper bound that
    reads the scores, so no real router reaches it."""

    uses_labels = True

    def __init__(self, models: Sequence[str] | None = None, name: str | None = None) -> None:
        self.models = list(models) if models else None
        self.name = name or ("oracle" if self.models is None else f"oracle({', '.join(self.models)})")

    def needs(self):
        return self.models

    def route(self, mx):
        cols = np.arange(len(mx.models)) if self.models is None else \
            np.array([mx.index(m) for m in self.models])
        score, cost = mx.score[:, cols], mx.cost[:, cols]
        best = score == score.max(axis=1, keepdims=True)
        # unknown (NaN) costs rank last among equally good models
        price = np.where(best, np.nan_to_num(cost, nan=np.inf), np.inf)
        pick = np.where(best.any(axis=1), price.argmin(axis=1), 0)
        return cols[pick].astype(np.int64)[:, None]


def _streamed_text(mx: Matrix, j: int) -> np.ndarray:
    """Error cells of model ``j`` whose stream had already shown text to the user."""
    kind = pd.Series(mx.cell_values("error_type", j), dtype=object)
    text = pd.Series(mx.cell_values("response_text", j), dtype=object).fillna("").astype(str)
    streamed = pd.Series(mx.cell_values("stream", j), dtype=object).fillna(False).astype(bool)
    return mx.error[:, j] & ((kind == "StreamCut").to_numpy() | (streamed & (text != "")).to_numpy())


def _chain(cols: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Left-aligned tried-models matrix: models in order until ``stop`` (the last always stops)."""
    stop = stop.copy()
    stop[:, -1] = True
    n_tried = stop.argmax(axis=1) + 1
    depth = np.arange(len(cols))
    return np.where(depth[None, :] < n_tried[:, None], cols[None, :], -1).astype(np.int64)


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan
