"""Independent verification of a published log: what ``sensorlog verify`` runs.

An auditor trusts nothing the city publishes except, optionally, a verifier key they pinned
(``--vkey``) and a checkpoint they saved earlier (``--since``). Everything else is re-derived:

1. the log key: ``log.vkey`` must parse, and equal the pinned key when one is given;
2. the latest checkpoint (``log/checkpoint``) must carry a valid signature by that key;
3. a saved checkpoint must be signed by the same key and must not be newer than the latest one
   (a smaller latest tree is a rollback);
4. the manifests must chain: batch after batch, their leaves cover ``[0, size)`` without gaps or
   overlaps, each output file sits at the path the layout gives its table, date and batch;
5. every Parquet file in an ``event_type=`` partition must be listed by a manifest, and every listed
   file must exist and hash to the manifest's SHA-256;
6. every row is re-encoded (``tlog.leaf``) and must match its ``leaf_hash`` column; its
   ``leaf_index`` must be its position (the manifest's ``first_leaf`` plus its row number);
7. the leaves, each batch's manifest leaf included, are folded in leaf order into a Merkle frontier
   (O(log n) memory), and the root at each signed tree size (the latest checkpoint, every stored
   ``checkpoints/<size>``, the saved checkpoint) must equal the signed root;
8. with a saved checkpoint, the consistency proof that the log's tile store serves must prove
   that the RECOMPUTED tree extends the saved one. The proof's hashes come from the tile store, but
   both roots it is checked against are trusted (the saved one, and the one recomputed from the
   Parquet), so a rewritten tile store cannot satisfy it.

The tile store's leaf hashes are also compared with the recomputed leaves as they stream past. That
comparison is a diagnostic: it names the first row that differs from what the log recorded (the
root check alone could only say "something differs"); whether the stored hashes can be believed is
settled afterwards by hashing them up to the signed root.

Files are read ahead on a small thread pool (decoding Parquet and SHA-256 release the GIL), small
files whole, large files in record batches, so memory stays bounded by the read-ahead window and
the leaf-encoding chunk, never by the size of the log. Files of one table that follow each other in
leaf order are encoded together: the leaf encoder's fixed cost per call dominates for the many
small daily partitions a batch writes.

Only ``event_type=*`` partitions under the published directory hold logged rows; the derived
tables next to them (``retention_ledger/``, ``findings/``) are recomputed by the audit and are not
leaves, so they are not checked here.

Run it on a quiescent log (or a copy): a batch published while ``verify`` runs can show up as an
unlisted file or as a manifest beyond the checkpoint it read first.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipelines import storage
from pipelines.tlog import leaf, merkle, note
from pipelines.tlog.checkpoint import Checkpoint, CheckpointError, open_checkpoint
from pipelines.tlog.tiles import TileStore

VKEY = "log.vkey"
CHECKPOINT = "checkpoint"
CHECKPOINTS = "checkpoints"
BATCHES = "batches.jsonl"
PARTITION_PREFIX = "event_type="
WHOLE_FILE_LIMIT = 16 << 20  # bytes: smaller files are read whole (one read for SHA-256 and Parquet)
READ_AHEAD = 16  # files in flight; with WHOLE_FILE_LIMIT this bounds buffered bytes to 256 MiB
GROUP_ROWS = leaf.CHUNK_ROWS
MAX_PROBLEMS_PER_CHECK = 20  # a swapped partition can break thousands of rows; show the first ones
_PARTIAL = re.compile(r"^\..+\.[0-9a-f]{32}\.partial$")  # storage.temp_sibling: a crashed write

Progress = Callable[[int, int], None]
"""``progress(leaves_done, leaves_total)``."""


@dataclass(frozen=True)
class Problem:
    """One thing that does not hold. ``subject`` names the file, row or checkpoint concerned."""

    check: str
    subject: str
    message: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.message}"


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    suppressed: dict[str, int] = field(default_factory=dict)
    checkpoint: Checkpoint | None = None
    vkey: str | None = None
    leaves: int = 0
    rows: int = 0
    files: int = 0
    manifests: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def fail(self, check: str, subject: str, message: str) -> None:
        if sum(p.check == check for p in self.problems) >= MAX_PROBLEMS_PER_CHECK:
            self.suppressed[check] = self.suppressed.get(check, 0) + 1
            return
        self.problems.append(Problem(check, subject, message))


# -- inputs ------------------------------------------------------------------------------------


@dataclass
class _Output:
    manifest: str  # manifest file name, for messages
    batch_id: str
    table: str
    rel: str  # path relative to the published root
    rows: int
    sha256: str
    first_leaf: int


@dataclass
class _Batch:
    name: str
    manifest: dict
    batch_id: str
    first: int
    rows_end: int
    manifest_leaf: int
    outputs: list[_Output]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _safe_rel(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return bool(parts) and not path.startswith("/") and "://" not in path and ".." not in parts


def _list_partition_files(published: str) -> dict[str, int]:
    """Every file (hidden ones too: DuckDB's globs read them) under the ``event_type=`` partitions,
    as relative path -> size."""
    fs, root = storage.filesystem(published)
    if fs.get_file_info(root).type == pafs.FileType.NotFound:
        return {}
    out = {}
    for info in fs.get_file_info(pafs.FileSelector(root, recursive=True)):
        if info.type != pafs.FileType.File:
            continue
        rel = info.path[len(root):].lstrip("/")
        if rel.split("/", 1)[0].startswith(PARTITION_PREFIX):
            out[rel] = int(info.size or 0)
    return out


def _read_batches_index(log_dir: Path) -> list[tuple[int, int, str]]:
    """``(start, end, batch_id)`` from ``batches.jsonl``: only used to name missing batches."""
    out: list[tuple[int, int, str]] = []
    try:
        lines = (log_dir / BATCHES).read_text().splitlines()
    except (FileNotFoundError, UnicodeDecodeError):
        return out
    for line in lines:
        try:
            obj = json.loads(line)
            start = int(obj["start"])
            out = [r for r in out if r[0] != start]  # a later record at the same start supersedes
            out.append((start, start + int(obj["count"]), str(obj["batch_id"])))
        except (ValueError, KeyError, TypeError):
            continue
    return out


# -- the verifier ------------------------------------------------------------------------------


@dataclass
class _Piece:
    """Rows of one file (all of it, or one record batch of a large file) waiting to be hashed."""

    out: _Output
    table: pa.Table | pa.RecordBatch
    offset: int  # row number of the piece's first row within its file


class _Verifier:
    def __init__(
        self,
        log_dir: Path,
        published: str,
        manifests: str,
        report: Report,
        progress: Progress | None,
    ) -> None:
        self.log_dir = log_dir
        self.published = published
        self.manifests_dir = manifests
        self.report = report
        self.progress = progress
        self.frontier = merkle.Frontier()
        self.tree_ok = True  # False once a leaf could not be recomputed: later roots mean nothing
        self.broken_at: str | None = None
        self.probes: dict[int, list[tuple[str, bytes]]] = {}  # size -> [(checkpoint label, signed root)]
        self.probe_sizes: list[int] = []
        self.recomputed_roots: dict[int, bytes] = {}
        self.root_mismatches = 0
        self.store: TileStore | None = None
        self.tile_mismatches = 0
        self.pending: list[_Piece] = []
        self.pending_rows = 0
        self.total = 0

    # -- tree ----------------------------------------------------------------------------------

    def expect_root(self, size: int, label: str, root: bytes) -> None:
        if size <= 0:
            return
        self.probes.setdefault(size, []).append((label, root))

    def break_tree(self, why: str) -> None:
        if self.tree_ok:
            self.tree_ok = False
            self.broken_at = why

    def fold(self, hashes: list[bytes]) -> None:
        """Append recomputed leaf hashes, stopping at every signed size to compare roots."""
        if not self.tree_ok:
            return
        i = 0
        while i < len(hashes):
            size = self.frontier.size
            nxt = next((s for s in self.probe_sizes if s > size), None)
            take = len(hashes) - i if nxt is None else min(len(hashes) - i, nxt - size)
            self.frontier.extend(hashes[i:i + take])
            i += take
            if self.frontier.size in self.probes:
                self.check_probe(self.frontier.size)

    def check_probe(self, size: int) -> None:
        root = self.frontier.root()
        self.recomputed_roots[size] = root
        for label, signed in self.probes[size]:
            if root == signed:
                continue
            if self.root_mismatches and label.startswith(f"log/{CHECKPOINTS}/"):
                # Once one signed tree differs, every later stored one does too: count, don't list.
                self.report.suppressed["root"] = self.report.suppressed.get("root", 0) + 1
                continue
            self.root_mismatches += 1
            self.report.fail(
                "root",
                label,
                f"signs root {_b64(signed)} for tree size {size}, but the published leaves [0, {size})"
                f" hash to {_b64(root)}",
            )

    # -- tile diagnostics ----------------------------------------------------------------------

    def stored_leaves(self, start: int, end: int) -> list[bytes] | None:
        store = self.store
        if store is None or start >= store.size:
            return None
        try:
            return store.leaf_hashes(start, min(end, store.size))
        except (ValueError, RuntimeError) as exc:
            self.report.fail("tiles", "log/tile", f"cannot read the stored leaf hashes: {exc}")
            self.store = None
            return None

    def compare_stored(
        self, start: int, hashes: list[bytes], name: Callable[[int], str], named: frozenset[int] = frozenset()
    ) -> None:
        """Name the first leaf that differs from the log's stored leaf hash (unless ``named`` already did)."""
        stored = self.stored_leaves(start, start + len(hashes))
        if stored is None or stored == hashes[:len(stored)]:
            return
        i = next(k for k, (a, b) in enumerate(zip(stored, hashes, strict=False)) if a != b)
        self.tile_mismatches += 1
        if i not in named:
            self.report.fail(
                "logged-leaf",
                name(i),
                f"hashes to {hashes[i].hex()}, but the log recorded leaf hash {stored[i].hex()} at this index",
            )

    # -- manifests -----------------------------------------------------------------------------

    def load_manifests(self) -> list[_Batch]:
        batches: list[_Batch] = []
        for uri in storage.list_files(self.manifests_dir, (".json",)):
            name = uri.rsplit("/", 1)[-1]
            subject = f"manifests/{name}"
            try:
                manifest = json.loads(storage.read_bytes(uri))
                batch_id = str(manifest["batch_id"])
                leaves = manifest["leaves"]
                first, rows_end, mleaf = int(leaves["first"]), int(leaves["rows_end"]), int(leaves["manifest_leaf"])
                outputs = [
                    _Output(name, batch_id, str(o["table"]), str(o["path"]), int(o["rows"]), str(o["sha256"]),
                            int(o["first_leaf"]))
                    for o in manifest["outputs"]
                ]
                date_of = [str(o["event_date"]) for o in manifest["outputs"]]
            except (ValueError, KeyError, TypeError) as exc:
                self.report.fail("manifest", subject, f"is not a readable manifest ({exc!r})")
                continue
            if name != f"{batch_id}.json":
                self.report.fail("manifest", subject, f"names batch {batch_id}: a manifest is named by its batch id")
            for out, date in zip(outputs, date_of, strict=True):
                # layout.published_file, relative to the published root.
                expected = f"{PARTITION_PREFIX}{out.table}/event_date={date}/{batch_id}.parquet"
                if out.rel != expected:
                    self.report.fail(
                        "manifest", subject,
                        f"lists {out.rel!r} for table {out.table}, date {date}; expected {expected}",
                    )
                    if not _safe_rel(out.rel):
                        out.rel = expected
            batches.append(_Batch(name, manifest, batch_id, first, rows_end, mleaf, outputs))
        batches.sort(key=lambda b: b.first)
        self.report.manifests = len(batches)
        return batches

    def check_chain(self, batches: list[_Batch], size: int | None) -> None:
        """Batches must tile ``[0, end)``; within one, outputs follow each other, then the manifest leaf."""
        index = _read_batches_index(self.log_dir)
        expected = 0
        for b in batches:
            subject = f"manifests/{b.name}"
            if b.first > expected:
                missing = [bid for s, e, bid in index if s < b.first and e > expected]
                named = f" (batches.jsonl says: {', '.join(missing)})" if missing else ""
                self.report.fail(
                    "manifest", subject,
                    f"starts at leaf {b.first}, but the previous batch ends at {expected}: leaves"
                    f" [{expected}, {b.first}) are not covered by any manifest{named}",
                )
            elif b.first < expected:
                self.report.fail(
                    "manifest", subject, f"starts at leaf {b.first}, inside the previous batch (ending at {expected})"
                )
            pos = b.first
            for out in b.outputs:
                if out.first_leaf != pos:
                    self.report.fail(
                        "manifest", subject, f"output {out.rel} starts at leaf {out.first_leaf}, expected {pos}"
                    )
                pos = out.first_leaf + out.rows
            if not (b.rows_end == pos and b.manifest_leaf == pos):
                self.report.fail(
                    "manifest", subject,
                    f"leaves {b.manifest['leaves']} do not follow its outputs (rows end at leaf {pos})",
                )
            if size is not None and b.first >= size:
                self.report.fail(
                    "manifest", subject,
                    f"covers leaves [{b.first}, {b.manifest_leaf + 1}) beyond the latest signed checkpoint"
                    f" (size {size}): published rows that no signed checkpoint covers",
                )
            expected = max(expected, b.manifest_leaf + 1)

    # -- files ---------------------------------------------------------------------------------

    def _load(self, out: _Output, size: int) -> tuple[str, pa.Table | None, str | None]:
        """Read-ahead worker: ``(sha256, whole table or None if large, error)``."""
        uri = storage.join(self.published, out.rel)
        try:
            if size > WHOLE_FILE_LIMIT:
                digest, _ = storage.sha256_of(uri)
                return digest, None, None
            data = storage.read_bytes(uri)
        except OSError as exc:  # e.g. removed or unreadable since it was listed
            return "", None, f"cannot be read ({exc})"
        digest = hashlib.sha256(data).hexdigest()
        try:
            return digest, pq.ParquetFile(pa.BufferReader(data)).read(), None
        except (pa.ArrowException, OSError) as exc:
            return digest, None, f"is not a readable Parquet file ({exc})"

    def _pieces(self, out: _Output) -> Iterator[pa.RecordBatch]:
        """Record batches of a large file, read without holding the file in memory."""
        with storage.open_random_access(storage.join(self.published, out.rel)) as handle:
            yield from pq.ParquetFile(handle).iter_batches(batch_size=GROUP_ROWS)

    def check_file(self, out: _Output, loaded: tuple[str, pa.Table | None, str | None] | None) -> None:
        report = self.report
        if loaded is None:
            self.flush()
            report.fail("file", out.rel, f"is listed by manifests/{out.manifest} but missing")
            self.break_tree(f"{out.rel} is missing")
            return
        digest, table, error = loaded
        report.files += 1
        if digest and digest != out.sha256:
            report.fail(
                "file", out.rel,
                f"SHA-256 is {digest}, but manifests/{out.manifest} says {out.sha256}: the file was changed",
            )
        try:
            if error is None and table is None:
                with storage.open_random_access(storage.join(self.published, out.rel)) as handle:
                    meta = pq.ParquetFile(handle).metadata
                num_rows, names = meta.num_rows, meta.schema.to_arrow_schema().names
            elif error is None:
                num_rows, names = table.num_rows, table.schema.names
        except (pa.ArrowException, OSError) as exc:
            error = f"is not a readable Parquet file ({exc})"
        if error is not None:
            self.flush()
            report.fail("file", out.rel, error)
            self.break_tree(f"{out.rel} is unreadable")
            return
        missing = [c for c in ("source", "event_id", "leaf_index", "leaf_hash") if c not in names]
        if missing:
            self.flush()
            report.fail("file", out.rel, f"has no column(s) {', '.join(missing)}")
            self.break_tree(f"{out.rel} lacks its leaf columns")
            return
        if num_rows != out.rows:
            self.flush()
            report.fail(
                "file", out.rel, f"has {num_rows} rows, but manifests/{out.manifest} says {out.rows}: rows were"
                " removed or added",
            )
            self.break_tree(f"{out.rel} has the wrong number of rows")
        if table is not None:
            self.add(_Piece(out, table, 0))
            return
        # A large file: record batches, so that it is never held in memory whole. It is read a second
        # time after its SHA-256, so a server that changes bytes between reads could differ; the leaf
        # checks below still hold for the bytes actually decoded.
        offset = 0
        try:
            for batch in self._pieces(out):
                self.add(_Piece(out, batch, offset))
                offset += batch.num_rows
        except (pa.ArrowException, OSError) as exc:
            self.flush()
            report.fail("file", out.rel, f"could not be read to the end ({exc})")
            self.break_tree(f"{out.rel} is unreadable")

    def add(self, piece: _Piece) -> None:
        if self.pending and (
            self.pending[0].out.table != piece.out.table
            or not self.pending[0].table.schema.equals(piece.table.schema)
            or self.pending_rows + piece.table.num_rows > GROUP_ROWS
        ):
            self.flush()
        self.pending.append(piece)
        self.pending_rows += piece.table.num_rows
        if self.pending_rows >= GROUP_ROWS:
            self.flush()

    def flush(self) -> None:
        """Encode and hash the pending pieces together, then check and fold each in order."""
        if not self.pending:
            return
        pieces, self.pending, self.pending_rows = self.pending, [], 0
        tables = [p.table if isinstance(p.table, pa.Table) else pa.Table.from_batches([p.table]) for p in pieces]
        combined = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        try:
            hashes = leaf.table_leaf_hashes(pieces[0].out.table, combined)
        except leaf.LeafEncodingError as exc:
            for p in pieces:
                self.report.fail("row", p.out.rel, f"rows cannot be encoded as leaves: {exc}")
            self.break_tree(f"{pieces[0].out.rel} cannot be encoded")
            return
        at = 0
        for p, t in zip(pieces, tables, strict=True):
            self.check_rows(p, t, hashes[at:at + t.num_rows])
            at += t.num_rows

    def check_rows(self, piece: _Piece, table: pa.Table, hashes: list[bytes]) -> None:
        out, n = piece.out, table.num_rows
        start = out.first_leaf + piece.offset
        report = self.report
        self.report.rows += n

        def name(i: int) -> str:
            row = table.slice(i, 1).select(["source", "event_id"]).to_pylist()[0]
            return f"leaf {start + i} ({row['source']}/{row['event_id']}) in {out.rel}"

        named: set[int] = set()  # rows already reported, so one changed row gives one message
        index = table.column("leaf_index").to_numpy(zero_copy_only=False)
        wrong = np.flatnonzero(index != np.arange(start, start + n))
        if len(wrong):
            i = int(wrong[0])
            named.add(i)
            report.fail(
                "row", name(i), f"has leaf_index {index[i]}, but its position in the file makes it leaf {start + i}"
            )
        recorded = table.column("leaf_hash")
        same = pc.equal(recorded, pa.array([h.hex() for h in hashes], recorded.type))
        if not pc.all(same).as_py():
            i = pc.index(pc.fill_null(same, False), False).as_py()
            named.add(i)
            report.fail(
                "row", name(i), f"leaf_hash column is {recorded[i].as_py()}, but the row's contents hash to"
                f" {hashes[i].hex()}: the row was changed after publication",
            )
        self.compare_stored(start, hashes, name, frozenset(named))
        self.fold(hashes)
        self.done(n)

    def done(self, n: int) -> None:
        self.report.leaves += n
        if self.progress is not None:
            self.progress(self.report.leaves, self.total)

    def stream(self, batches: list[_Batch], listed: dict[str, int]) -> None:
        jobs = [(b, out) for b in batches for out in b.outputs]
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="verify-read") as pool:
            futures: dict[int, Future] = {}

            def submit(k: int) -> None:
                if k < len(jobs) and k not in futures:
                    out = jobs[k][1]
                    if out.rel in listed:
                        futures[k] = pool.submit(self._load, out, listed[out.rel])

            for k in range(READ_AHEAD):
                submit(k)
            k = 0
            for b in batches:
                if self.tree_ok and b.first != self.frontier.size:
                    # A gap or an overlap between manifests (reported by check_chain).
                    self.break_tree(f"the manifests do not cover leaf {self.frontier.size} exactly once")
                for out in b.outputs:
                    submit(k + READ_AHEAD)
                    future = futures.pop(k, None)
                    k += 1
                    self.check_file(out, None if future is None else future.result())
                self.flush()
                mleaf = leaf.manifest_leaf_hash(b.manifest)
                self.compare_stored(b.manifest_leaf, [mleaf], lambda _i, b=b: f"manifest leaf {b.manifest_leaf}"
                                    f" (manifests/{b.name})")
                if self.tree_ok and self.frontier.size != b.manifest_leaf:
                    self.break_tree(f"the rows of manifests/{b.name} do not end at its manifest leaf")
                self.fold([mleaf])
                self.done(1)


def verify_log(
    log_dir: str | Path,
    published: str,
    manifests: str,
    *,
    since: str | bytes | None = None,
    since_name: str = "--since checkpoint",
    expected_vkey: str | None = None,
    progress: Progress | None = None,
) -> Report:
    """Verify a published log (see the module docstring); never raises for a bad log, reports it."""
    report = Report()
    log_dir = Path(log_dir)
    v = _Verifier(log_dir, published, manifests, report, progress)

    # 1. The key every signature is checked with.
    key: note.Verifier | None = None
    published_key: note.Verifier | None = None
    try:
        published_key = note.Verifier.from_vkey((log_dir / VKEY).read_text().strip())
    except FileNotFoundError:
        report.fail("key", f"log/{VKEY}", "is missing: the log's public key must be published next to it")
    except (note.NoteError, UnicodeDecodeError) as exc:
        report.fail("key", f"log/{VKEY}", f"is not a verifier key: {exc}")
    if expected_vkey is not None:
        try:
            key = note.Verifier.from_vkey(expected_vkey.strip())
        except note.NoteError as exc:
            report.fail("key", "--vkey", f"is not a verifier key: {exc}")
            return report
        if published_key is not None and published_key.vkey() != key.vkey():
            report.fail(
                "key", f"log/{VKEY}",
                f"is {published_key.vkey()}, not the key you expect ({key.vkey()}): the log's key was replaced",
            )
        elif published_key is not None:
            report.passed.append(f"log.vkey is the key you expect: {key.vkey()}")
    else:
        key = published_key
        if key is not None:
            report.passed.append(f"log.vkey: {key.vkey()} (pin it with --vkey to detect a replaced key)")
    if key is None:
        return report
    report.vkey = key.vkey()

    # 2. The latest signed checkpoint.
    latest: Checkpoint | None = None
    try:
        latest = open_checkpoint((log_dir / CHECKPOINT).read_bytes(), key)
    except FileNotFoundError:
        report.fail("checkpoint", "log/checkpoint", "is missing")
    except (note.NoteError, CheckpointError) as exc:
        report.fail("checkpoint", "log/checkpoint", f"does not verify with the log key {key.vkey()}: {exc}")
    if latest is not None:
        report.checkpoint = latest
        report.passed.append(
            f"log/checkpoint is signed by {key.name}+{key.key_id:08x}: size {latest.size},"
            f" root {_b64(latest.root_hash)}"
        )
        v.expect_root(latest.size, "log/checkpoint", latest.root_hash)

    # 3. The auditor's saved checkpoint.
    saved: Checkpoint | None = None
    if since is not None:
        try:
            saved = open_checkpoint(since, key)
        except (note.NoteError, CheckpointError) as exc:
            report.fail("since", since_name, f"is not a checkpoint signed by the log key {key.vkey()}: {exc}")
        if saved is not None and latest is not None:
            if saved.size > latest.size:
                report.fail(
                    "rollback", "log/checkpoint",
                    f"has tree size {latest.size}, older than the size {saved.size} of {since_name}: the log was"
                    " rolled back",
                )
            elif saved.size == latest.size and saved.root_hash != latest.root_hash:
                report.fail(
                    "rollback", "log/checkpoint",
                    f"signs a different root than {since_name} for the same size {saved.size}: the log forked",
                )
        if saved is not None:
            v.expect_root(saved.size, since_name, saved.root_hash)

    # 4. Every checkpoint the log kept must be signed by the key and be a prefix of the same tree.
    stored = 0
    checkpoints_dir = log_dir / CHECKPOINTS
    names = [p.name for p in checkpoints_dir.iterdir()] if checkpoints_dir.is_dir() else []
    unsigned: list[tuple[str, str]] = []
    larger: list[int] = []
    for name in sorted((n for n in names if n.isdigit()), key=int):
        subject = f"log/{CHECKPOINTS}/{name}"
        try:
            c = open_checkpoint((checkpoints_dir / name).read_bytes(), key)
        except (note.NoteError, CheckpointError, OSError) as exc:
            unsigned.append((subject, str(exc)))
            continue
        if str(c.size) != name:
            report.fail("checkpoint", subject, f"holds a checkpoint for size {c.size}")
            continue
        if latest is not None and c.size > latest.size:
            larger.append(c.size)
        stored += 1
        v.expect_root(c.size, subject, c.root_hash)
    if unsigned:
        # A replaced key breaks every stored checkpoint at once: one message, with the count.
        subject, why = unsigned[0]
        more = f" (and {len(unsigned) - 1} more of the log's stored checkpoints)" if len(unsigned) > 1 else ""
        report.fail("checkpoint", subject, f"does not verify with the log key {key.vkey()}: {why}{more}")
    if larger and latest is not None:
        report.fail(
            "rollback", "log/checkpoint",
            f"has size {latest.size}, but the log also signed log/{CHECKPOINTS}/{max(larger)} for a larger tree:"
            " the log was rolled back",
        )
    for name in sorted(n for n in names if not n.isdigit() and not n.startswith(".")):
        report.warnings.append(f"log/{CHECKPOINTS}/{name} is not named by a tree size; ignored")
    if latest is not None and latest.size and not (checkpoints_dir / str(latest.size)).exists():
        report.warnings.append(f"log/{CHECKPOINTS}/{latest.size} (a copy of the latest checkpoint) is missing")
    v.probe_sizes = sorted(v.probes)

    # 5. Manifests and files.
    v.store = TileStore(log_dir) if (log_dir / "state.json").exists() else None
    if v.store is None:
        report.warnings.append("log/state.json is missing: rows are not compared with the log's stored leaf hashes")
    elif latest is not None and v.store.size < latest.size:
        report.fail(
            "tiles", "log/state.json",
            f"says the tile store holds {v.store.size} leaves; the checkpoint has {latest.size}",
        )
    elif latest is not None and v.store.size > latest.size:
        # The publisher commits the tiles before it signs: an append interrupted in between.
        report.warnings.append(
            f"the tile store holds {v.store.size} leaves, more than the latest checkpoint ({latest.size}):"
            " an append was interrupted before signing; re-run the batch"
        )
    batches = v.load_manifests()
    v.check_chain(batches, latest.size if latest else None)
    listed_paths = {out.rel for b in batches for out in b.outputs}
    on_disk = _list_partition_files(published)
    for rel in sorted(set(on_disk) - listed_paths):
        if _PARTIAL.match(rel.rsplit("/", 1)[-1]):
            report.warnings.append(f"{rel}: a temporary file left by an interrupted write (no reader sees it)")
        else:
            report.fail(
                "extra", rel,
                "is in the published partitions, but no manifest lists it (a file was added, or a batch was"
                " interrupted before its manifest: re-run it)",
            )
    v.total = max((b.manifest_leaf + 1 for b in batches), default=0)
    v.stream(batches, {rel: size for rel, size in on_disk.items() if rel in listed_paths})

    # 6. The tree against the signed sizes.
    recomputed = v.frontier.size if v.tree_ok else None
    end = max((b.manifest_leaf + 1 for b in batches), default=0)
    if latest is not None and end < latest.size:
        missing = [bid for s, e, bid in _read_batches_index(log_dir) if e > end and s < latest.size]
        named = f"; batches.jsonl names {', '.join(missing)}" if missing else ""
        report.fail(
            "truncated", "log/checkpoint",
            f"covers {latest.size} leaves, but the published manifests account for only {end}: leaves"
            f" [{end}, {latest.size}) were removed{named}",
        )
    if not v.tree_ok:
        report.fail("root", "log/checkpoint", f"the root cannot be recomputed: {v.broken_at}")
    elif latest is not None and recomputed == latest.size and not any(p.check == "root" for p in report.problems):
        report.passed.append(
            f"the root recomputed from {report.leaves} published leaves equals the signed checkpoint's"
        )
        if stored:
            report.passed.append(f"all {stored} checkpoints the log kept are prefixes of the recomputed tree")

    if v.tile_mismatches and latest is not None and v.store is not None and v.store.size >= latest.size:
        # Decide whether the stored leaf hashes the diagnostics used are the signed ones.
        try:
            stored_root = merkle.root_of(_stored_leaf_stream(v.store, latest.size))
        except (ValueError, RuntimeError):
            stored_root = None
        if stored_root == latest.root_hash:
            report.warnings.append(
                "the log's stored leaf hashes hash to the signed root: the rows named above differ from what"
                " was logged and signed"
            )
        else:
            report.warnings.append(
                "the log's stored leaf hashes do not hash to the signed root either (the tile store was"
                " rewritten): which rows differ cannot be told from it"
            )

    # 7. The saved checkpoint: the log only grew since.
    if saved is not None and latest is not None and 0 < saved.size <= latest.size:
        recomputed_root = v.recomputed_roots.get(latest.size) if v.tree_ok else None
        proof: list[bytes] | None = None
        if v.store is None:
            report.fail("since", "log/tile", "is missing: no consistency proof can be built")
        else:
            try:
                proof = v.store.consistency_proof(saved.size, latest.size)
            except (ValueError, RuntimeError) as exc:
                report.fail("since", "log/tile", f"cannot give a consistency proof: {exc}")
        if proof is not None and recomputed_root is not None:
            # Both roots are trusted: the saved one, and the one recomputed from the Parquet. Only the
            # proof's hashes come from the tile store, so rewriting it cannot make this hold.
            if merkle.verify_consistency(saved.size, latest.size, saved.root_hash, recomputed_root, proof):
                report.passed.append(
                    f"{since_name} (size {saved.size}) is signed by the same key, and the consistency proof"
                    f" {saved.size} -> {latest.size} from the tile store verifies against the recomputed root"
                )
            elif recomputed_root != latest.root_hash:
                report.fail(
                    "since", since_name,
                    "cannot be connected to the published files: they do not hash to the signed root (see above)",
                )
            else:
                report.fail(
                    "since", since_name,
                    f"the log's consistency proof from size {saved.size} to {latest.size} does not verify: the"
                    " log did not only grow, or its tile store was rewritten",
                )
        elif proof is not None:
            # The published files could not be folded up to the checkpoint (reported above); the signed
            # history can still be checked on its own.
            if merkle.verify_consistency(saved.size, latest.size, saved.root_hash, latest.root_hash, proof):
                report.warnings.append(
                    f"{since_name}: the consistency proof verifies against the signed root only (the published"
                    " files could not be recomputed up to it)"
                )
            else:
                report.fail(
                    "since", since_name,
                    f"the log's consistency proof from size {saved.size} to {latest.size} does not verify against"
                    " the signed roots: the log did not only grow",
                )
    elif saved is not None and saved.size == 0:
        report.passed.append(f"{since_name} is the empty tree: every log extends it")

    # Summary lines for what held.
    if not any(p.check == "manifest" for p in report.problems) and batches:
        report.passed.append(f"{len(batches)} manifests chain over leaves [0, {end}) without gaps or overlaps")
    if not any(p.check in ("file", "extra") for p in report.problems):
        report.passed.append(f"{report.files} files match their manifests' SHA-256; no unlisted files")
    if not any(p.check in ("row", "logged-leaf") for p in report.problems) and report.rows:
        report.passed.append(f"{report.rows} rows: leaf_index and leaf_hash match their contents and the log")
    return report


def _stored_leaf_stream(store: TileStore, size: int) -> Iterator[bytes]:
    step = 1 << 16
    for start in range(0, size, step):
        yield from store.leaf_hashes(start, min(size, start + step))
