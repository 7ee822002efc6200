"""Small labelled prompt sets shipped with llmlab, for recording a prompt × model matrix.

``load("tasks")``: 70 short prompts written for this project across classify, yes_no, extract,
arithmetic, summarise, code and translate. Each row has ``prompt_id``, ``task``, ``prompt``,
``expected`` and ``checker`` (a scorer spec such as ``{"kind": "choice", "labels": [...]}``
understood by :func:`llmlab.scoring.from_spec` / :func:`llmlab.scoring.auto`). Prompts ask for
short, checkable answers so even tiny local models can score sometimes. The ``summarise``
checks only look for the key word of the text: a weak signal, kept honest by its name.

    tasks = llmlab.datasets.load("tasks")
    res = lab.sweep(tasks, models=[...])
    scored = llmlab.scoring.auto(res.df, checkers=tasks)
"""
from __future__ import annotations

import json
from importlib import resources

import pandas as pd

__all__ = ["load", "names"]

_COLUMNS = ["prompt_id", "task", "prompt", "expected", "checker"]


def names() -> list[str]:
    """Names of the bundled prompt sets."""
    root = resources.files(__name__)
    return sorted(p.name.removesuffix(".jsonl") for p in root.iterdir() if p.name.endswith(".jsonl"))


def load(name: str = "tasks") -> pd.DataFrame:
    """A bundled prompt set as a DataFrame (``checker`` holds dicts)."""
    path = resources.files(__name__).joinpath(f"{name}.jsonl")
    if not path.is_file():
        raise ValueError(f"no dataset {name!r}; available: {', '.join(names())}")
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return pd.DataFrame(rows, columns=_COLUMNS)
