"""Structured answers checked as data: tool calls (from a row's ``tool_calls`` JSON) and JSON
answers, against a JSON Schema — given, or the one the row's request declared (its ``params``:
``response_format.json_schema.schema``, a tool's ``function.parameters``).

Pure functions of text that never raise on model output: each returns what it found and, when
something is wrong, a one-line reason. Schemas are checked with ``jsonschema`` (the validator
the schema's ``$schema`` names, Draft 2020-12 otherwise; formats are not asserted).
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urldefrag

from ..base._errors import InputError
from ..base._json import loads
from . import _patterns
from ._checks import REGEX_CHARS

__all__ = ["ToolCall", "tool_calls", "schema_problem", "check_schema", "compile_schema", "Compiled", "declared_schema",
           "declared_parameters", "declared_check", "parse_json", "unfenced", "MAX_DEPTH", "MAX_SCHEMA_DEPTH"]

_TOO_DEEP = "nested too deeply to read"
# an answer nested deeper than this fails (the validator recurses once or more per level, and no
# real answer nests so deep); a schema deeper than this is refused (it nests two levels per
# level of the value it describes)
MAX_DEPTH = 64
MAX_SCHEMA_DEPTH = 2 * MAX_DEPTH
_DATA_WORDS = frozenset({"const", "enum", "default", "examples"})
# compiled validators by the SHA-256 of their schema's canonical JSON, least recently used last out
_COMPILED: OrderedDict[str, Compiled] = OrderedDict()
_KEEP = 64
_LOCK = threading.Lock()


def unfenced(body: str) -> str:
    """``body`` (stripped) without a surrounding Markdown code fence and its info string
    (a json-tagged fence). String operations, not a regex: a lazy body before an optional
    whitespace run would retry that run at every character of an unclosed fence."""
    if len(body) < 6 or not body.startswith("```") or not body.endswith("```"):
        return body
    inner, at = body[3:-3], 0
    while at < len(inner) and (inner[at].isalnum() or inner[at] in "_-"):
        at += 1
    return inner[at:].strip()


class ToolCall(dict):
    """One call: ``name``, ``arguments`` (the JSON text as sent), ``id``."""

    @property
    def name(self) -> str | None:
        value = self.get("name")
        return value if isinstance(value, str) else None


def tool_calls(value: Any) -> tuple[list[ToolCall], str]:
    """The calls in a row's ``tool_calls`` (or an answer that is their JSON); a reason when none."""
    if value is None or (isinstance(value, float) and value != value) or value == "":
        return [], "no tool call"
    try:
        parsed = loads(value) if isinstance(value, str) else value
    except ValueError:
        return [], "no tool call (the answer is text)"
    except RecursionError:
        return [], f"no tool call (JSON {_TOO_DEEP})"
    if not isinstance(parsed, list) or not all(isinstance(c, Mapping) and "name" in c for c in parsed):
        return [], "no tool call (the answer is not a list of calls)"
    return [ToolCall(c) for c in parsed], "" if parsed else "no tool call"


def parse_json(text: Any) -> tuple[Any, str]:
    """JSON in an answer (a surrounding Markdown code fence allowed); a reason when it is not."""
    if text is None or (isinstance(text, float) and text != text):
        return None, "no answer"
    body = unfenced(str(text).strip())
    if not body:
        return None, "empty answer"
    try:
        return loads(body), ""
    except ValueError as exc:
        return None, f"invalid JSON: {' '.join(str(exc).split())[:60]}"
    except RecursionError:
        return None, f"JSON {_TOO_DEEP}"


def check_schema(schema: Any, what: str = "schema") -> dict:
    """``schema`` as a JSON Schema object (a ``response_format`` dict is unwrapped); InputError if
    it is not a valid schema, or one llmlab will not run (a pattern that can backtrack
    catastrophically, nesting deeper than :data:`MAX_SCHEMA_DEPTH`, a ``$ref`` to a schema it
    does not hold) — a configuration mistake, raised before anything is scored."""
    schema = _unwrap(schema)
    if not isinstance(schema, Mapping):
        raise InputError(f"{what} must be a JSON Schema object (a dict), not {type(schema).__name__}")
    invalid = compile_schema(schema).invalid
    if invalid:
        raise InputError(f"{what} {invalid}")
    return dict(schema)


def schema_problem(value: Any, schema: Mapping) -> str:
    """Why ``value`` does not match ``schema`` (the most relevant error, with its path), or ""."""
    return compile_schema(schema).problem(value)


@dataclass(frozen=True)
class Compiled:
    """A schema's validator, built once; ``invalid`` says why the schema cannot be used."""

    validator: Any
    invalid: str = ""

    def problem(self, value: Any) -> str:
        """Why ``value`` does not match (the most relevant error, with its path), or ""."""
        if self.invalid:  # a schema the endpoint's row carried: reported, not raised
            return f"the schema itself {self.invalid}"
        if _depth(value, MAX_DEPTH) > MAX_DEPTH:
            return f"the value is nested deeper than {MAX_DEPTH} levels"
        from jsonschema.exceptions import best_match

        try:
            error = best_match(self.validator.iter_errors(value))
        except RecursionError:  # a schema that refers to itself without consuming the value
            return f"the value is {_TOO_DEEP} (the schema refers to itself)"
        except _reference_errors() as exc:
            return f"the schema's $ref cannot be resolved: {_line(exc)}"
        if error is None:
            return ""
        where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        return f"{where}: {_line(error.message)}"


def compile_schema(schema: Mapping) -> Compiled:
    """``schema``'s validator, compiled once per distinct schema (by a hash of its canonical JSON)
    and reused: a large declared schema costs once per scoring run, not once per row."""
    try:
        key = json.dumps(schema, sort_keys=True)
    except RecursionError:
        return Compiled(None, f"is nested deeper than {MAX_SCHEMA_DEPTH} levels")
    except (TypeError, ValueError) as exc:
        return Compiled(None, f"must hold JSON values: {_line(exc)}")
    digest = hashlib.sha256(key.encode()).hexdigest()
    with _LOCK:
        found = _COMPILED.get(digest)
        if found is not None:
            _COMPILED.move_to_end(digest)
            return found
    found = _build(loads(key))
    with _LOCK:
        _COMPILED[digest] = found
        while len(_COMPILED) > _KEEP:
            _COMPILED.popitem(last=False)
    return found


def declared_schema(params: Any) -> dict | None:
    """The JSON Schema a row's request asked the answer to follow (``response_format``)."""
    body = _params(params)
    return _unwrap(body.get("response_format")) if isinstance(body.get("response_format"), Mapping) else None


def declared_parameters(params: Any, name: str | None) -> dict | None:
    """The ``parameters`` schema the row's request declared for the tool ``name``."""
    body = _params(params)
    tools = body.get("tools")
    for tool in tools if isinstance(tools, list) else ():
        fn = tool.get("function") if isinstance(tool, Mapping) else None
        if isinstance(fn, Mapping) and fn.get("name") == name and isinstance(fn.get("parameters"), Mapping):
            return dict(fn["parameters"])
    return None


def declared_check(params: Any, tool: str | None = None, *, of_tool: bool = False) -> Compiled | None:
    """The compiled schema a row's request declared — its ``response_format``, or with ``of_tool``
    the ``parameters`` of the tool ``tool`` — or None. A row's ``params`` text is read once per
    distinct text: 3,000 rows that sent one large schema parse and hash it once."""
    if isinstance(params, str):
        return _declared_in_text(params, tool, of_tool)
    schema = declared_parameters(params, tool) if of_tool else declared_schema(params)
    return None if schema is None else compile_schema(schema)


@lru_cache(maxsize=256)
def _declared_in_text(params: str, tool: str | None, of_tool: bool) -> Compiled | None:
    schema = declared_parameters(params, tool) if of_tool else declared_schema(params)
    return None if schema is None else compile_schema(schema)


def _unwrap(schema: Any) -> Any:
    """A ``response_format`` (``{"type": "json_schema", "json_schema": {"schema": ...}}``) or its
    ``json_schema`` part → the schema inside; anything else as it is."""
    if isinstance(schema, Mapping) and schema.get("type") == "json_schema" and "json_schema" in schema:
        schema = schema["json_schema"]
    if isinstance(schema, Mapping) and isinstance(schema.get("schema"), Mapping) and "name" in schema:
        return schema["schema"]
    return schema


def _params(params: Any) -> dict:
    if isinstance(params, Mapping):
        return dict(params)
    try:
        body = loads(params) if isinstance(params, str) else None
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _build(schema: dict) -> Compiled:
    invalid = _hazard(schema)
    if invalid:
        return Compiled(None, invalid)
    try:
        from jsonschema import Draft3Validator
        from jsonschema.validators import extend, validator_for
        from referencing import Registry
    except ImportError as exc:
        raise InputError(f"checking JSON Schemas needs jsonschema: pip install jsonschema ({exc})") from None
    cls = validator_for(schema)
    try:
        cls.check_schema(schema)
    except _schema_errors() as exc:
        return Compiled(None, f"is not a valid JSON Schema: {_line(exc)}")
    except RecursionError:
        return Compiled(None, f"is nested deeper than {MAX_SCHEMA_DEPTH} levels")
    keywords: dict[str, Any] = {"pattern": _bounded_pattern}
    if cls is not Draft3Validator:  # draft 3's properties also hold "required"
        keywords["properties"] = _properties
    bounded = extend(cls, keywords)
    # nothing is ever fetched at run time: a reference the schema does not hold is unresolvable
    return Compiled(bounded(schema, registry=Registry(retrieve=_never_fetch)))  # type: ignore[call-arg]


def _hazard(schema: dict) -> str:
    """Why a schema is refused before it is compiled, or "": too deep, a pattern that can
    backtrack catastrophically, a ``$ref`` to a schema outside it. Walked with a stack, not
    recursion, so that a deep schema is an answer and not a RecursionError."""
    ids = {node["$id"] for node, _path, _d in _nodes(schema) if isinstance(node.get("$id"), str)}
    for node, path, depth in _nodes(schema):
        if depth > MAX_SCHEMA_DEPTH:
            return f"is nested deeper than {MAX_SCHEMA_DEPTH} levels (at {path})"
        patterns = [(f"{path}.pattern", node["pattern"])] if isinstance(node.get("pattern"), str) else []
        if isinstance(node.get("patternProperties"), Mapping):
            patterns += [(f"{path}.patternProperties", key) for key in node["patternProperties"]]
        for where, pattern in patterns:
            try:
                _patterns.compile_pattern(pattern, 0, f"has a pattern at {where}")
            except InputError as exc:
                return str(exc)
        for word in ("$ref", "$dynamicRef"):
            ref = node.get(word)
            if isinstance(ref, str) and not ref.startswith("#") and urldefrag(ref).url not in ids:
                return (f"has a {word} at {path} to {ref[:80]!r}, a schema it does not hold: llmlab never fetches "
                        "schemas at run time; put it under $defs and refer to it as '#/$defs/NAME'")
    return ""


def _nodes(schema: Mapping) -> Iterable[tuple[Mapping, str, int]]:
    """Every object in a schema with its JSON path and depth, except inside values that are data
    (``const``, ``enum``, ``default``, ``examples``): their keys are not keywords."""
    stack: list[tuple[Any, str, int]] = [(schema, "$", 1)]
    while stack:
        node, path, depth = stack.pop()
        if isinstance(node, Mapping):
            yield node, path, depth
            children = [(v, f"{path}.{k}") for k, v in node.items() if k not in _DATA_WORDS]
        elif isinstance(node, list):
            children = [(v, f"{path}[{i}]") for i, v in enumerate(node)]
        else:
            continue
        if depth > MAX_SCHEMA_DEPTH:
            return
        stack.extend((v, p, depth + 1) for v, p in children if isinstance(v, (Mapping, list)))


def _depth(value: Any, limit: int) -> int:
    """How deeply ``value`` nests (counted up to just past ``limit``), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, (Mapping, list)):
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            break
        stack.extend((v, depth + 1) for v in (node.values() if isinstance(node, Mapping) else node))
    return deepest


def _bounded_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterable[Any]:
    """The ``pattern`` keyword, reading at most :data:`~llmlab.analysis._checks.REGEX_CHARS`
    characters: a pattern that passed the backtracking check is at most quadratic, and a model's
    string of a million characters would still take minutes."""
    from jsonschema.exceptions import ValidationError

    if not validator.is_type(instance, "string"):
        return
    if len(instance) > REGEX_CHARS:
        yield ValidationError(f"a string of {len(instance):,} characters is longer than the "
                              f"{REGEX_CHARS:,} a pattern ({pattern[:40]!r}) is checked on")
    elif not re.search(pattern, instance):
        yield ValidationError(f"{instance[:60]!r} does not match {pattern[:60]!r}")


def _properties(validator: Any, properties: Mapping, instance: Any, schema: Any) -> Iterable[Any]:
    """The ``properties`` keyword, walking the instance's keys when they are fewer than the
    schema's (jsonschema walks all the schema's: 3,000 declared properties cost 1 ms a row)."""
    if not validator.is_type(instance, "object"):
        return
    names = properties if len(properties) <= len(instance) else [k for k in instance if k in properties]
    for name in names:
        if name in instance:
            yield from validator.descend(instance[name], properties[name], path=name, schema_path=name)


def _never_fetch(uri: str) -> Any:
    from referencing.exceptions import NoSuchResource

    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]


def _reference_errors() -> tuple[type[Exception], ...]:
    from referencing.exceptions import Unresolvable

    try:
        from jsonschema.exceptions import _WrappedReferencingError as wrapped  # what iter_errors raises
    except ImportError:
        return (Unresolvable,)
    return (Unresolvable, wrapped)


def _schema_errors() -> tuple[type[Exception], ...]:
    try:
        from jsonschema.exceptions import SchemaError
    except ImportError:  # _build says what to install
        return ()
    return (SchemaError,)


def _line(exc: Any, limit: int = 160) -> str:
    text = " ".join(str(exc).split("\n")[0].split())
    return text if len(text) <= limit else text[:limit] + "…"
