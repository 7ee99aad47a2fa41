"""Metadata only: personal data typed into a text field is found, quarantined and never made public.

Patterns first (what each kind catches, and the ordinary text it must leave alone), then the schema
declarations every text field carries, then the sample city through the checks (no false positive),
then a landed file with planted personal data through the whole pipeline, audit and portal.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import make_event, ndjson
from jsonschema import Draft202012Validator

from pipelines import flow, storage
from pipelines.config import PROJECT_DIR, Settings
from pipelines.dev import synthetic
from pipelines.ingest import privacy
from pipelines.registry import deployment_schema, validate_registry
from pipelines.schemas import EVENT_TABLES, load_json_schema, table_for_type

pytestmark = pytest.mark.integration

ALL = privacy.KINDS

# -- patterns --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("ask jane.doe@example.com", "email"),
        ("J_Smith+cases@police.riverton.example", "email"),
        ("call 617-555-0199 after 5", "phone"),
        ("(617) 555-0199", "phone"),
        ("617.555.0199", "phone"),
        ("6175550199", "phone"),
        ("+16175550199", "phone"),  # E.164
        ("+1-704-555-0142", "phone"),
        ("+44 20 7946 0958", "phone"),  # international form of another country
        ("+33 1 23 45 67 89", "phone"),
        ("plate 7ABC123", "plate"),
        ("Plate number: ABC 1234", "plate"),
        ("licence plate AB12 CDE", "plate"),
        ("tag no. 4GHJ921", "plate"),
        ("reg XYZ-987 seen twice", "plate"),
        ("plate#7xyz12", "plate"),
        ("visited 42 Elm Street", "address"),
        ("12 main st", "address"),
        ("1600 Pennsylvania Avenue NW", "address"),
        ("221B Baker Street", "address"),
        ("jane\uff20example.com", "email"),  # full-width forms and no-break spaces are normalised first
        ("\uff16\uff11\uff17-555-0199", "phone"),
        ("42\u00a0Elm\u00a0Street", "address"),
    ],
)
def test_each_kind_is_caught(text, kind):
    assert privacy.find(text, ALL) == [kind]


@pytest.mark.parametrize(
    "text",
    [
        "RPD-2026-00123",  # case numbers
        "RIV-2026-48213",
        "R-2026-058",
        "case 2026-0012345",
        "2026-07-01",  # ISO dates and timestamps
        "2026-07-01T04:00:00Z",
        "2026-07-01T04:00:00.123456+00:00",
        "plate_reads",  # data-class names
        "vehicle_counts",
        "Plate reads",
        "alpr-river-road-bridge",  # deployment ids and event ids
        "col-alpr-river-road-bridge-plate_reads-20260701T04",
        "acc-alpr-harbor-boulevard-20260715-3",
        "https://feeds.northgate.example/riverton/alpr-river-road-bridge",  # vendor feed URLs
        "https://www.riverton.example/surveillance/feedback?deployment=alpr-river-road-bridge",
        "northgate-plate-systems-cloud/us-east",
        "Investigations of a specific crime or missing person",
        "Evidence disclosure in a criminal case",
        "Plate number, time, camera location and direction of travel",
        "Council resolution R-2026-058 shortened plate-read retention from 30 to 14 days.",
        "RPD ALPR use policy 7.12 as amended by Council resolution R-2026-058",
        "policy version 2 in force",
        "vendor firmware update",
        "firmware 4.2.1 tag",
        "tag 2",
        "Review of 3 incidents on Elm Street",
        "kept 14 days on Main Street",
        "35.1938 -80.8188",
    ],
)
def test_ordinary_text_is_not_flagged(text):
    assert privacy.find(text, ALL) == []


def test_a_table_check_finds_what_find_finds_and_names_the_column():
    texts = ["ok", None, "ask jane.doe@example.com", "call 617-555-0199", "RPD-2026-00123", "j\uff20x.example",
             "plate 7ABC123", "12 Main St"]
    table = pa.table({"_ord": list(range(len(texts))), "purpose": texts, "event_id": [f"e{i}" for i in range(8)],
                      "organisation": ["Riverton Police Department"] * 8})
    expected = {i: [privacy.reason("purpose", k) for k in privacy.find(t, ALL)] for i, t in enumerate(texts) if t}
    assert privacy.table_problems("access", table, "_ord") == {i: r for i, r in expected.items() if r}
    assert set(privacy.table_problems("access", table, "_ord")) == {2, 3, 5, 6, 7}
    ids = table.set_column(2, "event_id", pa.array(["a@b.example", *[f"e{i}" for i in range(7)]]))
    assert privacy.table_problems("access", ids.slice(0, 1), "_ord") == {0: ["privacy:event_id:email"]}


def test_a_class_decides_what_is_looked_for():
    assert privacy.checks_for({"x-sensorlog-class": "code"}) == ("email",)
    assert privacy.checks_for({"x-sensorlog-class": "label"}) == ("email", "phone")
    assert privacy.checks_for({"x-sensorlog-class": "free_text"}) == ("email", "phone", "plate")
    # access fields also look for street addresses; the registry's contact channels for nothing
    purpose = load_json_schema("access")["properties"]["purpose"]
    assert privacy.checks_for(purpose) == ("email", "phone", "plate", "address")
    feedback = deployment_schema()["properties"]["feedback"]["properties"]
    assert all(privacy.checks_for(spec) == () for spec in feedback.values())
    assert privacy.find("12 Main St", privacy.checks_for({"x-sensorlog-class": "free_text"})) == []


def _string_specs(spec, root, path=""):
    """Every schema node a string value can reach, with its path (local $refs resolved)."""
    if "$ref" in spec:
        target = root
        for part in spec["$ref"][2:].split("/"):
            target = target[part]
        spec = {**target, **{k: v for k, v in spec.items() if k != "$ref"}}
    types = spec.get("type")
    types = [types] if isinstance(types, str) else (types or [])
    if "string" in types:
        yield path, spec
    for name, sub in spec.get("properties", {}).items():
        yield from _string_specs(sub, root, f"{path}.{name}" if path else name)
    if isinstance(spec.get("items"), dict):
        yield from _string_specs(spec["items"], root, f"{path}[]")
    for branch in spec.get("anyOf", []):
        yield from _string_specs(branch, root, path)


def _schemas():
    named = {f"events/{name}": load_json_schema(name) for name in (*EVENT_TABLES, "cloudevent")}
    return {**named, "deployment": dict(deployment_schema())}


def test_every_text_field_declares_a_class_and_a_maximum_length():
    seen = 0
    for name, schema in _schemas().items():
        Draft202012Validator.check_schema(schema)  # the custom keywords are valid JSON Schema
        for path, spec in _string_specs(schema, schema):
            if spec.get("format") == "date-time":
                continue  # timestamps become typed columns, not text
            assert spec.get("x-sensorlog-class") in privacy.CLASSES, (name, path)
            assert isinstance(spec.get("maxLength"), int), (name, path)
            seen += 1
    assert seen > 40


def test_a_document_with_the_custom_keywords_still_validates():
    doc = yaml.safe_load((PROJECT_DIR / "registry" / "alpr-river-road-bridge.yaml").read_text())
    doc["lifecycle"] = {k: (str(v) if v else v) for k, v in doc["lifecycle"].items()}
    doc["policy_effective_from"] = str(doc["policy_effective_from"])
    for entry in doc.get("policy_history", []):
        entry["effective_from"] = str(entry["effective_from"])
    assert list(Draft202012Validator(deployment_schema()).iter_errors(doc)) == []
    event = load_json_schema("access")
    assert list(Draft202012Validator(event).iter_errors(make_event("access")["data"])) == []


# -- the sample city: no false positives -----------------------------------------------------------


def _landed_text_rows(landing: Path) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {t: [] for t in EVENT_TABLES}
    for path in sorted(p for p in landing.rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".csv":
            events = [
                {"source": r.get("source"), "id": r.get("id"), "type": r.get("type"), "data": r}
                for r in csv.DictReader(io.StringIO(text))
            ]
        else:
            events = []
            for line in text.splitlines():
                try:
                    events.append(json.loads(line))
                except ValueError:
                    continue  # the generator's malformed lines hold no text worth checking
        for event in events:
            table = table_for_type(str(event.get("type"))) if isinstance(event, dict) else None
            if table is None or not isinstance(event.get("data"), dict):
                continue
            row = {"source": event.get("source"), "event_id": event.get("id"), **event["data"]}
            rows[table.name].append({k: v for k, v in row.items() if isinstance(v, str)})
    return rows


def test_nothing_the_demo_generator_writes_is_flagged(tmp_path):
    assert validate_registry(PROJECT_DIR / "registry") == []  # the registry's text, checked by its loader
    from pipelines.registry import load_registry

    registry = load_registry(PROJECT_DIR / "registry")
    # Two weeks around the sample's policy change, with every injected anomaly.
    options = synthetic.options_for(start=date(2026, 7, 25), end=date(2026, 8, 8))
    synthetic.write_city(registry, str(tmp_path / "landing"), options)
    checked = 0
    for name, rows in _landed_text_rows(tmp_path / "landing").items():
        if name == "vendor_snapshot" and not rows:
            continue  # the demo city has no vendor portal: those rows come from the vendor-portal feed only
        assert rows, name
        columns = sorted({k for r in rows for k in r})
        table = pa.table(
            {"_ord": list(range(len(rows))), **{c: pa.array([r.get(c) for r in rows], pa.string()) for c in columns}}
        )
        assert privacy.table_problems(name, table, "_ord") == {}, name
        checked += len(rows)
    assert checked > 10_000


# -- end to end ------------------------------------------------------------------------------------

DEPLOYMENT = "alpr-river-road-bridge"
EMAIL, PHONE, PLATE, STREET = "jane.doe@example.com", "617-555-0199", "7ABC123", "42 Elm Street"
PLANTED = (EMAIL, PHONE, PHONE.replace("-", ""), PLATE, STREET)


def _access(n: int, **data: object) -> dict:
    base = {
        "deployment_id": DEPLOYMENT, "data_class": "plate_reads", "accessed_at": f"2026-07-02T1{n}:00:00Z",
        "organisation": "Riverton Police Department", "role": "detective",
        "purpose": "Investigations of a specific crime or missing person", "case_ref": "RPD-2026-00123",
    }
    return make_event("access", n, **{**base, **data})


def _lifecycle(n: int, details: str) -> dict:
    return make_event("lifecycle", n, deployment_id=DEPLOYMENT, at=f"2026-07-02T0{n}:00:00Z", details=details)


def _strings_in(root: Path) -> list[str]:
    """Every text a reader of ``root`` can see: each file's bytes, and every cell of every Parquet file."""
    out = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        out.append(path.read_bytes().decode("utf-8", errors="replace"))
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            for column in table.columns:
                out += [str(v) for v in column.to_pylist() if v is not None]
    return out


@pytest.fixture(scope="module")
def planted_home(tmp_path_factory) -> Settings:
    base = tmp_path_factory.mktemp("privacy")
    settings = Settings.from_env({
        "SENSORLOG_HOME": str(base / "home"),
        "SENSORLOG_LANDING": str(base / "landing"),
        "SENSORLOG_REGISTRY": str(PROJECT_DIR / "registry"),
    })
    events = [
        _access(0),
        _access(1, purpose=f"follow-up requested by {EMAIL}"),
        _access(2, case_ref=f"call {PHONE}"),
        _access(3, purpose=f"canvass near {STREET}"),
        _lifecycle(1, "vendor firmware update"),
        _lifecycle(2, f"misread plate {PLATE} reported"),
        make_event("collection", 0, deployment_id=DEPLOYMENT, data_class="plate_reads"),
    ]
    landing = base / "landing"
    landing.mkdir()
    (landing / "vendor.ndjson").write_bytes(ndjson(events))
    flow.run(settings)
    from pipelines.audit import AuditOptions
    from pipelines.audit.run import run_audit, write_outputs

    write_outputs(settings, run_audit(settings, AuditOptions(as_of=datetime(2026, 7, 3, tzinfo=UTC))))
    return settings


def test_events_carrying_personal_data_are_quarantined_with_privacy_reasons(planted_home):
    quarantine = [q for q in storage.list_files(planted_home.quarantine, (".parquet",)) if "/files/" not in q]
    rows = [r for q in quarantine for r in pq.read_table(q).to_pylist()]
    assert {r["event_id"]: r["reasons"] for r in rows} == {
        "access-1": ["privacy:purpose:email"],
        "access-2": ["privacy:case_ref:phone"],
        "access-3": ["privacy:purpose:address"],
        "lifecycle-2": ["privacy:details:plate"],
    }
    assert any(EMAIL in r["raw"] for r in rows)  # kept whole for the operator, in the quarantine only
    files = storage.list_files(planted_home.published, (".parquet",))
    files = [f for f in files if "event_type=declaration/" not in f]  # the registry, logged first
    published = [r for f in files for r in pq.read_table(f).to_pylist()]
    assert {r["event_id"] for r in published if "event_id" in r} == {"access-0", "lifecycle-1", "collection-0"}


def test_no_planted_string_is_published_logged_or_on_the_site(planted_home, tmp_path):
    from pipelines.portal import build_portal

    site = tmp_path / "site"
    result = build_portal(planted_home, str(site), base_url="https://data.riverton.example/sensors/")
    assert result.missing == []
    public = [Path(planted_home.published), Path(planted_home.manifests), Path(planted_home.log), site]
    texts = [t for root in public for t in _strings_in(root)]
    assert any("RPD-2026-00123" in t for t in texts)  # the clean access event is there to be found
    for planted in PLANTED:
        assert not [t[:120] for t in texts if planted.lower() in t.lower()], planted
