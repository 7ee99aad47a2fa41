"""Canonical leaf encoding of published rows and batch manifests.

Leaf bytes of a row of table ``T`` are the RFC 8785 (JCS) JSON text of one object holding

* every column of the row except ``leaf_index`` and ``leaf_hash`` (the log position is an output
  of the log, not an input), and
* ``"table": "T"``, so that identical rows of different tables can never share a leaf;

with members sorted by the UTF-16 code units of their names (RFC 8785 §3.2.3) and values encoded as

* string: a JSON string, UTF-8, escaping only ``"``, ``\\`` and U+0000..U+001F; the latter as
  ``\\b \\t \\n \\f \\r`` where those exist, else ``\\u00hh`` with lowercase hex (RFC 8785 §3.2.2.2);
* integer: a JSON integer in [-(2**53 - 1), 2**53 - 1] (RFC 8785 numbers are IEEE doubles, so
  larger magnitudes are refused rather than silently rounded);
* boolean: ``true`` / ``false``;
* timestamp: a JSON string, RFC 3339 in UTC with exactly six fractional digits and ``Z``,
  e.g. ``"2026-06-01T00:00:00.000000Z"`` (a timestamp without a time zone is taken as UTC);
* null: ``null``.

Any other value type is refused. The leaf hash is RFC 9162's SHA-256(0x00 || leaf bytes).
A batch manifest's leaf is RFC 8785 of ``{"table": "manifest", **manifest}``.

``row_leaf_bytes`` is the reference (it delegates the JSON to the ``rfc8785`` package);
``table_leaf_hashes`` builds the same bytes column-wise with pyarrow.compute (numpy for the
timestamp digits) and only loops in Python to hash. A property test proves the two agree.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Mapping
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import rfc8785

EXCLUDED_COLUMNS = frozenset({"leaf_index", "leaf_hash"})
TABLE_KEY = "table"
MANIFEST_TABLE = "manifest"
MAX_SAFE_INTEGER = 2**53 - 1
CHUNK_ROWS = 65_536  # bounds the memory of the joined JSON text
MAX_ENTRY_BYTES = 0xFFFF  # the largest entry a tlog-tiles entry bundle holds (uint16 length prefix)
LEAF_FORMAT = "leaf_format"
OUTPUTS_DIGEST = "outputs_sha256"

_UTC = dt.UTC
_TS = pa.timestamp("us", tz="UTC")
# Years 0001..9999, the range of RFC 3339 that datetime can also represent, in epoch microseconds.
_TS_MIN_US = -62_135_596_800_000_000
_TS_MAX_US = 253_402_300_799_999_999
_STR = pa.large_string()
_TS_TEMPLATE = b'"0000-00-00T00:00:00.000000Z"'
_SHORT_ESCAPES = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"}
# Backslash first, so the backslashes the later replacements insert are not doubled.
_ESCAPES = [("\\", "\\\\"), ('"', '\\"')] + [
    (chr(c), _SHORT_ESCAPES.get(c, f"\\u{c:04x}")) for c in range(0x20)
]


class LeafEncodingError(ValueError):
    pass


def _utf16_key(name: str) -> bytes:
    # Big-endian UTF-16 bytes compare exactly like sequences of UTF-16 code units.
    return name.encode("utf-16-be")


def format_timestamp(value: dt.datetime) -> str:
    """RFC 3339 UTC with six fractional digits; naive datetimes are taken as UTC."""
    value = value.replace(tzinfo=_UTC) if value.tzinfo is None else value.astimezone(_UTC)
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond:06d}Z"
    )


def _json_value(name: str, value: object) -> object:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise LeafEncodingError(f"column {name!r}: integer {value} is outside +-(2**53 - 1)")
        return value
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    raise LeafEncodingError(f"column {name!r}: unsupported value type {type(value).__name__}")


def _leaf_object(table_name: str, row: Mapping[str, object]) -> dict[str, object]:
    if TABLE_KEY in row:
        raise LeafEncodingError(f"a row may not have a {TABLE_KEY!r} column: the leaf encoding adds it")
    obj: dict[str, object] = {TABLE_KEY: table_name}
    for name, value in row.items():
        if name not in EXCLUDED_COLUMNS:
            obj[name] = _json_value(name, value)
    return obj


def row_leaf_bytes(table_name: str, row: Mapping[str, object]) -> bytes:
    """Leaf bytes of one row (the reference implementation of the encoding)."""
    return _canonical(_leaf_object(table_name, row))


def row_leaf_hash(table_name: str, row: Mapping[str, object]) -> bytes:
    return hashlib.sha256(b"\x00" + row_leaf_bytes(table_name, row)).digest()


def manifest_leaf_bytes(manifest: Mapping[str, object]) -> bytes:
    """RFC 8785 of ``{"table": "manifest", **manifest}``; for a manifest with ``"leaf_format": 2`` the
    ``outputs`` list is replaced by ``"outputs_sha256"``, the SHA-256 (hex) of its RFC 8785 JSON, so the
    leaf stays small however many partitions the batch wrote (see ``fit_manifest_leaf``)."""
    if TABLE_KEY in manifest:
        raise LeafEncodingError(f"a manifest may not have a top-level {TABLE_KEY!r} member")
    if manifest.get(LEAF_FORMAT) == 2:
        if OUTPUTS_DIGEST in manifest:
            raise LeafEncodingError(f"a manifest may not have a top-level {OUTPUTS_DIGEST!r} member")
        body = {k: v for k, v in manifest.items() if k != "outputs"}
        body[OUTPUTS_DIGEST] = hashlib.sha256(_canonical(manifest.get("outputs"))).hexdigest()
        return _canonical({TABLE_KEY: MANIFEST_TABLE, **body})
    return _canonical({TABLE_KEY: MANIFEST_TABLE, **manifest})


def _canonical(value: object) -> bytes:
    """RFC 8785 bytes of a decoded-JSON-shaped value. rfc8785 types its argument as its own private
    recursive JSON union, which a ``Mapping[str, object]`` cannot be narrowed to statically; it
    checks every value at run time (and raises on one it cannot encode), so the cast only hands over."""
    return rfc8785.dumps(cast(Any, value))


def fit_manifest_leaf(manifest: dict) -> dict:
    """The manifest to publish: as it is when its leaf fits an entry bundle (c2sp.org/tlog-tiles: a
    uint16 length), else marked ``"leaf_format": 2`` so that its leaf holds the digest of its outputs."""
    if len(manifest_leaf_bytes(manifest)) > MAX_ENTRY_BYTES:
        return {**manifest, LEAF_FORMAT: 2}
    return manifest


def manifest_leaf_hash(manifest: Mapping[str, object]) -> bytes:
    return hashlib.sha256(b"\x00" + manifest_leaf_bytes(manifest)).digest()


# -- vectorised --------------------------------------------------------------------------------


def _lit(text: str) -> pa.Scalar:
    return pa.scalar(text, _STR)


def _rows_needing_escape(values: pa.Array) -> np.ndarray | None:
    """Boolean mask of the rows holding ``"``, ``\\`` or a control character, or None if no row does.

    A byte scan of the data buffer, which is exact for UTF-8 (multi-byte sequences never contain
    bytes below 0x80) and several times faster than a regex match per value.
    """
    _, offsets_buf, data_buf = values.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64, count=len(values) + 1, offset=values.offset * 8)
    if data_buf is None or offsets[-1] == offsets[0]:
        return None
    data = np.frombuffer(data_buf, dtype=np.uint8)[offsets[0]:offsets[-1]]
    hits = np.flatnonzero((data < 0x20) | (data == ord('"')) | (data == ord("\\")))
    if not len(hits):
        return None
    rows = np.searchsorted(offsets, hits + offsets[0], side="right") - 1
    mask = np.zeros(len(values), dtype=bool)
    mask[rows] = True
    return mask


def _escaped_strings(values: pa.Array) -> pa.Array:
    """The JSON-escaped contents of each string (without the quotes; nulls stay null)."""
    values = values.cast(_STR)
    needs = _rows_needing_escape(values)
    if needs is not None:
        # Null slots can hold stray bytes; they stay null whatever the mask says.
        escaped = values.filter(needs)
        for plain, escape in _ESCAPES:
            escaped = pc.replace_substring(escaped, plain, escape)
        values = pc.replace_with_mask(values, pa.array(needs), escaped)
    return values


def _check_range(name: str, values: pa.Array, low: int, high: int) -> None:
    """Refuse integers (or epoch microseconds) outside [low, high]."""
    bounds = pc.min_max(values)
    lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
    if lo is not None and (lo < low or hi > high):
        raise LeafEncodingError(f"column {name!r}: values [{lo}, {hi}] are outside [{low}, {high}]")


def _put_digits(out: np.ndarray, column: int, values: np.ndarray, width: int) -> None:
    for k in range(width):
        out[:, column + width - 1 - k] = values // 10**k % 10 + ord("0")


def _json_timestamps(values: pa.Array) -> pa.Array:
    """``"YYYY-MM-DDTHH:MM:SS.ffffffZ"`` for each UTC microsecond timestamp (nulls stay null).

    Built as a fixed-width byte matrix with numpy: Arrow's strftime and cast-to-string run at about
    1 µs a value, which made timestamps most of the cost of a leaf.
    """
    micros = values.fill_null(0).cast(pa.int64()).to_numpy()
    instants = micros.view("datetime64[us]")
    years = instants.astype("datetime64[Y]")
    months = instants.astype("datetime64[M]")
    days = instants.astype("datetime64[D]")  # numpy floors, so times before 1970 come out right
    of_day = micros - days.astype("datetime64[us]").astype(np.int64)
    out = np.empty((len(micros), len(_TS_TEMPLATE)), dtype=np.uint8)
    out[:] = np.frombuffer(_TS_TEMPLATE, dtype=np.uint8)
    _put_digits(out, 1, years.astype(np.int64) + 1970, 4)
    _put_digits(out, 6, months.astype(np.int64) % 12 + 1, 2)
    _put_digits(out, 9, (days - months.astype("datetime64[D]")).astype(np.int64) + 1, 2)
    _put_digits(out, 12, of_day // 3_600_000_000, 2)
    _put_digits(out, 15, of_day // 60_000_000 % 60, 2)
    _put_digits(out, 18, of_day // 1_000_000 % 60, 2)
    _put_digits(out, 21, of_day % 1_000_000, 6)
    offsets = np.arange(len(micros) + 1, dtype=np.int64) * len(_TS_TEMPLATE)
    text = pa.Array.from_buffers(_STR, len(micros), [None, pa.py_buffer(offsets), pa.py_buffer(out)])
    return pc.if_else(pc.is_valid(values), text, pa.scalar(None, _STR))


def _column_json(name: str, values: pa.Array) -> tuple[pa.Array, bool]:
    """The JSON text of each value of a column, and whether it still needs its quotes.

    A string column without nulls is returned unquoted so that its quotes can go into the literal
    text around it: one fewer pass over the data for the common case.
    """
    kind = values.type
    if pa.types.is_dictionary(kind):
        return _column_json(name, values.dictionary_decode())
    if pa.types.is_null(kind):
        return pa.array(["null"] * len(values), _STR), False
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        text = _escaped_strings(values)
        if not text.null_count:
            return text, True
        text = pc.binary_join_element_wise(_lit('"'), text, _lit('"'), _lit(""))
    elif pa.types.is_integer(kind):
        _check_range(name, values, -MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
        text = values.cast(_STR)
    elif pa.types.is_boolean(kind):
        text = values.cast(_STR)
    elif pa.types.is_timestamp(kind):
        try:
            # Only the instant matters: re-labelling as UTC keeps the epoch values. A safe cast
            # refuses sub-microsecond digits that the encoding (and datetime) cannot represent.
            values = values.cast(_TS)
        except pa.ArrowInvalid as exc:
            raise LeafEncodingError(f"column {name!r}: timestamps finer than microseconds") from exc
        _check_range(name, values.cast(pa.int64()), _TS_MIN_US, _TS_MAX_US)
        text = _json_timestamps(values)
    else:
        raise LeafEncodingError(f"column {name!r}: unsupported Arrow type {kind}")
    return pc.fill_null(text, _lit("null")), False


def _encode(table_name: str, table: pa.Table | pa.RecordBatch, prefix: str) -> pa.Array:
    """``prefix`` + leaf bytes of every row, as one large_string array without nulls."""
    names = [n for n in table.schema.names if n not in EXCLUDED_COLUMNS]
    if len(set(names)) != len(names):
        raise LeafEncodingError("duplicate column names")
    if TABLE_KEY in names:
        raise LeafEncodingError(f"a row may not have a {TABLE_KEY!r} column: the leaf encoding adds it")
    pieces: list[pa.Scalar | pa.Array] = []
    literal = prefix + "{"
    for i, name in enumerate(sorted([*names, TABLE_KEY], key=_utf16_key)):
        literal += ("," if i else "") + rfc8785.dumps(name).decode() + ":"
        if name == TABLE_KEY:
            literal += rfc8785.dumps(table_name).decode()
            continue
        column = table.column(name)
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        text, quote = _column_json(name, column)
        pieces += [_lit(literal + ('"' if quote else "")), text]
        literal = '"' if quote else ""
    literal += "}"
    if not pieces:
        return pa.array([literal] * table.num_rows, _STR)
    joined = pc.binary_join_element_wise(*pieces, _lit(literal), _lit(""))
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined


def _slices(array: pa.Array) -> Iterator[memoryview]:
    """Each value of a null-free large_string array as a zero-copy memoryview."""
    _, offsets_buf, data_buf = array.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64, count=len(array) + 1, offset=array.offset * 8).tolist()
    data = memoryview(data_buf) if data_buf is not None else memoryview(b"")
    return (data[a:b] for a, b in zip(offsets[:-1], offsets[1:], strict=True))


def _chunks(table: pa.Table | pa.RecordBatch) -> Iterator[pa.Table | pa.RecordBatch]:
    for start in range(0, table.num_rows, CHUNK_ROWS):
        yield table.slice(start, CHUNK_ROWS)


def table_leaf_bytes(table_name: str, table: pa.Table | pa.RecordBatch) -> list[bytes]:
    """Leaf bytes of every row; equal to ``row_leaf_bytes`` of each row of ``table.to_pylist()``."""
    out: list[bytes] = []
    for chunk in _chunks(table):
        out.extend(bytes(view) for view in _slices(_encode(table_name, chunk, "")))
    return out


def table_leaf_hashes(table_name: str, table: pa.Table | pa.RecordBatch) -> list[bytes]:
    """RFC 9162 leaf hashes of every row, in row order."""
    sha256 = hashlib.sha256
    out: list[bytes] = []
    for chunk in _chunks(table):
        # The 0x00 leaf prefix is part of the joined text, so each row is hashed in one call.
        out.extend([sha256(view).digest() for view in _slices(_encode(table_name, chunk, "\x00"))])
    return out
