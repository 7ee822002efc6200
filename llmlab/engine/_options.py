"""Per-call options: one validated object, built from ``Lab.compare/sweep/complete`` keywords and
from the ``%%llm`` option line alike.

Request-body parameters are the chat-completions parameters the official ``openai`` SDK names
(``client.chat.completions.create``), each with a type and range checked before anything is
sent. Anything else an endpoint understands (``top_k``, ``min_p``, ``repetition_penalty``…) goes
through an explicit ``extra_body={...}``, as with the SDK itself: a misspelt keyword is an
error with a "did you mean", never a silent body key.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..base._credentials import check_no_credentials, check_no_secret, credential_error
from ..base._errors import InputError
from ..base._text import check_sendable
from ..base._validate import (
    MAX_OPTION_DEPTH,
    check_bool,
    check_int,
    check_number,
    check_text,
    did_you_mean,
    nested_deeper,
    one_line,
    read_finite,
    shown_value,
)
from ._resilience import RetryPolicy

__all__ = ["CallOptions", "MAX_CONCURRENCY", "MAX_RETRIES", "BODY_PARAMS", "ENGINE_PARAMS", "MAX_TOKENS_LIMIT",
           "MAX_REPEATS", "unknown_keyword",
           "check_max_tokens", "param_kind", "Timeouts", "normalise_timeouts", "RESERVED_BODY_KEYS", "CALL_FIELDS",
           "check_model_params", "body_for", "MAX_TIMEOUT_S", "check_retry_policy"]

# Larger than any model's context window: a bigger number is a typo (10**23), not a request.
MAX_TOKENS_LIMIT = 2_000_000
MAX_REPEATS = 1000
MAX_RETRIES = 100
MAX_CONCURRENCY = 10_000
_INT64 = 2**63 - 1
# 11.6 days: longer is no limit anyone means (None is "no limit"), and a socket refuses a connect
# timeout past about 10**9 s (OverflowError: timestamp out of range).
MAX_TIMEOUT_S = 1_000_000

# name -> (kind, lo, hi). Kinds: number, integer, bool, text, texts (a string or a list of
# strings), object (a JSON object), objects (a list of JSON objects), choice (a string or a JSON object).
BODY_PARAMS: dict[str, tuple[str, float | None, float | None]] = {
    "temperature": ("number", 0, 2),
    "max_tokens": ("integer", 1, MAX_TOKENS_LIMIT),
    "max_completion_tokens": ("integer", 1, MAX_TOKENS_LIMIT),
    "top_p": ("number", 0, 1),
    "stop": ("texts", None, None),
    "seed": ("integer", -_INT64 - 1, _INT64),
    "presence_penalty": ("number", -2, 2),
    "frequency_penalty": ("number", -2, 2),
    "logit_bias": ("object", None, None),
    "logprobs": ("bool", None, None),
    "top_logprobs": ("integer", 0, 20),
    "response_format": ("object", None, None),
    "tools": ("objects", None, None),
    "tool_choice": ("choice", None, None),
    "parallel_tool_calls": ("bool", None, None),
    "reasoning_effort": ("text", None, None),
    "verbosity": ("text", None, None),
    "modalities": ("texts", None, None),
    "audio": ("object", None, None),
    "prediction": ("object", None, None),
    "web_search_options": ("object", None, None),
    "metadata": ("object", None, None),
    "store": ("bool", None, None),
    "service_tier": ("text", None, None),
    "user": ("text", None, None),
    "safety_identifier": ("text", None, None),
    "prompt_cache_key": ("text", None, None),
    "prompt_cache_retention": ("text", None, None),
    "prompt_cache_options": ("object", None, None),
    "moderation": ("object", None, None),
    "functions": ("objects", None, None),  # deprecated by OpenAI in favour of tools
    "function_call": ("choice", None, None),  # deprecated by OpenAI in favour of tool_choice
}
# Keys llmlab sets itself or gives another meaning (n = repeats per model, each one recorded),
# and engine arguments a body key of the same name would be mistaken for: never body keys.
RESERVED_BODY_KEYS = frozenset({"model", "messages", "stream", "stream_options", "n", "retries", "retry_policy",
                                "timeout", "concurrency", "progress", "resume", "on_event", "extra_body",
                                "model_params", "batch"})
# What each engine parameter is, for the %%llm line's value typing.
ENGINE_PARAMS: dict[str, str] = {
    "system": "text", "stream": "bool", "cache": "bool", "n": "integer", "timeout": "timeout",
    "retries": "integer", "retry_policy": "object", "on_event": "callable", "extra_body": "object",
    "concurrency": "integer", "progress": "bool", "resume": "text", "model_params": "object", "batch": "batch",
}


def param_kind(name: str) -> str | None:
    """The value kind of a call parameter (``number``, ``bool``…), or None if unknown."""
    if name in BODY_PARAMS:
        return BODY_PARAMS[name][0]
    return ENGINE_PARAMS.get(name)


def unknown_keyword(name: str, known: Any, where: str = "keyword") -> InputError:
    """The error for a keyword llmlab does not know (one line, with a did-you-mean); a name that
    carries a credential gets the api_key_env pointer instead (never "use extra_body")."""
    refusal = credential_error(str(name))
    if refusal is not None:
        return refusal
    return InputError(
        f"unknown {where} {name!r}.{did_you_mean(name, known)} A parameter your endpoint understands "
        f"that the OpenAI API does not name goes in extra_body={{{name!r}: ...}}"
    )


def check_max_tokens(name: str, value: Any) -> int:
    return check_int(name, value, 1, MAX_TOKENS_LIMIT)


@dataclass(frozen=True)
class Timeouts:
    """Seconds; None means no limit. ``first_token`` applies to streams only."""

    __module__ = "llmlab"

    connect: float | None = 10.0
    first_token: float | None = None
    total: float | None = 600.0


def normalise_timeouts(timeout: Any) -> dict[str, Timeouts]:
    """``None`` | seconds (total) | Timeouts | {model or '*': seconds or Timeouts}."""
    if timeout is None:
        return {}
    if isinstance(timeout, dict):
        return {model: _one_timeout(value) for model, value in timeout.items()}
    return {"*": _one_timeout(timeout)}


def _one_timeout(value: Any) -> Timeouts:
    if isinstance(value, Timeouts):
        for name in ("connect", "first_token", "total"):
            limit = getattr(value, name)
            if limit is not None and _seconds(limit) is None:
                raise InputError(f"Timeouts.{name} must be seconds > 0 (at most {MAX_TIMEOUT_S:,}) or None (no "
                                 f"limit), not {shown_value(limit)}")
        return value
    seconds = _seconds(value)
    if seconds is not None:
        return Timeouts(total=seconds)
    raise InputError(f"timeout must be seconds > 0 (at most {MAX_TIMEOUT_S:,}) or llmlab.Timeouts(...), not "
                     f"{shown_value(value)}")


def _seconds(value: Any) -> float | None:
    """A timeout: the finite-number rule (no bool, NaN, inf, 10**5000), more than 0, at most MAX_TIMEOUT_S."""
    seconds = read_finite(value, hi=MAX_TIMEOUT_S)
    return seconds if seconds is not None and seconds > 0 else None


def check_retry_policy(policy: RetryPolicy) -> RetryPolicy:
    """A RetryPolicy's numbers under the rules of the keywords (10**5000 retries would never end,
    an infinite backoff never wakes)."""
    check_int("RetryPolicy.retries", policy.retries, 0, MAX_RETRIES)
    for name in ("base_s", "cap_s", "retry_after_cap_s"):
        value = getattr(policy, name)
        if read_finite(value, lo=0.0, hi=MAX_TIMEOUT_S) is None:
            raise InputError(f"RetryPolicy.{name} must be seconds from 0 to {MAX_TIMEOUT_S:,}, "
                             f"not {shown_value(value)}")
    return policy


@dataclass
class CallOptions:
    """Everything a compare/sweep/complete call can be given besides the prompt and the models.

    Body parameters left at ``None`` are not sent (``max_tokens`` then falls back to the Lab's
    default). Values are checked on construction; a bad one raises :class:`llmlab.InputError`.
    """

    system: str | None = None
    # request body (the openai SDK's chat-completions parameters)
    temperature: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    top_p: float | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, int] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    response_format: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    reasoning_effort: str | None = None
    verbosity: str | None = None
    modalities: list[str] | None = None
    audio: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    prompt_cache_options: dict[str, Any] | None = None
    moderation: dict[str, Any] | None = None
    functions: list[dict[str, Any]] | None = None
    function_call: str | dict[str, Any] | None = None
    extra_body: dict[str, Any] | None = None
    # {model or glob pattern: {body key: value, or None = not sent}}, over the Lab's (body_for)
    model_params: dict[str, dict[str, Any]] | None = None
    # engine
    stream: bool = True
    cache: bool = True
    n: int = 1
    timeout: Any = None
    retries: int | None = None
    retry_policy: RetryPolicy | None = None
    on_event: Callable[[Any], None] | None = None
    concurrency: int | None = None
    progress: bool = False
    resume: str | None = None
    batch: bool | str = False
    _body: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)
    _timeouts: dict[str, Timeouts] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.system is not None:
            check_text("system", self.system)
            check_no_secret(self.system, "system")
        given = {name: getattr(self, name) for name in BODY_PARAMS if getattr(self, name) is not None}
        # A key travels only as the Authorization header built from api_key_env: never in a body. Looked
        # for first (a walk of any depth), so a key in a value refused for another reason (nested too
        # deep, a wrong type) is refused as a key.
        check_no_credentials({**given, **(self.extra_body if isinstance(self.extra_body, Mapping) else {})})
        for name, value in given.items():
            self._body[name] = _check_body_value(name, value)
        self._check_extra_body()
        check_sendable({**self._body, **(self.extra_body or {})}, "a call parameter")
        self.model_params = check_model_params(self.model_params) or None
        self._check_engine()

    def _check_engine(self) -> None:
        for name in ("stream", "cache", "progress"):
            check_bool(name, getattr(self, name))
        check_int("n", self.n, 1, MAX_REPEATS)
        self._timeouts = normalise_timeouts(self.timeout)
        if self.retries is not None:
            check_int("retries", self.retries, 0, MAX_RETRIES)
        if self.retry_policy is not None and not isinstance(self.retry_policy, RetryPolicy):
            raise InputError(f"retry_policy must be an llmlab.RetryPolicy, not {type(self.retry_policy).__name__}")
        if self.retry_policy is not None:
            check_retry_policy(self.retry_policy)
        if self.retries is not None and self.retry_policy is not None:
            raise InputError("pass either retries= or retry_policy=, not both")
        if self.concurrency is not None:
            check_int("concurrency", self.concurrency, 1, MAX_CONCURRENCY)
        if self.resume is not None:
            check_text("resume", self.resume)
        if not (isinstance(self.batch, bool) or self.batch == "auto"):
            raise InputError(f"batch must be True (the Batch API), False (live calls) or 'auto' (the Batch API "
                             f"where the endpoint offers it, else live calls), not {shown_value(self.batch)}")
        if self.on_event is not None and not callable(self.on_event):
            raise InputError(f"on_event must be a function of one Event, not {type(self.on_event).__name__}")

    def _check_extra_body(self) -> None:
        if self.extra_body is None:
            return
        if not isinstance(self.extra_body, Mapping):
            raise InputError(f"extra_body must be a dict of body keys, not {type(self.extra_body).__name__}")
        for key in self.extra_body:
            if not isinstance(key, str) or not key:
                raise InputError(f"extra_body keys must be non-empty strings, not {shown_value(key)}")
            if key in BODY_PARAMS:
                raise InputError(f"{key!r} is a named parameter: pass {key}=... instead of extra_body "
                                 "(it is checked there)")
            if key in RESERVED_BODY_KEYS:
                raise InputError(f"{key!r} cannot be sent through extra_body: llmlab sets it itself"
                                 f"{'; use n= for repeats per model' if key == 'n' else ''}")
        _check_json("extra_body", dict(self.extra_body))

    @property
    def timeouts(self) -> dict[str, Timeouts]:
        """``timeout`` normalised to {model or "*": Timeouts}."""
        return dict(self._timeouts)

    def request_body(self, default_max_tokens: int) -> dict[str, Any]:
        """The JSON body keys to send besides model/messages/stream."""
        body: dict[str, Any] = {}
        # Some models accept only max_completion_tokens; never send both.
        if self.max_tokens is None and self.max_completion_tokens is None:
            body["max_tokens"] = default_max_tokens
        body.update(self._body)
        body.update(self.extra_body or {})
        return body

    def bodies(self, models: list[str], default_max_tokens: int, lab_params: dict[str, dict]) -> dict[str, dict]:
        """Each model's request body: :meth:`request_body`, then :func:`body_for`."""
        call_params = self.model_params or {}
        stray = [m for m in call_params if not _is_pattern(m) and m not in models]
        if stray:  # a typo would otherwise silently send the unchanged body
            raise InputError(f"model_params names {stray[0]!r}, which is not among the models {models}")
        body = self.request_body(default_max_tokens)
        return {m: body_for(m, body, lab_params, call_params) for m in models}

    def given(self) -> dict[str, Any]:
        """The keywords that differ from their defaults (to call a Lab method with)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.init and getattr(self, f.name) != f.default}

    def replace(self, **changes: Any) -> CallOptions:
        return dataclasses.replace(self, **changes)


CALL_FIELDS = frozenset(f.name for f in dataclasses.fields(CallOptions) if f.init)
_TOKEN_LIMITS = ("max_tokens", "max_completion_tokens")


def check_model_params(value: Any) -> dict[str, dict[str, Any]]:
    """``{model or glob pattern: {body key: value, or None to not send it}}``, each value checked
    like the keyword of the same name."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError("model_params must be a dict like {'gpt-5': {'temperature': None}}")
    checked: dict[str, dict[str, Any]] = {}
    for model, params in value.items():
        if not isinstance(model, str) or not model.strip():
            raise InputError("model_params keys must be model names (or patterns like 'o*')")
        if not isinstance(params, Mapping) or not all(isinstance(k, str) and k for k in params):
            raise InputError(f"model_params[{model!r}] must be a dict of body keys to values (None = do not send)")
        for key, param in params.items():
            if key in RESERVED_BODY_KEYS:
                raise InputError(f"model_params[{model!r}]: {key!r} cannot be set per model")
            if param is not None and key in BODY_PARAMS:
                try:
                    _check_body_value(key, param)
                except InputError as exc:
                    raise InputError(f"model_params[{model!r}]: {exc}") from None
        _check_json(f"model_params[{model!r}]", dict(params))
        check_no_credentials(dict(params))
        check_sendable({model: dict(params)}, "model_params")
        checked[model] = dict(params)
    return checked


def _is_pattern(name: str) -> bool:
    return any(ch in name for ch in "*?[")


def body_for(model: str, body: dict[str, Any], *layers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The one merge rule: exactly what ``model`` is sent (and what its row's ``params`` shows).

    The call's body, then each layer (the Lab's ``model_params``, then the call's) in order: its
    matching patterns in their order, then the model's exact name. A value of None removes the
    key; setting one of ``max_tokens``/``max_completion_tokens`` removes the other (never both).
    """
    merged = dict(body)
    for layer in layers:
        matches = [p for name, p in layer.items() if _is_pattern(name) and fnmatch.fnmatchcase(model, name)]
        if model in layer:
            matches.append(layer[model])
        for params in matches:
            for key, value in params.items():
                if key in _TOKEN_LIMITS and value is not None:
                    for other in _TOKEN_LIMITS:
                        if other not in params:
                            merged.pop(other, None)
                if value is None:
                    merged.pop(key, None)
                else:
                    merged[key] = value
    return merged


def _check_body_value(name: str, value: Any) -> Any:
    kind, lo, hi = BODY_PARAMS[name]
    if kind == "number":
        return check_number(name, value, lo or 0, hi or 0)
    if kind == "integer":
        return check_int(name, value, int(lo or 0), int(hi or 0))
    if kind == "bool":
        return check_bool(name, value)
    if kind == "text":
        return check_text(name, value)
    if kind == "texts":
        if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return value
        raise InputError(f"{name} must be a string or a list of strings, not {shown_value(value)}")
    expected: dict[str, tuple[type, ...]] = {"object": (dict,), "objects": (list,), "choice": (str, dict)}
    if not isinstance(value, expected[kind]):
        what = {"object": "a dict", "objects": "a list of dicts", "choice": "a string or a dict"}[kind]
        raise InputError(f"{name} must be {what} (JSON), not {type(value).__name__}")
    if kind == "objects":
        _check_objects(name, value)
    return _check_json(name, value)


def _check_objects(name: str, items: Any) -> None:
    """tools/functions: each item an object ({"type": "function", "function": {...}}), never a bare
    value (the endpoint refuses it, or reads it its own way)."""
    for number, item in enumerate(items):
        if not isinstance(item, dict):
            raise InputError(f"{name}[{number}] must be a dict (a JSON object such as {{'type': 'function', "
                             f"'function': {{...}}}}), not {shown_value(item)}")


def _check_json(name: str, value: Any) -> Any:
    if nested_deeper(value, MAX_OPTION_DEPTH):  # json.dumps and the checks after it recurse
        raise InputError(f"{name}: JSON nested deeper than {MAX_OPTION_DEPTH} levels; no request option needs that")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        # json.dumps's own words for an integer str() refuses name a Python setting, not the value
        digits = sys.get_int_max_str_digits()
        why = f"an integer of more than {digits:,} digits" if "digits" in str(exc) else one_line(exc)
        raise InputError(f"{name} must hold JSON values (strings, numbers, lists, dicts): {why}") from None
    return value
