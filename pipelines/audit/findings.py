"""Findings, in DuckDB, over the tables ``retention.build`` left in the session.

One line per kind (periods are half-open, local days are whole [local midnight, next local midnight)):

* ``late_deletion`` / ``retained_past_policy``: days under a duration rule whose records were deleted
  after due + grace, or are not (completely) deleted and due + grace is before ``as_of``;
  consecutive days of the same kind and policy version are one finding.
* ``retention_declared_none_but_kept``: the same two tests for classes declared ``none``.
* ``undeclared_data_class``: collection of a class the deployment does not declare; one finding per
  deployment and class, from its first to its last day of collection.
* ``undeclared_access``: access by an organisation and role the policy in force that local day does
  not grant; period [accessed_at, +1 s) truncated to the second (events in one second are one finding).
* ``access_unverifiable``: the same, when that policy also grants access to organisations it does
  not name (a bare count such as "988 external organisations", or words such as "NA"): a count cannot
  show that this organisation is among them, nor that it is not, so the access is neither passed as
  declared nor called undeclared. A named grant that states no roles covers its organisation in
  every role (the declaration restricts none).
* ``retention_unclear``: a class whose rule, on days the deployment was in service within the log, is
  ``unknown`` (declared, but not clearly: "NA", "-Infinity days"); no due date is computed from it and
  the ledger's status for those days is ``unknown``. One finding per stretch of days judged by one
  such rule; numbers: the declared words (``stated``), which logged version declared them
  (``declared_in``: ``<id>@<n>``, or the registry file), their ``provenance``, records collected and
  still retained; evidence: the declaration row, then the first collection window.
* ``collecting_after_decommission``: days after the decommissioning date with any collection;
  consecutive days are one finding (data class empty: it concerns the device).
* ``silent_deployment``: at least ``silence_days`` consecutive local days, while the deployment is
  in service and the log has begun, with no collection window of any class covering any part of
  the day (a window spanning many days covers each of them). Days up to the last audited day count,
  so a deployment whose feed stopped turns silent as time passes, with no new event.
* ``deleted_without_collection``: a deletion whose window overlaps no collection window of its
  deployment and class; period = the deletion's window.
* ``retroactive_policy_change``: a logged declaration that changed the retention or access terms
  in force on days before the local day it was logged (``pipelines.registry.declarations``); period = the
  days it rewrote; evidence = the earlier version, then the new one (declaration rows of the log).
  Those days stay judged by the earlier version.
* ``indefinite_retention``: a collected class whose policy in force on the last audited day is
  ``indefinite``; period [first day of collection, end of the last audited day).
* ``vendor_declaration_changed``: a vendor portal's declared values changed between two reads
  (``pipelines.audit.vendor``).
* ``undeclared_relocation``: a ``relocated`` lifecycle event on a local day on which the deployment's
  record declares no relocation (``lifecycle.relocations``; ``pipelines.audit.relocation``). A declared
  relocation with no event is no finding.

The id is the SHA-256 of ``kind|deployment|class|period_start|period_end`` (UTC, microseconds), so
the same finding keeps its id across runs.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from pipelines.audit import relocation, vendor
from pipelines.audit.model import FINDINGS_SCHEMA, MAX_EVIDENCE, SEVERITY_OF_KIND, severity_rank

SETUP = """
CREATE OR REPLACE MACRO fkey(kind, dep, cls, s, e) AS
  kind || '|' || dep || '|' || coalesce(cls, '') || '|'
  || strftime(timezone('UTC', s), '%Y-%m-%dT%H:%M:%S.%fZ') || '|'
  || strftime(timezone('UTC', e), '%Y-%m-%dT%H:%M:%S.%fZ');
CREATE OR REPLACE MACRO island(day, n) AS day - CAST(n AS INTEGER);

CREATE OR REPLACE TEMP TABLE found (
  fkey VARCHAR, kind VARCHAR, deployment_id VARCHAR, data_class VARCHAR,
  period_start TIMESTAMPTZ, period_end TIMESTAMPTZ, policy_version BIGINT, numbers VARCHAR);
CREATE OR REPLACE TEMP TABLE evidence (
  fkey VARCHAR, ord INTEGER, seen_at TIMESTAMPTZ, source VARCHAR, event_id VARCHAR);
"""

# Retention kinds: flag days, then merge consecutive days into islands (a stuck purge job is one
# finding with its length, not one finding per day).
RETENTION = """
CREATE OR REPLACE TEMP TABLE islands AS
WITH flagged AS (
  SELECT j.*, CASE
      WHEN j.kind = 'none' AND (j.late OR j.kept) THEN 'retention_declared_none_but_kept'
      WHEN j.kind = 'duration' AND j.late THEN 'late_deletion'
      WHEN j.kind = 'duration' AND j.kept THEN 'retained_past_policy' END AS finding
  FROM judged j),
runs AS (
  SELECT *, island(day, row_number() OVER (
           PARTITION BY deployment_id, data_class, finding, policy_version ORDER BY day)) AS run
  FROM flagged WHERE finding IS NOT NULL),
agg AS (
  SELECT finding AS kind, deployment_id, data_class, policy_version, min(day) AS first_day, max(day) AS last_day,
         count(*) AS days, sum(collected) AS records, sum(coalesce(undeleted, 0)) AS retained,
         max(days_late) AS max_days_late, min(due) AS first_due, max(deleted_at) AS last_deleted_at,
         any_value(period) AS declared_period
  FROM runs GROUP BY finding, deployment_id, data_class, policy_version, run)
SELECT a.*, ds.day_start AS period_start, de.day_end AS period_end,
       fkey(a.kind, a.deployment_id, a.data_class, ds.day_start, de.day_end) AS fkey
FROM agg a JOIN days ds ON ds.day = a.first_day JOIN days de ON de.day = a.last_day;

INSERT INTO found
SELECT i.fkey, i.kind, i.deployment_id, i.data_class, i.period_start, i.period_end, i.policy_version,
       to_json(struct_pack(
         days := i.days, records := i.records, records_retained := i.retained,
         days_late := round(i.max_days_late, 3), first_due := iso(i.first_due),
         last_deleted_at := iso(i.last_deleted_at), declared_period := i.declared_period,
         grace_days := p.grace_us / 86400e6))::VARCHAR
FROM islands i, params p;

INSERT INTO evidence
SELECT i.fkey, 0, x.deleted_at, x.source, x.event_id
FROM islands i
JOIN win w ON w.deployment_id = i.deployment_id AND w.data_class = i.data_class
          AND w.day BETWEEN i.first_day AND i.last_day
JOIN ov ON ov.wid = w.wid JOIN dels x ON x.did = ov.did
UNION
SELECT i.fkey, 1, w.window_start, w.source, w.event_id
FROM islands i
JOIN win w ON w.deployment_id = i.deployment_id AND w.data_class = i.data_class
          AND w.day BETWEEN i.first_day AND i.last_day
LEFT JOIN win_del wd ON wd.wid = w.wid
WHERE wd.deleted_at IS NULL AND w.records > 0;
"""

UNDECLARED_CLASS = """
CREATE OR REPLACE TEMP TABLE undeclared AS
SELECT w.* FROM win w SEMI JOIN deployments USING (deployment_id) ANTI JOIN declared USING (deployment_id, data_class);

CREATE OR REPLACE TEMP TABLE undeclared_f AS
WITH agg AS (
  SELECT deployment_id, data_class, min(day) AS first_day, max(day) AS last_day,
         count(DISTINCT day) AS days, sum(records) AS records, count(*) AS windows
  FROM undeclared GROUP BY ALL)
SELECT a.*, ds.day_start AS period_start, de.day_end AS period_end,
       fkey('undeclared_data_class', a.deployment_id, a.data_class, ds.day_start, de.day_end) AS fkey
FROM agg a JOIN days ds ON ds.day = a.first_day JOIN days de ON de.day = a.last_day;

INSERT INTO found
SELECT fkey, 'undeclared_data_class', deployment_id, data_class, period_start, period_end, NULL,
       to_json(struct_pack(days := days, records := records, windows := windows))::VARCHAR
FROM undeclared_f;

INSERT INTO evidence
SELECT f.fkey, 1, u.window_start, u.source, u.event_id
FROM undeclared_f f JOIN undeclared u USING (deployment_id, data_class);
"""

DECOMMISSIONED = """
CREATE OR REPLACE TEMP TABLE after_f AS
WITH after AS (
  SELECT w.*, dp.decommissioned FROM win w JOIN deployments dp USING (deployment_id)
  WHERE dp.decommissioned IS NOT NULL AND w.day > dp.decommissioned),
per_day AS (
  SELECT deployment_id, day, any_value(decommissioned) AS decommissioned, sum(records) AS records,
         list(DISTINCT data_class) AS classes
  FROM after GROUP BY ALL),
runs AS (SELECT *, island(day, row_number() OVER (PARTITION BY deployment_id ORDER BY day)) AS run FROM per_day),
agg AS (
  SELECT deployment_id, any_value(decommissioned) AS decommissioned, min(day) AS first_day, max(day) AS last_day,
         count(*) AS days, sum(records) AS records, list_sort(list_distinct(flatten(list(classes)))) AS classes
  FROM runs GROUP BY deployment_id, run)
SELECT a.*, ds.day_start AS period_start, de.day_end AS period_end,
       fkey('collecting_after_decommission', a.deployment_id, NULL, ds.day_start, de.day_end) AS fkey
FROM agg a JOIN days ds ON ds.day = a.first_day JOIN days de ON de.day = a.last_day;

INSERT INTO found
SELECT fkey, 'collecting_after_decommission', deployment_id, NULL, period_start, period_end, NULL,
       to_json(struct_pack(days := days, records := records, decommissioned := strftime(decommissioned, '%Y-%m-%d'),
                           data_classes := classes))::VARCHAR
FROM after_f;

INSERT INTO evidence
SELECT f.fkey, 1, w.window_start, w.source, w.event_id
FROM after_f f JOIN win w ON w.deployment_id = f.deployment_id AND w.day BETWEEN f.first_day AND f.last_day;
"""

SILENT = """
CREATE OR REPLACE TEMP TABLE silent_f AS
WITH active AS (
  SELECT dp.deployment_id, d.day
  FROM deployments dp CROSS JOIN params p
  JOIN days d ON d.day >= greatest(dp.commissioned, p.log_first_day)
             AND d.day <= least(coalesce(dp.decommissioned, p.last_day), p.last_day)
  WHERE p.log_first_day IS NOT NULL),
-- A window is activity on every local day it covers (a 30-day total is not 29 days of silence).
spans AS (SELECT DISTINCT deployment_id, day AS first_day, through_day FROM win),
heard AS (
  SELECT DISTINCT s.deployment_id, d.day FROM spans s JOIN days d ON d.day BETWEEN s.first_day AND s.through_day),
quiet AS (SELECT a.* FROM active a ANTI JOIN heard h USING (deployment_id, day)),
runs AS (SELECT *, island(day, row_number() OVER (PARTITION BY deployment_id ORDER BY day)) AS run FROM quiet),
agg AS (
  SELECT deployment_id, min(day) AS first_day, max(day) AS last_day, count(*) AS days
  FROM runs GROUP BY deployment_id, run)
SELECT a.*, ds.day_start AS period_start, de.day_end AS period_end,
       fkey('silent_deployment', a.deployment_id, NULL, ds.day_start, de.day_end) AS fkey
FROM agg a CROSS JOIN params p JOIN days ds ON ds.day = a.first_day JOIN days de ON de.day = a.last_day
WHERE a.days >= p.silence_days;

INSERT INTO found
SELECT fkey, 'silent_deployment', deployment_id, NULL, period_start, period_end, NULL,
       to_json(struct_pack(days := days, silence_days := p.silence_days))::VARCHAR
FROM silent_f, params p;

-- Evidence: the last collection before the silence and the first after it (when there is one).
INSERT INTO evidence
SELECT fkey, 1, e.t, e.source, e.id FROM (
  SELECT s.fkey, max(struct_pack(t := w.window_start, source := w.source, id := w.event_id)) AS e
  FROM silent_f s JOIN win w ON w.deployment_id = s.deployment_id AND w.window_start < s.period_start
  GROUP BY s.fkey
  UNION ALL
  SELECT s.fkey, min(struct_pack(t := w.window_start, source := w.source, id := w.event_id))
  FROM silent_f s JOIN win w ON w.deployment_id = s.deployment_id AND w.window_start >= s.period_end
  GROUP BY s.fkey);
"""

ORPHAN_DELETIONS = """
CREATE OR REPLACE TEMP TABLE orphan AS SELECT x.* FROM dels x ANTI JOIN ov USING (did);

CREATE OR REPLACE TEMP TABLE orphan_f AS
SELECT deployment_id, data_class, window_start AS period_start, window_end AS period_end,
       sum(records) AS records, count(*) AS events, max(deleted_at) AS deleted_at,
       fkey('deleted_without_collection', deployment_id, data_class, window_start, window_end) AS fkey
FROM orphan GROUP BY deployment_id, data_class, window_start, window_end;

INSERT INTO found
SELECT fkey, 'deleted_without_collection', deployment_id, data_class, period_start, period_end, NULL,
       to_json(struct_pack(records := records, events := events, deleted_at := iso(deleted_at)))::VARCHAR
FROM orphan_f;

INSERT INTO evidence
SELECT f.fkey, 0, o.deleted_at, o.source, o.event_id
FROM orphan_f f JOIN orphan o
  ON o.deployment_id = f.deployment_id AND o.data_class = f.data_class
 AND o.window_start = f.period_start AND o.window_end = f.period_end;
"""

UNDECLARED_ACCESS = """
CREATE OR REPLACE TEMP TABLE denied_acc AS
SELECT a.*, n.policy_version, date_trunc('second', a.accessed_at) AS second
FROM acc a JOIN denied n USING (deployment_id, day, organisation, role)
WHERE n.verdict = 'undeclared';

CREATE OR REPLACE TEMP TABLE access_f AS
SELECT deployment_id, data_class, second AS period_start, second + INTERVAL 1 SECOND AS period_end,
       max(policy_version) AS policy_version,
       array_to_string(list_sort(list_distinct(list(organisation))), ', ') AS organisation,
       array_to_string(list_sort(list_distinct(list(role))), ', ') AS role,
       sum(records) AS records, count(*) AS events,
       fkey('undeclared_access', deployment_id, data_class, second, second + INTERVAL 1 SECOND) AS fkey
FROM denied_acc GROUP BY deployment_id, data_class, second;

INSERT INTO found
SELECT fkey, 'undeclared_access', deployment_id, data_class, period_start, period_end, policy_version,
       to_json(struct_pack(organisation := organisation, role := role, records := records, events := events))::VARCHAR
FROM access_f;

INSERT INTO evidence
SELECT f.fkey, 0, a.accessed_at, a.source, a.event_id
FROM access_f f JOIN denied_acc a
  ON a.deployment_id = f.deployment_id AND a.data_class = f.data_class AND a.second = f.period_start;
"""

# The same shape as undeclared_access, for organisations the policy does not name while it grants access
# to organisations it only counts (or does not state): the access cannot be judged either way.
UNVERIFIABLE_ACCESS = """
CREATE OR REPLACE TEMP TABLE unverified_acc AS
SELECT a.*, n.policy_version, date_trunc('second', a.accessed_at) AS second
FROM acc a JOIN denied n USING (deployment_id, day, organisation, role)
WHERE n.verdict = 'unverifiable';

CREATE OR REPLACE TEMP TABLE unverified_f AS
SELECT deployment_id, data_class, second AS period_start, second + INTERVAL 1 SECOND AS period_end,
       max(policy_version) AS policy_version,
       array_to_string(list_sort(list_distinct(list(organisation))), ', ') AS organisation,
       array_to_string(list_sort(list_distinct(list(role))), ', ') AS role,
       sum(records) AS records, count(*) AS events,
       fkey('access_unverifiable', deployment_id, data_class, second, second + INTERVAL 1 SECOND) AS fkey
FROM unverified_acc GROUP BY deployment_id, data_class, second;

INSERT INTO found
SELECT f.fkey, 'access_unverifiable', f.deployment_id, f.data_class, f.period_start, f.period_end, f.policy_version,
       to_json(struct_pack(organisation := f.organisation, role := f.role, records := f.records, events := f.events,
                           reason := 'the organisation is not named; the policy grants access to organisations'
                                     || ' it does not name, so this access can be shown neither declared nor'
                                     || ' undeclared'))::VARCHAR
FROM unverified_f f;

INSERT INTO evidence
SELECT f.fkey, 0, a.accessed_at, a.source, a.event_id
FROM unverified_f f JOIN unverified_acc a
  ON a.deployment_id = f.deployment_id AND a.data_class = f.data_class AND a.second = f.period_start;
"""

# A rule declared 'unknown' judges no deletion (no due date): the finding says so for every stretch of
# days, in service and within the log, that it applies to, with the declared words and their origin.
UNCLEAR = """
CREATE OR REPLACE TEMP TABLE unclear_f AS
WITH seg AS (
  SELECT u.*,
         greatest(u.valid_from, dp.commissioned, coalesce(p.log_first_day, p.last_day)) AS first_day,
         least(u.valid_to - 1, coalesce(dp.decommissioned, p.last_day), p.last_day) AS last_day
  FROM unclear u JOIN deployments dp USING (deployment_id) CROSS JOIN params p),
kept AS (
  SELECT s.deployment_id, s.data_class, s.first_day, any_value(s.last_day) AS last_day,
         any_value(s.policy_version) AS policy_version, any_value(s.stated) AS stated,
         any_value(s.provenance) AS provenance, any_value(s.declared_in) AS declared_in,
         any_value(s.source) AS source, any_value(s.event_id) AS event_id,
         coalesce(sum(g.collected), 0) AS records, coalesce(sum(g.undeleted), 0) AS retained
  FROM seg s LEFT JOIN grp g
    ON g.deployment_id = s.deployment_id AND g.data_class = s.data_class AND g.day BETWEEN s.first_day AND s.last_day
  WHERE s.first_day <= s.last_day
  GROUP BY s.deployment_id, s.data_class, s.first_day)
SELECT k.*, ds.day_start AS period_start, de.day_end AS period_end,
       fkey('retention_unclear', k.deployment_id, k.data_class, ds.day_start, de.day_end) AS fkey
FROM kept k JOIN days ds ON ds.day = k.first_day JOIN days de ON de.day = k.last_day;

INSERT INTO found
SELECT fkey, 'retention_unclear', deployment_id, data_class, period_start, period_end, policy_version,
       to_json(struct_pack(stated := stated, declared_in := declared_in, provenance := provenance,
                           records := records, records_retained := retained,
                           days := date_diff('day', first_day, last_day) + 1))::VARCHAR
FROM unclear_f;

INSERT INTO evidence
SELECT fkey, 0, period_start, source, event_id FROM unclear_f WHERE event_id IS NOT NULL
UNION ALL
SELECT fkey, 1, e.t, e.source, e.id FROM (
  SELECT f.fkey, min(struct_pack(t := w.window_start, source := w.source, id := w.event_id)) AS e
  FROM unclear_f f JOIN win w
    ON w.deployment_id = f.deployment_id AND w.data_class = f.data_class AND w.day BETWEEN f.first_day AND f.last_day
  GROUP BY f.fkey);
"""

INDEFINITE = """
CREATE OR REPLACE TEMP TABLE indefinite_f AS
WITH g AS (
  SELECT deployment_id, data_class, min(day) AS first_day, sum(collected) AS records,
         sum(coalesce(undeleted, 0)) AS retained
  FROM grp GROUP BY ALL)
SELECT g.*, pol.policy_version, d.day_start AS period_start, p.until AS period_end,
       fkey('indefinite_retention', g.deployment_id, g.data_class, d.day_start, p.until) AS fkey
FROM g CROSS JOIN params p
JOIN policies pol
  ON pol.deployment_id = g.deployment_id AND pol.data_class = g.data_class AND pol.kind = 'indefinite'
 AND p.last_day >= pol.valid_from AND p.last_day < pol.valid_to
JOIN days d ON d.day = g.first_day;

INSERT INTO found
SELECT fkey, 'indefinite_retention', deployment_id, data_class, period_start, period_end, policy_version,
       to_json(struct_pack(records := records, records_retained := retained,
                           since := strftime(first_day, '%Y-%m-%d')))::VARCHAR
FROM indefinite_f;

INSERT INTO evidence
SELECT fkey, 1, e.t, e.source, e.id FROM (
  SELECT f.fkey, min(struct_pack(t := w.window_start, source := w.source, id := w.event_id)) AS e
  FROM indefinite_f f JOIN win w USING (deployment_id, data_class) GROUP BY f.fkey);
"""

RETROACTIVE = """
CREATE OR REPLACE TEMP TABLE retro_f AS
SELECT r.*, fkey('retroactive_policy_change', r.deployment_id, NULL, r.period_start, r.period_end)
            || '|' || r.event_id AS fkey
FROM retroactive r;

INSERT INTO found
SELECT fkey, 'retroactive_policy_change', deployment_id, NULL, period_start, period_end, policy_version,
       to_json(struct_pack(days := days, declared_at := iso(declared_at),
                           previous_leaf := previous_leaf, previous_sha256 := previous_sha256,
                           leaf := leaf, sha256 := sha256))::VARCHAR
FROM retro_f;

INSERT INTO evidence
SELECT fkey, 0, declared_at, source, previous_event_id FROM retro_f
UNION ALL
SELECT fkey, 1, declared_at, source, event_id FROM retro_f;
"""

RESULT = f"""
WITH ev AS (
  SELECT fkey, list(struct_pack(source := source, id := event_id) ORDER BY ord, seen_at, source, event_id) AS items,
         count(*) AS n
  FROM (SELECT DISTINCT * FROM evidence) GROUP BY fkey)
SELECT sha256(f.fkey) AS id, f.kind, s.severity, f.deployment_id, f.data_class, f.period_start, f.period_end,
       f.policy_version,
       json_merge_patch(f.numbers, json_object('evidence_total', coalesce(ev.n, 0)))::VARCHAR AS numbers,
       coalesce(list_slice(ev.items, 1, {MAX_EVIDENCE}), []) AS evidence
FROM found f JOIN severity s USING (kind) LEFT JOIN ev USING (fkey)
ORDER BY s.rank DESC, f.kind, f.deployment_id, f.data_class NULLS FIRST, f.period_start
"""

STEPS = (
    RETENTION, UNDECLARED_CLASS, DECOMMISSIONED, SILENT, ORPHAN_DELETIONS, UNDECLARED_ACCESS, UNVERIFIABLE_ACCESS,
    UNCLEAR, INDEFINITE, RETROACTIVE, vendor.CHANGED, relocation.UNDECLARED,
)


def severity_table() -> pa.Table:
    kinds = list(SEVERITY_OF_KIND)
    return pa.table(
        {
            "kind": kinds,
            "severity": [SEVERITY_OF_KIND[k] for k in kinds],
            "rank": pa.array([severity_rank(SEVERITY_OF_KIND[k]) for k in kinds], pa.int32()),
        }
    )


def compute(con: duckdb.DuckDBPyConnection) -> pa.Table:
    """All findings, most severe first (needs ``retention.build``, ``denied``, ``deployments``,
    ``declared``, ``retroactive``, ``unclear`` and ``severity`` in the session)."""
    con.execute(SETUP)
    for step in STEPS:
        con.execute(step)
    return con.sql(RESULT).to_arrow_table().cast(FINDINGS_SCHEMA)
