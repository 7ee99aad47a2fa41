"""What a batch writes, in the order that makes a crash recoverable (``pipelines.publish``): its partition
files and its quarantine file, under the batch's pending folder; its leaves, appended to the log; then
its manifest, the commit point, after which the pending files are moved into place. What a crash left
is finished here too: a batch with a manifest is rolled forward, one without has its files discarded."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import layout, storage
from pipelines.config import Settings
from pipelines.ingest.stage import StageResult, quarantine_table
from pipelines.log import rowhash
from pipelines.log import writer as log_writer
from pipelines.log.rowhash import LEAF_HASH
from pipelines.records import Manifest, Output, QuarantineFile, QuarantineRow
from pipelines.schemas import QUARANTINE_SCHEMA, event_table
from pipelines.tlog import leaf

PARQUET_OPTIONS = {"compression": "zstd", "use_dictionary": True, "write_statistics": True}
log = logging.getLogger(__name__)


def write_parquet(uri: str, table: pa.Table) -> str:
    """Write ``table`` atomically to ``uri``; return its SHA-256."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **PARQUET_OPTIONS)
    data = sink.getvalue().to_pybytes()
    storage.write_bytes(uri, data, content_type="application/vnd.apache.parquet")

    return hashlib.sha256(data).hexdigest()


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", np.uint8)


def hex_strings(digests: list[bytes]) -> pa.Array:
    """Lower-case hex of equal-length digests as a string array (what ``bytes.hex`` gives, vectorised)."""
    if not digests:
        return pa.array([], pa.string())
    width = len(digests[0])
    raw = np.frombuffer(b"".join(digests), np.uint8)
    if len(raw) != width * len(digests):
        return pa.array([d.hex() for d in digests], pa.string())
    text = np.empty(len(raw) * 2, np.uint8)
    text[0::2], text[1::2] = _HEX_DIGITS[raw >> 4], _HEX_DIGITS[raw & 15]
    offsets = np.arange(len(digests) + 1, dtype=np.int32) * (2 * width)
    return pa.Array.from_buffers(pa.string(), len(digests), [None, pa.py_buffer(offsets), pa.py_buffer(text)])


def write_partition(
    settings: Settings,
    batch_id: str,
    table_name: str,
    date: str,
    rows: pa.Table,
    first_leaf: int,
    outputs: list[Output],
    leaf_hashes: list[bytes],
) -> int:
    """Write one (table, date) partition of a batch with its leaf columns; returns the next leaf index."""
    hashes = rowhash.digests(rows.column(LEAF_HASH))
    rows = rowhash.as_published(table_name, rows, batch_id)
    rows = rows.append_column("leaf_index", pa.array(np.arange(first_leaf, first_leaf + rows.num_rows, dtype=np.int64)))
    rows = rows.append_column("leaf_hash", hex_strings(hashes))
    rows = rows.cast(event_table(table_name).published_schema)
    uri = layout.published_file(settings, table_name, date, batch_id)
    outputs.append(
        Output(
            table=table_name,
            event_date=date,
            path=layout.relative(settings.published, uri),
            rows=rows.num_rows,
            sha256=write_parquet(layout.pending_file(settings.published, batch_id, uri), rows),
            first_leaf=first_leaf,
        )
    )
    leaf_hashes.extend(hashes)
    return first_leaf + rows.num_rows


def write_quarantine(settings: Settings, stage: StageResult, conflicts: list[QuarantineRow]) -> QuarantineFile | None:
    """The batch's quarantine file (what staging rejected, then the conflicts), or None when it has none."""
    staged = Path(layout.staging_dir(settings, stage.batch_id)) / "quarantine.parquet"
    table = pq.read_table(staged) if staged.exists() else QUARANTINE_SCHEMA.empty_table()
    if conflicts:
        table = pa.concat_tables([table, quarantine_table(conflicts)])
    if table.num_rows == 0:
        return None
    # A whole-file error is one quarantine entry but no event rows.
    rows = table.num_rows - (1 if stage.file_error else 0)
    uri = layout.quarantine_file(settings, stage.batch_id)
    digest = write_parquet(layout.pending_file(settings.quarantine, stage.batch_id, uri), table)
    return QuarantineFile(rows=rows, path=layout.relative(settings.quarantine, uri), sha256=digest)


# -- the commit -------------------------------------------------------------------------------------


def log_manifest(ledger_log: log_writer.Log, manifest: Manifest, row_hashes: list[bytes]) -> Manifest:
    """Step 2: append the batch's row leaves and its manifest leaf to the log (a repeat is a no-op).
    Returns the manifest to commit: marked ``leaf_format`` 2 when its full leaf would not fit an entry
    bundle (a batch of many partitions), so that its leaf holds the digest of its outputs."""
    as_dict = manifest.to_dict()
    fitted = leaf.fit_manifest_leaf(as_dict)
    if fitted is not as_dict:
        manifest = Manifest.from_dict(fitted)
    ledger_log.append(manifest.batch_id, manifest.leaves.first, [*row_hashes, log_writer.manifest_leaf_hash(manifest)])
    return manifest


def commit_manifest(settings: Settings, manifest: Manifest) -> None:
    """Steps 3 and 4: write the manifest (the commit point), then move the pending files into place."""
    storage.write_bytes(
        layout.manifest_file(settings, manifest.batch_id), manifest.to_json().encode(), content_type="application/json"
    )
    move_pending(settings, manifest.batch_id)


# -- pending files ----------------------------------------------------------------------------------


def _pending_roots(settings: Settings) -> tuple[tuple[str, str], ...]:
    """(final root, its pending root) for each place a batch writes files before its manifest."""
    return tuple((root, layout.pending_root(root)) for root in (settings.published, settings.quarantine))


def move_pending(settings: Settings, batch_id: str) -> None:
    """Move a committed batch's pending files into place (what a crash interrupted, too)."""
    for root, pending in _pending_roots(settings):
        folder = storage.join(pending, batch_id)
        for uri in storage.list_files(folder):
            storage.move(uri, storage.join(root, layout.relative(folder, uri)))
        if not storage.is_s3(folder):
            shutil.rmtree(folder, ignore_errors=True)


def discard_pending(settings: Settings, batch_id: str) -> None:
    """Delete the pending files of a batch that has no manifest: it is published again from scratch."""
    for _, pending in _pending_roots(settings):
        folder = storage.join(pending, batch_id)
        if storage.is_s3(folder):
            for uri in storage.list_files(folder):
                storage.delete(uri)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def finish_pending(settings: Settings) -> None:
    """Roll forward every batch with pending files and a manifest; discard those of a batch without one."""
    batches: set[str] = set()
    for _, pending in _pending_roots(settings):
        batches.update(layout.relative(pending, uri).split("/", 1)[0] for uri in storage.list_files(pending))
        if not storage.is_s3(pending) and os.path.isdir(pending):
            batches.update(os.listdir(pending))
    for batch_id in sorted(batches):
        if storage.exists(layout.manifest_file(settings, batch_id)):
            log.warning("batch %s: manifest committed, moving its remaining files into place", batch_id)
            move_pending(settings, batch_id)
        else:
            discard_pending(settings, batch_id)
