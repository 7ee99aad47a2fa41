"""The two hashes every published row carries, computed where the rows are staged.

* ``content_hash``: SHA-256 (hex) of the table name and the row's canonical fields. The publisher's
  index compares it to tell an exact re-send (dropped) from a conflicting one (quarantined).
* the RFC 9162 leaf hash of the row exactly as it is published (canonical fields, ``content_hash``
  and ``batch_id``; the leaf encoding is ``pipelines.tlog.leaf``).

Both depend only on the row and its batch (the SHA-256 of the landed file), never on the log, so
staging computes them in parallel workers and the single publisher only reads them back.
"""

from __future__ import annotations

import threading

import duckdb
import numpy as np
import pyarrow as pa

from pipelines.schemas import event_table
from pipelines.tlog import leaf

LEAF_HASH = "_leaf_hash"  # the staged column holding each row's leaf hash (binary, 32 bytes)
_local = threading.local()


def _content_hash_sql(schema: pa.Schema) -> str:
    # Timestamps enter as epoch microseconds so the hash never depends on a session time zone;
    # chr(0) marks NULL so that NULL and "" differ.
    parts = []
    for f in schema:
        if pa.types.is_timestamp(f.type):
            parts.append(f'coalesce(CAST(epoch_us("{f.name}") AS VARCHAR), chr(0))')
        else:
            parts.append(f'coalesce(CAST("{f.name}" AS VARCHAR), chr(0))')
    return "sha256(concat_ws(chr(31), ?, " + ", ".join(parts) + "))"


def content_hashes(table_name: str, rows: pa.Table) -> pa.Array:
    """``content_hash`` of each row (hex strings, in row order) over the table's canonical columns."""
    canonical = event_table(table_name).staged_schema
    con = _connection()
    con.register("rows_", rows.select(canonical.names))
    try:
        query = f"SELECT {_content_hash_sql(canonical)} AS h FROM rows_"
        result = con.sql(query, params=[table_name]).to_arrow_table().column("h").combine_chunks()
    finally:
        con.unregister("rows_")
    return result.cast(pa.string())


def _connection() -> duckdb.DuckDBPyConnection:
    # Opening an in-memory DuckDB costs about 20 ms, more than hashing a small file's rows: keep one
    # per thread (a connection must not be shared between threads).
    con = getattr(_local, "con", None)
    if con is None:
        con = _local.con = duckdb.connect()
    return con


def as_published(table_name: str, rows: pa.Table, batch_id: str) -> pa.Table:
    """The columns of ``rows`` that a published row's leaf covers: canonical fields, ``content_hash``
    and ``batch_id`` (the publisher adds ``leaf_index`` and ``leaf_hash``, which the leaf excludes)."""
    canonical = event_table(table_name).staged_schema
    return rows.select([*canonical.names, "content_hash"]).append_column(
        "batch_id", pa.repeat(pa.scalar(batch_id, pa.string()), rows.num_rows)
    )


def published_leaf_hashes(table_name: str, rows: pa.Table, batch_id: str) -> pa.Array:
    """Leaf hash (32 bytes each) of every row as it will be published in ``batch_id``."""
    digests = leaf.table_leaf_hashes(table_name, as_published(table_name, rows, batch_id))
    data = pa.py_buffer(b"".join(digests))
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(32), len(digests), [None, data])


def digests(column: pa.Array | pa.ChunkedArray) -> list[bytes]:
    """The 32-byte digests of a ``binary(32)`` column as bytes objects (read straight from the buffer)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    raw = np.frombuffer(array.buffers()[1], np.uint8, 32 * len(array), 32 * array.offset).tobytes()
    return [raw[i : i + 32] for i in range(0, len(raw), 32)]
