"""Deployment registry: the sample registry, one clear message per bad input, policies and rendering."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from pipelines.config import PROJECT_DIR
from pipelines.portal.dtpr_card import dtpr_card, format_duration, render_retention_text
from pipelines.registry import (
    AccessGrant,
    PolicyVersion,
    Problem,
    RegistryError,
    RetentionRule,
    deployment_schema,
    load_registry,
    parse_iso_duration,
    validate_registry,
)
from pipelines.registry.taxonomy import CATEGORY_ORDER

pytestmark = pytest.mark.unit

SAMPLE_REGISTRY = PROJECT_DIR / "registry"
BOSTON_PILOTS = {
    "boston-numina-tremont-boylston",
    "boston-numina-seaport",
    "boston-kenmore-traffic-camera",
    "boston-kenmore-soofa-sign",
    "boston-verizon-smart-streets",
}

GOOD: dict[str, Any] = {
    "id": "cctv-test-plaza",
    "name": "Test Plaza camera",
    "kind": "cctv_camera",
    "vendor": "Example Vendor",
    "accountable": {"organisation": "Test Police", "role": "operator", "dtpr": ["accountable__organization"]},
    "purposes": ["purpose__safety_security"],
    "technologies": ["tech__video_camera"],
    "data_types": ["data__pixel_based_image", "data__personal"],
    "processing": ["process__raw_data"],
    "data_classes": [
        {"slug": "video", "dtpr": "data__pixel_based_image"},
        {"slug": "plate_reads", "dtpr": "data__personal"},
    ],
    "retention": [
        {"data_class": "video", "period": "P14D"},
        {"data_class": "plate_reads", "period": "P14D", "trigger": "window_end"},
    ],
    "access": {
        "dtpr": ["access__available_to_the_accountable_organization"],
        "grants": [{"organisation": "Test Police", "roles": ["detective"], "purpose": "Investigations"}],
    },
    "storage": {"dtpr": ["storage__stored_locally"], "location": "On premises"},
    "location": {"lat": 35.2, "lon": -80.8, "mobility": "fixed", "address": "1 Test Street"},
    "lifecycle": {"commissioned": "2025-01-01", "decommissioned": None},
    "legal_basis": "Test ordinance",
    "policy_links": ["https://example.org/policy"],
    "feedback": {"email": "privacy@example.org"},
    "policy_version": 2,
    "policy_effective_from": "2026-08-01",
    "policy_history": [
        {
            "version": 1,
            "effective_from": "2025-01-01",
            "retention": [
                {"data_class": "video", "period": "P30D"},
                {"data_class": "plate_reads", "period": "P30D"},
            ],
            "access": [{"organisation": "Test Police", "roles": ["detective"], "purpose": "Investigations"}],
        }
    ],
}


def write(folder: Path, doc: Any, stem: str = "cctv-test-plaza") -> Path:
    path = folder / f"{stem}.yaml"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def problems_for(tmp_path: Path, change) -> list[Problem]:
    doc = copy.deepcopy(GOOD)
    change(doc)
    write(tmp_path, doc)
    return validate_registry(tmp_path)


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


# ---------------------------------------------------------------------------------------------------
# The sample registry


@pytest.fixture(scope="module")
def sample():
    return load_registry(SAMPLE_REGISTRY)


def test_schema_is_valid_2020_12() -> None:
    Draft202012Validator.check_schema(deployment_schema())


def test_sample_registry_loads_with_enough_deployments(sample) -> None:
    assert validate_registry(SAMPLE_REGISTRY) == []
    assert len(sample) >= 28
    assert [d.id for d in sample] == sorted(sample.ids())
    kinds = {d.kind for d in sample}
    assert {
        "cctv_camera",
        "alpr",
        "traffic_counter",
        "air_quality",
        "wifi_kiosk",
        "streetlight_motion",
        "ev_charger",
        "gunshot_detection",
    } <= kinds


def test_sample_registry_meets_the_demo_generators_needs(sample) -> None:
    assert all(d.commissioned <= date(2026, 5, 1) for d in sample)
    decommissioned = [d for d in sample if d.decommissioned is not None]
    assert [(d.kind, d.decommissioned) for d in decommissioned] == [("cctv_camera", date(2026, 8, 31))]
    changed = [d for d in sample if len(d.policy_versions) > 1]
    assert len(changed) == 1 and changed[0].kind == "alpr"
    first, current = changed[0].policy_versions
    assert (first.version, first.effective_from, first.rule_for("plate_reads").period) == (1, date(2025, 1, 1), "P30D")
    assert (current.version, current.effective_from, current.rule_for("plate_reads").period) == (
        2,
        date(2026, 8, 1),
        "P14D",
    )
    kinds = {r.kind for d in sample for r in d.current_policy.retention}
    assert {"none", "indefinite", "duration"} <= kinds
    assert all(1 <= len(d.data_classes) <= 3 and d.current_policy.access for d in sample)


def test_sample_registry_boston_pilots_have_provenance(sample) -> None:
    assert BOSTON_PILOTS <= sample.ids()
    for pilot in BOSTON_PILOTS:
        provenance = sample[pilot].provenance
        assert provenance and "Apache-2.0" in provenance["licence"] and provenance["filled"]
    riverton = [d for d in sample if d.id not in BOSTON_PILOTS]
    assert all(d.provenance is None for d in riverton)


def test_registry_lookup_and_bbox(sample) -> None:
    assert sample.get("no-such-deployment") is None
    assert sample.get("cctv-city-hall-plaza").kind == "cctv_camera"
    min_lon, min_lat, max_lon, max_lat = sample.bbox()
    assert min_lon < max_lon and min_lat < max_lat
    assert all(min_lat <= d.lat <= max_lat and min_lon <= d.lon <= max_lon for d in sample if d.lat is not None)


# ---------------------------------------------------------------------------------------------------
# One clear message per bad input


def test_good_document_has_no_problems(tmp_path: Path) -> None:
    assert problems_for(tmp_path, lambda doc: None) == []


def test_unknown_dtpr_id(tmp_path: Path) -> None:
    problem = only(problems_for(tmp_path, lambda doc: doc["purposes"].__setitem__(0, "purpose__mobilty")))
    assert problem.field == "purposes[0]"
    assert "unknown id 'purpose__mobilty'" in problem.expected
    assert "did you mean 'purpose__mobility'" in problem.expected


def test_dtpr_id_in_the_wrong_category(tmp_path: Path) -> None:
    problem = only(problems_for(tmp_path, lambda doc: doc["technologies"].append("purpose__mobility")))
    assert problem.field == "technologies[1]"
    assert "'tech'" in problem.expected and "'purpose'" in problem.expected


def test_retention_for_an_undeclared_data_class(tmp_path: Path) -> None:
    def change(doc):
        doc["retention"].append({"data_class": "audio_clips", "period": "P1D"})

    problem = only(problems_for(tmp_path, change))
    assert problem.field == "retention[2].data_class"
    assert "declared in data_classes" in problem.expected and "'audio_clips'" in problem.expected


def test_missing_retention_for_a_data_class(tmp_path: Path) -> None:
    problem = only(problems_for(tmp_path, lambda doc: doc["retention"].pop(1)))
    assert problem.field == "retention"
    assert "'plate_reads'" in problem.expected


def test_missing_retention_in_a_history_version(tmp_path: Path) -> None:
    problem = only(problems_for(tmp_path, lambda doc: doc["policy_history"][0]["retention"].pop(0)))
    assert problem.field == "policy_history[0].retention"
    assert "'video'" in problem.expected


@pytest.mark.parametrize("period", ["P30X", "30D", "P", "PT", "P1DT", "p30d", "P1.5D", "forever"])
def test_bad_iso_duration(tmp_path: Path, period: str) -> None:
    problem = only(problems_for(tmp_path, lambda doc: doc["retention"][0].__setitem__("period", period)))
    assert problem.field == "retention[0].period"
    assert "ISO 8601 duration" in problem.expected and repr(period) in problem.expected


def test_bad_yaml_syntax_reports_the_line(tmp_path: Path) -> None:
    text = yaml.safe_dump(GOOD, sort_keys=False).replace("vendor: Example Vendor", "vendor: [Example Vendor")
    path = write(tmp_path, text)
    problem = only(validate_registry(tmp_path))
    opened = text.splitlines().index("vendor: [Example Vendor") + 1
    # PyYAML notices the missing ']' on the next line; the message also names the line it opened on.
    assert (problem.file, problem.field) == (str(path), f"line {opened + 1}")
    assert problem.expected.startswith("valid YAML (")
    assert f"flow sequence started on line {opened}" in problem.expected


def test_duplicate_yaml_key_reports_its_line(tmp_path: Path) -> None:
    text = yaml.safe_dump(GOOD, sort_keys=False) + "vendor: Someone Else\n"
    write(tmp_path, text)
    problem = only(validate_registry(tmp_path))
    assert problem.field == f"line {len(text.splitlines())}"
    assert "duplicate key 'vendor'" in problem.expected


def test_id_differs_from_file_stem(tmp_path: Path) -> None:
    write(tmp_path, GOOD, stem="cctv-other-name")
    problem = only(validate_registry(tmp_path))
    assert problem.field == "id" and "'cctv-other-name'" in problem.expected
    assert str(problem).startswith(str(tmp_path / "cctv-other-name.yaml") + ": id: expected ")


def test_missing_required_field(tmp_path: Path) -> None:
    problem = only(problems_for(tmp_path, lambda doc: doc.pop("vendor")))
    assert (problem.field, problem.expected) == ("vendor", "a value (required field is missing)")


def test_more_than_three_purposes(tmp_path: Path) -> None:
    def change(doc):
        doc["purposes"] = ["purpose__safety_security", "purpose__mobility", "purpose__health", "purpose__inform"]

    problem = only(problems_for(tmp_path, change))
    assert (problem.field, problem.expected) == ("purposes", "at most 3 items (got 4)")


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda d: d.__setitem__("kind", "drone"), "kind", "one of cctv_camera"),
        (lambda d: d.__setitem__("id", "Bad_Id"), "id", "a slug"),
        (lambda d: d.__setitem__("surprise", 1), "surprise", "no such field"),
        (lambda d: d["lifecycle"].__setitem__("commissioned", "2025-02-30"), "lifecycle.commissioned", "YYYY-MM-DD"),
        (
            lambda d: d["lifecycle"].__setitem__("decommissioned", "2024-12-31"),
            "lifecycle.decommissioned",
            "on or after commissioned 2025-01-01",
        ),
        (lambda d: d["location"].__setitem__("area", "Downtown"), "location", "either a point"),
        (lambda d: d["location"].__setitem__("lat", "north"), "location.lat", "a number"),
        (lambda d: d.__setitem__("feedback", {}), "feedback", "at least one of form, email"),
        (
            lambda d: d["data_classes"].append({"slug": "video", "dtpr": "data__pixel_based_image"}),
            "data_classes[2].slug",
            "declared once",
        ),
        (
            lambda d: d["data_classes"][0].__setitem__("dtpr", "data__boolean"),
            "data_classes[0].dtpr",
            "listed in data_types",
        ),
        (lambda d: d["retention"][0].__setitem__("trigger", "whenever"), "retention[0].trigger", "one of"),
        (
            lambda d: d["purposes"].append("purpose__safety_security"),
            "purposes",
            "'purpose__safety_security' is repeated",
        ),
        (lambda d: d["policy_links"].__setitem__(0, "ftp://x"), "policy_links[0]", "an http(s) URL"),
        (
            lambda d: d["policy_history"][0].__setitem__("effective_from", "2026-08-01"),
            "policy_history[0].effective_from",
            "before policy_effective_from",
        ),
        (
            lambda d: d["policy_history"][0].__setitem__("version", 2),
            "policy_history[0].version",
            "below the current policy_version",
        ),
    ],
)
def test_other_bad_inputs_give_one_message(tmp_path: Path, change, field: str, words: str) -> None:
    problem = only(problems_for(tmp_path, change))
    assert problem.field == field and words in problem.expected, str(problem)


def test_history_dates_must_increase(tmp_path: Path) -> None:
    def change(doc):
        later = copy.deepcopy(doc["policy_history"][0])
        later.update(version=1, effective_from="2024-06-01")
        doc["policy_history"].append(later)
        doc["policy_version"] = 3

    fields = sorted(p.field for p in problems_for(tmp_path, change))
    assert fields == ["policy_history[1].effective_from", "policy_history[1].version"]


def test_all_problems_of_all_files_are_collected(tmp_path: Path) -> None:
    bad_one = copy.deepcopy(GOOD)
    bad_one.pop("vendor")
    bad_one["purposes"] = ["purpose__nope"]
    write(tmp_path, bad_one)
    bad_two = copy.deepcopy(GOOD)
    bad_two["id"] = "cctv-second"
    bad_two["retention"][0]["period"] = "P1Q"
    write(tmp_path, bad_two, stem="cctv-second")
    write(tmp_path, "id: [unclosed\n", stem="cctv-third")
    with pytest.raises(RegistryError) as caught:
        load_registry(tmp_path)
    fields = [(Path(p.file).stem, p.field) for p in caught.value.problems]
    assert fields == [
        ("cctv-second", "retention[0].period"),
        ("cctv-test-plaza", "vendor"),
        ("cctv-test-plaza", "purposes[0]"),
        ("cctv-third", "line 2"),
    ]
    assert "4 problem(s)" in str(caught.value)


def test_missing_or_empty_registry_folder(tmp_path: Path) -> None:
    assert only(validate_registry(tmp_path / "absent")).field == "(registry)"
    assert "at least one deployment file" in only(validate_registry(tmp_path)).expected


def test_document_that_is_not_a_mapping(tmp_path: Path) -> None:
    write(tmp_path, "- just\n- a list\n")
    assert only(validate_registry(tmp_path)).field == "(document)"


def test_problem_text_format() -> None:
    assert str(Problem("r/x.yaml", "kind", "one of a, b")) == "r/x.yaml: kind: expected one of a, b"


# ---------------------------------------------------------------------------------------------------
# Policies over time


@pytest.fixture()
def changed(tmp_path: Path):
    write(tmp_path, GOOD)
    return load_registry(tmp_path)["cctv-test-plaza"]


def test_policy_at_boundaries(changed) -> None:
    assert changed.policy_at(date(2026, 7, 31)).version == 1
    assert changed.policy_at(date(2026, 8, 1)).version == 2
    assert changed.policy_at(date(2020, 1, 1)).version == 1  # before the first version: the first
    assert changed.current_policy.version == 2
    assert changed.policy_at(date(2026, 7, 31)).rule_for("video").period == "P30D"
    assert changed.policy_at(date(2026, 8, 1)).rule_for("video").period == "P14D"


def test_policy_at_uses_local_dates(changed) -> None:
    # 03:00 UTC on 1 August is still 31 July in New York; the new policy starts at local midnight.
    assert changed.policy_at(datetime(2026, 8, 1, 3, 0, tzinfo=UTC)).version == 1
    assert changed.policy_at(datetime(2026, 8, 1, 4, 0, tzinfo=UTC)).version == 2
    assert changed.policy_at(datetime(2026, 8, 1, 3, 0)).version == 1  # naive means UTC


def test_is_active_includes_both_ends(tmp_path: Path) -> None:
    doc = copy.deepcopy(GOOD)
    doc["lifecycle"]["decommissioned"] = "2026-08-31"
    write(tmp_path, doc)
    deployment = load_registry(tmp_path)["cctv-test-plaza"]
    assert not deployment.is_active(date(2024, 12, 31))
    assert deployment.is_active(date(2025, 1, 1)) and deployment.is_active(date(2026, 8, 31))
    assert not deployment.is_active(date(2026, 9, 1))


def test_access_grants_are_case_insensitive_on_organisation() -> None:
    policy = PolicyVersion(1, date(2025, 1, 1), (), (AccessGrant("Riverton Police", ("detective",), "x"),))
    assert policy.allows("riverton  POLICE", "detective")
    assert not policy.allows("Riverton Police", "patrol_officer")
    assert not policy.allows("Someone Else", "detective")


def test_point_and_area_centres(tmp_path: Path) -> None:
    doc = copy.deepcopy(GOOD)
    doc["location"] = {"area": "Downtown", "bbox": [-80.9, 35.1, -80.7, 35.3], "mobility": "mobile"}
    write(tmp_path, doc)
    deployment = load_registry(tmp_path)["cctv-test-plaza"]
    assert deployment.lat == pytest.approx(35.2) and deployment.lon == pytest.approx(-80.8)
    assert deployment.mobility == "mobile"


# ---------------------------------------------------------------------------------------------------
# Retention arithmetic

END = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "due", "duration"),
    [
        ("P30D", datetime(2026, 3, 2, 12, 0, tzinfo=UTC), timedelta(days=30)),
        ("PT72H", datetime(2026, 2, 3, 12, 0, tzinfo=UTC), timedelta(hours=72)),
        ("P1M", datetime(2026, 2, 28, 12, 0, tzinfo=UTC), timedelta(days=30)),
        ("P1Y", datetime(2027, 1, 31, 12, 0, tzinfo=UTC), timedelta(days=365)),
        ("P2W", datetime(2026, 2, 14, 12, 0, tzinfo=UTC), timedelta(days=14)),
        ("P1Y1M1DT1H", datetime(2027, 3, 1, 13, 0, tzinfo=UTC), timedelta(days=396, hours=1)),
    ],
)
def test_due_and_duration(period: str, due: datetime, duration: timedelta) -> None:
    rule = RetentionRule("video", period)
    assert rule.kind == "duration"
    assert rule.due(END) == due
    assert rule.duration == duration


def test_due_for_a_leap_day() -> None:
    leap = datetime(2024, 2, 29, tzinfo=UTC)
    assert RetentionRule("video", "P1Y").due(leap) == datetime(2025, 2, 28, tzinfo=UTC)


def test_none_is_due_at_once_and_indefinite_never() -> None:
    nothing, forever = RetentionRule("images", "none"), RetentionRule("vehicle_counts", "indefinite")
    assert (nothing.kind, nothing.due(END), nothing.duration) == ("none", END, timedelta(0))
    assert (forever.kind, forever.due(END), forever.duration) == ("indefinite", None, None)


def test_triggers() -> None:
    start = END - timedelta(hours=1)
    from_start = RetentionRule("video", "P1D", "window_start")
    assert from_start.due(END, collected_start=start) == start + timedelta(days=1)
    with pytest.raises(ValueError, match="collected_start"):
        from_start.due(END)
    assert RetentionRule("audio_clips", "P1Y", "case_closed").due(END) is None


def test_rule_rejects_bad_period_and_trigger() -> None:
    with pytest.raises(ValueError):
        RetentionRule("video", "30 days")
    with pytest.raises(ValueError):
        RetentionRule("video", "P30D", "sometime")


@given(st.lists(st.integers(min_value=0, max_value=500), min_size=7, max_size=7))
def test_duration_round_trip_and_due_never_earlier(parts: list[int]) -> None:
    units = "YMWD"
    date_part = "".join(f"{n}{u}" for n, u in zip(parts[:4], units, strict=True) if n)
    time_part = "".join(f"{n}{u}" for n, u in zip(parts[4:], "HMS", strict=True) if n)
    text = "P" + date_part + (f"T{time_part}" if time_part else "")
    if text == "P":
        return
    assert list(parse_iso_duration(text)) == parts
    assert RetentionRule("video", text).due(END) >= END


# ---------------------------------------------------------------------------------------------------
# Rendering


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        (RetentionRule("video", "P30D"), "Video is kept for 30 days after it is recorded, then deleted."),
        (RetentionRule("plate_reads", "P1D"), "Plate reads are kept for 1 day after they are recorded, then deleted."),
        (RetentionRule("video", "PT72H"), "Video is kept for 72 hours after it is recorded, then deleted."),
        (RetentionRule("images", "none"), "Images are not kept: nothing is stored."),
        (RetentionRule("vehicle_counts", "indefinite"), "Vehicle counts are kept indefinitely."),
        (
            RetentionRule("audio_clips", "P1Y6M", "case_closed"),
            "Audio clips are kept for 1 year and 6 months after the related case is closed, then deleted.",
        ),
        (
            RetentionRule("video", "P1D", "window_start"),
            "Video is kept for 1 day, counted from the start of its collection window, then deleted.",
        ),
    ],
)
def test_render_retention_text(rule: RetentionRule, text: str) -> None:
    assert render_retention_text(rule) == text
    assert render_retention_text(rule, "km") == text  # other languages fall back to English


def test_format_duration_languages() -> None:
    assert format_duration("P1Y2M3D") == "1 year, 2 months and 3 days"
    assert format_duration("P30D", "es") == "30 días"
    assert format_duration("P1M", "fr") == "1 mois"
    assert format_duration("PT72H", "tl") == "72 hours"


def test_dtpr_card_order_and_content(changed) -> None:
    card = dtpr_card(changed)
    assert [s.category_id for s in card] == list(CATEGORY_ORDER)
    by_id = {s.category_id: s for s in card}
    assert by_id["accountable"].extra == ["Test Police (operator)"]
    assert [e[0] for e in by_id["purpose"].elements] == ["purpose__safety_security"]
    retention = by_id["retention"]
    assert retention.elements == [
        (
            "retention__data_retained",
            "Retained 14 days",
            "Data is stored for 14 days, and after this time period is deleted",
        )
    ]
    assert "Video is kept for 14 days after it is recorded, then deleted." in retention.extra
    assert by_id["access"].extra == ["Test Police (detective): Investigations"]
    assert by_id["storage"].extra == ["On premises"]


def test_dtpr_card_for_a_past_policy_and_another_language(changed) -> None:
    card = dtpr_card(changed, lang="es", on=date(2026, 7, 31))
    retention = next(s for s in card if s.category_id == "retention")
    assert retention.category_name == "Retención"
    assert retention.elements[0][1] == "Retenido 30 días"
    assert retention.extra[-1] == "Policy version 1, in force from 2025-01-01."


def test_dtpr_card_none_and_indefinite(sample) -> None:
    card = dtpr_card(sample["counter-oak-street-video"])
    retention = next(s for s in card if s.category_id == "retention")
    assert [e[:2] for e in retention.elements] == [
        ("retention__no_data_retained", "No data retained"),
        ("retention__data_retained", "Retained indefinitely"),
    ]
