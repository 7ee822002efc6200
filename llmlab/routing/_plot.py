"""Cost-vs-quality figure of a PolicyReport (matplotlib imported only when plotting)."""
from __future__ import annotations

import numpy as np

from ..analysis._charts import figure_and_axes, label


def plot_report(report, ax=None, max_quality_loss=None):
    # A standalone figure (no pyplot state): shown once in notebooks, safe from worker threads.
    fig, ax = figure_and_axes(ax, figsize=(10, 5.5))
    if max_quality_loss is not None:
        ax.axhline(report.reference_quality - max_quality_loss, color="firebrick", ls="--", lw=0.8,
                   label=f"{report.reference} − {max_quality_loss:g} (the loss allowed)")
    _single_models(ax, report.models)
    _threshold_curves(ax, report.threshold_curve, report.routellm)
    _random_lines(ax, report)
    ax.scatter([report.oracle["cost_per_1k_usd"]], [report.oracle["quality"]], marker="*", s=160,
               color="gold", edgecolor="black", zorder=5, label="oracle (upper bound)")
    _policies(ax, report.table)
    _axes(ax, report)
    return fig


def _single_models(ax, models) -> None:
    x, y = models["cost_per_1k_usd"].to_numpy(float), models["quality"].to_numpy(float)
    ax.scatter(x, y, color="grey", s=30, zorder=3, label="single models")
    for name, xi, yi in zip(models.index, x, y, strict=True):
        ax.annotate(label(name.removeprefix("always(").removesuffix(")")), (xi, yi), fontsize=8,
                    xytext=(4, -10), textcoords="offset points", color="dimgrey")
    front = _pareto(x, y)
    if len(front) > 1:
        fx, fy = _mixes(x[front], y[front])
        ax.plot(fx, fy, "--", color="grey", lw=1, label="Pareto frontier (models)")


def _mixes(x: np.ndarray, y: np.ndarray, steps: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Points on the segments between consecutive models. Mixing two models is linear in cost,
    so segments are sampled densely to stay true (curved) when the cost axis is logarithmic."""
    t = np.linspace(0, 1, steps)[None, :]
    xs = (x[:-1, None] * (1 - t) + x[1:, None] * t).ravel()
    ys = (y[:-1, None] * (1 - t) + y[1:, None] * t).ravel()
    return xs, ys


def _pareto(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of models no other model beats on both cost and quality, by rising cost."""
    ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    order = ok[np.lexsort((-y[ok], x[ok]))]
    front, best = [], -np.inf
    for i in order:
        if y[i] > best:
            front.append(i)
            best = y[i]
    return np.array(front, dtype=int)


def _threshold_curves(ax, curve, routellm) -> None:
    for name, part in curve.groupby("policy", sort=False):
        part = part.sort_values("strong_share")
        ax.plot(part["cost_per_1k_usd"], part["quality"], "-", lw=1.2, alpha=0.8,
                label=label(f"sweep: {name}{_apgr_label(routellm, name)}"))


def _apgr_label(routellm, name) -> str:
    """APGR next to the cost axis says what it counts: strong calls (RouteLLM's) or cost."""
    if name not in routellm.index or not np.isfinite(routellm.loc[name, "apgr"]):
        return ""
    by_cost = routellm.loc[name, "apgr_cost"]
    cost = f"{by_cost:.2f} by cost" if np.isfinite(by_cost) else "by cost unknown"
    return f" (APGR {routellm.loc[name, 'apgr']:.2f} by calls, {cost})"


def _random_lines(ax, report) -> None:
    """Expected quality/cost of routing at random between two models: the straight segment."""
    pairs = list(dict.fromkeys((p.weak, p.strong) for p in report._policies.values()
                               if hasattr(p, "weak") and hasattr(p, "strong")))
    if not pairs:
        models = report.models
        cheap = models["cost_per_1k_usd"].idxmin() if models["cost_per_1k_usd"].notna().any() else None
        if cheap is None or cheap == report.reference or report.reference not in models.index:
            return
        pairs = [(cheap, report.reference)]
    for k, (weak, strong) in enumerate(pairs):
        a, b = (_model_row(report.models, m) for m in (weak, strong))
        xs, ys = _mixes(np.array([a["cost_per_1k_usd"], b["cost_per_1k_usd"]], dtype=float),
                        np.array([a["quality"], b["quality"]], dtype=float))
        ax.plot(xs, ys, ":", color="black", lw=1,
                label="random routing (expected)" if k == 0 else None)


def _model_row(models, name):
    return models.loc[name] if name in models.index else models.loc[f"always({name})"]


def _policies(ax, table) -> None:
    for name, row in table.iterrows():
        x, y = row["cost_per_1k_usd"], row["quality"]
        xerr = _err(x, row["cost_ci_lo"], row["cost_ci_hi"])
        yerr = _err(y, row["quality_ci_lo"], row["quality_ci_hi"])
        ax.errorbar([x], [y], xerr=xerr, yerr=yerr, fmt="o", ms=7, capsize=3, zorder=4, label=label(name))


def _err(point, lo, hi):
    if not (np.isfinite(lo) and np.isfinite(hi) and np.isfinite(point)):
        return None
    return np.array([[max(point - lo, 0.0)], [max(hi - point, 0.0)]])


def _axes(ax, report) -> None:
    xs = np.concatenate([report.models["cost_per_1k_usd"].to_numpy(float),
                         report.table["cost_per_1k_usd"].to_numpy(float)])
    xs = xs[np.isfinite(xs)]
    if xs.size and (xs > 0).all() and xs.max() / xs.min() > 100:
        ax.set_xscale("log")
    ax.set_xlabel("cost per 1,000 requests (USD)")
    ax.set_ylabel("mean quality score (0–1)")
    ax.set_title(f"Routing policies: cost vs quality — {report.n_prompts} prompts\n"
                 f"prices: {label(report.price_sheet)}", fontsize=10)
    ax.grid(alpha=0.3)
    # outside the axes: policy points and the legend compete for the same corner otherwise
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    if ax.figure.get_layout_engine() is None:  # our own figures use the constrained layout
        ax.figure.tight_layout()
