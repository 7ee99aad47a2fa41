"""Registry vocabulary for what real deployments declare (issue 16): retention in words that state no
period, access grants by count or without roles, device counts, data sources, any number of data
classes, per-field provenance, and warnings for implausible positions. The YAML fixtures are written
here as text, so the lines messages name are known."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from audit_kit import access, deployment, hourly, local, publish, settings_for
from typer.testing import CliRunner

from pipelines.audit import AuditOptions
from pipelines.audit.run import run_audit
from pipelines.portal.dtpr_card import dtpr_card, grant_line, render_retention_text
from pipelines.portal.registry_export import registry_table
from pipelines.registry import (
    ACCESS_DECLARED,
    ACCESS_UNDECLARED,
    ACCESS_UNVERIFIABLE,
    declarations,
    load_registry,
    registry_warnings,
    validate_registry,
)

pytestmark = pytest.mark.integration

# An ALPR deployment in the shape a vendor transparency portal declares it (all names invented).
VENDOR_SHAPED = """\
id: alpr-vendor-shaped
name: Vendor-shaped plate readers
kind: alpr
vendor: Example Plate Systems
accountable:
  organisation: Example Town Police
  role: operator
  dtpr: [accountable__organization]
purposes: [purpose__enforcement]
technologies: [tech__identifiable_image]
data_types: [data__personal, data__pixel_based_image]
data_classes:
  - {slug: plate_reads, dtpr: data__personal}
  - {slug: images, dtpr: data__pixel_based_image}
  - {slug: hotlist_hits, dtpr: data__personal}
  - {slug: searches, dtpr: data__personal}
  - {slug: search_audit_log, dtpr: data__personal, description: Who searched for what and why}
retention:
  - data_class: plate_reads
    period: unknown
    stated: "-Infinity days"
  - {data_class: images, period: unknown, stated: NA}
  - {data_class: hotlist_hits, period: P30D, stated: 30 days}
  - {data_class: searches, period: P30D}
  - {data_class: search_audit_log, period: indefinite, stated: stored indefinitely}
access:
  dtpr: [access__available_to_the_accountable_organization]
  grants:
    - organisation: Example Town Police
      roles: [investigator]
      purpose: Investigations
    - organisation: Neighbouring County Sheriff
    - organisations: 988
      description: external organisations
      stated: 988 external organisations
    - stated: NA
devices:
  count: 12
  description: fixed cameras
data_sources:
  - {name: State stolen-vehicle list, description: hotlist}
  - {count: 3, description: hotlists}
public_search_audit: true
storage:
  dtpr: [storage__stored_on_3rd_party_cloud]
  location: Vendor cloud
location:
  lat: 35.2
  lon: -80.8
  mobility: fixed
  address: Main Street at First Avenue
lifecycle:
  commissioned: 2026-01-01
  decommissioned: null
legal_basis: Example Town ordinance 12
policy_links: [https://example.org/alpr]
feedback:
  email: privacy@example.org
policy_version: 1
policy_effective_from: 2026-01-01
provenance:
  fields:
    retention[0]: vendor transparency portal, 2026-06-01
    access.grants: vendor transparency portal
    devices: ordinance annual report 2025
    location: filled in by the city
"""


def write(folder: Path, text: str, stem: str = "alpr-vendor-shaped") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.yaml"
    path.write_text(text)
    return path


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.fixture
def vendor_shaped(tmp_path: Path):
    write(tmp_path / "registry", VENDOR_SHAPED)
    return load_registry(tmp_path / "registry")["alpr-vendor-shaped"]


# --- valid forms load and render with the right words ---------------------------------------------------


def test_unclear_retention_keeps_the_words_and_computes_no_deadline(vendor_shaped) -> None:
    rules = {r.data_class: r for r in vendor_shaped.current_policy.retention}
    unclear = rules["plate_reads"]
    assert (unclear.kind, unclear.stated, unclear.duration) == ("unknown", "-Infinity days", None)
    assert unclear.due(datetime(2026, 7, 1, tzinfo=UTC)) is None
    assert render_retention_text(unclear) == "Plate reads: retention not stated clearly: '-Infinity days'."
    assert render_retention_text(rules["images"]) == "Images: retention not stated clearly: 'NA'."
    # Words given beside a period are kept, and do not change what the period means.
    assert rules["hotlist_hits"].stated == "30 days" and rules["hotlist_hits"].kind == "duration"


def test_grants_are_rendered_as_declared_without_invented_names_or_roles(vendor_shaped) -> None:
    lines = [grant_line(g) for g in vendor_shaped.current_policy.access]
    assert lines == [
        "Example Town Police (investigator): Investigations",
        "Neighbouring County Sheriff (roles not stated): purpose not stated",
        "988 organisations, not named (external organisations): purpose not stated",
        "Access not stated clearly: 'NA'",
    ]
    forms = [g.form for g in vendor_shaped.current_policy.access]
    assert forms == ["named", "named", "counted", "unstated"]


def test_card_shows_counts_sources_search_audit_and_provenance(vendor_shaped) -> None:
    card = {s.category_id: s for s in dtpr_card(vendor_shaped)}
    assert "Devices: 12 fixed cameras (source: ordinance annual report 2025)" in card["tech"].extra
    assert ("Data sources consulted: State stolen-vehicle list (hotlist); 3 not named (hotlists)"
            in card["data"].extra)
    assert "Public audit of searches: published" in card["access"].extra
    assert ("988 organisations, not named (external organisations): purpose not stated"
            " (source: vendor transparency portal)") in card["access"].extra
    assert ("Plate reads: retention not stated clearly: '-Infinity days' (source: vendor transparency portal,"
            " 2026-06-01).") in card["retention"].extra
    # DTPR's "Retained {{duration}}" never claims a period the source did not state.
    names = [e[1] for e in card["retention"].elements]
    assert "Retained (period not stated clearly)" in names
    assert "Search audit log: Who searched for what and why" in card["data"].extra
    assert vendor_shaped.source_of("location.lat") == "filled in by the city"
    from pipelines.portal.pages import _location

    assert _location(vendor_shaped).endswith("(source: filled in by the city)")  # the page's summary line


def test_more_than_three_data_classes_are_accepted(vendor_shaped) -> None:
    assert len(vendor_shaped.data_classes) == 5
    assert "search_audit_log" in vendor_shaped.data_classes


def test_export_row_carries_the_new_fields(vendor_shaped) -> None:
    from pipelines.registry import Registry

    [row] = registry_table(Registry({vendor_shaped.id: vendor_shaped})).to_pylist()
    assert "plate_reads=unknown: '-Infinity days'" in row["retention"]
    assert "988 organisations, not named (external organisations): purpose not stated" in row["access_grants"]
    assert (row["devices"], row["devices_description"], row["public_search_audit"]) == (12, "fixed cameras", True)
    assert row["data_sources"] == ["State stolen-vehicle list (hotlist)", "3 not named (hotlists)"]


def test_a_record_in_the_new_vocabulary_logs_and_reads_back(vendor_shaped) -> None:
    from pipelines.registry import Registry

    registry = Registry({vendor_shaped.id: vendor_shaped})
    [row] = declarations.next_rows(registry, None, datetime(2026, 7, 1, tzinfo=UTC))
    back = declarations.declared_from_rows([{**row, "leaf_index": 0}])
    again = back.histories[vendor_shaped.id][0].deployment
    assert again.current_policy == vendor_shaped.current_policy
    assert again.current_policy.retention[0].stated == "-Infinity days"
    assert (again.devices, again.data_sources) == (vendor_shaped.devices, vendor_shaped.data_sources)
    assert declarations.retroactive_span(vendor_shaped, again, datetime(2026, 7, 1).date()) is None


# --- invalid forms: one message each, naming file, field and line -----------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "field", "needle", "words"),
    [
        ('    stated: "-Infinity days"\n', "", "retention[0].stated", "  - data_class: plate_reads",
         "the source's own words"),
        ("    - organisation: Neighbouring County Sheriff\n",
         "    - {organisation: Neighbouring County Sheriff, organisations: 4}\n",
         "access.grants[1]", "organisations: 4", "not both organisation and organisations"),
        ("    - stated: NA\n", "    - {purpose: Anything}\n", "access.grants[3]", "purpose: Anything",
         "a grant naming one organisation"),
        ("  - {count: 3, description: hotlists}\n", "  - {count: 3, name: Other list}\n", "data_sources[1]",
         "name: Other list", "name or count, not both"),
        ("    devices: ordinance annual report 2025\n", "    devcies: ordinance annual report 2025\n",
         "provenance.fields.devcies", "devcies:", "a field this record has"),
        ("    devices: ordinance annual report 2025\n", "    data_sources[7]: ordinance annual report 2025\n",
         "provenance.fields.data_sources[7]", "data_sources[7]:", "nothing at 'data_sources[7]'"),
        ("    devices: ordinance annual report 2025\n", '    "Bad Key!": ordinance annual report 2025\n',
         "provenance.fields", "fields:", "field paths written like retention[0]"),
        ("  count: 12\n", "  count: twelve\n", "devices.count", "count: twelve", "a whole number"),
        ("    period: unknown\n", "    period: -Infinity days\n", "retention[0].period", "period: -Infinity",
         "'unknown' with the source's own words"),
    ],
)
def test_invalid_forms_name_file_field_and_line(tmp_path: Path, old: str, new: str, field: str, needle: str,
                                                words: str) -> None:
    assert old in VENDOR_SHAPED
    text = VENDOR_SHAPED.replace(old, new, 1)
    path = write(tmp_path, text)
    [problem] = validate_registry(tmp_path)
    line = line_of(text, needle)
    assert (problem.file, problem.field, problem.line) == (str(path), field, line), str(problem)
    assert words in problem.expected
    assert str(problem).endswith(f"(line {line})")


def test_purposes_keep_the_dtpr_limit_of_three(tmp_path: Path) -> None:
    four = "purposes: [purpose__enforcement, purpose__mobility, purpose__health, purpose__inform]"
    text = VENDOR_SHAPED.replace("purposes: [purpose__enforcement]", four)
    write(tmp_path, text)
    [problem] = validate_registry(tmp_path)
    assert (problem.field, problem.expected, problem.line) == ("purposes", "at most 3 items (got 4)",
                                                               line_of(text, "purposes:"))


def test_the_command_line_prints_every_problem_with_its_line_and_no_traceback(tmp_path: Path) -> None:
    from pipelines.cli import app

    text = VENDOR_SHAPED.replace("  count: 12\n", "  count: -1\n")
    write(tmp_path, text)
    out = CliRunner().invoke(app, ["registry", str(tmp_path)])
    assert out.exit_code == 2
    line = line_of(text, "count: -1")
    assert f"devices.count: expected a number >= 0 (got -1) (line {line})" in out.output.replace("\n", "")
    assert "Traceback" not in out.output


# --- warnings: implausible positions -------------------------------------------------------------------


def test_warnings_for_zero_position_placeholder_address_and_outside_the_city(tmp_path: Path, monkeypatch) -> None:
    from pipelines.cli import app

    zero = VENDOR_SHAPED.replace("  lat: 35.2\n  lon: -80.8\n", "  lat: 0\n  lon: 0\n").replace(
        "address: Main Street at First Avenue", "address: TBD")
    write(tmp_path, zero)
    elsewhere = VENDOR_SHAPED.replace("id: alpr-vendor-shaped", "id: alpr-elsewhere").replace(
        "  lat: 35.2\n", "  lat: 42.36\n").replace("  lon: -80.8\n", "  lon: -71.06\n")
    write(tmp_path, elsewhere, "alpr-elsewhere")
    registry = load_registry(tmp_path)  # warnings never stop a registry from loading
    found = {(Path(w.file).stem, w.field, w.line) for w in registry_warnings(registry, (-81.0, 35.0, -80.6, 35.4))}
    assert found == {
        ("alpr-elsewhere", "location.lat", line_of(elsewhere, "lat: 42.36")),
        ("alpr-vendor-shaped", "location.lat", line_of(zero, "lat: 0")),
        ("alpr-vendor-shaped", "location.address", line_of(zero, "address: TBD")),
    }
    assert {w.field for w in registry_warnings(registry)} == {"location.lat", "location.address"}

    monkeypatch.setenv("SENSORLOG_CITY_BBOX", "-81.0,35.0,-80.6,35.4")
    out = CliRunner().invoke(app, ["registry", str(tmp_path)])
    assert out.exit_code == 0, out.output
    text = out.output.replace("\n", "")
    assert f"warning: {tmp_path / 'alpr-vendor-shaped.yaml'}: location.lat: expected a real position" in text
    assert f"(line {line_of(zero, 'address: TBD')})" in text
    assert "inside the city's bounding box [-81, 35, -80.6, 35.4]" in text
    assert "2 deployments" in text and "3 warning(s)" in text

    monkeypatch.setenv("SENSORLOG_CITY_BBOX", "north,35,-80,36")
    bad = CliRunner().invoke(app, ["registry", str(tmp_path)])
    assert bad.exit_code == 2 and "SENSORLOG_CITY_BBOX" in bad.output and "Traceback" not in bad.output


def test_the_sample_registry_has_no_warnings() -> None:
    from pipelines.config import PROJECT_DIR

    assert registry_warnings(load_registry(PROJECT_DIR / "registry")) == []


# --- the audit ------------------------------------------------------------------------------------------


def _unclear_city(tmp_path: Path, grants: list[dict]):
    doc = deployment("alpr-unclear", {"plate_reads": "unknown", "counts": "P1D"}, grants=grants)
    doc["retention"][0]["stated"] = "-Infinity days"
    doc["provenance"] = {"fields": {"retention[0]": "vendor transparency portal"}}
    s = settings_for(tmp_path, [doc])
    publish(s, "collection", hourly("alpr-unclear", "plate_reads", "2026-07-01"))
    return s


def test_retention_unclear_appears_in_sensorlog_audit_with_its_evidence(tmp_path: Path, monkeypatch) -> None:
    from pipelines.cli import app

    s = _unclear_city(tmp_path, [{"organisation": "Riverton Public Library", "roles": ["it_staff"]}])
    monkeypatch.setenv("SENSORLOG_HOME", s.home)
    monkeypatch.setenv("SENSORLOG_REGISTRY", s.registry)
    out = CliRunner().invoke(app, ["audit", "--format", "json", "--as-of", "2026-07-03", "--no-report"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    [f] = doc["findings"]
    assert (f["kind"], f["severity"], f["data_class"]) == ("retention_unclear", "medium", "plate_reads")
    assert (f["period_start"], f["period_end"]) == ("2026-07-01T04:00:00Z", "2026-07-03T04:00:00Z")
    numbers = f["numbers"]
    assert numbers["stated"] == "-Infinity days" and numbers["provenance"] == "vendor transparency portal"
    assert numbers["declared_in"] == "alpr-unclear.yaml" and numbers["records_retained"] == 240
    assert f["evidence"][0]["id"] == "col-alpr-unclear-plate_reads-20260701T04"
    table = CliRunner().invoke(app, ["audit", "--as-of", "2026-07-03", "--no-report"])
    assert "retention_unclear" in table.output and "-Infinity days" in table.output

    result = run_audit(s, AuditOptions(as_of=local("2026-07-03")))
    statuses = {r["status"] for r in result.ledger.to_pylist() if r["data_class"] == "plate_reads"}
    assert statuses == {"unknown"}  # no deadline was computed from the words
    assert {r["next_due"] for r in result.ledger.to_pylist() if r["data_class"] == "plate_reads"} == {None}


@pytest.mark.parametrize(
    ("grants", "kinds"),
    [
        # A bare count cannot show that an organisation it does not name is among those counted.
        ([{"organisation": "Riverton Public Library", "roles": ["it_staff"]}, {"organisations": 988}],
         {"access_unverifiable"}),
        ([{"organisation": "Riverton Public Library", "roles": ["it_staff"]}, {"stated": "NA"}],
         {"access_unverifiable"}),
        # Named grants only: an organisation none of them names is undeclared, as before.
        ([{"organisation": "Riverton Public Library", "roles": ["it_staff"]}], {"undeclared_access"}),
        # Named without roles: that organisation is declared in any role.
        ([{"organisation": "Elsewhere PD"}], set()),
    ],
)
def test_access_checks_with_counted_and_roleless_grants(tmp_path: Path, grants: list[dict], kinds: set) -> None:
    s = _unclear_city(tmp_path, grants)
    publish(s, "access", [access("alpr-unclear", "plate_reads", local("2026-07-01", 12), "Elsewhere PD", "analyst")])
    result = run_audit(s, AuditOptions(as_of=local("2026-07-03")))
    found = {f["kind"] for f in result.finding_dicts()} - {"retention_unclear"}
    assert found == kinds
    for f in result.finding_dicts():
        if f["kind"] == "access_unverifiable":
            assert f["numbers"]["organisation"] == "Elsewhere PD" and len(f["evidence"]) == 1


def test_judge_words() -> None:
    from datetime import date

    from pipelines.registry import AccessGrant, PolicyVersion

    named = AccessGrant("Riverton Police", ("detective",), "cases")
    counted = AccessGrant(None, (), None, count=988)
    policy = PolicyVersion(1, date(2026, 1, 1), (), (named, counted))
    assert policy.judge("riverton police", "detective") == ACCESS_DECLARED
    assert policy.judge("Other", "detective") == ACCESS_UNVERIFIABLE
    assert PolicyVersion(1, date(2026, 1, 1), (), (named,)).judge("Other", "x") == ACCESS_UNDECLARED


def test_a_logged_change_to_unclear_retention_logs_verifies_and_is_the_findings_evidence(
        tmp_path: Path, device_registry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml
    from conftest import DEPLOYMENT, make_event, ndjson

    from pipelines import flow
    from pipelines.config import Settings
    from pipelines.log.verify import verify_log

    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "july.ndjson").write_bytes(ndjson([make_event("collection", 0)]))
    s = Settings.from_env({"SENSORLOG_HOME": str(tmp_path / "home"), "SENSORLOG_LANDING": str(landing),
                           "SENSORLOG_REGISTRY": str(device_registry)})
    monkeypatch.setenv("SENSORLOG_NOW", "2026-07-05")
    assert not flow.run(s)["failed"]
    # The operator learns the vendor portal's words and declares them, from today on.
    path = device_registry / f"{DEPLOYMENT}.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["retention"] = [{"data_class": "video", "period": "unknown", "stated": "-Infinity days"}]
    doc["devices"] = {"count": 4, "description": "cameras"}
    doc["access"]["grants"].append({"organisations": 988, "description": "external organisations"})
    doc["policy_history"] = [{"version": doc["policy_version"], "effective_from": doc["policy_effective_from"],
                              "retention": [{"data_class": "video", "period": "P30D"}],
                              "access": doc["access"]["grants"][:-1]}]
    doc["policy_version"] += 1
    doc["policy_effective_from"] = "2026-07-06"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    monkeypatch.setenv("SENSORLOG_NOW", "2026-07-06")
    assert not flow.run(s)["failed"]

    logged = declarations.read_rows(s.published)
    assert [(r["sequence"], r["change"]) for r in logged] == [(1, "first"), (2, "amended")]
    assert "devices" in logged[1]["changed_fields"] and "retention" in logged[1]["changed_fields"]
    assert verify_log(s.log, s.published, s.manifests).ok

    result = run_audit(s, AuditOptions(as_of=local("2026-07-08")))
    [unclear] = [f for f in result.finding_dicts() if f["kind"] == "retention_unclear"]
    assert unclear["numbers"]["declared_in"] == f"{DEPLOYMENT}@2" and unclear["numbers"]["stated"] == "-Infinity days"
    assert unclear["period_start"] == "2026-07-06T04:00:00Z"  # only the days the unclear rule judges
    assert {"source": declarations.SOURCE, "id": f"{DEPLOYMENT}@2"} in unclear["evidence"]
    assert result.declarations == "log"


def test_the_sign_shows_unclear_retention_and_points_to_the_page_for_many_classes(vendor_shaped) -> None:
    import html
    import re

    from pipelines.portal.i18n import Translator
    from pipelines.portal.signs import LETTER, render_sign

    svg = render_sign(vendor_shaped, "https://example.org/d", LETTER, Translator("en"), "en")
    words = " ".join(html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg))  # lines wrap
    assert "Plate reads: retention not stated clearly: '-Infinity days'." in words
    assert "… and 1 more data class: see the web page." in words


def test_the_full_access_list_names_a_count_as_a_count(vendor_shaped) -> None:
    from pipelines.portal.dtpr_card import grant_who

    who = [grant_who(g) for g in vendor_shaped.current_policy.access]
    assert who == ["Example Town Police", "Neighbouring County Sheriff",
                   "988 organisations, not named (external organisations)", "Access not stated clearly: 'NA'"]
