"""A small JSON-schema validator: the subset structured outputs use, with no dependency."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

_JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
}


def validate_json(value: Any, schema: Mapping[str, Any], *, path: str = "$") -> list[str]:
    """Problems of `value` against `schema` (empty list: valid).

    Covers type, properties, required, additionalProperties, items, enum, const and the
    length/size/range bounds; unknown keywords are ignored, as JSON Schema prescribes.
    """
    problems: list[str] = []
    expected = schema.get("type")
    if expected is not None:
        names = [expected] if isinstance(expected, str) else list(expected)
        if not any(_JSON_TYPES.get(n, lambda v: False)(value) for n in names):
            return [f"{path}: expected {'/'.join(names)}, got {_json_type(value)}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path}: {value!r} not in enum {schema['enum']!r}")
    if "const" in schema and value != schema["const"]:
        problems.append(f"{path}: must equal {schema['const']!r}")
    if isinstance(value, dict):
        props: Mapping[str, Any] = schema.get("properties", {})
        problems += [
            f"{path}: missing required {k!r}" for k in schema.get("required", ()) if k not in value
        ]
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                problems += validate_json(item, props[key], path=f"{path}.{key}")
            elif extra is False:
                problems.append(f"{path}: unexpected property {key!r}")
            elif isinstance(extra, Mapping):
                problems += validate_json(item, extra, path=f"{path}.{key}")
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, Mapping):
            for i, item in enumerate(value):
                problems += validate_json(item, items, path=f"{path}[{i}]")
        problems += _bounds(
            len(value), schema, low="minItems", high="maxItems", path=path, unit="items"
        )
    elif isinstance(value, str):
        problems += _bounds(
            len(value), schema, low="minLength", high="maxLength", path=path, unit="characters"
        )
    elif _JSON_TYPES["number"](value):
        problems += _bounds(value, schema, low="minimum", high="maximum", path=path, unit="")
    return problems


def _bounds(
    n: float, schema: Mapping[str, Any], *, low: str, high: str, path: str, unit: str
) -> list[str]:
    out = []
    if low in schema and n < schema[low]:
        out.append(f"{path}: {n} {unit} < {low} {schema[low]}".replace("  ", " "))
    if high in schema and n > schema[high]:
        out.append(f"{path}: {n} {unit} > {high} {schema[high]}".replace("  ", " "))
    return out


def _json_type(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _JSON_TYPES[name](value):
            return name
    return type(value).__name__
