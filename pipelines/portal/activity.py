"""What each deployment actually did, from the published logs: the second half of its page.

One DuckDB query per question over all deployments (not one per deployment), split in Python.
Days are local calendar days in the city's time zone, as residents count them.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.portal import glance
from pipelines.portal.tables import PublishedTable
from pipelines.registry import Deployment, Registry

RECENT_ACCESSES = 15
# A chart has at most this many bars. Its range is the deployment's own active period (commissioned to
# decommissioned, or the log's last day, widened to any day it reported on), in days when that fits, else
# weeks, else months; beyond 366 months only the last 366 are drawn. So a window dated years back (a
# vendor's clock reset to year 1) never makes a page of a million bars, and four months of a node that
# lived in 2018 are not a sliver of a 2018-2024 axis.
CHART_BARS = 366
BUCKETS = ("day", "week", "month")

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

    days: list[date] = field(default_factory=list)  # the first local day of each bar of the chart
    daily: dict[str, list[int]] = field(default_factory=dict)  # data class → records per bar in ``days``
    bucket: str = "day"  # what one bar is: a "day", "week" or "month" (see BUCKETS)
    spread: bool = False  # some window spans more than one day: its records are shared over its days
    collected: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    accesses: list[AccessSummary] = field(default_factory=list)
    recent: list[dict[str, Any]] = field(default_factory=list)
    lifecycle: list[dict[str, Any]] = field(default_factory=list)
    retention: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    first_leaf: int | None = None  # leaf index of its first published collection row
    # The first screen's last 30 days (pipelines.portal.glance): the window, the retention ledger's rows
    # of its days (all classes), and what vendor portals count in it. ``window`` is None only when the
    # build was given no "today" and the audit has not run.
    window: glance.Window | None = None
    ledger_window: list[dict[str, Any]] = field(default_factory=list)
    numbers: glance.WindowNumbers = field(default_factory=glance.WindowNumbers)

    @property
    def daily_totals(self) -> list[int]:
        return [sum(values) for values in zip(*self.daily.values(), strict=True)] if self.daily else []

    @property
    def access_events(self) -> int:
        return sum(a.events for a in self.accesses)


def _day_range(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)


def chart_buckets(first: date, last: date) -> tuple[str, list[date]]:
    """(bucket, the first day of each bar) for a chart from ``first`` to ``last``, both included: days when
    at most CHART_BARS of them, else weeks, else calendar months (the last CHART_BARS of them)."""
    span = (last - first).days + 1
    if span <= CHART_BARS:
        return "day", _day_range(first, last)
    if span <= CHART_BARS * 7:
        return "week", [first + timedelta(days=7 * i) for i in range((span + 6) // 7)]
    months = [_month_start(last)]
    while len(months) < CHART_BARS and months[-1] > _month_start(first):
        previous = months[-1] - timedelta(days=1)
        months.append(_month_start(previous))
        if previous.year == 1 and previous.month == 1:
            break
    return "month", list(reversed(months))


def _bar_end(bucket: str, starts: list[date], i: int, last: date) -> date:
    """The last day of bar ``i``."""
    if i + 1 < len(starts):
        return starts[i + 1] - timedelta(days=1)
    if bucket == "day":
        return starts[i]
    if bucket == "week":
        return min(starts[i] + timedelta(days=6), last)
    return last


def _active_range(deployment: Deployment | None, own: tuple[date, date], log: tuple[date, date]) -> tuple[date, date]:
    """The days a deployment's chart covers: its commissioning (or the log's first day, if later) to its
    decommissioning (or the log's last day), widened to every day it reported on, so that collection
    after decommissioning is on the chart."""
    if deployment is None:
        return own
    start = max(deployment.commissioned, log[0])
    end = log[1] if deployment.decommissioned is None else min(deployment.decommissioned, log[1])
    return min(start, own[0]), max(end, own[1], start)


def _collected_per_day(con: duckdb.DuckDBPyConnection, registry: Registry, timezone: str,
                       out: dict[str, Activity]) -> None:
    # A window is counted on the local days it covers (its last microsecond decides its last day), its
    # records shared evenly between them: a vendor's 30-day total is a 30-day plateau, not a spike.
    rows = con.execute(
        "SELECT deployment_id, data_class, CAST(timezone(?, window_start) AS DATE) AS first_day, "
        "CAST(timezone(?, greatest(window_start, window_end - INTERVAL 1 MICROSECOND)) AS DATE) AS last_day, "
        "sum(records) FROM collection GROUP BY ALL ORDER BY ALL",
        [timezone, timezone],
    ).fetchall()
    # DuckDB hands back a local day before year 1 (midnight UTC of 1 January of year 1, west of
    # Greenwich) as text: it is counted in the totals but has no place on a chart.
    charted = [(r[0], r[1], r[2], r[3] if isinstance(r[3], date) else r[2], int(r[4])) for r in rows
               if isinstance(r[2], date)]
    for dep_id, data_class, _first, _last, records in rows:
        act = out[dep_id]
        act.collected[data_class] = act.collected.get(data_class, 0) + int(records)
    if not charted:
        return
    log = (min(r[2] for r in charted), max(r[3] for r in charted))
    by_deployment: dict[str, list[tuple[str, date, date, int]]] = defaultdict(list)
    for dep_id, data_class, first, last, records in charted:
        by_deployment[dep_id].append((data_class, first, max(first, last), records))
    for dep_id, windows in by_deployment.items():
        own = (min(w[1] for w in windows), max(w[2] for w in windows))
        first, last = _active_range(registry.get(dep_id), own, log)
        bucket, starts = chart_buckets(first, last)
        ends = [_bar_end(bucket, starts, i, last) for i in range(len(starts))]
        sums: dict[str, list[float]] = {}
        act = out[dep_id]
        for data_class, w_first, w_last, records in windows:
            days = (w_last - w_first).days + 1
            act.spread = act.spread or days > 1
            values = sums.setdefault(data_class, [0.0] * len(starts))
            i = max(0, bisect_right(starts, w_first) - 1)
            while i < len(starts) and starts[i] <= w_last:
                overlap = (min(ends[i], w_last) - max(starts[i], w_first)).days + 1
                if overlap > 0:
                    values[i] += records * overlap / days
                i += 1
        act.bucket, act.days = bucket, starts
        act.daily = {c: [round(v) for v in values] for c, values in sums.items()}


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


def last_30_days(retention: PublishedTable | None, timezone: str, today: date | None) -> glance.Window | None:
    """The first screen's window: ending at the audit's ``as_of`` (stamped on the ledger; else its last
    day), or, before any audit, at ``today``; None when neither is known."""
    if retention is not None:
        as_of = glance.parse_as_of(retention.data.schema.metadata)
        if as_of is not None:
            return glance.audit_window(as_of, timezone)
        if retention.data.num_rows and "day" in retention.data.column_names:
            last = pc.max(retention.data["day"]).as_py()
            if isinstance(last, date):
                return glance.window_ending(last, timezone, audited=True)
    return None if today is None else glance.window_ending(today, timezone)


def _ledger_window(table: PublishedTable | None, window: glance.Window | None,
                   out: dict[str, Activity]) -> None:
    if table is None or window is None or "day" not in table.data.column_names:
        return
    days = table.data["day"]
    inside = pc.and_(pc.greater_equal(days, pa.scalar(window.first, pa.date32())),
                     pc.less_equal(days, pa.scalar(window.last, pa.date32())))
    for row in table.data.filter(inside).to_pylist():
        if row.get("deployment_id") in out:
            out[row["deployment_id"]].ledger_window.append(row)


def _window_numbers(con: duckdb.DuckDBPyConnection, registry: Registry, timezone: str, window: glance.Window,
                    out: dict[str, Activity]) -> None:
    """Records collected and deleted, and access events by declared, undeclared and merely counted
    parties, in the window. A collection window straddling its edges counts by the share inside it
    (a vendor's 30-day total is not all in or all out); an instant window counts where it falls."""
    bounds = {"s": window.start, "e": window.end}
    collected = con.execute(
        "SELECT deployment_id, sum(CASE WHEN window_end <= window_start THEN records::DOUBLE "
        "  ELSE records::DOUBLE * date_diff('microsecond', greatest(window_start, $s), least(window_end, $e))"
        "       / date_diff('microsecond', window_start, window_end) END), "
        "  bool_or(window_start < $s OR window_end > $e) "
        "FROM collection WHERE (window_end > window_start AND window_end > $s AND window_start < $e) "
        "  OR (window_end <= window_start AND window_start >= $s AND window_start < $e) GROUP BY 1",
        bounds,
    ).fetchall()
    numbers: dict[str, dict[str, Any]] = defaultdict(dict)
    for dep_id, records, shared in collected:
        numbers[dep_id].update(collected=round(records or 0), shared=bool(shared))
    for dep_id, records in con.execute(
        "SELECT deployment_id, sum(records) FROM deletion WHERE deleted_at >= $s AND deleted_at < $e GROUP BY 1",
        bounds,
    ).fetchall():
        numbers[dep_id]["deleted"] = int(records or 0)
    rows = con.execute(
        "SELECT deployment_id, organisation, role, CAST(timezone($tz, accessed_at) AS DATE), count(*) FROM access "
        "WHERE accessed_at >= $s AND accessed_at < $e GROUP BY ALL",
        {**bounds, "tz": timezone},
    ).fetchall()
    for dep_id, org, role, day, events in rows:
        deployment = registry.get(dep_id)
        judged = "undeclared" if deployment is None else deployment.policy_at(day).judge(org or "", role or "")
        key = f"access_{judged}"
        numbers[dep_id][key] = numbers[dep_id].get(key, 0) + int(events)
    for dep_id, values in numbers.items():
        out[dep_id].numbers = glance.WindowNumbers(**values)


def collect_activity(
    con: duckdb.DuckDBPyConnection,
    registry: Registry,
    timezone: str,
    retention: PublishedTable | None,
    findings: PublishedTable | None,
    today: date | None = None,
) -> dict[str, Activity]:
    """Activity for every deployment in the registry (and any id the logs name that it lacks). ``today``
    (the build's local date) ends the last-30-days window while the audit has not run."""
    out: dict[str, Activity] = defaultdict(Activity)
    for d in registry:
        out[d.id] = Activity()
    _collected_per_day(con, registry, timezone, out)
    _first_leaves(con, out)
    _deleted(con, out)
    _accesses(con, registry, out)
    _lifecycle(con, out)
    for dep_id, rows in _latest_retention(retention).items():
        out[dep_id].retention = rows
    for dep_id, rows in _rows_by_deployment(findings).items():
        out[dep_id].findings = sorted(rows, key=lambda r: (_severity_rank(r), str(r.get("id"))))
    window = last_30_days(retention, timezone, today)
    if window is not None:
        _ledger_window(retention, window, out)
        _window_numbers(con, registry, timezone, window, out)
        for act in out.values():
            act.window = window
    return dict(out)


def finding_counts(findings: PublishedTable | None) -> dict[str, int]:
    if findings is None or "deployment_id" not in findings.data.column_names:
        return {}
    counts = pc.value_counts(findings.data["deployment_id"]).to_pylist()
    return {c["values"]: c["counts"] for c in counts if c["values"] is not None}
