"""A price sheet's model names hold no secret (F13): ``lab.prices.to_frame()`` would show them.

A user's sheet (a dict or a JSON file) is refused in one line when a model name holds a form of
the key (the shown-name check every model name passes), never echoing it; ``to_frame()`` is a
frame that displays like every frame llmlab hands out (secrets removed)."""
from __future__ import annotations

import json

import pytest

from llmlab import InputError, Lab
from llmlab.base._pricing import Price, PriceTable
from llmlab.base._redact import remember

KEY = "sk-proj-Zq7XvB3mK9tR2wLp8NcY4hJd"
ENTRY = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}


@pytest.mark.parametrize("name", [KEY, "openai/" + KEY, "\u200b".join(KEY), KEY.upper()])
def test_a_key_named_price_entry_is_refused(monkeypatch, tmp_path, name):
    monkeypatch.setenv("LLMLAB_API_KEY", KEY)
    for prices in ({name: ENTRY, "m": ENTRY}, {name: {"input_cost_per_token": "cheap"}}):
        with pytest.raises(InputError, match="price sheet user prices looks like your API key") as info:
            Lab(base_url="http://127.0.0.1:9/v1", db=":memory:", prices=prices)
        assert "Zq7XvB3m" not in str(info.value)
    sheet = tmp_path / "prices.json"
    sheet.write_text(json.dumps({"models": {name: ENTRY}}))
    with pytest.raises(InputError, match="looks like your API key"):
        PriceTable.load(sheet)


def test_plain_names_load_and_to_frame_redacts(monkeypatch):
    monkeypatch.setenv("LLMLAB_API_KEY", KEY)
    table = PriceTable.load({"gpt-4o": ENTRY, "provider/model-x": ENTRY})
    assert {"gpt-4o", "provider/model-x"} <= set(table.models())
    remember([KEY])
    frame = PriceTable({KEY: Price(input_cost_per_token=1e-6, output_cost_per_token=2e-6)}, "x").to_frame()
    assert KEY not in repr(frame) and KEY not in frame._repr_html_()
    assert frame["model"].tolist() == [KEY]  # the data as given; only the views redact
