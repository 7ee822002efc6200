"""Run the async engine from synchronous code.

A Jupyter kernel already runs an event loop in the main thread, so ``asyncio.run`` is not
allowed there. Like IPython's own ``%%script`` magic, we run coroutines on a private loop in a
background thread and wait for them; no nest_asyncio.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any

from ..base._errors import InputError
from ..base._warnings import collecting, emit

__all__ = ["LoopThread", "CANCEL_GRACE_S"]

# How long a cancelled call may take to record its cancelled attempts (the widget's Stop waits too).
CANCEL_GRACE_S = 10.0


class LoopThread:
    """A private event loop running in a daemon thread, started on first use."""

    def __init__(self, name: str = "llmlab-loop") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                ready = threading.Event()
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._serve, args=(self._loop, ready),
                                                name=self._name, daemon=True)
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

        async def guarded():
            try:
                return await coro
            finally:
                finished.set()

        future = asyncio.run_coroutine_threadsafe(guarded(), self.loop)
        future.finished = finished  # type: ignore[attr-defined]
        for name in ("result", "exception"):
            setattr(future, name, self._refusing_inside(future, getattr(future, name), name))
        return future

    def _refusing_inside(self, future: concurrent.futures.Future, wait: Any, name: str) -> Any:
        def checked(timeout: float | None = None) -> Any:
            if not future.done():
                self.check_not_inside(f"future.{name}()")
            return wait(timeout)

        return checked

    def check_not_inside(self, what: str) -> None:
        """Refuse to wait for the loop from the loop's own thread (e.g. inside an ``on_event``
        callback): that wait could never end."""
        if self._thread is not None and threading.current_thread() is self._thread:
            raise InputError(
                f"{what} was called from the Lab's own event-loop thread (inside an on_event callback?) "
                "and would wait for itself forever; call it after the run returns, keep the future and read it "
                "then (or use future.add_done_callback), or await lab.acompare() in async code"
            )

    def run(self, coro: Coroutine) -> Any:
        """Run ``coro`` to completion; Ctrl-C cancels it, waits for its clean-up, re-raises.
        Warnings it raises are shown here, in the caller's thread, pointing at the caller."""

        if self._thread is not None and threading.current_thread() is self._thread:
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
