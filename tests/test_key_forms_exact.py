"""The body and file-name checks see the key in the forms any reader sees as the key (F12).

``check_no_secret``/``secret_path`` (base/_credentials) hold a text to the one rule
``base/_validate.holds_secret`` (the views' redaction would change it): upper case, full-width,
zero-width- or CGJ-joined keys are refused before anything is sent or a file is made (every other
form: test_body_secrets.py); text holding only chance fragments of the key still passes."""
from __future__ import annotations

import pytest
from fakeserver import ModelSpec

from llmlab import InputError, Lab
from llmlab.base._credentials import check_no_secret, secret_path
from llmlab.base._redact import remember

KEY = "sk-proj-Zq7XvB3mK9tR2wLp8NcY4hJd"
FORMS = {
    "upper": KEY.upper(),
    "lower": KEY.lower(),
    "zwsp-joined": "\u200b".join(KEY),
    "cgj inside": KEY[:10] + "\u034f" + KEY[10:],
    "word joiner": "\u2060".join(KEY),
    "soft hyphens": "\u00ad".join(KEY),
    "full-width": "".join(chr(ord(c) + 0xFEE0) for c in KEY),
    "full-width upper": "".join(chr(ord(c) + 0xFEE0) for c in KEY.upper()),
    "tag-free bom": "\ufeff" + KEY,
    "variation selectors": "\ufe0f".join(KEY),
}
RESEMBLING = [KEY[:5], f"{KEY[:3]} and {KEY[10:13]} far apart from {KEY[-3:]}", "an API key is secret",
              "ordinary text, café and ｆｕｌｌ-width words"]


@pytest.mark.parametrize("form", list(FORMS))
def test_a_key_form_in_a_body_is_refused(form):
    remember([KEY])
    with pytest.raises(InputError, match="^system holds your API key") as info:
        check_no_secret("my note: " + FORMS[form], "system")
    assert KEY not in str(info.value)
    assert secret_path({"messages": [{"content": ["x", FORMS[form]]}]}, "v") == "v['messages'][0]['content'][1]"


@pytest.mark.parametrize("text", RESEMBLING)
def test_text_merely_resembling_the_key_passes(text):
    remember([KEY])
    check_no_secret(text, "system")


def test_nothing_is_sent_for_a_key_form(serve, tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_API_KEY", KEY)
    srv = serve({"m": ModelSpec(text="hi")})
    with Lab(base_url=srv.base_url, db=tmp_path / "r.sqlite", retries=0) as lab:
        for form in FORMS.values():
            with pytest.raises(InputError, match="holds your API key"):
                lab.compare("hello", models=["m"], system="my note: " + form, cache=False)
            with pytest.raises(InputError, match="holds your API key"):
                lab.compare("hello " + form, models=["m"], cache=False)
    assert not [r for r in srv.requests if r.path.endswith("/chat/completions")]


@pytest.mark.parametrize("form", ["upper", "zwsp-joined", "full-width"])
def test_no_file_is_named_after_a_key_form(tmp_path, monkeypatch, form):
    monkeypatch.setenv("LLMLAB_API_KEY", KEY)
    target = tmp_path / FORMS[form] / "x.sqlite"
    with pytest.raises(InputError, match="^db holds your API key"):
        Lab(base_url="http://127.0.0.1:9/v1", db=target)
    assert not target.parent.exists()
