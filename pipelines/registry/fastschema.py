"""A compiled fast path for the deployment schema: accept a valid document in a fraction of the time
jsonschema takes (about 60% of a cold load was jsonschema walking a million grants).

It only ever *accepts*. A document it does not accept is checked again by jsonschema
(``checks._schema_problems``), which words every problem, so messages are exactly what they were. The
fast path must therefore never accept what jsonschema refuses; it may refuse more (fastjsonschema reads
``$`` in a pattern as the end of the text, so "2024-01-01\\n" is refused here and worded by jsonschema).

fastjsonschema implements draft-07, and the schema is written in 2020-12, so it is compiled from a
draft-07 translation made here from the one schema file, never a second copy:

- ``prefixItems`` -> ``items`` as a list (with ``additionalItems`` for a sibling ``items``);
- ``dependentRequired`` -> ``dependencies``;
- ``$ref`` with sibling keywords (which 2020-12 applies and draft-07 ignores) -> ``allOf`` of the
  reference and the siblings;
- every ``format`` is checked by jsonschema's own format checker, so "2024-02-30" is refused by both;
- defaults are never inserted into the document (it is logged as parsed), and no reference is fetched.

A keyword the translation does not know disables the fast path (``checks.fast_validator`` returns None) rather
than being skipped, so adding one to the schema cannot make the fast path laxer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import fastjsonschema  # type: ignore[import-untyped]  # ships no type hints
from jsonschema import Draft202012Validator

from pipelines.errors import SensorlogError

# Keywords whose meaning is the same in draft-07 and 2020-12 (or translated below), and annotations.
_SAME = frozenset({
    "additionalProperties", "anyOf", "allOf", "oneOf", "not", "enum", "const", "type", "format", "items",
    "maxItems", "minItems", "uniqueItems", "maxLength", "minLength", "pattern", "maximum", "minimum",
    "maxProperties", "minProperties", "required", "properties", "propertyNames", "$ref", "$defs",
})
_TRANSLATED = frozenset({"prefixItems", "dependentRequired"})
_ANNOTATIONS = frozenset({"$schema", "$id", "title", "description", "default"})
_SUBSCHEMA_MAPS = frozenset({"properties", "$defs"})
_SUBSCHEMA_LISTS = frozenset({"anyOf", "allOf", "oneOf", "prefixItems"})
_SUBSCHEMAS = frozenset({"not", "items", "propertyNames", "additionalProperties"})
DRAFT_07 = "http://json-schema.org/draft-07/schema#"


class UnsupportedSchema(SensorlogError, ValueError):
    """The schema uses a keyword the draft-07 translation does not know."""


def _translate(schema: Any) -> Any:
    if not isinstance(schema, Mapping):
        return schema  # a boolean schema means the same in both drafts
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith("x-") or key in _ANNOTATIONS:
            continue
        if key not in _SAME and key not in _TRANSLATED:
            raise UnsupportedSchema(key)
        if key in _SUBSCHEMA_MAPS:
            out[key] = {name: _translate(sub) for name, sub in value.items()}
        elif key in _SUBSCHEMA_LISTS:
            out[key] = [_translate(sub) for sub in value]
        elif key in _SUBSCHEMAS:
            out[key] = _translate(value)
        else:
            out[key] = value
    if "prefixItems" in out:
        prefix = out.pop("prefixItems")
        if "items" in out:
            out["additionalItems"] = out.pop("items")
        out["items"] = prefix
    if "dependentRequired" in out:
        out["dependencies"] = out.pop("dependentRequired")
    if "$ref" in out and len(out) > 1 and set(out) != {"$ref", "$defs"}:
        ref = {"$ref": out.pop("$ref")}
        defs = out.pop("$defs", None)
        out = {"allOf": [ref, out]} | ({"$defs": defs} if defs is not None else {})
    return out


def draft07(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The draft-07 translation of a 2020-12 ``schema`` (UnsupportedSchema for an unknown keyword)."""
    out = _translate(schema)
    out["$schema"] = DRAFT_07
    return out


def _formats(schema: Mapping[str, Any]) -> dict[str, Callable[[str], bool]]:
    checker = Draft202012Validator.FORMAT_CHECKER
    names: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            if isinstance(value.get("format"), str):
                names.add(value["format"])
            for sub in value.values():
                walk(sub)
        elif isinstance(value, list):
            for sub in value:
                walk(sub)

    walk(schema)

    def conforms(name: str) -> Callable[[str], bool]:
        return lambda text: checker.conforms(text, name)

    return {name: conforms(name) for name in names}


def _no_fetch(uri: str) -> Any:
    raise UnsupportedSchema(f"a reference outside the schema ({uri})")


def compile_fast(schema: Mapping[str, Any]) -> Callable[[Any], bool] | None:
    """A function that is True for a document ``schema`` accepts (and may be False for some it accepts
    too); None when the schema cannot be translated."""
    try:
        translated = draft07(schema)
    except UnsupportedSchema:
        return None
    try:
        validate = fastjsonschema.compile(
            translated,
            handlers={"http": _no_fetch, "https": _no_fetch, "file": _no_fetch},
            formats=_formats(schema),
            use_default=False,
            detailed_exceptions=False,
        )
    except (UnsupportedSchema, fastjsonschema.JsonSchemaDefinitionException):
        return None

    def accepts(doc: Any) -> bool:
        try:
            validate(doc)
        except fastjsonschema.JsonSchemaException:
            return False
        except Exception:  # noqa: BLE001 - anything odd in the fast path: let jsonschema judge
            return False
        return True

    return accepts
