"""The vendor transparency-portal snapshot feed (``pipelines.ingest.feeds.vendor_portal``): a portal
scrape landed under its configured prefix becomes collection events (detections, hotlist hits over
the 30-day window), access events (searches) and a logged ``vendor_snapshot`` of what the vendor
declares, with conservation; a second scrape that declares another retention is an audit finding."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from audit_kit import deployment, write_registry

from pipelines import flow, layout, storage
from pipelines.audit.model import AuditOptions
from pipelines.audit.run import run_audit
from pipelines.config import Settings
from pipelines.ingest.feeds import vendor_portal

pytestmark = pytest.mark.integration

SETTING = """
[[feeds]]
prefix = "flock"
feed = "vendor-portal"
timezone = "America/Los_Angeles"
detections_class = "plate_reads"
hotlist_hits_class = "hotlist_hits"
search_role = "alpr_user"
search_organisation = "Eastvale Police Department"
[feeds.agencies]
"Eastvale CA PD" = "alpr-eastvale"
"Westbrook CA PD" = "alpr-westbrook"
"""
HEADER = (
    b"agency,data_retention_in_days,number_of_owned_cameras,external_organizations_with_access,"
    b"hotlists_alerted_on,vehicles_detected_in_the_last_30_days,hotlist_hits_in_the_last_30_days,"
    b"searches_in_the_last_30_days,public_search_audit,updated\n"
)
FIRST = HEADER + (
    b'Eastvale CA PD,30 days,12,"Northfield PD; Southgate Sheriff",'
    b'"Stolen vehicles, Amber alerts","1,204,330",311,87,https://audit.example/eastvale,2026/05/01 09:00:00\n'
    b"Westbrook CA PD,-Infinity days,4,988,NA,NA,NA,NA,NA,2026/05/01 09:00:00\n"
)
SECOND = HEADER + (
    b'Eastvale CA PD,NA,14,"Northfield PD; Southgate Sheriff",'
    b'"Stolen vehicles, Amber alerts",1100000,290,91,https://audit.example/eastvale,2026/05/31 09:00:00\n'
    b"Westbrook CA PD,-Infinity days,4,988,NA,NA,NA,NA,NA,2026/05/31 09:00:00\n"
)
HOSTILE = HEADER + (
    b"Eastvale CA PD,30,12,NA,NA,10,1,2,NA,2026/06/10 09:00:00\n"           # 2: 4 events published
    b"Unknown Town PD,30,12,NA,NA,10,1,2,NA,2026/06/10 09:00:00\n"          # 3: unknown agency
    b"Eastvale CA PD,30,twelve,NA,NA,10,1,2,NA,2026/06/11 09:00:00\n"       # 4: a count in words
    b"Eastvale CA PD,30,12,NA,NA,-5,1,2,NA,2026/06/12 09:00:00\n"           # 5: a negative count
    b"Eastvale CA PD,30,12,NA,NA,10,1,2,NA,last Tuesday\n"                  # 6: no time
    b"Eastvale CA PD,30,12,NA,NA,10,1\n"                                    # 7: too few cells
    b",,,,,,,,,\n"                                                          # 8: blank
    b"Eastvale CA PD," + b"r" * 300 + b",12,NA,NA,10,1,2,NA,2026/06/13 09:00:00\n"  # 9: retention over 200
)


@pytest.fixture
def home(tmp_path: Path) -> Settings:
    grant = {"organisation": "Eastvale Police Department", "roles": ["alpr_user"], "purpose": "Investigations"}
    docs = [
        deployment("alpr-eastvale", {"plate_reads": "P30D", "hotlist_hits": "P30D"}, grants=[grant]),
        deployment("alpr-westbrook", {"plate_reads": "P30D", "hotlist_hits": "P30D"}, grants=[grant]),
    ]
    registry = write_registry(tmp_path / "registry", docs)
    (Path(registry) / "feeds.toml").write_text(SETTING)
    return Settings.from_env({
        "SENSORLOG_HOME": str(tmp_path / "home"), "SENSORLOG_LANDING": str(tmp_path / "landing"),
        "SENSORLOG_REGISTRY": registry, "SENSORLOG_NOW": "2026-07-01T00:00:00Z",
        "SENSORLOG_TIMEZONE": "America/Los_Angeles",
    })


def land(settings: Settings, name: str, data: bytes) -> str:
    path = Path(settings.landing) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def manifest(settings: Settings, uri: str) -> dict:
    return json.loads(storage.read_bytes(layout.manifest_file(settings, storage.sha256_of(uri)[0])))


def table(settings: Settings, name: str, columns: str) -> list[tuple]:
    return duckdb.sql(
        f"SELECT {columns} FROM read_parquet('{settings.published}/event_type={name}/**/*.parquet') ORDER BY ALL"
    ).fetchall()


def test_a_portal_scrape_becomes_collection_access_and_snapshot_events(home):
    uri = land(home, "flock/2026-05-01.csv", FIRST)
    flow.run(home, workers=1)
    m = manifest(home, uri)
    # Eastvale: snapshot, detections, hits, searches; Westbrook: only its snapshot (every count NA).
    assert (m["rows_in"], m["published"], m["quarantined"]) == (5, 5, 0)
    end = datetime(2026, 5, 1, 16, tzinfo=UTC)  # 09:00 in Los Angeles (PDT)
    start = datetime(2026, 4, 1, 16, tzinfo=UTC)
    collection = table(home, "collection", "deployment_id, data_class, window_start, window_end, records")
    assert [(d, c, s.astimezone(UTC), e.astimezone(UTC), r) for d, c, s, e, r in collection] == [
        ("alpr-eastvale", "hotlist_hits", start, end, 311), ("alpr-eastvale", "plate_reads", start, end, 1_204_330)]
    access = table(home, "access", "deployment_id, organisation, role, records")
    assert access == [("alpr-eastvale", "Eastvale Police Department", "alpr_user", 87)]
    snaps = table(home, "vendor_snapshot", "deployment_id, agency, retention_text, retention_days, devices, "
                  "external_organisations_count, external_organisations, hotlists, public_search_audit")
    assert snaps == [
        ("alpr-eastvale", "Eastvale CA PD", "30 days", 30, 12, 2, "Northfield PD; Southgate Sheriff",
         "Stolen vehicles, Amber alerts", "https://audit.example/eastvale"),
        ("alpr-westbrook", "Westbrook CA PD", "-Infinity days", None, 4, 988, None, "NA", "NA"),
    ]


def test_a_changed_declaration_between_two_scrapes_is_an_audit_finding(home):
    land(home, "flock/2026-05-01.csv", FIRST)
    flow.run(home, workers=1)
    land(home, "flock/2026-05-31.csv", SECOND)
    flow.run(home, workers=1)
    result = run_audit(home, AuditOptions(as_of=datetime(2026, 6, 1, tzinfo=UTC)))
    changed = [f for f in result.findings.to_pylist() if f["kind"] == "vendor_declaration_changed"]
    assert len(changed) == 1  # Westbrook declared the same twice
    (f,) = changed
    numbers = json.loads(f["numbers"])
    assert f["deployment_id"] == "alpr-eastvale" and f["severity"] == "medium"
    assert numbers["changed"] == "retention_text,devices"
    assert (numbers["retention_before"], numbers["retention_after"]) == ("30 days", "NA")
    assert (numbers["devices_before"], numbers["devices_after"]) == (12, 14)
    assert [e["id"] for e in f["evidence"]] == [
        "alpr-eastvale/2026-05-01T16:00:00+00:00/snapshot", "alpr-eastvale/2026-05-31T16:00:00+00:00/snapshot"]
    # Declared-vs-observed for the feed's own events: the searches' organisation and role are granted,
    # so no undeclared access; both classes are declared, so no undeclared class.
    kinds = {f["kind"] for f in result.findings.to_pylist()}
    assert "undeclared_access" not in kinds and "undeclared_data_class" not in kinds


def test_hostile_rows_are_quarantined_with_file_line_and_column(home):
    uri = land(home, "flock/hostile.csv", HOSTILE)
    flow.run(home, workers=1)
    m = manifest(home, uri)
    assert m["published"] + m["quarantined"] + m.get("duplicates", 0) == m["rows_in"]
    # Line 2's four events, and line 9's three counts: its snapshot alone breaks a bound (each event
    # is decided on its own once the row could be read).
    assert m["published"] == 7
    rows = duckdb.sql(f"SELECT line, source_file, reasons FROM read_parquet('{home.quarantine}/**/*.parquet')"
                      " ORDER BY line").fetchall()
    reasons: dict[int, str] = {}
    for line, file, why in rows:
        assert file == uri
        reasons[line] = reasons.get(line, "") + " | ".join(why)
    assert set(reasons) == {3, 4, 5, 6, 7, 9}, reasons
    assert "agency: 'Unknown Town PD' is not in the feed setting's agency map" in reasons[3]
    assert "number_of_owned_cameras: 'twelve' is not a whole number" in reasons[4]
    assert "vehicles_detected_in_the_last_30_days: '-5' is not a whole number" in reasons[5]
    assert "updated: 'last Tuesday' is not a time like" in reasons[6]
    assert "expected 10 cells, found 7" in reasons[7]
    assert "retention_text" in reasons[9]


def test_the_cell_readers():
    assert vendor_portal.count(" 1,204 ") == 1204 and vendor_portal.count("N/A") is None
    for bad in ("1,2", "12.5", "-Infinity", "1e3"):
        with pytest.raises(ValueError):
            vendor_portal.count(bad)
    assert [vendor_portal.retention_days(t) for t in ("30", "30 days", "1 Day", "NA", "-Infinity days", "")] == [
        30, 30, 1, None, None, None]
    assert vendor_portal.organisations("988") == (988, None)
    assert vendor_portal.organisations("na") == (None, None)
    assert vendor_portal.organisations("A PD, B PD") == (2, "A PD; B PD")
    assert vendor_portal.organisations("Sheriff, County of X; B PD\n") == (2, "Sheriff, County of X; B PD")
