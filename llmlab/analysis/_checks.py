"""Checks that read an answer without knowing the right one: its own arithmetic re-computed, a
final answer stated, refusal or hedging phrases, and the agreement of several sampled answers.

Pure functions of text (no model calls, no ``expected``), so a router may use them before it
decides to escalate: as features of a :class:`~llmlab.routing.Verifier` or, wrapped as scorers
(``scoring.arithmetic()``, ``scoring.final_answer()``, ``scoring.no_hedging()``), as a
:class:`~llmlab.routing.Cascade`'s ``accept``.

**Arithmetic.** Claims written as ``expression = value`` (``16 - 3 = 13``, chains such as
``235 / 3 = 78.33``, GSM8K's calculator annotations ``<<9*2=18>>``) are re-computed with a small
recursive-descent parser of numbers, ``+ - * / ( ) %`` and the usual spellings (``×``, ``x``
between numbers, ``÷``, ``$``, thousands separators) — never ``eval``. A claim counts as right
when it matches to the precision it is written with (``8 / 3 = 2.67``; a whole number may be a
rounded one). Anything the parser cannot read with certainty — a variable, a word inside the
expression, unbalanced brackets — is skipped, not judged.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Equation", "equations", "evaluate", "FinalAnswer", "final_answer", "numbers", "hedges",
           "HEDGE_KINDS", "Agreement", "agreement"]

_NUM = re.compile(r"\d+(?:\.\d+)?|\.\d+")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_TIGHT_FRACTION = re.compile(r"(\d+)/(\d+)(?![\d.])")
_ANNOTATION = re.compile(r"<<([^<>]*)>>")
_TIMES_X = re.compile(r"(?<=[\d)%])\s*[xX]\s*(?=[\d(.])")
_HAS_OPERATOR = re.compile(r"[\d)%]\s*[-+*/]\s*[\d(.\-]")
_EXPRESSION_CHARS = frozenset("0123456789.,$€£% \t\r\n+-*/xX×÷·()\\−")
_LEADING_EXPRESSION = re.compile("[" + re.escape("".join(sorted(_EXPRESSION_CHARS))) + "]+")
_OPERATORS = "*/+xX×÷·\\"


class NotArithmetic(ValueError):
    """An expression the checker will not judge (not a parse it is sure of)."""


def _normalise(text: str) -> str:
    text = text.replace("\\*", "*").replace("\\times", "*").replace("\\div", "/")
    text = text.replace("×", "*").replace("·", "*").replace("÷", "/").replace("−", "-")
    text = re.sub(r"[$€£]", "", text)
    text = _THOUSANDS.sub("", text)
    return _TIMES_X.sub("*", text)       # "8 x 5": x between operands multiplies


# one token at a time: optional spaces, then (a tight fraction "1/2",) a number or an operator
_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?|\.\d+)|([-+*/()%]))")
_TOKEN_TIGHT = re.compile(r"\s*(?:(?<!/)(\d+)/(\d+)(?![\d./])|(\d+(?:\.\d+)?|\.\d+)|([-+*/()%]))")


def _tokens(text: str, tight_fractions: bool) -> list[tuple[str, float]]:
    """(kind, value) tokens of normalised text; ``tight_fractions``: in prose "7 / 1/2" means 7 / (1/2)."""
    out: list[tuple[str, float]] = []
    pattern, at, end = (_TOKEN_TIGHT if tight_fractions else _TOKEN), 0, len(text.rstrip())
    while at < end:
        match = pattern.match(text, at)
        if match is None:
            raise NotArithmetic(f"not arithmetic: {text[at:at + 10]!r}")
        groups = match.groups()
        if tight_fractions and groups[0] is not None:
            if not float(groups[1]):
                raise NotArithmetic("division by zero")
            out.append(("num", float(groups[0]) / float(groups[1])))
        elif groups[-2] is not None:
            out.append(("num", float(groups[-2])))
        else:
            out.append((groups[-1], 0.0))
        at = match.end()
    return out


class _Parser:
    """expr := term (('+'|'-') term)* ; term := factor (('*'|'/') factor)* ;
    factor := ('+'|'-') factor | NUMBER ['%'] | '(' expr ')'"""

    def __init__(self, tokens: list[tuple[str, float]]) -> None:
        self.tokens, self.at = tokens, 0

    def _peek(self) -> str | None:
        return self.tokens[self.at][0] if self.at < len(self.tokens) else None

    def _take(self) -> tuple[str, float]:
        self.at += 1
        return self.tokens[self.at - 1]

    def expression(self) -> float:
        value = self._term()
        while self._peek() in ("+", "-"):
            sign = self._take()[0]
            value = value + self._term() if sign == "+" else value - self._term()
        return value

    def _term(self) -> float:
        value = self._factor()
        while self._peek() in ("*", "/"):
            operator = self._take()[0]
            right = self._factor()
            if operator == "/" and right == 0:
                raise NotArithmetic("division by zero")
            value = value * right if operator == "*" else value / right
        return value

    def _factor(self) -> float:
        kind = self._peek()
        if kind in ("+", "-"):
            self._take()
            return self._factor() if kind == "+" else -self._factor()
        if kind == "num":
            value = self._take()[1]
            if self._peek() == "%":
                self._take()
                value /= 100.0
            return value
        if kind == "(":
            self._take()
            value = self.expression()
            if self._peek() != ")":
                raise NotArithmetic("missing )")
            self._take()
            return value
        raise NotArithmetic(f"unexpected {kind}")


def evaluate(text: str, tight_fractions: bool = False) -> float:
    """The value of an arithmetic expression (numbers, + - * / ( ) %), never through ``eval``."""
    return _value(_normalise(text), tight_fractions)


def _value(text: str, tight_fractions: bool) -> float:
    """:func:`evaluate` of text already normalised."""
    tokens = _tokens(text, tight_fractions)
    if not tokens:
        raise NotArithmetic("empty")
    parser = _Parser(tokens)
    value = parser.expression()
    if parser.at != len(tokens) or not math.isfinite(value):
        raise NotArithmetic("not one expression")
    return value


@dataclass(frozen=True)
class Equation:
    """One ``expression = value`` claim of an answer, re-computed."""

    text: str
    computed: float
    claimed: float
    holds: bool
    source: str   # "annotation" (<<…=…>>) or "text"


def _decimals(text: str) -> int:
    found = list(_NUM.finditer(text))
    last = found[-1].group() if found else ""
    return len(last.split(".")[1]) if "." in last else 0


def _matches(computed: float, claimed: float, claimed_text: str) -> bool:
    """Equal to the precision the claim is written with (``8/3 = 2.67``, ``8/3 = 3``, ``0.6 = 60%``)."""
    readings = [claimed, claimed * 100] if "%" in claimed_text else [claimed]
    places = _decimals(claimed_text)
    for value in readings:
        if abs(computed - value) <= 1e-9 * max(1.0, abs(value)):
            return True
        if places and abs(computed - value) <= 10.0 ** -places + 1e-9:
            return True
        if not places and not float(computed).is_integer() and abs(computed - value) <= 0.5 + 1e-9:
            return True
    return False


def _left_side(chunk: str, before: str) -> str | None:
    """The expression left of ``=``, or None when it may be the tail of a longer one."""
    if before[-1:].isalnum() and chunk[:1] not in " \t\r\nxX":
        return None                      # glued to a word or a number ("1e308*10"): not all of it
    text = chunk.strip()
    if before[-1:].isalpha() or text[:1] in "xX":     # "15 floors * 8": a word inside the expression
        text = re.sub(r"^[\sxX]+", "", text)
    if not text or text[:1] in _OPERATORS + ")" or (before.rstrip()[-1:].isalpha() and text[:1] == "-"):
        return None
    while text.startswith("(") and text.count("(") > text.count(")"):
        text = text[1:].lstrip()
    text = text.rstrip(" ,.")
    return text if text and text.count("(") == text.count(")") else None


def _right_side(chunk: str) -> tuple[str | None, bool]:
    """The value right of ``=`` and whether it runs on (``= 36 / 12 = 3``)."""
    text = re.sub(r"[\s,.]+$", "", chunk.strip())
    if re.search(r"[" + re.escape(_OPERATORS) + r"\-(]$", text):
        return None, False               # "= 1 * x": goes on with a variable or a word
    if text.count("(") != text.count(")"):
        text = text.rstrip(")").strip()
        if text.count("(") != text.count(")"):
            return None, False
    return (text or None), bool(_HAS_OPERATOR.search(text))


def _expression_start(text: str) -> int:
    """Where the run of arithmetic characters that ends ``text`` starts (a scan from the end: a
    regex anchored at the end would retry every start position)."""
    at = len(text)
    while at and text[at - 1] in _EXPRESSION_CHARS:
        at -= 1
    return at


def _chain(parts: list[str], source: str) -> list[Equation]:
    """The claims of ``a = b = c`` (normalised text split at its ``=``), link by link."""
    out = []
    for left, right in zip(parts[:-1], parts[1:], strict=True):
        start = _expression_start(left)
        head = _LEADING_EXPRESSION.match(right)
        if start == len(left) or not head:
            continue
        lhs = _left_side(left[start:], left[:start])
        rhs, runs_on = _right_side(head.group())
        if not lhs or not rhs or not _HAS_OPERATOR.search(lhs):
            continue
        try:
            computed, claimed = _value(lhs, True), _value(rhs, True)
        except NotArithmetic:
            continue
        holds = _matches(computed, claimed, rhs)
        if not holds and runs_on:        # "6 x 6 = 36 / 12 = 3": the first number is the claim
            first = _NUM.search(rhs)
            holds = first is not None and _matches(computed, float(first.group()), first.group())
        out.append(Equation(f"{lhs} = {rhs}", computed, claimed, holds, source))
    return out


def equations(text: str | None) -> list[Equation]:
    """Every ``expression = value`` claim in ``text`` that can be re-computed with certainty."""
    if not isinstance(text, str):
        return []
    found: list[Equation] = []
    for match in _ANNOTATION.finditer(text):
        body = match.group(1)
        if "=" in body:
            found.extend(_chain(_normalise(body).split("="), "annotation"))
    prose = _ANNOTATION.sub("", text)          # "= $<<9*2=18>>18" reads "= $18"
    for line in re.split(r"[\n;]|(?<=[a-z])\.\s", prose):
        if "=" in line:                         # normalised once: every step below reads it as is
            line = _normalise(line)
            if _HAS_OPERATOR.search(line):
                found.extend(_chain(line.split("="), "text"))
    return found


# --- the final answer -------------------------------------------------------------------------

_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|(?<![\w.])-?\.\d+")
_MARKED = (re.compile(r"####\s*\$?\s*(-?[\d,]*\.?\d+)"),
           re.compile(r"\\boxed\{\s*\$?\s*(-?[\d,]*\.?\d+)"),
           re.compile(r"(?:final answer|the answer)\s*(?:is|:|=)\s*:?\s*\$?\s*(-?[\d,]*\.?\d+)", re.IGNORECASE))


def numbers(text: str | None) -> list[float]:
    """The numbers written in ``text``, in order (thousands separators understood)."""
    if not isinstance(text, str):
        return []
    out = []
    for match in _NUMBER.finditer(text.replace("$", " ").replace("\u2212", "-")):
        try:
            out.append(float(match.group().replace(",", "")))
        except ValueError:
            continue
    return out


@dataclass(frozen=True)
class FinalAnswer:
    """What an answer states as its result: ``value`` (None: no number at all), ``marked`` (stated
    in a final-answer format: ``#### 18``, ``\\boxed{18}``, "the answer is 18") and ``is_last``
    (it is also the last number written, as GSM8K-style graders read answers)."""

    value: float | None
    marked: bool
    is_last: bool


def final_answer(text: str | None, written: Sequence[float] | None = None) -> FinalAnswer:
    """The stated result of an answer: the number after a final-answer marker, else its last
    number (``written``: ``numbers(text)``, when already known)."""
    written = numbers(text) if written is None else written
    last = written[-1] if written else None
    for pattern in _MARKED:
        hits = pattern.findall(text) if isinstance(text, str) else []
        value = _number(hits[-1]) if hits else None
        if value is not None:
            return FinalAnswer(value, True, last is not None and math.isclose(value, last, abs_tol=1e-9))
    return FinalAnswer(last, False, last is not None)


def _number(token: str) -> float | None:
    try:
        return float(token.replace(",", ""))
    except ValueError:
        return None


# --- refusal and hedging ----------------------------------------------------------------------

_HEDGES = {
    "refusal": r"\b(?:i can(?:no|['’])t|i am unable|i['’]m unable|i won['’]t|as an ai)\b",
    "cannot be determined": r"cannot be determined|can['’]t be determined|not enough information|"
                            r"insufficient information|no solution|not possible|impossible",
    "unsure": r"\bi(?:['’]m| am) not (?:sure|certain)\b|\bunclear\b|\bambiguous\b|\bi think\b|\bprobably\b",
    "approximate": r"\bapproximately\b|\broughly\b|≈|\baround \$?\d",
    "assumption": r"\bassum(?:e|ing|ption)\b",
    "correction": r"\bi apologi[sz]e\b|\bsorry\b|\bmistake\b|\bcorrection\b|\bwait\b|\bactually\b",
}
HEDGE_KINDS = tuple(_HEDGES)
# one pass over the text: each kind is a named group of one alternation
_HEDGE_PATTERN = re.compile("|".join(f"(?P<h{i}>{pattern})" for i, pattern in enumerate(_HEDGES.values())))


def hedges(text: str | None) -> list[str]:
    """The kinds of refusal or hedging phrases in ``text`` (``refusal``, ``unsure``, …), in a fixed order."""
    if not isinstance(text, str):
        return []
    # lower-cased once: a case-insensitive alternation is several times slower
    found = {int(match.lastgroup[1:]) for match in _HEDGE_PATTERN.finditer(text.lower()) if match.lastgroup}
    return [HEDGE_KINDS[i] for i in sorted(found)]



# --- self-consistency ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Agreement:
    """How far ``n`` sampled answers agree: ``share`` of them giving the majority result
    ``answer`` (a number, or the normalised text of answers that state none; None when no sample
    answered), ``distinct`` results given."""

    share: float
    answer: float | str | None
    distinct: int
    n: int


_WORDS = re.compile(r"[^\w]+")


def _vote(text: str | None) -> float | str | None:
    """What one sample answers: its final number, else its text lower-cased to words ("Positive."
    and "positive" agree), None for an empty or failed answer."""
    value = final_answer(text).value
    if value is not None:
        return round(value, 6)
    words = _WORDS.sub(" ", text.lower()).strip() if isinstance(text, str) else ""
    return words or None


def agreement(texts: Sequence[str | None]) -> Agreement:
    """Self-consistency of sampled answers: the majority result's share of all samples (a failed
    or empty answer votes for nothing but still counts in the total). A result is the final number
    an answer states, or — for answers without numbers, such as labels — its words."""
    votes_in_order = [v for v in map(_vote, texts) if v is not None]
    if not votes_in_order:
        return Agreement(0.0, None, 0, len(texts))
    votes = Counter(votes_in_order)
    # ties go to the result given first
    answer = max(votes, key=lambda value: (votes[value], -votes_in_order.index(value)))
    return Agreement(votes[answer] / len(texts), answer, len(votes), len(texts))
