"""Where each artefact lives, in one place. All functions return URIs (local paths or s3://)."""

from __future__ import annotations

from pipelines.config import Settings
from pipelines.storage import join


def published_file(settings: Settings, table: str, event_date: str, batch_id: str) -> str:
    return join(settings.published, f"event_type={table}", f"event_date={event_date}", f"{batch_id}.parquet")


def manifest_file(settings: Settings, batch_id: str) -> str:
    return join(settings.manifests, f"{batch_id}.json")


def quarantine_file(settings: Settings, batch_id: str) -> str:
    return join(settings.quarantine, f"{batch_id}.parquet")


def quarantined_original(settings: Settings, batch_id: str, name: str) -> str:
    return join(settings.quarantine, "files", batch_id, name)


def pending_root(root: str) -> str:
    """Where a batch's outputs for ``root`` (published/ or quarantine/) wait for their manifest: a
    hidden sibling of ``root`` (``<home>/.pending/published``), so no reader's glob under ``root`` ever
    matches them, and on the same filesystem, so moving one into place is a rename."""
    head, _, tail = root.rstrip("/").rpartition("/")
    if not head or head.endswith(":/"):  # a bucket's root has no sibling; stay hidden inside it
        return join(root, ".pending")
    return join(head, ".pending", tail)


def pending_file(root: str, batch_id: str, final: str) -> str:
    """The pending name of ``final`` (a file under ``root``) while ``batch_id`` is being published."""
    return join(pending_root(root), batch_id, relative(root, final))


def staging_dir(settings: Settings, batch_id: str) -> str:
    return join(settings.staging, batch_id)


def index_db(settings: Settings) -> str:
    return join(settings.state, "index.duckdb")


def declaration_plan(settings: Settings) -> str:
    """The declaration rows being logged, saved before their leaves are appended (crash recovery)."""
    return join(settings.state, "declarations.pending.json")


def writer_lock(settings: Settings) -> str:
    return join(settings.state, "writer.lock")


# Tables the pipeline publishes, each an Airflow Asset and a portal dataset.
PUBLISHED_TABLES = ("collection", "deletion", "access", "lifecycle", "retention_ledger", "findings", "log")


def asset_uri(table: str) -> str:
    return f"sensorlog://published/{table}"


def relative(root: str, uri: str) -> str:
    """``uri`` relative to ``root`` when it lies under it (manifests stay valid when a site moves)."""
    prefix = root.rstrip("/") + "/"
    return uri[len(prefix) :] if uri.startswith(prefix) else uri


def absolute(root: str, path: str) -> str:
    """Inverse of ``relative``."""
    return path if path.startswith("/") or "://" in path else join(root, path)


# Derived tables (recomputed by the audit from the published events; not leaves of the log, but each
# names the checkpoint it was computed from).
def derived_dir(settings: Settings, table: str) -> str:
    return join(settings.published, table)


def reports_dir(settings: Settings) -> str:
    return join(settings.home, "reports")


def site_dir(settings: Settings) -> str:
    return join(settings.home, "site")
