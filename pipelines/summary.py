"""Per-deployment totals over the published tables and the quarantine, with DuckDB."""

from __future__ import annotations

import json
from dataclasses import dataclass

import duckdb

from pipelines import storage
from pipelines.config import Settings
from pipelines.registry import load_registry
from pipelines.schemas import QUARANTINE_SCHEMA, event_table


@dataclass(frozen=True)
class DeploymentSummary:
    deployment_id: str
    kind: str
    collected: int  # records
    deleted: int  # records
    accesses: int  # access events
    quarantined: int  # rows
    events: int  # published events of any type


def _published_glob(settings: Settings, table: str) -> str | None:
    root = storage.join(settings.published, f"event_type={table}")
    return storage.join(root, "**", "*.parquet") if storage.list_files(root, (".parquet",)) else None


def connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A DuckDB session with one view per published table (empty views when nothing is published)."""
    con = duckdb.connect()
    if storage.is_s3(settings.published):
        con.execute("INSTALL httpfs; LOAD httpfs;")
    for table in ("collection", "deletion", "access", "lifecycle"):
        glob = _published_glob(settings, table)
        if glob:
            con.execute(
                f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true)"
            )
        else:
            con.register(f"{table}_empty", event_table(table).published_schema.empty_table())
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM {table}_empty")
    quarantine = storage.list_files(settings.quarantine, (".parquet",))
    quarantine = [q for q in quarantine if "/files/" not in q]
    if quarantine:
        files = ", ".join(f"'{q}'" for q in quarantine)
        con.execute(f"CREATE VIEW quarantine AS SELECT * FROM read_parquet([{files}])")
    else:
        con.register("quarantine_empty", QUARANTINE_SCHEMA.empty_table())
        con.execute("CREATE VIEW quarantine AS SELECT * FROM quarantine_empty")
    return con


def per_deployment(settings: Settings) -> list[DeploymentSummary]:
    registry = load_registry(settings.registry)
    con = connect(settings)
    rows = con.execute(
        """
        WITH c AS (SELECT deployment_id, sum(records) AS n, count(*) AS e FROM collection GROUP BY 1),
             d AS (SELECT deployment_id, sum(records) AS n, count(*) AS e FROM deletion GROUP BY 1),
             a AS (SELECT deployment_id, count(*) AS e FROM access GROUP BY 1),
             l AS (SELECT deployment_id, count(*) AS e FROM lifecycle GROUP BY 1),
             q AS (SELECT deployment_id, count(*) AS e FROM quarantine
                   WHERE deployment_id IS NOT NULL GROUP BY 1),
             ids AS (SELECT deployment_id FROM c UNION SELECT deployment_id FROM d
                     UNION SELECT deployment_id FROM a UNION SELECT deployment_id FROM l
                     UNION SELECT deployment_id FROM q)
        SELECT ids.deployment_id, coalesce(c.n, 0), coalesce(d.n, 0), coalesce(a.e, 0), coalesce(q.e, 0),
               coalesce(c.e, 0) + coalesce(d.e, 0) + coalesce(a.e, 0) + coalesce(l.e, 0)
        FROM ids LEFT JOIN c USING (deployment_id) LEFT JOIN d USING (deployment_id)
             LEFT JOIN a USING (deployment_id) LEFT JOIN l USING (deployment_id)
             LEFT JOIN q USING (deployment_id)
        """
    ).fetchall()
    found = {r[0]: r for r in rows}
    out = []
    for dep_id in sorted(set(found) | set(registry.ids())):
        row = found.get(dep_id, (dep_id, 0, 0, 0, 0, 0))
        dep = registry.get(dep_id)
        kind = dep.kind if dep else "(not in registry)"
        out.append(
            DeploymentSummary(dep_id, kind, int(row[1]), int(row[2]), int(row[3]), int(row[4]), int(row[5]))
        )
    return out


def unattributed_quarantine(settings: Settings) -> int:
    """Quarantined rows and files with no deployment id (unreadable lines and whole files)."""
    con = connect(settings)
    return int(con.execute("SELECT count(*) FROM quarantine WHERE deployment_id IS NULL").fetchone()[0])


def manifest_totals(settings: Settings) -> dict:
    """Conservation over every committed batch, from the manifests (the commit points)."""
    totals = {"batches": 0, "rows_in": 0, "published": 0, "quarantined": 0, "duplicates": 0, "file_errors": 0}
    for uri in storage.list_files(settings.manifests, (".json",)):
        manifest = json.loads(storage.read_bytes(uri))
        totals["batches"] += 1
        for key in ("rows_in", "published", "quarantined", "duplicates"):
            totals[key] += manifest[key]
        totals["file_errors"] += 1 if manifest.get("file_error") else 0
    return totals
