"""NUL is one rule for every backend (attack 4, F7): an answer holding NUL is stored with U+FFFD and
a note, on PostgreSQL as on SQLite, so the sweep goes on and the answer is cached; the user's text
with a NUL is refused before anything is sent."""
from __future__ import annotations

import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import InputError, Lab


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "plain"])
def test_an_answer_with_nul_is_stored_and_the_sweep_goes_on(db_url, stream):
    models = {"nul": ModelSpec(text="a\x00b c", reasoning="r\x00s", served_model="srv\x00x"),
              "ok": ModelSpec(text="fine")}
    prompts = [f"q{i}" for i in range(5)]
    with FakeServer(models) as srv, Lab(db=db_url, base_url=srv.base_url) as lab:
        res = lab.sweep(prompts, models=["nul", "ok"], stream=stream, progress=False)
        assert len(srv.requests) == 10
        df = res.df
        assert list(df.status) == ["ok"] * 10
        nul = df[df.requested_model == "nul"]
        assert all(text == "a\ufffdb c" for text in nul.response_text)
        assert all(text == "r\ufffds" for text in nul.reasoning_text)
        assert all("NUL" in note and "U+FFFD" in note for note in nul.error_message)
        stored = lab.runs()
        assert len(stored) == 10 and "\x00" not in "".join(stored.response_text.astype(str))
        again = lab.sweep(prompts, models=["nul", "ok"], stream=stream, progress=False)
        assert len(srv.requests) == 10  # replayed from the cache: nothing paid twice
        assert list(again.df.response_text[again.df.requested_model == "nul"]) == ["a\ufffdb c"] * 5


def test_a_reopened_log_holds_the_nul_answer_the_same_way(db_url):
    with FakeServer({"m": ModelSpec(text="x\x00y")}) as srv:
        with Lab(db=db_url, base_url=srv.base_url) as lab:
            lab.compare("Hi", models=["m"])
        with Lab(db=db_url, base_url=srv.base_url) as lab:
            assert list(lab.runs().response_text) == ["x\ufffdy"]


@pytest.mark.parametrize("call", [
    lambda lab: lab.compare("a\x00b", models=["m"]),
    lambda lab: lab.compare([{"role": "user", "content": [{"type": "text", "text": "a\x00"}]}], models=["m"]),
    lambda lab: lab.compare("hi", models=["m"], system="be\x00nice"),
    lambda lab: lab.compare("hi", models=["m"], stop=["\x00"]),
    lambda lab: lab.compare("hi", models=["m"], extra_body={"x\x00": 1}),
    lambda lab: lab.compare("hi", models=["m"], model_params={"m": {"metadata": {"k": "v\x00"}}}),
    lambda lab: lab.sweep(["ok", "b\x00"], models=["m"], progress=False),
    lambda lab: lab.sweep([{"prompt": "ok", "task": "t\x00"}], models=["m"], progress=False),
    lambda lab: lab.sweep(["ok"], models=["m"], progress=False, resume="r\x00"),
], ids=["prompt", "parts", "system", "stop", "extra_body", "model_params", "sweep", "task", "resume"])
def test_a_nul_in_the_users_text_is_refused_before_anything_is_sent(db_url, call):
    with FakeServer({"m": ModelSpec(text="ok")}) as srv, Lab(db=db_url, base_url=srv.base_url) as lab:
        with pytest.raises(InputError, match="NUL") as info:
            call(lab)
        assert "\n" not in str(info.value)
        assert srv.requests == []
        assert len(lab.runs()) == 0
