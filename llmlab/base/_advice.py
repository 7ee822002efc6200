"""What to do next, in the words of the front end in use (the Python API's by default).

A message that tells the user what to do (use another log, resume a sweep) takes those words from
here. A front end sets :data:`FRONT_END` while it runs, and shows errors through
:func:`reworded`, so that a message built where that setting is not visible (the log's writer
thread, the Lab's event-loop thread) reads in its words too: the CLI says ``--db PATH``, not
``Lab(db=...)``.
"""
from __future__ import annotations

from contextvars import ContextVar

__all__ = ["FRONT_END", "advice", "reworded"]

FRONT_END: ContextVar[str] = ContextVar("llmlab_front_end", default="python")

# advice → front end → words; "python" is the default and the form every message is built in.
_WORDS: dict[str, dict[str, str]] = {
    "another_log": {
        "python": "pass Lab(db=...) for another log",
        "notebook": "set %config LLMLab.db = \"...\" (or Lab(db=...)) for another log",
        "llmlab export": "pass --db PATH for another log",
        "llmlab demo": "pass another --out folder for a new log",
    },
    "resume": {
        "python": "Resume with lab.sweep(..., resume={run_id!r})",
        "llmlab demo": "They are in the demo's runs.sqlite (run {run_id!r}); run llmlab demo again for a whole report",
    },
    "batch_resume": {
        "python": "collect them with lab.batch_resume({run_id!r})",
        "llmlab batch": "collect them with llmlab batch resume {run_id}",
    },
}


def advice(what: str, **values: object) -> str:
    """The words for ``what`` in the front end in use (``FRONT_END``)."""
    words = _WORDS[what]
    return words.get(FRONT_END.get(), words["python"]).format(**values)


def reworded(message: str, front_end: str) -> str:
    """``message`` with the Python API's advice replaced by ``front_end``'s words."""
    for words in _WORDS.values():
        python, theirs = words["python"], words.get(front_end)
        if theirs is not None and "{" not in python:
            message = message.replace(python, theirs)
    return message
