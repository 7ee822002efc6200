"""The one set of input rules shared by the engine, the ``%%llm`` magic and the widget.

Names of key variables, endpoint URLs, Python variable names, "did you mean" hints and one-line
messages are checked here and nowhere else, so every front end refuses the same things with
the same words.
"""
from __future__ import annotations

import difflib
import functools
import json
import keyword
import math
import numbers
import re
import reprlib
import unicodedata
import urllib.parse
from collections.abc import Iterable
from typing import Any

from ._display import IGNORABLE, invisible_char
from ._errors import ConfigError, InputError
from ._json import JSONTooDeep, loads
from ._redact import KEY_PREFIX, LOOKALIKE, Redactor, known_secrets, public_url, redact_shown

__all__ = [
    "one_line", "error_line", "is_env_name", "check_env_name", "check_url", "check_identifier", "check_binding_name",
    "did_you_mean", "closest", "check_bool", "check_int", "check_count", "check_number", "check_text", "is_real",
    "plain_number", "whole_number", "finite_number", "read_finite", "check_name_chars", "check_shown_name",
    "invisible_char", "invisible_error", "name_skeleton", "holds_secret", "IGNORABLE",
    "parse_json_option", "MAX_OPTION_DEPTH", "nested_deeper", "shown_value", "digits_shown",
]

# Upper-case only: keys such as 'gsk_…' or 'hf_…' are valid identifiers, so a looser rule would
# accept a pasted key as a "name" and store it in every row.
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*\Z")
_KEY_PREFIXES = ("sk-", "sk_", "pk-", "rk-", "xai-", "gsk_", "hf_", "AIza", "ghp_", "Bearer")
_URL = re.compile(r"https?://[^\s/]+(/\S*)?\Z")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def one_line(text: Any, limit: int | None = None) -> str:
    """``text`` (or an exception's message) folded onto one line, optionally shortened."""
    if isinstance(text, BaseException):
        line = " ".join(str(text).split()) or type(text).__name__
    else:
        line = " ".join(str(text).split())
    if limit is not None and len(line) > limit:
        line = line[: limit - 1] + "…"
    return line


# An integer this long is shown by its length: its digits say nothing, and str() refuses 4,301+ of them.
_LONG_INT = 10**20


def digits_shown(count: int) -> str:
    """How a message names an integer of ``count`` digits (``a 5,001-digit integer``)."""
    return f"a {count:,}-digit integer"


def _digit_count(value: int) -> int:
    """The decimal digits of ``value``, from its bit length (str() raises past 4,300 digits)."""
    size = abs(value)
    count = max(1, int(size.bit_length() * math.log10(2)) - 1)  # one low: the float product may round up
    while size >= 10**count:
        count += 1
    return count


class _Shown(reprlib.Repr):
    """reprlib's bounded repr — a few items, three levels, so a deep or huge value is neither
    recursed into nor printed whole — where a 21+-digit integer is named by its length and a
    text is cut to 60 characters (its length said) and never shown when it holds a secret."""

    def __init__(self) -> None:
        super().__init__()  # Python 3.11's Repr takes no settings
        self.maxlevel, self.maxstring, self.maxother = 3, 60, 60
        self.maxlist = self.maxtuple = self.maxdict = self.maxset = self.maxfrozenset = self.maxdeque = 4

    def repr_int(self, x: int, level: int) -> str:
        return digits_shown(_digit_count(x)) if abs(x) >= _LONG_INT else repr(x)

    def repr_str(self, x: str, level: int) -> str:
        head = x[: self.maxstring + 40]  # a key cut at the 60th character is still recognised
        if redact_shown(head) != head:
            return "a text that looks like your API key"
        if len(x) <= self.maxstring:
            return repr(x)
        return f"{x[: self.maxstring]!r}… ({len(x):,} characters)"


_SHOWN = _Shown()


def shown_value(value: Any) -> str:
    """The one way a message shows a value it refuses: short, on one line, safe for an integer of
    any length, a 100 kB text, a 100,000-deep list, an object whose repr raises, and a text
    holding the key (:class:`_Shown`)."""
    return one_line(_SHOWN.repr(value), 160)


def error_line(exc: BaseException) -> str:
    """``TypeName: message`` on one line (what front ends show instead of a traceback)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` Did you mean 'max_tokens'?`` for a near miss of one of ``known``, else ''."""
    close = closest(name, known)
    return f" Did you mean {close!r}?" if close is not None else ""


def closest(name: str, known: Iterable[str]) -> str | None:
    """The one of ``known`` that ``name`` most likely meant, or None when none is close."""
    known = list(known)
    lowered = name.lower()
    # The closest completion first: 'model' means 'models' more likely than 'model_params'.
    candidates = sorted((k for k in known if lowered == k or (len(lowered) >= 3 and k.startswith(lowered))), key=len)
    if not candidates:
        candidates = difflib.get_close_matches(lowered, known, n=1, cutoff=0.75)
    if not candidates and lowered.rstrip("s") in known:
        candidates = [lowered.rstrip("s")]
    if not candidates:  # one word of a longer name: 'model' → 'requested_model'
        candidates = [k for k in known if lowered in k.lower().split("_")[1:]]
    return candidates[0] if candidates else None


# --------------------------------------------------------------------------- names and URLs

def is_env_name(value: Any) -> bool:
    """True for an environment variable NAME; False for anything that may be a pasted key."""
    if not isinstance(value, str) or value.startswith(_KEY_PREFIXES) or not _ENV_NAME.match(value):
        return False
    # Long upper-case tokens without any word separator look like keys, not names.
    return not (len(value) >= 32 and "_" not in value)


def check_env_name(value: Any, what: str = "api_key_env") -> str:
    if not is_env_name(value):
        # Never echo the value: a user may have pasted a key where a variable name belongs.
        raise ConfigError(
            f"{what} must be the upper-case NAME of an environment variable (e.g. "
            "'OPENROUTER_API_KEY'), not a key value; put the key in that variable or in ./.env"
        )
    return value


def check_url(url: Any, what: str = "base_url") -> str:
    """An http(s) URL without whitespace, trailing slashes removed."""
    if not isinstance(url, str):
        raise ConfigError(f"{what} must be a string such as 'http://localhost:4000/v1', not {type(url).__name__}")
    url = url.strip().rstrip("/")
    problem = _url_problem(url)
    if problem:
        raise ConfigError(f"{what} {one_line(public_url(url), 80)!r} is not an http(s) URL ({problem}); pass e.g. "
                          f"{what}='http://localhost:4000/v1' or set LLMLAB_BASE_URL")
    return url


_MAX_URL = 4096  # longer than any endpoint's; a 70 KB "URL" from a project file is not one


def _url_problem(url: str) -> str:
    """Why ``url`` is no URL the SDK can send to ('' when it is one): every later reader — the
    trust check, the SDK's httpx — then reads it without raising."""
    if not _URL.match(url):
        return "no scheme and host"
    if len(url) > _MAX_URL:
        return f"over {_MAX_URL:,} characters"
    if invisible_char(url) is not None:
        return "it holds a control or invisible character"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # ValueError for a port that is not one (':9x', ':99999')
    except ValueError as exc:
        return one_line(str(exc), 60)
    if not parts.hostname:
        return "no host"
    if port == 0:
        return "port 0"
    return ""


def check_identifier(value: Any, what: str) -> str:
    """A Python variable name that is not a keyword."""
    if not isinstance(value, str) or not _IDENT.match(value):
        raise InputError(f"{what}={shown_value(value)} is not a valid Python variable name.")
    if keyword.iskeyword(value):
        raise InputError(f"{what}={value!r} is a Python keyword; pick another name.")
    return value


# Names IPython keeps in every namespace (history, the shell itself); rebinding one breaks
# later cells. The magic also refuses whatever the running shell lists as hidden.
_IPYTHON_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "display"})
_IPYTHON_HISTORY = re.compile(r"_+\Z|_i+\Z|_i?\d+\Z|_(oh|ih|dh|sh)\Z")


def check_binding_name(value: Any, what: str, reserved: Any = ()) -> str:
    """A variable name whose rebinding breaks nothing: not a keyword, builtin, dunder, or a name
    IPython relies on (its history and shell names, and ``reserved``)."""
    import builtins

    check_identifier(value, what)  # keywords; soft ones (match, case) are fine as names
    if value.startswith("__") and value.endswith("__"):
        kind = "a special (dunder) name"
    elif hasattr(builtins, value):
        kind = "a Python builtin"
    elif value in _IPYTHON_NAMES or _IPYTHON_HISTORY.match(value) or value in reserved:
        kind = "a name IPython relies on"
    else:
        return value
    raise InputError(f"{what}={shown_value(value)} is {kind}; rebinding it would break later cells: pick another "
                     "name, e.g. out=res.")


# --------------------------------------------------------------------------- typed values

# Deeper than any request option (a JSON schema nests a few levels per property); deeper values
# would reach Python's recursion limit in the checks and the SDK's encoder after them.
MAX_OPTION_DEPTH = 64


def whole_number(text: str) -> int | None:
    """``text`` as a plain decimal whole number (``"12"``), else None: ``str.isdigit`` accepts
    ``"²"``, which ``int`` refuses, and 30+ digits are a typo, not a count."""
    return int(text) if text.isascii() and text.isdecimal() and len(text) <= 30 else None


def parse_json_option(text: str, what: str, *, hint: str = "", depth: int = MAX_OPTION_DEPTH) -> Any:
    """JSON given as an option (a %%llm value, a CLI flag, a prompts file's line), read without
    recursion; bad JSON or nesting deeper than ``depth`` is a one-line InputError naming ``what``."""
    too_deep = f"{what}: JSON nested deeper than {depth} levels; no request option needs that"
    try:
        value = loads(text)
    except JSONTooDeep:
        raise InputError(too_deep) from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}" if exc.lineno > 1 else f"column {exc.colno}"
        raise InputError(f"{what}: invalid JSON ({exc.msg} at {where}){'; ' + hint if hint else ''}") from None
    except ValueError as exc:  # e.g. a number too long to read
        raise InputError(f"{what}: invalid JSON ({one_line(exc, 120)}){'; ' + hint if hint else ''}") from None
    if nested_deeper(value, depth):
        raise InputError(too_deep)
    return value


def nested_deeper(value: Any, depth: int) -> bool:
    """``value`` holds dicts/lists/tuples nested deeper than ``depth`` (read without recursion; a
    value that holds itself counts as deep)."""
    stack = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list, tuple)):
            if level >= depth:
                return True
            stack.extend((inner, level + 1) for inner in (item.values() if isinstance(item, dict) else item))
    return False


_KINDS = {"Co": "a private-use character", "Cn": "an unassigned code point", "Cs": "a lone surrogate"}


def invisible_error(name: str, what: str) -> InputError | None:
    """The one-line refusal of a name holding :func:`invisible_char`, naming the character, else None."""
    bad = invisible_char(name)
    if bad is None:
        return None
    kind = _KINDS.get(unicodedata.category(bad)) or unicodedata.name(bad, "a control character")
    return InputError(f"{what} holds the invisible character U+{ord(bad):04X} ({kind}); type the name without it")


# Unicode's confusables (UTS #39 confusables.txt, as confusable-homoglyphs 3.3.1 ships it) whose
# prototype is one ASCII character, for the code points that NFKC and LOOKALIKE leave non-ASCII:
# Armenian 'օ', Cyrillic 'ԁ', Lisu 'ꓳ', Cherokee 'Ꭺ', 'ǀ' as l, '−' as '-'; grouped by that
# character, code points in hex. Generated once (tests/test_names_round5.py make_table), so
# nothing is read or downloaded at run time.
_CONFUSABLES = (
    "-:2D7,2010,2011,2012,2013,2043,2212,2796,2CBA,FE58 .:6F0,A4F8,A60E,1D16D 2:1A7,3E8,14BF,A644,A6EF,A75A "
    "3:1B7,21C,417,4E0,2CCC,A76A,A7AB,118CA,16F3B,1D206 4:13CE,118AF 5:1BC,118BB 6:431,13EE,2CD2,118D5 "
    "7:104D2,118C6,1D212 8:222,223,9EA,A6A,B03,1031A 9:9ED,A67,B68,D6D,2CCA,A76E,118AC,118CC,118D6 "
    "A:13AA,15C5,A4EE,102A0,16F40 B:13F4,15F7,A4D0,A7B4,10282,102A1,10301 "
    "C:3F9,13DF,2CA4,A4DA,102A2,10302,10415,1051C,118E9,118F2,1F74C D:13A0,15DE,15EA,A4D3 "
    "E:13AC,22FF,2D39,A4F0,10286,118A6,118AE F:3DC,15B4,A4DD,A798,10287,102A5,10525,118A2,118C2,1D213,1D7CA "
    "G:50C,13C0,13F3,A4D6 H:13BB,157C,2C8E,A4E7,102CF J:37F,13AB,148D,A4D9,A7B2 K:13E6,16D5,2C94,A4D7,10518 "
    "L:13DE,14AA,2CD0,A4E1,1041B,10526,118A3,118B2,16F16,1D22A M:3FA,13B7,15F0,16D6,2C98,A4DF,102B0,10311 "
    "N:2C9A,A4E0,10513 O:555,9E6,B20,B66,12D0,2C9E,2D54,3007,A4F3,10292,102AB,10404 "
    "O:104C2,10516,114D0,118B5,118E0 P:13E2,146D,2CA2,A4D1,10295 Q:2D55 "
    "R:1A6,13A1,13D2,1587,A4E3,104B4,16F35,1D216 S:54F,13D5,13DA,A4E2,10296,10420,16F3A "
    "T:13A2,22A4,27D9,2CA6,A4D4,10297,102B1,10315,118BC,16F0A,1F768 "
    "U:54D,1200,144C,222A,22C3,A4F4,104CE,118B8,16F42 "
    "V:474,6F7,13D9,142F,2D38,A4E6,A6DF,1051D,118A0,16F08,1D20D W:51C,13B3,13D4,A4EA,118E6,118EF "
    "X:166D,16B7,2573,2CAC,2D5D,A4EB,A7B3,10290,102B4,10317,10322,10527 X:118EC "
    "Y:4AE,13A9,13BD,2CA8,A4EC,102B2,118A4,16F43 Z:13C3,A4DC,102F5,118A9,118E5 a:237A "
    "b:184,42C,13CF,1472,15AF c:3F2,2CA5,ABAF,1043D d:501,13E7,146F,A4D2 e:4BD,212E,AB32 "
    "f:584,1E9D,A799,AB35 g:18D,581,1D83 h:4BB,570,13C2 i:2DB,37A,4CF,13A5,2373,A647,AB75,118C3 j:3F3 "
    "l:1C0,4C0,6F1,16C1,2223,23FD,2C92,2D4F,A4F2,FFE8,1028A,10309 l:10320,16F28 n:578,57C "
    "o:3C3,585,6F5,966,A66,AE6,BE6,C02,C66,C82,CE6,D02 "
    "o:D20,D66,D82,E50,ED0,101D,1040,10FF,1D11,2C9F,AB3D,1042C "
    "o:104EA,118C8,118D7,1D6D4,1D70E,1D748,1D782,1D7BC p:2374,2CA3 q:51B,563,566 "
    "r:433,1D26,2C85,AB47,AB48,AB81 s:1BD,ABAA,10448,118C1 u:28B,57D,A79F,AB4E,AB52,104F6,118D8 "
    "v:475,2228,22C1,ABA9,11706,118C0 w:26F,461,51D,561,AB83,1170A,1170E,1170F "
    "x:D7,1541,157D,166E,292B,292C,2A2F y:263,3B3,4AF,10E7,1D8C,1EFF,213D,AB5A,118DC,1D6C4,1D6FE,1D738 "
    "y:1D772,1D7AC z:AB93,118C4")
_CONFUSABLE = {int(code, 16): target for group in _CONFUSABLES.split() for target, codes in [group.split(":", 1)]
               for code in codes.split(",")}
# Dots that are no letter, named so in Unicode (MIDDLE DOT '·', KATAKANA MIDDLE DOT, DOT OPERATOR …):
# in 'gpt-4·1' a reader sees the '.' of 'gpt-4.1'.
_DOT_NAME = re.compile(r"(MIDDLE DOT|DOT OPERATOR|BULLET OPERATOR|HYPHENATION POINT)\Z")
_OWN_DOT = re.compile("([ij])\u0307+")  # a dot above an i or j is its own: 'ı' + U+0307 reads as 'i'


@functools.lru_cache(maxsize=4096)
def _reads_as(char: str) -> str:
    """What one character of a decomposed name reads as: an ASCII lookalike as that character,
    every dash (Unicode Pd: U+2010 HYPHEN, EN DASH, U+1806 …) as '-', a space as ' '."""
    char = char.translate(LOOKALIKE)
    if char.isascii():
        return char
    if unicodedata.category(char) == "Pd":
        return "-"
    if char.isspace():
        return " "
    if _DOT_NAME.search(unicodedata.name(char, "")):
        return "."
    return _CONFUSABLE.get(ord(char), char)


def name_skeleton(name: str) -> str:
    """What a name reads as: compatibility forms folded (full-width 'ｍ' is 'm'), lookalike letters
    as the ASCII character they show (Cyrillic 'о', Greek 'ο', Armenian 'օ' are 'o': the redactor's
    table ``_redact.LOOKALIKE`` and Unicode's confusables), every dash as '-', a middle dot as '.',
    the dot of an i as the i's; runs of spaces as one. Accents stay ('ṃ' is not 'm'); ASCII names
    stay as written but for their spaces (upper and lower case, 'l' and '1' differ)."""
    if not name.isascii():
        # the table first: some of its letters decompose into a space and a mark ('˛', 'ͺ')
        folded = "".join(map(_reads_as, unicodedata.normalize("NFKD", name.translate(_CONFUSABLE))))
        name = unicodedata.normalize("NFC", _OWN_DOT.sub(r"\1", folded))
    return " ".join(name.split())


def check_name_chars(names: list[str], what: str = "model name", *, repeats: bool = False) -> None:
    """Names shown in every table read as themselves: no space at either end (a paste error:
    'gpt-4o-mini ' names no model), no invisible character (:func:`invisible_char`), and no two
    names that read the same — as written, or once lookalikes are folded (:func:`name_skeleton`:
    'gpt-4o' with a Cyrillic 'о', 'gpt‐4o' with U+2010 HYPHEN, full-width 'ｍ' and 'm' would be two
    rows both reading the same). ``repeats``: the same name written twice is one name (a policy
    may list a model twice)."""
    folded: dict[str, int] = {}
    for number, name in enumerate(names, 1):
        problem = invisible_error(name, f"{what} #{number}") or _end_space_error(name, f"{what} #{number}")
        if problem is not None:
            raise problem
        skeleton = name_skeleton(name)
        same = folded.setdefault(skeleton, number)
        if same != number and names[same - 1] == name:
            if repeats:
                continue
            raise InputError(f"{what} {name!r} is listed twice; list each model once (use n= for repeats)")
        if same != number:
            raise InputError(f"{what}s #{same} and #{number} read the same ({skeleton!r} once compatibility "
                             "forms, lookalike letters (Cyrillic, Greek, Armenian, Cherokee, Lisu …), dashes, "
                             "dots and spaces are folded); list each model once")


def _end_space_error(name: str, what: str) -> InputError | None:
    """A name starting or ending with a space (NBSP, an ideographic space too) can only be a paste error."""
    if name == name.strip():
        return None
    end = name[0] if name[0].isspace() else name[-1]
    where = "starts" if name[0].isspace() else "ends"
    kind = unicodedata.name(end, "a control character")
    return InputError(f"{what} {where} with a space (U+{ord(end):04X} {kind}): a paste error? type the name "
                      "without it")


def check_bool(name: str, value: Any) -> bool:
    # "false" is truthy: a string here is a mistake, not a yes.
    if not isinstance(value, bool):
        raise InputError(f"{name} must be True or False, not {shown_value(value)}")
    return value


def check_int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InputError(f"{name} must be a whole number from {lo:,} to {hi:,}, not {shown_value(value)}")
    return value


def check_count(name: str, value: Any, what: str = "") -> int:
    """A whole number ≥ 0 with no upper bound worth naming (a row limit: more than there is means all)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"{name} must be a whole number ≥ 0{what}, not {shown_value(value)}")
    return value


def check_number(name: str, value: Any, lo: float, hi: float) -> float:
    if not (is_real(value) and math.isfinite(value) and lo <= value <= hi):
        raise InputError(f"{name} must be a number from {lo:g} to {hi:g}, not {shown_value(value)}")
    return plain_number(value)


def read_finite(value: Any, *, lo: float = -math.inf, hi: float = math.inf, text: bool = False) -> float | None:
    """The one finite-number rule: ``value`` as a float from ``lo`` to ``hi``, else None.

    Booleans are not numbers (``True`` is not $1), NaN, the infinities and numbers a float cannot
    hold are refused, -0.0 is 0.0 (it would pass ``>= 0`` and print as "-0"). ``text``: a decimal
    string (an HTTP header, a price sheet's ``"1e-6"``) is read too, under the same rule."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and text:
        if len(value) > 100:
            return None
        try:
            number = float(value.strip())
        except ValueError:
            return None
    elif isinstance(value, numbers.Real):  # numpy's numbers too; numpy's bool_ is not Real
        try:
            number = float(value)
        except (OverflowError, ValueError, TypeError):
            return None
    else:
        return None
    if not (math.isfinite(number) and lo <= number <= hi):
        return None
    return number + 0.0  # -0.0 + 0.0 is 0.0


def finite_number(value: Any, *, lo: float = -math.inf, hi: float = math.inf, field: str = "value",
                  text: bool = False) -> float:
    """:func:`read_finite`, or a one-line :class:`InputError` naming ``field``."""
    number = read_finite(value, lo=lo, hi=hi, text=text)
    if number is None:
        raise InputError(f"{field} must be a finite number{_range(lo, hi)}, not {shown_value(value)}")
    return number


def _range(lo: float, hi: float) -> str:
    if math.isinf(lo) and math.isinf(hi):
        return ""
    if math.isinf(hi):
        return f" ≥ {lo:g}"
    if math.isinf(lo):
        return f" ≤ {hi:g}"
    return f" from {lo:g} to {hi:g}"


def plain_number(value: Any) -> int | float:
    """A number :func:`is_real` accepts as Python's own int or float (numpy's, or a subclass with
    its own repr, would not read back the same in generated code or JSON)."""
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def is_real(value: Any) -> bool:
    """A number a float can hold (an int of 400 digits is not: comparing it would overflow); numpy's
    numbers count (a threshold read from a DataFrame is one), booleans do not."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy's bool_ is not Real
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


def check_text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InputError(f"{name} must be a string, not {type(value).__name__}")
    return value


def holds_secret(text: str) -> bool:
    """The one rule for "this text holds a secret this process has read" (the key, a URL's
    credentials): the redaction every view applies (:func:`~llmlab.base._redact.redact_shown`)
    would change it. So what the log and the views would show as [redacted] — the key in any
    case, lookalike letters, escaped (%XX, \\uXXXX, &#NN;), encoded, split by a space or a
    newline, 8 of its characters — is what a name, a request body and a file name may not hold.
    A key's vendor prefix is no secret: "sk-proj-" alone is 8 characters of every OpenAI project
    key, and of every error message quoting one ("Incorrect API key provided: sk-proj-****abcd"),
    so what is redacted must also be redacted with the known secrets' prefixes cut off."""
    return redact_shown(text) != text and _without_prefixes(known_secrets())(text) != text


_VENDOR_PREFIX = re.compile(f"^{KEY_PREFIX}")


@functools.lru_cache(maxsize=4)
def _without_prefixes(secrets: tuple[str, ...]) -> Redactor:
    """A redactor of the secrets with their vendor prefix cut off (a secret that is only a prefix,
    or becomes shorter than 16 characters without it, is kept whole)."""
    cut = [value[len(m.group()):] if (m := _VENDOR_PREFIX.match(value)) and len(value) - len(m.group()) >= 16
           else value for value in secrets]
    return Redactor(cut)


def check_shown_name(value: str, name: str) -> None:
    """A name the log stores and every view shows (a model, a grader, a grading, a task) must not
    hold any readable form of a secret this process has read (the key, a URL's credentials): a
    one-line InputError that never echoes the value (:func:`holds_secret`, the rule request bodies
    and file names are checked by too: base/_credentials.check_no_secret)."""
    if holds_secret(value):
        raise InputError(f"{name} looks like your API key (it contains a secret this session has read); pass "
                         "the plain name, and keep the key in the variable api_key_env names")
