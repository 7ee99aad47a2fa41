"""Relocations (issue 16 item 2): the registry declares moves (``lifecycle.relocations``), the page and
the exports show where a deployment is now and where it was, and the audit reports a ``relocated``
lifecycle event on a day no move is declared (``undeclared_relocation``). Fixtures are written here."""

from __future__ import annotations

import copy
import csv
import io
from pathlib import Path

import pytest
import yaml
from audit_kit import deployment, local, publish, settings_for
from conftest import DEPLOYMENT, make_event, ndjson

from pipelines import audit, flow
from pipelines.audit import AuditOptions
from pipelines.audit.run import run_audit
from pipelines.config import Settings
from pipelines.log.verify import verify_log
from pipelines.portal import build_portal
from pipelines.portal.registry_export import registry_table
from pipelines.registry import declarations, load_registry, registry_warnings, validate_registry

pytestmark = pytest.mark.integration

MOVE = {"moved_on": "2026-07-10", "location": {"lat": 35.21, "lon": -80.84, "mobility": "fixed",
                                              "address": "200 Market Street"}, "note": "Moved for road works"}
AREA_MOVE = {"moved_on": "2026-08-01", "location": {"area": "Eastside depot", "mobility": "mobile"}}


def _doc(*moves: dict, commissioned: str = "2026-01-01", decommissioned: str | None = None) -> dict:
    doc = deployment("cam-moving", {"video": "P30D"}, commissioned=commissioned, decommissioned=decommissioned)
    if moves:
        doc["lifecycle"]["relocations"] = [copy.deepcopy(m) for m in moves]
    return doc


def _problems(tmp_path: Path, doc: dict) -> list[str]:
    folder = tmp_path / "reg"
    folder.mkdir(exist_ok=True)
    (folder / f"{doc['id']}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return [str(p) for p in validate_registry(folder)]


# --- the schema and its checks --------------------------------------------------------------------------


def test_declared_relocations_load_and_the_current_place_is_the_last(tmp_path: Path) -> None:
    assert _problems(tmp_path, _doc(MOVE, AREA_MOVE)) == []
    d = load_registry(tmp_path / "reg")["cam-moving"]
    assert [r.on.isoformat() for r in d.relocations] == ["2026-07-10", "2026-08-01"]
    assert (d.area, d.mobility, d.lat) == ("Eastside depot", "mobile", None)  # now
    assert d.commissioned_at is not None and d.commissioned_at.lat == 35.2  # at commissioning
    since = [(day.isoformat(), place.address or place.area or place.lat) for day, place, _ in d.places()]
    assert since == [("2026-01-01", 35.2), ("2026-07-10", "200 Market Street"),
                     ("2026-08-01", "Eastside depot")]


def test_a_registry_without_relocations_loads_as_before(tmp_path: Path) -> None:
    assert _problems(tmp_path, _doc()) == []
    d = load_registry(tmp_path / "reg")["cam-moving"]
    assert d.relocations == () and d.commissioned_at is None
    assert d.places()[0][1] == d.place


@pytest.mark.parametrize(
    ("moves", "kw", "words"),
    [
        ([{**MOVE, "moved_on": "2026-01-01"}], {}, "relocations[0].moved_on: expected a date after commissioned"
                                                   " 2026-01-01 (got 2026-01-01)"),
        ([{**MOVE, "moved_on": "2025-06-01"}], {}, "relocations[0].moved_on: expected a date after commissioned"),
        ([MOVE], {"decommissioned": "2026-07-01"},
         "relocations[0].moved_on: expected a date on or before decommissioned 2026-07-01 (got 2026-07-10)"),
        ([AREA_MOVE, MOVE], {}, "relocations[1].moved_on: expected a date after the relocation before it,"
                                " 2026-08-01, oldest first (got 2026-07-10)"),
        ([{**MOVE, "moved_on": "2026-02-30"}], {}, "relocations[0].moved_on: expected a date written YYYY-MM-DD"),
        ([{"moved_on": "2026-07-10"}], {}, "relocations[0].location: expected a value (required field is missing)"),
        ([{**MOVE, "location": {"lat": 1, "mobility": "fixed", "area": "x"}}], {},
         "relocations[0].location: expected either a point (lat and lon) or an area"),
        ([{**MOVE, "location": {"area": "x", "bbox": [2, 2, 1, 1], "mobility": "fixed"}}], {},
         "relocations[0].location.bbox: expected [min_lon, min_lat, max_lon, max_lat] with each min <= max"),
        ([{**MOVE, "where": "x"}], {}, "relocations[0].where: expected no such field"),
    ],
)
def test_relocations_out_of_order_or_malformed_are_refused_with_file_and_line(
    tmp_path: Path, moves: list[dict], kw: dict, words: str
) -> None:
    problems = _problems(tmp_path, _doc(*moves, **kw))
    assert len(problems) == 1, problems
    assert f"cam-moving.yaml: lifecycle.{words}" in problems[0]
    assert "(line " in problems[0]


def test_an_unquoted_on_key_is_named_for_what_yaml_made_of_it(tmp_path: Path) -> None:
    folder = tmp_path / "reg"
    folder.mkdir()
    text = yaml.safe_dump(_doc(), sort_keys=False).replace(
        "  decommissioned: null\n",
        "  decommissioned: null\n  relocations:\n  - on: 2026-07-10\n    location: {area: Depot, mobility: fixed}\n",
    )
    (folder / "cam-moving.yaml").write_text(text)
    problems = [str(p) for p in validate_registry(folder)]
    assert any("relocations[0].True: expected a field name, not true or false (YAML reads an unquoted on" in p
               for p in problems), problems


def test_a_placeholder_address_in_a_relocation_is_a_warning(tmp_path: Path) -> None:
    move = {**MOVE, "location": {"lat": 0, "lon": 0, "mobility": "fixed", "address": "TBD"}}
    assert _problems(tmp_path, _doc(move)) == []
    fields = [p.field for p in registry_warnings(load_registry(tmp_path / "reg"))]
    assert fields == ["lifecycle.relocations[0].location.lat", "lifecycle.relocations[0].location.address"]


# --- the audit ------------------------------------------------------------------------------------------


def _moved(dep: str, at, details: str = "moved to the depot") -> dict:
    return {"deployment_id": dep, "action": "relocated", "at": at, "details": details}


def test_the_audit_finds_the_undeclared_relocation_and_not_the_declared_one(tmp_path: Path) -> None:
    s = settings_for(tmp_path, [_doc(MOVE)])
    # 23:30 local on 2026-07-10 is 03:30 UTC on the 11th: the declared day is the local one.
    publish(s, "lifecycle", [_moved("cam-moving", local("2026-07-10", 23.5)),
                             _moved("cam-moving", local("2026-07-20", 9), "new pole")])
    result = run_audit(s, AuditOptions(as_of=local("2026-07-25")))
    found = [f for f in result.finding_dicts() if f["kind"] == "undeclared_relocation"]
    assert len(found) == 1, found
    [f] = found
    assert (f["severity"], f["deployment_id"], f["data_class"]) == ("medium", "cam-moving", None)
    assert (f["period_start"], f["period_end"]) == ("2026-07-20T04:00:00Z", "2026-07-21T04:00:00Z")
    assert f["numbers"]["relocated_on"] == "2026-07-20"
    assert f["numbers"]["declared_relocations"] == ["2026-07-10"]
    assert f["numbers"]["details"] == ["new pole"] and len(f["evidence"]) == 1


def test_a_declared_relocation_with_no_event_is_no_finding(tmp_path: Path) -> None:
    s = settings_for(tmp_path, [_doc(MOVE)])
    publish(s, "lifecycle", [{"deployment_id": "cam-moving", "action": "firmware_changed", "at": local("2026-07-02"),
                              "details": "update"}])
    result = run_audit(s, AuditOptions(as_of=local("2026-07-25")))
    assert "undeclared_relocation" not in {f["kind"] for f in result.finding_dicts()}


def test_a_scoped_audit_reports_only_its_deployments_moves(tmp_path: Path) -> None:
    other = deployment("cam-other", {"video": "P30D"})
    s = settings_for(tmp_path, [_doc(), other])
    publish(s, "lifecycle", [_moved("cam-moving", local("2026-07-20", 9)), _moved("cam-other", local("2026-07-20", 9))])
    result = run_audit(s, AuditOptions(as_of=local("2026-07-25"), deployment="cam-other"))
    assert [f["deployment_id"] for f in result.finding_dicts() if f["kind"] == "undeclared_relocation"] == [
        "cam-other"]


# --- the log, the page and the exports ----------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path, device_registry: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SENSORLOG_NOW", "2026-07-05")
    landing = tmp_path / "landing"
    landing.mkdir()
    moved = make_event("lifecycle", 7, action="relocated", at="2026-07-03T15:00:00Z", details="moved to the kiosk")
    (landing / "july.ndjson").write_bytes(ndjson([make_event("collection", 0), moved]))
    return Settings.from_env({
        "SENSORLOG_HOME": str(tmp_path / "home"),
        "SENSORLOG_LANDING": str(landing),
        "SENSORLOG_REGISTRY": str(device_registry),
    })


def _relocate(s: Settings, move: dict) -> None:
    path = Path(s.registry) / f"{DEPLOYMENT}.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["lifecycle"].setdefault("relocations", []).append(move)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_a_relocation_added_to_a_record_is_logged_verified_and_then_declared(
    home: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not flow.run(home)["failed"]
    as_of = audit.parse_as_of("2026-07-05", home.timezone)
    before = audit.run_audit(home, audit.AuditOptions(as_of=as_of)).finding_dicts()
    assert [f["numbers"]["relocated_on"] for f in before if f["kind"] == "undeclared_relocation"] == ["2026-07-03"]

    _relocate(home, {"moved_on": "2026-07-03", "location": {"lat": 35.2271, "lon": -80.8431, "mobility": "fixed",
                                                           "address": "Plaza kiosk"}})
    monkeypatch.setenv("SENSORLOG_NOW", "2026-07-06")
    totals = flow.run(home)
    assert not totals["failed"] and totals["declarations"] == 1
    rows = declarations.read_rows(home.published)
    assert [r["change"] for r in rows] == ["first", "amended"] and rows[1]["changed_fields"] == "lifecycle"
    assert verify_log(home.log, home.published, home.manifests).ok

    after = audit.run_audit(home, audit.AuditOptions(as_of=audit.parse_as_of("2026-07-06", home.timezone)))
    assert after.declarations == "log"
    assert "undeclared_relocation" not in {f["kind"] for f in after.finding_dicts()}

    site = tmp_path / "site"
    build_portal(home, str(site), base_url="https://data.example.org/")
    page = (site / "deployments" / f"{DEPLOYMENT}.html").read_text()
    summary = page[page.index('id="summary-heading"'):page.index('id="card-heading"')]
    assert "Plaza kiosk · 35.2271, -80.8431 · fixed" in summary  # where it is now
    assert "Moved" in summary and '<time datetime="2026-07-03">' in summary
    history = summary[summary.index('class="moves"'):]
    assert history.index(load_registry(home.registry)[DEPLOYMENT].commissioned.isoformat()) < history.index(
        "2026-07-03")
    assert "moved to the kiosk" in page  # the logged event, in the lifecycle table


def test_the_index_map_and_exports_use_the_current_place_and_carry_the_history(tmp_path: Path) -> None:
    assert _problems(tmp_path, _doc(MOVE)) == []
    registry = load_registry(tmp_path / "reg")
    [row] = registry_table(registry).to_pylist()
    assert (row["latitude"], row["longitude"], row["address"]) == (35.21, -80.84, "200 Market Street")
    assert row["relocations"] == ["2026-01-01: 35.2000, -80.8000 · fixed",
                                  "2026-07-10: 200 Market Street · 35.2100, -80.8400 · fixed"]
    assert registry.bbox() == (-80.84, 35.21, -80.84, 35.21)
    raw = dict(registry["cam-moving"].raw)
    assert raw["lifecycle"]["relocations"][0]["moved_on"] == "2026-07-10"  # the JSON export is the record
    buffer = io.StringIO()
    csv.writer(buffer).writerow(row["relocations"])
    assert "200 Market Street" in buffer.getvalue()
