"""Independent verification of a published log: what ``sensorlog verify`` runs.

Everything is read through ``pipelines.log.reader`` (a folder, ``http(s)://`` or ``s3://``), so the
same checks run on the operator's home and on a copy of the published site. An auditor trusts
nothing the city publishes except, optionally, a verifier key they pinned (``--vkey``), a checkpoint
they saved earlier (``--since``) and witnesses' keys (``--witness``); with none of them the key is
trusted on first use, which the report says (``--strict`` fails). Everything else is re-derived
(the steps below; on a site also every tile above level 0 and every entry bundle,
``pipelines.log.verify_tiles``, the signed file list ``SHA256SUMS``, witness cosignatures on the latest
checkpoint, and the portal's one-file extracts):

1. the log key: ``log.vkey`` must parse, and equal the pinned key when one is given;
2. the latest checkpoint (``log/checkpoint``) must carry a valid signature by that key;
2b. with ``--witness`` or ``--min-witnesses``, the latest checkpoint must carry enough valid
   cosignatures by the witnesses given;
3. a saved checkpoint must be signed by the same key and must not be newer than the latest one
   (a smaller latest tree is a rollback);
3b. the trust anchors (``--vkey``, ``--since``, ``--witness``) are named; without any, the key is
   trusted on first use;
4. every checkpoint the log kept (``checkpoints/<size>``) must be signed by the key, and none may be
   for a larger tree than the latest one;
4b. on a site, the signed file list ``SHA256SUMS`` and every file it lists are checked; its
   checkpoint line must be a root of the recomputed tree;
5. the tiles, the entry bundles, the manifests and the files:

   - the manifests must chain: batch after batch, their leaves cover ``[0, size)`` without gaps or
     overlaps, each output file sits at the path the layout gives its table, date and batch;
   - every Parquet file in an ``event_type=`` partition must be listed by a manifest, and every listed
     file must exist and hash to the manifest's SHA-256;
   - every row is re-encoded (``tlog.leaf``) and must match its ``leaf_hash`` column; its
     ``leaf_index`` must be its position (the manifest's ``first_leaf`` plus its row number);
   - after ``sensorlog compact``, a compaction record (``compactions/``, next to the manifests) says which
     compacted file holds an output's rows: each output is held at most once, as its manifest lists
     it, and its rows are its slice of that file (``docs/compaction.md``);

6. the leaves, each batch's manifest leaf included, are folded in leaf order into a Merkle frontier
   (O(log n) memory), and the root at each signed tree size (the latest checkpoint, every stored
   ``checkpoints/<size>``, the saved checkpoint) must equal the signed root;
7. with a saved checkpoint, the consistency proof that the log's tile store serves must prove
   that the RECOMPUTED tree extends the saved one. The proof's hashes come from the tile store, but
   both roots it is checked against are trusted (the saved one, and the one recomputed from the
   Parquet), so a rewritten tile store cannot satisfy it;
8. summary lines name what held.

Each step is one function in ``CHECKS``, run in that order by ``verify_log``.

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
tables (``retention_ledger``, ``findings``, under their own ``derived/`` root beside it) are recomputed
by the audit and are not leaves, so they are not checked here.

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
import pyarrow.parquet as pq

from pipelines import site_files, storage
from pipelines.layout import PARTITION_PREFIX, compacted_name, compacted_relpath, published_relpath
from pipelines.log.batch_index import parse_tolerant
from pipelines.log.reader import HttpSource, Missing, Source, SourceError, StorageSource, open_source, parent
from pipelines.log.verify_tiles import BundleChecker, TileChecker
from pipelines.records import Compaction, RecordError
from pipelines.schemas import LOGGED_TABLES
from pipelines.tlog import cosignature, leaf, merkle, note
from pipelines.tlog.checkpoint import Checkpoint, CheckpointError, open_checkpoint
from pipelines.tlog.layout import BATCHES, CHECKPOINT, CHECKPOINTS, STATE_FILE, VKEY
from pipelines.tlog.tiles import TileReader

LATEST_CHECKPOINT = f"log/{CHECKPOINT}"  # how problems and passes name the latest checkpoint
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
    event_date: str = ""
    compacted: _Compacted | None = None  # the compacted file now holding this output's rows
    offset: int = 0  # the row in it where they start


@dataclass
class _Compacted:
    """A compacted file (``compactions/<name>.json``): read once, then sliced for each output it holds."""

    name: str  # the record's file name, for messages
    record: Compaction
    remaining: int  # outputs still to check; its rows are dropped after the last
    table: pa.Table | None = None
    loaded: bool = False
    failed: bool = False


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


def _named(text: str) -> Callable[[int], str]:
    """A leaf namer that gives every leaf the same name (for a single leaf)."""
    return lambda _i: text


def _safe_rel(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return bool(parts) and not path.startswith("/") and "://" not in path and ".." not in parts


def _list_partition_files(data: Source) -> dict[str, int] | None:
    """Every file (hidden ones too: DuckDB's globs read them) under the ``event_type=`` partitions,
    as relative path -> size; None when the source cannot list (HTTP)."""
    listing = data.list()
    if listing is None:
        return None
    return {rel: size for rel, size in listing.items() if rel.split("/", 1)[0].startswith(PARTITION_PREFIX)}


def read_batch_index(log: Source) -> list[tuple[int, int, str]]:
    """``(start, end, batch_id)`` from ``batches.jsonl`` (read tolerantly: ``log_index``): names
    missing batches, and lists the manifests where the source cannot list."""
    try:
        data = log.read(BATCHES)
    except OSError:
        return []
    return [(r.start, r.end, r.batch_id) for r in parse_tolerant(data)]


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
        log: Source,
        data: Source,
        manifests: Source,
        report: Report,
        progress: Progress | None,
        compactions: Source | None = None,
    ) -> None:
        self.log = log
        self.data = data
        self.manifests_src = manifests
        self.compactions_src = compactions
        self.tile_checker: TileChecker | None = None
        self.bundle_checker: BundleChecker | None = None
        self.report = report
        self.progress = progress
        self.frontier = merkle.Frontier()
        self.tree_ok = True  # False once a leaf could not be recomputed: later roots mean nothing
        self.broken_at: str | None = None
        self.probes: dict[int, list[tuple[str, bytes]]] = {}  # size -> [(checkpoint label, signed root)]
        self.probe_sizes: list[int] = []
        self.recomputed_roots: dict[int, bytes] = {}
        self.root_mismatches = 0
        self.store: TileReader | None = None
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
            if self.tile_checker is not None:
                self.tile_checker.add(hashes[i:i + take])
            if self.bundle_checker is not None:
                self.bundle_checker.add(self.frontier.size, hashes[i:i + take])
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
        except (ValueError, RuntimeError, OSError) as exc:
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
        listing = self.manifests_src.list()
        if listing is None:  # HTTP: the batch index names them
            names = sorted({f"{bid}.json" for _s, _e, bid in read_batch_index(self.log)})
        else:
            names = sorted(n for n in listing if n.endswith(".json") and "/" not in n and not n.startswith("."))
        for name in names:
            subject = f"manifests/{name}"
            try:
                manifest = json.loads(self.manifests_src.read(name))
                batch_id = str(manifest["batch_id"])
                leaves = manifest["leaves"]
                first, rows_end, mleaf = int(leaves["first"]), int(leaves["rows_end"]), int(leaves["manifest_leaf"])
                outputs = [
                    _Output(name, batch_id, str(o["table"]), str(o["path"]), int(o["rows"]), str(o["sha256"]),
                            int(o["first_leaf"]))
                    for o in manifest["outputs"]
                ]
                date_of = [str(o["event_date"]) for o in manifest["outputs"]]
            except Missing:
                self.report.fail("manifest", subject, "is named by batches.jsonl but missing")
                continue
            except (ValueError, KeyError, TypeError, OSError) as exc:
                self.report.fail("manifest", subject, f"is not a readable manifest ({exc!r})")
                continue
            if name != f"{batch_id}.json":
                self.report.fail("manifest", subject, f"names batch {batch_id}: a manifest is named by its batch id")
            for out, date in zip(outputs, date_of, strict=True):
                out.event_date = date
                expected = published_relpath(out.table, date, batch_id)
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
        index = read_batch_index(self.log)
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
        try:
            if size > WHOLE_FILE_LIMIT and isinstance(self.data, StorageSource):
                digest, _ = storage.sha256_of(self.data.describe(out.rel))
                return digest, None, None
            data = self.data.read(out.rel)
        except Missing:
            return "", None, "missing"
        except OSError as exc:  # e.g. removed or unreadable since it was listed
            return "", None, f"cannot be read ({exc})"
        digest = hashlib.sha256(data).hexdigest()
        try:
            return digest, pq.ParquetFile(pa.BufferReader(data)).read(), None
        except (pa.ArrowException, OSError) as exc:
            return digest, None, f"is not a readable Parquet file ({exc})"

    def _pieces(self, out: _Output) -> Iterator[pa.RecordBatch]:
        """Record batches of a large file, read without holding the file in memory."""
        with storage.open_random_access(self.data.describe(out.rel)) as handle:
            yield from pq.ParquetFile(handle).iter_batches(batch_size=GROUP_ROWS)

    def check_file(self, out: _Output, loaded: tuple[str, pa.Table | None, str | None] | None) -> None:
        report = self.report
        if loaded is None:
            self.flush()
            report.fail("file", out.rel, f"is listed by manifests/{out.manifest} but missing")
            self.break_tree(f"{out.rel} is missing")
            return
        digest, table, error = loaded
        if error == "missing":
            self.flush()
            report.fail("file", out.rel, f"is listed by manifests/{out.manifest} but missing")
            self.break_tree(f"{out.rel} is missing")
            return
        report.files += 1
        if digest and digest != out.sha256:
            report.fail(
                "file", out.rel,
                f"SHA-256 is {digest}, but manifests/{out.manifest} says {out.sha256}: the file was changed",
            )
        try:
            if error is None and table is None:
                with storage.open_random_access(self.data.describe(out.rel)) as handle:
                    meta = pq.ParquetFile(handle).metadata
                num_rows, names = meta.num_rows, meta.schema.to_arrow_schema().names
            elif error is None and table is not None:
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

    # -- compaction records ----------------------------------------------------------------------

    def load_compactions(self, file_list: site_files.FileList | None,
                         site: Source | None) -> list[tuple[str, Compaction]]:
        """The compaction records (``compactions/``, next to the manifests), by file name. On a source that
        cannot list (HTTP) the site's signed file list names them."""
        src = self.compactions_src
        if src is None:
            return []
        listing = src.list()
        if listing is not None:
            names = sorted(listing)
        elif file_list is not None and (prefix := _data_prefix(site, src)) is not None:
            names = sorted(p[len(prefix):] for p in file_list.files if p.startswith(prefix))
        else:
            names = []
        records = []
        for name in (n for n in names if n.endswith(".json") and "/" not in n and not n.startswith(".")):
            subject = f"compactions/{name}"
            try:
                record = Compaction.from_json(src.read(name), subject)
            except RecordError as exc:
                self.report.fail("compaction", subject, f"is not a readable compaction record ({exc})")
                continue
            except OSError as exc:
                self.report.fail("compaction", subject, f"cannot be read ({exc})")
                continue
            last = record.parts[-1].first_leaf + record.parts[-1].rows - 1
            expected = compacted_relpath(record.table, record.event_date, record.parts[0].first_leaf, last)
            if name != f"{compacted_name(record.parts[0].first_leaf, last)}.json" or record.path != expected:
                self.report.fail("compaction", subject, f"names {record.path!r}; a record of the leaves it holds is"
                                                        f" {compacted_name(record.parts[0].first_leaf, last)}.json"
                                                        f" naming {expected}")
                continue
            records.append((name, record))
        return records

    def apply_compactions(self, batches: list[_Batch], records: list[tuple[str, Compaction]]) -> set[str]:
        """Point every output a record holds at its compacted file; returns the compacted files in use.
        Each part must be a manifest's output exactly as listed, and no output may be held twice."""
        outputs = {(out.batch_id, out.rel): out for b in batches for out in b.outputs}
        in_use: set[str] = set()
        for name, record in records:
            subject = f"compactions/{name}"
            held = _Compacted(name, record, 0)
            for offset, part in record.offsets():
                out = outputs.get((part.batch_id, part.path))
                if out is None:
                    self.report.fail("compaction", subject, f"lists {part.path} of batch {part.batch_id}, which no"
                                                            " manifest lists")
                elif out.compacted is not None:
                    self.report.fail("compaction", subject, f"lists {part.path}, which compactions/"
                                                            f"{out.compacted.name} holds too: its rows would be"
                                                            " published twice")
                elif (part.rows, part.sha256, part.first_leaf, record.table, record.event_date) != (
                        out.rows, out.sha256, out.first_leaf, out.table, out.event_date):
                    self.report.fail("compaction", subject, f"lists {part.path} unlike manifests/{out.manifest}"
                                                            " (rows, SHA-256, first leaf, table or date differ)")
                else:
                    out.compacted, out.offset = held, offset
                    held.remaining += 1
            if held.remaining:
                in_use.add(record.path)
        if records and not any(p.check == "compaction" for p in self.report.problems):
            self.report.passed.append(f"{len(records)} compaction records: every output they list is held by"
                                      " exactly one compacted file")
        return in_use

    def check_compacted(self, out: _Output, held: _Compacted) -> None:
        """An output whose rows a compacted file holds: the file is checked against its record once, then
        the output's rows (its slice of the file) are checked like a batch file's."""
        record = held.record
        view = _Output(f"{out.manifest}", out.batch_id, out.table, record.path, out.rows, out.sha256, out.first_leaf)
        if not held.loaded:
            held.loaded = True
            self.load_compacted(held)
        held.remaining -= 1
        if held.failed or held.table is None:
            self.flush()
            self.break_tree(f"{record.path} cannot be checked")
            return
        self.add(_Piece(view, held.table.slice(out.offset, out.rows), 0))
        if held.remaining == 0:
            held.table = None  # every output it holds is checked: free its rows

    def load_compacted(self, held: _Compacted) -> None:
        record, report = held.record, self.report
        subject = f"compactions/{held.name}"
        digest, table, error = self._load(_Output(held.name, "", record.table, record.path, record.rows,
                                                  record.sha256, 0), 0)
        self.flush()
        if error == "missing":
            report.fail("file", record.path, f"is listed by {subject} but missing")
            held.failed = True
            return
        report.files += 1
        if digest and digest != record.sha256:
            report.fail("file", record.path, f"SHA-256 is {digest}, but {subject} says {record.sha256}: the file was"
                                             " changed")
        if error is not None or table is None:
            report.fail("file", record.path, error or "cannot be read")
            held.failed = True
            return
        missing = [c for c in ("source", "event_id", "leaf_index", "leaf_hash") if c not in table.schema.names]
        if missing:
            report.fail("file", record.path, f"has no column(s) {', '.join(missing)}")
            held.failed = True
        elif table.num_rows != record.rows:
            report.fail("file", record.path, f"has {table.num_rows} rows, but {subject} says {record.rows}: rows were"
                                             " removed or added")
            held.failed = True
        else:
            held.table = table

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

    def stream(self, batches: list[_Batch], listed: dict[str, int] | None) -> None:
        jobs = [(b, out) for b in batches for out in b.outputs]
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="verify-read") as pool:
            futures: dict[int, Future] = {}

            def submit(k: int) -> None:
                if k < len(jobs) and k not in futures:
                    out = jobs[k][1]
                    if out.compacted is None and (listed is None or out.rel in listed):
                        futures[k] = pool.submit(self._load, out, 0 if listed is None else listed[out.rel])

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
                    if out.compacted is not None:
                        self.check_compacted(out, out.compacted)
                    else:
                        self.check_file(out, None if future is None else future.result())
                self.flush()
                mleaf = leaf.manifest_leaf_hash(b.manifest)
                self.compare_stored(b.manifest_leaf, [mleaf], _named(f"manifest leaf {b.manifest_leaf}"
                                                                     f" (manifests/{b.name})"))
                if self.tree_ok and self.frontier.size != b.manifest_leaf:
                    self.break_tree(f"the rows of manifests/{b.name} do not end at its manifest leaf")
                self.fold([mleaf])
                self.done(1)


def _as_source(where: str | Path | Source) -> Source:
    return open_source(str(where)) if isinstance(where, str | Path) else where


def _compactions_source(log_src: Source, manifests_src: Source, in_log: bool) -> Source | None:
    """The compaction records: ``compactions/`` next to the manifests (``log/compactions`` on a site)."""
    if in_log:
        return log_src.child("compactions")
    where = manifests_src.describe("")
    try:
        return open_source(f"{parent(where).rstrip('/')}/compactions")
    except SourceError:
        return None


def load_compaction_records(src: Source) -> list[Compaction]:
    """Every readable compaction record of ``src`` (for ``prove``); none where it cannot list."""
    listing = src.list()
    out = []
    for name in sorted(listing or ()):
        if name.endswith(".json") and "/" not in name and not name.startswith("."):
            try:
                out.append(Compaction.from_json(src.read(name), name))
            except (RecordError, OSError):
                continue  # verify names it; prove then says the output's file is missing
    return out


@dataclass
class _Run:
    """One run of ``verify_log``: its inputs, and what each step in ``CHECKS`` finds for the later ones."""

    log: Source
    data: Source
    site: Source | None
    since: str | bytes | None
    since_name: str
    expected_vkey: str | None
    witnesses: tuple[str, ...]
    min_witnesses: int
    strict: bool
    report: Report
    v: _Verifier
    home: bool  # an operator's home, not a published copy
    key: note.Verifier | None = None
    latest: Checkpoint | None = None
    latest_text: bytes | None = None
    saved: Checkpoint | None = None
    stored: int = 0  # stored checkpoints that verify
    signed_sizes: list[int] = field(default_factory=list)
    index_records: list[tuple[int, int, str]] = field(default_factory=list)
    file_list: site_files.FileList | None = None
    size: int = 0  # the latest checkpoint's tree size (0 without one)
    batches: list[_Batch] = field(default_factory=list)
    on_disk: dict[str, int] | None = None
    end: int = 0  # the leaves the published manifests account for
    compacted: set[str] = field(default_factory=set)  # compacted files in use (none: never compacted)

    @property
    def log_key(self) -> note.Verifier:
        # _step_key stops the run without a key, so every later step has one.
        if self.key is None:
            raise RuntimeError("verify step run without a log key")
        return self.key


def _step_key(run: _Run) -> bool:
    """1. The key every signature is checked with; False (stop) when there is no usable one."""
    report = run.report
    published_key: note.Verifier | None = None
    try:
        published_key = note.Verifier.from_vkey(run.log.read(VKEY).decode("utf-8").strip())
    except Missing:
        report.fail("key", f"log/{VKEY}", "is missing: the log's public key must be published next to it")
    except (note.NoteError, UnicodeDecodeError) as exc:
        report.fail("key", f"log/{VKEY}", f"is not a verifier key: {exc}")
    except SourceError as exc:
        report.fail("key", f"log/{VKEY}", str(exc))
    if run.expected_vkey is not None:
        try:
            key = note.Verifier.from_vkey(run.expected_vkey.strip())
        except note.NoteError as exc:
            report.fail("key", "--vkey", f"is not a verifier key: {exc}")
            return False
        if published_key is not None and published_key.vkey() != key.vkey():
            report.fail(
                "key", f"log/{VKEY}",
                f"is {published_key.vkey()}, not the key you expect ({key.vkey()}): the log's key was replaced",
            )
        elif published_key is not None:
            report.passed.append(f"log.vkey is the key you pinned: {key.vkey()} (fingerprint {fingerprint(key)})")
        run.key = key
    else:
        run.key = published_key
    if run.key is None:
        return False
    report.vkey = run.key.vkey()
    return True


def _step_latest(run: _Run) -> None:
    """2. The latest signed checkpoint."""
    report, key = run.report, run.log_key
    try:
        run.latest_text = run.log.read(CHECKPOINT)
        run.latest = open_checkpoint(run.latest_text, key)
    except Missing:
        report.fail("checkpoint", LATEST_CHECKPOINT, "is missing")
    except (note.NoteError, CheckpointError) as exc:
        report.fail("checkpoint", LATEST_CHECKPOINT, f"does not verify with the log key {key.vkey()}: {exc}")
    except SourceError as exc:
        report.fail("checkpoint", LATEST_CHECKPOINT, str(exc))
    latest = run.latest
    if latest is not None:
        report.checkpoint = latest
        report.passed.append(
            f"{LATEST_CHECKPOINT} is signed by {key.name}+{key.key_id:08x}: size {latest.size},"
            f" root {_b64(latest.root_hash)}"
        )
        run.v.expect_root(latest.size, LATEST_CHECKPOINT, latest.root_hash)
        if latest.size == 0:
            report.fail("empty", LATEST_CHECKPOINT, "signs an empty tree: there is nothing to verify")


def _step_witnesses(run: _Run) -> None:
    """2b. Witness cosignatures on the latest checkpoint, when any are asked for."""
    if run.witnesses or run.min_witnesses:
        _check_witnesses(run.report, run.latest_text, run.latest, run.witnesses, run.min_witnesses)


def _step_saved(run: _Run) -> None:
    """3. The auditor's saved checkpoint: same key, not newer than the latest one."""
    if run.since is None:
        return
    report, key, latest, since_name = run.report, run.log_key, run.latest, run.since_name
    saved: Checkpoint | None = None
    try:
        saved = open_checkpoint(run.since, key)
    except (note.NoteError, CheckpointError) as exc:
        report.fail("since", since_name, f"is not a checkpoint signed by the log key {key.vkey()}: {exc}")
    if saved is not None and latest is not None:
        if saved.size > latest.size:
            report.fail(
                "rollback", LATEST_CHECKPOINT,
                f"has tree size {latest.size}, older than the size {saved.size} of {since_name}: the log was"
                " rolled back",
            )
        elif saved.size == latest.size and saved.root_hash != latest.root_hash:
            report.fail(
                "rollback", LATEST_CHECKPOINT,
                f"signs a different root than {since_name} for the same size {saved.size}: the log forked",
            )
    if saved is not None:
        run.v.expect_root(saved.size, since_name, saved.root_hash)
    run.saved = saved


def _step_anchors(run: _Run) -> None:
    """3b. Trust anchors: without any, the key is trusted on first use."""
    report, key = run.report, run.log_key
    anchors = [a for a, given in (("a pinned key (--vkey)", run.expected_vkey is not None),
                                  ("a saved checkpoint (--since)", run.since is not None),
                                  ("witness cosignatures (--witness)", bool(run.witnesses))) if given]
    if not anchors:
        message = (f"trusting this key on first use: {key.vkey()} (fingerprint {fingerprint(key)}). Nothing"
                   " outside these files anchors it: compare the fingerprint with the one printed on the street"
                   " sign, or pin the key with --vkey, keep this checkpoint for --since, or require --witness")
        if run.strict:
            report.fail("trust", "--strict", message)
        else:
            report.warnings.append(message)
    else:
        report.passed.append("anchored by " + ", ".join(anchors))


def _step_stored_checkpoints(run: _Run) -> None:
    """4. Every checkpoint the log kept must be signed by the key and be a prefix of the same tree."""
    report, key, latest, log_src = run.report, run.log_key, run.latest, run.log
    listing = log_src.list(CHECKPOINTS)
    run.index_records = read_batch_index(log_src)
    if listing is None:  # HTTP: the batch ends are the signed sizes
        names = sorted({str(e) for _s, e, _b in run.index_records})
        required = False
    else:
        names = [rel.split("/", 1)[1] for rel in listing if "/" in rel and rel.count("/") == 1]
        required = True
    unsigned: list[tuple[str, str]] = []
    larger: list[int] = []
    signed_sizes = run.signed_sizes
    for name in sorted((n for n in names if n.isdigit()), key=int):
        subject = f"log/{CHECKPOINTS}/{name}"
        try:
            c = open_checkpoint(log_src.read(f"{CHECKPOINTS}/{name}"), key)
        except Missing:
            if required:
                unsigned.append((subject, "it vanished while being read"))
            continue
        except (note.NoteError, CheckpointError, OSError) as exc:
            unsigned.append((subject, str(exc)))
            continue
        if str(c.size) != name:
            report.fail("checkpoint", subject, f"holds a checkpoint for size {c.size}")
            continue
        if latest is not None and c.size > latest.size:
            larger.append(c.size)
        run.stored += 1
        signed_sizes.append(c.size)
        run.v.expect_root(c.size, subject, c.root_hash)
    if unsigned:
        # A replaced key breaks every stored checkpoint at once: one message, with the count.
        subject, why = unsigned[0]
        more = f" (and {len(unsigned) - 1} more of the log's stored checkpoints)" if len(unsigned) > 1 else ""
        report.fail("checkpoint", subject, f"does not verify with the log key {key.vkey()}: {why}{more}")
    if larger and latest is not None:
        report.fail(
            "rollback", LATEST_CHECKPOINT,
            f"has size {latest.size}, but the log also signed log/{CHECKPOINTS}/{max(larger)} for a larger tree:"
            " the log was rolled back",
        )
    for name in sorted(n for n in names if not n.isdigit() and not n.startswith(".")):
        report.warnings.append(f"log/{CHECKPOINTS}/{name} is not named by a tree size; ignored")
    if latest is not None and latest.size and latest.size not in signed_sizes:
        report.warnings.append(f"log/{CHECKPOINTS}/{latest.size} (a copy of the latest checkpoint) is missing")


def _step_file_list(run: _Run) -> None:
    """4b. The site's signed file list; its checkpoint line must be a root of the recomputed tree."""
    if run.site is not None:
        run.file_list = _check_file_list(run.report, run.site, run.log_key, run.latest)
        if run.file_list is not None:
            run.v.expect_root(run.file_list.size, site_files.FILE_NAME, run.file_list.root)


def _step_data(run: _Run) -> None:
    """5. Tiles, entry bundles, manifests and files, folded into the recomputed tree."""
    report, v, latest, data_src = run.report, run.v, run.latest, run.data
    v.probe_sizes = sorted(v.probes)  # every signed size is known by now (steps 2 to 4b)
    run.size = size = latest.size if latest is not None else 0
    fetch = run.log.read
    if latest is not None:
        v.store = TileReader(fetch, size, latest.root_hash, run.log.label)
        v.tile_checker = TileChecker(fetch, size, run.signed_sizes, report.fail)
        bundle_checker = BundleChecker(fetch, size, run.signed_sizes, report.fail)
        if bundle_checker.present():
            v.bundle_checker = bundle_checker
        elif run.home:
            report.warnings.append("log/tile/entries is absent (an operator's home keeps the leaves in Parquet);"
                                   " `sensorlog log export` and the portal write the entry bundles")
        else:
            report.fail("entries", "log/tile/entries/000", "is missing: a published log must serve its entries")
    if run.home and latest is not None:
        _check_state(report, run.log, latest.size)

    run.batches = batches = v.load_manifests()
    v.check_chain(batches, latest.size if latest else None)
    records = v.load_compactions(run.file_list, run.site)
    run.compacted = compacted = v.apply_compactions(batches, records)
    listed_paths = {out.rel for b in batches for out in b.outputs if out.compacted is None} | compacted
    on_disk = _list_partition_files(data_src)
    if on_disk is None and run.file_list is not None:
        prefix = _data_prefix(run.site, data_src)
        if prefix is not None:
            on_disk = {p[len(prefix):]: 0 for p in run.file_list.files
                       if p.startswith(prefix) and p[len(prefix):].split("/", 1)[0].startswith(PARTITION_PREFIX)}
    run.on_disk = on_disk
    if on_disk is None:
        report.warnings.append(f"{data_src.label} cannot be listed and no signed file list was found: files that"
                               " no manifest lists cannot be looked for")
    else:
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
    v.stream(batches, None if on_disk is None or isinstance(data_src, HttpSource)
             else {rel: size_ for rel, size_ in on_disk.items() if rel in listed_paths})
    if v.tree_ok and v.tile_checker is not None and v.frontier.size >= size:
        v.tile_checker.finish()


def _step_tree(run: _Run) -> None:
    """6. The tree against the signed sizes, and the extracts and stored leaf hashes against it."""
    report, v, latest, batches = run.report, run.v, run.latest, run.batches
    recomputed = v.frontier.size if v.tree_ok else None
    run.end = end = max((b.manifest_leaf + 1 for b in batches), default=0)
    if latest is not None and end < latest.size:
        missing = [bid for s, e, bid in run.index_records if e > end and s < latest.size]
        named = f"; batches.jsonl names {', '.join(missing)}" if missing else ""
        report.fail(
            "truncated", LATEST_CHECKPOINT,
            f"covers {latest.size} leaves, but the published manifests account for only {end}: leaves"
            f" [{end}, {latest.size}) were removed{named}",
        )
    if not v.tree_ok:
        report.fail("root", LATEST_CHECKPOINT, f"the root cannot be recomputed: {v.broken_at}")
    elif latest is not None and recomputed == latest.size and not any(p.check == "root" for p in report.problems):
        report.passed.append(
            f"the root recomputed from {report.leaves} published leaves equals the signed checkpoint's"
        )
        if run.stored:
            report.passed.append(f"all {run.stored} checkpoints the log kept are prefixes of the recomputed tree")
    if v.tile_checker is not None and v.tree_ok and not v.tile_checker.problems:
        report.passed.append(f"{v.tile_checker.checked} stored tiles above level 0 and partial tiles match the tree"
                             " recomputed from the data")
    if v.bundle_checker is not None and v.tree_ok and not v.bundle_checker.problems:
        report.passed.append(f"{v.bundle_checker.checked} entry bundles hold exactly the recomputed leaves")
    if latest is not None and latest.size and not report.rows:
        report.fail("empty", run.data.label, "holds no published rows: nothing was verified")
    if v.store is not None and v.tree_ok and latest is not None:
        _check_extracts(report, run.data, v.store, batches)

    if v.tile_mismatches and latest is not None and v.store is not None and v.store.size >= latest.size:
        # Decide whether the stored leaf hashes the diagnostics used are the signed ones.
        try:
            stored_root = merkle.root_of(_stored_leaf_stream(v.store, latest.size))
        except (ValueError, RuntimeError, OSError):
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


def _step_since(run: _Run) -> None:
    """7. The saved checkpoint: the log only grew since."""
    report, v, latest, saved, since_name = run.report, run.v, run.latest, run.saved, run.since_name
    if saved is not None and latest is not None and 0 < saved.size <= latest.size:
        recomputed_root = v.recomputed_roots.get(latest.size) if v.tree_ok else None
        proof: list[bytes] | None = None
        if v.store is None:
            report.fail("since", "log/tile", "is missing: no consistency proof can be built")
        else:
            try:
                proof = v.store.consistency_proof(saved.size, latest.size)
            except (ValueError, RuntimeError, OSError) as exc:
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


def _step_summary(run: _Run) -> None:
    """8. Summary lines for what held."""
    report, batches = run.report, run.batches
    if not any(p.check == "manifest" for p in report.problems) and batches:
        report.passed.append(f"{len(batches)} manifests chain over leaves [0, {run.end}) without gaps or overlaps")
    if not any(p.check in ("file", "extra") for p in report.problems) and report.files:
        unlisted = "" if run.on_disk is not None else " (unlisted files not looked for)"
        whose = "their manifests' and compaction records'" if run.compacted else "their manifests'"
        report.passed.append(f"{report.files} files match {whose} SHA-256; no unlisted files{unlisted}")
    if not any(p.check in ("row", "logged-leaf") for p in report.problems) and report.rows:
        report.passed.append(f"{report.rows} rows: leaf_index and leaf_hash match their contents and the log")


# The steps of the module docstring, in order. Each reads what earlier ones left in the _Run; one that
# returns False ends the run there (a step returning None goes on).
CHECKS: tuple[Callable[[_Run], bool | None], ...] = (
    _step_key,
    _step_latest,
    _step_witnesses,
    _step_saved,
    _step_anchors,
    _step_stored_checkpoints,
    _step_file_list,
    _step_data,
    _step_tree,
    _step_since,
    _step_summary,
)


def verify_log(
    log: str | Path | Source,
    published: str | Path | Source,
    manifests: str | Path | Source | None = None,
    *,
    since: str | bytes | None = None,
    since_name: str = "--since checkpoint",
    expected_vkey: str | None = None,
    witnesses: tuple[str, ...] = (),
    min_witnesses: int = 0,
    strict: bool = False,
    site: str | Path | Source | None = None,
    progress: Progress | None = None,
) -> Report:
    """Verify a published log (see the module docstring); never raises for a bad log, reports it.

    ``log``, ``published`` (the data root holding the ``event_type=`` partitions) and ``manifests``
    (default: ``manifests/`` inside the log) are folders, URLs or sources. ``site``, when given, is
    the folder or URL holding the signed file list ``SHA256SUMS``."""
    report = Report()
    log_src, data_src = _as_source(log), _as_source(published)
    manifests_src = log_src.child("manifests") if manifests is None else _as_source(manifests)
    compactions_src = _compactions_source(log_src, manifests_src, manifests is None)
    site_src = None if site is None else _as_source(site)
    run = _Run(
        log=log_src, data=data_src, site=site_src, since=since, since_name=since_name, expected_vkey=expected_vkey,
        witnesses=witnesses, min_witnesses=min_witnesses, strict=strict, report=report,
        v=_Verifier(log_src, data_src, manifests_src, report, progress, compactions_src),
        home=_exists(log_src, STATE_FILE),
    )
    for check in CHECKS:
        if check(run) is False:
            break
    return report


def fingerprint(key: note.Verifier | str) -> str:
    """A short, readable fingerprint of a verifier key (printed on signs and pages): the first 16
    bytes of SHA-256 of the vkey text, in 8 groups of 4 hex digits."""
    text = key.vkey() if isinstance(key, note.Verifier) else key.strip()
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
    return " ".join(digest[i:i + 4] for i in range(0, 32, 4))


def _exists(src: Source, rel: str) -> bool:
    try:
        src.read(rel)
    except OSError:
        return False
    return True


def _check_extracts(report: Report, data: Source, store: TileReader, batches: list[_Batch]) -> None:
    """The portal's one-file extracts (``<table>/<table>.parquet`` next to the partitions) hold exactly
    the logged rows of their table: every row re-encodes to its ``leaf_hash``, which is the log's leaf
    hash at its ``leaf_index``, and the row count is the manifests' total for the table."""
    for table in LOGGED_TABLES:
        rel = f"{table}/{table}.parquet"
        try:
            raw = data.read(rel)
        except OSError:
            continue  # not a site, or a table without rows
        expected_rows = sum(o.rows for b in batches for o in b.outputs if o.table == table)
        try:
            rows = pq.ParquetFile(pa.BufferReader(raw)).read()
            hashes = leaf.table_leaf_hashes(table, rows.drop_columns(["leaf_index", "leaf_hash"]))
        except (pa.ArrowException, KeyError, leaf.LeafEncodingError) as exc:
            report.fail("extract", rel, f"cannot be checked against the log: {exc}")
            continue
        if rows.num_rows != expected_rows:
            report.fail("extract", rel, f"has {rows.num_rows} rows; the log holds {expected_rows} {table} rows")
            continue
        recorded = rows.column("leaf_hash").to_pylist()
        indexes = rows.column("leaf_index").to_pylist()
        bad = None
        for k, (h, hx, i) in enumerate(zip(hashes, recorded, indexes, strict=True)):
            if h.hex() != hx or not 0 <= i < store.size or store.leaf_hashes(i, i + 1)[0] != h:
                bad = k
                break
        if bad is not None:
            report.fail("extract", rel, f"row {bad} (leaf_index {indexes[bad]}) is not the row the log holds at"
                                        " that index: the extract was changed")
        else:
            report.passed.append(f"{rel}: all {rows.num_rows} rows are the logged rows (leaf hash at their index)")


def _check_state(report: Report, log_src: Source, size: int) -> None:
    """An operator's home: the tile store's committed size next to the latest checkpoint."""
    try:
        state = json.loads(log_src.read(STATE_FILE))
        stored_size = int(state["size"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        report.fail("tiles", f"log/{STATE_FILE}", f"is not readable: {exc}")
        return
    if stored_size < size:
        report.fail("tiles", f"log/{STATE_FILE}",
                    f"says the tile store holds {stored_size} leaves; the checkpoint has {size}")
    elif stored_size > size:
        # The publisher commits the tiles before it signs: an append interrupted in between.
        report.warnings.append(
            f"the tile store holds {stored_size} leaves, more than the latest checkpoint ({size}):"
            " an append was interrupted before signing; re-run the batch"
        )


def _data_prefix(site: Source | None, data: Source) -> str | None:
    """The data root's path inside the site (``data/``), for reading the signed list's paths."""
    if site is None:
        return None
    base, inner = site.describe("").rstrip("/") + "/", data.describe("").rstrip("/") + "/"
    return inner[len(base):] if inner.startswith(base) else None


def _check_file_list(report: Report, site: Source, key: note.Verifier,
                     latest: Checkpoint | None) -> site_files.FileList | None:
    """The signed ``SHA256SUMS``: signature, its checkpoint line, and every file it lists."""
    name = site_files.FILE_NAME
    try:
        text = site.read(name)
    except Missing:
        report.fail("files", name, "is missing: a published site lists its files in a signed note")
        return None
    except SourceError as exc:
        report.fail("files", name, str(exc))
        return None
    try:
        listed = site_files.open_list(text, key)
    except (note.NoteError, site_files.FileListError) as exc:
        report.fail("files", name, f"is not a file list signed by the log key {key.vkey()}: {exc}")
        return None
    if listed.origin != key.name:
        report.fail("files", name, f"names the log {listed.origin!r}, not {key.name!r}")
    if latest is not None and listed.size > latest.size:
        report.fail("files", name, f"was signed for tree size {listed.size}, beyond the latest checkpoint"
                                   f" ({latest.size}): the log was rolled back")
    elif latest is not None and listed.size == latest.size and listed.root != latest.root_hash:
        report.fail("files", name, f"binds tree size {listed.size} to root {_b64(listed.root)}, but the checkpoint"
                                   f" signs {_b64(latest.root_hash)}: the site was built from another tree")
    elif latest is not None and listed.size < latest.size:
        report.warnings.append(f"{name} was signed for tree size {listed.size}, older than the latest checkpoint"
                               f" ({latest.size}): the site was built before the last batch")
    bad = 0
    for path, digest in sorted(listed.files.items()):
        try:
            data = site.read(path)
        except Missing:
            bad += 1
            report.fail("files", path, f"is listed in {name} but missing")
            continue
        except SourceError as exc:
            bad += 1
            report.fail("files", path, str(exc))
            continue
        got = hashlib.sha256(data).hexdigest()
        if got != digest:
            bad += 1
            report.fail("files", path, f"SHA-256 is {got}, but the signed {name} says {digest}: the file was changed")
    listing = site.list()
    if listing is not None:
        for path in sorted(set(listing) - set(listed.files) - {name}):
            if path.split("/", 1)[0] in ("log", "data") or path.endswith((".html", ".json", ".csv", ".parquet")):
                bad += 1
                report.fail("files", path, f"is in the site but not in the signed {name}: it was added after signing")
    if not bad:
        report.passed.append(f"{name} is signed by the log key (tree size {listed.size}); its"
                             f" {len(listed.files)} files are all present and unchanged")
    return listed


def _check_witnesses(report: Report, text: bytes | None, latest: Checkpoint | None,
                     witnesses: tuple[str, ...], min_witnesses: int) -> None:
    need = min_witnesses or len(witnesses)
    if text is None or latest is None:
        report.fail("witness", LATEST_CHECKPOINT, "cannot be checked for cosignatures: it does not verify")
        return
    try:
        cosigned = cosignature.verify_cosignatures(text.decode("utf-8"), list(witnesses))
    except (ValueError, note.NoteError) as exc:
        report.fail("witness", LATEST_CHECKPOINT, f"its cosignatures cannot be read: {exc}")
        return
    names = sorted({c.name for c in cosigned})
    if len(names) < need:
        have = ", ".join(names) if names else "none"
        report.fail("witness", LATEST_CHECKPOINT,
                    f"carries {len(names)} valid cosignature(s) from the {len(witnesses)} witness(es) you named"
                    f" ({have}); {need} required: no witness vouches that this is the checkpoint everyone sees")
    else:
        report.passed.append(f"{LATEST_CHECKPOINT} is cosigned by {len(names)} of your witnesses: {', '.join(names)}")


def _stored_leaf_stream(store: TileReader, size: int) -> Iterator[bytes]:
    step = 1 << 16
    for start in range(0, size, step):
        yield from store.leaf_hashes(start, min(size, start + step))
