"""The prompt × model matrix that routing policies are simulated on.

**Which models, which prompts.** The matrix holds the models present in the runs (or those named
by ``models=``) and only the prompts answered by *all* of them; the prompts dropped are counted
per missing model. It never depends on which policies are evaluated, so adding a policy cannot
move another policy's numbers.

**Which row is a cell.** One cell per (prompt_id, requested_model): the final attempt of the
latest request with ``repeat == 0`` ("latest" = highest ``id`` when the column exists, else the
last row). Cached rows count like any other, at the original call's cost (``original_cost_usd``)
and latency: what a router in production would pay and wait.

**What is billed.** With ``count_retries=True`` (the default) a cell's cost and latency include the
earlier attempts of the same request on the same model (retries after a 429, a cut stream…): their
known cost, and their back-off wait plus duration — as the invoice and the user's wait would.
``count_retries=False`` keeps only the final attempt.

**What an attempt costs.** The recorded ``cost_usd`` or, with a price sheet, the row's own
prompt/cached/completion tokens under that sheet (the same :meth:`Price.cost` rule the Lab uses).
A failed attempt that produced no tokens and has no known cost billed nothing (0); any other
unknown cost is NaN, and NaN propagates to the totals rather than pretending it is free.

**What savings are computed on** (``Matrix.spend``). With every cell's cost known: the cost. With
any unknown (a matrix without answers or token counts, a model without a price): a call to the
best model (the default reference) counts 1 and any other call 0, so savings are the share of
strong-model calls avoided — the basis that is known — labelled as such, with a warning, never
a silent NaN.

A cell's quality is the row's score clipped to [0, 1] (0 for an error row). A score that is NaN on
an ok row is **unknown** (a judge found no verdict, or its call failed): the prompt is left out of
the sample for every model, so comparisons stay paired, and counted (``unknown_by_model``) —
an unknown never counts as a failure.
"""
from __future__ import annotations

import json
import re
import unicodedata
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..analysis._scoring import judge_rows
from ..base._errors import InputError
from ..base._json import loads
from ..base._pricing import PriceTable, PriceWarning
from ..base._validate import IGNORABLE

# Columns a router cannot see before it calls a model: answers, outcomes, grading.
_HIDDEN = frozenset({
    "expected", "checker", "response_text", "status", "error_type", "error_message", "latency_s",
    "ttft_s", "output_tokens_per_s", "completion_tokens", "cost_usd", "cost_source", "cached",
    "finish_reason", "served_model", "attempt", "waited_s", "started_at", "id", "run_id",
    "request_id", "requested_model", "tokens_estimated", "endpoint", "api_key_env", "stream",
    "params", "cached_tokens", "cache_of", "ttft_reasoning_s", "ttft_answer_s", "cache_creation_tokens",
    "reasoning_tokens", "prompt_cache_saved_usd", "reasoning_text", "tool_calls", "batch_id",
})
_REQUIRED = ("prompt_id", "requested_model")


@dataclass
class Matrix:
    """Per-cell arrays, prompts × models, over the prompts answered by every model."""

    prompt_ids: np.ndarray
    models: list[str]
    score: np.ndarray
    cost: np.ndarray
    latency: np.ndarray
    error: np.ndarray
    rows: np.ndarray            # positions into ``runs`` (iloc) of each cell's final row
    runs: pd.DataFrame
    score_column: str
    dropped_by_model: dict[str, int] = field(default_factory=dict)
    dropped: int = 0
    unknown_by_model: dict[str, int] = field(default_factory=dict)   # unknown quality (NaN score) per model
    unknown: int = 0                                                  # prompts left out for it
    price_sheet: str = "recorded cost_usd"
    cost_note: str = ""
    retries: dict[str, float] = field(default_factory=dict)
    unknown_costs: str = ""        # which cells' costs are unknown and why ("" when all are known)
    options: dict[str, Any] = field(default_factory=dict)   # how it was built: prices, price_as, count_retries
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return len(self.prompt_ids)

    @property
    def cost_known(self) -> bool:
        return bool(np.isfinite(self.cost).all())

    @property
    def spend(self) -> np.ndarray:
        """What savings are computed on, per cell: the cost when every cost is known; otherwise 1
        for a call to the best model and 0 for any other (the share of strong-model calls)."""
        if "spend" not in self._cache:
            self._cache["spend"] = self.cost if self.cost_known else np.broadcast_to(
                (np.arange(len(self.models)) == self.index(self.ranked_models()[0])).astype(float), self.cost.shape)
        return self._cache["spend"]

    @property
    def savings_basis(self) -> str:
        return "cost" if self.cost_known else f"calls to {self.ranked_models()[0]} (costs unknown)"

    def index(self, model: str) -> int:
        try:
            return self.models.index(model)
        except ValueError:
            raise InputError(f"model {model!r} is not in the matrix (models: {', '.join(self.models)}); "
                             "record it or pass models=[...] including it") from None

    def ranked_models(self) -> list[str]:
        """Models by mean quality, best first; ties: the cheaper first (an unknown cost last).
        The first is the default reference of a report."""
        cost = np.nan_to_num(self.cost.sum(axis=0), nan=np.inf)
        quality = self.score.mean(axis=0)
        return sorted(self.models, key=lambda m: (-quality[self.models.index(m)], cost[self.models.index(m)]))

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per ``key`` for this matrix (what several parts of a report read)."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def column(self, name: str) -> np.ndarray:
        """A whole column of the runs as a numpy array, converted once (pandas' Arrow-backed
        strings cost a copy per conversion)."""
        key = f"column:{name}"
        if key not in self._cache:
            self._cache[key] = self.runs[name].to_numpy()
        return self._cache[key]

    def cell_values(self, column: str, j: int) -> np.ndarray:
        """One column of the runs for model ``j``'s cells (e.g. response_text)."""
        if column not in self.runs.columns:
            return np.full(self.n, None, dtype=object)
        return self.column(column)[self.rows[:, j]]

    def label_columns(self) -> set[str]:
        """The score and its companions (its reason; on preferences, the worst-order reading and,
        for that reading, the plain one): what a router must never read."""
        base = self.score_column.removesuffix("_worst_order")
        return {c for b in (base, self.score_column) for c in (b, f"{b}_reason", f"{b}_worst_order")}

    def prompt_values(self, column: str) -> np.ndarray:
        """A prompt-level column, read from the first model's row of each prompt."""
        if column in _HIDDEN or column in self.label_columns():
            raise InputError(f"column {column!r} is not known before a model answers; a router "
                             "may only use prompt-level columns (task, prompt, your features)")
        if column not in self.runs.columns:
            raise InputError(f"no column {column!r} in the runs")
        return self.column(column)[self.rows[:, 0]]

    def samples(self, model: str, k: int) -> Samples:
        """The first ``k`` recorded answers (repeats 0…k-1) of ``model`` to each prompt, each billed
        like a cell (its retries too, when counted): what a policy that samples ``model`` ``k``
        times pays and waits for. Column 0 is the matrix's own cell."""
        key = f"samples:{model}:{k}"
        if key not in self._cache:
            j = self.index(model)
            parts = [Samples(self.rows[:, [j]], self.cost[:, [j]], self.latency[:, [j]], self.error[:, [j]])]
            parts += [self._repeat(model, r, k) for r in range(1, k)]
            self._cache[key] = Samples(*(np.hstack([getattr(p, f) for p in parts])
                                         for f in ("rows", "cost", "latency", "error")))
        return self._cache[key]

    def _repeat(self, model: str, repeat: int, k: int) -> Samples:
        """Repeat ``repeat`` of ``model`` as its own one-model matrix, aligned to these prompts."""
        repeats = self.column("repeat") if "repeat" in self.runs.columns else np.zeros(len(self.runs))
        pos = np.flatnonzero((self.column("requested_model") == model) & (repeats == repeat))
        where = np.full(self.n, -1)
        if len(pos):
            # a sample need not be scored: only its text and its bill are read
            rows = self.runs.iloc[pos].assign(repeat=0, _sample_score=0.0)
            part = build_matrix(rows, "_sample_score", [model], warn_dropped=False, **self.options)
            where = pd.Index(part.prompt_ids).get_indexer(self.prompt_ids)
        if (where < 0).any():
            raise InputError(f"{int((where < 0).sum())} of {self.n} prompts have fewer than {k} recorded answers "
                             f"of {model!r} (repeat {repeat} is missing); record {k} samples with "
                             f"lab.sweep(prompts, models=[{model!r}], n={k})")
        return Samples(pos[part.rows[where, :1]], part.cost[where, :1], part.latency[where, :1],
                       part.error[where, :1])

    def prompt_records(self) -> list[dict]:
        """Router-visible prompt rows as dicts (for user feature functions)."""
        if "records" not in self._cache:
            hidden = _HIDDEN | self.label_columns()
            cols = [c for c in self.runs.columns if c not in hidden]
            self._cache["records"] = self.runs.iloc[self.rows[:, 0]][cols].to_dict("records")
        return self._cache["records"]


@dataclass
class Samples:
    """Prompts × k arrays of one model's sampled answers (see :meth:`Matrix.samples`)."""

    rows: np.ndarray        # positions into the matrix's runs (iloc)
    cost: np.ndarray
    latency: np.ndarray
    error: np.ndarray


def build_matrix(runs: pd.DataFrame, score: str, models: Sequence[str] | None = None,
                 prices: Any = None, price_as: Mapping[str, str] | None = None, *,
                 count_retries: bool = True, warn_dropped: bool = True) -> Matrix:
    """Pivot ``runs`` to a :class:`Matrix` over ``models`` (None = every requested model)."""
    _check_columns(runs, score)
    pos = _selected_positions(runs)
    p_code, prompt_ids = pd.factorize(runs["prompt_id"].to_numpy()[pos])
    check_prompt_identity(runs, pos, p_code, prompt_ids)
    m_code, all_models = pd.factorize(runs["requested_model"].to_numpy()[pos])
    wanted = list(all_models) if models is None else list(dict.fromkeys(models))
    missing = [m for m in wanted if m not in set(all_models)]
    if missing:
        raise InputError(f"no rows for model(s) {', '.join(map(repr, missing))} in the runs "
                         f"(models: {', '.join(map(str, all_models))})")
    cells = _last_cells(pos, p_code, m_code, len(prompt_ids), len(all_models))
    cells = cells[:, [list(all_models).index(m) for m in wanted]]
    complete = (cells >= 0).all(axis=1)
    by_model = {m: int((cells[:, j] < 0).sum()) for j, m in enumerate(wanted)}
    dropped = int((~complete).sum())
    if dropped and warn_dropped:
        worst = ", ".join(f"{m}: {k}" for m, k in by_model.items() if k)
        warnings.warn(f"routing: dropped {dropped} of {len(prompt_ids)} prompts not answered by every "
                      f"model (prompts missing per model — {worst})", RuntimeWarning, stacklevel=3)
    rows = cells[complete]
    if not len(rows):
        raise InputError("no prompt has a row for every model; pass models=[...] to keep fewer models")
    known, unknown_by_model = _known_quality(runs, score, rows, wanted)
    if not known.any():
        never = [m for m, k in unknown_by_model.items() if k == len(rows)]
        if never and len(never) < len(wanted):      # one model was never graded: say which, not "the judge"
            raise InputError(f"no known {score!r} for model(s) {', '.join(never)} on any prompt (see "
                             f"{score}_reason): grade or judge them, or pass models=[...] without them")
        raise InputError(f"all verdicts unknown: no prompt has a known {score!r} for every model (see "
                         f"{score}_reason: a judge that gave no readable verdict, or failed); nothing to evaluate")
    if not known.all() and warn_dropped:
        worst = ", ".join(f"{m}: {k}" for m, k in unknown_by_model.items() if k)
        warnings.warn(f"routing: left out {int((~known).sum())} of {len(rows)} prompts whose {score!r} is unknown "
                      f"for some model (unknown verdicts per model — {worst}); unknown is not a failure",
                      RuntimeWarning, stacklevel=3)
    mx = _fill(runs, rows[known], np.asarray(prompt_ids, dtype=object)[complete][known], wanted, score, prices,
               price_as)
    mx.dropped, mx.dropped_by_model = dropped, by_model
    mx.unknown, mx.unknown_by_model = int((~known).sum()), unknown_by_model
    mx.options = {"prices": prices, "price_as": price_as, "count_retries": count_retries}
    if count_retries:
        _add_retries(mx, runs, pos, prices, price_as)
    else:
        mx.retries = {"counted": False}
    if not mx.cost_known:
        mx.unknown_costs = _unknown_costs(mx, prices is not None or bool(price_as))
        mx.cost_note += "; " + mx.unknown_costs
    return mx


def _unknown_costs(mx: Matrix, repriced: bool) -> str:
    """Which cells have no known cost and why, and what savings are computed on instead."""
    unknown = np.isnan(mx.cost)
    parts = []
    for j, model in enumerate(mx.models):
        if unknown[:, j].any():
            tokens = _gather(mx.runs, "completion_tokens", mx.rows[unknown[:, j], j], np.nan).astype(float)
            why = ("no answer token counts" if np.isnan(tokens).all() else "no price") if repriced \
                else "no recorded cost"
            parts.append(f"{model}: {int(unknown[:, j].sum()):,}, {why}")
    return (f"cost unknown for {int(unknown.sum()):,} of {unknown.size:,} cells ({'; '.join(parts)}); savings "
            f"are the share of {mx.ranked_models()[0]} calls avoided")


def check_prompt_identity(runs: pd.DataFrame, pos: np.ndarray, p_code: np.ndarray,
                          prompt_ids: pd.Index) -> None:
    """One prompt_id must name one prompt: a reused id with another text is an error, never a merge."""
    texts = _prompt_texts(runs, pos)
    if texts is None:
        return
    t_code, uniques = pd.factorize(texts)   # NaN/None → -1: a row without text cannot collide
    known = t_code >= 0
    pairs = np.unique(p_code[known].astype(np.int64) * (len(uniques) + 1) + t_code[known])
    prompt_of_pair = pairs // (len(uniques) + 1)
    if len(prompt_of_pair) == len(np.unique(prompt_of_pair)):
        return
    clash = prompt_of_pair[np.flatnonzero(np.diff(prompt_of_pair) == 0)[0]]
    first, second = [uniques[t] for t in pairs[prompt_of_pair == clash][:2] % (len(uniques) + 1)]
    raise InputError(
        f"prompt_id {prompt_ids[clash]!r} names two different prompts ({_short(first)} and "
        f"{_short(second)}); give each prompt its own id, or evaluate one run at a time "
        "(lab.runs(run_id=...))")


SAME_TEXT = "the same words: case, punctuation, markup and Q/A labels ignored"   # text_key in a warning


def text_key(text: Any) -> str:
    """A prompt's text as ``split`` and the held-out checks compare it: its word sequence (the rule
    is in :mod:`llmlab.routing._split`, "Duplicate texts"); for chat messages, per role and turn."""
    text = str(text)
    turns = _chat_turns(text)
    if turns is None:
        return _words(text)
    if len(turns) == 1 and turns[0][0] == "user":      # a prompt string is sent as one user turn
        return turns[0][1]
    return "\x1e".join(f"{role}\x1f{key}" for role, key in turns)


def _chat_turns(text: str) -> list[tuple[str, str]] | None:
    """(role, key) per message when ``text`` is a recorded conversation (JSON messages), else None."""
    if not text.lstrip().startswith("["):
        return None
    try:
        messages = loads(text)
    except ValueError:
        return None
    if not messages or not all(isinstance(m, dict) and "role" in m for m in messages):
        return None
    turns = []
    for message in messages:
        content = message.get("content")
        parts = content if isinstance(content, list) else [content]
        # text parts by their words; anything else (an image, a tool call) exactly as recorded
        keys = [_words(p) if isinstance(p, str) else _words(p["text"]) if isinstance(p, dict) and
                p.get("type") == "text" and isinstance(p.get("text"), str) else json.dumps(p, sort_keys=True)
                for p in parts if p is not None]
        rest = {k: v for k, v in message.items() if k not in ("role", "content")}
        keys += [json.dumps(rest, sort_keys=True, default=str)] if rest else []
        turns.append((str(message["role"]), "\x1d".join(keys)))
    return turns


# Before NFKC: superscript digits would become plain ones ("3²" → "32"), so they are written as
# powers; control characters (they print nothing, and the marks below are made of them) as spaces.
_BEFORE = str.maketrans({**{c: f"^{d}" for d, c in enumerate("⁰¹²³⁴⁵⁶⁷⁸⁹")},
                         **{chr(c): " " for c in (*range(0x09), *range(0x0E, 0x20), 0x7F)}})
_FORMS = str.maketrans("−∗⁄", "-*/")               # the operators' look-alikes NFKC leaves apart
# Line markup: '>' quotes and '=' rules ('-' and '*' bullets are punctuation anyway; a '+' is a plus,
# as in an expression continued on the next line); matched after a newline ("\n" + text), as a
# pattern that starts with a literal is fast to search for.
_LINE_MARKUP = re.compile(r"\n[ \t]*(?:(?:>[ \t]*)+|=+[ \t]*(?=\n|\Z))")
_LEAD = re.compile(r"\A[\W_]*?(?:(?:q|question)[ \t]*\d*[ \t]*(?:[:.)]|\n)|(?:prompt|answer|a)[ \t]*\d*[ \t]*:"
                   r"|\d{1,4}[.)](?=\s))\s*")
_TRAIL = re.compile(r"(?:^|(?<=[\n.?!:;)\]]))[\W_]*?(?:answer|a)[ \t]*:[\W_]*$")
_TAIL = 64                     # a trailing label (with its markup) is shorter: only the tail is searched
# Signs that are punctuation in prose but operators beside numbers (see _number_sign). Each one kept
# becomes a control character (none is left in the text) until punctuation is gone.
_SIGNS = re.compile(r"[-*/^·]+|[.,:%‰]")
_DIGIT = re.compile(r"\d")
_OPS = ".,:-*/^·%‰"
_MARK = 0x0E                     # the first control character that str.split() does not take for a space
_KEEP = str.maketrans({op: chr(_MARK + i) for i, op in enumerate(_OPS)})


def _words(text: str) -> str:
    """The word sequence of one text, scaffolding labels at its start and end left out; a text
    without words (only punctuation) by its characters, case and whitespace ignored."""
    folded = unicodedata.normalize("NFKC", text.translate(_BEFORE)).casefold()
    if not folded.isascii():
        folded = IGNORABLE.sub("", folded).translate(_FORMS)
    body = " ".join(_strip_labels(_LINE_MARKUP.sub("\n", "\n" + folded)).split())
    if _DIGIT.search(body):
        body = _SIGNS.sub(_number_sign, body)
    if body.isascii():         # str.translate's fast path: one character for one
        body = _ASCII_SYMBOL.sub(r" \g<0> ", body.translate(_ASCII_MAP))
    else:
        body = body.translate(_TOKEN_MAP)
    return " ".join(body.split()) or "\x00chars:" + " ".join(folded.split())


def _strip_labels(body: str) -> str:
    """``body`` without its leading list number and question labels and its trailing answer label."""
    for _ in range(4):                         # "1. Q: …": a number, then a label
        stripped = _LEAD.sub("", body, count=1)
        tail = _TRAIL.search(stripped, max(0, len(stripped) - _TAIL)) if ":" in stripped[-_TAIL:] else None
        stripped = stripped[:tail.start()] if tail else stripped
        if stripped == body:
            break
        body = stripped
    return body


def _number_sign(match: re.Match[str]) -> str:
    """A sign kept where it acts on numbers: '.', ',' or ':' inside a number (3.5, 10:30) stays in it;
    '-', '*', '/', '^', '·' between two numbers, '-' before one (not after a word) and '%' after one
    become words."""
    sign, text, start, end = match.group(), match.string, match.start(), match.end()
    left = text[start - 1] if start else ""
    left = text[start - 2] if left == " " and start > 1 else left
    right = text[end:end + 1]
    right = text[end + 1:end + 2] if right == " " else right
    if sign in ".,:":
        kept = text[start - 1:start].isdigit() and text[end:end + 1].isdigit()
        return sign.translate(_KEEP) if kept else sign
    if sign in "%‰":
        kept = left.isdigit()
    else:
        kept = (left.isdigit() and right.isdigit()) or (sign == "-" and text[end:end + 1].isdigit()
                                                         and not text[start - 1:start].isalnum())
    return f" {sign.translate(_KEEP)} " if kept else sign


def _token(code: int) -> str:
    """What one character is in a word sequence: words — letters, digits and their combining marks —
    stay; punctuation, modifier symbols, controls and the markup symbols '|' and '~' become spaces;
    every other symbol (math, currency, emoji: "5 > 3" is not "5 < 3") becomes a word of its own;
    a kept number sign becomes itself again."""
    char = chr(code)
    kind = unicodedata.category(char)
    if _MARK <= code < _MARK + len(_OPS):
        return _OPS[code - _MARK]
    if kind[0] in "PZ" or kind in ("Sk", "Cc") or char in "|~":
        return " "
    return f" {char} " if kind[0] == "S" else char


class _TokenMap(dict):
    """``str.translate``'s table of :func:`_token`, filled as characters are met (no scan of Unicode)."""

    def __missing__(self, code: int) -> str:
        self[code] = _token(code)
        return self[code]


_TOKEN_MAP = _TokenMap()
_ASCII_MAP = {code: _token(code).strip() or " " for code in range(128)}
_ASCII_SYMBOL = re.compile("[" + re.escape("".join(chr(c) for c in range(32, 128) if len(_token(c)) == 3)) + "]")


def prompt_text_keys(mx: Matrix) -> frozenset:
    """The normalised texts of a matrix's prompts (empty when none is recorded)."""
    texts = _prompt_texts(mx.runs, mx.rows[:, 0])
    return frozenset() if texts is None else frozenset(text_key(t) for t in texts if isinstance(t, str))


def seen_prompts(mx: Matrix, policy: Any, ids: Any = None, texts_attr: str = "fitted_texts") -> int:
    """How many of a matrix's prompts a fitted policy saw: by id (``ids``, default ``fitted_on``) or
    by normalised text under another id (``fitted_texts`` recorded by ``fit``; ``tuned_texts`` by
    ``tune``)."""
    ids = set(getattr(policy, "fitted_on", ()) or () if ids is None else ids)
    texts: frozenset = getattr(policy, texts_attr, frozenset())
    keys = _prompt_texts(mx.runs, mx.rows[:, 0]) if texts else None
    seen = 0
    for j, pid in enumerate(mx.prompt_ids):
        seen += pid in ids or (keys is not None and isinstance(keys[j], str) and text_key(keys[j]) in texts)
    return seen


def _prompt_texts(runs: pd.DataFrame, pos: np.ndarray) -> np.ndarray | None:
    """What identifies each row's prompt: its messages (as JSON text) where recorded, else its prompt."""
    columns = [c for c in ("messages", "prompt") if c in runs.columns]
    if not columns:
        return None
    texts = pd.Series([None] * len(pos), dtype=object)
    for column in columns:
        values = pd.Series(runs[column].to_numpy()[pos], dtype=object)
        as_text = values.map(lambda v: v if v is None or isinstance(v, str) or
                             (isinstance(v, float) and np.isnan(v)) else json.dumps(v, sort_keys=True, default=str))
        texts = texts.where(texts.notna(), as_text)
    return texts.to_numpy()


def _short(text: Any, limit: int = 60) -> str:
    text = str(text)
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _check_columns(runs: pd.DataFrame, score: str) -> None:
    if not isinstance(runs, pd.DataFrame):
        raise InputError(f"runs must be a DataFrame (lab.runs(), res.df), not {type(runs).__name__}")
    missing = [c for c in _REQUIRED if c not in runs.columns]
    if missing:
        raise InputError(f"runs lack column(s) {', '.join(missing)} (see docs/architecture.md)")
    for column in _REQUIRED:
        blank = int(runs[column].isna().sum())
        if blank:
            raise InputError(f"{blank} row(s) have no {column}; drop them or fill it in before evaluating")
    if score not in runs.columns:
        raise InputError(f"runs have no {score!r} column: score them first, e.g. "
                         f"llmlab.scoring.score(runs, scoring.contains())")


def _selected_positions(runs: pd.DataFrame) -> np.ndarray:
    """Row positions with repeat 0, in recording order (by ``id`` when present); a judge's own
    calls (``lab.runs()`` holds them) are no candidate model's rows."""
    pos = np.flatnonzero(~judge_rows(runs))
    if "repeat" in runs.columns:
        pos = pos[(runs["repeat"].fillna(0).to_numpy()[pos] == 0)]
    if "id" in runs.columns:
        pos = pos[np.argsort(runs["id"].to_numpy()[pos], kind="stable")]
    return pos


def _last_cells(pos, p_code, m_code, n_prompts, n_models) -> np.ndarray:
    """prompts × models matrix of the position of each cell's last row (-1: no row)."""
    key = p_code.astype(np.int64) * n_models + m_code
    # the first occurrence in the reversed order is the last row recorded for that cell
    uniq, first_rev = np.unique(key[::-1], return_index=True)
    cells = np.full(n_prompts * n_models, -1, dtype=np.int64)
    cells[uniq] = pos[len(key) - 1 - first_rev]
    return cells.reshape(n_prompts, n_models)


def _known_quality(runs: pd.DataFrame, score: str, rows: np.ndarray,
                   models: list[str]) -> tuple[np.ndarray, dict[str, int]]:
    """Per prompt: is every model's quality known? And the unknown cells per model (an ok row
    whose score is NaN: a judge that could not grade it; an error row is a known failure, 0)."""
    error = _gather(runs, "status", rows, "ok") == "error"
    unknown = np.isnan(_gather(runs, score, rows, np.nan).astype(float)) & ~error
    return ~unknown.any(axis=1), {m: int(unknown[:, j].sum()) for j, m in enumerate(models)}


def _fill(runs, rows, prompt_ids, models, score, prices, price_as) -> Matrix:
    error = _gather(runs, "status", rows, "ok") == "error"
    raw = _gather(runs, score, rows, np.nan).astype(float)
    quality = np.where(error, 0.0, np.clip(raw, 0.0, 1.0))   # no unknown is left: build_matrix dropped them
    latency = _gather(runs, "latency_s", rows, np.nan).astype(float)
    pricer = _Pricer(runs, models, prices, price_as)
    cost = pricer.cost(rows, error)
    note = pricer.note(rows)
    return Matrix(prompt_ids, list(models), quality, cost, latency, error, rows, runs, score,
                  price_sheet=pricer.sheet, cost_note=note)


def _gather(runs: pd.DataFrame, column: str, rows: np.ndarray, default: Any) -> np.ndarray:
    if column not in runs.columns:
        return np.full(rows.shape, default, dtype=object if isinstance(default, str) else float)
    return runs[column].to_numpy()[rows]


def _add_retries(mx: Matrix, runs: pd.DataFrame, pos: np.ndarray, prices, price_as) -> None:
    """Add earlier attempts of each cell's request (same request_id and model) to its cost and time."""
    final = mx.rows.ravel()
    waited = np.nan_to_num(_gather(runs, "waited_s", final, 0.0).astype(float))
    mx.latency.reshape(-1)[:] += waited            # the final attempt's own back-off wait
    mx.retries = {"counted": True, "attempts": 0, "cost_usd": 0.0, "seconds": float(waited.sum())}
    if "request_id" not in runs.columns:
        return
    key = _request_keys(runs)
    final_keys = key[final]
    order = np.argsort(final_keys, kind="stable")
    at = np.searchsorted(final_keys, key[pos], sorter=order).clip(max=len(final) - 1)
    cell = order[at]
    earlier = (final_keys[cell] == key[pos]) & (final[cell] != pos)
    extra, cell = pos[earlier], cell[earlier]
    if not len(extra):
        return
    column = cell % len(mx.models)         # cells are laid out prompt-major: model = index mod width
    status = runs["status"].to_numpy()[extra] if "status" in runs.columns else np.full(len(extra), "ok")
    cost = _Pricer(runs, mx.models, prices, price_as).cost(
        extra[:, None], (status == "error")[:, None], columns=column[:, None])[:, 0]
    seconds = np.nan_to_num(_gather(runs, "waited_s", extra, 0.0).astype(float)) + \
        np.nan_to_num(_gather(runs, "latency_s", extra, 0.0).astype(float))
    np.add.at(mx.cost.reshape(-1), cell, cost)
    np.add.at(mx.latency.reshape(-1), cell, seconds)
    mx.retries.update(attempts=int(len(extra)), cost_usd=float(np.nansum(cost)),
                      seconds=mx.retries["seconds"] + float(seconds.sum()))


def _request_keys(runs: pd.DataFrame) -> np.ndarray:
    """One integer per (request_id, prompt_id, requested_model) over all rows; a row without a
    request id gets a key of its own (it can never be another row's retry)."""
    keys = runs[["request_id", "prompt_id", "requested_model"]].astype(object)
    codes = pd.MultiIndex.from_frame(keys.fillna("\x00none")).factorize()[0].astype(np.int64)
    no_id = runs["request_id"].isna().to_numpy()
    codes[no_id] = -1 - np.arange(int(no_id.sum()))
    return codes


class _Pricer:
    """Cost of attempt rows: recorded ``cost_usd``, or re-priced from their own tokens."""

    def __init__(self, runs: pd.DataFrame, models: Sequence[str], prices: Any,
                 price_as: Mapping[str, str] | None) -> None:
        self.runs, self.models = runs, list(models)
        self.repriced = prices is not None or bool(price_as)
        self.prices: list[Any] = []
        self.sheet = "recorded cost_usd"
        if self.repriced:
            self._load_sheet(prices, price_as)

    def _load_sheet(self, prices: Any, price_as: Mapping[str, str] | None) -> None:

        if isinstance(prices, Mapping) and prices and all(isinstance(v, str) for v in prices.values()):
            price_as, prices = {**prices, **(price_as or {})}, None   # {model: priced-as} on bundled
        table = PriceTable.load(prices)
        aliases = dict(price_as or {})
        self.table = table
        for model in self.models:
            target = aliases.get(model, model)
            price = table.lookup(target)
            if price is None and model not in aliases and not self._served_priced(model):
                warnings.warn(f"no price for {target!r} in {table.name}: its cost is NaN",
                              PriceWarning, stacklevel=6)
            self.prices.append(price)
        self.sheet = table.name if not aliases else \
            f"{table.name}; priced as: " + ", ".join(f"{k} → {v}" for k, v in aliases.items())

    def _served_priced(self, model: str) -> bool:
        """Every row of ``model`` names a served model the sheet prices."""
        if "served_model" not in self.runs.columns:
            return False
        served = self.runs.loc[self.runs["requested_model"] == model, "served_model"]
        return bool(len(served)) and all(isinstance(s, str) and self.table.lookup(s) is not None for s in served)

    def cost(self, rows: np.ndarray, error: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
        """Cost per cell of ``rows`` (positions; column j of ``rows`` is model j unless ``columns``)."""
        completion = _gather(self.runs, "completion_tokens", rows, np.nan).astype(float)
        if not self.repriced:
            cost = _gather(self.runs, "cost_usd", rows, np.nan).astype(float)
            if "original_cost_usd" in self.runs.columns and "cached" in self.runs.columns:
                # a cache hit spent $0 now, but a router in production pays what the call costs
                cached = self.runs["cached"].fillna(False).to_numpy(bool)[rows]
                cost = np.where(cached, _gather(self.runs, "original_cost_usd", rows, np.nan).astype(float), cost)
        else:
            cost = np.full(rows.shape, np.nan)
            prompt = _gather(self.runs, "prompt_tokens", rows, np.nan).astype(float)
            cached = np.nan_to_num(_gather(self.runs, "cached_tokens", rows, 0.0).astype(float))
            cols = np.broadcast_to(np.arange(rows.shape[1]), rows.shape) if columns is None else columns
            served = _gather(self.runs, "served_model", rows, None)
            for j, price in enumerate(self.prices):
                at = cols == j
                if price is not None:
                    cost[at] = price.cost(prompt[at], completion[at], cached[at])
                else:   # as the Lab does: an alias priced by the model the endpoint says it served
                    for name in pd.unique(served[at]):
                        other = self.table.lookup(name) if isinstance(name, str) else None
                        hit = at & (served == name)
                        if other is not None:
                            cost[hit] = other.cost(prompt[hit], completion[hit], cached[hit])
        # a failed attempt that generated nothing and has no known cost billed nothing
        nothing = error & np.isnan(cost) & ~(completion > 0)
        return np.where(nothing, 0.0, cost)

    def note(self, rows: np.ndarray) -> str:
        if self.repriced:
            return (f"cost: re-priced from each attempt's own prompt, cached and completion tokens on "
                    f"{self.sheet}")
        if "cost_source" not in self.runs.columns:
            return "cost: recorded cost_usd"
        counts = pd.Series(self.runs["cost_source"].to_numpy()[rows.ravel()]).value_counts()
        parts = ", ".join(f"{src} {int(k):,}" for src, k in counts.items())
        return f"cost: recorded cost_usd ({parts} cells)"
