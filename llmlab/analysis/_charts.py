"""Matplotlib figures from a runs DataFrame (the row schema in docs/architecture.md).

Each chart is ``f(df, ax=None) -> matplotlib.figure.Figure``. Without ``ax`` the figure is a
standalone ``Figure`` (not registered with pyplot): nothing global is touched, no backend is
chosen, it is safe to build from the widget's worker thread, and a notebook shows it exactly
once (it has ``_repr_png_``; pyplot figures would also be flushed at the end of the cell).
With ``ax`` the chart draws there and returns ``ax.figure``.

Models appear in order of first appearance in ``df`` and keep one colour across charts; their
names are drawn through the display sanitiser (:func:`label`: control and bidi characters made
visible, ``$`` never read as mathtext). matplotlib is imported inside the functions so ``import
llmlab`` stays fast.
"""
from __future__ import annotations

import io
import math
from typing import Any

from ..base._cost import call_costs, cost_table, format_usd
from ..base._display import clean_text
from ..base._errors import InputError

__all__ = ["latency", "ttft", "throughput", "cost", "cost_vs_latency", "PlotAccessor", "CHARTS", "TITLES", "label"]

MODEL_COL = "requested_model"
_FIGSIZE = (7.0, 4.0)


# --------------------------------------------------------------------------- figure plumbing

def _figure_class():
    """A Figure subclass that renders itself as PNG in IPython (created on first use)."""
    cls = globals().get("ChartFigure")
    if cls is None:
        from matplotlib.figure import Figure

        class ChartFigure(Figure):
            """A standalone Figure that IPython displays as PNG."""

            def _repr_png_(self) -> bytes:
                buf = io.BytesIO()
                self.savefig(buf, format="png", bbox_inches="tight")
                return buf.getvalue()

        ChartFigure.__module__ = __name__
        ChartFigure.__qualname__ = "ChartFigure"
        globals()["ChartFigure"] = cls = ChartFigure
    return cls


def __getattr__(name: str):
    # Lets pickle find llmlab.charts.ChartFigure in a process that never drew a chart.
    if name == "ChartFigure":
        return _figure_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def figure_and_axes(ax, figsize=_FIGSIZE):
    if ax is not None:
        return ax.figure, ax
    fig = _figure_class()(figsize=figsize, layout="constrained")
    return fig, fig.subplots()


def label(text: Any) -> str:
    """A name as a chart draws it: through the display sanitiser, and ``$`` escaped so a model
    name is never parsed as matplotlib mathtext."""
    return clean_text(text).replace("$", r"\$")


def _checked(df, *columns: str):
    """``df`` if it has the columns a chart needs, its model names as the chart labels them."""
    missing = [c for c in (MODEL_COL, *columns) if c not in df.columns]
    if missing:
        raise InputError(f"runs DataFrame lacks column(s) {', '.join(missing)} (see the row schema).")
    return df.assign(**{MODEL_COL: df[MODEL_COL].map(label)})


def model_order(df) -> list[str]:
    """Models in order of first appearance (what the user listed, not alphabetical)."""
    return list(dict.fromkeys(df[MODEL_COL].astype(str)))


def _ok_rows(df):
    return df[df["status"] == "ok"] if "status" in df.columns else df


def _colour(i: int) -> str:
    return f"C{i % 10}"


def _model_ticks(ax, models: list[str]) -> None:
    ax.set_xticks(range(1, len(models) + 1))
    long = len(models) > 3 or any(len(m) > 14 for m in models)
    ax.set_xticklabels(models, rotation=20 if long else 0, ha="right" if long else "center")
    ax.set_xlim(0.4, len(models) + 0.6)
    ax.set_xlabel("model")


def _no_data(ax, message: str = "no successful calls to plot") -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="#777")


# --------------------------------------------------------------------------- distributions

# Why a successful call can lack a value, for the note that counts calls not drawn.
_NOT_SHOWN = {
    "output_tokens_per_s": "one-token answer{s} (no decode speed to measure)",
    "ttft_s": "call{s} not streamed (no first token to time)",
    "latency_s": "call{s} without a measured latency",
}


def _distribution(df, ax, column: str, title: str, ylabel: str):
    """Box plot plus the individual calls (one scatter group per model) of ``column``.

    Answers cut at ``max_tokens`` (``finish_reason == "length"``) are ringed: their latency and
    token counts are the limit's, not the answer's. Successful calls without a value are counted
    per model and the title says why, so no call disappears from a chart silently."""
    df = _checked(df, column)
    fig, ax = figure_and_axes(ax)
    models = model_order(df)
    ok = _ok_rows(df)
    parts = [ok[ok[MODEL_COL].astype(str) == m] for m in models]
    series = [part[column].astype(float).dropna().to_numpy() for part in parts]
    with_data = [(i, s) for i, s in enumerate(series) if len(s)]
    if with_data:
        ax.boxplot([s for _, s in with_data], positions=[i + 1 for i, _ in with_data],
                   widths=0.5, showfliers=False, medianprops={"color": "black"})
    for i, (model, values) in enumerate(zip(models, series, strict=True)):
        _strip(ax, i + 1, values, model, _colour(i))
    _ring_cut_answers(ax, parts, column)
    missing = [len(part) - len(values) for part, values in zip(parts, series, strict=True)]
    if models:
        _model_ticks(ax, models)
    if not with_data:
        _no_data(ax)
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    if any(missing) and with_data:
        _count_not_shown(ax, parts, missing)
        why = _NOT_SHOWN.get(column, "call{s} without a value").format(s="" if sum(missing) == 1 else "s")
        title += f"\nnot shown: {sum(missing)} {why}"
    ax.set_title(title)
    return fig


def _strip(ax, x: float, values, label: str, colour: str) -> None:
    # Deterministic spread instead of random jitter, so figures are reproducible.
    import numpy as np

    n = len(values)
    offsets = np.linspace(-0.15, 0.15, n) if n > 1 else np.zeros(n)
    ax.scatter(x + offsets, values, s=14, alpha=0.7, color=colour, label=label, zorder=3)


def _cut(part):
    return part["finish_reason"].astype(str).eq("length") if "finish_reason" in part.columns else None


def _ring_cut_answers(ax, parts, column: str) -> None:
    """Ring the points of answers cut at max_tokens (same deterministic spread as ``_strip``)."""
    import numpy as np

    xs, ys = [], []
    for i, part in enumerate(parts):
        values = part[column].astype(float)
        cut = _cut(part)
        if cut is None:
            continue
        shown = values.notna().to_numpy()
        n = int(shown.sum())
        offsets = np.linspace(-0.15, 0.15, n) if n > 1 else np.zeros(n)
        marked = cut.to_numpy()[shown]
        xs += list(i + 1 + offsets[marked])
        ys += list(values.to_numpy()[shown][marked])
    if xs:
        ax.plot(xs, ys, linestyle="none", marker="o", markersize=10, markerfacecolor="none",
                markeredgecolor="black", markeredgewidth=1.2, label="answer cut at max_tokens", zorder=4)
        ax.legend(handles=[ax.lines[-1]], loc="best", fontsize=8)


def _count_not_shown(ax, parts, missing: list[int]) -> None:
    for i, (part, n) in enumerate(zip(parts, missing, strict=True)):
        if n:
            ax.text(i + 1, 0.02, f"{n} of {len(part)} not shown", ha="center", va="bottom", fontsize=8,
                    color="#555", transform=ax.get_xaxis_transform())


def latency(df, ax=None):
    """Distribution of end-to-end latency (``latency_s``) of successful calls, per model."""
    return _distribution(df, ax, "latency_s", "Latency per model", "latency (s)")


def ttft(df, ax=None):
    """Distribution of time to first token (``ttft_s``; streamed calls only), per model. For
    calls that reasoned before answering, the first token of the answer itself
    (``ttft_answer_s``) is drawn beside each model's box as hollow diamonds: reasoning time is
    the gap between the two."""
    fig, ax = figure_and_axes(ax)
    _distribution(df, ax, "ttft_s", "Time to first token per model", "TTFT (s)")
    if {"ttft_reasoning_s", "ttft_answer_s"} <= set(df.columns):
        _answer_after_reasoning(ax, df)
    return fig


def _answer_after_reasoning(ax, df) -> None:
    import numpy as np

    ok = _ok_rows(df)
    drawn = False
    for i, model in enumerate(model_order(df)):
        part = ok[ok[MODEL_COL].astype(str) == model]
        reasoned = part["ttft_reasoning_s"].astype(float).notna() & part["ttft_answer_s"].astype(float).notna()
        values = part.loc[reasoned, "ttft_answer_s"].astype(float).to_numpy()
        if len(values):
            offsets = np.linspace(-0.08, 0.08, len(values)) if len(values) > 1 else np.zeros(1)
            ax.plot(i + 1.3 + offsets, values, linestyle="none", marker="D", markersize=5, markerfacecolor="none",
                    markeredgecolor=_colour(i), zorder=3, label="first answer token (after reasoning)" if not drawn
                    else None)
            drawn = True
    if drawn:
        ax.legend(handles=[line for line in ax.lines if line.get_label() == "first answer token (after reasoning)"]
                  + [line for line in ax.lines if line.get_label() == "answer cut at max_tokens"],
                  loc="best", fontsize=8)


def throughput(df, ax=None):
    """Distribution of output speed (``output_tokens_per_s``), per model."""
    return _distribution(df, ax, "output_tokens_per_s", "Output throughput per model",
                         "output speed (tokens/s)")


# --------------------------------------------------------------------------- cost

def _cost_table(df) -> list[dict[str, Any]]:
    """Per model: spend, cost per 1k calls, unpriced calls (llmlab.base._cost: the one cost rule)."""
    return cost_table(df, models=model_order(df)).to_dict("records")


def cost(df, ax=None):
    """Total cost and cost per 1,000 calls per model.

    Without ``ax``: two panels (total | per 1k calls). With one ``ax``: the totals, each bar
    labelled with its per-1k figure too. The totals are the spend of ``summary()`` and
    ``%llm cost`` (cache hits spend $0); an unknown cost is labelled "unknown", never drawn as
    $0. The per-1k estimate prices successful calls, cache hits at their original cost.
    """
    df = _checked(df, "cost_usd")
    table = _cost_table(df)
    if ax is not None:
        _cost_panel(ax, table, "cost_usd", "total cost (USD)", with_per_1k=True)
        ax.set_title("Total cost per model")
        return ax.figure
    fig = _figure_class()(figsize=(10.0, 4.0), layout="constrained")
    left, right = fig.subplots(1, 2)
    _cost_panel(left, table, "cost_usd", "total cost (USD)")
    left.set_title("Spent (cache hits cost $0)")
    _cost_panel(right, table, "cost_per_1k_usd", "cost per 1,000 calls (USD)")
    right.set_title("Per 1,000 calls")
    fig.suptitle("Cost per model")
    return fig


def _cost_panel(ax, table, key: str, ylabel: str, with_per_1k: bool = False) -> None:
    if not table:
        _no_data(ax, "no calls to plot")
    for i, row in enumerate(table):
        value = row[key]
        if math.isnan(value):
            # Unknown is not zero: leave the slot empty and say so.
            ax.text(i + 1, 0.02, "unknown", ha="center", va="bottom", color="#777",
                    transform=ax.get_xaxis_transform())
            continue
        bars = ax.bar(i + 1, value, width=0.6, color=_colour(i), edgecolor="black",
                      linewidth=0.5, label=row["model"])
        label = format_usd(value)
        if with_per_1k and not math.isnan(row["cost_per_1k_usd"]):
            label += f"\n({format_usd(row['cost_per_1k_usd'])}/1k calls)"
        if row["unpriced_calls"]:
            label += f"\n+{row['unpriced_calls']} unpriced"
        ax.bar_label(bars, [label], fontsize=8, padding=2)
    if table:
        _model_ticks(ax, [r["model"] for r in table])
    ax.set_ylabel(ylabel)
    known = [r[key] for r in table if not math.isnan(r[key])]
    top = max(known, default=0.0)
    ax.set_ylim(0, top * 1.3 if top > 0 else 1.0)  # headroom for the bar labels


def cost_vs_latency(df, ax=None):
    """Each successful call as a point: latency (x) vs cost (y), one colour per model; a cache
    hit is drawn at its original call's cost and latency.

    Models whose price is unknown are listed in a note instead of being drawn at $0.
    """
    df = _checked(df, "latency_s", "cost_usd")
    fig, ax = figure_and_axes(ax)
    ok = _ok_rows(df)
    models = model_order(df)
    unpriced, xmax, ymax = [], 0.0, 0.0
    for i, model in enumerate(models):
        part = ok[ok[MODEL_COL].astype(str) == model]
        each = call_costs(part) if "cached" in part.columns else part["cost_usd"].astype(float)
        keep = each.notna() & part["latency_s"].astype(float).notna()
        if not keep.any():
            unpriced.append(model)
            continue
        x, y = part.loc[keep, "latency_s"].astype(float), each[keep]
        ax.scatter(x, y, s=20, alpha=0.75, color=_colour(i), label=model, clip_on=False)
        xmax, ymax = max(xmax, x.max()), max(ymax, y.max())
    if unpriced:
        ax.text(0.99, 0.99, "cost unknown: " + ", ".join(unpriced), transform=ax.transAxes,
                ha="right", va="top", fontsize=8, color="#777")
    if len(unpriced) == len(models):
        _no_data(ax, "no priced successful calls")
    else:
        ax.legend(loc="upper left", fontsize=8)
    ax.set_xlabel("latency (s)")
    ax.set_ylabel("cost per call (USD)")
    ax.set_title("Cost vs latency per call")
    ax.set_xlim(0, xmax * 1.1 if xmax > 0 else 1.0)
    ax.set_ylim(0, ymax * 1.15 if ymax > 0 else 1.0)
    return fig


CHARTS = {
    "latency": latency, "ttft": ttft, "throughput": throughput, "cost": cost,
    "cost_vs_latency": cost_vs_latency,
}
# Short names for tabs and captions (the widget's chart tabs, the demo report).
TITLES = {"latency": "Latency", "ttft": "TTFT", "throughput": "Throughput", "cost": "Cost",
          "cost_vs_latency": "Cost vs latency"}


class PlotAccessor:
    """``res.plot.latency()`` etc.: the chart functions bound to one runs DataFrame."""

    def __init__(self, df):
        self._df = df

    def latency(self, ax=None):
        return latency(self._df, ax=ax)

    def ttft(self, ax=None):
        return ttft(self._df, ax=ax)

    def throughput(self, ax=None):
        return throughput(self._df, ax=ax)

    def cost(self, ax=None):
        return cost(self._df, ax=ax)

    def cost_vs_latency(self, ax=None):
        return cost_vs_latency(self._df, ax=ax)

    def __repr__(self) -> str:
        return f"<PlotAccessor: {', '.join(CHARTS)}>"
