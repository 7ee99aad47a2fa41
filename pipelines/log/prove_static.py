"""Proofs from a published static log (a site folder, URL or ``s3://`` copy), with nothing but its
files: what ``sensorlog prove --log …`` and ``sensorlog check-proof`` run.

* inclusion: the leaf bytes come from the entry bundle, are checked against the level-0 tile, and
  the RFC 9162 path is built from the tiles; with ``--data`` the row is also read back from the
  Parquet file its manifest lists and must encode to exactly those bytes. The proof is a
  c2sp.org/tlog-proof@v1 against the served checkpoint (cosignatures included), with the leaf bytes
  as its ``extra`` data, and it is verified before it is handed out. Manifest leaves are provable
  like rows.
* ``--event SOURCE/ID`` scans the entry bundles for the row (every entry is the row's JSON).
* ``check_proof``: a proof file and the log's key (and optionally the leaf bytes, or witness keys),
  no log and no data: what a resident does with a proof someone handed them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines import site_files
from pipelines.log.prove import ConsistencyProof, EventProof, ProveError
from pipelines.log.reader import Missing, Source, SourceError, open_source, parent
from pipelines.log.verify import load_compaction_records, read_batch_index
from pipelines.records import Compaction, RecordError
from pipelines.tlog import bundles, cosignature, leaf, merkle, note
from pipelines.tlog import proof as tlog_proof
from pipelines.tlog.checkpoint import Checkpoint, CheckpointError, open_checkpoint
from pipelines.tlog.layout import BATCHES, CHECKPOINT, VKEY, checkpoint_path
from pipelines.tlog.tiles import TILE_WIDTH, TileReader


@dataclass
class StaticLog:
    """A published log read through a source; the checkpoint is verified on opening."""

    source: Source
    vkey: str
    signed: str  # the checkpoint note as served
    head: Checkpoint
    tiles: TileReader

    @classmethod
    def open(cls, source: Source, vkey: str | None = None) -> StaticLog:
        try:
            published = source.read(VKEY).decode("utf-8").strip()
            signed = source.read(CHECKPOINT).decode("utf-8")
        except Missing as exc:
            raise ProveError(f"{exc}: is {source.label} a published log folder?") from exc
        except (SourceError, UnicodeDecodeError) as exc:
            raise ProveError(str(exc)) from exc
        key = vkey.strip() if vkey else published
        if vkey and key != published:
            raise ProveError(f"{source.describe(VKEY)} is {published}, not the key you gave ({key})")
        try:
            head = open_checkpoint(signed, key)
        except (note.NoteError, CheckpointError) as exc:
            raise ProveError(f"{source.describe(CHECKPOINT)} does not verify with {key}: {exc}") from exc
        return cls(source, key, signed, head, TileReader(source.read, head.size, head.root_hash, source.label))

    def entry(self, index: int) -> bytes:
        if not 0 <= index < self.head.size:
            raise ProveError(f"leaf {index} is not in the tree of size {self.head.size}")
        bundle, offset = divmod(index, TILE_WIDTH)
        width = min(TILE_WIDTH, self.head.size - bundle * TILE_WIDTH)
        rel = bundles.bundle_path(bundle, width)
        try:
            entries = bundles.decode_bundle(self.source.read(rel), width)
        except Missing:
            try:  # a partial bundle may have been replaced by the full one
                entries = bundles.decode_bundle(self.source.read(bundles.bundle_path(bundle)), width)
            except Missing as exc:
                raise ProveError(f"{self.source.describe(rel)} is missing") from exc
        except (SourceError, bundles.BundleError) as exc:
            raise ProveError(f"{self.source.describe(rel)}: {exc}") from exc
        data = entries[offset]
        stored = self.tiles.leaf_hashes(index, index + 1)[0]
        if merkle.leaf_hash(data) != stored:
            raise ProveError(f"entry {index} in {rel} does not hash to the level-0 tile's leaf hash:"
                             " run sensorlog verify")
        return data

    def find_event(self, source: str, event_id: str) -> list[int]:
        """Leaf indexes whose entry is a row with this source and id (a scan of every bundle)."""
        needle = json.dumps(event_id, ensure_ascii=False).encode("utf-8")
        hits = []
        for bundle in range((self.head.size + TILE_WIDTH - 1) // TILE_WIDTH):
            width = min(TILE_WIDTH, self.head.size - bundle * TILE_WIDTH)
            try:
                entries = bundles.decode_bundle(self.source.read(bundles.bundle_path(bundle, width)), width)
            except (SourceError, bundles.BundleError) as exc:
                raise ProveError(f"cannot read entry bundle {bundle}: {exc}") from exc
            for k, entry in enumerate(entries):
                if needle not in entry:
                    continue
                obj = json.loads(entry)
                if obj.get("source") == source and obj.get("event_id") == event_id:
                    hits.append(bundle * TILE_WIDTH + k)
        return hits


def _check_against_data(log: StaticLog, data: Source, index: int, leaf_bytes: bytes) -> str:
    """The file holding the row at ``index`` (per its manifest) re-encodes to ``leaf_bytes``."""
    batch = None
    for rec in read_batch_index(log.source):
        if rec[0] <= index < rec[1]:
            batch = rec[2]
    if batch is None:
        raise ProveError(f"{log.source.describe(BATCHES)} names no batch holding leaf {index}")
    try:
        manifest = json.loads(log.source.read(f"manifests/{batch}.json"))
    except (SourceError, ValueError) as exc:
        raise ProveError(f"manifest of batch {batch}: {exc}") from exc
    if manifest["leaves"]["manifest_leaf"] == index:
        if leaf.manifest_leaf_bytes(manifest) != leaf_bytes:
            raise ProveError(f"manifests/{batch}.json is not the manifest logged at leaf {index}: run sensorlog verify")
        return f"manifests/{batch}.json"
    out = next((o for o in manifest["outputs"] if o["first_leaf"] <= index < o["first_leaf"] + o["rows"]), None)
    if out is None:
        raise ProveError(f"manifests/{batch}.json lists no file holding leaf {index}")
    path = _current_path(log, out["path"])
    try:
        table = pq.ParquetFile(pa.BufferReader(data.read(path))).read()
    except (SourceError, pa.ArrowException) as exc:
        raise ProveError(f"{data.describe(path)}: {exc}") from exc
    row = table.filter(pc.equal(table.column("leaf_index"), index))
    if row.num_rows != 1 or leaf.table_leaf_bytes(out["table"], row)[0] != leaf_bytes:
        raise ProveError(f"the row at leaf {index} in {data.describe(path)} is not the logged leaf:"
                         " run sensorlog verify")
    return path


def _current_path(log: StaticLog, path: str) -> str:
    """The file holding a manifest output's rows now: its own, or the compacted file that replaced it
    (``log/compactions/``; a site that cannot be listed names its records in its signed file list)."""
    compactions = log.source.child("compactions")
    records = load_compaction_records(compactions)
    if not records and compactions.list() is None:
        records = _listed_records(log, compactions)
    for record in records:
        if any(part.path == path for part in record.parts):
            return record.path
    return path


def _listed_records(log: StaticLog, compactions: Source) -> list[Compaction]:
    """The compaction records a site's ``SHA256SUMS`` lists (over HTTP, where folders cannot be listed)."""
    site = open_source(parent(log.source.describe("")))
    try:
        listed = site_files.paths_of_unverified(site.read(site_files.FILE_NAME).decode("utf-8"))
    except (SourceError, UnicodeDecodeError, ValueError):
        return []
    prefix = "log/compactions/"
    out = []
    for p in listed:
        if p.startswith(prefix) and p.endswith(".json") and "/" not in p[len(prefix):]:
            try:
                out.append(Compaction.from_json(compactions.read(p[len(prefix):]), p))
            except (SourceError, RecordError):
                continue
    return out


def prove_index(log: StaticLog, index: int, data: Source | None = None) -> EventProof:
    leaf_bytes = log.entry(index)
    obj = json.loads(leaf_bytes)
    table = str(obj.get(leaf.TABLE_KEY))
    file = f"tile/entries (leaf {index})"
    if data is not None:
        file = _check_against_data(log, data, index, leaf_bytes)
    path = log.tiles.inclusion_proof(index, log.head.size)
    text = tlog_proof.format_proof(index, path, log.signed, extra=leaf_bytes)
    leaf_hash = merkle.leaf_hash(leaf_bytes)
    try:
        checkpoint = tlog_proof.verify(text, leaf_hash, log.vkey)
    except ValueError as exc:
        raise ProveError(f"the proof for leaf {index} does not verify: {exc} (run sensorlog verify)") from exc
    if table == leaf.MANIFEST_TABLE:
        source, event_id = "manifest", str(obj.get("batch_id"))
    else:
        source, event_id = str(obj.get("source")), str(obj.get("event_id"))
    return EventProof(source, event_id, table, file, index, leaf_bytes, leaf_hash, checkpoint, log.vkey, text)


def prove_event(log: StaticLog, source: str, event_id: str, data: Source | None = None) -> EventProof:
    hits = log.find_event(source, event_id)
    if not hits:
        raise ProveError(f"no leaf of {log.source.label} is a row with source {source!r} and id {event_id!r}")
    if len(hits) > 1:
        raise ProveError(f"{source}/{event_id} is logged more than once (leaves {hits}): run sensorlog verify")
    return prove_index(log, hits[0], data)


def consistency(log: StaticLog, old_size: int, new_size: int) -> ConsistencyProof:
    """PROOF(M, D[N]) from the served tiles, checked against the served checkpoints for M and N."""
    if not 0 < old_size <= new_size <= log.head.size:
        raise ProveError(f"need 0 < M <= N <= {log.head.size} (the checkpoint's size), got {old_size} {new_size}")
    hashes = log.tiles.consistency_proof(old_size, new_size)

    def root(size: int) -> tuple[bytes, bool]:
        if size == log.head.size:
            return log.head.root_hash, True
        try:
            return open_checkpoint(log.source.read(checkpoint_path(size)), log.vkey).root_hash, True
        except (SourceError, note.NoteError, CheckpointError):
            return log.tiles.root(size), False

    (old_root, old_signed), (new_root, new_signed) = root(old_size), root(new_size)
    if not merkle.verify_consistency(old_size, new_size, old_root, new_root, hashes):
        raise ProveError(f"the consistency proof {old_size} -> {new_size} does not verify: run sensorlog verify")
    return ConsistencyProof(old_size, new_size, old_root, new_root, tuple(hashes), old_signed, new_signed)


@dataclass(frozen=True)
class CheckedProof:
    index: int
    checkpoint: Checkpoint
    leaf_bytes: bytes | None
    leaf_hash: bytes
    row: dict | None
    witnesses: tuple[str, ...]


def check_proof(text: str, vkey: str, *, leaf_bytes: bytes | None = None,
                witnesses: Sequence[str] = (), min_witnesses: int = 0) -> CheckedProof:
    """Verify a c2sp.org/tlog-proof: the checkpoint's signature by ``vkey``, the leaf (the given bytes,
    else the proof's ``extra`` data) at its index, and witness cosignatures if asked."""
    try:
        parsed = tlog_proof.parse(text)
    except ValueError as exc:
        raise ProveError(f"not a c2sp.org/tlog-proof@v1: {exc}") from exc
    data = leaf_bytes if leaf_bytes is not None else parsed.extra
    if data is None:
        raise ProveError("the proof carries no leaf data (no extra line): give the leaf with --leaf-data")
    if leaf_bytes is not None and parsed.extra is not None and parsed.extra != leaf_bytes:
        raise ProveError("the leaf data you gave differs from the proof's extra data")
    leaf_hash = merkle.leaf_hash(data)
    try:
        checkpoint = tlog_proof.verify(parsed, leaf_hash, vkey)
    except (ValueError, note.NoteError) as exc:
        raise ProveError(f"the proof does not verify: {exc}") from exc
    cosigned: tuple[str, ...] = ()
    if witnesses or min_witnesses:
        cosigned = tuple(sorted({c.name for c in cosignature.verify_cosignatures(parsed.checkpoint, list(witnesses))}))
        need = min_witnesses or len(witnesses)
        if len(cosigned) < need:
            raise ProveError(f"the proof's checkpoint carries {len(cosigned)} valid cosignature(s) of your witnesses;"
                             f" {need} required")
    try:
        row = json.loads(data)
    except ValueError:
        row = None
    return CheckedProof(parsed.index, checkpoint, data, leaf_hash, row if isinstance(row, dict) else None, cosigned)
