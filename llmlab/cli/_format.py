"""THE way the command line writes to the terminal, and how it prints a summary table.

Every line a command prints — its tables, its messages, its errors — goes through :func:`say`
(and a frame through :func:`frame_text`): the display sanitiser of every view
(:func:`llmlab.base._display.clean_text`), so an endpoint-chosen batch id or status, a model
name or an error message cannot clear the screen, plant an OSC 8 link, reverse text (RLO) or
send C1 controls, and no secret this process knows is printed. Nothing in ``llmlab.cli`` calls
``print`` directly (tests/test_cli_output.py checks). The summary table keeps the report's
columns, headers and number formats (a dollar that is unknown reads "unknown"), the whole
summary left to the CSV.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from ..base._display import clean_frame, clean_text

__all__ = ["Parser", "format_summary", "frame_text", "say"]


def say(*parts: Any, err: bool = False, flush: bool = False) -> None:
    """Print ``parts`` (joined by spaces) on stdout, or stderr with ``err``, sanitised."""
    text = " ".join(str(part) for part in parts)
    print(clean_text(text), file=sys.stderr if err else sys.stdout, flush=flush)


class Parser(argparse.ArgumentParser):
    """argparse, its usage, help and errors written through the same sanitiser: an error echoes
    the arguments (``unrecognized arguments: …``), which a script may have taken from anywhere.
    Subcommand parsers are of the same class (argparse makes them so)."""

    def _print_message(self, message: str, file: Any = None) -> None:
        if message:
            (file or sys.stderr).write(clean_text(message))


def frame_text(frame: Any, *, index: bool = False) -> str:
    """A frame as terminal text: its cells and headers sanitised before pandas aligns them (so the
    columns stay straight), the index and the rest after."""
    return clean_text(clean_frame(frame).to_string(index=index))


def format_summary(summary: Any, runs: Any = None) -> str:
    from ..analysis._report import summary_text

    return summary_text(summary, runs)
