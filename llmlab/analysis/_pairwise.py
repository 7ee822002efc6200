"""Pairwise judging with position swap, and the preference frame every quality tool here reads.

    prefs = scoring.pairwise(runs, judge="gpt-4o", lab=lab, models=["a", "b", "c"])
    prefs[["prompt_id", "model_a", "model_b", "winner", "consistent", "against"]]

**Preference frame** — one row per prompt and pair of models: ``prompt_id``, ``model_a``,
``model_b``, ``winner`` (``"a"``, ``"b"``, ``"tie"``, or None = unknown), ``consistent`` (the two
judge games agreed; NA for a single vote), ``verdict_1`` / ``verdict_2`` (the raw verdicts by
position, ``"A"`` = the answer shown first: game 1 shows model_a first, game 2 model_b first),
``reason`` (why a winner is unknown, or how it was decided), ``source`` (``judge:<model>`` or
``human:<who>``), ``both_bad`` (a human's "both bad" vote, a tie), ``reply_1`` / ``reply_2``
(the judge's texts as the log recorded them, a reply cut off at ``max_tokens`` too: its verdict is
unknown, the reason says it was cut), ``answer_a_hash`` / ``answer_b_hash`` (``scoring.answer_hash``
of the two answers judged: a re-sweep that answered anew does not inherit the old verdicts —
routing sets them aside, ``check_preferences(runs=)`` refuses them), ``against`` (the reference
model of ``pairwise(..., against=)``, None when none was chosen: a column of
:data:`PREFERENCE_COLUMNS`, so a frame saved as CSV, or cut to those columns, still tells routing
that its ``model_a`` is merely the name that sorts first; a frame of one pair of models that records
no reference at all needs ``reference=`` — routing never guesses one). Human labels
(``lab.labels()``) have the same columns. ``consistent`` and ``both_bad`` read back from JSON as
1.0/0.0/NaN are True/False/unknown (:func:`check_preferences`).

**Position swap (MT-Bench's rule).** Each pair is judged twice, once in each order. Both games
agree → that winner; they disagree (win vs loss, or win vs tie) → a **tie** with
``consistent=False`` — so a judge that always prefers the first position yields ties, never a
winner; either game unknown (no readable verdict, a failed judge call) → **unknown**, never a
loss and never a tie. A model whose own call failed (an error row: a 503, a timeout) is not judged
and the pair is **unknown** by default — an outage says nothing of the model's answers, and
counting it as a loss is the outage bias that would rank a model by its provider's uptime;
``errors="loss"`` counts such a pair as a loss for the failed model (two failures tie). The count
is in ``frame.attrs["errored"]`` and each such row's reason names the model.

**The judge's own rows are left out.** ``lab.runs()`` holds the judge calls too (task ``"judge"`` or
``"pairwise judge"``); judging the judges is never meant, so those rows are dropped (counted in
``frame.attrs["judge_rows_left_out"]`` and said in the estimate line); ``judge_rows=True`` keeps them.

**Cost first.** The judge makes 2 calls per pair and prompt. Before any call a one-line estimate
(calls, prompt tokens counted offline, at most ``max_tokens`` per reply, price when the Lab's
sheet knows the judge) is printed; above ``max_calls`` nothing is sent and an InputError says what
it would cost — raise ``max_calls`` to go ahead. Judge calls are ordinary calls of the Lab you
pass (``lab.sweep``: recorded, cached, costed); this module never imports the engine.
"""
from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ..base._errors import InputError
from ..base._record import answer_hash
from ..base._tokens import TokenCounter
from ..base._validate import check_bool, check_count, check_int, one_line
from ._evidence import JUDGE_SOURCE, LABEL_SOURCE, evidence_words, is_unknown, judge_evidence, source_texts
from ._scoring import JudgeFailure, final_answers, judged_question
from ._scoring import judge_rows as is_judge_row
from ._verdicts import defuse_tokens, parse_preference

__all__ = ["pairwise", "check_preferences", "answer_match", "combine_games", "is_unknown", "one_per_pair",
           "verdict_kinds", "PREFERENCE_COLUMNS", "WINNERS", "DUPLICATES", "JudgeLab"]

WINNERS = ("a", "b", "tie")
PREFERENCE_COLUMNS = ["prompt_id", "model_a", "model_b", "winner", "consistent", "verdict_1", "verdict_2",
                      "reason", "source", "both_bad", "reply_1", "reply_2", "against"]

# MT-Bench's pairwise prompt (FastChat pair-v2 / pair-math-v1): rubric replaceable, reference optional.
_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two AI "
    "assistants to the user question displayed below. {rubric} Begin your evaluation by comparing the two "
    "responses and provide a short explanation. Avoid any position biases and ensure that the order in which "
    "the responses were presented does not influence your decision. Do not allow the length of the responses "
    "to influence your evaluation. Do not favor certain names of the assistants. Be as objective as possible. "
    "After providing your explanation, output your final verdict by strictly following this format: "
    '"[[A]]" if assistant A is better, "[[B]]" if assistant B is better, and "[[C]]" for a tie.')
_RUBRIC = ("You should choose the assistant that follows the user's instructions and answers the user's question "
           "better. Your evaluation should consider factors such as the helpfulness, relevance, accuracy, depth, "
           "creativity, and level of detail of their responses; when a reference answer is given, compare both "
           "answers with it and identify any mistakes.")
_PROMPT = ("[User Question]\n{question}\n{reference}\n[The Start of Assistant A's Answer]\n{first}\n"
           "[The End of Assistant A's Answer]\n\n[The Start of Assistant B's Answer]\n{second}\n"
           "[The End of Assistant B's Answer]")
_REFERENCE = "\n[The Start of Reference Answer]\n{text}\n[The End of Reference Answer]\n"


class JudgeLab(Protocol):
    """What the judge needs of a Lab (the engine's ``Lab`` is one; analysis never imports it)."""

    def sweep(self, prompts: Any, **options: Any) -> Any: ...


def pairwise(runs: pd.DataFrame, *, judge: str, lab: JudgeLab, models: Sequence[str] | None = None,
             against: str | None = None, rubric: str | None = None, reference: str | Mapping[str, str] | None = None,
             max_tokens: int = 512, max_calls: int | None = 200, errors: str = "unknown", judge_rows: bool = False,
             progress: bool = True) -> pd.DataFrame:
    """Judge, per prompt, each pair of models' answers twice (A/B and B/A); a preference frame.

    runs: recorded rows (``lab.runs()``, ``res.df``); each (prompt, model) answer is the final
        attempt of the latest request with repeat 0, as routing picks it.
    judge: the judge model's name; lab: the Lab that calls it.
    models: the models to compare, in this order (default: every requested model, sorted by name).
    against: judge every other model against this one only (``k − 1`` pairs, not ``k(k − 1)/2``):
        what routing on preferences needs; ``model_a`` is then always ``against``.
    rubric: replaces the criteria of MT-Bench's prompt. reference: a runs column holding each
        prompt's reference answer (e.g. ``"expected"``), or ``{prompt_id: text}`` (keys matched as
        text, as the runs store ids: ``{1: ...}`` is prompt ``'1'``; a mapping naming none of the
        runs' prompts is an InputError, one missing some is warned about).
    max_tokens: per judge reply. max_calls: refuse (InputError, with the estimate) above this
        (None: no limit);
        it counts every judge call asked for, cached ones too (a bound on the size of the judging,
        decided before anything is sent and the same on a re-run; cached calls cost nothing).
    errors: a pair where a model's own call failed is ``"unknown"`` (default) or ``"loss"`` for it
        (routing scores that model's error row 0 either way: a call that failed served nothing).
    judge_rows: keep rows recorded by judge calls (task ``"judge"`` / ``"pairwise judge"``).
    progress: print the cost estimate and the judge sweep's progress bar.
    """
    if errors not in ("unknown", "loss"):
        raise InputError(f"errors={errors!r}: pass 'unknown' (a failed call says nothing of the answers) or 'loss'")
    _check_options(judge=judge, lab=lab, models=models, against=against, rubric=rubric, max_tokens=max_tokens,
                   max_calls=max_calls, judge_rows=judge_rows, progress=progress)
    answers = _answers(runs, judge_rows=judge_rows)
    order = _models(answers, models, against)
    pairs = [(against, m) for m in order if m != against] if against else list(combinations(order, 2))
    if judge in order:
        warnings.warn(f"pairwise: the judge {judge!r} is also one of the models judged: a judge tends to prefer its "
                      "own answers (self-enhancement bias, MT-Bench); judge with a model that is not a candidate",
                      RuntimeWarning, stacklevel=2)
    refs = _references(runs, reference)
    games, decided = _games(answers, pairs, refs, rubric or _RUBRIC, errors)
    _check_budget(games, lab, judge, max_tokens, max_calls, progress, answers.attrs["judge_rows_left_out"])
    replies = _ask(games, lab, judge, max_tokens, progress) if len(games) else []
    frame = _frame(games, replies, decided, judge, against)
    frame.attrs["judge_rows_left_out"] = answers.attrs["judge_rows_left_out"]
    return frame


def _check_options(*, judge: Any, lab: Any, models: Any, against: Any, rubric: Any, max_tokens: Any, max_calls: Any,
                   judge_rows: Any, progress: Any) -> None:
    """Every parameter, before anything is counted or sent: one line naming the one that is wrong."""
    for name, value in (("judge", judge), ("against", against)):
        if (value is not None or name == "judge") and (not isinstance(value, str) or not value.strip()):
            raise InputError(f"{name} must be a model name (a non-empty string), not {one_line(repr(value), 60)}")
    if not callable(getattr(lab, "sweep", None)):
        raise InputError(f"lab must be the Lab that calls the judge (llmlab.Lab(...)), not {type(lab).__name__}")
    if models is not None and (isinstance(models, (str, bytes)) or not isinstance(models, Sequence)
                               or not all(isinstance(m, str) for m in models)):
        raise InputError(f"models must be a list of model names (['a', 'b']), not {one_line(repr(models), 60)}")
    if rubric is not None and (not isinstance(rubric, str) or not rubric.strip()):
        raise InputError(f"rubric must be the judging criteria as text (None: MT-Bench's), not "
                         f"{one_line(repr(rubric), 60)}")
    check_int("max_tokens", max_tokens, 1, 2_000_000)
    if max_calls is not None:
        check_count("max_calls", max_calls, " (None: no limit)")
    check_bool("judge_rows", judge_rows)
    check_bool("progress", progress)


def _answers(runs: Any, *, judge_rows: bool = False) -> pd.DataFrame:
    """One row per (prompt_id, requested_model): its answer, as routing's matrix picks it."""
    if not isinstance(runs, pd.DataFrame):
        raise InputError(f"runs must be a DataFrame (lab.runs(), res.df), not {type(runs).__name__}")
    missing = [c for c in ("prompt_id", "requested_model", "response_text") if c not in runs.columns]
    if missing:
        raise InputError(f"runs lack column(s) {', '.join(missing)}: pass rows of lab.runs() or res.df")
    rows = runs[runs["repeat"].fillna(0) == 0] if "repeat" in runs.columns else runs
    judged = is_judge_row(rows) if not judge_rows else np.zeros(len(rows), dtype=bool)
    rows = rows[~judged]
    # sorted, not in order of appearance: lab.runs() lists rows as calls finished, and the same runs
    # must give the same pairs, oriented the same way, every time
    order = sorted(map(str, pd.unique(rows["requested_model"])))
    if "id" in rows.columns:
        rows = rows.sort_values("id", kind="stable")
    rows = rows.groupby(["prompt_id", "requested_model"], sort=False).tail(1)
    if rows.empty:
        raise InputError("runs are empty: record answers first (lab.sweep(prompts, models=[...]))")
    answers = rows.set_index(["prompt_id", "requested_model"])
    answers.attrs.update(models=order, judge_rows_left_out=int(judged.sum()))
    return answers


def _models(answers: pd.DataFrame, models: Sequence[str] | None, against: str | None) -> list[str]:
    present = answers.attrs["models"]
    order = present if models is None else list(dict.fromkeys(models))
    unknown = [m for m in [*order, *([against] if against else [])] if m not in present]
    if unknown:
        raise InputError(f"no answers of model {unknown[0]!r} in the runs (models: {', '.join(present)})")
    if against is not None and against not in order:
        order = [against, *order]
    if len(order) < 2:
        raise InputError(f"pairwise judging needs answers of at least two models (got {', '.join(order)})")
    return order


def _references(runs: pd.DataFrame, reference: Any) -> Mapping[Any, Any]:
    if reference is None:
        return {}
    if isinstance(reference, str):
        if reference not in runs.columns:
            raise InputError(f"reference={reference!r}: the runs have no such column (give a column name, "
                             "e.g. 'expected', or a {prompt_id: reference answer} mapping)")
        known = runs[runs[reference].notna()]
        return dict(zip(known["prompt_id"].astype(str), known[reference], strict=True))
    if isinstance(reference, Mapping):
        # keyed by the ids as the runs store them (text): {1: ...} for a sweep with prompt_id=[1, 2]
        # matches '1'. A mapping that names none of the runs' prompts is the wrong one (refused before
        # any call); one that misses some is said (those prompts are judged without a reference)
        refs = {str(k): v for k, v in reference.items()}
        prompts = set(map(str, runs["prompt_id"])) if "prompt_id" in runs.columns else set()
        if refs and not prompts & set(refs):
            raise InputError(f"reference: none of its {len(refs)} key(s) is a prompt_id of the runs (e.g. "
                             f"{one_line(repr(next(iter(refs))), 60)}): key the mapping by the runs' prompt ids")
        missing = len(prompts - set(refs))
        if missing:
            warnings.warn(f"pairwise: {missing} of {len(prompts)} prompts have no reference answer in the mapping "
                          "and are judged without one", RuntimeWarning, stacklevel=3)
        return refs
    raise InputError("reference must be a column name or a {prompt_id: text} mapping, "
                     f"not {type(reference).__name__}")


def _games(answers: pd.DataFrame, pairs: list[tuple[str, str]], refs: Mapping[Any, Any],
           rubric: str, errors: str) -> tuple[pd.DataFrame, list[dict]]:
    """The judge games (two per pair and prompt both models answered) and the pairs decided
    without a judge (a model's call failed)."""
    games, decided = [], []
    prompts = list(dict.fromkeys(answers.index.get_level_values("prompt_id")))
    for pid in prompts:
        for a, b in pairs:
            if (pid, a) not in answers.index or (pid, b) not in answers.index:
                continue
            row_a, row_b = answers.loc[(pid, a)], answers.loc[(pid, b)]
            failed = [m for m, r in ((a, row_a), (b, row_b)) if r.get("status") == "error"]
            if failed:
                decided.append(_decided_row(pid, a, b, failed, errors))
                continue
            question, ref = judged_question(row_a), refs.get(str(pid))
            block = "" if ref is None or (isinstance(ref, float) and np.isnan(ref)) else _REFERENCE.format(text=ref)
            hashes = {"answer_a_hash": answer_hash(row_a["response_text"]),
                      "answer_b_hash": answer_hash(row_b["response_text"])}
            texts = (_text(row_a["response_text"]), _text(row_b["response_text"]))
            for game, (first, second) in ((1, texts), (2, texts[::-1])):
                # the answers' own [[…]] split: a model under test cannot hand the judge a verdict token
                games.append({"prompt_id": pid, "model_a": a, "model_b": b, "game": game, **hashes,
                              "answers": texts,
                              "text": _PROMPT.format(question=question, reference=block,
                                                     first=defuse_tokens(first), second=defuse_tokens(second))})
    frame = pd.DataFrame(games, columns=["prompt_id", "model_a", "model_b", "game", "answer_a_hash", "answer_b_hash",
                                         "answers", "text"])
    frame["system"] = _SYSTEM.format(rubric=rubric)
    return frame, decided


def _decided_row(pid: Any, a: str, b: str, failed: list[str], errors: str) -> dict:
    why = "both models' calls failed" if len(failed) == 2 else f"{failed[0]}'s call failed (an error row)"
    if errors == "unknown":
        winner, why = None, f"unknown: {why}; errors='loss' counts it as a loss"
    else:
        winner = "tie" if len(failed) == 2 else ("b" if failed == [a] else "a")
    return {"errored": True, "prompt_id": pid, "model_a": a, "model_b": b, "winner": winner, "consistent": pd.NA,
            "verdict_1": None, "verdict_2": None, "reason": why}


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def _check_budget(games: pd.DataFrame, lab: Any, judge: str, max_tokens: int, max_calls: int | None,
                  progress: bool, judge_rows_left_out: int = 0) -> None:
    calls = len(games)
    counter = TokenCounter()
    system_tokens = counter.count(games["system"].iloc[0]) if calls else 0
    prompt_tokens = sum(counter.count(t) + system_tokens for t in games["text"])
    prices = getattr(lab, "prices", None)
    price = prices.lookup(judge) if prices is not None else None
    cost = (f"≈ ${price.cost(prompt_tokens, calls * max_tokens):.4g} at most" if price is not None
            else "cost unknown (no price for the judge)")
    line = (f"pairwise: {calls // 2} pairs × 2 orders = {calls} judge calls to {judge}: ~{prompt_tokens:,} prompt "
            f"tokens, ≤ {calls * max_tokens:,} reply tokens, {cost} (cached calls are free)")
    if max_calls is not None and calls > max_calls:
        raise InputError(f"{line}; that is more than max_calls={max_calls}: pass max_calls={calls} to run them")
    if judge_rows_left_out:
        line += f"; {judge_rows_left_out} judge row(s) of the runs left out (judge_rows=True keeps them)"
    if progress and calls:
        print(line, file=sys.stderr)


def _ask(games: pd.DataFrame, lab: Any, judge: str, max_tokens: int, progress: bool) -> list[Any]:
    """The judge's reply per game (a JudgeFailure for a failed call), in one ``lab.sweep``."""
    ids = [f"pair:{p}:{a}|{b}:{g}" for p, a, b, g in
           zip(games["prompt_id"], games["model_a"], games["model_b"], games["game"], strict=True)]
    messages = [[{"role": "system", "content": s}, {"role": "user", "content": t}]
                for s, t in zip(games["system"], games["text"], strict=True)]
    frame = pd.DataFrame({"prompt_id": ids, "messages": messages, "task": "pairwise judge"})
    result = lab.sweep(frame, models=[judge], temperature=0, max_tokens=max_tokens, cache=True, progress=progress)
    return final_answers(result.df, ids)


def _frame(games: pd.DataFrame, replies: list[Any], decided: list[dict], judge: str,
           against: str | None) -> pd.DataFrame:
    rows = list(decided)
    for i in range(0, len(games), 2):
        g = games.iloc[i]
        rows.append({"prompt_id": g["prompt_id"], "model_a": g["model_a"], "model_b": g["model_b"],
                     "answer_a_hash": g["answer_a_hash"], "answer_b_hash": g["answer_b_hash"],
                     **combine_games(replies[i], replies[i + 1], answers=g["answers"])})
    errored = sum(bool(r.get("errored")) for r in rows)
    frame = pd.DataFrame(rows).reindex(columns=[*PREFERENCE_COLUMNS, "answer_a_hash", "answer_b_hash"])
    frame["source"] = f"judge:{judge}"
    frame["both_bad"] = False
    # as lab.labels() records it: attrs do not survive a CSV round-trip, and without against= routing
    # must not take the name that sorts first (model_a) for the reference
    frame["against"] = pd.Series([against] * len(frame), index=frame.index, dtype=object)
    frame["consistent"] = frame["consistent"].astype("boolean")
    for column in ("winner", "verdict_1", "verdict_2"):
        frame[column] = pd.Series([None if is_unknown(v) else v for v in frame[column]], index=frame.index,
                                  dtype=object)
    unknown = int(frame["winner"].isna().sum())
    frame.attrs.update(judge=judge, against=against, unknown=unknown, calls=len(games), errored=errored,
                       judge_run_note="judge calls are rows of the Lab's log (task 'pairwise judge')")
    judged = frame.iloc[errored:]            # the decided (errored) rows come first
    evidence = judge_evidence(judged)
    frame.attrs["evidence"] = evidence
    if len(judged) and judged["winner"].isna().all():
        warnings.warn(f"pairwise: all verdicts unknown ({judged['reason'].iloc[0]}, …): the judge {judge!r} "
                      "gave no readable verdict; nothing here is a rating", RuntimeWarning, stacklevel=3)
    elif len(judged) and not evidence["informative"]:
        warnings.warn(f"pairwise: the judge {judge!r} {evidence_words(evidence, singular=True)} here: "
                      f"{evidence['why']}; routing "
                      "certifies nothing on it and ratings are not evidence (frame.attrs['evidence'])",
                      RuntimeWarning, stacklevel=3)
    return frame.sort_values(["prompt_id", "model_a", "model_b"], kind="stable").reset_index(drop=True)


def combine_games(reply_1: Any, reply_2: Any, *, answers: Any = ()) -> dict:
    """Winner of one pair from its two games (game 2 shows model_b first), by MT-Bench's rule;
    ``answers``: the two answers judged (a verdict token written in them is no verdict of the judge:
    ``parse_preference(..., answers=)``)."""
    out: dict[str, Any] = {"reply_1": _reply_text(reply_1), "reply_2": _reply_text(reply_2)}
    verdicts = [_verdict(r, answers) for r in (reply_1, reply_2)]
    out["verdict_1"], out["verdict_2"] = verdicts[0][0], verdicts[1][0]
    if verdicts[0][0] is None or verdicts[1][0] is None:
        why = "; ".join(f"game {k}: {v[1]}" for k, v in enumerate(verdicts, 1) if v[0] is None)
        return {**out, "winner": None, "consistent": pd.NA, "reason": f"unknown: {why}"}
    one = {"A": "a", "B": "b", "tie": "tie"}[verdicts[0][0]]
    two = {"A": "b", "B": "a", "tie": "tie"}[verdicts[1][0]]
    if one == two:
        return {**out, "winner": one, "consistent": True, "reason": ""}
    return {**out, "winner": "tie", "consistent": False,
            "reason": f"the two orders disagree (game 1: {one}, game 2: {two}): a tie"}


def _verdict(reply: Any, answers: Any = ()) -> tuple[str | None, str]:
    if isinstance(reply, JudgeFailure):
        return None, reply.reason()
    verdict = parse_preference(reply, answers=answers)
    return verdict.value, verdict.reason()


def _reply_text(reply: Any) -> str | None:
    # a cut reply keeps its text (None only where no reply came): it shows why the verdict is unknown
    return reply.text if isinstance(reply, JudgeFailure) else reply


# --- checking a preference frame (judges', humans', or your own) --------------------------------

def check_preferences(frame: Any, *, runs: pd.DataFrame | None = None, what: str = "preferences") -> pd.DataFrame:
    """``frame`` as a valid preference frame, or a one-line InputError: not empty, the required
    columns, winners in ``a``/``b``/``tie``/unknown, at least two models, no model against
    itself, and — with ``runs`` — only models and prompts the runs have. The position-swap columns
    are checked here too (:func:`_check_orders`): ``verdict_1``/``verdict_2`` normalised to
    ``A``/``B``/``tie``/None (other values refused), ``consistent`` derived from them (never taken
    as given). Use the frame it returns."""
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"{what} must be a preference frame (scoring.pairwise(...), lab.labels()), "
                         f"not {type(frame).__name__}")
    twice = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if twice:
        # frame["winner"] would be a DataFrame, whose values read as its column names
        raise InputError(f"{what}: column {twice[0]!r} appears more than once (a concat along columns?): keep one, "
                         "e.g. frame.loc[:, ~frame.columns.duplicated()]")
    missing = [c for c in ("prompt_id", "model_a", "model_b", "winner") if c not in frame.columns]
    if missing:
        raise InputError(f"{what} lack column(s) {', '.join(missing)}: a preference frame has prompt_id, "
                         "model_a, model_b, winner")
    if frame.empty:
        raise InputError(f"{what} are empty: judge some pairs first (scoring.pairwise) or grade some (%llm grade)")
    frame = _unknowns_as_none(frame)
    for column in ("prompt_id", "model_a", "model_b"):
        blank = frame[column].map(lambda v: is_unknown(v) or (isinstance(v, str) and not v.strip()))
        if blank.any():
            raise InputError(f"{what}: {int(blank.sum())} row(s) have no {column} (NaN or empty): every row names "
                             "its prompt and both models")
    bad = sorted({str(w) for w in frame["winner"] if not is_unknown(w) and w not in WINNERS})
    if bad:
        raise InputError(f"{what}: winner {bad[0]!r} is not one of 'a', 'b', 'tie' or unknown (None)")
    models = set(frame["model_a"]) | set(frame["model_b"])
    if len(models) < 2 or (frame["model_a"] == frame["model_b"]).all():
        raise InputError(f"{what} name a single model ({', '.join(map(str, models))}): a preference compares two")
    frame = _check_orders(frame, what)
    if runs is not None:
        _check_against_runs(frame, runs, what)
        _check_same_answers(frame, runs, what)
    return frame


# The columns the reader reads, text or flags: prompt_id keeps its dtype (it is joined to the runs')
_READ_COLUMNS = ("model_a", "model_b", "winner", "consistent", "verdict_1", "verdict_2", "both_bad", "against",
                 "source")


def _unknowns_as_none(frame: pd.DataFrame) -> pd.DataFrame:
    """The read columns with every spelling of unknown as None: NaN, pd.NA and pyarrow's null
    (``dtype_backend=``, ``convert_dtypes()``: ``pd.NA == "tie"`` has no truth value) and blank text
    (what ``to_csv`` writes for None, read back with ``keep_default_na=False``). Other text is a value:
    ``'unknown'``, ``'nan'``, ``'None'`` are refused like any other word."""
    def blank(v: Any) -> bool:
        return is_unknown(v) or (isinstance(v, str) and not v.strip())
    def needs(c: str) -> bool:
        # a flag column of a boolean dtype is read as it is (True/False/NA are valid flags)
        if pd.api.types.is_extension_array_dtype(frame[c].dtype):
            # pandas' text dtypes too: redone only when they hold an unknown (a valid frame is returned as given)
            return not pd.api.types.is_bool_dtype(frame[c].dtype) and bool(frame[c].map(blank).any())
        return frame[c].dtype == object and bool(frame[c].map(
            lambda v: blank(v) and v is not None and not isinstance(v, float)).any())
    redo = [c for c in _READ_COLUMNS if c in frame.columns and needs(c)]
    if not redo:
        return frame
    out = frame.copy()
    for c in redo:
        out[c] = pd.Series([None if blank(v) else _plain(v) for v in frame[c]], index=frame.index, dtype=object)
    return out


def _plain(value: Any) -> Any:
    # numpy's and pyarrow's scalars as Python's: a flag compared with True, a name with a str
    return value.item() if isinstance(value, np.generic) else value


_VERDICTS = {"a": "A", "b": "B", "tie": "tie"}


def _verdict_value(value: Any, column: str, what: str) -> str | None:
    """One game's verdict as ``"A"``/``"B"``/``"tie"``/None (any case, spaces trimmed), or a one-line InputError."""
    if is_unknown(value):
        return None
    if isinstance(value, str) and value.strip().casefold() in _VERDICTS:
        return _VERDICTS[value.strip().casefold()]
    raise InputError(f"{what}: {column} {value!r} is not one of 'A', 'B', 'tie' or unknown (None): the verdict of "
                     "one game, with the answer shown first as A")


def _flag_value(value: Any, column: str, what: str) -> Any:
    """A yes/no column (``consistent``, ``both_bad``) as True/False/NA, or a one-line InputError.
    1.0/0.0 are True/False: ``to_json`` writes a boolean column holding NA as numbers."""
    if is_unknown(value):
        return pd.NA
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)) and value in (0, 1):
        return bool(value)
    raise InputError(f"{what}: {column} {one_line(repr(value), 40)} is not True, False or unknown (NA)"
                     + (": a boolean written as text (bool('False') is True) — parse it first, e.g. "
                        f"frame[{column!r}].map({{'True': True, 'False': False}})"
                        if isinstance(value, str) and value.strip().casefold() in ("true", "false") else ""))


def _check_orders(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    """The optional columns of the position swap, validated and made one: ``verdict_1``/``verdict_2``
    normalised to ``"A"``/``"B"``/``"tie"``/None; ``consistent`` always *derived* from them when
    both exist (the two orders give the same winner; NA when either is unknown) — a given
    ``consistent`` that contradicts them is recomputed with a warning, one given as text refused.
    Without both verdict columns ``consistent`` and a lone verdict column are only validated.
    ``consistent`` and ``both_bad`` are True/False/NA (1.0/0.0 as ``to_json`` writes them).
    Order-dependence thus lives in
    one place, and no missing or mis-typed optional column can drop the conservative reading of an
    order-dependent pair."""
    has_orders = {"verdict_1", "verdict_2"} <= set(frame.columns)
    columns: dict[str, list[Any]] = {c: [_flag_value(v, c, what) for v in frame[c]]
                                     for c in ("consistent", "both_bad") if c in frame.columns}
    given = columns.get("consistent")
    if not has_orders:
        # a lone verdict column (labels: one vote, verdict_2 dropped) is checked all the same
        columns.update({c: [_verdict_value(v, c, what) for v in frame[c]]
                        for c in ("verdict_1", "verdict_2") if c in frame.columns})
    else:
        v1 = [_verdict_value(v, "verdict_1", what) for v in frame["verdict_1"]]
        v2 = [_verdict_value(v, "verdict_2", what) for v in frame["verdict_2"]]
        derived: list[Any] = []
        for one, two in zip(v1, v2, strict=True):
            if one is None or two is None:
                derived.append(pd.NA)
                continue
            derived.append({"A": "a", "B": "b", "tie": "tie"}[one] == {"A": "b", "B": "a", "tie": "tie"}[two])
        if given is not None:
            wrong = sum(not is_unknown(g) and not is_unknown(d) and g != d for g, d in zip(given, derived, strict=True))
            if wrong:
                warnings.warn(f"{what}: consistent contradicts verdict_1/verdict_2 on {wrong} row(s); recomputed "
                              "from the two verdicts (the same winner in both orders)", RuntimeWarning, stacklevel=3)
        columns.update(verdict_1=v1, verdict_2=v2, consistent=derived)
    if all(c in frame.columns and _same(frame[c], values) for c, values in columns.items()):
        return frame                                  # already valid and normalised: the frame itself
    out = frame.copy()
    for c, values in columns.items():
        out[c] = (pd.array(values, dtype="boolean") if c in ("consistent", "both_bad")
                  else pd.Series(values, index=out.index, dtype=object))
    return out


def _same(column: pd.Series, values: list[Any]) -> bool:
    """Does ``column`` already hold ``values`` (unknowns alike; 1.0 is not True: a JSON-read flag is rewritten)?"""
    flag = (bool, np.bool_)
    return all((is_unknown(x) and is_unknown(y)) or (not is_unknown(x) and not is_unknown(y) and x == y
                                                      and isinstance(x, flag) == isinstance(y, flag))
               for x, y in zip(column, values, strict=True))


def _check_against_runs(frame: pd.DataFrame, runs: pd.DataFrame, what: str) -> None:
    known_models = set(runs["requested_model"])
    strangers = sorted((set(frame["model_a"]) | set(frame["model_b"])) - known_models, key=str)
    if strangers:
        raise InputError(f"{what} name model {strangers[0]!r}, which has no rows in the runs "
                         f"(models: {', '.join(sorted(map(str, known_models)))})")
    absent = sorted(set(frame["prompt_id"]) - set(runs["prompt_id"]), key=str)
    if absent:
        raise InputError(f"{what} hold {len(absent)} prompt(s) not in the runs (e.g. {absent[0]!r}): "
                         "label the runs you evaluate, or pass the runs they were made on")


def answer_match(frame: pd.DataFrame, runs: pd.DataFrame) -> pd.Series:
    """Per row of ``frame``: ``"same"`` when the answers it was made on (``answer_a_hash``,
    ``answer_b_hash``: labels carry them) are the runs' answers to its prompt, ``"changed"`` when
    either differs (a re-sweep answered anew), ``"unchecked"`` when it names none (a label stored
    before labels named their answers, a judge frame) or the runs hold no answer text."""
    out = pd.Series("unchecked", index=frame.index, dtype=object)
    if not {"answer_a_hash", "answer_b_hash"} <= set(frame.columns) or "response_text" not in runs.columns:
        return out
    rows = runs[runs["repeat"].fillna(0) == 0] if "repeat" in runs.columns else runs
    rows = rows.sort_values("id", kind="stable") if "id" in rows.columns else rows
    last = rows.groupby(["prompt_id", "requested_model"], sort=False).tail(1)
    now = {(p, m): answer_hash(t) for p, m, t in zip(last["prompt_id"], last["requested_model"],
                                                       last["response_text"], strict=True)}
    for k, (prompt, a, b, hash_a, hash_b) in enumerate(zip(frame["prompt_id"], frame["model_a"], frame["model_b"],
                                                            frame["answer_a_hash"], frame["answer_b_hash"],
                                                            strict=True)):
        named = [(m, h) for m, h in ((a, hash_a), (b, hash_b)) if not is_unknown(h)]
        if named:
            out.iloc[k] = "same" if all(now.get((prompt, m)) == h for m, h in named) else "changed"
    return out


def _check_same_answers(frame: pd.DataFrame, runs: pd.DataFrame, what: str) -> None:
    changed = frame[answer_match(frame, runs) == "changed"]
    if len(changed):
        first = changed.iloc[0]
        raise InputError(f"{what}: {len(changed)} label(s) were made on other answers than these runs' (e.g. "
                         f"{first['prompt_id']!r}, {first['model_a']} vs {first['model_b']}; a re-sweep answered "
                         "anew): grade these answers, or pass the runs the labels were made on")


# --- one verdict per pair: several graders, or judge and human frames together -------------------

DUPLICATES = ("refuse", "last", "majority")


def one_per_pair(frame: pd.DataFrame, *, duplicates: str = "refuse", what: str = "preferences") -> pd.DataFrame:
    """One verdict per (prompt, pair of models), whatever each row calls ``model_a``.

    A source repeating itself (a re-graded label, ``source`` the same) keeps its last verdict.
    Verdicts of different sources on one pair (two graders; a judge frame and ``lab.labels()``
    concatenated) are never settled silently: ``duplicates="refuse"`` (default) raises an
    InputError naming them; ``"last"`` keeps the last row; ``"majority"`` keeps the winner most
    sources gave (a tie between winners is unknown), as one of the rows that gave it, whole
    (:func:`_majority`). Either rule settles only the pairs several sources judged: every other row
    stays as it was. ``attrs``: ``re_graded`` and
    ``duplicates_dropped`` (rows set aside), ``sources``."""
    if duplicates not in DUPLICATES:
        raise InputError(f"duplicates={duplicates!r}: pass 'refuse', 'last' or 'majority'")
    flip = frame["model_a"].astype(str) > frame["model_b"].astype(str)
    key = pd.Series(list(zip(frame["prompt_id"].astype(str), np.where(flip, frame["model_b"], frame["model_a"]),
                             np.where(flip, frame["model_a"], frame["model_b"]), strict=True)), index=frame.index)
    source = frame["source"].astype(str) if "source" in frame.columns else pd.Series("", index=frame.index)
    latest = ~pd.DataFrame({"k": key, "s": source}).duplicated(keep="last")
    kept, k = frame[latest], key[latest]
    crossed = k.duplicated(keep=False)
    if crossed.any() and duplicates == "refuse":
        names = sorted(set(source[latest][crossed]))
        raise InputError(f"{what}: {int(k[crossed].nunique())} pair(s) have verdicts of several sources "
                         f"({', '.join(names[:4])}): pick one (frame[frame['source'] == {names[0]!r}]) or settle "
                         "them by a stated rule, duplicates='last' or 'majority' — an argument of "
                         "scoring.agreement and routing.preference_quality (then routing.evaluate(that, ..., "
                         "score='preference', reference=...))")
    if duplicates == "majority" and crossed.any():
        out = _majority(kept, k, flip[latest])
    else:
        out = kept[~k.duplicated(keep="last")]
    out = out.copy()
    out.attrs.update(frame.attrs, re_graded=int((~latest).sum()), duplicates_dropped=int(len(frame) - len(out)),
                     sources=int(source.nunique()))
    return out


def verdict_kinds(frame: pd.DataFrame) -> pd.Series:
    """Who gave each row's verdict: ``"judge"`` — the row carries a second order (a known
    ``verdict_2`` or ``consistent``: only the position swap writes them, whatever the source is
    called), its source says ``judge:`` in any case or spacing, or the frame is a
    ``scoring.pairwise`` one (``attrs["judge"]``); ``"labels"`` — a ``human:<who>`` source (what
    ``lab.labels()`` writes), single votes; ``"unknown"`` — neither (no source, or another name)."""
    second = pd.Series(False, index=frame.index)
    for column in ("verdict_2", "consistent"):
        if column in frame.columns:
            second |= ~frame[column].map(is_unknown).astype(bool)
    source = source_texts(frame)
    judge = second | source.map(lambda s: bool(JUDGE_SOURCE.match(s))).astype(bool) | bool(frame.attrs.get("judge"))
    labels = source.map(lambda s: bool(LABEL_SOURCE.match(s))).astype(bool)
    return pd.Series(np.where(judge, "judge", np.where(labels, "labels", "unknown")), index=frame.index)


def _majority(frame: pd.DataFrame, key: pd.Series, flip: pd.Series) -> pd.DataFrame:
    """Per key, the winner (in the sorted pair's orientation) most sources gave; a split is unknown.
    Settling never rebuilds a row: a key with one verdict keeps its row, a settled key keeps one row
    of the majority whole (source, both orders, consistent) — the screens that read them (a judge's
    position bias, its lazy ties) must see what decided. Which row is the same whatever the concat's
    order: a judge's first (its screen is the strict one), then by source name."""
    mirrored = {"a": "b", "b": "a", "tie": "tie"}
    frame, key, flip = (x.reset_index(drop=True) for x in (frame, key, flip))   # a concat repeats labels
    winner = [None if is_unknown(w) else (mirrored[w] if f else w) for w, f in zip(frame["winner"], flip, strict=True)]
    source = frame["source"].astype(str).tolist() if "source" in frame.columns else [""] * len(frame)
    judge = (verdict_kinds(frame) == "judge").tolist()
    keep, split = [], []
    for rows in pd.Series(range(len(frame))).groupby(key.to_numpy(), sort=False).groups.values():
        counts = pd.Series([winner[i] for i in rows if winner[i] is not None], dtype=object).value_counts()
        top = counts.index[0] if len(counts) and (len(counts) == 1 or counts.iloc[0] > counts.iloc[1]) else None
        pool = [i for i in rows if top is None or winner[i] == top]
        keep.append(min(pool, key=lambda i: (not judge[i], source[i])))
        if top is None and len(rows) > 1:
            split.append((keep[-1], len(rows)))
    out = frame.iloc[sorted(keep)].copy()
    if split and "consistent" in out.columns and out["consistent"].dtype == bool:
        out["consistent"] = out["consistent"].astype("boolean")      # a split's row keeps no verdict: NA
    for i, n in split:
        out.loc[i, ["winner", "reason"]] = [None, f"unknown: the {n} sources split"]
        out.loc[i, [c for c in ("verdict_1", "verdict_2", "consistent") if c in out.columns]] = pd.NA
    return out
