"""Using a policy for real: decide for one live prompt, save and load without pickle, export code.

``decide`` answers "which model(s), in what order, and why" from what a router knows before it
calls anything: the prompt, its task, your prompt-level features. :meth:`llmlab.Lab.route` calls
it and records the policy and the reason on every row. A policy that reads the labels (the
Oracle, a Cascade whose ``accept`` is an ``on_row`` predicate) cannot be used live.

``save``/``load_policy`` write JSON (never pickle): rule policies as their parameters, a
:class:`Learned` router as its vocabulary and coefficients. ``to_code`` returns a standalone
``pick_model(prompt, task=None)`` for rule policies — the gateway guide's router, now chosen
with evidence.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import InputError
from ._policies import (
    Always,
    Cascade,
    Fallback,
    Oracle,
    Policy,
    Random,
    TaskMap,
    Threshold,
    _truthy,
    uniform_draw,
)

FORMAT = "llmlab.routing.policy"
FORMAT_VERSION = 1


@dataclass
class Decision:
    """What a policy does with one prompt: call ``models`` (``mode`` ``one``, ``fallback`` — next on
    failure — or ``cascade`` — next while ``accept`` rejects the answer), and why."""

    models: list[str]
    mode: str
    reason: str
    accept: Callable[[str], bool] | None = None


def decide(policy: Policy, prompt: str, *, task: str | None = None, prompt_id: str | None = None,
           features: Mapping[str, Any] | None = None) -> Decision:
    """The decision ``policy`` makes for one live prompt."""
    if getattr(policy, "uses_labels", False) or isinstance(policy, Oracle):
        raise InputError(f"{policy.name} reads the labels (expected answers, scores): it is an upper bound "
                         "for evaluation, not a router that can answer live prompts")
    if isinstance(policy, Always):
        return Decision([policy.model], "one", f"always → {policy.model}")
    if isinstance(policy, TaskMap):
        return _task_map(policy, task)
    if isinstance(policy, Threshold):      # Learned is a Threshold on a predicted probability
        return _threshold(policy, prompt, task, prompt_id, features)
    if isinstance(policy, Random):
        draw = uniform_draw(policy.seed, prompt)
        model = policy.strong if draw < policy.p_strong else policy.weak
        sign = "<" if draw < policy.p_strong else "≥"
        return Decision([model], "one", f"random draw {draw:.3f} {sign} {policy.p_strong:g} → {model}")
    if isinstance(policy, Fallback):
        return Decision(list(policy.models), "fallback", "fallback " + " → ".join(policy.models))
    if isinstance(policy, Cascade):
        kind, test = policy._accept
        return Decision(list(policy.models), "cascade", "cascade " + " → ".join(policy.models),
                        accept=lambda text: _accepted(test, text, policy.accept_at))
    raise InputError(f"{policy.name}: {type(policy).__name__} has no live decision rule")


def _task_map(policy: TaskMap, task: str | None) -> Decision:
    if task is not None and task in policy.mapping:
        model = policy.mapping[task]
        return Decision([model], "one", f"task {task!r} → {model}")
    if policy.default is None:
        known = ", ".join(map(repr, policy.mapping))
        raise InputError(f"{policy.name}: no model for task {task!r} and no default; pass task= one of {known}")
    return Decision([policy.default], "one", f"task {task!r} not mapped → default {policy.default}")


def _threshold(policy: Threshold, prompt: str, task: str | None, prompt_id: str | None,
               features: Mapping[str, Any] | None) -> Decision:
    value, label = _feature_value(policy, prompt, task, prompt_id, features)
    strong = math.isfinite(value) and value >= policy.threshold
    model = policy.strong if strong else policy.weak
    relation = "≥" if strong else "<" if math.isfinite(value) else "unknown,"
    return Decision([model], "one", f"{label} {value:.4g} {relation} {policy.threshold:.4g} → {model}"
                    if math.isfinite(value) else f"{label} unknown → {model}")


def _feature_value(policy: Threshold, prompt: str, task: str | None, prompt_id: str | None,
                   features: Mapping[str, Any] | None) -> tuple[float, str]:
    if hasattr(policy, "predict_proba_prompts"):
        return float(policy.predict_proba_prompts([prompt], [task])[0]), "p(weak not ok)"
    f = policy.feature
    if isinstance(f, str) and f == "prompt_chars":
        return float(len(prompt)), "length"
    row = {"prompt": prompt, "task": task, "prompt_id": prompt_id, **dict(features or {})}
    if isinstance(f, str):
        if f not in row:
            raise InputError(f"{policy.name} routes on the column {f!r}: pass its value, "
                             f"lab.route(..., features={{{f!r}: ...}})")
        return _number(row[f]), f
    if isinstance(f, Mapping) or hasattr(f, "reindex"):
        return _number(dict(f).get(prompt_id, math.nan)), "feature"
    return _number(f(row)), getattr(f, "__name__", "feature")


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _accepted(test: Callable[[str], Any], text: str, at: float) -> bool:
    """The evaluation's acceptance rule (``_policies._truthy``) on one live answer; an answer the
    test raises on is not accepted, as in evaluation."""
    try:
        value = test(text)
    except Exception:
        return False
    return _truthy(value, at)


# --- save / load (JSON, never pickle) -------------------------------------------------------

def to_dict(policy: Policy) -> dict:
    """A JSON-able description of ``policy`` that :func:`from_dict` turns back into it."""
    if hasattr(policy, "predict_proba_prompts"):
        return {"kind": "Learned", **policy.to_dict()}
    body = _rule_dict(policy)
    return {"format": FORMAT, "version": FORMAT_VERSION, "name": policy.name, **body}


def _rule_dict(policy: Policy) -> dict:
    if isinstance(policy, Always):
        return {"kind": "Always", "model": policy.model}
    if isinstance(policy, TaskMap):
        _string_tasks(policy)
        return {"kind": "TaskMap", "mapping": policy.mapping, "default": policy.default}
    if isinstance(policy, Fallback):
        return {"kind": "Fallback", "models": policy.models}
    if isinstance(policy, Random):
        return {"kind": "Random", "p_strong": policy.p_strong, "weak": policy.weak, "strong": policy.strong,
                "seed": policy.seed}
    if isinstance(policy, Threshold):
        if not isinstance(policy.feature, str):
            raise InputError(f"{policy.name}: a threshold on a mapping or function cannot be saved; "
                             "route on 'prompt_chars' or a named column")
        _finite(policy)
        return {"kind": "Threshold", "feature": policy.feature, "threshold": policy.threshold,
                "weak": policy.weak, "strong": policy.strong}
    if isinstance(policy, Cascade):
        spec = policy.accept_spec
        if spec is None:
            raise InputError(f"{policy.name}: its accept= is a Python function or object, which cannot be "
                             "saved as JSON; give accept as a checker spec, e.g. {'kind': 'regex', "
                             "'pattern': '####\\\\s*-?\\\\d+'} or 'json_valid'")
        return {"kind": "Cascade", "models": policy.models, "accept": spec, "accept_at": policy.accept_at}
    raise InputError(f"{policy.name}: {type(policy).__name__} cannot be saved (it is not a deployable router)")


def _string_tasks(policy: TaskMap) -> None:
    bad = [k for k in policy.mapping if not isinstance(k, str)]
    if bad:
        raise InputError(f"{policy.name}: task {bad[0]!r} is not a string; JSON and exported code key tasks "
                         "by text, so name tasks with strings")


def _finite(policy: Threshold) -> None:
    if not math.isfinite(policy.threshold):
        raise InputError(f"{policy.name}: threshold {policy.threshold} is not a finite number (it routes every "
                         f"prompt the same way); use Always({policy.strong!r}) or Always({policy.weak!r}) instead")


def _check_fields(kind: str, data: Mapping[str, Any]) -> None:
    """Field types of a saved rule policy, checked before anything is built from them."""
    def need(key: str, ok: Callable[[Any], bool], what: str) -> None:
        if not ok(data.get(key)):
            raise InputError(f"saved {kind} policy: {key!r} must be {what}, not {data.get(key)!r}")

    text = lambda v: isinstance(v, str) and bool(v)                                     # noqa: E731
    names = lambda v: isinstance(v, list) and bool(v) and all(map(text, v))              # noqa: E731
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)  # noqa: E731
    checks = {
        "Always": [("model", text, "a model name")],
        "TaskMap": [("mapping", lambda v: isinstance(v, dict) and all(text(k) and text(m) for k, m in v.items()),
                     "an object of task → model name")],
        "Fallback": [("models", names, "a list of model names")],
        "Random": [("p_strong", number, "a number"), ("weak", text, "a model name"),
                   ("strong", text, "a model name"), ("seed", lambda v: isinstance(v, int), "an integer")],
        "Threshold": [("feature", text, "a column name"), ("threshold", number, "a finite number"),
                      ("weak", text, "a model name"), ("strong", text, "a model name")],
        "Cascade": [("models", names, "a list of model names"), ("accept_at", number, "a number")],
    }
    for key, ok, what in checks.get(kind, []):
        need(key, ok, what)


def from_dict(data: Mapping[str, Any]) -> Policy:
    """The policy :func:`to_dict` described."""
    if not isinstance(data, Mapping):
        raise InputError("a saved policy is a JSON object")
    kind = data.get("kind")
    if kind == "Learned":
        from ._learned import Learned

        return Learned.from_dict({k: v for k, v in data.items() if k != "kind"})
    if data.get("format") != FORMAT or data.get("version") != FORMAT_VERSION:
        raise InputError(f"not a saved llmlab policy of version {FORMAT_VERSION} (\"format\": {FORMAT!r})")
    name = data.get("name")
    _check_fields(str(kind), data)
    try:
        if kind == "Always":
            return Always(data["model"], name=name)
        if kind == "TaskMap":
            return TaskMap(data["mapping"], default=data.get("default"), name=name)
        if kind == "Fallback":
            return Fallback(data["models"], name=name)
        if kind == "Random":
            return Random(data["p_strong"], weak=data["weak"], strong=data["strong"], seed=data["seed"], name=name)
        if kind == "Threshold":
            policy = Threshold(data["feature"], data["threshold"], weak=data["weak"], strong=data["strong"])
            if name and name != policy.name:      # a chosen name stays; a derived one keeps following the knob
                policy = Threshold(data["feature"], data["threshold"], weak=data["weak"], strong=data["strong"],
                                   name=name)
            return policy
        if kind == "Cascade":
            return Cascade(data["models"], accept=data["accept"], accept_at=data["accept_at"], name=name)
    except (KeyError, TypeError) as exc:
        raise InputError(f"saved {kind} policy is incomplete or malformed ({exc!r})") from None
    raise InputError(f"unknown saved policy kind {kind!r}")


def save(policy: Policy, path: str | Path) -> Path:
    target = Path(path).expanduser()
    target.write_text(json.dumps(to_dict(policy), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return target


def load_policy(path: str | Path) -> Policy:
    """A policy saved with ``policy.save(path)`` (JSON; rule policies and Learned routers)."""
    try:
        data = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read a saved policy from {path}: {exc}") from None
    return from_dict(data)


# --- to_code: the guide's pick_model ----------------------------------------------------------

def to_code(policy: Policy) -> str:
    """Python source of a standalone ``pick_model(prompt, task=None)`` for a rule policy."""
    head = f'"""Router exported by llmlab from policy {policy.name!r}."""\n'
    if isinstance(policy, Always):
        return head + _fn(f"return {policy.model!r}")
    if isinstance(policy, TaskMap):
        _string_tasks(policy)
        table = json.dumps(policy.mapping, indent=4, ensure_ascii=False)
        return head + f"\nMODEL_FOR_TASK = {table}\nDEFAULT = {policy.default!r}\n\n" + _fn(
            "model = MODEL_FOR_TASK.get(task, DEFAULT)\n"
            "if model is None:\n"
            "    raise ValueError(f'no model for task {task!r}')\n"
            "return model")
    if isinstance(policy, Threshold) and not hasattr(policy, "predict_proba_prompts") \
            and policy.feature == "prompt_chars":
        _finite(policy)
        return head + _fn(f"return {policy.strong!r} if len(prompt) >= {policy.threshold!r} else {policy.weak!r}")
    if isinstance(policy, Cascade) and isinstance(policy.accept_spec, Mapping) and \
            policy.accept_spec.get("kind") == "regex" and policy.accept_spec.get("pattern") and \
            set(policy.accept_spec) <= {"kind", "pattern"}:   # flags= would need their own translation
        order = json.dumps(policy.models)
        pattern = policy.accept_spec["pattern"]
        return (head + f"import re\n\nORDER = {order}   # call in order while the answer is rejected\n"
                f"ACCEPT = re.compile({pattern!r}, re.IGNORECASE)\n\n\n"
                "def pick_model(prompt, task=None, previous_answers=()):\n"
                "    \"\"\"The next model to call, or None when the last answer is accepted.\"\"\"\n"
                "    if previous_answers and ACCEPT.search(previous_answers[-1] or ''):\n"
                "        return None\n"
                "    return ORDER[len(previous_answers)] if len(previous_answers) < len(ORDER) else None\n")
    raise InputError(f"{policy.name}: only rule policies export as code (Always, TaskMap, a prompt-length "
                     "Threshold, a Cascade with a regex accept); save this one with policy.save(path)")


def _fn(body: str) -> str:
    indented = "\n".join("    " + line for line in body.splitlines())
    return f"\n\ndef pick_model(prompt, task=None):\n{indented}\n"
