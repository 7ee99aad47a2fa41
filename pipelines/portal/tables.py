"""The tables the portal publishes, read from the published Parquet with their explicit schemas.

Event tables are read across all their Hive partitions with DuckDB, in log order (``leaf_index``);
derived tables (the audit's retention ledger and findings) are read as the audit wrote them. A derived
table that does not exist yet is reported as missing, never published as empty: "no findings" and
"the audit has not run" must not look the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines import layout, storage, summary
from pipelines.config import Settings
from pipelines.portal.tableschema import arrow_table_schema, event_table_schema, is_nested
from pipelines.schemas import event_table

# Which tables there are, their titles and descriptions: the catalog's (re-exported for the portal).
from pipelines.tables import DERIVED_TABLES, EVENT_TABLES
from pipelines.tables import DESCRIPTIONS as DESCRIPTIONS
from pipelines.tables import TITLES as TITLES

DERIVED_KEYS = {"findings": ["id"]}
# Text columns that hold JSON, by table: published with the Table Schema type of what they hold.
JSON_TEXT_COLUMNS = {"findings": {"numbers": "object"}}
DERIVED_TIME_COLUMNS = ("day", "date", "as_of", "period_start", "window_start")


@dataclass(frozen=True)
class PublishedTable:
    name: str
    data: pa.Table  # nested columns already turned into JSON text
    table_schema: dict[str, Any]  # explicit Frictionless Table Schema
    time_column: str | None

    @property
    def title(self) -> str:
        return TITLES.get(self.name, self.name)

    @property
    def description(self) -> str:
        return DESCRIPTIONS.get(self.name, self.name)

    def time_range(self) -> tuple[Any, Any] | None:
        """(min, max) of the time column, or None when there is none or no rows."""
        if not self.time_column or self.data.num_rows == 0:
            return None
        bounds = pc.min_max(self.data[self.time_column]).as_py()
        return None if bounds["min"] is None else (bounds["min"], bounds["max"])


def _json_text(column: pa.ChunkedArray) -> pa.Array:
    # Sorted keys and no spaces: one spelling per value, so re-publishing gives identical bytes.
    values = [None if v is None else json.dumps(v, sort_keys=True, separators=(",", ":"), default=str)
              for v in column.to_pylist()]
    return pa.array(values, pa.string())


def flatten_nested(table: pa.Table) -> pa.Table:
    """Nested columns → JSON text; dictionary columns → their values; everything else unchanged."""
    for i, field in enumerate(table.schema):
        if is_nested(field.type):
            table = table.set_column(i, pa.field(field.name, pa.string(), field.nullable), _json_text(table[i]))
        elif pa.types.is_dictionary(field.type):
            table = table.set_column(i, field.with_type(field.type.value_type), table[i].cast(field.type.value_type))
        elif pa.types.is_duration(field.type):
            # Table Schema "duration" is ISO 8601 text; seconds as a number is what auditors compute with.
            seconds = pc.divide(table[i].cast(pa.int64()), _per_second(field.type))
            table = table.set_column(i, pa.field(field.name, pa.float64(), field.nullable), seconds)
    return table


def _per_second(data_type: pa.DataType) -> float:
    return {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[data_type.unit]


def _derived_schema(schema: pa.Schema) -> pa.Schema:
    # Durations are published as seconds (see flatten_nested); say so in the schema.
    fields = []
    for field in schema:
        if pa.types.is_duration(field.type):
            meta = dict(field.metadata or {})
            text = meta.get(b"description", b"").decode("utf-8")
            meta[b"description"] = f"{text} (seconds)".strip().encode("utf-8")
            field = pa.field(field.name, pa.float64(), field.nullable, meta)
        fields.append(field)
    return pa.schema(fields)


def read_event_table(settings: Settings, name: str) -> PublishedTable:
    table = event_table(name)
    schema = table.published_schema
    con = summary.connect(settings)
    columns = ", ".join(f'"{f.name}"' for f in schema)
    data = con.sql(f"SELECT {columns} FROM {name} ORDER BY leaf_index").to_arrow_table()
    return PublishedTable(name, data.cast(schema), event_table_schema(name), table.partition_time)


def _time_column(schema: pa.Schema) -> str | None:
    for name in DERIVED_TIME_COLUMNS:
        if name in schema.names and (pa.types.is_date(schema.field(name).type) or
                                     pa.types.is_timestamp(schema.field(name).type)):
            return name
    return None


def read_derived_table(settings: Settings, name: str) -> PublishedTable | None:
    files = storage.list_files(layout.derived_dir(settings, name), (".parquet",))
    if not files:
        return None
    parts = []
    for uri in files:
        with storage.open_random_access(uri) as handle:
            parts.append(pq.read_table(handle))
    data = pa.concat_tables(parts, promote_options="default") if len(parts) > 1 else parts[0]
    schema = _derived_schema(data.schema)
    table_schema = arrow_table_schema(schema, DERIVED_KEYS.get(name))
    for field in table_schema["fields"]:
        field["type"] = JSON_TEXT_COLUMNS.get(name, {}).get(field["name"], field["type"])
    return PublishedTable(name, flatten_nested(data), table_schema, _time_column(data.schema))


def read_tables(settings: Settings) -> tuple[list[PublishedTable], list[str]]:
    """Every publishable table, and the names of derived tables that do not exist yet."""
    tables = [read_event_table(settings, name) for name in EVENT_TABLES]
    missing = []
    for name in DERIVED_TABLES:
        derived = read_derived_table(settings, name)
        if derived is None:
            missing.append(name)
        else:
            tables.append(derived)
    return tables, missing
