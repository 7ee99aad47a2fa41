"""The small tables the audit SQL joins against, built in Python from the registry and the calendar.

The registry and the local calendar are the two things SQL should not re-implement: local days
come from ``zoneinfo`` exactly as the generator and the registry compute them, and policy versions
come from ``Registry`` objects. Each table has one row per version or per day, never per event.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pyarrow as pa

from pipelines.registry import ACCESS_DECLARED, Registry, RetentionRule, local_day
from pipelines.registry.declarations import SOURCE, Declared

TIMESTAMP = pa.timestamp("us", tz="UTC")


def local_midnight(day: date, timezone: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def local_date(moment: datetime, timezone: str) -> date:
    return local_day(moment, timezone)  # clamped to years 1-9999, so a calendar can be built around it


def calendar_table(first: date, last: date, timezone: str) -> pa.Table:
    """One row per local day in [first, last]: its start and end instants in UTC (23 or 25 hours on
    DST change days)."""
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    starts = [local_midnight(d, timezone) for d in days]
    ends = [local_midnight(d + timedelta(days=1), timezone) for d in days]
    return pa.table(
        {
            "day": pa.array(days, pa.date32()),
            "day_start": pa.array(starts, TIMESTAMP),
            "day_end": pa.array(ends, TIMESTAMP),
        }
    )


def due_parts(rule: RetentionRule) -> tuple[int, int]:
    """(calendar months, exact microseconds) of a duration rule, the two halves ``RetentionRule.due``
    adds in that order; (0, 0) for ``none`` and ``indefinite``."""
    d = rule.iso_duration
    if d is None:
        return 0, 0
    fixed = timedelta(weeks=d.weeks, days=d.days, hours=d.hours, minutes=d.minutes, seconds=d.seconds)
    return d.years * 12 + d.months, fixed // timedelta(microseconds=1)


POLICY_SCHEMA = pa.schema(
    [
        ("deployment_id", pa.string()),
        ("data_class", pa.string()),
        ("policy_version", pa.int64()),
        ("valid_from", pa.date32()),
        ("valid_to", pa.date32()),
        ("period", pa.string()),
        ("kind", pa.string()),
        ("trigger", pa.string()),
        ("months", pa.int32()),
        ("micros", pa.int64()),
    ]
)


def policy_table(declared: Declared) -> pa.Table:
    """One row per deployment, stretch of days judged by one policy, and data class: the local days
    [valid_from, valid_to) the policy is judged by (``Declared.segments``: the version in force as
    the log declared it on that day), and the rule split into what SQL needs to compute a due date."""
    rows = []
    for deployment_id in declared.histories:
        for version, valid_from, valid_to in declared.segments(deployment_id):
            for rule in version.retention:
                months, micros = due_parts(rule)
                rows.append(
                    {
                        "deployment_id": deployment_id,
                        "data_class": rule.data_class,
                        "policy_version": version.version,
                        "valid_from": valid_from,
                        "valid_to": valid_to,
                        "period": rule.period,
                        "kind": rule.kind,
                        "trigger": rule.trigger,
                        "months": months,
                        "micros": micros,
                    }
                )
    return pa.Table.from_pylist(rows, schema=POLICY_SCHEMA)


def deployment_table(registry: Registry) -> pa.Table:
    deps = list(registry)
    return pa.table(
        {
            "deployment_id": pa.array([d.id for d in deps], pa.string()),
            "commissioned": pa.array([d.commissioned for d in deps], pa.date32()),
            "decommissioned": pa.array([d.decommissioned for d in deps], pa.date32()),
        }
    )


def declared_table(registry: Registry) -> pa.Table:
    pairs = [(d.id, c) for d in registry for c in d.data_classes]
    return pa.table(
        {
            "deployment_id": pa.array([p[0] for p in pairs], pa.string()),
            "data_class": pa.array([p[1] for p in pairs], pa.string()),
        }
    )


DENIED_SCHEMA = pa.schema(
    [
        ("deployment_id", pa.string()),
        ("day", pa.date32()),
        ("organisation", pa.string()),
        ("role", pa.string()),
        ("policy_version", pa.int64()),
        ("verdict", pa.string()),  # undeclared, or unverifiable (the policy also grants unnamed organisations)
    ]
)


def denied_access(declared: Declared, tuples: pa.Table) -> pa.Table:
    """Of the distinct (deployment_id, day, organisation, role) access tuples, those the policy the
    deployment is judged by that local day does not allow, with that policy's version.

    Runs ``PolicyVersion.judge`` itself (case-insensitive organisations, exact roles) so the audit can
    never disagree with the registry about who is allowed; the input has one row per distinct tuple,
    not per access event. ``verdict`` is ``unverifiable`` when the policy grants access to organisations
    it does not name (a bare count): such an access is neither shown declared nor shown undeclared.
    """
    denied = []
    for row in tuples.to_pylist():
        if row["deployment_id"] not in declared.histories:
            continue  # validation quarantines unknown deployments; nothing to judge them by
        policy = declared.policy_at(row["deployment_id"], row["day"])
        verdict = policy.judge(row["organisation"], row["role"])
        if verdict != ACCESS_DECLARED:
            denied.append({**row, "policy_version": policy.version, "verdict": verdict})
    return pa.Table.from_pylist(denied, schema=DENIED_SCHEMA)


RETROACTIVE_SCHEMA = pa.schema(
    [
        ("deployment_id", pa.string()),
        ("policy_version", pa.int64()),
        ("period_start", TIMESTAMP),
        ("period_end", TIMESTAMP),
        ("days", pa.int64()),
        ("declared_at", TIMESTAMP),
        ("previous_event_id", pa.string()),
        ("previous_leaf", pa.int64()),
        ("previous_sha256", pa.string()),
        ("event_id", pa.string()),
        ("leaf", pa.int64()),
        ("sha256", pa.string()),
        ("source", pa.string()),
    ]
)


def retroactive_table(declared: Declared, timezone: str) -> pa.Table:
    """One row per logged version that rewrote the terms of days before it was logged: the days it
    rewrote, as [local midnight of the first, local midnight after the last), and both versions."""
    rows = []
    for r in declared.retroactive_changes():
        rows.append(
            {
                "deployment_id": r.deployment_id,
                "policy_version": r.current.deployment.policy_at(r.first_day).version,
                "period_start": local_midnight(r.first_day, timezone),
                "period_end": local_midnight(r.last_day + timedelta(days=1), timezone),
                "days": (r.last_day - r.first_day).days + 1,
                "declared_at": r.current.declared_at,
                "previous_event_id": r.previous.event_id,
                "previous_leaf": r.previous.leaf_index,
                "previous_sha256": r.previous.record_sha256,
                "event_id": r.current.event_id,
                "leaf": r.current.leaf_index,
                "sha256": r.current.record_sha256,
                "source": SOURCE,
            }
        )
    return pa.Table.from_pylist(rows, schema=RETROACTIVE_SCHEMA)
