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
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines import clock, layout, locks, storage
from pipelines.atomicfile import write_atomic
from pipelines.config import Settings
from pipelines.errors import SensorlogError
from pipelines.ingest import plausibility
from pipelines.ingest.stage import (
    StageResult,
    StaleStage,
    check_stage,
    find_landed,
    load_stage,
    stage_file,
    staged_files,
)
from pipelines.log import rowhash, writer
from pipelines.log.rowhash import LEAF_HASH
from pipelines.registry import declarations, load_registry
from pipelines.schemas import DECLARATIONS_KIND, QUARANTINE_SCHEMA, event_table
from pipelines.tlog import leaf

PARQUET_OPTIONS = {"compression": "zstd", "use_dictionary": True, "write_statistics": True}
log = logging.getLogger(__name__)


class NotStaged(SensorlogError):
    def diagnostics(self) -> str:
        return f"not staged: {self}"


def writer_lock(settings: Settings):
    """One publisher at a time: every published row takes the next leaf index in the log."""
    return locks.exclusive(Path(layout.writer_lock(settings)))


def _index(settings: Settings) -> duckdb.DuckDBPyConnection:
    path = Path(layout.index_db(settings))
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE IF NOT EXISTS seen (source VARCHAR, event_id VARCHAR, content_hash VARCHAR,"
        " batch_id VARCHAR, ord BIGINT)"
    )
    return con


def _publish_columns(canonical: pa.Schema) -> list[str]:
    return [*canonical.names, "content_hash", LEAF_HASH, "_date"]


def _with_hashes(table_name: str, rows: pa.Table, batch_id: str) -> pa.Table:
    """Staged rows with their ``content_hash`` and leaf hash: as staged, or computed here for rows
    staged by a version that did not store them."""
    if "content_hash" not in rows.column_names:
        rows = rows.append_column("content_hash", rowhash.content_hashes(table_name, rows))
    if LEAF_HASH not in rows.column_names:
        rows = rows.append_column(LEAF_HASH, rowhash.published_leaf_hashes(table_name, rows, batch_id))
    return rows


@dataclass
class _Classified:
    publish: pa.Table
    duplicates: int
    conflicts: list[dict]


def _read_staged(paths: list[Path], columns: list[str]) -> pa.Table:
    """``columns`` of the staged partitions plus ``_date``, ordered by (``_date``, ``_ord``)."""
    parts = []
    for path in sorted(paths, key=lambda p: p.stem.split("__")[1]):
        part = pq.read_table(path, columns=columns)
        ords = part.column("_ord")
        if part.num_rows > 1 and not pc.all(pc.greater(ords[1:], ords[:-1])).as_py():
            part = part.take(pc.sort_indices(ords))  # stage writes rows in order; never rely on it
        date = path.stem.split("__")[1]
        parts.append(part.append_column("_date", pa.repeat(pa.scalar(date, pa.string()), part.num_rows)))
    return pa.concat_tables(parts).combine_chunks()


def _repeats(rows: pa.Table, key_hash: np.ndarray, content_hash: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Per row: its rank among the batch's rows with the same (source, event_id), by ``_ord`` (1 = first),
    and the content hash of the first of them (``row_number()`` and ``first_value()`` over that window).

    Repeats are rare: rows whose 64-bit key hash occurs more than once are the only candidates, and only
    they are grouped (by the exact key) and ranked in Python."""
    n = rows.num_rows
    rank = np.ones(n, np.int64)
    order = np.argsort(key_hash, kind="stable")
    same = np.flatnonzero(key_hash[order][1:] == key_hash[order][:-1])
    if not len(same):
        return pa.array(rank), content_hash
    candidates = np.unique(np.concatenate([order[same], order[same + 1]]))
    found = rows.take(pa.array(candidates)).select(["source", "event_id", "_ord"]).to_pydict()
    groups: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for source, event_id, ord_, pos in zip(
        found["source"], found["event_id"], found["_ord"], candidates.tolist(), strict=True
    ):
        groups.setdefault((source, event_id), []).append((ord_, pos))
    first = np.arange(n, dtype=np.int64)
    for group in groups.values():
        group.sort()
        for i, (_, pos) in enumerate(group):
            rank[pos], first[pos] = i + 1, group[0][1]
    return pa.array(rank), content_hash.take(pa.array(first))


def _classify(con: duckdb.DuckDBPyConnection, table_name: str, paths: list[Path], batch_id: str) -> _Classified:
    """Split a batch's staged rows of one table into rows to publish, exact duplicates (dropped, counted)
    and conflicts (same source + id, different content: quarantined).

    One query per table and batch (not per partition): the ``seen`` index is scanned once per call, so
    fewer, larger calls keep the cost linear in the log's size rather than in partitions × size.
    The rows are read with pyarrow in publishing order (``_date``, ``_ord``) with the content and leaf
    hashes staging computed (``pipelines.log.rowhash``); DuckDB only sees the keys and returns per row the
    facts the decision needs, in row order. ``_raw`` is read only for conflicting rows."""
    canonical = event_table(table_name).staged_schema
    stored = [c for c in ("content_hash", LEAF_HASH) if c in pq.read_schema(paths[0]).names]
    rows = _with_hashes(table_name, _read_staged(paths, [*canonical.names, "_ord", "_line", *stored]), batch_id)
    staged_rows = rows.select(["source", "event_id", "_ord"]).append_column(
        "_pos", pa.array(np.arange(rows.num_rows, dtype=np.int64))
    )
    con.register("staged_rows", staged_rows)
    try:
        facts = con.sql(
            """
            SELECT hash(c.source, c.event_id) AS key_hash,
                   s.content_hash AS prev_hash, s.batch_id AS prev_batch, s.ord AS prev_ord
            FROM staged_rows c LEFT JOIN seen s ON c.source = s.source AND c.event_id = s.event_id
            ORDER BY c._pos
            """
        ).to_arrow_table()
    finally:
        con.unregister("staged_rows")
    del staged_rows
    content_hash = rows.column("content_hash").combine_chunks()
    rn, first_hash = _repeats(rows, facts["key_hash"].to_numpy(), content_hash)
    if facts["prev_hash"].null_count == rows.num_rows and first_hash is content_hash:
        # The common case: no row of this table was seen before, and no key repeats in the batch.
        return _publish_all(con, rows, canonical, batch_id)
    ours = pc.and_(pc.equal(facts["prev_batch"], batch_id), pc.equal(facts["prev_ord"], rows["_ord"]))
    seen_before = pc.and_(pc.is_valid(facts["prev_hash"]), pc.invert(pc.fill_null(ours, False)))
    same_as_before = pc.equal(facts["prev_hash"], content_hash)
    repeat_in_batch = pc.greater(rn, 1)
    same_as_first = pc.equal(first_hash, content_hash)
    duplicate = pc.if_else(seen_before, same_as_before, pc.and_(repeat_in_batch, same_as_first))
    conflict = pc.if_else(
        seen_before, pc.invert(same_as_before), pc.and_(repeat_in_batch, pc.invert(same_as_first))
    )
    keep = pc.invert(pc.or_(duplicate, conflict))
    conflicts = []
    if pc.any(conflict).as_py():
        where_conflict = pc.indices_nonzero(conflict)
        raw = _read_staged(paths, ["_ord", "_raw"]).column("_raw").take(where_conflict)
        found = rows.take(where_conflict).select(["_line", "source", "event_id", "deployment_id"])
        found = found.append_column("_raw", raw).append_column("prev_batch", facts["prev_batch"].take(where_conflict))
        for row in found.to_pylist():
            where = f"batch {row['prev_batch']}" if row["prev_batch"] else "earlier in this file"
            conflicts.append(
                {
                    "line": row["_line"],
                    "event_type": event_table(table_name).cloudevent_type,
                    "source": row["source"],
                    "event_id": row["event_id"],
                    "deployment_id": row["deployment_id"],
                    "reasons": [f"conflict: (source, id) already published with different content ({where})"],
                    "raw": row["_raw"],
                }
            )
    publish = rows.filter(keep)
    # A re-run after a crash finds its own rows in the index (``ours``); do not insert them twice. Every
    # other row kept has no entry yet (the lookup above ran in this transaction, after the inserts of
    # the batch's earlier tables), so no anti-join against the whole index is needed.
    _remember(con, rows.filter(pc.and_(keep, pc.is_null(facts["prev_hash"]))), batch_id)
    return _Classified(publish.select(_publish_columns(canonical)), int(pc.sum(duplicate).as_py() or 0), conflicts)


def _remember(con: duckdb.DuckDBPyConnection, rows: pa.Table, batch_id: str) -> None:
    """Add the (source, id) of ``rows`` to the index."""
    con.register("new_keys", rows.select(["source", "event_id", "content_hash", "_ord"]))
    try:
        con.execute("INSERT INTO seen SELECT source, event_id, content_hash, ?, _ord FROM new_keys", [batch_id])
    finally:
        con.unregister("new_keys")


def _publish_all(con: duckdb.DuckDBPyConnection, rows: pa.Table, canonical: pa.Schema, batch_id: str) -> _Classified:
    """``_classify`` when every row is new: all are published and remembered; none is a duplicate."""
    _remember(con, rows, batch_id)
    return _Classified(rows.select(_publish_columns(canonical)), 0, [])


def _write_parquet(uri: str, table: pa.Table) -> str:
    """Write ``table`` atomically to ``uri``; return its SHA-256."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **PARQUET_OPTIONS)
    data = sink.getvalue().to_pybytes()
    storage.write_bytes(uri, data, content_type="application/vnd.apache.parquet")

    return hashlib.sha256(data).hexdigest()


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", np.uint8)


def _hex(digests: list[bytes]) -> pa.Array:
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


def _publish_partition(
    settings: Settings,
    batch_id: str,
    table_name: str,
    date: str,
    rows: pa.Table,
    first_leaf: int,
    outputs: list[dict],
    leaf_hashes: list[bytes],
) -> int:
    """Write one (table, date) partition of a batch with its leaf columns; returns the next leaf index."""
    hashes = rowhash.digests(rows.column(LEAF_HASH))
    rows = rowhash.as_published(table_name, rows, batch_id)
    rows = rows.append_column("leaf_index", pa.array(np.arange(first_leaf, first_leaf + rows.num_rows, dtype=np.int64)))
    rows = rows.append_column("leaf_hash", _hex(hashes))
    rows = rows.cast(event_table(table_name).published_schema)
    uri = layout.published_file(settings, table_name, date, batch_id)
    outputs.append(
        {
            "table": table_name,
            "event_date": date,
            "path": layout.relative(settings.published, uri),
            "rows": rows.num_rows,
            "sha256": _write_parquet(layout.pending_file(settings.published, batch_id, uri), rows),
            "first_leaf": first_leaf,
        }
    )
    leaf_hashes.extend(hashes)
    return first_leaf + rows.num_rows


def commit_batch(settings: Settings, batch_id: str, source_uri: str | None = None) -> dict:
    """Publish a staged batch. Returns its manifest. Re-running a committed batch is a no-op.

    A staged batch that is not what staging wrote is staged again, under the lock, from the landed
    file: ``source_uri``, else the file it was staged from, else the landed file with its bytes."""
    manifest_uri = layout.manifest_file(settings, batch_id)
    with writer_lock(settings):
        _recover(settings)
        if storage.exists(manifest_uri):
            manifest = json.loads(storage.read_bytes(manifest_uri))
        else:
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
    return manifest


def _restage(settings: Settings, batch_id: str, source_uri: str | None, reason: str) -> StageResult:
    """Stage ``batch_id`` again from its landed bytes (the writer lock is held)."""
    record = load_stage(settings, batch_id)
    uri = find_landed(settings, batch_id, [source_uri, record.source_uri if record else None])
    if uri is None:
        raise NotStaged(f"batch {batch_id}: {reason}; no landed file has its bytes to stage it from")
    log.warning("batch %s: %s; staging it again from %s", batch_id, reason, uri)
    # Against the registry it was first staged with, when known, so it is the same derived batch.
    instants = plausibility.commissioning_instants(load_registry(settings.registry))
    ids: Iterable[str] | dict = record.deployment_ids if record and record.deployment_ids else list(instants)
    if all(i in instants for i in ids):  # with commissioning dates, as the first staging checked them
        ids = {i: instants[i] for i in ids}
    stage_file(uri, settings, ids, force=True)
    return check_stage(settings, batch_id)


def _publish(settings: Settings, batch_id: str, stage: StageResult) -> dict:
    """Steps 1–4 of the module's docstring for a checked staged batch (the writer lock is held)."""
    ledger_log = writer.open_log(settings)
    start = ledger_log.batch_start(batch_id)
    next_index = start
    leaf_hashes: list[bytes] = []
    outputs: list[dict] = []
    conflicts: list[dict] = []
    duplicates = 0
    con = _index(settings)
    try:
        con.execute("BEGIN")
        staged = staged_files(settings, batch_id)
        for table_name in dict.fromkeys(t for t, _, _ in staged):
            classified = _classify(con, table_name, [p for t, _, p in staged if t == table_name], batch_id)
            duplicates += classified.duplicates
            conflicts.extend(classified.conflicts)
            dates = classified.publish.column("_date")
            for date in pc.unique(dates).to_pylist():
                rows = classified.publish.filter(pc.equal(dates, date)).drop_columns(["_date"])
                next_index = _publish_partition(
                    settings, batch_id, table_name, date, rows, next_index, outputs, leaf_hashes
                )
        quarantined = _write_quarantine(settings, batch_id, conflicts)
        published = sum(o["rows"] for o in outputs)
        manifest = {
            "batch_id": batch_id,
            "source_file": layout.relative(settings.landing, stage.source_uri),
            "source_sha256": batch_id,
            "source_bytes": stage.source_bytes,
            "validated_at": stage.validated_at,
            "rows_in": stage.rows_in,
            "published": published,
            "quarantined": quarantined["rows"],
            "duplicates": duplicates,
            "file_error": stage.file_error,
            "quarantine": quarantined if quarantined["path"] else None,
            "outputs": outputs,
            "leaves": {"first": start, "rows_end": next_index, "manifest_leaf": next_index},
        }
        _check_conservation(manifest)
        manifest = leaf.fit_manifest_leaf(manifest)  # a batch of many partitions: its leaf holds a digest
        leaf_hashes.append(writer.manifest_leaf_hash(manifest))
        ledger_log.append(batch_id, start, leaf_hashes)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        _discard_pending(settings, batch_id)
        raise
    finally:
        con.close()
    storage.write_bytes(
        layout.manifest_file(settings, batch_id),
        json.dumps(manifest, indent=2, sort_keys=True).encode(),
        content_type="application/json",
    )
    _move_pending(settings, batch_id)
    return manifest


def _pending_roots(settings: Settings) -> tuple[tuple[str, str], ...]:
    """(final root, its pending root) for each place a batch writes files before its manifest."""
    return tuple((root, layout.pending_root(root)) for root in (settings.published, settings.quarantine))


def _move_pending(settings: Settings, batch_id: str) -> None:
    """Move a committed batch's pending files into place (what a crash interrupted, too)."""
    for root, pending in _pending_roots(settings):
        folder = storage.join(pending, batch_id)
        for uri in storage.list_files(folder):
            storage.move(uri, storage.join(root, layout.relative(folder, uri)))
        if not storage.is_s3(folder):
            shutil.rmtree(folder, ignore_errors=True)


def _discard_pending(settings: Settings, batch_id: str) -> None:
    """Delete the pending files of a batch that has no manifest: it is published again from scratch."""
    for _, pending in _pending_roots(settings):
        folder = storage.join(pending, batch_id)
        if storage.is_s3(folder):
            for uri in storage.list_files(folder):
                storage.delete(uri)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def _recover(settings: Settings) -> None:
    batches: set[str] = set()
    for _, pending in _pending_roots(settings):
        batches.update(layout.relative(pending, uri).split("/", 1)[0] for uri in storage.list_files(pending))
        if not storage.is_s3(pending) and os.path.isdir(pending):
            batches.update(os.listdir(pending))
    for batch_id in sorted(batches):
        if storage.exists(layout.manifest_file(settings, batch_id)):
            log.warning("batch %s: manifest committed, moving its remaining files into place", batch_id)
            _move_pending(settings, batch_id)
        else:
            _discard_pending(settings, batch_id)


def recover(settings: Settings) -> None:
    """Finish what a crashed writer left: roll committed batches forward, discard uncommitted ones."""
    with writer_lock(settings):
        _recover(settings)


class ConservationError(SensorlogError):
    """A batch whose rows in are not its published + quarantined + duplicates: an integrity failure
    (not an ``AssertionError``, which a test's or caller's ``except AssertionError`` would swallow)."""


def _check_conservation(manifest: dict) -> None:
    total = manifest["published"] + manifest["quarantined"] + manifest["duplicates"]
    if total != manifest["rows_in"]:
        raise ConservationError(
            f"batch {manifest['batch_id']}: rows in {manifest['rows_in']}"
            f" != published {manifest['published']}"
            f" + quarantined {manifest['quarantined']} + duplicates {manifest['duplicates']}"
        )


def _write_quarantine(settings: Settings, batch_id: str, conflicts: list[dict]) -> dict:
    staged = Path(layout.staging_dir(settings, batch_id)) / "quarantine.parquet"
    table = pq.read_table(staged) if staged.exists() else QUARANTINE_SCHEMA.empty_table()
    stage = load_stage(settings, batch_id)
    assert stage is not None  # only a staged batch is published
    if conflicts:
        extra = pa.Table.from_pylist(
            [{"batch_id": batch_id, "source_file": stage.source_uri, **c} for c in conflicts],
            schema=QUARANTINE_SCHEMA,
        )
        table = pa.concat_tables([table, extra])
    # A whole-file error is one quarantine entry but no event rows.
    rows = table.num_rows - (1 if stage.file_error else 0)
    if table.num_rows == 0:
        return {"rows": 0, "path": None, "sha256": None}
    uri = layout.quarantine_file(settings, batch_id)
    digest = _write_parquet(layout.pending_file(settings.quarantine, batch_id, uri), table)
    return {"rows": rows, "path": layout.relative(settings.quarantine, uri), "sha256": digest}


# -- declarations ---------------------------------------------------------------------------------


def commit_declarations(settings: Settings, now: datetime | None = None) -> list[dict]:
    """Log every deployment whose validated record differs from the log's latest version of it (the
    whole registry the first time), as one declaration batch, before any event batch is published.
    Returns the manifests written (none when nothing changed).

    The rows (with the moment they are logged) are saved in the state folder before their leaves are
    appended, so a crash before the manifest is finished by the next run with the same rows, hence
    the same batch id and leaves. See ``pipelines.registry.declarations``."""
    manifests = []
    with writer_lock(settings):
        _recover(settings)
        plan = Path(layout.declaration_plan(settings))
        if plan.exists():
            manifests.append(_publish_declarations(settings, _read_plan(plan), plan))
        registry = load_registry(settings.registry, timezone=settings.timezone)
        logged = declarations.load_declared(settings.published)
        # Never dated before a declaration already logged (the audit reads times the same way).
        moment = max([now or clock.current_time(settings.timezone), *(logged.latest_time() if logged else ())])
        rows = declarations.next_rows(registry, logged, moment)
        if rows:
            write_atomic(plan, json.dumps(rows, default=_iso, sort_keys=True).encode())
            manifests.append(_publish_declarations(settings, rows, plan))
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


def _publish_declarations(settings: Settings, rows: list[dict], plan: Path) -> dict:
    """Steps 1–4 of the module's docstring for one declaration batch (the writer lock is held)."""
    batch_id = declarations.batch_id_of(rows)
    manifest_uri = layout.manifest_file(settings, batch_id)
    if storage.exists(manifest_uri):  # published before a crash removed the plan
        plan.unlink(missing_ok=True)
        return json.loads(storage.read_bytes(manifest_uri))
    ledger_log = writer.open_log(settings)
    start = ledger_log.batch_start(batch_id)
    table = pa.Table.from_pylist(rows, schema=declarations.ROW_SCHEMA)
    table = table.append_column("batch_id", pa.repeat(pa.scalar(batch_id, pa.string()), table.num_rows))
    encoded = leaf.table_leaf_bytes(declarations.TABLE, table)
    too_big = [r["event_id"] for r, e in zip(rows, encoded, strict=True) if len(e) > leaf.MAX_ENTRY_BYTES]
    if too_big:
        raise ValueError(f"declaration of {', '.join(too_big)} is over {leaf.MAX_ENTRY_BYTES} bytes as a leaf")
    hashes = [hashlib.sha256(b"\x00" + e).digest() for e in encoded]
    table = table.append_column("leaf_index", pa.array(np.arange(start, start + len(rows), dtype=np.int64)))
    table = table.append_column("leaf_hash", _hex(hashes)).cast(declarations.PUBLISHED_SCHEMA)
    day = rows[0]["event_time"].astimezone(UTC).date().isoformat()
    uri = layout.published_file(settings, declarations.TABLE, day, batch_id)
    try:
        digest = _write_parquet(layout.pending_file(settings.published, batch_id, uri), table)
        manifest = {
            "batch_id": batch_id,
            "kind": DECLARATIONS_KIND,
            "source_file": Path(settings.registry).name,  # the folder, never the operator's path
            "source_sha256": batch_id,
            "source_bytes": sum(len(r["record"].encode()) for r in rows),
            "validated_at": rows[0]["event_time"].astimezone(UTC).isoformat(),
            "rows_in": len(rows),
            "published": len(rows),
            "quarantined": 0,
            "duplicates": 0,
            "file_error": None,
            "quarantine": None,
            "outputs": [
                {"table": declarations.TABLE, "event_date": day, "path": layout.relative(settings.published, uri),
                 "rows": len(rows), "sha256": digest, "first_leaf": start}
            ],
            "leaves": {"first": start, "rows_end": start + len(rows), "manifest_leaf": start + len(rows)},
        }
        ledger_log.append(batch_id, start, [*hashes, writer.manifest_leaf_hash(manifest)])
    except BaseException:
        _discard_pending(settings, batch_id)
        raise
    storage.write_bytes(manifest_uri, json.dumps(manifest, indent=2, sort_keys=True).encode(), "application/json")
    _move_pending(settings, batch_id)
    plan.unlink(missing_ok=True)
    return manifest
