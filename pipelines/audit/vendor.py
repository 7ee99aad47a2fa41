"""What a vendor's portal declared, read after read (the ``vendor_snapshot`` table): a change between two
reads of the same agency is a finding, so a retention quietly raised from 30 days to 'NA' is visible.

* ``vendor_declaration_changed``: two consecutive snapshots (by ``observed_at``) of one deployment and
  agency whose declared values differ (retention as stated, devices, outside organisations' count or
  names, hotlists, public search audit); period [the earlier read, the later read); numbers: the
  changed fields and the retention, devices and organisation counts before and after; evidence: the
  two snapshot events.
"""

from __future__ import annotations

# Read with the other published tables (``retention.SNAPSHOT``): the rows the checkpoint covers.
SNAPSHOT = """
CREATE OR REPLACE TEMP TABLE vsnap_all AS
SELECT source, event_id, deployment_id, observed_at, agency, retention_text, retention_days, devices,
       external_organisations_count, external_organisations, hotlists, public_search_audit
FROM vendor_snapshot WHERE leaf_index < $limit
"""

# The declared fields compared, in the order a changed-fields list names them.
FIELDS = (
    "retention_text", "devices", "external_organisations_count", "external_organisations", "hotlists",
    "public_search_audit",
)
_CHANGED = ", ".join(f"CASE WHEN {f} IS DISTINCT FROM prev_{f} THEN '{f}' END" for f in FIELDS)
_PREV = ", ".join(f"lag({f}) OVER w AS prev_{f}" for f in FIELDS)

CHANGED = f"""
CREATE OR REPLACE TEMP TABLE vchanged AS
WITH scoped AS (
  SELECT v.* FROM vsnap_all v, params p
  WHERE v.observed_at <= p.as_of AND (p.deployment IS NULL OR v.deployment_id = p.deployment)),
ordered AS (
  SELECT *, lag(observed_at) OVER w AS prev_at, lag(source) OVER w AS prev_source,
         lag(event_id) OVER w AS prev_event_id, lag(retention_days) OVER w AS prev_retention_days, {_PREV}
  FROM scoped WINDOW w AS (PARTITION BY deployment_id, agency ORDER BY observed_at, source, event_id)),
changed AS (
  SELECT *, concat_ws(',', {_CHANGED}) AS fields FROM ordered WHERE prev_at IS NOT NULL)
SELECT *, fkey('vendor_declaration_changed', deployment_id, NULL, prev_at, observed_at) AS fkey
FROM changed WHERE fields <> '';

INSERT INTO found
SELECT fkey, 'vendor_declaration_changed', deployment_id, NULL, prev_at, observed_at, NULL,
       to_json(struct_pack(
         agency := agency, changed := fields,
         retention_before := prev_retention_text, retention_after := retention_text,
         retention_days_before := prev_retention_days, retention_days_after := retention_days,
         devices_before := prev_devices, devices_after := devices,
         external_organisations_before := prev_external_organisations_count,
         external_organisations_after := external_organisations_count))::VARCHAR
FROM vchanged;

INSERT INTO evidence
SELECT fkey, 0, prev_at, prev_source, prev_event_id FROM vchanged
UNION ALL
SELECT fkey, 1, observed_at, source, event_id FROM vchanged;
"""
