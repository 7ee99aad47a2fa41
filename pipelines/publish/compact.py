"""Compaction: merge a partition's small published files into few large ones (``sensorlog compact``).

Every batch writes one file per (table, day) it touches, so a partition collects one small file per
batch. Compaction merges a partition's files, in leaf order, into files of at most ``max_rows`` rows
(``compacted-<first leaf>-<last leaf>.parquet``: same schema, rows sorted by ``leaf_index``, written
by ``writer.write_parquet``), and records what replaced what (``pipelines.records.Compaction``, one JSON
file per compacted file in ``compactions/``, next to ``manifests/``) so that ``verify``, ``prove`` and the
log export find every manifest output's rows in the file that now holds them.

It runs under the publisher's writer lock and is a pure function of the published files: the plan
depends only on the manifests, the records and each file's rows and schema; a re-run after it
finished finds nothing to merge. The order of effects makes a crash at any point recoverable:

1. for each partition it changes, the new partition directory is built in the work area
   (``layout.compaction_pending``, hidden, on the same filesystem): hard links to the files it keeps and
   the merged files;
2. a journal listing those partitions (the names before and after) and the records is written: the
   commit point;
3. the records are written to ``compactions/``;
4. each live partition directory is exchanged with its new one in one ``renameat2(RENAME_EXCHANGE)``;
5. the records of compacted files that were merged again are deleted; the journal is deleted and the
   work area (now holding the old partition directories) is set aside until the next compaction.

``finish_interrupted`` (called by ``publish._recover``, so before every batch and every compaction)
rolls a journal forward (each step is idempotent: a partition whose names are already the new ones is
not exchanged again) and deletes a work area without one. A reader listing a partition directory sees
either all of its old files or all of its new ones: the directory it lists is never changed while it
is live. S3 has no directory to exchange, so compaction refuses an ``s3://`` published root.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines import layout, storage
from pipelines.atomicfile import write_atomic
from pipelines.config import Settings
from pipelines.errors import SensorlogError
from pipelines.locks import fsync_path
from pipelines.publish import writer
from pipelines.records import CompactedPart, Compaction, Manifest, RecordError, ReplacedFile

log = logging.getLogger(__name__)

MAX_ROWS = 500_000  # rows per compacted file: about 40 MB of zstd Parquet at the collection table's 80 bytes a row
JOURNAL = "journal.json"
RETIRED = ".retired-"  # old partition directories kept until the next compaction
_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


class CompactError(SensorlogError):
    def diagnostics(self) -> str:
        return f"compact: {self}"


@dataclass(frozen=True)
class Held:
    """A file in a partition now and the manifest outputs whose rows it holds (one for a batch's file)."""

    rel: str
    table: str
    event_date: str
    rows: int
    sha256: str
    parts: tuple[CompactedPart, ...]
    record: str | None  # the name of its compaction record, for a compacted file

    @property
    def first_leaf(self) -> int:
        return self.parts[0].first_leaf


@dataclass(frozen=True)
class Merge:
    """Files of one partition, consecutive in leaf order, to be merged into one."""

    files: tuple[Held, ...]

    @property
    def parts(self) -> tuple[CompactedPart, ...]:
        return tuple(sorted((p for f in self.files for p in f.parts), key=lambda p: p.first_leaf))

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def name(self) -> str:
        last = self.parts[-1]
        return layout.compacted_name(self.parts[0].first_leaf, last.first_leaf + last.rows - 1)

    @property
    def rel(self) -> str:
        first, last, f = self.parts[0], self.parts[-1], self.files[0]
        return layout.compacted_relpath(f.table, f.event_date, first.first_leaf, last.first_leaf + last.rows - 1)


@dataclass(frozen=True)
class CompactResult:
    """What ``compact`` did (or, with ``dry_run``, would do)."""

    partitions: int  # partitions changed
    merged: int  # files replaced
    written: int  # compacted files written
    rows: int  # rows moved into compacted files
    files_before: int
    files_after: int
    dry_run: bool
    seconds: float

    def to_dict(self) -> dict:
        return {"partitions": self.partitions, "merged": self.merged, "written": self.written, "rows": self.rows,
                "files_before": self.files_before, "files_after": self.files_after, "dry_run": self.dry_run,
                "seconds": self.seconds}


# -- what is published ----------------------------------------------------------------------------


def load_records(settings: Settings) -> dict[str, Compaction]:
    """Every compaction record, by name (``<first>-<last>``)."""
    folder = layout.compactions_dir(settings)
    records = {}
    for uri in storage.list_files(folder, (".json",)):
        name = uri.rsplit("/", 1)[-1][: -len(".json")]
        if name.startswith("."):
            continue
        try:
            records[name] = Compaction.from_json(storage.read_bytes(uri), uri)
        except RecordError as err:
            raise CompactError(f"{err} (run sensorlog verify)") from err
    return records


def current_path(records: dict[str, Compaction], path: str) -> tuple[str, int] | None:
    """Where a manifest output's rows are now, as ``(compacted file, row offset)``; None if not compacted."""
    for record in records.values():
        for offset, part in record.offsets():
            if part.path == path:
                return record.path, offset
    return None


def published_files(settings: Settings) -> dict[str, Held]:
    """Every file the manifests and compaction records say is in the partitions, by relative path."""
    held: dict[str, Held] = {}
    for uri in storage.list_files(settings.manifests, (".json",)):
        manifest = Manifest.from_json(storage.read_bytes(uri), uri)
        for o in manifest.outputs:
            held[o.path] = Held(o.path, o.table, o.event_date, o.rows, o.sha256,
                                (CompactedPart(manifest.batch_id, o.path, o.rows, o.sha256, o.first_leaf),), None)
    for name, record in sorted(load_records(settings).items()):
        for part in record.parts:
            if held.pop(part.path, None) is None:
                raise CompactError(f"compactions/{name}.json lists {part.path}, which no manifest lists or another"
                                   " record holds too (run sensorlog verify)")
        held[record.path] = Held(record.path, record.table, record.event_date, record.rows, record.sha256,
                                 record.parts, name)
    return held


def _on_disk(settings: Settings) -> set[str]:
    files = storage.list_files(settings.published, (".parquet",))
    rels = (layout.relative(settings.published, u) for u in files)
    return {r for r in rels if r.startswith(layout.PARTITION_PREFIX)}


# -- the plan -------------------------------------------------------------------------------------


def plan(settings: Settings, max_rows: int = MAX_ROWS) -> list[Merge]:
    """The merges that bound every partition's files: consecutive files (in leaf order, of one schema)
    are grouped while they fit ``max_rows``; a group of one file stays as it is."""
    held = published_files(settings)
    disk = _on_disk(settings)
    for rel in sorted(disk - set(held)):
        raise CompactError(f"{rel} is in the published partitions, but no manifest or compaction record lists it"
                           " (run sensorlog verify)")
    for rel in sorted(set(held) - disk):
        raise CompactError(f"{rel} is listed but missing from the published partitions (run sensorlog verify)")
    by_partition: dict[tuple[str, str], list[Held]] = {}
    for h in held.values():
        by_partition.setdefault((h.table, h.event_date), []).append(h)
    merges: list[Merge] = []
    for key in sorted(by_partition):
        files = sorted(by_partition[key], key=lambda h: h.first_leaf)
        if len(files) > 1:
            merges.extend(_group(settings, files, max_rows))
    return merges


def _group(settings: Settings, files: list[Held], max_rows: int) -> list[Merge]:
    groups: list[list[Held]] = []
    schemas: list[pa.Schema] = []
    for h in files:
        schema = _schema(settings, h.rel)
        if groups and schemas[-1].equals(schema) and sum(f.rows for f in groups[-1]) + h.rows <= max_rows:
            groups[-1].append(h)
        else:
            groups.append([h])
            schemas.append(schema)
    return [Merge(tuple(g)) for g in groups if len(g) > 1]


def _schema(settings: Settings, rel: str) -> pa.Schema:
    uri = storage.join(settings.published, rel)
    try:
        return pq.read_schema(uri).remove_metadata()
    except (pa.ArrowException, OSError) as err:
        raise CompactError(f"{rel}: not a readable Parquet file ({err}); run sensorlog verify") from err


# -- doing it -------------------------------------------------------------------------------------


def compact(settings: Settings, max_rows: int = MAX_ROWS, *, dry_run: bool = False) -> CompactResult:
    """Merge small published files (see the module docstring); a re-run finds nothing more to do."""
    from pipelines.publish import _recover, writer_lock  # the package imports this module

    if max_rows < 1:
        raise CompactError(f"--max-rows must be at least 1, got {max_rows}")
    if storage.is_s3(settings.published):
        raise CompactError(f"{settings.published} is on S3: a listing of objects cannot be swapped atomically, so"
                           " readers would see rows twice or not at all; compaction needs a local published root")
    started = time.perf_counter()
    with writer_lock(settings):
        _recover(settings)
        finish_interrupted(settings)  # _recover does it too; here so that compaction never depends on it
        if not dry_run:
            _drop_retired(settings)
        before = len(_on_disk(settings))
        merges = plan(settings, max_rows)
        if merges and not dry_run:
            _check_exchange(settings)
            work = _stage(settings, merges)
            _apply(settings, work)
        after = before - sum(len(m.files) for m in merges) + len(merges)
    partitions = {(m.files[0].table, m.files[0].event_date) for m in merges}
    return CompactResult(len(partitions), sum(len(m.files) for m in merges), len(merges), sum(m.rows for m in merges),
                         before, after, dry_run, round(time.perf_counter() - started, 2))


def compact_after_publish(settings: Settings) -> dict:
    """The ingest DAG's task: ``compact`` with the defaults; on an S3 published root (which it refuses)
    a no-op saying why, so that a bucket deployment's runs do not fail on it."""
    if storage.is_s3(settings.published):
        return {"skipped": f"{settings.published} is on S3: compaction needs a local published root"}
    return compact(settings).to_dict()


def _partition_of(rel: str) -> str:
    return rel.rsplit("/", 1)[0]


def _stage(settings: Settings, merges: list[Merge]) -> Path:
    """Steps 1 and 2: the new partition directories and the journal (the commit point)."""
    run_id = hashlib.sha256("\n".join(m.rel for m in merges).encode()).hexdigest()[:16]
    work = Path(layout.compaction_pending(settings)) / run_id
    shutil.rmtree(work, ignore_errors=True)
    records: list[Compaction] = []
    partitions = []
    for part_rel in sorted({_partition_of(m.rel) for m in merges}):
        live = Path(settings.published) / part_rel
        new = work / "new" / part_rel
        new.mkdir(parents=True)
        here = [m for m in merges if _partition_of(m.rel) == part_rel]
        gone = {f.rel.rsplit("/", 1)[1] for m in here for f in m.files}
        before = sorted(os.listdir(live))
        for name in before:
            if name not in gone:
                os.link(live / name, new / name)  # kept: the same file in both directories
        for merge in here:
            records.append(_merge(settings, merge, work / "new" / merge.rel))
        partitions.append({"dir": part_rel, "before": before, "after": sorted(os.listdir(new))})
    journal = {"partitions": partitions, "records": [r.to_dict() for r in records],
               "retire": sorted({f.record for m in merges for f in m.files if f.record})}
    write_atomic(work / JOURNAL, json.dumps(journal, indent=2, sort_keys=True).encode())
    return work


def _merge(settings: Settings, merge: Merge, out: Path) -> Compaction:
    """Write one merged file (after checking each input against its record) and return its record."""
    tables = []
    for f in merge.files:
        raw = storage.read_bytes(storage.join(settings.published, f.rel))
        if hashlib.sha256(raw).hexdigest() != f.sha256:
            where = f"compactions/{f.record}.json" if f.record else "its manifest"
            raise CompactError(f"{f.rel}: SHA-256 differs from {where}: the file was changed (run sensorlog verify)")
        tables.append(pq.read_table(pa.BufferReader(raw)))
    combined = pa.concat_tables(tables)
    combined = combined.take(pc.sort_indices(combined, [("leaf_index", "ascending")]))
    parts = merge.parts
    expected = np.concatenate([np.arange(p.first_leaf, p.first_leaf + p.rows, dtype=np.int64) for p in parts])
    got = combined.column("leaf_index").to_numpy(zero_copy_only=False)
    if len(got) != len(expected) or not np.array_equal(got, expected):
        raise CompactError(f"{merge.files[0].rel} and the files merged with it do not hold the leaves their records"
                           " list (run sensorlog verify)")
    digest = writer.write_parquet(str(out), combined)
    f = merge.files[0]
    replaced = tuple(ReplacedFile(h.rel, h.sha256, h.rows) for h in merge.files)
    return Compaction(f.table, f.event_date, merge.rel, combined.num_rows, digest, parts, replaced)


def _apply(settings: Settings, work: Path) -> None:
    """Steps 3 to 5, each idempotent: what the commit and ``finish_interrupted`` both run."""
    journal = json.loads((work / JOURNAL).read_bytes())
    _check_partitions(settings, work, journal)
    _write_records(settings, work, journal)
    _swap_partitions(settings, work, journal)
    _retire(settings, journal)
    _clean(work)


def _check_partitions(settings: Settings, work: Path, journal: dict) -> None:
    """Each partition must hold the names planned before or after: anything else is refused, not swapped."""
    for p in journal["partitions"]:
        live = Path(settings.published) / p["dir"]
        if set(os.listdir(live)) not in (set(p["before"]), set(p["after"])):
            raise CompactError(f"{live} changed since compaction {work.name} was planned; its journal"
                               f" {work / JOURNAL} is kept for a person to look at")


def _write_records(settings: Settings, work: Path, journal: dict) -> None:
    """Step 3 (before any swap, so that every file a reader can see is described by then)."""
    for value in journal["records"]:
        record = Compaction.from_dict(value, str(work / JOURNAL))
        storage.write_bytes(layout.compaction_record(settings, _record_name(record)), record.to_json().encode(),
                            content_type="application/json")


def _swap_partitions(settings: Settings, work: Path, journal: dict) -> None:
    """Step 4: a partition already holding its new names was swapped before a crash; it is left alone."""
    for p in journal["partitions"]:
        live, new = Path(settings.published) / p["dir"], work / "new" / p["dir"]
        if set(os.listdir(live)) != set(p["after"]):
            exchange(new, live)
            fsync_path(live.parent)
            fsync_path(new.parent)


def _retire(settings: Settings, journal: dict) -> None:
    """Step 5: the records of compacted files merged again describe files no longer published."""
    for name in journal["retire"]:
        Path(layout.compaction_record(settings, name)).unlink(missing_ok=True)
    if Path(layout.compactions_dir(settings)).is_dir():
        fsync_path(Path(layout.compactions_dir(settings)))


def _clean(work: Path) -> None:
    """The work area now holds the old partition directories. They are kept, renamed out of the way
    (``.retired-<run>``), until the next compaction: a reader whose listing of an old directory began
    before its swap finishes that listing whole (and what it then opens is there or missing, never
    half a directory). The journal goes first, so that recovery never applies this run again."""
    (work / JOURNAL).unlink()
    os.replace(work, work.with_name(f"{RETIRED}{work.name}"))


def _drop_retired(settings: Settings) -> None:
    """The old partition directories of earlier compactions (see ``_clean``)."""
    root = Path(layout.compaction_pending(settings))
    for old in sorted(root.glob(f"{RETIRED}*")) if root.is_dir() else ():
        shutil.rmtree(old)


def _record_name(record: Compaction) -> str:
    last = record.parts[-1]
    return layout.compacted_name(record.parts[0].first_leaf, last.first_leaf + last.rows - 1)


def finish_interrupted(settings: Settings) -> None:
    """Roll forward a compaction whose journal was written; delete the work of one that had not got there."""
    if storage.is_s3(settings.published):
        return
    root = Path(layout.compaction_pending(settings))
    if not root.is_dir():
        return
    for work in sorted(root.iterdir()):
        if work.name.startswith(RETIRED):
            continue  # a finished compaction's old directories: the next compaction drops them
        if (work / JOURNAL).exists():
            log.warning("compaction %s: journal committed, finishing it", work.name)
            _apply(settings, work)
        else:
            shutil.rmtree(work)


# -- the exchange ---------------------------------------------------------------------------------


def exchange(a: Path, b: Path) -> None:
    """Swap two directories in one step (Linux ``renameat2(RENAME_EXCHANGE)``): where step 4 swaps."""
    _rename_exchange(a, b)


def _rename_exchange(a: Path, b: Path) -> None:
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None) if sys.platform == "linux" else None
    if renameat2 is None:
        raise CompactError(f"this system has no renameat2 (Linux 3.15, glibc 2.28): {b} cannot be swapped atomically")
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise CompactError(f"the filesystem of {b} cannot exchange two directories atomically"
                               f" ({os.strerror(code)}): compaction refused")
        raise OSError(code, os.strerror(code), str(b))


def _check_exchange(settings: Settings) -> None:
    """Try the exchange on two empty directories before anything is written."""
    probe = Path(layout.compaction_pending(settings)) / ".probe"
    shutil.rmtree(probe, ignore_errors=True)
    (probe / "a").mkdir(parents=True)
    (probe / "b").mkdir()
    try:
        _rename_exchange(probe / "a", probe / "b")
    finally:
        shutil.rmtree(probe, ignore_errors=True)
