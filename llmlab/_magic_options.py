"""The ``%%llm`` option line and ``{{name}}`` prompt interpolation, as pure functions.

Nothing here touches IPython or the network, so the grammar can be tested as a table. Every
problem is an ``OptionError`` with a one-line message; the magic turns it into a UsageError.

Grammar of the first line::

    line   := token*                    (split with shlex: '...' and "..." quote)
    token  := key '=' value             (split at the first '=')
    value  := unquoted: typed scalar, or a comma list of typed scalars
            | quoted:   the literal text, or JSON when it starts with '{' or '['

Typed scalars: ints, floats, true/false, null, else strings.
"""
from __future__ import annotations

import ast
import difflib
import io
import json
import keyword
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OptionError", "MagicOptions", "parse_options", "interpolate", "placeholders", "KNOWN_KEYS",
           "check_binding_name"]


class OptionError(ValueError):
    """A problem in the option line or a prompt placeholder (always one line)."""

    def __init__(self, message: str):
        # Keep the promise of one line even if a value with a newline is quoted back.
        super().__init__(" ".join(str(message).split()))


KNOWN_KEYS = (
    "model", "system", "temperature", "max_tokens", "top_p", "stream", "cache", "out", "n",
    "fallback",
)
_LIST_KEYS = frozenset({"model", "fallback"})
# Keys the engine builds from the cell itself; passing them as body parameters would conflict.
# Engine arguments (not body parameters): forwarding them as **kwargs would bypass validation.
_RESERVED_KEYS = frozenset({"messages", "prompt", "models", "on_event", "stream_options", "retries",
                            "retry_policy", "timeout", "concurrency", "progress", "resume"})
# Real endpoint parameters that look like near-misses of our keys (top_k ~ top_p) and must
# pass through to the endpoint rather than trigger "did you mean".
_PASSTHROUGH_KEYS = frozenset({
    "top_k", "top_a", "min_p", "typical_p", "seed", "stop", "user", "tools", "tool_choice", "logprobs",
    "top_logprobs", "logit_bias", "response_format", "reasoning_effort", "presence_penalty",
    "frequency_penalty", "repeat_penalty", "max_completion_tokens", "parallel_tool_calls",
    "service_tier", "metadata", "modalities", "verbosity", "mirostat", "grammar", "store",
})
_INT_RE = re.compile(r"[+-]?\d+\Z")
_FLOAT_RE = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?\Z")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass
class MagicOptions:
    """The parsed option line. ``None`` means "not given" (the engine default applies)."""

    models: list[str]
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stream: bool | None = None
    cache: bool | None = None
    out: str | None = None
    n: int = 1
    fallback: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def call_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``Lab.compare``/``Lab.complete`` (models and prompt excluded)."""
        named = {
            "system": self.system, "temperature": self.temperature,
            "max_tokens": self.max_tokens, "top_p": self.top_p, "stream": self.stream,
            "cache": self.cache,
        }
        kwargs = {k: v for k, v in named.items() if v is not None}
        if self.n != 1:
            kwargs["n"] = self.n
        kwargs.update(self.extra)
        return kwargs


# --------------------------------------------------------------------------- tokenizing

def _tokens(line: str) -> list[tuple[str, str]]:
    """shlex tokens paired with the raw source text each came from (to see if it was quoted)."""
    stream = io.StringIO(line)
    lexer = shlex.shlex(stream, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""  # '#' is ordinary text in prompts and model names
    out: list[tuple[str, str]] = []
    while True:
        start = stream.tell()
        try:
            token = lexer.get_token()
        except ValueError as exc:  # "No closing quotation" / "No escaped character"
            raise OptionError(f"unbalanced quotes in the option line ({exc}).") from None
        if token is None:
            return out
        out.append((token, line[start:stream.tell()].strip()))


def _split_token(token: str, raw: str) -> tuple[str, str, bool]:
    """``key=value`` → (key, value, was_quoted)."""
    if "=" not in token:
        shown = token if token else raw
        raise OptionError(
            f"expected key=value, got {shown!r} (the prompt goes in the cell body, "
            "not on the %%llm line)."
        )
    key, value = token.split("=", 1)
    if not key:
        raise OptionError(f"missing option name before '=' in {raw!r}.")
    if not _IDENT_RE.match(key):
        raise OptionError(f"option name {key!r} is not a valid identifier.{_hint(key)}")
    raw_value = raw.split("=", 1)[1] if "=" in raw else ""
    quoted = raw_value[:1] in ("'", '"')
    return key, value, quoted


def _hint(key: str) -> str:
    """' Did you mean 'temperature'?' for near misses of our own keys, else ''."""
    lowered = key.lower()
    candidates = [k for k in KNOWN_KEYS if lowered == k or (len(lowered) >= 3 and k.startswith(lowered))]
    if not candidates:
        candidates = difflib.get_close_matches(lowered, KNOWN_KEYS, n=1, cutoff=0.75)
    if not candidates and lowered.rstrip("s") in KNOWN_KEYS:
        candidates = [lowered.rstrip("s")]
    return f" Did you mean {candidates[0]!r}?" if candidates else ""


# --------------------------------------------------------------------------- values

def _scalar(text: str) -> Any:
    """Type one unquoted word: int, float, bool, null, else the string itself."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "none"):
        return None
    if _INT_RE.match(text):
        return int(text)
    if _FLOAT_RE.match(text):
        return float(text)
    return text


def _json(key: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise OptionError(
            f"{key}: invalid JSON ({exc.msg} at column {exc.colno}); quote JSON values, "
            f"e.g. {key}='{{\"type\": \"json_object\"}}'."
        ) from None


def _typed(key: str, value: str, quoted: bool) -> Any:
    """An extra (endpoint) parameter's value."""
    if value[:1] in ("{", "["):
        return _json(key, value)
    if quoted:
        return value  # quotes mean "this exact text"
    if "," in value:
        items = value.split(",")
        if any(item == "" for item in items):
            raise OptionError(f"{key}: empty item in the list {value!r}.")
        return [_scalar(item) for item in items]
    return _scalar(value)


def _name_list(key: str, value: str) -> list[str]:
    names = [v.strip() for v in value.split(",")]
    if any(not n for n in names):
        raise OptionError(f"{key}: empty model name in {value!r} (stray comma?).")
    for name in names:
        if any(ch.isspace() for ch in name):
            raise OptionError(f"{key}: model name {name!r} contains whitespace.")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise OptionError(f"{key}: model {name!r} is listed twice.")
        seen.add(name)
    return names


def _number(key: str, value: str, lo: float, hi: float | None) -> float:
    if "," in value:
        raise OptionError(f"{key} takes one number, got the list {value!r}.")
    if not _FLOAT_RE.match(value):
        raise OptionError(f"{key} must be a number, got {value!r}.")
    number = float(value)
    if number < lo or (hi is not None and number > hi):
        upper = f"{hi:g}" if hi is not None else "∞"
        raise OptionError(f"{key}={value} is out of range ({lo:g}–{upper}).")
    return number


def _integer(key: str, value: str, lo: int, hi: int | None) -> int:
    if "," in value:
        raise OptionError(f"{key} takes one integer, got the list {value!r}.")
    if not _INT_RE.match(value):
        raise OptionError(f"{key} must be a whole number, got {value!r}.")
    number = int(value)
    if number < lo or (hi is not None and number > hi):
        rng = f"{lo}–{hi}" if hi is not None else f"≥ {lo}"
        raise OptionError(f"{key}={value} is out of range ({rng}).")
    return number


def _boolean(key: str, value: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise OptionError(f"{key} must be true or false, got {value!r}.")
    return lowered == "true"


# Names IPython keeps in every namespace (history, the shell itself); rebinding one breaks
# later cells. The magic also refuses whatever the running shell lists as hidden.
_IPYTHON_NAMES = frozenset({"In", "Out", "get_ipython", "exit", "quit", "display"})
_IPYTHON_HISTORY_RE = re.compile(r"_+\Z|_i+\Z|_i?\d+\Z|_(oh|ih|dh|sh)\Z")


def _identifier(key: str, value: str) -> str:
    if not _IDENT_RE.match(value):
        raise OptionError(f"{key}={value!r} is not a valid Python variable name.")
    check_binding_name(key, value)
    return value


def check_binding_name(key: str, value: str, reserved: Any = ()) -> None:
    """Refuse names whose rebinding breaks Python or IPython: keywords, builtins, dunders,
    IPython's history and shell names (and ``reserved``, e.g. the shell's hidden names)."""
    import builtins

    if keyword.iskeyword(value) or keyword.issoftkeyword(value):
        what = "a Python keyword"
    elif value.startswith("__") and value.endswith("__"):
        what = "a special (dunder) name"
    elif hasattr(builtins, value):
        what = "a Python builtin"
    elif value in _IPYTHON_NAMES or _IPYTHON_HISTORY_RE.match(value) or value in reserved:
        what = "a name IPython relies on"
    else:
        return
    raise OptionError(f"{key}={value!r} is {what}; rebinding it would break later cells: pick another "
                      "name, e.g. out=res.")


_CONVERTERS = {
    "model": lambda v: _name_list("model", v),
    "fallback": lambda v: _name_list("fallback", v),
    "system": lambda v: v,
    "temperature": lambda v: _number("temperature", v, 0.0, 2.0),
    "top_p": lambda v: _number("top_p", v, 0.0, 1.0),
    "max_tokens": lambda v: _integer("max_tokens", v, 1, None),
    "n": lambda v: _integer("n", v, 1, 1000),
    "stream": lambda v: _boolean("stream", v),
    "cache": lambda v: _boolean("cache", v),
    "out": lambda v: _identifier("out", v),
}


# --------------------------------------------------------------------------- the parser

def _collect(line: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(known options, extra body parameters), each key converted and checked once."""
    known: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for token, raw in _tokens(line):
        key, value, quoted = _split_token(token, raw)
        if key in known or key in extra:
            raise OptionError(f"option {key!r} is given twice.")
        if value == "":
            raise OptionError(f"empty value for {key!r} (write {key}=VALUE).")
        if key in _CONVERTERS:
            known[key] = _CONVERTERS[key](value)
        elif key in _RESERVED_KEYS:
            raise OptionError(f"{key!r} can't be set on the %%llm line.{_hint(key)}")
        elif key not in _PASSTHROUGH_KEYS and _hint(key):
            raise OptionError(f"unknown option {key!r}.{_hint(key)}")
        else:
            extra[key] = _typed(key, value, quoted)
    return known, extra


def parse_options(line: str, known_defaults: Mapping[str, Any] | None = None) -> MagicOptions:
    """Parse the ``%%llm`` first line into ``MagicOptions``; raise ``OptionError`` if malformed.

    ``known_defaults`` fills options the line leaves out, e.g. ``{"model": ["a", "b"]}`` from
    ``%config LLMLab.default_models``.
    """
    known, extra = _collect(line or "")
    for key, value in (known_defaults or {}).items():
        if key not in known and value not in (None, [], ""):
            known[key] = list(value) if key in _LIST_KEYS else value
    models = known.pop("model", None)
    if not models:
        raise OptionError(
            "no model given: add model=NAME[,NAME...] or set %config LLMLab.default_models."
        )
    fallback = known.pop("fallback", [])
    if fallback and len(models) != 1:
        raise OptionError("fallback=... needs exactly one model=... (it is that model's backup chain).")
    if fallback and known.get("n", 1) != 1:
        raise OptionError("n=... can't be combined with fallback=... (a chain gives one answer).")
    clash = sorted(set(models) & set(fallback))
    if clash:
        raise OptionError(f"fallback repeats model {clash[0]!r}.")
    return MagicOptions(models=list(models), fallback=list(fallback), extra=extra, **known)


# --------------------------------------------------------------------------- {{name}} prompts

# A placeholder must start like a Python name, so JSON ({{"a": 1}}), C initialisers
# ({{1, 2}}, {{}}) and other double-brace code is left exactly as written.
_PLACEHOLDER_RE = re.compile(r"(\\?)\{\{(\s*[A-Za-z_][^{}\n]*?)\}\}")
_MISSING = object()


def interpolate(text: str, namespace: Mapping[str, Any]) -> str:
    """Replace ``{{ref}}`` placeholders with ``str(value)`` looked up in ``namespace``.

    ``ref`` is a name followed by ``.attr`` and ``[constant]`` parts only — never calls,
    operators or dunder attributes. ``\\{{`` keeps literal braces.
    """

    def replace(match: re.Match) -> str:
        if match.group(1):  # escaped: drop the backslash, keep the braces
            return match.group(0)[1:]
        ref = match.group(2).strip()
        value = _resolve(ref, namespace)
        try:
            return str(value)
        except Exception as exc:  # a user object's __str__: one line, not a traceback
            raise OptionError(f"{{{{{ref}}}}}: str() of the value raised {type(exc).__name__}.") from None

    return _PLACEHOLDER_RE.sub(replace, text)


def placeholders(text: str) -> list[str]:
    """The references used by ``{{...}}`` placeholders in ``text`` (escaped ones excluded)."""
    return [m.group(2).strip() for m in _PLACEHOLDER_RE.finditer(text) if not m.group(1)]


def _resolve(ref: str, namespace: Mapping[str, Any]) -> Any:
    try:
        tree = ast.parse(ref, mode="eval").body
    except SyntaxError:
        raise OptionError(_bad_ref(ref)) from None
    return _evaluate(tree, ref, namespace)


def _bad_ref(ref: str) -> str:
    return (
        f"{{{{{ref}}}}}: only names, .attributes and [constant] subscripts are allowed in "
        "placeholders (write \\{{ for literal braces)."
    )


def _evaluate(node: ast.AST, ref: str, namespace: Mapping[str, Any]) -> Any:
    """Walk the restricted tree; anything other than Name/Attribute/Subscript is refused."""
    if isinstance(node, ast.Name):
        _refuse_dunder(node.id, ref)
        value = namespace.get(node.id, _MISSING)
        if value is _MISSING:
            raise OptionError(f"{{{{{ref}}}}}: name {node.id!r} is not defined.")
        return value
    if isinstance(node, ast.Attribute):
        _refuse_dunder(node.attr, ref)
        base = _evaluate(node.value, ref, namespace)
        try:
            return getattr(base, node.attr)
        except AttributeError:
            raise OptionError(
                f"{{{{{ref}}}}}: {type(base).__name__} object has no attribute {node.attr!r}."
            ) from None
        except Exception as exc:  # a property that raises: one line, not a traceback
            raise OptionError(f"{{{{{ref}}}}}: reading .{node.attr} raised {type(exc).__name__}.") from None
    if isinstance(node, ast.Subscript):
        base = _evaluate(node.value, ref, namespace)
        index = _constant_index(node.slice, ref)
        try:
            return base[index]
        except Exception as exc:  # noqa: BLE001 - any user __getitem__ failure is one line
            raise OptionError(f"{{{{{ref}}}}}: lookup [{index!r}] failed ({type(exc).__name__}).") from None
    raise OptionError(_bad_ref(ref))


def _constant_index(node: ast.AST, ref: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, str)) and not isinstance(node.value, bool):
        return node.value
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant) and type(node.operand.value) is int):
        return -node.operand.value
    raise OptionError(_bad_ref(ref))


def _refuse_dunder(name: str, ref: str) -> None:
    # Dunders reach interpreter internals (__class__, __globals__, __import__).
    if name.startswith("__"):
        raise OptionError(f"{{{{{ref}}}}}: names starting with '__' are not allowed in placeholders.")
