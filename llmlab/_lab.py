"""``Lab``: the one engine behind the Python API, the magics, the widget and the CLI."""
from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from ._call import Redactor
from ._config import Endpoint, llmlab_home, read_key, resolve_endpoint
from ._errors import INSTALL_LOCAL, ConfigError, EndpointError, InputError, LocalServerError
from ._jobs import (
    build_body,
    check_models,
    last_user_text,
    make_jobs,
    normalise_timeouts,
    prompt_id_for,
    prompt_rows,
    to_messages,
)
from ._loop import LoopThread
from ._pricing import PriceTable
from ._resilience import RateLimiter, RetryPolicy
from ._results import Result, records_frame
from ._runner import Event, RunContext, Runner
from ._store import Store
from ._tokens import TokenCounter
from ._warnings import collecting, emit

__all__ = ["Lab"]



def _positive_int(name: str, value: Any) -> int:
    return _int_at_least(name, value, 1, "a positive integer")


def _int_at_least(name: str, value: Any, minimum: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name} must be {what}, not {value!r}")
    return value


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

    def __init__(self, base_url: str | None = None, api_key_env: str | None = None, db: Any = None,
                 prices: Any = None, concurrency: int = 8, max_tokens: int = 512, retries: int | None = None,
                 timeout: Any = None, rpm: float | None = None, tpm: float | None = None,
                 quiet: bool = False, retry_policy: RetryPolicy | None = None) -> None:
        self._endpoint_args = (base_url, api_key_env)
        self._endpoint: Endpoint | None = resolve_endpoint(base_url, api_key_env)
        if self._endpoint.base_url is None:
            self._endpoint = None  # the embedded endpoint starts on first use, not here
        self.concurrency = _positive_int("concurrency", concurrency)
        self.max_tokens = _positive_int("max_tokens", max_tokens)
        self.prices = PriceTable.load(prices)
        self.timeouts = normalise_timeouts(timeout)
        self.retry = _retry_policy(retries, retry_policy) or RetryPolicy()
        self.last_run_id: str | None = None
        self.limiter = RateLimiter(_optional_rate("rpm", rpm), _optional_rate("tpm", tpm))
        self.quiet = quiet
        self.store = Store(db if db is not None else llmlab_home() / "runs.sqlite")
        self.counter = TokenCounter()
        self._loop_thread = LoopThread()
        self._own_client = None  # (AsyncOpenAI, Redactor) bound to the Lab's own loop
        self._local_server = None

    # -- endpoint -----------------------------------------------------------------------------
    @property
    def endpoint(self) -> Endpoint:
        if self._endpoint is None:
            self._endpoint = Endpoint(self._start_local(), None)
        return self._endpoint

    @property
    def base_url(self) -> str:
        return self.endpoint.base_url

    @property
    def api_key_env(self) -> str | None:
        return self.endpoint.api_key_env if self._endpoint else self._endpoint_args[1]

    def _start_local(self) -> str:
        try:
            from .local import ensure_running

            self._local_server = ensure_running(quiet=self.quiet)
        except (ImportError, LocalServerError) as exc:
            raise ConfigError(
                "no endpoint configured: pass Lab(base_url=...) or set LLMLAB_BASE_URL (or OPENAI_BASE_URL); "
                f"the embedded local endpoint is unavailable ({_one_line(exc)}); install it with {INSTALL_LOCAL}"
            ) from exc
        return self._local_server.base_url

    @contextlib.asynccontextmanager
    async def _session(self):
        """A RunContext for the running loop. The Lab's own loop keeps one client (connections
        are reused across calls); on a caller's loop (``await lab.acompare``) the client lives
        for the call, since that loop may close before the Lab does."""
        own = self._loop_thread.owns(asyncio.get_running_loop())
        if own and self._own_client is not None:
            yield self._run_context(*self._own_client)
            return
        entry = self._new_client()
        if own:
            self._own_client = entry
            yield self._run_context(*entry)
            return
        try:
            yield self._run_context(*entry)
        finally:
            await entry[0].close()

    def _new_client(self):
        import openai

        key = read_key(self.endpoint)
        # llmlab owns retries (Retry-After, fallback, recording each attempt): the SDK's are off.
        client = openai.AsyncOpenAI(base_url=self.endpoint.base_url, api_key=key, max_retries=0)
        return client, Redactor([key])

    def _run_context(self, client, redact: Redactor) -> RunContext:
        return RunContext(client=client, store=self.store, prices=self.prices, counter=self.counter,
                          limiter=self.limiter, retry=self.retry, redact=redact,
                          endpoint=self.endpoint.base_url, api_key_env=self.endpoint.api_key_env)

    # -- async API ----------------------------------------------------------------------------
    async def acompare(self, prompt: Any, models: Sequence[str], system: str | None = None,
                       temperature: float | None = None, max_tokens: int | None = None, stream: bool = True,
                       cache: bool = True, n: int = 1, timeout: Any = None, retries: int | None = None,
                       retry_policy: RetryPolicy | None = None,
                       on_event: Callable[[Event], None] | None = None, **extra: Any) -> Result:
        """One prompt across ``models`` (each ``n`` times), concurrently."""
        rows = [_single_prompt_row(prompt, system)]
        return await self._arun(rows, models, temperature, max_tokens, stream, cache, n, timeout,
                                on_event, extra, concurrency=None, progress=False,
                                retry=_retry_policy(retries, retry_policy))

    async def asweep(self, prompts: Any, models: Sequence[str], concurrency: int | None = None,
                     progress: bool = True, resume: str | None = None, system: str | None = None,
                     temperature: float | None = None, max_tokens: int | None = None, stream: bool = True,
                     cache: bool = True, n: int = 1, timeout: Any = None, retries: int | None = None,
                     retry_policy: RetryPolicy | None = None,
                     on_event: Callable[[Event], None] | None = None, **extra: Any) -> Result:
        """Every prompt × every model. ``prompts``: list of str or a DataFrame with ``prompt`` (or
        ``messages``) and optional ``prompt_id``, ``task``, ``expected`` columns."""
        rows = prompt_rows(prompts, system)
        return await self._arun(rows, models, temperature, max_tokens, stream, cache, n, timeout,
                                on_event, extra, concurrency=concurrency, progress=progress, resume=resume,
                                retry=_retry_policy(retries, retry_policy))

    async def acomplete(self, prompt: Any, models: Sequence[str], system: str | None = None,
                        temperature: float | None = None, max_tokens: int | None = None, stream: bool = True,
                        cache: bool = True, timeout: Any = None, retries: int | None = None,
                        retry_policy: RetryPolicy | None = None,
                        on_event: Callable[[Event], None] | None = None, **extra: Any) -> Result:
        """One answer from a fallback chain: ``models[0]``, then the next on its final failure."""
        rows = [_single_prompt_row(prompt, system)]
        return await self._arun(rows, models, temperature, max_tokens, stream, cache, 1, timeout,
                                on_event, extra, concurrency=1, progress=False, chain=True,
                                retry=_retry_policy(retries, retry_policy))

    async def _arun(self, rows, models, temperature, max_tokens, stream, cache, n, timeout, on_event,
                    extra, concurrency, progress, resume=None, chain=False, retry=None) -> Result:
        models = check_models(models)
        body = build_body(self.max_tokens if max_tokens is None else max_tokens, temperature, extra)
        repeats = _positive_int("n", n)
        concurrency = self.concurrency if concurrency is None else _positive_int("concurrency", concurrency)
        timeouts = {**self.timeouts, **normalise_timeouts(timeout)}
        jobs = make_jobs(rows, models, body, bool(stream), bool(cache), repeats, timeouts, chain=chain, retry=retry)
        run_id = self.last_run_id = resume or _new_run_id()
        if resume is not None:
            jobs = self._unfinished(jobs, resume)
        bar = _progress_bar(len(jobs), progress)
        caught: list[Warning] = []  # raised in the runner's tasks; shown at the caller's line
        try:
            async with self._session() as context:
                await collecting(Runner(context, run_id, on_event, bar).run(jobs, concurrency), caught)
        finally:
            if bar is not None:
                bar.close()
            for warning in caught:
                emit(warning)
        return self._result(run_id, rows, models)

    def _unfinished(self, jobs, run_id: str):
        done = self.store.rows("WHERE run_id = ? AND status = 'ok'", [run_id])
        if not done and not self.store.rows("WHERE run_id = ?", [run_id], limit=1):
            raise InputError(f"resume={run_id!r}: no run with that id in {self.store.path}")
        finished = {(r["prompt_id"], r["requested_model"], r["repeat"]) for r in done}
        return [j for j in jobs if (j.prompt_id, j.models[0], j.repeat) not in finished]

    def _result(self, run_id: str, rows: list[dict], models: list[str]) -> Result:
        frame = records_frame(self.store.rows("WHERE run_id = ?", [run_id]))
        prompt_order = {r["prompt_id"]: i for i, r in enumerate(rows)}
        model_order = {m: i for i, m in enumerate(models)}
        chain_model = frame["request_id"].map(frame.groupby("request_id")["requested_model"].first())
        frame = frame.assign(_p=frame["prompt_id"].map(prompt_order), _m=chain_model.map(model_order))
        frame = frame.sort_values(["_p", "_m", "repeat", "attempt", "id"], kind="stable")
        return Result(frame.drop(columns=["_p", "_m"]).reset_index(drop=True), run_id, models)

    # -- sync API -----------------------------------------------------------------------------
    def compare(self, prompt: Any, models: Sequence[str], **kwargs: Any) -> Result:
        return self._loop_thread.run(self.acompare(prompt, models, **kwargs))

    def sweep(self, prompts: Any, models: Sequence[str], **kwargs: Any) -> Result:
        try:
            return self._loop_thread.run(self.asweep(prompts, models, **kwargs))
        except KeyboardInterrupt:
            if self.last_run_id:
                print(f"llmlab: interrupted; finished calls are saved. Resume with "
                      f"lab.sweep(..., resume={self.last_run_id!r})", file=sys.stderr)
            raise

    def complete(self, prompt: Any, models: Sequence[str], **kwargs: Any) -> Result:
        return self._loop_thread.run(self.acomplete(prompt, models, **kwargs))

    def submit_compare(self, prompt: Any, models: Sequence[str], **kwargs: Any):
        """Start a compare without blocking; returns a ``concurrent.futures.Future[Result]``.
        ``future.cancel()`` stops in-flight calls (they are recorded as ``Cancelled``)."""
        return self._loop_thread.submit(self.acompare(prompt, models, **kwargs))

    def submit_sweep(self, prompts: Any, models: Sequence[str], **kwargs: Any):
        return self._loop_thread.submit(self.asweep(prompts, models, **kwargs))

    # -- the log ------------------------------------------------------------------------------
    def runs(self, run_id: str | None = None, limit: int | None = None) -> pd.DataFrame:
        """The persistent log (oldest first), optionally one run or the last ``limit`` rows."""
        if run_id is not None:
            return records_frame(self.store.rows("WHERE run_id = ?", [run_id], limit=limit))
        return records_frame(self.store.rows(limit=limit))

    def list_models(self) -> pd.DataFrame:
        """The endpoint's ``/v1/models`` with known prices (USD per 1M tokens)."""
        return self._loop_thread.run(self._alist_models())

    async def _alist_models(self) -> pd.DataFrame:
        async with self._session() as context:
            try:
                page = await context.client.models.list()
            except Exception as exc:
                # Not chained: the SDK's message may echo a key fragment (401), the redacted one may not.
                raise EndpointError(f"cannot list models at {self.base_url}: "
                                    f"{context.redact(_one_line(exc))}") from None
        rows = []
        for model in page.data:
            price = self.prices.lookup(model.id)
            rows.append({"model": model.id, "owned_by": getattr(model, "owned_by", None),
                         "input_usd_per_1m": price.input_cost_per_token * 1e6 if price else float("nan"),
                         "output_usd_per_1m": price.output_cost_per_token * 1e6 if price else float("nan"),
                         "note": _model_note(model.id)})
        return pd.DataFrame(rows, columns=["model", "owned_by", "input_usd_per_1m", "output_usd_per_1m", "note"])

    def close(self) -> None:
        """Close HTTP clients, the background loop and the log. The embedded endpoint, if this
        Lab started it, stops when the process exits (other Labs may share it)."""
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
        url = self._endpoint.base_url if self._endpoint else "<embedded local endpoint, started on first use>"
        return (f"Lab(base_url={url!r}, api_key_env={self.api_key_env!r}, db={self.store.path!r}, "
                f"concurrency={self.concurrency}, max_tokens={self.max_tokens}, prices={self.prices.name!r})")


def _optional_rate(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise InputError(f"{name} must be a number > 0 (per minute), not {value!r}")
    return float(value)


def _retry_policy(retries: int | None, policy: RetryPolicy | None) -> RetryPolicy | None:
    if policy is not None and retries is not None:
        raise InputError("pass either retries= or retry_policy=, not both")
    if retries is not None:
        return RetryPolicy(retries=_int_at_least("retries", retries, 0, "a non-negative integer"))
    return policy


def _new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _progress_bar(total: int, enabled: bool):
    from ._progress import progress_bar  # a notebook bar that leaves a static line, else tqdm

    return progress_bar(total, enabled)


def _model_note(model_id: str) -> str | None:
    try:
        from .local import bundled_models
    except ImportError:
        return None
    for bundled in bundled_models():
        if getattr(bundled, "alias", None) == model_id:
            return getattr(bundled, "description", None)
    return None
