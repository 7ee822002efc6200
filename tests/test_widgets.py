"""CompareWidget driven through its widget models against the fake OpenAI-compatible server."""
from __future__ import annotations

import time

import pytest

pytest.importorskip("ipywidgets")

from fakeserver import FakeServer, ModelSpec  # noqa: E402

from llmlab import Lab  # noqa: E402
from llmlab.notebook._board import Board  # noqa: E402
from llmlab.widgets import CompareWidget, LiveColumns  # noqa: E402

XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"


@pytest.fixture
def server():
    models = {
        "fast": ModelSpec(text="hello from fast", delay_s=0.01),
        "evil": ModelSpec(text=XSS),
        "slow": ModelSpec(text="never finishes in time", hold_after=0),  # held until the server stops
    }
    with FakeServer(models) as srv:
        yield srv


@pytest.fixture
def lab(server, tmp_path):
    lab = Lab(base_url=server.base_url, db=tmp_path / "runs.sqlite")
    yield lab
    lab.close()


def chat_requests(srv: FakeServer) -> list:
    return [r for r in srv.requests if r.path.endswith("/chat/completions")]


def column_html(widget: CompareWidget, model: str) -> str:
    return widget.live._views[model].value


def test_layout_and_models_from_endpoint(lab):
    widget = CompareWidget(lab=lab)
    assert set(widget.models.options) == {"fast", "evil", "slow"}
    assert widget.stop_button.disabled and not widget.run_button.disabled
    assert [widget.charts.get_title(i) for i in range(5)] == [
        "Latency", "TTFT", "Throughput", "Cost", "Cost vs latency"]
    assert "application/vnd.jupyter.widget-view+json" in widget._repr_mimebundle_()


def test_run_fills_columns_table_and_charts(lab, server):
    widget = CompareWidget(lab=lab)
    widget.prompt.value = "Say hello"
    widget.models.value = ("fast", "evil")
    widget.run_button.click()
    assert widget.run_button.disabled  # running: the kernel was not blocked
    result = widget.wait(timeout=30)
    assert result is not None and list(result.summary()["model"]) == ["fast", "evil"]
    fast = column_html(widget, "fast")
    assert "hello from fast" in fast and "[done]" in fast and "TTFT" in fast
    assert "model" in widget.table.value and "fast" in widget.table.value
    for out in widget.chart_outputs.values():
        assert out.outputs and "image/png" in out.outputs[0]["data"]
    assert not widget.run_button.disabled and widget.stop_button.disabled
    assert "Done" in widget.status.value
    assert len(chat_requests(server)) == 2


def test_model_output_is_escaped(lab):
    widget = CompareWidget(lab=lab, models=["evil"], prompt="be evil")
    widget.run()
    widget.wait(timeout=30)
    html = column_html(widget, "evil")
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html


def test_stop_cancels_promptly_and_keeps_finished_rows(lab, server):
    widget = CompareWidget(lab=lab, models=["fast", "slow"], prompt="race")
    future = widget.run()
    server.wait_held("slow", 1, timeout=60)  # slow is in flight and cannot finish by itself
    deadline = time.monotonic() + 60
    while "[done]" not in column_html(widget, "fast"):  # wait until fast has finished
        assert time.monotonic() < deadline, column_html(widget, "fast")
        time.sleep(0.02)
    started = time.monotonic()
    widget.stop_button.click()
    while "Stopped" not in widget.status.value:  # said before the table and charts are drawn
        # slow never ends by itself: Stopped at all means it was cut; the bound says "promptly"
        # with room for a loaded 2-core machine (the browser test times the click in the page)
        assert time.monotonic() - started < 10, widget.status.value
        time.sleep(0.02)
    assert "[cancelled]" in column_html(widget, "slow")
    widget.wait(timeout=30)
    assert future.cancelled()
    assert "[cancelled]" in column_html(widget, "slow")
    assert "Stopped" in widget.status.value
    rows = lab.runs()
    ok = rows[rows["status"] == "ok"]
    assert list(ok["requested_model"]) == ["fast"]  # the finished call stays recorded
    assert "fast" in widget.table.value
    assert not widget.run_button.disabled


def test_run_without_prompt_or_models_sends_nothing(lab, server):
    widget = CompareWidget(lab=lab)
    widget.models.value = ("fast",)
    assert widget.run() is None
    assert "prompt" in widget.status.value
    widget.prompt.value = "hi"
    widget.models.value = ()
    assert widget.run() is None
    assert "model" in widget.status.value
    assert chat_requests(server) == []


def test_unreachable_endpoint_is_reported_not_raised(tmp_path):
    lab = Lab(base_url="http://127.0.0.1:9/v1", db=tmp_path / "r.sqlite", retries=0)
    try:
        widget = CompareWidget(lab=lab)
        assert "cannot list models: cannot connect to http://127.0.0.1:9/v1 (" in widget.status.value
        assert "could not list models: cannot list" not in widget.status.value
        assert widget.models.options == ()
    finally:
        lab.close()


def test_live_columns_escape_model_names_and_throttle():
    from llmlab import Event

    board = Board(["<b>m</b>"])
    live = LiveColumns(board, interval=10.0)  # a long interval: deltas must wait
    live.on_event(Event("start", "<b>m</b>", "p0", "r1"))
    first = live._views["<b>m</b>"].value
    assert "&lt;b&gt;m&lt;/b&gt;" in first and "<b>m</b>" not in first
    live.on_event(Event("delta", "<b>m</b>", "p0", "r1", text="partial"))
    assert "partial" not in live._views["<b>m</b>"].value  # throttled
    live.flush()
    assert "partial" in live._views["<b>m</b>"].value
    live.close()


def test_a_run_that_cannot_start_does_not_leave_the_widget_running(lab):
    widget = CompareWidget(lab=lab)
    widget.prompt.value, widget.models.value = "hi", ("fast",)
    lab.close()  # submitting now fails
    lab.submit_compare = lambda *a, **kw: (_ for _ in ()).throw(RuntimeError("closed"))
    assert widget.run() is None
    assert not widget.running and not widget.run_button.disabled
    widget.wait(0.1)  # returns at once instead of "still running"


# --------------------------------------------------------------------------- static views

# What JupyterLab's HTML sanitizer keeps of an inline style in an untrusted notebook
# (packages/apputils/src/sanitizer.ts): the properties llmlab uses and the values it allows.
# Anything else (flex, flex-wrap, gap, word-break:break-word, overflow-wrap:anywhere) is dropped.
_SANITIZER_KEEPS = {
    "display": r"inline|block|inline-block|flex|grid|table|none", "vertical-align": r"top|middle|baseline",
    "width": r"[\d.]+(px|em|%)|auto", "min-width": r"[\d.]+(px|em|%)|auto", "max-width": r"[\d.]+(px|em|%)|none",
    "margin": r"([\d.]+(px|em|%)?\s*){1,4}", "padding": r"([\d.]+(px|em)?\s*){1,4}",
    "box-sizing": r"content-box|border-box", "border": r".+", "border-radius": r"[\d.]+px",
    "line-height": r"normal|[\d.]+", "font-weight": r"normal|bold", "font-size": r"[\d.]+%",
    "color": r"#[0-9a-f]+", "white-space": r"normal|pre|nowrap|pre-wrap|pre-line",
    "word-break": r"normal|keep-all|break-all", "overflow-wrap": r"normal|break-word",
    "overflow-x": r"visible|hidden|scroll|auto", "text-align": r"left|right|center|justify",
}


def _sanitized(style: str) -> dict:
    import re

    kept = {}
    for decl in filter(None, (d.strip() for d in style.split(";"))):
        prop, _, value = (x.strip() for x in decl.partition(":"))
        assert prop in _SANITIZER_KEEPS, f"{prop!r} is stripped in untrusted notebooks"
        if re.fullmatch(_SANITIZER_KEEPS[prop], value):
            kept[prop] = value
    return kept


def test_static_styles_survive_jupyterlabs_sanitizer():
    import re

    import pandas as pd

    from llmlab import Event
    from llmlab.base._display import table_html
    from llmlab.notebook._board import board_html

    board = Board(["m", "a-very-long-model-name-without-any-break-opportunity-at-all"])
    board.apply(Event("start", "m", "p0", "r1"))
    page = board_html(board.snapshot()) + table_html(pd.DataFrame([{"latency_p50_s": 1.0}]))
    styles = re.findall(r'style="([^"]*)"', page)
    kept = [_sanitized(s) for s in styles]
    text = next(k for s, k in zip(styles, kept, strict=True) if "pre-wrap" in s)
    # words wrap at spaces (the output area's <pre> has break-all), long tokens still wrap
    assert text["word-break"] == "normal" and text["overflow-wrap"] == "break-word"
    column = next(k for s, k in zip(styles, kept, strict=True) if "min-width" in s)
    assert column["display"] == "inline-block" and column["line-height"] == "1.35"
    name = next(k for s, k in zip(styles, kept, strict=True) if "break-all" in s)
    assert name["word-break"] == "break-all"   # a long model name wraps inside its column
    table = next(k for s, k in zip(styles, kept, strict=True) if "overflow-x" in s)
    # it scrolls in a box as wide as its container, and never widens that container
    assert table["overflow-x"] == "auto" and table["width"] == "0px" and table["min-width"] == "100%"
    assert "latency_<wbr>p50_<wbr>s" in page   # narrow headers may wrap


def test_compare_widget_has_a_static_view_besides_the_live_one(lab):
    widget = CompareWidget(lab=lab, models=["fast"])
    bundle = widget._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert not bundle["text/plain"].startswith("VBox") and "fast" in bundle["text/plain"]
    assert "CompareWidget" in bundle["text/html"] and "<script" not in bundle["text/html"]
    widget.prompt.value = "hi"
    widget.run()
    widget.wait(timeout=30)
    after = widget._repr_mimebundle_()["text/html"]
    assert "hello from fast" in after and "<table" in after  # the last run's columns and table


def test_notebook_progress_bar_leaves_one_static_line(monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell

    from llmlab.engine._progress import NotebookProgress

    published = []
    shell = InteractiveShell.instance()
    monkeypatch.setattr(shell.display_pub, "publish",
                        lambda data, metadata=None, *a, **kw: published.append((data, kw)))
    bar = NotebookProgress(3)
    assert "application/vnd.jupyter.widget-view+json" in published[0][0]
    for _ in range(3):
        bar.update(1)
    bar.close()
    final, kwargs = published[-1]
    assert kwargs.get("update") is True  # replaces the bar in place (same display id)
    assert final["text/plain"].startswith("llmlab: 3/3 calls") and "(stopped)" not in final["text/plain"]
    assert "application/vnd.jupyter.widget-view+json" not in final
    assert bar._box.comm is None and bar._bar.comm is None  # widgets closed: nothing to restore


def test_a_widget_runs_price_warning_names_llmlab_not_asyncio(lab):
    import warnings

    from llmlab import PriceWarning

    widget = CompareWidget(lab=lab, models=["fast"], prompt="hi")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        widget.run()
        widget.wait(timeout=30)
    priced = [w for w in caught if issubclass(w.category, PriceWarning)]
    assert len(priced) == 1 and priced[0].filename == "llmlab"  # no user line to point at


def test_options_give_every_run_tools_and_structured_output(lab, server):
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    widget = CompareWidget(lab=lab, models=["fast"], prompt="Hi",
                           options={"tools": tools, "response_format": {"type": "json_object"}, "system": "Be brief."})
    widget.run()
    assert widget.wait(timeout=30) is not None
    body = chat_requests(server)[0].body
    assert body["tools"] == tools and body["response_format"] == {"type": "json_object"}
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    from llmlab import InputError

    for options, said in (({"tool": tools}, "unknown CompareWidget option 'tool'. Did you mean 'tools'"),
                          ({"temperature": 1}, "one of the widget's own controls"),
                          ({"top_p": 7}, "top_p")):
        with pytest.raises(InputError, match=said):
            CompareWidget(lab=lab, options=options)
