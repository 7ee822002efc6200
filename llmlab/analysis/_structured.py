"""Structured answers checked as data: tool calls (from a row's ``tool_calls`` JSON) and JSON
answers, against a JSON Schema — given, or the one the row's request declared (its ``params``:
``response_format.json_schema.schema``, a tool's ``function.parameters``).

Pure functions of text that never raise on model output: each returns what it found and, when
something is wrong, a one-line reason. Schemas are checked with ``jsonschema`` (the validator
the schema's ``$schema`` names, Draft 2020-12 otherwise; formats are not asserted).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from ..base._errors import InputError

__all__ = ["ToolCall", "tool_calls", "schema_problem", "check_schema", "declared_schema", "declared_parameters",
           "parse_json", "unfenced"]

_TOO_DEEP = "nested too deeply to read"


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
        parsed = json.loads(value) if isinstance(value, str) else value
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
        return json.loads(body), ""
    except ValueError as exc:
        return None, f"invalid JSON: {' '.join(str(exc).split())[:60]}"
    except RecursionError:
        return None, f"JSON {_TOO_DEEP}"


def check_schema(schema: Any, what: str = "schema") -> dict:
    """``schema`` as a JSON Schema object (a ``response_format`` dict is unwrapped); InputError if
    it is not a valid schema — a configuration mistake, raised before anything is scored."""
    schema = _unwrap(schema)
    if not isinstance(schema, Mapping):
        raise InputError(f"{what} must be a JSON Schema object (a dict), not {type(schema).__name__}")
    try:
        _validator(json.dumps(schema, sort_keys=True))
    except _schema_errors() as exc:
        raise InputError(f"{what} is not a valid JSON Schema: {_line(exc)}") from None
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} must hold JSON values: {_line(exc)}") from None
    return dict(schema)


def schema_problem(value: Any, schema: Mapping) -> str:
    """Why ``value`` does not match ``schema`` (the most relevant error, with its path), or ""."""
    try:
        validator = _validator(json.dumps(schema, sort_keys=True))
    except _schema_errors() as exc:  # a schema the endpoint's row carried: reported, not raised
        return f"the schema itself is invalid: {_line(exc)}"
    from jsonschema.exceptions import best_match

    try:
        error = best_match(validator.iter_errors(value))
    except RecursionError:
        return f"the value is {_TOO_DEEP}"
    if error is None:
        return ""
    where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"{where}: {_line(error.message)}"


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
        body = json.loads(params) if isinstance(params, str) else None
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@lru_cache(maxsize=64)
def _validator(schema_json: str) -> Any:
    try:
        from jsonschema.validators import validator_for
    except ImportError as exc:
        raise InputError(f"checking JSON Schemas needs jsonschema: pip install jsonschema ({exc})") from None
    schema = json.loads(schema_json)
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _schema_errors() -> tuple[type[Exception], ...]:
    try:
        from jsonschema.exceptions import SchemaError
    except ImportError:  # _validator says what to install
        return ()
    return (SchemaError,)


def _line(exc: Any, limit: int = 160) -> str:
    text = " ".join(str(exc).split("\n")[0].split())
    return text if len(text) <= limit else text[:limit] + "…"
