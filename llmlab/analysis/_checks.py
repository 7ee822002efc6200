"""Checks that read an answer without knowing the right one: its own arithmetic re-computed, a
final answer stated, refusal or hedging phrases, and the agreement of several sampled answers.

Pure functions of text (no model calls, no ``expected``), so a router may use them before it
decides to escalate: as features of a :class:`~llmlab.routing.Verifier` or, wrapped as scorers
(``scoring.arithmetic()``, ``scoring.final_answer()``, ``scoring.no_hedging()``), as a
:class:`~llmlab.routing.Cascade`'s ``accept``.

**Arithmetic.** Claims written as ``expression = value`` (``16 - 3 = 13``, chains such as
``235 / 3 = 78.33``, GSM8K's calculator annotations ``<<9*2=18>>``, list items ``- 2 * 5 = 10``,
``1. 3 + 4 = 7``, bold or LaTeX-delimited claims) are re-computed exactly (fractions, not floats)
with a small recursive-descent parser of numbers, ``+ - * / ( ) %`` and the usual spellings
(``×``, ``x`` between numbers, ``÷``, ``$``, thousands separators) — never ``eval``. A claim
counts as right when it is the exact value rounded to the precision it is written with
(``8 / 3 = 2.67``; a whole number may be a rounded one; ``10 / 3 = 3.4`` is wrong). Anything the
parser cannot read with certainty — a variable, a word inside the expression, unbalanced
brackets, nesting deeper than :data:`MAX_DEPTH`, a number of more than :data:`MAX_DIGITS` digits,
``a - b%`` (a discount or a subtraction?) — is skipped, not judged.

**Cost.** Every pattern here is linear in the text (no nested or adjacent quantifiers that could
backtrack), and a text longer than :data:`MAX_CHARS` is read as its first and last halves of
that many characters: an answer check costs at most a few milliseconds, whatever the model wrote.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

from ..base._errors import InputError

__all__ = ["Equation", "equations", "evaluate", "FinalAnswer", "final_answer", "numbers", "hedges",
           "HEDGE_KINDS", "Agreement", "agreement", "readable", "MAX_CHARS", "REGEX_CHARS", "MAX_DEPTH",
           "MAX_DIGITS", "MAX_CLAIMS", "MAX_EXPRESSION"]

# An answer is read up to this many characters (its first and last halves beyond): a bound on the
# time any check takes, far above real answers (a GSM8K solution is ~1,000).
MAX_CHARS = 50_000
# At most this many claims are re-computed per answer, each at most this long (GSM8K answers make
# fewer than 20, each a few dozen characters): exact arithmetic costs microseconds per claim, and
# tens of thousands of "1 + 1 = 2" would still add up.
MAX_CLAIMS = 200
MAX_EXPRESSION = 500
# Brackets nested deeper than this, or a number with more digits, is not judged (the parser is
# recursive; exact arithmetic on huge numbers costs time without telling anything about the answer).
MAX_DEPTH = 40
MAX_DIGITS = 30
_MAX_BITS = 1000           # numerator/denominator size of an exact intermediate value (< float's range)


# A regex of the user's reads less: a pattern that passes compile_pattern (analysis._patterns) may
# still retry a leading repeat at every start, quadratic in the text (about a second at this size).
REGEX_CHARS = 4_000


def readable(text: str, limit: int = MAX_CHARS) -> str:
    """``text`` as the checks read it: whole up to ``limit`` characters, else its first and last halves."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return text[:half] + "\n" + text[-half:]


_NUM = re.compile(r"\d+(?:\.\d+)?|\.\d+")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_ANNOTATION = re.compile(r"<<([^<>]*)>>")
_TIMES_X = re.compile(r"(?<=[\d)%])\s*+[xX]\s*+(?=[\d(.])")
_HAS_OPERATOR = re.compile(r"[\d)%]\s*+[-+*/]\s*+[\d(.\-]")
_EXPRESSION_CHARS = frozenset("0123456789.,$€£% \t\r\n+-*/xX×÷·()\\−")
# the left side of "=" stops at a comma: thousands separators are gone once normalised, so a comma
# left is prose ("So, 3 + 4 = 7", "costs 3, 4 + 5 = 9")
_LEFT_CHARS = _EXPRESSION_CHARS - {","}
_LEADING_EXPRESSION = re.compile("[" + re.escape("".join(sorted(_EXPRESSION_CHARS))) + "]++")
_OPERATORS = "*/+xX×÷·\\"
# a list item's marker at the start of a line ("- ", "* ", "• ", "1. ", "2) "), and a step's number
# before its expression ("Step 2. 6 * 4 = 24"): labels, not operands
_BULLET = re.compile(r"^[ \t]*+(?:[-*+•]|\(?\d{1,3}[.)])[ \t]++")
_LABEL = re.compile(r"^\d{1,3}[.)]\s++(?=[\d(.\-+])")
_DISCOUNT = re.compile(r"[-+]\s*+[\d.]++\s*+%")     # "20 - 25%": 20 less a quarter, or minus 0.25?


class NotArithmetic(ValueError):
    """An expression the checker will not judge (not a parse it is sure of)."""


def _normalise(text: str) -> str:
    text = text.replace("\\*", "*").replace("\\times", "*").replace("\\cdot", "*").replace("\\div", "/")
    for delimiter in ("\\(", "\\)", "\\[", "\\]", "**", "__"):        # LaTeX and Markdown emphasis
        text = text.replace(delimiter, " ")
    text = text.replace("×", "*").replace("·", "*").replace("÷", "/").replace("−", "-")
    text = text.replace("$", "").replace("€", "").replace("£", "")
    text = _THOUSANDS.sub("", text)
    return _TIMES_X.sub("*", text)       # "8 x 5": x between operands multiplies


# one token at a time: optional spaces, then (a tight fraction "1/2",) a number or an operator
_TOKEN = re.compile(r"\s*+(?:(\d+(?:\.\d+)?|\.\d+)|([-+*/()%]))")
_TOKEN_TIGHT = re.compile(r"\s*+(?:(?<![/\d])(\d+)/(\d+)(?![\d./])|(\d+(?:\.\d+)?|\.\d+)|([-+*/()%]))")


def _exact(token: str) -> Fraction:
    """The exact value of a written number ("12.50" is 25/2)."""
    whole, _, decimals = token.partition(".")
    if len(whole) + len(decimals) > MAX_DIGITS:
        raise NotArithmetic("a number too long to judge")
    return Fraction(int(whole + decimals or "0"), 10 ** len(decimals))


def _tokens(text: str, tight_fractions: bool) -> list[tuple[str, Fraction]]:
    """(kind, value) tokens of normalised text; ``tight_fractions``: in prose "7 / 1/2" means 7 / (1/2)."""
    out: list[tuple[str, Fraction]] = []
    pattern, at, end = (_TOKEN_TIGHT if tight_fractions else _TOKEN), 0, len(text.rstrip())
    while at < end:
        match = pattern.match(text, at)
        if match is None:
            raise NotArithmetic(f"not arithmetic: {text[at:at + 10]!r}")
        groups = match.groups()
        if tight_fractions and groups[0] is not None:
            denominator = _exact(groups[1])
            if not denominator:
                raise NotArithmetic("division by zero")
            out.append(("num", _exact(groups[0]) / denominator))
        elif groups[-2] is not None:
            out.append(("num", _exact(groups[-2])))
        else:
            out.append((groups[-1], Fraction(0)))
        at = match.end()
    return out


def _bounded(value: Fraction) -> Fraction:
    if value.numerator.bit_length() > _MAX_BITS or value.denominator.bit_length() > _MAX_BITS:
        raise NotArithmetic("a value too large to judge")
    return value


class _Parser:
    """expr := term (('+'|'-') term)* ; term := factor (('*'|'/') factor)* ;
    factor := ('+'|'-')* (NUMBER ['%'] | '(' expr ')')  — brackets at most MAX_DEPTH deep."""

    def __init__(self, tokens: list[tuple[str, Fraction]]) -> None:
        self.tokens, self.at, self.depth = tokens, 0, 0

    def _peek(self) -> str | None:
        return self.tokens[self.at][0] if self.at < len(self.tokens) else None

    def _take(self) -> tuple[str, Fraction]:
        self.at += 1
        return self.tokens[self.at - 1]

    def expression(self) -> Fraction:
        value = self._term()
        while self._peek() in ("+", "-"):
            sign = self._take()[0]
            value = _bounded(value + self._term() if sign == "+" else value - self._term())
        return value

    def _term(self) -> Fraction:
        value = self._factor()
        while self._peek() in ("*", "/"):
            operator = self._take()[0]
            right = self._factor()
            if operator == "/" and right == 0:
                raise NotArithmetic("division by zero")
            value = _bounded(value * right if operator == "*" else value / right)
        return value

    def _factor(self) -> Fraction:
        negative, signs = False, 0
        while self._peek() in ("+", "-"):            # signs read in a loop, not by recursion
            negative ^= self._take()[0] == "-"
            signs += 1
        if signs > 2:
            raise NotArithmetic("a run of signs")
        kind = self._peek()
        if kind == "num":
            value = self._take()[1]
            if self._peek() == "%":
                self._take()
                value /= 100
        elif kind == "(":
            self._take()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise NotArithmetic("brackets nested too deeply to judge")
            value = self.expression()
            if self._peek() != ")":
                raise NotArithmetic("missing )")
            self._take()
            self.depth -= 1
        else:
            raise NotArithmetic(f"unexpected {kind}")
        return -value if negative else value


def evaluate(text: str, tight_fractions: bool = False) -> float:
    """The value of an arithmetic expression (numbers, + - * / ( ) %), never through ``eval``."""
    return float(_value(_normalise(text), tight_fractions))


def _value(text: str, tight_fractions: bool) -> Fraction:
    """The exact value of text already normalised."""
    tokens = _tokens(text, tight_fractions)
    if not tokens:
        raise NotArithmetic("empty")
    parser = _Parser(tokens)
    value = parser.expression()
    if parser.at != len(tokens):
        raise NotArithmetic("not one expression")
    return value


@dataclass(frozen=True)
class Equation:
    """One ``expression = value`` claim of an answer, re-computed (``computed``/``claimed``: the
    exact values as floats; ``holds`` is judged on the exact ones)."""

    text: str
    computed: float
    claimed: float
    holds: bool
    source: str   # "annotation" (<<…=…>>) or "text"


def _decimals(text: str) -> int:
    found = list(_NUM.finditer(text))
    last = found[-1].group() if found else ""
    return len(last.split(".")[1]) if "." in last else 0


def _matches(computed: Fraction, claimed: Fraction, claimed_text: str) -> bool:
    """The exact value rounded to the precision the claim is written with (``8/3 = 2.67``,
    ``8/3 = 3``, ``0.6 = 60%``): within half a unit of its last written place."""
    places = _decimals(claimed_text)
    # a whole number may be a rounded one (unless the value is whole: then it must be exact)
    half = Fraction(1, 2 * 10 ** places) if places or computed.denominator != 1 else Fraction(0)
    # "60%" reads 0.6 (its unit is 1/100 of the written one) or, as in "0.6 * 100 = 60%", 60
    readings = [(claimed, half / 100), (claimed * 100, half)] if "%" in claimed_text else [(claimed, half)]
    return any(abs(computed - value) <= tolerance for value, tolerance in readings)


def _left_side(chunk: str, before: str) -> str | None:
    """The expression left of ``=``, or None when it may be the tail of a longer one."""
    if before[-1:].isalnum() and chunk[:1] not in " \t\r\nxX":
        return None                      # glued to a word or a number ("1e308*10"): not all of it
    text = chunk.strip()
    if before[-1:].isalpha() or text[:1] in "xX":     # "15 floors * 8": a word inside the expression
        text = text.lstrip(" \t\r\nxX")
    text = _LABEL.sub("", text, count=1)
    if not text or text[:1] in _OPERATORS + ")" or (before.rstrip()[-1:].isalpha() and text[:1] == "-"):
        return None
    # "(3 + 4 = 7)": opening brackets of the sentence around the claim, not of the expression
    surplus, start = text.count("(") - text.count(")"), 0
    while surplus > 0 and text.startswith("(", start):
        start += 1
        surplus -= 1
        while text.startswith((" ", "\t", "\r", "\n"), start):
            start += 1
    text = text[start:].rstrip(" ,.")
    return text if text and surplus == 0 else None


def _right_side(chunk: str) -> tuple[str | None, bool]:
    """The value right of ``=`` and whether it runs on (``= 36 / 12 = 3``)."""
    text = chunk.strip().rstrip(" \t\r\n,.")   # the chunk holds expression characters only
    if text[-1:] in _OPERATORS + "-(":
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
    while at and text[at - 1] in _LEFT_CHARS:
        at -= 1
    return at


def _claim(lhs: str, rhs: str, runs_on: bool, source: str) -> Equation | None:
    """One claim re-computed, or None when it is not judged."""
    try:
        computed, claimed = _value(lhs, True), _value(rhs, True)
    except NotArithmetic:
        return None
    holds = _matches(computed, claimed, rhs)
    if not holds and runs_on:        # "6 x 6 = 36 / 12 = 3": the first number is the claim
        first = _NUM.search(rhs)
        holds = first is not None and _matches(computed, _exact(first.group()), first.group())
    if not holds and _DISCOUNT.search(lhs):
        return None                  # "$20 - 25% = $15" is right as a discount: not judged
    return Equation(f"{lhs} = {rhs}", float(computed), float(claimed), holds, source)


def _chain(parts: list[str], source: str, room: int) -> list[Equation]:
    """The claims of ``a = b = c`` (normalised text split at its ``=``), link by link (at most ``room``)."""
    out: list[Equation] = []
    for left, right in zip(parts[:-1], parts[1:], strict=True):
        if len(out) >= room:
            break
        start = _expression_start(left)
        head = _LEADING_EXPRESSION.match(right)
        if start == len(left) or not head:
            continue
        lhs = _left_side(left[start:], left[max(start - 2, 0):start])
        rhs, runs_on = _right_side(head.group())
        if not lhs or not rhs or len(lhs) + len(rhs) > MAX_EXPRESSION or not _HAS_OPERATOR.search(lhs):
            continue
        try:
            found = _claim(lhs, rhs, runs_on, source)
        except NotArithmetic:        # the run-on's first number too long to judge
            found = None
        if found is not None:
            out.append(found)
    return out


def equations(text: str | None) -> list[Equation]:
    """Every ``expression = value`` claim in ``text`` that can be re-computed with certainty."""
    if not isinstance(text, str):
        return []
    text = readable(text)
    found: list[Equation] = []
    for match in _ANNOTATION.finditer(text):
        body = match.group(1)
        if "=" in body:
            found.extend(_chain(_normalise(body).split("="), "annotation", MAX_CLAIMS - len(found)))
        if len(found) >= MAX_CLAIMS:
            return found
    prose = _ANNOTATION.sub("", text)          # "= $<<9*2=18>>18" reads "= $18"
    for line in re.split(r"[\n;]|(?<=[a-z])\.\s", prose):
        if "=" in line:                         # normalised once: every step below reads it as is
            line = _normalise(_BULLET.sub("", line, count=1))
            if _HAS_OPERATOR.search(line):
                found.extend(_chain(line.split("="), "text", MAX_CLAIMS - len(found)))
            if len(found) >= MAX_CLAIMS:
                break
    return found


# --- the final answer -------------------------------------------------------------------------

_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|(?<![\w.])-?\.\d+")
# possessive runs (*+, ++): whitespace, digits and commas are taken once and never given back, so
# "####" or "the answer is" followed by a long run of spaces costs one pass, not a cubic search
_MARKED_NUMBER = r"(-?(?:\d[\d,]*+(?:\.\d++)?|\.\d++))"
_MARKED = (re.compile(r"####\s*+(?:\$\s*+)?" + _MARKED_NUMBER),
           re.compile(r"\\boxed\{\s*+(?:\$\s*+)?" + _MARKED_NUMBER),
           re.compile(r"(?:final answer|the answer)\s*+(?:is|:|=)\s*+:?\s*+(?:\$\s*+)?" + _MARKED_NUMBER,
                      re.IGNORECASE))


def numbers(text: str | None) -> list[float]:
    """The numbers written in ``text``, in order (thousands separators understood)."""
    if not isinstance(text, str):
        return []
    out = []
    for match in _NUMBER.finditer(readable(text).replace("$", " ").replace("\u2212", "-")):
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
    text = readable(text) if isinstance(text, str) else None
    for pattern in _MARKED:
        hits = pattern.findall(text) if text is not None else []
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
    found = {int(match.lastgroup[1:]) for match in _HEDGE_PATTERN.finditer(readable(text).lower())
             if match.lastgroup}
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
    words = _WORDS.sub(" ", readable(text).lower()).strip() if isinstance(text, str) else ""
    return words or None


def agreement(texts: Sequence[str | None]) -> Agreement:
    """Self-consistency of sampled answers: the majority result's share of all samples (a failed
    or empty answer votes for nothing but still counts in the total). A result is the final number
    an answer states, or — for answers without numbers, such as labels — its words."""
    if isinstance(texts, (str, bytes, Mapping)) or not isinstance(texts, Iterable) or not hasattr(texts, "__len__"):
        raise InputError(f"agreement() takes the sampled answers as a list of texts, not a {type(texts).__name__} "
                         "(one answer agrees with itself)")
    votes_in_order = [v for v in map(_vote, texts) if v is not None]
    if not votes_in_order:
        return Agreement(0.0, None, 0, len(texts))
    votes = Counter(votes_in_order)
    # ties go to the result given first
    answer = max(votes, key=lambda value: (votes[value], -votes_in_order.index(value)))
    return Agreement(votes[answer] / len(texts), answer, len(votes), len(texts))
