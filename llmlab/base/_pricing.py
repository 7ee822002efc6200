"""Price sheets: USD per token, in the field names of LiteLLM's price file.

A sheet is the bundled dated table (``data/prices.json``), a dict, a JSON file (ours or LiteLLM's
``model_prices_and_context_window.json``), or another :class:`PriceTable`. Costs are always
computed from a call's own prompt and completion tokens; an unknown price is NaN (with one
warning per model), never 0. Optional rates, in LiteLLM's names: ``cache_read_input_token_cost``
and ``cache_creation_input_token_cost`` (prompt caching), and the Batch API's
``input_cost_per_token_batches``, ``output_cost_per_token_batches``,
``cache_read_input_token_cost_batches``, ``cache_creation_input_token_cost_batches``.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ._credentials import remember_keys
from ._errors import ConfigError, InputError
from ._files import read_regular
from ._json import loads
from ._redact import redact_shown
from ._validate import check_shown_name, one_line, read_finite
from ._warnings import warn_once

__all__ = ["Price", "PriceTable", "PriceWarning"]

MAX_SHEET_BYTES = 64 * 2**20
# USD per token; no model costs $1,000 a token, and a bound keeps every cost finite (tokens < 1e15)
MAX_PRICE_PER_TOKEN = 1e3  # LiteLLM's whole sheet is about 1.5 MB
_DATE_SUFFIX = re.compile(r"-(20\d{2}-?\d{2}-?\d{2}|latest)$")


class PriceWarning(UserWarning):
    """A model has no known price; its cost is NaN."""

    __module__ = "llmlab"


@dataclass(frozen=True)
class Price:

    __module__ = "llmlab"
    input_cost_per_token: float
    output_cost_per_token: float
    cache_read_input_token_cost: float | None = None
    source: str | None = None
    date: str | None = None
    cache_creation_input_token_cost: float | None = None
    # The Batch API's prices (LiteLLM's ``*_batches`` fields); None: not on the sheet
    input_cost_per_token_batches: float | None = None
    output_cost_per_token_batches: float | None = None
    cache_read_input_token_cost_batches: float | None = None
    cache_creation_input_token_cost_batches: float | None = None

    def __post_init__(self) -> None:
        # every price, from a sheet or built by hand, passes the one finite-number rule
        for name in _RATES:
            value = getattr(self, name)
            if type(value) is float and 0.0 < value <= MAX_PRICE_PER_TOKEN:
                continue  # already what the rule returns (a sheet's entry was read by it): 300,000 entries load fast
            if value is not None or name in _REQUIRED:
                object.__setattr__(self, name, _rate("Price", name, value))

    def cost(self, prompt_tokens: Any, completion_tokens: Any, cached_tokens: Any = 0,
             cache_creation_tokens: Any = 0, batch: bool = False) -> Any:
        """USD for one call's tokens; element-wise on numpy arrays (routing re-prices whole columns
        with this same rule). ``completion_tokens`` include reasoning tokens (output, as every
        provider bills them). Cached prompt tokens get the cache-read price and tokens written to
        the prompt cache the cache-write price when the sheet has them; otherwise, and when their
        count is unknown (NaN), they are billed as ordinary input. ``batch``: the sheet's Batch
        API prices (see :meth:`has_batch_price`), the live ones where it has none."""
        rates = self._rates(batch)
        cached = _known(cached_tokens) if rates[2] is not None else 0
        written = _known(cache_creation_tokens) if rates[3] is not None else 0
        return ((prompt_tokens - cached - written) * rates[0] + cached * (rates[2] or 0)
                + written * (rates[3] or 0) + completion_tokens * rates[1])

    def prompt_cache_saving(self, cached_tokens: Any, cache_creation_tokens: Any = 0, batch: bool = False) -> Any:
        """What the prompt cache took off :meth:`cost`: cached tokens at the input price minus the
        cache-read price, less what writing to the cache cost over the input price (it can be
        negative: a first call that only writes)."""
        rates = self._rates(batch)
        read = 0 if rates[2] is None else _known(cached_tokens) * (rates[0] - rates[2])
        write = 0 if rates[3] is None else _known(cache_creation_tokens) * (rates[0] - rates[3])
        return read + write

    def has_batch_price(self) -> bool:
        return self.input_cost_per_token_batches is not None or self.output_cost_per_token_batches is not None

    def _rates(self, batch: bool) -> tuple[float, float, float | None, float | None]:
        live = (self.input_cost_per_token, self.output_cost_per_token, self.cache_read_input_token_cost,
                self.cache_creation_input_token_cost)
        if not batch:
            return live
        batched = (self.input_cost_per_token_batches, self.output_cost_per_token_batches,
                   self.cache_read_input_token_cost_batches, self.cache_creation_input_token_cost_batches)
        return (_or(batched[0], live[0]), _or(batched[1], live[1]), _or(batched[2], live[2]),
                _or(batched[3], live[3]))


def _or(value: float | None, default: Any) -> Any:
    return default if value is None else value


def _known(tokens: Any) -> Any:
    """A token count whose unknown (NaN) entries count as 0: billed as ordinary input instead."""
    if isinstance(tokens, float):
        return 0.0 if math.isnan(tokens) else tokens
    if hasattr(tokens, "dtype"):
        import numpy as np

        return np.nan_to_num(tokens.astype(float), nan=0.0)
    return tokens or 0


def normalise_model_name(name: str) -> list[str]:
    """Candidate keys for a model string as gateways spell it.

    ``openrouter/anthropic/claude-sonnet-4.6`` → ``claude-sonnet-4.6`` → ``claude-sonnet-4-6``;
    dated snapshots (``gpt-5-2025-08-07``) fall back to their family name.
    """
    base = name.strip().lower()
    tail = base.rsplit("/", 1)[-1]
    candidates = [name, base, tail, tail.replace(".", "-"), _DATE_SUFFIX.sub("", tail.replace(".", "-"))]
    return list(dict.fromkeys(candidates))


class PriceTable:
    """Model → :class:`Price`, with a name that says where the prices came from."""

    __module__ = "llmlab"

    def __init__(self, prices: Mapping[str, Price], name: str) -> None:
        self._prices = dict(prices)
        self._found: dict[str, Price | None] = {}
        self.name = name

    @classmethod
    def load(cls, source: Any = None) -> PriceTable:
        if source is None:
            return cls.bundled()
        if isinstance(source, PriceTable):
            return source
        if isinstance(source, (str, Path)):
            return cls._from_file(Path(source))
        if isinstance(source, Mapping):
            return cls.bundled().updated(cls._from_mapping(source, "user prices"))
        raise ConfigError(f"prices must be a dict, a JSON file path or a PriceTable, not {type(source).__name__}")

    @classmethod
    def bundled(cls) -> PriceTable:
        text = resources.files("llmlab").joinpath("data/prices.json").read_text(encoding="utf-8")
        data = loads(text)
        meta = data["_meta"]
        return cls._from_mapping(data["models"], f"{meta['name']} ({meta['date']})", yours=False)

    @classmethod
    def _from_file(cls, path: Path) -> PriceTable:
        try:
            data = loads(read_regular(path, what="a price sheet", limit=MAX_SHEET_BYTES).decode("utf-8"))
        except InputError as exc:
            raise ConfigError(str(exc)) from None
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read price sheet {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"price sheet {path} must hold a JSON object of models")
        models = data.get("models", data)
        table = cls._from_mapping(models, str(path))
        return cls.bundled().updated(table)

    @classmethod
    def _from_mapping(cls, models: Mapping[str, Any], name: str, *, yours: bool = True) -> PriceTable:
        """``yours``: a sheet the user gave (a dict or a file): its model names are checked for a
        secret first — a name is shown by ``to_frame()`` and in every price message (the bundled
        sheet is llmlab's own)."""
        if any(not isinstance(model, str) for model in models):
            raise ConfigError(f"price sheet {name}: model names must be strings")
        if yours:
            remember_keys()
            # all names at once (a LiteLLM sheet has thousands), each alone only if the whole says so
            if redact_shown("\n".join(models)) != "\n".join(models):
                for model in models:
                    check_shown_name(model, f"a model name in price sheet {name}")
        prices = {}
        for model, entry in models.items():
            if model.startswith("_") or model == "sample_spec" or not isinstance(entry, Mapping):
                continue
            if "input_cost_per_token" not in entry and "output_cost_per_token" not in entry:
                continue  # LiteLLM lists image/audio/embedding entries priced in other units
            prices[model] = _price_from_entry(model, entry)
        return cls(prices, name)

    def updated(self, other: PriceTable) -> PriceTable:
        """This sheet overridden by ``other`` (named after ``other``)."""
        return PriceTable({**self._prices, **other._prices}, f"{other.name} over {self.name}")

    def lookup(self, model: str | None) -> Price | None:
        if not model:
            return None
        found = self._found.get(model, _UNSEEN)
        if found is _UNSEEN:  # a sheet never changes: each name is resolved once (every call asks)
            found = next((self._prices[k] for k in normalise_model_name(model) if k in self._prices), None)
            if len(self._found) < 10_000:
                self._found[model] = found
        return found  # type: ignore[return-value]

    def cost(self, model: str | None, prompt_tokens: float, completion_tokens: float,
             cached_tokens: float = 0, warn: bool = True, *, cache_creation_tokens: float = 0,
             batch: bool = False) -> float:
        price = self.lookup(model)
        if price is None or _missing(prompt_tokens) or _missing(completion_tokens):
            if price is None and warn:
                self._warn_unknown(model)
            return math.nan
        return price.cost(prompt_tokens, completion_tokens, cached_tokens, cache_creation_tokens, batch)

    @staticmethod
    def _warn_unknown(model: str | None) -> None:
        # Once per model per process, at the user's line (not llmlab's): see _warnings.

        warn_once(str(model), PriceWarning(
            f"no price known for model {model!r}: its cost_usd is NaN; add it with "
            f"Lab(prices={{{model!r}: {{'input_cost_per_token': ..., 'output_cost_per_token': ...}}}})"))

    def models(self) -> list[str]:
        return list(self._prices)

    def to_frame(self):
        """The sheet as a frame that displays like every frame llmlab hands out (secrets removed,
        control characters escaped: ``_frames.ShownFrame``)."""
        import pandas as pd

        from ._frames import shown

        rows = [{"model": m, **p.__dict__} for m, p in self._prices.items()]
        frame = pd.DataFrame(rows)
        for col in ("input", "output"):
            frame[f"{col}_usd_per_1m"] = frame[f"{col}_cost_per_token"] * 1e6
        return shown(frame)

    def __contains__(self, model: str) -> bool:
        return self.lookup(model) is not None

    def __repr__(self) -> str:
        return f"PriceTable({self.name!r}, {len(self._prices)} models)"


_UNSEEN = object()


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _price_from_entry(model: str, entry: Mapping[str, Any]) -> Price:
    where = _entry(model)
    try:
        return Price(
            input_cost_per_token=_rate(where, "input_cost_per_token", entry.get("input_cost_per_token", 0.0)),
            output_cost_per_token=_rate(where, "output_cost_per_token", entry.get("output_cost_per_token", 0.0)),
            cache_read_input_token_cost=_optional_float(model, "cache_read_input_token_cost",
                                                        entry.get("cache_read_input_token_cost")),
            source=entry.get("source") or entry.get("litellm_provider"),
            date=entry.get("date"),
            **{name: _optional_float(model, name, entry.get(name)) for name in _OPTIONAL_RATES},
        )
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigError(f"price entry for {model!r} has a non-numeric cost: {exc}") from exc


def _rate(where: str, name: str, value: Any) -> float:
    """A price per token: a finite number from 0 to :data:`MAX_PRICE_PER_TOKEN` (a negative or
    infinite price would make every cost and saving it touches wrong, e.g. "100 % saved"; True is
    not $1 a token). ``where``: the entry, as the message names it."""
    rate = read_finite(value, lo=0.0, hi=MAX_PRICE_PER_TOKEN, text=True)  # the one finite-number rule
    if rate is None:
        shown = one_line(repr(value), 60)
        if isinstance(value, bool) or not isinstance(value, (int, float)):  # True, "cheap", None
            raise ConfigError(f"{where} has a non-numeric cost: {name} is {shown} (it must be a finite number "
                              f"from 0 to {MAX_PRICE_PER_TOKEN:g}, USD per token)")
        raise ConfigError(f"{where}: {name} must be a finite number from 0 to {MAX_PRICE_PER_TOKEN:g} (USD per "
                          f"token), not {shown}")
    return rate


def _entry(model: str) -> str:
    return f"price entry for {one_line(repr(model), 80)}"


_OPTIONAL_RATES = ("cache_creation_input_token_cost", "input_cost_per_token_batches", "output_cost_per_token_batches",
                   "cache_read_input_token_cost_batches", "cache_creation_input_token_cost_batches")
_REQUIRED = ("input_cost_per_token", "output_cost_per_token")
_RATES = (*_REQUIRED, "cache_read_input_token_cost", *_OPTIONAL_RATES)


def _optional_float(model: str, name: str, value: Any) -> float | None:
    return None if value is None else _rate(_entry(model), name, value)

