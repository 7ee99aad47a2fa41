"""The transparency log the publisher appends to: one RFC 9162 Merkle tree over every published row
and batch manifest, stored as C2SP tlog-tiles and signed as C2SP checkpoints (Ed25519).

Layout of ``settings.log`` (names and paths from ``tlog.layout``; a directory that can be served as a
static tlog-tiles log, minus entry bundles: the leaves are the published Parquet rows, encoded as
documented in ``tlog.leaf``)::

    checkpoint            latest signed checkpoint (c2sp.org/tlog-checkpoint)
    checkpoints/<size>    every checkpoint ever signed, by tree size
    tile/<L>/<N>[.p/<W>]  Merkle tree hashes (c2sp.org/tlog-tiles, height 8)
    state.json            committed tree size and root (the tile store's commit point)
    batches.jsonl         one {"batch_id", "start", "count"} line per appended batch, append-only
    log.vkey              the log's public key (signed-note verifier key; its name is the origin)

The signing key lives at ``settings.key_file`` (mode 0600), created on first use.

``Log.append`` runs under an exclusive lock on ``.lock`` and in this order, so that a crash at any
point is repaired by re-running the same batch (the publisher does) and never leaves leaves in the
tree that no batch owns:

1. record the batch's intent ``(batch_id, start, count)`` in ``batches.jsonl`` (fsynced).
   Crash here: the tree is unchanged. ``batch_start`` of that batch returns the recorded start,
   which is still the tree size, and the re-run appends. If a *different* batch comes first, its
   record at the same start supersedes the stale one (a record whose leaves never reached the tree).
   A torn last line (crash mid-write) is ignored and cut off by the next write.
2. append the leaf hashes to the tile store: tiles first, ``state.json`` last and atomically.
   Crash before ``state.json``: as in 1; the tiles written beyond the committed size are ignored
   and deleted by the next append.
3. sign and write ``checkpoints/<size>``, then ``checkpoint``.
   Crash here: the batch is in the tree and in the index. The re-run of the batch finds it with
   the same start and count, checks the stored leaf hashes equal the re-computed ones and writes
   the missing checkpoint; any other append also first signs a checkpoint for the current size.

Before signing, the new tree is checked to be consistent with the last checkpoint, because a log
must never sign two checkpoints that no consistency proof connects.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow as pa

from pipelines.atomicfile import write_atomic
from pipelines.config import Settings
from pipelines.errors import SensorlogError
from pipelines.locks import exclusive, fsync_path
from pipelines.log.batch_index import BatchIndexError, BatchRecord, parse_strict
from pipelines.records import Manifest
from pipelines.tlog import leaf, merkle, note
from pipelines.tlog import proof as tlog_proof_format
from pipelines.tlog.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from pipelines.tlog.layout import BATCHES, CHECKPOINT, VKEY, checkpoint_path
from pipelines.tlog.tiles import TileStore

LOCK = ".lock"


class LedgerError(SensorlogError, RuntimeError):
    pass


class ForkError(LedgerError):
    """Appending would fork the tree: the log grew since the batch was given its start index."""


class BatchConflict(LedgerError):
    """A batch already in the log is being appended again with different leaves or position."""


class KeyMismatch(LedgerError):
    """The signing key does not match the log's published key or origin."""


# -- leaves ------------------------------------------------------------------------------------


def row_leaf_hashes(table_name: str, table: pa.Table) -> list[bytes]:
    """Leaf hashes of published rows (see ``tlog.leaf`` for the exact encoding)."""
    return leaf.table_leaf_hashes(table_name, table)


def manifest_leaf_hash(manifest: Manifest | Mapping[str, object]) -> bytes:
    """The leaf hash of a manifest: of its JSON-shaped value, so a ``Manifest`` hashes as its file does."""
    return leaf.manifest_leaf_hash(manifest.to_dict() if isinstance(manifest, Manifest) else manifest)


# -- files -------------------------------------------------------------------------------------


def _local_dir(uri: str, what: str) -> Path:
    if "://" in uri:
        raise LedgerError(f"the {what} must be a local path, got {uri}")
    return Path(uri)


def _locked(directory: Path):
    return exclusive(directory / LOCK)


# -- keys --------------------------------------------------------------------------------------


def _load_or_create_signer(settings: Settings) -> note.Signer:
    path = _local_dir(settings.key_file, "key file")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        skey, _ = note.generate_key(settings.log_origin)
        try:  # create-if-absent, atomically: a concurrent first run keeps one key
            write_atomic(path, (skey + "\n").encode(), 0o600, exclusive=True)
        except FileExistsError:
            fsync_path(path.parent)  # the other run's key, durable before this run signs with it
    signer = note.Signer.from_skey(path.read_text())
    if signer.name != settings.log_origin:
        raise KeyMismatch(
            f"the key at {path} is named {signer.name!r} but the log origin is {settings.log_origin!r}"
        )
    return signer


def load_signer(settings: Settings) -> note.Signer:
    """The log's signing key (for signing the site's file list); refuses to create one."""
    if not _local_dir(settings.key_file, "key file").exists():
        raise LedgerError(f"no signing key at {settings.key_file}")
    return _load_or_create_signer(settings)


def public_key(settings: Settings) -> str:
    """The log's verifier key: the published ``log.vkey``, or the signing key's (created if needed)."""
    published = _local_dir(settings.log, "log directory") / VKEY
    if published.exists():
        return published.read_text().strip()
    return open_log(settings).vkey


# -- the log -----------------------------------------------------------------------------------


def _read_batches(path: Path) -> tuple[list[BatchRecord], int]:
    """Records in order, after supersession (a record at an earlier one's start replaces it: step 1
    of the module docstring), and the byte length of the intact (newline-ended) part."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    try:
        return parse_strict(data)
    except BatchIndexError as exc:
        raise LedgerError(f"{path} is corrupt: {exc}") from exc


def batch_index(log_dir: Path) -> list[BatchRecord]:
    """The batch index (``batches.jsonl``) of a log directory, superseded records dropped."""
    return _read_batches(log_dir / BATCHES)[0]


class Log:
    def __init__(self, settings: Settings, signer: note.Signer) -> None:
        self.settings = settings
        self.directory = _local_dir(settings.log, "log directory")
        self.signer = signer
        self.vkey = signer.vkey()
        self.store = TileStore(self.directory)
        self._publish_vkey()

    @property
    def origin(self) -> str:
        return self.settings.log_origin

    @property
    def size(self) -> int:
        return self.store.size

    def _publish_vkey(self) -> None:
        path = self.directory / VKEY
        if path.exists():
            published = path.read_text().strip()
            if published == self.vkey:
                return
            if self.store.size or (self.directory / CHECKPOINT).exists():
                raise KeyMismatch(
                    f"the signing key ({self.vkey}) is not the log's published key ({published}); "
                    "refusing to sign with a different key"
                )
        write_atomic(path, (self.vkey + "\n").encode())

    def _batches(self) -> tuple[dict[str, BatchRecord], BatchRecord | None, int]:
        """(committed records by batch id, the pending record if any, intact byte length)."""
        records, intact = _read_batches(self.directory / BATCHES)
        size = self.store.size
        pending = None
        if records and records[-1].end > size:
            pending = records.pop()
            if pending.start != size:
                raise LedgerError(
                    f"{BATCHES} records batch {pending.batch_id} at {pending.start} but the tree has"
                    f" {size} leaves: the index and the tiles disagree"
                )
        accounted = records[-1].end if records else 0
        if accounted != size:
            raise LedgerError(f"{BATCHES} accounts for {accounted} leaves but the tree has {size}")
        return {r.batch_id: r for r in records}, pending, intact

    def batch_start(self, batch_id: str) -> int:
        """Where the batch's leaves go: its recorded start if it was appended (or begun), else the size."""
        with _locked(self.directory):  # the index and the tree size, read as one consistent view
            self.store.reload()
            committed, pending, _ = self._batches()
        if batch_id in committed:
            return committed[batch_id].start
        if pending is not None and pending.batch_id == batch_id:
            return pending.start
        return self.store.size

    def append(self, batch_id: str, start: int, leaf_hashes: Sequence[bytes]) -> Checkpoint:
        """Append a batch's leaves at ``start`` and sign a checkpoint. Re-appending is a no-op."""
        leaves = [bytes(h) for h in leaf_hashes]
        if not leaves:
            raise ValueError(f"batch {batch_id} has no leaves: every batch logs at least its manifest")
        with _locked(self.directory):
            self.store.reload()
            committed, _pending, intact = self._batches()
            self._ensure_checkpoint()  # repairs a crash after a previous append's commit
            known = committed.get(batch_id)
            if known is not None:
                if (known.start, known.count) != (start, len(leaves)):
                    raise BatchConflict(
                        f"batch {batch_id} is already in the log at [{known.start}, {known.end});"
                        f" this run asked for [{start}, {start + len(leaves)})"
                    )
                if self.store.leaf_hashes(known.start, known.end) != leaves:
                    raise BatchConflict(f"batch {batch_id} is already in the log with different leaves")
                return self.checkpoint()
            if start != self.store.size:
                raise ForkError(
                    f"batch {batch_id} was given start {start} but the log now has {self.store.size} leaves:"
                    " another writer appended in between; appending would fork the tree"
                )
            self._record(BatchRecord(batch_id, start, len(leaves)), intact)
            self.store.append(leaves)
            return self._ensure_checkpoint()

    def _record(self, record: BatchRecord, intact: int) -> None:
        path = self.directory / BATCHES
        line = json.dumps({"batch_id": record.batch_id, "start": record.start, "count": record.count})
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        with os.fdopen(fd, "r+b") as handle:
            handle.truncate(intact)  # drop a torn last line
            handle.seek(intact)
            handle.write(line.encode() + b"\n")
            handle.flush()
            os.fsync(handle.fileno())

    def checkpoint(self) -> Checkpoint:
        """The current (committed) tree head, unsigned."""
        return Checkpoint(self.origin, self.store.size, self.store.root())

    def _ensure_checkpoint(self) -> Checkpoint:
        """Sign and publish a checkpoint for the committed size unless the latest one is it."""
        current = self.checkpoint()
        latest = self._latest()
        if latest == current or (latest is None and current.size == 0):
            return current
        if latest is not None:
            if latest.size > current.size:
                raise LedgerError(f"the latest checkpoint has size {latest.size} > the tree's {current.size}")
            if latest.size and not merkle.verify_consistency(
                latest.size, current.size, latest.root_hash, current.root_hash,
                self.store.consistency_proof(latest.size, current.size),
            ):
                raise LedgerError(f"the tree is not consistent with the checkpoint at size {latest.size}")
        signed = sign_checkpoint(current, self.signer).encode()
        write_atomic(self.directory / checkpoint_path(current.size), signed)
        write_atomic(self.directory / CHECKPOINT, signed)
        return current

    def _latest(self) -> Checkpoint | None:
        try:
            text = (self.directory / CHECKPOINT).read_bytes()
        except FileNotFoundError:
            return None
        return open_checkpoint(text, self.vkey)


def open_log(settings: Settings) -> Log:
    """The log for appending (creates the signing key and publishes ``log.vkey`` on first use)."""
    return Log(settings, _load_or_create_signer(settings))


# -- reading (no signing key needed) -----------------------------------------------------------


def _store(settings: Settings) -> TileStore:
    return TileStore(_local_dir(settings.log, "log directory"))


def latest_checkpoint(settings: Settings) -> Checkpoint | None:
    """The latest checkpoint, verified with the published key; None if nothing was ever appended."""
    directory = _local_dir(settings.log, "log directory")
    try:
        text = (directory / CHECKPOINT).read_bytes()
    except FileNotFoundError:
        return None
    return open_checkpoint(text, (directory / VKEY).read_text().strip())


def signed_checkpoint(settings: Settings, size: int | None = None) -> str:
    """The signed checkpoint note for ``size`` (default: the latest)."""
    directory = _local_dir(settings.log, "log directory")
    path = directory / (CHECKPOINT if size is None else checkpoint_path(size))
    try:
        return path.read_text()
    except FileNotFoundError:
        raise LedgerError(f"no checkpoint was signed for size {size}") from None


def inclusion_proof(settings: Settings, index: int, size: int | None = None) -> list[bytes]:
    """RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size`` (default: latest checkpoint)."""
    if size is None:
        latest = latest_checkpoint(settings)
        size = latest.size if latest else 0
    return _store(settings).inclusion_proof(index, size)


def consistency_proof(settings: Settings, m: int, n: int | None = None) -> list[bytes]:
    """RFC 9162 consistency proof from tree size ``m`` to ``n`` (default: latest checkpoint)."""
    if n is None:
        latest = latest_checkpoint(settings)
        n = latest.size if latest else 0
    return _store(settings).consistency_proof(m, n)


def tlog_proof(settings: Settings, index: int, size: int | None = None) -> str:
    """A self-contained c2sp.org/tlog-proof@v1 for leaf ``index`` against a signed checkpoint."""
    signed = signed_checkpoint(settings, size)
    head = open_checkpoint(signed, (_local_dir(settings.log, "log directory") / VKEY).read_text().strip())
    path = _store(settings).inclusion_proof(index, head.size)
    return tlog_proof_format.format_proof(index, path, signed)
