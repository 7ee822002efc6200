"""The notebook front end in a real JupyterLab + Chromium: what a user sees, measured in the DOM."""
from __future__ import annotations

import json
import re

import pytest
from notebook_ui import EVIL_NAME, LONG_NAME, ROOT, Notebook, write_notebook
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Lengths of each live column's answer text, in the order shown.
COLUMN_TEXTS = """(root) => Array.from(root.querySelectorAll('.llmlab-col pre')).map(p => p.textContent.length)"""
# True once each of the first len(before) columns shows more text than before.
GREW = """([root, before]) => { const now = Array.from(root.querySelectorAll('.llmlab-col pre'))
    .map(p => p.textContent.length); return before.every((n, i) => now[i] > n); }"""


# Click Stop, resolve with the milliseconds until the output says "[cancelled]" and "Stopped:" (the
# page's own MutationObserver sees it: no polling by the test driver). The held stream never ends by
# itself, so seeing the stop at all means Stop cut it; STOP_BOUND_MS says "promptly" with room for
# a loaded 2-core machine (click → JupyterLab → kernel → cancel → comm → DOM; well under 1 s idle,
# over 1 s seen once under load). The page gives up after a minute, so a stop never seen fails
# with that message rather than a driver timeout.
STOP_BOUND_MS = 5000
STOP_TIMER = """([root, button]) => new Promise((resolve, reject) => {
    const began = performance.now();
    const done = () => root.textContent.includes('[cancelled]') && root.textContent.includes('Stopped:');
    const observer = new MutationObserver(() => {
        if (done()) { observer.disconnect(); resolve(performance.now() - began); } });
    observer.observe(root, {subtree: true, childList: true, characterData: true});
    setTimeout(() => { observer.disconnect(); reject(new Error('no Stopped after 60 s')); }, 60000);
    button.click();
})"""


def _notebook(page, jupyter, name, cells) -> Notebook:
    write_notebook(jupyter.work / name, cells)
    return Notebook(page, jupyter, name).open()


def _box(locator):
    return locator.evaluate("e => { const r = e.getBoundingClientRect(); return [r.left, r.right, r.width]; }")


def test_llm_magic_streams_three_columns_then_shows_metrics(page, jupyter, fake, hold):
    streamed = ("alpha", "beta", "gamma")
    for name in streamed:
        hold(name, at=8)  # eight words, then the server holds each stream until released
    nb = _notebook(page, jupyter, "magic.ipynb", [
        "%load_ext llmlab",
        f"%%llm model=alpha,beta,gamma,'{LONG_NAME}' max_tokens=200\nTell me a story.",
    ])
    nb.run(0)
    nb.run(1, wait=False)
    out = nb.output(1)
    expect(out.locator(".llmlab-col")).to_have_count(4, timeout=30_000)
    for name in streamed:
        fake.wait_held(name, 1, timeout=60)
    for i in range(3):
        expect(out.locator(".llmlab-col pre").nth(i)).to_have_text(re.compile(r"\S.{10,}"), timeout=30_000)
    first = out.evaluate(COLUMN_TEXTS)[:3]  # shown mid-stream: the rest is still held
    page.screenshot(path=str(jupyter.work / "streaming-1.png"))
    for name in streamed:
        fake.release(name)
    page.wait_for_function(GREW, arg=[out.element_handle(), first], timeout=30_000)
    page.screenshot(path=str(jupyter.work / "streaming-2.png"))
    nb.wait_done(1)

    # the live widget is replaced by the static record: four columns with their metrics
    cols = out.locator(".llmlab-col")
    expect(cols).to_have_count(4)
    footers = out.locator(".llmlab-metrics").all_inner_texts()
    for footer in footers:
        assert re.search(r"TTFT \d+\.\d\d s · latency \d+\.\d\d s · ~?\d+ tok", footer), footer
    assert "$0.001200" in footers[0] and "$0.000700" in footers[1] and "cost unknown" in footers[2]
    assert all("[done]" in t for t in out.locator(".llmlab-col").all_inner_texts())

    # layout: each column inside the output area, footers single-spaced, long names wrapped
    area_left, area_right, _ = _box(out.locator(".jp-OutputArea-output").first)
    for i in range(4):
        left, right, _ = _box(cols.nth(i))
        assert area_left - 1 <= left and right <= area_right + 1, (i, left, right, area_left, area_right)
    line = out.locator(".llmlab-metrics").first.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)")
    assert line < 20, f"footer line height {line}px (double-spaced)"
    name = cols.nth(3).locator(".llmlab-model")
    assert name.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), "the long model name overflows its column"

    # the unpriced model's warning points at the cell, not at llmlab's source
    stderr = out.locator('[data-mime-type="application/vnd.jupyter.stderr"]').all_inner_texts()
    warning = "\n".join(stderr)
    assert "PriceWarning" in warning and "'gamma'" in warning
    assert "llmlab/" not in warning and "_call.py" not in warning, warning


def test_model_output_and_model_names_never_run_as_html(page, jupyter):
    nb = _notebook(page, jupyter, "xss.ipynb", [
        "%load_ext llmlab",
        f'%%llm model=xss-img,xss-svg,xss-script,"{EVIL_NAME}" max_tokens=100\nSay something nasty.',
    ])
    title = page.title()
    nb.run(0)
    nb.run(1, wait=False)
    out = nb.output(1)
    expect(out.locator(".llmlab-col")).to_have_count(4, timeout=30_000)
    expect(out.locator(".llmlab-col pre").first).to_have_text(re.compile(r"\S.{5,}"), timeout=30_000)
    live = out.evaluate("r => r.querySelectorAll('.llmlab-col img, .llmlab-col svg, .llmlab-col script').length")
    nb.wait_done(1)
    # An injected handler's chance to fire, as an event: an image of our own that fails to load,
    # added after the output; once its onerror has run, one in the output would have too.
    out.evaluate("""r => { const probe = document.createElement('img');
        probe.onerror = () => { window.__probe = true; }; probe.src = 'data:,not-an-image'; r.appendChild(probe); }""")
    page.wait_for_function("() => window.__probe === true", timeout=30_000)
    final = out.evaluate("r => r.querySelectorAll('.llmlab-col img, .llmlab-col svg, .llmlab-col script').length")
    assert (live, final) == (0, 0), "model output became markup"
    assert page.evaluate("() => window.__pwned") is None and page.title() == title
    assert page.dialogs == []
    shown = out.inner_text()
    for payload in ("<img src=x onerror=", "<svg onload=", "<script>window.__pwned", EVIL_NAME):
        assert payload in shown, f"{payload!r} is not shown as text"


def test_compare_widget_lists_models_streams_stops_and_draws(page, jupyter, fake, hold):
    hold("slow", at=30)  # mid-stream until Stop cuts it: the server holds it after 30 words
    nb = _notebook(page, jupyter, "widget.ipynb", ["from llmlab import CompareWidget\ncw = CompareWidget()\ncw"])
    nb.run(0)
    out = nb.output(0)
    picker = out.locator("select")
    offered = picker.locator("option").all_inner_texts()
    assert sorted(offered) == sorted(m["id"] for m in fake._models_list()["data"])  # from /v1/models
    out.locator("textarea").fill("Tell me a long story.")
    picker.select_option(["quick", "slow"])
    out.locator("button", has_text="Run").click()
    slow = out.locator(".llmlab-col", has_text="slow")
    fake.wait_held("slow", 1, timeout=60)
    expect(slow.locator("pre")).to_have_text(re.compile(r"\S.{30,}"), timeout=30_000)  # mid-stream
    expect(out.locator(".llmlab-col", has_text="quick")).to_contain_text("[done]", timeout=30_000)

    # Timed in the page (click → the widget says so), free of the test driver's polling.
    stop = out.locator("button", has_text="Stop").element_handle()
    stopped_ms = page.evaluate(STOP_TIMER, [out.element_handle(), stop])
    expect(slow).to_contain_text("[cancelled]")
    expect(out).to_contain_text("Stopped: 1 finished call(s) recorded; 1 cut short")
    print(f"\nStop → column cancelled and the status says what was recorded: {stopped_ms / 1000:.2f} s")
    assert stopped_ms < STOP_BOUND_MS, f"Stop took {stopped_ms:.0f} ms to show"
    expect(out.locator(".llmlab-table table")).to_be_visible(timeout=15_000)  # what was recorded

    picker.select_option(["alpha", "beta", "gamma", "quick"])
    out.locator("button", has_text="Run").click()
    expect(out).to_contain_text("Done in", timeout=30_000)
    # the metrics table fits, or scrolls inside its own box — never the whole widget
    root = out.locator(".jp-OutputArea-output").first
    assert root.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), "the widget scrolls sideways"
    widget = out.locator(".widget-vbox").first
    assert widget.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), "the widget is wider than its box"
    table_box = out.locator(".llmlab-table")
    assert _box(table_box)[1] <= _box(root)[1] + 1
    # a chart image appears in its tab
    for tab in ("Latency", "Cost"):
        out.locator(".lm-TabBar-tab", has_text=tab).first.click()
        image = out.locator(".widget-tab .jp-OutputArea-output img:visible").first
        expect(image).to_be_visible(timeout=15_000)
        assert image.evaluate("i => i.complete && i.naturalWidth > 200"), f"{tab} chart did not load"


def _save_and_reload(page, nb) -> None:
    page.keyboard.press("Control+s")
    expect(page.locator(".jp-mod-dirty")).to_have_count(0)  # saved
    page.reload()
    nb.wait_ready()


def test_reload_mid_stream_resumes(page, jupyter, fake, hold):
    # The widget leaves the kernel free, so a reloaded page restores it and the stream goes on.
    hold("slow", at=10)  # held through the reload, released once the page is back
    nb = _notebook(page, jupyter, "reload.ipynb", [
        "from llmlab import CompareWidget\ncw = CompareWidget(models=['slow'], prompt='A long story.')\ncw",
        "%load_ext llmlab",
        "%%llm model=slow max_tokens=60\nA shorter story.",
    ])
    nb.run(0)
    out = nb.output(0)
    out.locator("button", has_text="Run").click()
    fake.wait_held("slow", 1, timeout=60)
    expect(out.locator(".llmlab-col pre")).to_have_text(re.compile(r"\S.{20,}"), timeout=30_000)
    _save_and_reload(page, nb)
    out = nb.output(0)
    pre = out.locator(".llmlab-col pre")
    expect(pre).to_have_text(re.compile(r"\S.{20,}"), timeout=30_000)
    before = out.evaluate(COLUMN_TEXTS)[:1]
    fake.release("slow")  # the rest of the story (~27 s of it) streams into the restored page
    page.wait_for_function(GREW, arg=[out.element_handle(), before], timeout=30_000)
    out.locator("button", has_text="Stop").click()
    expect(out).to_contain_text("Stopped:")

    # %%llm blocks the kernel while it streams: widgets come back when the cell ends, with the
    # final answer and its metrics (not "Error displaying widget: model not found").
    nb.run(1)
    nb.run(2, wait=False)
    out = nb.output(2)
    expect(out.locator(".llmlab-col pre")).to_have_text(re.compile(r"\S.{20,}"), timeout=30_000)
    _save_and_reload(page, nb)
    out = nb.output(2)
    expect(out.locator(".llmlab-col")).to_contain_text("[done]", timeout=60_000)
    # The metrics table is a widget of its own: it may render a moment after the columns.
    expect(out.locator(".llmlab-metrics")).to_contain_text("TTFT", timeout=30_000)
    assert "Error displaying widget" not in out.inner_text()


NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
NOT_SHOWN = ("Error displaying widget", "model not found", "VBox(children", "HBox(children",
             "Textarea(value", "IntProgress(", "FloatProgress(", "0%|")


@pytest.mark.parametrize("trusted", [True, False], ids=["trusted", "untrusted"])
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_opens_cleanly(page, jupyter, path, trusted):
    name = f"{'trusted' if trusted else 'untrusted'}-{path.name}"
    # Trust is recorded per content, not per file: tag each copy so the two never share it.
    nb_json = json.loads(path.read_text())
    nb_json["metadata"]["llmlab_test_copy"] = name
    (jupyter.work / name).write_text(json.dumps(nb_json))
    if trusted:
        jupyter.trust(jupyter.work / name)
    Notebook(page, jupyter, name).open()
    has_widgets = "application/vnd.jupyter.widget-view+json" in path.read_text()
    if trusted and has_widgets:  # widgets restore from the saved state after the kernel connects
        expect(page.locator(".jp-Cell-outputArea .widget-vbox").first).to_be_visible(timeout=60_000)
    # What must not appear (a failed restore's error) has no event to wait for: it gets 1.5 s.
    page.wait_for_timeout(1500)
    outputs = page.locator(".jp-NotebookPanel .jp-Cell-outputArea")
    text = "\n".join(outputs.all_inner_texts())
    for bad in NOT_SHOWN:
        assert bad not in text, f"{path.name} ({name}) shows {bad!r}"
    assert not re.search(r"\b0/\d+ \[", text), "a stale progress bar"
    broken = page.evaluate("""() => Array.from(document.querySelectorAll('.jp-Cell-outputArea img'))
        .filter(i => !(i.complete && i.naturalWidth > 0)).length""")
    assert broken == 0, f"{broken} broken image(s) in {path.name}"
    # the static columns keep their layout and word wrapping whether or not the sanitizer ran
    for pre in page.locator(".llmlab-col pre").all()[:4]:
        # words are never split mid-word (the output area's <pre> rule is break-all)
        assert pre.evaluate("e => getComputedStyle(e).wordBreak") in ("normal", "break-word")
        assert pre.evaluate("e => getComputedStyle(e).overflowWrap") == "break-word"
    for col in page.locator(".llmlab-col").all()[:4]:
        assert col.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), "a column overflows"
    if trusted and has_widgets:
        expect(page.locator(".jp-Cell-outputArea .widget-vbox").first).to_be_visible()  # restored
