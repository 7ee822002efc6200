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

``load("routellm-gsm8k")``: real *recorded runs*, not a prompt set — RouteLLM's GSM8K matrix:
1,319 grade-school maths prompts answered by Mixtral-8x7B-Instruct and GPT-4-1106, with the
published correctness as ``score`` (rows in the schema of ``lab.runs()``; Apache-2.0, see
``data/ROUTELLM_NOTICE.md``). Evaluate routing policies on it directly. :func:`from_wide` turns
any published wide correctness matrix into the same schema.

Layer: beside ``analysis`` (recorded runs in, DataFrames out); may import ``base`` only.
"""
from __future__ import annotations

import operator
from collections.abc import Sequence
from importlib import resources

import pandas as pd

from ..base._errors import InputError
from ..base._json import loads
from ._graded import LEVELS, MAX_PER_CELL, TASKS, generate_rows
from ._wide import from_wide

__all__ = ["load", "names", "generate", "from_wide", "GRADED_TASKS"]

_COLUMNS = ["prompt_id", "task", "prompt", "expected", "checker"]
_GRADED_COLUMNS = ["prompt_id", "task", "difficulty", "prompt", "expected", "checker"]
GRADED_TASKS = TASKS
_GENERATED: dict[str, tuple[int, int]] = {"graded": (480, 0)}   # name: (n, seed)
_RECORDED = ("routellm-gsm8k",)                                  # recorded runs shipped as data


def names() -> list[str]:
    """Names of the bundled prompt sets (files and generated sets)."""
    root = resources.files(__name__)
    files = [p.name.removesuffix(".jsonl") for p in root.iterdir() if p.name.endswith(".jsonl")]
    return sorted([*files, *_GENERATED, *_RECORDED])


def generate(*, n: int = 480, seed: int = 0, tasks: Sequence[str] | None = None) -> pd.DataFrame:
    """A generated labelled prompt set: ``n`` rows, deterministic for ``seed``.

    ``tasks``: a subset of ``GRADED_TASKS`` (arithmetic, extract, classify, yes_no; default all).
    Columns: ``prompt_id`` (``g{seed}-{i}``), ``task``, ``difficulty`` (1–3), ``prompt``,
    ``expected``, ``checker`` (a scorer spec that ``expected`` passes).
    """
    chosen = _graded_tasks(tasks)
    limit = MAX_PER_CELL * len(chosen) * len(LEVELS)
    count, seed_value = _integer(n), _integer(seed)
    if count is None or not 1 <= count <= limit:
        raise InputError(f"n must be an integer from 1 to {limit} for {len(chosen)} task(s), "
                         f"not {n!r}")
    if seed_value is None:
        raise InputError(f"seed must be an integer, not {seed!r}")
    return pd.DataFrame(generate_rows(count, seed_value, chosen), columns=_GRADED_COLUMNS)


def _integer(value: object) -> int | None:
    """``value`` as a Python int when it is an integer (numpy's too), not a bool or a float."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        return None


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
    """A bundled prompt set as a DataFrame (``checker`` holds dicts), or recorded runs for
    ``"routellm-gsm8k"``."""
    if name == "routellm-gsm8k":
        return _routellm_gsm8k()
    if name in _GENERATED:
        n, seed = _GENERATED[name]
        return generate(n=n, seed=seed)
    path = resources.files(__name__).joinpath(f"{name}.jsonl")
    if not path.is_file():
        raise InputError(f"no dataset {name!r}; available: {', '.join(names())}")
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [loads(line) for line in lines if line.strip()]
    return pd.DataFrame(rows, columns=_COLUMNS)


def _routellm_gsm8k() -> pd.DataFrame:
    source = resources.files(__name__).joinpath("data/routellm_gsm8k.csv.gz")
    with resources.as_file(source) as path:
        wide = pd.read_csv(path, compression="gzip", dtype={"expected": str})
    models = ["mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"]
    wide["prompt_id"] = [f"gsm8k-{i:04d}" for i in range(len(wide))]
    return from_wide(wide, prompt="prompt", scores={m: m for m in models},
                     responses={m: f"{m}_response" for m in models}, task="gsm8k", expected="expected",
                     prompt_id="prompt_id", source="routellm-gsm8k")
