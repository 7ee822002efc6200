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

``load("routellm-gsm8k")``: real *recorded runs*, not a prompt set — RouteLLM's GSM8K matrix:
1,319 grade-school maths prompts answered by Mixtral-8x7B-Instruct and GPT-4-1106, with the
published correctness as ``score`` (rows in the schema of ``lab.runs()``; Apache-2.0, see
``data/ROUTELLM_NOTICE.md``). Evaluate routing policies on it directly. :func:`from_wide` turns
any published wide correctness matrix into the same schema.
"""
from __future__ import annotations

import json
from importlib import resources

import pandas as pd

from .._errors import InputError
from ._wide import from_wide

__all__ = ["load", "names", "from_wide"]

# Recorded runs shipped as package data: name → loader.
_RECORDED = {"routellm-gsm8k"}

_COLUMNS = ["prompt_id", "task", "prompt", "expected", "checker"]


def names() -> list[str]:
    """Names of the bundled prompt sets."""
    root = resources.files(__name__)
    sets = {p.name.removesuffix(".jsonl") for p in root.iterdir() if p.name.endswith(".jsonl")}
    return sorted(sets | _RECORDED)


def load(name: str = "tasks") -> pd.DataFrame:
    """A bundled prompt set as a DataFrame (``checker`` holds dicts), or recorded runs for
    ``"routellm-gsm8k"``."""
    if name == "routellm-gsm8k":
        return _routellm_gsm8k()
    path = resources.files(__name__).joinpath(f"{name}.jsonl")
    if not path.is_file():
        raise InputError(f"no dataset {name!r}; available: {', '.join(names())}")
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
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
