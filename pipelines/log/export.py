"""Write the log as a complete static tlog-tiles log that anyone can fetch and check: what
``sensorlog log export`` and the portal's ``log/`` folder hold.

Under the output's ``log/`` (paths are c2sp.org/tlog-tiles wherever the spec names them)::

    checkpoint                  latest signed checkpoint, with any witness cosignatures
    checkpoints/<size>          every checkpoint the log signed, by tree size
    log.vkey                    the log's verifier key (signed-note format)
    tile/<L>/<N>[.p/<W>]        hash tiles: every full tile, and the partial tiles of every signed size
    tile/entries/<N>[.p/<W>]    entry bundles: each entry is a leaf's bytes (docs/log-format.md)
    manifests/<batch_id>.json   the batch manifests (each is also a leaf, in the bundles)
    compactions/<first>-<last>.json  what each compacted data file replaced (``pipelines.publish.compact``)
    batches.jsonl               the batch index: one {"batch_id", "start", "count"} line per batch

and, with ``data``, the logged Parquet files themselves under ``<data>/event_type=…/…`` (the paths
the manifests give, relative to the data root), byte for byte.

The entries are re-derived from the published Parquet in leaf order and each is checked against the
signed tree's level-0 tile before it is written, so an export never serves an entry the log did not
sign: a published row that no longer matches makes the export fail, naming it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import storage
from pipelines.config import Settings
from pipelines.errors import SensorlogError
from pipelines.log import writer
from pipelines.records import Compaction, Manifest, Output
from pipelines.site import Site
from pipelines.tlog import bundles, leaf, merkle
from pipelines.tlog.checkpoint import open_checkpoint
from pipelines.tlog.layout import BATCHES, CHECKPOINT, CHECKPOINTS, VKEY, checkpoint_path
from pipelines.tlog.tiles import TILE_HEIGHT, TILE_WIDTH, TileReader, tile_path

LOG_DIR = "log"
DATA_DIR = "data"
MANIFESTS = "manifests"
COMPACTIONS = "compactions"


class ExportError(SensorlogError, RuntimeError):
    pass


@dataclass(frozen=True)
class ExportResult:
    size: int
    entries: int
    files: int
    data_files: int
    seconds: float


@dataclass(frozen=True)
class BatchEntry:
    """A manifest as the log holds it: its leaf range and its outputs (files of rows)."""

    name: str
    manifest: Manifest
    first: int
    manifest_leaf: int


def _committed_tiles(size: int, sizes: list[int]) -> Iterator[tuple[str, int, int, int]]:
    """``(relative path, level, index, width)`` of the tiles a static log must serve for ``size``:
    every full tile, and each level's partial tile for every signed size (tlog-tiles: "Logs MUST serve
    partial tiles corresponding to tree sizes for which a checkpoint was produced")."""
    seen: set[str] = set()
    level = 0
    while size >> (TILE_HEIGHT * level):
        count = size >> (TILE_HEIGHT * level)
        for index in range(count // TILE_WIDTH):
            yield tile_path(level, index), level, index, TILE_WIDTH
        for s in sizes:
            c = s >> (TILE_HEIGHT * level)
            index, width = divmod(c, TILE_WIDTH)
            if width:
                rel = tile_path(level, index, width)
                if rel not in seen:
                    seen.add(rel)
                    yield rel, level, index, width
        level += 1


def signed_sizes(log_dir: Path, size: int) -> list[int]:
    """Every tree size up to ``size`` for which the log kept a signed checkpoint."""
    folder = log_dir / CHECKPOINTS
    names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    return sorted({int(n) for n in names if n.isdigit() and 0 < int(n) <= size} | ({size} if size else set()))


def load_batches(manifests: str, size: int) -> list[BatchEntry]:
    """The manifests whose leaves lie in ``[0, size)``, in leaf order."""
    out = []
    for uri in storage.list_files(manifests, (".json",)):
        manifest = Manifest.from_json(storage.read_bytes(uri), uri)
        leaves = manifest.leaves
        if leaves.manifest_leaf < size:
            out.append(BatchEntry(uri.rsplit("/", 1)[-1], manifest, leaves.first, leaves.manifest_leaf))
    out.sort(key=lambda b: b.first)
    return out


class OutputRows:
    """Each manifest output's rows: read from its own file, or sliced from the compacted file that holds
    them now (``pipelines.publish.compact``), which is read once and kept until its last output."""

    def __init__(self, read: Callable[[str], bytes], records: Mapping[str, Compaction] | None = None) -> None:
        self.read = read
        records = records or {}
        self.where = {(p.batch_id, p.path): (r, k) for r in records.values() for k, p in r.offsets()}
        self.remaining = {r.path: len(r.parts) for r in records.values()}
        self.cache: dict[str, pa.Table] = {}

    def __call__(self, batch_id: str, out: Output) -> pa.Table:
        held = self.where.get((batch_id, out.path))
        if held is None:
            return pq.ParquetFile(pa.BufferReader(self.read(out.path))).read()
        record, offset = held
        table = self.cache.get(record.path)
        if table is None:
            table = self.cache[record.path] = pq.ParquetFile(pa.BufferReader(self.read(record.path))).read()
        self.remaining[record.path] -= 1
        if not self.remaining[record.path]:
            del self.cache[record.path]
        return table.slice(offset, out.rows)


def batch_entries(read: Callable[[str], bytes], batch: BatchEntry,
                  rows: OutputRows | None = None) -> Iterator[tuple[int, list[bytes], str]]:
    """``(first leaf, leaf bytes, what)`` of a batch's rows, then its manifest leaf. Consecutive files
    of one table are encoded together: the encoder's fixed cost per call dominates small partitions."""
    rows = rows or OutputRows(read)
    group: list[tuple[Output, pa.Table]] = []

    def encode() -> Iterator[tuple[int, list[bytes], str]]:
        tables = [t for _, t in group]
        combined = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        encoded = leaf.table_leaf_bytes(group[0][0].table, combined)
        at = 0
        for out, t in group:
            yield out.first_leaf, encoded[at:at + t.num_rows], out.path
            at += t.num_rows
        group.clear()

    for out in batch.manifest.outputs:
        table = rows(batch.manifest.batch_id, out)
        if group and (group[0][0].table != out.table or not group[0][1].schema.equals(table.schema)):
            yield from encode()
        group.append((out, table))
    if group:
        yield from encode()
    yield batch.manifest_leaf, [leaf.manifest_leaf_bytes(batch.manifest.to_dict())], f"manifests/{batch.name}"


def export_log(settings: Settings, site: Site, *, data: str | None = DATA_DIR, log: str = LOG_DIR) -> ExportResult:
    """Write the static log (and, with ``data``, the logged Parquet files) into ``site``."""
    started = time.perf_counter()
    log_dir = Path(settings.log)
    written = len(site.files)
    try:
        vkey = (log_dir / VKEY).read_text().strip()
        signed = (log_dir / CHECKPOINT).read_text()
    except FileNotFoundError as exc:
        raise ExportError(f"{log_dir} holds no signed log yet ({exc.filename} is missing)") from exc
    head = open_checkpoint(signed, vkey)
    size = head.size
    sizes = signed_sizes(log_dir, size)

    site.write(f"{log}/{VKEY}", vkey + "\n")
    site.write(f"{log}/{CHECKPOINT}", signed)
    for s in sizes:
        path = log_dir / checkpoint_path(s)
        if path.exists():
            site.write(f"{log}/{checkpoint_path(s)}", path.read_bytes())

    tiles = TileReader(lambda rel: (log_dir / rel).read_bytes(), size, head.root_hash, str(log_dir))
    for rel, level, index, width in _committed_tiles(size, sizes):
        try:
            data_ = (log_dir / rel).read_bytes()
        except FileNotFoundError:
            if width == TILE_WIDTH:
                raise ExportError(f"{log_dir}/{rel} is missing: the log's tile store is incomplete") from None
            data_ = (log_dir / tile_path(level, index)).read_bytes()[: width * merkle.HASH_SIZE]
        site.write(f"{log}/{rel}", data_)

    batches = load_batches(settings.manifests, size)
    for b in batches:
        site.write(f"{log}/{MANIFESTS}/{b.name}", storage.read_bytes(storage.join(settings.manifests, b.name)))
    compacted = _compaction_records(settings)
    for name, record in compacted.items():
        site.write(f"{log}/{COMPACTIONS}/{name}.json", record.to_json())
    records = writer.batch_index(log_dir)
    site.write(f"{log}/{BATCHES}", "".join(
        json.dumps({"batch_id": r.batch_id, "start": r.start, "count": r.count}) + "\n"
        for r in records if r.end <= size
    ))

    data_files = 0

    def read(path: str) -> bytes:
        """A logged file's bytes, copied into the site's data folder as they are read."""
        nonlocal data_files
        raw = storage.read_bytes(storage.join(settings.published, path))
        if data is not None:
            site.write(f"{data}/{path}", raw)
            data_files += 1
        return raw

    entries = _write_bundles(OutputRows(read, compacted), site, log, batches, tiles, size, sizes)
    site.finish()
    return ExportResult(size, entries, len(site.files) - written, data_files, round(time.perf_counter() - started, 2))


def _compaction_records(settings: Settings) -> dict[str, Compaction]:
    """The compaction records, by name: the site serves them next to the manifests (``log/compactions/``)."""
    from pipelines.publish import compact  # publishing's module: only the export needs it here

    try:
        return compact.load_records(settings)
    except compact.CompactError as err:
        raise ExportError(str(err)) from err


def _write_bundles(rows: OutputRows, site: Site, log: str, batches: list[BatchEntry], tiles: TileReader,
                   size: int, sizes: list[int]) -> int:
    """Entry bundles for ``[0, size)``, each entry checked against the signed level-0 tile."""
    pending: list[bytes] = []
    next_index = 0
    partial_widths: dict[int, set[int]] = {}
    for s in sizes:
        index, width = divmod(s, TILE_WIDTH)
        if width:
            partial_widths.setdefault(index, set()).add(width)

    def flush_full() -> None:
        nonlocal pending
        while len(pending) >= TILE_WIDTH:
            bundle_index = (next_index - len(pending)) // TILE_WIDTH
            chunk, pending = pending[:TILE_WIDTH], pending[TILE_WIDTH:]
            site.write(f"{log}/{bundles.bundle_path(bundle_index)}", bundles.encode_bundle(chunk))
            for width in sorted(partial_widths.get(bundle_index, ())):
                site.write(f"{log}/{bundles.bundle_path(bundle_index, width)}", bundles.encode_bundle(chunk[:width]))

    for batch in batches:
        for first, entries, what in batch_entries(rows.read, batch, rows):
            if first != next_index:
                raise ExportError(f"{what} starts at leaf {first}, but the previous leaves end at {next_index}")
            stored = tiles.leaf_hashes(first, first + len(entries))
            for k, (entry, logged) in enumerate(zip(entries, stored, strict=True)):
                if merkle.leaf_hash(entry) != logged:
                    raise ExportError(
                        f"{what}: leaf {first + k} does not hash to the leaf hash the log signed; the published"
                        " data changed (run sensorlog verify)"
                    )
                if len(entry) > bundles.MAX_ENTRY:
                    raise ExportError(f"{what}: leaf {first + k} is {len(entry)} bytes, too long for an entry bundle")
            pending.extend(entries)
            next_index += len(entries)
            flush_full()
    if next_index != size:
        raise ExportError(f"the manifests account for {next_index} leaves; the signed checkpoint has {size}")
    if pending:
        bundle_index = (next_index - len(pending)) // TILE_WIDTH
        for width in sorted(partial_widths.get(bundle_index, set()) | {len(pending)}):
            site.write(f"{log}/{bundles.bundle_path(bundle_index, width)}", bundles.encode_bundle(pending[:width]))
    return next_index


def export_to(settings: Settings, out: str, *, with_data: bool = False) -> ExportResult:
    """``sensorlog log export --out DIR|s3://…``: the log alone (or with its data) at ``out``."""
    return export_log(settings, Site(out), data=DATA_DIR if with_data else None)
