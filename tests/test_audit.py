"""Retention audit on hand-built published logs: every finding kind and the boundary cases, with
expectations computed by hand in the comments (America/New_York: UTC-4 in summer, UTC-5 in winter)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from audit_kit import (
    GRANT,
    access,
    day_deletion,
    deletion,
    deployment,
    hourly,
    local,
    publish,
    settings_for,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pipelines import audit
from pipelines.audit import report as audit_report
from pipelines.audit import retention
from pipelines.audit.model import FINDINGS_SCHEMA, LEDGER_SCHEMA
from pipelines.audit.run import OUTPUTS
from pipelines.registry import RetentionRule

pytestmark = pytest.mark.integration

QUIET = 365  # silence threshold for tests about something else


def run(s, as_of=None, **options):
    options.setdefault("silence_days", QUIET)
    moment = audit.parse_as_of(as_of, s.timezone) if isinstance(as_of, str) else as_of
    return audit.run_audit(s, audit.AuditOptions(as_of=moment, **options))


def keys(result) -> set[tuple]:
    return {
        (f["kind"], f["deployment_id"], f["data_class"], f["period_start"], f["period_end"])
        for f in result.finding_dicts()
    }


def only(result, kind=None) -> dict:
    found = [f for f in result.finding_dicts() if kind is None or f["kind"] == kind]
    assert len(found) == 1, found
    return found[0]


def ledger_rows(result, data_class=None) -> list[dict]:
    rows = result.ledger.to_pylist()
    return [r for r in rows if data_class is None or r["data_class"] == data_class]


def purge(dep, data_class, day, period=timedelta(days=2), late=timedelta(0)):
    """The vendor's daily purge: one deletion for the local day at its due date + 15 min (+ late)."""
    d = date.fromisoformat(day)
    return day_deletion(dep, data_class, d, local(d + timedelta(days=1)) + period + timedelta(minutes=15) + late)


# --- on time ----------------------------------------------------------------------------------------


def test_on_time_purges_give_no_findings_and_a_consistent_ledger(tmp_path):
    s = settings_for(tmp_path, [deployment("cam", {"video": "P2D"})])
    days = ["2026-07-01", "2026-07-02", "2026-07-03"]
    publish(s, "collection", [r for d in days for r in hourly("cam", "video", d)])
    publish(s, "deletion", [purge("cam", "video", d) for d in days])
    result = run(s, "2026-07-07", silence_days=7)  # quiet 4, 5, 6 July: 3 days < 7

    assert result.findings.num_rows == 0
    rows = ledger_rows(result)
    assert [r["day"] for r in rows] == [date(2026, 7, n) for n in range(1, 7)]
    assert [r["collected"] for r in rows] == [240, 240, 240, 0, 0, 0]
    # Day 1 (due 4 July 00:00 local) is deleted at 00:15 local on 4 July, and so on.
    assert [r["deleted"] for r in rows] == [0, 0, 0, 240, 240, 240]
    assert [r["deleted_reported"] for r in rows] == [0, 0, 0, 240, 240, 240]
    assert [r["retained"] for r in rows] == [240, 480, 720, 480, 240, 0]
    assert [r["oldest_retained_age_days"] for r in rows] == [1.0, 2.0, 3.0, 3.0, 3.0, None]
    assert [r["status"] for r in rows] == ["ok", "due_soon", "due_soon", "due_soon", "due_soon", "ok"]
    assert rows[0]["oldest_due"] == datetime(2026, 7, 4, 4, tzinfo=UTC)
    assert {(r["policy_version"], r["declared_period"]) for r in rows} == {(1, "P2D")}
    assert result.ledger.schema.equals(LEDGER_SCHEMA)
    [stats] = result.lateness.to_pylist()
    assert (stats["deletions"], stats["late"], stats["p50_days"], stats["max_days"]) == (3, 0, 0.01, 0.01)


# --- exactly on the due date, grace ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after_due", "grace", "late"),
    [
        (timedelta(0), timedelta(0), False),  # deleted exactly at the due moment: on time
        (timedelta(seconds=1), timedelta(0), True),
        (timedelta(days=1), timedelta(days=1), False),  # exactly at the end of the grace
        (timedelta(days=1, seconds=1), timedelta(days=1), True),
    ],
)
def test_deletion_exactly_on_the_due_date_and_at_the_end_of_the_grace(tmp_path, after_due, grace, late):
    s = settings_for(tmp_path, [deployment("cam", {"video": "P2D"})])
    publish(s, "collection", hourly("cam", "video", "2026-07-01"))
    due = datetime(2026, 7, 4, 4, tzinfo=UTC)  # end of 1 July local (2 July 04:00Z) + 48 h
    publish(s, "deletion", [day_deletion("cam", "video", "2026-07-01", due + after_due)])
    result = run(s, "2026-07-10", grace=grace)
    if not late:
        assert result.findings.num_rows == 0
        return
    f = only(result, "late_deletion")
    assert (f["period_start"], f["period_end"]) == ("2026-07-01T04:00:00Z", "2026-07-02T04:00:00Z")
    assert f["numbers"]["first_due"] == "2026-07-04T04:00:00Z"
    assert f["numbers"]["days_late"] == round(after_due / timedelta(days=1), 3)
    assert f["severity"] == "medium"


def test_never_deleted_becomes_retained_past_policy_only_after_due_plus_grace(tmp_path):
    s = settings_for(tmp_path, [deployment("cam", {"video": "P2D"})])
    publish(s, "collection", hourly("cam", "video", "2026-07-01"))
    due_plus_grace = datetime(2026, 7, 5, 4, tzinfo=UTC)  # 4 July 04:00Z + 1 day

    at_limit = run(s, due_plus_grace)
    assert at_limit.findings.num_rows == 0
    assert ledger_rows(at_limit)[-1]["status"] == "due_soon"

    after = run(s, due_plus_grace + timedelta(seconds=1))
    f = only(after, "retained_past_policy")
    assert (f["period_start"], f["period_end"], f["severity"]) == (
        "2026-07-01T04:00:00Z",
        "2026-07-02T04:00:00Z",
        "high",
    )
    assert (f["numbers"]["records_retained"], f["numbers"]["evidence_total"]) == (240, 24)
    assert ledger_rows(after)[-1]["status"] == "overdue"


def test_consecutive_days_of_one_kind_are_one_finding(tmp_path):
    s = settings_for(tmp_path, [deployment("cam", {"video": "P2D"})])
    days = ["2026-07-01", "2026-07-02", "2026-07-03", "2026-07-04"]
    publish(s, "collection", [r for d in days for r in hourly("cam", "video", d)])
    publish(s, "deletion", [purge("cam", "video", "2026-07-01"), purge("cam", "video", "2026-07-04")])
    f = only(run(s, "2026-07-20"), "retained_past_policy")
    assert (f["period_start"], f["period_end"], f["numbers"]["days"]) == (
        "2026-07-02T04:00:00Z",
        "2026-07-04T04:00:00Z",
        2,
    )


# --- deletions covering part of a window, arrival order ---------------------------------------------------


def test_a_deletion_covering_part_of_the_day_leaves_the_rest_retained(tmp_path):
    s = settings_for(tmp_path, [deployment("cam", {"video": "P2D"})])
    publish(s, "collection", hourly("cam", "video", "2026-07-01"))
    on_time = datetime(2026, 7, 4, 4, 15, tzinfo=UTC)
    # [04:00Z, 10:30Z): six whole hourly windows and half of the 10:00 one.
    publish(s, "deletion", [deletion("cam", "video", local("2026-07-01"), local("2026-07-01", 6.5), on_time)])
    f = only(run(s, "2026-07-10"), "retained_past_policy")
    assert f["numbers"]["records_retained"] == 180  # 18 windows of 10 records are not (wholly) deleted
    assert f["numbers"]["evidence_total"] == 1 + 18  # the partial deletion, then the collections left

    # The rest of the day, deleted five days after its due date: the day is now late, not retained.
    late = datetime(2026, 7, 9, 4, tzinfo=UTC)
    publish(s, "deletion", [deletion("cam", "video", local("2026-07-01", 6.5), local("2026-07-02"), late)])
    result = run(s, "2026-07-10")
    f = only(result, "late_deletion")
    assert (f["numbers"]["days_late"], f["numbers"]["records_retained"]) == (5.0, 0)
    assert len(f["evidence"]) == 2
    # The half-covered window counts as deleted when its second half is.
    assert sum(r["deleted"] for r in ledger_rows(result)) == 240


def test_two_deletions_each_covering_half_a_window_delete_it(tmp_path):
    s = settings_for(tmp_path, [deployment("cam", {"video": "P2D"})])
    start = local("2026-07-01", 10)
    publish(
        s,
        "collection",
        [
            {
                "deployment_id": "cam",
                "data_class": "video",
                "window_start": start,
                "window_end": start + timedelta(hours=1),
                "records": 7,
            }
        ],
    )
    half = start + timedelta(minutes=30)
    publish(
        s,
        "deletion",
        [
            deletion("cam", "video", start, half, datetime(2026, 7, 3, tzinfo=UTC), records=3),
            deletion("cam", "video", half, start + timedelta(hours=1), datetime(2026, 7, 3, 1, tzinfo=UTC), records=4),
        ],
    )
    result = run(s, "2026-07-10")
    assert result.findings.num_rows == 0
    assert [r["deleted"] for r in ledger_rows(result) if r["deleted"]] == [7]


def _mixed_city(s, deletions_first: bool) -> None:
    collections = [r for d in ("2026-07-01", "2026-07-02") for r in hourly("cam", "video", d)]
    # The vendor reported collections late (event time 20 July), after the deletions they cover.
    collections = [{**r, "event_time": datetime(2026, 7, 20, tzinfo=UTC)} for r in collections]
    deletions = [purge("cam", "video", "2026-07-01", late=timedelta(days=3))]
    if deletions_first:
        publish(s, "deletion", deletions, name="a")
        for n, row in enumerate(reversed(collections)):
            publish(s, "collection", [row], name=f"z{n:03d}")
    else:
        publish(s, "collection", collections, name="a")
        publish(s, "deletion", deletions, name="z")


def test_arrival_order_does_not_matter(tmp_path):
    docs = [deployment("cam", {"video": "P2D"})]
    first = run(s1 := settings_for(tmp_path / "one", docs), "2026-07-25")
    assert first.findings.num_rows == 0  # empty log so far
    _mixed_city(s1, deletions_first=False)
    s2 = settings_for(tmp_path / "two", docs)
    _mixed_city(s2, deletions_first=True)
    a, b = run(s1, "2026-07-25"), run(s2, "2026-07-25")
    assert (
        keys(a)
        == keys(b)
        == {
            ("late_deletion", "cam", "video", "2026-07-01T04:00:00Z", "2026-07-02T04:00:00Z"),
            ("retained_past_policy", "cam", "video", "2026-07-02T04:00:00Z", "2026-07-03T04:00:00Z"),
        }
    )
    assert a.findings.drop_columns(["evidence"]).equals(b.findings.drop_columns(["evidence"]))
    assert a.ledger.equals(b.ledger)


# --- none and indefinite -----------------------------------------------------------------------------------


def test_none_policy_kept_late_or_never_deleted(tmp_path):
    s = settings_for(tmp_path, [deployment("kiosk", {"ids": "none"})])
    days = ["2026-07-01", "2026-07-02", "2026-07-03"]
    publish(s, "collection", [r for d in days for r in hourly("kiosk", "ids", d)])
    zero = timedelta(0)
    publish(
        s,
        "deletion",
        [
            purge("kiosk", "ids", "2026-07-01", period=zero, late=timedelta(days=4)),  # kept 4 days
            purge("kiosk", "ids", "2026-07-02", period=zero),  # gone 15 min after the day ended: fine
        ],  # 3 July: never deleted
    )
    result = run(s, "2026-07-10")
    assert keys(result) == {
        ("retention_declared_none_but_kept", "kiosk", "ids", "2026-07-01T04:00:00Z", "2026-07-02T04:00:00Z"),
        ("retention_declared_none_but_kept", "kiosk", "ids", "2026-07-03T04:00:00Z", "2026-07-04T04:00:00Z"),
    }
    late, never = sorted(result.finding_dicts(), key=lambda f: f["period_start"])
    assert (late["numbers"]["days_late"], late["severity"]) == (4.01, "critical")
    assert never["numbers"]["records_retained"] == 240


def test_indefinite_policy_is_informational_only(tmp_path):
    s = settings_for(tmp_path, [deployment("counter", {"counts": "indefinite"})])
    publish(s, "collection", [r for d in ("2026-07-01", "2026-07-02") for r in hourly("counter", "counts", d)])
    last_event = datetime(2026, 7, 3, 4, 5, tzinfo=UTC)  # 3 July 00:05 local: the audit covers up to 4 July 00:00
    result = run(s, last_event)
    assert result.as_of == last_event
    f = only(result)
    assert (f["kind"], f["severity"], f["period_start"], f["period_end"]) == (
        "indefinite_retention",
        "info",
        "2026-07-01T04:00:00Z",
        "2026-07-04T04:00:00Z",
    )
    assert f["numbers"]["records_retained"] == 480
    assert {r["status"] for r in ledger_rows(result)} == {"ok"}
    assert {r["next_due"] for r in ledger_rows(result)} == {None}


# --- time zones and DST ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "hours", "start", "end", "due"),
    [
        ("2026-11-01", 25, "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z", "2026-11-03T05:00:00Z"),
        ("2026-03-08", 23, "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z", "2026-03-10T04:00:00Z"),
    ],
)
def test_local_days_of_23_and_25_hours(tmp_path, day, hours, start, end, due):
    s = settings_for(tmp_path, [deployment("cam", {"video": "P1D", "audio": "P1D"})])
    rows = hourly("cam", "video", day) + hourly("cam", "audio", day)
    assert len(rows) == 2 * hours
    publish(s, "collection", rows)
    # Audio is purged on time: 15 min after the local day's end + 24 h, whatever the day's length.
    publish(s, "deletion", [purge("cam", "audio", day, period=timedelta(days=1))])
    d = date.fromisoformat(day)
    result = run(s, datetime.combine(d + timedelta(days=10), datetime.min.time(), UTC))
    f = only(result)
    assert (f["kind"], f["data_class"], f["period_start"], f["period_end"]) == (
        "retained_past_policy",
        "video",
        start,
        end,
    )
    assert f["numbers"]["first_due"] == due
    assert f["numbers"]["records"] == 10 * hours
    video_day = next(r for r in ledger_rows(result, "video") if r["day"] == d)
    assert video_day["collected"] == 10 * hours


# --- policy history ----------------------------------------------------------------------------------------

ALPR_HISTORY = [
    {
        "version": 1,
        "effective_from": "2026-01-01",
        "retention": [{"data_class": "plates", "period": "P30D"}],
        "access": [GRANT, {"organisation": "Acme Analytics", "roles": ["analyst"], "purpose": "Pilot"}],
    }
]


def alpr():
    return deployment("alpr", {"plates": "P14D"}, version=2, effective_from="2026-08-01", history=ALPR_HISTORY)


def test_each_day_is_judged_by_the_policy_in_force_when_it_was_collected(tmp_path):
    s = settings_for(tmp_path, [alpr()])
    publish(s, "collection", hourly("alpr", "plates", "2026-07-31") + hourly("alpr", "plates", "2026-08-01"))
    publish(
        s,
        "deletion",
        [
            purge("alpr", "plates", "2026-07-31", period=timedelta(days=30)),  # 31 Aug, under version 1
            purge("alpr", "plates", "2026-08-01", period=timedelta(days=30)),  # version 2 said 14 days
        ],
    )
    result = run(s, "2026-09-10")
    f = only(result)
    assert (f["kind"], f["period_start"], f["policy_version"]) == ("late_deletion", "2026-08-01T04:00:00Z", 2)
    assert f["numbers"]["days_late"] == 16.01
    assert f["numbers"]["declared_period"] == "P14D"
    versions = {r["day"]: (r["policy_version"], r["declared_period"]) for r in ledger_rows(result)}
    assert versions[date(2026, 7, 31)] == (1, "P30D")
    assert versions[date(2026, 8, 1)] == (2, "P14D")


def test_vendor_following_the_policy_change_gives_no_finding(tmp_path):
    s = settings_for(tmp_path, [alpr()])
    publish(s, "collection", hourly("alpr", "plates", "2026-07-31") + hourly("alpr", "plates", "2026-08-01"))
    publish(
        s,
        "deletion",
        [
            purge("alpr", "plates", "2026-07-31", period=timedelta(days=30)),
            purge("alpr", "plates", "2026-08-01", period=timedelta(days=14)),
        ],
    )
    assert run(s, "2026-09-10").findings.num_rows == 0


# --- access ------------------------------------------------------------------------------------------------


def test_undeclared_access_by_organisation_role_and_policy_version(tmp_path):
    s = settings_for(tmp_path, [alpr()])
    publish(s, "collection", hourly("alpr", "plates", "2026-07-31"))
    t = local("2026-08-03", 11)
    publish(
        s,
        "access",
        [
            access("alpr", "plates", t, "  riverton PUBLIC library ", "it_staff"),  # declared (any case)
            access("alpr", "plates", t + timedelta(hours=1), "Riverton Public Library", "contractor"),
            access("alpr", "plates", local("2026-07-31", 23.5), "Acme Analytics", "analyst"),  # 1 Aug UTC; v1
            access("alpr", "plates", local("2026-08-01", 0.5), "Acme Analytics", "analyst"),  # v2: not any more
            # two events in one second: one finding with both as evidence
            access("alpr", "plates", t + timedelta(hours=2), "Federal Task Force", "analyst", event_id="x1"),
            access(
                "alpr", "plates", t + timedelta(hours=2, microseconds=5), "Federal Task Force", "agent", event_id="x2"
            ),
        ],
    )
    result = run(s, "2026-08-05")
    found = {f["period_start"]: f for f in result.finding_dicts() if f["kind"] == "undeclared_access"}
    assert set(found) == {"2026-08-01T04:30:00Z", "2026-08-03T16:00:00Z", "2026-08-03T17:00:00Z"}
    acme = found["2026-08-01T04:30:00Z"]
    assert (acme["period_end"], acme["policy_version"], acme["severity"]) == ("2026-08-01T04:30:01Z", 2, "critical")
    assert acme["numbers"]["organisation"] == "Acme Analytics"
    federal = found["2026-08-03T17:00:00Z"]
    assert federal["numbers"]["role"] == "agent, analyst"
    assert [e["id"] for e in federal["evidence"]] == ["x1", "x2"]


# --- undeclared class, decommissioning, silence, orphan deletions ----------------------------------------


def test_undeclared_data_class(tmp_path):
    s = settings_for(tmp_path, [deployment("kiosk", {"sessions": "P30D"})])
    rows = [r for d in ("2026-07-01", "2026-07-02") for r in hourly("kiosk", "ids", d) + hourly("kiosk", "sessions", d)]
    rows += hourly("not-registered", "ids", "2026-07-01")  # validation quarantines these; never judged here
    publish(s, "collection", rows)
    result = run(s, "2026-07-05")
    f = only(result)
    assert (f["kind"], f["data_class"], f["period_start"], f["period_end"], f["severity"]) == (
        "undeclared_data_class",
        "ids",
        "2026-07-01T04:00:00Z",
        "2026-07-03T04:00:00Z",
        "high",
    )
    assert (f["numbers"]["records"], f["numbers"]["evidence_total"], len(f["evidence"])) == (480, 48, 48)
    assert {r["status"] for r in ledger_rows(result, "ids") if r["deployment_id"] == "kiosk"} == {"no_policy"}
    assert {r["declared_period"] for r in ledger_rows(result, "ids")} == {None}


def test_collecting_after_decommission(tmp_path):
    s = settings_for(tmp_path, [deployment("old", {"video": "P30D"}, decommissioned="2026-07-02")])
    days = ["2026-07-01", "2026-07-02", "2026-07-03", "2026-07-04"]
    publish(s, "collection", [r for d in days for r in hourly("old", "video", d)])
    result = run(s, "2026-07-20", silence_days=7)  # not in service after 2 July: never "silent"
    f = only(result)
    assert (f["kind"], f["data_class"], f["period_start"], f["period_end"]) == (
        "collecting_after_decommission",
        None,
        "2026-07-03T04:00:00Z",
        "2026-07-05T04:00:00Z",
    )
    assert (f["numbers"]["days"], f["numbers"]["decommissioned"], f["numbers"]["data_classes"]) == (
        2,
        "2026-07-02",
        ["video"],
    )


def test_silent_deployment(tmp_path):
    docs = [
        deployment("aq-park", {"air": "indefinite"}),
        deployment("late-start", {"air": "indefinite"}, commissioned="2026-07-05"),
        deployment("mute", {"air": "indefinite"}),
    ]
    s = settings_for(tmp_path, docs)
    days = ["2026-07-01", "2026-07-02", "2026-07-03", "2026-07-11", "2026-07-12"]
    rows = [r for d in days for r in hourly("aq-park", "air", d)]
    rows += [r for n in range(5, 13) for r in hourly("late-start", "air", f"2026-07-{n:02d}")]
    publish(s, "collection", rows)

    result = run(s, "2026-07-13", silence_days=7)
    silent = {f["deployment_id"]: f for f in result.finding_dicts() if f["kind"] == "silent_deployment"}
    assert set(silent) == {"aq-park", "mute"}  # late-start was not in service before 5 July
    aq = silent["aq-park"]
    assert (aq["period_start"], aq["period_end"], aq["numbers"]["days"]) == (
        "2026-07-04T04:00:00Z",
        "2026-07-11T04:00:00Z",
        7,
    )
    assert [e["id"] for e in aq["evidence"]] == ["col-aq-park-air-20260704T03", "col-aq-park-air-20260711T04"]
    mute = silent["mute"]  # never reported since the log began on 1 July
    assert (mute["period_start"], mute["period_end"], mute["evidence"]) == (
        "2026-07-01T04:00:00Z",
        "2026-07-13T04:00:00Z",
        [],
    )
    assert "aq-park" not in {
        f["deployment_id"]
        for f in run(s, "2026-07-13", silence_days=8).finding_dicts()
        if f["kind"] == "silent_deployment"
    }


def test_deleted_without_collection(tmp_path):
    s = settings_for(tmp_path, [deployment("cam", {"video": "P30D"})])
    publish(s, "collection", hourly("cam", "video", "2026-07-01"))
    publish(
        s,
        "deletion",
        [
            day_deletion("cam", "video", "2026-06-01", datetime(2026, 7, 2, tzinfo=UTC), 1200, event_id="orphan"),
            # overlaps the first collected hour: not an orphan
            deletion(
                "cam", "video", local("2026-06-30", 12), local("2026-07-01", 0.5), datetime(2026, 7, 2, tzinfo=UTC)
            ),
        ],
    )
    result = run(s, "2026-07-10")
    f = only(result)
    assert (f["kind"], f["severity"], f["period_start"], f["period_end"]) == (
        "deleted_without_collection",
        "low",
        "2026-06-01T04:00:00Z",
        "2026-06-02T04:00:00Z",
    )
    assert f["numbers"]["records"] == 1200
    assert f["evidence"] == [{"source": "https://vendor.example/feed", "id": "orphan"}]


# --- statistics, as_of, scope, outputs ----------------------------------------------------------------------


def test_lateness_statistics(tmp_path):
    s = settings_for(tmp_path, [deployment("cam", {"video": "P2D"})])
    days = ["2026-07-01", "2026-07-02", "2026-07-03"]
    publish(s, "collection", [r for d in days for r in hourly("cam", "video", d)])
    lateness = [timedelta(hours=12), timedelta(days=2), timedelta(days=5)]
    publish(
        s,
        "deletion",
        [
            day_deletion("cam", "video", d, local(date.fromisoformat(d) + timedelta(days=3)) + late)
            for d, late in zip(days, lateness, strict=True)
        ],
    )
    [stats] = run(s, "2026-07-20").lateness.to_pylist()
    # quantile_cont over [0.5, 2, 5]: p50 = 2; p95 at position 1.9 = 2 + 0.9 * 3 = 4.7
    assert stats == {
        "deployment_id": "cam",
        "deletions": 3,
        "late": 2,
        "p50_days": 2.0,
        "p95_days": 4.7,
        "max_days": 5.0,
    }


def test_as_of_ignores_later_events_and_deployment_scopes(tmp_path):
    s = settings_for(tmp_path, [deployment("cam", {"video": "P2D"}), deployment("kiosk", {"ids": "none"})])
    publish(s, "collection", hourly("cam", "video", "2026-07-01") + hourly("kiosk", "ids", "2026-07-01"))
    publish(s, "deletion", [purge("cam", "video", "2026-07-01", late=timedelta(days=3))])  # 7 July 04:15Z
    before = run(s, datetime(2026, 7, 7, 4, tzinfo=UTC))  # deletion not yet known: retained
    assert {f["kind"] for f in before.finding_dicts() if f["deployment_id"] == "cam"} == {"retained_past_policy"}
    after = run(s, "2026-07-08")
    assert {f["kind"] for f in after.finding_dicts() if f["deployment_id"] == "cam"} == {"late_deletion"}
    scoped = run(s, "2026-07-08", deployment="kiosk")
    assert {f["deployment_id"] for f in scoped.finding_dicts()} == {"kiosk"}
    assert set(scoped.ledger["deployment_id"].to_pylist()) == {"kiosk"}
    with pytest.raises(ValueError, match="not in the registry"):
        run(s, "2026-07-08", deployment="nope")


def test_ids_are_stable_and_outputs_are_published(tmp_path):
    s = settings_for(tmp_path, [deployment("kiosk", {"ids": "none"})])
    publish(s, "collection", hourly("kiosk", "ids", "2026-07-01"))
    first, second = run(s, "2026-07-05"), run(s, "2026-07-05")
    assert first.findings["id"].equals(second.findings["id"])
    f = only(first)
    text = "retention_declared_none_but_kept|kiosk|ids|2026-07-01T04:00:00.000000Z|2026-07-02T04:00:00.000000Z"
    assert f["id"] == hashlib.sha256(text.encode()).hexdigest()

    paths = audit.write_outputs(s, first)
    table = pq.read_table(paths["findings"])
    assert table.schema.remove_metadata().equals(FINDINGS_SCHEMA)
    assert json.loads(table.schema.metadata[b"sensorlog.checkpoint"]) is None  # no transparency log here
    assert pq.read_table(paths["retention_ledger"]).num_rows == first.ledger.num_rows
    doc = json.loads((tmp_path / "home" / "derived" / "findings" / "findings.json").read_text())
    assert doc["findings"][0]["id"] == f["id"]
    assert doc["counts"]["severity"]["critical"] == 1
    assert doc["as_of"] == "2026-07-05T04:00:00Z"


def test_outputs_leave_the_published_root_to_event_tables(tmp_path):
    """The derived tables go under their own root, and a full audit of a home written when they lived
    under published/<table>/ removes the files it wrote there (nothing else), so a Hive-partitioned glob
    over published/ meets event rows only."""
    s = settings_for(tmp_path, [deployment("kiosk", {"ids": "none"})])
    publish(s, "collection", hourly("kiosk", "ids", "2026-07-01"))
    published = tmp_path / "home" / "published"
    for table, name in OUTPUTS.values():
        (published / table).mkdir(exist_ok=True)
        (published / table / name).write_bytes(b"written by an older sensorlog")
    (published / "findings" / "notes.txt").write_text("not the audit's")

    paths = audit.write_outputs(s, run(s, "2026-07-05"))
    assert all(Path(uri).is_relative_to(tmp_path / "home" / "derived") for uri in paths.values())
    assert not (published / "retention_ledger").exists()  # emptied, so removed
    assert [p.name for p in (published / "findings").iterdir()] == ["notes.txt"]
    rows = duckdb.sql(f"SELECT count(*) FROM read_parquet('{published}/**/*.parquet', hive_partitioning = true)")
    assert rows.fetchall() == [(24,)]


def test_publish_gates_on_severity_after_writing(tmp_path):
    s = settings_for(tmp_path, [deployment("kiosk", {"ids": "none"})])
    publish(s, "collection", hourly("kiosk", "ids", "2026-07-01"))
    publish(s, "collection", [{**hourly("kiosk", "ids", "2026-07-09")[0]}])
    today = local("2026-07-10", 9)  # the clock: the audit judges as of 10 July (local midnight)
    summary = audit.publish(s, fail_on=None, report=False, now=today)
    assert summary["findings"] >= 1 and summary["as_of"] == "2026-07-10T04:00:00Z"
    with pytest.raises(audit.AuditGateFailed, match=r"finding\(s\) at or above severity 'critical'"):
        audit.publish(s, fail_on="critical", report=False, now=today)
    assert (tmp_path / "home" / "derived" / "findings" / "findings.json").exists()
    # The DAG's separate gate task judges the published findings the same way.
    with pytest.raises(audit.AuditGateFailed, match="critical"):
        audit.gate(s, "critical")
    assert audit.gate(s, None)["at_or_above"] == 0


# --- due dates follow RetentionRule.due exactly ---------------------------------------------------------------

_moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC))
_periods = st.sampled_from(["P1M", "P1Y", "P2M3D", "P1Y1M", "PT72H", "P30D", "P2W", "P1MT1H", "none", "P6M"])


@given(moment=_moments, period=_periods)
@settings(max_examples=150, deadline=None)
def test_sql_due_dates_equal_retention_rule_due(moment, period):
    from pipelines.audit.context import due_parts

    rule = RetentionRule("x", period)
    months, micros = due_parts(rule)
    con = duckdb.connect()
    con.execute(retention.SETUP)
    (due,) = con.execute("SELECT due_at($t, $m, $u)", {"t": moment, "m": months, "u": micros}).fetchall()[0]
    assert due == rule.due(moment)


# --- CLI and report ----------------------------------------------------------------------------------------


@pytest.fixture
def cli_city(tmp_path, monkeypatch):
    s = settings_for(tmp_path, [deployment("cam", {"video": "P2D"}), deployment("kiosk", {"ids": "indefinite"})])
    rows = hourly("cam", "video", "2026-07-01") + hourly("kiosk", "ids", "2026-07-01")
    publish(s, "collection", rows + hourly("kiosk", "ids", "2026-07-06")[:1])  # latest event: 6 July 01:05 local
    monkeypatch.setenv(audit.NOW_ENV, "2026-07-07T15:00:00Z")  # "today" is 7 July: as of its local midnight
    monkeypatch.setenv("SENSORLOG_HOME", s.home)
    monkeypatch.setenv("SENSORLOG_REGISTRY", s.registry)
    return s


def test_cli_formats_and_fail_on(cli_city, tmp_path):
    from pipelines.cli import app

    runner = CliRunner()
    out = runner.invoke(app, ["audit", "--format", "json", "--as-of", "2026-07-06", "--no-report"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert {f["kind"] for f in doc["findings"]} == {"retained_past_policy", "indefinite_retention"}
    # a scoped audit (here: --as-of) never replaces the published tables
    assert not (tmp_path / "home" / "derived" / "findings").exists()

    gated = runner.invoke(app, ["audit", "--format", "csv", "--fail-on", "HIGH"])
    assert gated.exit_code == 3
    lines = gated.stdout.strip().splitlines()
    assert lines[0].startswith("id,kind,severity,deployment_id,data_class,period_start,period_end")
    assert len(lines) == 3
    assert (tmp_path / "home" / "derived" / "findings" / "findings.json").exists()
    assert (tmp_path / "home" / "reports" / "audit_report.html").exists()

    assert runner.invoke(app, ["audit", "--fail-on", "critical", "--no-report"]).exit_code == 0
    table = runner.invoke(app, ["audit", "--deployment", "kiosk", "--no-report"])
    assert table.exit_code == 0 and "1 finding(s)" in table.stdout and "1 info" in table.stdout
    assert runner.invoke(app, ["audit", "--format", "xml"]).exit_code == 2
    assert runner.invoke(app, ["audit", "--fail-on", "severe"]).exit_code == 2
    assert runner.invoke(app, ["audit", "--deployment", "nope"]).exit_code == 2


def test_report_is_self_contained_html_with_findings_and_charts(cli_city):
    result = run(cli_city, "2026-07-10")
    html = audit_report.render_report(result)
    assert html.count('<tr class="finding"') == result.findings.num_rows == 2
    assert html.count("<svg") == 2  # one chart per deployment
    assert 'id="findings-table"' in html and "retained_past_policy" in html
    for external in ("<link", "src=", "@import", "url(http"):  # its one script (the filters) is inline
        assert external not in html
    assert "No transparency-log checkpoint" in html
    uri = audit_report.write_report(cli_city, result)
    assert uri.endswith("reports/audit_report.html")


def test_audit_dag_imports_and_wires_publish_then_gate():
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import AssetOrTimeSchedule

    from pipelines.config import PROJECT_DIR

    bag = DagBag(dag_folder=str(PROJECT_DIR / "dags" / "sensorlog_audit.py"))
    assert bag.import_errors == {}
    dag = bag.dags["sensorlog_audit"]
    assert isinstance(dag.timetable, AssetOrTimeSchedule)
    assert sorted(t.task_id for t in dag.tasks) == ["audit_and_publish", "gate"]
    outlets = {a.name for a in dag.task_dict["audit_and_publish"].outlets}
    assert outlets == {"sensorlog.retention_ledger", "sensorlog.findings"}
    assert dag.task_dict["gate"].upstream_task_ids == {"audit_and_publish"}


def test_window_start_and_case_closed_triggers(tmp_path):
    triggers = {"clips": "window_start", "cases": "case_closed"}
    s = settings_for(tmp_path, [deployment("gun", {"clips": "P1D", "cases": "P1D"}, triggers=triggers)])
    publish(s, "collection", hourly("gun", "clips", "2026-07-01") + hourly("gun", "cases", "2026-07-01"))
    result = run(s, "2026-07-10")
    f = only(result)
    # Counted from the start of the day's last window (2 July 03:00Z), not from its end.
    assert (f["kind"], f["data_class"], f["numbers"]["first_due"]) == (
        "retained_past_policy",
        "clips",
        "2026-07-03T03:00:00Z",
    )
    # The log never sees a case close: no due date, so the ledger says "unknown" and nothing is judged.
    assert {r["status"] for r in ledger_rows(result, "cases")} == {"unknown"}


def test_only_rows_the_latest_checkpoint_covers_are_audited(tmp_path, monkeypatch):
    from pipelines.log import writer
    from pipelines.tlog.checkpoint import Checkpoint

    s = settings_for(tmp_path, [deployment("cam", {"video": "P2D"})])
    rows = hourly("cam", "video", "2026-07-01")
    publish(s, "collection", [{**r, "leaf_index": n} for n, r in enumerate(rows)])
    # Published, but the log has not signed a checkpoint covering it yet (leaves 24..47).
    later = hourly("cam", "video", "2026-07-02")
    publish(s, "collection", [{**r, "leaf_index": 24 + n} for n, r in enumerate(later)])
    checkpoint = Checkpoint("sensorlog.test/log", 24, bytes(range(32)))
    monkeypatch.setattr(writer, "latest_checkpoint", lambda settings: checkpoint)
    result = run(s, "2026-07-05")
    assert result.checkpoint["size"] == 24
    assert sum(result.ledger["collected"].to_pylist()) == 240
    assert "sensorlog.test/log" in audit_report.render_report(result)

    def broken(settings):
        raise ValueError("signature does not verify")

    monkeypatch.setattr(writer, "latest_checkpoint", broken)
    result = run(s, "2026-07-05")
    assert result.checkpoint == {"error": "ValueError: signature does not verify"}
    assert sum(result.ledger["collected"].to_pylist()) == 480  # reported, and every row read
