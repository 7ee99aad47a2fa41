"""OpenLineage for sensorlog, the part that needs no Airflow: where the run events go, and what a task read
and wrote, as plain data. ``sensorlog_airflow.lineage`` hands these facts to the OpenLineage provider
(docs/lineage.md).

Datasets are named by URI (``file:///…`` for a local path, ``s3://bucket/key`` as stored): the provider
turns those into OpenLineage namespaces and names with its own rules, the same ones it applies to
Airflow Assets, so a landed file or a table has one name wherever it appears.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pipelines import config, layout, storage
from pipelines.config import Settings, environment
from pipelines.records import Manifest, ManifestError

# The provider's own switches for where events go. When an operator sets any of them (Marquez over HTTP,
# a config file, an Airflow connection, or OpenLineage turned off), sensorlog's file default stays out.
TRANSPORT_VARIABLES = (
    "OPENLINEAGE_URL",
    "OPENLINEAGE_CONFIG",
    "OPENLINEAGE_DISABLED",
    "AIRFLOW__OPENLINEAGE__TRANSPORT",
    "AIRFLOW__OPENLINEAGE__CONFIG_PATH",
    "AIRFLOW__OPENLINEAGE__CONFIG_CONN_ID",
    "AIRFLOW__OPENLINEAGE__DISABLED",
)
# The extractor that attaches the data-quality facets to the TaskFlow tasks' datasets (the provider has
# none for ``@task``; see sensorlog_airflow/lineage.py).
EXTRACTOR = "sensorlog_airflow.lineage.TaskLineageExtractor"


def namespace(settings: Settings, env: Mapping[str, str] | None = None) -> str:
    """The OpenLineage namespace of sensorlog's jobs: ``SENSORLOG_LINEAGE_NAMESPACE``, else the log's
    origin (the city's name for its log, already unique per deployment)."""
    return config.lineage_namespace(env) or settings.log_origin


def user_transport(env: Mapping[str, str] | None = None) -> bool:
    """Whether the environment already chooses the transport (or disables OpenLineage)."""
    env = environment(env)
    return any(env.get(name) for name in TRANSPORT_VARIABLES) or any(
        name.startswith("OPENLINEAGE__TRANSPORT") and value for name, value in env.items()
    )


def file_transport(settings: Settings) -> dict[str, object]:
    """The default transport: one JSON event per line, appended to ``layout.lineage_file``."""
    return {"type": "file", "log_file_path": layout.lineage_file(settings), "append": True}


def openlineage_env(settings: Settings, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables that configure the OpenLineage provider for an Airflow process of this home: the file
    transport unless ``env`` chooses one, the namespace, and sensorlog's extractor (added to any the
    operator configured)."""
    env = environment(env)
    out = {
        "AIRFLOW__OPENLINEAGE__NAMESPACE": env.get("AIRFLOW__OPENLINEAGE__NAMESPACE") or namespace(settings, env),
    }
    theirs = [e for e in env.get("AIRFLOW__OPENLINEAGE__EXTRACTORS", "").split(";") if e.strip()]
    out["AIRFLOW__OPENLINEAGE__EXTRACTORS"] = ";".join(dict.fromkeys([*theirs, EXTRACTOR]))
    if not user_transport(env):
        out["AIRFLOW__OPENLINEAGE__TRANSPORT"] = json.dumps(file_transport(settings))
    return out


def prepare(settings: Settings) -> None:
    """Create the events file's folder: the file transport appends to the file but makes no folder, and
    the scheduler writes the first DAG-run event before any task runs."""
    Path(layout.lineage_file(settings)).parent.mkdir(parents=True, exist_ok=True)


def uri(location: str) -> str:
    """A dataset URI for a stored location: ``s3://…`` as it is, a local path as ``file://<absolute path>``,
    unescaped, as Airflow's own file Assets are made (``common.io``'s ``create_asset``), so the dataset's
    OpenLineage name is the path itself."""
    if "://" in location:
        return location
    return "file://" + str(Path(location).absolute())


# -- what a task read and wrote ------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One data-quality verdict on a landed file's rows bound for ``table``: ``failed`` rows broke ``rule``
    (0: it held). ``rule`` names an expectation, a quarantine reason, or a whole-file check."""

    table: str | None
    rule: str
    failed: int


@dataclass(frozen=True)
class Quality:
    """A landed file's data quality: rows read, rows failing, and each check. ``source`` says what the
    checks come from: ``"validation"`` (the GX results in the batch manifest) or ``"quarantine"`` (the
    manifest's quarantine counts, when the manifest has no validation results)."""

    rows: int
    failed: int
    checks: tuple[Check, ...]
    source: str


@dataclass(frozen=True)
class TableWrite:
    """What one batch wrote to one table: rows and files."""

    table: str
    rows: int
    files: int


@dataclass(frozen=True)
class BatchLineage:
    """A published batch as lineage sees it: the landed file it read (with its bytes and quality) and
    the tables (and quarantine) it wrote."""

    batch_id: str
    source: str  # the landed file's URI
    source_bytes: int
    quality: Quality
    writes: tuple[TableWrite, ...]
    quarantined: int
    duplicates: int


def _validation_checks(validation: object) -> tuple[list[Check], int] | None:
    """The ``"validation"`` member of a manifest, ``{"<table>": {"rows": N, "failed": {"<rule>": n}}}``, as
    checks and the rows they covered; None when it is missing or not of that shape (then the quarantine
    counts stand in)."""
    if not isinstance(validation, dict) or not validation:
        return None
    checks: list[Check] = []
    rows = 0
    for table, result in sorted(validation.items()):
        if not isinstance(result, dict) or type(result.get("rows")) is not int:
            return None
        fails = result.get("failed") or {}
        if not isinstance(fails, dict) or any(type(n) is not int for n in fails.values()):
            return None
        rows += result["rows"]
        checks += [Check(str(table), str(rule), n) for rule, n in sorted(fails.items())]
        if not fails:
            checks.append(Check(str(table), "suite", 0))
    return checks, rows


def _quality(manifest: Manifest, validation: object) -> Quality:
    """The checks of a batch: the validation results when the manifest has them, plus what happens before
    validation (a file that cannot be read at all, lines that do not parse into rows); without them, the
    manifest's quarantine count as one check."""
    readable = Check(None, "file readable", 0 if manifest.file_error is None else 1)
    found = _validation_checks(validation)
    if found is None:
        checks = [readable, Check(None, "rows valid", manifest.quarantined)]
        return Quality(manifest.rows_in, manifest.quarantined, tuple(checks), "quarantine")
    checks, validated = found
    checks = [readable, Check(None, "lines parsed", max(0, manifest.rows_in - validated)), *checks]
    return Quality(manifest.rows_in, manifest.quarantined, tuple(checks), "validation")


def batch_lineage(settings: Settings, batch_id: str) -> BatchLineage | None:
    """The lineage of a published batch, from its manifest; None when it has none (not published)."""
    path = layout.manifest_file(settings, batch_id)
    if not storage.exists(path):
        return None
    try:
        raw = json.loads(storage.read_bytes(path))
    except ValueError as err:  # UnicodeDecodeError is one
        raise ManifestError(f"{path}: not JSON ({err})") from err
    # Read apart from the typed record, so this works whether or not records.Manifest knows the member.
    validation = raw.pop("validation", None) if isinstance(raw, dict) else None
    manifest = Manifest.from_dict(raw, path)
    rows: dict[str, int] = {}
    files: dict[str, int] = {}
    for out in manifest.outputs:
        rows[out.table] = rows.get(out.table, 0) + out.rows
        files[out.table] = files.get(out.table, 0) + 1
    quality = _quality(manifest, validation)
    return BatchLineage(
        batch_id=batch_id,
        source=uri(layout.absolute(settings.landing, manifest.source_file)),
        source_bytes=manifest.source_bytes,
        quality=quality,
        writes=tuple(TableWrite(t, rows[t], files[t]) for t in sorted(rows)),
        quarantined=manifest.quarantined,
        duplicates=manifest.duplicates,
    )


def published_lineage(settings: Settings, batch_ids: Iterable[str]) -> list[BatchLineage]:
    """The lineage of each batch in ``batch_ids`` that has a manifest (a publish result's ``batch_ids``)."""
    found = (batch_lineage(settings, b) for b in dict.fromkeys(batch_ids))
    return [b for b in found if b is not None]


def table_uri(settings: Settings, table: str) -> str:
    """A table's dataset URI: the root of its partitions."""
    return uri(layout.table_root(settings, table))


def quarantine_uri(settings: Settings) -> str:
    return uri(settings.quarantine)
