"""What a published copy of a Great Expectations Validation Result may keep.

GX results carry row values: each expectation's ``partial_unexpected_list`` (up to 20 failing values),
``partial_unexpected_counts`` and, at the COMPLETE format, ``unexpected_list`` and the failing rows'
index. The operator's copy (``<home>/quality/validations``) keeps them, since they are what a data
engineer fixes a feed with. The public copy keeps counts and percentages only, except for columns whose
values cannot be personal: numbers, booleans and timestamps. Every text column of an event table (each
has an ``x-sensorlog-class`` in its JSON Schema: ``code``, ``label`` or ``free_text``, see
``pipelines.ingest.privacy``) is stripped whatever its class, because a value failing its expectation is
by definition not the value its class promises (a malformed id may be an e-mail address). A column the
table does not declare, and an expectation over several columns, are stripped too.

The row index lists are dropped for every column (row numbers of a landed file say nothing to a resident
and grow with the file), and so is any exception's traceback and the batch's request details.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

import pyarrow as pa

from pipelines.schemas import event_table

VALUE_MEMBERS = (
    "partial_unexpected_list",
    "partial_unexpected_counts",
    "partial_unexpected_index_list",
    "unexpected_list",
    "unexpected_rows",
    "details",
)
INDEX_MEMBERS = ("unexpected_index_list", "unexpected_index_query", "unexpected_index_column_names")
STRIPPED = "(removed from the public copy: values of this column may be personal)"


@cache
def value_columns(table: str) -> frozenset[str]:
    """The columns of ``table`` whose failing values a public copy may show (not text)."""
    schema = event_table(table).staged_schema
    keep = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_timestamp, pa.types.is_date)
    return frozenset(f.name for f in schema if any(is_(f.type) for is_ in keep))


def _columns(kwargs: dict[str, Any]) -> list[str]:
    names = [kwargs.get(k) for k in ("column", "column_A", "column_B")]
    names.extend(kwargs.get("column_list") or [])
    return [n for n in names if n]


def public_result_dict(table: str, result: dict[str, Any]) -> dict[str, Any]:
    """``result`` (``ExpectationSuiteValidationResult.to_json_dict()``) with row values removed."""
    out = copy.deepcopy(result)
    allowed = value_columns(table)
    for item in out.get("results") or []:
        body = item.get("result") or {}
        columns = _columns((item.get("expectation_config") or {}).get("kwargs") or {})
        keep_values = len(columns) == 1 and columns[0] in allowed
        for member in INDEX_MEMBERS:
            body.pop(member, None)
        if not keep_values:
            for member in VALUE_MEMBERS:
                if member in body:
                    body[member] = []
            body.pop("details", None)
        info = item.get("exception_info")
        if isinstance(info, dict) and info.get("exception_traceback"):
            info["exception_traceback"] = None
    meta = out.get("meta") or {}
    meta.pop("batch_parameters", None)
    meta.pop("batch_spec", None)
    return out


def store_public_copy(project: Any, table: str, key: tuple[str, ...], result: Any) -> None:
    """Store the public copy of ``result`` (an ExpectationSuiteValidationResult) under the same key in
    the project's public store, where the public Data Docs site reads it."""
    from great_expectations.data_context.types.resource_identifiers import ValidationResultIdentifier

    store = project.public_store
    stripped = store.deserialize(json.dumps(public_result_dict(table, result.to_json_dict())))
    store.set(ValidationResultIdentifier.from_tuple(key), stripped)
