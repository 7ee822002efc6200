# The public face of llmlab.notebook._widgets: its public names and its documentation (the layers never
# import this module; see docs/architecture.md).
from __future__ import annotations

from .notebook import _widgets
from .notebook._grading import GradingWidget
from .notebook._widgets import (
    CompareWidget,
    LiveColumns,
)

__all__ = ["CompareWidget", "LiveColumns", "GradingWidget"]

__doc__ = _widgets.__doc__  # help() shows the documentation where the code lives
