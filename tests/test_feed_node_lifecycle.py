"""The node lifecycle feed (``pipelines.ingest.feeds.node_lifecycle``): an Array-of-Things-shaped
``node_id,timestamp,event,comment`` CSV landed under its configured prefix is published as lifecycle
events with no converter; every row is published, a duplicate, or quarantined with a reason naming
file and line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from audit_kit import deployment, write_registry

from pipelines import flow, layout, storage
from pipelines.config import Settings
from pipelines.ingest.feeds import parse_file, selection
from pipelines.ingest.feeds.csvtable import local_instant
from pipelines.ingest.parsing import UnparseableFile

pytestmark = pytest.mark.integration

SETTING = """
[[feeds]]
prefix = "aot"
feed = "node-lifecycle"
timezone = "America/Chicago"
[feeds.nodes]
"001e06109f62" = "aot-node-a"
"001e0610ba46" = "aot-node-b"
[feeds.events]
installed = "commissioned"
"""


@pytest.fixture
def home(tmp_path: Path) -> Settings:
    docs = [deployment(d, {"env": "P30D"}, commissioned="2018-01-01") for d in ("aot-node-a", "aot-node-b")]
    registry = write_registry(tmp_path / "registry", docs)
    (Path(registry) / "feeds.toml").write_text(SETTING)
    return Settings.from_env({
        "SENSORLOG_HOME": str(tmp_path / "home"),
        "SENSORLOG_LANDING": str(tmp_path / "landing"),
        "SENSORLOG_REGISTRY": registry,
        "SENSORLOG_NOW": "2026-06-01T00:00:00Z",
    })


def land(settings: Settings, name: str, data: bytes) -> str:
    path = Path(settings.landing) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def manifest(settings: Settings, uri: str) -> dict:
    return json.loads(storage.read_bytes(layout.manifest_file(settings, storage.sha256_of(uri)[0])))


def quarantined(settings: Settings) -> list[tuple[int, str, list[str]]]:
    rows = duckdb.sql(f"SELECT line, source_file, reasons FROM read_parquet('{settings.quarantine}/**/*.parquet') "
                      "ORDER BY line").fetchall()
    return [(line, file, list(reasons)) for line, file, reasons in rows]


def lifecycle_rows(settings: Settings) -> list[tuple]:
    return duckdb.sql(
        f"SELECT deployment_id, action, \"at\", details FROM read_parquet('{settings.published}/**/*.parquet', "
        "hive_partitioning=true, union_by_name=true) WHERE event_type = 'lifecycle' ORDER BY \"at\", deployment_id"
    ).fetchall()


GOOD = (
    b"node_id,timestamp,event,comment\n"
    b"001e06109f62,2018/02/22 00:00:00,installed,Installed at Damen and Cermak\n"
    b"001e0610ba46,2018/03/10 15:30:00,commissioned,\n"
    b"\n"
    b"001e06109f62,2019/11/03 01:30:00,decommissioned,\"Removed for repair, returned later\"\n"
)


def test_a_node_lifecycle_csv_under_its_prefix_is_published_with_the_declared_zone(home):
    uri = land(home, "aot/events.csv", GOOD)
    flow.run(home, workers=1)
    m = manifest(home, uri)
    assert (m["rows_in"], m["published"], m["quarantined"]) == (3, 3, 0)
    rows = lifecycle_rows(home)
    # Chicago is UTC-6 in February and on the repeated hour of 2019-11-03 (fold 0: the first, CDT, UTC-5).
    assert [(d, a, at.astimezone(UTC), details) for d, a, at, details in rows] == [
        ("aot-node-a", "commissioned", datetime(2018, 2, 22, 6, tzinfo=UTC), "Installed at Damen and Cermak"),
        ("aot-node-b", "commissioned", datetime(2018, 3, 10, 21, 30, tzinfo=UTC), None),
        ("aot-node-a", "decommissioned", datetime(2019, 11, 3, 6, 30, tzinfo=UTC),
         "Removed for repair, returned later"),
    ]


HOSTILE = (
    b"node_id,timestamp,event,comment\n"                              # 1
    b"001e06109f62,2018/02/22 00:00:00,commissioned,ok\n"             # 2 published
    b"001e06109f62,2018/02/31 00:00:00,commissioned,no such day\n"    # 3 bad timestamp
    b"001e06109f62,22/02/2018,commissioned,day first\n"               # 4 bad timestamp
    b"001e06109f62,2018/03/11 02:30:00,firmware_changed,skipped hour\n"  # 5 does not exist in Chicago
    b"ffffffffffff,2018/02/22 00:00:00,commissioned,unknown node\n"   # 6 unknown node
    b"001e0610ba46,2018/02/22 00:00:00,exploded,unknown word\n"       # 7 unknown event word
    b"001e0610ba46,2018/02/22 00:00:00\n"                             # 8 too few cells
    b"   ,  ,  ,  \n"                                                 # 9 blank
    b"001e0610ba46,2018/02/23 00:00:00,relocated," + b"x" * 600 + b"\n"  # 10 details over 500
    b"001e0610ba46,2018/02/24 00:00:00,relocated," + b"y" * 70_000 + b"\n"  # 11 longer than an event may be
    b"001e0610ba46,2030/01/01 00:00:00,commissioned,future\n"         # 12 in the future
    b"001e0610ba46,2017/06/01 00:00:00,commissioned,before commissioning\n"  # 13
    b"001e06109f62,2018/02/22 00:00:00,commissioned,ok\n"             # 14 exact duplicate of line 2
    b"001e06109f62,2018/02/22 00:00:00,commissioned,changed comment\n"  # 15 same id, other content
    b"001e0610ba46,2018/04/01 00:00:00,\"unterminated,x\n"            # 16 stray quote: this line only
    b"001e0610ba46,2018/04/02 00:00:00,Policy_Changed,ok\n"           # 17 published (case-insensitive word)
)


def test_hostile_rows_each_end_published_duplicate_or_quarantined_with_file_and_line(home):
    uri = land(home, "aot/2018/hostile.csv", HOSTILE)
    flow.run(home, workers=1)
    m = manifest(home, uri)
    assert m["rows_in"] == 15  # 17 lines less the header and the blank
    assert m["published"] + m["quarantined"] + m.get("duplicates", 0) == m["rows_in"]
    assert m["published"] == 2
    reasons = {line: " | ".join(r) for line, file, r in quarantined(home) if file == uri}
    assert set(reasons) == {3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 15, 16}, reasons
    assert "timestamp:" in reasons[3] and "day is out of range" in reasons[3]
    assert "is not a time like 2018/02/22 00:00:00" in reasons[4]
    assert "does not exist in America/Chicago" in reasons[5]
    assert "'ffffffffffff' is not in the feed setting's node map" in reasons[6]
    assert "unknown event word 'exploded'" in reasons[7]
    assert "expected 4 cells, found 2" in reasons[8]
    assert "details" in reasons[10]
    assert "longer than" in reasons[11]
    assert "future" in reasons[12]
    assert "commission" in reasons[13]
    assert "conflict" in reasons[15] or "different content" in reasons[15] or "earlier" in reasons[15]
    assert "quote" in reasons[16] or "csv" in reasons[16]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (b"node_id,timestamp,event\n", "lacks column(s) ['comment']"),
        (b"node_id,timestamp,event,comment,extra\n", "has unexpected column(s) ['extra']"),
        (b"node_id,timestamp,event,event\n", "repeats column(s) ['event']"),
        (b"id,source,type,time\n", "lacks column(s)"),
    ],
)
def test_a_wrong_column_set_quarantines_the_file_whole(home, header, message):
    uri = land(home, "aot/wrong.csv", header + b"001e06109f62,2018/02/22 00:00:00,commissioned,x\n")
    with pytest.raises(UnparseableFile, match=r"the node-lifecycle feed reads exactly node_id, timestamp") as err:
        list(parse_file(uri, selection=selection.load(home)))
    assert message in err.value.message and err.value.line == 1
    flow.run(home, workers=1)
    assert manifest(home, uri)["rows_in"] == 0
    (line, file, reasons), = quarantined(home)
    assert (line, file) == (1, uri) and reasons[0].startswith("file: CSV header")


def test_local_instants_are_read_in_the_zone_and_an_offset_is_kept():
    from zoneinfo import ZoneInfo

    chicago = ZoneInfo("America/Chicago")
    assert local_instant("2018/02/22 00:00:00", chicago) == datetime(2018, 2, 22, 6, tzinfo=UTC)
    assert local_instant("2018-07-01", chicago) == datetime(2018, 7, 1, 5, tzinfo=UTC)
    assert local_instant("2018-07-01T12:00:00+00:00", chicago) == datetime(2018, 7, 1, 12, tzinfo=UTC)
    for bad in ("2018/13/01 00:00:00", "yesterday", "2018/02/22 25:00:00", "", "2018/03/11 02:00:00"):
        with pytest.raises(ValueError):
            local_instant(bad, chicago)


def test_a_gzipped_file_with_a_byte_order_mark_is_read_by_the_prefix_feed(home):
    import gzip

    uri = land(home, "aot/events.csv.gz", gzip.compress(b"\xef\xbb\xbf" + GOOD))
    chunks = list(parse_file(uri, selection=selection.load(home)))
    assert sum(c.rows_in for c in chunks) == 3 and not any(c.rejected for c in chunks)
    assert sum(c.tables["lifecycle"].num_rows for c in chunks) == 3
