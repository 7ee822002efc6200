# The public face of llmlab.notebook._magics: its public names and its documentation (the layers never
# import this module; see docs/architecture.md).
from __future__ import annotations

from .notebook import _magics
from .notebook._magics import (
    LLMLab,
    LLMMagics,
    load_ipython_extension,
    unload_ipython_extension,
)

__all__ = ["LLMLab", "LLMMagics", "load_ipython_extension", "unload_ipython_extension"]

__doc__ = _magics.__doc__  # help() shows the documentation where the code lives
