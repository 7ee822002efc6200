"""Run the async engine from synchronous code.

A Jupyter kernel already runs an event loop in the main thread, so ``asyncio.run`` is not
allowed there. Like IPython's own ``%%script`` magic, we run coroutines on a private loop in a
background thread and wait for them; no nest_asyncio.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import queue
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from ..base._errors import InputError, LLMLabError
from ..base._warnings import collecting, emit

__all__ = ["LoopThread", "CANCEL_GRACE_S", "user_code", "off_loop", "post"]

# How long a cancelled call may take to record its cancelled attempts (the widget's Stop waits too).
CANCEL_GRACE_S = 10.0


class _Run:
    """One call submitted to a :class:`LoopThread` and the user code it runs: ``on_event`` (in order,
    on a thread of the run's own, so the loop never waits for a callback: it keeps timing calls, and
    a callback that waits for another thread's call of the same Lab cannot block the loop that call
    needs), a policy's feature function or a Cascade's accept rule (``off_loop``), and what escaped
    from them (a ``SystemExit``/``KeyboardInterrupt``: the run is cancelled and it is raised again
    in the caller's thread, never in the loop's thread, which would die with every call's future)."""

    def __init__(self, owner: LoopThread) -> None:
        self.owner = owner
        self.escaped: BaseException | None = None
        self._task: asyncio.Task | None = None
        self._jobs: queue.SimpleQueue[Callable[[], Any] | None] | None = None
        self._ended: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._lock = threading.Lock()

    def started(self) -> None:
        self._task = asyncio.current_task()

    def abort(self, exc: BaseException) -> None:
        """Cancel the run (from any thread): finished answers are stored, calls in flight end as
        Cancelled rows, and the caller's wait raises ``exc``."""
        with self._lock:
            if self.escaped is not None:
                return
            self.escaped = exc
        task = self._task
        if task is not None:
            try:
                task.get_loop().call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop is closed: nothing left to cancel
                pass

    def post(self, job: Callable[[], Any]) -> None:
        """Run ``job`` on the run's callback thread, after every job posted before it."""
        with self._lock:
            if self._jobs is None:
                self._jobs = queue.SimpleQueue()
                thread = threading.Thread(target=self._deliver, args=(self._jobs,), daemon=True,
                                          name=f"{self.owner.name}-callbacks")
                self.owner.callback_threads.add(thread)
                thread.start()
        self._jobs.put(job)

    def _deliver(self, jobs: queue.SimpleQueue[Callable[[], Any] | None]) -> None:
        try:
            while (job := jobs.get()) is not None:
                if self.escaped is None:  # once the run is aborted, its later events are dropped
                    try:
                        job()
                    except BaseException as exc:  # noqa: BLE001 - any escape ends the run, in its caller
                        self.abort(exc)
        finally:
            self.owner.callback_threads.discard(threading.current_thread())
            self._ended.set_result(None)

    async def drain(self) -> None:
        """Wait, without blocking the loop, until every posted job ran; the thread then ends."""
        if self._jobs is not None:
            self._jobs.put(None)
            await asyncio.wrap_future(self._ended)

    def outcome(self, future: concurrent.futures.Future, wait: Callable[[float | None], Any],
                timeout: float | None) -> Any:
        """``wait(timeout)`` (the future's own result/exception), or what escaped from user code."""
        try:
            value = wait(timeout)
        except BaseException:
            if self.escaped is not None and future.done():
                raise self.escaped from None
            raise
        if self.escaped is not None:
            raise self.escaped
        return value


_RUN: contextvars.ContextVar[_Run | None] = contextvars.ContextVar("llmlab_run", default=None)


def user_code(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Call a user's function that llmlab runs itself, during a run of a :class:`LoopThread` (the
    one rule for them all). An ordinary exception is the caller's to handle; anything else
    (``SystemExit``, ``KeyboardInterrupt``…) cancels the run and is raised again where the run was
    awaited — here it becomes a cancellation of the task that called."""
    try:
        return fn(*args, **kwargs)
    except Exception:
        raise
    except BaseException as exc:
        run = _RUN.get()
        if run is None:  # not inside a LoopThread's run (e.g. awaited on the user's own loop)
            raise
        run.abort(exc)
        raise asyncio.CancelledError(f"{type(exc).__name__} in user code") from None


async def off_loop(fn: Callable[..., Any], /, *args: Any) -> Any:
    """``user_code(fn, *args)`` on a worker thread: the loop keeps timing the Lab's other calls, and
    ``fn`` may wait for a call of the same Lab (a Cascade's accept rule asking another model)."""
    call = functools.partial(contextvars.copy_context().run, user_code, fn, *args)
    return await asyncio.get_running_loop().run_in_executor(None, call)


def post(fn: Callable[..., Any], /, *args: Any) -> None:
    """Deliver ``fn(*args)`` (an ``on_event`` call) on the current run's callback thread, in order;
    ``fn`` handles its own ordinary exceptions. Outside a LoopThread's run: called at once."""
    run = _RUN.get()
    if run is None:
        fn(*args)
    else:
        run.post(functools.partial(contextvars.copy_context().run, fn, *args))


class LoopThread:
    """A private event loop running in a daemon thread, started on first use."""

    def __init__(self, name: str = "llmlab-loop") -> None:
        self.name = name
        self.callback_threads: set[threading.Thread] = set()  # the runs' on_event threads
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._cancelled_all = False  # cancel_all() (lab.close()) ended the runs still going

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                ready = threading.Event()
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._serve, args=(self._loop, ready),
                                                name=self.name, daemon=True)
                self._thread.start()
                ready.wait()
            return self._loop

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_forever()

    def submit(self, coro: Coroutine) -> concurrent.futures.Future:
        """Schedule ``coro``; ``future.cancel()`` cancels it, ``future.finished`` is set when its
        clean-up (recording cancelled attempts) is over. Waiting for it from the loop's own thread
        (``future.result()`` inside an ``on_event`` callback) is refused at once: that wait could
        never end."""
        finished = threading.Event()
        run = _Run(self)

        async def guarded():
            _RUN.set(run)  # this task's own context: the user code it runs finds its run
            run.started()
            try:
                return await coro
            finally:
                try:
                    await run.drain()  # every event is delivered before the future is done
                finally:
                    finished.set()

        future = asyncio.run_coroutine_threadsafe(guarded(), self.loop)
        future.finished = finished  # type: ignore[attr-defined]
        for name in ("result", "exception"):
            setattr(future, name, self._refusing_inside(future, run, getattr(future, name), name))
        return future

    def _refusing_inside(self, future: concurrent.futures.Future, run: _Run, wait: Any, name: str) -> Any:
        def checked(timeout: float | None = None) -> Any:
            if not future.done():
                self.check_not_inside(f"future.{name}()")
            try:
                return run.outcome(future, wait, timeout)
            except (concurrent.futures.CancelledError, asyncio.CancelledError):
                if self._cancelled_all:  # a run that knows its id says so itself (Lab._in_session)
                    raise LLMLabError("the Lab was closed (lab.close() from another thread) while this call was "
                                      "running; the calls that finished are saved in its log") from None
                raise

        return checked

    def inside(self) -> bool:
        """Whether this thread is the loop's own or one of its runs' callback threads."""
        here = threading.current_thread()
        return (self._thread is not None and here is self._thread) or here in self.callback_threads

    def check_not_inside(self, what: str) -> None:
        """Refuse to wait for the loop from the loop's own thread or from inside an ``on_event``
        callback (a run waits for its callbacks before it returns): that wait could never end."""
        if self.inside():
            raise InputError(
                f"{what} was called from inside a run on the Lab's own event-loop thread (an on_event callback?) "
                "and would wait for itself forever; call it after the run returns, keep the future and read it "
                "then (or use future.add_done_callback), or await lab.acompare() in async code"
            )

    def run(self, coro: Coroutine) -> Any:
        """Run ``coro`` to completion; Ctrl-C cancels it, waits for its clean-up, re-raises.
        Warnings it raises are shown here, in the caller's thread, pointing at the caller."""

        if self.inside():
            coro.close()  # never started: no "coroutine was never awaited" warning
            name = str(getattr(coro, "__qualname__", "call")).rsplit(".", 1)[-1].lstrip("_").removeprefix("a")
            self.check_not_inside(f"lab.{name}()")
        caught: list[Warning] = []
        future = self.submit(collecting(coro, caught))
        try:
            return future.result()
        except KeyboardInterrupt:
            future.cancel()
            future.finished.wait(CANCEL_GRACE_S)  # type: ignore[attr-defined]
            raise
        finally:
            for warning in list(caught):
                emit(warning)

    def owns(self, loop: asyncio.AbstractEventLoop) -> bool:
        return loop is self._loop and not loop.is_closed()

    def cancel_all(self, grace_s: float = CANCEL_GRACE_S) -> None:
        """Cancel every task on the loop and wait (bounded) for their clean-up."""
        loop = self._loop
        if loop is None or loop.is_closed() or not loop.is_running():
            return
        self._cancelled_all = True

        async def cancel_others():
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(cancel_others(), loop).result(grace_s)
        except (concurrent.futures.TimeoutError, RuntimeError):
            pass

    def close(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(5)
        if not loop.is_running():
            loop.close()
