"""Blind human grading in the notebook: a prompt and two answers in a hidden random order; the
grader votes A, B, tie or both bad (buttons, or the keys a / b / t / x; s skips, u undoes).

    from llmlab.widgets import GradingWidget
    GradingWidget(lab, runs, models=["a", "b"], who="ann")      # or: %llm grade models=a,b who=ann

Each vote is stored in the log at once (``lab.add_label``: who, when, which pair, which order was
shown, the hashes of the answers shown), so grading survives a kernel restart and resumes where it
stopped. Resuming is keyed on what is graded, not on the frame passed: a pair counts as graded
when this grader's label in the log names the same prompt, the same two models (either
orientation) and the same two answers (their hashes) — whatever frame it came from (``res.df``,
``lab.runs()`` with other sweeps and the judge's own calls in it) and whichever grading stored it;
it is not asked again (skipped ones come last), and the widget says how many were already graded
(``widget.resumed``). Only a ``grading=`` name you give keeps to that grading's labels (to grade
again on purpose). The judges' own rows of ``lab.runs()`` (tasks ``judge`` / ``pairwise judge``)
are never graded, by the rule pairwise applies (``analysis._scoring.judge_rows``). The default
``grading`` name is derived from the items (their prompts and pairs), so the same items get the
same name, order and hidden sides. Undo takes back the grader's latest label on these pairs, also
one stored before a restart.
Model names are shown only after the vote (``reveal=True``) or never (``reveal=False``); answers
are text, escaped. ``lab.labels(grading=widget.grading)`` returns the votes stored in this grading
as a preference frame; ``lab.labels(who=...)`` all of a grader's (also those a resume counted from
another grading).

Keyboard: ipywidgets has no key events, so the keys go through a focused one-line text box under
the buttons (focused again after every vote); each key typed there acts at once.

Every click and key carries the pair it was made on: each pair shown gets buttons of its own, and
the key box holds an invisible mark of the pair shown (zero-width characters the kernel writes
with each pair) beside what is typed. A click or key made on a pair that is no
longer shown — the second click of a double-click, the second of two keys typed faster than the
next pair appears (or pasted at once) — is ignored: counted in ``widget.ignored`` and said, never
recorded on a pair the grader has not seen.
"""
from __future__ import annotations

import getpass
import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import ipywidgets as w
import pandas as pd

from ..analysis._scoring import judge_rows
from ..base._display import esc
from ..base._errors import InputError
from ..base._record import answer_hash
from ..base._validate import one_line

__all__ = ["GradingWidget", "grading_items"]

_KEYS = {"a": "A", "b": "B", "t": "tie", "x": "both_bad", "s": "skip", "u": "undo"}
_LABELS = {"A": "A is better", "B": "B is better", "tie": "Tie", "both_bad": "Both bad", "skip": "Skip",
           "undo": "Undo"}


@dataclass(frozen=True)
class Item:
    """One pair to grade: the prompt, both answers (and their log ids), the model shown as A."""

    prompt_id: str
    model_a: str
    model_b: str
    prompt: str
    answer_a: str
    answer_b: str
    row_a: int | None
    row_b: int | None
    shown_first: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.prompt_id, self.model_a, self.model_b)


def grading_items(runs: pd.DataFrame, *, models: Sequence[str] | None = None, against: str | None = None,
                  grading: str | None = None, seed: int | None = None) -> tuple[str, list[Item]]:
    """The grading's name and its items, in their order with their hidden sides: from ``seed`` when
    given (reproducible — and so computable by anyone who knows it), else from a secret drawn once per
    kernel, so a grader cannot recompute who is A from what the widget shows (the grading's name,
    the prompt, the models). Only pairs where both models answered (an ok row) are graded."""
    key: Any = _SECRET if seed is None else seed
    answers = _answers(runs)
    # sorted, not in order of appearance: the log's order is the order calls finished, and a
    # re-run must orient every pair the same way to find its labels
    present = sorted(map(str, pd.unique(answers["requested_model"])))
    chosen = list(dict.fromkeys(models)) if models else present
    missing = [m for m in [*chosen, *([against] if against else [])] if m not in present]
    if missing:
        raise InputError(f"no answers of model {missing[0]!r} to grade (models: {', '.join(present)})")
    if against and against not in chosen:
        chosen = [against, *chosen]
    if len(chosen) < 2:
        raise InputError(f"grading compares two models' answers; got {', '.join(chosen) or 'none'}")
    pairs = [(against, m) for m in chosen if m != against] if against else list(combinations(chosen, 2))
    by_cell = answers.set_index(["prompt_id", "requested_model"])
    keys = [(pid, a, b) for pid in dict.fromkeys(answers["prompt_id"]) for a, b in pairs
            if (pid, a) in by_cell.index and (pid, b) in by_cell.index]
    if not keys:
        raise InputError("no prompt has ok answers of both models of a pair: nothing to grade")
    name = grading or _default_name(keys)
    items = [_item(by_cell, pid, a, b, name, key) for pid, a, b in keys]
    items.sort(key=lambda it: _digest(key, name, "order", *it.key))
    return name, items


def _answers(runs: Any) -> pd.DataFrame:
    if not isinstance(runs, pd.DataFrame) or not {"prompt_id", "requested_model", "response_text"} <= set(runs):
        raise InputError("grading needs recorded runs (lab.runs(run_id=...), res.df) with answers")
    rows = runs[runs["repeat"].fillna(0) == 0] if "repeat" in runs.columns else runs
    rows = rows[~judge_rows(rows)]           # a judge's own calls are never candidates (pairwise's rule)
    rows = rows.sort_values("id", kind="stable") if "id" in rows.columns else rows
    rows = rows.groupby(["prompt_id", "requested_model"], sort=False).tail(1)
    return rows[rows["status"] == "ok"] if "status" in rows.columns else rows


# Unpredictable, stable within a kernel (re-running the cell keeps each pair's side); after a restart
# the pairs not yet graded get fresh sides, which blindness allows (each label stores what was shown).
_SECRET = secrets.token_hex(16)


def _item(by_cell: pd.DataFrame, pid: Any, a: str, b: str, name: str, seed: Any) -> Item:
    row_a, row_b = by_cell.loc[(pid, a)], by_cell.loc[(pid, b)]
    first = a if int(_digest(seed, name, "side", pid, a, b), 16) % 2 == 0 else b
    return Item(str(pid), a, b, _text(row_a.get("prompt")), _text(row_a["response_text"]),
                _text(row_b["response_text"]), _row_id(row_a), _row_id(row_b), first)


def _default_name(keys: list[tuple[Any, str, str]]) -> str:
    """Same items (prompts and pairs graded) → same name, from whatever frame they came: a re-run
    notebook (its sweep answered from the cache under a new run id) or ``lab.runs()`` with the
    judge's rows and other sweeps in it resumes the same grading."""
    prompts = sorted({str(pid) for pid, _, _ in keys})
    pairs = sorted({tuple(sorted((a, b))) for _, a, b in keys})
    return "grading-" + _digest(0, json.dumps([prompts, [list(p) for p in pairs]]))[:10]


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and value != value) else str(value)


def _row_id(row: pd.Series) -> int | None:
    value = row.get("id")
    return None if value is None or pd.isna(value) else int(value)


class GradingWidget:
    """Blind pairwise grading of recorded answers; every vote goes straight into the log.

    lab: the Lab whose log keeps the labels. runs: the recorded rows to grade. models / against:
    which pairs (all pairs of ``models``, or each against ``against``). who: the grader (default:
    your login name). grading: the session's name (default: derived from the items; pairs this
    grader labelled on the same answers in any grading count as graded — with a name given, only
    that grading's labels count). seed: the order and the hidden sides (default: a secret of this
    kernel, so the sides cannot be recomputed from what is shown). reveal: show the model
    names after each vote.
    """

    __module__ = "llmlab"

    def __init__(self, lab: Any, runs: pd.DataFrame, *, models: Sequence[str] | None = None,
                 against: str | None = None, who: str | None = None, grading: str | None = None,
                 seed: int | None = None, reveal: bool = True) -> None:
        self.lab, self.reveal = lab, bool(reveal)
        self.who = who or _login()
        if who is not None or grading is not None:  # checked before anything shows or stores them
            lab.check_label_names(**{k: v for k, v in (("who", who), ("grading", grading)) if v is not None})
        self.grading, self.items = grading_items(runs, models=models, against=against, grading=grading, seed=seed)
        self._named = grading is not None               # a name given: only that grading's labels count
        self.ignored = 0                                # clicks / keys made on a pair no longer shown
        self._view = 0                                  # which showing of a pair the controls belong to
        self._old_buttons: list[list[w.Button]] = []
        self._note = self._seen = ""                   # the last status note; the key box's last value
        self._build()
        self._queue = self._pending()
        self.resumed = self.done                        # pairs already graded in the log when it opened
        self._show(note=self._resumed_note())

    # -- state from the log ----------------------------------------------------------------------
    def _stored(self) -> pd.DataFrame:
        names, rows = self.lab.store.labels(grading=self.grading if self._named else None, who=self.who)
        return pd.DataFrame(rows, columns=names)

    def _labels_here(self) -> list[tuple[int, Item, str]]:
        """(label id, item, vote) of this grader's stored labels, oldest first, on the items' prompt,
        pair (either orientation) and answers shown now, from any grading (only this one with a name
        given). A label that names no answers (stored before labels did) counts only in this
        grading; a label of a re-sweep's old answers is left out, so its pair is graded again."""
        stored = self._stored()
        items = {(it.prompt_id, frozenset((it.model_a, it.model_b))): it for it in self.items}
        out = []
        for label_id, grading, pid, model_a, model_b, hash_a, hash_b, vote in zip(
                stored["id"], stored["grading"], stored["prompt_id"], stored["model_a"], stored["model_b"],
                stored["answer_a_hash"], stored["answer_b_hash"], stored["vote"], strict=True):
            item = items.get((str(pid), frozenset((model_a, model_b))))
            if item is None:
                continue
            shown = {item.model_a: answer_hash(item.answer_a), item.model_b: answer_hash(item.answer_b)}
            named = {model_a: hash_a, model_b: hash_b}
            if any(pd.isna(h) for h in named.values()):
                same = grading == self.grading and all(pd.isna(h) or h == shown[m] for m, h in named.items())
            else:
                same = named == shown
            if same:
                out.append((int(label_id), item, vote))
        return out

    def _resumed_note(self) -> str:
        if not self.resumed:
            return ""
        return (f"Resumed: {self.resumed} of {len(self.items)} pair(s) already graded by {esc(self.who)} on these "
                "answers (labels in the log); they are not asked again.")

    def _votes(self) -> dict[tuple[str, str, str], str]:
        """{item key: its latest stored vote}; a skip never replaces a vote (one stored in another
        grading, that is: here a voted pair is not shown again)."""
        out: dict[tuple[str, str, str], str] = {}
        for _, item, vote in self._labels_here():
            if vote != "skip" or out.get(item.key, "skip") == "skip":
                out[item.key] = vote
        return out

    def _pending(self) -> list[Item]:
        """Items without a vote yet, then the skipped ones (in order): where grading stopped."""
        last = self._votes()
        fresh = [it for it in self.items if it.key not in last]
        skipped = [it for it in self.items if last.get(it.key) == "skip"]
        return fresh + skipped

    @property
    def done(self) -> int:
        return sum(1 for vote in self._votes().values() if vote != "skip")

    # -- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        self.progress = w.HTML()
        self.prompt_view = w.HTML(layout=w.Layout(width="auto"))
        self.answer_views = {side: w.HTML(layout=w.Layout(flex="1 1 0", min_width="16em")) for side in "AB"}
        self.keys = w.Text(continuous_update=True, layout=w.Layout(width="12em"))
        self.keys.observe(self._on_key, names="value")
        self.status = w.HTML()
        hint = w.HTML("<small>keys: a  b  t (tie)  x (both bad)  s (skip)  u (undo)</small>")
        # the buttons change with every pair; the key box stays (its view and focus are kept)
        self._vote_row, self._more_buttons = w.HBox(), w.HBox()
        row = w.Box([self.answer_views["A"], self.answer_views["B"]],
                    layout=w.Layout(display="flex", flex_flow="row wrap", width="100%"))
        self.ui = w.VBox([self.progress, self.prompt_view, row, self._vote_row,
                          w.HBox([self._more_buttons, self.keys, hint]), self.status],
                         layout=w.Layout(width="auto"))
        self.ui.add_class("llmlab-grading")

    def _new_buttons(self, view: int) -> None:
        """Buttons of their own for this showing, so a click names what it was made on; those of the
        last few showings stay open to count a late click, older ones are closed."""
        self.buttons = {vote: w.Button(description=f"{_LABELS[vote]} [{key}]", tooltip=f"key: {key}",
                                       button_style="primary" if vote in ("A", "B") else "")
                        for key, vote in _KEYS.items()}
        for vote, button in self.buttons.items():
            button.on_click(lambda _, v=vote: self._event(view, v))
        self._old_buttons.append(list(self.buttons.values()))
        for stale in self._old_buttons[:-_KEEP_OPEN]:
            for button in stale:
                button.close()
        del self._old_buttons[:-_KEEP_OPEN]
        self._vote_row.children = list(self.buttons.values())[:4]
        self._more_buttons.children = list(self.buttons.values())[4:]

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.ui._repr_mimebundle_(**kwargs) or {}
        bundle["text/plain"] = (f"<GradingWidget {self.grading}: {self.done} / {len(self.items)} graded by "
                                f"{self.who}; a live widget in Jupyter with a running kernel>")
        bundle["text/html"] = (f'<div class="llmlab-grading" style="color:#555">llmlab GradingWidget '
                               f"{esc(self.grading)}: {self.done} / {len(self.items)} graded by {esc(self.who)}. "
                               "The live widget shows in Jupyter with a running kernel.</div>")
        return bundle

    # -- voting ----------------------------------------------------------------------------------
    @property
    def current(self) -> Item | None:
        return self._queue[0] if self._queue else None

    def press(self, vote: str) -> None:
        """Vote A / B / tie / both_bad, skip, or undo on the pair shown now (what a button does)."""
        self._event(self._view, vote)

    def _event(self, view: int, vote: str) -> None:
        """A click or key made while showing ``view``: acted on only if that is still what is shown."""
        if view != self._view:
            self.ignored += 1
            self.status.value = (f"{self._note} Ignored {self.ignored} click(s) / key(s) made on a pair no "
                                 "longer shown (a double-click, or keys faster than the next pair): nothing "
                                 "recorded for them.")
            return
        try:
            if vote == "undo":
                self._undo()
            elif self.current is not None:
                self._vote(self.current, vote)
        except Exception as exc:  # a log that cannot be written: say so in the widget, keep the item
            self.status.value = f'<span style="color:#d62728">{esc(one_line(exc))}</span>'

    def _vote(self, item: Item, vote: str) -> None:
        self.lab.add_label(grading=self.grading, who=self.who, prompt_id=item.prompt_id,
                           model_a=item.model_a, model_b=item.model_b, shown_first=item.shown_first,
                           vote=vote, row_a=item.row_a, row_b=item.row_b)
        self._queue.pop(0)
        if vote == "skip":
            self._queue.append(item)
        self._show(note=self._said(item, vote))

    def _undo(self) -> None:
        # The log, not the widget, remembers the votes: undo takes back this grader's latest label in
        # this grading, also one stored before a kernel restart (and then the one before it).
        here = self._labels_here()
        if not here:
            self.status.value = "Nothing to undo: no label of yours in this grading."
            return
        label_id, item, _ = here[-1]
        self.lab.undo_label(label_id)
        self._queue = [item, *[it for it in self._queue if it.key != item.key]]
        self._show(note="Undone: this pair is shown again.")

    def _said(self, item: Item, vote: str) -> str:
        second = item.model_b if item.shown_first == item.model_a else item.model_a
        names = f" (A was {esc(item.shown_first)}, B was {esc(second)})" if self.reveal else ""
        what = {"A": "A is better", "B": "B is better", "tie": "a tie", "both_bad": "both bad",
                "skip": "skipped (it comes back at the end)"}[vote]
        return f"Saved: {what}{names}."

    def _on_key(self, change: dict) -> None:
        """The key box holds the mark of the showing it was typed on and the keys typed (anywhere in
        it: a click can put the caret inside the mark). A late update repeats the keys already
        handled; only those after them are new. The first new key acts if its showing is still
        shown; every other was typed before what the first did could be seen: made on a pair no
        longer shown."""
        value = str(change["new"] or "")
        if value == _mark(self._view):
            return
        (mark, typed), (seen_mark, seen) = _split(value), _split(self._seen)
        self._seen = value
        fresh = typed[len(seen):] if mark == seen_mark and typed.startswith(seen) else typed
        view = self._view if mark == _mark(self._view) else -1
        self.keys.value = _mark(self._view)
        for vote in [_KEYS[k] for k in fresh.lower() if k in _KEYS]:
            self._event(view, vote)
            view = -1

    # -- showing ---------------------------------------------------------------------------------
    def _show(self, note: str) -> None:
        item = self.current
        self._view += 1
        self._new_buttons(self._view)
        self.keys.value = _mark(self._view)
        self.progress.value = (f"<b>{self.done} / {len(self.items)} graded</b> · grader {esc(self.who)} · "
                               f"grading {esc(self.grading)}")
        for button in self.buttons.values():
            button.disabled = item is None and button is not self.buttons["undo"]
        if item is None:
            self.prompt_view.value = ("<p><b>All pairs graded.</b> lab.labels(who=…) returns them "
                                     "(lab.labels(grading=…): those stored in this grading).</p>")
            for view in self.answer_views.values():
                view.value = ""
        else:
            first, second = (item.answer_a, item.answer_b) if item.shown_first == item.model_a else \
                (item.answer_b, item.answer_a)
            self.prompt_view.value = _box("Prompt", item.prompt)
            self.answer_views["A"].value = _box("A", first)
            self.answer_views["B"].value = _box("B", second)
        self.status.value = self._note = note
        self.keys.focus()


_MARK_BITS = "\u200b\u200c"     # zero-width space (0) and non-joiner (1): invisible, never typed
# showings whose buttons stay open to count a late click; one later still reaches a closed button
# and is dropped unrecorded by the kernel's comm manager (never counted, never a vote)
_KEEP_OPEN = 3


def _mark(view: int) -> str:
    """The showing's invisible mark in the key box: its number mod 256 as 8 zero-width characters."""
    return "".join(_MARK_BITS[int(bit)] for bit in f"{view % 256:08b}")


def _split(value: str) -> tuple[str, str]:
    """The key box's value → (the mark in it, the keys typed)."""
    return "".join(c for c in value if c in _MARK_BITS), "".join(c for c in value if c not in _MARK_BITS)


def _box(title: str, text: str) -> str:
    return (f'<div class="llmlab-grade-{esc(title.lower())}" style="border:1px solid #ddd;padding:6px;margin:2px">'
            f'<b>{esc(title)}</b><pre style="white-space:pre-wrap;word-break:normal;overflow-wrap:break-word">'
            f"{esc(text)}</pre></div>")


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in a container: still one grader
        return "anonymous"
