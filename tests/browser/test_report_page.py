"""The demo's report.html in Chromium: nothing spills off the page at common widths."""
from __future__ import annotations

import pytest

from llmlab.analysis._report import write_report
from llmlab.cli._demo import DEMO_PROMPTS, DemoOutput, _render_charts, demo_sections, score_answers
from llmlab.engine._results import summarise

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _runs():
    import pandas as pd

    rows = []
    for i, (prompt_id, task, prompt, expected) in enumerate(DEMO_PROMPTS):
        for model in ("smollm2-135m", "gemma-3-270m"):
            answer = "17 + 25 = 38." if prompt_id == "arith-add" else ("word " * 60 + "x" * 90)
            rows.append({
                "id": len(rows) + 1, "run_id": "r", "request_id": f"{prompt_id}-{model}", "prompt_id": prompt_id,
                "task": task, "expected": expected, "repeat": 0, "prompt": prompt, "requested_model": model,
                "attempt": 1, "status": "ok", "error_type": None, "error_message": None, "waited_s": 0.0,
                "ttft_s": 0.2 + i / 10, "latency_s": 1.0 + i / 5, "output_tokens_per_s": 40.0 - i,
                "prompt_tokens": 30.0 + i, "completion_tokens": 16.0 + i, "tokens_estimated": True,
                "cost_usd": 0.0, "cost_source": "price_table", "cached": False, "response_text": answer,
            })
    return pd.DataFrame(rows)


@pytest.mark.parametrize("width", [1400, 1000])
def test_report_fits_the_page(browser, tmp_path, width):
    runs = score_answers(_runs())
    summary = summarise(runs, ["smollm2-135m", "gemma-3-270m"])
    charts = _render_charts(runs, DemoOutput(tmp_path, summary, runs))
    page_path = write_report(tmp_path / "report.html", demo_sections(summary, runs, charts), {"run": "r"})
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        page.goto(page_path.as_uri())
        page.screenshot(path=str(tmp_path / f"report-{width}.png"), full_page=True)
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"), \
            "the page scrolls sideways"
        body_right = page.evaluate("() => document.body.getBoundingClientRect().right")
        summary_table = page.locator("#summary table")
        assert summary_table.evaluate("t => t.getBoundingClientRect().right") <= body_right + 1, \
            "the summary table runs off the page"
        for box in page.locator(".scroll").all():  # any table wider than the page scrolls in its box
            assert box.evaluate("b => b.getBoundingClientRect().right") <= body_right + 1
        captions = page.locator("figcaption").all_inner_texts()
        assert captions and all(" " in c and "_" not in c for c in captions)
        assert page.locator("img").evaluate_all("imgs => imgs.every(i => i.complete && i.naturalWidth > 0)")
        assert "what-if" in page.locator("#cost").inner_text()
        assert page.locator("#answers .wrong").count() >= 1  # 38 is not 42
    finally:
        context.close()
