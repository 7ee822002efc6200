"""DataFrames whose displays go through the display sanitiser.

The frames llmlab hands out (``Result.df``, ``summary()``, ``lab.runs()``, ``list_models()``,
routing tables) hold text as it was sent — model names and answers included — so their ``repr``
and HTML show it through :mod:`._display`: control and bidi characters made visible, known
secrets removed. The data itself is untouched, and frames derived from one (a selection, a
filter) display the same way; a single column is a plain ``Series`` (so frames and columns
compare equal to pandas' own).
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from ._display import clean_text, html_clean

__all__ = ["ShownFrame", "shown"]


class ShownFrame(pd.DataFrame):
    """A ``pandas.DataFrame`` shown safely (text and HTML reprs sanitised)."""

    @property
    def _constructor(self) -> type[ShownFrame]:
        return ShownFrame

    def __repr__(self) -> str:
        return clean_text(super().__repr__())

    def _repr_html_(self) -> str | None:
        html = super()._repr_html_()
        return None if html is None else html_clean(html)


def shown(frame: Any) -> ShownFrame:
    """``frame`` (its data shared, not copied) as a :class:`ShownFrame`."""
    return frame if isinstance(frame, ShownFrame) else ShownFrame(frame)
