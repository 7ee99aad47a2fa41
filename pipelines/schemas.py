"""Canonical Arrow schemas of the catalog's event tables (``pipelines.tables``), derived from the JSON
Schemas in ``schemas/events/``.

The JSON Schema files are the single source of truth: a payload field's JSON type decides its
Arrow type here, so the two can never drift apart. Envelope columns (CloudEvents attributes) come
first, then the payload fields in schema order, then columns the pipeline adds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pyarrow as pa

from pipelines.config import resource_dir

# Which tables exist is the catalog's (``pipelines.tables``); its names are re-exported for their callers.
from pipelines.tables import DECLARATION_TABLE as DECLARATION_TABLE
from pipelines.tables import EVENT_TABLES, TYPE_PREFIX, table_spec
from pipelines.tables import LOGGED_TABLES as LOGGED_TABLES

SCHEMA_DIR = resource_dir("schemas")
ENVELOPE_SCHEMA = "cloudevent"  # schemas/events/cloudevent.schema.json: the CloudEvents envelope, not a table
DECLARATIONS_KIND = "declarations"  # the ``kind`` of a declaration batch's manifest
TIMESTAMP = pa.timestamp("us", tz="UTC")

ENVELOPE_FIELDS = [
    pa.field("source", pa.string(), nullable=False),
    pa.field("event_id", pa.string(), nullable=False),
    pa.field("event_time", TIMESTAMP),
]
# Added by the pipeline: a hash of the canonical content for de-duplication, the batch that
# published the row, and the row's place in the transparency log.
PIPELINE_FIELDS = [
    pa.field("content_hash", pa.string(), nullable=False),
    pa.field("batch_id", pa.string(), nullable=False),
]
LEDGER_FIELDS = [
    pa.field("leaf_index", pa.int64(), nullable=False),
    pa.field("leaf_hash", pa.string(), nullable=False),
]


@dataclass(frozen=True)
class EventTable:
    name: str
    json_schema: dict
    payload_fields: tuple[pa.Field, ...]
    required: frozenset[str]
    partition_time: str

    @property
    def cloudevent_type(self) -> str:
        return TYPE_PREFIX + self.name

    @property
    def staged_schema(self) -> pa.Schema:
        """Rows after parsing and validation, before publishing."""
        return pa.schema([*ENVELOPE_FIELDS, *self.payload_fields])

    @property
    def published_schema(self) -> pa.Schema:
        return pa.schema([*ENVELOPE_FIELDS, *self.payload_fields, *PIPELINE_FIELDS, *LEDGER_FIELDS])

    def field_kind(self, name: str) -> str:
        """``string``, ``integer`` or ``timestamp``: how ingest must coerce the value."""
        spec = self.json_schema["properties"][name]
        return _kind(spec)


def _kind(spec: dict) -> str:
    types = spec.get("type", "string")
    types = [types] if isinstance(types, str) else [t for t in types if t != "null"]
    if "enum" in spec:
        return "string"
    if types == ["integer"]:
        return "integer"
    if types == ["string"] and spec.get("format") == "date-time":
        return "timestamp"
    if types == ["string"]:
        return "string"
    raise ValueError(f"unsupported JSON Schema type for a column: {spec}")


_ARROW = {"string": pa.string(), "integer": pa.int64(), "timestamp": TIMESTAMP}


def load_json_schema(name: str) -> dict:
    """The JSON Schema of event table ``name``'s payload, or of the envelope (``cloudevent``)."""
    return json.loads(schema_path(name).read_text())


@cache
def event_table(name: str) -> EventTable:
    catalog = table_spec(name)
    schema = load_json_schema(name)
    # The schema file publishes the partition column too (x-partition-time); a disagreement with the
    # catalog would date partitions by one column while telling readers another.
    if schema["x-partition-time"] != catalog.partition_time:
        raise ValueError(f"{schema_path(name)}: x-partition-time {schema['x-partition-time']!r} is not the "
                         f"catalog's {catalog.partition_time!r} (pipelines/tables.py)")
    required = frozenset(schema.get("required", []))
    fields = tuple(
        pa.field(prop, _ARROW[_kind(spec)], nullable=prop not in required)
        for prop, spec in schema["properties"].items()
    )
    return EventTable(name, schema, fields, required, schema["x-partition-time"])


def table_for_type(cloudevent_type: str) -> EventTable | None:
    if not cloudevent_type.startswith(TYPE_PREFIX):
        return None
    name = cloudevent_type[len(TYPE_PREFIX) :]
    return event_table(name) if name in EVENT_TABLES else None


QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("batch_id", pa.string(), nullable=False),
        pa.field("source_file", pa.string(), nullable=False),
        pa.field("line", pa.int64()),
        pa.field("event_type", pa.string()),
        pa.field("source", pa.string()),
        pa.field("event_id", pa.string()),
        pa.field("deployment_id", pa.string()),
        pa.field("reasons", pa.list_(pa.string()), nullable=False),
        pa.field("raw", pa.string()),
    ]
)


def schema_path(name: str) -> Path:
    """``schemas/events/``'s file for event table ``name``'s payload, or for the envelope (``cloudevent``)."""
    if name == ENVELOPE_SCHEMA:
        return SCHEMA_DIR / "events" / f"{ENVELOPE_SCHEMA}.schema.json"
    file = table_spec(name).schema_file
    if file is None:
        raise ValueError(f"{name} is not an event table; it has no payload JSON Schema")
    return SCHEMA_DIR / "events" / file
