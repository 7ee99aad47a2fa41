"""Declared against observed retention, in DuckDB: which collected records were deleted, when, and
whether that was on time; the per-day retention ledger; lateness statistics.

Semantics (the generator in ``pipelines.dev.synthetic`` follows the same ones):

* A collection window belongs to the **local day** its ``window_start`` falls in, and is judged by
  the policy version in force on that day (the policy in force when it was collected). A window
  spanning several days (vendor portals report 30-day totals) is still one window of that day for
  retention, and its retention starts at its end (``window_end`` trigger, the default), so a 30-day
  total is due one period after the 30 days; for the silence check it is activity on **every** local
  day it covers.
* A window counts as deleted once deletion windows cover all of it; its deletion time is the
  earliest moment at which that is true. Coverage is computed on the segments between all window
  boundaries, so one deletion may cover many windows, several deletions may cover one window, and a
  deletion covering half a window leaves the window (and its day) retained.
* A day's records are due at the latest due date of its windows (``RetentionRule.due`` of each
  window's end, or start for ``window_start`` rules): vendors purge per day, and a day is deleted on
  time when its last window is. ``none`` is due at the window's end; ``indefinite`` and
  ``case_closed`` have no due date.
* Only what the log knew at ``as_of`` counts: events whose time (payload time when absent) is at or
  before it. Arrival order never matters: everything is recomputed from the published partitions.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pyarrow as pa

from pipelines.audit import relocation, vendor
from pipelines.audit.model import LATENESS_SCHEMA, LEDGER_SCHEMA

# Every timestamp comparison is on instants; the session zone is UTC so that interval arithmetic
# on TIMESTAMPTZ is exact elapsed time (a "day" never turns into 23 or 25 hours by accident).
SETUP = """
SET TimeZone = 'UTC';
CREATE OR REPLACE MACRO iso(t) AS strftime(timezone('UTC', t), '%Y-%m-%dT%H:%M:%SZ');
CREATE OR REPLACE MACRO days_between(a, b) AS date_diff('microsecond', a, b) / 86400e6;
-- RetentionRule.due: calendar months on the UTC calendar (clamped to the month's end), then exact time.
CREATE OR REPLACE MACRO due_at(t, months, micros) AS
  timezone('UTC', timezone('UTC', t) + to_months(months) + to_microseconds(micros));
"""

# One scan of each published table (there is a file per batch and event date, so scans are what
# costs): the rows the checkpoint covers, only the columns the audit reads.
SNAPSHOT = (
    """
CREATE OR REPLACE TEMP TABLE col_all AS
SELECT source, event_id, coalesce(event_time, window_end) AS t, deployment_id, data_class, window_start, window_end,
       records
FROM collection WHERE leaf_index < $limit
""",
    """
CREATE OR REPLACE TEMP TABLE del_all AS
SELECT source, event_id, coalesce(event_time, deleted_at) AS t, deployment_id, data_class, window_start, window_end,
       records, deleted_at, method
FROM deletion WHERE leaf_index < $limit
""",
    """
CREATE OR REPLACE TEMP TABLE acc_all AS
SELECT source, event_id, coalesce(event_time, accessed_at) AS t, deployment_id, data_class, accessed_at,
       organisation, role, records
FROM access WHERE leaf_index < $limit
""",
    vendor.SNAPSHOT,
    relocation.SNAPSHOT,
)
LATEST_EVENT = """
SELECT max(t) FROM (
  SELECT max(t) AS t FROM col_all UNION ALL SELECT max(t) FROM del_all UNION ALL SELECT max(t) FROM acc_all
  UNION ALL SELECT max(event_time) FROM lifecycle WHERE leaf_index < $limit)
"""

RAW = """
CREATE OR REPLACE TEMP TABLE col_raw AS
SELECT c.* EXCLUDE (t) FROM col_all c, params p
WHERE c.t <= p.as_of AND (p.deployment IS NULL OR c.deployment_id = p.deployment);

CREATE OR REPLACE TEMP TABLE del_raw AS
SELECT x.* EXCLUDE (t) FROM del_all x, params p
WHERE x.t <= p.as_of AND x.deleted_at <= p.as_of AND (p.deployment IS NULL OR x.deployment_id = p.deployment);

CREATE OR REPLACE TEMP TABLE acc_raw AS
SELECT a.* EXCLUDE (t) FROM acc_all a, params p
WHERE a.t <= p.as_of AND (p.deployment IS NULL OR a.deployment_id = p.deployment);
"""

# The span of local days the audit needs a calendar for (and the first day the log has data, for
# every deployment, so that "silent" never counts days before the log began).
SPAN = """
SELECT min(t), max(t) FROM (
  SELECT window_start AS t FROM col_raw UNION ALL SELECT deleted_at FROM del_raw
  UNION ALL SELECT accessed_at FROM acc_raw)
"""
LOG_FIRST = "SELECT min(c.window_start) FROM col_all c, params p WHERE c.t <= p.as_of"
# The newest event the audit counts (in scope, at or before as_of): what the report calls "newest
# event seen", so a reader can tell how stale the feeds are on the as-of date.
NEWEST = """
SELECT max(e.t) FROM (
  SELECT t, deployment_id FROM col_all UNION ALL SELECT t, deployment_id FROM del_all
  UNION ALL SELECT t, deployment_id FROM acc_all) e, params p
WHERE e.t <= p.as_of AND (p.deployment IS NULL OR e.deployment_id = p.deployment)
"""

WINDOWS = """
-- ``day``: the local day the window starts in (its collection day); ``through_day``: the last local
-- day it covers (the day holding its last instant), so a 30-day total is activity on all 30 days.
CREATE OR REPLACE TEMP TABLE win AS
SELECT row_number() OVER (ORDER BY c.deployment_id, c.data_class, c.window_start, c.source, c.event_id) AS wid,
       c.*, d.day, greatest(d.day, coalesce(e.day, d.day)) AS through_day
FROM col_raw c ASOF JOIN days d ON c.window_start >= d.day_start
ASOF LEFT JOIN days e ON c.window_end > e.day_start;

CREATE OR REPLACE TEMP TABLE dels AS
SELECT row_number() OVER (ORDER BY x.deployment_id, x.data_class, x.deleted_at, x.source, x.event_id) AS did,
       x.*, d.day
FROM del_raw x ASOF JOIN days d ON x.deleted_at >= d.day_start;

CREATE OR REPLACE TEMP TABLE acc AS
SELECT a.*, d.day FROM acc_raw a ASOF JOIN days d ON a.accessed_at >= d.day_start;

-- Each (collection window, deletion) pair that overlaps, with the overlap clipped to the window.
CREATE OR REPLACE TEMP TABLE ov AS
SELECT w.wid, x.did, greatest(x.window_start, w.window_start) AS s, least(x.window_end, w.window_end) AS e,
       x.deleted_at
FROM win w JOIN dels x
  ON x.deployment_id = w.deployment_id AND x.data_class = w.data_class
 AND x.window_start < w.window_end AND x.window_end > w.window_start;

-- A window is deleted when every segment of it is covered; each segment is gone at the earliest
-- deletion covering it, the window at the latest of those.
CREATE OR REPLACE TEMP TABLE win_del AS
WITH touched AS (SELECT DISTINCT wid FROM ov),
bounds AS (
  SELECT wid, s AS t FROM ov UNION SELECT wid, e FROM ov
  UNION SELECT w.wid, w.window_start FROM win w JOIN touched USING (wid)
  UNION SELECT w.wid, w.window_end FROM win w JOIN touched USING (wid)),
seg AS (SELECT wid, t AS s, lead(t) OVER (PARTITION BY wid ORDER BY t) AS e FROM bounds),
cover AS (
  SELECT seg.wid, seg.s, min(ov.deleted_at) AS gone
  FROM seg LEFT JOIN ov ON ov.wid = seg.wid AND ov.s <= seg.s AND ov.e >= seg.e
  WHERE seg.e IS NOT NULL
  GROUP BY seg.wid, seg.s)
SELECT wid, CASE WHEN count(*) = count(gone) THEN max(gone) END AS deleted_at FROM cover GROUP BY wid;

-- One row per deployment, data class and local day of collection, with the policy of that day.
CREATE OR REPLACE TEMP TABLE grp AS
SELECT w.deployment_id, w.data_class, w.day,
       sum(w.records) AS collected, count(*) AS windows, bool_or(w.records > 0) AS has_records,
       min(w.window_start) AS first_start, max(w.window_start) AS last_start, max(w.window_end) AS last_end,
       sum(w.records) FILTER (WHERE wd.deleted_at IS NULL) AS undeleted,
       CASE WHEN NOT bool_or(w.records > 0 AND wd.deleted_at IS NULL)
            THEN max(wd.deleted_at) FILTER (WHERE w.records > 0) END AS deleted_at
FROM win w LEFT JOIN win_del wd USING (wid)
GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE grp_p AS
SELECT g.*, pol.policy_version, pol.period, pol.kind, pol.trigger,
       CASE WHEN pol.kind IN ('none', 'duration') AND pol.trigger <> 'case_closed' THEN
         due_at(CASE WHEN pol.trigger = 'window_start' THEN g.last_start ELSE g.last_end END, pol.months, pol.micros)
       END AS due
FROM grp g LEFT JOIN policies pol
  ON pol.deployment_id = g.deployment_id AND pol.data_class = g.data_class
 AND g.day >= pol.valid_from AND g.day < pol.valid_to;

CREATE OR REPLACE TEMP TABLE judged AS
SELECT g.*,
       days_between(g.due, g.deleted_at) AS days_late,
       g.deleted_at IS NOT NULL AND g.due IS NOT NULL
         AND g.deleted_at > g.due + to_microseconds(p.grace_us) AS late,
       g.deleted_at IS NULL AND g.has_records AND g.due IS NOT NULL
         AND g.due + to_microseconds(p.grace_us) < p.as_of AS kept
FROM grp_p g, params p;
"""

LEDGER = """
WITH firsts AS (
  SELECT deployment_id, data_class, min(day) AS first_day FROM (
    SELECT deployment_id, data_class, day FROM grp UNION ALL SELECT deployment_id, data_class, day FROM dels)
  GROUP BY ALL),
skel AS (
  SELECT f.deployment_id, f.data_class, d.day, least(d.day_end, p.as_of) AS moment
  FROM firsts f CROSS JOIN params p JOIN days d ON d.day >= f.first_day AND d.day <= p.last_day),
gone AS (
  SELECT w.deployment_id, w.data_class, d.day, sum(w.records) AS deleted
  FROM (SELECT w.*, wd.deleted_at FROM win w JOIN win_del wd USING (wid) WHERE wd.deleted_at IS NOT NULL) w
  ASOF JOIN days d ON w.deleted_at >= d.day_start
  GROUP BY ALL),
reported AS (SELECT deployment_id, data_class, day, sum(records) AS deleted_reported FROM dels GROUP BY ALL),
held AS (
  SELECT s.deployment_id, s.data_class, s.day,
         min(g.first_start) AS oldest_start, arg_min(g.due, g.day) AS oldest_due, min(g.due) AS next_due,
         bool_or(g.due IS NULL AND g.kind IS DISTINCT FROM 'indefinite') AS unknown_due
  FROM skel s JOIN grp_p g
    ON g.deployment_id = s.deployment_id AND g.data_class = s.data_class AND g.day <= s.day
   AND g.has_records AND (g.deleted_at IS NULL OR g.deleted_at > s.moment)
  GROUP BY ALL)
SELECT s.deployment_id, s.data_class, s.day, pol.policy_version, pol.period AS declared_period,
       coalesce(g.collected, 0)::BIGINT AS collected,
       coalesce(x.deleted, 0)::BIGINT AS deleted,
       coalesce(r.deleted_reported, 0)::BIGINT AS deleted_reported,
       sum(coalesce(g.collected, 0) - coalesce(x.deleted, 0))
         OVER (PARTITION BY s.deployment_id, s.data_class ORDER BY s.day)::BIGINT AS retained,
       h.oldest_start AS oldest_retained_start,
       round(days_between(h.oldest_start, s.moment), 3) AS oldest_retained_age_days,
       h.oldest_due, h.next_due,
       CASE WHEN pol.kind IS NULL THEN 'no_policy'
            WHEN h.day IS NULL THEN 'ok'
            WHEN h.unknown_due THEN 'unknown'
            WHEN h.next_due IS NULL THEN 'ok'
            WHEN h.next_due + to_microseconds(p.grace_us) < s.moment THEN 'overdue'
            WHEN h.next_due <= s.moment + to_microseconds(p.due_soon_us) THEN 'due_soon'
            ELSE 'ok' END AS status
FROM skel s CROSS JOIN params p
LEFT JOIN grp g USING (deployment_id, data_class, day)
LEFT JOIN gone x USING (deployment_id, data_class, day)
LEFT JOIN reported r USING (deployment_id, data_class, day)
LEFT JOIN held h USING (deployment_id, data_class, day)
LEFT JOIN policies pol
  ON pol.deployment_id = s.deployment_id AND pol.data_class = s.data_class
 AND s.day >= pol.valid_from AND s.day < pol.valid_to
ORDER BY s.deployment_id, s.data_class, s.day
"""

LATENESS = """
SELECT j.deployment_id, count(*) AS deletions, count(*) FILTER (WHERE j.late) AS late,
       round(quantile_cont(j.days_late, 0.5), 3) AS p50_days,
       round(quantile_cont(j.days_late, 0.95), 3) AS p95_days,
       round(max(j.days_late), 3) AS max_days
FROM judged j WHERE j.days_late IS NOT NULL
GROUP BY ALL ORDER BY j.deployment_id
"""


def snapshot(con: duckdb.DuckDBPyConnection, leaf_limit: int) -> datetime | None:
    """Read the published views once (rows below ``leaf_limit``); returns the latest event time."""
    con.execute(SETUP)
    for statement in SNAPSHOT:  # DuckDB binds parameters for one statement at a time
        con.execute(statement, {"limit": leaf_limit})
    return con.execute(LATEST_EVENT, {"limit": leaf_limit}).fetchall()[0][0]


def load_events(con: duckdb.DuckDBPyConnection) -> None:
    """Scope the snapshot to ``params`` (as_of, deployment)."""
    con.execute(RAW)


def newest_counted(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """The newest event time in scope at or before ``as_of`` (needs ``params`` and the snapshot)."""
    return con.execute(NEWEST).fetchall()[0][0]


def span(con: duckdb.DuckDBPyConnection) -> tuple[datetime | None, datetime | None, datetime | None]:
    """(earliest, latest) event instant in scope, and the first collection instant of the whole log."""
    lo, hi = con.execute(SPAN).fetchall()[0]
    (first,) = con.execute(LOG_FIRST).fetchall()[0]
    return lo, hi, first


def build(con: duckdb.DuckDBPyConnection) -> None:
    """Windows, deletions, coverage, per-day groups and their judgement (needs ``days``, ``policies``)."""
    con.execute(WINDOWS)


def ledger(con: duckdb.DuckDBPyConnection) -> pa.Table:
    return con.sql(LEDGER).to_arrow_table().cast(LEDGER_SCHEMA)


def lateness(con: duckdb.DuckDBPyConnection) -> pa.Table:
    return con.sql(LATENESS).to_arrow_table().cast(LATENESS_SCHEMA)
