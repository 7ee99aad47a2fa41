"""Per-deployment totals over the published tables and the quarantine, with DuckDB."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from pipelines import layout, storage
from pipelines.config import Settings
from pipelines.ingest import corrections
from pipelines.records import BatchTotals, Manifest
from pipelines.registry import home_registry
from pipelines.schemas import DECLARATIONS_KIND, EVENT_TABLES, QUARANTINE_SCHEMA, event_table


@dataclass(frozen=True)
class DeploymentSummary:
    deployment_id: str
    kind: str
    collected: int  # records
    deleted: int  # records
    accesses: int  # access events
    quarantined: int  # rows
    events: int  # published events of any type


# A file quarantined whole is one quarantine entry with no event in it (``pipelines.ingest.stage``
# writes it with only ``line`` and a ``file: …`` reason); every other entry is one quarantined row.
WHOLE_FILE = "(raw IS NULL AND event_type IS NULL AND reasons[1] LIKE 'file: %')"


@dataclass(frozen=True)
class QuarantineCounts:
    """What the quarantine holds, counted once: ``rows`` quarantined rows (``by_deployment`` of them name
    a deployment, ``unattributed`` do not: unreadable lines) and ``files`` quarantined whole."""

    by_deployment: int
    unattributed: int
    files: int

    @property
    def rows(self) -> int:
        return self.by_deployment + self.unattributed


def table_dataset(settings: Settings, table: str) -> ds.Dataset | None:
    """The published files of one event table as a pyarrow dataset (local or S3), or None if empty.

    Only files a manifest lists are trusted by ``verify``; readers here see the committed partitions
    because every file is renamed (or PUT) into place before its manifest is written."""
    root = layout.table_root(settings, table)
    files = storage.list_files(root, (".parquet",))
    if not files:
        return None
    fs, _ = storage.filesystem(root)
    paths = [storage.filesystem(f)[1] for f in files]
    partitioning = ds.partitioning(pa.schema([("event_date", pa.date32())]), flavor="hive")
    return ds.dataset(
        paths,
        filesystem=fs,
        format="parquet",
        partitioning=partitioning,
        partition_base_dir=storage.filesystem(root)[1],
    )


def duckdb_config(settings: Settings) -> dict[str, str]:
    spill = Path(settings.state) / "duckdb-spill"
    spill.mkdir(parents=True, exist_ok=True)
    return {"memory_limit": settings.duckdb_memory, "temp_directory": str(spill)}


def connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    """A DuckDB session with one view per published table (empty when nothing is published) and the
    quarantine. Data is handed to DuckDB as Arrow datasets, so local folders and S3 work the same way
    without DuckDB extensions. DuckDB's memory is bounded (``SENSORLOG_DUCKDB_MEMORY``); larger
    intermediate results spill to a folder under the local state."""
    # duckdb.connect takes a dict of any config value type (dict is invariant, so a dict[str, str] is not one).
    options: dict[str, str | bool | int | float | list[str]] = {**duckdb_config(settings)}
    con = duckdb.connect(config=options)
    # Rows of a batch a correction replaced stay in the log and its files; no count or finding uses them.
    superseded = sorted(corrections.superseded_in(settings))
    con.register("superseded_batches", pa.table({"batch_id": pa.array(superseded, pa.string())}))
    current = " WHERE batch_id NOT IN (SELECT batch_id FROM superseded_batches)" if superseded else ""
    for table in EVENT_TABLES:
        dataset = table_dataset(settings, table)
        if dataset is None:
            con.register(f"{table}_data", event_table(table).published_schema.empty_table())
        else:
            con.register(f"{table}_data", dataset)
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM {table}_data{current}")
    quarantine = [q for q in storage.list_files(settings.quarantine, (".parquet",)) if "/files/" not in q]
    if quarantine:
        fs, _ = storage.filesystem(settings.quarantine)
        data = ds.dataset([storage.filesystem(q)[1] for q in quarantine], filesystem=fs, format="parquet")
    else:
        data = QUARANTINE_SCHEMA.empty_table()
    con.register("quarantine_data", data)
    con.execute("CREATE VIEW quarantine AS SELECT * FROM quarantine_data")
    return con


def per_deployment(settings: Settings) -> list[DeploymentSummary]:
    registry = home_registry(settings)
    con = connect(settings)
    try:
        rows = con.execute(
            f"""
        WITH c AS (SELECT deployment_id, sum(records) AS n, count(*) AS e FROM collection GROUP BY 1),
             d AS (SELECT deployment_id, sum(records) AS n, count(*) AS e FROM deletion GROUP BY 1),
             a AS (SELECT deployment_id, count(*) AS e FROM access GROUP BY 1),
             l AS (SELECT deployment_id, count(*) AS e FROM lifecycle GROUP BY 1),
             q AS (SELECT deployment_id, count(*) AS e FROM quarantine
                   WHERE deployment_id IS NOT NULL AND NOT {WHOLE_FILE} GROUP BY 1),
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
    finally:
        con.close()
    found = {r[0]: r for r in rows}
    out = []
    for dep_id in sorted(set(found) | set(registry.ids())):
        row = found.get(dep_id, (dep_id, 0, 0, 0, 0, 0))
        dep = registry.get(dep_id)
        kind = dep.kind if dep else "(not in registry)"
        out.append(DeploymentSummary(dep_id, kind, int(row[1]), int(row[2]), int(row[3]), int(row[4]), int(row[5])))
    return out


def quarantine_counts(settings: Settings) -> QuarantineCounts:
    """The quarantine's rows (with and without a deployment id) and whole files, in one query, so that
    ``sensorlog status`` prints each number from one place."""
    con = connect(settings)
    try:
        row = con.execute(
            f"""SELECT count(*) FILTER (WHERE deployment_id IS NOT NULL AND NOT {WHOLE_FILE}),
                       count(*) FILTER (WHERE deployment_id IS NULL AND NOT {WHOLE_FILE}),
                       count(*) FILTER (WHERE {WHOLE_FILE})
                FROM quarantine"""
        ).fetchone()
        assert row is not None  # an aggregate always returns one row
        return QuarantineCounts(int(row[0]), int(row[1]), int(row[2]))
    finally:
        con.close()


def manifest_totals(settings: Settings) -> dict:
    """Conservation over every committed event batch, from the manifests (the commit points); the
    declaration batches (``pipelines.registry.declarations``) are counted apart, and ``leaves`` is every leaf
    the manifests account for (rows and manifests of both kinds: the signed tree's size)."""
    events = BatchTotals()
    declarations = declaration_batches = leaves = 0
    for uri in storage.list_files(settings.manifests, (".json",)):
        manifest = Manifest.from_json(storage.read_bytes(uri), uri)
        leaves += manifest.published + 1
        if manifest.kind == DECLARATIONS_KIND:
            declaration_batches += 1
            declarations += manifest.published
            continue
        events = events.plus(manifest)
    return {**events.to_dict(), "declarations": declarations, "declaration_batches": declaration_batches,
            "leaves": leaves}
