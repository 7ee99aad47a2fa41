"""The demo city through the real pipeline: the audit finds exactly what the generator injected."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from pipelines import audit, flow
from pipelines.audit import report as audit_report
from pipelines.config import PROJECT_DIR, Settings
from pipelines.dev import synthetic
from pipelines.registry import load_registry

pytestmark = pytest.mark.system  # the three-month demo city through the whole pipeline: minutes to build

# Three months are enough for every injection (the last, a deletion 11 days late, lands in late
# September; the decommissioned camera's extra collection ends 20 September) and keep the run short.
START, END = date(2026, 7, 1), date(2026, 10, 1)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("audit-demo")
    settings = Settings.from_env({"SENSORLOG_HOME": str(root), "SENSORLOG_REGISTRY": str(PROJECT_DIR / "registry")})
    registry = load_registry(settings.registry)
    truth = synthetic.write_city(registry, settings.landing, synthetic.options_for(start=START, end=END))
    flow.run(settings)
    # As of the generator's end (its ground truth is computed as of that local midnight), not today.
    as_of = audit.parse_as_of(END, settings.timezone)
    return settings, truth, audit.run_audit(settings, audit.AuditOptions(as_of=as_of), registry=registry)


def _key(f: dict) -> tuple:
    return f["kind"], f["deployment_id"], f["data_class"], f["period_start"], f["period_end"]


def test_findings_equal_the_injected_ground_truth(demo):
    settings, truth, result = demo
    found = {_key(f): f for f in result.finding_dicts()}
    injected = {_key(f): f for f in truth.findings}
    assert sorted(found) == sorted(injected)
    for key, want in injected.items():
        got = found[key]
        if "evidence" in want:
            assert got["evidence"] == want["evidence"], key
        if "days_late" in want:  # the vendor purges 15 minutes after the due date, then N days late
            assert int(got["numbers"]["days_late"]) == want["days_late"], key
        for number in ("organisation", "role", "records", "days"):
            if number in want:
                assert got["numbers"][number] == want[number], key


def test_as_of_is_the_generators_end_and_the_checkpoint_is_named(demo):
    settings, truth, result = demo
    assert result.until.isoformat() == "2026-10-01T04:00:00+00:00"  # local midnight of the generator's end
    assert result.checkpoint is not None and result.checkpoint["size"] > 0
    # The ALPR whose retention went from 30 to 14 days on 1 August is judged per collection day.
    alpr = [r for r in result.ledger.to_pylist() if r["deployment_id"] == "alpr-river-road-bridge"]
    assert {r["policy_version"] for r in alpr if r["day"] < date(2026, 8, 1)} == {1}
    assert {r["policy_version"] for r in alpr if r["day"] >= date(2026, 8, 1)} == {2}


def test_a_month_after_its_last_event_every_active_deployment_is_silent_and_retention_overdue(demo):
    """The demo home audited a month after the generator stopped (no --as-of: the clock is injected):
    every deployment still in service is silent through the last audited day, and what the vendors
    would have purged in that month is overdue."""
    settings, truth, _ = demo
    registry = load_registry(settings.registry)
    today = END + timedelta(days=31)
    result = audit.run_audit(settings, audit.AuditOptions(now=datetime(2026, 11, 1, 15, tzinfo=UTC)), registry=registry)
    assert (result.as_of_date, result.as_of_source) == (today, "today")
    last_day = today - timedelta(days=1)
    in_service = {
        d.id for d in registry if d.commissioned <= END and (d.decommissioned is None or d.decommissioned >= today)
    }
    assert len(in_service) >= 30
    silent_to_the_end = {
        f["deployment_id"]
        for f in result.finding_dicts()
        if f["kind"] == "silent_deployment" and f["period_end"] == audit.iso(result.until)
    }
    assert silent_to_the_end == in_service
    # Short retention collected in the generator's last days: due within the month, never purged.
    short = {
        (d.id, rule.data_class)
        for d in registry
        if d.id in in_service
        for rule in d.policy_at(END - timedelta(days=1)).retention
        if rule.kind == "duration" and rule.trigger == "window_end" and rule.duration < timedelta(days=20)
    }
    assert short
    findings = result.finding_dicts()
    overdue = {(f["deployment_id"], f["data_class"]) for f in findings if f["kind"] == "retained_past_policy"}
    assert short <= overdue
    ledger = result.ledger.to_pylist()
    last = {(r["deployment_id"], r["data_class"]): r["status"] for r in ledger if r["day"] == last_day}
    assert {last[k] for k in short} == {"overdue"}


def test_outputs_and_report_on_the_demo_city(demo):
    settings, truth, result = demo
    paths = audit.write_outputs(settings, result)
    assert set(paths) == {"retention_ledger", "findings", "findings_json"}
    html = audit_report.render_report(result, load_registry(settings.registry))
    assert html.count('<tr class="finding"') == len(truth.findings)
    assert html.count("<svg") == len(set(result.ledger["deployment_id"].to_pylist()))
    assert str(result.checkpoint["size"]) in html


def test_a_small_duckdb_memory_limit_spills_and_changes_nothing(demo):
    """``SENSORLOG_DUCKDB_MEMORY`` bounds DuckDB; the audit spills to disk and finds the same."""
    import dataclasses

    from pipelines import summary

    settings, _, result = demo
    small = dataclasses.replace(settings, duckdb_memory="100MB")
    con = summary.connect(small)
    try:
        limit = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    finally:
        con.close()
    assert limit.replace(" ", "") in {"100.0MB", "95.3MiB"}
    bounded = audit.run_audit(small, result.options)
    assert bounded.findings.to_pylist() == result.findings.to_pylist()
    assert bounded.ledger.equals(result.ledger)
