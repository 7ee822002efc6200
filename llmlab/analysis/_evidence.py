"""Does a preference source carry information at all? A judge that says "[[A]]" to everything
yields, by the position swap, a tie on every pair; one that says "[[C]]" to everything is
consistent on every pair and says tie too; one that answers at random is consistent as often as
chance. Each rule of the pairwise protocol is sound (an inconsistent pair is a tie, a tie is "as
good" for routing), but composed they would certify a useless cheap model on such a judge. This
module states what a frame can show (:func:`judge_evidence`, :data:`EVIDENCE_RULE`); pairwise,
routing's claim and recommend, and ratings refuse or warn on an uninformative source.

A random judge passes the screen 5 % of the time (a one-sided 5 % test); what it then says is
still noise, which the claim's own test has to see through. A judge biased by something other than
position (length, style) is consistent and passes: this screen catches blind judges, not every
bias — check a judge against human labels (``scoring.agreement``) for that. A judge that passes
but decides many pairs by position is routing's to handle: its claims must also hold with the
order-dependent pairs as losses (``routing._preferences``). A judge's frame without its two orders
cannot be screened (:func:`source_kind`).
"""
from __future__ import annotations

import math
import re
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["judge_evidence", "EVIDENCE_RULE", "INFORMATIVE_Z", "is_unknown", "source_kind", "evidence_words"]


def is_unknown(value: Any) -> bool:
    """None, NaN and pandas' NA all mean "no verdict" (pandas turns None into NaN in most columns)."""
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


# One-sided 5 % test that a judge's two orders agree more often than a judge blind to the answers
# would make them agree (one that picks A, B or tie by position alone, as often as this one does).
INFORMATIVE_Z = NormalDist().inv_cdf(0.95)

EVIDENCE_RULE = (
    "a preference source is informative when some known verdict is decisive (a or b) and, where pairs were "
    "judged in both orders, the two orders give the same winner more often than a judge that never read the "
    "answers would (one choosing A, B or tie by position alone, as often as this judge does in each position: "
    "chance consistency 2·P(A)·P(B) + P(tie)²; one-sided z ≥ 1.645); otherwise every verdict could have been "
    "given without reading the answers (always [[A]], always [[C]], at random) and nothing is certified on it")


def judge_evidence(frame: pd.DataFrame, *, require_source: bool = False) -> dict[str, Any]:
    """What a preference frame can show, and whether it shows anything (:data:`EVIDENCE_RULE`).

    Keys: ``pairs``, ``known`` (a winner), ``decisive`` (a or b), ``ties``; of the pairs judged in
    both orders (``two_orders``): ``consistent_pct``, ``consistent_decisive_pct`` (the same winner a
    or b in both orders), ``position_bias_pct`` (the orders disagree: a tie by the position rule),
    ``first_position_pct`` (of the games with a winner, the share the answer shown first won),
    ``chance_consistent_pct`` (what a position-only judge would reach) and ``order_z``;
    ``kind`` (:func:`source_kind`); ``informative`` and ``why`` (empty when informative);
    ``unscreened``: a judge's frame (:func:`source_kind`) whose two orders are gone (cut to its core
    columns, saved to CSV) is not informative: it cannot be screened. ``require_source`` (routing's
    claims): a frame naming no source at all is not screened as single-vote labels either — only a
    source says that they are; elsewhere (ratings, agreement) it is read as labels."""
    winners = [None if is_unknown(w) else w for w in frame["winner"]]
    known = [w for w in winners if w is not None]
    out: dict[str, Any] = {"pairs": len(frame), "known": len(known),
                           "decisive": sum(w in ("a", "b") for w in known), "ties": sum(w == "tie" for w in known)}
    out.update(_orders(frame))
    out["kind"] = source_kind(frame)
    out["informative"], out["why"], out["order_test_failed"] = _verdict_on(out)
    out["unscreened"] = bool(out.get("unscreened", False))
    cut = out["kind"] == "judge" or (require_source and out["kind"] == "unstated")
    out["unscreened_rows"] = blind = int(_unscreened_rows(frame).sum()) if cut else 0
    if blind:
        # a judge's row without its two orders (cut to the core columns and saved to CSV, then given
        # the verdict columns back empty by reindex or concat) looks like a single-vote label: it
        # cannot be screened, and a frame is never screened better than its worst rows (r25 B2)
        out["informative"], out["unscreened"] = False, True
        some = "" if blind == out["known"] else f" on {blind} of its {out['known']} known rows"
        out["why"] = (f"{_WHOSE[out['kind']]} without the judge's two orders (verdict_1/verdict_2){some}: whether "
                      "the verdicts were given without reading the answers cannot be checked — keep the columns "
                      "scoring.pairwise writes, or mark human labels with source='human:<who>'")
    return out


# scoring.pairwise's rows decided without the judge (a model's call failed, errors='loss'): no
# verdict of the judge to screen
_ERROR_ROW = re.compile(r"call failed \(an error row\)|both models' calls failed")


# A source's prefix says who gave a verdict however it is spelt ("Judge:j", " judge:j", "judge : j"):
# the screens hang on it, and a recased or padded name must not turn a judge into labels.
JUDGE_SOURCE = re.compile(r"\s*judge\s*:", re.IGNORECASE)
LABEL_SOURCE = re.compile(r"\s*human\s*:", re.IGNORECASE)


def source_texts(frame: pd.DataFrame) -> pd.Series:
    """Each row's source as text: "" where it is unknown or the frame has no source column."""
    if "source" not in frame.columns:
        return pd.Series("", index=frame.index)
    return frame["source"].map(lambda s: "" if is_unknown(s) else str(s))


def _unscreened_rows(frame: pd.DataFrame) -> pd.Series:
    """Per row: a known winner of the judge (any source but ``human:…``) without both orders known."""
    def unknown(column: str) -> pd.Series:
        if column not in frame.columns:
            return pd.Series(True, index=frame.index)
        return frame[column].map(is_unknown).astype(bool)
    human = source_texts(frame).map(lambda s: bool(LABEL_SOURCE.match(s))).astype(bool)
    reason = (frame["reason"].map(lambda r: isinstance(r, str) and bool(_ERROR_ROW.search(r))).astype(bool)
              if "reason" in frame.columns else pd.Series(False, index=frame.index))
    return ~unknown("winner") & (unknown("verdict_1") | unknown("verdict_2")) & ~human & ~reason


_WHOSE = {"judge": "a judge's verdicts (source judge:…)",
          "unstated": "verdicts that name no source (no source column: 'human:<who>' for labels, "
                      "'judge:<model>' for a judge)"}


def source_kind(frame: pd.DataFrame) -> str:
    """Who gave a frame's verdicts: ``"judge"`` (a ``judge:<model>`` source, or a ``scoring.pairwise``
    frame's ``attrs["judge"]``), ``"labels"`` (every stated source another one, e.g. ``human:<who>``),
    or ``"unstated"`` (no source column, or none filled in)."""
    if frame.attrs.get("judge"):
        return "judge"
    if "source" not in frame.columns:
        return "unstated"
    stated = [str(s) for s in frame["source"] if not is_unknown(s) and str(s).strip()]
    # "Judge:j", " judge:j" are a judge too: the screens must not hang on the spelling (r24 B2)
    if any(JUDGE_SOURCE.match(s) for s in stated):
        return "judge"
    return "labels" if stated else "unstated"


def evidence_words(evidence: dict[str, Any], *, singular: bool = False) -> str:
    """How messages name an evidence verdict that certifies nothing: a failed test of the two
    orders on a few pairs shows no information, not that there is none (``singular``: of one judge)."""
    if evidence.get("unscreened"):
        return "cannot be screened"
    if evidence.get("order_test_failed"):
        return f"cannot be shown to carry information ({evidence['two_orders']} pairs)"
    return "carries no information" if singular else "carry no information"


def _orders(frame: pd.DataFrame) -> dict[str, Any]:
    """The position-swap statistics of the pairs whose two games both have a verdict."""
    if "verdict_1" not in frame.columns or "verdict_2" not in frame.columns:
        return {"two_orders": 0}
    fold = {"a": "A", "b": "B", "tie": "tie"}     # check_preferences normalises; a raw frame may say 'a'
    both = [(fold.get(a.strip().casefold(), a) if isinstance(a, str) else a,
             fold.get(b.strip().casefold(), b) if isinstance(b, str) else b)
            for a, b in zip(frame["verdict_1"], frame["verdict_2"], strict=True)
            if not is_unknown(a) and not is_unknown(b)]
    if not both:
        return {"two_orders": 0}
    n = len(both)
    same = np.array([{"A": "B", "B": "A"}.get(a, a) == b for a, b in both])   # game 2 shows model_b first
    decisive = np.array([a != "tie" for a, _ in both]) & same
    games = [v for pair in both for v in pair]
    q = {v: games.count(v) / len(games) for v in ("A", "B", "tie")}
    chance = 2 * q["A"] * q["B"] + q["tie"] ** 2
    observed = float(same.mean())
    if 0 < chance < 1:
        z = (observed - chance) / math.sqrt(chance * (1 - chance) / n)
    else:                   # a judge always in one position (chance 0) or always tie (chance 1)
        z = float("inf") if observed > chance else float("nan")
    won = [v == "A" for v in games if v != "tie"]
    return {"two_orders": n, "consistent_pct": 100 * observed, "consistent_decisive_pct": 100 * float(decisive.mean()),
            "position_bias_pct": 100 * (1 - observed),
            "first_position_pct": 100 * float(np.mean(won)) if won else float("nan"),
            "chance_consistent_pct": 100 * chance, "order_z": float(z)}


def _verdict_on(e: dict[str, Any]) -> tuple[bool, str, bool]:
    """Informative, why not, and whether it is the test of the two orders that failed."""
    if not e["known"]:
        return False, "no verdict is known", False
    if not e["decisive"]:
        shown = (f" ({e['position_bias_pct']:.0f} % because its two orders disagreed: position bias)"
                 if e.get("two_orders") and e["position_bias_pct"] else "")
        return False, (f"all {e['known']} known verdicts are ties{shown}: a tie for every pair says nothing of the "
                       "answers"), False
    if e.get("two_orders") and not e["order_z"] >= INFORMATIVE_Z:      # NaN fails too
        more = e["consistent_pct"] > e["chance_consistent_pct"]
        few = " are too few to tell" if more and e["two_orders"] < 30 else ""
        # no z where a position-only judge is certain to be as consistent (every game a tie)
        z = (f"z {e['order_z']:.2f} < {INFORMATIVE_Z:.3f}" if math.isfinite(e["order_z"])
             else "no test: a judge choosing by position alone would be exactly as consistent")
        first = (f"first position wins {e['first_position_pct']:.0f} % of decisive games"
                 if math.isfinite(e["first_position_pct"]) else "no decisive game in either order")
        return False, (f"its two orders agree {'not significantly more' if more else 'no more'} often than a judge "
                       f"blind to the answers would ({e['consistent_pct']:.0f} % consistent vs "
                       f"{e['chance_consistent_pct']:.0f} % by position alone, {z}, {e['two_orders']} pairs{few}; "
                       f"position bias {e['position_bias_pct']:.0f} %, {first})"), True
    return True, "", False
