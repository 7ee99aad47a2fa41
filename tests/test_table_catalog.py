"""The table catalog (``pipelines/tables.py``) is the one place a table is defined, and the files it names
agree with it and with each other:

(a) every constraint of an event table's JSON Schema (payload, and the envelope attributes that become
    columns) is enforced by an expectation of its GX suite for that column, with the same bounds, or by a
    named rule elsewhere in ingest that this test states and checks; and every single-column rule of the
    suite is one the schema states (or is listed here as a suite-only rule, with why);
(b) every catalog table has what its kind needs (schema file, suite file, Asset, portal words), and no
    schema or suite file exists without a catalog entry;
(c) no module outside the catalog spells a list of table names, so adding a table is one entry.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from pipelines import layout, schemas
from pipelines.assets import asset_uri
from pipelines.config import PROJECT_DIR, Settings
from pipelines.ingest import privacy, validate
from pipelines.portal import tables as portal_tables
from pipelines.tables import (
    ASSET_TABLES,
    CATALOG,
    DERIVED_TABLES,
    EVENT_TABLES,
    LOGGED_TABLES,
    TABLES,
    TableSpec,
)

pytestmark = pytest.mark.unit

EVENTS = [spec for spec in CATALOG if spec.is_event]

# -- (a) JSON Schema constraints ↔ GX expectations -----------------------------------------------

NOT_NULL = "expect_column_values_to_not_be_null"
IN_SET = "expect_column_values_to_be_in_set"
BETWEEN = "expect_column_values_to_be_between"
LENGTHS = "expect_column_value_lengths_to_be_between"
REGEX = "expect_column_values_to_match_regex"
PAIR = "expect_column_pair_values_a_to_be_greater_than_b"
# The single-column expectations a JSON Schema keyword maps to, with the kwargs each may carry. Any other
# kwarg (``mostly``, ``row_condition``…) would enforce a constraint only partly, so it fails the test.
SCHEMA_KWARGS: dict[str, tuple[str, ...]] = {
    NOT_NULL: (),
    IN_SET: ("value_set",),
    BETWEEN: ("min_value", "max_value", "strict_min", "strict_max"),
    LENGTHS: ("min_value", "max_value"),
    REGEX: ("regex",),
}

# Keywords that describe a field and constrain nothing.
ANNOTATIONS = {"description", "title", "examples"}
# Keywords enforced outside GX, each by a rule ``_elsewhere`` checks:
# - type and format: ingest coerces each value to the Arrow type derived from this very schema
#   (``schemas._kind``, ``parsing._coerce``/``parse_timestamp``) and rejects what does not coerce, so GX
#   only ever sees typed columns and a GX type expectation could never fail;
# - x-sensorlog-class and x-sensorlog-privacy: ``pipelines/ingest/privacy.py`` reads them from this same
#   schema at validation time (tests/test_privacy.py covers what they reject).
ELSEWHERE = {"type", "format", "x-sensorlog-class", "x-sensorlog-privacy"}
# Top-level keywords of a payload schema: annotations, the partition column (checked in (b)), the field
# list, and ``additionalProperties: false``, which parsing enforces ("data: unknown field(s)").
TOP_LEVEL = {"$schema", "$id", "title", "description", "type", "x-partition-time", "required", "properties",
             "additionalProperties"}
# Envelope attributes that are no column of any table, so no suite can check them: parsing checks
# specversion ("envelope.specversion") and data ("envelope.data"); type picks the table (its enum is the
# catalog's, checked in (b)); subject and datacontenttype are not kept.
ENVELOPE_NOT_COLUMNS = {"specversion", "type", "data", "subject", "datacontenttype"}
# Suite rules the JSON Schema cannot or does not state, each with why it may be stricter than the schema.
SUITE_ONLY = {
    # JSON Schema cannot compare two fields (window_end after window_start, deleted_at after it).
    (PAIR, None): "an order between two columns",
    # A deployment_id must name a registered deployment (validate.py checks the registry); registry ids
    # match schemas/deployment.schema.json's id pattern, a subset of this one, so the regex rejects no event
    # the registry check would accept; it only gives a malformed id its own reason.
    (REGEX, "deployment_id"): "a cheap shape check ahead of the registry's",
}
JSON_TO_ARROW = {"integer": pa.int64(), "string": pa.string(), "date-time": schemas.TIMESTAMP}


def _types(spec: dict) -> list[str]:
    types = spec.get("type", [])
    return [types] if isinstance(types, str) else list(types)


def _expected(field: str, spec: dict, required: bool) -> Iterator[tuple[str, str, dict]]:
    """(constraint, expectation type, kwargs) that enforce each GX-checkable keyword of one field."""
    nullable = "null" in _types(spec)
    if required and not nullable:
        yield "required", NOT_NULL, {}
    if "enum" in spec:
        yield f"enum {spec['enum']}", IN_SET, {"value_set": sorted(spec["enum"])}
    if "const" in spec:
        yield f"const {spec['const']!r}", IN_SET, {"value_set": [spec["const"]]}
    if {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"} & spec.keys():
        bounds = {
            "min_value": spec.get("minimum", spec.get("exclusiveMinimum")),
            "max_value": spec.get("maximum", spec.get("exclusiveMaximum")),
            "strict_min": "exclusiveMinimum" in spec,
            "strict_max": "exclusiveMaximum" in spec,
        }
        named = ", ".join(f"{k} {spec[k]}" for k in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")
                          if k in spec)
        yield named, BETWEEN, bounds
    if {"minLength", "maxLength"} & spec.keys():
        named = ", ".join(f"{k} {spec[k]}" for k in ("minLength", "maxLength") if k in spec)
        yield named, LENGTHS, {"min_value": spec.get("minLength", 0), "max_value": spec.get("maxLength")}
    if "pattern" in spec:
        yield f"pattern {spec['pattern']!r}", REGEX, {"regex": spec["pattern"]}


def _normalised(kind: str, kwargs: dict) -> dict:
    """The kwargs that matter, with GX's defaults spelled out (a length of at least 0 is no bound)."""
    got = {k: kwargs.get(k) for k in SCHEMA_KWARGS[kind]}
    if kind == BETWEEN:
        got["strict_min"], got["strict_max"] = bool(got["strict_min"]), bool(got["strict_max"])
    if kind == LENGTHS and got["min_value"] is None:
        got["min_value"] = 0
    if kind == IN_SET:
        got["value_set"] = sorted(got["value_set"] or [])
    return got


def _elsewhere(table: str, field: str, spec: dict, arrow_type: pa.DataType, required: bool) -> list[str]:
    """What is wrong with the keywords ingest enforces outside GX (see ``ELSEWHERE``)."""
    problems = []
    types = [t for t in _types(spec) if t != "null"]
    if "enum" in spec or "const" in spec:
        types = types or ["string"]  # an enum is a string column (schemas._kind); GX checks the values
    want = "date-time" if spec.get("format") == "date-time" else (types[0] if len(types) == 1 else None)
    if "format" in spec and spec["format"] != "date-time":
        problems.append(f"{table}.{field}: format {spec['format']!r} is checked by nothing (no GX counterpart)")
    if want not in JSON_TO_ARROW or arrow_type != JSON_TO_ARROW[want]:
        problems.append(f"{table}.{field}: type {spec.get('type')!r} is not what ingest parses it as ({arrow_type})")
    if not required and "null" not in _types(spec):
        # After parsing, an absent value and a null look the same, so a field whose type excludes null is
        # only enforced by the required check; without it a null would pass.
        problems.append(f"{table}.{field}: type excludes null but the field is not required, so a null passes")
    if required and "null" in _types(spec):
        # The same conflation the other way: a required field that may be null cannot be told from an absent
        # one, so its presence is enforced by nothing.
        problems.append(f"{table}.{field}: required but may be null, and nothing can tell it from an absent field")
    if "x-sensorlog-class" in spec and spec["x-sensorlog-class"] not in privacy.CLASSES:
        problems.append(f"{table}.{field}: x-sensorlog-class {spec['x-sensorlog-class']!r} is unknown to privacy.py")
    if not set(spec.get("x-sensorlog-privacy", [])) <= set(privacy.KINDS):
        problems.append(f"{table}.{field}: x-sensorlog-privacy {spec['x-sensorlog-privacy']} is unknown to privacy.py")
    return problems


def _columns(payload: dict) -> Iterator[tuple[str, dict, bool]]:
    """(column, JSON Schema of its values, required) for every column an event with this ``payload``
    schema fills: the envelope attributes that become columns, then the payload fields."""
    envelope = schemas.load_json_schema("cloudevent")
    attribute = {**privacy.ENVELOPE_COLUMNS, "event_time": "time"}
    assert [f.name for f in schemas.ENVELOPE_FIELDS] == list(attribute)
    for column, name in attribute.items():
        yield column, envelope["properties"][name], name in envelope["required"]
    for field, spec in payload["properties"].items():
        yield field, spec, field in payload.get("required", [])


def drift(table: str, schema: dict, suite: dict) -> list[str]:
    """Every disagreement between ``table``'s JSON Schema and its GX suite, one line each."""
    problems = [f"{table}: top-level keyword {k!r} is not known to this test" for k in schema.keys() - TOP_LEVEL]
    if schema.get("additionalProperties") is not False:
        problems.append(f"{table}: additionalProperties must be false (parsing rejects unknown fields)")
    staged = schemas.event_table(table).staged_schema
    actual: dict[tuple[str, str | None], list[dict]] = {}
    for expectation in suite["expectations"]:
        kind, kwargs = expectation["type"], expectation["kwargs"]
        column = kwargs.get("column")
        actual.setdefault((kind, column), []).append(kwargs)
        for name in [kwargs[k] for k in ("column", "column_A", "column_B") if k in kwargs]:
            if name not in staged.names:
                problems.append(f"{table}: the suite's {kind} names column {name!r}, which the schema does not have")
        extra = sorted(kwargs.keys() - {"column", *SCHEMA_KWARGS.get(kind, ())})
        if kind in SCHEMA_KWARGS and extra:
            problems.append(f"{table}.{column}: {kind} has {extra}, so it does not enforce the schema fully")
    expected: set[tuple[str, str | None]] = set()
    for column, spec, required in _columns(schema):
        unknown = spec.keys() - ANNOTATIONS - ELSEWHERE - {"enum", "const", "minimum", "maximum",
                                                            "exclusiveMinimum", "exclusiveMaximum",
                                                            "minLength", "maxLength", "pattern"}
        problems += [f"{table}.{column}: constraint {k!r} is not known to this test (which rule enforces it?)"
                     for k in sorted(unknown)]
        problems += _elsewhere(table, column, spec, staged.field(column).type, required)
        for constraint, kind, kwargs in _expected(column, spec, required):
            expected.add((kind, column))
            found = actual.get((kind, column), [])
            if not found:
                problems.append(f"{table}.{column}: {constraint} has no GX expectation ({kind}) in its suite")
            elif len(found) > 1:
                problems.append(f"{table}.{column}: {len(found)} {kind} expectations; one states the constraint")
            elif _normalised(kind, found[0]) != kwargs:
                problems.append(f"{table}.{column}: {constraint} is {_normalised(kind, found[0])} in the suite, "
                                f"{kwargs} in the schema")
    for kind, column in sorted(actual.keys() - expected, key=str):
        if (kind, column) not in SUITE_ONLY and (kind, None) not in SUITE_ONLY:
            problems.append(f"{table}.{column}: the suite's {kind} states a rule the schema does not")
    return problems


@pytest.mark.parametrize("table", EVENT_TABLES)
def test_every_schema_constraint_is_enforced_by_the_suite_and_the_suite_adds_none(table):
    assert drift(table, schemas.load_json_schema(table), validate.load_suite_json(table)) == []


def test_the_drift_check_names_the_table_field_and_constraint():
    schema = schemas.load_json_schema("collection")
    suite = validate.load_suite_json("collection")
    weaker = {**suite, "expectations": [e for e in suite["expectations"]
                                        if (e["type"], e["kwargs"].get("column")) != (BETWEEN, "records")]}
    assert drift("collection", schema, weaker) == [
        "collection.records: minimum 0 has no GX expectation (expect_column_values_to_be_between) in its suite"
    ]
    loose = json.loads(json.dumps(suite).replace('"max_value": 80', '"max_value": 81'))
    assert "collection.deployment_id: minLength 1, maxLength 80 is {'min_value': 1, 'max_value': 81} in the " \
           "suite, {'min_value': 1, 'max_value': 80} in the schema" in drift("collection", schema, loose)
    extra = {**suite, "expectations": [*suite["expectations"],
                                       {"type": NOT_NULL, "kwargs": {"column": "bytes"}},
                                       {"type": NOT_NULL, "kwargs": {"column": "colour"}}]}
    assert drift("collection", schema, extra) == [
        "collection: the suite's expect_column_values_to_not_be_null names column 'colour', which the schema "
        "does not have",
        "collection.bytes: the suite's expect_column_values_to_not_be_null states a rule the schema does not",
        "collection.colour: the suite's expect_column_values_to_not_be_null states a rule the schema does not",
    ]
    patterned = json.loads(json.dumps(schema))
    patterned["properties"]["data_class"]["pattern"] = "^[a-z_]+$"
    patterned["properties"]["data_class"]["format"] = "uuid"
    assert drift("collection", patterned, suite) == [
        "collection.data_class: format 'uuid' is checked by nothing (no GX counterpart)",
        "collection.data_class: pattern '^[a-z_]+$' has no GX expectation "
        "(expect_column_values_to_match_regex) in its suite",
    ]


# -- (b) every table has its files and its Asset; every file has its table ---------------------------


def test_every_event_table_has_its_schema_and_suite_and_says_the_same_partition_column():
    for spec in EVENTS:
        schema_file, suite_file = schemas.schema_path(spec.name), validate.suite_path(spec.name)
        assert schema_file.is_file() and suite_file.is_file(), spec.name
        schema, suite = schemas.load_json_schema(spec.name), validate.load_suite_json(spec.name)
        assert schema["x-partition-time"] == spec.partition_time
        assert schemas.event_table(spec.name).staged_schema.field(spec.partition_time).type == schemas.TIMESTAMP
        assert suite["name"] == f"sensorlog.{spec.name}"
        assert suite["meta"]["table"] == spec.name
        assert suite["meta"]["schema"] == schema_file.relative_to(PROJECT_DIR).as_posix()


def test_no_schema_or_suite_file_exists_without_a_catalog_entry():
    events = schemas.SCHEMA_DIR / "events"
    payloads = {p.name for p in events.glob("*.schema.json")} - {schemas.schema_path("cloudevent").name}
    assert payloads == {spec.schema_file for spec in EVENTS}
    assert {p.name for p in validate.EXPECTATIONS_DIR.glob("*.json")} == {spec.suite_file for spec in EVENTS}


def test_the_envelope_schema_lists_exactly_the_catalogs_event_types():
    envelope = schemas.load_json_schema("cloudevent")
    assert envelope["properties"]["type"]["enum"] == [spec.cloudevent_type for spec in EVENTS]
    assert envelope["x-sensorlog-types"] == {spec.cloudevent_type: spec.schema_file for spec in EVENTS}
    assert set(envelope["properties"]) == set(ENVELOPE_NOT_COLUMNS) | {"id", "source", "time"}
    for spec in EVENTS:
        assert schemas.table_for_type(spec.cloudevent_type) == schemas.event_table(spec.name)
    for spec in CATALOG:
        if not spec.is_event:  # logged or published, but never something a feed may send
            assert schemas.table_for_type(spec.cloudevent_type) is None


def _needs(spec: TableSpec) -> tuple[bool, bool, bool]:
    """(a partition column and files, an Asset, portal words here) by kind."""
    return {
        "event": (True, True, True),
        "derived": (False, True, True),
        "registry": (False, False, True),
        "log": (False, True, False),
        "declaration": (False, False, False),  # its words live with its page, pipelines/portal/declared.py
    }[spec.kind]


@pytest.mark.parametrize("spec", CATALOG, ids=lambda s: s.name)
def test_every_table_has_what_its_kind_needs(spec):
    files, asset, words = _needs(spec)
    assert (spec.partition_time is not None, spec.schema_file is not None, spec.suite_file is not None) == (files,) * 3
    assert spec.asset is asset
    assert (bool(spec.title), bool(spec.description)) == (words, words)


def test_the_airflow_assets_are_the_catalogs_with_their_published_names():
    from sensorlog_airflow.assets import PUBLISHED, PUBLISHED_ASSETS

    assert list(PUBLISHED) == list(ASSET_TABLES) == list(layout.PUBLISHED_TABLES)
    for name, asset in PUBLISHED.items():
        # Named by the catalog; the URI is the table's real location, as OpenLineage names its dataset.
        assert asset.name == TABLES[name].asset_name == f"sensorlog.{name}"
        assert asset.uri == asset_uri(Settings.from_env(), name)
        assert asset.uri.startswith(("file:///", "s3://"))
    assert [a.name for a in PUBLISHED_ASSETS] == [f"sensorlog.{t}" for t in EVENT_TABLES]
    # The names the DAGs and operators know (renaming one orphans an Asset's history in Airflow).
    assert set(ASSET_TABLES) == {
        "collection", "deletion", "access", "lifecycle", "vendor_snapshot", "retention_ledger", "findings", "log"
    }


def test_the_derived_lists_keep_their_order_and_members():
    assert EVENT_TABLES == ("collection", "deletion", "access", "lifecycle", "vendor_snapshot")
    assert LOGGED_TABLES == (*EVENT_TABLES, "declaration")
    assert DERIVED_TABLES == ("retention_ledger", "findings")
    assert set(portal_tables.TITLES) == set(portal_tables.DESCRIPTIONS) == {
        *EVENT_TABLES, *DERIVED_TABLES, "registry"}


# -- (c) no other module lists table names ---------------------------------------------------------

CATALOG_FILE = PROJECT_DIR / "pipelines" / "tables.py"
SCANNED = ("pipelines", "sensorlog_airflow", "dags")


def table_lists(source: str, names: set[str], events: set[str]) -> list[tuple[int, list[str]]]:
    """(line, names) of each tuple, list or set literal, or dict's keys, that spells table names: two or
    more event tables among anything, or two or more tables and nothing else."""
    found = []
    for node in ast.walk(ast.parse(source)):
        items: list[Any]
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            items = node.elts
        elif isinstance(node, ast.Dict):
            items = node.keys
        else:
            continue
        strings = [i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)]
        tables = [s for s in strings if s in names]
        only_tables = len(tables) == len(items) >= 2
        if only_tables or len([s for s in tables if s in events]) >= 2:
            found.append((node.lineno, tables))
    return found


def test_the_scan_finds_the_lists_the_catalog_replaced():
    names, events = set(TABLES), set(EVENT_TABLES)
    old = (
        'PUBLISHED_TABLES = ("collection", "deletion", "access", "lifecycle", "retention_ledger", "findings", "log")\n'
        'DERIVED_TABLES = ("retention_ledger", "findings")\n'
        'order = {"collection": 0, "deletion": 1, "access": 2, "lifecycle": 3}\n'
        'x = [t for t in ("collection", "deletion", "other")]\n'
    )
    assert [line for line, _ in table_lists(old, names, events)] == [1, 2, 3, 4]
    # Keys of a translation table and a paths dict that happen to include table names are not lists of tables.
    assert table_lists('T = {"findings": "Audit findings", "lifecycle": "Changes", "title": "x"}\n'
                       'P = {"retention_ledger": 1, "findings": 2, "report": 3}\n', names, events) == []


def test_no_module_outside_the_catalog_lists_table_names():
    names, events = set(TABLES), set(EVENT_TABLES)
    found = []
    for folder in SCANNED:
        for path in sorted((PROJECT_DIR / folder).rglob("*.py")):
            if path != CATALOG_FILE:
                found += [(path.relative_to(PROJECT_DIR).as_posix(), line, tables)
                          for line, tables in table_lists(path.read_text(), names, events)]
    assert found == [], "derive these from pipelines/tables.py instead"


def test_the_catalog_is_where_the_portal_and_layout_read_table_facts():
    # Identity, not equality: a copy would be a second place to edit.
    from pipelines import tables

    assert portal_tables.TITLES is tables.TITLES and portal_tables.DESCRIPTIONS is tables.DESCRIPTIONS
    assert portal_tables.DERIVED_TABLES is tables.DERIVED_TABLES and layout.PUBLISHED_TABLES is tables.ASSET_TABLES
    assert schemas.EVENT_TABLES is tables.EVENT_TABLES and schemas.LOGGED_TABLES is tables.LOGGED_TABLES
    assert Path(validate.suite_path("access")).name == tables.TABLES["access"].suite_file
