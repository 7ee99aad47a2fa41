"""Hostile and careless inputs: each file gets a manifest (rows quarantined with a reason) or a
whole-file quarantine, nothing raises, and the file landed after it is still published."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from audit_kit import deployment, write_registry
from conftest import DEPLOYMENT, make_event, ndjson
from typer.testing import CliRunner

from pipelines import flow, layout, storage
from pipelines.config import Settings
from pipelines.ingest import strictjson
from pipelines.ingest.feeds import cloudevents_json, parse_file
from pipelines.ingest.limits import MAX_DEPTH, MAX_EVENT_BYTES, MAX_RAW
from pipelines.ingest.validate import load_suite_json
from pipelines.schemas import EVENT_TABLES, SCHEMA_DIR, event_table

pytestmark = pytest.mark.integration

NEXT = "zz-next.ndjson"  # lands after every hostile file, so it is published after it
CSV_HEADER = "id,source,type,time,deployment_id,data_class,window_start,window_end,records,bytes,storage_location"


def csv_row(n: int, location: str = "cloud", records: str | None = None) -> str:
    return (
        f"csv-{n},https://vendor.example/csv,org.sensorlog.collection,2026-07-01T01:05:00Z,{DEPLOYMENT},video,"
        f"2026-07-01T00:00:00Z,2026-07-01T01:00:00Z,{records or n},,{location}"
    )


@pytest.fixture
def home(tmp_path: Path) -> Settings:
    doc = deployment(DEPLOYMENT, {"video": "P30D"}, commissioned="2026-03-01")
    registry = write_registry(tmp_path / "registry", [doc])
    return Settings.from_env({
        "SENSORLOG_HOME": str(tmp_path / "home"),
        "SENSORLOG_LANDING": str(tmp_path / "landing"),
        "SENSORLOG_REGISTRY": registry,
    })


def land(settings: Settings, name: str, data: bytes) -> str:
    path = Path(settings.landing) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def manifest_of(settings: Settings, uri: str) -> dict:
    batch_id = storage.sha256_of(uri)[0]
    return json.loads(storage.read_bytes(layout.manifest_file(settings, batch_id)))


def quarantined(settings: Settings, manifest: dict) -> list[dict]:
    if not manifest["quarantine"]:
        return []
    return pq.read_table(storage.join(settings.quarantine, manifest["quarantine"]["path"])).to_pylist()


def published(settings: Settings, manifest: dict) -> list[dict]:
    rows = []
    for out in manifest["outputs"]:
        rows += pq.read_table(storage.join(settings.published, out["path"])).to_pylist()
    return rows


def run_hostile(settings: Settings, name: str, data: bytes) -> tuple[dict, list[dict], list[dict]]:
    """Land ``data`` as ``name`` and a clean file after it, run; return the hostile file's manifest,
    its quarantine rows and its published rows, having checked the clean file was published."""
    uri = land(settings, name, data)
    after = land(settings, NEXT, ndjson([make_event(n=900 + i) for i in range(3)]))
    flow.run(settings, workers=1)
    nxt = manifest_of(settings, after)
    assert (nxt["rows_in"], nxt["published"]) == (3, 3)
    manifest = manifest_of(settings, uri)
    rows, q = published(settings, manifest), quarantined(settings, manifest)
    events = [r for r in q if not r["reasons"][0].startswith("file:")]
    assert manifest["rows_in"] == len(rows) + len(events) + manifest["duplicates"]
    assert manifest["published"] == len(rows) and manifest["quarantined"] == len(events)
    return manifest, q, rows


def only_reasons(q: list[dict]) -> list[list[str]]:
    return [r["reasons"] for r in q]


# -- bounded parsing -------------------------------------------------------------------------------


def test_a_json_array_nested_100000_deep_is_quarantined_whole(home):
    manifest, q, _ = run_hostile(home, "deep.json", b"[" * 100_000 + b"]" * 100_000)
    assert "nested deeper than" in manifest["file_error"] and manifest["rows_in"] == 0
    assert q[0]["line"] == 1 and q[0]["reasons"][0].startswith("file: JSON nested deeper")
    assert storage.exists(layout.quarantined_original(home, manifest["batch_id"], "deep.json"))


def test_an_ndjson_line_nested_100000_deep_is_one_quarantined_row(home):
    deep = b'{"data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    data = ndjson([make_event(n=1)]) + deep + b"\n" + ndjson([make_event(n=2)])
    manifest, q, rows = run_hostile(home, "deep.ndjson", data)
    assert (manifest["rows_in"], manifest["published"]) == (3, 2)
    assert q[0]["line"] == 2 and q[0]["reasons"] == [f"size: event is longer than {MAX_EVENT_BYTES} bytes"]


def test_a_short_line_nested_too_deep_is_refused_before_decoding(home):
    deep = b'{"data": ' + b"[" * (MAX_DEPTH + 5) + b"]" * (MAX_DEPTH + 5) + b"}"
    quoted = json.dumps(make_event("lifecycle", n=4, details="[" * 500)).encode()  # brackets in a string do not nest
    manifest, q, rows = run_hostile(home, "deepish.ndjson", deep + b"\n" + ndjson([make_event("lifecycle", n=3)]))
    assert q[0]["reasons"][0].startswith(f"json: nested deeper than {MAX_DEPTH} levels")
    assert manifest["published"] == 1
    assert strictjson.depth_exceeds(quoted, MAX_DEPTH) is None


def test_an_over_long_line_without_a_newline_is_cut_and_quarantined(home):
    data = ndjson([make_event(n=1)]) + b'{"id": "' + b"x" * (5 * 1024 * 1024)  # 5 MiB, never ends
    manifest, q, _ = run_hostile(home, "endless.ndjson", data)
    assert (manifest["rows_in"], manifest["published"]) == (2, 1)
    assert q[0]["reasons"][0].startswith("size:") and len(q[0]["raw"]) <= MAX_RAW


def test_a_json_array_larger_than_the_limit_is_quarantined_whole(home, monkeypatch):
    monkeypatch.setattr(cloudevents_json, "MAX_JSON_ARRAY_BYTES", 1000)
    manifest, _, _ = run_hostile(home, "big.json", json.dumps([make_event(n=i) for i in range(20)]).encode())
    assert "larger than 1000 bytes" in manifest["file_error"]


# -- values the leaf encoding cannot represent -----------------------------------------------------


@pytest.mark.parametrize("value", [2**53, 2**53 + 1, -(2**53), 2**63 - 1])
def test_integers_beyond_2_53_are_quarantined_as_encoding(home, value):
    manifest, q, _ = run_hostile(home, "big-int.ndjson", ndjson([make_event(n=1, bytes=value), make_event(n=2)]))
    assert manifest["published"] == 1
    assert "encoding:bytes integer beyond ±(2^53-1), which the log cannot encode" in q[0]["reasons"]
    assert len(q) == 1


def test_the_largest_encodable_integer_is_published(home):
    manifest, _, rows = run_hostile(home, "max-int.ndjson", ndjson([make_event(n=1, records=2**53 - 1)]))
    assert [r["records"] for r in rows] == [2**53 - 1]


@pytest.mark.parametrize(
    ("stamp", "field"),
    [("0001-01-01T00:00:00+01:00", "window_start"), ("9999-12-31T23:00:00-05:00", "window_end")],
)
def test_timestamps_outside_years_1_to_9999_in_utc_are_quarantined_as_range(home, stamp, field):
    manifest, q, _ = run_hostile(home, "far.ndjson", ndjson([make_event(n=1, **{field: stamp}), make_event(n=2)]))
    assert manifest["published"] == 1
    assert only_reasons(q) == [[f"range:data.{field}: outside years 0001-9999 in UTC"]]


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_non_finite_numbers_are_quarantined_as_encoding(home, literal):
    line = json.dumps(make_event(n=1, records=12345)).encode().replace(b"12345", literal)
    manifest, q, _ = run_hostile(home, "nan.ndjson", line + b"\n" + ndjson([make_event(n=2)]))
    assert manifest["published"] == 1
    assert q[0]["reasons"][0].startswith("encoding: ") and q[0]["event_id"] == "collection-1"


def test_nanosecond_timestamps_are_quarantined_not_truncated(home):
    event = make_event(n=1)
    event["time"] = "2026-07-01T01:05:00.123456789Z"
    manifest, q, _ = run_hostile(home, "nanos.ndjson", ndjson([event, make_event(n=2)]))
    assert manifest["published"] == 1
    assert only_reasons(q) == [["encoding:envelope.time: 9 fractional digits; at most microseconds are kept"]]


# -- implausible dates -----------------------------------------------------------------------------


def test_dates_before_2000_before_commissioning_or_in_the_future_are_quarantined(home):
    future = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    events = [
        make_event(n=1, window_start="1999-12-31T23:00:00Z"),
        make_event(n=2, window_start="2026-02-28T00:00:00Z", window_end="2026-02-28T01:00:00Z"),  # commissioned 03-01
        make_event(n=3, window_end=future),
        make_event(n=4, window_start="2026-03-01T05:00:00Z"),  # midnight in New York is 05:00 UTC: in service
    ]
    manifest, q, rows = run_hostile(home, "dates.ndjson", ndjson(events))
    by_id = {r["event_id"]: r["reasons"] for r in q}
    assert "range:window_start before 2000-01-01" in by_id["collection-1"]
    assert by_id["collection-2"] == [
        f"range:{c} before the deployment was commissioned (registry lifecycle.commissioned)"
        for c in ("window_start", "window_end")
    ]
    assert by_id["collection-3"] == ["clock:window_end is in the future"]
    assert [r["event_id"] for r in rows] == ["collection-4"]


# -- nothing lost or changed silently --------------------------------------------------------------


def test_a_csv_with_a_byte_order_mark_is_read(home):
    data = ("\ufeff" + CSV_HEADER + "\r\n" + csv_row(1) + "\r\n" + csv_row(2) + "\r\n").encode()
    manifest, _, rows = run_hostile(home, "excel.csv", data)
    assert (manifest["rows_in"], manifest["published"], manifest["file_error"]) == (2, 2, None)
    assert sorted(r["event_id"] for r in rows) == ["csv-1", "csv-2"]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_csv_quoted_newline_is_one_event_and_kept_exactly(home, newline):
    data = (CSV_HEADER + newline + csv_row(1, f'"north{newline}wing"') + newline + csv_row(2) + newline).encode()
    manifest, _, rows = run_hostile(home, "multiline.csv", data)
    assert (manifest["rows_in"], manifest["published"]) == (2, 2)
    assert {r["event_id"]: r["storage_location"] for r in rows} == {"csv-1": f"north{newline}wing", "csv-2": "cloud"}


def test_a_csv_unterminated_quote_rejects_its_line_and_keeps_the_rest(home):
    lines = [CSV_HEADER, csv_row(1), csv_row(2, '"north'), csv_row(3), csv_row(4, '"a ""b"" c"'), csv_row(5)]
    manifest, q, rows = run_hostile(home, "unterminated.csv", ("\n".join(lines) + "\n").encode())
    assert (manifest["rows_in"], manifest["published"], manifest["quarantined"]) == (5, 4, 1)
    assert q[0]["line"] == 3 and q[0]["reasons"][0].startswith("csv: ") and q[0]["raw"] == csv_row(2, '"north')
    assert sorted(r["event_id"] for r in rows) == ["csv-1", "csv-3", "csv-4", "csv-5"]


def test_a_csv_header_naming_a_column_twice_is_quarantined_whole(home):
    data = (CSV_HEADER + ",records\n" + csv_row(1) + ",7\n").encode()
    manifest, _, _ = run_hostile(home, "twice.csv", data)
    assert "repeats column(s) ['records']" in manifest["file_error"]


@pytest.mark.parametrize("where", ["data", "envelope", "array"])
def test_a_repeated_json_key_is_quarantined_not_last_wins(home, where):
    text = json.dumps(make_event(n=1))
    if where == "data":
        text = text.replace('"records": 11', '"records": 11, "records": 99')
    else:
        text = text.replace('"id": "collection-1"', '"id": "collection-1", "id": "other"')
    if where == "array":
        name, data = "dup.json", ("[" + text + ", " + json.dumps(make_event(n=2)) + "]").encode()
    else:
        name, data = "dup.ndjson", (text + "\n").encode() + ndjson([make_event(n=2)])
    manifest, q, _ = run_hostile(home, name, data)
    assert manifest["published"] == 1
    key = "records" if where == "data" else "id"
    assert q[0]["reasons"][0] == f"json: duplicate key(s) ['{key}'] in one object"


@pytest.mark.parametrize(("attribute", "column", "limit"), [("id", "event_id", 200), ("source", "source", 300)])
def test_envelope_fields_over_the_schema_maximum_are_quarantined(home, attribute, column, limit):
    long, edge = make_event(n=1), make_event(n=2)
    long[attribute], edge[attribute] = "x" * (limit + 1), "y" * limit
    manifest, q, rows = run_hostile(home, "long.ndjson", ndjson([long, edge]))
    assert only_reasons(q) == [[f"gx:expect_column_value_lengths_to_be_between[{column}]"]]
    assert [len(r[column]) for r in rows] == [limit]


@pytest.mark.parametrize("suffix", [".ndjson.gz", ".jsonl.gz", ".json.gz", ".csv.gz"])
def test_gzip_files_are_read(home, suffix):
    events = [make_event(n=i) for i in range(4)]
    if suffix == ".json.gz":
        raw = json.dumps(events).encode()
    elif suffix == ".csv.gz":
        raw = ("\n".join([CSV_HEADER, *(csv_row(i) for i in range(4))]) + "\n").encode()
    else:
        raw = ndjson(events)
    data = gzip.compress(raw[: len(raw) // 2]) + gzip.compress(raw[len(raw) // 2 :])  # two gzip members
    manifest, _, rows = run_hostile(home, "export" + suffix, data)
    assert (manifest["rows_in"], manifest["published"]) == (4, 4)
    assert manifest["batch_id"] == storage.sha256_of(str(Path(home.landing) / ("export" + suffix)))[0]
    assert manifest["source_bytes"] == len(data)


def test_a_truncated_gzip_file_is_quarantined_whole_with_its_line(home):
    data = gzip.compress(ndjson([make_event(n=i, storage_location=f"loc-{i}" * 20) for i in range(2000)]))
    manifest, q, rows = run_hostile(home, "cut.ndjson.gz", data[: len(data) // 2])
    assert manifest["file_error"] and "gzip" in manifest["file_error"] and (manifest["rows_in"], rows) == (0, [])
    assert len(q) == 1 and q[0]["line"] > 1


def _zip() -> bytes:
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w") as z:
        z.writestr("events.ndjson", ndjson([make_event()]))
    return sink.getvalue()


def _tar(mode: str) -> bytes:
    sink, payload = io.BytesIO(), ndjson([make_event()])
    with tarfile.open(fileobj=sink, mode=mode) as t:
        info = tarfile.TarInfo("events.ndjson")
        info.size = len(payload)
        t.addfile(info, io.BytesIO(payload))
    return sink.getvalue()


@pytest.mark.parametrize(
    ("name", "maker"),
    [
        ("export.zip", _zip),
        ("export.tar", lambda: _tar("w")),
        ("export.tgz", lambda: _tar("w:gz")),
        ("export.tar.gz", lambda: _tar("w:gz")),
        ("export.7z", lambda: b"7z\xbc\xaf\x27\x1c" + b"\0" * 32),
        ("export.ndjson.bz2", lambda: b"BZh91AY&SY"),
        ("export.xlsx", _zip),
    ],
)
def test_archives_and_other_kinds_are_quarantined_whole_as_unsupported(home, name, maker):
    data = maker()
    uri = land(home, name, data)
    assert uri in flow.discover(home)
    manifest, q, _ = run_hostile(home, name, data)
    assert manifest["file_error"] and "unsupported" in manifest["file_error"] and manifest["rows_in"] == 0
    assert q[0]["reasons"][0].startswith("file: unsupported")
    kept = layout.quarantined_original(home, manifest["batch_id"], name)
    assert storage.read_bytes(kept) == data


def test_sensorlog_run_takes_every_hostile_file_in_turn_without_a_traceback(home, monkeypatch):
    deep = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
    files = {
        "a-deep.json": b"[" * 100_000 + b"]" * 100_000,
        "b-deep.ndjson": deep,
        "c-bigint.ndjson": ndjson([make_event(n=1, records=2**53 + 1)]),
        "d-year1.ndjson": ndjson([make_event(n=2, window_start="0001-01-01T00:00:00+01:00")]),
        "e-year9999.ndjson": ndjson([make_event(n=3, window_end="9999-12-31T23:00:00-05:00")]),
        "f-archive.zip": _zip(),
        "g-unterminated.csv": (CSV_HEADER + "\n" + csv_row(1, '"open') + "\n" + csv_row(2) + "\n").encode(),
    }
    for name, data in files.items():
        land(home, name, data)
    after = land(home, NEXT, ndjson([make_event(n=900)]))
    Path(home.home).mkdir(parents=True, exist_ok=True)  # the landing is elsewhere; sensorlog run needs a home
    for key, value in {"SENSORLOG_HOME": home.home, "SENSORLOG_LANDING": home.landing,
                       "SENSORLOG_REGISTRY": home.registry}.items():
        monkeypatch.setenv(key, str(value))
    from pipelines.cli import app

    result = CliRunner().invoke(app, ["run", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert result.exception is None and "Traceback" not in result.output
    for name in files:
        assert storage.exists(layout.manifest_file(home, storage.sha256_of(str(Path(home.landing) / name))[0]))
    assert manifest_of(home, after)["published"] == 1
    assert flow.discover(home) == []


def _envelope_and_payload(table: str) -> dict[str, dict]:
    envelope = json.loads((SCHEMA_DIR / "events" / "cloudevent.schema.json").read_text())["properties"]
    return {"event_id": envelope["id"], "source": envelope["source"], **event_table(table).json_schema["properties"]}


@pytest.mark.parametrize("table", EVENT_TABLES)
def test_the_suite_bounds_every_field_exactly_as_the_schema_does(table):
    schema = {name: spec["maxLength"] for name, spec in _envelope_and_payload(table).items() if "maxLength" in spec}
    suite = {
        e["kwargs"]["column"]: e["kwargs"]["max_value"]
        for e in load_suite_json(table)["expectations"]
        if e["type"] == "expect_column_value_lengths_to_be_between"
    }
    assert suite == schema


@pytest.mark.parametrize("table", EVENT_TABLES)
def test_an_event_with_every_field_at_its_maximum_is_within_the_event_limit(write_file, table):
    event = make_event(table)
    props = _envelope_and_payload(table)
    event["id"], event["source"] = "i" * props["event_id"]["maxLength"], "s" * props["source"]["maxLength"]
    for name, spec in props.items():
        if "maxLength" in spec and name in event["data"]:
            event["data"][name] = "\u00e9" * spec["maxLength"]  # two bytes each in UTF-8
    line = json.dumps(event, ensure_ascii=False).encode()
    assert len(line) < MAX_EVENT_BYTES
    chunks = list(parse_file(write_file("max.ndjson", line + b"\n")))
    assert [c.rejected for c in chunks] == [[]] and chunks[0].tables[table].num_rows == 1
