"""De-duplication against everything published before: the ``seen`` index (a DuckDB table of every
published (source, event_id) with its content hash, batch and position), and the split of a batch's
staged rows into rows to publish, exact duplicates (dropped, counted) and conflicts (quarantined)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines import layout
from pipelines.config import Settings
from pipelines.log import rowhash
from pipelines.log.rowhash import LEAF_HASH
from pipelines.records import QuarantineRow
from pipelines.schemas import event_table


def open_index(settings: Settings) -> duckdb.DuckDBPyConnection:
    path = Path(layout.index_db(settings))
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE IF NOT EXISTS seen (source VARCHAR, event_id VARCHAR, content_hash VARCHAR,"
        " batch_id VARCHAR, ord BIGINT)"
    )
    return con


def _publish_columns(canonical: pa.Schema) -> list[str]:
    return [*canonical.names, "content_hash", LEAF_HASH, "_date"]


def _with_hashes(table_name: str, rows: pa.Table, batch_id: str) -> pa.Table:
    """Staged rows with their ``content_hash`` and leaf hash: as staged, or computed here for rows
    staged by a version that did not store them."""
    if "content_hash" not in rows.column_names:
        rows = rows.append_column("content_hash", rowhash.content_hashes(table_name, rows))
    if LEAF_HASH not in rows.column_names:
        rows = rows.append_column(LEAF_HASH, rowhash.published_leaf_hashes(table_name, rows, batch_id))
    return rows


@dataclass
class Classified:
    publish: pa.Table
    duplicates: int
    conflicts: list[QuarantineRow]


def _read_staged(paths: list[Path], columns: list[str]) -> pa.Table:
    """``columns`` of the staged partitions plus ``_date``, ordered by (``_date``, ``_ord``)."""
    parts = []
    for path in sorted(paths, key=lambda p: p.stem.split("__")[1]):
        part = pq.read_table(path, columns=columns)
        ords = part.column("_ord")
        if part.num_rows > 1 and not pc.all(pc.greater(ords[1:], ords[:-1])).as_py():
            part = part.take(pc.sort_indices(ords))  # stage writes rows in order; never rely on it
        date = path.stem.split("__")[1]
        parts.append(part.append_column("_date", pa.repeat(pa.scalar(date, pa.string()), part.num_rows)))
    return pa.concat_tables(parts).combine_chunks()


def _repeats(rows: pa.Table, key_hash: np.ndarray, content_hash: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Per row: its rank among the batch's rows with the same (source, event_id), by ``_ord`` (1 = first),
    and the content hash of the first of them (``row_number()`` and ``first_value()`` over that window).

    Repeats are rare: rows whose 64-bit key hash occurs more than once are the only candidates, and only
    they are grouped (by the exact key) and ranked in Python."""
    n = rows.num_rows
    rank = np.ones(n, np.int64)
    order = np.argsort(key_hash, kind="stable")
    same = np.flatnonzero(key_hash[order][1:] == key_hash[order][:-1])
    if not len(same):
        return pa.array(rank), content_hash
    candidates = np.unique(np.concatenate([order[same], order[same + 1]]))
    found = rows.take(pa.array(candidates)).select(["source", "event_id", "_ord"]).to_pydict()
    groups: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for source, event_id, ord_, pos in zip(
        found["source"], found["event_id"], found["_ord"], candidates.tolist(), strict=True
    ):
        groups.setdefault((source, event_id), []).append((ord_, pos))
    first = np.arange(n, dtype=np.int64)
    for group in groups.values():
        group.sort()
        for i, (_, pos) in enumerate(group):
            rank[pos], first[pos] = i + 1, group[0][1]
    return pa.array(rank), content_hash.take(pa.array(first))


def classify(
    con: duckdb.DuckDBPyConnection, table_name: str, paths: list[Path], batch_id: str, source_file: str
) -> Classified:
    """Split a batch's staged rows of one table into rows to publish, exact duplicates (dropped, counted)
    and conflicts (same source + id, different content: quarantined).

    One query per table and batch (not per partition): the ``seen`` index is scanned once per call, so
    fewer, larger calls keep the cost linear in the log's size rather than in partitions × size.
    The rows are read with pyarrow in publishing order (``_date``, ``_ord``) with the content and leaf
    hashes staging computed (``pipelines.log.rowhash``); DuckDB only sees the keys and returns per row the
    facts the decision needs, in row order. ``_raw`` is read only for conflicting rows."""
    canonical = event_table(table_name).staged_schema
    stored = [c for c in ("content_hash", LEAF_HASH) if c in pq.read_schema(paths[0]).names]
    rows = _with_hashes(table_name, _read_staged(paths, [*canonical.names, "_ord", "_line", *stored]), batch_id)
    staged_rows = rows.select(["source", "event_id", "_ord"]).append_column(
        "_pos", pa.array(np.arange(rows.num_rows, dtype=np.int64))
    )
    con.register("staged_rows", staged_rows)
    try:
        facts = con.sql(
            """
            SELECT hash(c.source, c.event_id) AS key_hash,
                   s.content_hash AS prev_hash, s.batch_id AS prev_batch, s.ord AS prev_ord
            FROM staged_rows c LEFT JOIN seen s ON c.source = s.source AND c.event_id = s.event_id
            ORDER BY c._pos
            """
        ).to_arrow_table()
    finally:
        con.unregister("staged_rows")
    del staged_rows
    content_hash = rows.column("content_hash").combine_chunks()
    rn, first_hash = _repeats(rows, facts["key_hash"].to_numpy(), content_hash)
    if facts["prev_hash"].null_count == rows.num_rows and first_hash is content_hash:
        # The common case: no row of this table was seen before, and no key repeats in the batch.
        return _publish_all(con, rows, canonical, batch_id)
    ours = pc.and_(pc.equal(facts["prev_batch"], batch_id), pc.equal(facts["prev_ord"], rows["_ord"]))
    seen_before = pc.and_(pc.is_valid(facts["prev_hash"]), pc.invert(pc.fill_null(ours, False)))
    same_as_before = pc.equal(facts["prev_hash"], content_hash)
    repeat_in_batch = pc.greater(rn, 1)
    same_as_first = pc.equal(first_hash, content_hash)
    duplicate = pc.if_else(seen_before, same_as_before, pc.and_(repeat_in_batch, same_as_first))
    conflict = pc.if_else(
        seen_before, pc.invert(same_as_before), pc.and_(repeat_in_batch, pc.invert(same_as_first))
    )
    keep = pc.invert(pc.or_(duplicate, conflict))
    conflicts = []
    if pc.any(conflict).as_py():
        where_conflict = pc.indices_nonzero(conflict)
        raw = _read_staged(paths, ["_ord", "_raw"]).column("_raw").take(where_conflict)
        found = rows.take(where_conflict).select(["_line", "source", "event_id", "deployment_id"])
        found = found.append_column("_raw", raw).append_column("prev_batch", facts["prev_batch"].take(where_conflict))
        for row in found.to_pylist():
            where = f"batch {row['prev_batch']}" if row["prev_batch"] else "earlier in this file"
            conflicts.append(
                QuarantineRow(
                    batch_id=batch_id,
                    source_file=source_file,
                    line=row["_line"],
                    event_type=event_table(table_name).cloudevent_type,
                    source=row["source"],
                    event_id=row["event_id"],
                    deployment_id=row["deployment_id"],
                    reasons=(f"conflict: (source, id) already published with different content ({where})",),
                    raw=row["_raw"],
                )
            )
    publish = rows.filter(keep)
    # A re-run after a crash finds its own rows in the index (``ours``); do not insert them twice. Every
    # other row kept has no entry yet (the lookup above ran in this transaction, after the inserts of
    # the batch's earlier tables), so no anti-join against the whole index is needed.
    _remember(con, rows.filter(pc.and_(keep, pc.is_null(facts["prev_hash"]))), batch_id)
    return Classified(publish.select(_publish_columns(canonical)), int(pc.sum(duplicate).as_py() or 0), conflicts)


def _remember(con: duckdb.DuckDBPyConnection, rows: pa.Table, batch_id: str) -> None:
    """Add the (source, id) of ``rows`` to the index."""
    con.register("new_keys", rows.select(["source", "event_id", "content_hash", "_ord"]))
    try:
        con.execute("INSERT INTO seen SELECT source, event_id, content_hash, ?, _ord FROM new_keys", [batch_id])
    finally:
        con.unregister("new_keys")


def _publish_all(con: duckdb.DuckDBPyConnection, rows: pa.Table, canonical: pa.Schema, batch_id: str) -> Classified:
    """``classify`` when every row is new: all are published and remembered; none is a duplicate."""
    _remember(con, rows, batch_id)
    return Classified(rows.select(_publish_columns(canonical)), 0, [])
