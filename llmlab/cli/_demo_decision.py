"""The demo's last section: who should answer what, decided on held-out prompts.

A labelled set (``datasets.generate``) is recorded on the demo's models through the same Lab,
scored, and handed to :func:`llmlab.routing.recommend`; the section shows, per task, the model the
task map picked on the tune half and whether it kept quality on the test half, and every policy's
two (or more) models, the tune-half numbers it was picked on and its savings and quality on the
test half with 95 % intervals. What to use is said plainly: the router picked on the tune half, or
"always <the strongest model>" when it loses more than the margin on the test half; a router whose
savings are negligible means "always the strongest model" in practice, and the section says so. Local
models cost nothing, so the costs are a what-if: each model is priced as a named hosted model.
"""
from __future__ import annotations

import warnings
from typing import Any

from ..base._display import esc

__all__ = ["MAX_QUALITY_LOSS", "MIN_SAVINGS_PCT", "WHAT_IF_PRICES", "decision_runs", "decision_section",
           "per_task_verdicts", "strongest", "use_line", "use_name"]

# What the bundled models are priced as (a what-if): the strong one as a mid-tier hosted model,
# the tiny ones as the cheapest tier.
WHAT_IF_PRICES = {"qwen2.5-coder-0.5b": "claude-sonnet-4-6", "smollm2-135m": "claude-haiku-4-5",
                  "gemma-3-270m": "claude-haiku-4-5"}
MAX_QUALITY_LOSS = 0.02     # the claim tested: saves ≥ MIN_SAVINGS_PCT at a quality loss ≤ this
MIN_SAVINGS_PCT = 40.0
NEGLIGIBLE_SAVINGS_PCT = 5.0   # below this (or an interval reaching 0), routing is not worth a router


def decision_runs(lab: Any, models: list[str], prompts: Any, progress: bool = True) -> Any:
    """Record and score labelled ``prompts`` (``datasets.generate``) on ``models`` (runs with ``score``)."""
    from ..analysis import _scoring as scoring

    res = lab.sweep(prompts, models=models, max_tokens=16, temperature=0, concurrency=1, progress=progress,
                    cache=False)
    return scoring.auto(res.df, checkers=prompts)


def decision_section(runs: Any, models: list[str]) -> tuple[str, str, Any]:
    """(title, escaped HTML body, the Recommendation) for the report."""
    from .. import routing

    price_as = {m: WHAT_IF_PRICES[m] for m in models if m in WHAT_IF_PRICES}
    with warnings.catch_warnings():
        # The demo splits prompts, not tasks, on purpose (each task's pick is judged on new prompts
        # of that task); the section says what that means instead of a warning on the terminal.
        warnings.filterwarnings("ignore", message="recommend: the learned router is judged on", category=RuntimeWarning)
        rec = routing.recommend(runs, models=models, price_as=price_as or None, learned=True, n_boot=1000,
                                max_quality_loss=MAX_QUALITY_LOSS, min_savings_pct=MIN_SAVINGS_PCT)
    what_if = ", ".join(f"{m} as {h}" for m, h in price_as.items())
    verdict = f"<p><b>Use: {esc(use_name(rec, models))}</b> — {esc(use_line(rec, models))}</p>"
    body = (f"<p class='note'>{esc(rec.caption)}. Local models cost nothing: costs are a <b>what-if</b>, each "
            f"model priced as a hosted one ({esc(what_if)}). 95 % paired bootstrap intervals over the test "
            "prompts. The prompts of every task are split at random, so the numbers hold for new prompts of "
            "these tasks, not for new kinds of task.</p>" + verdict +
            f"<h3>Per task: the task map's pick (the cheapest model within {MAX_QUALITY_LOSS:g} of the task's best on "
            "the tune half), judged on the test half</h3>" + _table(_per_task_rows(rec, models)) +
            "<h3>Routing policies: picked on the tune half, judged on the test half</h3>" + _table(_policy_rows(rec)))
    return "Who should answer what", body, rec


def strongest(rec: Any, models: list[str]) -> str:
    """The reference model (the best on the tune half) of a Recommendation."""
    return next((m for m in models if f"always({m})" == rec.report.reference), str(rec.report.reference))


def use_name(rec: Any, models: list[str]) -> str:
    """What to use, as the section's "Use:" names it: a router, or "always <the strongest model>"."""
    return rec.policy.name if rec.policy.name in rec.policies.index else f"always {strongest(rec, models)}"


def use_line(rec: Any, models: list[str]) -> str:
    """Why, and what the choice means in practice, in words (plain text): the pick is made on the
    tune half and the test half's numbers are its evidence."""
    strong = strongest(rec, models)
    claim = f"saves ≥ {MIN_SAVINGS_PCT:g} % at a quality loss ≤ {MAX_QUALITY_LOSS:g}"
    if rec.policy.name not in rec.policies.index:      # no router kept quality: the strongest model alone
        return f"{rec.why}; no router tried here keeps quality, and none passes the claim ({claim})."
    row = rec.policies.loc[rec.policy.name]
    saved = _ci(row["savings_pct"], row["savings_ci_lo"], row["savings_ci_hi"], ".0f", " %")
    diff = _ci(row["quality_diff"], row["quality_diff_ci_lo"], row["quality_diff_ci_hi"], "+.2f")
    evidence = f"{rec.why} ({row['models']}); on the test half it saves {saved}, quality {diff} vs {strong}"
    if rec.claim_holds:
        return f"{evidence}: the claim ({claim}) holds for it."
    if not row["savings_pct"] >= NEGLIGIBLE_SAVINGS_PCT or not row["savings_ci_lo"] > 0:
        share = rec.report.table.get(f"share_{strong}", {}).get(rec.policy.name, float("nan"))
        sends = f" (it sends {share * 100:.0f} % of the prompts there)" if share == share else ""
        return (f"{evidence} — so little that in practice this means always the strongest model, {strong}{sends}; "
                f"no router tried here passes the claim ({claim}).")
    return f"{evidence}; the claim ({claim}) is not shown for it."


def per_task_verdicts(rec: Any, models: list[str]) -> list[str]:
    """Per task (rec.per_task's order): does the task map's pick keep quality on the test half?"""
    strong = strongest(rec, models)
    verdicts = []
    for _, r in rec.per_task.iterrows():
        if r["model"] == strong:
            verdicts.append("the strongest model itself")
        elif r["quality_diff"] >= -MAX_QUALITY_LOSS:
            verdicts.append("keeps quality")
        else:
            verdicts.append(f"loses {-r['quality_diff']:.2f}: not kept, use {strong}")
    return verdicts


def _per_task_rows(rec: Any, models: list[str]) -> list[dict[str, str]]:
    return [{"task": str(task), "model": str(r["model"]), "prompts": f"{int(r['prompts'])}",
             "quality": f"{r['quality']:.2f}", "vs reference": _ci(r["quality_diff"], r["quality_diff_ci_lo"],
                                                                    r["quality_diff_ci_hi"], "+.2f"),
             "savings": f"{r['savings_pct']:.0f} %", "on the test half": verdict}
            for (task, r), verdict in zip(rec.per_task.iterrows(), per_task_verdicts(rec, models), strict=True)]


def _policy_rows(rec: Any) -> list[dict[str, str]]:
    return [{"policy": str(name), "models": str(r["models"]),
             "tune half: savings": _ci(r["tune_savings_pct"], float("nan"), float("nan"), ".0f", " %"),
             "tune half: vs reference": _ci(r["tune_quality_diff"], float("nan"), float("nan"), "+.2f"),
             "test half: savings": _ci(r["savings_pct"], r["savings_ci_lo"], r["savings_ci_hi"], ".0f", " %"),
             "quality": f"{r['quality']:.2f}",
             "vs reference": _ci(r["quality_diff"], r["quality_diff_ci_lo"], r["quality_diff_ci_hi"], "+.2f"),
             "claim": str(r["verdict"])} for name, r in rec.policies.iterrows()]


def _ci(point: float, lo: float, hi: float, fmt: str, unit: str = "") -> str:
    if point != point:      # NaN: unknown
        return "unknown"
    bounds = f" [{lo:{fmt}}, {hi:{fmt}}]" if lo == lo and hi == hi else ""
    return f"{point:{fmt}}{unit}{bounds}"


def _table(rows: list[dict[str, str]]) -> str:
    if not rows:
        return "<p>(nothing to show)</p>"
    head = "".join(f"<th>{esc(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row.values()) + "</tr>" for row in rows)
    return f"<div class='scroll'><table><tr>{head}</tr>{body}</table></div>"
