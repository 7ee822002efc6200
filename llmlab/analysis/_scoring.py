"""Score recorded answers: each row of a runs DataFrame gets a quality score in [0, 1] and a reason.

    from llmlab import scoring
    scored = scoring.score(runs, scoring.contains())                 # columns score, score_reason
    scored = scoring.score(runs, scoring.by_task({"classify": scoring.choice(["pos", "neg"]),
                                                  "arithmetic": scoring.numeric()},
                                                 default=scoring.contains()))
    scored = scoring.auto(runs, checkers=llmlab.datasets.load("tasks"))   # per-prompt ``checker``

Rules every scorer follows:

* a row whose ``status`` is ``error`` scores 0 with reason ``"error row"``;
* a scorer never raises on bad *model output* (None, invalid JSON, no number, a pattern that
  does not compile…): it scores 0 and says why. A user callable that raises is caught the same
  way (reason ``"scorer raised …"``) and a warning counts how often it happened;
* an answer that could not be graded — the :func:`judge` found no verdict in its reply, or the
  judge call failed — is **unknown**: score NaN, the reason in ``score_reason``, a warning with
  the count (``df.attrs["score_unknown"]``). Unknown is not wrong: summaries, ``routing.evaluate``
  and ``claim`` leave unknowns out and report how many there were;
* configuration mistakes (an unknown checker kind, a task with no scorer) raise ``ValueError``
  before anything is scored.

A scorer is a :class:`Scorer` with a ``name``, ``check(text, expected) -> (score, reason)`` and
``uses_expected`` (False for checks that look only at the answer — :func:`json_valid`,
``regex(pattern)``, and the checks that read the answer's own content: :func:`arithmetic` (its
equations re-computed), :func:`final_answer` (a final number stated), :func:`no_hedging` (no
refusal or hedging phrase); those are the only scorers a routing :class:`~llmlab.routing.Cascade`
may use as its ``accept`` test). :func:`agreement` measures how far ``n`` sampled answers agree.
Any callable ``f(response_text, expected) -> float | bool`` is accepted wherever a scorer is.

Open-ended answers (explain, summarise, rewrite) have no right answer to check; compare them
instead. :func:`pairwise` (``scoring.pairwise(runs, judge=..., lab=lab)``) judges each pair of
models' answers in both orders and returns a **preference frame**; human labels
(``lab.labels()``, graded blind with ``%llm grade``) have the same shape. :func:`agreement`
measures judge vs human, judge vs judge and a judge vs itself swapped (position bias);
:func:`ratings` fits Bradley–Terry ratings with intervals; ``routing.evaluate(runs, policies,
preferences=prefs)`` routes on them. :func:`summary` gives per-model means that count unknowns.
"""
from __future__ import annotations

import functools
import inspect
import json
import math
import operator
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..base._errors import InputError
from ..base._intervals import wilson
from ..base._json import loads
from ..base._validate import check_bool, finite_number, one_line
from . import _checks, _structured
from ._lean import LEAN_Z, _z
from ._patterns import compile_pattern
from ._verdicts import defuse_tokens, parse_rating

__all__ = [
    "Scorer", "score", "summary", "exact", "contains", "regex", "json_valid", "numeric", "choice",
    "judge", "by_task", "auto", "from_spec", "as_scorer", "arithmetic", "final_answer", "no_hedging",
    "agreement", "tool_call", "json_schema",
]

# a sign counts only when it does not follow a word or a digit ("2024-01-05" has no negatives)
_NUMBER = re.compile(r"(?:(?<![\w.])[-+])?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?")
_STRIP = " \t\r\n\"'`.!;:"


class Scorer:
    """A named check of one answer. Subclasses implement :meth:`check`. ``spec``: the checker
    spec that builds it again (built-in scorers have one, so policies save them as JSON)."""

    name: str = "scorer"
    uses_expected: bool = True
    spec: dict | None = None

    def check(self, text: str | None, expected: Any) -> tuple[float, str]:
        raise NotImplementedError

    def __call__(self, text: str | None, expected: Any = None) -> float:
        return self.check(text, expected)[0]

    def score_rows(self, rows: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        """Scores and reasons for rows that are not error rows (judge overrides this to batch)."""
        texts = _column(rows, "response_text")
        expected = _column(rows, "expected")
        pairs = [_safe_check(self, t, e) for t, e in zip(texts, expected, strict=True)]
        return np.array([p[0] for p in pairs], dtype=float), [p[1] for p in pairs]

    def _validate(self, rows: pd.DataFrame) -> None:
        """Raise ValueError for configuration problems before scoring (dispatchers override)."""

    def __repr__(self) -> str:
        return f"<Scorer {self.name}>"


# --- public entry point -------------------------------------------------------------------------

JUDGE_TASKS = ("judge", "pairwise judge")     # the tasks scoring.judge and pairwise record their calls with


def judge_rows(runs: pd.DataFrame) -> np.ndarray:
    """Rows a judge's own calls recorded (task ``"judge"`` / ``"pairwise judge"``): ``lab.runs()``
    holds them next to the answers, but they are never candidates — not scored, not paired, not a
    model of routing's matrix (the one rule every reader of runs applies)."""
    if "task" not in runs.columns:
        return np.zeros(len(runs), dtype=bool)
    return runs["task"].isin(JUDGE_TASKS).to_numpy(dtype=bool)


def score(df: pd.DataFrame, scorer: Any, column: str = "score") -> pd.DataFrame:
    """A copy of ``df`` with ``column`` (float in [0, 1]) and ``f"{column}_reason"`` added.

    ``scorer``: a :class:`Scorer`, a callable ``(response_text, expected) -> float|bool``, a
    checker spec (``{"kind": "choice", "labels": [...]}`` or its JSON) or a kind name
    (``"contains"``). Rows a judge's own calls recorded (task ``"judge"``/``"pairwise judge"``:
    ``lab.runs()`` holds them) are not scored — never judged, nor paid for, again: NaN with a reason,
    counted in ``attrs[f"{column}_judge_rows_left_out"]``, not among the unknowns.
    """
    scorer = as_scorer(scorer)
    out = df.copy()
    scores = np.zeros(len(out), dtype=float)
    reasons = np.full(len(out), "error row", dtype=object)
    judges = judge_rows(out)        # lab.runs() holds the judge's calls: never judged (nor paid for) again
    ok = _ok_mask(out) & ~judges
    scores[judges], reasons[judges] = np.nan, "a judge's own call (task 'judge'/'pairwise judge'): not scored"
    if ok.any():
        rows = out.loc[ok]
        scorer._validate(rows)
        values, why = scorer.score_rows(rows)
        scores[ok] = np.clip(values, 0.0, 1.0)     # NaN stays NaN: unknown, not 0
        reasons[ok] = why
    out[column] = scores
    out[f"{column}_reason"] = reasons
    out.attrs[f"{column}_scorer"] = scorer.name
    out.attrs[f"{column}_unknown"] = unknown = int(np.isnan(scores[~judges]).sum())
    out.attrs[f"{column}_judge_rows_left_out"] = int(judges.sum())
    if unknown:
        what = "all verdicts unknown" if unknown == int(ok.sum()) else f"{unknown} of {int(ok.sum())} verdicts unknown"
        warnings.warn(f"{scorer.name}: {what} (score NaN, reason in {column}_reason); unknowns are left out of "
                      "means and counted, never scored 0", RuntimeWarning, stacklevel=2)
        lean = unknown_lean_by_model(out[~judges], column)
        out.attrs[f"{column}_unknown_lean"] = lean
        if lean:
            warnings.warn(f"{scorer.name}: unknown scores are not missing at random — {lean}; leaving them out "
                          "flatters that model (a model that writes its own rating into its answers, or a judge "
                          f"failing on one kind of answer): read {column}_reason before trusting a comparison",
                          RuntimeWarning, stacklevel=2)
    return out


def unknown_lean_by_model(df: pd.DataFrame, column: str = "score", by: str = "requested_model") -> str:
    """One model's unknown-score rate against the other models' (the one-sided two-proportion z of
    routing's unknown-lean check, :mod:`llmlab.analysis._lean`, at its ``LEAN_Z``): the sentence
    naming each model whose unknowns are concentrated, or ``""``."""
    if by not in df.columns or column not in df.columns:
        return ""
    unknown = pd.to_numeric(df[column], errors="coerce").isna()
    counts = {m: (int(u.sum()), len(u)) for m, u in unknown.groupby(df[by], sort=False)}
    notes = []
    for m, (u, n) in counts.items():
        rest_u = sum(c[0] for o, c in counts.items() if o != m)
        rest_n = sum(c[1] for o, c in counts.items() if o != m)
        if len(counts) > 1 and _z(u, n, rest_u, rest_n) >= LEAN_Z:
            notes.append(f"{m}'s scores are unknown on {u} of {n} answers, the other models' on {rest_u} of {rest_n}")
    return "; ".join(notes)


def summary(df: pd.DataFrame, column: str = "score", *, by: str = "requested_model",
            level: float = 0.95) -> pd.DataFrame:
    """Per model (``by``): ``answers``, ``known`` and ``unknown`` scores (NaN: a judge could not grade
    them), ``unknown_pct``, the ``mean`` of the known scores with a normal-approximation ``level``
    interval (``ci_lo``/``ci_hi``) — for scores in [0, 1] the wider of that and the Wilson score
    interval (the share's own, conservative for graded scores: ``base._intervals.wilson``), so 2 known
    scores of 1.0 give [0.34, 1], not a certain [1, 1]. Unknowns are counted, never averaged in as 0;
    a judge's own calls (task ``"judge"``/``"pairwise judge"`` rows of ``lab.runs()``) are left out."""
    if not isinstance(df, pd.DataFrame) or column not in df.columns or by not in df.columns:
        raise InputError(f"summary() needs scored runs with {by!r} and {column!r} columns "
                         "(scoring.score(runs, scorer) adds the score)")
    if not 0 < level < 1:
        raise InputError(f"level must be between 0 and 1 (e.g. 0.95), not {level!r}")
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + level / 2)
    df = df[~judge_rows(df)]                 # the judge's own calls are no model's answers
    values = pd.to_numeric(df[column], errors="coerce")
    rows = []
    for model, part in values.groupby(df[by], sort=False):
        known = part.dropna()
        mean = float(known.mean()) if len(known) else float("nan")
        half = z * float(known.std(ddof=1)) / np.sqrt(len(known)) if len(known) > 1 else float("nan")
        lo, hi = mean - half, mean + half
        if len(known) and known.between(0, 1).all():
            w_lo, w_hi = wilson(float(known.sum()), len(known), level)
            lo, hi = float(np.fmin(lo, w_lo)), float(np.fmax(hi, w_hi))
        rows.append({by: model, "answers": len(part), "known": len(known), "unknown": len(part) - len(known),
                     "unknown_pct": 100 * (len(part) - len(known)) / len(part), "mean": mean,
                     "ci_lo": lo, "ci_hi": hi})
    return pd.DataFrame(rows).set_index(by)


def as_scorer(obj: Any) -> Scorer:
    """Turn a scorer, a callable, a spec dict/JSON or a kind name into a :class:`Scorer`."""
    if isinstance(obj, Scorer):
        return obj
    if isinstance(obj, (Mapping, str)):
        return from_spec(obj)
    if callable(obj):
        return _Function(obj)
    raise InputError(f"not a scorer: {obj!r} (give a Scorer, a callable, a spec dict or a kind name)")


# --- built-in scorers ---------------------------------------------------------------------------

def _saved_as(kind: str) -> Callable[[Callable[..., Scorer]], Callable[..., Scorer]]:
    """A factory whose scorers carry the spec they were made from (``from_spec(scorer.spec)``
    builds the same one), when its arguments are JSON."""

    def decorate(factory: Callable[..., Scorer]) -> Callable[..., Scorer]:
        signature = inspect.signature(factory)

        @functools.wraps(factory)
        def make(*args: Any, **kwargs: Any) -> Scorer:
            scorer = factory(*args, **kwargs)
            spec = {"kind": kind, **signature.bind(*args, **kwargs).arguments}
            try:
                scorer.spec = loads(json.dumps(spec, allow_nan=False))
            except (TypeError, ValueError):
                scorer.spec = None       # e.g. a schema object that is not JSON
            return scorer

        return make

    return decorate


class _Exact(Scorer):
    def __init__(self, normalize: bool) -> None:
        self.normalize = check_bool("exact(normalize)", normalize)  # "yes"/"no" are both truthy
        self.name = "exact" if normalize else "exact(raw)"

    def check(self, text, expected):
        if _missing(text):
            return 0.0, "no answer"
        if _missing(expected):
            return 0.0, "no expected answer"
        norm = _norm if self.normalize else (lambda s: str(s).strip())
        if norm(text) == norm(expected):
            return 1.0, "exact match"
        return 0.0, f"expected {_short(expected)}, got {_short(text)}"


@_saved_as("exact")
def exact(normalize: bool = True) -> Scorer:
    """1 when the answer equals ``expected``. ``normalize`` ignores case, surrounding whitespace,
    quotes and trailing punctuation, and collapses inner whitespace."""
    return _Exact(normalize)


class _Contains(Scorer):
    def __init__(self, case: bool) -> None:
        self.case = check_bool("contains(case)", case)
        self.name = "contains(case)" if case else "contains"

    def check(self, text, expected):
        if _missing(text):
            return 0.0, "no answer"
        if _missing(expected):
            return 0.0, "no expected answer"
        options = expected if isinstance(expected, (list, tuple)) else [expected]
        prep = (lambda s: " ".join(str(s).split())) if self.case else _norm
        hay = prep(text)
        for option in options:
            if prep(option) and prep(option) in hay:
                return 1.0, f"contains {_short(option)}"
        return 0.0, f"{_short(options[0])} not found"


@_saved_as("contains")
def contains(case: bool = False) -> Scorer:
    """1 when ``expected`` (or any item of a list of alternatives) occurs in the answer;
    case-insensitive unless ``case=True``; whitespace runs compare equal."""
    return _Contains(case)


class _Regex(Scorer):
    def __init__(self, pattern: str | None, flags: int) -> None:
        # a fixed pattern reads model output: compiled once, refused when it can backtrack catastrophically
        self._compiled = None if pattern is None else compile_pattern(pattern, flags, "regex(pattern)")
        self.pattern, self.flags = pattern, flags
        self.uses_expected = pattern is None
        self.name = "regex(expected)" if pattern is None else f"regex(/{pattern}/)"

    def check(self, text, expected):
        if _missing(text):
            return 0.0, "no answer"
        if self._compiled is not None:
            found = self._compiled.search(_checks.readable(str(text), _checks.REGEX_CHARS))
            return (1.0, "pattern found") if found else (0.0, "pattern not found")
        pattern = expected
        if _missing(pattern):
            return 0.0, "no pattern (expected is empty)"
        try:
            found = re.search(str(pattern), str(text), self.flags)
        except re.error as exc:
            return 0.0, f"invalid pattern: {exc}"
        return (1.0, "pattern found") if found else (0.0, "pattern not found")


@_saved_as("regex")
def regex(pattern: str | None = None, flags: int = re.IGNORECASE) -> Scorer:
    """1 when ``re.search(pattern, answer)`` matches. ``pattern=None`` uses each row's ``expected``
    as the pattern; a fixed pattern looks at the answer only (usable as a cascade ``accept``): it is
    compiled at once — an invalid one, or one that can backtrack catastrophically on an answer
    (``(a+)+``, ``\\s*\\s*``; see :mod:`llmlab.analysis._patterns`), is an InputError — and reads
    at most the first and last 2,000 characters of a longer answer."""
    return _Regex(pattern, flags)


class _JsonValid(Scorer):
    def __init__(self, keys: Sequence[str] | None, compare: bool) -> None:
        self.keys, self.compare = list(keys or []), check_bool("json_valid(compare)", compare)
        self.uses_expected = compare
        bits = ([f"keys={','.join(self.keys)}"] if self.keys else []) + (["compare"] if compare else [])
        self.name = f"json_valid({' '.join(bits)})" if bits else "json_valid"

    def check(self, text, expected):
        value, why = _parse_json(text)
        if why:
            return 0.0, why
        if self.keys or self.compare:
            if not isinstance(value, dict):
                return 0.0, f"JSON is a {type(value).__name__}, not an object"
            missing = [k for k in self.keys if k not in value]
            if missing:
                return 0.0, f"missing keys: {', '.join(missing)}"
        if not self.compare:
            return 1.0, "valid JSON"
        return _compare_fields(value, expected)


@_saved_as("json_valid")
def json_valid(keys: Sequence[str] | None = None, compare: bool = False) -> Scorer:
    """1 when the answer parses as JSON (a surrounding Markdown code fence is allowed, other
    surrounding prose is not). ``keys``: required top-level keys. ``compare=True``: score is the
    share of ``expected``'s (a JSON object) top-level fields whose values match."""
    return _JsonValid(keys, compare)


class _Numeric(Scorer):
    def __init__(self, tol: float, rel: float, which: str) -> None:
        if which not in ("first", "last"):
            raise InputError("numeric(which=...) must be 'first' or 'last'")
        # the one finite-number rule: a NaN tolerance would fail every answer ("expected 5, got 5")
        self.tol = finite_number(tol, lo=0.0, field="numeric(tol)")
        self.rel = finite_number(rel, lo=0.0, field="numeric(rel)")
        self.which = which
        self.name = f"numeric(tol={self.tol:g}{f', rel={self.rel:g}' if self.rel else ''}, {which})"

    def check(self, text, expected):
        target = _extract_number(expected, "first")
        if target is None:
            return 0.0, "expected is not a number"
        got = _extract_number(text, self.which)
        if got is None:
            return 0.0, "no number in answer"
        if abs(got - target) <= max(self.tol, self.rel * abs(target)):
            return 1.0, f"{got:g} matches"
        return 0.0, f"expected {target:g}, got {got:g}"


@_saved_as("numeric")
def numeric(tol: float = 1e-6, rel: float = 0.0, which: str = "last") -> Scorer:
    """1 when a number in the answer is within ``max(tol, rel*|expected|)`` of ``expected``.

    The answer's number is the **last** one by default (chain-of-thought answers end with the
    result, as GSM8K-style graders assume); ``which="first"`` takes the first. Thousands
    separators (``1,234``) are understood; ``expected`` may be ``"42"`` or ``"42 apples"``.
    """
    return _Numeric(tol, rel, which)


class _Choice(Scorer):
    def __init__(self, labels: Sequence[str]) -> None:
        labels = [str(x) for x in labels]
        if not labels:
            raise InputError("choice() needs at least one label")
        self.labels = labels
        self._canonical = {x.casefold(): x for x in labels}
        alternatives = "|".join(re.escape(x) for x in sorted(labels, key=len, reverse=True))
        self._pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)
        self.name = f"choice({'|'.join(labels)})"

    def check(self, text, expected):
        if _missing(text):
            return 0.0, "no answer"
        if _missing(expected):
            return 0.0, "no expected answer"
        found = self._pattern.search(str(text))
        if found is None:
            return 0.0, "no label found"
        label = self._canonical[found.group(0).casefold()]
        if label.casefold() == _norm(expected):
            return 1.0, f"chose {label}"
        return 0.0, f"chose {label}, expected {_short(expected)}"


@_saved_as("choice")
def choice(labels: Sequence[str]) -> Scorer:
    """The first of ``labels`` found in the answer (whole words, case-insensitive) must equal
    ``expected``. "Positive, not negative" chooses positive; "none of them" scores 0."""
    return _Choice(labels)


# --- checks of the answer alone (usable as a cascade's accept, see _checks) -------------------------

class _Arithmetic(Scorer):
    name = "arithmetic"
    uses_expected = False

    def check(self, text, expected):
        found = _checks.equations(text)
        wrong = [e for e in found if not e.holds]
        if not found:
            return 1.0, "no equation to re-compute"
        if not wrong:
            return 1.0, f"{len(found)} equation{'s' if len(found) > 1 else ''} re-computed, all hold"
        first = wrong[0]
        return 0.0, f"{len(wrong)} of {len(found)} equations wrong: {_short(first.text)} is {first.computed:g}"


@_saved_as("arithmetic")
def arithmetic() -> Scorer:
    """1 unless one of the answer's own ``expression = value`` claims is wrong when re-computed
    (safely, without ``eval``; see :mod:`llmlab.analysis._checks`); needs no expected answer."""
    return _Arithmetic()


class _FinalAnswer(Scorer):
    name = "final_answer"
    uses_expected = False

    def check(self, text, expected):
        stated = _checks.final_answer(text)
        if not stated.marked:
            return 0.0, "no final answer stated (#### N, \\boxed{N}, \"the answer is N\")"
        if not stated.is_last:
            return 0.0, f"final answer {stated.value:g} is not the last number written"
        return 1.0, f"final answer {stated.value:g}"


@_saved_as("final_answer")
def final_answer() -> Scorer:
    """1 when the answer states a final number in a final-answer format (``#### 18``,
    ``\\boxed{18}``, "the answer is 18") and writes no other number after it; needs no expected
    answer."""
    return _FinalAnswer()


class _NoHedging(Scorer):
    name = "no_hedging"
    uses_expected = False

    def check(self, text, expected):
        found = _checks.hedges(text)
        return (0.0, f"hedges: {', '.join(found)}") if found else (1.0, "no refusal or hedging phrase")


@_saved_as("no_hedging")
def no_hedging() -> Scorer:
    """1 when the answer has no refusal or hedging phrase ("I can't", "not enough information",
    "I'm not sure", "approximately", "assuming", "sorry" …); needs no expected answer."""
    return _NoHedging()


def agreement(answers: Sequence[str | None]) -> float:
    """Self-consistency of ``n`` sampled answers to one prompt: the share of them that state the
    majority final answer (0 when none states a number). See ``routing.Verifier(samples=n)``."""
    return _checks.agreement(answers).share


class _Function(Scorer):
    def __init__(self, fn: Callable[[Any, Any], Any], name: str | None = None) -> None:
        self.fn = fn
        self.name: str = name or getattr(fn, "__name__", None) or type(fn).__name__
        self._raised = 0

    def check(self, text, expected):
        try:
            value = self.fn(text, expected)
        except Exception as exc:  # a user scorer must not abort scoring on one odd answer
            self._raised += 1
            return 0.0, f"scorer raised {type(exc).__name__}: {_short(str(exc), 60)}"
        return _coerce(value)

    def score_rows(self, rows):
        self._raised = 0
        result = super().score_rows(rows)
        if self._raised:
            warnings.warn(f"scorer {self.name!r} raised on {self._raised} of {len(rows)} rows; "
                          "they score 0 (see the reason column)", RuntimeWarning, stacklevel=3)
        return result


# --- dispatch: by task, by per-prompt checker ---------------------------------------------------

class _Dispatch(Scorer):
    """Scores each group of rows with the scorer its key names (task, or checker spec)."""

    def __init__(self, name: str, scorers: Mapping[Any, Scorer], default: Scorer | None,
                 key: Callable[[pd.DataFrame], np.ndarray]) -> None:
        self.name, self.scorers, self.default, self._key = name, dict(scorers), default, key
        self.uses_expected = any(s.uses_expected for s in self._all())

    def _keys(self, rows: pd.DataFrame) -> np.ndarray:
        # missing keys (None/NaN never equal themselves after pandas) become one sentinel
        return np.array([_NO_SPEC if _missing(k) else k for k in self._key(rows)], dtype=object)

    def _all(self) -> Iterable[Scorer]:
        return [*self.scorers.values(), *([self.default] if self.default else [])]

    def _validate(self, rows):
        if self.default is not None:
            return
        keys = pd.unique(self._keys(rows))
        unknown = [k for k in keys if k not in self.scorers]
        if unknown:
            raise InputError(f"{self.name}: no scorer for {_short(unknown, 120)} and no default= "
                             "(pass default=scoring.contains() or map every key)")

    def score_rows(self, rows):
        keys = self._keys(rows)
        scores = np.zeros(len(rows), dtype=float)
        reasons = np.empty(len(rows), dtype=object)
        for key in pd.unique(keys):
            mask = keys == key
            scorer = self.scorers.get(key) or self.default
            if scorer is None:  # _validate refused unknown keys without a default before scoring
                raise InputError(f"{self.name}: no scorer for {key!r}")
            s, why = scorer.score_rows(rows.loc[mask])
            scores[mask] = s
            reasons[mask] = [f"{scorer.name}: {w}" for w in why]
        return scores, list(reasons)

    def check(self, text, expected):
        raise InputError(f"{self.name} dispatches on row columns; use scoring.score(df, ...)")


def by_task(scorers: Mapping[str, Any], default: Any = None) -> Scorer:
    """Score each row with ``scorers[row.task]`` (rows with another task use ``default``)."""
    table = {task: as_scorer(s) for task, s in scorers.items()}
    fallback = as_scorer(default) if default is not None else None
    inner = ", ".join(f"{t}={s.name}" for t, s in table.items())
    name = f"by_task({inner}{', default=' + fallback.name if fallback else ''})"
    return _Dispatch(name, table, fallback, lambda rows: _column(rows, "task"))


def auto(df: pd.DataFrame, checkers: Any = None, column: str = "score",
         default: Any = None) -> pd.DataFrame:
    """Score each row with the scorer its prompt's ``checker`` spec names.

    ``checkers``: None → ``df["checker"]``; a DataFrame with ``prompt_id`` and ``checker``
    columns (e.g. ``llmlab.datasets.load("tasks")``); or a mapping ``{prompt_id: spec}``.
    Rows without a spec use ``default`` (ValueError when there is none).
    """
    specs = _checker_specs(df, checkers)
    keys = np.array([_spec_key(s) for s in specs], dtype=object)
    table = {k: from_spec(k) for k in pd.unique(keys) if k != _NO_SPEC}
    fallback = as_scorer(default) if default is not None else None
    frame = df.copy()
    frame["_llmlab_checker_key"] = keys
    dispatch = _Dispatch("auto", table, fallback, lambda rows: rows["_llmlab_checker_key"].to_numpy())
    return score(frame, dispatch, column).drop(columns="_llmlab_checker_key")


# --- structured answers: tool calls and JSON under a schema ----------------------------------------

class _ToolCall(Scorer):
    """Reads each row's ``tool_calls`` column (``check`` alone: an answer that is the calls' JSON)."""

    def __init__(self, name: str | None, arguments: Mapping[str, Any] | None, schema: Any) -> None:
        if name is not None and (not isinstance(name, str) or not name):
            raise InputError(f"tool_call(name=...) must be a function name, not {name!r}")
        if arguments is not None and not isinstance(arguments, Mapping):
            raise InputError(f"tool_call(arguments=...) must be a dict of expected values, not {arguments!r}")
        self.function, self.arguments = name, dict(arguments or {})
        self.schema = None if schema is None else _structured.check_schema(schema, "tool_call(schema=...)")
        self._compiled = None if self.schema is None else _structured.compile_schema(self.schema)
        self.uses_expected = name is None and arguments is None and schema is None
        self.name = f"tool_call({name})" if name else "tool_call"

    def score_rows(self, rows: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        calls = _column(rows, "tool_calls" if "tool_calls" in rows.columns else "response_text")
        pairs = [_safe_check(self, c, e, p) for c, e, p in
                 zip(calls, _column(rows, "expected"), _column(rows, "params"), strict=True)]
        return np.array([p[0] for p in pairs], dtype=float), [p[1] for p in pairs]

    def check(self, text: Any, expected: Any, params: Any = None) -> tuple[float, str]:
        calls, why = _structured.tool_calls(text)
        if why:
            return 0.0, why
        name, arguments = self.function, self.arguments
        if self.uses_expected:
            name, arguments, why = _expected_call(expected)
            if why:
                return 0.0, why
        chosen = [c for c in calls if name is None or c.name == name]
        if not chosen:
            return 0.0, f"no call to {name!r} (called {', '.join(repr(c.name) for c in calls)})"
        values, why = _structured.parse_json(chosen[0].get("arguments") or "{}")
        if why:
            return 0.0, f"{chosen[0].name}: arguments are {why}"
        schema = self._compiled or _structured.declared_check(params, chosen[0].name, of_tool=True)
        problem = schema.problem(values) if schema is not None else ""
        if problem:
            return 0.0, f"{chosen[0].name}: arguments do not match the schema: {problem}"
        if arguments:
            if not isinstance(values, dict):
                return 0.0, f"{chosen[0].name}: arguments are a {type(values).__name__}, not an object"
            return _compare_fields(values, arguments)
        checked = " (checked against its schema)" if schema is not None else ""
        return 1.0, f"called {chosen[0].name}{checked}"


def _expected_call(expected: Any) -> tuple[str | None, dict, str]:
    """The row's ``expected``: a function name, or JSON ``{"name": ..., "arguments": {...}}``."""
    if _missing(expected) or str(expected).strip() == "":
        return None, {}, "no expected call (give tool_call(name=...) or an expected column)"
    text = str(expected).strip()
    if not text.startswith("{"):
        return text, {}, ""
    value, why = _structured.parse_json(text)
    if why or not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None, {}, 'expected is not {"name": ..., "arguments": {...}}'
    arguments = value.get("arguments") or {}
    if isinstance(arguments, str):
        arguments, why = _structured.parse_json(arguments)
    return value["name"], arguments if isinstance(arguments, dict) else {}, ""


@_saved_as("tool_call")
def tool_call(name: str | None = None, arguments: Mapping[str, Any] | None = None, schema: Any = None) -> Scorer:
    """1 when the answer calls a tool as it should: ``name`` (any call when None), its arguments
    valid JSON that match ``schema`` — or, when no schema is given, the ``parameters`` the row's
    request declared for that tool — and, with ``arguments``, the share of those values it got
    right. Without any of the three, each row's ``expected`` says the call: a function name or
    ``{"name": ..., "arguments": {...}}``. The reason says what is wrong (no call, another
    function, invalid JSON, the schema path that fails). Reads the ``tool_calls`` column."""
    return _ToolCall(name, arguments, schema)


class _JsonSchema(Scorer):
    uses_expected = False

    def __init__(self, schema: Any) -> None:
        self.schema = None if schema is None else _structured.check_schema(schema, "json_schema(schema)")
        self._compiled = None if self.schema is None else _structured.compile_schema(self.schema)
        title = (self.schema or {}).get("title")
        self.name = f"json_schema({title})" if title else "json_schema"

    def score_rows(self, rows: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        # a given schema needs no params: a column of large request bodies is costly to read
        params = _column(rows, "params") if self._compiled is None else [None] * len(rows)
        pairs = [_safe_check(self, t, None, p) for t, p in zip(_column(rows, "response_text"), params, strict=True)]
        return np.array([p[0] for p in pairs], dtype=float), [p[1] for p in pairs]

    def check(self, text: Any, expected: Any, params: Any = None) -> tuple[float, str]:
        schema = self._compiled or _structured.declared_check(params)
        if schema is None:
            return 0.0, "no schema (give json_schema(schema) or ask with response_format json_schema)"
        value, why = _structured.parse_json(text)
        if why:
            return 0.0, why
        problem = schema.problem(value)
        return (0.0, f"does not match the schema: {problem}") if problem else (1.0, "matches the schema")


@_saved_as("json_schema")
def json_schema(schema: Any = None) -> Scorer:
    """1 when the answer is JSON (a Markdown code fence allowed) that validates against
    ``schema`` — a JSON Schema, or a ``response_format`` dict of type ``json_schema``; with no
    schema, the one each row's request sent as its ``response_format``. The reason names the
    first failing path (``$.city: 42 is not of type 'string'``). An invalid schema is an
    InputError before anything is scored."""
    return _JsonSchema(schema)


_KINDS: dict[str, Callable[..., Scorer]] = {
    "exact": exact, "contains": contains, "regex": regex, "json_valid": json_valid,
    "numeric": numeric, "choice": choice, "arithmetic": arithmetic, "final_answer": final_answer,
    "no_hedging": no_hedging, "tool_call": tool_call, "json_schema": json_schema,
}


def from_spec(spec: Mapping[str, Any] | str) -> Scorer:
    """A scorer from a checker spec: ``{"kind": "numeric", "tol": 0.01}``, its JSON, or a kind name."""
    if isinstance(spec, str):
        spec = _spec_json(spec)
    if not isinstance(spec, Mapping):
        raise InputError(f"a checker spec is a dict such as {{'kind': 'exact'}} or a kind name, not {spec!r}")
    args = dict(spec)
    kind = args.pop("kind", None)
    if kind == "judge":
        raise InputError("a judge needs a Lab: use scoring.judge(model=..., lab=...) directly")
    if kind not in _KINDS:
        raise InputError(f"unknown checker kind {kind!r}; known: {', '.join(_KINDS)}")
    if kind == "regex" and "flags" in args:
        args["flags"] = _regex_flags(args["flags"])
    try:
        return _KINDS[kind](**args)
    except TypeError:
        raise InputError(f"checker spec {_short(json.dumps(spec, default=str), 80)}: {kind} takes "
                         f"{_parameters(_KINDS[kind])}") from None


# --- LLM as judge -------------------------------------------------------------------------------

# MT-Bench's single-answer grading prompt (FastChat ``single-v1`` / ``single-math-v1``), with the
# rubric replaceable and the reference answer shown only when there is one.
_JUDGE_TEMPLATE = """[Instruction]
Please act as an impartial judge and evaluate the quality of the response provided by an AI \
assistant to the user question displayed below. {rubric} Begin your evaluation by providing a \
short explanation. Be as objective as possible. After providing your explanation, you must rate \
the response on a scale of 1 to 10 by strictly following this format: "[[rating]]", for example: \
"Rating: [[5]]".

[Question]
{prompt}
{reference}
[The Start of Assistant's Answer]
{answer}
[The End of Assistant's Answer]"""
_REFERENCE_BLOCK = "\n[The Start of Reference Answer]\n{expected}\n[The End of Reference Answer]\n"
_DEFAULT_RUBRIC = ("Your evaluation should consider factors such as the helpfulness, relevance, accuracy, "
                   "depth, creativity, and level of detail of the response; when a reference answer is "
                   "given, judge correctness against it first.")
JUDGE_SCALE = (1, 10)


class _Judge(Scorer):
    def __init__(self, model: str, lab: Any, rubric: str | None, max_tokens: int) -> None:
        self.model, self.lab, self.max_tokens = model, lab, max_tokens
        self.rubric = rubric or _DEFAULT_RUBRIC
        self.name = f"judge({model})"
        self.last_result = None  # the judge sweep's Result: its calls' latency and cost

    def check(self, text, expected):
        rows = pd.DataFrame({"prompt_id": ["p"], "prompt": [""], "response_text": [text],
                             "expected": [expected]})
        s, why = self.score_rows(rows)
        return float(s[0]), why[0]

    def score_rows(self, rows):
        texts = _column(rows, "response_text")
        blank = np.array([_missing(t) or not str(t).strip() for t in texts], dtype=bool)
        scores = np.zeros(len(rows), dtype=float)
        reasons = np.array(["no answer"] * len(rows), dtype=object)
        if (~blank).any():
            judged = [str(t) for t in np.asarray(texts, dtype=object)[~blank]]
            pairs = [_judged(reply, answer) for reply, answer in zip(self._ask(rows.loc[~blank]), judged, strict=True)]
            scores[~blank] = [p[0] for p in pairs]
            reasons[~blank] = [p[1] for p in pairs]
        return scores, list(reasons)

    def _ask(self, rows: pd.DataFrame) -> list[Any]:
        """Judge replies, one per row (a JudgeFailure for a failed judge call), via the lab's sweep."""
        ids = [f"judge:{i}:{pid}@{m}" for i, (pid, m) in enumerate(
            zip(_column(rows, "prompt_id"), _column(rows, "requested_model"), strict=True))]
        # the question as the pairwise judge sees it: a follow-up comes with the conversation it follows
        questions = [judged_question(row) for row in rows.to_dict("records")]
        prompts = [_JUDGE_TEMPLATE.format(
            prompt=q, answer=defuse_tokens(str(a)), rubric=self.rubric,   # no [[…]] for the judge to copy
            reference="" if _missing(e) or not str(e).strip() else _REFERENCE_BLOCK.format(expected=e))
            for q, a, e in zip(questions, _column(rows, "response_text"), _column(rows, "expected"), strict=True)]
        frame = pd.DataFrame({"prompt_id": ids, "prompt": prompts, "task": "judge"})
        result = self.lab.sweep(frame, models=[self.model], temperature=0,
                                max_tokens=self.max_tokens, cache=True, progress=False)
        self.last_result = result
        return final_answers(result.df, ids)


def judged_question(row: Any) -> str:
    """What the models were asked: the last user message, or — when the recorded conversation has a
    system prompt or earlier turns — the whole conversation, each message headed by its role (the
    judge of a follow-up question must see what it follows)."""
    try:
        messages = loads(row.get("messages")) if isinstance(row.get("messages"), str) else None
    except ValueError:
        messages = None
    if not isinstance(messages, list) or len(messages) < 2 or not all(isinstance(m, dict) for m in messages):
        return "" if _missing(row.get("prompt")) else str(row.get("prompt"))
    return "\n".join(f"[{str(m.get('role', 'user')).capitalize()}]\n{_content(m.get('content'))}" for m in messages)


def _content(content: Any) -> str:
    if isinstance(content, list):       # content parts: their text
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return "" if _missing(content) else str(content)


def judge(model: str, lab: Any, rubric: str | None = None, max_tokens: int = 512) -> Scorer:
    """An LLM-as-judge through the same endpoint: one ``lab.sweep`` of judge prompts with
    ``models=[model], temperature=0, cache=True`` (so its calls are recorded, costed and cached).

    The judge is asked MT-Bench's single-answer question (``rubric`` replaces its criteria; a
    row's ``expected`` is shown as the reference answer) and answers "Rating: [[n]]" on 1–10; the
    score is (n − 1) / 9. The verdict is read by :func:`llmlab.analysis._verdicts.parse_rating`
    (see its rules: the delimited rating, then documented fallbacks). A reply with no readable
    verdict, and a failed judge call, are **unknown**: score NaN with the reason in
    ``score_reason`` — never 0, so an outage or an odd format does not count against a model.
    The sweep's Result is kept on ``scorer.last_result``.
    """
    return _Judge(model, lab, rubric, max_tokens)


def final_answers(df: pd.DataFrame, ids: list[str]) -> list[Any]:
    """Per judge prompt id: the reply text of its final attempt, or a :class:`JudgeFailure` (a
    :class:`JudgeCut` for a reply that did not end as finished: max_tokens, a content filter, …)."""
    if df is None or len(df) == 0:
        return [JudgeFailure(None)] * len(ids)
    order = df.sort_values("attempt") if "attempt" in df.columns else df
    last = order.groupby("prompt_id", sort=False).tail(1).set_index("prompt_id")
    out: list[Any] = []
    for pid in ids:
        if pid not in last.index or last.at[pid, "status"] != "ok":
            err = last.at[pid, "error_type"] if pid in last.index and "error_type" in last else None
            out.append(JudgeFailure(err))
        elif "finish_reason" in last and _cut_off(last.at[pid, "finish_reason"]):
            out.append(JudgeCut(last.at[pid, "response_text"], last.at[pid, "finish_reason"]))
        else:
            out.append(last.at[pid, "response_text"])
    return out


class JudgeFailure:
    """A judge call that gave no reply (its final attempt failed, or it has no row); ``text``: None."""

    text: str | None = None

    def __init__(self, error_type: Any) -> None:
        self.error_type = error_type if isinstance(error_type, str) and error_type else "no row"

    def reason(self) -> str:
        return f"judge call failed: {self.error_type}"


# The finish reasons of a reply the model ended itself (OpenAI/LiteLLM "stop", Anthropic's and
# Bedrock's words passed through, llama.cpp's "eos"). Any other — "length", "content_filter",
# "error", "max_tokens", "abort", … — ended it from outside; none (a body without one) is taken as
# ended, as the engine stores such a row ok.
FINISHED = frozenset({"stop", "end_turn", "stop_sequence", "eos", "eos_token"})


def _cut_off(finish_reason: Any) -> bool:
    return not _missing(finish_reason) and str(finish_reason) not in FINISHED


class JudgeCut(JudgeFailure):
    """A judge reply that did not end as finished (``finish_reason`` "length" at ``max_tokens``,
    "content_filter", "error", …: not in :data:`FINISHED`): unknown, whatever it holds. Even a
    complete ``[[8]]`` in it is not known to be final — the cut text may revise it ("on
    reflection, [[6]]") or hold the real verdict after a hypothetical one (review r22 B7).
    ``text``: the cut reply as recorded, kept so the preference frame shows why it is unknown."""

    def __init__(self, text: Any, finish_reason: Any = "length") -> None:
        super().__init__(str(finish_reason))
        self.text = None if _missing(text) else str(text)

    def reason(self) -> str:
        return f"judge reply cut off (finish_reason={one_line(self.error_type, 40)})"


def _judged(reply: Any, answer: str = "") -> tuple[float, str]:
    """(score in [0, 1] or NaN for unknown, reason) of one pointwise judge reply; ``answer``: the
    answer judged (a rating it writes itself is not the judge's)."""
    if isinstance(reply, JudgeFailure):
        return float("nan"), reply.reason()
    verdict = parse_rating(reply, scale=JUDGE_SCALE, answers=(answer,))
    if not verdict.known:
        return float("nan"), f"unknown: {verdict.reason()}"
    lo, hi = JUDGE_SCALE
    return (verdict.value - lo) / (hi - lo), f"judge {verdict.value:g}/{hi} ({verdict.rule})"


# --- helpers ------------------------------------------------------------------------------------

def _safe_check(scorer: Scorer, text: Any, expected: Any, *context: Any) -> tuple[float, str]:
    try:
        value, reason = scorer.check(text, expected, *context)
    except Exception as exc:  # the contract: bad output scores 0, it never aborts a scoring run
        return 0.0, f"scorer error {type(exc).__name__}: {_short(str(exc), 60)}"
    return float(value), str(reason)


def _coerce(value: Any) -> tuple[float, str]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 0.0, "scorer returned no score"
    if isinstance(value, (bool, np.bool_)):
        return (1.0, "pass") if value else (0.0, "fail")
    try:
        x = float(value)
    except (TypeError, ValueError):
        return 0.0, f"scorer returned {type(value).__name__}"
    if math.isnan(x):
        return 0.0, "scorer returned NaN"
    return min(max(x, 0.0), 1.0), f"{x:g}"


def _ok_mask(df: pd.DataFrame) -> np.ndarray:
    if "status" not in df.columns:
        return np.ones(len(df), dtype=bool)
    return (df["status"] != "error").to_numpy()


def _column(rows: pd.DataFrame, name: str) -> np.ndarray:
    if name in rows.columns:
        return rows[name].to_numpy(dtype=object)
    return np.full(len(rows), None, dtype=object)


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value)) if np.ndim(value) == 0 else False
    except (TypeError, ValueError):
        return False


def _norm(value: Any) -> str:
    return " ".join(str(value).split()).strip(_STRIP).casefold()


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _extract_number(value: Any, which: str) -> float | None:
    if _missing(value):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return float(value)
    text = str(value).replace("\u2212", "-")
    found = [m.group(0) for m in _NUMBER.finditer(text) if any(c.isdigit() for c in m.group(0))]
    if not found:
        return None
    token = found[0] if which == "first" else found[-1]
    try:
        return float(token.replace(",", ""))
    except ValueError:
        return None


def _parse_json(text: Any) -> tuple[Any, str]:
    if _missing(text):
        return None, "no answer"
    body = _structured.unfenced(str(text).strip())
    if not body:
        return None, "empty answer"
    try:
        return loads(body), ""
    except ValueError as exc:
        return None, f"invalid JSON: {_short(str(exc), 50)}"
    except RecursionError:
        return None, "invalid JSON: nested too deeply to read"


def _compare_fields(value: dict, expected: Any) -> tuple[float, str]:
    target = expected
    if isinstance(expected, str):
        try:
            target = loads(expected)
        except ValueError:
            return 0.0, "expected is not JSON"
    if not isinstance(target, dict) or not target:
        return 0.0, "expected is not a JSON object"
    wrong = [k for k, v in target.items() if not _same_value(value.get(k), v)]
    share = 1 - len(wrong) / len(target)
    return share, ("all fields match" if not wrong else f"wrong: {', '.join(map(str, wrong))}")


def _same_value(got: Any, want: Any) -> bool:
    if isinstance(want, (int, float)) and not isinstance(want, bool):
        number = _extract_number(got, "first")
        return number is not None and math.isclose(number, want, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(want, (list, dict)):
        return got == want
    return got is not None and _norm(got) == _norm(want)


# The flags a checker spec (a saved policy's, a dataset's) may name; re's other attributes are
# functions, or DEBUG, which prints every compiled pattern.
_REGEX_FLAGS = {"I": re.I, "IGNORECASE": re.I, "M": re.M, "MULTILINE": re.M, "S": re.S, "DOTALL": re.S,
                "X": re.X, "VERBOSE": re.X, "A": re.A, "ASCII": re.A}


def _regex_flags(names: Any) -> int:
    """A spec's ``flags``: names joined by ``|`` ("I|S"), or their sum as a number."""
    allowed = functools.reduce(operator.or_, _REGEX_FLAGS.values())
    if isinstance(names, int) and not isinstance(names, bool) and 0 <= names and not names & ~allowed:
        return names
    if not isinstance(names, str):
        raise InputError(f"regex flags must be names such as 'I|S', not {one_line(repr(names), 40)}")
    flags = 0
    for name in filter(None, (n.strip().upper() for n in names.split("|"))):
        if name not in _REGEX_FLAGS:
            raise InputError(f"regex flags: {one_line(name, 40)!r} is not one of {', '.join(sorted(_REGEX_FLAGS))}")
        flags |= _REGEX_FLAGS[name]
    return flags


def _checker_specs(df: pd.DataFrame, checkers: Any) -> list[Any]:
    if checkers is None:
        if "checker" not in df.columns:
            raise InputError("auto() needs a 'checker' column, or checkers= (the dataset, or "
                             "a {prompt_id: spec} mapping)")
        return list(df["checker"])
    if isinstance(checkers, pd.DataFrame):
        checkers = dict(zip(checkers["prompt_id"], checkers["checker"], strict=True))
    if not isinstance(checkers, Mapping):
        raise InputError("checkers= must be a DataFrame with prompt_id/checker, or a mapping")
    return [checkers.get(pid) for pid in df["prompt_id"]]


_NO_SPEC = "(missing)"   # a string, not None: pandas would turn None into NaN ≠ NaN


def _spec_key(spec: Any) -> str:
    """Canonical JSON of a spec, so equal specs (dict or JSON text) share one scorer."""
    if spec is None or (isinstance(spec, float) and math.isnan(spec)):
        return _NO_SPEC
    if isinstance(spec, str):
        spec = _spec_json(spec)
    return json.dumps(dict(spec), sort_keys=True)


def _parameters(factory: Callable) -> str:
    names = list(inspect.signature(factory).parameters)
    return "the keys " + ", ".join(names) if names else "no other keys"


def _spec_json(text: str) -> Any:
    """A spec given as text: its JSON ("{...}") or a kind name; InputError for broken JSON."""
    text = text.strip()
    if not text.startswith("{"):
        return {"kind": text}
    try:
        return loads(text)
    except (ValueError, RecursionError) as exc:
        detail = " ".join(str(exc).split())[:60] if isinstance(exc, ValueError) else "nested too deeply"
        raise InputError(f"a checker spec in JSON must be a JSON object such as '{{\"kind\": \"exact\"}}', "
                         f"not {_short(text, 40)} ({detail})") from None


def _accepts_one_argument(fn: Callable) -> bool:
    """True when ``fn`` can be called with the answer text alone (used by routing.Cascade)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return True
    required = [p for p in sig.parameters.values()
                if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(required) <= 1
