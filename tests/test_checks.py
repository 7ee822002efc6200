"""Checks that read the answer alone: its arithmetic re-computed without eval, a final answer
stated, refusal/hedging phrases, the agreement of sampled answers — as functions, as scorers and as
a cascade's saved accept rule."""
from __future__ import annotations

import json
import time

import pytest

from llmlab import InputError, routing, scoring
from llmlab.analysis._checks import agreement, equations, evaluate, final_answer, hedges, numbers


@pytest.mark.parametrize(("text", "holds"), [
    ("3 * 4 = 12", True), ("$5 + $7 = $12", True), ("12/4=3", True), ("13 - 4 = 10", False),
    ("8 / 3 = 2.67", True),                              # to the precision written
    ("8 / 3 = 3", True),                                 # a whole number may be rounded
    ("1,150 \\* 50 = 57,500", True), ("8 x $5 x 60% = $24", True),
    ("(80 + 55 + 100) / 3 = 235 / 3 = 78.33", True),     # a chain, link by link
    ("<<32/2*3/4=9.6>>", False),                          # GSM8K's calculator annotation
    ("so 3 x 4 = 13 apples", False), ("2 + 2 = 5", False),
    ("6 x 6 = 36 / 12 = 3 pizzas", True),                # a run-on chain: the first number is the claim
    ("(12 / 20) x 100 = 60%", True), ("remove 7 / 1/2 = 14 toys", True),
    ("x = 86 / 3 ≈ 28.67", None), ("x * 4 + 8 = 40", None), ("3 * 45 = 1 * x", None),   # not judged
    ("100 yards * 2 * 15 = 3000 yards", None),           # a word inside the expression: skipped
    ("no maths here", None),
])
def test_arithmetic_is_recomputed_or_left_alone(text, holds):
    found = equations(text)
    assert (None if not found else all(e.holds for e in found)) is holds


def test_expressions_are_parsed_never_evaluated_as_python():
    for hostile in ("__import__('os').system('echo hi') = 0", "2**100000 = 1", "[1]*9 = 9", "1e308*10 = 1"):
        assert equations(hostile) == []
    with pytest.raises(ValueError):
        evaluate("__import__('os')")
    assert evaluate("(2 + 3) * 4 - 10 / 4") == pytest.approx(17.5) and evaluate("50%") == 0.5
    assert equations("10 / 0 = 3") == [] and equations(None) == []


def test_final_answer_and_numbers():
    assert numbers("I had $1,200 and spent -3.5 on 2024-01-05") == [1200.0, -3.5, 2024.0, 1.0, 5.0]
    stated = final_answer("16 - 3 = 13 eggs, 13 * 2 = 26\n#### 26")
    assert (stated.value, stated.marked, stated.is_last) == (26.0, True, True)
    assert final_answer("#### 18 or maybe 20").is_last is False
    assert final_answer("The answer is: $1,250.").value == 1250.0 and final_answer("\\boxed{7}").marked
    unmarked = final_answer("she has 9 left")
    assert (unmarked.value, unmarked.marked) == (9.0, False) and final_answer("none").value is None


def test_hedges_name_their_kind():
    assert hedges("I’m not sure, but approximately 5 — sorry, assuming 2 per box") == \
        ["unsure", "approximate", "assumption", "correction"]
    assert hedges("I cannot answer that.") == ["refusal"]
    assert hedges("There is not enough information.") == ["cannot be determined"]
    assert hedges("#### 42") == [] and hedges(None) == []


def test_agreement_is_the_majority_final_answers_share():
    found = agreement(["so #### 18", "The answer is 18", "#### 20", "I don't know"])
    assert (found.share, found.answer, found.distinct, found.n) == (0.5, 18.0, 3, 4)
    assert agreement(["#### 1", "#### 2"]).answer == 1.0            # a tie goes to the first stated
    labels = agreement(["Positive.", "positive", "negative", None])      # answers without numbers: their words
    assert (labels.share, labels.answer, labels.distinct) == (0.5, "positive", 2)
    assert agreement([None, "", "  "]).share == 0.0 and agreement([]).n == 0
    assert scoring.agreement(["#### 3", "#### 3.0", "#### 3"]) == 1.0


def test_scorers_need_no_expected_answer_and_say_why():
    wrong, right = "13 - 4 = 10\n#### 10", "13 - 4 = 9\n#### 9"
    for scorer in (scoring.arithmetic(), scoring.final_answer(), scoring.no_hedging()):
        assert scorer.uses_expected is False
    assert scoring.arithmetic().check(wrong, None) == (0.0, "1 of 1 equations wrong: '13 - 4 = 10' is 9")
    assert scoring.arithmetic().check(right, None)[0] == 1.0
    assert scoring.arithmetic().check("hello", None) == (1.0, "no equation to re-compute")
    assert scoring.final_answer().check("#### 9", None) == (1.0, "final answer 9")
    assert scoring.final_answer().check("#### 9 or 10", None)[1] == "final answer 9 is not the last number written"
    assert scoring.final_answer().check("nine", None)[0] == 0.0
    assert scoring.no_hedging().check("maybe, I think 4", None) == (0.0, "hedges: unsure")
    assert scoring.from_spec("arithmetic").name == "arithmetic"
    assert scoring.from_spec({"kind": "no_hedging"}).check(None, None)[0] == 1.0


def test_a_cascade_accepts_on_a_check_and_saves_it(tmp_path):
    cascade = routing.Cascade(["weak", "strong"], accept="arithmetic")
    loaded = routing.load_policy(cascade.save(tmp_path / "c.json"))
    for text, kept in (("2 + 2 = 4", True), ("2 + 2 = 5", False)):
        assert cascade.decide("q").accept(text) is kept and loaded.decide("q").accept(text) is kept
    with pytest.raises(InputError, match="expected answer"):
        routing.Cascade(["weak", "strong"], accept=scoring.numeric())


# --- hostile answers: every check is linear, bounded and never raises ----------------------------

_PREFIXES = ("", "####", "#### $", "\\boxed{", "the answer is", "Final answer:", "The answer =", "<<", "<<1+",
             "(", "1 + (", "=", "1 + 1 =", "- ", "1. ", "**", "```json\n", "{\"a\": ", "[", "$", "\\(")
_FILLERS = (" ", "\n", "\t", ",", ".", "1", "(", ")", "-", "= ", "#", "<", "x ", "% ", "1,", "1.", "+ -", "a",
            "1 + ", "( ", "<<1=1>>", "[", "{\"a\":")


def _degenerate(length: int, shapes=None):
    for prefix, filler in shapes or [(p, f) for p in _PREFIXES for f in _FILLERS]:
        yield prefix + filler * (length // len(filler)) + "x"


# the shapes that made the old patterns super-linear, and their neighbours
_KNOWN = [("####", " "), ("####", "\n"), ("#### $", " "), ("\\boxed{", " "), ("the answer is", " "),
          ("the answer is", "\n"), ("Final answer:", "\t"), ("The answer =", " "), ("####", ","), ("", "1,"),
          ("1 + 1 =", " "), ("1 + 1 =", "= "), ("(", "( "), ("1 + (", "("), ("", "1 + "), ("", "<<1=1>>"),
          ("<<1+", ")"), ("```json\n", " "), ("```json\n", "\n"), ("", "+ -"), ("- ", "-"), ("", "x "),
          ("", "1."), ("=", "% "), ("{\"a\": ", "{\"a\":"), ("[", "["), ("**", " ")]


def _took(text: str) -> float:
    """CPU seconds (this thread's) every answer check takes on ``text``: other processes' load does not count."""
    import time

    from llmlab.routing._answer_features import features

    checks = (scoring.arithmetic(), scoring.final_answer(), scoring.no_hedging(), scoring.json_valid(),
              scoring.regex(r"####\s*-?\d+"))
    started = time.thread_time()
    features(text, [{"response_text": text, "status": "ok"}])
    for check in checks:
        check.check(text, None)
    agreement([text, text[:-1]])
    return time.thread_time() - started


def _worst(texts) -> tuple[float, str]:
    return max((_took(text), text[:30]) for text in texts)


def test_every_answer_check_is_linear_on_degenerate_answers():
    """A backtracking regex or a quadratic scan takes seconds on 20k characters of one of these
    shapes (the old final-answer marker: 30 s on 800 newlines; a quadratic scan ≥ 4 s); linear
    checks take milliseconds. The bound is generous (a loaded machine), far below super-linear."""
    worst, text = _worst(_degenerate(20_000, _KNOWN))
    assert worst < 1.5, f"{worst:.2f} s on {text!r}…"


@pytest.mark.slow
def test_every_answer_check_is_linear_on_every_degenerate_shape():
    """Every prefix × filler (483 shapes), screened at 10k characters; the 24 slowest there are
    timed at 40k. A super-linear shape is among the slowest at 10k already (one that reached the
    bound at 40k would take ≥ 0.09 s there, above all but the slowest linear ones), so the bound at
    40k applies to every shape at a quarter of the cost of timing them all at 40k."""
    shapes = [(p, f) for p in _PREFIXES for f in _FILLERS]
    screened = sorted(((_took(next(_degenerate(10_000, [s]))), s) for s in shapes), reverse=True)
    worst, text = _worst(_degenerate(40_000, [s for _, s in screened[:24]]))
    assert worst < 1.5, f"{worst:.2f} s on {text!r}…"


def test_a_huge_answer_is_read_within_the_cap():
    import time

    from llmlab.analysis._checks import MAX_CHARS, readable
    text = "1 + 1 = 2\n" * 200_000 + "#### 7"            # 2 MB
    started = time.thread_time()
    assert final_answer(text).value == 7.0 and len(equations(text)) == 200    # MAX_CLAIMS
    assert time.thread_time() - started < 1.0
    assert len(readable(text)) == MAX_CHARS + 1 and readable("short") == "short"


@pytest.mark.parametrize("text", [
    "(" * 400 + "1" + ")" * 400 + " + 1 = 2", "1" + " -" * 1000 + " 1 = 0", "-" * 5000 + "1 + 1 = 2",
    "<<" + "(" * 600 + "2" + ")" * 600 + "*3=6>>6", "(" * 42 + "1" + ")" * 42 + " + 1 = 2",
    "9" * 400 + " * " + "9" * 400 + " = 1", "1." + "1" * 10_000 + " + 1 = 2",
    " * ".join(["99999999"] * 200) + " = 1", "2 * (3 * (4 * (5 * " * 50 + "1" + "))))" * 50 + " = 0",
])
def test_deep_or_huge_arithmetic_is_not_judged_never_a_traceback(text):
    from llmlab.analysis._checks import NotArithmetic

    assert equations(text) == []
    assert scoring.arithmetic().check(text, None) == (1.0, "no equation to re-compute")
    assert routing.Cascade(["weak", "strong"], accept="arithmetic").decide("q").accept(text) is True
    with pytest.raises(NotArithmetic):
        evaluate(text.split("=")[0].replace("<<", ""))


def test_moderate_nesting_is_still_judged():
    assert [e.holds for e in equations("(" * 30 + "2" + ")" * 30 + " * 3 = 6")] == [True]
    assert [e.holds for e in equations("- -3 + 4 = 1")] == [True]
    assert [e.holds for e in equations("(" * 20_000 + "1 + 1 = 2")] == [True]     # the sentence's brackets


@pytest.mark.parametrize(("text", "holds"), [
    # list items, steps, prose lead-ins, emphasis and LaTeX around a claim
    ("- 3 + 4 = 7", True), ("- 10 - 4 = 6", True), ("* 3 + 4 = 7", True), ("• 3 + 4 = 7", True),
    ("1. 3 + 4 = 7", True), ("2) 3 + 4 = 7", True), ("Costs:\n- 2 * 5 = 10\n- 10 + 3 = 13", True),
    ("**3 + 4 = 7**", True), ("\\(3 + 4 = 7\\)", True), ("\\[3 \\times 4 = 12\\]", True), ("So, 3 + 4 = 7", True),
    ("- 3 + 4 = 8", False), ("* 3 + 4 = 8", False), ("1. 3 + 4 = 8", False), ("1) 3 + 4 = 8", False),
    ("Step 2. 6 * 4 = 25", False), ("So, 3 + 4 = 8", False), ("First, 3 + 4 = 8 apples", False),
    ("**3 + 4 = 8**", False), ("\\(3 + 4 = 8\\)", False), ("  - **Total:** 3 \\cdot 4 = 13", False),
    ("-3 + 4 = 1", True), ("-3 + 4 = 7", False),                          # no space: a negative number
    # rounded to the written precision: half a unit of the last place, not a whole one
    ("10 / 3 = 3.33", True), ("10 / 3 = 3.3", True), ("10 / 3 = 3.4", False), ("100 / 7 = 14.3", True),
    ("100 / 7 = 14.2", False), ("2 / 3 = 0.67", True), ("2 / 3 = 0.6", False), ("1 / 8 = 0.125", True),
    ("1 / 3 = 33.3%", True), ("1 / 3 = 34%", False), ("7 / 2 = 4", True), ("7 / 2 = 3", True),
    # exact: integers beyond 2**53 and decimals that floats round
    ("123456789 * 987654321 = 121932631112635269", True), ("123456789 * 987654321 = 121932631112635270", False),
    ("9007199254740993 - 1 = 9007199254740992", True), ("9007199254740993 - 1 = 9007199254740993", False),
    ("0.1 + 0.2 = 0.3", True), ("0.1 * 3 = 0.3", True), ("1.1 * 1.1 = 1.21", True), ("1.1 * 1.1 = 1.2", True),
    ("The shirt is $20 - 25% = $15", None),                               # a discount, or wrong? not judged
])
def test_claims_in_every_common_form_are_judged_exactly(text, holds):
    found = equations(text)
    assert (None if not found else all(e.holds for e in found)) is holds, found


def test_agreement_takes_a_list_of_answers_not_a_string():
    for wrong in ("#### 3", None, 42, {"a": "#### 3"}):
        with pytest.raises(InputError, match="list of texts"):
            scoring.agreement(wrong)
    assert scoring.agreement(("#### 3", "#### 3")) == 1.0


# --- a user's regex checks: compiled at once, catastrophic forms refused, bounded input ---------

_CATASTROPHIC = [r"^(a+)+$", r"(a|aa)+$", r"(\w+\s?)+$", r"(x+x+)+y", r"(a|a)*b", r"(\d+)*$", r"(.*a){12}",
                 r"(?:a*)*b", r"([a-z]+)*=", r"(a*)+$", r"(.*?,){11}P", r"(a+){16}b", r"((ab)*c?)+d",
                 r"\s*\s*x", r"\s*\$?\s*(\d+)", r"\d+\.?\d*x", r".*.*=.*", r"\w*a\w*x", r"(?i)(A|AA)+B"]
_FINE = [r"####\s*-?\d+", r"^\d+$", r"(\d+,)+", r"(?:\d{1,3},)+\d{3}", r"\bfinal\b", r"^#", r".*foo.*",
         r"\d+(?:\.\d+)?", r"(\w+\s)+$", r"####\s*+(?:\$\s*+)?(-?\d[\d,]*+)", r"(?:foo|bar)+", r"\s*####\s*",
         r"^\s*(\d+)\s*$", r"\d+(?:,\d+)*", r"[A-D]\)", r"(?>a+)+b", r"the answer is\s*(\d+)", r"(yes|no)",
         r"\{.*\}", r"(ab|a)+$", r"(\d+(?:\.\d+)?,)+", r"(?:[ab]|a)+c", r"^\s*```", r"\\boxed\{\d+\}"]


@pytest.mark.parametrize("pattern", _CATASTROPHIC)
def test_a_regex_that_can_backtrack_catastrophically_is_refused_before_use(pattern):
    with pytest.raises(InputError, match="backtrack catastrophically") as caught:
        scoring.regex(pattern)
    assert "\n" not in str(caught.value)
    for spec in ({"kind": "regex", "pattern": pattern}, json.dumps({"kind": "regex", "pattern": pattern})):
        with pytest.raises(InputError, match="backtrack catastrophically"):
            routing.Cascade(["weak", "strong"], accept=spec)
        with pytest.raises(InputError, match="backtrack catastrophically"):
            routing.Verifier("weak", "strong", checks=[spec])


@pytest.mark.parametrize("pattern", _FINE)
def test_an_unambiguous_regex_is_accepted_and_bounded_on_hostile_answers(pattern):
    import time

    check = scoring.regex(pattern)
    started = time.perf_counter()
    for text in _degenerate(200_000, [("", f) for f in ("a", "ab", "1,", "1.1,", "w ", " ", "1", "#### ", "{")]):
        check.check(text, None)
    assert time.perf_counter() - started < 6.0      # 9 answers: each ≤ REGEX_CHARS read, ≤ ~0.6 s worst


def test_bad_regex_and_spec_input_are_one_line_errors():
    for bad in (lambda: scoring.regex("("), lambda: scoring.regex(123), lambda: scoring.regex("x", flags="I"),
                lambda: scoring.from_spec("{not json"), lambda: scoring.from_spec('{"kind": "regex", "patern": "x"}'),
                lambda: scoring.from_spec({"kind": "regex", "pattern": "x", "flags": "NOPE"}),
                lambda: scoring.from_spec("{" * 100_000)):
        with pytest.raises(InputError) as caught:
            bad()
        assert "\n" not in str(caught.value)
    assert scoring.regex("x").check("a long answer " * 1000 + "x", None)[0] == 1.0     # its last characters


@pytest.mark.parametrize("pattern", [
    r"def\s+add\s*\(\s*a\s*,\s*b\s*\)\s*:[\s\S]*return\s+a\s*\+\s*b",   # a bundled checker
    r"foo.*bar\s*x", r"^\s*answer:\s*\d+", r"#{4}\s*\d+",
])
def test_a_repeat_after_a_node_the_next_repeat_cannot_take_is_accepted_and_fast(pattern):
    compiled = scoring.regex(pattern)
    for text in ("def add(a, b):" + "return " * 600, "foo" + " " * 4000, "answer:" + " " * 4000,
                 ("#### " * 900), " " * 4000 + "x"):
        started = time.thread_time()
        compiled.check(text, None)
        assert time.thread_time() - started < 0.5
