"""Issue 11: the holes an outside attack found, each as a class of inputs (hostile endpoint,
hostile repository, careless user), against the real test server through the real SDK."""
from __future__ import annotations

import os
import sqlite3
import stat
import sys
import threading
import warnings

import pandas as pd
import pytest
from fakeserver import FakeServer, ModelSpec, auth_fingerprint

from llmlab import ConfigError, InputError, Lab, LLMLabError, RetryPolicy
from llmlab.base._display import clean_text, esc, table_html
from llmlab.notebook._board import board_text

SECRET = "sk-live-Z9Y8X7W6V5U4T3S2R1Q0-abcdefghIJKLMNOP"


def chat(srv: FakeServer) -> list:
    return [r for r in srv.requests if r.path.endswith("/chat/completions")]


def runs_of_8(secret: str = SECRET) -> list[str]:
    return [secret[i:i + 8] for i in range(len(secret) - 7)]


def assert_no_key(*texts, secret: str = SECRET) -> None:
    for text in texts:
        text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        folded = text.lower()
        leaked = [run for run in runs_of_8(secret) if run.lower() in folded]
        assert not leaked, f"key fragments {leaked[:3]} in {text[:300]!r}"


def db_blob(path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


# --------------------------------------------------------------------------- 1. lone surrogates

def frame(**columns) -> pd.DataFrame:
    return pd.DataFrame({"prompt": ["a"], **{k: [v] for k, v in columns.items()}}, dtype=object)


SURROGATE_TEXT = "x\ud800y \udc00z \ud83d\ude00"  # two lone surrogates and one valid pair (😀)


@pytest.mark.parametrize("stream", [True, False])
def test_lone_surrogates_from_the_endpoint_are_repaired_stored_and_said(tmp_path, stream):
    models = {"bad": ModelSpec(text=SURROGATE_TEXT, served_model="bad\udfff"),
              "broken": ModelSpec(status=500, error_message="boom \ud800 here"),
              "good": ModelSpec(text="fine")}
    db = tmp_path / "log.sqlite"
    with FakeServer(models) as srv, Lab(base_url=srv.base_url, db=db, retries=0) as lab:
        res = lab.compare("Hi", models=["bad", "broken", "good"], stream=stream)
        df = res.df.set_index("requested_model")
        assert df.loc["bad", "status"] == "ok"
        # The pair survives whole (also when split across stream chunks); each lone one is U+FFFD.
        assert df.loc["bad", "response_text"] == "x\ufffdy \ufffdz \U0001F600"
        assert df.loc["bad", "served_model"] == "bad\ufffd"
        assert "note:" in df.loc["bad", "error_message"] and "3 invalid character" in df.loc["bad", "error_message"]
        assert df.loc["broken", "status"] == "error"
        assert "boom \ufffd here" in df.loc["broken", "error_message"]
        assert df.loc["good", "response_text"] == "fine"
        # Everything shown or stored encodes: the log, the frame, the views.
        logged = lab.runs()
        assert len(logged) == 3
        for text in (logged.to_csv(), repr(res), res._repr_html_(), res.summary().to_string()):
            text.encode("utf-8")
        # A cached replay of the repaired row works too.
        again = lab.compare("Hi", models=["bad"], stream=stream)
        assert again.df["cached"].iloc[0] and again.df["response_text"].iloc[0] == df.loc["bad", "response_text"]


def test_magic_shows_a_hostile_answer_without_a_traceback(tmp_path, shell, monkeypatch):
    from llmlab.magics import load_ipython_extension

    shown: list[dict] = []
    monkeypatch.setattr(shell.display_pub, "publish", lambda data, *a, **kw: shown.append(data))
    load_ipython_extension(shell)
    models = {"bad": ModelSpec(text="a\ud800b \u202egnp.exe", served_model="x\udfff"),
              "good": ModelSpec(text="fine")}
    with FakeServer(models) as srv:
        shell.run_line_magic("config", f'LLMLab.base_url = "{srv.base_url}"')
        shell.run_line_magic("config", f'LLMLab.db = "{tmp_path / "l.sqlite"}"')
        res = shell.run_cell_magic("llm", "model=bad,good out=res", "Hi")
        history = shell.run_line_magic("llm", "history")
    assert list(res.df["status"]) == ["ok", "ok"]
    for data in shown:
        for text in data.values():
            str(text).encode("utf-8")
            assert "\u202e" not in str(text)
    assert history["response_text"].str.contains("\\u202e", regex=False).any()


def test_a_bad_answer_never_cancels_its_siblings_in_a_sweep(tmp_path):
    """The attack: a 50 × 2 sweep stopped after 8 requests. Now every pair is asked and stored."""
    models = {"bad": ModelSpec(text="a\ud800b", delay_s=0.01), "good": ModelSpec(text="ok", delay_s=0.01)}
    with FakeServer(models) as srv, Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite") as lab:
        res = lab.sweep([f"prompt {i}" for i in range(50)], models=["bad", "good"], progress=False)
        assert len(chat(srv)) == 100
        assert len(res.df) == 100 and (res.df["status"] == "ok").all()
        assert res.df.loc[res.df["requested_model"] == "bad", "response_text"].eq("a\ufffdb").all()


def test_a_row_the_log_refuses_becomes_a_visible_error_row_and_siblings_go_on(tmp_path):
    """Whatever breaks one row's write (here a real SQLite trigger refusing it), that row is
    stored as an error with escaped text, and the other calls of the run still finish."""
    db = tmp_path / "l.sqlite"
    models = {"poison": ModelSpec(text="poison pill", delay_s=0.01), "good": ModelSpec(text="ok", delay_s=0.05)}
    with FakeServer(models) as srv, Lab(base_url=srv.base_url, db=db) as lab:
        with sqlite3.connect(db) as raw:
            raw.execute("CREATE TRIGGER refuse BEFORE INSERT ON runs WHEN NEW.response_text LIKE '%poison%' "
                        "AND NEW.status = 'ok' BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END")
        res = lab.sweep(["a", "b", "c"], models=["poison", "good"], progress=False)
        df = res.df
        assert len(df) == 6 and len(chat(srv)) == 6
        bad = df[df["requested_model"] == "poison"]
        assert (bad["status"] == "error").all() and (bad["error_type"] == "LogWriteError").all()
        assert bad["response_text"].eq("poison pill").all()  # the answer itself is kept
        assert bad["error_message"].str.contains("refused by a trigger").all()
        assert (df[df["requested_model"] == "good"]["status"] == "ok").all()


def test_odd_usage_values_from_the_endpoint_do_not_break_the_row(tmp_path):
    models = {"odd": ModelSpec(text="one two", usage_patch={"prompt_tokens": "many", "completion_tokens": "lots"}),
              "huge": ModelSpec(text="x", usage_patch={"completion_tokens": 10**30}),
              # integers no float holds (OverflowError), in every count and the reported cost
              "vast": ModelSpec(text="x", usage_patch={"completion_tokens": 10**400, "prompt_tokens": -10**400}),
              "vast-prompt": ModelSpec(text="x", usage_patch={"prompt_tokens": 10**400, "total_tokens": 10**400}),
              "vast-details": ModelSpec(text="x", usage_patch={"cost": 10**400, "prompt_tokens_details": {
                  "cached_tokens": 10**400}, "completion_tokens_details": {"reasoning_tokens": 10**400}}),
              "good": ModelSpec(text="fine")}
    with FakeServer(models) as srv, Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite") as lab:
        for stream in (True, False):
            df = lab.compare("Hi", models=["odd", "huge", "vast", "vast-prompt", "vast-details", "good"],
                             stream=stream, cache=False).df
            assert (df["status"] == "ok").all(), df[["requested_model", "error_message"]]
            assert df["tokens_estimated"].iloc[0]  # the nonsense usage was not believed


def _finish(**usage) -> list:
    done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    return [done, {"choices": [], **usage}] if usage else [done]


ODD_STREAMS = {
    # chunks are read as the JSON the endpoint sent: any shape becomes a row, never a crash
    # content that is not text is not passed off as the model's words (issue 21 #10)
    "number-content": (ModelSpec(raw_events=[{"choices": [{"delta": {"content": 7}}]}, *_finish()]), "error",
                       "content that is not text: 7"),
    "object-content": (ModelSpec(raw_events=[{"choices": [{"delta": {"content": {"a": 1}}}]}, *_finish()]),
                       "error", 'content that is not text: {"a": 1}'),
    "odd-fields": (ModelSpec(raw_events=[{"model": 5, "choices": [{"delta": None}]},
                                         {"choices": [{"delta": {"content": "hi", "tool_calls": None}}]},
                                         *_finish(usage=[1, 2])]), "ok", "hi"),
    # a shape that is not the chat-completions one is a malformed answer, never an empty ok (issue 21)
    "odd-shapes": (ModelSpec(raw_events=[{"model": 5, "choices": {"x": 1}}, {"choices": ["s", None, {"delta": "d"}]},
                                         *_finish(usage=[1, 2])]), "error", "not a list of objects"),
    # malformed tool-call fragments: an error row that says which fragment, the text kept
    "tool-calls-not-a-list": (ModelSpec(raw_events=[
        {"choices": [{"delta": {"content": "hi", "tool_calls": {"x": 1}}}]}, *_finish()]), "error", "not a list"),
    "tool-call-pieces": (ModelSpec(raw_events=[
        {"choices": [{"delta": {"tool_calls": [{"index": "zero", "function": {"name": "f", "arguments": 3}}]}}]},
        {"choices": [{"delta": {"tool_calls": ["junk", {"function": None}]}}]}, *_finish()]), "error",
        'not a string: {"index": "zero"'),
    "tool-call-junk": (ModelSpec(raw_events=[{"choices": [{"delta": {"tool_calls": ["junk"]}}]}, *_finish()]),
                       "error", 'fragment that is not an object: "junk"'),
    "tool-call-bad-index": (ModelSpec(raw_events=[
        {"choices": [{"delta": {"tool_calls": [{"index": -1, "function": {"name": "f"}}]}}]}, *_finish()]),
        "error", "index that is not a whole number"),
    "tool-call-renamed": (ModelSpec(raw_events=[
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f"}}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"name": "g", "arguments": "{}"}}]}}]},
        *_finish()]), "error", "renames call 0 from 'f'"),
    "list-chunk": (ModelSpec(raw_events=[[1, 2], *_finish()]), "error", "not a JSON object"),
    "number-chunk": (ModelSpec(raw_events=[42]), "error", "not a JSON object"),
    "no-finish": (ModelSpec(raw_events=[{"choices": [{"delta": {"content": "half"}}]}]), "error", "finish_reason"),
}


@pytest.mark.parametrize("name", sorted(ODD_STREAMS))
def test_any_json_an_endpoint_streams_becomes_a_row(tmp_path, name):
    spec, status, shown = ODD_STREAMS[name]
    with FakeServer({"odd": spec, "good": ModelSpec(text="fine")}) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite", retries=0) as lab:
        df = lab.compare("Hi", models=["odd", "good"], cache=False).df.set_index("requested_model")
    assert df.loc["good", "status"] == "ok"
    assert df.loc["odd", "status"] == status, df.loc["odd", ["error_type", "error_message"]].tolist()
    assert shown in str(df.loc["odd", "response_text" if status == "ok" else "error_message"])


@pytest.mark.parametrize("body, status, shown", [
    ({"choices": [{"message": {"content": 12}, "finish_reason": "stop"}], "usage": "lots"}, "error",
     "content that is not text: 12"),
    ({"choices": [{"message": {"content": "12"}, "finish_reason": "stop"}], "usage": "lots"}, "ok", "12"),
    ({"choices": [{"message": {"content": None, "tool_calls": [{"function": {"name": "f", "arguments": {}}}]}}]},
     "ok", '"name": "f"'),
    ({"choices": "none"}, "error", "not a non-empty list of objects"),
    ({"choices": ["text"]}, "error", "not a non-empty list of objects"),
    ({"choices": []}, "error", "not a non-empty list of objects"),
    ({"text": "no choices"}, "error", "not a completion"),
    ([1, 2, 3], "error", "not a completion"),
])
def test_any_json_an_endpoint_answers_becomes_a_row(tmp_path, body, status, shown):
    with FakeServer({"odd": ModelSpec(raw_events=[body])}) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite", retries=0) as lab:
        row = lab.compare("Hi", models=["odd"], stream=False, cache=False).df.iloc[0]
    assert row["status"] == status, (row["error_type"], row["error_message"])
    assert shown in str(row["response_text"] if status == "ok" else row["error_message"])


@pytest.mark.parametrize("call", [
    lambda lab: lab.compare("bad \ud800 prompt", models=["m"]),
    lambda lab: lab.compare("Hi", models=["m"], system="sys \udc00"),
    lambda lab: lab.compare([{"role": "user", "content": [{"type": "text", "text": "a\ud800"}]}], models=["m"]),
    lambda lab: lab.compare("Hi", models=["m\ud800"]),
    lambda lab: lab.compare("Hi", models=["m"], metadata={"tag": "x\ud800"}),
    lambda lab: lab.compare("Hi", models=["m"], stop=["\udc00"]),
    lambda lab: lab.sweep(frame(task="t\ud800"), models=["m"], progress=False),
    lambda lab: lab.sweep(frame(expected="e\ud800"), models=["m"], progress=False),
    lambda lab: lab.sweep(frame(prompt_id="p\ud800"), models=["m"], progress=False),
    lambda lab: lab.sweep(["a"], models=["m"], resume="r\ud800", progress=False),
    lambda lab: lab.runs(run_id="r\ud800"),
], ids=["prompt", "system", "content-part", "model", "extra-param", "extra-list", "task", "expected",
        "prompt_id", "resume", "runs-run_id"])
def test_user_text_with_lone_surrogates_is_refused_before_sending(tmp_path, call):
    with FakeServer({"m": ModelSpec()}) as srv, Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite") as lab:
        with pytest.raises(InputError) as info:
            call(lab)
        assert "surrogate" in str(info.value) and "\n" not in str(info.value)
        str(info.value).encode("utf-8")  # the message itself is printable
        assert chat(srv) == []


# --------------------------------------------------------------------------- 4/5. secrets

@pytest.mark.parametrize("extra", [
    {"api_key": SECRET}, {"apiKey": SECRET}, {"Authorization": f"Bearer {SECRET}"},
    {"extra_headers": {"Authorization": f"Bearer {SECRET}"}}, {"headers": {"X-Api-Key": SECRET}},
    {"metadata": {"x-api-key": SECRET}}, {"metadata": {"note": f"Bearer {SECRET}"}},
    {"user": SECRET}, {"access_token": "abc"}, {"extra_query": {"key": SECRET}},
], ids=["api_key", "apiKey", "Authorization", "extra_headers", "headers", "nested-x-api-key",
        "nested-bearer", "key-shaped-value", "access_token", "extra_query"])
def test_credential_looking_parameters_are_refused_with_one_line(tmp_path, extra):
    with FakeServer({"m": ModelSpec()}) as srv, Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite") as lab:
        with pytest.raises(InputError) as info:
            lab.compare("Hi", models=["m"], **extra)
        message = str(info.value)
        assert "api_key_env" in message and "\n" not in message
        assert_no_key(message)
        assert chat(srv) == [] and len(lab.runs()) == 0


def test_per_model_parameters_cannot_carry_credentials_either(tmp_path):
    with FakeServer({"m": ModelSpec()}) as srv:
        with pytest.raises(InputError, match="api_key_env"):
            Lab(base_url=srv.base_url, db=":memory:", model_params={"m": {"api_key": SECRET}})
        with Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite") as lab:
            for params in ({"m": {"Authorization": f"Bearer {SECRET}"}}, {"*": {"x": "\ud800"}}):
                with pytest.raises(InputError):
                    lab.compare("Hi", models=["m"], model_params=params)
        assert chat(srv) == []


def test_magic_refuses_credential_parameters_too(tmp_path):
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell

    from llmlab.magics import load_ipython_extension, unload_ipython_extension

    sh = InteractiveShell.instance()
    unload_ipython_extension(sh)
    load_ipython_extension(sh)
    try:
        with FakeServer({"m": ModelSpec()}) as srv:
            sh.run_line_magic("config", f'LLMLab.base_url = "{srv.base_url}"')
            sh.run_line_magic("config", f'LLMLab.db = "{tmp_path / "l.sqlite"}"')
            for line in (f"model=m api_key={SECRET}", f"model=m body.api_key={SECRET}",
                         f"model=m body.extra_headers='{{\"Authorization\": \"Bearer {SECRET}\"}}'",
                         f"model=m user={SECRET}"):
                with pytest.raises(UsageError, match="api_key_env") as info:
                    sh.run_cell_magic("llm", line, "Hi")
                assert_no_key(str(info.value))
            assert chat(srv) == []
    finally:
        unload_ipython_extension(sh)
        sh.config.pop("LLMLab", None)


def test_a_key_in_base_url_is_used_but_never_stored_or_shown(tmp_path, capsys):
    db = tmp_path / "l.sqlite"
    with FakeServer({"m": ModelSpec(text="fine")}) as srv:
        url = srv.base_url.replace("http://", f"http://user:{SECRET}@")
        with Lab(base_url=url, db=db) as lab:
            res = lab.compare("Hi", models=["m"])
            print(lab, lab.base_url, res.df.to_string(), lab.runs().to_csv())
        assert res.df["status"].iloc[0] == "ok"
        assert res.df["endpoint"].iloc[0] == srv.base_url  # userinfo stripped
        with Lab(base_url=f"{srv.base_url}?api-key={SECRET}&api-version=1", db=db) as lab:
            res = lab.compare("Hi", models=["m"], cache=False)
            print(lab, lab.base_url, res.df.to_string())
        assert res.df["endpoint"].iloc[0] == f"{srv.base_url}?api-key=[redacted]&api-version=1"
        with pytest.raises(ConfigError) as info:
            Lab(base_url=f"ftp://user:{SECRET}@host/v1", db=":memory:")
    assert_no_key(capsys.readouterr().out, db_blob(db), str(info.value))


@pytest.mark.parametrize("echo", [
    SECRET[:-1], SECRET[1:], SECRET[10:30], SECRET[5:13], SECRET.upper(), SECRET.lower(),
    f"{SECRET[:9]}…{SECRET[-9:]}", SECRET[::2] + SECRET[3:12],
], ids=["minus-last", "minus-first", "middle", "exactly-8", "upper", "lower", "ends", "mixed"])
def test_echoed_key_fragments_are_redacted_everywhere(tmp_path, monkeypatch, capsys, echo):
    """An endpoint echoing any 8+ character run of the key (answer, error, model name): no
    8-character run of it is stored or shown (a prompt holding one is never sent: test_body_secrets.py)."""
    monkeypatch.setenv("GATEWAY_KEY", SECRET)
    models = {"echo": ModelSpec(text=f"your key: {echo} ok", served_model=f"model-{echo}"),
              "fail": ModelSpec(status=401, error_message=f"Incorrect API key provided: {echo}."),
              "denied": ModelSpec(status=400, error_message=f"key={echo}")}
    db = tmp_path / "l.sqlite"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with FakeServer(models) as srv, Lab(base_url=srv.base_url, api_key_env="GATEWAY_KEY", db=db) as lab:
            res = lab.compare("is this my key?", models=["echo", "fail", "denied"], retries=0,
                              on_event=lambda e: print(e.text, e.record))
            print(res.df.to_string(), res._repr_html_(), res.summary(), lab.runs().to_csv())
    assert set(res.df["status"]) == {"ok", "error"}
    assert "[redacted]" in res.df.set_index("requested_model").loc["echo", "response_text"]
    out = capsys.readouterr()
    assert_no_key(out.out, out.err, db_blob(db), *(str(w.message) for w in caught))


def test_a_key_streamed_in_small_pieces_never_shows_in_live_deltas(tmp_path, monkeypatch):
    """An endpoint streaming the key a few characters per chunk: each delta alone is short, so
    the stream's redaction holds back what may be a key's start until it knows."""
    monkeypatch.setenv("GATEWAY_KEY", SECRET)
    pieces = [SECRET[i:i + 3] for i in range(0, len(SECRET), 3)]
    deltas: list[str] = []
    with FakeServer({"m": ModelSpec(chunks=["Here it is: ", *pieces, " done"])}) as srv, \
            Lab(base_url=srv.base_url, api_key_env="GATEWAY_KEY", db=tmp_path / "l.sqlite") as lab:
        res = lab.compare("Hi", models=["m"], on_event=lambda e: deltas.append(e.text) if e.kind == "delta" else None)
    assert len(deltas) == len(pieces) + 2 and res.df["response_text"].iloc[0] == "Here it is: [redacted] done"
    assert_no_key("".join(deltas))
    from llmlab.base._redact import Redactor, StreamRedactor

    stream = StreamRedactor(Redactor([SECRET]))
    live = "".join(stream.feed(p) for p in ["prefix ", *pieces, " suffix"])
    assert_no_key(live)
    assert live.startswith("prefix ") and "[redacted]" in live


def test_redactor_catches_every_8_run_and_leaves_ordinary_text():
    from llmlab.base._redact import Redactor

    redact = Redactor([SECRET])
    for i in range(len(SECRET) - 7):
        for j in range(i + 8, len(SECRET) + 1):
            assert SECRET[i:j] not in redact(f"a {SECRET[i:j]} b")
    text = "An ordinary answer about sk- keys, with ***bold*** markdown and abcdefg."
    assert redact(text) == text
    assert Redactor(["llmlab-no-key"[:3]])("abc") == "abc"  # too short to be a secret


def test_redactor_is_not_quadratic_in_the_pieces_of_a_key():
    """A hostile answer of 3-character pieces of the key and near-matches (100 KB took 240 s when
    clustering recomputed each cluster's reach per piece): redacted in seconds, each repeat alike."""
    import time

    from llmlab.base._redact import Redactor

    redact = Redactor([SECRET])
    pieces = " ".join(SECRET[i:i + 3] for i in range(len(SECRET) - 2))
    unit = pieces + " " + " ".join(SECRET[:7] + c for c in "xyz#") + " "  # 7 characters: no secret alone
    copies = 100_000 // len(unit)
    started = time.thread_time()
    out = redact(unit * copies)
    took = time.thread_time() - started
    print(f"{len(unit) * copies} characters of key pieces and near-matches redacted in {took:.2f} s")
    assert took < 5
    assert out == redact(unit) * copies and "[redacted]" in out


# --------------------------------------------------------------------------- 6. project settings

@pytest.fixture
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    from llmlab.magics import unload_ipython_extension

    sh = InteractiveShell.instance()
    unload_ipython_extension(sh)
    sh.config.pop("LLMLab", None)
    yield sh
    unload_ipython_extension(sh)
    sh.config.pop("LLMLab", None)


def bearer_sha(key: str) -> str:
    return auth_fingerprint(f"Bearer {key}")


@pytest.mark.parametrize("section", [
    'base_url = "{url}"\napi_key_env = "GITHUB_TOKEN"\n',
    'base-url = "{url}"\napi-key-env = "GITHUB_TOKEN"\n',
    'base_url = "{url}"\n',  # no key variable: the default OPENAI_API_KEY must not go there either
])
def test_a_cloned_project_cannot_send_your_secrets_to_its_host(tmp_path, monkeypatch, capsys, shell, section):
    from llmlab.magics import load_ipython_extension

    monkeypatch.setenv("GITHUB_TOKEN", SECRET)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET[::-1])
    with FakeServer({"m": ModelSpec()}) as srv:
        (tmp_path / "pyproject.toml").write_text("[tool.llmlab]\n" + section.format(url=srv.base_url))
        load_ipython_extension(shell)
        notice = capsys.readouterr().err
        assert "pyproject.toml" in notice and srv.base_url in notice and "key variable sent there: none" in notice
        shell.run_cell_magic("llm", "model=m", "Hi")
        sent = {r.auth_sha256 for r in chat(srv)}
    assert sent and not sent & {bearer_sha(SECRET), bearer_sha(SECRET[::-1])}


def test_a_project_key_variable_is_used_when_the_user_trusts_it(tmp_path, monkeypatch, capsys, shell):
    from llmlab.magics import load_ipython_extension

    monkeypatch.setenv("TEAM_KEY", SECRET)
    monkeypatch.setenv("LLMLAB_TRUSTED_KEY_VARS", "OTHER,TEAM_KEY")
    with FakeServer({"m": ModelSpec()}, api_key=SECRET) as srv:
        (tmp_path / "pyproject.toml").write_text(f'[tool.llmlab]\nbase_url = "{srv.base_url}"\n'
                                                 'api_key_env = "TEAM_KEY"\n')
        load_ipython_extension(shell)
        assert "key variable sent there: TEAM_KEY" in capsys.readouterr().err
        res = shell.run_cell_magic("llm", "model=m", "Hi")
    assert res.df["status"].iloc[0] == "ok" and res.df["api_key_env"].iloc[0] == "TEAM_KEY"


def test_a_user_setting_names_the_key_for_a_project_endpoint(tmp_path, monkeypatch, shell):
    from llmlab.magics import load_ipython_extension

    monkeypatch.setenv("MY_KEY", SECRET)
    with FakeServer({"m": ModelSpec()}, api_key=SECRET) as srv:
        (tmp_path / "pyproject.toml").write_text(f'[tool.llmlab]\nbase_url = "{srv.base_url}"\n')
        load_ipython_extension(shell)
        shell.run_line_magic("config", 'LLMLab.api_key_env = "MY_KEY"')
        assert shell.run_cell_magic("llm", "model=m", "Hi").df["status"].iloc[0] == "ok"


def test_a_profile_key_variable_is_not_sent_to_a_project_endpoint(tmp_path, monkeypatch, capsys, shell):
    """Your IPython profile names MY_KEY for your gateway; a cloned project changes the endpoint:
    MY_KEY does not follow it there until you say so in this session."""
    from llmlab.magics import load_ipython_extension

    monkeypatch.setenv("MY_KEY", SECRET)
    with FakeServer({"m": ModelSpec()}) as srv:
        (tmp_path / "pyproject.toml").write_text(f'[tool.llmlab]\nbase_url = "{srv.base_url}"\n')
        shell.config.LLMLab.api_key_env = "MY_KEY"
        load_ipython_extension(shell)
        assert "'MY_KEY' is not sent" in capsys.readouterr().err
        shell.run_cell_magic("llm", "model=m", "Hi")
        shell.run_line_magic("config", f'LLMLab.base_url = "{srv.base_url}"')  # adopted: your endpoint now
        shell.run_cell_magic("llm", "model=m", "Hi again")
        sent = [r.auth_sha256 for r in chat(srv)]
    assert sent[0] != bearer_sha(SECRET) and sent[1] == bearer_sha(SECRET)


def test_a_dotenv_endpoint_gets_its_own_key_never_one_from_your_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with FakeServer({"m": ModelSpec()}) as srv:
        (tmp_path / ".env").write_text(f"OPENAI_BASE_URL={srv.base_url}\n")
        with pytest.warns(UserWarning, match="OPENAI_API_KEY from your environment is not sent"):
            lab = Lab(db=tmp_path / "l.sqlite")
        with lab:
            lab.compare("Hi", models=["m"])
        (tmp_path / ".env").write_text(f"OPENAI_BASE_URL={srv.base_url}\nOPENAI_API_KEY=project-own-key-123\n")
        with Lab(db=tmp_path / "l.sqlite") as lab:
            lab.compare("Hi", models=["m"], cache=False)
        monkeypatch.setenv("LLMLAB_TRUSTED_KEY_VARS", "OPENAI_API_KEY")
        with Lab(db=tmp_path / "l.sqlite") as lab:
            lab.compare("Hi", models=["m"], cache=False)
        sent = [r.auth_sha256 for r in chat(srv)]
    assert sent[0] != bearer_sha(SECRET) and sent[1] == bearer_sha("project-own-key-123")
    assert sent[2] == bearer_sha(SECRET)  # trusted by the user: sent


# --------------------------------------------------------------------------- 7/8. embedded endpoint, permissions

class _FakeLocal:
    """Stands in for local.start(): a real HTTP server, so what the demo sends can be checked."""

    def __init__(self, srv: FakeServer) -> None:
        from llmlab.base._config import LocalURL

        self.base_url, self.models, self._srv = LocalURL(srv.base_url), [], srv

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


@pytest.fixture
def usual_umask():
    """The common 022 umask, under which plain mkdir/open give 0755/0644."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_demo_sends_no_key_and_writes_owner_only_files(tmp_path, monkeypatch, usual_umask):
    import llmlab.local
    from llmlab.cli import _demo
    from llmlab.local import bundled_models

    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("LLMLAB_API_KEY", SECRET)
    aliases = [m.alias for m in bundled_models()]
    with FakeServer({a: ModelSpec(text="42") for a in aliases}) as srv:
        monkeypatch.setattr(llmlab.local, "start", lambda **kw: _FakeLocal(srv))
        out = _demo.run_demo(tmp_path / "deep" / "demo-out", n_prompts=2, progress=False, log=lambda *_: None,
                             decision_prompts=0)
        sent = {r.auth_sha256 for r in chat(srv)}
    assert bearer_sha(SECRET) not in sent and len(chat(srv)) == 2 * len(aliases)
    assert set(out.runs["api_key_env"].isna()) == {True}
    for folder in (tmp_path / "deep", tmp_path / "deep" / "demo-out"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    files = list((tmp_path / "deep" / "demo-out").iterdir())
    assert {"runs.csv", "summary.csv", "report.html", "runs.sqlite"} <= {f.name for f in files}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_a_local_url_never_gets_a_key(tmp_path, monkeypatch):
    from llmlab.base._config import LocalURL

    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with FakeServer({"m": ModelSpec()}) as srv, Lab(base_url=LocalURL(srv.base_url), db=":memory:") as lab:
        lab.compare("Hi", models=["m"])
        assert lab.api_key_env is None and bearer_sha(SECRET) not in {r.auth_sha256 for r in chat(srv)}


def test_llmlab_home_and_log_folders_are_owner_only(tmp_path, isolated_env, usual_umask):
    Lab(base_url="http://127.0.0.1:9/v1").close()  # creates $LLMLAB_HOME for its default log
    assert stat.S_IMODE(isolated_env.stat().st_mode) == 0o700
    assert stat.S_IMODE((isolated_env / "runs.sqlite").stat().st_mode) == 0o600
    Lab(base_url="http://127.0.0.1:9/v1", db=tmp_path / "a" / "b" / "log.sqlite").close()
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "a" / "b").stat().st_mode) == 0o700
    with FakeServer({"m": ModelSpec()}) as srv, Lab(base_url=srv.base_url) as lab:
        lab.compare("Hi", models=["m"])
        files = list(isolated_env.glob("runs.sqlite*"))  # the log and its -wal/-shm, while open
        assert len(files) >= 2 and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files), files


def test_local_server_record_and_model_cache_are_owner_only(tmp_path, isolated_env, usual_umask):
    from llmlab.base._files import private_dir
    from llmlab.local import _ensure


    class Server:
        pid, port, base_url, models, log_path = os.getpid(), 1, "http://127.0.0.1:1/v1", ["m"], None

    path = _ensure.write_record(Server())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    cache = private_dir(tmp_path / "cache" / "llmlab" / "models")
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o700 for p in (cache, cache.parent, cache.parent.parent))


# --------------------------------------------------------------------------- 9. re-entrant callbacks

def test_on_event_calling_the_same_lab_is_a_clear_error_not_a_deadlock(tmp_path):
    with FakeServer({"m": ModelSpec(text="hi")}) as srv:
        lab = Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite")
        errors: list[BaseException] = []

        def callback(event):
            if event.kind == "done":
                for again in (lambda: lab.compare("again", models=["m"]), lambda: lab.list_models(),
                              lambda: lab.sweep(["x"], models=["m"], progress=False), lab.close):
                    try:
                        again()
                    except LLMLabError as exc:
                        errors.append(exc)

        box: dict = {}

        def run():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                box["res"] = lab.compare("Hi", models=["m"], on_event=callback)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(30)
        assert not thread.is_alive(), "lab.compare deadlocked on a re-entrant on_event callback"
        assert box["res"].df["status"].iloc[0] == "ok"
        assert len(errors) == 4 and all("own event-loop thread" in str(e) and "\n" not in str(e) for e in errors)
        assert lab.compare("after", models=["m"]).df["status"].iloc[0] == "ok"  # the Lab still works
        lab.close()


# --------------------------------------------------------------------------- 10. out= names

@pytest.mark.parametrize("name", ["__builtins__", "__name__", "print", "list", "In", "Out", "_", "__", "_i",
                                  "_ii", "_i3", "_12", "_oh", "get_ipython", "exit", "display", "None", "class"])
def test_out_refuses_names_python_or_ipython_rely_on(shell, name):
    from IPython.core.error import UsageError

    from llmlab.magics import load_ipython_extension

    load_ipython_extension(shell)
    before = shell.user_ns.get(name, "<absent>")
    with FakeServer({"m": ModelSpec()}) as srv:
        shell.run_line_magic("config", f'LLMLab.base_url = "{srv.base_url}"')
        with pytest.raises(UsageError) as info:
            shell.run_cell_magic("llm", f"model=m out={name}", "Hi")
        assert chat(srv) == []
    assert "out=" in str(info.value) and "\n" not in str(info.value)
    assert shell.user_ns.get(name, "<absent>") is before


# --------------------------------------------------------------------------- 13. raw exceptions

def test_raw_exceptions_become_one_llmlab_line(tmp_path):
    with FakeServer({"m": ModelSpec()}) as srv:
        lab = Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite")
        lab.compare("Hi", models=["m"])
        for bad in ("5; DROP TABLE runs", -1, True, 2.5):
            with pytest.raises(InputError, match="limit"):
                lab.runs(limit=bad)
        assert len(lab.runs(limit=10**30)) == 1  # "more than there is" means all
        assert len(lab.runs()) == 1
        lab.close()
        for after_close in (lab.runs, lambda: lab.compare("Hi", models=["m"]), lab.list_models,
                            lambda: lab.submit_compare("Hi", models=["m"])):
            with pytest.raises(InputError, match="closed"):
                after_close()
        assert len(chat(srv)) == 1  # nothing sent after close
    for bad_path in (str(tmp_path / "bad\udcff.sqlite"), tmp_path / "bad\udcff.sqlite"):
        with pytest.raises(LLMLabError) as info:
            Lab(base_url="http://127.0.0.1:9/v1", db=bad_path)
        assert "\n" not in str(info.value)
        str(info.value).encode("utf-8")


def test_history_with_a_huge_count_shows_the_log(shell, tmp_path):
    from llmlab.magics import load_ipython_extension

    load_ipython_extension(shell)
    with FakeServer({"m": ModelSpec()}) as srv:
        shell.run_line_magic("config", f'LLMLab.base_url = "{srv.base_url}"')
        shell.run_line_magic("config", f'LLMLab.db = "{tmp_path / "l.sqlite"}"')
        shell.run_cell_magic("llm", "model=m", "Hi")
        frame = shell.run_line_magic("llm", "history 99999999999999999999999")
    assert len(frame) == 1


# --------------------------------------------------------------------------- 14. key whitespace

@pytest.mark.parametrize("value, says", [
    (SECRET + "\n", "whitespace"), ("  " + SECRET, "whitespace"), (SECRET[:10] + " " + SECRET[10:], "a space"),
    (SECRET[:10] + "\x7f" + SECRET[10:], "a control character"), (SECRET + "é", "a non-ASCII character"),
])
def test_a_key_with_whitespace_or_odd_characters_is_named_not_retried(tmp_path, monkeypatch, value, says):
    monkeypatch.setenv("GATEWAY_KEY", value)
    with FakeServer({"m": ModelSpec()}) as srv, Lab(base_url=srv.base_url, api_key_env="GATEWAY_KEY",
                                                     db=tmp_path / "l.sqlite") as lab:
        with pytest.raises(ConfigError) as info:
            lab.compare("Hi", models=["m"])
        assert chat(srv) == []
    message = str(info.value)
    assert "GATEWAY_KEY" in message and says in message and "\n" not in message
    assert_no_key(message)


# --------------------------------------------------------------------------- 15. bidi characters

BIDI = ["\u202e", "\u202a", "\u202b", "\u202c", "\u202d", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e",
        "\u200f", "\u061c", "\u2028", "\u2029", "\U000e0041", "\U000e007f"]  # the last two: invisible tags


@pytest.mark.parametrize("char", BIDI)
def test_bidi_controls_are_shown_not_obeyed_in_text_and_html_views(char):
    text = f"safe{char}txt.exe"
    shown = f"\\u{ord(char):04x}" if ord(char) < 0x10000 else f"\\U{ord(char):08x}"
    assert char not in clean_text(text) and shown in clean_text(text)
    assert char not in esc(text) and shown in esc(text)
    frame = pd.DataFrame({"response_text": [text]})
    assert char not in table_html(frame)


def test_bidi_in_model_output_never_reaches_the_views(tmp_path):
    evil = "Click \u202egnp.exe\u202c and \u2067isolated\u2069"
    with FakeServer({"m": ModelSpec(text=evil, served_model="m\u202e")}) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path / "l.sqlite") as lab:
        from llmlab.notebook._board import Board

        board = Board(["m"])
        res = lab.compare("Hi", models=["m"], on_event=board.apply)
    assert res.df["response_text"].iloc[0] == evil  # stored as sent: the data is not altered
    for view in (board_text(board.snapshot()), board._repr_html_(), res._repr_html_()):
        assert not any(c in view for c in BIDI), view
    from llmlab.analysis._report import render_report, standard_sections

    html = render_report(standard_sections(res.summary(), res.df, {}), {"endpoint": "x\u202ey"})
    assert not any(c in html for c in BIDI)


# --------------------------------------------------------------------------- the load test

@pytest.mark.slow
def test_load_2000_calls_with_faults_every_pair_answered(tmp_path, monkeypatch):
    """1,000 prompts × 2 models under 5 % injected 429/503, lone surrogates in every answer of
    one model, and an endpoint echoing key fragments: every pair ends with an ok row, nothing
    is lost and no key fragment is stored."""
    from fakeserver import start_subprocess, stop_subprocess

    monkeypatch.setenv("GATEWAY_KEY", SECRET)
    models = {
        "surrogates": {"text": "answer \ud800 with \udfff bad text", "error_rate": 0.05, "seed": 1,
                       "delay_s": 0.005},
        "echo": {"text": f"your key is {SECRET[2:-2]}", "error_rate": 0.05, "seed": 2, "delay_s": 0.005},
    }
    proc, base_url = start_subprocess(models, api_key=SECRET)
    try:
        # Short backoff: the point is the faults, not the waiting.
        with Lab(base_url=base_url, api_key_env="GATEWAY_KEY", db=tmp_path / "l.sqlite",
                 retry_policy=RetryPolicy(retries=6, base_s=0.05), concurrency=64) as lab:
            res = lab.sweep([f"prompt number {i}" for i in range(1000)], models=["surrogates", "echo"],
                            progress=False)
            runs = lab.runs()
    finally:
        stop_subprocess(proc)
    final = res.df.sort_values("attempt").groupby(["prompt_id", "requested_model"]).tail(1)
    assert len(final) == 2000 and (final["status"] == "ok").all()
    failed = res.df[res.df["status"] != "ok"]
    assert len(failed) > 40 and set(failed["error_type"]) <= {"RateLimitError", "InternalServerError"}
    assert len(runs) == len(res.df)
    assert runs.loc[runs["requested_model"] == "surrogates", "status"].eq("ok").sum() == 1000
    assert_no_key(db_blob(tmp_path / "l.sqlite"), res.df.to_csv())
    print(f"\n2,000 pairs: {len(res.df)} rows, {len(failed)} failed attempts, "
          f"max attempt {int(res.df['attempt'].max())}", file=sys.stderr)

