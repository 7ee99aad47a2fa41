"""What each Airflow Asset of sensorlog is, without Airflow: its URI (the real location of what it names)
and the ``extra`` its events carry (``sensorlog_airflow.assets`` makes the Airflow objects from these).

URIs use the schemes Airflow and OpenLineage know: ``file:///…`` for a local path, ``s3://bucket/prefix``
on object storage (``pipelines.lineage.uri``, the same rule the lineage events name datasets by), so an
Asset and the OpenLineage dataset of one table are one name. An event table's Asset is the root of its
partitions, a derived table's its folder, the log's the log directory. They are fixed when a DAG file
is parsed, from the settings of that environment.

An event's ``extra`` says what changed: the batches and rows a run added (published, quarantined,
duplicates) and the checkpoint the log stood at afterwards (size and root hash, base64 as in the signed
checkpoint), so a consumer of the event knows which tree it describes without reading the home.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from typing import Any

from pipelines import layout, lineage
from pipelines.config import Settings
from pipelines.tables import table_spec

log = logging.getLogger(__name__)

# Batch ids an event names at most (each 64 hex digits): a sweep of thousands of files would otherwise
# make every event of the run tens of kilobytes in Airflow's metadata database.
MAX_BATCH_IDS = 100

SITE_ASSET_NAME = "sensorlog.portal"


def location(settings: Settings, table: str) -> str:
    """Where an Asset's table lives (a local path or ``s3://`` URI)."""
    spec = table_spec(table)
    if not spec.asset:
        raise ValueError(f"{table} is not published as an Asset")
    if spec.kind == "event":
        return layout.table_root(settings, table)
    if spec.kind == "derived":
        return layout.derived_dir(settings, table)
    return settings.log


def asset_uri(settings: Settings, table: str) -> str:
    """The Asset URI of ``table``: its location as ``file://`` or ``s3://``."""
    return lineage.uri(location(settings, table))


def site_uri(settings: Settings, out: str | None) -> str:
    """The portal's Asset URI: the folder (or ``s3://`` prefix) the site is written to."""
    return lineage.uri(out or layout.site_dir(settings))


def checkpoint(settings: Settings) -> dict[str, Any]:
    """The log's latest checkpoint as an event states it: ``checkpoint_size`` and ``checkpoint_root``
    (None for both before the first append). Never raises: a log that cannot be read is logged, and
    the task that already did its work is not failed for its event's extra."""
    from pipelines.log import writer

    try:
        latest = writer.latest_checkpoint(settings)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        log.warning("asset event extra: the log's checkpoint could not be read: %s: %s", type(exc).__name__, exc)
        latest = None
    if latest is None:
        return {"checkpoint_size": None, "checkpoint_root": None}
    return {"checkpoint_size": latest.size, "checkpoint_root": base64.b64encode(latest.root_hash).decode()}


def _batch_ids(ids: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"batch_ids": ids[:MAX_BATCH_IDS]}
    if len(ids) > MAX_BATCH_IDS:
        out["batch_ids_truncated"] = True
    return out


def ingest_extra(settings: Settings, totals: Mapping[str, Any], table: str | None = None) -> dict[str, Any]:
    """An ingest run's event (``flow.commit_batches``' totals): its batches and rows, and for ``table``
    the rows it added to that table."""
    extra: dict[str, Any] = {
        "batches": totals.get("batches", 0),
        **_batch_ids(list(totals.get("batch_ids") or [])),
        "rows_in": totals.get("rows_in", 0),
        "published": totals.get("published", 0),
        "quarantined": totals.get("quarantined", 0),
        "duplicates": totals.get("duplicates", 0),
        "file_errors": totals.get("file_errors", 0),
        "already_published": totals.get("already_published", 0),
        "failed": len(totals.get("failed") or []),
    }
    if table is not None:
        extra["table"] = table
        extra["table_rows"] = int((totals.get("published_by_table") or {}).get(table, 0))
    return {**extra, **checkpoint(settings)}


def log_extra(settings: Settings, cosigned: Mapping[str, Any]) -> dict[str, Any]:
    """The log's event, after the witnesses (``witnessing.Result.to_dict()``)."""
    return {**checkpoint(settings), "cosignatures": cosigned.get("cosignatures")}


def _log_totals(settings: Settings) -> dict[str, Any]:
    """Every committed batch's rows (the manifests): what an audit or portal built from."""
    from pipelines import summary

    totals = summary.manifest_totals(settings)
    return {k: totals[k] for k in ("batches", "rows_in", "published", "quarantined", "duplicates")}


def audit_extra(settings: Settings, published: Mapping[str, Any]) -> dict[str, Any]:
    """An audit's event (``audit.publish``'s summary): as of when, what it found, over which log."""
    return {
        "as_of": published.get("as_of"),
        "as_of_date": published.get("as_of_date"),
        "as_of_source": published.get("as_of_source"),
        "findings": published.get("findings"),
        "by_severity": published.get("by_severity"),
        **_log_totals(settings),
        **checkpoint(settings),
    }


def portal_extra(settings: Settings, built: list[Mapping[str, Any]]) -> dict[str, Any]:
    """A portal build's event (``portal_runs.build_portals``): each language's site, over which log."""
    return {
        "sites": [{k: b.get(k) for k in ("lang", "out", "files", "datasets")} for b in built],
        **_log_totals(settings),
        **checkpoint(settings),
    }
