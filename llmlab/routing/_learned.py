"""A router learned from your own runs: will the weak model's answer be good enough for this prompt?

:class:`Learned` is fitted on scored runs of the weak model (``fit(tune_runs)``) and predicts,
from the prompt alone, the probability ``p`` that the weak model's answer is **not** good enough
(its score < ``weak_ok_at``). It routes to the strong model when ``p ≥ threshold`` — a threshold
policy on a learned feature, so the report's threshold sweep, PGR, APGR and CPT apply to it.

Default features: the prompt's word 1–2-gram TF-IDF (sublinear term frequency, L2-normalised),
plus ``log(1 + characters)`` and the number of digits (standardised), plus a one-hot of the
task (tasks unseen at fit time get none). Default estimator: scikit-learn's
``LogisticRegression``, its ``C`` chosen by cross-validation on the tuning runs. scikit-learn
is used only to *fit*: predictions are computed from the fitted numbers (vocabulary, idf,
scaler, coefficients, intercept) with numpy, the same code
before and after :meth:`Learned.to_dict` / :meth:`Learned.from_dict`, so a saved router
reproduces its probabilities exactly, without pickle and without scikit-learn installed.

Honesty: ``fit`` sees only the runs you pass it. Judge the router on prompts it was not fitted
on (a tune/test split of the prompts, or cross-validation) — on its own training prompts it
looks better than it is.
"""
from __future__ import annotations

import copy
import math
import re
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from ..base._errors import InputError
from ..base._validate import is_real
from ._matrix import Matrix, build_matrix
from ._policies import Threshold

__all__ = ["Learned"]

FORMAT = "llmlab.routing.Learned"
FORMAT_VERSION = 1
# scikit-learn's default token pattern, applied to the lower-cased text, as TfidfVectorizer does.
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_NUMERIC = ("log_chars", "digits")
_C_GRID = (0.1, 1.0, 10.0, 100.0)
_INSTALL_SKLEARN = "pip install scikit-learn (or pip install 'llmlab[learn]')"


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def _texts(values: Any) -> list[str]:
    return ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in values]


def _numeric(prompts: list[str]) -> np.ndarray:
    return np.array([[math.log1p(len(p)), float(sum(c.isdigit() for c in p))] for p in prompts],
                    dtype=float).reshape(len(prompts), len(_NUMERIC))


class _Scaler:
    """Standardisation with the fit-time mean and spread (a constant column is left centred)."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray) -> None:
        self.mean, self.scale = np.asarray(mean, dtype=float), np.asarray(scale, dtype=float)

    @classmethod
    def fit(cls, x: np.ndarray) -> _Scaler:
        scale = x.std(axis=0) if len(x) else np.ones(x.shape[1])
        return cls(x.mean(axis=0) if len(x) else np.zeros(x.shape[1]), np.where(scale > 0, scale, 1.0))

    def apply(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.scale


class _TfidfFeatures:
    """TF-IDF of word 1–2-grams + scaled length/digits + task one-hot."""

    serialisable = True

    def __init__(self, vocabulary: list[str], idf: np.ndarray, scaler: _Scaler,
                 tasks: list[str]) -> None:
        self.vocabulary, self.idf = list(vocabulary), np.asarray(idf, dtype=float)
        self.index = {term: i for i, term in enumerate(self.vocabulary)}
        self.scaler, self.tasks = scaler, list(tasks)
        self.task_index = {t: i for i, t in enumerate(self.tasks)}

    @property
    def width(self) -> int:
        return len(self.vocabulary) + len(_NUMERIC) + len(self.tasks)

    @classmethod
    def fit(cls, prompts: list[str], tasks: list[str | None]) -> _TfidfFeatures:
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(lowercase=True, ngram_range=(1, 2), sublinear_tf=True,
                                     token_pattern=_TOKEN.pattern, norm="l2")
        try:
            vectorizer.fit(prompts)
            vocabulary = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
            idf = vectorizer.idf_
        except ValueError:  # no prompt has a word of two or more characters: length/task only
            vocabulary, idf = [], np.zeros(0)
        seen = sorted({t for t in tasks if t is not None})
        return cls(vocabulary, idf, _Scaler.fit(_numeric(prompts)), seen)

    def _weights(self, text: str) -> dict[int, float]:
        """One prompt's L2-normalised sublinear TF-IDF weights {column: weight}, as sklearn's."""
        tokens = _TOKEN.findall(text.lower())
        grams = tokens + [f"{a} {b}" for a, b in pairwise(tokens)]
        counts = Counter(self.index[g] for g in grams if g in self.index)
        weights = {col: (1.0 + math.log(c)) * self.idf[col] for col, c in counts.items()}
        norm = math.sqrt(sum(w * w for w in weights.values()))
        return {col: w / norm for col, w in weights.items()} if norm > 0 else {}

    def _dense_tail(self, prompts: list[str], tasks: list[str | None]) -> np.ndarray:
        onehot = np.zeros((len(prompts), len(self.tasks)))
        for row, task in enumerate(tasks):
            if task in self.task_index:
                onehot[row, self.task_index[task]] = 1.0
        return np.hstack([self.scaler.apply(_numeric(prompts)), onehot])

    def matrix(self, prompts: list[str], tasks: list[str | None]):
        """A scipy CSR design matrix (for fitting and for estimators other than the default)."""
        from scipy import sparse

        rows, cols, data = [], [], []
        for r, text in enumerate(prompts):
            for c, w in self._weights(text).items():
                rows.append(r)
                cols.append(c)
                data.append(w)
        words = sparse.csr_matrix((data, (rows, cols)), shape=(len(prompts), len(self.vocabulary)))
        return sparse.hstack([words, sparse.csr_matrix(self._dense_tail(prompts, tasks))], format="csr")

    def decision(self, prompts: list[str], tasks: list[str | None], coef: np.ndarray,
                 intercept: float) -> np.ndarray:
        """``intercept + x·coef`` per prompt, without building the (wide) design matrix."""
        n_words = len(self.vocabulary)
        word_coef = coef[:n_words]
        words = np.array([sum(w * word_coef[c] for c, w in self._weights(t).items()) for t in prompts],
                         dtype=float)
        return intercept + words + self._dense_tail(prompts, tasks) @ coef[n_words:]

    def to_dict(self) -> dict:
        return {"features": "tfidf", "ngram_range": [1, 2], "sublinear_tf": True, "norm": "l2",
                "token_pattern": _TOKEN.pattern, "lowercase": True,
                "vocabulary": self.vocabulary, "idf": self.idf.tolist(),
                "numeric": list(_NUMERIC), "scaler_mean": self.scaler.mean.tolist(),
                "scaler_scale": self.scaler.scale.tolist(), "tasks": self.tasks}

    @classmethod
    def from_dict(cls, data: dict) -> _TfidfFeatures:
        expected = {"ngram_range": [1, 2], "sublinear_tf": True, "norm": "l2",
                    "token_pattern": _TOKEN.pattern, "lowercase": True, "numeric": list(_NUMERIC)}
        for key, value in expected.items():
            if data.get(key) != value:
                raise InputError(f"learned router: unsupported {key}={data.get(key)!r} (this llmlab "
                                 f"reads {value!r}); save it again with this version")
        vocabulary, tasks = data["vocabulary"], data["tasks"]
        for key, items in (("vocabulary", vocabulary), ("tasks", tasks)):
            if not isinstance(items, list) or not all(isinstance(x, str) for x in items) \
                    or len(set(items)) != len(items):
                raise InputError(f"learned router: {key} must be a list of distinct strings")
        idf = _finite(data["idf"], "idf", len(vocabulary))
        scaler = _Scaler(_finite(data["scaler_mean"], "scaler_mean", len(_NUMERIC)),
                         _finite(data["scaler_scale"], "scaler_scale", len(_NUMERIC)))
        if (scaler.scale <= 0).any():
            raise InputError("learned router: scaler_scale must be positive")
        return cls(vocabulary, idf, scaler, tasks)


def _finite(values: Any, key: str, length: int) -> np.ndarray:
    array = np.array(values, dtype=float)
    if array.shape != (length,) or not np.isfinite(array).all():
        raise InputError(f"learned router: {key} must be {length} finite numbers")
    return array


class _CallableFeatures:
    """Your own feature function ``f(prompts, tasks) -> (n × k) numbers``, standardised."""

    serialisable = False

    def __init__(self, fn: Callable[[list[str], list[str | None]], Any]) -> None:
        self.fn = fn
        self.scaler: _Scaler | None = None

    def raw(self, prompts: list[str], tasks: list[str | None]) -> np.ndarray:
        name = getattr(self.fn, "__name__", "features")
        try:
            x = np.asarray(self.fn(prompts, tasks), dtype=float)
        except (TypeError, ValueError) as exc:
            raise InputError(f"features function {name!r} must return numbers, one row per "
                             f"prompt ({exc})") from None
        if x.ndim == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[0] != len(prompts) or not np.isfinite(x).all():
            raise InputError(f"features function {name!r} must return a finite (n_prompts × k) "
                             f"array; got shape {x.shape} for {len(prompts)} prompts")
        return x

    def fit(self, prompts: list[str], tasks: list[str | None]) -> _CallableFeatures:
        self.scaler = _Scaler.fit(self.raw(prompts, tasks))
        return self

    @property
    def width(self) -> int:
        return len(self.scaler.mean) if self.scaler is not None else 0

    def matrix(self, prompts: list[str], tasks: list[str | None]) -> np.ndarray:
        assert self.scaler is not None
        x = self.raw(prompts, tasks)
        if x.shape[1] != self.width:
            raise InputError(f"features function returned {x.shape[1]} columns, {self.width} at fit time")
        return self.scaler.apply(x)

    def decision(self, prompts, tasks, coef, intercept) -> np.ndarray:
        return intercept + self.matrix(prompts, tasks) @ coef


class Learned(Threshold):
    """Route to ``strong`` when the predicted chance that ``weak``'s answer is not good enough
    is ≥ ``threshold``; fitted on your scored runs with :meth:`fit`.

    features: ``"tfidf"`` (default; see the module doc) or a function
        ``f(prompts: list[str], tasks: list[str | None]) -> array (n × k)`` of your own features
        (e.g. sentence embeddings), standardised before fitting.
    estimator: None → ``sklearn.linear_model.LogisticRegression`` with ``C`` chosen from
        0.1/1/10/100 by 5-fold cross-validated log-loss on the tuning runs; or any
        classifier with ``fit(X, y)`` / ``predict_proba(X)`` (a copy is fitted; labels: 1 = the
        weak answer is not good enough). Saving needs the default features and a logistic
        regression; other combinations refuse :meth:`to_dict` with a clear error.
    threshold: the knob — lower sends more prompts to ``strong``.

    A saved router (``save(path)``) holds the vocabulary of the prompts it was fitted on — their
    words and word pairs, readable in the JSON — so ``save`` writes it owner-only (0600), like
    the run log; share it only where you would share those prompts.
    """

    def __init__(self, weak: str, strong: str, features: str | Callable = "tfidf",
                 estimator: Any = None, threshold: float = 0.5, name: str | None = None) -> None:
        if not isinstance(weak, str) or not isinstance(strong, str) or not weak or not strong:
            raise InputError("Learned(weak=..., strong=...) takes two model names")
        if weak == strong:
            raise InputError(f"Learned: weak and strong are the same model ({weak!r})")
        if not (isinstance(features, str) and features == "tfidf") and not callable(features):
            raise InputError(f"Learned features= must be 'tfidf' or a function f(prompts, tasks), "
                             f"not {features!r}")
        if not is_real(threshold) or math.isnan(threshold):
            # ±inf are allowed: all prompts to strong / to weak (what routing.tune may choose)
            raise InputError(f"Learned threshold= must be a number, not {threshold!r}")
        self._feature_label = "tfidf" if isinstance(features, str) else getattr(features, "__name__", "features")
        super().__init__("p_weak_not_ok", float(threshold), weak, strong, name=name)
        self.features_spec, self.estimator = features, estimator
        self._features: _TfidfFeatures | _CallableFeatures | None = None
        self._fitted_estimator: Any = None
        self._coef: np.ndarray | None = None
        self._intercept = 0.0
        self._fixed_c: float | None = None   # cross-fitting copies reuse the C chosen on the whole set
        self.fitted_on: frozenset = frozenset()  # prompt ids of the fit (not saved): evaluate warns on overlap
        self.training: dict[str, Any] = {}

    def _default_name(self) -> str:
        return f"learned({self._feature_label} p ≥ {self.threshold:g}: {self.weak} | {self.strong})"

    # --- fitting ---------------------------------------------------------------------------

    def fit(self, runs: pd.DataFrame, score: str = "score", weak_ok_at: float = 0.5) -> Learned:
        """Learn P(weak answer not good enough | prompt) from ``runs``' scored weak-model rows.

        A weak answer is good enough when its score ≥ ``weak_ok_at``; an error row never is.
        Only the weak model's rows are used (one per prompt, as the evaluation matrix picks
        them). Returns ``self``.
        """
        prompts, tasks, y = self._training_data(runs, score, weak_ok_at)
        features = self._new_features(prompts, tasks)
        self._features = features
        self._fitted_estimator, self._coef, self._intercept = None, None, 0.0
        if y.min() == y.max():
            self._fit_constant(y, features.width)
        else:
            self._fit_estimator(features.matrix(prompts, tasks), y)
        self.training = {"n_prompts": int(len(y)), "weak_not_ok_rate": float(y.mean()),
                         "score": score, "weak_ok_at": float(weak_ok_at), "weak": self.weak}
        if self._fitted_estimator is not None and hasattr(self._fitted_estimator, "C"):
            self.training["C"] = float(self._fitted_estimator.C)
        return self

    def _training_data(self, runs: pd.DataFrame, score: str,
                       weak_ok_at: float) -> tuple[list[str], list[str | None], np.ndarray]:
        if not isinstance(runs, pd.DataFrame):
            raise InputError("Learned.fit(runs) takes a scored runs DataFrame")
        if isinstance(weak_ok_at, bool) or not isinstance(weak_ok_at, (int, float)) or \
                not math.isfinite(weak_ok_at):
            raise InputError(f"weak_ok_at must be a number (a score in 0–1), not {weak_ok_at!r}")
        for column in ("prompt_id", "requested_model", "prompt", score):
            if column not in runs.columns:
                hint = " — score them first (llmlab.scoring)" if column == score else ""
                raise InputError(f"Learned.fit: the runs have no {column!r} column{hint}")
        weak_rows = runs[runs["requested_model"] == self.weak]
        if weak_rows.empty:
            raise InputError(f"Learned.fit: no rows for the weak model {self.weak!r}; fit needs its "
                             "scored answers to the tuning prompts")
        ok = weak_rows["status"] != "error" if "status" in weak_rows else np.ones(len(weak_rows), bool)
        unscored = int((ok & weak_rows[score].isna()).sum())
        if unscored:
            raise InputError(f"Learned.fit: {unscored} answers of {self.weak!r} have no {score!r}; "
                             "score every weak answer before fitting (an unscored answer is not a label)")
        mx = build_matrix(weak_rows, score, [self.weak])
        self.fitted_on = frozenset(mx.prompt_ids)
        y = (mx.score[:, 0] < weak_ok_at).astype(np.int64)
        return _texts(mx.prompt_values("prompt")), _tasks_of(mx), y

    def _new_features(self, prompts: list[str], tasks: list[str | None]):
        if callable(self.features_spec):
            return _CallableFeatures(self.features_spec).fit(prompts, tasks)
        _require_sklearn()
        return _TfidfFeatures.fit(prompts, tasks)

    def _fit_constant(self, y: np.ndarray, width: int) -> None:
        # One class only (e.g. the weak model got every tuning prompt right): nothing to learn
        # but the rate; predict it everywhere rather than fail a fold of a cross-validation.
        rate = min(max(float(y.mean()), 1e-6), 1 - 1e-6)
        warnings.warn(f"{self.name}: the weak model's answers were all "
                      f"{'not ' if y[0] else ''}good enough on the {len(y)} tuning prompts; the "
                      "router predicts that rate for every prompt", RuntimeWarning, stacklevel=3)
        self._coef, self._intercept = np.zeros(width), math.log(rate / (1 - rate))

    def _fit_estimator(self, x: Any, y: np.ndarray) -> None:
        _require_sklearn()
        from sklearn.base import clone
        from sklearn.linear_model import LogisticRegression

        if self.estimator is None:
            estimator = _logistic(self._fixed_c or _choose_c(x, y))
        else:
            try:
                estimator = clone(self.estimator)
            except TypeError:  # not a scikit-learn estimator: fit a private copy
                estimator = copy.deepcopy(self.estimator)
        estimator.fit(x, y)
        self._fitted_estimator = estimator
        if isinstance(estimator, LogisticRegression) and np.shape(estimator.coef_) == (1, x.shape[1]):
            # classes_ are sorted [0, 1]: coef_ is the log-odds of label 1 (weak not good enough)
            self._coef = np.asarray(estimator.coef_, dtype=float)[0].copy()
            self._intercept = float(np.asarray(estimator.intercept_, dtype=float)[0])

    # --- predicting ------------------------------------------------------------------------

    @property
    def fitted(self) -> bool:
        return self._features is not None

    def predict_proba_prompts(self, prompts: str | Sequence[str],
                              tasks: Sequence[str | None] | None = None) -> np.ndarray:
        """P(the weak model's answer is not good enough) for raw prompt texts (live routing)."""
        if isinstance(prompts, str):
            prompts = [prompts]
        try:
            texts = _texts(list(prompts))
            task_list: list[str | None] = [None] * len(texts) if tasks is None else \
                [None if t is None or (isinstance(t, float) and math.isnan(t)) else str(t) for t in tasks]
        except TypeError:
            raise InputError("predict_proba_prompts takes a prompt or a list of prompts (and "
                             "optionally a list of tasks)") from None
        if len(task_list) != len(texts):
            raise InputError(f"tasks has {len(task_list)} items for {len(texts)} prompts")
        return self._proba(texts, task_list)

    def _proba(self, prompts: list[str], tasks: list[str | None]) -> np.ndarray:
        if self._features is None:
            raise InputError(f"{self.name} is not fitted: call .fit(tune_runs) first")
        if not prompts:
            return np.zeros(0)
        if self._coef is not None:
            return _sigmoid(self._features.decision(prompts, tasks, self._coef, self._intercept))
        estimator = self._fitted_estimator
        proba = np.asarray(estimator.predict_proba(self._features.matrix(prompts, tasks)), dtype=float)
        return proba[:, list(estimator.classes_).index(1)]

    def out_of_fold_values(self, runs: pd.DataFrame, mx: Matrix, *, folds: int = 5, seed: int = 0) -> np.ndarray:
        """Per prompt of ``mx``: P(weak answer not good enough) from a copy fitted *without* that
        prompt (``folds``-fold cross-fitting on ``runs``). :func:`routing.tune` sets the threshold
        on these: on its own training prompts a fitted router looks better than it is."""
        if not self.fitted:
            raise InputError(f"{self.name} is not fitted: call .fit(tune_runs) first")
        order = np.random.default_rng(seed).permutation(mx.n)
        out = np.full(mx.n, np.nan)
        score, ok_at = self.training.get("score", "score"), self.training.get("weak_ok_at", 0.5)
        for fold in np.array_split(order, min(folds, mx.n)):
            held = set(mx.prompt_ids[fold])
            twin = Learned(self.weak, self.strong, features=self.features_spec, estimator=self.estimator,
                           threshold=self.threshold)
            twin._fixed_c = self.training.get("C")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)   # a fold may hold one class only
                twin.fit(runs[~runs["prompt_id"].isin(held)], score=score, weak_ok_at=ok_at)
            out[fold] = twin._proba(_texts(mx.prompt_values("prompt")[fold]),
                                    [_tasks_of(mx)[i] for i in fold])
        return out

    def values(self, mx: Matrix) -> np.ndarray:
        """Per prompt of ``mx``: the predicted P(weak answer not good enough)."""
        return self._proba(_texts(mx.prompt_values("prompt")), _tasks_of(mx))

    def route(self, mx):
        return np.where(self.values(mx) >= self.threshold, mx.index(self.strong),
                        mx.index(self.weak)).astype(np.int64)[:, None]

    def _feature_value(self, prompt, task, prompt_id, features):
        return float(self.predict_proba_prompts([prompt], [task])[0]), "p(weak not ok)"

    # --- saving without pickle -------------------------------------------------------------

    def to_dict(self) -> dict:
        """A JSON-able description that :meth:`from_dict` turns back into the same router."""
        if self._features is None:
            raise InputError(f"{self.name} is not fitted: there is nothing to save yet")
        if not self._features.serialisable or self._coef is None:
            what = "a features function" if not self._features.serialisable else \
                f"the estimator {type(self._fitted_estimator).__name__}"
            raise InputError(f"{self.name} uses {what}, which cannot be saved without pickle; only "
                             "features='tfidf' with a logistic regression (the default) saves as JSON")
        assert isinstance(self._features, _TfidfFeatures)
        return {"format": FORMAT, "version": FORMAT_VERSION, "name": self.name if self._named else None,
                "weak": self.weak,
                "strong": self.strong, "threshold": self.threshold, **self._features.to_dict(),
                "coef": self._coef.tolist(), "intercept": self._intercept,
                "training": dict(self.training)}

    @classmethod
    def from_dict(cls, data: dict) -> Learned:
        """The router :meth:`to_dict` described (no scikit-learn needed to predict)."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InputError(f"not a saved learned router (no \"format\": {FORMAT!r})")
        if data.get("version") != FORMAT_VERSION:
            raise InputError(f"learned router format version {data.get('version')!r} is not "
                             f"supported (this llmlab reads version {FORMAT_VERSION})")
        try:
            router = cls(data["weak"], data["strong"], threshold=data["threshold"], name=data.get("name"))
            features = _TfidfFeatures.from_dict(data)
            coef = np.array(data["coef"], dtype=float)
            intercept = float(data["intercept"])
        except InputError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"saved learned router is incomplete or malformed ({exc!r})") from None
        if coef.shape != (features.width,):
            raise InputError(f"saved learned router has {coef.size} coefficients for "
                             f"{features.width} features")
        if not (np.isfinite(coef).all() and math.isfinite(intercept)):
            raise InputError("saved learned router has non-finite coefficients")
        router._features, router._coef, router._intercept = features, coef, intercept
        router.training = dict(data.get("training") or {})
        return router


def _tasks_of(mx: Matrix) -> list[str | None]:
    if "task" not in mx.runs.columns:
        return [None] * mx.n
    return [None if t is None or (isinstance(t, float) and math.isnan(t)) else str(t)
            for t in mx.prompt_values("task")]


def _choose_c(x: Any, y: np.ndarray) -> float:
    """The regularisation strength with the best cross-validated log-loss on the tuning data.

    scikit-learn's default C=1 under-fits TF-IDF features of a few hundred prompts (a word that
    decides the label still moves the probability by only a few points). Choosing C by 5-fold
    cross-validation uses the tuning runs only, so held-out prompts stay unseen.
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    minority = int(np.bincount(y).min())
    if minority < 3:
        return _C_GRID[2]
    folds = StratifiedKFold(n_splits=min(5, minority), shuffle=True, random_state=0)
    losses = [cross_val_score(_logistic(c), x, y, cv=folds, scoring="neg_log_loss").mean()
              for c in _C_GRID]
    return _C_GRID[int(np.argmax(losses))]


def _logistic(c: float):
    from sklearn.linear_model import LogisticRegression

    # liblinear: exact and single-threaded — 15x faster than lbfgs on a few hundred prompts on a
    # busy 2-core machine. It penalises the intercept like a feature; a large intercept_scaling
    # makes that penalty negligible so the base rate stays calibrated.
    return LogisticRegression(C=c, solver="liblinear", intercept_scaling=10.0, max_iter=1000)


def _require_sklearn() -> None:
    import importlib.util

    if importlib.util.find_spec("sklearn") is None:
        raise InputError(f"fitting a learned router needs scikit-learn: {_INSTALL_SKLEARN}")
