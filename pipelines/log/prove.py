"""Proofs for one event or between two tree sizes: what ``sensorlog prove`` prints (its text is
``pipelines.cli._output``).

Inclusion (``prove --event SOURCE/ID``): DuckDB finds the event's row in the published Parquet; the
row is read back from the file its batch's manifest lists, re-encoded into its leaf bytes
(``tlog.leaf``), and its leaf hash is checked against the row's ``leaf_hash`` column and the leaf
hash the log stored, so that ``prove`` never hands out a proof for a row that does not match the
log. The proof is ``writer.tlog_proof`` (c2sp.org/tlog-proof@v1 against the latest signed
checkpoint) with the leaf bytes in its ``extra`` line: the spec's place for the unauthenticated data
a verifier needs to recompute the leaf hash, which makes the proof file self-contained.

Consistency (``prove --consistency M N``): the RFC 9162 §2.1.4.1 proof PROOF(M, D[N]) from the tile
store, checked before it is printed against the log's signed checkpoints for sizes M and N.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines import storage, summary
from pipelines.config import Settings
from pipelines.errors import SensorlogError
from pipelines.log import writer
from pipelines.schemas import LOGGED_TABLES
from pipelines.tlog import leaf, merkle
from pipelines.tlog import proof as tlog_proof_format
from pipelines.tlog.checkpoint import Checkpoint, open_checkpoint
from pipelines.tlog.layout import BATCHES, VKEY
from pipelines.tlog.tiles import TileStore


class ProveError(SensorlogError, RuntimeError):
    pass


@dataclass(frozen=True)
class EventProof:
    source: str
    event_id: str
    table: str
    file: str  # relative to the published root
    index: int
    leaf_bytes: bytes
    leaf_hash: bytes
    checkpoint: Checkpoint
    vkey: str
    proof: str  # c2sp.org/tlog-proof@v1, with the leaf bytes as its extra data


@dataclass(frozen=True)
class ConsistencyProof:
    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    hashes: tuple[bytes, ...]
    old_signed: bool  # whether each root comes from a signed checkpoint (else from the tile store)
    new_signed: bool


def split_event(ref: str) -> tuple[str, str]:
    """``SOURCE/ID`` -> (source, id). Sources are URIs with slashes of their own; ids are not."""
    source, sep, event_id = ref.rpartition("/")
    if not sep or not source or not event_id:
        raise ProveError(f"--event must be SOURCE/ID, got {ref!r}")
    return source, event_id


def _vkey(settings: Settings) -> str:
    return (Path(settings.log) / VKEY).read_text().strip()


def _batch_of(settings: Settings, index: int) -> str:
    """The batch whose leaves include ``index``, from the log's batch index (read as the writer does)."""
    for record in writer.batch_index(Path(settings.log)):
        if record.start <= index < record.end:
            return record.batch_id
    raise ProveError(f"no batch in {Path(settings.log) / BATCHES} holds leaf {index}")


def find_event(settings: Settings, source: str, event_id: str) -> list[tuple[str, int]]:
    """``(table, leaf_index)`` of every published row with this (source, id), found with DuckDB."""
    con = duckdb.connect()
    try:
        hits = []
        for table in LOGGED_TABLES:
            dataset = summary.table_dataset(settings, table)
            if dataset is None:
                continue
            con.register("rows", dataset)
            for (index,) in con.execute(
                "SELECT leaf_index FROM rows WHERE source = ? AND event_id = ? ORDER BY leaf_index",
                [source, event_id],
            ).fetchall():
                hits.append((table, int(index)))
            con.unregister("rows")
        return hits
    finally:
        con.close()


def leaf_of(settings: Settings, index: int) -> tuple[str, str, bytes, dict]:
    """``(table, file, leaf bytes, row)`` of the row at leaf ``index``, read from the file its manifest lists."""
    batch_id = _batch_of(settings, index)
    manifest = json.loads(storage.read_bytes(storage.join(settings.manifests, f"{batch_id}.json")))
    for out in manifest["outputs"]:
        if out["first_leaf"] <= index < out["first_leaf"] + out["rows"]:
            break
    else:
        if manifest["leaves"]["manifest_leaf"] == index:
            # Manifest leaves are provable like rows: the "row" is the manifest itself.
            row = {"source": "manifest", "event_id": batch_id, "leaf_hash": leaf.manifest_leaf_hash(manifest).hex()}
            return leaf.MANIFEST_TABLE, f"manifests/{batch_id}.json", leaf.manifest_leaf_bytes(manifest), row
        raise ProveError(f"manifest {batch_id}.json lists no file holding leaf {index}")
    path = _current_path(settings, out["path"])
    uri = storage.join(settings.published, path)
    hits = []
    with storage.open_random_access(uri) as handle:
        # Record batch by record batch: a partition file can be large, the answer is one row.
        for batch in pq.ParquetFile(handle).iter_batches():
            hit = batch.filter(pc.equal(batch.column("leaf_index"), index))
            if hit.num_rows:
                hits.append(hit)
    rows = pa.Table.from_batches(hits) if hits else None
    if rows is None:
        raise ProveError(f"{path} has no row with leaf_index {index}")
    if rows.num_rows != 1:
        raise ProveError(f"{path} has {rows.num_rows} rows with leaf_index {index}, expected one")
    return out["table"], path, leaf.table_leaf_bytes(out["table"], rows)[0], rows.to_pylist()[0]


def _current_path(settings: Settings, path: str) -> str:
    """The file holding a manifest output's rows now: the output's own, or the compacted file that replaced it."""
    from pipelines.publish import compact  # publishing's module, only when a row is proved

    held = compact.current_path(compact.load_records(settings), path)
    return path if held is None else held[0]


def prove_index(settings: Settings, index: int) -> EventProof:
    """The inclusion proof of the published row at leaf ``index``, after checking the row is the logged leaf."""
    table, file, leaf_bytes, row = leaf_of(settings, index)
    leaf_hash = merkle.leaf_hash(leaf_bytes)
    if row["leaf_hash"] != leaf_hash.hex():
        raise ProveError(
            f"leaf {index} in {file}: the row's contents hash to {leaf_hash.hex()}, its leaf_hash column says"
            f" {row['leaf_hash']}: the published row was changed (run sensorlog verify)"
        )
    stored = TileStore(Path(settings.log)).leaf_hashes(index, index + 1)[0]
    if stored != leaf_hash:
        raise ProveError(
            f"leaf {index} in {file}: the row hashes to {leaf_hash.hex()}, the log recorded {stored.hex()}"
            " (run sensorlog verify)"
        )
    vkey = _vkey(settings)
    parsed = tlog_proof_format.parse(writer.tlog_proof(settings, index))
    text = tlog_proof_format.TlogProof(parsed.index, parsed.path, parsed.checkpoint, extra=leaf_bytes).to_text()
    try:
        checkpoint = tlog_proof_format.verify(text, leaf_hash, vkey)
    except ValueError as exc:
        raise ProveError(f"the log's proof for leaf {index} does not verify: {exc} (run sensorlog verify)") from exc
    return EventProof(
        row["source"], row["event_id"], table, file, index, leaf_bytes, leaf_hash, checkpoint, vkey, text
    )


def prove_event(settings: Settings, source: str, event_id: str) -> EventProof:
    hits = find_event(settings, source, event_id)
    if not hits:
        raise ProveError(f"no published row has source {source!r} and id {event_id!r}")
    if len(hits) > 1:
        where = ", ".join(f"leaf {i} ({t})" for t, i in hits)
        raise ProveError(f"{source}/{event_id} is published more than once ({where}): run sensorlog verify")
    proof = prove_index(settings, hits[0][1])
    if (proof.source, proof.event_id) != (source, event_id):
        raise ProveError(f"leaf {proof.index} is {proof.source}/{proof.event_id}, not {source}/{event_id}")
    return proof


def consistency(settings: Settings, old_size: int, new_size: int) -> ConsistencyProof:
    """PROOF(old_size, D[new_size]), checked against the roots the log signed for both sizes."""
    latest = writer.latest_checkpoint(settings)
    if latest is None:
        raise ProveError("the log has no checkpoint yet")
    if not 0 < old_size <= new_size <= latest.size:
        raise ProveError(f"need 0 < M <= N <= {latest.size} (the latest checkpoint's size), got {old_size} {new_size}")
    store = TileStore(Path(settings.log))
    hashes = store.consistency_proof(old_size, new_size)
    vkey = _vkey(settings)

    def root(size: int) -> tuple[bytes, bool]:
        if size == latest.size:
            return latest.root_hash, True
        try:
            return open_checkpoint(writer.signed_checkpoint(settings, size), vkey).root_hash, True
        except writer.LedgerError:
            # Not every size has a checkpoint (only batch ends do): fall back to the stored hashes.
            return store.root(size), False

    (old_root, old_signed), (new_root, new_signed) = root(old_size), root(new_size)
    if not merkle.verify_consistency(old_size, new_size, old_root, new_root, hashes):
        raise ProveError(f"the stored consistency proof {old_size} -> {new_size} does not verify: run sensorlog verify")
    return ConsistencyProof(old_size, new_size, old_root, new_root, tuple(hashes), old_signed, new_signed)
