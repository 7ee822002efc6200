"""A self-contained HTML report of one run: summary table, embedded PNG charts, the answers.

Everything that comes from a model or a DataFrame is HTML-escaped: model output is untrusted
text and must not be able to inject markup or script into a page someone opens in a browser.
"""
from __future__ import annotations

import base64
from pathlib import Path

from ._cost import with_costs_shown
from ._display import clean_frame, esc, html_clean
from ._files import write_private

__all__ = ["render_report", "write_report"]

ANSWER_COLUMNS = ("prompt_id", "task", "requested_model", "status", "latency_s", "ttft_s",
                  "completion_tokens", "expected", "response_text", "error_message")
_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;
color:#222;padding:0 1rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:.3rem .5rem;vertical-align:top;text-align:left}
th{background:#f4f4f4}td.text{white-space:pre-wrap;max-width:420px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{font-weight:600}
img{max-width:100%;border:1px solid #eee;margin:.5rem 0}.note{color:#666;font-size:.85rem}
"""


def _meta_html(meta: dict) -> str:
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>"
                    for k, v in meta.items())
    return f"<dl>{items}</dl>"


def _charts_html(charts: dict[str, bytes]) -> str:
    if not charts:
        return ("<p class='note'>No charts (matplotlib is not installed: pip install -e '.[notebook]' "
                "in the llmlab checkout).</p>")
    parts = []
    for name, png in charts.items():
        data = base64.b64encode(png).decode("ascii")
        label = esc(name.replace("_", " "))
        parts.append(f"<figure><img alt='{label}' src='data:image/png;base64,{data}'>"
                     f"<figcaption class='note'>{label}</figcaption></figure>")
    return "\n".join(parts)


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return esc(value)


def _answers_html(runs) -> str:
    columns = [c for c in ANSWER_COLUMNS if c in runs.columns]
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = []
    for row in runs[columns].itertuples(index=False):
        cells = "".join(f"<td class='text'>{_cell(v)}</td>" if c in ("response_text", "error_message")
                        else f"<td>{_cell(v)}</td>" for c, v in zip(columns, row, strict=True))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render_report(summary, runs, charts: dict[str, bytes], meta: dict,
                  title: str = "llmlab demo report") -> str:
    # Dollar columns through the one cost formatter: an unknown cost reads "unknown", never blank or $0.
    summary_table = with_costs_shown(clean_frame(summary, html_clean)).to_html(index=False, escape=True, na_rep="",
                                                                               float_format="{:.4g}".format)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>{_STYLE}</style></head><body>
<h1>{esc(title)}</h1>
{_meta_html(meta)}
<h2>Summary per model</h2>
{summary_table}
<p class="note">Latency is request sent → last byte; TTFT is time to the first streamed token;
tokens/s is decode speed after the first token. The local server sends no token usage in streamed
responses, so token counts are estimated locally. Local models cost nothing.</p>
<h2>Charts</h2>
{_charts_html(charts)}
<h2>Answers</h2>
{_answers_html(runs)}
</body></html>
"""


def write_report(path, summary, runs, charts: dict[str, bytes], meta: dict,
                 title: str = "llmlab demo report") -> Path:
    return write_private(path, render_report(summary, runs, charts, meta, title))
