"""Phase two of a batch: de-duplicate, publish Parquet, append to the log, write the manifest.

One writer at a time (a file lock), because every published row takes the next leaf index in the
transparency log. The staged batch is checked first against the SHA-256 staging recorded for each of
its files; a staged batch that is missing, cut short or changed is staged again from the landed bytes
(staging is derived data). The order of effects makes a crash at any point recoverable by re-running:

1. each output Parquet file is written (atomically) under the batch's pending folder, a hidden sibling
   of ``published/`` and ``quarantine/`` (``layout.pending_root``) that no reader's glob matches;
2. the row and manifest leaves are appended to the log, keyed by batch id (a repeat is a no-op);
3. the manifest is written: the commit point;
4. the pending files are moved into place (a rename each).

Before any batch, the writer finishes what a crash left (``recover``): pending files of a batch whose
manifest exists are moved into place (roll forward); those of a batch without one are deleted, and
the batch is published again. So a reader of ``published/**/*.parquet`` never sees a row no manifest
lists, nor a row twice.

Outputs are deterministic functions of the staged rows and the log position the batch was first
given, so a re-run after a crash rewrites byte-identical files.

This package is the public face (``commit_batch``, ``recover``, ``commit_declarations`` and their
errors) and the order of the steps; ``dedupe`` holds the seen-index and the classification of rows,
``writer`` the files, the log append and the manifest (``pipelines.records.Manifest``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines import clock, layout, locks, storage
from pipelines.atomicfile import write_atomic
from pipelines.config import Settings
from pipelines.errors import SensorlogError
from pipelines.ingest import corrections, plausibility
from pipelines.ingest.stage import (
    StageResult,
    StaleStage,
    check_stage,
    find_landed,
    load_stage,
    stage_file,
    staged_files,
)
from pipelines.log import writer as log_writer
from pipelines.publish import compact, dedupe, writer
from pipelines.quality import results as quality_results
from pipelines.quality import summary as quality_summary
from pipelines.records import Leaves, Manifest, Output, QuarantineRow
from pipelines.registry import declarations, home_registry
from pipelines.schemas import DECLARATIONS_KIND
from pipelines.tlog import leaf

log = logging.getLogger(__name__)


class NotStaged(SensorlogError):
    def diagnostics(self) -> str:
        return f"not staged: {self}"


def writer_lock(settings: Settings):
    """One publisher at a time: every published row takes the next leaf index in the log."""
    return locks.exclusive(Path(layout.writer_lock(settings)))


def commit_batch(settings: Settings, batch_id: str, source_uri: str | None = None) -> dict:
    """``publish_batch``, its manifest JSON-shaped (``Manifest.to_dict``: what callers always got)."""
    return publish_batch(settings, batch_id, source_uri).to_dict()


def publish_batch(settings: Settings, batch_id: str, source_uri: str | None = None) -> Manifest:
    """Publish a staged batch and return its manifest. Re-running a committed batch is a no-op.

    A staged batch that is not what staging wrote is staged again, under the lock, from the landed
    file: ``source_uri``, else the file it was staged from, else the landed file with its bytes."""
    return publish_batch_once(settings, batch_id, source_uri)[0]


def publish_batch_once(settings: Settings, batch_id: str, source_uri: str | None = None) -> tuple[Manifest, bool]:
    """``publish_batch``, and whether this call committed it (False: it was committed before). Decided
    under the writer lock, so of two runs publishing one batch at once exactly one says True."""
    manifest_uri = layout.manifest_file(settings, batch_id)
    committed_here = False
    with writer_lock(settings):
        _recover(settings)
        if storage.exists(manifest_uri):
            manifest = Manifest.from_json(storage.read_bytes(manifest_uri), manifest_uri)
        else:
            committed_here = True
            try:
                stage, fresh = check_stage(settings, batch_id), False
            except StaleStage as stale:
                stage, fresh = _restage(settings, batch_id, source_uri, stale.reason), True
            try:
                manifest = _publish(settings, batch_id, stage)
            except ConservationError as err:
                if fresh:
                    raise
                stage = _restage(settings, batch_id, source_uri, str(err))
                manifest = _publish(settings, batch_id, stage)
        shutil.rmtree(layout.staging_dir(settings, batch_id), ignore_errors=True)
    pa.default_memory_pool().release_unused()  # see stage_file: keep a long run's RSS flat
    return manifest, committed_here


def _restage(settings: Settings, batch_id: str, source_uri: str | None, reason: str) -> StageResult:
    """Stage ``batch_id`` again from its landed bytes (the writer lock is held)."""
    record = load_stage(settings, batch_id)
    uri = find_landed(settings, batch_id, [source_uri, record.source_uri if record else None])
    if uri is None:
        raise NotStaged(f"batch {batch_id}: {reason}; no landed file has its bytes to stage it from")
    log.warning("batch %s: %s; staging it again from %s", batch_id, reason, uri)
    # Against the registry it was first staged with, when known, so it is the same derived batch.
    instants = plausibility.commissioning_instants(home_registry(settings))
    ids: Iterable[str] | dict = record.deployment_ids if record and record.deployment_ids else list(instants)
    if all(i in instants for i in ids):  # with commissioning dates, as the first staging checked them
        ids = {i: instants[i] for i in ids}
    stage_file(uri, settings, ids, force=True)
    return check_stage(settings, batch_id)


def _publish(settings: Settings, batch_id: str, stage: StageResult) -> Manifest:
    """Steps 1–4 of the module's docstring for a checked staged batch (the writer lock is held)."""
    ledger_log = log_writer.open_log(settings)
    start = ledger_log.batch_start(batch_id)
    next_index = start
    leaf_hashes: list[bytes] = []
    outputs: list[Output] = []
    conflicts: list[QuarantineRow] = []
    duplicates = 0
    index = dedupe.open_index(settings)
    try:
        index.begin()
        staged = staged_files(settings, batch_id)
        source_file = layout.relative(settings.landing, stage.source_uri)
        # Staging refused a correction that names no batch it can replace (then it has a file error).
        target = None if stage.file_error else corrections.superseded_batch(source_file)
        supersedes = (target,) if target else ()
        for table_name in dict.fromkeys(t for t, _, _ in staged):
            paths = [p for t, _, p in staged if t == table_name]
            classified = dedupe.classify(index, table_name, paths, batch_id, stage.source_uri, supersedes)
            duplicates += classified.duplicates
            conflicts.extend(classified.conflicts)
            dates = classified.publish.column("_date")
            for date in pc.unique(dates).to_pylist():
                rows = classified.publish.filter(pc.equal(dates, date)).drop_columns(["_date"])
                next_index = writer.write_partition(
                    settings, batch_id, table_name, date, rows, next_index, outputs, leaf_hashes
                )
        quarantine = writer.write_quarantine(settings, stage, conflicts)
        manifest = Manifest(
            batch_id=batch_id,
            source_file=source_file,
            source_sha256=batch_id,
            source_bytes=stage.source_bytes,
            validated_at=stage.validated_at,
            rows_in=stage.rows_in,
            published=sum(o.rows for o in outputs),
            quarantined=quarantine.rows if quarantine else 0,
            duplicates=duplicates,
            file_error=stage.file_error,
            quarantine=quarantine,
            outputs=tuple(outputs),
            leaves=Leaves(first=start, rows_end=next_index, manifest_leaf=next_index),
            validation=stage.validation or None,
            validation_results=quality_summary.result_refs(stage.validation_results) or None,
            supersedes=supersedes or None,
        )
        _check_conservation(manifest)
        manifest = writer.log_manifest(ledger_log, manifest, leaf_hashes)
        index.commit()
    except BaseException:
        index.rollback()
        writer.discard_pending(settings, batch_id)
        raise
    finally:
        index.close()
    writer.commit_manifest(settings, manifest)
    quality_results.keep_only(settings, batch_id, stage.validation_results)  # drop earlier stagings' results
    return manifest


def _recover(settings: Settings) -> None:
    writer.finish_pending(settings)
    compact.finish_interrupted(settings)  # a compaction's journal: roll forward, or drop its work


def recover(settings: Settings) -> None:
    """Finish what a crashed writer left: roll committed batches forward, discard uncommitted ones."""
    with writer_lock(settings):
        _recover(settings)


class ConservationError(SensorlogError):
    """A batch whose rows in are not its published + quarantined + duplicates: an integrity failure
    (not an ``AssertionError``, which a test's or caller's ``except AssertionError`` would swallow)."""


def _check_conservation(manifest: Manifest) -> None:
    total = manifest.published + manifest.quarantined + manifest.duplicates
    if total != manifest.rows_in:
        raise ConservationError(
            f"batch {manifest.batch_id}: rows in {manifest.rows_in}"
            f" != published {manifest.published}"
            f" + quarantined {manifest.quarantined} + duplicates {manifest.duplicates}"
        )


# -- declarations ---------------------------------------------------------------------------------


def commit_declarations(settings: Settings, now: datetime | None = None) -> list[dict]:
    """Log every deployment whose validated record differs from the log's latest version of it (the
    whole registry the first time), as one declaration batch, before any event batch is published.
    Returns the manifests written, JSON-shaped (none when nothing changed).

    The rows (with the moment they are logged) are saved in the state folder before their leaves are
    appended, so a crash before the manifest is finished by the next run with the same rows, hence
    the same batch id and leaves. See ``pipelines.registry.declarations``."""
    manifests = []
    with writer_lock(settings):
        _recover(settings)
        plan = Path(layout.declaration_plan(settings))
        if plan.exists():
            manifests.append(_publish_declarations(settings, _read_plan(plan), plan).to_dict())
        registry = home_registry(settings)
        logged = declarations.load_declared(settings.published)
        # Never dated before a declaration already logged (the audit reads times the same way).
        moment = max([now or clock.current_time(settings.timezone), *(logged.latest_time() if logged else ())])
        rows = declarations.next_rows(registry, logged, moment)
        if rows:
            write_atomic(plan, json.dumps(rows, default=_iso, sort_keys=True).encode())
            manifests.append(_publish_declarations(settings, rows, plan).to_dict())
    return manifests


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot save {type(value).__name__} in a declaration plan")


def _read_plan(plan: Path) -> list[dict]:
    rows = json.loads(plan.read_bytes())
    for row in rows:
        row["event_time"] = datetime.fromisoformat(row["event_time"])
    return rows


def _publish_declarations(settings: Settings, rows: list[dict], plan: Path) -> Manifest:
    """Steps 1–4 of the module's docstring for one declaration batch (the writer lock is held)."""
    batch_id = declarations.batch_id_of(rows)
    manifest_uri = layout.manifest_file(settings, batch_id)
    if storage.exists(manifest_uri):  # published before a crash removed the plan
        plan.unlink(missing_ok=True)
        return Manifest.from_json(storage.read_bytes(manifest_uri), manifest_uri)
    ledger_log = log_writer.open_log(settings)
    start = ledger_log.batch_start(batch_id)
    table = pa.Table.from_pylist(rows, schema=declarations.ROW_SCHEMA)
    table = table.append_column("batch_id", pa.repeat(pa.scalar(batch_id, pa.string()), table.num_rows))
    encoded = leaf.table_leaf_bytes(declarations.TABLE, table)
    too_big = [r["event_id"] for r, e in zip(rows, encoded, strict=True) if len(e) > leaf.MAX_ENTRY_BYTES]
    if too_big:
        raise ValueError(f"declaration of {', '.join(too_big)} is over {leaf.MAX_ENTRY_BYTES} bytes as a leaf")
    hashes = [hashlib.sha256(b"\x00" + e).digest() for e in encoded]
    table = table.append_column("leaf_index", pa.array(np.arange(start, start + len(rows), dtype=np.int64)))
    table = table.append_column("leaf_hash", writer.hex_strings(hashes)).cast(declarations.PUBLISHED_SCHEMA)
    day = rows[0]["event_time"].astimezone(UTC).date().isoformat()
    uri = layout.published_file(settings, declarations.TABLE, day, batch_id)
    try:
        digest = writer.write_parquet(layout.pending_file(settings.published, batch_id, uri), table)
        manifest = Manifest(
            batch_id=batch_id,
            kind=DECLARATIONS_KIND,
            source_file=Path(settings.registry).name,  # the folder, never the operator's path
            source_sha256=batch_id,
            source_bytes=sum(len(r["record"].encode()) for r in rows),
            validated_at=rows[0]["event_time"].astimezone(UTC).isoformat(),
            rows_in=len(rows),
            published=len(rows),
            quarantined=0,
            duplicates=0,
            file_error=None,
            quarantine=None,
            outputs=(
                Output(table=declarations.TABLE, event_date=day, path=layout.relative(settings.published, uri),
                       rows=len(rows), sha256=digest, first_leaf=start),
            ),
            leaves=Leaves(first=start, rows_end=start + len(rows), manifest_leaf=start + len(rows)),
        )
        # One output: its leaf always fits, so fitting it (shared with event batches) never changes it.
        manifest = writer.log_manifest(ledger_log, manifest, hashes)
    except BaseException:
        writer.discard_pending(settings, batch_id)
        raise
    writer.commit_manifest(settings, manifest)
    plan.unlink(missing_ok=True)
    return manifest
