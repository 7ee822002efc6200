"""A self-contained HTML report of one run, built from a list of sections.

``render_report(sections, meta)`` lays out any list of :class:`Section`; the builders below make
the standard ones (summary, cost, charts, answers) and ``standard_sections`` puts them in order.
Another section (e.g. a routing analysis) is one more ``Section`` appended to that list.

Everything that comes from a model or a DataFrame is HTML-escaped by the builders: model output
is untrusted text and must not inject markup or script into a page someone opens in a browser.
Tables are sized to fit the page (human headers, integer token counts, empty columns dropped)
and scroll inside their own box if they still cannot.
"""
from __future__ import annotations

import base64
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..base._cost import format_usd
from ..base._display import clean_text, esc
from ..base._files import write_private
from ..base._pricing import PriceTable

__all__ = ["Section", "all_free", "summary_text", "answers_section", "charts_section", "cost_section", "render_report",
           "standard_sections", "summary_section", "write_report"]

# Hosted models the free local ones are priced as, for the what-if cost note.
WHAT_IF_MODELS = ("claude-haiku-4-5", "gpt-5-mini", "claude-sonnet-4-6", "gpt-5")
CHART_CAPTIONS = {
    "latency": "Latency per call: request sent → last token (seconds), per model; a ring marks an answer cut at "
               "the token limit (its latency is the limit's)",
    "ttft": "Time to first token per call (seconds), per model",
    "throughput": "Decode speed after the first token (tokens per second), per model; an answer of one token has "
                  "none (the chart counts those it cannot show); a ring marks an answer cut at the token limit",
    "cost": "Total cost and cost per 1,000 calls, per model (USD)",
    "cost_vs_latency": "Cost against latency, one point per call",
}
_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;
color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
.scroll{max-width:100%;overflow-x:auto}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:.3rem .5rem;vertical-align:top;text-align:left}
th{background:#f4f4f4;font-weight:600}td.num{text-align:right;white-space:nowrap}
td.text{white-space:pre-wrap;overflow-wrap:anywhere;min-width:12rem;max-width:420px}
td.model{overflow-wrap:anywhere;min-width:8rem;max-width:16rem}
.right{color:#2a7d2a;font-weight:600}.cut{color:#8a5a00;font-style:italic}.wrong{color:#c62828;font-weight:600}.err{color:#c62828}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}
dd{margin:0;overflow-wrap:anywhere}
figure{margin:1rem 0}img{max-width:100%;border:1px solid #eee}
.note{color:#555;font-size:.85rem}
"""


@dataclass(frozen=True)
class Section:
    """One ``<h2>`` section. ``body`` is HTML made by a builder that escaped every value."""

    title: str
    body: str
    anchor: str = ""


@dataclass(frozen=True)
class _Col:
    key: str
    header: str
    fmt: Callable[[Any, Mapping[str, Any]], str]
    css: str = ""


# --------------------------------------------------------------------------- formatting

def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    try:
        import pandas as pd

        return bool(pd.isna(value)) if not isinstance(value, (list, tuple, dict)) else False
    except (TypeError, ValueError):
        return False


def _text(value: Any, row: Mapping[str, Any] | None = None) -> str:
    return "" if _missing(value) else esc(str(value))


def _seconds(value: Any, row: Mapping[str, Any] | None = None) -> str:
    return "" if _missing(value) else f"{float(value):.2f}"


def _rate(value: Any, row: Mapping[str, Any] | None = None) -> str:
    return "" if _missing(value) else f"{float(value):.1f}"


def _count(value: Any, row: Mapping[str, Any] | None = None) -> str:
    """Whole numbers as such (token counts are never 16.000)."""
    return "" if _missing(value) else f"{round(float(value)):,}"


def _tokens(value: Any, row: Mapping[str, Any]) -> str:
    text = _count(value)
    return f"~{text}" if text and bool(row.get("tokens_estimated")) else text


def _usd(value: Any, row: Mapping[str, Any] | None = None) -> str:
    return format_usd(value)  # the one cost formatter: "unknown" for NaN, never "$0"


def _shown(frame, columns: Sequence[_Col]) -> list[_Col]:
    """The columns present in ``frame`` that hold at least one value."""
    rows = frame.to_dict("records")
    return [c for c in columns if c.key in frame.columns and any(c.fmt(r.get(c.key), r) for r in rows)]


def _table(frame, columns: Sequence[_Col]) -> str:
    """An escaped table of the columns present in ``frame`` that hold at least one value."""
    rows = frame.to_dict("records")
    shown = _shown(frame, columns)
    head = "".join(f"<th>{esc(c.header)}</th>" for c in shown)
    body = "".join(
        "<tr>" + "".join(f"<td class='{c.css}'>{c.fmt(r.get(c.key), r)}</td>" if c.css
                         else f"<td>{c.fmt(r.get(c.key), r)}</td>" for c in shown) + "</tr>"
        for r in rows)
    return f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


# --------------------------------------------------------------------------- sections

def _with_right(summary, runs=None):
    """``summary`` with ``right`` (correct answers / scored ones) when ``runs`` carries a ``score``."""
    frame = summary.copy()
    if runs is not None and "score" in runs.columns:
        scored = runs[runs["score"].notna()]
        right = scored.groupby("requested_model")["score"].agg(lambda s: f"{int((s >= 1).sum())} / {len(s)}")
        frame["right"] = frame["model"].map(right)
    return frame


def summary_text(summary, runs=None) -> str:
    """The report's summary table as terminal text: the same columns, headers and number formats
    (the full summary stays in summary.csv); text through ``clean_text``, not HTML escapes."""
    import pandas as pd

    frame = _with_right(summary, runs)
    rows = frame.to_dict("records")
    columns = _shown(frame, _summary_columns(frame))
    cells = {c.header: [clean_text(r.get(c.key)) if c.fmt is _text and not _missing(r.get(c.key))
                        else c.fmt(r.get(c.key), r) for r in rows] for c in columns}
    return pd.DataFrame(cells).to_string(index=False)


def summary_section(summary, runs=None) -> Section:
    """One row per model; ``right`` counts correct answers when ``runs`` carries a ``score``."""
    frame = _with_right(summary, runs)
    columns = _summary_columns(frame)
    notes = ["Latency is request sent → last token; TTFT is the time to the first streamed token; "
             "tokens/s is the decode speed after the first token."]
    if "tokens_estimated" in frame.columns and frame["tokens_estimated"].astype(bool).any():
        notes.append("~ marks token counts estimated locally (the endpoint sent no usage in streams).")
    if "right" in frame.columns:
        notes.append("Right answers: calls whose prompt has an expected answer, checked with "
                     "llmlab.scoring (marked ✓/✗ in the answers below).")
    note = " ".join(esc(n) for n in notes)
    return Section("Summary per model", _table(frame, columns) + f"<p class='note'>{note}</p>", "summary")


def _summary_columns(frame) -> list[_Col]:
    retried = "attempts" in frame.columns and bool((frame["attempts"] > frame["n"]).any())
    cached = "cached" in frame.columns and bool(frame["cached"].astype(float).sum() > 0)
    return [
        _Col("model", "model", _text, "model"), _Col("n", "calls", _count, "num"),
        _Col("errors", "errors", _count, "num"),
        *([_Col("attempts", "attempts", _count, "num")] if retried else []),
        *([_Col("cached", "from cache", _count, "num")] if cached else []),
        _Col("right", "right answers", _text, "num"),
        _Col("latency_p50_s", "latency p50 (s)", _seconds, "num"),
        _Col("latency_p95_s", "latency p95 (s)", _seconds, "num"),
        _Col("ttft_p50_s", "TTFT p50 (s)", _seconds, "num"),
        _Col("tokens_per_s_p50", "tokens/s p50", _rate, "num"),
        _Col("prompt_tokens", "tokens in", _tokens, "num"),
        _Col("completion_tokens", "tokens out", _tokens, "num"),
        _Col("cost_usd", "cost (USD)", _usd, "num"),
    ]


def all_free(runs) -> bool:
    """True when every successful call cost exactly $0 (free local models)."""
    ok = runs[runs["status"] == "ok"] if "status" in runs.columns else runs
    costs = ok["cost_usd"].astype(float) if "cost_usd" in ok.columns else None
    return costs is not None and len(costs) > 0 and bool((costs == 0).all())


def cost_section(runs, prices=None, what_if: Iterable[str] = WHAT_IF_MODELS) -> Section | None:
    """For free (local) models, what the same tokens would cost on hosted models; else None."""
    if not all_free(runs):
        return None

    table = prices if prices is not None else PriceTable.bundled()
    ok = runs[runs["status"] == "ok"]
    refs = [(m, price) for m in what_if if (price := table.lookup(m)) is not None]
    rows = []
    for model, part in ok.groupby("requested_model", sort=False):
        tokens = [(p, c) for p, c in zip(part["prompt_tokens"].astype(float),
                                         part["completion_tokens"].astype(float), strict=True)
                  if not (math.isnan(p) or math.isnan(c))]
        row: dict[str, Any] = {"model": model, "calls": len(part)}
        for ref, price in refs:
            total = float(sum(price.cost(p, c) for p, c in tokens))
            row[ref] = f"{_usd(total)} ({_usd(total / len(part) * 1000)}/1k calls)"
        rows.append(row)
    import pandas as pd

    columns = [_Col("model", "model", _text, "model"), _Col("calls", "calls", _count, "num"),
               *[_Col(ref, f"as {ref}", _text, "num") for ref, _ in refs]]
    intro = ("Local models cost nothing: every call in this run is $0, so no cost charts are drawn. "
             "What the same prompt and completion tokens would cost if billed at hosted models' "
             f"prices (what-if, from the price sheet {table.name}):")
    return Section("Cost", f"<p>{esc(intro)}</p>" + _table(pd.DataFrame(rows), columns), "cost")


def charts_section(charts: Mapping[str, bytes], captions: Mapping[str, str] | None = None) -> Section:
    """PNG charts, embedded, each with a human caption."""
    captions = {**CHART_CAPTIONS, **(captions or {})}
    if not charts:
        body = "<p class='note'>No charts (matplotlib is not installed: pip install 'llmlab[notebook]').</p>"
        return Section("Charts", body, "charts")
    parts = []
    for name, png in charts.items():
        data = base64.b64encode(png).decode("ascii")
        label = esc(captions.get(name, name.replace("_", " ").capitalize()))
        parts.append(f"<figure><img alt='{label}' src='data:image/png;base64,{data}'>"
                     f"<figcaption class='note'>{label}</figcaption></figure>")
    return Section("Charts", "\n".join(parts), "charts")


def _expected(value: Any, row: Mapping[str, Any]) -> str:
    if _missing(value):
        return ""
    score = row.get("score")
    if score is None or _missing(score):
        return _text(value)
    mark, css = ("✓", "right") if float(score) >= 1 else ("✗", "wrong")
    why = esc(str(row.get("score_reason") or ""))
    return f"<span class='{css}' title='{why}'>{mark}</span> {_text(value)}"


def _answer(value: Any, row: Mapping[str, Any]) -> str:
    if row.get("status", "ok") != "ok":
        kind = _text(row.get("error_type")) or "error"
        return f"<span class='err'>{kind}: {_text(row.get('error_message'))}</span>" + (
            f"\n{_text(value)}" if _text(value) else "")
    if row.get("finish_reason") == "length":  # the answer is as long as max_tokens allowed, not finished
        return f"{_text(value)}<span class='cut'> … [cut at max_tokens]</span>"
    return _text(value)


def _prompt(value: Any, row: Mapping[str, Any]) -> str:
    """The prompt's text (what a reader can judge the answer against), its id on hover."""
    text = _text(row.get("prompt")) or _text(value)
    return f"<span title='{_text(value)}'>{text}</span>" if text else ""


def answers_section(runs) -> Section:
    """Every call: prompt, model, timings, the answer (escaped) and ✓/✗ against ``expected``."""
    columns = [
        _Col("prompt_id", "prompt", _prompt, "text"), _Col("task", "task", _text),
        _Col("requested_model", "model", _text, "model"),
        _Col("latency_s", "latency (s)", _seconds, "num"), _Col("ttft_s", "TTFT (s)", _seconds, "num"),
        _Col("completion_tokens", "tokens out", _tokens, "num"),
        _Col("expected", "expected", _expected), _Col("response_text", "answer", _answer, "text"),
    ]
    note = ""
    if "finish_reason" in runs.columns and bool((runs["finish_reason"] == "length").any()):
        note = ("<p class='note'>[cut at max_tokens]: the model was still writing when the token limit ended "
                "the answer.</p>")
    return Section("Answers", note + _table(runs, columns), "answers")


def standard_sections(summary, runs, charts: Mapping[str, bytes], prices=None) -> list[Section]:
    """Summary, the what-if cost note (free models only), charts, answers — in that order."""
    cost = cost_section(runs, prices)
    return [s for s in (summary_section(summary, runs), cost, charts_section(charts), answers_section(runs))
            if s is not None]


# --------------------------------------------------------------------------- page

def _meta_html(meta: Mapping[str, Any]) -> str:
    items = "".join(f"<dt>{esc(str(k))}</dt><dd>{esc(str(v))}</dd>"
                    for k, v in meta.items())
    return f"<dl>{items}</dl>"


def render_report(sections: Sequence[Section], meta: Mapping[str, Any],
                  title: str = "llmlab demo report") -> str:
    parts = []
    for section in sections:
        anchor = f" id='{esc(section.anchor)}'" if section.anchor else ""
        parts.append(f"<section{anchor}><h2>{esc(section.title)}</h2>\n{section.body}\n</section>")
    body = "\n".join(parts)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>{_STYLE}</style></head><body>
<h1>{esc(title)}</h1>
{_meta_html(meta)}
{body}
</body></html>
"""


def write_report(path, sections: Sequence[Section], meta: Mapping[str, Any],
                 title: str = "llmlab demo report") -> Path:
    return write_private(Path(path), render_report(sections, meta, title))
