"""The keywords of the ``Lab``'s entry points, defined once.

``compare``/``sweep``/``complete``/``route``, their ``a…`` twins and ``submit_…`` twins take the same
per-call keywords: they are declared here as TypedDicts (``**options: Unpack[CompareKeywords]``,
which static checkers read) and :func:`keyword_parameters` turns them into the explicit,
keyword-only parameters the entry points' signatures show (Shift-Tab in Jupyter, ``help()``),
each with its default from :class:`~llmlab.engine._options.CallOptions`.
"""
from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any, ForwardRef, TypeAlias, TypedDict

from ._options import CallOptions, Timeouts
from ._resilience import RetryPolicy
from ._runner import Event

__all__ = ["CallKeywords", "CompareKeywords", "SweepKeywords", "TimeoutSpec", "ModelParams", "keyword_parameters"]

TimeoutSpec: TypeAlias = "float | Timeouts | Mapping[str, float | Timeouts] | None"
ModelParams: TypeAlias = "Mapping[str, Mapping[str, Any]] | None"  # {model or pattern: {body key: value or None}}


class CallKeywords(TypedDict, total=False):
    """Every per-call keyword of ``complete`` and ``route`` (and of ``compare``/``sweep``)."""

    system: str | None
    # request body: the openai SDK's chat-completions parameters
    temperature: float | None
    max_tokens: int | None
    max_completion_tokens: int | None
    top_p: float | None
    stop: str | list[str] | None
    seed: int | None
    presence_penalty: float | None
    frequency_penalty: float | None
    logit_bias: dict[str, int] | None
    logprobs: bool | None
    top_logprobs: int | None
    response_format: dict[str, Any] | None
    tools: list[dict[str, Any]] | None
    tool_choice: str | dict[str, Any] | None
    parallel_tool_calls: bool | None
    reasoning_effort: str | None
    verbosity: str | None
    modalities: list[str] | None
    audio: dict[str, Any] | None
    prediction: dict[str, Any] | None
    web_search_options: dict[str, Any] | None
    metadata: dict[str, str] | None
    moderation: dict[str, Any] | None
    prompt_cache_options: dict[str, Any] | None
    store: bool | None
    service_tier: str | None
    user: str | None
    safety_identifier: str | None
    prompt_cache_key: str | None
    prompt_cache_retention: str | None
    functions: list[dict[str, Any]] | None
    function_call: str | dict[str, Any] | None
    extra_body: dict[str, Any] | None
    model_params: ModelParams
    # engine
    stream: bool
    cache: bool
    timeout: TimeoutSpec
    retries: int | None
    retry_policy: RetryPolicy | None
    on_event: Callable[[Event], None] | None


class CompareKeywords(CallKeywords, total=False):
    """``compare``'s keywords: the call's, and ``n`` repeats per model."""

    n: int


class SweepKeywords(CompareKeywords, total=False):
    """``sweep``'s keywords: ``compare``'s, and how the sweep runs."""

    concurrency: int | None
    progress: bool
    resume: str | None
    batch: bool | str


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(CallOptions) if f.init}


def keyword_parameters(keywords: type, **defaults: Any) -> list[inspect.Parameter]:
    """The keyword-only parameters of a TypedDict, with CallOptions' defaults (or ``defaults``)."""
    params = []
    for name, annotation in keywords.__annotations__.items():
        shown = annotation.__forward_arg__ if isinstance(annotation, ForwardRef) else annotation
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                                        default=defaults.get(name, _DEFAULTS[name]), annotation=shown))
    return params
