"""De-duplication against everything published before: the ``seen`` index (a DuckDB table of every
published (source, event_id) with its content hash, batch and position, filtered by sorted runs of key
hashes), and the split of a batch's staged rows into rows to publish, exact duplicates (dropped,
counted) and conflicts (quarantined)."""

from __future__ import annotations

import platform
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
from pipelines.publish.keyruns import KeyRuns
from pipelines.records import QuarantineRow
from pipelines.schemas import event_table

# DuckDB's hash of the key: 0.06 s per million rows (a SHA-256 prefix costs 0.8 s). It is stable for one
# DuckDB build, not across versions, so the index records which one computed its hashes and
# recomputes them (one pass over the index) when that changes.
KEY_HASH_SQL = "hash(source, event_id)"


def _hash_function() -> str:
    return f"duckdb {duckdb.__version__} hash(source, event_id) {platform.machine()}"


class SeenIndex:
    """Every published (source, event_id) with its content hash, batch and position (DuckDB table
    ``seen``, one transaction per batch), and the sorted runs of its key hashes (``keyruns``) that tell
    a batch's new keys from possible repeats without reading the table: only possible repeats are
    looked up, so a batch of new rows costs the same in a home of a million rows as of a hundred million."""

    def __init__(self, settings: Settings) -> None:
        path = Path(layout.index_db(settings))
        path.parent.mkdir(parents=True, exist_ok=True)
        self.con = duckdb.connect(str(path))
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS seen (source VARCHAR, event_id VARCHAR, content_hash VARCHAR,"
            " batch_id VARCHAR, ord BIGINT, key_hash UBIGINT)"
        )
        self.con.execute("CREATE TABLE IF NOT EXISTS index_meta (name VARCHAR PRIMARY KEY, value VARCHAR)")
        self.keys = KeyRuns(Path(layout.seen_keys_dir(settings)), _hash_function())
        self._new: list[np.ndarray] = []  # key hashes inserted by the open transaction
        self._upgrade()

    def _upgrade(self) -> None:
        """Bring an index written by an earlier version (no ``key_hash``), or whose hashes another DuckDB
        computed, up to date, and rebuild the runs when they do not cover every key of the table."""
        columns = {r[0] for r in self.con.execute("DESCRIBE seen").fetchall()}
        # fetchall, not fetchone: DuckDB refuses the next statement while a result is unfinished.
        found = self.con.execute("SELECT value FROM index_meta WHERE name = 'key_hash'").fetchall()
        if "key_hash" not in columns or found != [(_hash_function(),)]:
            self.con.execute("BEGIN")
            if "key_hash" not in columns:
                self.con.execute("ALTER TABLE seen ADD COLUMN key_hash UBIGINT")
            self.con.execute(f"UPDATE seen SET key_hash = {KEY_HASH_SQL}")
            self.con.execute("INSERT OR REPLACE INTO index_meta VALUES ('key_hash', ?)", [_hash_function()])
            self.con.execute("COMMIT")
            self.keys.valid = False
        [(rows,)] = self.con.execute("SELECT count(*) FROM seen").fetchall()
        if not self.keys.valid or self.keys.total < rows:
            self.keys.rebuild(self.con.sql("SELECT key_hash FROM seen").fetchnumpy()["key_hash"])

    def begin(self) -> None:
        self.con.execute("BEGIN")
        self._new = []

    def commit(self) -> None:
        # The runs first: they must never miss a key the table holds (see keyruns).
        if self._new:
            self.keys.add(np.concatenate(self._new))
        self.con.execute("COMMIT")
        self._new = []

    def rollback(self) -> None:
        self.con.execute("ROLLBACK")
        self._new = []

    def close(self) -> None:
        self.con.close()

    def key_hashes(self, rows: pa.Table) -> np.ndarray:
        """The key hash of each row of ``rows`` (which has ``source`` and ``event_id``), in row order."""
        self.con.register("keys_", rows.select(["source", "event_id"]))
        try:
            return self.con.sql(f"SELECT {KEY_HASH_SQL} AS h FROM keys_").fetchnumpy()["h"]
        finally:
            self.con.unregister("keys_")

    def maybe_seen(self, key_hash: np.ndarray) -> np.ndarray:
        """Per key: False when it is certainly not in the index (nor inserted earlier in this transaction)."""
        maybe = self.keys.contains(key_hash)
        if self._new:
            maybe |= np.isin(key_hash, np.concatenate(self._new))
        return maybe

    def previous(self, rows: pa.Table, key_hash: np.ndarray, candidates: np.ndarray) -> pa.Table:
        """Per row of ``rows``: the content hash, batch and position it was published with before
        (``prev_hash``, ``prev_batch``, ``prev_ord``; null for a row not in the index). Only the
        ``candidates`` positions are looked up, by their key hash and then their exact key."""
        n = rows.num_rows
        where = np.flatnonzero(candidates)
        if not len(where):
            nulls = {"prev_hash": pa.string(), "prev_batch": pa.string(), "prev_ord": pa.int64()}
            return pa.table({name: pa.nulls(n, kind) for name, kind in nulls.items()})
        probe = rows.take(pa.array(where)).select(["source", "event_id"])
        probe = probe.append_column("key_hash", pa.array(key_hash[where])).append_column("_pos", pa.array(where))
        self.con.register("probe_", probe)
        try:
            found = self.con.sql(
                """
                SELECT p._pos, s.content_hash AS prev_hash, s.batch_id AS prev_batch, s.ord AS prev_ord
                FROM probe_ p JOIN seen s
                  ON s.key_hash = p.key_hash AND s.source = p.source AND s.event_id = p.event_id
                """
            ).to_arrow_table()
        finally:
            self.con.unregister("probe_")
        slot = np.full(n, -1, np.int64)  # row position -> its row in ``found``, -1 for none
        slot[found["_pos"].to_numpy()] = np.arange(found.num_rows)
        take = pa.array(slot, mask=slot < 0)
        return found.select(["prev_hash", "prev_batch", "prev_ord"]).take(take)

    def remember(self, rows: pa.Table, key_hash: np.ndarray, batch_id: str) -> None:
        """Add the (source, id) of ``rows`` (with their key hashes) to the index."""
        keys = rows.select(["source", "event_id", "content_hash", "_ord"]).append_column(
            "key_hash", pa.array(key_hash, pa.uint64())
        )
        self.con.register("new_keys", keys)
        try:
            self.con.execute(
                "INSERT INTO seen SELECT source, event_id, content_hash, ?, _ord, key_hash FROM new_keys", [batch_id]
            )
        finally:
            self.con.unregister("new_keys")
        self._new.append(key_hash)


    def forget(self, rows: pa.Table, key_hash: np.ndarray, batches: list[str]) -> None:
        """Drop the index entries of ``rows``' keys that ``batches`` published: a correction replaces
        them (``pipelines.ingest.corrections``), so its rows are the keys' publication from now on.
        The key-hash runs keep the hashes: they only say which keys may be seen."""
        probe = rows.select(["source", "event_id"]).append_column("key_hash", pa.array(key_hash, pa.uint64()))
        self.con.register("forget_", probe)
        try:
            self.con.execute(
                "DELETE FROM seen s USING forget_ f WHERE s.key_hash = f.key_hash AND s.source = f.source"
                " AND s.event_id = f.event_id AND list_contains(?, s.batch_id)",
                [batches],
            )
        finally:
            self.con.unregister("forget_")


def open_index(settings: Settings) -> SeenIndex:
    return SeenIndex(settings)


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
    index: SeenIndex, table_name: str, paths: list[Path], batch_id: str, source_file: str,
    supersedes: tuple[str, ...] = (),
) -> Classified:
    """Split a batch's staged rows of one table into rows to publish, exact duplicates (dropped, counted)
    and conflicts (same source + id, different content: quarantined). A row whose key only the batches
    ``supersedes`` published (a correction's) is new: it replaces theirs, identical or not.

    The rows are read with pyarrow in publishing order (``_date``, ``_ord``) with the content and leaf
    hashes staging computed (``pipelines.log.rowhash``). Only rows whose key hash the index may hold are
    looked up in it (``SeenIndex.previous``), so the cost follows the batch, not the log. ``_raw`` is
    read only for conflicting rows."""
    canonical = event_table(table_name).staged_schema
    stored = [c for c in ("content_hash", LEAF_HASH) if c in pq.read_schema(paths[0]).names]
    rows = _with_hashes(table_name, _read_staged(paths, [*canonical.names, "_ord", "_line", *stored]), batch_id)
    key_hash = index.key_hashes(rows)
    facts = index.previous(rows, key_hash, index.maybe_seen(key_hash))
    if supersedes and facts["prev_batch"].null_count < rows.num_rows:
        replaced = pc.fill_null(pc.is_in(facts["prev_batch"], value_set=pa.array(supersedes)), False)
        if pc.any(replaced).as_py():
            mask = replaced.to_numpy(zero_copy_only=False)
            index.forget(rows.filter(replaced), key_hash[mask], list(supersedes))
            facts = index.previous(rows, key_hash, index.maybe_seen(key_hash))
    content_hash = rows.column("content_hash").combine_chunks()
    rn, first_hash = _repeats(rows, key_hash, content_hash)
    if facts["prev_hash"].null_count == rows.num_rows and first_hash is content_hash:
        # The common case: no row of this table was seen before, and no key repeats in the batch.
        return _publish_all(index, rows, key_hash, canonical, batch_id)
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
            # A key this batch published itself (an earlier table of the file, or the first run of a
            # batch that crashed after the index commit) is "earlier in this file" either way, so a
            # re-run writes the same quarantine as the run it repeats.
            earlier = row["prev_batch"] in (None, batch_id)
            where = "earlier in this file" if earlier else f"batch {row['prev_batch']}"
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
    new = pc.and_(keep, pc.is_null(facts["prev_hash"]))
    index.remember(rows.filter(new), key_hash[new.to_numpy(zero_copy_only=False)], batch_id)
    return Classified(publish.select(_publish_columns(canonical)), int(pc.sum(duplicate).as_py() or 0), conflicts)


def _publish_all(
    index: SeenIndex, rows: pa.Table, key_hash: np.ndarray, canonical: pa.Schema, batch_id: str
) -> Classified:
    """``classify`` when every row is new: all are published and remembered; none is a duplicate."""
    index.remember(rows, key_hash, batch_id)
    return Classified(rows.select(_publish_columns(canonical)), 0, [])
