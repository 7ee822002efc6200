"""Charts from a hand-built runs DataFrame: titles, unit labels, one artist group per model, NaN cost."""
from __future__ import annotations

import math
import pickle
import sys

import numpy as np
import pandas as pd
import pytest

from llmlab import charts
from llmlab.analysis import _charts

MODELS = ["zeta-model", "alpha-model", "mid"]  # deliberately not alphabetical


def runs_frame() -> pd.DataFrame:
    rows = []
    spec = {
        "zeta-model": dict(lat=[0.5, 0.7, 0.6], cost=[1e-4, 1.2e-4, math.nan]),
        "alpha-model": dict(lat=[0.2, 0.3, 0.25], cost=[math.nan] * 3),  # unpriced
        "mid": dict(lat=[1.0, math.nan, 1.1], cost=[0.0, 0.0, 0.0]),  # free, one error
    }
    for model, s in spec.items():
        for i, lat in enumerate(s["lat"]):
            ok = not math.isnan(lat)
            rows.append({
                "requested_model": model, "status": "ok" if ok else "error",
                "latency_s": lat, "ttft_s": lat / 3 if ok else math.nan,
                "output_tokens_per_s": 40.0 + i if ok else math.nan,
                "cost_usd": s["cost"][i], "cached": i == 2,
            })
    return pd.DataFrame(rows)


def bar_heights(ax) -> dict:
    return {c.get_label(): c.patches[0].get_height() for c in ax.containers}


def axis_tick_labels(ax):
    return [t.get_text() for t in ax.get_xticklabels()]


@pytest.mark.parametrize("name, title, ylabel", [
    ("latency", "Latency per model", "latency (s)"),
    ("ttft", "Time to first token per model", "TTFT (s)"),
    ("throughput", "Output throughput per model", "output speed (tokens/s)"),
])
def test_distribution_charts(name, title, ylabel):
    fig = getattr(charts, name)(runs_frame())
    ax = fig.axes[0]
    assert ax.get_title() == title
    assert ax.get_ylabel() == ylabel
    assert ax.get_xlabel() == "model"
    assert axis_tick_labels(ax) == MODELS  # order of first appearance
    # one scatter group per model, labelled with the model
    assert [c.get_label() for c in ax.collections] == MODELS
    assert len(ax.collections[2].get_offsets()) == 2  # the error row is left out


def test_distribution_points_are_the_ok_values():
    fig = charts.latency(runs_frame())
    zeta = fig.axes[0].collections[0].get_offsets()
    assert sorted(np.asarray(zeta)[:, 1]) == [0.5, 0.6, 0.7]


def test_cost_chart_two_panels_and_unknown_not_zero():
    fig = charts.cost(runs_frame())
    assert fig.get_suptitle() == "Cost per model"
    total, per_1k = fig.axes
    assert total.get_ylabel() == "total cost (USD)"
    assert per_1k.get_ylabel() == "cost per 1,000 calls (USD)"
    for ax in (total, per_1k):
        assert ax.get_title()
        assert axis_tick_labels(ax) == MODELS
        assert "alpha-model" not in bar_heights(ax)  # unpriced: no bar at all, not a $0 bar
        assert "unknown" in [t.get_text() for t in ax.texts]
    heights = bar_heights(total)
    # cache hits are excluded from the total; the unpriced zeta call is not counted as $0
    assert heights["zeta-model"] == pytest.approx(2.2e-4)
    assert heights["mid"] == 0.0  # a free model is a real $0
    per = bar_heights(per_1k)
    assert per["zeta-model"] == pytest.approx(1.1e-4 * 1000)


def test_cost_on_given_axes_labels_per_1k():
    fig = charts.cost(runs_frame())  # noqa: F841 - just make sure the two-panel path ran
    from matplotlib.figure import Figure

    host = Figure()
    ax = host.subplots()
    assert charts.cost(runs_frame(), ax=ax) is host
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "/1k calls" in texts and "unknown" in texts
    assert ax.get_ylabel() == "total cost (USD)"


def test_cost_vs_latency():
    fig = charts.cost_vs_latency(runs_frame())
    ax = fig.axes[0]
    assert ax.get_title() == "Cost vs latency per call"
    assert ax.get_xlabel() == "latency (s)"
    assert ax.get_ylabel() == "cost per call (USD)"
    # alpha has no price: not drawn, named in a note instead
    assert [c.get_label() for c in ax.collections] == ["zeta-model", "mid"]
    assert any("cost unknown: alpha-model" in t.get_text() for t in ax.texts)


def test_all_unknown_costs():
    df = runs_frame().assign(cost_usd=math.nan)
    fig = charts.cost(df)
    assert all(len(ax.patches) == 0 for ax in fig.axes)
    fig = charts.cost_vs_latency(df)
    assert any("no priced" in t.get_text() for t in fig.axes[0].texts)


def test_no_ok_rows_still_draws_a_titled_figure():
    df = runs_frame().assign(status="error")
    fig = charts.latency(df)
    assert fig.axes[0].get_title() == "Latency per model"
    assert any("no successful calls" in t.get_text() for t in fig.axes[0].texts)


def test_missing_column_is_a_clear_error():
    with pytest.raises(ValueError, match="latency_s"):
        charts.latency(pd.DataFrame({"requested_model": ["a"]}))


def test_draws_on_given_axes():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.subplots()
    assert charts.latency(runs_frame(), ax=ax) is fig
    assert ax.get_title() == "Latency per model"


def test_standalone_figures_render_and_pickle():
    fig = charts.throughput(runs_frame())
    png = fig._repr_png_()
    assert png.startswith(b"\x89PNG")
    again = pickle.loads(pickle.dumps(fig))
    assert again.axes[0].get_title() == "Output throughput per model"


def test_plot_accessor():
    acc = charts.PlotAccessor(runs_frame())
    for name in charts.CHARTS:
        assert getattr(acc, name)().axes
    assert "latency" in repr(acc)


def test_charts_do_not_import_matplotlib_at_import_time():
    import subprocess

    code = "import llmlab.charts, sys; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=str(__import__('pathlib').Path(charts.__file__).parents[1]))
    assert out.stdout.strip() == "False", out.stderr


def test_cost_of_cache_replays_is_zero_not_unknown():
    from llmlab.notebook._board import session_costs

    df = pd.DataFrame({"requested_model": ["m", "m"], "cost_usd": [0.002, 0.002], "cached": [True, True],
                       "status": ["ok", "ok"], "prompt_tokens": [10.0, 10.0], "completion_tokens": [5.0, 5.0]})
    assert _charts._cost_table(df)[0]["cost_usd"] == 0.0
    assert session_costs([df]).set_index("model").loc["m", "cost_usd"] == 0.0


@pytest.mark.parametrize("name", ["latency", "ttft", "throughput"])
def test_cut_answers_are_ringed_and_missing_values_counted(name):
    """An answer cut at max_tokens is marked; a one-token answer (no decode speed) is counted on
    the chart instead of vanishing from it."""
    df = runs_frame()
    df["finish_reason"] = "stop"
    df.loc[0, "finish_reason"] = "length"                # zeta-model's first call: cut
    df.loc[4, "output_tokens_per_s"] = math.nan          # alpha-model's second: one token
    ax = getattr(charts, name)(df).axes[0]
    rings = [line for line in ax.lines if line.get_label() == "answer cut at max_tokens"]
    assert len(rings) == 1 and len(rings[0].get_xdata()) == 1
    column = {"latency": "latency_s", "ttft": "ttft_s", "throughput": "output_tokens_per_s"}[name]
    assert rings[0].get_ydata()[0] == df.loc[0, column]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["answer cut at max_tokens"]
    notes = [t.get_text() for t in ax.texts]
    if name == "throughput":
        assert "1 of 3 not shown" in notes and "not shown: 1 one-token answer (no decode" in ax.get_title()
    else:
        assert not any("not shown" in t for t in notes) and "not shown" not in ax.get_title()


def test_no_cut_answers_no_rings_no_legend():
    ax = charts.latency(runs_frame().assign(finish_reason="stop")).axes[0]
    assert ax.get_legend() is None and not [li for li in ax.lines if "cut" in li.get_label()]
