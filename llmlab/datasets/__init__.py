"""Labelled prompt sets shipped with llmlab, for recording a prompt × model matrix.

``load("graded")`` (= ``generate(n=480, seed=0)``): prompts generated from templates with a seed —
arithmetic, extract, classify (sentiment) and yes_no, each at difficulty 1–3 (column
``difficulty``), balanced across tasks, levels and labels, with computed expected answers. Big
enough that two models' accuracies are told apart within a few points; ``generate(n=..., seed=...)``
makes any size up to 200 per (task, level), and a smaller ``n`` gives the first rows of a larger
one (same seed), so a quick sample is a subset of the full set.

``load("tasks")``: 70 short prompts written for this project across classify, yes_no, extract,
arithmetic, summarise, code and translate. Each row has ``prompt_id``, ``task``, ``prompt``,
``expected`` and ``checker`` (a scorer spec such as ``{"kind": "choice", "labels": [...]}``
understood by :func:`llmlab.scoring.from_spec` / :func:`llmlab.scoring.auto`). Prompts ask for
short, checkable answers so even tiny local models can score sometimes. The ``summarise``
checks only look for the key word of the text: a weak signal, kept honest by its name.

    tasks = llmlab.datasets.load("graded")
    res = lab.sweep(tasks, models=[...])
    scored = llmlab.scoring.auto(res.df, checkers=tasks)
    scored = scored.merge(tasks[["prompt_id", "difficulty"]], on="prompt_id")   # per level
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources

import pandas as pd

from .._errors import InputError
from ._graded import LEVELS, MAX_PER_CELL, TASKS, generate_rows

__all__ = ["load", "names", "generate", "GRADED_TASKS"]

_COLUMNS = ["prompt_id", "task", "prompt", "expected", "checker"]
_GRADED_COLUMNS = ["prompt_id", "task", "difficulty", "prompt", "expected", "checker"]
GRADED_TASKS = TASKS
_GENERATED: dict[str, tuple[int, int]] = {"graded": (480, 0)}   # name: (n, seed)


def names() -> list[str]:
    """Names of the bundled prompt sets (files and generated sets)."""
    root = resources.files(__name__)
    files = [p.name.removesuffix(".jsonl") for p in root.iterdir() if p.name.endswith(".jsonl")]
    return sorted([*files, *_GENERATED])


def generate(*, n: int = 480, seed: int = 0, tasks: Sequence[str] | None = None) -> pd.DataFrame:
    """A generated labelled prompt set: ``n`` rows, deterministic for ``seed``.

    ``tasks``: a subset of ``GRADED_TASKS`` (arithmetic, extract, classify, yes_no; default all).
    Columns: ``prompt_id`` (``g{seed}-{i}``), ``task``, ``difficulty`` (1–3), ``prompt``,
    ``expected``, ``checker`` (a scorer spec that ``expected`` passes).
    """
    chosen = _graded_tasks(tasks)
    limit = MAX_PER_CELL * len(chosen) * len(LEVELS)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= limit:
        raise InputError(f"n must be an integer from 1 to {limit} for {len(chosen)} task(s), "
                         f"not {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"seed must be an integer, not {seed!r}")
    return pd.DataFrame(generate_rows(n, seed, chosen), columns=_GRADED_COLUMNS)


def _graded_tasks(tasks: Sequence[str] | None) -> tuple[str, ...]:
    if tasks is None:
        return TASKS
    if isinstance(tasks, str):
        tasks = [tasks]
    chosen = tuple(dict.fromkeys(tasks))
    unknown = [t for t in chosen if t not in TASKS]
    if unknown or not chosen:
        raise InputError(f"unknown task(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
                         f"choose from {', '.join(TASKS)}")
    return chosen


def load(name: str = "tasks") -> pd.DataFrame:
    """A bundled prompt set as a DataFrame (``checker`` holds dicts)."""
    if name in _GENERATED:
        n, seed = _GENERATED[name]
        return generate(n=n, seed=seed)
    path = resources.files(__name__).joinpath(f"{name}.jsonl")
    if not path.is_file():
        raise ValueError(f"no dataset {name!r}; available: {', '.join(names())}")
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    return pd.DataFrame(rows, columns=_COLUMNS)
