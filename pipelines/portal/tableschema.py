"""Explicit Frictionless Table Schemas for every table the portal publishes.

Event tables get theirs from the JSON Schemas in ``schemas/events/`` (the source of truth the Arrow
schemas come from too), plus the envelope, pipeline and ledger columns. Derived tables (retention
ledger, findings) get theirs from the Arrow schema their Parquet file declares. Either way the schema
is written into datapackage.json in full: nothing is left for a reader to infer from the values.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from pipelines.portal import csvsafe
from pipelines.schemas import event_table

EVENT_COLUMN_DOCS = {
    "source": "CloudEvents source: the vendor feed that reported the event.",
    "event_id": "CloudEvents id, unique within its source.",
    "event_time": "When the vendor says the event happened (CloudEvents time), UTC.",
    "content_hash": "SHA-256 of the event's canonical content, used to drop exact duplicates.",
    "batch_id": "SHA-256 of the landed vendor file that published this row.",
    "leaf_index": "Position of this row in the transparency log (RFC 9162 Merkle tree leaf index).",
    "leaf_hash": "RFC 9162 leaf hash of this row's canonical encoding, hex.",
}

# Nested Arrow columns are published as JSON text (CSV has no nesting, and the Parquet extract keeps
# the same shape so both distributions share one schema).
NESTED = (pa.types.is_list, pa.types.is_large_list, pa.types.is_struct, pa.types.is_map)


def _json_schema_field(name: str, spec: dict[str, Any], required: bool) -> dict[str, Any]:
    types = spec.get("type", "string")
    types = [types] if isinstance(types, str) else [t for t in types if t != "null"]
    field: dict[str, Any] = {"name": name}
    constraints: dict[str, Any] = {}
    if "enum" in spec:
        field["type"] = "string"
        constraints["enum"] = [v for v in spec["enum"] if v is not None]
    elif types == ["integer"]:
        field["type"] = "integer"
    elif spec.get("format") == "date-time":
        field["type"] = "datetime"
    else:
        field["type"] = "string"
    if "description" in spec:
        field["description"] = spec["description"]
    if required:
        constraints["required"] = True
    for key in ("minimum", "maximum", "minLength", "maxLength"):
        if key in spec:
            constraints[key] = spec[key]
    if constraints:
        field["constraints"] = constraints
    return field


def _arrow_type(data_type: pa.DataType) -> str:
    if pa.types.is_boolean(data_type):
        return "boolean"
    if pa.types.is_integer(data_type):
        return "integer"
    if pa.types.is_floating(data_type) or pa.types.is_decimal(data_type):
        return "number"
    if pa.types.is_timestamp(data_type):
        return "datetime"
    if pa.types.is_date(data_type):
        return "date"
    if pa.types.is_list(data_type) or pa.types.is_large_list(data_type):
        return "array"
    if pa.types.is_struct(data_type) or pa.types.is_map(data_type):
        return "object"
    return "string"


def _field_description(field: pa.Field) -> str | None:
    meta = field.metadata or {}
    text = meta.get(b"description")
    return text.decode("utf-8") if text else None


def arrow_field(field: pa.Field, description: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": field.name, "type": _arrow_type(field.type)}
    text = description or _field_description(field)
    if text:
        out["description"] = text
    if pa.types.is_timestamp(field.type) and field.type.tz is None:
        out["description"] = (out.get("description", "") + " (UTC)").strip()
    if not field.nullable:
        out["constraints"] = {"required": True}
    return out


def event_table_schema(name: str) -> dict[str, Any]:
    """The Table Schema of a published event table, column for column as in its Parquet files."""
    table = event_table(name)
    props = table.json_schema["properties"]
    fields = []
    for field in table.published_schema:
        if field.name in props:
            fields.append(_json_schema_field(field.name, props[field.name], field.name in table.required))
        else:
            fields.append(arrow_field(field, EVENT_COLUMN_DOCS.get(field.name)))
    return {"fields": fields, "primaryKey": ["source", "event_id"], "missingValues": [""]}


def arrow_table_schema(schema: pa.Schema, primary_key: list[str] | None = None) -> dict[str, Any]:
    """A Table Schema for a derived table, from the Arrow schema its Parquet file declares."""
    out: dict[str, Any] = {"fields": [arrow_field(f) for f in schema], "missingValues": [""]}
    if primary_key and all(k in schema.names for k in primary_key):
        out["primaryKey"] = primary_key
    return out


def parquet_variant(table_schema: dict[str, Any]) -> dict[str, Any]:
    """The same schema for a Parquet resource.

    frictionless reads Parquet through pandas, where a null integer becomes NaN and a null timestamp
    NaT; it then compares ``str(cell)`` with the missing values. Listing those spellings keeps nulls
    nulls, and changes nothing else (no published text column holds the word "nan").
    """
    return {**table_schema, "missingValues": ["", "nan", "NaT", "<NA>"]}


def csv_variant(table_schema: dict[str, Any]) -> dict[str, Any]:
    """The same schema for a CSV resource: each text field's description says how formula-like
    values are written (``csvsafe.NOTE``), and a maximum length allows for the quote in front."""
    fields = []
    for field in table_schema["fields"]:
        if field.get("type") == "string":
            field = {**field, "description": f"{field.get('description', '')} {csvsafe.NOTE}".strip()}
            constraints = field.get("constraints", {})
            if "maxLength" in constraints:
                field["constraints"] = {**constraints, "maxLength": constraints["maxLength"] + 1}
        fields.append(field)
    return {**table_schema, "fields": fields}


def is_nested(data_type: pa.DataType) -> bool:
    return any(check(data_type) for check in NESTED)
