"""The ``%%llm`` option line and ``{{name}}`` prompt interpolation, as pure functions.

Nothing here touches IPython or the network, so the grammar can be tested as a table. Every
problem is an ``OptionError`` with a one-line message; the magic turns it into a UsageError.

Grammar of the first line::

    line   := token*                    (split with shlex: '...' and "..." quote)
    token  := key '=' value             (split at the first '=')
    key    := model | fallback | out    (the magic's own; also policy, task, history)
            | a keyword of Lab.compare  (system, temperature, max_tokens, stream, n, timeout, …)
            | body.NAME                 (any other body key, sent as is: body.top_k=40)
            | MODEL:KEY                 (a body key for that model only: gpt-5:temperature=null,
                                         split at the last ':'; null = not sent to it)

Values are typed by the keyword they belong to (numbers, whole numbers, true/false, text, a
comma list, JSON when they start with '{' or '['), then checked by the same
:class:`~llmlab.engine._options.CallOptions` the Python API builds: one rule for both. ``body.NAME``
values are typed scalars (ints, floats, true/false, null, else text) or JSON. A key that is none
of these is an error, never a body parameter: a typo must not be sent and paid for.
"""
from __future__ import annotations

import ast
import io
import math
import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..base._credentials import credential_error
from ..base._errors import InputError
from ..base._redact import redact_shown
from ..base._validate import (
    MAX_OPTION_DEPTH,
    check_binding_name,
    check_identifier,
    did_you_mean,
    digits_shown,
    one_line,
    parse_json_option,
    shown_value,
)
from ..engine._options import BODY_PARAMS, CallOptions

__all__ = ["OptionError", "MagicOptions", "parse_options", "interpolate", "placeholders", "LINE_KEYS"]


class OptionError(InputError):
    """A problem in the option line or a prompt placeholder (always one line)."""

    def __init__(self, message: str):
        # Keep the promise of one line even if a value with a newline is quoted back.
        super().__init__(" ".join(str(message).split()))


_MAGIC_KEYS = ("model", "fallback", "out", "policy", "task", "history")
# Engine keywords a line can set (on_event, retry_policy, extra_body… are Python objects).
_ENGINE_KEYS = {"system": "text", "stream": "bool", "cache": "bool", "n": "integer", "timeout": "number",
                "retries": "integer", "batch": "batch"}
_KINDS: dict[str, str] = {**_ENGINE_KEYS, **{name: spec[0] for name, spec in BODY_PARAMS.items()}}
LINE_KEYS = (*_MAGIC_KEYS, *_KINDS)
_BODY_PREFIX = "body."
_INT_RE = re.compile(r"[+-]?\d+\Z")
_FLOAT_RE = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?\Z")
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_BODY_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


@dataclass
class MagicOptions:
    """The parsed option line: the models, the magic's own keys, and the call's options."""

    models: list[str]
    options: CallOptions = field(default_factory=CallOptions)
    fallback: list[str] = field(default_factory=list)
    out: str | None = None
    policy: str | None = None   # model=auto: the variable holding the routing policy (lab.route)
    task: str | None = None     # the prompt's task, for policies that route on it
    history: str | None = None  # the variable holding the earlier turns (messages, or a Result)


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
            f"expected key=value, got {shown_value(shown)} (the prompt goes in the cell body, "
            "not on the %%llm line)."
        )
    key, value = token.split("=", 1)
    if not key:
        raise OptionError(f"missing option name before '=' in {shown_value(raw)}.")
    own = key.rsplit(":", 1)[1] if ":" in key else key
    name = own[len(_BODY_PREFIX):] if own.startswith(_BODY_PREFIX) else own
    if not (_BODY_KEY_RE if name is not own else _IDENT_RE).match(name):
        raise OptionError(f"option name {shown_value(key)} is not a valid identifier.{_hint(key)}")
    raw_value = raw.split("=", 1)[1] if "=" in raw else ""
    quoted = raw_value[:1] in ("'", '"')
    return key, value, quoted


def _hint(key: str) -> str:
    return did_you_mean(key, LINE_KEYS)


# --------------------------------------------------------------------------- values

def _scalar(key: str, text: str) -> Any:
    """Type one unquoted word: int, float, bool, null, else the string itself."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "none"):
        return None
    if _INT_RE.match(text):
        return _number(key, text, integer=True)
    if _FLOAT_RE.match(text):
        return _number(key, text, integer=False)
    return text


def _number(key: str, text: str, *, integer: bool) -> int | float:
    """A number written on the line (``text`` matched _INT_RE or _FLOAT_RE) under the rule of the
    Python API: an integer longer than Python reads (int() raises past 4,300 digits) and a float
    beyond float's range (``1e400`` reads as inf) are one-line errors, never a raw ValueError."""
    if integer:
        digits, limit = len(text.lstrip("+-")), sys.get_int_max_str_digits()
        if limit and digits > limit:
            raise OptionError(f"{key}: {digits_shown(digits)} is longer than Python reads ({limit:,} digits); "
                              "write a shorter number.")
        return int(text)
    number = float(text)
    if not math.isfinite(number):
        raise OptionError(f"{key} must be a finite number, got {shown_value(text)} (beyond a float's 1.8e308).")
    return number


def _json(key: str, text: str) -> Any:
    try:  # the one JSON-option reader: no recursion, a depth bound (a 100,000-deep value is one line)
        return parse_json_option(text, key, hint=f"quote JSON values, e.g. {key}='{{\"type\": \"json_object\"}}'.")
    except InputError as exc:
        raise OptionError(str(exc)) from None


def _items(key: str, value: str) -> list[str]:
    items = value.split(",")
    if any(item == "" for item in items):
        raise OptionError(f"{key}: empty item in the list {shown_value(value)}.")
    return items


def _body_value(key: str, value: str, quoted: bool) -> Any:
    """A ``body.NAME`` value: JSON, quoted text, a comma list of scalars, or one scalar."""
    if value[:1] in ("{", "["):
        return _json(key, value)
    if quoted:
        return value  # quotes mean "this exact text"
    if "," in value:
        return [_scalar(key, item) for item in _items(key, value)]
    return _scalar(key, value)


def _name_list(key: str, value: str) -> list[str]:
    names = [v.strip() for v in value.split(",")]
    if any(not n for n in names):
        raise OptionError(f"{key}: empty model name in {shown_value(value)} (stray comma?).")
    for name in names:
        if any(ch.isspace() for ch in name):
            raise OptionError(f"{key}: model name {shown_value(name)} contains whitespace.")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise OptionError(f"{key}: model {name!r} is listed twice.")
        seen.add(name)
    return names


def _typed(key: str, kind: str, value: str, quoted: bool) -> Any:
    """A keyword's value typed for its kind; ranges are checked by CallOptions."""
    if not quoted and value.lower() in ("null", "none"):
        return None  # "not set": the default applies
    if kind in ("number", "integer"):
        if "," in value:
            raise OptionError(f"{key} takes one number, got the list {shown_value(value)}.")
        pattern, what = (_FLOAT_RE, "a number") if kind == "number" else (_INT_RE, "a whole number")
        if not pattern.match(value):
            raise OptionError(f"{key} must be {what}, got {shown_value(value)}.")
        return _number(key, value, integer=kind == "integer")
    if kind == "bool" or (kind == "batch" and value.lower() != "auto"):
        if value.lower() not in ("true", "false"):
            what = "true, false or auto" if kind == "batch" else "true or false"
            raise OptionError(f"{key} must be {what}, got {shown_value(value)}.")
        return value.lower() == "true"
    if value[:1] in ("{", "[") and kind != "text":
        return _json(key, value)
    if kind == "texts" and not quoted and "," in value:
        return _items(key, value)
    return value


# --------------------------------------------------------------------------- the parser

def _per_model(key: str, value: str, quoted: bool) -> tuple[str, str, Any]:
    """``gpt-5:temperature=null`` → ('gpt-5', 'temperature', None): a body key for one model."""
    model, name = key.rsplit(":", 1)
    if not model or any(ch.isspace() for ch in model):
        raise OptionError(f"{key}: write MODEL:KEY=VALUE, e.g. gpt-5:temperature=1.")
    if name.startswith(_BODY_PREFIX):
        name = name[len(_BODY_PREFIX):]
        typed = None if not quoted and value.lower() in ("null", "none") else _body_value(key, value, quoted)
        return model, name, typed
    if name not in BODY_PARAMS:
        why = "is not a body parameter" if name in _KINDS or name in _MAGIC_KEYS else "is unknown"
        raise OptionError(f"{key}: {name!r} {why}; per model, set a body key "
                          f"(temperature, max_completion_tokens, body.NAME…).{did_you_mean(name, BODY_PARAMS)}")
    return model, name, _typed(key, BODY_PARAMS[name][0], value, quoted)


def _collect(line: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, dict[str, Any]]]:
    """(the magic's own keys, call keywords, extra body keys, per-model body keys), each key
    converted once."""
    own: dict[str, Any] = {}
    call: dict[str, Any] = {}
    body: dict[str, Any] = {}
    per_model: dict[str, dict[str, Any]] = {}
    for token, raw in _tokens(line):
        key, value, quoted = _split_token(token, raw)
        if key in own or key in call or (key.startswith(_BODY_PREFIX) and key[len(_BODY_PREFIX):] in body):
            raise OptionError(f"option {key!r} is given twice.")
        if value == "":
            raise OptionError(f"empty value for {key!r} (write {key}=VALUE).")
        if ":" in key:
            model, name, typed = _per_model(key, value, quoted)
            if name in per_model.setdefault(model, {}):
                raise OptionError(f"option {key!r} is given twice.")
            per_model[model][name] = typed
        elif key in ("model", "fallback"):
            own[key] = _name_list(key, value)
        elif key == "out":
            own[key] = _checked(check_binding_name, value, "out")
        elif key in ("policy", "history"):
            own[key] = _checked(check_identifier, value, key)
        elif key == "task":
            own[key] = value
        elif key.startswith(_BODY_PREFIX):
            body[key[len(_BODY_PREFIX):]] = _body_value(key, value, quoted)
        elif key in _KINDS:
            call[key] = _typed(key, _KINDS[key], value, quoted)
        else:
            raise _unknown(key)
    return own, call, body, per_model


def _unknown(key: str) -> OptionError:
    refusal = credential_error(key)
    if refusal is not None:  # never suggest sending a key as body.api_key=
        return OptionError(str(refusal))
    if key in ("messages", "prompt", "on_event", "retry_policy", "extra_body", "concurrency", "progress", "resume"):
        return OptionError(f"{key!r} can't be set on the %%llm line.{_hint(key)}")
    return OptionError(f"unknown option {key!r}.{_hint(key)} Only the keys in %llm help are understood; "
                       f"to send another body parameter to the endpoint, write body.{key}=VALUE.")


def _checked(build: Any, *args: Any, **kwargs: Any) -> Any:
    """``build(...)`` with its InputError reported as an OptionError."""
    try:
        return build(*args, **kwargs)
    except InputError as exc:
        raise OptionError(str(exc)) from None


def parse_options(line: str, known_defaults: Mapping[str, Any] | None = None) -> MagicOptions:
    """Parse the ``%%llm`` first line into ``MagicOptions``; raise ``OptionError`` if malformed.

    ``known_defaults`` fills options the line leaves out, e.g. ``{"model": ["a", "b"]}`` from
    ``%config LLMLab.default_models`` or ``{"cache": False}``.
    """
    own, call, body, per_model = _collect(line or "")
    for key, value in (known_defaults or {}).items():
        if value in (None, [], ""):
            continue
        if key in ("model", "fallback"):
            own.setdefault(key, list(value))
        elif key not in call and key in _KINDS:
            call[key] = value
    models = own.get("model")
    if not models:
        raise OptionError(
            "no model given: add model=NAME[,NAME...] or set %config LLMLab.default_models."
        )
    fallback = own.get("fallback", [])
    if fallback and len(models) != 1:
        raise OptionError("fallback=... needs exactly one model=... (it is that model's backup chain).")
    if fallback and call.get("n", 1) != 1:
        raise OptionError("n=... can't be combined with fallback=... (a chain gives one answer).")
    clash = sorted(set(models) & set(fallback))
    if clash:
        raise OptionError(f"fallback repeats model {clash[0]!r}.")
    _check_auto(models, own, fallback, call)
    if call.get("batch") and (fallback or "auto" in models):
        raise OptionError("batch=... can't be combined with fallback= or model=auto (a batch answers each model "
                          "once; a chain or a policy decides call by call).")
    stray = sorted(m for m in per_model if m not in models and m not in fallback and not set(m) & set("*?["))
    if stray and "auto" not in models:     # with model=auto the policy's models are not on the line
        raise OptionError(f"{stray[0]}:... names a model that is not in model=... or fallback=... .")
    call = {k: v for k, v in call.items() if v is not None}
    options = _checked(CallOptions, **call, extra_body=body or None, model_params=per_model or None)
    return MagicOptions(models=list(models), options=options, fallback=list(fallback), out=own.get("out"),
                        policy=own.get("policy"), task=own.get("task"), history=own.get("history"))


def _check_auto(models: list[str], own: dict[str, Any], fallback: list[str], call: dict[str, Any]) -> None:
    """``model=auto policy=NAME``: the policy picks the model (lab.route); nothing else may."""
    auto = "auto" in models
    if auto and (len(models) != 1 or "policy" not in own):
        raise OptionError("model=auto lets a routing policy choose: write model=auto policy=NAME, where NAME "
                          "is a variable holding an llmlab.routing policy (and no other model).")
    if not auto and "policy" in own:
        raise OptionError("policy=NAME routes the prompt: use it with model=auto.")
    if auto and (fallback or call.get("n", 1) != 1):
        raise OptionError("model=auto can't be combined with fallback= or n= (the policy decides the calls).")


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
            raise OptionError(f"{_label(ref)}: str() of the value raised {type(exc).__name__}.") from None

    return _PLACEHOLDER_RE.sub(replace, text)


def placeholders(text: str) -> list[str]:
    """The references used by ``{{...}}`` placeholders in ``text`` (escaped ones excluded)."""
    return [m.group(2).strip() for m in _PLACEHOLDER_RE.finditer(text) if not m.group(1)]


# A placeholder names one value: a longer or deeper one is no reference anyone writes, and parsing
# or walking it part by part would reach Python's recursion limit (3,000 subscripts did).
_MAX_REF = 1000
_MAX_REF_PARTS = MAX_OPTION_DEPTH


def _resolve(ref: str, namespace: Mapping[str, Any]) -> Any:
    if len(ref) > _MAX_REF:
        raise OptionError(f"{_label(ref)}: a placeholder of {len(ref):,} characters names no value (at most "
                          f"{_MAX_REF:,}); bind the value to a short name in a cell and write {{{{name}}}}.")
    if ref.count(".") + ref.count("[") > _MAX_REF_PARTS:
        raise OptionError(f"{_label(ref)}: more than {_MAX_REF_PARTS} .attribute and [subscript] parts; bind the "
                          "value to a name in a cell and write {{name}}.")
    try:
        tree = ast.parse(ref, mode="eval").body
    except (SyntaxError, RecursionError, MemoryError):  # the parser's own nesting limits
        raise OptionError(_bad_ref(ref)) from None
    return _evaluate(tree, ref, namespace)


def _label(ref: str) -> str:
    """A placeholder as its messages quote it: on one line, cut to 80 characters, the key never
    (redacted before the cut, which could leave too little of it to be recognised)."""
    return f"{{{{{one_line(redact_shown(ref[:200]), 80)}}}}}"


def _bad_ref(ref: str) -> str:
    return (
        f"{_label(ref)}: only names, .attributes and [constant] subscripts are allowed in "
        "placeholders (write \\{{ for literal braces)."
    )


def _evaluate(tree: ast.AST, ref: str, namespace: Mapping[str, Any]) -> Any:
    """Walk the restricted tree without recursion: down its .attr/[index] chain to the name,
    refusing anything else (calls, operators, dunders) before a value is read, then up."""
    steps: list[tuple[str, Any]] = []
    node = tree
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        if isinstance(node, ast.Attribute):
            _refuse_dunder(node.attr, ref)
            steps.append(("attr", node.attr))
        else:
            steps.append(("index", _constant_index(node.slice, ref)))
        node = node.value
    if not isinstance(node, ast.Name):
        raise OptionError(_bad_ref(ref))
    _refuse_dunder(node.id, ref)
    value = namespace.get(node.id, _MISSING)
    if value is _MISSING:
        raise OptionError(f"{_label(ref)}: name {shown_value(node.id)} is not defined.")
    for kind, part in reversed(steps):
        value = _attribute(value, part, ref) if kind == "attr" else _item(value, part, ref)
    return value


def _attribute(base: Any, name: str, ref: str) -> Any:
    try:
        return getattr(base, name)
    except AttributeError:
        raise OptionError(f"{_label(ref)}: {type(base).__name__} object has no attribute {name!r}.") from None
    except Exception as exc:  # a property that raises: one line, not a traceback
        raise OptionError(f"{_label(ref)}: reading .{name} raised {type(exc).__name__}.") from None


def _item(base: Any, index: Any, ref: str) -> Any:
    try:
        return base[index]
    except Exception as exc:  # noqa: BLE001 - any user __getitem__ failure is one line
        raise OptionError(f"{_label(ref)}: lookup [{shown_value(index)}] failed ({type(exc).__name__}).") from None


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
        raise OptionError(f"{_label(ref)}: names starting with '__' are not allowed in placeholders.")
