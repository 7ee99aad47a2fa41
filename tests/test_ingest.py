"""Landed file → canonical Arrow tables: every wire form and every structural failure."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
from conftest import make_event, ndjson

from pipelines.ingest.feeds import parse_file
from pipelines.ingest.parsing import UnparseableFile
from pipelines.schemas import TIMESTAMP, event_table

pytestmark = pytest.mark.unit


def parse_all(uri: str, chunk_rows: int = 1000):
    chunks = list(parse_file(uri, chunk_rows))
    tables: dict[str, list[pa.Table]] = {}
    rejected = []
    for chunk in chunks:
        rejected += chunk.rejected
        for name, table in chunk.tables.items():
            tables.setdefault(name, []).append(table)
    return {k: pa.concat_tables(v) for k, v in tables.items()}, rejected, chunks


def test_ndjson_all_four_types_land_in_their_canonical_tables(write_file):
    events = [make_event(kind) for kind in ("collection", "deletion", "access", "lifecycle")]
    tables, rejected, _ = parse_all(write_file("a.ndjson", ndjson(events)))
    assert rejected == []
    assert sorted(tables) == ["access", "collection", "deletion", "lifecycle"]
    col = tables["collection"]
    assert col.schema.field("window_start").type == TIMESTAMP
    assert col.column("records").to_pylist() == [10]
    assert set(event_table("collection").staged_schema.names) <= set(col.column_names)


def test_timestamps_with_offsets_become_utc_and_naive_ones_are_rejected(write_file):
    ok = make_event(window_start="2026-07-01T02:00:00+02:00", window_end="2026-07-01T03:00:00+02:00")
    naive = make_event(n=1, window_start="2026-07-01T00:00:00")
    tables, rejected, _ = parse_all(write_file("tz.ndjson", ndjson([ok, naive])))
    assert tables["collection"].column("window_start")[0].as_py().isoformat() == "2026-07-01T00:00:00+00:00"
    assert rejected[0]["line"] == 2
    assert rejected[0]["reasons"] == ["data.window_start: timestamp has no time zone offset"]


def test_a_bad_line_is_rejected_with_its_line_and_the_rest_survive(write_file):
    good = ndjson([make_event(n=i) for i in range(3)])
    lines = good.split(b"\n")
    data = b"\n".join([lines[0], b'{"id": "x", "broken', lines[1], b'{"id": "\xff"}', lines[2], b""])
    tables, rejected, chunks = parse_all(write_file("mixed.ndjson", data))
    assert tables["collection"].num_rows == 3
    assert [(r["line"], r["reasons"][0].split(":")[0]) for r in rejected] == [(2, "json"), (4, "encoding")]
    assert sum(c.rows_in for c in chunks) == 5


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"data": {"records": "many"}}, "data.records: expected an integer"),
        ({"type": "org.sensorlog.teleport"}, "envelope.type: unknown event type 'org.sensorlog.teleport'"),
        ({"specversion": "0.3"}, "envelope.specversion: expected '1.0'"),
        ({"id": ""}, "envelope.id: expected a non-empty string"),
        ({"data": {"colour": "red"}}, "data: unknown field(s) ['colour']"),
        ({"extra": 1}, "envelope: unknown attribute(s) ['extra']"),
        ({"data": "text"}, "envelope.data: expected a JSON object"),
    ],
)
def test_wrong_types_and_shapes_are_rejected_with_the_field_named(write_file, change, reason):
    event = make_event()
    for key, value in change.items():
        if key == "data" and isinstance(value, dict):
            event["data"].update(value)
        else:
            event[key] = value
    _, rejected, _ = parse_all(write_file("bad.ndjson", ndjson([event])))
    assert reason in rejected[0]["reasons"]
    assert rejected[0]["raw"] == json.dumps(event)


def test_files_are_read_in_bounded_chunks(write_file):
    uri = write_file("big.ndjson", ndjson([make_event(n=i) for i in range(35)]))
    chunks = list(parse_file(uri, chunk_rows=10))
    assert [c.rows_in for c in chunks] == [10, 10, 10, 5]
    ords = [o for c in chunks for o in c.tables["collection"].column("_ord").to_pylist()]
    assert ords == list(range(1, 36))


def test_json_array_and_its_line_numbers(write_file):
    events = [make_event(n=i) for i in range(3)]
    events[1]["data"]["records"] = "x"
    uri = write_file("arr.json", json.dumps(events, indent=1).encode())
    tables, rejected, _ = parse_all(uri)
    assert tables["collection"].num_rows == 2
    text = open(uri).read()
    # an element is located by its opening brace, two lines above its "id"
    assert rejected[0]["line"] == text[: text.index('"id": "collection-1"')].count("\n") - 1


def test_truncated_json_array_is_unparseable_with_file_and_line(write_file):
    text = json.dumps([make_event(n=i) for i in range(5)], indent=1).encode()
    uri = write_file("cut.json", text[: len(text) // 2])
    with pytest.raises(UnparseableFile) as err:
        parse_all(uri)
    assert err.value.uri == uri and err.value.line > 1
    assert str(err.value).startswith(f"{uri}: line {err.value.line}: JSON syntax")


def _csv(rows: list[list[str]]) -> bytes:
    return "".join(",".join(r) + "\r\n" for r in rows).encode()


CSV_HEADER = ["id", "source", "type", "time", "deployment_id", "data_class", "window_start", "window_end",
              "records", "bytes", "storage_location"]


def test_csv_rows_are_typed_from_text_and_empty_cells_are_null(write_file):
    row = ["c1", "https://v.example", "org.sensorlog.collection", "2026-07-01T01:00:00Z", "riv-x", "video",
           "2026-07-01T00:00:00Z", "2026-07-01T01:00:00Z", "42", "", ""]
    tables, rejected, _ = parse_all(write_file("a.csv", _csv([CSV_HEADER, row])))
    assert rejected == []
    assert tables["collection"].column("records").to_pylist() == [42]
    assert tables["collection"].column("bytes").to_pylist() == [None]


def test_csv_row_with_wrong_cell_count_is_rejected_and_header_problems_fail_the_file(write_file):
    tables, rejected, _ = parse_all(write_file("b.csv", _csv([CSV_HEADER, ["only", "three", "cells"]])))
    assert rejected[0]["reasons"] == ["csv: expected 11 cells, found 3"] and rejected[0]["line"] == 2
    with pytest.raises(UnparseableFile, match=r"c\.csv: line 1: CSV header lacks column\(s\) \['id'"):
        parse_all(write_file("c.csv", _csv([["device", "count"], ["x", "1"]])))


def test_unknown_file_type_is_unparseable(write_file):
    with pytest.raises(UnparseableFile, match="unsupported file type"):
        parse_all(write_file("notes.txt", b"hello"))
