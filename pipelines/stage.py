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
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines import layout, rowhash, storage
from pipelines.config import Settings
from pipelines.ingest import DEFAULT_CHUNK_ROWS, UnparseableFile, parse_file, parsed_schema
from pipelines.schemas import QUARANTINE_SCHEMA, event_table
from pipelines.validate import validate_chunk

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

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> StageResult:
        return cls(**json.loads(text))


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


def _quarantine_table(rows: Iterable[dict], batch_id: str, source_uri: str) -> pa.Table:
    rows = [{"batch_id": batch_id, "source_file": source_uri, **r} for r in rows]
    return pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA)


def stage_file(
    uri: str,
    settings: Settings,
    deployment_ids: Iterable[str],
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    now: datetime | None = None,
) -> StageResult:
    """Parse + validate ``uri`` into ``staging/<batch_id>/``. Safe to call again: a file already
    staged or published is not re-read."""
    batch_id, size = batch_id_of(uri)
    final = Path(layout.staging_dir(settings, batch_id))
    if storage.exists(layout.manifest_file(settings, batch_id)):
        return StageResult(batch_id, uri, size, already_published=True)
    if (final / "stage.json").exists():
        return StageResult.from_json((final / "stage.json").read_text())

    known = frozenset(deployment_ids)
    now = now or datetime.now(UTC)
    result = StageResult(batch_id, uri, size, validated_at=now.isoformat())
    work = final.with_name(f".tmp-{uuid.uuid4().hex}-{batch_id}")
    work.mkdir(parents=True)
    writers = _Writers(work)
    quarantine = pq.ParquetWriter(work / "quarantine.parquet", QUARANTINE_SCHEMA)
    try:
        try:
            if size == 0:
                raise UnparseableFile(uri, 0, "file is empty")
            for chunk in parse_file(uri, chunk_rows):
                result.rows_in += chunk.rows_in
                result.rejected_at_parse += len(chunk.rejected)
                rejected = list(chunk.rejected)
                for name, table in chunk.tables.items():
                    outcome = validate_chunk(event_table(name), table, known, now)
                    rejected.extend(outcome.rejected)
                    result.rejected_at_validation += len(outcome.rejected)
                    valid = table
                    if len(outcome.valid_ords) != table.num_rows:  # valid_ords is a subset of the rows
                        valid = table.filter(pc.is_in(table.column("_ord"), outcome.valid_ords))
                    if valid.num_rows:
                        writers.write(name, _staged(name, valid, batch_id))
                if rejected:
                    quarantine.write_table(_quarantine_table(rejected, batch_id, uri))
                chunk = table = valid = None
                # Hand freed Arrow memory back to the OS between chunks (the allocator keeps it
                # otherwise), so a long file does not hold the high-water mark of every chunk.
                pa.default_memory_pool().release_unused()
        except UnparseableFile as err:
            result = StageResult(batch_id, uri, size, validated_at=result.validated_at, file_error=str(err))
            writers.close()
            for path in work.glob("*__*.parquet"):
                path.unlink()
            writers = _Writers(work)
            row = {
                "line": err.line,
                "event_type": None,
                "source": None,
                "event_id": None,
                "deployment_id": None,
                "reasons": [f"file: {err.message}"],
                "raw": None,
            }
            quarantine.write_table(_quarantine_table([row], batch_id, uri))
            _keep_original(uri, settings, batch_id)
    finally:
        writers.close()
        quarantine.close()
    result.staged = dict(sorted(writers.rows.items()))
    (work / "stage.json").write_text(result.to_json())
    shutil.rmtree(final, ignore_errors=True)
    os.replace(work, final)
    return result


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
    order = {"collection": 0, "deletion": 1, "access": 2, "lifecycle": 3}
    return sorted(out, key=lambda t: (order[t[0]], t[1]))


def load_stage(settings: Settings, batch_id: str) -> StageResult | None:
    path = Path(layout.staging_dir(settings, batch_id)) / "stage.json"
    return StageResult.from_json(path.read_text()) if path.exists() else None
