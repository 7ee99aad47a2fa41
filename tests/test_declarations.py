"""What the city declared is in the log: every registry version a leaf, the audit judged against the
logged declarations, a backdated edit a finding, and all of it recomputable from the published site.

Each test runs the real publisher (``flow.run``) on a registry of one deployment (the sample city's
plaza cameras: video kept P30D; the police may access it as detectives) with the clock set by
``SENSORLOG_NOW``, and edits the registry between runs the way an operator would.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import rfc8785
import yaml
from conftest import DEPLOYMENT, make_event, ndjson
from hypothesis import given
from hypothesis import strategies as st
from outside import run

from pipelines import audit, flow, publish, storage
from pipelines.config import Settings
from pipelines.log import export
from pipelines.log.verify import verify_log
from pipelines.registry import check_deployment, declarations, from_checked, load_registry
from pipelines.registry.declarations import Declared, retroactive_span

pytestmark = pytest.mark.integration

RPD = "Riverton Police Department"


@pytest.fixture
def home(tmp_path: Path, device_registry: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SENSORLOG_NOW", "2026-07-05")
    landing = tmp_path / "landing"
    landing.mkdir()
    events = [make_event("collection", 0), make_event("access", 1)]
    (landing / "july.ndjson").write_bytes(ndjson(events))
    return Settings.from_env({
        "SENSORLOG_HOME": str(tmp_path / "home"),
        "SENSORLOG_LANDING": str(landing),
        "SENSORLOG_REGISTRY": str(device_registry),
    })


def edit(s: Settings, change) -> None:
    path = Path(s.registry) / f"{DEPLOYMENT}.yaml"
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def publish_at(s: Settings, day: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("SENSORLOG_NOW", day)
    totals = flow.run(s)
    assert not totals["failed"], totals
    return totals


def rows(s: Settings) -> list[dict]:
    return declarations.read_rows(s.published)


def findings(s: Settings, as_of: str, kind: str | None = None, **kw) -> list[dict]:
    result = audit.run_audit(s, audit.AuditOptions(as_of=audit.parse_as_of(as_of, s.timezone), **kw))
    return [f for f in result.finding_dicts() if kind is None or f["kind"] == kind]


def retention_period(period: str):
    def change(doc: dict) -> None:
        doc["retention"][0]["period"] = period
    return change


def test_first_publish_logs_the_whole_registry_before_the_events(home: Settings) -> None:
    totals = flow.run(home)
    assert totals["declarations"] == 1 and totals["published"] == 2
    (row,) = rows(home)
    assert (row["event_id"], row["sequence"], row["change"]) == (f"{DEPLOYMENT}@1", 1, "first")
    assert row["previous_leaf"] is None
    # The record is the validated document, canonical: RFC 8785 of the YAML as parsed (dates as text).
    registry = load_registry(home.registry)
    assert row["record"].encode() == rfc8785.dumps(dict(registry[DEPLOYMENT].raw))
    assert json.loads(row["record"])["retention"] == [{"data_class": "video", "period": "P30D"}]
    events = [r for t in ("collection", "access") for r in pq.read_table(storage.list_files(
        storage.join(home.published, f"event_type={t}"), (".parquet",))[0]).to_pylist()]
    assert row["leaf_index"] < min(e["leaf_index"] for e in events)
    assert verify_log(home.log, home.published, home.manifests).ok


def test_an_unchanged_or_reformatted_registry_logs_nothing(home: Settings, monkeypatch) -> None:
    flow.run(home)
    path = Path(home.registry) / f"{DEPLOYMENT}.yaml"
    path.write_text("# reviewed by the clerk\n" + path.read_text().replace("\n", "\n\n", 3))
    assert publish_at(home, "2026-07-09", monkeypatch)["declarations"] == 0
    assert len(rows(home)) == 1


def test_a_backdated_retention_edit_is_logged_as_retroactive_and_does_not_erase_the_finding(
    home: Settings, monkeypatch
) -> None:
    # Video collected on 1 July, never deleted: under P30D it is overdue by mid-August.
    flow.run(home)
    assert findings(home, "2026-08-15", "retained_past_policy")
    # The city now "declares" 90 days, as if it had always been so, and re-runs.
    edit(home, retention_period("P90D"))
    assert publish_at(home, "2026-08-15", monkeypatch)["declarations"] == 1
    first, second = rows(home)
    assert (second["sequence"], second["change"], second["changed_fields"]) == (2, "retroactive", "retention")
    assert (second["previous_leaf"], second["previous_sha256"]) == (first["leaf_index"], first["record_sha256"])

    (retro,) = findings(home, "2026-08-15", "retroactive_policy_change")
    assert retro["severity"] == "high"
    assert retro["evidence"] == [
        {"source": declarations.SOURCE, "id": f"{DEPLOYMENT}@1"},
        {"source": declarations.SOURCE, "id": f"{DEPLOYMENT}@2"},
    ]
    # The days it rewrote: from commissioning (2023-03-06) to the day before it was logged.
    assert (retro["period_start"], retro["period_end"]) == ("2023-03-06T05:00:00Z", "2026-08-15T04:00:00Z")
    assert (retro["numbers"]["previous_leaf"], retro["numbers"]["leaf"]) == (first["leaf_index"], second["leaf_index"])
    # 1 July is still judged by the 30 days declared then; judged by the folder alone it would vanish.
    (kept,) = findings(home, "2026-08-15", "retained_past_policy")
    assert kept["numbers"]["declared_period"] == "P30D"
    folder = audit.run_audit(home, audit.AuditOptions(as_of=audit.parse_as_of("2026-08-15", home.timezone)),
                             registry=load_registry(home.registry))
    assert not [f for f in folder.finding_dicts() if f["kind"] == "retained_past_policy"]


def test_a_policy_declared_ahead_of_time_is_an_amendment_and_judges_from_its_date(home: Settings, monkeypatch) -> None:
    flow.run(home)

    def next_version(doc: dict) -> None:
        doc["policy_history"] = [{
            "version": 1, "effective_from": doc["policy_effective_from"],
            "retention": doc["retention"], "access": doc["access"]["grants"],
        }]
        doc["policy_version"], doc["policy_effective_from"] = 2, "2026-07-20"
        doc["retention"] = [{"data_class": "video", "period": "P5D"}]

    edit(home, next_version)
    publish_at(home, "2026-07-10", monkeypatch)
    assert rows(home)[-1]["change"] == "amended"
    assert not findings(home, "2026-08-15", "retroactive_policy_change")
    declared = declarations.load_declared(home.published)
    assert declared.policy_at(DEPLOYMENT, date(2026, 7, 19)).rule_for("video").period == "P30D"
    assert declared.policy_at(DEPLOYMENT, date(2026, 7, 20)).rule_for("video").period == "P5D"


def test_widening_access_after_an_undeclared_access_is_retroactive_and_the_access_stays_a_finding(
    home: Settings, monkeypatch
) -> None:
    flow.run(home)  # the police accessed video on 2 July as "investigator": only "detective" is granted
    assert findings(home, "2026-07-10", "undeclared_access")

    def grant(doc: dict) -> None:
        doc["access"]["grants"].append({"organisation": RPD, "roles": ["investigator"], "purpose": "Any case"})

    edit(home, grant)
    publish_at(home, "2026-07-10", monkeypatch)
    assert rows(home)[-1]["change"] == "retroactive"
    assert findings(home, "2026-07-10", "undeclared_access")
    assert findings(home, "2026-07-10", "retroactive_policy_change")


def test_a_crash_before_the_manifest_is_finished_with_the_same_leaves(home: Settings, monkeypatch) -> None:
    flow.run(home)
    edit(home, retention_period("P31D"))
    monkeypatch.setenv("SENSORLOG_NOW", "2026-07-09")
    real = storage.write_bytes

    def crash(uri: str, data: bytes, *a, **k) -> None:
        if uri.startswith(home.manifests):
            raise OSError("power cut")
        real(uri, data, *a, **k)

    monkeypatch.setattr(publish.storage, "write_bytes", crash)
    with pytest.raises(OSError):
        publish.commit_declarations(home)
    monkeypatch.setattr(publish.storage, "write_bytes", real)
    # The next run, a day later, finishes the batch it began (same rows, same time), then has nothing new.
    publish_at(home, "2026-07-10", monkeypatch)
    logged = rows(home)
    assert [r["sequence"] for r in logged] == [1, 2]
    assert logged[1]["event_time"].date() == date(2026, 7, 9)
    assert verify_log(home.log, home.published, home.manifests).ok


def test_a_record_too_large_for_one_log_entry_is_a_registry_problem(device_registry: Path) -> None:
    path = device_registry / f"{DEPLOYMENT}.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["access"]["grants"] = [
        {"organisation": f"Agency number {n}", "roles": ["analyst"], "purpose": "Regional information sharing"}
        for n in range(900)
    ]
    problems = check_deployment(json.loads(json.dumps(doc, default=str)), "big.yaml", DEPLOYMENT)
    assert any("canonical JSON" in p.expected for p in problems), problems


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run(["sensorlog", *args], cwd, SENSORLOG_NOW="2026-08-15")


def test_the_published_site_alone_gives_the_operators_findings_and_verify_catches_an_edited_declaration(
    home: Settings, tmp_path: Path, monkeypatch
) -> None:
    flow.run(home)
    edit(home, retention_period("P90D"))
    publish_at(home, "2026-08-15", monkeypatch)
    operator = audit.run_audit(home)  # as of today, 15 August, from the operator's home
    site = tmp_path / "site"
    export.export_to(home, str(site), with_data=True)

    out = cli("audit", "--log", "log", "--data", "data", "--format", "json", cwd=site)
    assert out.returncode == 0, out.stderr
    public = json.loads(out.stdout)
    assert public["declarations"] == "log" and public["as_of"] == audit.iso(operator.as_of)
    assert public["findings"] == json.loads(operator.to_json())["findings"]
    assert {"retroactive_policy_change", "retained_past_policy"} <= {f["kind"] for f in public["findings"]}
    assert cli("verify", "--log", "log", "--data", "data", cwd=site).returncode == 0

    # Someone edits the first, published declaration back to 90 days, keeping its hashes.
    parts = sorted((site / "data" / "event_type=declaration").rglob("*.parquet"))
    first = min(parts, key=lambda p: pq.read_table(p).column("leaf_index")[0].as_py())
    table = pq.read_table(first)
    records = table.column("record").to_pylist()
    records[0] = records[0].replace('"P30D"', '"P90D"')
    pq.write_table(table.set_column(table.schema.get_field_index("record"), "record", pa.array(records)), first)
    tampered = cli("verify", "--log", "log", "--data", "data", cwd=site)
    assert tampered.returncode != 0
    assert "declaration" in tampered.stdout + tampered.stderr
    refused = cli("audit", "--log", "log", "--data", "data", cwd=site)
    assert refused.returncode == 2 and "record_sha256" in refused.stderr


def test_the_site_audit_needs_declarations(home: Settings, tmp_path: Path) -> None:
    (tmp_path / "log").mkdir()
    (tmp_path / "data").mkdir()
    out = cli("audit", "--log", "log", "--data", "data", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert cli("audit", "--log", "log", cwd=tmp_path).returncode == 2


# -- the rule, as a property ------------------------------------------------------------------------

DAYS = st.integers(min_value=0, max_value=60)
BASE_DAY = date(2026, 1, 1)


def _doc(registry: Path, versions: list[tuple[int, str]]) -> dict:
    doc = yaml.safe_load((registry / f"{DEPLOYMENT}.yaml").read_text())
    doc = json.loads(json.dumps(doc, default=str))
    doc["lifecycle"]["commissioned"] = BASE_DAY.isoformat()
    grants = doc["access"]["grants"]
    dated = [((BASE_DAY + timedelta(days=d)).isoformat(), p) for d, p in sorted(versions)]
    dated = list(dict(dated).items())  # one version per day
    doc["policy_history"] = [
        {"version": n + 1, "effective_from": day, "retention": [{"data_class": "video", "period": p}], "access": grants}
        for n, (day, p) in enumerate(dated[:-1])
    ]
    doc["policy_version"], doc["policy_effective_from"] = len(dated), dated[-1][0]
    doc["retention"] = [{"data_class": "video", "period": dated[-1][1]}]
    if not doc["policy_history"]:
        del doc["policy_history"]
    assert not check_deployment(doc, "generated", DEPLOYMENT)
    return doc


VERSIONS = st.lists(st.tuples(DAYS, st.sampled_from(["P7D", "P30D"])), min_size=1, max_size=4)


@given(before=VERSIONS, after=VERSIONS, logged=DAYS)
def test_retroactive_exactly_when_a_past_day_changes_terms(tmp_path_factory, before, after, logged) -> None:
    registry = Path(__file__).resolve().parent.parent / "registry"
    source = (registry / "cctv-city-hall-plaza.yaml").read_text().replace("cctv-city-hall-plaza", DEPLOYMENT)
    folder = tmp_path_factory.getbasetemp() / "retro-property"
    folder.mkdir(exist_ok=True)
    (folder / f"{DEPLOYMENT}.yaml").write_text(source)
    old = from_checked(_doc(folder, before), "old", "America/New_York")
    new = from_checked(_doc(folder, after), "new", "America/New_York")
    day = BASE_DAY + timedelta(days=logged)
    changed = [BASE_DAY + timedelta(days=n) for n in range(logged)
               if old.policy_at(BASE_DAY + timedelta(days=n)).rule_for("video") != new.policy_at(
                   BASE_DAY + timedelta(days=n)).rule_for("video")]
    span = retroactive_span(old, new, day)
    assert span == ((changed[0], changed[-1]) if changed else None)

    # Judged: the earlier version before the day the new one was logged, the new one from that day.
    first = declarations.Declaration(old, datetime(2025, 12, 1, tzinfo=UTC), 1, "a")
    second = declarations.Declaration(new, datetime(day.year, day.month, day.day, 17, tzinfo=UTC), 2, "b")
    declared = Declared({DEPLOYMENT: (first, second)}, True)
    for n in range(0, 70, 3):
        d = BASE_DAY + timedelta(days=n)
        expected = (old if d < day else new).policy_at(d)
        assert declared.policy_at(DEPLOYMENT, d) == expected
        (segment,) = [p for p, lo, hi in declared.segments(DEPLOYMENT) if lo <= d < hi]
        assert segment == expected


def test_a_clock_set_back_cannot_date_a_version_before_the_last_one(home: Settings, monkeypatch) -> None:
    publish_at(home, "2026-08-15", monkeypatch)
    edit(home, retention_period("P90D"))
    publish_at(home, "2026-07-01", monkeypatch)  # the publisher's clock, set back six weeks
    first, second = rows(home)
    assert second["event_time"] == first["event_time"]
    (retro,) = findings(home, "2026-08-16", "retroactive_policy_change")
    assert retro["period_end"] == "2026-08-15T04:00:00Z"  # everything before 15 August was rewritten


def test_a_scoped_audit_reports_only_its_deployments_retroactive_changes(home: Settings, monkeypatch) -> None:
    other = "cctv-central-library-entrance"
    (Path(home.registry) / f"{other}.yaml").write_text(
        (Path(__file__).resolve().parent.parent / "registry" / f"{other}.yaml").read_text())
    flow.run(home)
    edit(home, retention_period("P90D"))
    publish_at(home, "2026-08-15", monkeypatch)
    assert findings(home, "2026-08-15", "retroactive_policy_change", deployment=DEPLOYMENT)
    assert not findings(home, "2026-08-15", "retroactive_policy_change", deployment=other)
