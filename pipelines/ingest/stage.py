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
from collections import deque
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
from pipelines.ingest.validate import GXRun, ValidationOutcome, reason_counts, validate_chunk
from pipelines.log import rowhash
from pipelines.quality import summary as quality_summary
from pipelines.quality.project import ROW_KEY
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
# the rows of a table are validated together across parse chunks and across the consecutive files of a
# group (``stage_files_together``): one call per table per group, or per at most this many rows. Past a
# couple of million rows that fixed cost is a tenth of the call, while the pandas frame GX needs (about
# 150 B a row, plus its masks) only grows.
GX_BATCH_ROWS = 2_000_000
# The parsed rows wait for their validation with every column, ``_raw`` too (about 700 B a row of the
# benchmark's NDJSON, 180 MB a chunk of DEFAULT_CHUNK_ROWS), so what they hold bounds the batch first:
# once the held rows reach this much, the tables holding most are validated until half of it is left.
# Holding two such chunks took staging a 500 MB file from a peak of 1.34 GB (chunk by chunk) to 1.69 GB,
# past the 1.5 GB a process may take, so a chunk this large is validated at once, as before; the small
# tables (deletion, access: a few thousand rows a file) wait for the next files' rows.
GX_BATCH_BYTES = 128 << 20


@dataclass(eq=False)
class _Chunk:
    """A parsed chunk whose quarantine rows wait for the verdict of each of its tables, to be written in
    one go in the order validating the chunk alone wrote them: its parse rejects, then each table's."""

    rejected: list[dict]
    names: list[str]  # its tables, in the parser's order
    held_bytes: int  # the raw text of its parse rejects
    verdicts: dict[str, list[dict]] = field(default_factory=dict)

    def complete(self) -> bool:
        return len(self.verdicts) == len(self.names)

    def quarantined(self) -> list[dict]:
        return [*self.rejected, *(row for name in self.names for row in self.verdicts[name])]


@dataclass(eq=False)
class _File:
    """One landed file being staged into its own temporary folder (installed once all its rows are written)."""

    index: int
    uri: str
    batch_id: str
    size: int
    final: Path
    work: Path
    result: StageResult
    writers: _Writers
    quarantine: pq.ParquetWriter
    validation: dict = field(default_factory=dict)
    results: list = field(default_factory=list)
    pending: deque[_Chunk] = field(default_factory=deque)  # parsed chunks not yet in the quarantine file
    max_ord: int = -1  # the largest ``_ord`` parsed so far: the next file's rows are keyed past it
    parsed: bool = False


@dataclass(eq=False)
class _Piece:
    """One table of one parsed chunk, waiting for its validation."""

    file: _File
    chunk: _Chunk
    name: str
    table: pa.Table


class _Held:
    """The pieces waiting to be validated, by table, in parse order (``GX_BATCH_ROWS``, ``GX_BATCH_BYTES``)."""

    def __init__(self) -> None:
        self.pieces: dict[str, list[_Piece]] = {}
        self.rows: dict[str, int] = {}
        self.table_bytes: dict[str, int] = {}
        self.other = 0  # parse rejects' raw text waiting with their chunks

    def full_with(self, piece: _Piece) -> bool:
        """Whether ``piece`` would take its table's held rows past ``GX_BATCH_ROWS`` (a piece alone never
        does: chunks are not split, and ``DEFAULT_CHUNK_ROWS`` is far below it)."""
        held = self.rows.get(piece.name, 0)
        return bool(self.pieces.get(piece.name)) and held + piece.table.num_rows > GX_BATCH_ROWS

    def add(self, piece: _Piece) -> None:
        self.pieces.setdefault(piece.name, []).append(piece)
        self.rows[piece.name] = self.rows.get(piece.name, 0) + piece.table.num_rows
        self.table_bytes[piece.name] = self.table_bytes.get(piece.name, 0) + piece.table.nbytes

    def bytes(self) -> int:
        return sum(self.table_bytes.values()) + self.other

    def largest(self) -> str | None:
        """The table holding the most bytes, or None when nothing is held."""
        held = [name for name, pieces in self.pieces.items() if pieces]
        return max(held, key=lambda name: self.table_bytes[name]) if held else None

    def take(self, name: str) -> list[_Piece]:
        pieces = self.pieces.pop(name, [])
        self.rows.pop(name, None)
        self.table_bytes.pop(name, None)
        return pieces

    def drop(self, file: _File) -> None:
        """Forget every piece of ``file`` (it failed)."""
        for name in list(self.pieces):
            kept = [p for p in self.pieces[name] if p.file is not file]
            if len(kept) != len(self.pieces[name]):
                self.take(name)
                for piece in kept:
                    self.add(piece)
        self.other -= sum(chunk.held_bytes for chunk in file.pending)


def _per_chunk(
    tables: list[pa.Table], keyed: list[pa.Table], outcome: ValidationOutcome
) -> Iterator[tuple[pa.Table, list[dict]]]:
    """``outcome`` of the rows of ``keyed`` (``tables`` with the row keys they were validated under) split
    back by table. Rejects follow the row order, so each table's are the next ones; its valid rows are
    filtered as validating it alone filters them, one table's copy at a time."""
    bad = pa.array(outcome.rejected_ords, pa.int64())
    start = 0
    for table, keys in zip(tables, keyed, strict=True):
        if not outcome.rejected:
            yield table, []
            continue
        is_bad = pc.is_in(keys.column(ROW_KEY), value_set=bad)
        count = pc.sum(is_bad).as_py() or 0
        yield (table.filter(pc.invert(is_bad)) if count else table), outcome.rejected[start : start + count]
        start += count


def group_run_name(batch_ids: list[str]) -> str:
    """GX's run name of a validation call over the rows of several batches: the first batch's id and how
    many batches follow it (``<batch id>-and-<n>``); a call over one batch's rows is named by its id alone.
    The name is a folder of the published quality pages, so it holds no character a URL path must escape
    (a ``+`` in a path is read as a space by S3's static website hosting)."""
    return batch_ids[0] if len(batch_ids) == 1 else f"{batch_ids[0]}-and-{len(batch_ids) - 1}"


class _Group:
    """Staging of consecutive landed files whose tables are validated together (``stage_files_together``)."""

    def __init__(self, settings: Settings, known: Iterable[str], now: datetime, chunk_rows: int, force: bool):
        self.settings, self.known, self.now, self.chunk_rows, self.force = settings, known, now, chunk_rows, force
        self.selection = feed_selection.load(settings)  # which feed reads a file (a broken setting stages nothing)
        self.quality = layout.quality_dir(settings)
        self.held = _Held()
        self.open: list[_File] = []
        self.out: dict[int, StageResult | Exception] = {}

    # -- a file's life -------------------------------------------------------------------------------

    def begin(self, index: int, uri: str, batch_id: str, size: int) -> _File | None:
        """The file to stage, or None when it is already staged or published (its result is recorded)."""
        final = Path(layout.staging_dir(self.settings, batch_id))
        if storage.exists(layout.manifest_file(self.settings, batch_id)):
            self.out[index] = StageResult(batch_id, uri, size, already_published=True)
            return None
        if not self.force and (existing := _read_result(final / "stage.json")) is not None:
            self.out[index] = existing
            return None
        result = StageResult(batch_id, uri, size, validated_at=self.now.isoformat(), deployment_ids=sorted(self.known))
        work = final.with_name(f".tmp-{uuid.uuid4().hex}-{batch_id}")
        work.mkdir(parents=True)
        file = _File(index, uri, batch_id, size, final, work, result, _Writers(work),
                     pq.ParquetWriter(work / "quarantine.parquet", QUARANTINE_SCHEMA))
        self.open.append(file)
        return file

    def parse(self, file: _File) -> None:
        """Parse ``file`` chunk by chunk, holding its tables' rows for validation."""
        try:
            if file.size == 0:
                raise UnparseableFile(file.uri, 0, "file is empty")
            # A correction names the batch it replaces by its path; one that names none it can replace
            # is quarantined whole, before a row of it is read.
            relative = layout.relative(self.settings.landing, file.uri)
            if why := corrections.check_target(self.settings, relative, file.batch_id):
                raise UnparseableFile(file.uri, 0, why)
            chunk: ParsedChunk | None  # None once its tables are held, so the parser's reference is gone
            for chunk in parse_file(file.uri, self.chunk_rows, self.selection):
                file.result.rows_in += chunk.rows_in
                file.result.rejected_at_parse += len(chunk.rejected)
                waiting = _Chunk(list(chunk.rejected), list(chunk.tables),
                                 sum(len(r.get("raw") or "") for r in chunk.rejected))
                file.pending.append(waiting)
                self.held.other += waiting.held_bytes
                for name, table in chunk.tables.items():
                    if table.num_rows:
                        file.max_ord = max(file.max_ord, pc.max(table.column(ROW_KEY)).as_py())
                    piece = _Piece(file, waiting, name, table)
                    if self.held.full_with(piece):
                        self.validate(name)
                    self.held.add(piece)
                chunk = None
                self.advance(file)  # a chunk with no rows to validate is complete already
                self.relieve()
                # Hand freed Arrow memory back to the OS between chunks (the allocator keeps it
                # otherwise), so a long file does not hold the high-water mark of every chunk.
                pa.default_memory_pool().release_unused()
            file.parsed = True
            self.advance(file)
        except UnparseableFile as err:
            self.unparseable(file, err)
        except Exception as exc:  # noqa: BLE001 - this file's failure, never the others'
            self.fail(file, exc)

    def advance(self, file: _File) -> None:
        """Write the quarantine rows of ``file``'s chunks whose tables all have their verdict, in order;
        install the file once it is parsed and written."""
        if file.index in self.out:
            return
        try:
            while file.pending and file.pending[0].complete():
                chunk = file.pending.popleft()
                self.held.other -= chunk.held_bytes
                if rows := chunk.quarantined():
                    # The parser and validation give each rejected row as a dict of its own members.
                    quarantined = (QuarantineRow.of(file.batch_id, file.uri, r) for r in rows)
                    file.quarantine.write_table(quarantine_table(quarantined))
            if file.parsed and not file.pending:
                file.result.validation, file.result.validation_results = file.validation, file.results
                quality_summary.log_file(
                    layout.relative(self.settings.landing, file.uri), file.result.rows_in,
                    file.result.rejected_at_parse, file.validation,
                )
                self.install(file)
        except Exception as exc:  # noqa: BLE001 - this file's failure, never the others'
            self.fail(file, exc)

    def unparseable(self, file: _File, err: UnparseableFile) -> None:
        """Quarantine ``file`` whole, as staging it alone does."""
        self.held.drop(file)
        file.pending.clear()
        try:
            file.result = StageResult(
                file.batch_id, file.uri, file.size, validated_at=file.result.validated_at, file_error=str(err),
                deployment_ids=file.result.deployment_ids,
            )
            file.writers.close()
            for path in file.work.glob("*__*.parquet"):
                path.unlink()
            file.writers = _Writers(file.work)
            # Rows rejected before the file failed (a gzip stream breaking mid-way) are not kept
            # apart: the file is quarantined whole, its bytes kept, and it counts no rows.
            file.quarantine.close()
            file.quarantine = pq.ParquetWriter(file.work / "quarantine.parquet", QUARANTINE_SCHEMA)
            row = QuarantineRow(
                batch_id=file.batch_id, source_file=file.uri, line=err.line, event_type=None, source=None,
                event_id=None, deployment_id=None, reasons=(f"file: {err.message}",), raw=None,
            )
            file.quarantine.write_table(quarantine_table([row]))
            _keep_original(file.uri, self.settings, file.batch_id)
            self.install(file)
        except Exception as exc:  # noqa: BLE001 - this file's failure, never the others'
            self.fail(file, exc)

    def install(self, file: _File) -> None:
        try:
            file.writers.close()
        finally:
            file.quarantine.close()
        result = file.result
        result.staged = dict(sorted(file.writers.rows.items()))
        result.files = {path.name: storage.sha256_of(str(path))[0] for path in sorted(file.work.iterdir())}
        (file.work / "stage.json").write_text(result.to_json())
        self.out[file.index] = _install(file.work, file.final, result, replace=self.force)
        self.open.remove(file)

    def fail(self, file: _File, exc: Exception) -> None:
        """``file`` failed unexpectedly: its pieces are dropped and its temporary folder removed; staging
        it alone would have raised ``exc``, which is its result."""
        self.held.drop(file)
        file.pending.clear()
        self.out[file.index] = exc
        self.discard(file)

    def discard(self, file: _File) -> None:
        for close in (file.writers.close, file.quarantine.close):
            try:
                close()
            except Exception:  # noqa: BLE001, S110 - the folder is removed anyway
                pass
        shutil.rmtree(file.work, ignore_errors=True)
        if file in self.open:
            self.open.remove(file)

    # -- validation ----------------------------------------------------------------------------------

    def relieve(self) -> None:
        """Validate the tables holding most rows' bytes, once the held rows reach ``GX_BATCH_BYTES``,
        until half of it is left, so the next chunk is not parsed next to them."""
        if self.held.bytes() < GX_BATCH_BYTES:
            return
        while self.held.bytes() > GX_BATCH_BYTES // 2 and (name := self.held.largest()) is not None:
            self.validate(name)

    def finish(self) -> None:
        """Validate everything held (the group's last file is parsed)."""
        while (name := self.held.largest()) is not None:
            self.validate(name)

    def validate(self, name: str) -> None:
        pieces = self.held.take(name)
        files = list(dict.fromkeys(piece.file for piece in pieces))
        try:
            outcome, keyed = self._validate(name, pieces, files)
        except Exception as exc:  # noqa: BLE001 - whose rows raised is found by validating each file alone
            if len(files) == 1:
                self.fail(files[0], exc)
                return
            for file in files:
                if file.index in self.out:
                    continue
                for piece in pieces:
                    if piece.file is file:
                        self.held.add(piece)
                self.validate(name)
            return
        if outcome.result_key is not None:
            for file in files:
                file.results.append({"table": name, "key": list(outcome.result_key)})
        for piece, (valid, bad) in zip(pieces, _per_chunk([p.table for p in pieces], keyed, outcome), strict=True):
            file = piece.file
            if file.index in self.out:
                continue  # failed while writing an earlier piece of this call
            try:
                if valid.num_rows:
                    file.writers.write(name, _staged(name, valid, file.batch_id))
            except Exception as exc:  # noqa: BLE001 - this file's failure, never the others'
                self.fail(file, exc)
                continue
            piece.chunk.verdicts[name] = bad
            file.result.rejected_at_validation += len(bad)
            counts = reason_counts(row["reasons"] for row in bad)
            quality_summary.add(file.validation, name, piece.table.num_rows, counts)
        for file in files:
            self.advance(file)

    def _validate(
        self, name: str, pieces: list[_Piece], files: list[_File]
    ) -> tuple[ValidationOutcome, list[pa.Table]]:
        """One ``validate_chunk`` call over ``pieces`` and the tables as it saw them. The rows of several
        files are keyed apart (``_ord`` restarts in each file): each file's ``_ord`` plus an offset past
        the previous file's largest, so GX's failing-row keys and every other check name one row each."""
        tables = [piece.table for piece in pieces]
        if len(files) == 1:
            keyed, run = tables, GXRun(self.quality, files[0].batch_id)
        else:
            offsets, at = {}, 0
            for file in files:
                offsets[file.index] = at
                at += file.max_ord + 1
            keyed = []
            for piece in pieces:
                position = piece.table.schema.get_field_index(ROW_KEY)
                shifted = pc.add(piece.table.column(ROW_KEY), pa.scalar(offsets[piece.file.index], pa.int64()))
                keyed.append(piece.table.set_column(position, ROW_KEY, shifted))
            batches = tuple((file.batch_id, offsets[file.index]) for file in files)
            run = GXRun(self.quality, group_run_name([file.batch_id for file in files]), batches)
        together = keyed[0] if len(keyed) == 1 else pa.concat_tables(keyed)  # no copy: the chunks' buffers
        return validate_chunk(event_table(name), together, self.known, self.now, run), keyed


def stage_files_together(
    uris: Iterable[str],
    settings: Settings,
    deployment_ids: Iterable[str],
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    now: datetime | None = None,
    force: bool = False,
) -> list[StageResult | Exception]:
    """Stage consecutive files as ``stage_file`` stages each, validating each table's rows of all of them
    together (one GX call per table, within ``GX_BATCH_ROWS`` and ``GX_BATCH_BYTES``). Each file gets the
    staging folder ``stage_file`` gives it alone (the same staged rows, quarantine and counts; only its
    stored GX results differ: a call over several files' rows is one result that each of them names);
    each folder appears atomically once its rows are written. The results are in the order of ``uris``:
    a file that failed unexpectedly has the exception staging it alone would have raised, and the others
    are staged regardless."""
    # A mapping (id → commissioning instant, as ``flow.deployment_ids`` gives) also dates-checks rows.
    known = deployment_ids if isinstance(deployment_ids, Mapping) else frozenset(deployment_ids)
    group = _Group(settings, known, now or datetime.now(UTC), chunk_rows, force)
    uris = list(uris)
    first: dict[str, int] = {}  # batch id → the index staging it (the same bytes landed twice are one batch)
    same: dict[int, int] = {}
    try:
        for index, uri in enumerate(uris):
            try:
                batch_id, size = batch_id_of(uri)
                if batch_id in first:
                    same[index] = first[batch_id]
                    continue
                first[batch_id] = index
                file = group.begin(index, uri, batch_id, size)
            except Exception as exc:  # noqa: BLE001 - this file's failure, never the others'
                group.out[index] = exc
                continue
            if file is not None:
                group.parse(file)
        group.finish()
        for file in list(group.open):  # (every file is installed or failed by now; this is a safeguard)
            group.fail(file, RuntimeError(f"staging of {file.uri} did not finish"))
    finally:
        for file in list(group.open):  # an interrupt: nothing half-staged is left behind
            group.discard(file)
    for index, original in same.items():
        group.out[index] = group.out[original]
    return [group.out[index] for index in range(len(uris))]


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
    (result,) = stage_files_together([uri], settings, deployment_ids, chunk_rows, now, force)
    if isinstance(result, Exception):
        raise result
    return result


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
