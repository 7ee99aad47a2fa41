"""Where each artefact lives, in one place. All functions return URIs (local paths or s3://)."""

from __future__ import annotations

from pipelines.config import Settings
from pipelines.storage import join
from pipelines.tables import ASSET_TABLES

# A logged table's rows are Hive-partitioned under the published root: event_type=<table>/event_date=<day>/.
PARTITION_PREFIX = "event_type="


def table_root(settings: Settings, table: str) -> str:
    return join(settings.published, f"{PARTITION_PREFIX}{table}")


def published_relpath(table: str, event_date: str, batch_id: str) -> str:
    """A batch's file of one table and day, relative to the published root (what a manifest lists, and what
    ``verify`` expects it to list)."""
    return f"{PARTITION_PREFIX}{table}/event_date={event_date}/{batch_id}.parquet"


def published_file(settings: Settings, table: str, event_date: str, batch_id: str) -> str:
    return join(settings.published, published_relpath(table, event_date, batch_id))


def manifest_file(settings: Settings, batch_id: str) -> str:
    return join(settings.manifests, f"{batch_id}.json")


def quarantine_file(settings: Settings, batch_id: str) -> str:
    return join(settings.quarantine, f"{batch_id}.parquet")


def quarantined_original(settings: Settings, batch_id: str, name: str) -> str:
    return join(settings.quarantine, "files", batch_id, name)


def quarantine_resolutions(settings: Settings) -> str:
    """What became of quarantined rows (``pipelines.resolutions``), beside the quarantine it speaks of."""
    return join(settings.quarantine, "resolutions.jsonl")


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


def seen_keys_dir(settings: Settings) -> str:
    """The sorted runs of the index's key hashes (``pipelines.publish.keyruns``), beside the index."""
    return join(settings.state, "seen-keys")


def declaration_plan(settings: Settings) -> str:
    """The declaration rows being logged, saved before their leaves are appended (crash recovery)."""
    return join(settings.state, "declarations.pending.json")


def superseded_cache(settings: Settings) -> str:
    """Which batches each manifest supersedes (``pipelines.ingest.corrections.superseded_in``)."""
    return join(settings.state, "superseded.json")


def writer_lock(settings: Settings) -> str:
    return join(settings.state, "writer.lock")


def lineage_file(settings: Settings) -> str:
    """The OpenLineage events file (one JSON event per line, ``pipelines.lineage``): in the home, or beside
    the local state when the home is on object storage (the file transport appends, which S3 cannot)."""
    base = settings.state if "://" in settings.home else settings.home
    return join(base, "lineage", "openlineage.jsonl")


# What the pipeline publishes as Airflow Assets (the catalog's, ``pipelines.tables``): the event and derived
# tables, each also a portal dataset, and the log.
PUBLISHED_TABLES = ASSET_TABLES


def relative(root: str, uri: str) -> str:
    """``uri`` relative to ``root`` when it lies under it (manifests stay valid when a site moves)."""
    prefix = root.rstrip("/") + "/"
    return uri[len(prefix) :] if uri.startswith(prefix) else uri


def absolute(root: str, path: str) -> str:
    """Inverse of ``relative``."""
    return path if path.startswith("/") or "://" in path else join(root, path)


# Derived tables (recomputed by the audit from the published events; not leaves of the log, but each
# names the checkpoint it was computed from). They live under their own root, a sibling of the published
# one: under ``published/`` a reader's ``read_parquet('published/**/*.parquet', hive_partitioning=true)``
# would meet files with no ``event_type=`` partition and another schema.
def derived_dir(settings: Settings, table: str) -> str:
    return join(settings.derived, table)


def legacy_derived_dir(settings: Settings, table: str) -> str:
    """Where homes written before the derived root existed keep ``table`` (``published/<table>/``): the
    next full audit removes what it wrote there."""
    return join(settings.published, table)


def reports_dir(settings: Settings) -> str:
    return join(settings.home, "reports")


def site_dir(settings: Settings) -> str:
    return join(settings.home, "site")


# Compaction (``pipelines.publish.compact``): merged partition files, their records, and the work area.
COMPACTED_PREFIX = "compacted-"


def compacted_name(first_leaf: int, last_leaf: int) -> str:
    """A compacted file's stem: its first and last leaf. Leaves of two partitions never overlap and later
    rows take larger leaves, so no two current compacted files share a name."""
    return f"{first_leaf:012d}-{last_leaf:012d}"


def compacted_relpath(table: str, event_date: str, first_leaf: int, last_leaf: int) -> str:
    name = compacted_name(first_leaf, last_leaf)
    return f"{PARTITION_PREFIX}{table}/event_date={event_date}/{COMPACTED_PREFIX}{name}.parquet"


def compactions_dir(settings: Settings) -> str:
    """The compaction records: a sibling of the manifests folder (``log/compactions/`` on a site)."""
    head, _, _ = settings.manifests.rstrip("/").rpartition("/")
    return join(head, "compactions") if head else "compactions"


def compaction_record(settings: Settings, name: str) -> str:
    return join(compactions_dir(settings), f"{name}.json")


def compaction_pending(settings: Settings) -> str:
    """Where a compaction builds its partitions before swapping them in: a hidden sibling of the pending
    batch folders (``<home>/.pending/compaction``), on the published root's filesystem."""
    head, _, _ = pending_root(settings.published).rstrip("/").rpartition("/")
    return join(head, "compaction")


# Data quality (``pipelines.quality``): the Great Expectations project, its stored Validation Results and
# Data Docs. Operator-only (results hold sample row values): in the home, or beside the local state when
# the home is on object storage (GX's filesystem stores need a local folder). The portal publishes a copy
# with row values removed (``public_data_docs_dir``) under ``quality/`` of the site.
def quality_dir(settings: Settings) -> str:
    base = settings.state if "://" in settings.home else settings.home
    return join(base, "quality")


def gx_project_dir(settings: Settings) -> str:
    """The GX project root (``gx.get_context(project_root_dir=...)``); its config is in ``gx/``."""
    return quality_dir(settings)


def validations_dir(settings: Settings) -> str:
    return join(quality_dir(settings), "validations")


def data_docs_dir(settings: Settings) -> str:
    return join(quality_dir(settings), "data_docs")


def public_validations_dir(settings: Settings) -> str:
    return join(quality_dir(settings), "public", "validations")


def public_data_docs_dir(settings: Settings) -> str:
    return join(quality_dir(settings), "public", "data_docs")


# Where a site (the portal) serves the public Data Docs; manifests name their pages relative to it.
SITE_QUALITY_DIR = "quality"
