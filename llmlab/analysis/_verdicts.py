"""Judge verdicts that are right or unknown: the rating or preference a judge's reply gives.

A judge is asked for a delimited verdict — ``Rating: [[8]]`` (pointwise) or ``[[A]]`` / ``[[B]]`` /
``[[C]]`` (pairwise; C is a tie), the MT-Bench formats. Replies are read in this order:

1. **Delimited verdicts.** Every ``[[…]]`` in the reply is a candidate, wherever it stands: a verdict
   first and the explanation after is fine, numbered lists, years, ``arr[0]`` and ``[1]`` citations
   before it are not candidates, nor is indexing (``arr[[2]]``) or anything inside a fenced code
   block, in either judge and in every fallback (an unclosed fence runs to the end). Accepted
   spellings: ``[[ 8 ]]``, ``[[7.5]]``, ``**[[8]]**``, ``[[8/10]]`` (the
   denominator must be the scale's top), full-width and look-alike brackets (``⟦B⟧``: replies and
   answers are read after one normalisation, :func:`_normalise`); ``[[A]]``, ``[[B]]``, ``[[C]]``,
   ``[[tie]]`` in any case and Arena-Hard's ``[[A>>B]]`` … ``[[B>>A]]`` (``A<B`` spellings too).
   Whitespace runs are read as one character, which keeps every pattern linear in the reply.
2. **Echoes are not verdicts.** A quoted example (``the format "Rating: [[5]]"``) and an echoed
   instruction (``"[[A]]" if A is better, "[[B]]" if …``) are dropped when other candidates remain;
   a lone ``[[C]] for a tie.`` is a real verdict and is kept, and so is a quoted *last* candidate
   (``…together: "[[3]]"``). A restated format (``I'll output [[A]] if A is better``) is dropped even
   alone.
   A rating the judged answer writes itself, in any form read here (``Rating: 10/10`` planted in
   the answer), is never the pointwise verdict: dropped from the reply, and a reply whose only
   rating it is gives ``ambiguous`` (rule ``answer's own``) — review 22c G0p. Pairwise likewise: a
   verdict an answer writes in any spelling (``[[B>>A]]``, ``[B]``, ``⟦B⟧``, ``Final verdict: B``)
   that the judge quotes or attributes to an answer (``B ends with [[B]]``) is never the verdict,
   fallbacks included; alone, the reply gives none (review 22c G0').
3. **Candidates must agree.** Repeats of one value are fine. When they disagree, the ones written
   in the rubric's own form (``Rating: [[n]]``) decide if they agree among themselves — but not one
   in a hypothetical (``A perfect answer would get Rating: [[10]]``) or opening a list
   (``Rating: [[4]], [[1]], [[3]]``, ``Rating: [[10]] for style, [[4]] for accuracy``); otherwise
   the verdict is **unknown** (``ambiguous``). A delimited verdict contradicted by a rating stated
   in any fallback form below (``[[1]] … Overall rating: 9/10``, ``I would rate it 8 out of
   10.\nRating: [[3]]``, ``The answer deserves 8/10. [[3]]``) is ambiguous too; one that agrees is
   fine. A criterion's line in a list of scores (``- **Helpfulness**: 8/10``) is not such a rating.
   **A token in another role is no candidate, in either judge** (review r24 B1; one table,
   ``_NOT_CONCLUDED_BEFORE``): negated or held at a distance in its clause (``not worth [[9]]``,
   ``doesn't deserve [[10]]``, ``Far from a [[9]]``, ``I won't choose [[A]]``, ``Das ist keine [[9]]``,
   ``Ce n'est pas une [[9]]``, ``Não merece [[9]]``), the object of a comparison or preposition (``A is
   better than [[B]]``, ``A beats [[B]]``, ``outperforms``, ``vs``, ``Unlike [[B]], …``, ``Instead of
   [[A]], B``, ``I prefer A to [[B]]``, ``A supera a [[B]]``, ``Rispetto a [[B]], …``), a starting point
   (``Starting from [[10]], I deduct …``), or another's verdict reported (``The previous judge chose
   [[A]]``, ``GPT-4 gave it [[9]]``, ``The answer claims it deserves [[10]]``: a verb of choosing or
   saying with no first person before it). Another token decides; a verdict of the same value as the
   rejected one (``This is no [[9]]. Rating: [[9]]``) is ``ambiguous``; with none, so is the reply.
   **And a token counts only in a frame known to conclude** (review r25 B1; an allow-list,
   :func:`_concluding_frame`): alone on its line or as the whole reply, after a verdict label opening
   its sentence or the clause after a comma or colon (``Rating:``, ``Final verdict:``, ``the final
   verdict is:``, ``Note finale :``, ``최종 판정:``; not ``Assistant A:``), or the judge's choosing clause
   (``I choose [[A]]``, ``I'd rate it a [[7]]``, ``so [[B]]``). Elsewhere (``A dominates [[B]]``, ``No
   way this is a [[9]]``, ``Eliminated: [[A]]``, also ``There is no doubt: [[B]]``) it takes part in
   the agreement rule but never decides: alone, the reply is ``ambiguous`` (rule ``hypothetical``).
   **A token is a verdict only as a conclusion** (review r23 N1, W-b, W-c), decided by its place in
   the reply, not by a list of phrasings: (a) what *follows* it — a lower-case predicate (``Rating:
   [[10]] is given only to …``, ``[[10]] = perfect``, ``[[A]] loses``, ``[[A]] falls short``, a part's
   rating ``[[8]] for the first half``, even ``[[A]] is the better response``: a statement about the
   token, not the bare token the rubric asks for), a question (``Is it [[A]]? No …``), an explicit
   correction on its line or
   opening the next (``… Actually``, ``\nWait,``, ``\nEdit:``), and, for a token in running prose
   (not opening its line, alone or after a verdict label like ``Rating:`` / ``Final verdict:``), a
   contrast or negation in the rest of its sentence (``My first instinct was [[9]], but …``; not in
   its own explanation, ``I rate it 1 because it is not helpful``) or a negation in the next one
   (``… [[9]]. They are not.``); (b) what *heads* it — a sentence opened by a condition (``If``,
   ``Provided``, ``Assuming``, ``Had it …``, ``In a world where``; not ``even if``, ``if anything``
   nor the forced choice ``if I had to pick``) or a clause whose modal is not the judge's hedge
   (``it'd get [[9]]``, ``A perfect answer would get [[10]]``; ``I would choose [[A]]`` and ``I
   would have to go with [[B]]`` are verdicts), or a counterfactual ``would have been``. A
   conclusion after ``:``, ``;``, ``so``, ``therefore`` is a new clause: ``Assistant A might confuse
   the user, so [[B]]``, ``Assistant B would be my choice: [[B]]``, ``The answer could have been
   shorter, but it is correct: Rating: [[8]]`` are read. A token that opens its line (the MT-Bench
   ``Rating: [[8]]`` / ``[[8]] The answer …`` forms) keeps its explanation, ``however`` and ``not``
   included; only an explicit correction revises it. Such a token never wins by the rubric's form
   (a revised one still takes part in the agreement rule, so ``Rating: [[6]] … on reflection,
   Rating: [[7]]`` is ambiguous), and a reply whose only tokens (or a fallback rule's only matches)
   are such gives ``ambiguous`` (rule ``hypothetical``) — review r22 B1, B7.
   *Not* "the last one wins": on the 1,770 real pointwise
   replies of the test corpus's source set, the last of several different ratings was a
   hypothetical ("…would improve it further, earning [[10]]") in every case found (3 of 3 wrong),
   while the first was never contradicted by a correction. An unknown is honest; a wrong verdict
   is not.
4. **Another stated scale is unknown.** A scale stated with a verdict — in its label (``Rating
   (1-5): 4``, ``Rating (out of 5):``), right after its number on its line (``[[4]] out of 5``,
   ``[[4]] of 5``, ``4 (out of 5)``, ``4/5``, ``4 (on a scale of 1-5)``) or in parentheses on the
   next line (``Rating: 4\n(scale 1–5)``) — or anywhere in the reply (``Scale: 1-5\nRating: [[4]]``,
   ``(max 5)``, ``with 5 being the best``, ``on a five-point scale``: one pass per reply), whose top
   is not the rubric's, makes the verdict ``out_of_range``
   (rule ``other scale``): the judge rated on its own scale, and reading 4/5 as 4/10 is a wrong
   verdict; ``Rating: 8 (out of 5)`` is unknown too. The rubric's own (``8/10``) is read.
   **Out of range is unknown, never clamped.** ``[[85]]`` or ``[[0]]`` on a 1–10 scale gives
   ``out_of_range``, with no fallback; ``[[N/A]]``, ``[[True]]`` give ``invalid_token``; the
   template echo ``[[rating]]`` is ignored.
5. **Documented fallbacks**, only when the reply has no delimited verdict at all, strongest first,
   each unanimous on its own: a labelled line (``Rating: 8``, ``Score: 7/10``, ``[Rating: 9]``,
   ``Overall: 7/10``, ``Rating (out of 10): 8``) — its number on the label's line, or alone on the
   next (``Rating:\n7/10``), never the ``1.`` of a list below the label; a number followed by a
   word that counts something (``Score: 3 errors``, ``Grade: 5th-grade``) is none, and a label
   whose sentence holds another number (``Rating: 5 for style, 2 for accuracy``, ``Rating: 10 is
   reserved for perfect answers; this one gets a 6``) is ``ambiguous``;
   a reply that is only a number (``8``, ``[4]``, ``5.0``); a bracket under a rating header
   (``[Rating]\\n[7/10]``); ``rate … [9]``; first person (``I would rate it a 9 out of 10``);
   ``N/10`` or ``N out of 10`` in a sentence about the rating of one thing (not "ratings",
   "each", "both", "respectively", "confidence"); the answer's rating stated in the passive
   (``The assistant's answer is rated as a 10``, ``The rating for this response is 8``).
   A number counting things is none (``4 stars``, ``9 out of 10 sub-questions``, ``3 of the 5
   steps``); first person needs a sentence with one number (``I would rate the reference answer 10
   and the assistant's answer 4`` is two); where the reply names another scale (``on a 1-5 scale``)
   only a number given with this scale's top counts (``other scale`` otherwise).
   Pairwise replies have two: ``verdict … [B]`` and a reply that is only ``A``/``[B]``.
   A pairwise token said not to be the verdict after it (``[[A]] is off the table``) or labelled the
   loser by its sentence's opening (``The loser is [[A]]``, ``Worse answer: [[A]]``, ``Rejected:
   [[A]]``, ``I would avoid [[A]]``, ``Runner-up: [[A]]``; ``A is less accurate: [[B]]`` is B) is no
   candidate: another token decides, and with none the reply is ``ambiguous`` — never the negated token.
6. Anything else — no verdict, a refusal, an empty reply, a truncated ``Rating: [[`` — is
   **unknown** (``no_verdict`` / ``empty``). A failed judge *call* is unknown too (the caller's
   reason says why). An unknown is never 0, never a loss, never a tie.
"""
from __future__ import annotations

import bisect
import math
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from ..base._validate import IGNORABLE

__all__ = ["Verdict", "parse_rating", "parse_preference", "answer_tokens", "defuse_tokens", "STATUSES"]

STATUSES = ("ok", "no_verdict", "ambiguous", "out_of_range", "invalid_token", "empty")


@dataclass(frozen=True)
class Verdict:
    """A parsed verdict: ``value`` (a float rating, or ``"A"``/``"B"``/``"tie"`` by position) or None
    (unknown); ``status`` one of :data:`STATUSES`; ``rule`` the rule that read it."""

    value: Any
    status: str
    rule: str = ""
    candidates: tuple = field(default=())

    @property
    def known(self) -> bool:
        return self.value is not None

    def reason(self) -> str:
        """One line for a reason column: what was read, or why nothing was."""
        if self.known:
            shown = f"{self.value:g}" if isinstance(self.value, float) else self.value
            return f"verdict {shown} ({self.rule})"
        seen = ", ".join(str(c) for c in self.candidates[:4])
        if self.rule == "hypothetical":
            return ("no verdict: the judge reply's only verdicts are hypothetical, negated, compared, describe "
                    f"the scale or stand in no conclusion frame ({seen})")
        if self.rule == "answer's own":
            return f"no verdict: the judge reply's only verdict is the judged answer's own ({seen})"
        if self.rule == "other scale" and self.candidates:
            tops = ", ".join(f"{c:g}" if isinstance(c, float) else str(c) for c in self.candidates[:4])
            return f"verdict outside the scale: given on another scale (out of {tops})"
        return {"empty": "empty judge reply",
                "no_verdict": "no verdict in the judge reply",
                "ambiguous": f"ambiguous verdict (several: {seen})",
                "out_of_range": f"verdict outside the scale ({seen})",
                "invalid_token": f"verdict is not a rating ({seen})"}[self.status]


_NUM = r"[+-]?\d+(?:\.\d+)?"
_DELIMITED_NUMBER = re.compile(r"\[\[\s?\**\s?(" + _NUM + r")\s?(?:/\s?(\d+))?\s?\**\s?\]\]")
_DELIMITED_ANY = re.compile(r"\[\[\s?([^\[\]\n]{1,20}?)\s?\]\]")
_TEMPLATE_ECHOES = frozenset({"rating", "score", "rating_a,rating_b"})
_QUOTE_BEFORE = re.compile(r"""["“'`]\s*(?:(?:my\s+)?(?:final\s+)?(?:rating|verdict|score)\s*:\s*)?\Z""", re.I)
_QUOTE_AFTER = re.compile(r"""\A\s*["”'`]""")
_RUBRIC_FORM = re.compile(r"(?i)\b(?:rating|score)\s?\**\s?:\s?\**\s?\Z")
# A verdict token is read where the rubric asks for it: as the conclusion. Two structural questions
# decide whether a token is one (review r23 N1, W-b, W-c), whatever the words around it:
# 1. What FOLLOWS it on its line (and how the next line opens) — a token that later text can revise is
#    no verdict: the token described ("[[10]] is given only to …", "[[10]] = perfect", "[[A]] loses",
#    "The top mark, [[10]], goes to …"), or followed by a contrast, a correction, a negation or a
#    loser's word ("My first instinct was [[9]], but …", "[[9]]. They are not.", "Is it [[A]]? No").
# 2. What HEADS it — the sentence opened by a condition ("If …", "Provided …", "Had it …", "In a world
#    where …"; not the concessive "even if" nor the forced choice "if I had to pick") or the clause's
#    verb a modal whose subject is not the judge ("it'd get [[9]]", "A perfect answer would get …";
#    "I would choose [[A]]" is the judge's hedge, a verdict), or a counterfactual "would have been".
#    A conclusion after ":", ";", "so", "therefore" starts a new clause: "A might confuse the user,
#    so [[B]]" and "Assistant B would be my choice: [[B]]" are verdicts.
# A final token (nothing but punctuation after it on its line) is only asked question 2.
_SENTENCE_START = re.compile(r"[.!?](?=\s|\Z)|[;\n]|\b(?:so|thus|therefore|hence)\b")
# a colon starts a conclusion, except the rubric's own label ("Rating: [[8]]" is one clause with its head)
_CLAUSE_START = re.compile(r"(?i)[.!?](?=\s|\Z)|[;\n—]|(?<!rating)(?<!score)(?<!grade)\**:|"
                           r"\b(?:so|thus|therefore|hence)\b")
_CONDITION = re.compile(
    r"(?i)(?<!even\s)\b(?:if|unless|provided|providing|assuming|supposing|suppose|hypothetically|ideally|"
    r"wenn|falls|si|se|caso)\b(?!\sI\s(?:had|have|must|need|were)\b|\sI\smust\b|\sforced\b|"
    r"\s(?:anything|any|not|so|needed|possible)\b)"
    r"|(?:\A|,)\s?\**(?:had|were|should)\s(?:it|they|this|that|these|the|its|their|[AB]|assistant\s[AB])\b|\b(?:hätte\w*|wäre\w*|avesse\w*|fosse\w*|estivesse\w*)\b"
    r"|\bin\s(?:a|an\sideal)\sworld\b|\bwith\sthe\s\w+\sfixed\b")
_MODAL = re.compile(r"(?i)\b(?:would|could|might|würde|könnte|bekäme|gäbe|pourrait|podría)\b|(?<=\w)['’]d\b"
                    r"|\b\w{3,}(?:rebbe(?:ro)?|(?<!t)rait|raient|ría|rían)\b")
_COUNTERFACTUAL = re.compile(r"(?i)\b(?:would|could|should|might)(?:\shave|['’]ve)\b(?!\sto\b)")
_PERFECT_ANSWER = re.compile(
    r"(?i)\b(?:an?|the|eine?)\s(?:perfe[ck]te?|ideale?|flawless|complete)\s(?:answer|response|antwort)\b"
    r"|\b(?:une|una|uma)\s(?:réponse|respuesta|resposta|risposta)\s(?:parfaite|perfecta|perfeita|perfetta|idéale)\b")
_HEDGE_SUBJECT = re.compile(r"(?i)\b(?:I|we|my|ich|je|eu|yo|io|rating|score|verdict|grade|evaluation|choice|pick)\b"
                            r"(?:\s[\w'’]+){0,6}\s?\Z")
# the token followed directly by a predicate or a description, in lower case ("[[10]] is …", "[[10]] =
# perfect", "[[A]] loses", "I'd rate it 9/10 if it compiled", "The top mark, [[10]], goes to …"); an
# explanation ("[[B]] because …", "[[7]], which …", "[[A]] if I consider accuracy") is not, nor a new
# sentence a judge began without a full stop ("Final verdict: [[A]] Assistant A is better")
_EXPLAINS = (r"(?:because|as|since|given|due|thanks|which|for|with|out|of|and|overall|here|from|reflecting|"
             r"indicating|showing|meaning|considering|based|in|on|at|to|if\sI)\b")
_DENOMINATOR_AFTER = re.compile(r"\A\s?(?:/\s?\d+|out\sof\s\d+)")
_DESCRIBED = re.compile(r"\A[\s*)\]\"'”’»]{0,4}(?:[=≈]|(?!" + _EXPLAINS + r")[a-zà-ÿ])")
_APPOSITIVE = re.compile(r"(?i)\A\s?\**,\s(?:[=≈]|(?!" + _EXPLAINS + r"|but\b)[a-zà-ÿ])")
# "Rating: [[8]] for the first half": the rating of a part, not of the answer
_PART_AFTER = re.compile(r"(?i)\A\s?\**\s?for\s(?:the\s)?(?:first|second|third|last|opening|final|other|latter|former)"
                         r"\s(?:half|part|section|paragraph|question|turn|step|point)s?\b")
_EXPLANATION = re.compile(r"(?i)\A[\s*)\]\"'”’»]{0,4},?\s?(?:because|as|since|given|due\sto|which|reflecting)\b")
# a token that opens its line, alone or after a label naming the verdict ("Rating: [[8]]", "Final
# verdict: [[A]]", "评分：[[8]]"): the rubric's own form, whose explanation may follow on the same line
_VERDICT_LABEL = (r"(?:(?:my|the|overall|final|total|rating|score|verdict|grade|decision|choice|winner|result|"
                  r"evaluation|judg\w+|bewertung|urteil|note|valutazione|verdetto|puntuaci\w+|calificaci\w+|nota|"
                  r"veredicto|avalia\w+|punteggio)\s?)+|[^\x00-\x7f]{1,12}")
_LEADS_LINE = re.compile(r"(?i)\A[\s*#>\-\[\]()\"'`]*(?:(?:" + _VERDICT_LABEL
                         + r")\s?[*\]]{0,2}\s?[:\-–—=]\s?[*\"'`]*)?\Z")
# what corrects a token stated as the verdict: its explanation may say "however" and "not", a correction
# is explicit ("[[9]]. Actually, …", "Rating: [[9]]\nWait, …")
_CORRECTS = (r"(?:actually|wait|correction|correcting|on\s(?:second\sthought|reflection)|scratch\sthat|"
             r"take\sthat\sback|i\swas\swrong|upon\s(?:closer|further)|revis(?:e|ing)\smy|reconsider\w*|closer\slook|"
             r"(?:a|my)\smistake|retract\w*|too\s(?:high|generous|harsh|low))\b")
_CORRECTION = re.compile(r"(?i)\b" + _CORRECTS)
_NEXT_LINE_CORRECTS = re.compile(r"(?i)\A\W{0,4}(?:" + _CORRECTS + r"|(?:no|but|edit|update|addendum)\b)")
# later text that can revise a token in running prose: a contrast or a correction; and, outside the
# token's own explanation ("I rate it 1 because it is not helpful"), a negation or a loser's word
_CONTRAST = re.compile(
    r"(?i)\b(?:but|however|though|although|yet|whereas|nevertheless|nonetheless|instead|far\sfrom|"
    r"at\sfirst\s(?:glance|sight)|on\sthe\ssurface|superficially|"
    r"mais|pero|aber|jedoch|però|porém|cependant|invece)\b|\b" + _CORRECTS)
_NEGATION_OR_LOSER = re.compile(
    r"(?i)\b(?:not|no|never|none|nor|without|nicht|kein\w*|nie|ohne|pas|jamais|sans|non|não|nunca|sem|senza|sin|"
    r"worse|weaker|loser|los(?:es|ing|t)|reject\w*|avoid\w*|fail\w*|inferior|lower|less|schlechter|weniger|"
    r"pire|moins|peor|menos|peggiore|pior)\b|n['’]t\b")
_SENTENCE_END = re.compile(r"[.!?;](?=\s|\Z)")
# a next sentence that retorts: "Is it [[A]]? No — B is better.", "… [[9]]. They are not.", "Without them, …"
_RETORT = re.compile(r"(?i)\A\W{0,3}(?:(?:no|nope|not|without|but|nein|nicht|ohne|non|não|sans|sin|sem|senza)\b"
                     r"|(?:[\w'’]+\s){0,4}(?:not|nicht|pas|non|não|no)\b[^\w]{0,3}\w{0,12}[.!;]?\s?\Z|[\w\s]{0,20}n't\b)")


# What HEADS a token can also make it no conclusion of the judge's, for both judges (review r23 W1,
# r24 B1): ONE table of the few words that put a token in another role, right before it in its clause —
# negated or held at a distance ("not worth [[9]]", "doesn't deserve [[10]]", "Nowhere near a [[10]]",
# "Far from a [[9]]", "Das ist keine [[9]]", "Ce n'est pas une [[9]]", "I won't choose [[A]]"), the object
# of a comparison or a preposition ("better than [[B]]", "A beats [[B]]", "A outperforms [[B]]", "A vs
# [[B]]", "Unlike [[B]], …", "Instead of [[A]], B", "Rather than [[9]]", "A supera a [[B]]", "Rispetto a
# [[B]]"), or a starting point ("Starting from [[10]], I deduct …"). The cost: "I lower it to [[6]]" is
# unknown ("to" is a comparison's too: "I prefer A to [[B]]", "Accuracy goes to [[A]]"). Words between
# it and the token are words, not punctuation: "There is no doubt: [[B]]" and "Not bad, [[7]]" are read.
_NEGATIONS = (r"not|never|no|nor|nowhere|hardly|barely|cannot|[a-z]+n['’]t|refuse\sto|far\sfrom|nicht|kein\w*|nie|"
              r"niemals|weit\sentfernt\svon|ne|pas|jamais|loin\sd['’]|loin\sde|nunca|non|não|nao|nem|ni|lejos\sde|"
              r"longe\sde|tutt['’]altro\sche|nemmeno|neanche")
_COMPARISONS = (r"than|als|que|di|do\sque|over|to|versus|vs\.?|against|beats?|beating|outperform\w*|outclass\w*|"
                r"outdoes|outshines?|edges?\sout|surpass\w*|exceeds?|trumps?|unlike|(?:compared|comparison|relative|"
                r"superior|inferior|preferable|preferred|similar|equal|equivalent|close)\swith|"
                r"in\scomparison\s(?:to|with)|as\sopposed\sto|instead\sof|rather\sthan|in\splace\sof|"
                r"übertrifft|schlägt|gegenüber|verglichen\smit|im\svergleich\szu[rm]?|anders\sals|(?:an)?statt|"
                r"surpasse\w*|bat|contrairement\sà|par\srapport\sà|comparée?\sà|au\slieu\sde|plutôt\sque|"
                r"supera\w*(?:\sa)?|vence\w*|batte\w*|a\sdiferencia\sde|en\scomparación\scon|frente\sa|"
                r"en\s(?:lugar|vez)\sde|rispetto\sa|invece\sdi|a\sdifferenza\sdi|ao\scontrário\sde|em\svez\sde|"
                r"comparad[oa]\s(?:a|com)|start\w*\s(?:from|at|with)|from")
_NOT_CONCLUDED_BEFORE = re.compile(
    r"(?i)(?:\b(?:" + _NEGATIONS + r")(?:\s|(?<=['’]))(?:[^\W\d_]+\s){0,2}|\b(?:" + _COMPARISONS + r")\s?)\**\s?\Z")
# ... or its clause reports someone else's verdict ("The previous judge chose [[A]]", "GPT-4 gave it [[9]]",
# "The answer claims it deserves [[10]]"): a verb of choosing or saying with no first person before it
# ("I chose [[A]]" is the judge's own; "Assistant A gave the better answer [[A]]" no report: "gave" reports
# a verdict only when given to the answer, "gave it [[9]]")
_OTHERS_CHOICE = re.compile(r"(?i)\b(?:chose|picked|selected|preferred|favou?red|"
                            r"gave\s(?:it|this|them|the\sanswer)|awarded|assigned|claim(?:s|ed)?|"
                            r"says|said|suggest(?:s|ed)|thinks|thought|believes|believed|went\swith|opted\sfor|"
                            r"(?<!is\s)(?<!was\s)(?<!be\s)rated)\b")
_FIRST_PERSON = re.compile(r"\b(?:I|[Ww]e|[Mm]y|[Mm]e|[Oo]ur|[Ii]ch|[Jj]e|[Yy]o|[Ii]o|[Ee]u)\b")


# A delimited token is a verdict only in a frame KNOWN to conclude (review r25 B1): an allow-list, so a
# frame nobody listed ("A dominates [[B]]", "No way this is a [[9]]", "Eliminated: [[A]]") is unknown,
# where a list of non-conclusion frames (the table above, kept on top) always misses the next verb.
# The frames, matched against the token's sentence or the rest of it after a comma or colon:
# 1. nothing but markdown before it on its line (the whole reply, "**[[B]]**", "[[8]] The answer …");
# 2. a verdict label opening it ("Rating: [[8]]", "Final verdict: [[A]]", "the final verdict is: [[A]]",
#    "Note finale : [[7]]", "최종 판정: [[B]]", "earning a rating of [[9]]", Arena-Hard's "My final verdict
#    is Assistant A is slightly better: [[A>B]]" when it names the token's winner); "Assistant A:" is none;
# 3. the judge choosing, with at most an article or "it" / "this answer" between verb and token
#    ("I choose [[A]]", "I'd rate it a [[7]]", "so [[B]]", "Therefore, [[A]]").
_LABEL_HEAD = (r"rating|score|grade|verdict|winner|decision|choice|pick|conclusion|result|evaluation|judge?ment|"
               r"overall|output|final\sanswer|(?:better|best|preferred|winning|stronger)\s(?:answer|response|one)|"
               r"bewertung|urteil|note|gesamtnote|entscheidung|gewinner|fazit|ergebnis|wahl|bessere\santwort|"
               r"verdict|décision|gagnant\w*|meilleure\sréponse|choix|évaluation|"
               r"puntuación|calificación|nota|veredi(?:c)?to|ganador\w*|mejor\srespuesta|decisión|elección|"
               r"valutazione|voto|punteggio|verdetto|vincit\w+|risposta\smigliore|migliore\srisposta|scelta|"
               r"decisione|giudizio|avaliação|pontuação|vencedor\w*|melhor\sresposta|escolha|decisão")
_LABEL_MODIFIER = (r"my|the|our|overall|final|total|mein\w*|die|das|der|endgültig\w*|finale?|mon|ma|la|le|mi|el|il|"
                   r"minha|meu|a|o")
_KOREAN_LABEL = r"(?:최종\s?)?(?:판정|평가\s?결과|평가|점수|평점|결론|결정|선택)(?:은|는|:)?(?:\s?다음과\s?같습니다)?"
_CONNECTIVE = (r"but|so|then|thus|therefore|hence|overall|ultimately|finally|in\s(?:conclusion|summary|sum)|"
               r"all\sin\sall|"
               r"daher|deshalb|also|insgesamt|donc|ainsi|en\sconclusion|por\s(?:lo\s)?tanto|en\sconclusión|"
               r"quindi|pertanto|in\sconclusione|portanto|logo|em\sconclusão|따라서|그러므로|결론적으로")
_CHOOSER = (r"(?:I|we)(?:['’]d|['’]ll|\s(?:would|will|must|can|shall|have\sto|therefore|thus|definitely|clearly|"
            r"confidently|ultimately|finally|then|still|do|am\sgoing\sto))*\s(?:choose|pick|prefer|select|give|"
            r"rate|award|assign|score|grade|go\swith|vote\sfor|opt\sfor|declare|chose|picked|selected|gave|"
            r"rated|awarded|went\swith|opted\sfor)"
            r"|(?:(?:it|this|the)(?:\s(?:answer|response))?\s|is\s)?(?:deserv(?:es|ing)|earns|gets|merits|receives|"
            r"warrants)"
            r"|ich\s(?:gebe|wähle|bevorzuge|vergebe)|je\s(?:donne|choisis|préfère|attribue)|"
            r"(?:(?:le|lo|gli|lhe)\s)?(?:elijo|prefiero|doy|daría|otorgo|scelgo|preferisco|do|darei|assegno|"
            r"escolho|prefiro|dou|daria|atribuo)(?:\sa\s(?:questa|esta|essa)\s(?:risposta|respuesta|resposta))?")
_CHOSEN = (r"(?:\s(?:it|this|that|them|the|a|an|un|una|um|uma|(?:this|the)\s(?:answer|response)|"
           r"a\s(?:score|rating)\sof))*")
_MARKUP = r"[\s*#>\-\[\]()\"'`_]*"
# "earning a rating of [[9]]": the answer given its rating, in the rubric's noun
_RATING_OF = (r"(?:(?:earning|earns|deserv(?:es|ing)|gets|getting|receiv(?:es|ing)|merit(?:s|ing)|warrant(?:s|ing)|"
              r"with|for)\s)?(?:a|an|the)\s(?:(?:final|overall)\s)?(?:rating|score|grade)\sof")
# Arena-Hard's own conclusion, "My final verdict is Assistant A is slightly better: [[A>B]]": read only
# when it names the token's winner (checked by the caller)
_ARENA = (r"(?:(?:assistant\s)?(?P<side>[AB])\sis\s(?:(?:slightly|significantly|much|clearly)\s)?better|"
          r"(?:it['’]s\s)?(?:a\s)?(?P<tie>tie|égalité|empate|parità|unentschieden|gleichstand),?"
          r"(?:\s(?:relatively\sthe\ssame))?)\s?:?")
_SEPARATOR = (r"\s?[*\]]{0,2}\s?(?:(?:is|ist|est|es|è|é|será|sarà|would\sbe|will\sbe)\s?:?|[:\-–—=])?")
_FRAME = re.compile(
    r"(?i)" + _MARKUP + r"(?:(?:" + _CONNECTIVE + r")\s?,?\s?)?(?:"
    r"(?:(?:" + _LABEL_MODIFIER + r")\s)*(?:" + _LABEL_HEAD + r")(?:\s(?:finale?|globale?|générale|complessiv[oa]|"
    r"general|geral))?(?:\s?\([^()\n]{0,24}\))?" + _SEPARATOR
    + r"|" + _KOREAN_LABEL + r"\s?[*]{0,2}\s?:?|[^\x00-\u024f\s:]{1,12}\s?[*]{0,2}\s?:"
    r"|(?:" + _CHOOSER + r")" + _CHOSEN + r"|" + _RATING_OF + r")?"
    r"(?:\s?" + _ARENA + r")?[\s*\"'`“]*")
_FRAME_ALONE = re.compile(_MARKUP)
_FRAME_CLAUSE = re.compile(r"[.!?](?=\s|\Z)|[;\n]")
_FRAME_ECHO = re.compile(r"(?i)\[\[(rating|score)\]\]")      # "[[Rating]]: [[8]]": the template's label


_FRAME_PART = re.compile(r"[,:]")
# Korean puts the verb after its object: the head ends with a verdict noun and its topic particle ("최종
# 판정은 [[A]]입니다", "점수는 [[8]]"), "as follows:" ("다음과 같습니다: [[8]]"), or the token is chosen
# after it ("[[A]]를 선택합니다"); a negation after it ("[[9]]가 아닙니다") is none
_KOREAN_HEAD_END = re.compile(r"(?:(?:판정|점수|평가|평점|결과|결론|어시스턴트)(?:은|는|이|가)"
                              r"|(?:다음과\s?같습니다|평가합니다|결정합니다)\s?:|평가한\s결과\s?,)[\s*\"'“]*\Z")
_KOREAN_CHOSEN = re.compile(r"\A\]\][\s*\"'”]*(?:를|을)\s?(?:선택|최종\s?판정)")
_KOREAN_NEGATED = re.compile(r"\A[^.!?\n]{0,20}(?:아니|않)")


def _concluding_frame(t: str, start: int) -> bool:
    """The token at ``start`` stands in a frame known to conclude (the three above): its sentence, or
    the rest of it after a comma or colon ("Based on this, the final verdict is: [[A]]"; an empty rest,
    "Eliminated: [[A]]", is no frame)."""
    head = _FRAME_ECHO.sub(r"\1", t[max(0, start - 120):start])
    head = head[head.rfind("]]") + 2 if "]]" in head else 0:]
    sentence = head[max((m.end() for m in _FRAME_CLAUSE.finditer(head)), default=0):]
    if _FRAME_ALONE.fullmatch(sentence):
        return True
    after = t[t.find("]]", start, start + 30):start + 60]
    if ((_KOREAN_HEAD_END.search(sentence) or _KOREAN_CHOSEN.match(after))
            and not _KOREAN_NEGATED.match(after[2:])):
        return True
    token = t[start + 2:t.find("]]", start, start + 30)].replace(" ", "").upper()
    winner = "tie" if "=" in token or token in {"C", "TIE"} else token[:1]
    parts = [sentence] + [sentence[m.end():] for m in _FRAME_PART.finditer(sentence)]
    for part in parts:
        m = _FRAME.fullmatch(part)
        if m and (part is sentence or not _FRAME_ALONE.fullmatch(part)) and _names(m, winner):
            return True
    return False


def _names(m: re.Match, winner: str) -> bool:
    """An Arena-Hard frame names the token's own winner ("A is better: [[B]]" is no conclusion)."""
    if m.group("side"):
        return m.group("side").upper() == winner
    return not m.group("tie") or winner == "tie"


def _not_concluded(t: str, start: int) -> bool:
    """The token at ``start`` is negated, compared or reported in its own clause (the table above): no
    verdict of the judge's, in either judge, and a verdict of its value elsewhere is contradicted."""
    head = t[max(0, start - 160):start]
    head = head[head.rfind("]]") + 1:]
    clause = head[max((m.end() for m in _CLAUSE_START.finditer(head)), default=0):]
    if _NOT_CONCLUDED_BEFORE.search(clause[-60:]):
        return True
    reported = _OTHERS_CHOICE.search(clause)
    return bool(reported and not _FIRST_PERSON.search(clause[:reported.start()]))


def _hypothetical(t: str, start: int, end: int) -> bool:
    """The verdict token at ``t[start:end]`` is no conclusion: it is described, later text can revise
    it, or its sentence is a condition or its clause a modal not the judge's (the two questions above)."""
    return _stated_otherwise(t, start, end) or _revised(t, start, end)


def _stated_otherwise(t: str, start: int, end: int) -> bool:
    """The token is described or conditioned, not given: never the rubric's form that decides. A token
    followed by a predicate is a statement about it, not the verdict the rubric asks for: "[[10]] is
    given only to …" describes the scale, "[[A]] loses" / "[[A]] falls short" names a loser, and the
    winner's "[[A]] is the better response" is no exception (which predicates praise is a word list)."""
    line, _ = _line_after(t, end)
    head = _line_head(t, start)
    if _DESCRIBED.match(line) or _PART_AFTER.match(line) or (head.endswith(", ") and _APPOSITIVE.match(line)):
        return True
    head = t[max(0, start - 160):start]
    return _conditioned(head[head.rfind("]]") + 1:])     # from the previous token's end, if it is nearer


def _line_head(t: str, start: int) -> str:
    """The token's line before it, at most 100 characters (a bounded look: linear on a line of tokens)."""
    head = t[max(0, start - 100):start]
    return head[head.rfind("\n") + 1:]


def _line_after(t: str, end: int) -> tuple[str, str]:
    """The rest of the token's line (a denominator after it skipped) and the start of the next line."""
    stop = t.find("\n", end, end + 240)
    line = t[end:stop if stop >= 0 else end + 240]
    line = line[m.end():] if (m := _DENOMINATOR_AFTER.match(line)) else line
    nxt = line.find("[[")       # text after the next token is that token's: a run of tokens stays linear
    return line[:nxt] if nxt >= 0 else line, t[stop + 1:stop + 41] if stop >= 0 else ""


def _revised(t: str, start: int, end: int) -> bool:
    """Later text that can revise the token. For a token that opens its line: an explicit correction
    on its line or opening the next. In running prose, also a contrast or a negation in the rest of its
    sentence (not in its own explanation: "I rate it 1 because it is not helpful"), or a next sentence
    that retorts ("No — …", "They are not.")."""
    line, next_line = _line_after(t, end)
    ends = [m.end() for m in _SENTENCE_END.finditer(line)]
    own = line[:ends[0]] if ends else line
    following = line[ends[0]:ends[1] if len(ends) > 1 else len(line)] if ends else ""
    if _NEXT_LINE_CORRECTS.match(next_line) or _CORRECTION.search(own + following) or own.rstrip().endswith("?"):
        return True             # "Is it [[A]]? No — …", "[[9]]? Hardly.": a question states no verdict
    head = _line_head(t, start)
    if len(head) <= 60 and _LEADS_LINE.match(head):
        return False
    return bool(_CONTRAST.search(own) or (not _EXPLANATION.match(own) and _NEGATION_OR_LOSER.search(own))
                or _RETORT.match(following) or _NEGATION_OR_LOSER.search(following))


def _conditioned(head: str) -> bool:
    """The text before a token, from its sentence's start: a condition opens the sentence, or the
    token's clause is a modal or counterfactual whose subject is not the judge, or names a perfect answer."""
    sentence = head[max((m.end() for m in _SENTENCE_START.finditer(head)), default=0):]
    clause = head[max((m.end() for m in _CLAUSE_START.finditer(head)), default=0):]
    modal = any(not _HEDGE_SUBJECT.search(clause[:m.start()]) for m in _MODAL.finditer(clause))
    return bool(modal or _COUNTERFACTUAL.search(clause) or _PERFECT_ANSWER.search(clause)
                or _CONDITION.search(sentence))


# "Rating: [[4]], [[1]], [[3]]": a list of ratings (of several things) starts in the rubric's form
_LIST_AFTER = re.compile(r"\A[^.\n\[]{0,30}?(?:,|;|\band\b|\bor\b|/)\s?\**\s?\[\[")
# "arr[[2]]", "df.iloc[[3]]": indexing in code, not a verdict
_INDEXING_BEFORE = re.compile(r"[\w)\]]\Z")


_HORIZONTAL_SPACE = re.compile(r"[^\S\n]+")
# C0 and C1 control characters but tab, newline and carriage return: no judge writes them, and a
# NUL ends the reply where C code (and many viewers) stop reading
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]|\r(?!\n)")  # a lone CR overwrites the line
_NEWLINE_RUN = re.compile(r"\n\s*")


# Look-alike brackets and slashes NFKC leaves as they are: a judge (or a planted answer) writing
# ⟦B⟧, 〚B〛, 【8】 or 4⁄5 means what the ASCII spelling means
_LOOKALIKE_MARKS = str.maketrans({"⟦": "[[", "⟧": "]]", "〚": "[[", "〛": "]]", "【": "[", "】": "]", "〔": "[",
                                  "〕": "]", "〖": "[", "〗": "]", "⁄": "/", "∕": "/"})


def _normalise(text: str) -> str:
    """The one form replies and answers are compared in: NFKC (full-width ``［［8］］``, ``／``),
    look-alike brackets folded (``⟦B⟧`` is ``[[B]]``), default-ignorable characters dropped (a zero-width
    joiner inside ``[[\\u2060B]]``: :data:`~llmlab.base._validate.IGNORABLE`, the names' rule), every run
    of whitespace one character (a newline if it holds one). The patterns below then allow one
    whitespace character (``\\s?``) where a run could stand, so optional parts in a row cannot
    backtrack over a run: a judge reply of 2,000 spaces after ``[[1`` took seconds (cubic
    backtracking) before; now every pattern is linear even on text that was not collapsed."""
    if not text.isascii():
        text = IGNORABLE.sub("", unicodedata.normalize("NFKC", text)).translate(_LOOKALIKE_MARKS)
    text = _CONTROL.sub("\n", text)  # a separator: no pattern reads across a NUL, ESC, …
    return _NEWLINE_RUN.sub("\n", _HORIZONTAL_SPACE.sub(" ", text)).replace(" \n", "\n")


_FENCED = re.compile(r"```.*?(?:```|\Z)", re.S)


def _unfenced(t: str) -> str:
    """The reply without its fenced code blocks (an unclosed fence runs to the end), for the fallbacks:
    code or an example in a fence is never a verdict, in any form (the delimited readers skip tokens
    in a fence by position)."""
    return _FENCED.sub("\n", t) if "```" in t else t


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


@dataclass
class _Candidate:
    value: Any
    quoted: bool = False
    rubric_form: bool = False
    hypothetical: bool = False


def _quoted(t: str, start: int, end: int) -> bool:
    """The token at ``t[start:end]`` stands in quotes (``"[[B]]"``, ``'Rating: [[10]]'``): an example
    or a quotation, which :func:`_agreeing` drops when other candidates remain. One rule for both
    parsers."""
    return bool(_QUOTE_BEFORE.search(t[max(0, start - 24):start]) and _QUOTE_AFTER.match(t[end:end + 3]))


def _agreeing(cands: list[_Candidate]) -> tuple[Any, str]:
    """The candidates' one value, after dropping quoted echoes and preferring the rubric's form."""
    values = _distinct(c.value for c in cands)
    if len(values) > 1 and any(c.quoted for c in cands[:-1]) and not all(c.quoted for c in cands):
        # an echo of the format comes before the verdict; a quoted *last* candidate is the verdict
        cands = [c for i, c in enumerate(cands) if not c.quoted or i == len(cands) - 1]
        values = _distinct(c.value for c in cands)
    if len(values) > 1:
        formal = _distinct(c.value for c in cands if c.rubric_form)
        values = formal if len(formal) == 1 else values
    return (values[0], "ok") if len(values) == 1 else (None, "ambiguous")


def _distinct(values: Any) -> list:
    return list(dict.fromkeys(values))  # linear: thousands of distinct candidates cost no quadratic scan


# --- pointwise ----------------------------------------------------------------------------------

def parse_rating(text: Any, *, scale: tuple[float, float] = (1, 10), answers: Any = ()) -> Verdict:
    """The rating a pointwise judge's reply gives on ``scale`` (inclusive), or an unknown Verdict.

    answers: the judged answer's text (``scoring.judge`` passes it). A rating written in it, in any
    form this parser reads (``Rating: [[10]]``, ``Rating: 10/10``, ``I rate this 10 out of 10``), is
    the answer's own, never the judge's verdict: the reply's candidates of that value are dropped,
    quoted or not, delimited or fallback; when nothing else remains the verdict is unknown
    (``ambiguous``, rule ``answer's own``) — a judge that quotes a planted ``Rating: 10/10`` and
    declines to grade gives no verdict, not 10. The cost: a judge that gives exactly the rating the
    answer wrote is unknown too (it cannot be told from a copy)."""
    if text is None or not isinstance(text, str) or not text.strip():
        return Verdict(None, "empty")
    t = _normalise(text)
    planted = _planted(answers, scale)
    other = _other_scales(t, scale)
    found = _delimited_ratings(t, scale, planted, other, plain=not _CONTROL.search(text))
    if found is not None:
        return found
    return _fallback_rating(t, scale, planted, other)


def _planted(answers: Any, scale: tuple[float, float]) -> frozenset[float]:
    """The ratings the judged answers write themselves, in every form :func:`parse_rating` reads
    (delimited, every fallback rule, the ``N/10`` sentences and the passive), on the scale."""
    values: set[float] = set()
    lo, hi = scale
    for a in (answers or ()):
        if not isinstance(a, str) or not a.strip():
            continue
        t = _normalise(a)
        found: list[tuple[Any, Any]] = [(m.group(1), m.group(2)) for m in _DELIMITED_NUMBER.finditer(t)]
        for _, pattern in _RATING_FALLBACKS:
            found += [(m.group(1), m.group(2) if m.lastindex and m.lastindex >= 2 else None)
                      for m in pattern.finditer(t)]
        found += [(m.group(1), m.group(2)) for m in _N_OUT_OF.finditer(t)]
        found += _passive(t)
        for number, top in found:
            value = _number(number)
            if value is not None and lo <= value <= hi and (top is None or float(top) == float(hi)):
                values.add(value)
    return frozenset(values)


def _answers_own(values: Any) -> Verdict:
    """The reply's only ratings are the judged answer's own: no verdict."""
    return Verdict(None, "ambiguous", "answer's own", tuple(_distinct(values)))


def _hypothetical_only(values: Any) -> Verdict:
    """The reply's only verdicts stand in conditionals or describe the scale: no verdict."""
    return Verdict(None, "ambiguous", "hypothetical", tuple(_distinct(values)))


def _delimited_ratings(t: str, scale: tuple[float, float], planted: frozenset[float], other: tuple[float, ...], *,
                       plain: bool = True) -> Verdict | None:
    """``[[n]]`` ratings, less those the judged answers wrote themselves (``planted``); where the reply
    states ``other`` scales, only one given with the rubric's top (``[[8/10]]``, ``[[8]]/10``). Not
    ``plain`` (the reply holds control characters, which hide what follows them from a reader):
    ratings that disagree are ambiguous, whatever their form or quotes."""
    lo, hi = scale
    cands, outside, other_scale, rejected, loose = [], [], [], [], []
    fences = [m.start() for m in re.finditer("```", t)]
    for m in _DELIMITED_NUMBER.finditer(t):
        value, top = _number(m.group(1)), m.group(2)
        if (value is None or _INDEXING_BEFORE.search(t[max(0, m.start() - 1):m.start()])
                or bisect.bisect(fences, m.start()) % 2):
            continue                # indexing (arr[[2]]) or inside a fenced code block: not a verdict
        if (top is not None and float(top) != float(hi)) or not lo <= value <= hi:
            outside.append(value)
            continue
        stated = _stated_top(t, m.start(), m.end())
        if stated is not None and stated != float(hi):
            other_scale.append(stated)      # "Rating: [[4]] out of 5", "[[4]] (1-5)": another scale's number
            continue
        if other and top is None and stated is None:
            other_scale.extend(other)       # "Scale: 1-5\nRating: [[4]]": a number on the scale the reply states
            continue
        if _not_concluded(t, m.start()):
            rejected.append(value)          # "not worth [[9]]", "Starting from [[10]]": no candidate
            continue
        unframed = not _concluding_frame(t, m.start())
        hypothetical = _hypothetical(t, m.start(), m.end())
        if unframed and not hypothetical:
            loose.append(value)     # "As the docs say [[1]]": no verdict, yet a rating it contradicts is none
        hypothetical = hypothetical or unframed
        # a revised or unframed token still counts in the agreement rule; a described, conditioned or
        # unframed one never decides
        formal = (plain and not unframed and not _stated_otherwise(t, m.start(), m.end())
                  and _in_rubric_form(t, m.start(), m.end()))
        cands.append(_Candidate(value, plain and _quoted(t, m.start(), m.end()), formal, hypothetical))
    if other_scale:
        return Verdict(None, "out_of_range", "other scale", tuple(other_scale))
    if planted and cands:
        mine = [c for c in cands if c.value not in planted]      # the answer's own rating, mentioned
        if not mine:
            rest = _fallback_rating(_DELIMITED_NUMBER.sub(lambda m: " " * len(m.group(0)), t), scale, planted, other)
            return rest if rest.value is not None else _answers_own(c.value for c in cands)
        cands = mine
    if rejected and not cands:
        rest = _fallback_rating(_DELIMITED_NUMBER.sub(lambda m: " " * len(m.group(0)), t), scale, planted, other)
        return rest if rest.value is not None and rest.value not in rejected else _hypothetical_only(rejected)
    if cands and all(c.hypothetical for c in cands):
        # "A perfect answer would get [[10]]. This one gets a 4.": no delimited verdict; a rating stated
        # in another form may be one, else none
        rest = _fallback_rating(_DELIMITED_NUMBER.sub(lambda m: " " * len(m.group(0)), t), scale, planted, other)
        stated = rest.value is not None and set(loose) <= {rest.value}
        return rest if stated else _hypothetical_only(c.value for c in cands)
    if cands:
        value, status = _agreeing(cands)
        # "As the docs say [[1]], … Overall rating: 9/10", "I would rate it 8 out of 10.\nRating: [[3]]":
        # a rating stated in another form that disagrees leaves no verdict (the fallbacks read the
        # reply with its delimited tokens blanked out; one that agrees, or none, changes nothing)
        said = _fallback_rating(_DELIMITED_NUMBER.sub(lambda m: " " * len(m.group(0)), t), scale, planted, other)
        if value is not None and said.value is not None and said.value != value and said.value not in planted:
            return Verdict(None, "ambiguous", "delimited", (*(c.value for c in cands), said.value))
        if value in rejected:       # "This is no [[9]]. Rating: [[9]]": the verdict is one the reply rejects
            return Verdict(None, "ambiguous", "delimited", (*(c.value for c in cands), *rejected))
        return Verdict(value, status, "delimited", tuple(c.value for c in cands))
    if outside:
        return Verdict(None, "out_of_range", "delimited", tuple(outside))
    tokens = [m.group(1) for m in _DELIMITED_ANY.finditer(t) if m.group(1).strip().lower() not in _TEMPLATE_ECHOES
              and not _INDEXING_BEFORE.search(t[max(0, m.start() - 1):m.start()])]
    return Verdict(None, "invalid_token", "delimited", tuple(tokens)) if tokens else None


def _in_rubric_form(t: str, start: int, end: int) -> bool:
    """``Rating: [[n]]`` said as the verdict, not the first of a list (the caller rules out a described
    or conditioned one: :func:`_stated_otherwise`)."""
    return bool(_RUBRIC_FORM.search(t[max(0, start - 20):start])
                and not _LIST_AFTER.match(t[end:end + 40]))


# "4 stars", "3 of the 5 steps", "9 points for effort": a count, not a rating
_NOT_A_RATING_AFTER = (r"(?!\s?(?:stars?|points?|of|out\sof|steps?|times|questions?|sub-?questions?|items?)\b"
                       r"|\s?[%/])")
_OUT_OF = r"\s?(?:(?:/|out\sof)\s?(\d+))?" + _NOT_A_RATING_AFTER
_H = r"[^\S\n]?"            # one horizontal space at most: a label's number is on the label's own line ...
# ... or alone on the next line ("Rating:\n7/10"); never the "1." of a list below the label
_OWN_LINE = (r"(?:\n(?=[\[*]{0,2}" + _H + _NUM + _H + r"(?:(?:/|out\sof)" + _H + r"\d+)?" + _H + r"[\]*]{0,2}" + _H
             + r"(?:\n|\Z)))?")
# "Score: 3 errors", "Grade: 5th-grade level": a number followed by a word (other than these) counts something
_THEN_A_WORD = (r"(?![^\S\n]?(?!(?:for|because|as|and|but|since|in|on|overall|which|with|here|given|due|is|or)\b)"
                r"(?-i:[a-z]))")
_RATING_FALLBACKS = (
    # "Rating: 8", "Overall rating: 8/10", "Score: 7 out of 10", "[Rating: 9]", "**Rating:** 6", "Overall: 7/10",
    # "Rating (out of 10): 8"
    ("label", re.compile(r"(?im)(?:^|(?<=[.!?] ))[ \"'*#>\-\[]{0,8}(?:(?:overall\s|final\s|my\s)?(?:rating|score|grade)"
                         r"(?:" + _H + r"\([^()\n]{0,24}\))?|overall)" + _H + r"\**" + _H + r"[:=]" + _H + r"\**" + _H
                         + _OWN_LINE + r"\**\[?" + _H + r"(" + _NUM + r")(?!\w)" + _OUT_OF + _THEN_A_WORD + r"\s?\]?")),
    # the whole reply is a number: "8", "[4]", "8/10", "5.0"
    ("bare", re.compile(r"\A\s?[\"']?\[?\s?(" + _NUM + r")\s?(?:/\s?(\d+))?\s?\]?[\"']?\s?\Z")),
    # "[Rating]\n\n[7/10]", "[The Start of Rating]\n[5]"
    ("bracket under a rating header", re.compile(
        r"(?i)\[[^\[\]\n]{0,30}\brating\b[^\[\]\n]{0,10}\]\s?\[\s?(" + _NUM + r")\s?(?:/\s?(\d+))?\s?\]")),
    # "I would rate the assistant's answer as a [9]"
    ("rate [n]", re.compile(r"(?i)\brate\b[^\n\[\]]{0,60}?[\"']?\[\s?(" + _NUM + r")\s?\][\"']?")),
    # "I would rate the response a 9 out of 10", "I rate it 7/10", "I give it an 8"
    ("first person", re.compile(r"(?i)\bI(?:\swould|\swill|'d)?\s(?:rate|give|score|grade)\b[^.\n\d]{0,60}?\b("
                                + _NUM + r")\b" + _OUT_OF)),
)
# "9 out of 10 sub-questions", "3/10 of the facts": a count of things; "6/10 for accuracy" a rating
_N_OUT_OF = re.compile(r"(?i)(?<![\d.])(" + _NUM + r")\s?(?:/|out\sof)\s?(10|100)\b"
                       r"(?!\s(?!(?:for|because|as|and|but|since|in|on|overall|which|with|here|given|due|is)\b)[a-z])")
_ABOUT_A_RATING = re.compile(r"(?i)\b(?:rat(?:e|ed|ing)|score[sd]?|grade[sd]?|answer|response)\b")
# A scale the reply states anywhere, before, beside or after its verdict: "Scale: 1-5", "using a 1-5
# scale", "a 1–5 Likert scale", "on a five-point scale", "5-pt scale", "(max 5)", "with 5 being the
# best", "where 10 is best", "5 = excellent", "out of 5 stars". One pass per reply (after NFKC): a
# top that is not the rubric's leaves only a number given with the rubric's top readable.
_TOP = r"(\d+|three|four|five|six|seven|ten|hundred)"
_STATED_SCALE = re.compile(
    r"(?i)\bscale\b[^\n\d]{0,20}?\b[01]\s?(?:-|–|to)\s?(\d+)\b"
    r"|\b[01]\s?(?:-|–|to)\s?(\d+)(?:\s?-?\s?point)?\s(?:[a-z]+\s)?scale\b"
    r"|\b" + _TOP + r"\s?-?\s?(?:point|pt)s?\s(?:[a-z]+\s)?scale\b"
    r"|\bmax(?:imum)?\b(?:\s(?:score|rating))?\s?(?:of|is|:|=)?\s?(\d+)\b"
    r"|\b" + _TOP + r"\s(?:being|is|=)\s(?:the\s)?(?:best|highest|top|max(?:imum)?|excellent|perfect)\b"
    r"|\b[01]\s(?:being|is|=)\s(?:the\s)?(?:worst|lowest|poor|bad|min(?:imum)?)\b"   # its bottom: no top, no rating
    r"|\bout\sof\s(\d+)\sstars?\b|\bstars?\sout\sof\s(\d+)\b")
_WORD_TOPS = {"three": 3.0, "four": 4.0, "five": 5.0, "six": 6.0, "seven": 7.0, "ten": 10.0, "hundred": 100.0}
_NUMBERS = re.compile(r"\d+(?:\.\d+)?")
_SEVERAL_THINGS = re.compile(r"(?i)\b(?:ratings|each|both|all three|respectively)\b|\bconfidence\b")
# "The assistant's answer is rated as a 10", "The rating for this conversation is 8.",
# "The assistant's rating remains at 8": the answer's own rating, stated as a fact.
_PASSIVE = re.compile(
    r"(?i)\b(?:(?:answer|response)\sis\srated\s(?:as\s)?|(?:rating|evaluation)(?:\s(?:for|of)\s(?:this|the)"
    r"(?:\sassistant's)?\s(?:answer|response|conversation))?\s(?:is|remains)\s(?:at\s|deservedly\s)?)"
    r"(?:an?\s)?(" + _NUM + r")(?!\.?\d)(?!\s?%)\b")


def _fallback_rating(t: str, scale: tuple[float, float], planted: frozenset[float],
                     other: tuple[float, ...]) -> Verdict:
    # "Score: 4 (on a 1-5 scale)": where another scale is named, only a number with the scale's own top
    # ("6 out of 10") is a rating
    t = _unfenced(t)
    own: list[float] = []
    hypothetical: list[Any] = []
    for rule, pattern in _RATING_FALLBACKS:
        matches = [m for m in pattern.finditer(t) if rule != "first person" or _one_number_around(t, m)]
        if matches and all(_hypothetical(t, m.start(1), m.end(1)) for m in matches):
            hypothetical += [m.group(1) for m in matches]   # "If it compiled, I would rate it a 9": none
            continue
        stated = {top for m in matches if (top := _stated_top(t, m.start(), m.end(1))) is not None}
        if stated - {float(scale[1])}:
            # "Rating (1-5): 4", "Rating: 4 (out of 5)", "Rating: 8 (out of 5)": a number on a scale the
            # judge states, not the rubric's — unknown, never read as x/10
            return Verdict(None, "out_of_range", "other scale", tuple(sorted(stated - {float(scale[1])})))
        cands = _in_scale(((m.group(1), m.group(2) if m.lastindex and m.lastindex >= 2 else None) for m in matches),
                          scale, keep_outside=False, explicit_only=bool(other))
        own += [c.value for c in cands if c.value in planted]
        cands = [c for c in cands if c.value not in planted]     # the answer's own rating, mentioned
        if cands and rule == "label" and any(_more_numbers_after(t, m.end(1)) for m in matches):
            # "Rating: 5 for style, 2 for accuracy.", "Rating: 10 is reserved for perfect answers; this
            # one gets a 6.": the sentence holds another rating, so the label's number is not the verdict
            return Verdict(None, "ambiguous", rule, tuple(c.value for c in cands))
        if cands:
            value, status = _agreeing(cands)
            return Verdict(value, status, rule, tuple(c.value for c in cands))
    for rule, found in (("N out of 10", _rating_sentences(t, hypothetical)), ("passive", _passive(t, hypothetical))):
        cands = _in_scale(found, scale, keep_outside=True, explicit_only=bool(other))
        own += [c.value for c in cands if c.value is not None and c.value in planted]
        cands = [c for c in cands if c.value is None or c.value not in planted]
        if cands:
            if any(c.value is None for c in cands):
                return Verdict(None, "out_of_range", rule, tuple(c.value for c in cands if c.value is not None))
            value, status = _agreeing(cands)
            return Verdict(value, status, rule, tuple(c.value for c in cands))
    if own:
        return _answers_own(own)
    if other:
        return Verdict(None, "out_of_range", "other scale", other)
    return _hypothetical_only(hypothetical) if hypothetical else Verdict(None, "no_verdict")


# A scale stated beside a verdict: in the label ("Rating (1-5):", "Rating (out of 5):") or right after
# its number on its line ("4 (out of 5)", "[[4]] out of 5", "4/5", "4 (on a scale of 1-5)", "4, 5-point
# scale"), or alone in parentheses on the next line ("Rating: 4\n(scale 1–5)").
_SCALE_TEXT = (r"(?:(?:out\sof|of|/)\s?(\d+)(?!\s?(?:stars?|points?)\b)|(?:on\s)?(?:an?\s)?(?:scale\s(?:of\s|from\s)?)?"
               r"[01]\s?(?:-|–|to)\s?(\d+)\b|(\d+)\s?-?\s?point\sscale\b)")
_SCALE_AFTER = re.compile(r"(?i)\A[^\S\n]?\**\]?\**[^\S\n]?(?:[,;(]|\n(?=\())?[^\S\n]?\(?[^\S\n]?" + _SCALE_TEXT)
_SCALE_IN_LABEL = re.compile(r"(?i)\(\s?" + _SCALE_TEXT + r"\s?\)")


def _other_scales(t: str, scale: tuple[float, float]) -> tuple[float, ...]:
    """The tops of the scales the reply states (:data:`_STATED_SCALE`) that are not the rubric's."""
    tops = (_WORD_TOPS.get(top.lower()) or float(top) for m in _STATED_SCALE.finditer(t) for top in m.groups() if top)
    return tuple(_distinct(top for top in tops if top != float(scale[1])))


def _stated_top(t: str, start: int, end: int) -> float | None:
    """The top of a scale stated with the verdict whose label begins at ``start`` and whose number
    ends at ``end`` (None when none is stated)."""
    line_start = t.rfind("\n", 0, start) + 1
    for m in (_SCALE_IN_LABEL.search(t[line_start:end]), _SCALE_AFTER.match(t[end:end + 48])):
        if m:
            top = next(g for g in m.groups() if g)
            return float(top)
    return None


def _more_numbers_after(t: str, end: int) -> bool:
    """Another number in the rest of the sentence (denominators and scales aside)."""
    stops = [i for i in (t.find(". ", end), t.find(".\n", end), t.find("\n", end), t.find("! ", end),
                         t.find("? ", end)) if i >= 0]
    rest = t[end:min([*stops, len(t), end + 200])]
    return bool(_NUMBERS.search(_STATED_SCALE.sub("", _DENOMINATOR.sub("", rest))))


def _one_number_around(t: str, m: re.Match) -> bool:
    """First person about one thing: "I would rate the reference answer 10 and the assistant's answer
    4" names two ratings, and the first is not the answer's."""
    start = max(t.rfind(".", 0, m.start()), t.rfind("\n", 0, m.start()), m.start() - 200) + 1
    ends = [i for i in (t.find(". ", m.end()), t.find("\n", m.end())) if i >= 0]
    sentence = t[start:min([*ends, len(t), m.end() + 200])]
    return len(_NUMBERS.findall(_DENOMINATOR.sub("", sentence))) == 1


def _in_scale(found: Any, scale: tuple[float, float], *, keep_outside: bool,
              explicit_only: bool = False) -> list[_Candidate]:
    """Candidates on the scale; an outside value is dropped, or kept as None (to make it unknown);
    ``explicit_only``: only numbers given with the scale's top."""
    lo, hi = scale
    out = []
    for number, top in found:
        value = _number(number)
        if value is None or (top is not None and float(top) != float(hi)) or (explicit_only and top is None):
            continue
        if lo <= value <= hi:
            out.append(_Candidate(value))
        elif keep_outside:
            out.append(_Candidate(None))
    return out


# A sentence ends at . ! ? not followed by a digit ("8.5" stays whole), a newline or the end; the two
# alternatives start with different characters, so no backtracking (the old form was quadratic).
_SENTENCE = re.compile(r"(?:[^.!?\n]|[.!?](?=\d))+(?:[.!?]|\n|$)")
# a denominator ("/10", "out of 10") or the scale itself ("on a scale of 1 to 10") is not a second number
_DENOMINATOR = re.compile(r"(?i)(?:/|out\sof)\s?\d+|\b[01]\s?(?:-|–|to)\s?\d+\b")


# "- **Helpfulness**: 8/10 - …", "2. Accuracy: 7/10": one criterion's score in a list, not the verdict
_CRITERION_ITEM = re.compile(r"\A\s?(?:[-*•]|\d{1,2}[.)])\s?\**[A-Za-z][A-Za-z ]{0,30}\**\s?[:\-–]")


def _rating_sentences(t: str, hypothetical: list[Any] | None = None) -> list[tuple[str, str]]:
    """``N/10`` or ``N out of 10`` in sentences about the rating of one thing (not a criterion's
    line in a list of scores)."""
    found = []
    for sentence in _SENTENCE.finditer(t):
        text = sentence.group(0)
        if _ABOUT_A_RATING.search(text) and not _SEVERAL_THINGS.search(text) and not _CRITERION_ITEM.match(text):
            found += _real(text, _N_OUT_OF.finditer(text), hypothetical)
    return found


def _real(text: str, matches: Any, hypothetical: list[Any] | None) -> list[tuple[Any, Any]]:
    """(number, top) of the matches; with ``hypothetical`` (a list, the reply's reading), none when all
    stand in conditionals, collected there instead (an answer's own rating counts in any sentence)."""
    matches = list(matches)
    if hypothetical is not None and matches and all(_hypothetical(text, m.start(1), m.end(1)) for m in matches):
        hypothetical += [m.group(1) for m in matches]
        return []
    return [(m.group(1), m.group(2) if m.lastindex and m.lastindex >= 2 else None) for m in matches]


def _passive(t: str, hypothetical: list[Any] | None = None) -> list[tuple[Any, Any]]:
    """Passive statements of the rating, in sentences holding no other number ("The assistant's
    rating is 9, while the reference answer is 10" compares two things: not a verdict)."""
    found = []
    for sentence in _SENTENCE.finditer(t):
        text = sentence.group(0)
        if len(_NUMBERS.findall(text)) == 1 and not _SEVERAL_THINGS.search(text):
            found += _real(text, _PASSIVE.finditer(text), hypothetical)
    return found


# --- pairwise -----------------------------------------------------------------------------------

_PAIR_TOKEN = re.compile(
    r"\[\[\s?\**\s?(A\s?>>\s?B|A\s?>\s?B|A\s?=\s?B|B\s?>\s?A|B\s?>>\s?A|A\s?<<\s?B|A\s?<\s?B|"
    r"B\s?<\s?A|B\s?<<\s?A|B\s?=\s?A|A|B|C|TIE)\s?\**\s?\]\]", re.I)
_PAIR_VALUE = {"A>>B": "A", "A>B": "A", "B<A": "A", "B<<A": "A", "A=B": "tie", "B=A": "tie", "C": "tie",
               "TIE": "tie", "B>A": "B", "B>>A": "B", "A<B": "B", "A<<B": "B", "A": "A", "B": "B"}
_OPTION_LINE = re.compile(r"^\s?(?:\d+[.)]|[-*])\s(?:Assistant\s[AB]\sis|Tie)[^:\n]{0,40}:\s?\[\[[AB<>=]+\]\]\s?$",
                          re.I)
# "I'll output [[A]] if A is better": the format restated, even with one token
_FORMAT_BEFORE = re.compile(r"(?i)\b(?:output|format|respond\swith|answer\swith|write|print)\b[^.\n]{0,30}\Z")

# a token labelled as the loser, the label opening its sentence (review r23 W-b): "The loser is [[A]]",
# "Worse answer: [[A]]", "Rejected: [[A]]", "I would avoid [[A]]", "Anything but [[A]]", "Less helpful:"
# ("A is less accurate: [[B]]" names B the winner: the label is A's predicate, not the sentence's opening)
_LOSER_BEFORE = re.compile(
    r"(?i)(?:\A|[.!?;]\s)[\s*#>\-]*(?:the\s|I\s(?:would|will|'d)\s|definitely\s|clearly\s)?"
    r"(?:loser|los(?:ing|es)|worse|weaker|worst|reject\w*|avoid\w*|inferior|anything\sbut|except|less\s\w+|"
    r"lower\s\w+|schlechter\w*|pire|peor|peggiore|pior|second\splace|runner-?up|last\splace)"
    r"(?:(?:\s[\w'’]+){0,4}\s?(?:is|was|:|-|—)|\s?(?:answer|response|one|assistant|option|choice))?\s?\**\s?\Z")
_NEGATED_AFTER = re.compile(r"(?i)\A\s?\**\s?(?:is|would\sbe)\s(?:off\sthe\stable|out\b|not\b|wrong\b|incorrect\b|"
                            r"ruled\sout)")
_IF_AFTER = re.compile(r"""\A["'”’`]?\s*(?:if|when)\b""", re.I)
_ECHO_AFTER = re.compile(r"""^["'”’`]?\s*(?:if\b|for\s+(?:a\s+)?tie\b|when\b)""", re.I)
_PAIR_FALLBACKS = (
    # "Final verdict: [B]", "My final verdict is: [A>B]"
    # ("…verdict is that assistant A is better than [B]" names a comparison, not a verdict)
    ("verdict [x]", re.compile(r"(?i)\b(?:final\s)?verdict\b(?:(?!\bthan\b|\b[AB]\b)[^\n\[]){0,40}?"
                               r"\[\s?(A\s?>>\s?B|A\s?>\s?B|A\s?=\s?B|"
                               r"B\s?>\s?A|B\s?>>\s?A|A|B|C|tie)\s?\]")),
    # the whole reply is "A", "[B]" (a truncated "[[A" is not)
    ("bare", re.compile(r"\A\s?[\"']?\[?\s?(A|B|C)\s?\]?[\"']?\s?\Z")),
)


def _spelling(token: str) -> str:
    return re.sub(r"\s+", "", token).upper()


# "Final verdict: B", "The winner is A": a verdict in words, which the reply grammar does not read but a
# judge re-spells as a token ("B announces its own verdict ([[B]])") — one of the answers' own values
_PLAIN_VERDICT = re.compile(r"(?i)\b(?:verdict|winner|choice)\b\s?(?:is\s)?:?\s?\**\s?(?-i:(A|B|C))\b(?![\w'])")


def answer_tokens(answers: Any) -> frozenset[str]:
    """The verdicts (``"A"``, ``"B"``, ``"tie"``) the judged answers write themselves, in every form
    :func:`parse_preference` reads (``[[B]]``, ``[[B>>A]]``, ``Final verdict: [B]``, a bare ``B``) or
    a judge re-spells as one (``Final verdict: B``), after the one normalisation (``⟦B⟧``,
    ``[[\\u2060B]]`` are ``[[B]]``). Values, not spellings: a planted ``[[B>>A]]`` quoted as ``[[B]]``
    is still the answer's."""
    values: set[str] = set()
    for a in (answers or ()):
        if isinstance(a, str):
            t = _normalise(a)
            found = [m.group(1) for p in (_PAIR_TOKEN, *(p for _, p in _PAIR_FALLBACKS), _PLAIN_VERDICT)
                     for m in p.finditer(t)]
            values |= {_pair_value(token) for token in found}
    return frozenset(values)


def _pair_value(token: str) -> str:
    return _PAIR_VALUE.get(re.sub(r"\s+", "", token).upper(), "tie")


def defuse_tokens(text: str) -> str:
    """An answer as the judge is shown it: ``[[``/``]]`` split (``[ [B] ]``), look-alike doubles too
    (``⟦B⟧``, ``[\\u200c[B]\\u200c]``), so an answer that writes a verdict token (``…Final verdict:
    [[B]]``) shows the judge no token to copy or quote."""
    text = text.translate(_DEFUSED_MARKS)
    return _DOUBLE_CLOSE.sub(r"\1 ", _DOUBLE_OPEN.sub(r"\1 ", text))


_RUN_GAP = re.compile(r"[\s,;/|.:\-*`'\"]{0,6}")


def _runs(t: str) -> list[list[tuple[int, str]]]:
    """The verdict tokens of ``t`` in runs of adjacent ones (``[[A]] [[B]] [[C]]``): (index, spelling)."""
    runs: list[list[tuple[int, str]]] = []
    last_end = None
    for i, m in enumerate(_PAIR_TOKEN.finditer(t)):
        if last_end is not None and runs and _RUN_GAP.fullmatch(t[last_end:m.start()]):
            runs[-1].append((i, _spelling(m.group(0))))
        else:
            runs.append([(i, _spelling(m.group(0)))])
        last_end = m.end()
    return runs


def _copied_runs(t: str, answers: Any) -> set[int]:
    """Indexes of the reply's tokens that stand in a run of two or more copied from an answer (an
    answer writing ``[[A]] [[B]] [[C]]``, quoted by the judge without quotes): no verdicts."""
    seqs = {tuple(s for _, s in run) for a in (answers or ()) if isinstance(a, str)
            for run in _runs(_normalise(a)) if len(run) > 1}
    grams = {seq[i:j] for seq in seqs for i in range(len(seq)) for j in range(i + 2, len(seq) + 1)}
    out: set[int] = set()
    for run in _runs(t):
        if len(run) > 1 and tuple(s for _, s in run) in grams:
            out |= {i for i, _ in run}
    return out


_DEFUSED_MARKS = str.maketrans({"⟦": "[ [", "〚": "[ [", "⟧": "] ]", "〛": "] ]"})
_BETWEEN = "(?:" + IGNORABLE.pattern + ")*"      # a zero-width character between two brackets joins them
_DOUBLE_OPEN = re.compile("([\\[［【])" + _BETWEEN + "(?=[\\[［【])")
_DOUBLE_CLOSE = re.compile("([\\]］】])" + _BETWEEN + "(?=[\\]］】])")


# One grammar for a per-answer score: a label ("Assistant A", "Response 1", "**Answer B**", "Score A",
# "Score for Assistant B", a bare "A"), a separator or verb (":", "—", "'s score:", "scored", "gets",
# "receives", "is rated") and a score ("8/10", "8 out of 10", "[[8]]", or a plain "8" after a label
# that says score)
_ANSWER_SCORE = re.compile(
    r"(?i)(?<![\w'\[])(?:(score|rating)\s(?:for\s|of\s)?)?(?:(?:assistant|response|answer|model)\s([AB12])"
    r"|(?-i:([AB])))\b(?:'s\s(?:answer|response|(score|rating)))?\**\s?"
    r"(?:[:\-–—=]|\b(scored|scores|gets|got|receives|earns|is\srated|rated)\b)\s?\**\s?(?:an?\s)?"
    r"(?:(score|rating)\sof\s)?(?:\[\[\s?(\d+(?:\.\d+)?)\s?\]\]|(\d+(?:\.\d+)?)(?!\.?\d)"
    r"(?:\s?(?:/|out\sof)\s?(\d+)\b|(?!\s?(?:%|(?!(?:while|whereas|and|but|vs|versus|compared)\b)(?-i:[a-z])))))")
_SIDE = {"A": "A", "B": "B", "1": "A", "2": "B"}


def _answer_scores(t: str, texts: list[str]) -> dict[str, set[tuple[float, float | None]]]:
    """The per-answer scores the judge states, by side, less any written in the judged answers."""
    found: dict[str, set[tuple[float, float | None]]] = {"A": set(), "B": set()}
    for m in _ANSWER_SCORE.finditer(t):
        label_says_score = m.group(1) or m.group(4) or m.group(5) or m.group(6)
        number, top = m.group(7) or m.group(8), m.group(9)
        if (m.group(8) and top is None and not label_says_score) or any(m.group(0) in a for a in texts):
            continue            # "A: 3 steps" names no score; a score an answer wrote is not the judge's
        found[_SIDE[(m.group(2) or m.group(3)).upper()]].add((float(number), float(top) if top else None))
    return found


def _scores_say(t: str, answers: Any = ()) -> str | None:
    """The preference the judge's own per-answer scores state (one score each for A and B, on one
    scale, different): ``"A"`` or ``"B"``; None when it states none, or several per answer. A score
    written in the judged answers themselves is not the judge's (an answer cannot plant one)."""
    found = _answer_scores(t, [_normalise(a) for a in (answers or ()) if isinstance(a, str)])
    if len(found["A"]) != 1 or len(found["B"]) != 1:
        return None
    (a, top_a), (b, top_b) = found["A"].pop(), found["B"].pop()
    if top_a != top_b or a == b:
        return None
    return "A" if a > b else "B"


# The judge attributing a token to an answer: "Assistant B ends with [[B]]", "B writes its own verdict
# [B]", "it announces ([[B]])" — a mention, not the judge's choice ("B writes better code: [[B]]" is one)
_ATTRIBUTED_BEFORE = re.compile(
    r"(?i)\b(?:ends?|ending|ended|concludes?|writes?|wrote|written|says?|said|includes?|contains?|claims?|"
    r"announces?|appends?|adds?|added|asks?\sfor|declares?|inserts?|plants?|demands?)\b"
    r"(?:(?!\b(?:better|worse|more|less|superior|prefer\w*|I|my)\b)[^.\n]){0,30}\Z")


@dataclass
class _PairCandidate:
    value: str
    quoted: bool = False
    in_answer: bool = False     # its value is one the judged answers wrote (:func:`answer_tokens`)
    mention: bool = False       # ... and the judge quotes it or attributes it to an answer


def _pair_candidate(t: str, value: str, start: int, end: int, written: frozenset[str]) -> _PairCandidate:
    quoted = _quoted(t, start, end)
    in_answer = value in written
    mention = in_answer and (quoted or bool(_ATTRIBUTED_BEFORE.search(t[max(0, start - 60):start])))
    return _PairCandidate(value, quoted, in_answer, mention)


def _pick(cands: list[_PairCandidate], rule: str) -> Verdict | None:
    """The verdict of a rule's candidates, one rule for delimited tokens and fallbacks alike: a token
    the answers wrote that the judge quotes or attributes to them is never the verdict (with nothing
    else, the reply gives none: rule ``answer's own``); other tokens of the answers' values are dropped
    when the rest disagree; then quoted echoes and the agreement rule (:func:`_agreeing`)."""
    if not cands:
        return None
    kept = [c for c in cands if not c.mention]
    if not kept:
        return Verdict(None, "ambiguous", "answer's own", tuple(c.value for c in cands))
    if len(_distinct(c.value for c in kept)) > 1 and not all(c.in_answer for c in kept):
        kept = [c for c in kept if not c.in_answer]     # the answers' own tokens, mentioned: not verdicts
    value, status = _agreeing([_Candidate(c.value, c.quoted or c.in_answer) for c in kept])
    return Verdict(value, status, rule, tuple(c.value for c in kept))


def _delimited_preference(t: str, answers: Any, written: frozenset[str]) -> Verdict | None:
    """The ``[[A]]``/``[[B]]``/``[[C]]`` reading of a reply (None: it holds no usable token)."""
    flagged = []
    fences = [m.start() for m in re.finditer("```", t)]
    for m in _PAIR_TOKEN.finditer(t):
        if bisect.bisect(fences, m.start()) % 2:
            continue                # inside a fenced code block: code or an example, not a verdict
        before = t[max(0, m.start() - 80):m.start()]
        value = _pair_value(m.group(1))
        # the line around the token, at most 80 characters each side: an option line is short, and a
        # whole-line slice per token would be quadratic on a long line of tokens
        line = before.rsplit("\n", 1)[-1] + m.group(0) + t[m.end():m.end() + 80].split("\n", 1)[0]
        # "I'll output [[A]] if A is better": the format restated, an echo even when alone
        restated = bool(_IF_AFTER.match(t[m.end():m.end() + 12]) and _FORMAT_BEFORE.search(before[-50:]))
        echo = bool(restated or _ECHO_AFTER.match(t[m.end():m.end() + 30]) or _OPTION_LINE.match(line))
        # "I won't choose [[A]]", "A beats [[B]]", "[[A]] is off the table": a token said not to be the verdict
        negated = bool(_not_concluded(t, m.start()) or _NEGATED_AFTER.match(t[m.end():m.end() + 30])
                       or _LOSER_BEFORE.search(_line_head(t, m.start())))
        hypothetical = (not _concluding_frame(t, m.start()) or _hypothetical(t, m.start(), m.end())) and not echo
        flagged.append((_pair_candidate(t, value, m.start(), m.end(), written), echo, restated or negated,
                        hypothetical))
    # An echoed instruction shows two or more different tokens each followed by if/for/when.
    drop_echoes = len(_distinct(c.value for c, echo, _, _ in flagged if echo)) >= 2
    copied = _copied_runs(t, answers) if written else set()
    kept = [(c, hypothetical) for i, (c, echo, dropped, hypothetical) in enumerate(flagged)
            if not dropped and not (drop_echoes and echo) and i not in copied]
    own = [(c, hypothetical) for c, hypothetical in kept if not c.mention]   # a mention is the answers' own
    if own and all(hypothetical for _, hypothetical in own):
        # "If A had been correct, I would choose [[A]]. But …": its only tokens are conditionals (with
        # others, they take part in the agreement rule: never the verdict against another token)
        return _hypothetical_only(c.value for c, _ in kept)
    if not kept and any(dropped for _, _, dropped, _ in flagged):
        return Verdict(None, "ambiguous", "delimited", ("negated",))
    found = _pick([c for c, _ in kept], "delimited")
    rejected = {c.value for c, echo, dropped, _ in flagged if dropped and not echo}
    if found is not None and found.value in rejected:
        # "A beats [[B]]. [[B]]", "I won't choose [[A]] … [[A]]": the verdict is one the reply rejects
        return Verdict(None, "ambiguous", "delimited", ("negated", found.value))
    return found


def parse_preference(text: Any, *, answers: Any = ()) -> Verdict:
    """The preference a pairwise judge's reply gives: ``"A"`` (the answer shown first is better),
    ``"B"``, ``"tie"``, or an unknown Verdict.

    answers: the two judged answers' texts (``scoring.pairwise`` passes them). A verdict an answer
    writes itself, in any form read here or re-spelled (``Final verdict: [[B]]``, ``[B]``, ``⟦B⟧``,
    ``Final verdict: B``, ``[[B>>A]]``; :func:`answer_tokens`), is the judge mentioning the answer:
    quoted or attributed to an answer (``B ends with [[B]]``) it is never the verdict, and a reply
    whose only tokens are such mentions gives none (rule ``answer's own``); unmarked, it is dropped
    when the reply's other tokens differ, so an answer cannot make an honest judge's verdict
    ambiguous. A run of two or more tokens copied from an answer (``B ends with [[A]] [[B]] [[C]]``)
    is dropped even when alone. A token in quotes (``B wrote "[[B]]". My verdict: [[A]]``) is an
    example or a quotation — the pointwise parser's rule, dropped when other candidates remain. The
    same drops apply to the fallbacks (``verdict … [B]``, a bare ``B``). The judge's own per-answer
    scores contradicting its token (``A: 8/10, B: 9/10. [[A]]``) make it ``ambiguous``."""
    if text is None or not isinstance(text, str) or not text.strip():
        return Verdict(None, "empty")
    t = _normalise(text)
    written = answer_tokens(answers)
    found = _delimited_preference(t, answers, written)
    if found is not None:
        scored = _scores_say(t, answers)
        if found.value is not None and scored is not None and scored != found.value:
            # "Assistant A: 8/10, Assistant B: 9/10. [[A]]": the judge's own scores contradict its token
            return Verdict(None, "ambiguous", "delimited", (*found.candidates, f"scores say {scored}"))
        return found
    t = _unfenced(t)
    for rule, pattern in _PAIR_FALLBACKS:
        # the candidate starts at its bracket: 'ends with "My final verdict: [B]"' quotes from before it
        matches = list(pattern.finditer(t))
        if matches and all(_hypothetical(t, m.start(1), m.end(1)) for m in matches):
            return _hypothetical_only(_pair_value(m.group(1)) for m in matches)  # "my verdict would be [A]"
        cands = [_pair_candidate(t, _pair_value(m.group(1)), max(m.start(), t.rfind("[", m.start(), m.start(1))),
                                 m.end(), written) for m in matches]
        found = _pick(cands, rule)
        if found is not None:
            return found
    return Verdict(None, "no_verdict")
