"""One cost rule (llmlab.base._cost) behind every view: Result.summary(), the cost chart, ``%llm cost``,
the widget's table and live footers, the demo report and repr(Result) — on the same runs: a
cached replay, a cut stream, an unpriced model, a fallback, a model whose calls all failed."""
from __future__ import annotations

import math

import pandas as pd
import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import Lab
from llmlab.base._cost import format_usd, spend
from llmlab.base._display import table_html, table_text
from llmlab.notebook._board import metrics_line, session_costs

PRICE = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}
TEXT = "one two three four five six"


@pytest.fixture
def server():
    models = {
        "priced": ModelSpec(text=TEXT, prompt_tokens=100, completion_tokens=50),
        "unpriced": ModelSpec(text=TEXT),
        "cut-unpriced": ModelSpec(text=TEXT, truncate_after=2),
        "cut-priced": ModelSpec(text=TEXT, truncate_after=2),
        "down": ModelSpec(status=503),
        "backup": ModelSpec(text="from the backup", prompt_tokens=10, completion_tokens=5),
    }
    with FakeServer(models) as srv:
        yield srv


@pytest.fixture
def lab(server, tmp_path):
    prices = {m: PRICE for m in ("priced", "cut-priced", "backup", "down")}
    lab = Lab(base_url=server.base_url, db=tmp_path / "runs.sqlite", retries=0, prices=prices)
    yield lab
    lab.close()


def views(df: pd.DataFrame, models: list[str]) -> dict[str, dict[str, float]]:
    """Each view's total per model, read from the view itself."""
    from llmlab.analysis import _charts
    from llmlab.engine._results import summarise

    return {
        "summary": dict(zip(models, summarise(df, models)["cost_usd"], strict=True)),
        "chart": {r["model"]: r["cost_usd"] for r in _charts._cost_table(df)},
        "%llm cost": session_costs([df]).set_index("model")["cost_usd"].to_dict(),
    }


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b)


def test_every_view_agrees_on_the_same_runs(lab):
    first = lab.compare("Hi", models=["priced", "unpriced", "cut-unpriced", "cut-priced"], stream=True)
    replay = lab.compare("Hi", models=["priced", "unpriced"])  # both answered from the cache
    chain = lab.complete("Hi", models=["down", "backup"])
    missing = lab.compare("Hi", models=["nowhere"])
    df = pd.concat([first.df, replay.df, chain.df, missing.df], ignore_index=True)
    models = ["priced", "unpriced", "cut-unpriced", "cut-priced", "down", "backup", "nowhere"]
    seen = views(df, models)
    for model in models:
        totals = {name: view[model] for name, view in seen.items()}
        assert all(same(v, totals["summary"]) for v in totals.values()), (model, totals)
    summary = seen["summary"]
    priced_call = 100 * 1e-6 + 50 * 2e-6
    assert summary["priced"] == pytest.approx(priced_call)  # the replay spent nothing
    assert math.isnan(summary["unpriced"])  # unknown, never $0
    assert math.isnan(summary["cut-unpriced"])  # tokens were produced, the price is unknown
    assert summary["cut-priced"] > 0  # a cut stream's tokens are billed and counted
    # failed attempts that produced nothing billed nothing: $0, known (as the routing matrix has it)
    assert summary["down"] == 0.0 and summary["nowhere"] == 0.0
    assert summary["backup"] == pytest.approx(10 * 1e-6 + 5 * 2e-6)
    # and the TOTAL of %llm cost is the same rule over all rows: unknown, since some are
    total = session_costs([df]).set_index("model").loc["TOTAL", "cost_usd"]
    assert math.isnan(total) and math.isnan(spend(df))


def test_a_cached_replay_spends_nothing_and_keeps_the_original_cost_beside_it(lab):
    original = lab.compare("Hi", models=["priced"])
    replay = lab.compare("Hi", models=["priced"])
    row = replay.df.iloc[0]
    assert row["cached"] and row["cost_usd"] == 0.0 and row["cost_source"] == "cache"
    assert row["original_cost_usd"] == pytest.approx(original.df.iloc[0]["cost_usd"])
    summary = replay.summary().iloc[0]
    assert summary["cost_usd"] == 0.0
    assert summary["saved_by_cache_usd"] == pytest.approx(original.df.iloc[0]["cost_usd"])
    for name, view in views(replay.df, ["priced"]).items():
        assert view["priced"] == 0.0, name
    assert "cost=$0>" in repr(replay)
    line = metrics_line(row.to_dict())
    assert "$0" in line and "cached (originally $0.000200)" in line
    # the per-call chart and the per-1k estimate use what a call costs, not the $0 replay
    from llmlab.analysis import _charts

    assert _charts._cost_table(replay.df)[0]["cost_per_1k_usd"] == pytest.approx(0.2)


def test_unknown_reads_unknown_in_every_text_view(lab):
    res = lab.compare("Hi", models=["unpriced", "cut-unpriced", "priced"])
    summary = res.summary()
    html, text = table_html(summary), table_text(summary)
    assert html.count("unknown") == 2 and text.count("unknown") == 2
    assert "$0.000200" in html
    from llmlab.analysis._report import render_report, standard_sections

    report = render_report(standard_sections(summary, res.df, {}), {"run": "test"})
    assert report.count(">unknown<") == 2
    from llmlab.cli._main import _format_summary  # what `llmlab demo` prints

    assert _format_summary(summary).count("unknown") == 2
    cut = res.df[res.df["requested_model"] == "cut-unpriced"].iloc[0].to_dict()
    assert cut["status"] == "error" and cut["completion_tokens"] > 0
    ok = res.df[res.df["requested_model"] == "unpriced"].iloc[0].to_dict()
    assert "cost unknown" in metrics_line(ok)
    assert "cost=unknown" in repr(res)
    assert format_usd(float("nan")) == "unknown" and format_usd(0.0) == "$0"


def test_cost_chart_draws_the_same_totals(lab):
    from llmlab import charts

    res = lab.compare("Hi", models=["priced", "unpriced"])
    fig = charts.cost(res.df)
    total = fig.axes[0]
    heights = [p.get_height() for p in total.patches]  # one bar: the unpriced model gets none, not $0
    assert heights == [pytest.approx(res.summary()["cost_usd"].iloc[0])]
    assert "unknown" in [t.get_text() for t in total.texts]


def test_a_call_that_produced_nothing_cost_nothing_in_every_view(lab):
    """A refused connection and a 503: $0 in the row's views, the summary (spend and both savings),
    repr and the routing matrix — never "unknown" beside a $0, never unknown for nothing sent."""
    from llmlab.routing._matrix import build_matrix

    closed = Lab(base_url="http://127.0.0.1:9/v1", api_key_env="", db=":memory:", retries=0, quiet=True)
    try:
        refused = closed.compare("Hi", models=["priced"])
    finally:
        closed.close()
    down = lab.compare("Hi", models=["down"])
    for res in (refused, down):
        row = res.df.iloc[0]
        assert row["status"] == "error" and not row["completion_tokens"] > 0
        summary = res.summary().iloc[0]
        assert (summary["cost_usd"], summary["saved_by_cache_usd"], summary["saved_by_prompt_cache_usd"]) == (0, 0, 0)
        assert "cost=$0>" in repr(res) and "unknown" not in table_text(res.summary())
        line = metrics_line(row.to_dict())
        assert "$0" in line and "unknown" not in line
    scored = down.df.assign(score=0.0)
    assert build_matrix(scored, "score", ["down"], price_as=None).cost.sum() == 0.0


def test_repr_counts_a_fallbacks_failed_attempt_like_summary(lab):
    res = lab.complete("Hi", models=["down", "backup"])
    assert list(res.df["status"]) == ["error", "ok"]
    assert int(res.summary()["errors"].sum()) == 1
    assert "errors=1 failed_attempts=1" in repr(res) and repr(res).startswith("<llmlab.Result ")
    assert res.ok  # the request was answered
