"""What each deployment actually did, from the published logs: the second half of its page.

One DuckDB query per question over all deployments (not one per deployment), split in Python.
Days are local calendar days in the city's time zone, as residents count them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import duckdb
import pyarrow.compute as pc

from pipelines.portal.tables import PublishedTable
from pipelines.registry import Registry

RECENT_ACCESSES = 15
# The per-day chart and table show at most this many days, ending at the last day with a report:
# a window dated years back (a vendor's clock reset to year 1) must not make a page of a million days.
CHART_DAYS = 366


@dataclass(frozen=True)
class AccessSummary:
    organisation: str
    role: str
    data_class: str
    events: int
    records: int
    first: datetime
    last: datetime
    declared: bool


@dataclass
class Activity:
    """Facts about one deployment; lists are empty when nothing was published."""

    days: list[date] = field(default_factory=list)  # every local day in the chart's range
    daily: dict[str, list[int]] = field(default_factory=dict)  # data class → records per day in ``days``
    collected: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    accesses: list[AccessSummary] = field(default_factory=list)
    recent: list[dict[str, Any]] = field(default_factory=list)
    lifecycle: list[dict[str, Any]] = field(default_factory=list)
    retention: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    first_leaf: int | None = None  # leaf index of its first published collection row

    @property
    def daily_totals(self) -> list[int]:
        return [sum(values) for values in zip(*self.daily.values(), strict=True)] if self.daily else []

    @property
    def access_events(self) -> int:
        return sum(a.events for a in self.accesses)


def _day_range(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _collected_per_day(con: duckdb.DuckDBPyConnection, timezone: str, out: dict[str, Activity]) -> None:
    rows = con.execute(
        "SELECT deployment_id, data_class, CAST(timezone(?, window_start) AS DATE) AS day, sum(records) "
        "FROM collection GROUP BY ALL ORDER BY ALL",
        [timezone],
    ).fetchall()
    # DuckDB hands back a local day before year 1 (midnight UTC of 1 January of year 1, west of
    # Greenwich) as text: it is counted in the totals but has no place on a chart.
    charted = [r[2] for r in rows if isinstance(r[2], date)]
    if not rows or not charted:
        days: list[date] = []
    else:
        # One range for every deployment, so charts line up and a silent deployment shows as a gap.
        last = max(charted)
        first = max(min(charted), date.fromordinal(max(1, last.toordinal() - CHART_DAYS + 1)))
        days = _day_range(first, last)
    index = {d: i for i, d in enumerate(days)}
    for dep_id, data_class, day, records in rows:
        act = out[dep_id]
        act.collected[data_class] = act.collected.get(data_class, 0) + int(records)
        if day in index:
            act.days = days
            act.daily.setdefault(data_class, [0] * len(days))[index[day]] += int(records)


def _first_leaves(con: duckdb.DuckDBPyConnection, out: dict[str, Activity]) -> None:
    for dep_id, leaf in con.execute("SELECT deployment_id, min(leaf_index) FROM collection GROUP BY 1").fetchall():
        out[dep_id].first_leaf = int(leaf)


def _deleted(con: duckdb.DuckDBPyConnection, out: dict[str, Activity]) -> None:
    for dep_id, data_class, records in con.execute(
        "SELECT deployment_id, data_class, sum(records) FROM deletion GROUP BY ALL ORDER BY ALL"
    ).fetchall():
        out[dep_id].deleted[data_class] = int(records)


def _accesses(con: duckdb.DuckDBPyConnection, registry: Registry, out: dict[str, Activity]) -> None:
    rows = con.execute(
        "SELECT deployment_id, organisation, role, data_class, count(*), sum(records), min(accessed_at), "
        "max(accessed_at) FROM access GROUP BY ALL ORDER BY deployment_id, count(*) DESC, organisation, role"
    ).fetchall()
    for dep_id, org, role, data_class, events, records, first, last in rows:
        deployment = registry.get(dep_id)
        declared = bool(deployment and deployment.policy_at(last).allows(org, role))
        out[dep_id].accesses.append(
            AccessSummary(org, role, data_class, int(events), int(records or 0), first, last, declared)
        )
    recent = con.execute(
        "SELECT deployment_id, accessed_at, organisation, role, data_class, purpose, case_ref, records FROM ("
        "  SELECT *, row_number() OVER (PARTITION BY deployment_id ORDER BY accessed_at DESC, leaf_index DESC) AS n"
        "  FROM access) WHERE n <= ? ORDER BY deployment_id, accessed_at DESC",
        [RECENT_ACCESSES],
    ).fetchall()
    names = ("accessed_at", "organisation", "role", "data_class", "purpose", "case_ref", "records")
    for dep_id, *values in recent:
        out[dep_id].recent.append(dict(zip(names, values, strict=True)))


def _lifecycle(con: duckdb.DuckDBPyConnection, out: dict[str, Activity]) -> None:
    for dep_id, at, action, details in con.execute(
        'SELECT deployment_id, "at", action, details FROM lifecycle ORDER BY deployment_id, "at", leaf_index'
    ).fetchall():
        out[dep_id].lifecycle.append({"at": at, "action": action, "details": details})


def _rows_by_deployment(table: PublishedTable | None) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if table is None or "deployment_id" not in table.data.column_names:
        return grouped
    for row in table.data.to_pylist():
        grouped[row["deployment_id"]].append(row)
    return grouped


def _latest_retention(table: PublishedTable | None) -> dict[str, list[dict[str, Any]]]:
    """The retention ledger's last day per deployment and data class: its current status."""
    if table is None or table.data.num_rows == 0:
        return {}
    data = table.data
    if table.time_column:
        data = data.sort_by([(table.time_column, "ascending")])
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in data.to_pylist():
        latest[(row.get("deployment_id"), row.get("data_class"))] = row
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for (dep_id, _), row in sorted(latest.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1]))):
        grouped[dep_id].append(row)
    return grouped


def _severity_rank(row: dict[str, Any]) -> int:
    order = {"critical": 0, "high": 1, "error": 1, "medium": 2, "warning": 2, "low": 3, "info": 4}
    return order.get(str(row.get("severity", "")).lower(), 5)


def collect_activity(
    con: duckdb.DuckDBPyConnection,
    registry: Registry,
    timezone: str,
    retention: PublishedTable | None,
    findings: PublishedTable | None,
) -> dict[str, Activity]:
    """Activity for every deployment in the registry (and any id the logs name that it lacks)."""
    out: dict[str, Activity] = defaultdict(Activity)
    for d in registry:
        out[d.id] = Activity()
    _collected_per_day(con, timezone, out)
    _first_leaves(con, out)
    _deleted(con, out)
    _accesses(con, registry, out)
    _lifecycle(con, out)
    for dep_id, rows in _latest_retention(retention).items():
        out[dep_id].retention = rows
    for dep_id, rows in _rows_by_deployment(findings).items():
        out[dep_id].findings = sorted(rows, key=lambda r: (_severity_rank(r), str(r.get("id"))))
    return dict(out)


def finding_counts(findings: PublishedTable | None) -> dict[str, int]:
    if findings is None or "deployment_id" not in findings.data.column_names:
        return {}
    counts = pc.value_counts(findings.data["deployment_id"]).to_pylist()
    return {c["values"]: c["counts"] for c in counts if c["values"] is not None}
