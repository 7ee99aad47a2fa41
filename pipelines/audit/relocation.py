"""Moves the log records against moves the registry declares (``lifecycle.relocations``).

* ``undeclared_relocation``: a ``relocated`` lifecycle event in the log on a local day (the city's zone)
  on which the deployment's record declares no relocation: the device moved, and the location the
  public is shown was not updated. One finding per deployment and local day; period that day; numbers:
  the day, the events and their details, the relocations the record declares; evidence: the events.

A declared relocation with no event is no finding: vendors often emit none. The deployment page shows
the declared moves next to the lifecycle events the log holds.

The record judged is the latest declared version (``Declared.registry``): a move declared after it
happened is still declared.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from pipelines.audit import context
from pipelines.registry import Registry

# Read with the other published tables (``retention.SNAPSHOT``): the rows the checkpoint covers.
SNAPSHOT = """
CREATE OR REPLACE TEMP TABLE moves_all AS
SELECT source, event_id, deployment_id, "at", details FROM lifecycle
WHERE leaf_index < $limit AND action = 'relocated'
"""

MOVES_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("event_id", pa.string()),
        ("deployment_id", pa.string()),
        ("at", context.TIMESTAMP),
        ("details", pa.string()),
        ("day", pa.date32()),  # the local day of the event
        ("day_start", context.TIMESTAMP),
        ("day_end", context.TIMESTAMP),
        ("declared", pa.list_(pa.string())),  # every relocation day the record declares
    ]
)


def _declared_days(registry: Registry, deployment_id: str) -> set[date] | None:
    deployment = registry.get(deployment_id)
    return None if deployment is None else {r.on for r in deployment.relocations}


def undeclared_moves(con: duckdb.DuckDBPyConnection, registry: Registry, timezone: str) -> pa.Table:
    """The relocation events in scope (params: as_of, deployment) of a registered deployment on a local
    day its record declares no relocation on (needs ``moves_all`` and ``params``)."""
    rows: list[dict[str, Any]] = []
    events = con.execute(
        """SELECT m.source, m.event_id, m.deployment_id, m."at", m.details FROM moves_all m, params p
           WHERE m."at" <= p.as_of AND (p.deployment IS NULL OR m.deployment_id = p.deployment)
           ORDER BY m.deployment_id, m."at", m.source, m.event_id"""
    ).fetchall()
    for source, event_id, deployment_id, at, details in events:
        declared = _declared_days(registry, deployment_id)
        if declared is None:
            continue  # not a registered deployment: ingest has reported it
        day = context.local_date(at, timezone)
        if day in declared:
            continue
        rows.append({
            "source": source, "event_id": event_id, "deployment_id": deployment_id, "at": at, "details": details,
            "day": day, "day_start": context.local_midnight(day, timezone),
            "day_end": context.local_midnight(day + timedelta(days=1), timezone),
            "declared": sorted(d.isoformat() for d in declared),
        })
    return pa.Table.from_pylist(rows, schema=MOVES_SCHEMA)


UNDECLARED = """
CREATE OR REPLACE TEMP TABLE moved_f AS
SELECT deployment_id, day, day_start AS period_start, day_end AS period_end,
       count(*) AS events, list(details ORDER BY "at") FILTER (WHERE details IS NOT NULL) AS details,
       any_value(declared) AS declared,
       fkey('undeclared_relocation', deployment_id, NULL, day_start, day_end) AS fkey
FROM moves GROUP BY deployment_id, day, day_start, day_end;

INSERT INTO found
SELECT fkey, 'undeclared_relocation', deployment_id, NULL, period_start, period_end, NULL,
       to_json(struct_pack(relocated_on := strftime(day, '%Y-%m-%d'), events := events,
                           details := coalesce(details, []), declared_relocations := declared))::VARCHAR
FROM moved_f;

INSERT INTO evidence
SELECT f.fkey, 0, m."at", m.source, m.event_id FROM moved_f f JOIN moves m USING (deployment_id, day);
"""
