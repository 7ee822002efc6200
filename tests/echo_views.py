"""One end-to-end harness for "an endpoint echoing this text stores and shows none of it": the
text streamed 3 characters a delta (and as the served model's name), plain, as reasoning and in
an HTTP 400 message, through the real SDK and a real Lab. What comes back is every place a user
or the log could see it: each stored row of every table, the frame's text columns, the live
deltas, what the reprs print and every warning (the served model's price warning quotes its
name). The redaction tests assert on these texts in their own terms."""
from __future__ import annotations

import sqlite3
import warnings
from typing import Any

from fakeserver import FakeServer, ModelSpec

from llmlab import Lab


def echoed_views(tmp_path: Any, capsys: Any, echo: str, *, lead: str = "it is ") -> tuple[list[str], Any]:
    """(every shown or stored text, ``lab.runs()``) after the endpoint echoed ``echo``; the key is
    read from ``$GATEWAY_KEY`` (the caller sets it)."""
    models = {"echo": ModelSpec(chunks=[lead, *(echo[i:i + 3] for i in range(0, len(echo), 3)), " ok"],
                                served_model=echo),
              "plain": ModelSpec(text=f"{lead}{echo} ok"),
              "thinks": ModelSpec(text="ok", reasoning=f"{lead}{echo}"),
              "fail": ModelSpec(status=400, error_message=f"bad key {echo}")}
    live: list[str] = []
    with warnings.catch_warnings(record=True) as caught, FakeServer(models) as srv, \
            Lab(base_url=srv.base_url, api_key_env="GATEWAY_KEY", db=tmp_path / "l.sqlite", retries=0) as lab:
        warnings.simplefilter("always")
        res = lab.compare("Hi", models=["echo", "fail", "thinks"], on_event=lambda e: live.append(e.text))
        plain = lab.compare("Hi", models=["plain", "thinks"], stream=False)
        print(res, res.summary(), res._repr_html_(), res.df.to_string(), plain.df.to_string())
        stored = lab.runs()
    with sqlite3.connect(tmp_path / "l.sqlite") as db:
        rows = [repr(row) for table, in db.execute("select name from sqlite_master where type='table'")
                for row in db.execute(f"select * from {table}")]  # noqa: S608 (the file's own table names)
    texts = [*rows, *stored["response_text"], *stored["served_model"].dropna(), *stored["error_message"].dropna(),
             *stored["reasoning_text"].dropna(), "".join(live), capsys.readouterr().out,
             *(str(w.message) for w in caught)]
    return texts, stored
