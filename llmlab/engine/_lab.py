"""``Lab``: the one engine behind the Python API, the magics, the widget and the CLI."""
from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sys
import uuid
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, Unpack, cast

import pandas as pd

from ..base._advice import advice
from ..base._config import PLACEHOLDER_KEY, Endpoint, LocalURL, default_db, read_key, resolve_endpoint
from ..base._credentials import check_no_secret, remember_keys
from ..base._display import clean_text
from ..base._errors import (
    INSTALL_LOCAL,
    ConfigError,
    EndpointError,
    InputError,
    LLMLabError,
    LocalServerError,
    StoreError,
)
from ..base._frames import shown
from ..base._pricing import PriceTable
from ..base._record import answer_hash, prompt_id_for
from ..base._redact import Redactor, url_secrets, without_userinfo
from ..base._text import check_sendable, check_unicode, repair
from ..base._tokens import TokenCounter
from ..base._validate import check_bool, check_int, check_shown_name, one_line, read_finite, shown_value
from ..base._warnings import collecting, emit
from ..local._server import embedded_url, is_embedded
from ..store._base import Store
from ..store._export import log_filters
from ..store._open import open_store, parse_db
from ._batch import BatchSession, pending_requests
from ._call import list_models, new_client, unreachable
from ._jobs import PromptSource, check_models, last_user_text, make_jobs, to_messages
from ._keywords import CallKeywords, CompareKeywords, ModelParams, SweepKeywords, TimeoutSpec, keyword_parameters
from ._loop import LoopThread, off_loop
from ._options import (
    MAX_CONCURRENCY,
    MAX_RETRIES,
    CallOptions,
    check_max_tokens,
    check_model_params,
    check_retry_policy,
    normalise_timeouts,
    unknown_keyword,
)
from ._resilience import RateLimiter, RetryPolicy
from ._results import Result, records_frame
from ._runner import Job, RunContext, Runner, batches

if TYPE_CHECKING:
    from ..local import LocalServer

__all__ = ["Lab"]

Prompt: TypeAlias = "str | Sequence[Mapping[str, Any]]"  # text, or OpenAI-style messages
# texts, a DataFrame with prompt/messages columns, a .parquet/.csv/.jsonl path, or any iterator (streamed)
Prompts: TypeAlias = "Sequence[str] | pd.DataFrame | str | os.PathLike | Iterable[Any]"
Models: TypeAlias = "Sequence[str] | str"  # a list, or one comma-separated string

_F = TypeVar("_F", bound=Callable[..., Any])

_OPTIONS_DOC = """
Request body (the chat-completions parameters of the OpenAI API, checked before anything is
sent; ``None`` means "not sent", so the endpoint's default applies):
    system: a system message put first (unless the messages already start with one).
    temperature: 0–2. top_p: 0–1. seed: an integer, for reproducible sampling where supported.
    max_tokens: 1–2,000,000; default the Lab's ``max_tokens`` (always sent: gateways' defaults
        differ per model). max_completion_tokens: the same limit, for models that accept only
        this name; when given, max_tokens is not sent.
    stop: a string or a list of strings. presence_penalty, frequency_penalty: -2–2.
    logit_bias: {token_id: bias}. logprobs: bool. top_logprobs: 0–20 (each row keeps the
        answer's mean and minimum token log-probability, ``logprob_mean``/``logprob_min``, NaN
        when the endpoint sends none; llama-cpp-python's server needs ``top_logprobs`` too).
    response_format: e.g. {"type": "json_object"}. tools, tool_choice, parallel_tool_calls:
        function calling (answers are the tool calls as JSON). functions, function_call: their
        deprecated predecessors.
    reasoning_effort, verbosity, modalities, audio, prediction, web_search_options, metadata,
    store, service_tier, user, safety_identifier, prompt_cache_key, prompt_cache_options,
    prompt_cache_retention, moderation: forwarded as the OpenAI API defines them.
    extra_body: a dict of any other body keys your endpoint understands ({"top_k": 40}); an
        unknown keyword is an InputError with a "did you mean", never sent.
    model_params: per-model changes to the body, over the Lab's model_params:
        {"gpt-5": {"temperature": None, "max_completion_tokens": 2000}} (None = not sent; keys
        may be patterns like "o*"). Each row's params is exactly the body its model was sent.
Engine:
    stream: stream the answer (TTFT is measured on streams only). Default True.
    cache: answer identical earlier requests from the response cache. Default True.
    n: repeats per model (1–1000), each its own request and row (not the API's n choices).
    timeout: seconds (total), llmlab.Timeouts(connect=, first_token=, total=), or a dict
        {model or "*": either}; merged over the Lab's timeout.
    retries: extra attempts per model for 429/5xx/timeouts (0–100); or retry_policy: a
        llmlab.RetryPolicy. Default: the Lab's.
    on_event: called with each llmlab.Event (start, delta, done, error), in order, on a thread of the run's own.
Every attempt is recorded in the log before the result is returned.
"""
_COMPARE_DOC = """One prompt across ``models`` (each ``n`` times), concurrently.

    prompt: the text, or a list of {"role", "content"} messages.
    models: model names (a list, or one comma-separated string), each asked independently.
"""
_SWEEP_DOC = """Every prompt × every model.

    prompts: a list of strings, a DataFrame with a ``prompt`` (or ``messages``) column and
        optional ``prompt_id``, ``task``, ``expected`` columns carried into every row, a
        .parquet/.csv/.jsonl file with those columns, or any iterator. Streamed: prompts are read
        as concurrency slots free up and rows are written as they finish, so memory does not grow
        with the sweep (an iterator is checked as it is read, everything else before sending).
    models: model names (a list, or one comma-separated string).
    concurrency: calls in flight at once (default the Lab's). progress: a tqdm bar.
    resume: a run id (``lab.last_run_id``): run only the (prompt, model) pairs without an ok row.
        One process runs a run at a time: while another (or another call of this one) sweeps,
        resumes or collects it, ``llmlab.RunInUse`` at once, before anything is sent.
    batch: True sends the requests through the endpoint's Batch API (``/v1/files`` +
        ``/v1/batches``: half the live price at OpenAI, Anthropic and Google, answered within 24 h),
        one batch per model and part of at most 50,000 requests, and waits for them with a
        progress bar; rows are ordinary rows with ``batch_id`` set and ``latency_s`` the batch's
        wall time. Every batch is in the log before it is waited on: after an interrupt or a
        restart, ``lab.batch_resume(run_id)`` (or this sweep with ``resume=run_id``) collects
        them, never sending a request twice. "auto": the Batch API where the endpoint offers
        it, live calls where it does not (an endpoint without it and ``batch=True``: an
        EndpointError before anything is sent).
"""
_COMPLETE_DOC = """One answer from a fallback chain: ``models[0]``, then the next on its final failure.

    prompt: the text, or a list of {"role", "content"} messages.
    models: the chain, first choice first. Every attempt is a row of the result.
"""
_ROUTE_DOC = """Answer ``prompt`` with the model(s) a routing ``policy`` picks for it.

    prompt: the text, or a list of {"role", "content"} messages.
    policy: an ``llmlab.routing`` policy (Always, TaskMap, Threshold, Learned, Random, Fallback,
        Cascade — e.g. one chosen with ``routing.evaluate``/``claim`` or ``routing.load_policy``).
        A Cascade calls its models in order and stops at the first answer its ``accept`` rule
        passes; a Fallback moves on only when a model fails. The Oracle cannot answer live.
    task: the prompt's task, for policies that route on it (TaskMap, Learned).
    features: prompt-level values a Threshold routes on (``{"difficulty": 0.8}``).
Every row records ``policy`` (the policy's name) and ``route_reason`` (e.g. "length 412 ≥ 250 → gpt-4").
"""
_BATCH_SUBMIT_DOC = """Submit a sweep's requests as Batch API batches and return its run id at once,
without waiting (``lab.batch_resume(run_id)`` waits for them and stores the rows, in this
process or a later one; ``lab.batch_status(run_id)`` says where they are). The sweep:

"""
_SUBMIT_DOC = """Start the call without blocking; returns a ``concurrent.futures.Future[Result]``.
``future.cancel()`` stops in-flight calls (recorded as ``Cancelled``; finished ones stay in the
log). Bad arguments raise here, before anything is submitted. The call:

"""


def _judged(decision: Any, frame: pd.DataFrame) -> tuple[bool, str]:
    """Whether a cascade keeps one model's answer(s) — each sample's final attempt, sample 0 first —
    and if not, why."""
    final = frame.sort_values(["repeat", "id"]).groupby("repeat", sort=True).tail(1)
    if decision.verdict is not None:
        return decision.verdict(final.to_dict("records"))
    answer = final[final["status"] == "ok"]
    if not len(answer):
        return False, "failed"
    return (True, "") if decision.accept(str(answer["response_text"].iloc[-1])) else \
        (False, "rejected by the accept rule")


def _first_options(options: CallOptions, decision: Any, policy_name: str) -> CallOptions:
    """The options of a cascade's first calls: its samples, and what the policy reads of them
    (``decision.options``, e.g. log-probabilities for a verifier fitted with them) unless the
    caller set that option — then a warning says what the policy loses."""
    changes: dict[str, Any] = {"n": decision.samples} if decision.samples > 1 else {}
    for key, value in decision.options.items():
        given = getattr(options, key)
        if given is None:
            changes[key] = value
        elif given != value and key == "logprobs":
            emit(RuntimeWarning(f"{policy_name} was fitted on answers with log-probabilities: with "
                                f"logprobs={given!r} its logprob features are unknown (filled with the "
                                "training mean); leave logprobs unset and it asks for them"))
    return options.replace(**changes) if changes else options


def _served_row(answers: pd.DataFrame) -> int | None:
    """The row id of the answer a route served: the final attempt of its last model's first sample
    (None when that attempt failed: nothing was served)."""
    final = answers.sort_values(["repeat", "id"]).groupby("repeat", sort=True).tail(1)
    if not len(final) or final["status"].iloc[0] != "ok":
        return None
    return int(final["id"].iloc[0])


def _entry(doc: str, keywords: type, **defaults: Any) -> Callable[[_F], _F]:
    """A public entry point: its ``**options`` shown as the explicit keyword-only parameters of
    ``keywords`` (a TypedDict of ``_keywords``; ``defaults`` where it differs from CallOptions'),
    a docstring with every parameter, and unknown keywords refused with a did-you-mean (Python's
    own TypeError names no alternative)."""

    def decorate(fn: _F) -> _F:
        import inspect

        own = [p for p in inspect.signature(fn).parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
        extra = keyword_parameters(keywords, **defaults)
        signature = inspect.signature(fn).replace(parameters=own + extra)
        names = frozenset(signature.parameters)
        filled = {p.name: p.default for p in extra}
        positional = [p.name for p in own if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]

        def check(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            if len(args) > len(positional):
                raise InputError(f"{fn.__name__}() takes the {positional[-1]} positionally and everything else "
                                 "by keyword, e.g. models=['model-a', 'model-b']")
            unknown = kwargs.keys() - names
            if unknown:
                raise unknown_keyword(sorted(unknown)[0], sorted(names - {"self"}))

        @functools.wraps(fn)
        def checked(*args: Any, **kwargs: Any) -> Any:
            check(args, kwargs)
            return fn(*args, **{**filled, **kwargs})

        @functools.wraps(fn)
        async def achecked(*args: Any, **kwargs: Any) -> Any:
            check(args, kwargs)
            return await fn(*args, **{**filled, **kwargs})

        wrapper = achecked if inspect.iscoroutinefunction(fn) else checked
        wrapper.__doc__ = doc + _OPTIONS_DOC
        wrapper.__signature__ = signature  # type: ignore[union-attr]  # what Shift-Tab and help() show
        return cast(_F, wrapper)

    return decorate


def _options(keywords: Mapping[str, Any]) -> CallOptions:
    """The CallOptions of an entry point's keywords (every one given: ``_entry`` fills defaults)."""
    return CallOptions(**keywords)


def _single_prompt_row(prompt: Any, system: str | None) -> dict:
    messages = to_messages(prompt, system)
    return {"messages": messages, "prompt": last_user_text(messages), "prompt_id": prompt_id_for(messages),
            "task": None, "expected": None}


class Lab:
    """Send prompts to many models behind one OpenAI-compatible endpoint; measure, cost and
    log every attempt.

    >>> lab = Lab(base_url="http://localhost:4000/v1", api_key_env="LITELLM_KEY")
    >>> res = lab.compare("Explain TCP handshake in one paragraph.", models=["a", "b"])
    >>> res.summary()
    """

    __module__ = "llmlab"

    def __init__(self, *, base_url: str | None = None, api_key_env: str | None = None, db: Any = None,
                 prices: Any = None, concurrency: int = 8, max_tokens: int = 512, retries: int | None = None,
                 timeout: TimeoutSpec = None, rpm: float | None = None, tpm: float | None = None,
                 quiet: bool = False, retry_policy: RetryPolicy | None = None,
                 model_params: ModelParams = None) -> None:
        """
        base_url: the OpenAI-compatible endpoint (default $LLMLAB_BASE_URL, $OPENAI_BASE_URL, else
            the embedded local endpoint, started on first use).
        api_key_env: the NAME of the variable holding the key (default LLMLAB_API_KEY, OPENAI_API_KEY,
            from the endpoint's own source: your environment for your endpoint, ./.env for one it chose).
        db: the run log, a path, ":memory:" or a postgresql:// URL (default $LLMLAB_DB, else
            $LLMLAB_HOME/runs.sqlite); one a project file (./.env) chose is never a cache source.
        prices: a dict, a JSON file (LiteLLM's format works) or a PriceTable over the bundled sheet.
        concurrency: calls in flight at once. max_tokens: sent with every call unless overridden.
        retries / retry_policy: extra attempts per model (default RetryPolicy(): 3).
        timeout: seconds, llmlab.Timeouts(...) or {model or "*": either}, for every call.
        rpm, tpm: requests / tokens per minute shared by every call of this Lab.
        quiet: no messages from the embedded endpoint's start-up.
        model_params: per-model changes to the request body, e.g. {"gpt-5": {"temperature": None,
            "max_completion_tokens": 2000}} (None = do not send; keys may be patterns like "o*").
        """
        self._endpoint_args = (base_url, api_key_env)
        # The key values are known secrets before any argument is checked or echoed (F7/F8)
        remember_keys(names=[api_key_env] if isinstance(api_key_env, str) else [])
        self._endpoint: Endpoint | None = _keyless_if_embedded(resolve_endpoint(base_url, api_key_env), base_url)
        remember_keys(self._endpoint)
        if self._endpoint.base_url is None:
            self._endpoint = None  # the embedded endpoint starts on first use, not here
        self.concurrency = check_int("concurrency", concurrency, 1, MAX_CONCURRENCY)
        self.max_tokens = check_max_tokens("max_tokens", max_tokens)
        self.prices = PriceTable.load(prices)
        self.timeouts = normalise_timeouts(timeout)
        self.retry = _retry_policy(retries, retry_policy) or RetryPolicy()
        self.last_run_id: str | None = None
        self.limiter = RateLimiter(_optional_rate("rpm", rpm), _optional_rate("tpm", tpm))
        self.quiet = check_bool("quiet", quiet)
        self.model_params = check_model_params(model_params)
        self.store = _open_store(db)
        self.counter = TokenCounter()
        self._loop_thread = LoopThread()
        self._own_client: tuple[Any, Redactor] | None = None  # (AsyncOpenAI, Redactor) on the Lab's own loop
        self._local_server: LocalServer | None = None
        self._closed = False
        self._key_read = False

    # -- endpoint -----------------------------------------------------------------------------
    @property
    def endpoint(self) -> Endpoint:
        if self._endpoint is None:
            self._endpoint = Endpoint(LocalURL(self._start_local()), None)  # never gets a key
        return self._endpoint

    @property
    def base_url(self) -> str:
        """The endpoint's URL as stored and shown (without any ``user:password@``)."""
        url = self.endpoint.public_url
        if url is None:  # unreachable: ``endpoint`` starts the local server when none is configured
            raise ConfigError("no endpoint configured: pass Lab(base_url=...) or set LLMLAB_BASE_URL")
        return url

    @property
    def api_key_env(self) -> str | None:
        return self.endpoint.api_key_env if self._endpoint else self._endpoint_args[1]

    def _start_local(self) -> str:
        try:
            from ..local import ensure_running

            server = ensure_running(quiet=self.quiet)
        except (ImportError, LocalServerError) as exc:
            raise ConfigError(
                "no endpoint configured: pass Lab(base_url=...) or set LLMLAB_BASE_URL (or OPENAI_BASE_URL); "
                f"the embedded local endpoint is unavailable ({one_line(exc)}); install it with {INSTALL_LOCAL}"
            ) from exc
        self._local_server = server
        return server.base_url

    @contextlib.asynccontextmanager
    async def _session(self):
        """A RunContext for the running loop. The Lab's own loop keeps one client (connections
        are reused across calls); on a caller's loop (``await lab.acompare``) the client lives
        for the call, since that loop may close before the Lab does."""
        own = self._loop_thread.owns(asyncio.get_running_loop())
        if own and self._own_client is not None:
            yield self._run_context(*self._own_client, endpoint=await self._run_endpoint())
            return
        client, redact = self._new_client()
        if own:
            self._own_client = (client, redact)
            yield self._run_context(client, redact, endpoint=await self._run_endpoint())
            return
        try:
            yield self._run_context(client, redact, endpoint=await self._run_endpoint())
        finally:
            await client.close()

    async def _run_endpoint(self) -> str:
        """The endpoint as a run records it (``base_url``). For the embedded endpoint it also
        carries each model's identity (file digest, settings), which the response cache keys on
        instead of the port that changes every session; asked of the server at every run, so a
        server restarted with other files on the same port is never answered from the old ones."""
        if not isinstance(self.endpoint.base_url, LocalURL):
            return self.base_url
        return await asyncio.to_thread(embedded_url, self.base_url)

    def _read_key(self) -> None:
        """Read the key once before the first call's arguments are checked: from then on it is a
        known secret, so a model name holding it is refused and no view shows it."""
        if not self._key_read and self._endpoint is not None:
            read_key(self._endpoint)
            self._key_read = True

    def _new_client(self):
        key = read_key(self.endpoint)
        secrets = [k for k in (key,) if k != PLACEHOLDER_KEY] + url_secrets(self.endpoint.base_url)
        # The requests go to the URL as given (a token in its path or query is needed there), minus
        # user:password@ (the key travels in its header); rows and views keep ``base_url``, masked.
        return new_client(without_userinfo(self.endpoint.base_url or self.base_url), key), Redactor(secrets)

    def _run_context(self, client, redact: Redactor, *, endpoint: str) -> RunContext:
        return RunContext(client=client, store=self.store, prices=self.prices, counter=self.counter,
                          limiter=self.limiter, retry=self.retry, redact=redact,
                          endpoint=endpoint, api_key_env=self.endpoint.api_key_env)

    # -- async API (every keyword is documented in _OPTIONS_DOC) ---------------------------------
    @_entry(_COMPARE_DOC, CompareKeywords)
    async def acompare(self, prompt: Prompt, *, models: Models,
                       **options: Unpack[CompareKeywords]) -> Result:
        return await self._acompare(prompt, models, _options(options))

    @_entry(_SWEEP_DOC, SweepKeywords, progress=True)
    async def asweep(self, prompts: Prompts, *, models: Models,
                     **options: Unpack[SweepKeywords]) -> Result:
        return await self._asweep(prompts, models, _options(options))

    @_entry(_COMPLETE_DOC, CallKeywords)
    async def acomplete(self, prompt: Prompt, *, models: Models,
                        **options: Unpack[CallKeywords]) -> Result:
        return await self._acomplete(prompt, models, _options(options))

    @_entry(_ROUTE_DOC, CallKeywords)
    async def aroute(self, prompt: Prompt, *, policy: Any, task: str | None = None,
                     features: Mapping[str, Any] | None = None, **options: Unpack[CallKeywords]) -> Result:
        return await self._aroute(prompt, policy, task, features, _options(options))

    async def _acompare(self, prompt: Prompt, models: Models, options: CallOptions) -> Result:
        return await self._arun([_single_prompt_row(prompt, options.system)], models, options)

    async def _asweep(self, prompts: Prompts, models: Models, options: CallOptions) -> Result:
        rows = PromptSource(prompts, options.system)
        rows.check()
        return await self._arun(rows, models, options)

    async def _acomplete(self, prompt: Prompt, models: Models, options: CallOptions) -> Result:
        return await self._arun([_single_prompt_row(prompt, options.system)], models, options, chain=True)

    async def _aroute(self, prompt: Prompt, policy: Any, task: str | None, features: Mapping[str, Any] | None,
                      options: CallOptions) -> Result:
        from ..routing import Policy

        if not isinstance(policy, Policy):
            raise InputError(f"policy must be an llmlab.routing policy (e.g. routing.TaskMap(...) or "
                             f"routing.load_policy(path)), not {type(policy).__name__}")
        if features is not None and not isinstance(features, Mapping):
            raise InputError(f"features must be a dict of prompt-level values, not {type(features).__name__}")
        row = _single_prompt_row(prompt, options.system)
        row["task"] = task
        self._know_key()  # task and the policy's name label every row the route stores
        for name, value in (("task", task), ("the policy's name", policy.name)):
            if isinstance(value, str):
                check_shown_name(value, name)
        # a policy may run the user's code (a feature function): off the loop, under _loop's one rule
        decision = await off_loop(functools.partial(policy.decide, row["prompt"], task=task, prompt_id=row["prompt_id"],
                                                    features=features))
        self._read_key()
        check_models(decision.models)     # every model of a cascade is valid before the first is paid for
        run_id = _new_run_id()
        if decision.mode != "cascade":
            row.update(policy=policy.name, route_reason=decision.reason)
            result = await self._arun([row], decision.models, options, chain=decision.mode == "fallback",
                                      run_id=run_id)
            return result.serving(_served_row(result.df))
        return await self._acascade(row, policy.name, decision, options, run_id)

    async def _acascade(self, row: dict, policy_name: str, decision: Any, options: CallOptions,
                        run_id: str) -> Result:
        """Call the cascade's models in order until one's answer is accepted: ``decision.accept`` on
        its text, or ``decision.verdict`` on the rows of the first model's ``decision.samples``
        answers (asked at once, each recorded and billed)."""
        models, samples = decision.models, decision.samples
        reason = f"{decision.reason}: first {models[0]}" + (f" ×{samples}" if samples > 1 else "")
        first = _first_options(options, decision, policy_name)
        for k, model in enumerate(models):
            step = {**row, "policy": policy_name, "route_reason": reason}
            asked = first if k == 0 else options
            first_seq = 0 if k == 0 else samples + k - 1       # the run's rows in the order they were asked
            frame = (await self._arun([step], [model], asked, run_id=run_id, first_seq=first_seq)).df
            answers = frame[frame["requested_model"] == model]
            if k == len(models) - 1:
                break
            # judged on a worker thread: the loop keeps timing the Lab's other calls meanwhile
            accepted, why = await off_loop(_judged, decision, answers)
            if accepted:
                break
            reason = f"{model}'s answer {why} → {models[k + 1]}"
        return Result.from_store(self.store, run_id, models[:k + 1]).serving(_served_row(answers))

    async def _arun(self, rows: list[dict] | PromptSource, models: Models, options: CallOptions,
                    chain: bool = False, run_id: str | None = None, first_seq: int = 0) -> Result:
        self._check_open()
        if options.resume is not None:
            _check_run_id("resume", options.resume)
        self._read_key()
        models = check_models(models)
        if options.batch and not chain:
            if await self._batch_offered(options.batch == "auto"):
                return await self._abatch(rows, models, options, run_id, first_seq)
            options = options.replace(batch=False)  # batch="auto" on an endpoint without it: live calls
        bodies = options.bodies(models, self.max_tokens, self.model_params)
        timeouts = {**self.timeouts, **options.timeouts}
        retry = RetryPolicy(retries=options.retries) if options.retries is not None else options.retry_policy
        jobs = make_jobs(rows, models, bodies, options.stream, options.cache, options.n, timeouts, chain=chain,
                         retry=retry, first_seq=first_seq)
        n_rows = len(rows) if isinstance(rows, list) else rows.count
        total = None if n_rows is None else n_rows * (1 if chain else len(models)) * options.n
        run_id = self.last_run_id = run_id or options.resume or _new_run_id()
        bar = _progress_bar(total, options.progress)
        if options.resume is not None:
            jobs = self._unfinished(jobs, options.resume, bar)
        concurrency = options.concurrency or self.concurrency
        # a sweep's run may be resumed (or still be running elsewhere): one process runs it at a time
        claim = isinstance(rows, PromptSource) or options.resume is not None
        return await self._in_session(run_id, models, options, bar,
                                      lambda context, runner: runner.run(jobs, concurrency), claim=claim)

    async def _in_session(self, run_id: str, models: list[str], options: CallOptions, bar: Any,
                          work: Callable[[RunContext, Runner], Coroutine[Any, Any, Any]],
                          claim: bool = True) -> Result:
        """Run ``work`` with one session and one Runner for the run (live or batch): the bar is
        closed and the warnings raised in the runner's tasks are shown at the caller's line, however
        it ends; a log that failed to store the answers is an error; the Result reads the log.
        ``claim``: hold the run's claim throughout (``store._claims``: another process running the
        same run is refused before anything is sent)."""
        caught: list[Warning] = []
        try:
            async with self._claimed(run_id, claim), self._session() as context:
                runner = Runner(context, run_id, options.on_event, bar)
                await collecting(work(context, runner), caught)
        except asyncio.CancelledError:
            if self._closed:  # lab.close() from another thread: the run's caller gets words, not a bare cancel
                raise _closed_mid_run(run_id, bool(options.batch)) from None
            raise
        finally:
            if bar is not None:
                bar.close()
            for warning in caught:
                emit(warning)
        if runner.store_error is not None:
            raise _not_logged(runner, run_id, models)
        return Result.from_store(self.store, run_id, models)

    @contextlib.asynccontextmanager
    async def _claimed(self, run_id: str, claim: bool = True):
        """The run's claim (``Store.claim_run``) while the block runs. Taken on a worker thread (a
        PostgreSQL claim opens a connection: the loop keeps timing this Lab's other calls); a
        claim whose taking was interrupted is let go as soon as it is taken."""
        if not claim:
            yield
            return
        held = self.store.claim_run(run_id)
        taking = asyncio.ensure_future(asyncio.to_thread(held.__enter__))
        try:
            await asyncio.shield(taking)
        except asyncio.CancelledError:
            taking.add_done_callback(lambda done: done.cancelled() or done.exception() is not None
                                     or held.__exit__(None, None, None))
            raise
        try:
            yield
        finally:
            held.__exit__(None, None, None)

    # -- the Batch API (llmlab.engine._batch) -----------------------------------------------
    async def _batch_offered(self, auto: bool) -> bool:
        async with self._session() as context:
            try:
                await BatchSession(context, "").check_support()
            except EndpointError:
                if not auto:
                    raise
                return False
        return True

    async def _abatch(self, rows: list[dict] | PromptSource, models: list[str], options: CallOptions,
                      run_id: str | None, first_seq: int, wait: bool = True) -> Result:
        """Plan, submit and (``wait``) collect a sweep's requests as batches: see ``_batch``."""
        bodies = options.bodies(models, self.max_tokens, self.model_params)
        jobs: Iterable[Job] = make_jobs(rows, models, bodies, False, options.cache, options.n,
                                        {**self.timeouts, **options.timeouts}, first_seq=first_seq)
        n_rows = len(rows) if isinstance(rows, list) else rows.count
        run_id = self.last_run_id = run_id or options.resume or _new_run_id()
        bar = _progress_bar(None if n_rows is None else n_rows * len(models) * options.n, options.progress)

        async def submit(context: RunContext, runner: Runner) -> None:
            session = BatchSession(context, run_id, bar, runner.emit_row)
            todo = jobs
            if options.resume is not None:
                todo = self._unfinished(iter(jobs), run_id, bar, skip=pending_requests(self.store, run_id))
            await self._submit(runner, session, todo, options.cache, wait)

        return await self._in_session(run_id, models, options, bar, submit)

    @staticmethod
    async def _submit(runner: Runner, session: BatchSession, jobs: Iterable[Job], cache: bool, wait: bool) -> None:
        try:
            for chunk in batches(jobs, 1000):
                await session.plan(await runner.replay_cached(chunk) if cache else chunk)
            await session.send_open()
        finally:
            session.discard_open()  # cut short: what was not sent stays unsent (and a resume drops it)
        if wait:
            await session.finish()

    def _batch_parts(self, run_id: str) -> list[dict]:
        _check_run_id("run_id", run_id)
        parts = self.store.batch_parts(run_id)
        if not parts:
            raise InputError(f"run {run_id!r} has no batches in {self.store.path} (lab.batch_status() lists them)")
        sent_to = {p["endpoint"] for p in parts} - {self.base_url}
        if sent_to:
            raise InputError(f"run {run_id!r}'s batches were sent to {sorted(sent_to)[0]}; collect them with a "
                             f"Lab(base_url={sorted(sent_to)[0]!r}) (and the key that sent them)")
        return parts

    async def _abatch_finish(self, run_id: str, progress: bool, on_event: Any, cancel: bool) -> Result:
        parts = self._batch_parts(run_id)
        bar = _progress_bar(sum(p["requests"] for p in parts), progress)
        caught: list[Warning] = []
        try:
            async with self._claimed(run_id), self._session() as context:
                runner = Runner(context, run_id, on_event, bar)
                session = BatchSession(context, run_id, bar, runner.emit_row)
                if cancel:
                    await session.cancel()
                await collecting(session.finish(), caught)
        finally:
            if bar is not None:
                bar.close()
            for warning in caught:
                emit(warning)
        return Result.from_store(self.store, run_id, list(dict.fromkeys(p["model"] for p in parts)))

    async def _abatch_status(self, run_id: str | None) -> pd.DataFrame:
        runs = [run_id] if run_id is not None else list(dict.fromkeys(p["run_id"] for p in self.store.batch_parts()))
        rows: list[dict] = []
        async with self._session() as context:
            for run in runs:
                if run_id is not None:
                    self._batch_parts(run)
                rows += await BatchSession(context, run).status()
        columns = ["run_id", "model", "part", "requests", "batch_id", "status", "completed", "failed", "created_at",
                   "stored_at", "endpoint"]
        return shown(pd.DataFrame(rows, columns=columns))

    def _check_open(self) -> None:
        if self._closed:
            raise InputError("this Lab is closed (lab.close() was called); create a new Lab(...)")

    def _unfinished(self, jobs: Iterator[Job], run_id: str, bar,
                    skip: set[tuple[str, str, int]] | None = None) -> Iterator[Job]:
        """The jobs of ``run_id`` with no ok row yet (nor, ``skip``, a batch still answering them),
        checked against the log a batch at a time."""
        if not self.store.has_run(run_id) and not skip and not self.store.batch_parts(run_id):
            raise InputError(f"resume={run_id!r}: no run with that id in {self.store.path}")
        for batch in batches(jobs, 1000):
            done = self.store.done(run_id, [(j.prompt_id, j.models[0], j.repeat) for j in batch]) | (skip or set())
            todo = [j for j in batch if (j.prompt_id, j.models[0], j.repeat) not in done]
            if bar is not None and len(todo) < len(batch):
                bar.update(len(batch) - len(todo))
            yield from todo

    # -- sync API (same keywords as the async twins) ---------------------------------------------
    @_entry(_COMPARE_DOC, CompareKeywords)
    def compare(self, prompt: Prompt, *, models: Models,
                **options: Unpack[CompareKeywords]) -> Result:
        return self._loop_thread.run(self._acompare(prompt, models, _options(options)))

    @_entry(_SWEEP_DOC, SweepKeywords, progress=True)
    def sweep(self, prompts: Prompts, *, models: Models,
              **options: Unpack[SweepKeywords]) -> Result:
        call = _options(options)
        try:
            return self._loop_thread.run(self._asweep(prompts, models, call))
        except KeyboardInterrupt:
            if self.last_run_id:
                if call.batch:
                    print(f"llmlab: interrupted; the batches go on at the endpoint and are in the log: "
                          f"{advice('batch_resume', run_id=self.last_run_id)}", file=sys.stderr)
                    raise
                print(f"llmlab: interrupted; finished calls are saved. {advice('resume', run_id=self.last_run_id)}",
                      file=sys.stderr)
            raise

    @_entry(_COMPLETE_DOC, CallKeywords)
    def complete(self, prompt: Prompt, *, models: Models,
                 **options: Unpack[CallKeywords]) -> Result:
        return self._loop_thread.run(self._acomplete(prompt, models, _options(options)))

    @_entry(_ROUTE_DOC, CallKeywords)
    def route(self, prompt: Prompt, *, policy: Any, task: str | None = None,
              features: Mapping[str, Any] | None = None, **options: Unpack[CallKeywords]) -> Result:
        return self._loop_thread.run(self._aroute(prompt, policy, task, features, _options(options)))

    @_entry(_SUBMIT_DOC + _COMPARE_DOC, CompareKeywords)
    def submit_compare(self, prompt: Prompt, *, models: Models,
                       **options: Unpack[CompareKeywords]) -> Future[Result]:
        call = _options(options)
        self._check_open()  # here, not in the future: a closed Lab starts no new loop
        return self._loop_thread.submit(self._acompare(prompt, models, call))

    @_entry(_SUBMIT_DOC + _SWEEP_DOC, SweepKeywords, progress=True)
    def submit_sweep(self, prompts: Prompts, *, models: Models,
                     **options: Unpack[SweepKeywords]) -> Future[Result]:
        call = _options(options)
        self._check_open()  # here, not in the future: a closed Lab starts no new loop
        return self._loop_thread.submit(self._asweep(prompts, models, call))

    @_entry(_SUBMIT_DOC + _COMPLETE_DOC, CallKeywords)
    def submit_complete(self, prompt: Prompt, *, models: Models,
                        **options: Unpack[CallKeywords]) -> Future[Result]:
        call = _options(options)
        self._check_open()  # here, not in the future: a closed Lab starts no new loop
        return self._loop_thread.submit(self._acomplete(prompt, models, call))

    # -- the log ------------------------------------------------------------------------------
    def runs(self, run_id: str | Sequence[str] | None = None, limit: int | None = None, *,
             model: str | Sequence[str] | None = None, status: str | None = None, since: Any = None,
             columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The persistent log, oldest first. Filters run in SQL: ``run_id`` and ``model`` (a name or
        a list), ``status`` (``"ok"``/``"error"``), ``since`` (a datetime or ISO string, UTC when
        naive), ``limit`` (the last n rows); ``columns`` reads only those columns (e.g. leave out
        ``response_text`` and ``messages`` for a large log)."""
        self._check_open()
        return shown(self.store.frame(**log_filters(run_id=run_id, model=model, status=status, since=since,
                                                    columns=columns, limit=limit)))

    def export(self, path: str | os.PathLike, *, run_id: str | Sequence[str] | None = None,
               model: str | Sequence[str] | None = None, status: str | None = None, since: Any = None,
               columns: Sequence[str] | None = None) -> int:
        """Write the log (or the filtered part) to a Parquet file for DuckDB, Spark or pandas,
        streamed a chunk at a time; returns the number of rows. Schema: ``llmlab.export_schema()``."""
        from ..store._export import write_parquet

        self._check_open()
        check_no_secret(os.fspath(path) if isinstance(path, (str, os.PathLike)) else path, "path")
        filters = log_filters(run_id=run_id, model=model, status=status, since=since, columns=columns, limit=None)
        return write_parquet(self.store, path, filters)

    # -- human labels ---------------------------------------------------------------------------
    def add_label(self, *, grading: str, who: str, prompt_id: str, model_a: str, model_b: str, shown_first: str,
                  vote: str, row_a: int | None = None, row_b: int | None = None) -> int:
        """Store one human label in the log at once (what the grading widget calls; returns its id).

        grading: the grading session's name (resuming finds its labels); who: the grader;
        prompt_id, model_a, model_b: the pair; shown_first: the model whose answer was shown as A;
        vote: ``"A"``, ``"B"`` (by position), ``"tie"``, ``"both_bad"`` (a tie), or ``"skip"``;
        row_a, row_b: the log ids of the answers shown (provenance). The label stores the hash of
        each row's answer (``answer_a_hash``, ``answer_b_hash``): analyses of other answers to the
        pair (a re-sweep) set it aside. Without the rows the label is unchecked (hashes NULL)."""
        self._check_open()
        self.check_label_names(grading=grading, who=who, prompt_id=prompt_id, model_a=model_a, model_b=model_b,
                               shown_first=shown_first)
        label = _label(grading=grading, who=who, prompt_id=prompt_id, model_a=model_a, model_b=model_b,
                       shown_first=shown_first, vote=vote)
        hashes = self._answer_hashes(prompt_id, {"row_a": (row_a, model_a), "row_b": (row_b, model_b)})
        return self.store.add_label({**label, "row_a": row_a, "row_b": row_b, **hashes})

    def check_label_names(self, **names: Any) -> None:
        """Check the text fields of a label (``who=``, ``grading=``, …) before anything shows or stores
        them: non-empty one-line strings that hold no secret this session knows (the key is read first,
        so ``who=<your key>`` is refused): a one-line InputError, the value never echoed."""
        self._know_key()
        for name, value in names.items():
            _check_label_text(name, value)

    def _know_key(self) -> None:
        """Read the key if there is one to read, so that it is a known secret; a key that cannot be
        read yet (a variable not set) is said by the first call, not by a label."""
        with contextlib.suppress(ConfigError):
            self._read_key()

    def _answer_hashes(self, prompt_id: str, rows: dict[str, tuple[int | None, str]]) -> dict[str, str | None]:
        """{answer_a_hash, answer_b_hash} of the rows given; InputError for a row that is not that
        model's answer to that prompt (a label must name the answers it was made on)."""
        ids = {name: check_int(name, row, 1, 2**62) for name, (row, _) in rows.items() if row is not None}
        found = self.store.answers(list(ids.values()))
        out: dict[str, str | None] = {}
        for name, (row, model) in rows.items():
            side = name[-1]
            if row is None:
                out[f"answer_{side}_hash"] = None
                continue
            stored = found.get(ids[name])
            if stored is None or (stored[0], stored[1]) != (prompt_id, model):
                raise InputError(f"{name}={row} is not {model!r}'s answer to prompt {prompt_id!r} in this log: "
                                 f"pass the id of the row graded (lab.runs()['id']) or None")
            out[f"answer_{side}_hash"] = answer_hash(stored[2])
        return out

    def undo_label(self, label_id: int) -> None:
        """Undo a label (it stays in the log, marked undone; ``labels()`` leaves it out)."""
        self._check_open()
        if not self.store.undo_label(check_int("label_id", label_id, 1, 2**62)):
            raise InputError(f"no label {label_id} to undo: it does not exist or is undone already "
                             "(lab.labels() lists label_id)")

    def labels(self, *, grading: str | None = None, who: str | None = None) -> pd.DataFrame:
        """Human labels from the log as a preference frame (``llmlab.scoring.pairwise``'s columns):
        one row per label that is not undone and not a skip — ``winner`` in model terms,
        ``verdict_1`` the vote by position, ``both_bad``, ``source`` ``human:<who>`` — plus ``who``,
        ``grading``, ``shown_first``, ``labelled_at``, ``label_id`` and the hashes of the answers
        labelled (``answer_a_hash``, ``answer_b_hash``; None: unchecked). A pair graded twice by one
        grader on the same answers keeps its latest label."""
        self._check_open()
        names, rows = self.store.labels(grading=grading, who=who)
        return _labels_frame(pd.DataFrame(rows, columns=names))

    @_entry(_BATCH_SUBMIT_DOC + _SWEEP_DOC, SweepKeywords, progress=True)
    def batch_submit(self, prompts: Prompts, *, models: Models, **options: Unpack[SweepKeywords]) -> str:
        call = _options(options)
        return self._loop_thread.run(self._abatch_submit(prompts, models, call))

    async def _abatch_submit(self, prompts: Prompts, models: Models, options: CallOptions) -> str:
        self._check_open()
        rows = PromptSource(prompts, options.system)
        rows.check()
        models = check_models(models)
        if options.resume is not None:
            _check_run_id("resume", options.resume)
        await self._batch_offered(auto=False)
        result = await self._abatch(rows, models, options.replace(batch=True, progress=False), None, 0, wait=False)
        return result.run_id

    def batch_resume(self, run_id: str, *, progress: bool = True, on_event: Callable[[Any], None] | None = None
                     ) -> Result:
        """Wait for a run's batches (submitted by ``sweep(..., batch=True)`` or ``batch_submit``,
        in this process or an earlier one: they are in the log) and store their results; what
        the log says was never created is created first, never twice. The run's Result."""
        self._check_open()
        return self._loop_thread.run(self._abatch_finish(run_id, check_bool("progress", progress), on_event, False))

    def batch_cancel(self, run_id: str, *, progress: bool = True) -> Result:
        """Cancel a run's unfinished batches, then store what they had answered (the rest become
        ``Cancelled`` error rows). The run's Result."""
        self._check_open()
        return self._loop_thread.run(self._abatch_finish(run_id, check_bool("progress", progress), None, True))

    def batch_status(self, run_id: str | None = None) -> pd.DataFrame:
        """One row per batch of ``run_id`` (every run's when None): model, part, requests,
        batch_id, status (asked afresh of the endpoint for unfinished ones), completed and failed
        request counts, when planned and stored."""
        self._check_open()
        if run_id is not None:
            _check_run_id("run_id", run_id)
        return self._loop_thread.run(self._abatch_status(run_id))

    def list_models(self) -> pd.DataFrame:
        """The endpoint's ``/v1/models`` with known prices (USD per 1M tokens)."""
        self._check_open()
        return self._loop_thread.run(self._alist_models())

    async def _alist_models(self) -> pd.DataFrame:
        async with self._session() as context:
            try:
                models = await list_models(context.client)
            except Exception as exc:
                # Not chained: the SDK's message may echo a key fragment (401), the redacted one may not.
                why = unreachable(self.base_url, exc)
                message = (f"cannot list models: {why}" if why
                           else f"cannot list models at {self.base_url}: {one_line(exc)}")
                raise EndpointError(repair(context.redact.message(message))[0]) from None
        rows = []
        for model_id, owner in models:
            # Endpoint text, both fields at once: a key split between the id and owned_by is found.
            model_id, owner = context.redact.row([model_id, owner])
            price = self.prices.lookup(model_id)
            rows.append({"model": model_id, "owned_by": owner,
                         "input_usd_per_1m": price.input_cost_per_token * 1e6 if price else float("nan"),
                         "output_usd_per_1m": price.output_cost_per_token * 1e6 if price else float("nan"),
                         "note": _model_note(model_id)})
        return shown(pd.DataFrame(rows, columns=["model", "owned_by", "input_usd_per_1m", "output_usd_per_1m", "note"]))

    def close(self) -> None:
        """Close HTTP clients, the background loop and the log. The embedded endpoint, if this
        Lab started it, stops when the process exits (other Labs may share it)."""
        self._loop_thread.check_not_inside("lab.close()")
        self._closed = True
        self._loop_thread.cancel_all()  # in-flight calls end as Cancelled rows; their futures resolve
        if self._own_client is not None:
            self._loop_thread.run(self._own_client[0].close())
            self._own_client = None
        self._loop_thread.close()
        self.store.close()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        url = self._endpoint.public_url if self._endpoint else "<embedded local endpoint, started on first use>"
        return clean_text(f"Lab(base_url={url!r}, api_key_env={self.api_key_env!r}, db={self.store.path!r}, "
                          f"concurrency={self.concurrency}, max_tokens={self.max_tokens}, prices={self.prices.name!r})")


_VOTES = {"A": "first", "B": "second", "tie": "tie", "both_bad": "tie", "skip": None}


def _label(**fields: Any) -> dict:
    """A label's stored values, checked: one-line InputErrors before anything is written."""
    for name in ("grading", "who", "prompt_id", "model_a", "model_b", "shown_first"):
        _check_label_text(name, fields[name])
    a, b, shown, vote = fields["model_a"], fields["model_b"], fields["shown_first"], fields["vote"]
    if a == b:
        raise InputError(f"a label compares two models; model_a and model_b are both {a!r}")
    if shown not in (a, b):
        raise InputError(f"shown_first must be model_a or model_b ({a!r} or {b!r}), not {shown!r}")
    if vote not in _VOTES:
        raise InputError(f"vote must be one of {', '.join(map(repr, _VOTES))}, not {vote!r}")
    side = _VOTES[vote]
    first_is_a = shown == a
    winner = {"first": "a" if first_is_a else "b", "second": "b" if first_is_a else "a"}.get(side or "", side)
    return {**fields, "winner": winner}


def _check_label_text(name: str, value: Any) -> None:
    """One text field of a label: a non-empty string, valid Unicode, no control character, no secret."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{name} must be a non-empty string, not "
                         f"{repr(value) if isinstance(value, str) else type(value).__name__}")
    check_shown_name(value, name)  # before anything below echoes it
    check_unicode(value, name)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        # one rule for every backend: PostgreSQL refuses NUL, SQLite would keep it
        raise InputError(f"{name} must not hold control characters (NUL, newline, …): {value!r}")


def _labels_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """Stored label rows → a preference frame (latest label per grader, grading, prompt and pair)."""
    # a label of other answers to the pair (a re-sweep's) is another label, not a re-grade
    rows = rows[rows["vote"] != "skip"].drop_duplicates(["who", "grading", "prompt_id", "model_a", "model_b",
                                                         "answer_a_hash", "answer_b_hash"], keep="last")
    verdict = rows["vote"].map({"A": "A", "B": "B", "tie": "tie", "both_bad": "tie"})
    frame = pd.DataFrame({
        "prompt_id": rows["prompt_id"], "model_a": rows["model_a"], "model_b": rows["model_b"],
        "winner": rows["winner"].astype(object), "consistent": pd.array([pd.NA] * len(rows), dtype="boolean"),
        "verdict_1": verdict.astype(object), "verdict_2": None, "reason": "", "source": "human:" + rows["who"],
        "both_bad": rows["vote"] == "both_bad", "reply_1": None, "reply_2": None, "who": rows["who"],
        "grading": rows["grading"], "shown_first": rows["shown_first"], "labelled_at": rows["created_at"],
        "label_id": rows["id"], "answer_a_hash": rows["answer_a_hash"], "answer_b_hash": rows["answer_b_hash"],
        # the log keeps no grading's against=, so model_a may be the name that sorts first: a column
        # (it survives a CSV round-trip) says no reference is recorded, and routing asks for one
        "against": None})
    return frame.reset_index(drop=True)


def _keyless_if_embedded(endpoint: Endpoint, given: Any = None) -> Endpoint:
    """The embedded endpoint never gets a key, also when its URL came as a plain string (copied
    from ``llmlab serve``, an f-string, LLMLAB_BASE_URL): recognised by host and port. A URL given
    as the embedded endpoint's (``server.base_url``) stays marked as one: its runs key the cache on
    its models, not its port."""
    url = endpoint.base_url
    if url is not None and isinstance(given, LocalURL):
        return Endpoint(LocalURL(url), None)
    if url is None or endpoint.api_key_env is None or isinstance(url, LocalURL) or not is_embedded(url):
        return endpoint
    return Endpoint(LocalURL(url), None)


def _optional_rate(name: str, value: Any) -> float | None:
    if value is None:
        return None
    rate = read_finite(value)  # the finite-number rule: inf or 10**5000 per minute is no limit anyone means
    if rate is None or rate <= 0:
        raise InputError(f"{name} must be a finite number > 0 (per minute), not {shown_value(value)}")
    return rate


def _retry_policy(retries: int | None, policy: RetryPolicy | None) -> RetryPolicy | None:
    if policy is not None and retries is not None:
        raise InputError("pass either retries= or retry_policy=, not both")
    if policy is not None and not isinstance(policy, RetryPolicy):
        raise InputError(f"retry_policy must be an llmlab.RetryPolicy, not {type(policy).__name__}")
    if policy is not None:
        check_retry_policy(policy)  # the rule a call's retry_policy= follows
    if retries is not None:
        return RetryPolicy(retries=check_int("retries", retries, 0, MAX_RETRIES))
    return policy


def _check_run_id(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise InputError(f"{name} must be a run id string such as '3f2a9c1b7d4e' (lab.last_run_id), "
                         f"not {type(value).__name__}")
    check_sendable(value, name)  # a NUL too: PostgreSQL refuses it in a query as in a row


def _open_store(db: Any) -> Store:
    if db is not None and not isinstance(db, (str, os.PathLike)):
        raise InputError(f"db must be a file path, ':memory:' or a postgresql:// URL, not {type(db).__name__}")
    if db is not None:
        check_unicode(os.fspath(db), "db")
        check_no_secret(os.fspath(db), "db")  # never a file named after the key
    value, chosen_by = (db, None) if db is not None else default_db()
    try:
        store = open_store(value, chosen_by=chosen_by)
    except (ValueError, TypeError) as exc:  # e.g. a path SQLite cannot encode
        raise StoreError(f"cannot open run log {parse_db(value).shown!r}: {one_line(exc)}; "
                         f"{advice('another_log')}") from None
    if store.chosen_by is not None:
        _say_not_a_cache_source(store)
    return store


def _say_not_a_cache_source(store: Store) -> None:
    import warnings

    warnings.warn(f"llmlab: the run log {store.path} was chosen by {store.chosen_by}: answers are stored there but "
                  "never replayed from it (a project's log is not a cache source); to replay from it, choose it "
                  "yourself (LLMLAB_DB in your environment, Lab(db=...) or %config LLMLab.db = ...)", stacklevel=4)


def _not_logged(runner: Runner, run_id: str, models: list[str]) -> StoreError:
    """The store failed mid-run: say so, and keep the answers it could not take in ``error.result``."""
    unlogged = records_frame([record.to_row() for record in runner.unlogged])
    error = StoreError(f"{runner.store_error}; {len(unlogged)} finished attempt(s) were not logged (kept in this "
                       "error's .result.unlogged) and no further request was sent")
    try:
        error.result = Result.from_store(runner.ctx.store, run_id, models, unlogged=unlogged)  # type: ignore[attr-defined]
    except StoreError:
        error.result = Result(unlogged, run_id, models, unlogged=unlogged)  # type: ignore[attr-defined]
    return error


def _closed_mid_run(run_id: str, batch: bool) -> LLMLabError:
    """What the caller of a run is told when lab.close() (another thread) cut it short."""
    if batch:
        return LLMLabError(f"the Lab was closed while run {run_id!r} was running; its batches go on at the endpoint "
                           f"and are in the log: {advice('batch_resume', run_id=run_id)} in a new Lab")
    return LLMLabError(f"the Lab was closed while run {run_id!r} was running; its finished calls are saved (calls "
                       f"in flight as Cancelled rows). {advice('resume', run_id=run_id)} in a new Lab")


def _new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def _progress_bar(total: int | None, enabled: bool):
    from ._progress import progress_bar  # a notebook bar that leaves a static line, else tqdm

    if total is None and enabled:  # an iterator's length is unknown: a counting text bar
        try:
            from tqdm import tqdm
        except ImportError:
            return None
        return tqdm(desc="llmlab", unit="call", file=sys.stderr)
    return progress_bar(total or 0, enabled)


def _model_note(model_id: str) -> str | None:
    try:
        from ..local import bundled_models
    except ImportError:
        return None
    for bundled in bundled_models():
        if getattr(bundled, "alias", None) == model_id:
            return getattr(bundled, "description", None)
    return None
