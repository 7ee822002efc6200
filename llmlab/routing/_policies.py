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

import copy
import functools
import hashlib
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..analysis import _scoring as scoring
from ..base._display import clean_text
from ..base._errors import InputError
from ..base._files import write_json
from ..base._validate import is_real, plain_number
from ._matrix import Matrix
from ._names import check_policy
from ._stats import Outcome, outcome

__all__ = ["Policy", "Decision", "Always", "TaskMap", "Fallback", "Cascade", "Threshold", "Random",
           "Oracle", "on_row", "literal", "FORMAT", "FORMAT_VERSION"]


FORMAT = "llmlab.routing.policy"
FORMAT_VERSION = 1


@dataclass
class Decision:
    """What a policy does with one prompt: call ``models`` (``mode`` ``one``, ``fallback`` — next on
    failure — or ``cascade`` — next while ``accept`` rejects the answer), and why.

    A cascade that reads more than the answer's text (a :class:`~llmlab.routing.Verifier`) asks
    its first model for ``samples`` answers (each a recorded, billed row, sent at once) and judges
    them with ``verdict(rows) -> (accepted, why)``: the rows of those answers, sample 0 first
    (the one served when accepted). ``options``: call options those first answers need for the
    verdict (``{"logprobs": True, "top_logprobs": 1}`` for a verifier fitted on log-probabilities),
    sent unless the caller set them. The verdict runs on a worker thread, not the Lab's loop."""

    models: list[str]
    mode: str
    reason: str
    accept: Callable[[str], bool] | None = None
    samples: int = 1
    verdict: Callable[[list[dict]], tuple[bool, str]] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


class Policy:
    """Base class: ``name``, ``needs()`` (models called; None = all) and ``route(matrix)``;
    ``decide(prompt)`` for live use, ``save(path)``/``to_dict()`` and ``to_code()`` to deploy.

    A subclass that can be used live implements ``_decide``; one that can be saved implements
    ``_fields`` (its JSON body) and ``_from_fields`` (the loader's way back, see ``_saved``); one
    that exports as code implements ``_code``. The rest is written once here.
    """

    name: str = "policy"
    tuned_on: dict[str, Any] | None = None   # set by routing.tune / fit_task_map: what chose the knob
    tuned_prompts: frozenset = frozenset()    # the prompt ids it was tuned on (evaluate warns on overlap)
    tuned_texts: frozenset = frozenset()      # their normalised texts (a copy under another id warns too)
    uses_labels: bool = False                # reads expected answers or scores: evaluation only

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every policy is checked once built (``_names.check_policy``: the engine's model-name rule),
        after the outermost ``__init__`` — a subclass's own checks and ``super().__init__`` done."""
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return

        @functools.wraps(init)
        def checked(self: Policy, *args: Any, **kw: Any) -> None:
            init(self, *args, **kw)
            if type(self).__init__ is checked:
                check_policy(self)

        setattr(cls, "__init__", checked)  # noqa: B010 (mypy refuses assigning a method)

    def _shown_names(self) -> list[tuple[str, Any]]:
        """Texts besides the models that are shown and saved (the policy's name, task names)."""
        return [("policy name", self.name)]

    def needs(self) -> list[str] | None:
        raise NotImplementedError

    def route(self, mx: Matrix) -> np.ndarray:
        raise NotImplementedError

    def simulate(self, mx: Matrix) -> Outcome:
        """What the policy does to each prompt of ``mx``, billed: the models of :meth:`route`,
        their costs and latencies summed (a policy that pays for more than one answer per model,
        such as a sampling :class:`~llmlab.routing.Verifier`, says so here)."""
        return outcome(mx, self.route(mx))

    # -- live use ---------------------------------------------------------------------------
    def decide(self, prompt: str, *, task: str | None = None, prompt_id: str | None = None,
               features: Mapping[str, Any] | None = None) -> Decision:
        """The models to call for one live prompt, in order, and why (a :class:`Decision`) —
        from what a router knows before it calls anything: the prompt, its task, your
        prompt-level features."""
        if self.uses_labels:
            raise InputError(f"{self.name} reads the labels (expected answers, scores): it is an upper bound "
                             "for evaluation, not a router that can answer live prompts")
        if not isinstance(prompt, str):
            raise InputError(f"decide() takes the prompt's text, not {type(prompt).__name__}")
        if task is not None and not isinstance(task, str):
            raise InputError(f"task must be the prompt's task as a string (or None), not {type(task).__name__}")
        if features is not None and not isinstance(features, Mapping):
            raise InputError(f"features must be a dict of prompt-level values, not {type(features).__name__}")
        return self._decide(prompt, task, prompt_id, features)

    def _decide(self, prompt: str, task: str | None, prompt_id: str | None,
                features: Mapping[str, Any] | None) -> Decision:
        raise InputError(f"{self.name}: {type(self).__name__} has no live decision rule")

    # -- saving (JSON, never pickle) --------------------------------------------------------
    def to_dict(self) -> dict:
        """A JSON-able description (``routing.load_policy`` reads it back; never pickle)."""
        check_policy(self)  # again: what is written must load, and a key learnt since is refused
        return {"format": FORMAT, "version": FORMAT_VERSION, "name": self.name, "kind": type(self).__name__,
                **self._fields()}

    def _fields(self) -> dict:
        raise InputError(f"{self.name}: {type(self).__name__} cannot be saved (it is not a deployable router)")

    @classmethod
    def _from_fields(cls, data: Mapping[str, Any], name: str | None) -> Policy:
        raise InputError(f"a saved {cls.__name__} cannot be loaded")

    def save(self, path: Any) -> Path:
        """Write the policy as JSON to ``path`` (atomically, owner-only: a failed save leaves an
        existing file as it was); returns the path. A name or model that JSON cannot hold (an
        unpaired surrogate) is an InputError naming the field."""
        if not isinstance(path, (str, os.PathLike)):
            raise InputError(f"save() takes a file path, not {type(path).__name__}")
        return write_json(path, self.to_dict(), what=f"saving {type(self).__name__}")

    # -- exporting as code ------------------------------------------------------------------
    def to_code(self) -> str:
        """Python source of a standalone ``pick_model(prompt, task=None)`` (rule policies) — the
        gateway guide's router, now chosen with evidence. Every name and number in it is a
        Python literal (:func:`literal`): no text of the policy's goes into a comment or the
        docstring, so no name can close a string and add code."""
        check_policy(self)
        return ('"""Router exported by llmlab: pick_model() returns the model to call."""\n\n'
                f"POLICY = {literal(self.name)}\n" + self._code())

    def _code(self) -> str:
        raise InputError(f"{self.name}: only rule policies export as code (Always, TaskMap, a prompt-length "
                         "Threshold, a Cascade with a regex accept); save this one with policy.save(path)")

    def __repr__(self) -> str:
        return clean_text(f"<{type(self).__name__} {self.name}>")


def literal(value: Any) -> str:
    """``value`` (text, a number, a list or dict of them) as a Python literal in pure ASCII:
    quotes, backslashes, newlines, U+2028, NUL and braces stay inside the string. A number must
    be finite (``inf`` is no literal)."""
    if isinstance(value, bool) or value is None:
        return ascii(value)
    if isinstance(value, str):  # the text itself: a subclass (numpy's str_) has its own repr
        return ascii(str.__str__(value))
    if isinstance(value, (int, float)):
        number = float(value) if isinstance(value, float) else int(value)
        if isinstance(number, float) and not math.isfinite(number):
            raise InputError(f"{value!r} is not a finite number; it cannot be exported as code")
        return repr(number)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = "".join(f"    {literal(k)}: {literal(v)},\n" for k, v in value.items())
        return "{\n" + items + "}" if items else "{}"
    raise InputError(f"a {type(value).__name__} cannot be exported as code")


def _pick_model(body: str) -> str:
    """``def pick_model(prompt, task=None):`` with ``body`` as its statements."""
    indented = "\n".join("    " + line for line in body.splitlines())
    return f"\n\ndef pick_model(prompt, task=None):\n{indented}\n"


class Always(Policy):
    """Every prompt goes to ``model``."""

    def __init__(self, model: str, name: str | None = None) -> None:
        self.model = model
        self.name = name or f"always({model})"

    def needs(self):
        return [self.model]

    def route(self, mx):
        return np.full((mx.n, 1), mx.index(self.model), dtype=np.int64)

    def _decide(self, prompt, task, prompt_id, features):
        return Decision([self.model], "one", f"always → {self.model}")

    def _fields(self):
        return {"model": self.model}

    @classmethod
    def _from_fields(cls, data, name):
        return cls(data["model"], name=name)

    def _code(self):
        return _pick_model(f"return {literal(self.model)}")


class TaskMap(Policy):
    """The gateway guide's ``pick_model``: ``mapping[task]``, else ``default``."""

    def __init__(self, mapping: Mapping[str, str], default: str | None = None,
                 name: str | None = None) -> None:
        self.name = name or "task_map"
        if not isinstance(mapping, Mapping):
            raise InputError(f"{self.name}: mapping must be a dict of task → model name, not {type(mapping).__name__}")
        self.mapping, self.default = dict(mapping), default
        for what, model in [*((f"the model for task {t!r}", m) for t, m in self.mapping.items()), ("default", default)]:
            if not (isinstance(model, str) and model) and not (what == "default" and model is None):
                raise InputError(f"{self.name}: {what} must be a model name (a non-empty string), "
                                 f"not {type(model).__name__} {str(model)[:40]!r}")

    def needs(self):
        return list(dict.fromkeys([*self.mapping.values(), *([self.default] if self.default else [])]))

    def _shown_names(self):
        return [*super()._shown_names(), *(("task name", task) for task in self.mapping)]

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

    def _decide(self, prompt, task, prompt_id, features):
        if task is not None and task in self.mapping:
            model = self.mapping[task]
            return Decision([model], "one", f"task {task!r} → {model}")
        if self.default is None:
            known = ", ".join(map(repr, self.mapping))
            raise InputError(f"{self.name}: no model for task {task!r} and no default; pass task= one of {known}")
        return Decision([self.default], "one", f"task {task!r} not mapped → default {self.default}")

    def _fields(self):
        self._check_string_tasks()
        return {"mapping": self.mapping, "default": self.default}

    @classmethod
    def _from_fields(cls, data, name):
        return cls(data["mapping"], default=data.get("default"), name=name)

    def _code(self):
        self._check_string_tasks()
        return f"\nMODEL_FOR_TASK = {literal(self.mapping)}\nDEFAULT = {literal(self.default)}\n" + _pick_model(
            "model = MODEL_FOR_TASK.get(task, DEFAULT)\n"
            "if model is None:\n"
            "    raise ValueError(f'no model for task {task!r}')\n"
            "return model")

    def _check_string_tasks(self) -> None:
        bad = [k for k in self.mapping if not isinstance(k, str)]
        if bad:
            raise InputError(f"{self.name}: task {bad[0]!r} is not a string; JSON and exported code key tasks "
                             "by text, so name tasks with strings")


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

    def _decide(self, prompt, task, prompt_id, features):
        return Decision(list(self.models), "fallback", "fallback " + " → ".join(self.models))

    def _fields(self):
        return {"models": self.models}

    @classmethod
    def _from_fields(cls, data, name):
        return cls(data["models"], name=name)


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
            accept if isinstance(accept, str) else getattr(accept, "spec", None)
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
            texts = mx.cell_values("response_text", j)
            _require_answers(self.name, mx.models[j], texts, mx.error[:, j])
            values = _apply(self._accept[1], texts, self.name)
        return np.array([_truthy(v, self.accept_at) for v in values], dtype=bool)

    def _decide(self, prompt, task, prompt_id, features):
        test = self._accept[1]
        return Decision(list(self.models), "cascade", "cascade " + " → ".join(self.models),
                        accept=lambda text: _accepted(test, text, self.accept_at))

    def _fields(self):
        if self.accept_spec is None:
            raise InputError(f"{self.name}: its accept= is a Python function or object, which cannot be "
                             "saved as JSON; give accept as a checker spec, e.g. {'kind': 'regex', "
                             "'pattern': '####\\\\s*-?\\\\d+'} or 'json_valid'")
        return {"models": self.models, "accept": self.accept_spec, "accept_at": self.accept_at}

    @classmethod
    def _from_fields(cls, data, name):
        return cls(data["models"], accept=data["accept"], accept_at=data["accept_at"], name=name)

    def _code(self):
        spec = self.accept_spec
        # a regex accept only: flags= would need their own translation
        if not (isinstance(spec, Mapping) and spec.get("kind") == "regex" and spec.get("pattern")
                and set(spec) <= {"kind", "pattern"}):
            return super()._code()
        return (f"import re\n\n# call in order while the answer is rejected\nORDER = {literal(self.models)}\n"
                f"ACCEPT = re.compile({literal(spec['pattern'])}, re.IGNORECASE)\n\n\n"
                "def pick_model(prompt, task=None, previous_answers=()):\n"
                "    \"\"\"The next model to call, or None when the last answer is accepted.\"\"\"\n"
                "    if previous_answers and ACCEPT.search(previous_answers[-1] or ''):\n"
                "        return None\n"
                "    return ORDER[len(previous_answers)] if len(previous_answers) < len(ORDER) else None\n")


def _require_answers(name: str, model: str, texts: np.ndarray, error: np.ndarray) -> None:
    """A cascade judges answers: with none recorded it would escalate every prompt (and pay twice)."""
    answered = pd.Series(texts[~error], dtype=object).fillna("").astype(str).str.strip() != ""
    if len(answered) and not answered.any():
        raise InputError(f"{name} accepts or escalates on {model}'s answers, and these runs have none (e.g. a "
                         "matrix from datasets.from_wide without responses=); evaluate it on runs with answers")


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


def _accepted(test: Callable[[str], Any], text: str, at: float) -> bool:
    """The evaluation's acceptance rule (:func:`_truthy`) on one live answer; an answer the test
    raises on is not accepted, as in evaluation."""
    try:
        value = test(text)
    except Exception:
        return False
    return _truthy(value, at)


class Threshold(Policy):
    """``strong`` when the prompt's feature ≥ ``threshold``, else ``weak``.

    ``feature``: ``"prompt_chars"`` (length of the prompt text), the name of a prompt-level
    column (e.g. a classifier's score you merged into the runs), a mapping or Series
    ``{prompt_id: value}``, or a function of the router-visible prompt row (a dict). A missing
    feature value (NaN) routes to ``weak``.
    """

    def __init__(self, feature: Any, threshold: float, weak: str, strong: str,
                 name: str | None = None) -> None:
        if not is_real(threshold) or math.isnan(threshold):
            raise InputError(f"threshold must be a number (inf and -inf are allowed), not {str(threshold)[:40]}")
        self.feature, self.threshold, self.weak, self.strong = feature, plain_number(threshold), weak, strong
        self._label = feature if isinstance(feature, str) else getattr(feature, "__name__", "feature")
        self._named = name is not None
        self.name = name or self._default_name()

    def _default_name(self) -> str:
        return f"threshold({self._label} ≥ {self.threshold:g}: {self.weak} | {self.strong})"

    def with_threshold(self, threshold: float) -> Threshold:
        """A copy with another threshold (what :func:`routing.tune` sets): a shallow copy, so a
        fitted :class:`Learned` router keeps its fit; a chosen name stays, a derived one follows."""
        twin = copy.copy(self)
        twin.threshold = float(threshold)
        if not self._named:
            twin.name = twin._default_name()
        return twin

    def needs(self):
        return [self.weak, self.strong]

    def arms(self, mx: Matrix) -> tuple[Outcome, Outcome]:
        """What a prompt gets below the threshold and at or above it (here ``weak`` alone and
        ``strong`` alone): the two sides :func:`routing.tune` and the report's sweep weigh."""
        return outcome(mx, Always(self.weak).route(mx)), outcome(mx, Always(self.strong).route(mx))

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

    def _decide(self, prompt, task, prompt_id, features):
        value, label = self._feature_value(prompt, task, prompt_id, features)
        strong = math.isfinite(value) and value >= self.threshold
        model = self.strong if strong else self.weak
        if not math.isfinite(value):
            return Decision([model], "one", f"{label} unknown → {model}")
        relation = "≥" if strong else "<"
        return Decision([model], "one", f"{label} {value:.4g} {relation} {self.threshold:.4g} → {model}")

    def _feature_value(self, prompt: str, task: str | None, prompt_id: str | None,
                       features: Mapping[str, Any] | None) -> tuple[float, str]:
        """The feature of one live prompt, and how the reason names it."""
        f = self.feature
        if isinstance(f, str) and f == "prompt_chars":
            return float(len(prompt)), "length"
        row = {"prompt": prompt, "task": task, "prompt_id": prompt_id, **dict(features or {})}
        if isinstance(f, str):
            if f not in row:
                raise InputError(f"{self.name} routes on the column {f!r}: pass its value, "
                                 f"lab.route(..., features={{{f!r}: ...}})")
            return _as_float(row[f]), f
        if isinstance(f, Mapping) or hasattr(f, "reindex"):
            return _as_float(dict(f).get(prompt_id, math.nan)), "feature"
        return _as_float(f(row)), getattr(f, "__name__", "feature")

    def _fields(self):
        if not isinstance(self.feature, str):
            raise InputError(f"{self.name}: a threshold on a mapping or function cannot be saved; "
                             "route on 'prompt_chars' or a named column")
        self._check_finite()
        return {"feature": self.feature, "threshold": self.threshold, "weak": self.weak, "strong": self.strong}

    @classmethod
    def _from_fields(cls, data, name):
        policy = cls(data["feature"], data["threshold"], weak=data["weak"], strong=data["strong"])
        if name and name != policy.name:      # a chosen name stays; a derived one keeps following the knob
            policy = cls(data["feature"], data["threshold"], weak=data["weak"], strong=data["strong"], name=name)
        return policy

    def _code(self):
        if self.feature != "prompt_chars":
            return super()._code()
        self._check_finite()
        return _pick_model(f"return {literal(self.strong)} if len(prompt) >= {literal(self.threshold)} "
                           f"else {literal(self.weak)}")

    def _check_finite(self) -> None:
        if not math.isfinite(self.threshold):
            raise InputError(f"{self.name}: threshold {self.threshold} is not a finite number (it routes every "
                             f"prompt the same way); use Always({self.strong!r}) or Always({self.weak!r}) instead")


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

    def _decide(self, prompt, task, prompt_id, features):
        draw = uniform_draw(self.seed, prompt)
        model = self.strong if draw < self.p_strong else self.weak
        sign = "<" if draw < self.p_strong else "≥"
        return Decision([model], "one", f"random draw {draw:.3f} {sign} {self.p_strong:g} → {model}")

    def _fields(self):
        return {"p_strong": self.p_strong, "weak": self.weak, "strong": self.strong, "seed": self.seed}

    @classmethod
    def _from_fields(cls, data, name):
        return cls(data["p_strong"], weak=data["weak"], strong=data["strong"], seed=data["seed"], name=name)


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
        score, cost = mx.score[:, cols], mx.spend[:, cols]
        best = score == score.max(axis=1, keepdims=True)
        # spend: the cost, or (a cost unknown) a call to the best model costs 1 and others 0
        price = np.where(best, cost, np.inf)
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
    """A feature value as a float; NaN (unknown) when it is no number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan
    except OverflowError:
        raise InputError(f"a feature value ({str(value)[:30]}…) is too large for a float") from None
