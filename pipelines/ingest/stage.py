"""Phase one of a batch: parse and validate a landed file into a local staging folder.

Staging is a pure function of the landed bytes and the registry (plus the clock, for the
"not in the future" rule). It runs in parallel, one task per file, and never touches published
state. The staging folder appears atomically (built under a temporary name, then renamed), so a
crashed stage leaves nothing that a later commit could mistake for finished work.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines import layout, storage
from pipelines.config import Settings
from pipelines.errors import SensorlogError
from pipelines.ingest import corrections
from pipelines.ingest.feeds import discovered_suffixes, parse_file
from pipelines.ingest.feeds import selection as feed_selection
from pipelines.ingest.parsing import DEFAULT_CHUNK_ROWS, ParsedChunk, UnparseableFile, parsed_schema
from pipelines.ingest.validate import GXRun, ValidationOutcome, validate_chunk
from pipelines.log import rowhash
from pipelines.quality import summary as quality_summary
from pipelines.records import QuarantineRow
from pipelines.schemas import EVENT_TABLES, QUARANTINE_SCHEMA, event_table

STAGE_COLUMNS = ("_ord", "_line", "_raw")


@dataclass
class StageResult:
    batch_id: str
    source_uri: str
    source_bytes: int
    rows_in: int = 0
    rejected_at_parse: int = 0
    rejected_at_validation: int = 0
    staged: dict[str, int] = field(default_factory=dict)  # "table/date" -> rows
    file_error: str | None = None
    validated_at: str = ""
    already_published: bool = False
    # SHA-256 of every file staging wrote next to stage.json, by name: the publisher checks them, so a
    # staged file changed, cut short or lost after staging is re-derived from the landed bytes.
    files: dict[str, str] = field(default_factory=dict)
    # The registry's deployment ids it was validated against, so staging it again derives the same batch.
    deployment_ids: list[str] = field(default_factory=list)
    # What validation found ({table: {"rows", "failed"}}, ``pipelines.quality.summary``) and the GX
    # Validation Results it stored ({"table", "key"}), for the batch's manifest.
    validation: dict = field(default_factory=dict)
    validation_results: list = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> StageResult:
        return cls(**json.loads(text))


class StaleStage(SensorlogError):
    """A staged batch that is not what staging wrote (missing, cut short, changed, or from a version
    that recorded no file hashes): derived data, to be staged again from the landed file."""

    def __init__(self, batch_id: str, reason: str):
        self.batch_id, self.reason = batch_id, reason
        super().__init__(f"staged batch {batch_id}: {reason}")


def _read_result(path: Path) -> StageResult | None:
    """The stage record at ``path``; None when it is missing or unreadable (then staging is redone)."""
    try:
        return StageResult.from_json(path.read_text())
    except (OSError, ValueError, TypeError):
        return None


def batch_id_of(uri: str) -> tuple[str, int]:
    """A batch id is the SHA-256 of the landed bytes: the same file is the same batch, anywhere."""
    return storage.sha256_of(uri)


class _Writers:
    """Lazily opened Parquet writers, one per staged (table, date) partition."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.writers: dict[tuple[str, str], pq.ParquetWriter] = {}
        self.rows: dict[str, int] = {}

    def write(self, table_name: str, table: pa.Table) -> None:
        partition_col = event_table(table_name).partition_time
        partitions = _partitions(table.column(partition_col))
        for date, mask in partitions:
            part = table if len(partitions) == 1 else table.filter(mask)
            key = (table_name, date)
            if key not in self.writers:
                path = self.folder / f"{table_name}__{date}.parquet"
                self.writers[key] = pq.ParquetWriter(path, part.schema)
            self.writers[key].write_table(part)
            self.rows[f"{table_name}/{date}"] = self.rows.get(f"{table_name}/{date}", 0) + part.num_rows

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


def _partitions(times: pa.ChunkedArray) -> list[tuple[str, pa.Array]]:
    """(UTC date as ``YYYY-MM-DD``, row mask) of each distinct day of ``times``, in order of first
    appearance. The day of each row is computed once in numpy, and ``strftime`` (about 1 µs a value)
    only formats one representative row per day, so names are what ``pc.strftime`` gives."""
    times = times.combine_chunks() if isinstance(times, pa.ChunkedArray) else times
    if times.null_count:
        dates = pc.strftime(times, format="%Y-%m-%d")
        return [(date, pc.equal(dates, date)) for date in pc.unique(dates).to_pylist()]
    micros = times.cast(pa.int64()).to_numpy()
    days = micros // 86_400_000_000
    unique, first = np.unique(days, return_index=True)
    order = np.argsort(first, kind="stable")
    names = pc.strftime(times.take(pa.array(first[order])), format="%Y-%m-%d").to_pylist()
    return [(name, pa.array(days == day)) for name, day in zip(names, unique[order], strict=True)]


def quarantine_table(rows: Iterable[QuarantineRow]) -> pa.Table:
    """Quarantine rows as a table of the quarantine file (staging's rejects, the publisher's conflicts)."""
    return pa.Table.from_pylist([r.to_dict() for r in rows], schema=QUARANTINE_SCHEMA)


# GX costs about 0.35 s of CPU per validate call whatever its size (plus about 2 s a million rows), so
# the rows of several parse chunks of a file are validated together: one call per table per file, or
# per at most this many parsed rows. Past a couple of million rows that fixed cost is a tenth of the
# call, while the pandas frame GX needs (about 150 B a row, plus its masks) only grows.
GX_BATCH_ROWS = 2_000_000
# The parsed chunks wait for their validation with every column, ``_raw`` too (about 700 B a row of
# the benchmark's NDJSON, 180 MB a chunk of DEFAULT_CHUNK_ROWS), so what they hold bounds the batch
# first: a batch is validated once it holds this much. Holding two such chunks took staging a 500 MB
# file from a peak of 1.34 GB (chunk by chunk) to 1.69 GB, past the 1.5 GB a process may take, so a
# chunk this large is validated alone, as before, and only smaller chunks (CSV and JSON arrays, at
# ROWWISE_CHUNK_ROWS; short rows; a file's last chunk) are validated together.
GX_BATCH_BYTES = 128 << 20


class _Held:
    """Parsed chunks of one file waiting to be validated together (``GX_BATCH_ROWS``, ``GX_BATCH_BYTES``)."""

    def __init__(self) -> None:
        self.chunks: list[ParsedChunk] = []
        self.rows = self.bytes = 0

    def full_with(self, chunk: ParsedChunk) -> bool:
        """Whether ``chunk`` would take the held rows past ``GX_BATCH_ROWS`` (a chunk alone never
        does: chunks are not split, and ``DEFAULT_CHUNK_ROWS`` is far below it)."""
        return bool(self.chunks) and self.rows + _size(chunk)[0] > GX_BATCH_ROWS

    def full(self) -> bool:
        """Whether the held chunks are to be validated now, before the next one is parsed (which would
        otherwise sit in memory next to them)."""
        return self.bytes >= GX_BATCH_BYTES

    def add(self, chunk: ParsedChunk) -> None:
        rows, size = _size(chunk)
        self.chunks.append(chunk)
        self.rows, self.bytes = self.rows + rows, self.bytes + size

    def take(self) -> list[ParsedChunk]:
        chunks, self.chunks, self.rows, self.bytes = self.chunks, [], 0, 0
        return chunks


def _size(chunk: ParsedChunk) -> tuple[int, int]:
    """(rows to validate, bytes held) of a parsed chunk; its parse rejects hold their raw text."""
    tables = chunk.tables.values()
    held = sum(t.nbytes for t in tables) + sum(len(r.get("raw") or "") for r in chunk.rejected)
    return sum(t.num_rows for t in tables), held


@dataclass
class _Output:
    """Where staging writes a file's rows: its staged partitions and its quarantine."""

    batch_id: str
    uri: str
    writers: _Writers
    quarantine: pq.ParquetWriter
    run: GXRun | None = None
    validation: dict = field(default_factory=dict)
    results: list = field(default_factory=list)


def _stage_held(chunks: list[ParsedChunk], known: Iterable[str], now: datetime, output: _Output) -> int:
    """Validate ``chunks`` (consecutive, of one file) with one ``validate_chunk`` call per table, then
    write chunk by chunk what validating each chunk alone wrote: its valid rows of each table in turn,
    then one quarantine write of its parse rejects and each table's rejects. Returns the rejects."""
    names = dict.fromkeys(name for chunk in chunks for name in chunk.tables)  # in order of appearance
    verdicts = {name: _validated(name, chunks, known, now, output) for name in names}
    count = 0
    for chunk in chunks:
        rejected = list(chunk.rejected)
        for name in chunk.tables:
            valid, bad = next(verdicts[name])
            rejected.extend(bad)
            count += len(bad)
            if valid.num_rows:
                output.writers.write(name, _staged(name, valid, output.batch_id))
        if rejected:
            # The parser and validation give each rejected row as a dict of its own members.
            rows = (QuarantineRow.of(output.batch_id, output.uri, r) for r in rejected)
            output.quarantine.write_table(quarantine_table(rows))
    return count


def _validated(
    name: str, chunks: list[ParsedChunk], known: Iterable[str], now: datetime, output: _Output
) -> Iterator[tuple[pa.Table, list[dict]]]:
    """(valid rows, rejected rows) of table ``name`` in each chunk holding it, in order, from one
    validation of all of them. Validation runs at once; each chunk's valid rows are filtered as it is
    asked for, so only one chunk's copy exists at a time."""
    tables = [chunk.tables[name] for chunk in chunks if name in chunk.tables]
    together = tables[0] if len(tables) == 1 else pa.concat_tables(tables)  # no copy: the chunks' buffers
    outcome = validate_chunk(event_table(name), together, known, now, output.run)
    quality_summary.add(output.validation, name, outcome.rows, outcome.failed)
    if outcome.result_key is not None:
        output.results.append({"table": name, "key": list(outcome.result_key)})
    return _per_chunk(tables, outcome)


def _per_chunk(tables: list[pa.Table], outcome: ValidationOutcome) -> Iterator[tuple[pa.Table, list[dict]]]:
    """``outcome`` of the rows of ``tables`` split back by table. Rejects follow the row order, so each
    table's are the next ones; its valid rows are filtered as validating it alone filters them."""
    bad = pa.array(outcome.rejected_ords, pa.int64())
    start = 0
    for table in tables:
        if not outcome.rejected:
            yield table, []
            continue
        is_bad = pc.is_in(table.column("_ord"), value_set=bad)
        count = pc.sum(is_bad).as_py() or 0
        yield (table.filter(pc.invert(is_bad)) if count else table), outcome.rejected[start : start + count]
        start += count


def stage_file(
    uri: str,
    settings: Settings,
    deployment_ids: Iterable[str],
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    now: datetime | None = None,
    force: bool = False,
) -> StageResult:
    """Parse + validate ``uri`` into ``staging/<batch_id>/``. Safe to call again: a file already
    staged or published is not re-read, unless ``force`` (the publisher found the staged batch
    stale) says to stage it again and replace what is there."""
    batch_id, size = batch_id_of(uri)
    final = Path(layout.staging_dir(settings, batch_id))
    if storage.exists(layout.manifest_file(settings, batch_id)):
        return StageResult(batch_id, uri, size, already_published=True)
    if not force and (existing := _read_result(final / "stage.json")) is not None:
        return existing

    # A mapping (id → commissioning instant, as ``flow.deployment_ids`` gives) also dates-checks rows.
    known = deployment_ids if isinstance(deployment_ids, Mapping) else frozenset(deployment_ids)
    now = now or datetime.now(UTC)
    result = StageResult(batch_id, uri, size, validated_at=now.isoformat(), deployment_ids=sorted(known))
    selection = feed_selection.load(settings)  # which feed reads uri (a broken setting stages nothing)
    work = final.with_name(f".tmp-{uuid.uuid4().hex}-{batch_id}")
    work.mkdir(parents=True)
    writers = _Writers(work)
    quarantine = pq.ParquetWriter(work / "quarantine.parquet", QUARANTINE_SCHEMA)
    output = _Output(batch_id, uri, writers, quarantine, GXRun(layout.quality_dir(settings), batch_id))
    try:
        try:
            if size == 0:
                raise UnparseableFile(uri, 0, "file is empty")
            # A correction names the batch it replaces by its path; one that names none it can replace
            # is quarantined whole, before a row of it is read.
            if why := corrections.check_target(settings, layout.relative(settings.landing, uri), batch_id):
                raise UnparseableFile(uri, 0, why)
            held = _Held()
            chunk: ParsedChunk | None  # None once a chunk is held, so the parser's reference is gone
            for chunk in parse_file(uri, chunk_rows, selection):
                result.rows_in += chunk.rows_in
                result.rejected_at_parse += len(chunk.rejected)
                if held.full_with(chunk):
                    result.rejected_at_validation += _stage_held(held.take(), known, now, output)
                held.add(chunk)
                chunk = None
                if held.full():
                    result.rejected_at_validation += _stage_held(held.take(), known, now, output)
                # Hand freed Arrow memory back to the OS between chunks (the allocator keeps it
                # otherwise), so a long file does not hold the high-water mark of every chunk.
                pa.default_memory_pool().release_unused()
            result.rejected_at_validation += _stage_held(held.take(), known, now, output)
            result.validation, result.validation_results = output.validation, output.results
            quality_summary.log_file(
                layout.relative(settings.landing, uri), result.rows_in, result.rejected_at_parse, result.validation
            )
        except UnparseableFile as err:
            result = StageResult(
                batch_id, uri, size, validated_at=result.validated_at, file_error=str(err),
                deployment_ids=result.deployment_ids,
            )
            writers.close()
            for path in work.glob("*__*.parquet"):
                path.unlink()
            writers = _Writers(work)
            # Rows rejected before the file failed (a gzip stream breaking mid-way) are not kept
            # apart: the file is quarantined whole, its bytes kept, and it counts no rows.
            quarantine.close()
            quarantine = pq.ParquetWriter(work / "quarantine.parquet", QUARANTINE_SCHEMA)
            row = QuarantineRow(
                batch_id=batch_id,
                source_file=uri,
                line=err.line,
                event_type=None,
                source=None,
                event_id=None,
                deployment_id=None,
                reasons=(f"file: {err.message}",),
                raw=None,
            )
            quarantine.write_table(quarantine_table([row]))
            _keep_original(uri, settings, batch_id)
    finally:
        writers.close()
        quarantine.close()
    result.staged = dict(sorted(writers.rows.items()))
    result.files = {path.name: storage.sha256_of(str(path))[0] for path in sorted(work.iterdir())}
    (work / "stage.json").write_text(result.to_json())
    return _install(work, final, result, replace=force)


def _install(work: Path, final: Path, result: StageResult, replace: bool) -> StageResult:
    """Rename the finished ``work`` folder to ``final``. Another process staging the same bytes may
    have got there first: its complete staging is as good as ours (same bytes, same registry), so
    ours is dropped, and nothing is ever removed under a publisher reading it. Only ``replace`` (the
    publisher, holding the writer lock, found the batch stale) moves an existing folder aside."""
    if not replace and (theirs := _read_result(final / "stage.json")) is not None:
        shutil.rmtree(work, ignore_errors=True)
        return theirs
    aside = final.with_name(f".old-{uuid.uuid4().hex}-{final.name}")
    try:
        if final.exists():
            os.rename(final, aside)
        os.rename(work, final)
    except OSError:
        theirs = _read_result(final / "stage.json")
        if theirs is None:
            raise
        shutil.rmtree(work, ignore_errors=True)
        return theirs
    finally:
        shutil.rmtree(aside, ignore_errors=True)
    return result


def check_stage(settings: Settings, batch_id: str) -> StageResult:
    """The stage record of ``batch_id`` once every staged file is checked against the SHA-256 staging
    recorded for it; ``StaleStage`` says what is wrong otherwise."""
    folder = Path(layout.staging_dir(settings, batch_id))
    result = _read_result(folder / "stage.json")
    if result is None:
        raise StaleStage(batch_id, "not staged (no readable stage.json)")
    if result.batch_id != batch_id:
        raise StaleStage(batch_id, f"stage.json describes batch {result.batch_id}")
    if not result.files:
        raise StaleStage(batch_id, "staged without file hashes (by an earlier version)")
    present = {path.name for path in folder.iterdir() if path.name != "stage.json"}
    if present != set(result.files):
        missing, extra = sorted(set(result.files) - present), sorted(present - set(result.files))
        raise StaleStage(batch_id, f"staged files missing {missing} or unexpected {extra}")
    for name, digest in result.files.items():
        if storage.sha256_of(str(folder / name))[0] != digest:
            raise StaleStage(batch_id, f"{name} is not the file staging wrote (SHA-256 differs)")
    return result


def find_landed(settings: Settings, batch_id: str, hints: Iterable[str | None] = ()) -> str | None:
    """A landed file whose bytes are batch ``batch_id``: one of ``hints`` (where it was staged from),
    else the first file under the landing root that hashes to it. A recovery path only: it may hash
    the whole landing zone."""
    listed = (info.uri for info in storage.list_landing(settings.landing, discovered_suffixes()).files)
    for uri in dict.fromkeys([*(h for h in hints if h), *listed]):
        if storage.exists(uri) and batch_id_of(uri)[0] == batch_id:
            return uri
    return None


def _staged(name: str, valid: pa.Table, batch_id: str) -> pa.Table:
    """Staged rows: the canonical columns (typed, not-null where required), origin columns, and the
    row's content and leaf hashes (here, in parallel workers, rather than in the single publisher)."""
    schema = event_table(name).staged_schema
    canonical = valid.select(schema.names).cast(schema)
    for column in STAGE_COLUMNS:
        canonical = canonical.append_column(
            parsed_schema(event_table(name)).field(column), valid.column(column)
        )
    canonical = canonical.append_column("content_hash", rowhash.content_hashes(name, canonical))
    return canonical.append_column(rowhash.LEAF_HASH, rowhash.published_leaf_hashes(name, canonical, batch_id))


def _keep_original(uri: str, settings: Settings, batch_id: str) -> None:
    """An unreadable file is copied whole into quarantine, so nothing is lost with it."""
    name = uri.rstrip("/").rsplit("/", 1)[-1]
    target = layout.quarantined_original(settings, batch_id, name)
    if not storage.exists(target):
        storage.write_bytes(target, storage.read_bytes(uri))


def staged_files(settings: Settings, batch_id: str) -> list[tuple[str, str, Path]]:
    """(table, date, path) of each staged partition, in the order the batch publishes them."""
    folder = Path(layout.staging_dir(settings, batch_id))
    out = []
    for path in sorted(folder.glob("*__*.parquet")):
        table, date = path.stem.split("__")
        out.append((table, date, path))
    order = {name: i for i, name in enumerate(EVENT_TABLES)}
    return sorted(out, key=lambda t: (order[t[0]], t[1]))


def load_stage(settings: Settings, batch_id: str) -> StageResult | None:
    return _read_result(Path(layout.staging_dir(settings, batch_id)) / "stage.json")
