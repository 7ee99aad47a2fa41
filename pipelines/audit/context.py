"""The small tables the audit SQL joins against, built in Python from the registry and the calendar.

The registry and the local calendar are the two things SQL should not re-implement: local days
come from ``zoneinfo`` exactly as the generator and the registry compute them, and policy versions
come from ``Registry`` objects. Each table has one row per version or per day, never per event.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pyarrow as pa

from pipelines.registry import Deployment, PolicyVersion, Registry, RetentionRule, local_day

TIMESTAMP = pa.timestamp("us", tz="UTC")
# Before its first version a deployment is judged by that first version (Deployment.policy_at).
BEFORE_TIME = date(1, 1, 1)
END_OF_TIME = date(9999, 12, 31)


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


def _version_rows(deployment: Deployment) -> Iterable[tuple[PolicyVersion, date, date]]:
    versions = deployment.policy_versions
    for n, version in enumerate(versions):
        valid_from = BEFORE_TIME if n == 0 else version.effective_from
        valid_to = versions[n + 1].effective_from if n + 1 < len(versions) else END_OF_TIME
        yield version, valid_from, valid_to


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


def policy_table(registry: Registry) -> pa.Table:
    """One row per deployment, policy version and data class: the local days [valid_from, valid_to)
    the version is in force, and the rule split into what SQL needs to compute a due date."""
    rows = []
    for deployment in registry:
        for version, valid_from, valid_to in _version_rows(deployment):
            for rule in version.retention:
                months, micros = due_parts(rule)
                rows.append(
                    {
                        "deployment_id": deployment.id,
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
    ]
)


def denied_access(registry: Registry, tuples: pa.Table) -> pa.Table:
    """Of the distinct (deployment_id, day, organisation, role) access tuples, those the policy in
    force that local day does not allow, with that policy's version.

    Runs ``PolicyVersion.allows`` itself (case-insensitive organisations, exact roles) so the audit can
    never disagree with the registry about who is allowed; the input has one row per distinct tuple,
    not per access event.
    """
    denied = []
    for row in tuples.to_pylist():
        deployment = registry.get(row["deployment_id"])
        if deployment is None:
            continue  # validation quarantines unknown deployments; nothing to judge them by
        policy = deployment.policy_at(row["day"])
        if not policy.allows(row["organisation"], row["role"]):
            denied.append({**row, "policy_version": policy.version})
    return pa.Table.from_pylist(denied, schema=DENIED_SCHEMA)
