"""``since=`` has one rule (store/_export._since), for ``lab.runs``/``lab.export`` and ``llmlab
export --since`` alike (attack a7 W3): a value that is no date/time — "nan", "NaT" and "" (which
pandas reads as NaT, a filter matching no row: a silently empty frame), a year before 1 ("-1"),
a 5,000-digit or 100 kB text, the key pasted by mistake — is one short InputError that shows the
value cut (base/_validate.shown_value) and never the key; the CLI exits 2."""
from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from llmlab import InputError, Lab
from llmlab.cli._main import main

KEY = "sk-test-Qz7Xv9Bm2Kt8Rw4Lp3NcYh6"
NOT_TIMES = {"nan": "nan", "NaT": "NaT", "empty": "", "spaces": "   ", "minus-one": "-1", "year-0": "0000-01-01",
             "digits-5000": "9" * 5000, "text-100k": "2026-" + "x" * 100_000, "key": KEY, "key-in-date": f"2026 {KEY}",
             "nat-object": pd.NaT, "float-nan": float("nan"), "int": 20260501}


@pytest.fixture
def lab(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with Lab(db=tmp_path / "runs.sqlite") as lab:
        yield lab


@pytest.mark.parametrize("name", sorted(NOT_TIMES))
def test_a_since_that_is_no_time_is_one_short_line_without_the_key(lab, name):
    with pytest.raises(InputError) as refused:
        lab.runs(since=NOT_TIMES[name])
    message = str(refused.value)
    assert message.startswith("since") and "\n" not in message and len(message) < 300, message
    assert KEY not in message and KEY[8:20] not in message


@pytest.mark.parametrize("name", ["nan", "empty", "minus-one", "digits-5000", "key"])
def test_llmlab_export_since_that_is_no_time_exits_2(tmp_path, capsys, monkeypatch, name):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    db = str(tmp_path / "runs.sqlite")
    Lab(db=db).close()
    out = tmp_path / "out.parquet"
    assert main(["export", str(out), "--db", db, "--since", NOT_TIMES[name]]) == 2
    err = capsys.readouterr().err
    assert "since" in err and "Traceback" not in err and KEY not in err and len(err) < 400, err
    assert not out.exists()


@pytest.mark.parametrize("value", ["2026-05-01", "2026-05-01T12:00Z", "2026-05-01 12:00:00+02:00", "now",
                                   dt.date(2026, 5, 1), dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC), "1900-01-01"])
def test_a_real_time_is_still_a_filter(lab, value):
    assert len(lab.runs(since=value)) == 0   # an empty log: the filter is read, not refused
