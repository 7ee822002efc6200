"""A PostgreSQL write blocked by another session's table lock waits LOG_WAIT_S, then journals the
answer, instead of waiting for ever (attack 4, F11); the next Lab, once the lock is gone, stores it."""
from __future__ import annotations

import threading
import time

import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import Lab, StoreError

pytestmark = pytest.mark.postgres


def test_a_write_blocked_by_a_table_lock_gives_up_and_journals(pg_url, monkeypatch):
    import psycopg

    import llmlab.store._base as base

    monkeypatch.setattr(base, "LOG_WAIT_S", 2.0)
    with FakeServer({"m": ModelSpec(text="paid answer")}) as srv:
        lab = Lab(db=pg_url, base_url=srv.base_url, retries=0)
        lab.compare("warm", models=["m"])
        holder = psycopg.connect(pg_url)
        holder.execute("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE")
        out: dict = {}

        def run() -> None:
            started = time.monotonic()
            try:
                lab.compare("the paid one", models=["m"], cache=False)
                out["error"] = None
            except StoreError as exc:
                out["error"] = str(exc)
            out["took"] = time.monotonic() - started

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(30)
        holder.rollback()  # the lock is released whatever happened
        holder.close()
        thread.join(30)
        lab.close()
        assert out.get("error") and "journal" in out["error"], out
        assert out["took"] < 20, out
        with Lab(db=pg_url, base_url=srv.base_url) as again:
            assert "the paid one" in list(again.runs().prompt)
