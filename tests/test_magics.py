"""%%llm / %llm in a real InteractiveShell against the fake OpenAI-compatible server."""
from __future__ import annotations

import pandas as pd
import pytest
from fakeserver import FakeServer, ModelSpec
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from llmlab.magics import LLMMagics, load_ipython_extension, unload_ipython_extension

XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"


@pytest.fixture
def server():
    models = {
        "a": ModelSpec(text="hi from a", delay_s=0.01),
        "b": ModelSpec(text=XSS),
        "broken": ModelSpec(status=500),
    }
    with FakeServer(models) as srv:
        yield srv


@pytest.fixture
def shell():
    sh = fresh_shell()
    load_ipython_extension(sh)  # a fresh magics instance (and Lab) per test
    yield sh
    fresh_shell()


def fresh_shell() -> InteractiveShell:
    """The singleton shell without llmlab loaded and without earlier tests' %config values."""
    sh = InteractiveShell.instance()
    unload_ipython_extension(sh)
    sh.extension_manager.loaded.discard("llmlab")
    sh.config.pop("LLMLab", None)
    return sh


@pytest.fixture
def llm(shell, server):
    """The shell pointed at the fake server; returns the magics instance."""
    shell.run_line_magic("config", f'LLMLab.base_url = "{server.base_url}"')
    return magics_of(shell)


@pytest.fixture
def published(shell, monkeypatch):
    """Every display() payload as (data, kwargs)."""
    out: list[tuple[dict, dict]] = []
    monkeypatch.setattr(shell.display_pub, "publish",
                        lambda data, metadata=None, *a, **kw: out.append((data, kw)))
    return out


def magics_of(shell) -> LLMMagics:
    return shell.magics_manager.registry["LLMMagics"]


def chat_requests(srv: FakeServer) -> list:
    return [r for r in srv.requests if r.path.endswith("/chat/completions")]


def sent_prompt(request) -> str:
    return request.body["messages"][-1]["content"]


# --------------------------------------------------------------------------- %%llm

def test_out_binding_and_return_value(shell, llm, server):
    res = shell.run_cell_magic("llm", "model=a,b temperature=0 out=res", "Say hi")
    assert shell.user_ns["res"] is res
    assert list(res.summary()["model"]) == ["a", "b"]
    assert res.text("a") == "hi from a"
    assert {"latency_s", "ttft_s", "cost_usd"} <= set(res.df.columns)
    assert len(chat_requests(server)) == 2
    assert all(r.body["temperature"] == 0 for r in chat_requests(server))
    assert res.run_id in llm.run_ids


def test_result_becomes_underscore(shell, llm):
    outcome = shell.run_cell("%%llm model=a\nSay hi", store_history=True)
    assert outcome.success
    assert shell.user_ns["_"] is outcome.result


def test_interpolation_from_user_namespace(shell, llm, server):
    shell.user_ns.update(topic="TCP", doc=type("Doc", (), {"title": "RFC 793"})(),
                         rows=["SYN", "ACK"], d={"k": "handshake"})
    body = 'About {{topic}} ({{doc.title}}): {{rows[0]}}/{{rows[-1]}} {{d["k"]}}. Keep {json: 1} and {{1, 2}}.'
    shell.run_cell_magic("llm", "model=a", body)
    assert sent_prompt(chat_requests(server)[0]) == (
        "About TCP (RFC 793): SYN/ACK handshake. Keep {json: 1} and {{1, 2}}.")


@pytest.mark.parametrize("body", [
    "{{__import__('os')}}",
    "{{__import__('os').system('touch pwned')}}",
    "{{topic.upper()}}",
    "{{doc.__class__}}",
    "{{missing_name}}",
])
def test_unsafe_or_missing_placeholders_are_usage_errors(shell, llm, server, body):
    shell.user_ns.update(topic="x", doc=object())
    with pytest.raises(UsageError) as info:
        shell.run_cell_magic("llm", "model=a", body)
    assert "\n" not in str(info.value)
    assert server.requests == []


BAD_LINES = [
    "model=a temprature=0",
    "model=a,a",
    "model=a temperature=5",
    "model=a out=class",
    'model=a system="open',
    "model=a Explain TCP",
    "model=a response_format='{bad json'",
    "model=a,b fallback=c",
    "",
]


@pytest.mark.parametrize("line", BAD_LINES)
def test_bad_lines_never_send_anything(shell, llm, server, line):
    with pytest.raises(UsageError) as info:
        shell.run_cell_magic("llm", line, "prompt")
    message = str(info.value)
    assert message.startswith("%%llm: ") and "\n" not in message
    assert server.requests == []  # not even /v1/models


def test_usage_error_is_one_line_without_traceback(shell, llm, server, capsys):
    outcome = shell.run_cell("%%llm model=a temprature=0\nhi")
    assert isinstance(outcome.error_in_exec, UsageError)
    err = capsys.readouterr().err
    assert "Did you mean 'temperature'?" in err
    assert "Traceback" not in err
    assert server.requests == []
    assert shell.run_cell("1 + 1").result == 2  # the kernel is fine


def test_empty_body_is_a_usage_error(shell, llm, server):
    with pytest.raises(UsageError, match="empty"):
        shell.run_cell_magic("llm", "model=a", "\n  \n")
    assert server.requests == []


def test_model_output_is_escaped(shell, llm, published):
    res = shell.run_cell_magic("llm", "model=b", "be evil")
    html_parts = [d["text/html"] for d, _ in published if "text/html" in d]
    assert html_parts, published
    board = html_parts[-1]
    assert "<script>" not in board and "<img" not in board
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in board
    assert "&lt;script&gt;" in res._repr_html_() and "<script>" not in res._repr_html_()


def test_text_display_shows_columns_metrics_and_table(shell, llm, published):
    shell.run_cell_magic("llm", "model=a,b", "hello")
    text = [d["text/plain"] for d, _ in published][-1]
    assert "── a [done]" in text and "hi from a" in text
    assert "TTFT" in text and "latency" in text and "cost unknown" in text
    assert "latency_p50_s" in text  # the metrics table follows the columns


def test_extra_parameters_reach_the_endpoint(shell, llm, server):
    shell.run_cell_magic("llm", "model=a reasoning_effort=high seed=7 top_p=0.5 "
                         "response_format='{\"type\": \"json_object\"}' max_tokens=20", "hi")
    body = chat_requests(server)[0].body
    assert body["reasoning_effort"] == "high" and body["seed"] == 7 and body["top_p"] == 0.5
    assert body["response_format"] == {"type": "json_object"} and body["max_tokens"] == 20


def test_system_stream_and_repeats(shell, llm, server):
    res = shell.run_cell_magic("llm", 'model=a system="Be terse." stream=false n=2 cache=false', "hi")
    requests = chat_requests(server)
    assert len(requests) == 2
    assert requests[0].body["messages"][0] == {"role": "system", "content": "Be terse."}
    assert not requests[0].body.get("stream")
    assert list(res.df["repeat"]) == [0, 1]


def test_fallback_chain(shell, llm, server, published):
    res = shell.run_cell_magic("llm", "model=broken fallback=a", "hi")
    assert [r.model for r in chat_requests(server)][-1] == "a"
    assert res.df["requested_model"].iloc[-1] == "a" and res.df["status"].iloc[-1] == "ok"
    text = [d["text/plain"] for d, _ in published][-1]
    assert "── broken [error]" in text and "── a [done]" in text


def test_failed_call_is_a_row_not_an_exception(shell, llm, published):
    res = shell.run_cell_magic("llm", "model=a,nope", "hi")
    assert list(res.df["status"]) == ["ok", "error"]
    text = [d["text/plain"] for d, _ in published][-1]
    assert "── nope [error]" in text and "NotFoundError" in text


def test_default_models_from_config(shell, llm, server):
    shell.run_line_magic("config", "LLMLab.default_models = ['a', 'b']")
    res = shell.run_cell_magic("llm", "", "hi")
    assert res.models == ["a", "b"]


def test_cache_setting_is_the_default(shell, llm, server):
    shell.run_cell_magic("llm", "model=a", "same prompt")
    res = shell.run_cell_magic("llm", "model=a", "same prompt")
    assert bool(res.df["cached"].iloc[0]) and len(chat_requests(server)) == 1
    shell.run_line_magic("config", "LLMLab.cache = False")
    res = shell.run_cell_magic("llm", "model=a", "same prompt")
    assert not bool(res.df["cached"].iloc[0]) and len(chat_requests(server)) == 2


def test_changing_settings_rebuilds_the_lab(shell, llm, server):
    shell.run_cell_magic("llm", "model=a", "first")
    first_lab = llm.lab
    with FakeServer({"a": ModelSpec(text="from the second server")}) as other:
        shell.run_line_magic("config", f'LLMLab.base_url = "{other.base_url}"')
        res = shell.run_cell_magic("llm", "model=a", "second")
        assert res.text("a") == "from the second server"
        assert len(chat_requests(other)) == 1
        assert llm.lab is not first_lab
    assert len(chat_requests(server)) == 1


def test_widget_mode_ends_with_static_html(shell, llm, published):
    shell.run_line_magic("config", "LLMLab.widgets = 'on'")
    shell.run_cell_magic("llm", "model=b", "evil")
    widget_views = [d for d, _ in published if "application/vnd.jupyter.widget-view+json" in d]
    assert widget_views  # the live columns were widgets
    updates = [(d, kw) for d, kw in published if kw.get("update")]
    assert updates, "the live widget is replaced by the static result"
    final = updates[-1][0]["text/html"]
    assert "&lt;script&gt;" in final and "<script>" not in final


def test_plain_shell_uses_static_display(shell, llm):
    assert llm._use_widgets() is False


# --------------------------------------------------------------------------- %llm

def test_line_models(shell, llm):
    frame = shell.run_line_magic("llm", "models")
    assert isinstance(frame, pd.DataFrame)
    assert {"a", "b", "broken"} <= set(frame["model"])
    assert "input_usd_per_1m" in frame.columns


def test_line_history(shell, llm):
    shell.run_cell_magic("llm", "model=a,b", "one")
    shell.run_cell_magic("llm", "model=a", "two")
    frame = shell.run_line_magic("llm", "history 2")
    assert list(frame["prompt"]) == ["one", "two"]  # the last two rows, oldest first
    assert len(shell.run_line_magic("llm", "history")) == 3
    with pytest.raises(UsageError, match="positive whole number"):
        shell.run_line_magic("llm", "history -1")


def test_line_cost_is_this_session_without_cache_hits(shell, llm):
    from llmlab import PriceTable

    llm.lab.prices = PriceTable.load({"a": {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}})
    shell.run_cell_magic("llm", "model=a", "priced")
    shell.run_cell_magic("llm", "model=a", "priced")  # a cache hit: costs nothing now
    shell.run_cell_magic("llm", "model=b", "unpriced")
    llm.lab.compare("outside the magics", models=["a"])  # not this session's run
    frame = shell.run_line_magic("llm", "cost")
    rows = frame.set_index("model")
    assert rows.loc["a", "calls"] == 1 and rows.loc["a", "cache_hits"] == 1
    assert rows.loc["a", "cost_usd"] > 0
    assert rows.loc["b", "unpriced_calls"] == 1 and pd.isna(rows.loc["b", "cost_usd"])
    assert rows.loc["TOTAL", "calls"] == 2


def test_line_config_and_key_name_validation(shell, llm, capsys, caplog):
    frame = shell.run_line_magic("llm", "config")
    expected = {"base_url", "default_models", "api_key_env", "concurrency", "max_tokens", "cache", "db"}
    assert expected <= set(frame["setting"])
    assert frame.set_index("setting").loc["base_url", "source"] == "%config"
    shell.run_line_magic("config", 'LLMLab.api_key_env = "sk-live-abcdef1234567890"')
    err = capsys.readouterr()
    shown = err.out + err.err + caplog.text  # %config reports through logging.error
    assert "NAME of an environment variable" in shown
    assert "abcdef1234567890" not in shown  # a pasted key is never echoed
    assert llm.settings.api_key_env is None
    shell.run_line_magic("config", 'LLMLab.api_key_env = "OPENROUTER_API_KEY"')
    assert llm.settings.api_key_env == "OPENROUTER_API_KEY"


@pytest.mark.parametrize("value", ["sk-abc", "lowercase_name", "ABCDEF0123456789ABCDEF0123456789", "has space"])
def test_key_like_values_rejected(shell, value):
    from traitlets import TraitError

    with pytest.raises(TraitError):
        magics_of(shell).settings.api_key_env = value


def test_line_prices(shell, llm):
    frame = shell.run_line_magic("llm", "prices")
    assert "model" in frame.columns
    some = frame["model"].iloc[0]
    filtered = shell.run_line_magic("llm", f"prices {some}")
    assert some in list(filtered["model"]) and len(filtered) <= len(frame)


def test_line_compare_opens_widget(shell, llm):
    pytest.importorskip("ipywidgets")
    from llmlab.widgets import CompareWidget

    widget = shell.run_line_magic("llm", "compare")
    assert isinstance(widget, CompareWidget)
    assert {"a", "b"} <= set(widget.models.options)


def test_line_help_and_unknown(shell, capsys):
    shell.run_line_magic("llm", "help")
    assert "%llm history" in capsys.readouterr().out
    with pytest.raises(UsageError, match="Did you mean 'history'"):
        shell.run_line_magic("llm", "histroy")


def test_unreachable_endpoint_is_one_line(shell):
    shell.run_line_magic("config", 'LLMLab.base_url = "http://127.0.0.1:9/v1"')
    with pytest.raises(UsageError) as info:
        shell.run_line_magic("llm", "models")
    assert "\n" not in str(info.value)
    assert "cannot connect to http://127.0.0.1:9/v1 (" in str(info.value) and "server is running" in str(info.value)


def test_a_cell_against_an_unreachable_endpoint_names_it(shell, capsys):
    shell.run_line_magic("config", 'LLMLab.base_url = "http://127.0.0.1:9/v1"')
    shell.run_line_magic("config", "LLMLab.widgets = 'off'")
    shell.run_cell_magic("llm", "model=a retries=0 out=res", "Hi")
    assert "cannot connect to http://127.0.0.1:9/v1" in capsys.readouterr().out
    assert shell.user_ns["res"].df["error_message"].str.contains("LLMLAB_BASE_URL").all()


# --------------------------------------------------------------------------- loading and settings

def test_load_ext_entry_point():
    sh = fresh_shell()
    sh.run_line_magic("load_ext", "llmlab")
    try:
        assert "llm" in sh.magics_manager.magics["cell"]
        assert "llm" in sh.magics_manager.magics["line"]
        assert any(type(c).__name__ == "LLMLab" for c in sh.configurables)
    finally:
        fresh_shell()


def test_pyproject_settings(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.llmlab]\nbase-url = "http://127.0.0.1:1/v1"\ndefault_models = ["x", "y"]\n'
        'concurrency = 3\nmax_tokens = 0\nprices = "ignored: not a magics setting"\n')
    sh = fresh_shell()
    with pytest.warns(UserWarning, match="max_tokens"):
        load_ipython_extension(sh)
    try:
        settings = magics_of(sh).settings
        assert settings.base_url == "http://127.0.0.1:1/v1"
        assert settings.default_models == ["x", "y"] and settings.concurrency == 3
        assert settings.max_tokens == 512  # the bad value was refused, with a warning
        frame = sh.run_line_magic("llm", "config").set_index("setting")
        assert frame.loc["concurrency", "source"] == "pyproject.toml"
    finally:
        fresh_shell()


def test_unload_removes_everything():
    sh = fresh_shell()
    load_ipython_extension(sh)
    unload_ipython_extension(sh)
    assert "llm" not in sh.magics_manager.magics["cell"]
    assert not any(type(c).__name__ == "LLMLab" for c in sh.configurables)


def test_bad_config_value_does_not_break_load_ext(capsys):
    sh = fresh_shell()
    load_ipython_extension(sh)
    try:
        sh.run_line_magic("config", 'LLMLab.api_key_env = "sk-pasted-secret-value"')
        sh.run_line_magic("config", "LLMLab.concurrency = 4")
        assert "sk-pasted-secret-value" not in repr(sh.config)  # not kept in the shell's config
        unload_ipython_extension(sh)
        load_ipython_extension(sh)  # e.g. %reload_ext: still loads
        assert magics_of(sh).settings.concurrency == 4
        assert magics_of(sh).settings.api_key_env is None
    finally:
        fresh_shell()


def test_engine_errors_are_one_line_usage_errors(shell, llm, server, published, monkeypatch):
    monkeypatch.delenv("LLMLAB_TEST_MISSING_KEY", raising=False)
    shell.run_line_magic("config", 'LLMLab.api_key_env = "LLMLAB_TEST_MISSING_KEY"')
    with pytest.raises(UsageError) as info:
        shell.run_cell_magic("llm", "model=a", "hi")
    assert "LLMLAB_TEST_MISSING_KEY" in str(info.value) and "\n" not in str(info.value)
    assert chat_requests(server) == []
    assert not any("── a" in d.get("text/plain", "") for d, _ in published)  # no empty board


# --------------------------------------------------------------------------- edge cases found in review

def test_history_shows_control_characters_instead_of_running_them(shell, llm, server):
    server.set_model("ansi", ModelSpec(text="\x1b[31mRED\x1b]0;pwned\x07"))
    shell.run_cell_magic("llm", "model=ansi", "colour me")
    frame = shell.run_line_magic("llm", "history 1")
    text = shell.display_formatter.format(frame)[0]["text/plain"]
    assert "\x1b" not in text and "\\x1b" in frame["response_text"].iloc[0]


@pytest.mark.parametrize("line", ["model=a retry_policy=3", "model=a concurrency=4", "model=a on_event=x",
                                  "model=a extra_body={}"])
def test_engine_arguments_are_not_forwarded_from_the_line(shell, llm, server, line):
    with pytest.raises(UsageError, match="can't be set on the %%llm line"):
        shell.run_cell_magic("llm", line, "hi")
    assert chat_requests(server) == []


def test_timeout_and_retries_on_the_line_are_engine_settings_not_body_keys(shell, llm, server):
    shell.run_cell_magic("llm", "model=a timeout=5 retries=0 cache=false", "hi")
    (request,) = chat_requests(server)
    assert "timeout" not in request.body and "retries" not in request.body


def test_placeholder_whose_property_or_str_raises_is_one_line(shell, llm, server):
    class Boom:
        @property
        def boom(self):
            raise ValueError("property failed")

        def __str__(self):
            raise RuntimeError("str failed")

    shell.user_ns["p"] = Boom()
    for body, message in (("{{p.boom}}", "reading .boom raised ValueError"), ("{{p}}", r"str\(\) of the value")):
        with pytest.raises(UsageError, match=message):
            shell.run_cell_magic("llm", "model=a", body)
    assert chat_requests(server) == []


def test_models_listing_error_is_redacted(shell, monkeypatch):
    secret = "sk-WRONGsecretvalue1234ABCD"
    monkeypatch.setenv("MY_KEY", secret)
    with FakeServer({"a": ModelSpec()}, api_key="the-right-key") as srv:
        shell.run_line_magic("config", f'LLMLab.base_url = "{srv.base_url}"')
        shell.run_line_magic("config", 'LLMLab.api_key_env = "MY_KEY"')
        with pytest.raises(UsageError) as info:
            shell.run_line_magic("llm", "models")
    assert "cannot list models" in str(info.value)
    assert "ABCD" not in str(info.value) and secret not in str(info.value)


def test_compare_widget_survives_a_config_change(shell, llm, server):
    pytest.importorskip("ipywidgets")
    widget = shell.run_line_magic("llm", "compare")
    shell.run_line_magic("config", "LLMLab.max_tokens = 100")  # rebuilds (and closes) the magics' Lab
    widget.prompt.value, widget.models.value = "hi", ("a",)
    widget.run()
    result = widget.wait(30)
    assert result is not None and (result.df["status"] == "ok").all()


def test_price_warning_points_at_the_cell_not_at_llmlab(shell, llm):
    import sys
    import warnings

    from llmlab import PriceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = sys._getframe().f_lineno + 1
        shell.run_cell_magic("llm", "model=a cache=false", "Say hi")
        shell.run_cell_magic("llm", "model=a cache=false", "Say hi again")  # once per model
    priced = [w for w in caught if issubclass(w.category, PriceWarning)]
    assert len(priced) == 1 and "'a'" in str(priced[0].message)
    # the frame that ran the cell magic (in a kernel: the user's cell), never llmlab's own source
    assert (priced[0].filename, priced[0].lineno) == (__file__, line)


def test_config_values_follow_the_engine_rules(shell, llm, capsys, caplog):
    """%config refuses what Lab(...) refuses, in the engine's words (one rule, llmlab.base._validate)."""
    before = llm.settings.max_tokens
    shell.run_line_magic("config", "LLMLab.max_tokens = 10**23")
    err = capsys.readouterr()
    assert "from 1 to 2,000,000" in err.out + err.err + caplog.text
    assert llm.settings.max_tokens == before
    shell.run_line_magic("config", "LLMLab.max_tokens = 64")
    assert llm.settings.max_tokens == 64


# --------------------------------------------------------------------------- model=auto (lab.route)

def test_model_auto_routes_with_the_policy_in_a_variable(shell, llm, server):
    from llmlab import routing

    shell.user_ns["router"] = routing.TaskMap({"greet": "a"}, default="b", name="greeter")
    res = shell.run_cell_magic("llm", "model=auto policy=router task=greet out=res", "Say hi")
    assert [r.model for r in chat_requests(server)] == ["a"]
    row = res.df.iloc[0]
    assert (row["requested_model"], row["policy"], row["route_reason"]) == ("a", "greeter", "task 'greet' → a")
    shell.run_cell_magic("llm", "model=auto policy=router", "Say hi again")
    assert [r.model for r in chat_requests(server)] == ["a", "b"]          # unmapped → default


@pytest.mark.parametrize("line, message", [
    ("model=auto", "model=auto policy=NAME"),
    ("model=a policy=router", "use it with model=auto"),
    ("model=auto,a policy=router", "no other model"),
    ("model=auto policy=router n=2", "can't be combined"),
    ("model=auto policy=missing", "is not defined"),
    ("model=auto policy=text", "holds a str"),
    ("model=auto policy=oracle", "reads the labels"),
])
def test_model_auto_mistakes_are_one_line_and_send_nothing(shell, llm, server, line, message):
    from IPython.core.error import UsageError

    from llmlab import routing

    shell.user_ns.update(router=routing.Always("a"), text="not a policy", oracle=routing.Oracle())
    with pytest.raises(UsageError, match=message) as caught:
        shell.run_cell_magic("llm", line, "Say hi")
    assert "\n" not in str(caught.value)
    assert chat_requests(server) == []


def test_model_auto_takes_per_model_parameters(shell, llm, server):
    from llmlab import routing

    shell.user_ns["router"] = routing.Always("a")
    shell.run_cell_magic("llm", "model=auto policy=router a:temperature=0.3", "Say hi")
    assert [r.body.get("temperature") for r in chat_requests(server)] == [0.3]


def test_history_gives_earlier_turns_and_the_cell_body_is_the_next_user_turn(shell, llm, server):
    shell.user_ns["chat"] = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"},
                             {"role": "assistant", "content": "Hello"}]
    first = shell.run_cell_magic("llm", "model=a history=chat", "And now?")
    assert server.requests[-1].body["messages"] == [*shell.user_ns["chat"], {"role": "user", "content": "And now?"}]
    assert first.df.iloc[0]["prompt"] == "And now?" and first.df.iloc[0]["turns"] == 2
    shell.user_ns["earlier"] = first  # a Result continues from its first model's answer
    shell.run_cell_magic("llm", "model=a history=earlier system=ignored", "Then?")
    sent = server.requests[-1].body["messages"]
    assert sent[-2:] == [{"role": "assistant", "content": "hi from a"}, {"role": "user", "content": "Then?"}]
    assert sent[0] == {"role": "system", "content": "Be terse."}  # the history's system message stays first
    shell.user_ns["junk"] = 42
    for line, said in (("model=a history=junk", "holds a int"), ("model=a history=missing", "is not defined"),
                       ("model=a history=1bad", "history")):
        with pytest.raises(UsageError, match=said):
            shell.run_cell_magic("llm", line, "x")


def test_config_shows_what_an_unset_endpoint_and_log_resolve_to(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMLAB_BASE_URL", "http://127.0.0.1:4321/v1")
    monkeypatch.setenv("LLMLAB_DB", str(tmp_path / "mine.sqlite"))
    sh = fresh_shell()
    load_ipython_extension(sh)
    try:
        frame = sh.run_line_magic("llm", "config").set_index("setting")
        assert tuple(frame.loc["base_url", ["value", "source"]]) == ("http://127.0.0.1:4321/v1",
                                                                      "default: $LLMLAB_BASE_URL")
        assert tuple(frame.loc["db", ["value", "source"]]) == (str(tmp_path / "mine.sqlite"), "default: LLMLAB_DB")
        monkeypatch.delenv("LLMLAB_BASE_URL")
        monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
        monkeypatch.chdir(tmp_path)
        frame = sh.run_line_magic("llm", "config").set_index("setting")
        assert frame.loc["base_url", "source"] == "default: the embedded local endpoint"
    finally:
        fresh_shell()
