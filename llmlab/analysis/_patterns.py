"""Regular expressions given by a user (a ``scoring.regex(pattern)`` check, a saved policy's
accept rule or verifier check) compiled once and refused when they can backtrack catastrophically
on a model's answer.

Python's ``re`` backtracks: a pattern in which one run of text can be split between quantifiers
in many ways takes exponential or high-polynomial time on an answer that almost matches
(``^(a+)+$`` on 30 ``a``'s and a ``!`` takes seconds; ``\\s*\\s*x`` on 2,000 spaces, 18 s). Such
a check would stall a live route, so it is refused before anything is sent, with the fix. The
patterns refused are the ambiguous forms:

* a repeat inside an unbounded repeat (``(a+)+``, ``(\\w+\\s?)*``), unless each turn of the
  outer one must pass a character the inner one cannot take (``(\\d+,)+`` is fine);
* an alternation inside an unbounded repeat whose branches can start alike (``(a|ab)+``);
* two unbounded repeats that can take the same characters with nothing required between them
  (``\\s*\\$?\\s*``, ``\\d+\\.?\\d*``).

Possessive repeats (``\\d++``) and atomic groups (``(?>…)``) never give characters back and are
always accepted. What remains is at most quadratic (a leading repeat retried at each start), which
the checks bound by reading at most :data:`~llmlab.analysis._checks.REGEX_CHARS` characters.
"""
from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from typing import Any

from ..base._errors import InputError

__all__ = ["compile_pattern", "backtracking_risk"]

_sre: Any = importlib.import_module("re._parser")     # the stdlib's own parse of a pattern
_c: Any = importlib.import_module("re._constants")
_REPEATS = (_c.MAX_REPEAT, _c.MIN_REPEAT)
# a bounded repeat longer than this behaves like an unbounded one
_LONG = 16
# representative characters: each character class is known by which of these it matches
_PROBES = "05aZzé_ \t\n\r.,-+*/()#$%:;!?'\"<>=[]{}\\|`~^&@中"


def compile_pattern(pattern: Any, flags: int, what: str) -> re.Pattern:
    """``pattern`` compiled, or a one-line InputError when it is not a valid regex or can
    backtrack catastrophically (``what`` names where it came from)."""
    if not isinstance(pattern, str):
        raise InputError(f"{what}: a pattern is a string, not {type(pattern).__name__}")
    if isinstance(flags, bool) or not isinstance(flags, int):
        raise InputError(f"{what}: flags are re flags (re.IGNORECASE | re.MULTILINE), not {flags!r}")
    try:
        compiled = re.compile(pattern, flags)
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        raise InputError(f"{what}: {pattern[:60]!r} is not a valid regular expression ({exc})") from None
    risk = backtracking_risk(compiled)
    if risk:
        raise InputError(f"{what}: {pattern[:60]!r} can backtrack catastrophically on an answer ({risk}); "
                         "make the inner repeat possessive (\\d++, \\s*+) or the group atomic ((?>...))")
    return compiled


def backtracking_risk(compiled: re.Pattern) -> str:
    """Why ``compiled`` can take exponential or high-polynomial time, or "" when it cannot."""
    tree = _sre.parse(compiled.pattern, compiled.flags & ~re.DEBUG)
    probes = _PROBES + "".join(sorted(set(_literals(tree))))
    return _Scan(probes, bool(compiled.flags & re.IGNORECASE)).sequence(list(tree), top=True)


def _literals(items: Iterable) -> Iterable[str]:
    """Every literal character of a parsed pattern (probed too: a class of one rare character)."""
    for op, av in items:
        if op in (_c.LITERAL, _c.NOT_LITERAL):
            yield chr(av)
        elif op == _c.RANGE:
            yield from (chr(av[0]), chr(av[1]))
        elif op == _c.IN:
            yield from _literals(av)
        else:
            for part in _parts(op, av):
                yield from _literals(part)


def _parts(op: Any, av: Any) -> list[list]:
    """The sub-patterns of one node."""
    if op in (*_REPEATS, _c.POSSESSIVE_REPEAT):
        return [list(av[2])]
    if op == _c.SUBPATTERN:
        return [list(av[3])]
    if op in (_c.ASSERT, _c.ASSERT_NOT):
        return [list(av[1])]
    if op == _c.ATOMIC_GROUP:
        return [list(av)]
    if op == _c.BRANCH:
        return [list(branch) for branch in av[1]]
    if op == _c.GROUPREF_EXISTS:
        return [list(b) for b in av[1:] if b is not None]
    return []


class _Scan:
    def __init__(self, probes: str, fold: bool) -> None:
        self.probes, self.fold = probes, fold

    # --- what a node can take ------------------------------------------------------------
    def _one(self, op: Any, av: Any, ch: str) -> bool:
        if op == _c.LITERAL:
            return ch == chr(av) or (self.fold and ch.casefold() == chr(av).casefold())
        if op == _c.NOT_LITERAL:
            return not self._one(_c.LITERAL, av, ch)
        if op == _c.ANY:
            return True
        if op == _c.RANGE:
            return av[0] <= ord(ch) <= av[1] or (self.fold and any(
                av[0] <= ord(c) <= av[1] for c in (ch.lower(), ch.upper())))
        if op == _c.CATEGORY:
            probe = {_c.CATEGORY_DIGIT: r"\d", _c.CATEGORY_NOT_DIGIT: r"\D", _c.CATEGORY_SPACE: r"\s",
                     _c.CATEGORY_NOT_SPACE: r"\S", _c.CATEGORY_WORD: r"\w", _c.CATEGORY_NOT_WORD: r"\W"}.get(av)
            return probe is None or re.fullmatch(probe, ch) is not None
        if op == _c.IN:
            negate = bool(av) and av[0][0] == _c.NEGATE
            found = any(self._one(o, a, ch) for o, a in (av[1:] if negate else av))
            return found != negate
        return False

    def takes(self, items: list) -> frozenset[str]:
        """The probe characters a sub-pattern can consume anywhere."""
        out: set[str] = set()
        for op, av in items:
            if op in (_c.LITERAL, _c.NOT_LITERAL, _c.ANY, _c.IN, _c.CATEGORY):
                out.update(ch for ch in self.probes if self._one(op, av, ch))
            elif op not in (_c.ASSERT, _c.ASSERT_NOT):
                for part in _parts(op, av):
                    out |= self.takes(part)
        return frozenset(out)

    def _first(self, items: list) -> frozenset[str]:
        """The probe characters a sub-pattern can start with (over-approximated)."""
        out: set[str] = set()
        for op, av in items:
            if op in (_c.LITERAL, _c.NOT_LITERAL, _c.ANY, _c.IN, _c.CATEGORY):
                out |= self.takes([(op, av)])
            elif op not in (_c.ASSERT, _c.ASSERT_NOT):
                for part in _parts(op, av):
                    out |= self._first(part)
            if not _nullable(op, av):
                break
        return frozenset(out)

    # --- the ambiguous forms -------------------------------------------------------------
    def sequence(self, items: list, top: bool = False) -> str:
        """The first ambiguous form in a sequence of nodes (recursing into each), or ""."""
        # the backtracking repeats since the last node that stops them: what each can still take,
        # and the required nodes met since
        open_sets: list[tuple[frozenset[str], list[frozenset[str]]]] = []
        for at, (op, av) in enumerate(items):
            for part in _parts(op, av):
                why = self.sequence(part)
                if why:
                    return why
            if op in _REPEATS and av[1] >= 2:
                why = self._repeat_body(list(av[2]))
                if why:
                    return why
            backtracks = op not in (_c.POSSESSIVE_REPEAT, _c.ATOMIC_GROUP) and _unbounded([(op, av)])
            taken = self.takes([(op, av)])
            # a repeat that ends the pattern never has to give characters back to fail later; one
            # after a required node it cannot take (`.*return\s+`) starts only after that node, so
            # its runs do not overlap and the two repeats cost a linear scan, not a product
            if backtracks and not (top and at == len(items) - 1) and any(
                    self._first([(op, av)]) & earlier and not any(need and not need & taken for need in met)
                    for earlier, met in open_sets):
                return "two repeats can take the same characters with nothing required between them"
            if not _nullable(op, av):        # a required node stops the repeats that cannot take it
                open_sets = [(earlier, [*met, taken]) for earlier, met in open_sets if earlier & taken]
            if backtracks:
                open_sets.append((taken, []))
        return ""

    def _repeat_body(self, body: list) -> str:
        """Why one turn of a repeat over ``body`` can be split in many ways, or ""."""
        body = _flat(body)
        # nodes every turn must pass that hold no repeat: a turn's end is found where they are
        required = [self.takes([node]) for node in body if not _nullable(*node) and not _inner_repeats([node])]
        for inner in _inner_repeats(body):
            taken = self.takes(list(inner[2]))
            if not any(need and not need & taken for need in required):
                return "a repeat inside a repeat"
        for op, av in _walk(body):
            if op == _c.BRANCH:
                firsts = [self._first(list(b)) for b in av[1]]
                empty = [all(_nullable(*node) for node in b) for b in av[1]]
                if sum(empty) > 1 or any(a & b for i, a in enumerate(firsts) for b in firsts[i + 1:]):
                    return "alternatives inside a repeat that can match alike"
        first = self._first(body)
        if not any(need and not need & first for need in required) and any(
                _nullable(*node) and self.takes([node]) & first for node in body):
            return "a repeat whose turns can end early and start again alike"
        return ""


def _flat(items: list) -> list:
    """A sequence with its groups' contents spliced in (a group is a sequence of its own nodes)."""
    out: list = []
    for op, av in items:
        out.extend(_flat(list(av[3])) if op == _c.SUBPATTERN else [(op, av)])
    return out


def _walk(items: list) -> Iterable[tuple[Any, Any]]:
    """Every node of a sub-pattern, except inside possessive repeats and atomic groups."""
    for op, av in items:
        yield op, av
        if op not in (_c.POSSESSIVE_REPEAT, _c.ATOMIC_GROUP):
            for part in _parts(op, av):
                yield from _walk(part)


def _inner_repeats(body: list) -> list[Any]:
    return [av for op, av in _walk(body) if op in _REPEATS and av[1] > 1]


def _unbounded(items: list) -> bool:
    """Whether a sub-pattern has a backtracking repeat that can take a long run."""
    return any(op in _REPEATS and av[1] > _LONG for op, av in _walk(items))


def _nullable(op: Any, av: Any) -> bool:
    """Whether a node can match the empty string (over-approximated: unsure counts as optional)."""
    if op in (*_REPEATS, _c.POSSESSIVE_REPEAT):
        return av[0] == 0 or all(_nullable(*node) for node in av[2])
    if op in (_c.SUBPATTERN, _c.ATOMIC_GROUP):
        return all(_nullable(*node) for node in _parts(op, av)[0])
    if op == _c.BRANCH:
        return any(all(_nullable(*node) for node in branch) for branch in av[1])
    return op in (_c.AT, _c.ASSERT, _c.ASSERT_NOT, _c.GROUPREF, _c.GROUPREF_EXISTS)
