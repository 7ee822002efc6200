"""Keeping secrets out of everything llmlab stores or shows.

* :class:`Redactor` removes a secret (a key value, a URL's credentials) from text in every form a
  reader could join back: the value, any run of ``MIN_RUN`` or more characters of it, pieces of
  3+ characters that together spell such a run (a key split in halves, zero-width characters or
  markup between its letters, pieces out of order; 3-character ones at most ``_GAP`` apart, runs
  of 4+ characters no other letter or digit touches anywhere in the text), runs of 4+ characters
  apart that together span 12 of its characters (every other piece), in any letter case, full-width or other
  compatibility forms, lookalike letters (Cyrillic, Greek, small capitals, IPA: the table in
  ``_LOOKALIKE``; also enclosed letters, regional indicators, Braille letters and numbers
  (``⠼⠁⠃``), upside-down text), digits of any script or dingbat digits (``٤`` ``➃``: any Unicode
  digit value), Unicode tag characters, every character doubled or tripled (compared with
  the secret's repeats collapsed too), ``%XX`` / ``\\uXXXX`` / ``\\xXX`` / ``&#NN;`` escapes,
  ``\\N{LATIN SMALL LETTER S}`` named escapes, base64, base32 and hex (up to three deep, zlib or
  gzip compressed first; UTF-16/32 code units too; each short piece encoded on its own too,
  whatever separates the pieces: :meth:`Redactor._decoded_pieces`), any run of 8+ separated
  numbers decoded every way it reads (hex ``0x73,0x6b`` or ``{0x73,0x6b}``, CSS ``\\73 \\6b``,
  ``U+0073``, decimal, octal ``0o163`` or ``163 153 55``, binary ``01110011``; joined by any short
  run of characters that are no letter or digit, ``115-107``, ``0x73/0x6b``, or short words, ``115
  and 107``, or a unit: ``115px``, ``115x107``, ``73h``), an encoding spelled out with a separator
  between its characters (``c 2 s t``), reversed, ROT13 or ROT47,
  and masked echoes (``sk-ab***wxyz``) whose visible ends are the secret's. Not: pieces under 3
  characters (every other letter), other Caesar shifts, uuencode, EBCDIC hex, the key as one
  decimal integer.
  The runner applies it to every text field of a row before the row is written, and
  :meth:`Redactor.row` to the row's endpoint fields together (runs of 6+ characters spread over
  the reasoning, the answer and the served model name).
  :class:`StreamRedactor` does the same while a stream arrives.
* :func:`remember` records the secrets this process has read; :func:`redact_shown` removes them
  from anything shown — the one redaction every view (reprs, tables, widgets, reports, errors)
  goes through, on top of the row redaction.
* :func:`public_url` masks a URL's credentials (``user:password@``, credential query and
  ``;name=`` values, token-like path segments, the fragment): what is stored and shown;
  :func:`url_secrets` returns those parts, so they are redacted too.

This module imports nothing of llmlab: errors and the display sanitiser use it.
"""
from __future__ import annotations

import array
import base64
import binascii
import bisect
import codecs
import functools
import itertools
import operator
import re
import threading
import unicodedata
import urllib.parse
import zlib
from typing import Any

__all__ = ["LOOKALIKE", "Redactor", "StreamRedactor", "MIN_RUN", "REDACTED", "public_url", "url_secrets",
           "url_has_credentials", "without_userinfo",
           "remember", "known_secrets", "forget_all", "redact_shown", "CREDENTIAL_NAME", "KEY_PREFIX"]

MIN_RUN = 8  # an echo of 8+ consecutive characters of a secret counts as the secret
REDACTED = "[redacted]"
_BLANK = " " * len(REDACTED)  # what a marker reads as when text is searched again: nothing, a gap
_MIN_SECRET = 4  # shorter values would redact ordinary words
_MIN_PIECE = 3  # pieces of a split secret this long still count when they join into a run
# ... and runs this long when, apart, they span this many of its characters together (half of a
# key as every other 4-7 character piece spans 12-18; two chance 4-letter matches in a hex dump 8)
_MIN_APART, _APART_SPAN = 4, 12
_ROW_PIECE = 6  # across one row's fields: runs this long (a hex key's: 7) count together, wherever they are
_GAP = 48  # at most this many characters between the 3-character pieces of one split secret
# ... runs of _MIN_APART+ characters standing alone (no letter or digit touches them: 'Part 2:
# -Zq7XvB.') join over the whole text: such a run of a random key is no chance match in prose,
# and standing alone it is none inside a long word (a base64 blob holds chance 4-letter runs)
_FAR_HELD = 64  # a stream remembers this many of them it showed (distinct), to join later ones
_MAX_HOLD = 512  # a stream holds back at most this much text (twice, inside one word) while it may be a secret
# A stream's release is checked together with this much of what it showed before, and further
# back (up to 8 times as far) until that holds 64 letters: a piece may span any run of punctuation.
_SHOWN_CONTEXT, _SHOWN_LETTERS = 512, 64
_BLOCKS = 40  # a multiple of every encoding's block (base64 4, base32 8, hex 2, base85 5 characters)
_DECODE_DEPTH = 3  # base64 of hex of base64 of a key is still the key
_MAX_INFLATED = 1 << 16  # a zlib or gzip stream inside an encoding: at most this much of it is read
_ECHO = re.compile(r"\S*\*{3,}\S*")  # 'sk-ab***wxyz': what OpenAI-style 401s echo (errors only)
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_NOT_ALNUM_BYTES = bytes(c for c in range(256) if not (48 <= c <= 57 or 97 <= c <= 122))
# Escapes a reader (or a browser, a JSON parser, a shell) turns back into characters.
_ESCAPE = re.compile(r"%u([0-9a-fA-F]{4})|%([0-9a-fA-F]{2})|\\u\{([0-9a-fA-F]{1,6})\}|\\u([0-9a-fA-F]{4})"
                     r"|\\U([0-9a-fA-F]{8})|\\x([0-9a-fA-F]{2})|&#[xX]([0-9a-fA-F]{1,6});?|&#([0-9]{1,7});?"
                     r"|\\([0-3][0-7]{2})"  # ... and octal (\163)
                     r"|\\N\{([A-Za-z0-9 -]{2,88})\}")  # ... and Python's named ones (\N{LATIN SMALL LETTER S})
_ESCAPE_BASE = {7: 10, 8: 8}  # the decimal and octal groups; the others are hex (but the name's)
_NAMED_ESCAPE = 9
_NAMED_TAIL = re.compile(r"(?:\\N\{[A-Za-z0-9 -]{2,88}\})*(?:\\N(?:\{[A-Za-z0-9 -]{0,88})?|\\)?\Z")  # text's last ones
# Tokens that may be an encoding of a secret: decoded and searched like text.
# Quoted-printable (=73=6B=2D…).
_QUOTED_PRINTABLE = re.compile(r"(?:=[0-9a-fA-F]{2}){8,}")
# Any run of 8+ numbers, each a word of its own (no letter or digit touches it), between
# separators: byte or code point values in hex (0x73, \\73 CSS escapes, U+0073, {0x73,0x6b} C/JS
# arrays, 0073 006b UTF-16 units), decimal, octal (0o163, 163) or binary (01110011). Decoded every
# way it can be. A separator is whatever a reader skips between two numbers: spaces with up to 4
# other characters that are no letter or digit (',' '-' '.' '/' '+' '_' '·' '•' '–' '><' ', '
# ' - ' '},{'), with up to two short words among them (' and ', ', and then ': each with a letter
# past 'f', so it is no hex number); or nothing before a CSS escape (\\73\\6b). The quantifiers
# are possessive: a long run of spaces or punctuation is read once, not split every way.
_NUMBER = r"(?:0[xXoO]|\\[xX]?|[uU]\+)?[0-9a-fA-F]{1,8}"
_GAP_CHARS = r"\s*+(?:(?:[^\w\s]|_)\s*+){0,4}+"
# A number may carry a unit, a letter past 'f' and one more after a digit ('115px', '115x' glued
# to the next number: '115x107x45') or assembler's 'h' ('6Bh'); a unit glued to the next number is
# its separator. A reader drops it as they drop a comma.
_UNIT = r"(?:(?<=[0-9])[g-zG-Z][A-Za-z]?|(?<=[0-9a-fA-F])[hH])"
_NUMBER_END = rf"(?:{_UNIT}(?=[0-9])|{_UNIT}?(?![0-9A-Za-z]))"
_NUMBER_SEP = (rf"(?:(?=[\W_]){_GAP_CHARS}(?:[A-Za-z]{{0,4}}[g-zG-Z][A-Za-z]{{0,4}}(?=[\W_]){_GAP_CHARS}){{0,2}}"
               r"|(?=\\)|(?<=[g-zG-Z])(?=[0-9]))")
# Each number's own end is checked inside the repeat, so the repeat is possessive too: a plain
# repeat keeps a backtracking frame per number (230 MB for 1 MB of '1 2 1 2'), a possessive one none.
_ALONE_NUMBER = rf"{_NUMBER}{_NUMBER_END}"
_NUMBER_RUN = re.compile(rf"(?<![0-9A-Za-z]){_ALONE_NUMBER}(?:{_NUMBER_SEP}{_ALONE_NUMBER}){{7,}}+")
# ... and 3+ such numbers, one with a digit (prose, 'a bad face', holds none): one piece's byte
# codes (115-107-45, 73 6b 2d, 0x73/0x6b), read with the other pieces (_decoded_pieces). A run
# of 8+ is matched whole by both, so it is decoded once (_readings).
_NUMBER_GROUP = re.compile(rf"(?<![0-9A-Za-z]){_ALONE_NUMBER}(?:{_NUMBER_SEP}{_ALONE_NUMBER}){{2,}}+")
_DIGIT = re.compile(r"\d")
# ... the numbers a stream's text ends with, up to a separator: they may still become such a run
_NUMBERS_SO_FAR = re.compile(rf"(?<![0-9A-Za-z]){_ALONE_NUMBER}(?:{_NUMBER_SEP}{_ALONE_NUMBER})*+{_NUMBER_SEP}")
_NUMBERS_ONLY = re.compile(r"[0-9a-fA-FxXoOuU\W_]*")  # ... and text that holds nothing else
# ... its numbers' digits: a number stands alone (the letters of ' and ' are not three of them)
# or after a unit glued to it (115x107)
_NUMBER_DIGITS = re.compile(r"(?:\\[xX]?|(?<![0-9A-Za-z])(?:0[xXoO]|[uU]\+)?|(?<=[0-9][g-zG-Z])"
                            r"|(?<=[0-9][g-zG-Z][A-Za-z])|(?<=[0-9a-fA-F][hH]))"
                            rf"([0-9a-fA-F]{{1,8}}){_NUMBER_END}")
_BINARY = re.compile(r"[01]{64,}")  # bits joined: 0111001101101011…
# One character of an encoding's alphabet, then a separator, 12+ times: base64 (or hex, base32)
# spelled out with a space or comma between its characters (a possessive repeat, as _NUMBER_RUN's).
_SPACED = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/=](?:[\s,;|'\"`]{1,3}[A-Za-z0-9+/=](?![A-Za-z0-9+/=])){12,}+")
_REPEATS = re.compile(r"(.)\1+")  # a character doubled or tripled: sskk--pprroojj
_NON_ALNUM_B64 = re.compile(r"[^A-Za-z0-9+/=]+")
# ... a line taken by the (possessive) repeat is one another line follows
_BASE64_LINES = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{4,}(?:\r?\n[A-Za-z0-9+/]{4,}(?=\r?\n[A-Za-z0-9+/]))*+"
                           r"\r?\n[A-Za-z0-9+/]+={0,2}(?![A-Za-z0-9+/=])")
_BASE85 = re.compile(r"[0-9A-Za-z!#$%&()*+\-;<=>?@^_`{|}~]{15,}|[!-u]{15,}")  # base85, Ascii85
_BASE64 = re.compile(r"[A-Za-z0-9+/]{12,}={0,2}|[A-Za-z0-9_-]{12,}={0,2}")
_BASE32 = re.compile(r"[A-Z2-7]{16,}=*|[a-z2-7]{16,}=*")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2}){8,}|(?:[0-9a-fA-F]{2}[:. -]){7,}[0-9a-fA-F]{2}")
# A short token that may encode a piece of a secret (_decoded_pieces): a maximal run, 4 to 64
# characters, of one encoding's own alphabet — base64 (its '+' '/' and padding also %-quoted),
# base64url, letters and digits (base32 in either case, base64 joined by '/' '+' '-'), hex digits
# — so whatever stands between two tokens (backticks, '**', '.',
# ':', '/', '<br>', 'part1=', a sentence's full stop) only separates them. Base85's alphabet holds
# punctuation: its tokens are the text between spaces, commas, semicolons, pipes, quotes, brackets.
# First the runs of all these alphabets together (one fast search); only those with a digit, '+',
# '/', '=', '%', a lower-upper step or two capitals (not a plain word), and of at most 512
# characters (a longer one is a blob: an image, a hash dump; decoded whole, see _candidates; its
# every piece decoded joined chance pieces of the key in a megabyte of random base64) are searched.
_PIECE_SPAN = re.compile(r"(?<![A-Za-z0-9+/=%_-])[A-Za-z0-9+/=%_-]{4,512}(?![A-Za-z0-9+/=%_-])")
_PIECE_HINT = re.compile(r"[0-9+/=%]|[a-z][A-Z]|[A-Z]{2}")
_PIECE_RUNS = tuple(re.compile(f"(?<!{c})(?:{c}{more}){{4,64}}{pad}(?!{c}{more})") for c, more, pad in (
    (r"[A-Za-z0-9+/]", "|%2[BbFf]", r"(?:={1,2}|(?:%3[Dd]){1,2})?"), (r"[A-Za-z0-9_-]", "", "={0,2}"),
    (r"[A-Za-z0-9]", "", "={0,2}")))
# ... and hex digits (0x736b2d70: the 'x' ends the run), searched in the whole text at once; hex of
# text always holds a digit (an ASCII byte's first is 2-7)
_PIECE_HEX = re.compile(r"(?<![0-9a-fA-F])(?=[a-fA-F]{0,64}[0-9])[0-9a-fA-F]{4,64}(?![0-9a-fA-F])")
_QP_RUN = re.compile(r"(?:=[0-9a-fA-F]{2}){3,24}(?![0-9a-fA-F])")
_B85_TOKEN = re.compile(r"(?<![^\s,;|'\"()\[\]{}])[^\s,;|'\"()\[\]{}]{5,40}(?![^\s,;|'\"()\[\]{}])")
_B85_PUNCT = re.compile(r"[!#$%&*<>?@^`~]")
_SPACED_TOKEN = re.compile(r"(?<!\S)\S{5,40}(?!\S)")
_B85_ONLY = re.compile(r"[,;|'\"()\[\]{}]")  # characters that split the other tokens, not base85 ones
_QP_TOKEN = re.compile(r"(?:=[0-9a-fA-F]{2})+")
_HEX_TOKEN = re.compile(r"(?:[0-9a-fA-F]{2})+")
_B32_TOKEN = re.compile(r"[A-Z2-7]{5,}=*|[a-z2-7]{5,}=*")
_B64_TOKEN = re.compile(r"[A-Za-z0-9+/]+={0,2}|[A-Za-z0-9_-]+={0,2}")
_BITS_TOKEN = re.compile(r"(?:[01]{8})+")
_MASK_CHARS = "*•●·∙⋅×."
_MASK = re.compile(r"[*•●·∙⋅×]{3,}|\.{3,}|…+")
_WORD_BEFORE = re.compile(r"[\w-]{0,64}\Z")
_WORD_AFTER = re.compile(r"[\w-]{0,64}")
_ENCODED_HINT = re.compile(r"[0-9+/=]|[a-z][A-Z]")  # words and identifiers are rarely base64
_TRAILING_WORD = re.compile(r"\S*$")
_SPACE = re.compile(r"\s")
_LAST_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/](?=[A-Za-z0-9+/]*\Z)")
_CACHED_CHARS, _CACHE_SIZE = 4096, 2048

# Letters a reader takes for ASCII ones that compatibility decomposition (NFKD) does not fold:
# Cyrillic and Greek lookalikes (а → a, ο → o); Latin small capitals, modifier small capitals and
# IPA letters (ꜱᴋ → sk, ɑ → a, ɡ → g, ı → i: every code point named LATIN LETTER SMALL CAPITAL X,
# MODIFIER LETTER SMALL CAPITAL X, LATIN SMALL LETTER DOTLESS/SCRIPT X, alpha or iota whose NFKD
# form is not ASCII already, listed from unicodedata 15.0, nothing downloaded); and Unicode tag
# characters U+E0020-E007E ("ASCII smuggling": invisible in most views, chr(c - 0xE0000) is the
# text they carry). A key spelled with them is still the key to a reader.
_LOOKALIKE: dict[int, int] = {
    **str.maketrans("аеорсухіјѕкмнтвАЕОРСУХІЈЅКМНТВαοριυνκτΑΕΟΡΙΥΝΚΤΒΖΗΜΧ",
                    "aeopcyxijskmhtbAEOPCYXIJSKMHTBaopiuvktAEOPIYNKTBZHMX"),
    **str.maketrans("ıƖȷɑɡɢɩɪɴʀʏʙʜʟᴀᴄᴅᴇᴊᴋᴍᴏᴘᴛᴜᴠᴡᴢᶦᶫᶰᶸꜰꜱꞯꭋ𐞄𐞒𐞖𐞪𐞲", "iijaggiinrybhlacdejkmoptuvwzilnufsqrbghry"),
    **{0xE0000 + code: code for code in range(0x20, 0x7F)},
    # ... letters with no compatibility form at all: negative circled and negative squared
    # capitals and regional indicators (🅢🅚, 🆂🅺, 🇸🇰: U+1F150, U+1F170, U+1F1E6 + 0-25), Braille
    # letters (⠎⠅; its digits are a number sign and the letters a-j: _braille_readings) and the turned
    # letters of upside-down text (ɐ ǝ ʞ ʇ …; its b d n p q u are ASCII letters, read as they are)
    **{start + i: ord("A") + i for start in (0x1F150, 0x1F170, 0x1F1E6) for i in range(26)},
    **str.maketrans("⠁⠃⠉⠙⠑⠋⠛⠓⠊⠚⠅⠇⠍⠝⠕⠏⠟⠗⠎⠞⠥⠧⠺⠭⠽⠵", "abcdefghijklmnopqrstuvwxyz"),
    **str.maketrans("ɐɔǝɟƃɥᴉɾʞɯɹʇʌʍʎ", "acefghijkmrtvwy"),
    # ... and every character with a digit value as that ASCII digit: each script's decimal digits
    # (Arabic-Indic ٤, Devanagari ४, Thai ๔, NKo, Adlam, …: Unicode Nd) and the dingbat, negative
    # circled and other enclosed digits (➃ ❹ ④ ⑷ ⒋), which NFKD leaves as they are or not all
    # fold; read from unicodedata, not a list of scripts. Every one is below U+20000 (planes 0-1
    # hold all scripts; the whole range costs 0.12 s at import, this part 14 ms).
    **{code: ord("0") + digit for code in range(0x80, 0x20000)
       if (digit := unicodedata.digit(chr(code), -1)) >= 0},
    0x1F10B: ord("0"), 0x1F10C: ord("0")}  # the dingbat sets' zeros (🄋 🄌), which Unicode gives no digit value
LOOKALIKE = _LOOKALIKE  # the one table: model names are compared through it too (base/_validate.name_skeleton)
# Braille numbers: the number sign, then the letters a-j as the digits 1-9, 0 (⠼⠁⠃ is 12). A run
# of Braille cells, with up to 4 characters that are no letter or digit between two (⠎⠅-⠼⠓).
_BRAILLE_NUMBER = "\u283c"
_BRAILLE_DIGITS = dict(zip("⠁⠃⠉⠙⠑⠋⠛⠓⠊⠚", "1234567890", strict=True))
_BRAILLE_RUN = re.compile(r"[\u2801-\u28ff](?:[^\w\u2801-\u28ff]{0,4}[\u2801-\u28ff])*")



def _fold(text: str) -> str:
    """What text reads as, for matching: lookalike letters and tag characters as the ASCII they
    show or carry, compatibility decomposition (full-width ｓ → s, é → e), lower case, letters
    and digits only (zero-width joiners, marks and punctuation vanish). Character by character,
    so it maps back to positions (see :func:`_units`)."""
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text.translate(_LOOKALIKE))
    return text.lower().encode("ascii", "ignore").translate(None, _NOT_ALNUM_BYTES).decode("ascii")


def _may_escape(text: str) -> bool:
    return "%" in text or "\\" in text or "&" in text


@functools.lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    return _fold(char)


def _unescape(match: re.Match) -> str:
    group, value = next((i, g) for i, g in enumerate(match.groups()) if g is not None)
    if group == _NAMED_ESCAPE:
        try:
            return unicodedata.lookup(value)
        except KeyError:  # no such character: the text stays as written
            return match.group()
    code = int(value, _ESCAPE_BASE.get(group, 16))
    return chr(code) if code <= 0x10FFFF else ""


def _units(text: str) -> list[tuple[str, int, int]]:
    """``text`` as (what it reads as, start, end) units: an escape is one unit."""
    if text.isascii() and not _may_escape(text):
        lowered = text.lower()
        return [(c, i, i + 1) for i, c in enumerate(lowered) if "a" <= c <= "z" or "0" <= c <= "9"]
    units: list[tuple[str, int, int]] = []
    last = 0
    for match in _ESCAPE.finditer(text):
        units += [(_fold_char(c), i, i + 1) for i, c in enumerate(text[last:match.start()], last)]
        units.append((_fold_char(_unescape(match)), match.start(), match.end()))
        last = match.end()
    units += [(_fold_char(c), i, i + 1) for i, c in enumerate(text[last:], last)]
    return units


def _skeleton(text: str) -> str:
    """The letters and digits ``text`` reads as, escapes decoded (fast: no positions)."""
    if _may_escape(text):
        text = _ESCAPE.sub(_unescape, text)
    return _fold(text)


def _alnum_positions(text: str) -> tuple[array.array[int], array.array[int]]:
    """Where each letter or digit of ASCII text starts and ends (at C speed), as arrays: 8 bytes a
    position, where lists of ints took 72 MB for 1 MB of text."""
    starts = array.array("q", itertools.compress(range(len(text)), map(_ALNUM.__contains__, text.lower())))
    return starts, array.array("q", map((1).__add__, starts))


def _mapped_skeleton(text: str) -> tuple[str, array.array[int], array.array[int]]:
    """:func:`_skeleton`, and for each of its characters where in ``text`` it starts and ends."""
    if text.isascii() and not _may_escape(text):  # a letter or digit is one character
        return _fold(text), *_alnum_positions(text)
    chars: list[str] = []
    starts, ends = array.array("q"), array.array("q")
    for folded, start, end in _units(text):
        for char in folded:
            chars.append(char)
            starts.append(start)
            ends.append(end)
    return "".join(chars), starts, ends


class _Piece:
    __slots__ = ("start", "end", "variant", "key_start", "length")

    def __init__(self, start: int, end: int, variant: int, key_start: int, length: int) -> None:
        self.start, self.end, self.variant, self.key_start, self.length = start, end, variant, key_start, length


_START, _KEY_START = operator.attrgetter("start"), operator.attrgetter("key_start")


class Redactor:
    """Removes secret values, and every readable form of them, from text."""

    def __init__(self, secrets: list[str]) -> None:
        values = sorted({s for s in secrets if isinstance(s, str) and len(s) >= _MIN_SECRET}, key=len, reverse=True)
        # ... and ROT47 of the secret (its letters become punctuation, so it is matched as written)
        self._values = [v.lower() for v in values] + [_rot47(v).lower() for v in values if len(v) >= MIN_RUN]
        self._runs = {v[i:i + MIN_RUN] for v in self._values for i in range(len(v) - MIN_RUN + 1)}
        # Every run of MIN_RUN characters of a secret contains one of its 4-grams that start at a
        # multiple of 4: a cheap test before the exact search.
        self._probes = {v[i:i + 4] for v in self._values for i in range(0, len(v) - 3, 4)}
        # Each variant: what the secret reads as, each character's position in the secret, and
        # how many characters of the secret a piece must span to count.
        variants: dict[str, tuple[list[int], int]] = {}
        for value in values:
            units = [(c, start) for folded, start, _ in _units(value) for c in folded]
            skeleton, where = "".join(c for c, _ in units), [start for _, start in units]
            if len(value) >= MIN_RUN:  # a short secret is matched as written only (see _whole_values)
                # the secret as written, backwards and in ROT13 (forms a reader undoes at a glance)
                variants.setdefault(skeleton, (where, MIN_RUN))
                variants.setdefault(skeleton[::-1], (where[::-1], MIN_RUN))
                variants.setdefault(codecs.encode(skeleton, "rot13"), (where, MIN_RUN))
        self._variants = list(variants)
        self._where = [variants[v] for v in self._variants]
        # a hex key's pieces occur by chance 16^6 times more often in hex text: one more character
        self._row_piece = [_ROW_PIECE + (not v.strip("0123456789abcdef")) for v in self._variants]
        # ... and each variant with its repeated characters collapsed (an echo with every character
        # doubled reads as the key; compared collapsed, a key's own doubled letters still match)
        self._collapsed = {run for v in self._variants for c in [_REPEATS.sub(r"\1", v)]
                           for run in (c[i:i + MIN_RUN] for i in range(len(c) - MIN_RUN + 1))}
        self._grams: dict[str, list[tuple[int, int]]] = {}
        for v, variant in enumerate(self._variants):
            for k in range(len(variant) - _MIN_PIECE + 1):
                self._grams.setdefault(variant[k:k + _MIN_PIECE], []).append((v, k))
        # One search for all pieces' starts (a trie as a regular expression: one branch per position).
        self._gram_re = re.compile(f"(?=({_trie(self._grams)}))") if self._grams else None

        self._cache: dict[str, str] = {}

    def __bool__(self) -> bool:
        return bool(self._values)

    def __call__(self, text: Any) -> Any:
        if not isinstance(text, str) or not text or not self:
            return text
        if len(text) <= _CACHED_CHARS and text in self._cache:  # a row's prompt, params, endpoint repeat
            return self._cache[text]
        spans = self._spans(text, _DECODE_DEPTH)
        out = _replace(text, spans) if spans else text
        if len(text) <= _CACHED_CHARS:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            self._cache[text] = out
        return out

    def row(self, texts: list[Any]) -> list[Any]:
        """One row's endpoint text fields (the answer, the reasoning, the served model name, …),
        each redacted, then the runs of _ROW_PIECE+ characters of a secret left in them that span
        MIN_RUN of its characters together across the fields: a key split over the reasoning and
        the answer, which a reader joins by eye. Runs that long do not occur by chance (two 6-letter
        pieces of a random key in one row), so no distance between them is asked."""
        out = [self(text) for text in texts]
        if self._gram_re is None or sum(1 for t in out if isinstance(t, str) and t) < 2:
            return out
        found: dict[int, list[tuple[int, int, int, int, int]]] = {}  # variant → (field, start, end, key low, high)
        for field, text in enumerate(out):
            if not isinstance(text, str) or not text:
                continue
            skeleton, starts, ends = _mapped_skeleton(_opaque(text))
            for p in self._pieces(skeleton):  # each a run of the secret where it stands in the text
                if p.length >= self._row_piece[p.variant]:
                    where = self._where[p.variant][0]
                    low, high = sorted((where[p.key_start], where[p.key_start + p.length - 1]))
                    found.setdefault(p.variant, []).append((field, starts[p.start], ends[p.end - 1], low, high))
        spans: dict[int, list[tuple[int, int]]] = {}
        for v, runs in found.items():
            if len({r[0] for r in runs}) > 1 and _union(r[3:] for r in runs) >= self._where[v][1]:
                for field, start, end, _, _ in runs:
                    spans.setdefault(field, []).append((start, end))
        return [_replace(text, spans[f]) if f in spans else text for f, text in enumerate(out)]

    def runs(self, text: Any) -> Any:
        """Only the secret as written and its runs of MIN_RUN characters (the cheap search for
        text that did not come from the endpoint, e.g. the user's own prompt)."""
        if not isinstance(text, str) or not text or not self:
            return text
        spans = self._whole_values(text)
        return _replace(text, spans) if spans else text

    def message(self, text: str | None) -> str | None:
        """An error message: secrets and masked key echoes (``sk-ab***wxyz``) removed."""
        text = self(text)
        return _ECHO.sub(REDACTED, text) if text else text

    # -- finding -----------------------------------------------------------------------------
    def _spans(self, text: str, depth: int) -> list[tuple[int, int]]:
        text = _opaque(text)
        spans = self._whole_values(text) + self._split_runs(text)[0] + self._repeated(text)
        if any(c * 3 in text for c in _MASK_CHARS) or "…" in text:
            spans += self._masked(text)
        if depth > 0:
            spans += self._encoded(text, depth)
        return spans

    def _whole_values(self, text: str) -> list[tuple[int, int]]:
        """Each secret as written and each run of MIN_RUN of its characters, in any case."""
        folded = text.lower()
        if len(folded) != len(text):  # a few non-ASCII letters change length when lowered
            folded = text
        spans = []
        for value in self._values:
            start = folded.find(value)
            while start != -1:
                spans.append((start, start + len(value)))
                start = folded.find(value, start + 1)
        if any(probe in folded for probe in self._probes):
            spans += [(i, i + MIN_RUN) for i, _ in _occurrences(folded, self._runs, MIN_RUN)]
        return spans

    def _split_runs(self, text: str, streaming: bool = False) -> tuple[list[tuple[int, int]], int | None]:
        """Spans of pieces that together read as MIN_RUN+ consecutive characters of a secret,
        and (``streaming``) where the earliest piece that may still grow into one starts."""
        if self._gram_re is None:
            return [], None
        if text.isascii() and not _may_escape(text):  # a letter or digit is one character: no map needed
            skeleton = _fold(text)
            pieces = self._pieces(skeleton)
            if not pieces and not streaming:
                return [], None
            starts, ends = _alnum_positions(text)
        else:
            if not streaming:  # first without positions (fast, in C mostly): most text holds no piece
                fast = self._pieces(_skeleton(text))
                if not fast or not (self._joined(fast, None)[0] or self._marked(_long(fast))):
                    return [], None
            skeleton, starts, ends = _mapped_skeleton(text)
            pieces = self._pieces(skeleton)
        alone = self._alone(pieces, starts, ends)
        for piece in pieces:  # skeleton positions → text positions
            piece.start, piece.end = starts[piece.start], ends[piece.end - 1]
        found, open_from = self._joined(pieces, len(text) if streaming else None)  # no open pieces at once
        found += [(p.start, p.end) for p in self._marked(alone)] if len(alone) > 1 else []
        if streaming:  # the last letters may start a piece the next delta completes
            tail = next((n for n in range(_MIN_PIECE - 1, 0, -1)
                         if len(skeleton) >= n and any(skeleton[-n:] in v for v in self._variants)), 0)
            if tail:
                open_from = min(starts[-tail], open_from if open_from is not None else len(text))
        return found, open_from

    @staticmethod
    def _alone(pieces: list[_Piece], starts: array.array[int], ends: array.array[int]) -> list[_Piece]:
        """The pieces of _MIN_APART+ characters no other letter or digit touches (by skeleton
        positions): they join wherever they are in the text (_GAP is for shorter ones)."""
        size = len(starts)
        return [p for p in _long(pieces) if (p.start == 0 or starts[p.start] > ends[p.start - 1])
                and (p.end == size or starts[p.end] > ends[p.end - 1])]

    def far_pieces(self, text: str) -> list[str]:
        """The skeletons of the standing-alone runs in ``text`` (what a stream remembers)."""
        if self._gram_re is None or not text:
            return []
        skeleton, starts, ends = _mapped_skeleton(_opaque(text))
        return [skeleton[p.start:p.end] for p in self._alone(self._pieces(skeleton), starts, ends)]

    def _pieces(self, skeleton: str) -> list[_Piece]:
        assert self._gram_re is not None
        pieces: list[_Piece] = []
        reach: dict[int, int] = {}  # (diagonal, variant) as one number → end of the piece found on it
        count, size = len(self._variants), len(skeleton)
        for match in self._gram_re.finditer(skeleton):  # by position: no sort of a million hits
            i = match.start()
            for v, k in self._grams[match.group(1)]:
                diagonal = (i - k) * count + v
                if reach.get(diagonal, -1) > i:
                    continue  # inside a piece already found
                variant, length = self._variants[v], _MIN_PIECE
                while i + length < size and k + length < len(variant) and skeleton[i + length] == variant[k + length]:
                    length += 1
                reach[diagonal] = i + length
                pieces.append(_Piece(i, i + length, v, k, length))
        return pieces

    def _joined(self, pieces: list[_Piece], size: int | None) -> tuple[list[tuple[int, int]], int | None]:
        """Pieces in clusters (at most _GAP apart), and each cluster's marked spans. A running reach,
        no rescan of the cluster per piece: a hostile answer may hold 100,000 pieces in one."""
        pieces.sort(key=_START)  # found in this order mostly: a pass
        found: list[tuple[int, int]] = []
        open_from: int | None = None
        cluster: list[_Piece] = []
        reach = -1  # the end of the cluster's furthest piece
        for piece in [*pieces, None]:
            if piece is not None and (not cluster or piece.start - reach <= _GAP):
                cluster.append(piece)
                if piece.end > reach:
                    reach = piece.end
                continue
            marked = self._marked(cluster)
            found += [(p.start, p.end) for p in marked]
            if size is not None and size - reach <= _GAP:
                rest = _outside(cluster, marked)
                if rest and size - max(p.end for p in rest) <= _GAP:
                    open_from = min(p.start for p in rest) if open_from is None else open_from
            cluster = [piece] if piece is not None else []
            reach = piece.end if piece is not None else -1
        return found, open_from

    def _marked(self, cluster: list[_Piece]) -> list[_Piece]:
        """The pieces of a cluster whose key ranges join into a run long enough to be a secret,
        and the runs of _MIN_APART+ characters that span _APART_SPAN of its characters together
        though apart (every other 4-7 character piece of a key: half of it, unmarked before)."""
        marked: list[_Piece] = []
        by_variant: dict[int, list[_Piece]] = {}
        for one in cluster:
            by_variant.setdefault(one.variant, []).append(one)
        for v, mine in by_variant.items():
            where, need = self._where[v]
            apart: list[_Piece] = []
            spanned = 0  # the secret's characters the runs apart span, together
            for run, covered, span in _key_runs(mine, where):
                if span >= need:
                    marked += run
                elif covered >= _MIN_APART:
                    apart += run
                    spanned += span
            if spanned >= max(need, _APART_SPAN) and len(apart) > 1:
                marked += apart
        return marked

    def _repeated(self, text: str) -> list[tuple[int, int]]:
        """Spans where ``text``, read with each run of one repeated character as one character
        (``sskk--pprroojj``), spells MIN_RUN+ characters of a secret read the same way."""
        if not self._collapsed:
            return []
        skeleton = _skeleton(text)
        collapsed = _REPEATS.sub(r"\1", skeleton)
        if len(collapsed) == len(skeleton):  # nothing repeated: the plain search saw it all
            return []
        hits = _occurrences(collapsed, self._collapsed, MIN_RUN)
        if not hits:
            return []
        mapped, starts, ends = _mapped_skeleton(text)
        # where each collapsed character's run starts in the skeleton (a C-speed pass)
        firsts = list(itertools.compress(range(len(mapped)), map(operator.ne, mapped, "\0" + mapped)))
        firsts.append(len(mapped))
        spans = []
        for i, _ in hits:
            # the end runs may hold a neighbour's letter ('is sk-…' reads 'issk'): as long as the inner ones
            repeat = max(firsts[j + 1] - firsts[j] for j in range(i + 1, i + MIN_RUN - 1))
            start = max(firsts[i], firsts[i + 1] - repeat)
            end = min(firsts[i + MIN_RUN], firsts[i + MIN_RUN - 1] + repeat)
            spans.append((starts[start], ends[end - 1]))
        return spans

    def _masked(self, text: str) -> list[tuple[int, int]]:
        """``sk-ab***wxyz``-style echoes: a mask whose visible start is a secret's start, or whose
        visible end is a secret's end."""
        spans = []
        for mask in _MASK.finditer(text):
            head = max(0, mask.start() - 64)
            before = _WORD_BEFORE.search(text[head:mask.start()])
            after = _WORD_AFTER.match(text, mask.end())
            assert before is not None and after is not None  # both may match nothing
            # the longest end of the word before that starts a secret, start of the word after that ends one
            start = next((head + before.start() + i for i in range(len(before.group()) - _MIN_PIECE + 1)
                          if self._starts_secret(before.group()[i:])), None)
            end = next((after.start() + n for n in range(len(after.group()), _MIN_PIECE - 1, -1)
                        if self._ends_secret(after.group()[:n])), None)
            if start is not None or end is not None:
                spans.append((mask.start() if start is None else start, mask.end() if end is None else end))
        return spans

    def _starts_secret(self, piece: str) -> bool:
        return any(value.startswith(piece.lower()) for value in self._values)

    def _ends_secret(self, piece: str) -> bool:
        return any(value.endswith(piece.lower()) for value in self._values)

    def _encoded(self, text: str, depth: int) -> list[tuple[int, int]]:
        """base64, base32 and hex tokens whose decoded text holds a secret."""
        spans = self._decoded_pieces(text) if depth == _DECODE_DEPTH else []
        for start, end in _escaped_words(text):  # %-encoded twice: decoded once here, once as text
            if self._spans(urllib.parse.unquote(text[start:end]), depth - 1):
                spans.append((start, end))
        for match in _NUMBER_RUN.finditer(text):  # 73 6b, 0x73-0x6b, 115.107.45, U+0073 and U+006B, …
            for start, end in {(start, end) for decoded, start, end in _numbers(match.group())
                               if self._spans(decoded, depth - 1)}:
                spans.append((match.start() + start, match.start() + end))
        for match in _SPACED.finditer(text):  # c 2 s t c H J v …: joined, from each of its first characters
            joined = "".join(_NON_ALNUM_B64.split(match.group()))
            if any(self._encoded(joined[k:], depth) for k in range(4)):
                spans.append(match.span())
        if _BRAILLE_NUMBER in text:  # Braille with its numbers read (its letters are folded as text)
            spans += self._braille(text, depth)
        if "\n" in text:  # base64 wrapped over several lines, read as one
            for match in _BASE64_LINES.finditer(text):
                decoded = _b64("".join(match.group().split()))
                if decoded and self._spans(decoded, depth - 1):
                    spans.append(match.span())
        for start, end in _candidates(text):
            for pattern, decode in ((_BASE64, _b64), (_BASE32, _b32), (_HEX, _hex), (_QUOTED_PRINTABLE, _hex),
                                    (_BASE85, _b85), (_BINARY, _binary)):
                for match in pattern.finditer(text, start, end):
                    if _ENCODED_HINT.search(match.group()) is None:
                        continue
                    decoded = decode(match.group())
                    if decoded and self._spans(decoded, depth - 1):
                        spans.append(match.span())
        return spans

    def _braille(self, text: str, depth: int) -> list[tuple[int, int]]:
        """Runs of Braille holding a number sign whose readings with digits hold a secret."""
        spans = []
        for match in _BRAILLE_RUN.finditer(text):
            if _BRAILLE_NUMBER in match.group():
                for reading, where in _braille_readings(match.group()):
                    spans += [(match.start() + where[start], match.start() + where[end - 1] + 1)
                              for start, end in self._spans(reading, depth - 1)]
        return spans

    def _decoded_pieces(self, text: str) -> list[tuple[int, int]]:
        """Short encoded tokens (runs of 4-64 characters of an encoding's alphabet, _piece_tokens:
        base64, base32, hex, binary, quoted-printable, base85, octal or decimal byte groups of a
        few characters each, or such an encoding of one) whose decoded texts, read one after
        another, join into a secret the way plain pieces do (:meth:`_split_runs`): a key echoed
        as the base64 of each 4-8-character piece. Each token is decoded once; only those that
        decode to readable text holding a piece of a secret (3+ characters) are joined; a hit
        marks the tokens it came from."""
        if self._gram_re is None:
            return []
        found: list[tuple[int, int, str]] = []
        for (start, end), (token, b85) in _piece_tokens(text).items():
            decoded = self._piece_text(token, _DECODE_DEPTH, b85)
            if decoded:
                found.append((start, end, decoded))
        for match in _SPACED_TOKEN.finditer(text) if _B85_ONLY.search(text) else ():  # base85 holds |(;{…
            if _B85_ONLY.search(match.group()):
                decoded = _b85(match.group())
                if decoded and self._gram_re.search(_fold(decoded)):
                    found.append((match.start(), match.end(), decoded))
        for match in _NUMBER_GROUP.finditer(text):
            for decoded, start, end in _numbers(match.group(), _MIN_PIECE) if _DIGIT.search(match.group()) else ():
                if self._gram_re.search(_fold(decoded)):  # each reading (115 107 45: 'sk-', octal 'MG%')
                    found.append((match.start() + start, match.start() + end, decoded))
        found.sort()
        if sum(len(d) for _, _, d in found) < MIN_RUN:
            return []
        stream, offsets = [], []
        at = 0
        for _, _, decoded in found:
            offsets.append(at)
            stream.append(decoded)
            at += len(decoded) + 1
        joined = " ".join(stream)
        hits = self._whole_values(joined) + self._split_runs(joined)[0]
        spans = []
        for start, end in hits:
            first = bisect.bisect_right(offsets, start) - 1
            last = bisect.bisect_right(offsets, max(start, end - 1)) - 1
            spans += [found[i][:2] for i in range(max(first, 0), last + 1)]
        return spans

    def _piece_text(self, token: str, depth: int, b85: bool = True) -> str | None:
        """The first text ``token`` decodes to that holds a piece of a secret (3+ characters),
        a decoded text that is itself one token decoded again first (the base64 of the base64 of
        a piece, up to ``depth`` encodings deep, as whole keys are)."""
        assert self._gram_re is not None
        for decoded in _piece_decoded(urllib.parse.unquote(token) if "%" in token else token, b85):
            inner = decoded.strip()
            if depth > 1 and 4 <= len(inner) <= 64 and _B64_TOKEN.fullmatch(inner):
                deeper = self._piece_text(inner, depth - 1)
                if deeper:
                    return deeper
            if self._gram_re.search(_fold(decoded)):
                return decoded
        return None

    # -- streams -----------------------------------------------------------------------------
    def release_spans(self, shown: str, release: str, run: int) -> list[tuple[int, int]]:
        """What the at-once search finds in ``shown + release`` (``run``: where the run of base64
        characters ``shown`` ends with starts, before ``shown`` if negative). Encodings only from
        _MAX_HOLD characters before the release on (a few lines hold a whole encoded key;
        decoding all the context again for every delta made prose streams 6 times slower): from
        a word's start, or inside a longer run from a whole number of encoding blocks after its
        start, so that it decodes as it does at once."""
        text = _opaque(shown + release)
        spans = self._spans(text, 0)
        start = at = max(0, len(shown) - _MAX_HOLD)
        if run < at:  # inside the run
            start -= (at - run) % _BLOCKS
            start += _BLOCKS if start < 0 else 0
        else:
            while start > max(0, at - _MAX_HOLD) and not text[start - 1].isspace():
                start -= 1
        return spans + [(s + start, e + start) for s, e in self._encoded(text[start:], _DECODE_DEPTH)]

    def stream_cut(self, text: str) -> tuple[str, int]:
        """For a stream's text so far: the part that can be shown now, redacted, and where the
        rest starts. Held back: the last word (it may be the start of a secret or of an
        encoding of one), every piece the next delta may still join into a secret, and never
        half of something already found."""
        read = _opaque(text)  # the same positions: the part shown is cut from ``text``
        found, open_from = self._split_runs(read, streaming=True)
        spans = (self._whole_values(read) + found + self._repeated(read) + self._masked(read)
                 + self._encoded(read, _DECODE_DEPTH))
        cut = _held_numbers(text, _TRAILING_WORD.search(text).start())  # type: ignore[union-attr]
        if "\\N{" in text:  # named escapes hold spaces: a run of them is held as a run of numbers is
            cut = min(cut, _NAMED_TAIL.search(text, max(0, len(text) - _MAX_HOLD - 96)).start())  # type: ignore[union-attr]
        cut = max(min(cut, open_from if open_from is not None else cut), len(text) - _MAX_HOLD)
        for start, end in sorted(spans, reverse=True):
            if start < cut < end:
                cut = start
        return _replace(text[:cut], [(s, e) for s, e in spans if e <= cut]), cut


def _held_numbers(text: str, cut: int) -> int:
    """Where a run of numbers that ends at ``cut`` starts (``cut`` if none does): held back with
    the last word, since the next numbers may make it a key's codes, and once part of a run is
    shown, the rest is redacted only from where it is seen to be one (``115 and 107 and …``)."""
    last = None
    for last in _NUMBERS_SO_FAR.finditer(text, max(0, cut - _MAX_HOLD), cut):  # noqa: B007 (the last one)
        pass
    return last.start() if last is not None and last.end() == cut else cut


def _long(pieces: list[_Piece]) -> list[_Piece]:
    return [p for p in pieces if p.length >= _MIN_APART]


def _key_runs(pieces: list[_Piece], where: list[int]) -> list[tuple[list[_Piece], int, int]]:
    """A variant's pieces joined where their ranges of it touch or overlap: each run, how many of
    the variant's characters it covers and how many of the secret's characters it spans."""
    pieces.sort(key=_KEY_START)
    runs: list[tuple[list[_Piece], int, int]] = []
    run: list[_Piece] = []
    end = 0  # the furthest variant position the run reaches
    for piece in [*pieces, None]:
        if piece is not None and run and piece.key_start <= end:
            run.append(piece)
            end = max(end, piece.key_start + piece.length)
            continue
        if run:
            runs.append((run, end - run[0].key_start, abs(where[end - 1] - where[run[0].key_start]) + 1))
        run = [piece] if piece is not None else []
        end = piece.key_start + piece.length if piece is not None else 0
    return runs


def _union(ranges: Any) -> int:
    """How many positions the closed ranges (low, high) cover together."""
    total, reach = 0, -1
    for low, high in sorted(ranges):
        if high > reach:
            total += high - max(low, reach + 1) + 1
            reach = high
    return total


def _context(shown: str) -> str:
    """The end of a stream's shown text a release may still join: the last _SHOWN_CONTEXT
    characters, more while they hold fewer than _SHOWN_LETTERS letters and digits."""
    start = max(0, len(shown) - _SHOWN_CONTEXT)
    for _ in range(7):
        if start == 0 or len(_skeleton(shown[start:])) >= _SHOWN_LETTERS:
            break
        start = max(0, start - _SHOWN_CONTEXT)
    return shown[start:]


def _opaque(text: str) -> str:
    """``text`` with each redaction marker blanked: its letters are llmlab's, not the answer's
    (a key whose next letter is an 'r' would otherwise run on into the marker)."""
    return text.replace(REDACTED, _BLANK) if REDACTED in text else text


def _outside(cluster: list[_Piece], marked: list[_Piece]) -> list[_Piece]:
    """The pieces of ``cluster`` (by start) not inside a marked one (the same text read as another
    variant's piece): one sweep, the furthest end of the marked pieces started so far."""
    inside = sorted(marked, key=lambda p: p.start)
    rest, at, reach = [], 0, -1
    for piece in cluster:
        while at < len(inside) and inside[at].start <= piece.start:
            reach = max(reach, inside[at].end)
            at += 1
        if piece.end > reach:
            rest.append(piece)
    return rest


def _trie(words: Any) -> str:
    """A regular expression matching any of ``words`` (equal lengths), branching per character."""
    branches: dict[str, list[str]] = {}
    for word in words:
        branches.setdefault(word[0], []).append(word[1:])
    parts = []
    for first, rests in sorted(branches.items()):
        if all(len(r) == 1 for r in rests):
            parts.append(re.escape(first) + "[" + "".join(sorted(map(re.escape, rests))) + "]")
        else:
            parts.append(re.escape(first) + "(?:" + _trie(rests) + ")")
    return "|".join(parts)


def _escaped_words(text: str) -> list[tuple[int, int]]:
    """Words holding ``%25`` (a percent sign, percent-encoded): text encoded more than once."""
    if "%25" not in text:
        return []
    return [m.span() for m in re.finditer(r"\S*%25\S*", text)]


def _candidates(text: str) -> list[tuple[int, int]]:
    """Where in ``text`` an encoded token may be: its words of 12+ characters. Found by
    splitting on whitespace (scanning a long answer with a regular expression is slow)."""
    words = text.split()
    spans = []
    for word in {w for w in words if len(w) >= 12 and _ENCODED_HINT.search(w)}:
        at = text.find(word)
        while at != -1:
            spans.append((at, at + len(word)))
            at = text.find(word, at + 1)
    return spans


def _occurrences(text: str, needles: set[str] | dict[str, Any], size: int) -> list[tuple[int, str]]:
    """(position, needle) of every occurrence in ``text`` of the ``size``-long ``needles``: a
    look-up per position in short text, a search per needle in long text."""
    if len(text) < size:
        return []
    if len(text) <= 4 * len(needles):
        return [(i, text[i:i + size]) for i in range(len(text) - size + 1) if text[i:i + size] in needles]
    found = []
    for needle in needles:
        i = text.find(needle)
        while i != -1:
            found.append((i, needle))
            i = text.find(needle, i + 1)
    return found


def _separators(gap: str) -> bool:
    return gap.isspace() or bool(_NON_ALNUM.fullmatch(gap.lower()))  # the first, in C, is the usual case


def _replace(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with the spans (merged; a gap of separators only between two is taken too)
    replaced by REDACTED."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and (start <= merged[-1][1] or _separators(text[merged[-1][1]:start])):
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    out, last = [], 0
    for start, end in merged:
        out += [text[last:start], REDACTED]
        last = end
    out.append(text[last:])
    return "".join(out)


def _inflated(data: bytes) -> bytes:
    """``data`` decompressed when it starts as a zlib or gzip stream does (a key compressed, then
    encoded), else as it is."""
    gzip = data[:2] == b"\x1f\x8b"
    zlib_header = len(data) > 2 and data[0] & 0x0F == 8 and int.from_bytes(data[:2], "big") % 31 == 0  # RFC 1950
    if not (gzip or zlib_header):
        return data
    try:
        return zlib.decompressobj(wbits=47).decompress(data, _MAX_INFLATED)  # 47: zlib or gzip header
    except zlib.error:
        return data


def _rot47(text: str) -> str:
    return "".join(chr(33 + (ord(c) - 33 + 47) % 94) if "!" <= c <= "~" else c for c in text)


def _bytes_text(data: bytes) -> str:
    """Decoded bytes as text, or "" when they do not read as text (what a random word decodes
    to): a secret is printable, and searching garbage costs time."""
    data = _inflated(data)
    if b"\x00" in data:  # UTF-16 or UTF-32 code units of ASCII text (0073006b…): its NULs carry nothing
        data = data.replace(b"\x00", b"")
    text = data.decode("utf-8", "replace") if data else ""
    if text.isprintable():  # the usual case, in C
        return text
    readable = sum(map(str.isprintable, text)) + text.count("\n") + text.count("\t")
    return text if text and readable >= 0.9 * len(text) else ""


def _piece_tokens(text: str) -> dict[tuple[int, int], tuple[str, bool]]:
    """The short tokens of ``text`` that may encode a piece of a secret, by span: runs of an
    encoding's alphabet (_PIECE_RUNS), quoted-printable runs and base85 tokens (only these are
    read as base85: decoding every run of a long base64 blob so cost a third more), no plain word
    (base85 holds punctuation). Each: the token and whether it is read as base85."""
    spans: dict[tuple[int, int], tuple[str, bool]] = {}
    for run in _PIECE_SPAN.finditer(text):
        word = run.group()
        if not _PIECE_HINT.search(word):
            continue
        if word.isalnum() and len(word) <= 64:  # the usual case (0x3a, a word with digits): one token
            spans[run.span()] = (word, False)
            continue
        for pattern in (*_PIECE_RUNS, _QP_RUN) if "=" in word else _PIECE_RUNS:
            spans.update((m.span(), (m.group(), False)) for m in pattern.finditer(text, run.start(), run.end()))
    spans.update((m.span(), (m.group(), False)) for m in _PIECE_HEX.finditer(text))
    for match in _B85_TOKEN.finditer(text):
        if _B85_PUNCT.search(match.group()) or _ENCODED_HINT.search(match.group()):
            spans[match.span()] = (match.group(), True)
    return spans


def _piece_decoded(token: str, b85: bool) -> list[str]:
    """A short token's decoded texts, each way it reads as text: quoted-printable, binary, hex,
    base32, base64 (or base64url), base85 (a 5-character base85 token is often base64 too)."""
    if token.startswith("="):
        return [_hex(token)] if _QP_TOKEN.fullmatch(token) else []
    if _HEX_TOKEN.fullmatch(token):
        bits = [_binary(token)] if _BITS_TOKEN.fullmatch(token) else []
        return [t for t in [*bits, _hex(token)] if t]
    texts = []
    if _B32_TOKEN.fullmatch(token):
        texts.append(_b32(token))
    if _B64_TOKEN.fullmatch(token):
        texts.append(_b64(token))
    if b85 and len(token) >= 5:
        texts.append(_b85(token))
    return [t for t in texts if t]


def _b64(token: str) -> str:
    token = token.rstrip("=")
    token = token[:len(token) - len(token) % 4] if len(token) % 4 == 1 else token
    padded = token + "=" * (-len(token) % 4)
    try:
        return _bytes_text(base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True))
    except (binascii.Error, ValueError):
        return ""


def _b32(token: str) -> str:
    token = token.rstrip("=").upper()
    try:
        return _bytes_text(base64.b32decode(token + "=" * (-len(token) % 8)))
    except (binascii.Error, ValueError):
        return ""


def _b85(token: str) -> str:
    for decode in (base64.b85decode, base64.a85decode):
        try:
            return _bytes_text(decode(token))
        except (ValueError, binascii.Error):
            continue
    return ""


def _hex(token: str) -> str:
    digits = re.sub(r"[^0-9a-fA-F]", "", re.sub(r"0[xX]", "", token))
    return _bytes_text(bytes.fromhex(digits[:len(digits) // 2 * 2]))


def _binary(token: str) -> str:
    bits = token[:len(token) // 8 * 8]
    return _bytes_text(int(bits, 2).to_bytes(len(bits) // 8, "big")) if bits else ""


def _numbers(run: str, least: int = MIN_RUN) -> list[tuple[str, int, int]]:
    """What a run of numbers reads as (:func:`_readings`): the stretches of ``least`` or more."""
    return [(text, start, end) for text, start, end, count in _readings(run) if count >= least]


@functools.lru_cache(maxsize=8)  # a run is read as a piece's codes and as a whole secret's
def _readings(run: str) -> tuple[tuple[str, int, int, int], ...]:
    """What a run of numbers reads as: hex, decimal, octal (0o163 or 163 153 55: groups of 2-3
    digits 0-7) or binary (8-digit tokens of 0 and 1) values, as bytes when each fits one (then
    decoded as UTF-8, so compressed data counts) or as code points (UTF-16/32 units, U+ forms).
    Each stretch of _MIN_PIECE+ numbers that read in a base is decoded on its own: a word or a
    number that does not (``bad key 115-107-…``: 'bad' is hex, no decimal) ends a stretch, not
    the run. Each: the text, where in ``run`` the stretch starts and ends, how many numbers it has."""
    digits = _NUMBER_DIGITS.findall(run)  # strings only: 1 MB of '1 2 1 2' holds 262,144 numbers
    found: list[tuple[bytes | str, int, int]] = []  # (codes, first number, count)
    for base, readable in _NUMBER_BASES:
        # each distinct number read once, then looked up at C speed (hostile runs repeat a few)
        value = {d: int(d, base) if readable is None or readable(d) else -1 for d in set(digits)}
        for first, codes in _stretches([v if v <= 0x10FFFF else -1 for v in map(value.__getitem__, digits)],
                                       _MIN_PIECE):
            found.append((bytes(codes) if max(codes) < 256 else "".join(map(chr, codes)), first, len(codes)))
    spans = _number_spans(run, {i for _, first, count in found for i in (first, first + count - 1)})
    texts = []
    for units, first, count in found:
        text = _bytes_text(units) if isinstance(units, bytes) else units
        if text:
            texts.append((text, spans[first][0], spans[first + count - 1][1], count))
    return tuple(texts)


def _number_spans(run: str, wanted: set[int]) -> dict[int, tuple[int, int]]:
    """Where in ``run`` its numbers with these indexes stand (only those: no match object per number kept)."""
    if not wanted:
        return {}
    numbers = itertools.islice(enumerate(_NUMBER_DIGITS.finditer(run)), max(wanted) + 1)
    return {i: match.span() for i, match in numbers if i in wanted}


# ... each base, with which numbers read in it (hex: all of them)
_NUMBER_BASES = ((2, lambda d: len(d) == 8 and not d.strip("01")), (16, None), (10, str.isdigit),
                 (8, lambda d: len(d) <= 3 and not d.strip("01234567")))


def _braille_readings(run: str) -> list[tuple[str, list[int]]]:
    """A run of Braille with its numbers read: after a number sign the letters a-j are digits, up
    to the next other cell (the rule: ⠼⠁⠃ is 12, also ⠼⠁-⠃: what stands between two cells may
    be invisible) or only the next one (a digit at a time: ⠼⠓⠃ is 8b, how a key's digits among
    its letters read). Each reading, with where in ``run`` each of its characters stands (the
    number signs are dropped)."""
    readings = []
    for one_digit in (False, True):
        chars, where, number = [], [], False
        for at, cell in enumerate(run):
            if cell == _BRAILLE_NUMBER:
                number = True
                continue
            digit = _BRAILLE_DIGITS.get(cell) if number else None
            chars.append(digit or cell)
            where.append(at)
            if "\u2800" <= cell <= "\u28ff":
                number = digit is not None and not one_digit
        readings.append(("".join(chars), where))
    return readings


def _stretches(values: list[int], least: int) -> list[tuple[int, list[int]]]:
    """The runs of ``least`` or more values in ``values`` between the -1s (what does not read),
    each with where it starts."""
    out: list[tuple[int, list[int]]] = []
    at = 0
    for valid, group in itertools.groupby(values, key=(-1).__ne__):
        stretch = list(group)
        if valid and len(stretch) >= least:
            out.append((at, stretch))
        at += len(stretch)
    return out


class StreamRedactor:
    """Redacts a stream delta by delta: text that may be the start of a secret is held back
    until the next delta shows whether it is one (runs split across deltas are caught too), and
    so is a trailing UTF-16 high surrogate, which the next delta may pair. What is released is
    checked together with the end of what was shown before, so the shown text as a whole holds
    nothing the at-once :class:`Redactor` would find."""

    def __init__(self, redact: Redactor) -> None:
        self._redact = redact
        self._held = ""
        self._shown = ""  # the end of what was shown (redacted), which a release may join
        self._total = self._run = 0  # how much was shown, where its last run of base64 characters starts
        self._far: dict[str, None] = {}  # the standing-alone runs shown (Redactor.far_pieces), oldest first

    def feed(self, text: str) -> str:
        buffer = self._held + text
        if buffer and "\ud800" <= buffer[-1] <= "\udbff":
            buffer, text = buffer[:-1], buffer[-1]
        else:
            text = ""
        if not self._redact:
            self._held = text
            return buffer
        if len(buffer) < 2 * _MAX_HOLD and (not _SPACE.search(buffer, len(self._held))
                                            or _NUMBERS_ONLY.fullmatch(buffer)):
            # no word ended (or only numbers and separators are held): what was held stays held,
            # so a long word (a base64 image, a hash dump) or a run of numbers (a CSV table) is
            # scanned once per _MAX_HOLD new characters, not once per delta
            self._held = buffer + text
            return ""
        shown, cut = self._redact.stream_cut(buffer)
        self._held = buffer[cut:] + text
        shown = self._joined(shown)
        other = _LAST_NOT_BASE64.search(_opaque(shown))
        if other is not None:
            self._run = self._total + other.end()
        self._total += len(shown)
        self._shown = _context(self._shown + shown)
        for piece in self._redact.far_pieces(shown) if shown else ():
            self._far[piece] = None
        while len(self._far) > _FAR_HELD:
            del self._far[next(iter(self._far))]
        return shown

    def _joined(self, release: str) -> str:
        """``release`` with what the at-once redactor finds in it together with what was shown
        before also redacted (a piece released before the rest of its cluster arrived, an
        encoding cut in two): the shown part cannot change, so the release's share goes."""
        # the runs shown long before, in front of what the release is checked with (one gap
        # more than _GAP away: only the whole-text join reaches them)
        far = " ".join(self._far) + " " * (_GAP + 1) if self._far else ""
        shown = far + self._shown
        before = len(shown)
        run = self._run - self._total + before  # where the run of base64 characters shown ends with starts
        for _ in range(4):  # a redaction may join what is left anew; a few rounds settle it
            if not release:
                return release
            spans = [(max(start - before, 0), end - before)
                     for start, end in self._redact.release_spans(shown, release, run)
                     if end > before]
            if not spans:
                return release
            release = _replace(release, spans)
        return REDACTED


# -- the secrets this process knows, for every view ------------------------------------------
_KNOWN: list[str] = []
_KNOWN_LOCK = threading.Lock()
_SHOWN: list[Redactor] = [Redactor([])]


def remember(secrets: list[str]) -> None:
    """Add secrets this process has read (a key value, a URL's credentials) to what every view
    removes (:func:`redact_shown`)."""
    fresh = [s for s in secrets if isinstance(s, str) and len(s) >= _MIN_SECRET and s not in _KNOWN]
    if fresh:
        with _KNOWN_LOCK:
            _KNOWN.extend(s for s in fresh if s not in _KNOWN)
            _SHOWN[0] = Redactor(list(_KNOWN))


def known_secrets() -> tuple[str, ...]:
    """The secrets :func:`remember` recorded, for checks that must match them exactly."""
    return tuple(_KNOWN)


def forget_all() -> None:
    """Forget every remembered secret (a test's fresh process)."""
    with _KNOWN_LOCK:
        _KNOWN.clear()
        _SHOWN[0] = Redactor([])


def redact_shown(text: Any) -> Any:
    """``text`` without any secret this process knows: what every view shows."""
    return _SHOWN[0](text)


# -- URLs --------------------------------------------------------------------------------------
# Names that say a value is a credential (parameters, query and path parameters).
CREDENTIAL_NAME = re.compile(
    r"(api[-_ ]?key|apikey|authori[sz]ation|auth[-_]?token|access[-_]?token|refresh[-_]?token|id[-_]?token"
    r"|session[-_]?token|bearer|secret|passw(or)?d|credential|private[-_]?key|cookie)"
    r"|^(key|token|auth|headers|extra_headers|default_headers|extra_query|default_query|http_client)$",
    re.IGNORECASE)
# In URLs, also the short names of signed and OAuth links (Azure SAS sig=, S3 X-Amz-*, ?code=).
_URL_CREDENTIAL = re.compile(r"^(code|sig|signature|hmac|sv|se|skoid|sktid|ske|sks|skv|x-amz-.*|x-goog-.*|access_key|"
                             r"key[-_]?id|client[-_]?id|pass|pwd|jwt|otp|nonce|ticket|session|sid)$", re.IGNORECASE)
# The public start of a vendor's API keys, the same in every user's key (OpenAI's sk-proj-/sk-svcacct-/
# sk-admin-, Anthropic's sk-ant-apiNN-, OpenRouter's sk-or-v1-, Stripe's sk_/rk_/pk_, xAI, Groq,
# Hugging Face, GitHub, GitLab, Google's AIza, which has no separator): one list for every rule that
# reads keys by their look — URL path tokens, credential-valued parameters, and the prefix a known
# key is compared without (a prefix alone is no secret). Specific prefixes first, so a match takes
# the whole public part; AIza is case-sensitive also in a case-blind pattern ("Aizawa" is a name).
KEY_PREFIX = (r"(?:(?:sk-(?:proj|svcacct|admin|ant-api\d\d|ant|or-v1|or)|github_pat|sk|rk|pk|xai|glpat|gsk|hf|ghp|gho)"
              r"[-_]|(?-i:AIza))")
# A path segment that reads as a token: a vendor key prefix, a long hex string, or a long run of
# letters and digits with both in it (model and deployment names have separators).
_TOKEN_SEGMENT = re.compile(rf"^{KEY_PREFIX}[\w-]{{8,}}"
                            r"|^[0-9a-fA-F]{32,}$|^(?=[^-_.~]*\d)(?=[^-_.~]*[A-Za-z])[A-Za-z0-9]{24,}$"
                            r"|^eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*$"  # a JWT (its dots are no separator)
                            r"|^(AKIA|ASIA)[0-9A-Z]{16}$")  # an AWS access key id


# ... any name holding one of these words (subscription-key, private_token, hf_token, authkey,
# jsessionid, passphrase), spelled with or without separators
_CREDENTIAL_WORD = re.compile(r"key|token|secret|auth|pass|sig|session|cred|hmac|jwt|otp|nonce|ticket|cookie|"
                              r"bearer|licen[cs]e")
# ... and short names that are credentials when their value reads as a token (?k=, ?p=, ?pat=)
_PLAIN_VALUE = re.compile(r"[a-z]+|[A-Z][a-z]+|\d{1,6}|[a-z]+(?:[ +-][a-z]+)*|true|false", re.ASCII)
_SHORT_CREDENTIAL = re.compile(r"^(k|p|u|t|pat|tok|st|login|user|usr|pw|pin|hash|h)$")


def _credential_name(name: str) -> bool:
    return bool(CREDENTIAL_NAME.search(name) or _URL_CREDENTIAL.match(name))


def _credential_pair(name: str, value: str) -> bool:
    """Whether a query or path parameter carries a credential: a credential name; a name holding
    a credential word (``author=``, ``keywords=``, ``design=`` hold one too: there only a value
    that is not a plain word or number counts); a short name with a token for a value."""
    if not value:
        return False
    if _credential_name(name) or _secret_value(value):
        return True
    if _CREDENTIAL_WORD.search(re.sub(r"[-_.\[\] ]", "", name.lower())):
        return len(value) >= 6 and not _PLAIN_VALUE.fullmatch(value)
    return bool(_SHORT_CREDENTIAL.match(name.lower()) and _looks_like_token(value))


def _secret_value(value: str) -> bool:
    """A query or parameter value that is a credential under any name: a vendor-shaped key, a
    JWT, a long token (also after a word, ``Bearer sk-…``, or padded as base64 is), or a URL of
    its own with ``user:password@`` (``?next=http://u:pw@host/``)."""
    if any(_TOKEN_SEGMENT.search(word.rstrip("=")) for word in value.split()):
        return True
    nested = _split(value) if "://" in value and "@" in value else None
    return nested is not None and "@" in nested.netloc


def _looks_like_token(value: str) -> bool:
    return bool(_TOKEN_SEGMENT.search(value)) or (len(value) >= 12 and bool(re.search(r"\d", value))
                                                   and bool(re.search(r"[A-Za-z]", value)))


def _query_pairs(query: str) -> list[tuple[str, str]]:
    """The query's (name, value) pairs, also ``name%3Dvalue`` (an escaped '=' still reads as one)."""
    pairs = []
    for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if not value and "=" in name:
            name, _, value = name.partition("=")
        pairs.append((name, value))
    return pairs


def _split(url: str) -> urllib.parse.SplitResult | None:
    try:
        return urllib.parse.urlsplit(url)
    except ValueError:
        return None


def _host(parts: urllib.parse.SplitResult) -> str:
    """The host and port as written (a token may be a subdomain: TOKEN.gateway.example)."""
    return parts.netloc.rpartition("@")[2]


def _query_secrets(query: str) -> list[str]:
    """Credential values, and names that are tokens themselves (``?<token>`` or ``?<token>=1``)."""
    return [part for n, v in _query_pairs(query)
            for part, secret in ((n, _secret_value(n)), (v, _credential_pair(n, v))) if secret]


def _path_secrets(path: str) -> list[str]:
    found = []
    for segment in path.split("/"):
        name, _, params = segment.partition(";")
        found += [s for s in [urllib.parse.unquote(name)] if _TOKEN_SEGMENT.search(s)]
        for param in params.split(";") if params else []:
            key, _, value = param.partition("=")
            if value and (_credential_pair(key, value) or _TOKEN_SEGMENT.search(value)):
                found.append(value)
    return found


def url_secrets(url: Any, *, user: bool = True) -> list[str]:
    """The credentials inside a URL — user name and password, credential query, fragment and
    ``;name=`` values, token-like path segments and fragments — decoded and raw (all count as
    secrets; ``user=False``: not the user name, which is no secret to a view)."""
    parts = _split(url) if isinstance(url, str) else None
    if parts is None:
        return []
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    # ``user:password`` — or a lone token as the user (https://TOKEN@host)
    names = userinfo.split(":", 1) if user or ":" not in userinfo else userinfo.split(":", 1)[1:]
    raw = [p for p in names if p] + _query_secrets(parts.query) + _path_secrets(parts.path)
    raw += _query_secrets(parts.fragment) + [f for f in [parts.fragment] if _TOKEN_SEGMENT.search(f)]
    raw += [label for label in _host(parts).split(".") if _TOKEN_SEGMENT.search(label)]
    return list(dict.fromkeys([*raw, *(urllib.parse.unquote(p) for p in raw)]))


def url_has_credentials(url: Any) -> bool:
    """Whether text that is a URL carries credentials (``user:pw@``, ``?token=``, …)."""
    return isinstance(url, str) and "://" in url and bool(url_secrets(url.strip()))


def public_url(url: Any) -> Any:
    """``url`` with its credentials masked: no ``user:password@``; credential query and path
    parameter values, token-like path segments and any fragment read ``[redacted]``. The form
    that is stored and shown."""
    if not isinstance(url, str):
        return url
    parts = _split(url)
    if parts is None or not (url_secrets(url) or parts.fragment):
        return url
    host = ".".join(_HOST_MASK if _TOKEN_SEGMENT.search(label) else label  # still a valid host name
                    for label in parts.netloc.rpartition("@")[2].split("."))
    pairs = _query_pairs(parts.query)
    query = urllib.parse.urlencode([(REDACTED if _secret_value(n) else n, REDACTED if _credential_pair(n, v) else v)
                                    for n, v in pairs], safe="[]") \
        if _query_secrets(parts.query) else parts.query
    path = "/".join(_masked_segment(s) for s in parts.path.split("/"))
    fragment = REDACTED if parts.fragment else ""
    return urllib.parse.urlunsplit(parts._replace(netloc=host, query=query, path=path, fragment=fragment))


_HOST_MASK = "redacted"


def without_userinfo(url: str) -> str:
    """``url`` with no ``user:password@`` (what a client is given: the key goes in its header)."""
    parts = _split(url)
    if parts is None or "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _masked_segment(segment: str) -> str:
    name, sep, params = segment.partition(";")
    name = REDACTED if _TOKEN_SEGMENT.search(urllib.parse.unquote(name)) else name
    if not sep:
        return name
    shown = []
    for param in params.split(";"):
        key, eq, value = param.partition("=")
        secret = value and (_credential_pair(key, value) or _TOKEN_SEGMENT.search(value))
        shown.append(f"{key}{eq}{REDACTED}" if secret else param)
    return name + ";" + ";".join(shown)
