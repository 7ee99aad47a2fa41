"""Public files are safe to open and no string or date breaks a renderer.

CSV extracts quote formula-like text cells (and say so in their Table Schemas) while the Parquet keeps
the exact value; chart text is plain text; a window in year 1 renders in the audit report and the
portal; the registry refuses retention periods no calendar can hold.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from audit_kit import GRANT, access, deletion, deployment, hourly, publish, settings_for, write_registry

from pipelines import audit
from pipelines.audit import report as audit_report
from pipelines.audit.run import write_outputs
from pipelines.portal import build_portal
from pipelines.portal.csvsafe import NOTE
from pipelines.portal.datapackage import validate_datapackage
from pipelines.portal.dtpr_card import data_class_label
from pipelines.portal.extracts import csv_bytes
from pipelines.registry import MAX_PERIOD_DAYS, validate_registry

pytestmark = pytest.mark.unit

BASE_URL = "https://data.riverton.example/sensors/"
FORMULAS = ['=HYPERLINK("http://evil.example","click")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
            "\tindented", "\rcarriage"]


def _csv_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline=""), strict=True))


# -- CSV extracts ----------------------------------------------------------------------------------


def test_formula_like_text_cells_are_quoted_and_numbers_stay_numbers():
    table = pa.table({
        "text": [*FORMULAS, "plain", "a=b", "", None],
        "count": pa.array([-1, 2, -3, 4, -5, 6, 7, -8, 9, 10], pa.int64()),
        "age": pa.array([-1.5, 0.0, 2.5, -0.25, 1.0, 1.0, 1.0, 1.0, 1.0, None], pa.float64()),
        "at": pa.array([datetime(2026, 7, 1, tzinfo=UTC)] * 10, pa.timestamp("us", tz="UTC")),
    })
    rows = _csv_rows(csv_bytes(table))
    assert [r["text"] for r in rows[: len(FORMULAS)]] == ["'" + f for f in FORMULAS]
    assert [r["text"] for r in rows[len(FORMULAS):]] == ["plain", "a=b", "", ""]
    assert [int(r["count"]) for r in rows] == table["count"].to_pylist()  # negative numbers are numbers
    assert rows[0]["age"] == "-1.5" and rows[3]["age"] == "-0.25"
    assert {r["at"] for r in rows} == {"2026-07-01T00:00:00+00:00"}


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory) -> tuple[Path, Path]:
    """A small published log whose text fields hold spreadsheet formulas, audited and built as a site."""
    tmp = tmp_path_factory.mktemp("hostile")
    settings = settings_for(tmp, [deployment("cam", {"video": "P2D"})])
    publish(settings, "collection", hourly("cam", "video", "2026-07-01", storage_location=FORMULAS[0]))
    at = datetime(2026, 7, 1, 14, tzinfo=UTC)
    publish(settings, "access", [
        access("cam", "video", at + timedelta(minutes=n), GRANT["organisation"], "it_staff", purpose=f, case_ref=f)
        for n, f in enumerate(FORMULAS)
    ])
    publish(settings, "lifecycle", [{"deployment_id": "cam", "action": "configuration_changed", "at": at,
                                     "details": FORMULAS[1]}])
    write_outputs(settings, audit.run_audit(settings, audit.AuditOptions(as_of=at + timedelta(days=3))))
    site = tmp / "site"
    build_portal(settings, str(site), base_url=BASE_URL)
    return site, Path(settings.published)


def test_csv_extracts_quote_formulas_and_parquet_keeps_the_exact_value(hostile_site):
    site, _ = hostile_site
    csv_rows = _csv_rows((site / "data/access/access.csv").read_bytes())
    parquet_rows = pq.read_table(site / "data/access/access.parquet").to_pylist()
    assert sorted(r["purpose"] for r in parquet_rows) == sorted(FORMULAS)
    assert sorted(r["purpose"] for r in csv_rows) == sorted("'" + f for f in FORMULAS)
    assert sorted(r["case_ref"] for r in csv_rows) == sorted("'" + f for f in FORMULAS)
    for row in csv_rows:
        assert row["purpose"][0] == "'" and int(row["records"]) == 1
    lifecycle = _csv_rows((site / "data/lifecycle/lifecycle.csv").read_bytes())
    assert [r["details"] for r in lifecycle] == ["'" + FORMULAS[1]]
    collection = _csv_rows((site / "data/collection/collection.csv").read_bytes())
    assert {r["storage_location"] for r in collection} == {"'" + FORMULAS[0]}
    registry = _csv_rows((site / "data/registry/deployments.csv").read_bytes())
    assert [float(r["longitude"]) for r in registry] == [-80.8]  # a negative number is not a formula


def test_the_datapackage_documents_the_rule_and_stays_valid(hostile_site):
    site, _ = hostile_site
    package = json.loads((site / "datapackage.json").read_text(encoding="utf-8"))
    for resource in package["resources"]:
        if resource.get("type") != "table":
            continue
        for field in resource["schema"]["fields"]:
            documented = NOTE in field.get("description", "")
            assert documented == (resource["format"] == "csv" and field["type"] == "string"), (
                resource["name"], field["name"])
    assert validate_datapackage(str(site / "datapackage.json")) == []


# -- charts and dates ------------------------------------------------------------------------------


def test_a_data_class_with_tex_markup_is_drawn_as_plain_text(tmp_path):
    s = settings_for(tmp_path, [deployment("cam", {"video": "P2D"})])
    odd = ["$x^{$", "$\\alpha$", "a$b"]
    publish(s, "collection", [r for c in [*odd, "video"] for r in hourly("cam", c, "2026-07-01")])
    result = audit.run_audit(s, audit.AuditOptions(as_of=audit.parse_as_of("2026-07-10", s.timezone)))
    html = audit_report.render_report(result)
    assert html.count("<svg") == 1
    assert {"undeclared_data_class"} <= {f["kind"] for f in result.finding_dicts()}
    chart = audit_report.retention_chart(result.ledger, "cam")
    for name in odd:
        assert data_class_label(name) in chart  # the label as written, not typeset
    assert "$x^{$" in html


def _year_one(tmp_path: Path):
    s = settings_for(tmp_path, [deployment("cam", {"video": "P2D"}, commissioned="0001-01-01")])
    y1 = datetime(1, 1, 1, tzinfo=UTC)  # in New York still 31 December of 1 BC
    publish(s, "collection", [
        {"deployment_id": "cam", "data_class": "video", "window_start": y1 + timedelta(hours=h),
         "window_end": y1 + timedelta(hours=h + 1), "records": 10, "event_time": y1 + timedelta(hours=h + 1)}
        for h in (0, 12, 30)
    ])
    publish(s, "deletion", [deletion("cam", "video", y1, y1 + timedelta(hours=1), y1 + timedelta(hours=2), 10)])
    publish(s, "access", [access("cam", "video", y1, GRANT["organisation"], "it_staff")])
    publish(s, "lifecycle", [{"deployment_id": "cam", "action": "firmware_changed", "at": y1, "details": "clock"}])
    return s, audit.run_audit(s, audit.AuditOptions(as_of=datetime(1, 1, 10, tzinfo=UTC)))


def test_a_window_in_year_one_renders_in_the_audit_report(tmp_path):
    _, result = _year_one(tmp_path)
    assert result.ledger.num_rows > 0
    html = audit_report.render_report(result)
    assert "<svg" in html and "0001-01-0" in html


def test_a_window_in_year_one_renders_in_the_portal(tmp_path):
    s, result = _year_one(tmp_path)
    write_outputs(s, result)
    site = tmp_path / "site"
    built = build_portal(s, str(site), base_url=BASE_URL)
    assert built.missing == []
    page = (site / "deployments" / "cam.html").read_text(encoding="utf-8")
    assert "0001-01-01" in page
    assert len(_csv_rows((site / "data/collection/collection.csv").read_bytes())) == 3


# -- the registry --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "refused"),
    [
        ("P99999999999999999999Y", True),
        ("P101Y", True),
        ("P1300M", True),
        (f"P{MAX_PERIOD_DAYS + 1}D", True),
        ("PT999999999999H", True),
        ("P100Y", False),
        (f"P{MAX_PERIOD_DAYS}D", False),
        ("P30D", False),
        ("indefinite", False),
    ],
)
def test_the_registry_refuses_absurd_retention_periods(tmp_path, period, refused):
    folder = write_registry(tmp_path / "registry", [deployment("cam", {"video": period})])
    problems = validate_registry(folder)
    if not refused:
        assert problems == []
        return
    assert [p.field for p in problems] == ["retention[0].period"]
    assert "at most 100 years" in problems[0].expected and "'indefinite'" in problems[0].expected
    assert period in str(problems[0])


def test_the_registry_reports_personal_data_in_its_free_text(tmp_path):
    doc = deployment("cam", {"video": "P2D"})
    doc["description"] = "Ask the operator, jane.doe@example.com or 617-555-0199."
    doc["access"]["grants"][0]["purpose"] = "Look up plate 7ABC123"
    doc["feedback"] = {"email": "privacy@riverton.example", "phone": "+1-704-555-0142"}  # public channels
    problems = validate_registry(write_registry(tmp_path / "registry", [doc]))
    assert sorted((p.field, p.expected.rsplit(": ", 1)[-1]) for p in problems) == [
        ("access.grants[0].purpose", "privacy:access.grants[0].purpose:plate)"),
        ("description", "privacy:description:email)"),
        ("description", "privacy:description:phone)"),
    ]
