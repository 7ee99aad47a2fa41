"""The audit keeps judging as time passes: "as of" defaults to today in the city's time zone (an
injected clock here), so records fall due and stopped feeds turn silent with no new event; a window
covering many days is activity on each of them and its retention starts at its end; every output
states the as-of date and the newest event seen. America/New_York: UTC-4 in summer, UTC-5 in winter."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from audit_kit import day_deletion, deletion, deployment, hourly, local, publish, settings_for
from typer.testing import CliRunner

from pipelines import audit
from pipelines.audit import NOW_ENV, AuditOptions
from pipelines.audit import report as audit_report

pytestmark = pytest.mark.integration


def audit_at(s, now: datetime, **options):
    """The audit with no --as-of, on a day when the clock says ``now``."""
    return audit.run_audit(s, AuditOptions(now=now, **options))


def of_kind(result, kind: str) -> dict[str, dict]:
    return {f["deployment_id"]: f for f in result.finding_dicts() if f["kind"] == kind}


def window(dep: str, data_class: str, start: datetime, end: datetime, records: int = 100, **extra) -> dict:
    """One collection event for [start, end), reported 10 minutes after its end."""
    return {
        "deployment_id": dep,
        "data_class": data_class,
        "window_start": start,
        "window_end": end,
        "records": records,
        "event_time": end + timedelta(minutes=10),
        **extra,
    }


# --- the default as-of: today in the city's zone ----------------------------------------------------------


def test_as_of_defaults_to_the_current_date_in_the_city_zone():
    # 1 December 03:30Z is still 30 November in New York (22:30 EST): the audit is as of 30 November.
    now = datetime(2026, 12, 1, 3, 30, tzinfo=UTC)
    assert audit.default_as_of("America/New_York", now) == datetime(2026, 11, 30, 5, tzinfo=UTC)
    # ... and already 1 December in Tokyo (12:30 JST): local midnight there is 30 November 15:00Z.
    assert audit.default_as_of("Asia/Tokyo", now) == datetime(2026, 11, 30, 15, tzinfo=UTC)
    # The clock can be injected through the environment (a date is local midnight, like --as-of).
    assert audit.current_time("America/New_York", {NOW_ENV: "2026-08-03T14:00:00Z"}) == datetime(
        2026, 8, 3, 14, tzinfo=UTC
    )
    assert audit.current_time("America/New_York", {NOW_ENV: "2026-08-03"}) == datetime(2026, 8, 3, 4, tzinfo=UTC)
    with pytest.raises(ValueError, match=NOW_ENV):
        audit.current_time("America/New_York", {NOW_ENV: "yesterday"})
    before = datetime.now(UTC)
    assert before - timedelta(seconds=60) <= audit.current_time("America/New_York", {}) <= datetime.now(UTC)


def test_run_audit_is_as_of_today_not_the_newest_event(tmp_path, monkeypatch):
    s = settings_for(tmp_path, [deployment("cam", {"video": "P2D"})])
    publish(s, "collection", hourly("cam", "video", "2026-07-01"))  # newest event: 2 July 00:05 local
    now = datetime(2026, 7, 20, 16, tzinfo=UTC)
    result = audit_at(s, now)
    assert result.as_of == datetime(2026, 7, 20, 4, tzinfo=UTC)  # local midnight of 20 July
    assert result.until == result.as_of  # every local day up to the end of 19 July is judged
    assert (result.as_of_date, result.as_of_source) == (date(2026, 7, 20), "today")
    assert result.newest_event == datetime(2026, 7, 2, 4, 5, tzinfo=UTC)
    assert max(result.ledger["day"].to_pylist()) == date(2026, 7, 19)

    monkeypatch.setenv(NOW_ENV, "2026-07-20T16:00:00Z")  # the same clock, through the environment
    from_env = audit.run_audit(s)
    assert from_env.as_of == result.as_of
    assert from_env.findings.equals(result.findings)
    # An explicit --as-of still wins, and says so.
    given = audit.run_audit(s, AuditOptions(as_of=audit.parse_as_of("2026-07-03", s.timezone), now=now))
    assert (given.as_of_date, given.as_of_source) == (date(2026, 7, 3), "given")


# --- time passes, no new events -----------------------------------------------------------------------------


def test_a_month_after_the_last_event_every_active_deployment_is_silent(tmp_path):
    docs = [
        deployment("cam", {"video": "P2D"}),
        deployment("kiosk", {"ids": "none"}),
        deployment("counter", {"counts": "indefinite"}),
        deployment("gone", {"video": "P2D"}, decommissioned="2026-07-03"),  # out of service: never silent
        deployment("new", {"counts": "indefinite"}, commissioned="2026-07-25"),  # never reported at all
    ]
    s = settings_for(tmp_path, docs)
    days = ["2026-07-01", "2026-07-02", "2026-07-03"]
    rows = [r for d in days for c, k in (("cam", "video"), ("kiosk", "ids"), ("counter", "counts"), ("gone", "video"))
            for r in hourly(c, k, d)]
    publish(s, "collection", rows)
    publish(s, "deletion", [day_deletion("kiosk", "ids", d, local(date.fromisoformat(d) + timedelta(days=1)))
                            for d in days])

    soon = audit_at(s, local("2026-07-06", 12))  # 2 quiet days: nothing yet
    assert of_kind(soon, "silent_deployment") == {}

    later = audit_at(s, local("2026-08-04", 12))  # a month on, and not one new event
    silent = of_kind(later, "silent_deployment")
    assert set(silent) == {"cam", "kiosk", "counter", "new"}
    for dep, data_class in (("cam", "video"), ("kiosk", "ids"), ("counter", "counts")):
        f = silent[dep]  # from the first quiet day to the end of the last audited day (3 August)
        assert (f["period_start"], f["period_end"], f["numbers"]["days"]) == (
            "2026-07-04T04:00:00Z",
            "2026-08-04T04:00:00Z",
            31,
        )
        # Evidence: the last window heard (3 July 23:00 local), and none after it.
        assert [e["id"] for e in f["evidence"]] == [f"col-{dep}-{data_class}-20260704T03"]
    assert (silent["new"]["period_start"], silent["new"]["numbers"]["days"]) == ("2026-07-25T04:00:00Z", 10)
    # The camera's records were never deleted: overdue, and the ledger says so on the last day.
    kept = of_kind(later, "retained_past_policy")
    assert set(kept) == {"cam", "gone"}
    assert kept["cam"]["numbers"]["records_retained"] == 720
    last_day = [r for r in later.ledger.to_pylist() if r["day"] == date(2026, 8, 3) and r["deployment_id"] == "cam"]
    assert [r["status"] for r in last_day] == ["overdue"]


def test_retained_past_policy_appears_with_time_alone(tmp_path):
    s = settings_for(tmp_path, [deployment("cam", {"video": "P2D"})])
    publish(s, "collection", hourly("cam", "video", "2026-07-01"))  # due 4 July 04:00Z, grace 1 day
    # The same log, audited on later and later days.
    by_day = {d: audit_at(s, local(d, 10), silence_days=365) for d in ("2026-07-03", "2026-07-05", "2026-07-06")}
    assert by_day["2026-07-03"].findings.num_rows == 0
    assert by_day["2026-07-05"].findings.num_rows == 0  # as of 5 July 04:00Z = due + grace exactly
    f = of_kind(by_day["2026-07-06"], "retained_past_policy")["cam"]
    assert (f["period_start"], f["numbers"]["first_due"], f["numbers"]["records_retained"]) == (
        "2026-07-01T04:00:00Z",
        "2026-07-04T04:00:00Z",
        240,
    )


# --- windows covering many days ---------------------------------------------------------------------------------


def test_a_30_day_window_is_activity_on_every_day_it_covers(tmp_path):
    s = settings_for(tmp_path, [deployment("portal", {"counts": "indefinite"})])
    # Vendor portal totals: [1 July, 31 July) and [31 July, 30 August), local midnights.
    publish(s, "collection", [window("portal", "counts", local("2026-07-01"), local("2026-07-31"), event_id="jul"),
                              window("portal", "counts", local("2026-07-31"), local("2026-08-30"), event_id="aug")])
    # (As of 31 August: the second total, reported 30 August 00:10 local, is known by then.)
    assert of_kind(audit_at(s, local("2026-08-31", 12)), "silent_deployment") == {}

    # After the second window ends the feed stops; silence begins the day after it, not before.
    f = of_kind(audit_at(s, local("2026-09-10", 12)), "silent_deployment")["portal"]
    assert (f["period_start"], f["period_end"], f["numbers"]["days"]) == (
        "2026-08-30T04:00:00Z",
        "2026-09-10T04:00:00Z",
        11,
    )
    assert [e["id"] for e in f["evidence"]] == ["aug"]


def test_a_window_ending_at_midnight_does_not_cover_the_next_day(tmp_path):
    s = settings_for(tmp_path, [deployment("portal", {"counts": "indefinite"})])
    # [1 July, 8 July) covers 1..7 July; one second more and it covers 8 July too.
    publish(s, "collection", [window("portal", "counts", local("2026-07-01"), local("2026-07-08"))])
    f = of_kind(audit_at(s, local("2026-07-15", 12)), "silent_deployment")["portal"]
    assert (f["period_start"], f["numbers"]["days"]) == ("2026-07-08T04:00:00Z", 7)

    s2 = settings_for(tmp_path / "two", [deployment("portal", {"counts": "indefinite"})])
    one_more_second = local("2026-07-08") + timedelta(seconds=1)
    publish(s2, "collection", [window("portal", "counts", local("2026-07-01"), one_more_second)])
    assert of_kind(audit_at(s2, local("2026-07-15", 12)), "silent_deployment") == {}  # 9..14 July: 6 days


def test_retention_of_a_30_day_window_starts_at_its_end(tmp_path):
    s = settings_for(tmp_path, [deployment("portal", {"sessions": "P30D"})])
    start, end = local("2026-07-01"), local("2026-07-31")  # due 30 August 04:00Z, not 31 July
    publish(s, "collection", [window("portal", "sessions", start, end, records=5000, event_id="jul")])

    on_31_aug = audit_at(s, local("2026-08-31", 10), silence_days=365)  # as of due + grace exactly
    assert on_31_aug.findings.num_rows == 0
    row = [r for r in on_31_aug.ledger.to_pylist() if r["day"] == date(2026, 7, 1)][0]
    assert (row["collected"], row["oldest_due"]) == (5000, datetime(2026, 8, 30, 4, tzinfo=UTC))

    f = of_kind(audit_at(s, local("2026-09-01", 10), silence_days=365), "retained_past_policy")["portal"]
    assert (f["numbers"]["first_due"], f["numbers"]["records_retained"], f["period_start"]) == (
        "2026-08-30T04:00:00Z",
        5000,
        "2026-07-01T04:00:00Z",
    )

    # Deleted 15 minutes after its due date: on time (it would be 30 days late counted from the start).
    publish(s, "deletion", [deletion("portal", "sessions", start, end, datetime(2026, 8, 30, 4, 15, tzinfo=UTC),
                                     records=5000)])
    purged = audit_at(s, local("2026-09-20", 10), silence_days=365)
    assert purged.findings.num_rows == 0
    [stats] = purged.lateness.to_pylist()
    assert (stats["late"], stats["max_days"]) == (0, 0.01)


# --- every output states when it judged ------------------------------------------------------------------------


@pytest.fixture
def stale_city(tmp_path, monkeypatch):
    s = settings_for(tmp_path, [deployment("cam", {"video": "P2D"})])
    publish(s, "collection", hourly("cam", "video", "2026-07-01") + hourly("cam", "video", "2026-07-02"))
    # One event the vendor dated in the future of the clock: in the log, not counted.
    publish(s, "collection", [window("cam", "video", local("2026-09-01"), local("2026-09-01", 1), event_id="late")])
    monkeypatch.setenv(NOW_ENV, "2026-08-03T15:00:00Z")
    monkeypatch.setenv("SENSORLOG_HOME", s.home)
    monkeypatch.setenv("SENSORLOG_REGISTRY", s.registry)
    return s


def test_report_json_and_csv_state_the_as_of_date_and_newest_event(stale_city):
    from pipelines.cli import app

    s = stale_city
    result = audit.run_audit(s)
    newest = "2026-07-03T04:05:00Z"  # the 23:00 window of 2 July, reported at 00:05 local on 3 July
    assert audit.iso(result.newest_event) == newest
    assert audit.iso(result.newest_event_in_log) == "2026-09-01T05:10:00Z"

    html = audit_report.render_report(result)
    assert '<b id="as-of-date">2026-08-03</b> (today)' in html
    assert f'<b id="newest-event">{newest}</b>' in html
    assert "2026-09-01T05:10:00Z" in html and "not counted" in html

    runner = CliRunner()
    out = runner.invoke(app, ["audit", "--format", "json", "--no-report"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert (doc["as_of"], doc["as_of_date"], doc["as_of_source"], doc["newest_event"]) == (
        "2026-08-03T04:00:00Z",
        "2026-08-03",
        "today",
        newest,
    )
    assert "silent_deployment" in {f["kind"] for f in doc["findings"]}
    published = json.loads((Path(s.derived) / "findings" / "findings.json").read_text())
    assert (published["as_of_date"], published["newest_event"]) == ("2026-08-03", newest)

    rows = list(csv.DictReader(io.StringIO(runner.invoke(app, ["audit", "--format", "csv", "--no-report"]).stdout)))
    assert rows and {(r["as_of"], r["as_of_date"], r["newest_event"]) for r in rows} == {
        ("2026-08-03T04:00:00Z", "2026-08-03", newest)
    }
    table = runner.invoke(app, ["audit", "--no-report"])
    assert table.exit_code == 0
    text = " ".join(table.stdout.split())  # rich wraps lines at the terminal width
    assert "as of 2026-08-03 (today" in text and f"newest event seen {newest}" in text

    given = runner.invoke(app, ["audit", "--format", "json", "--as-of", "2026-07-10", "--no-report"])
    assert json.loads(given.stdout)["as_of_source"] == "given"


def test_a_bad_injected_clock_is_a_clean_error(stale_city, monkeypatch):
    from pipelines.cli import app

    monkeypatch.setenv(NOW_ENV, "not a date")
    out = CliRunner().invoke(app, ["audit", "--no-report"])
    assert out.exit_code == 2
    assert NOW_ENV in out.output
