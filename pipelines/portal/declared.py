"""What the city declared, published: every logged version of each deployment record, provable.

The declaration rows the log holds below the checkpoint the site publishes (``log/checkpoint``) are
read back (``declarations.read_rows``), checked (each row must re-encode to its leaf hash, and the
inclusion proof of that leaf must verify against the published checkpoint before it is written), and
published as::

    declarations/<id>.json              the deployment's history: every version, in log order, with
                                        when it was logged, what changed, its leaf and its record
    declarations/<id>/<n>.json          version n's record exactly as logged (RFC 8785 bytes, so its
                                        SHA-256 is the version's record_sha256)
    declarations/<id>/<n>.tlog-proof    a c2sp.org/tlog-proof@v1 of version n's leaf against the
                                        site's checkpoint, with the leaf bytes as its extra data:
                                        ``sensorlog check-proof FILE --vkey log/log.vkey`` checks it
    data/declaration/declaration.{parquet,csv}   the same rows as one table (extracts)

A history entry holds every field of its leaf, so anyone can rebuild the leaf bytes from the entry
and the record file (``LEAF_HOW``) and compare them with the proof's. Nothing here is new data: the
rows are the ones the log export already copies under ``data/event_type=declaration/``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa

from pipelines import storage
from pipelines.config import Settings
from pipelines.errors import SensorlogError
from pipelines.log import writer
from pipelines.portal.tableschema import arrow_table_schema
from pipelines.registry import Registry, declarations, local_day
from pipelines.site import Site
from pipelines.tlog import leaf, merkle
from pipelines.tlog import proof as tlog_proof
from pipelines.tlog.checkpoint import open_checkpoint
from pipelines.tlog.layout import CHECKPOINT, VKEY

FOLDER = "declarations"
TITLE = "Sensor deployment declarations"
DESCRIPTION = (
    "Every version of every deployment record, as the city logged it: when each version was logged, "
    "whether it was the first version, an amendment, or a retroactive change (one that rewrote the "
    "retention or access terms of days before it was logged), which top-level fields changed, the record "
    "itself (RFC 8785 JSON text of the validated registry file) with its SHA-256, and the leaf of the "
    "version it replaced. Each row is a leaf of the transparency log (leaf_index, leaf_hash); these files "
    "hold the leaves below the site's signed checkpoint. Per deployment, declarations/<id>.json lists the "
    "same versions with an inclusion proof file for each."
)
COLUMN_DOCS = {
    "source": "Always sensorlog:registry: the city's registry, not a vendor feed.",
    "event_id": "<deployment_id>@<sequence>: unique within the source.",
    "event_time": "When this version was logged (UTC).",
    "deployment_id": "Registry id of the deployment.",
    "sequence": "Version number of this deployment's record; 1 is the first version logged.",
    "policy_version": "The record's current policy version.",
    "effective_from": "The day (YYYY-MM-DD, in the record's time zone) that policy is in force from.",
    "timezone": "The IANA time zone the record's dates are in.",
    "record": "The record as validated: RFC 8785 JSON text of the registry file's content.",
    "record_sha256": "SHA-256 of record (UTF-8), hex.",
    "previous_sha256": "record_sha256 of the version this one replaced; empty for a first version.",
    "previous_leaf": "leaf_index of the version this one replaced; empty for a first version.",
    "change": "first, amended, or retroactive (rewrote the retention or access terms of days before it was logged).",
    "changed_fields": "Top-level record fields that differ from the previous version, comma-separated; empty for"
    " a first version.",
    "batch_id": "SHA-256 of the declaration batch's leaf bytes, one per line.",
    "leaf_index": "Position of this row in the transparency log (RFC 9162 Merkle tree leaf index).",
    "leaf_hash": "RFC 9162 leaf hash of this row's canonical encoding, hex.",
}
# How to rebuild a version's leaf from its history entry (written into every history file).
LEAF_HOW = (
    "The leaf of a version is the RFC 8785 JSON text of one object: \"table\": \"declaration\", and source, "
    "event_id, deployment_id, sequence, policy_version, effective_from, timezone, record_sha256, "
    "previous_sha256, previous_leaf, change and batch_id as in the version, \"event_time\": logged_at, "
    "\"changed_fields\": changed_fields joined with commas, and \"record\": the text of record_file (RFC 8785 "
    "of record). Its leaf hash is SHA-256 of a zero byte followed by the leaf. The proof_file carries the "
    "leaf as its extra data: sensorlog check-proof PROOF_FILE --vkey log/log.vkey [--leaf-data LEAF]."
)
# The leaf fields a history entry holds as they are (the others: see LEAF_HOW).
_LEAF_FIELDS = ("source", "event_id", "deployment_id", "sequence", "policy_version", "effective_from", "timezone",
                "record_sha256", "previous_sha256", "previous_leaf", "change", "batch_id")


class DeclaredError(SensorlogError, ValueError):
    """A logged declaration the portal cannot publish as provable (the site would then lie)."""


@dataclass(frozen=True)
class Version:
    """One logged version of a deployment record, as the site publishes it."""

    sequence: int
    logged_at: datetime  # UTC
    logged_day: date  # local, in the record's zone
    declared_day: date  # the local day the audit counts it as declared (never before an earlier leaf's)
    change: str
    changed_fields: tuple[str, ...]
    policy_version: int
    effective_from: str
    leaf_index: int
    record_sha256: str
    record_path: str  # site paths
    proof_path: str

    @property
    def retroactive(self) -> bool:
        return self.change == declarations.RETROACTIVE


@dataclass(frozen=True)
class History:
    deployment_id: str
    path: str  # declarations/<id>.json
    versions: tuple[Version, ...]
    pending: bool  # the registry folder holds a record the log does not have yet

    @property
    def current(self) -> Version:
        return self.versions[-1]


@dataclass(frozen=True)
class Published:
    histories: dict[str, History]
    table: pa.Table | None  # the declaration rows (PUBLISHED_SCHEMA), None when the log holds none
    table_schema: dict[str, Any]
    size: int  # the tree size of the checkpoint everything is proven against


def history_path(deployment_id: str) -> str:
    return f"{FOLDER}/{deployment_id}.json"


def record_path(deployment_id: str, sequence: int) -> str:
    return f"{FOLDER}/{deployment_id}/{sequence}.json"


def proof_path(deployment_id: str, sequence: int) -> str:
    return f"{FOLDER}/{deployment_id}/{sequence}.tlog-proof"


def table_schema() -> dict[str, Any]:
    fields = [f.with_metadata({"description": COLUMN_DOCS[f.name]}) for f in declarations.PUBLISHED_SCHEMA]
    out = arrow_table_schema(pa.schema(fields), ["source", "event_id"])
    for field in out["fields"]:
        if field["name"] == "changed_fields":
            # Never null, but empty for a first version, and "" is how a Table Schema spells a missing value.
            field.pop("constraints", None)
    return out


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _fields(text: str) -> tuple[str, ...]:
    return tuple(f for f in text.split(",") if f)


def _proof(settings: Settings, row: dict[str, Any], checkpoint: str, vkey: str, size: int) -> str:
    """The inclusion proof of a declaration row's leaf against the published checkpoint, verified."""
    index = int(row["leaf_index"])
    data = leaf.row_leaf_bytes(declarations.TABLE, row)
    leaf_hash = merkle.leaf_hash(data)
    if leaf_hash.hex() != row["leaf_hash"]:
        raise DeclaredError(f"declaration leaf {index} ({row['event_id']}) does not re-encode to its leaf_hash:"
                            " run sensorlog verify")
    text = tlog_proof.format_proof(index, writer.inclusion_proof(settings, index, size), checkpoint, extra=data)
    try:
        tlog_proof.verify(text, leaf_hash, vkey)
    except ValueError as exc:
        raise DeclaredError(f"declaration leaf {index} ({row['event_id']}) is not in the published tree: {exc}"
                            " (run sensorlog verify)") from exc
    return text


def _entry(row: dict[str, Any], timezone: str, declared_day: date) -> dict[str, Any]:
    """A history entry: what a reader looks for first, then the rest of the leaf's fields (``LEAF_HOW``
    says how to rebuild the leaf), then the record."""
    deployment_id, sequence = str(row["deployment_id"]), int(row["sequence"])
    logged = _utc(row["event_time"])
    return {
        "sequence": sequence,
        "logged_at": leaf.format_timestamp(logged),
        "logged_day": local_day(logged, timezone).isoformat(),
        "declared_day": declared_day.isoformat(),
        "change": row["change"],
        "changed_fields": list(_fields(str(row["changed_fields"]))),
        "leaf_index": int(row["leaf_index"]),
        "leaf_hash": row["leaf_hash"],
        "record_file": record_path(deployment_id, sequence),
        "proof_file": proof_path(deployment_id, sequence),
        **{k: row[k] for k in _LEAF_FIELDS if k not in ("sequence", "change")},
        "record": json.loads(row["record"]),
    }


def _json(doc: object) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def publish(settings: Settings, site: Site, vkey: str, registry: Registry) -> Published:
    """Write every deployment's declaration history, record files and proofs into ``site`` (whose
    ``log/`` the log export has written), proven against the site's ``log/checkpoint``. Every proof is
    made and checked before the first file is written: DeclaredError leaves the site without them."""
    checkpoint = storage.read_bytes(site.uri(f"log/{CHECKPOINT}")).decode("utf-8")
    size = open_checkpoint(checkpoint, vkey).size
    rows = declarations.read_rows(settings.published, size)
    schema = table_schema()
    if not rows:
        return Published({}, None, schema, size)
    try:
        declared = declarations.declared_from_rows(rows)  # every record hashes to record_sha256 and is valid
    except declarations.DeclarationError as exc:
        raise DeclaredError(str(exc)) from exc

    files: list[tuple[str, bytes | str]] = []
    entries: dict[str, list[dict[str, Any]]] = {}
    versions: dict[str, list[Version]] = {}
    for row in rows:
        deployment_id, sequence = str(row["deployment_id"]), int(row["sequence"])
        timezone, logged = str(row["timezone"]), _utc(row["event_time"])
        files.append((record_path(deployment_id, sequence), str(row["record"]).encode("utf-8")))
        files.append((proof_path(deployment_id, sequence), _proof(settings, row, checkpoint, vkey, size)))
        # As the audit reads it: a version counts as declared no earlier than any leaf before it.
        declared_day = declared.histories[deployment_id][sequence - 1].declared_day
        entries.setdefault(deployment_id, []).append(_entry(row, timezone, declared_day))
        versions.setdefault(deployment_id, []).append(Version(
            sequence, logged, local_day(logged, timezone), declared_day, str(row["change"]),
            _fields(str(row["changed_fields"])),
            int(row["policy_version"]), str(row["effective_from"]), int(row["leaf_index"]),
            str(row["record_sha256"]), record_path(deployment_id, sequence), proof_path(deployment_id, sequence),
        ))

    histories = {}
    for deployment_id, listed in entries.items():
        path = history_path(deployment_id)
        files.append((path, _json({
            "deployment_id": deployment_id,
            "about": "Every version of this deployment's registry record that the transparency log holds, in log"
                     " order. logged_at is when the version was logged (UTC) and logged_day its local day;"
                     " declared_day is the local day the audit counts the version as declared: its logged_day,"
                     " or a later day when a leaf before it was logged later. Paths are relative to the site's"
                     " root.",
            "checkpoint": {"file": f"log/{CHECKPOINT}", "size": size, "vkey": f"log/{VKEY}"},
            "leaf": LEAF_HOW,
            "versions": listed,
        })))
        latest = declared.histories[deployment_id][-1]
        folder = registry.get(deployment_id)
        pending = folder is not None and (
            hashlib.sha256(declarations.canonical_record(folder)).hexdigest() != latest.record_sha256
            or folder.timezone != latest.deployment.timezone
        )
        histories[deployment_id] = History(deployment_id, path, tuple(versions[deployment_id]), pending)
    for path, data in files:
        site.write(path, data)
    return Published(histories, pa.Table.from_pylist(rows, schema=declarations.PUBLISHED_SCHEMA), schema, size)
