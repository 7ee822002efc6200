"""The demo's last section: who should answer what, decided on held-out prompts.

A labelled set (``datasets.generate``) is recorded on the demo's models through the same Lab,
scored, and handed to :func:`llmlab.routing.recommend`; the section shows, per task, the cheapest
model that keeps quality and the best policy's savings and quality on the test half with 95 %
intervals. Local models cost nothing, so the costs are a what-if: each model is priced as a named
hosted model, and the section says so.
"""
from __future__ import annotations

from typing import Any

from ..base._display import esc

__all__ = ["WHAT_IF_PRICES", "decision_runs", "decision_section"]

# What the bundled models are priced as (a what-if): the strong one as a mid-tier hosted model,
# the tiny ones as the cheapest tier.
WHAT_IF_PRICES = {"qwen2.5-coder-0.5b": "claude-sonnet-4-6", "smollm2-135m": "claude-haiku-4-5",
                  "gemma-3-270m": "claude-haiku-4-5"}


def decision_runs(lab: Any, models: list[str], n_prompts: int) -> Any:
    """Record and score ``n_prompts`` generated labelled prompts on ``models`` (runs with ``score``)."""
    from .. import datasets
    from ..analysis import _scoring as scoring

    prompts = datasets.generate(n=n_prompts, seed=0)
    res = lab.sweep(prompts, models=models, max_tokens=16, temperature=0, concurrency=1, progress=False,
                    cache=False)
    return scoring.auto(res.df, checkers=prompts)


def decision_section(runs: Any, models: list[str]) -> tuple[str, str, Any]:
    """(title, escaped HTML body, the Recommendation) for the report."""
    from .. import routing

    price_as = {m: WHAT_IF_PRICES[m] for m in models if m in WHAT_IF_PRICES}
    rec = routing.recommend(runs, models=models, price_as=price_as or None, learned=True, n_boot=1000)
    what_if = ", ".join(f"{m} as {h}" for m, h in price_as.items())
    outcome = "holds" if rec.claim_holds else \
        "is <b>not</b> shown for any router; this one has the best quality bound"
    verdict = (f"<p><b>Use: {esc(rec.policy.name)}</b> — the claim (saves ≥ 40 % at a quality loss ≤ 0.02) "
               f"{outcome}.</p>")
    body = (f"<p class='note'>{esc(rec.caption)}. Local models cost nothing: costs are a <b>what-if</b>, each "
            f"model priced as a hosted one ({esc(what_if)}). 95 % paired bootstrap intervals over the test "
            "prompts.</p>" + verdict + "<h3>Per task: the cheapest model that keeps quality (chosen on the tune "
            "half, judged on the test half)</h3>" + _table(_per_task_rows(rec)) +
            "<h3>Routing policies on the test half</h3>" + _table(_policy_rows(rec)))
    return "Who should answer what", body, rec


def _per_task_rows(rec: Any) -> list[dict[str, str]]:
    return [{"task": str(task), "model": str(r["model"]), "prompts": f"{int(r['prompts'])}",
             "quality": f"{r['quality']:.2f}", "vs reference": _ci(r["quality_diff"], r["quality_diff_ci_lo"],
                                                                    r["quality_diff_ci_hi"], "+.2f"),
             "savings": f"{r['savings_pct']:.0f} %"} for task, r in rec.per_task.iterrows()]


def _policy_rows(rec: Any) -> list[dict[str, str]]:
    return [{"policy": str(name), "savings": _ci(r["savings_pct"], r["savings_ci_lo"], r["savings_ci_hi"], ".0f", " %"),
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
