"""A JSON Schema (draft 2020-12) validator for exactly the keywords runtime/manifest.schema.json uses, so that the
runtime checks manifests against that one file with the standard library only. runtime/js/schema.mjs is its twin;
tests/runtime/test_runtime_manifest_schema.py proves both agree with the `jsonschema` package.

Values are parsed JSON (no NaN or infinity: the reader refuses those when it parses)."""

from __future__ import annotations

import re
from typing import Any

KEYWORDS = frozenset({
    "$schema", "$defs", "title", "$ref", "type", "enum", "minimum", "maximum", "exclusiveMinimum", "maxLength", "pattern",
    "minItems", "maxItems", "prefixItems", "items", "required", "maxProperties", "propertyNames", "properties",
    "additionalProperties",
})
TYPES = {
    "null": lambda v: v is None,
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool) or isinstance(v, float) and v.is_integer(),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def kind(value: Any) -> str:
    """The JSON type of a parsed value, in the schema's words."""
    return next(name for name in ("null", "boolean", "integer", "number", "string", "array", "object")
                if TYPES[name](value))


def same(a: Any, b: Any) -> bool:
    """JSON equality, as `enum` compares: 1 equals 1.0, but true is not 1."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def first_error(value: Any, schema: dict[str, Any] | bool, root: dict[str, Any] | None = None, where: str = "") -> str | None:
    """The first place where `value` breaks `schema`, in words ("files.x: ..."), or None when it fits."""
    root = root if root is not None else schema  # type: ignore[assignment]
    if isinstance(schema, bool):
        return None if schema else f"{where or 'the manifest'}: is not allowed here"
    at = where or "the manifest"
    if "$ref" in schema:
        error = first_error(value, _resolve(root, schema["$ref"]), root, where)  # type: ignore[arg-type]
        if error:
            return error
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        if not any(TYPES[t](value) for t in types):
            return f"{at}: expected {' or '.join(types)}, got {kind(value)}"
    if "enum" in schema and not any(same(value, option) for option in schema["enum"]):
        return f"{at}: {_short(value)} is not one of {', '.join(map(_short, schema['enum']))}"
    if TYPES["number"](value):
        return _number_error(value, schema, at)
    if isinstance(value, str):
        if len(value) > schema.get("maxLength", len(value)):
            return f"{at}: longer than {schema['maxLength']} characters"
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return f"{at}: {_short(value)} does not match {schema['pattern']}"
    if isinstance(value, list):
        return _array_error(value, schema, root, where, at)  # type: ignore[arg-type]
    if isinstance(value, dict):
        return _object_error(value, schema, root, where, at)  # type: ignore[arg-type]
    return None


def _number_error(value: float, schema: dict[str, Any], at: str) -> str | None:
    if "minimum" in schema and value < schema["minimum"]:
        return f"{at}: {value!r} is below the minimum {schema['minimum']}"
    if "maximum" in schema and value > schema["maximum"]:
        return f"{at}: {value!r} is above the maximum {schema['maximum']}"
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        return f"{at}: {value!r} must be above {schema['exclusiveMinimum']}"
    return None


def _array_error(value: list, schema: dict[str, Any], root: dict[str, Any], where: str, at: str) -> str | None:
    if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
        return f"{at}: has {len(value)} items, expected {schema.get('minItems', 0)} to {schema.get('maxItems', 'any')}"
    prefix = schema.get("prefixItems", [])
    for i, item in enumerate(value):
        item_schema = prefix[i] if i < len(prefix) else schema.get("items", True)
        error = first_error(item, item_schema, root, f"{where}[{i}]")
        if error:
            return error
    return None


def _object_error(value: dict, schema: dict[str, Any], root: dict[str, Any], where: str, at: str) -> str | None:
    missing = [key for key in schema.get("required", ()) if key not in value]
    if missing:
        return f"{at}: required key {missing[0]!r} is missing"
    if len(value) > schema.get("maxProperties", len(value)):
        return f"{at}: has {len(value)} keys, at most {schema['maxProperties']} allowed"
    properties = schema.get("properties", {})
    for key, item in value.items():
        name = f"{where}.{key}" if where else key
        if "propertyNames" in schema:
            error = first_error(key, schema["propertyNames"], root, f"{at}: key {key!r}")
            if error:
                return error
        error = first_error(item, properties[key] if key in properties else schema.get("additionalProperties", True),
                            root, name)
        if error:
            return error
    return None


def _resolve(root: dict[str, Any], ref: str) -> dict[str, Any]:
    """The subschema of a local reference such as "#/$defs/fileName"."""
    node: Any = root
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def unknown_keywords(schema: Any) -> set[str]:
    """Keywords in `schema` (and its subschemas) that this validator does not implement; tests keep it empty."""
    found: set[str] = set()
    if isinstance(schema, dict):
        found |= {k for k in schema if k not in KEYWORDS}
        for key in ("properties", "$defs"):
            for sub in schema.get(key, {}).values():
                found |= unknown_keywords(sub)
        for key in ("items", "additionalProperties", "propertyNames"):
            found |= unknown_keywords(schema.get(key))
        for sub in schema.get("prefixItems", []):
            found |= unknown_keywords(sub)
    return found
