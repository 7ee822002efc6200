"""Cascades that read the answer: ask the cheap model first and escalate only when its answer
looks wrong.

* :class:`Verifier` — a learned acceptance model (FrugalGPT's answer scorer): from the prompt,
  the cheap model's answer and its metadata (length, tokens, finish reason, the endpoint's token
  log-probabilities when recorded, the agreement of ``samples`` answers, the built-in checks of
  :mod:`llmlab.analysis._checks` and your own answer-only checks) it predicts the probability ``p``
  that the cheap answer is **not** good enough, and escalates when ``p ≥ threshold``.
* :class:`SelfConsistency` — no learning (self-consistency, Wang et al. 2023, used as a
  confidence): ask the cheap model ``samples`` times and escalate when they disagree, ``1 − the
  majority final answer's share ≥ threshold``. (AutoMix's self-verification — asking the cheap
  model, few-shot, whether its own answer is right — would be another model call per prompt and
  is not built in.)

Both are two-model cascades with one knob, so :func:`routing.tune` sets the threshold on the tune
half, :func:`routing.evaluate` sweeps it (the cost–quality frontier) and ``claim`` judges it on
the test half. **Accounting:** the cheap model is always paid for every sample (sent at once, so
the wait is the slowest sample), the strong model when escalated (its latency adds); the served
answer is the first sample — the others only measure agreement.

**Honesty:** a verifier sees only what a live router sees after calling the cheap model (never
``expected``, a score or the strong model's answer); it is fitted on the tune half only and
:func:`routing.tune` sets its threshold on out-of-fold predictions. Predictions are numpy only
(the fitted numbers: fill values, scaler, coefficients), so a saved verifier (JSON, no pickle)
scores exactly as the fitted one, without scikit-learn.
"""
from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..analysis import _checks
from ..analysis import _scoring as scoring
from ..base._errors import InputError
from ._answer_features import FEATURES, View, feature_matrix
from ._matrix import Matrix, build_matrix, prompt_text_keys
from ._policies import Decision, Policy
from ._stats import Outcome, spend_of

__all__ = ["Verifier", "SelfConsistency", "MIN_LABELLED"]

# Fewer scored answers than this cannot show which features matter (5-fold CV leaves ~6 per fold).
MIN_LABELLED = 30
MAX_SAMPLES = 1000
# cross-validated: on GSM8K answers AUROC moves < 0.01 over 0.01–1 (research note, issue 23)
_C_GRID = (0.01, 0.1, 1.0)
_VIEW_COLUMNS = ("response_text", "status", "completion_tokens", "finish_reason", "logprob_mean", "logprob_min")
_INSTALL_SKLEARN = "pip install scikit-learn (or pip install 'llmlab[learn]')"
# above every probability: a threshold that accepts every answer the cheap model gave
_ACCEPT_ALL = float(np.nextafter(1.0, 2.0))


# What a fitted model can hold: its weights and intercept (on standardised features; a fit on
# thousands of answers gives |w| < 100), its fill values and means, and spreads (≥ _MIN_SCALE).
_MAX_WEIGHT = 1e6
_MAX_VALUE = 1e12
_MIN_SCALE = 1e-9
_MAX_STANDARD = 1e6
_SAVED_LIMITS = (("fill", _MAX_VALUE), ("mean", _MAX_VALUE), ("scale", _MAX_VALUE), ("coef", _MAX_WEIGHT))


def _saved_number(value: Any, key: str, limit: float) -> float:
    """A number read from a saved model: a JSON number (not a string, not a boolean) of at most
    ``limit`` in magnitude."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    # compared before float(): an int of 400 digits is out of range, not an OverflowError
    if not number or (isinstance(value, float) and not math.isfinite(value)) or abs(value) > limit:
        raise InputError(f"saved Verifier: model {key!r} must hold finite numbers of magnitude ≤ {limit:g}, "
                         f"not {str(value)[:40]!r}")
    return float(value)


def _saved_numbers(values: Any, key: str, n: int, limit: float) -> np.ndarray:
    if not isinstance(values, list) or len(values) != n:
        raise InputError(f"saved Verifier: model {key!r} must be a list of {n} numbers (one per feature)")
    return np.array([_saved_number(v, key, limit) for v in values], dtype=float)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


class _Logistic:
    """``P(not ok) = sigmoid(intercept + standardised(filled x) · coef)`` in numpy: unknown
    values (NaN) take the training mean of their column."""

    def __init__(self, names: Sequence[str], fill: Any, mean: Any, scale: Any, coef: Any,
                 intercept: float) -> None:
        self.names = list(names)
        self.fill, self.mean, self.scale, self.coef = (np.asarray(v, dtype=float) for v in (fill, mean, scale, coef))
        self.intercept = float(intercept)

    @classmethod
    def fit(cls, names: Sequence[str], x: np.ndarray, y: np.ndarray, c: float) -> _Logistic:
        known = np.isfinite(x)
        counts = known.sum(axis=0)
        fill = np.where(counts > 0, np.where(known, x, 0.0).sum(axis=0) / np.maximum(counts, 1), 0.0)
        filled = np.where(known, x, fill)
        mean, scale = filled.mean(axis=0), filled.std(axis=0)
        # a (nearly) constant column carries no signal: not blown up by a rounding-noise spread
        scale = np.where(scale > _MIN_SCALE, scale, 1.0)
        estimator = _logistic(c)
        estimator.fit((filled - mean) / scale, y)
        return cls(names, fill, mean, scale, estimator.coef_[0], estimator.intercept_[0])

    def proba(self, x: np.ndarray) -> np.ndarray:
        filled = np.where(np.isfinite(x), x, self.fill)
        # a value far outside the training range says only that it is far: clipped, so a huge
        # check value cannot make inf − inf (NaN) of the score
        standard = np.clip((filled - self.mean) / self.scale, -_MAX_STANDARD, _MAX_STANDARD)
        return _sigmoid(self.intercept + standard @ self.coef)

    def to_dict(self) -> dict:
        return {"estimator": "logistic", "features": self.names, "fill": self.fill.tolist(),
                "mean": self.mean.tolist(), "scale": self.scale.tolist(), "coef": self.coef.tolist(),
                "intercept": self.intercept}

    @classmethod
    def from_dict(cls, data: Any, names: Sequence[str]) -> _Logistic:
        if not isinstance(data, Mapping) or data.get("estimator") != "logistic":
            raise InputError("saved Verifier: 'model' must be a fitted logistic model")
        if data.get("features") != list(names):
            raise InputError("saved Verifier: its features differ from this llmlab's (saved by another version, "
                             "or its checks were changed); fit it again and save it")
        arrays = [_saved_numbers(data.get(key), key, len(names), limit) for key, limit in _SAVED_LIMITS]
        fill, mean, scale, coef = arrays
        if (scale < _MIN_SCALE).any():
            raise InputError(f"saved Verifier: model 'scale' must be numbers from {_MIN_SCALE:g} to {_MAX_VALUE:g} "
                             "(a spread of the training features)")
        return cls(names, fill, mean, scale, coef, _saved_number(data.get("intercept"), "intercept", _MAX_WEIGHT))


class _AnswerCascade(Policy):
    """Two-model cascade with a knob on the cheap answer(s): ``weak`` ``samples`` times, then
    ``strong`` when ``values ≥ threshold``. Subclasses say how answers are scored (``_p_bad``)."""

    min_samples = 1
    weak: str
    strong: str
    samples: int
    threshold: float
    _named: bool

    def __init__(self, weak: str, strong: str, samples: int, threshold: float, name: str | None) -> None:
        if not isinstance(weak, str) or not isinstance(strong, str) or not weak or not strong:
            raise InputError(f"{type(self).__name__}(weak=..., strong=...) takes two model names")
        if weak == strong:
            raise InputError(f"{type(self).__name__}: weak and strong are the same model ({weak!r})")
        if isinstance(samples, bool) or not isinstance(samples, numbers.Integral) or \
                not self.min_samples <= samples <= MAX_SAMPLES:
            raise InputError(f"{type(self).__name__} samples= is how many answers to ask of {weak!r}, a whole "
                             f"number from {self.min_samples} to {MAX_SAMPLES}, not {samples!r}")
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or math.isnan(threshold):
            raise InputError(f"{type(self).__name__} threshold= must be a number, not {threshold!r}")
        self.weak, self.strong, self.samples = weak, strong, int(samples)
        self.threshold = _clamp(float(threshold))
        self._named = name is not None
        self.name = name or self._default_name()

    def _default_name(self) -> str:
        raise NotImplementedError

    def _p_bad(self, views: Sequence[View]) -> np.ndarray:
        raise NotImplementedError

    def _why(self, p: float, rows: Sequence[Mapping[str, Any]]) -> str:
        raise NotImplementedError

    def needs(self):
        return [self.weak, self.strong]

    def with_threshold(self, threshold: float) -> _AnswerCascade:
        """A copy with another threshold (what :func:`routing.tune` sets), keeping the fit."""
        twin = copy.copy(self)
        twin.threshold = _clamp(float(threshold))
        if not self._named:
            twin.name = twin._default_name()
        return twin

    # --- offline: on a recorded matrix -------------------------------------------------------

    def _views(self, mx: Matrix, at: np.ndarray | None = None) -> tuple[list[View], np.ndarray]:
        """Per prompt (``at``: some of them): the prompt and the cheap model's sampled answer rows,
        and whether the served sample failed."""
        if "prompt" not in mx.runs.columns:
            raise InputError(f"{self.name} reads the prompt: the runs need a 'prompt' column")
        sampled = mx.samples(self.weak, self.samples)
        rows, failed = sampled.rows, sampled.error[:, 0]
        prompts = mx.prompt_values("prompt")
        if at is not None:
            rows, failed, prompts = rows[at], failed[at], prompts[at]
        columns = {c: mx.column(c) for c in _VIEW_COLUMNS if c in mx.runs.columns}
        views: list[View] = [(p if isinstance(p, str) else "", [{c: v[i] for c, v in columns.items()}
                                                                for i in positions])
                             for p, positions in zip(prompts, rows, strict=True)]
        return views, failed

    def values(self, mx: Matrix) -> np.ndarray:
        """Per prompt of ``mx``: the score that escalates when ≥ the threshold (inf where the
        cheap model's answer failed: a failed answer is never accepted)."""
        # scored once per matrix: the simulation, the sweep and the report's tables share it
        return mx.memo(("answer-cascade values", self), lambda: self._score_matrix(mx)).copy()

    def _score_matrix(self, mx: Matrix) -> np.ndarray:
        views, failed = self._views(mx)
        out = np.full(mx.n, np.inf)
        if (~failed).any():
            out[~failed] = self._p_bad([v for v, f in zip(views, failed, strict=True) if not f])
        return out

    def arms(self, mx: Matrix) -> tuple[Outcome, Outcome]:
        """Per prompt, the cheap answer kept (every sample billed, the wait is the slowest) and the
        escalation (the samples plus the strong answer, its latency added)."""
        sampled = mx.samples(self.weak, self.samples)
        j, s = mx.index(self.weak), mx.index(self.strong)
        paid, waited = sampled.cost.sum(axis=1), sampled.latency.max(axis=1)
        calls = np.zeros(len(mx.models), dtype=np.int64)
        calls[j] = self.samples * mx.n
        up_calls = calls.copy()
        up_calls[s] += mx.n
        kept = Outcome(np.tile([j, -1], (mx.n, 1)), np.full(mx.n, j), paid, waited, mx.score[:, j],
                       mx.error[:, j], calls, spend_of(mx, paid, self.samples * mx.spend[:, j]))
        escalated = Outcome(np.tile([j, s], (mx.n, 1)), np.full(mx.n, s), paid + mx.cost[:, s],
                            waited + mx.latency[:, s], mx.score[:, s], mx.error[:, s], up_calls,
                            spend_of(mx, paid + mx.cost[:, s], self.samples * mx.spend[:, j] + mx.spend[:, s]))
        return kept, escalated

    def simulate(self, mx: Matrix) -> Outcome:
        kept, escalated = self.arms(mx)
        up = self.values(mx) >= self.threshold
        calls = kept.calls.copy()
        calls[mx.index(self.strong)] = int(up.sum())
        served, cost, latency, quality, failed, spend = (
            np.where(up, getattr(escalated, f), getattr(kept, f))
            for f in ("served", "cost", "latency", "quality", "failed", "spend"))
        return Outcome(np.where(up[:, None], escalated.tried, kept.tried), served, cost, latency, quality, failed,
                       calls, spend)

    def route(self, mx):
        return self.simulate(mx).tried

    # --- live ----------------------------------------------------------------------------------

    def score_answers(self, prompt: str, answers: str | Sequence[Any]) -> float:
        """The score that escalates when ≥ the threshold, for one live prompt and the cheap model's
        answer(s): a text, a list of texts (samples, the served one first) or of rows (dicts with
        ``response_text`` and, when known, ``completion_tokens``, ``finish_reason``,
        ``logprob_mean``, ``logprob_min``)."""
        if not isinstance(prompt, str):
            raise InputError(f"score_answers(prompt, answers): the prompt is a text, not {type(prompt).__name__}")
        rows = _answer_rows(answers)
        if len(rows) != self.samples:
            raise InputError(f"{self.name} judges {self.samples} sampled answer(s) of {self.weak!r}, "
                             f"got {len(rows)}")
        return float(self._p_bad([(prompt, rows)])[0])

    def _decide(self, prompt, task, prompt_id, features):
        self._ready()            # before anything is sent: an unfitted verifier would bill and then fail

        def verdict(rows: list[dict]) -> tuple[bool, str]:
            if not rows or rows[0].get("status") != "ok":
                return False, "failed"
            try:
                p = float(self._p_bad([(prompt, rows)])[0])
            except Exception as exc:  # an answer the checks cannot read is not accepted (as offline)
                return False, f"could not be judged ({type(exc).__name__})"
            return p < self.threshold, self._why(p, rows)

        return Decision([self.weak, self.strong], "cascade", self.name, samples=self.samples, verdict=verdict,
                        options=self._call_options())

    def _ready(self) -> None:
        """Raise when the policy cannot judge an answer yet."""

    def _call_options(self) -> dict[str, Any]:
        """The options the cheap calls need for the verdict."""
        return {}

    def _code(self):
        raise InputError(f"{self.name}: a {type(self).__name__} reads the cheap model's answer with llmlab's "
                         "checks, so it does not export as standalone code; save it (policy.save(path)), load "
                         "it with routing.load_policy(path) and answer with lab.route (or %%llm model=auto)")


def _clamp(threshold: float) -> float:
    """Thresholds outside [0, 1] mean "escalate everything" or "accept every answer"."""
    return min(max(threshold, 0.0), _ACCEPT_ALL)


def _at(threshold: float) -> str:
    """The escalation rule as a name shows it: "≥ 1" would escalate a value of 1; above 1 is never."""
    return f"≥ {threshold:.3g}" if threshold <= 1 else "> 1: never"


def _answer_rows(answers: str | Sequence[Any]) -> list[dict]:
    if not isinstance(answers, (str, Mapping, Sequence)):
        raise InputError(f"the answers are a text, a row (a dict with response_text) or a list of them (the "
                         f"samples, the served one first), not {type(answers).__name__}")
    items = [answers] if isinstance(answers, (str, Mapping)) else list(answers)
    rows = []
    for item in items:
        if isinstance(item, str):
            rows.append({"response_text": item, "status": "ok"})
        elif isinstance(item, Mapping):
            rows.append({"status": "ok", **dict(item)})
        else:
            raise InputError(f"an answer is a text or a row (a dict with response_text), not {type(item).__name__}")
    return rows


class Verifier(_AnswerCascade):
    """Keep ``weak``'s answer unless a learned acceptance model says it is likely not good enough:
    escalate to ``strong`` when ``P(not ok | prompt, answer) ≥ threshold``. Fit it on scored runs
    of ``weak`` (:meth:`fit`), tune the threshold on the same tune half (:func:`routing.tune`).

    samples: answers asked of ``weak`` per prompt (≥ 1; record them with ``lab.sweep(..., n=k)``):
        their agreement becomes a feature; every sample is billed; the first is the one served.
    checks: your own answer-only checks as extra features — scorers that need no expected answer
        (``scoring.json_valid()``, ``scoring.regex(pattern)``, a checker spec, or a function
        ``f(text) -> number``); specs and built-in scorers are saved with the verifier (a Python
        function cannot be: ``save`` refuses it). A regex check is compiled at once and refused
        when it can backtrack catastrophically on an answer.
    threshold: the knob — lower escalates more.

    The built-in features (``Verifier.FEATURES``) are listed in :mod:`llmlab.routing._answer_features`.
    """

    FEATURES = FEATURES

    def __init__(self, weak: str, strong: str, *, samples: int = 1, checks: Sequence[Any] = (),
                 threshold: float = 0.5, name: str | None = None) -> None:
        if isinstance(checks, (str, Mapping)) or not isinstance(checks, Sequence):
            checks = [checks]
        self._checks = [_answer_check(c) for c in checks]
        # what save() writes: a spec, or a built-in scorer's own; a Python function cannot be saved
        self.check_specs: list[Any] = [dict(c) if isinstance(c, Mapping) else c if isinstance(c, str) else
                                       getattr(c, "spec", None) for c in checks]
        self._model: _Logistic | None = None
        self._train: tuple[np.ndarray, np.ndarray, np.ndarray, float] | None = None
        self.fitted_on: frozenset = frozenset()       # prompt ids of the fit: evaluate warns on overlap
        self.training: dict[str, Any] = {}
        super().__init__(weak, strong, samples, threshold, name)

    def _default_name(self) -> str:
        sampled = f" ×{self.samples}" if self.samples > 1 else ""
        return f"verifier({self.weak}{sampled} → {self.strong} | p(not ok) {_at(self.threshold)})"

    @property
    def feature_names(self) -> list[str]:
        return [*FEATURES, *(f"check:{name}" for name, _ in self._checks)]

    @property
    def fitted(self) -> bool:
        return self._model is not None

    # --- fitting -----------------------------------------------------------------------------

    def fit(self, runs: pd.DataFrame, score: str = "score", weak_ok_at: float = 0.5) -> Verifier:
        """Learn P(``weak``'s answer is not good enough | what a router sees) from ``runs``' scored
        answers of ``weak`` (the tune half; an answer is good enough when its score ≥ ``weak_ok_at``).
        Failed answers are left out (they always escalate). Returns ``self``."""
        mx = self._training_matrix(runs, score, weak_ok_at)
        views, failed = self._views(mx)
        keep = ~failed
        missing = sum(1 for (_, rows), k in zip(views, keep, strict=True) if k and not isinstance(
            rows[0].get("response_text"), str))
        if missing:
            raise InputError(f"Verifier.fit: {_count(missing, 'answer')} of {self.weak!r} "
                             f"{'has' if missing == 1 else 'have'} no response_text; the verifier "
                             "reads the answers, so fit it on runs that keep them (lab.runs() does)")
        y = (mx.score[keep, 0] < weak_ok_at).astype(np.int64)
        _check_labels(y, self.weak)
        x = self._features([v for v, k in zip(views, keep, strict=True) if k])
        c = _choose_c(x, y)
        self._model = _Logistic.fit(self.feature_names, x, y, c)
        self._train = (mx.prompt_ids[keep], x, y, c)
        self.fitted_on = frozenset(mx.prompt_ids)
        self.fitted_texts = prompt_text_keys(mx)     # held out means held-out texts too
        self.training = {"n_prompts": int(len(y)), "weak_not_ok_rate": float(y.mean()), "score": score,
                         "weak_ok_at": float(weak_ok_at), "C": c, "failed_left_out": int(failed.sum())}
        return self

    def _training_matrix(self, runs: pd.DataFrame, score: str, weak_ok_at: float) -> Matrix:
        if not isinstance(runs, pd.DataFrame):
            raise InputError("Verifier.fit(runs) takes a scored runs DataFrame")
        if isinstance(weak_ok_at, bool) or not isinstance(weak_ok_at, (int, float)) or not math.isfinite(weak_ok_at):
            raise InputError(f"weak_ok_at must be a number (a score in 0–1), not {weak_ok_at!r}")
        for column in ("prompt_id", "requested_model", "prompt", score):
            if column not in runs.columns:
                hint = " — score them first (llmlab.scoring)" if column == score else ""
                raise InputError(f"Verifier.fit: the runs have no {column!r} column{hint}")
        weak_rows = runs[runs["requested_model"] == self.weak]
        if weak_rows.empty:
            raise InputError(f"Verifier.fit: no answers of the cheap model {self.weak!r} in the runs; record and "
                             "score its answers to the tuning prompts")
        # the served answers (repeat 0) are the labels; the other samples are only read
        served = weak_rows[weak_rows["repeat"].fillna(0) == 0] if "repeat" in weak_rows else weak_rows
        ok = served["status"] != "error" if "status" in served else np.ones(len(served), bool)
        unscored = int((ok & served[score].isna()).sum())
        if unscored:
            raise InputError(f"Verifier.fit: {_count(unscored, 'answer')} of {self.weak!r} "
                             f"{'has' if unscored == 1 else 'have'} no {score!r}; score every "
                             "answer before fitting (an unscored answer is not a label)")
        return build_matrix(weak_rows, score, [self.weak])

    def _features(self, views: Sequence[View]) -> np.ndarray:
        return feature_matrix(views, [check for _, check in self._checks])

    def _ready(self) -> None:
        if self._model is None:
            raise InputError(f"{self.name} is not fitted: call .fit(tune_runs) first")

    def _call_options(self) -> dict[str, Any]:
        # fitted on answers with log-probabilities: ask for them, or its strongest signal may be unknown live
        return {"logprobs": True, "top_logprobs": 1} if self.uses_logprobs else {}

    @property
    def uses_logprobs(self) -> bool:
        """Whether it was fitted on answers that carried log-probabilities (then lab.route asks for them)."""
        return self._model is not None and bool(self._model.mean[FEATURES.index("logprob_known")] > 0)

    def _p_bad(self, views):
        self._ready()
        assert self._model is not None
        return self._model.proba(self._features(views))

    def _why(self, p, rows):
        return f"rejected: p(not ok) {p:.3f} ≥ {self.threshold:.3g}"

    def out_of_fold_values(self, runs: pd.DataFrame, mx: Matrix, *, folds: int = 5, seed: int = 0) -> np.ndarray:
        """:meth:`values` where each fitted prompt is scored by a copy fitted without it
        (``folds``-fold cross-fitting on the fit's own features): what :func:`routing.tune` sets
        the threshold on — on its training prompts a fitted verifier looks better than it is."""
        if self._model is None:
            raise InputError(f"{self.name} is not fitted: fit it on the tune half (.fit(tune_runs)) before tuning it")
        if self._train is None:
            raise InputError(f"{self.name} has no training data in memory (it was loaded from a file): fit it "
                             "on the tune half (.fit(tune_runs)) before tuning it")
        ids, x, y, c = self._train
        held = np.full(len(ids), np.nan)
        for fold in np.array_split(np.random.default_rng(seed).permutation(len(ids)), min(folds, len(ids))):
            train = np.ones(len(ids), dtype=bool)
            train[fold] = False
            rest = y[train]
            held[fold] = rest.mean() if rest.min() == rest.max() else \
                _Logistic.fit(self.feature_names, x[train], rest, c).proba(x[fold])
        where = pd.Index(ids).get_indexer(mx.prompt_ids)
        out = np.where(where >= 0, held[np.maximum(where, 0)], np.nan)
        others = np.flatnonzero(where < 0)       # not fitted on (or failed then): the fitted model, failures inf
        if len(others):
            views, failed = self._views(mx, others)
            scored = [v for v, f in zip(views, failed, strict=True) if not f]
            out[others] = np.inf
            if scored:
                out[others[~failed]] = self._p_bad(scored)
        return out

    def coefficients(self) -> pd.Series:
        """The fitted weights (on standardised features; positive = more likely not good enough),
        largest magnitude first."""
        if self._model is None:
            raise InputError(f"{self.name} is not fitted: call .fit(tune_runs) first")
        weights = pd.Series(self._model.coef, index=self._model.names, name="weight")
        return weights.iloc[np.argsort(-np.abs(weights.to_numpy()), kind="stable")]

    # --- saving (JSON, never pickle) -----------------------------------------------------------

    def _fields(self):
        if self._model is None:
            raise InputError(f"{self.name} is not fitted: there is nothing to save yet")
        if any(spec is None for spec in self.check_specs):
            raise InputError(f"{self.name}: a check given as a Python function or object cannot be saved as JSON; "
                             "give checks as checker specs (e.g. 'json_valid', {'kind': 'regex', 'pattern': ...})")
        return {"weak": self.weak, "strong": self.strong, "samples": self.samples, "threshold": self.threshold,
                "checks": self.check_specs, "model": self._model.to_dict(), "training": dict(self.training),
                "fitted_on": sorted(_json_ids(self.fitted_on), key=lambda v: (isinstance(v, str), v)),
                "named": self._named}

    @classmethod
    def _from_fields(cls, data, name):
        verifier = cls(data["weak"], data["strong"], samples=data["samples"], checks=data["checks"],
                       threshold=data["threshold"], name=name if data.get("named") else None)
        verifier._model = _Logistic.from_dict(data["model"], verifier.feature_names)
        verifier.training = _saved_training(data.get("training", {}))
        verifier.fitted_on = _saved_prompt_ids(data.get("fitted_on", []))
        return verifier


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 10 ** 9


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and abs(v) <= _MAX_VALUE


# what a fit records about itself (evaluate reads weak_ok_at: the line between good and not)
_TRAINING: dict[str, tuple[Callable[[Any], bool], str]] = {
    "n_prompts": (_whole, "a whole number"), "failed_left_out": (_whole, "a whole number"),
    "weak_not_ok_rate": (lambda v: _finite(v) and 0 <= v <= 1, "a share from 0 to 1"),
    "score": (lambda v: isinstance(v, str) and len(v) <= 200, "a column name"),
    "weak_ok_at": (_finite, "a finite number"), "C": (lambda v: _finite(v) and v > 0, "a positive number"),
}
_MAX_PROMPT_IDS = 10_000_000


def _saved_training(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InputError("saved Verifier: 'training' must be an object (what the fit recorded)")
    for key, item in value.items():
        check, what = _TRAINING.get(key, (None, ""))
        if check is None:
            raise InputError(f"saved Verifier: unknown 'training' field {str(key)[:40]!r} "
                             f"(known: {', '.join(_TRAINING)})")
        if not check(item):
            raise InputError(f"saved Verifier: training {key!r} must be {what}, not {str(item)[:40]!r}")
    return dict(value)


def _saved_prompt_ids(value: Any) -> frozenset:
    """The prompt ids the verifier was fitted on (evaluate warns when it is judged on them)."""
    if not isinstance(value, list) or len(value) > _MAX_PROMPT_IDS or not all(
            isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
        raise InputError("saved Verifier: 'fitted_on' must be a list of prompt ids (strings or integers)")
    return frozenset(value)


def _json_ids(ids: frozenset) -> list[str | int]:
    """Prompt ids as JSON keeps them (numpy integers as ints, anything else as its text)."""
    return [int(v) if isinstance(v, numbers.Integral) and not isinstance(v, bool) else str(v) for v in ids]


def _answer_check(check: Any) -> tuple[str, Callable[[str], float]]:
    """(name, f(text) -> number) of an answer-only check."""
    if isinstance(check, (scoring.Scorer, Mapping, str)):
        scorer = scoring.as_scorer(check)
        if scorer.uses_expected:
            raise InputError(f"Verifier check {scorer.name} needs the expected answer, which a router never has; "
                             "use a check of the answer alone (json_valid(), regex(pattern), arithmetic(), …)")
        return scorer.name, lambda text: scorer.check(text, None)[0]
    if callable(check) and scoring._accepts_one_argument(check):
        return getattr(check, "__name__", "check"), lambda text: _as_number(check(text))
    raise InputError(f"a Verifier check is an answer-only scorer, a checker spec or a function f(text) -> number, "
                     f"not {check!r}")


def _as_number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _check_labels(y: np.ndarray, weak: str) -> None:
    if len(y) < MIN_LABELLED:
        raise InputError(f"Verifier.fit: only {_count(len(y), 'scored answer')} of {weak!r}; a verifier needs at least "
                         f"{MIN_LABELLED} (record and score more prompts)")
    if y.min() == y.max():
        state = "not good enough" if y[0] else "good enough"
        raise InputError(f"Verifier.fit: all {len(y)} answers of {weak!r} are {state}, so there is nothing to tell "
                         "apart; fit on prompts where it is sometimes right and sometimes wrong")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _choose_c(x: np.ndarray, y: np.ndarray) -> float:
    """The regularisation with the best 5-fold cross-validated log-loss on the tuning answers."""
    _require_sklearn()
    from sklearn.model_selection import StratifiedKFold

    minority = int(np.bincount(y).min())
    if minority < 3:
        return 0.1
    folds = list(StratifiedKFold(n_splits=min(5, minority), shuffle=True, random_state=0).split(x, y))
    losses = []
    for c in _C_GRID:
        total = 0.0
        for train, test in folds:
            p = np.clip(_Logistic.fit([], x[train], y[train], c).proba(x[test]), 1e-12, 1 - 1e-12)
            total -= float(np.sum(y[test] * np.log(p) + (1 - y[test]) * np.log(1 - p)))
        losses.append(total)
    return _C_GRID[int(np.argmin(losses))]


def _logistic(c: float):
    _require_sklearn()
    from sklearn.linear_model import LogisticRegression

    # liblinear: exact and single-threaded; a large intercept_scaling keeps its intercept penalty
    # negligible, so the base rate stays calibrated (as routing.Learned does)
    return LogisticRegression(C=c, solver="liblinear", intercept_scaling=10.0, max_iter=1000)


def _require_sklearn() -> None:
    import importlib.util

    if importlib.util.find_spec("sklearn") is None:
        raise InputError(f"fitting a verifier needs scikit-learn: {_INSTALL_SKLEARN}")


class SelfConsistency(_AnswerCascade):
    """Ask ``weak`` ``samples`` times (≥ 2) and keep its first answer when the samples agree;
    escalate to ``strong`` when their disagreement — 1 − the share of samples stating the
    majority final answer — is ≥ ``threshold`` (the knob; lower escalates more). Nothing to fit:
    :func:`routing.tune` sets the threshold. Record the samples with ``lab.sweep(..., n=samples)``
    (a temperature above 0, or they all agree)."""

    min_samples = 2

    def __init__(self, weak: str, strong: str, *, samples: int = 5, threshold: float = 0.5,
                 name: str | None = None) -> None:
        super().__init__(weak, strong, samples, threshold, name)

    def _default_name(self) -> str:
        return f"self-consistency({self.weak} ×{self.samples} → {self.strong} | disagreement {_at(self.threshold)})"

    def _p_bad(self, views):
        return np.array([1.0 - _agreement(rows).share for _, rows in views], dtype=float)

    def _why(self, p, rows):
        found = _agreement(rows)
        agreeing = round(found.share * found.n)
        return f"rejected: {agreeing} of {found.n} samples agree (disagreement {p:.2f} ≥ {self.threshold:.3g})"

    def _fields(self):
        return {"weak": self.weak, "strong": self.strong, "samples": self.samples, "threshold": self.threshold,
                "named": self._named}

    @classmethod
    def _from_fields(cls, data, name):
        return cls(data["weak"], data["strong"], samples=data["samples"], threshold=data["threshold"],
                   name=name if data.get("named") else None)


def _agreement(rows: Sequence[Mapping[str, Any]]) -> _checks.Agreement:
    return _checks.agreement([r.get("response_text") if r.get("status", "ok") == "ok" else None for r in rows])
