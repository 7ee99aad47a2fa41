"""CloudEvents 1.0 in structured mode, one event per line (``.ndjson``, ``.jsonl``): the form for large exports.

Each line is decided by the per-line reference path (``_add_line``: the limits checked on the bytes,
``strictjson``, then ``parsing.ChunkBuilder``). For speed the lines are first parsed column-wise: a
chunk of lines is routed by the exact value of its ``type`` attribute (one of the event tables' full
type names, or nothing) and read by ``pyarrow.json`` with that table's exact schema (unknown
attributes or fields, wrong JSON types, duplicate keys and syntax errors all make it fail), and the
result is certified with Arrow compute (specversion, type, non-empty ``source``/``id``, strict RFC 3339
timestamps). Any line the fast path cannot certify (a failing read is bisected down to small groups of
lines) goes through the reference path, which decides it exactly as before: the fast path only ever
accepts lines the reference path would accept with the same values, and every rejected line gets its
per-line reasons and line number from the reference path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from pipelines.ingest import landed, strictjson
from pipelines.ingest.feeds.base import Feed
from pipelines.ingest.limits import MAX_DEPTH, MAX_EVENT_BYTES, MAX_RAW
from pipelines.ingest.parsing import (
    BOM,
    ENVELOPE_KEYS,
    ChunkBuilder,
    ParsedChunk,
    decoder,
    depth_problem,
    parse_timestamp,
    parsed_schema,
    payload_kinds,
    size_problem,
    utf8_problem,
)
from pipelines.schemas import EVENT_TABLES, EventTable, event_table


class CloudEventsNdjson(Feed):
    name = "cloudevents-ndjson"
    suffixes = (".ndjson", ".jsonl")

    def parse(self, uri: str, chunk_rows: int) -> Iterator[ParsedChunk]:
        return _ndjson(uri, chunk_rows)


# -- NDJSON, line by line: the reference -----------------------------------------------------------


def _add_line(builder: ChunkBuilder, ord_: int, number: int, raw: bytes) -> None:
    """Decide one NDJSON line (without its newline) within the limits: sized and depth-checked on
    the bytes, then decoded with duplicate keys and non-finite numbers reported."""
    raw = raw.rstrip(b"\r")
    if number == 1 and raw.startswith(BOM):
        raw = raw[len(BOM) :]
    if len(raw) > MAX_EVENT_BYTES:
        builder.reject(number, raw[:MAX_RAW].decode("utf-8", errors="backslashreplace"), [size_problem()])
        return
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        builder.reject(number, raw.decode("utf-8", errors="backslashreplace"), [utf8_problem(err)])
        return
    at = strictjson.depth_exceeds(raw, MAX_DEPTH)
    if at is not None:
        builder.reject(number, text, [depth_problem(at)])
        return
    try:
        event, problems = decoder().decode(text)
    except json.JSONDecodeError as err:
        builder.reject(number, text, [f"json: {err.msg} at column {err.colno}"])
        return
    builder.add_at(ord_, number, text, event, problems=tuple(problems))


def _ndjson_reference(uri: str, chunk_rows: int) -> Iterator[ParsedChunk]:
    """Line by line with ``strictjson``: the reference the fast NDJSON path must agree with."""
    builder = ChunkBuilder(uri)
    for number, raw in enumerate(landed.iter_lines(uri), start=1):
        if not raw.strip():
            continue
        builder.rows_in += 1
        _add_line(builder, builder.offset + builder.rows_in, number, raw)
        if len(builder) >= chunk_rows:
            yield builder.build()
            builder = builder.next()
    yield builder.build()


# -- NDJSON, column-wise: the fast path ------------------------------------------------------------

READ_BLOCK = 16 << 20  # bytes read from storage at a time
BISECT_MIN = 64  # a failing group of at most this many lines goes to the reference path whole
_LBRACE, _RBRACE, _LBRACKET, _CR = ord("{"), ord("}"), ord("["), ord("\r")
# Where a line names its type: the first "type" key with a plain string value (no escapes). That key
# may be a payload field's, or the type may be spelt with escapes: then the line is routed wrongly or
# not at all, which costs only speed (certification checks the parsed type; the rest goes slow).
_TYPE_VALUE = r'"type"[ \t\n\r]*:[ \t\n\r]*"(?P<type>[^"\\]*)"'
# RFC 3339 with an explicit offset, fields in range, at most microseconds, years 1000-2999. Inside
# this set Arrow's cast and ``parse_timestamp`` accept exactly the same strings with the same
# instants (both reject e.g. 30 February); anything else is left to ``parse_timestamp`` itself.
_RFC3339 = (
    r"^[12][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
_TIMESTAMP = pa.timestamp("us", tz="UTC")


@dataclass
class _Lines:
    """Consecutive lines of a file: ``data`` holds them whole, each ending in ``\\n``; line ``i`` is
    ``data[bounds[i]:bounds[i + 1] - 1]`` and has number ``first + i``."""

    data: bytes
    bounds: np.ndarray
    blank: np.ndarray
    first: int

    @classmethod
    def of(cls, data: bytes, first: int) -> _Lines:
        arr = np.frombuffer(data, np.uint8)
        newlines = np.flatnonzero(arr == ord("\n"))
        bounds = np.zeros(len(newlines) + 1, np.int64)
        bounds[1:] = newlines + 1
        blank = np.zeros(len(newlines), bool)
        # A line opening with "{" is not blank; any other is checked exactly like the reference path.
        for i in np.flatnonzero(arr[bounds[:-1]] != _LBRACE).tolist():
            blank[i] = not data[bounds[i] : bounds[i + 1] - 1].strip()
        return cls(data, bounds, blank, first)

    def __len__(self) -> int:
        return len(self.blank)

    def events(self) -> int:
        return len(self.blank) - int(np.count_nonzero(self.blank))

    def split(self, cut: int) -> tuple[_Lines, _Lines]:
        at = int(self.bounds[cut])
        head = _Lines(self.data[:at], self.bounds[: cut + 1], self.blank[:cut], self.first)
        tail = _Lines(self.data[at:], self.bounds[cut:] - at, self.blank[cut:], self.first + cut)
        return head, tail


def _line_blocks(uri: str) -> Iterator[_Lines]:
    """The file's lines in blocks of about ``READ_BLOCK`` bytes, streamed. A line still open after
    ``MAX_RAW`` bytes is kept up to there (too long to be an event either way) and the rest of it
    skipped, so no line holds more memory than that beyond the block being read."""
    rest, first, skipping = b"", 1, False
    with landed.open_input(uri) as f:
        while block := f.read(READ_BLOCK):
            if skipping:
                cut = block.find(b"\n")
                if cut < 0:
                    continue
                block, skipping = block[cut:], False  # the newline ends the kept head
            data = rest + block if rest else block
            end = data.rfind(b"\n") + 1
            rest = data[end:]
            if len(rest) > MAX_RAW:
                rest, skipping = rest[:MAX_RAW], True
            if not end:
                continue
            lines = _Lines.of(data[:end] if end < len(data) else data, first)
            first += len(lines)
            yield lines
    if rest:
        yield _Lines.of(rest + b"\n", first)


def _line_chunks(uri: str, chunk_rows: int) -> Iterator[list[_Lines]]:
    """Groups of lines holding exactly ``chunk_rows`` events (non-blank lines), the last one fewer,
    each as the list of its (block-sized) pieces: a chunk is parsed piece by piece, so the memory
    parsing takes stays proportional to ``READ_BLOCK``, not to the chunk."""
    pieces: list[_Lines] = []
    count = 0
    for lines in _line_blocks(uri):
        while len(lines):
            events = lines.events()
            if count + events < chunk_rows:
                pieces.append(lines)
                count += events
                break
            cut = int(np.flatnonzero(~lines.blank)[chunk_rows - count - 1]) + 1
            head, lines = lines.split(cut)
            pieces.append(head)
            yield pieces
            pieces, count = [], 0
    yield pieces


@cache
def _read_schema(table_name: str) -> pa.Schema:
    """How ``pyarrow.json`` reads one event of ``table_name``: the envelope, and the payload with
    exactly the table's fields (timestamps as text, certified and converted afterwards)."""
    arrow = {"string": pa.string(), "integer": pa.int64(), "timestamp": pa.string()}
    data = pa.struct([pa.field(name, arrow[kind]) for name, kind in payload_kinds(table_name)])
    envelope = [(key, pa.string()) for key in sorted(ENVELOPE_KEYS - {"data"})]
    return pa.schema([*envelope, ("data", data)])


def _read_json(table_name: str, lines: pa.Array) -> pa.Table:
    """Parse null-free ``large_binary`` lines (each ending in a newline); raises on any problem."""
    _, offsets_buf, data_buf = lines.buffers()
    offsets = np.frombuffer(offsets_buf, np.int64, len(lines) + 1, lines.offset * 8)
    buffer = pa.py_buffer(data_buf)[int(offsets[0]) : int(offsets[-1])]
    table = pajson.read_json(
        pa.BufferReader(buffer),
        read_options=pajson.ReadOptions(block_size=max(1 << 20, min(len(buffer) // 2 + 1, 16 << 20))),
        parse_options=pajson.ParseOptions(explicit_schema=_read_schema(table_name), unexpected_field_behavior="error"),
    )
    if table.num_rows != len(lines):  # e.g. two objects on one line
        raise ValueError("row count differs from line count")
    return table


def _timestamps(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Certified UTC timestamps of RFC 3339 text, and a mask of the values left to the reference path."""
    ok = pc.fill_null(pc.match_substring_regex(values, _RFC3339), False)
    doubtful = pc.and_(pc.is_valid(values), pc.invert(ok))
    text = pc.if_else(ok, values, pa.scalar(None, pa.string()))
    try:
        return pc.cast(text, _TIMESTAMP), np.asarray(doubtful, bool)
    except pa.ArrowInvalid:  # a day that does not exist: find it the slow way
        mask = np.asarray(doubtful, bool).copy()
        for i, value in enumerate(text.to_pylist()):
            if value is not None:
                try:
                    parse_timestamp(value)
                except ValueError:
                    mask[i] = True
        text = pc.if_else(pa.array(mask), pa.scalar(None, pa.string()), text)
        return pc.cast(text, _TIMESTAMP), mask


def _certify(table: EventTable, parsed: pa.Table) -> tuple[list[pa.Array], np.ndarray]:
    """Canonical columns (envelope + payload) of parsed events, and a mask of the rows the reference
    path must decide instead (anything it might reject, or read differently)."""
    doubtful = [
        pc.invert(pc.fill_null(pc.equal(parsed["specversion"], "1.0"), False)),
        pc.invert(pc.fill_null(pc.equal(parsed["type"], table.cloudevent_type), False)),
        pc.is_null(parsed["data"]),
    ]
    for key in ("source", "id"):
        doubtful.append(pc.invert(pc.fill_null(pc.greater(pc.binary_length(parsed[key]), 0), False)))
    mask = np.zeros(parsed.num_rows, bool)
    for m in doubtful:
        mask |= np.asarray(m.combine_chunks() if isinstance(m, pa.ChunkedArray) else m, bool)
    event_time, bad = _timestamps(parsed["time"].combine_chunks())
    mask |= bad | np.asarray(event_time.is_null(), bool)  # the envelope's time is required
    columns = [parsed["source"].combine_chunks(), parsed["id"].combine_chunks(), event_time]
    data = parsed["data"].combine_chunks()
    for name, kind in payload_kinds(table.name):
        values = data.field(name)
        if kind == "timestamp":
            values, bad = _timestamps(values)
            mask |= bad
        columns.append(values)
    return columns, mask


@cache
def _type_names() -> pa.Array:
    """The full CloudEvents type of each event table, in ``EVENT_TABLES`` order."""
    return pa.array([event_table(name).cloudevent_type.encode() for name in EVENT_TABLES], pa.large_binary())


def _routes(lines: pa.Array) -> np.ndarray:
    """Per line (``large_binary``), the index in ``EVENT_TABLES`` of the table whose type the line names
    exactly, or -1: a type that merely shares a prefix with a real one is no table's."""
    found = pc.struct_field(pc.extract_regex(lines, _TYPE_VALUE), [0])
    return np.asarray(pc.fill_null(pc.index_in(found, value_set=_type_names()), -1), np.int64)


class _NdjsonChunk:
    """Parses one ``_Lines`` chunk into a ``ParsedChunk``."""

    def __init__(self, uri: str, lines: _Lines, ord_offset: int):
        self.uri, self.lines = uri, lines
        self.events = np.flatnonzero(~lines.blank)  # line index of each event
        self.ords = ord_offset + 1 + np.arange(len(self.events), dtype=np.int64)
        self.slow: list[np.ndarray] = []  # positions (into self.events) for the reference path
        self.fast: dict[str, list[pa.Table]] = {}

    def all_lines(self) -> pa.Array:
        bounds = self.lines.bounds
        return pa.LargeBinaryArray.from_buffers(
            pa.large_binary(), len(bounds) - 1, [None, pa.py_buffer(bounds), pa.py_buffer(self.lines.data)]
        )

    def run(self) -> ParsedChunk:
        data, bounds = np.frombuffer(self.lines.data, np.uint8), self.lines.bounds
        starts, ends = bounds[:-1][self.events], bounds[1:][self.events] - 1  # ends: at the newline
        ends = ends - (data[np.maximum(ends - 1, 0)] == _CR)
        candidate = (data[starts] == _LBRACE) & (data[np.maximum(ends - 1, 0)] == _RBRACE)
        candidate &= (ends - starts <= MAX_EVENT_BYTES) & (self._open_brackets(starts, ends) <= MAX_DEPTH)
        candidate &= ~self._invalid_utf8(starts, ends)
        positions = np.flatnonzero(candidate)
        self.slow.append(np.flatnonzero(~candidate))
        if len(positions):
            # Route each candidate by its whole type, if the line is what it seems; a wrong guess only
            # fails the read or the certification, and the line goes slow. A line goes to at most one
            # table, so none is read twice, whatever the tables' names have in common.
            lines = self.all_lines()
            numbers = self.events[positions]
            route = _routes(lines)[numbers]
            for k, name in enumerate(EVENT_TABLES):
                mine = np.flatnonzero(route == k)
                if len(mine):
                    self._fast(event_table(name), positions[mine], lines.take(pa.array(numbers[mine])))
            self.slow.append(positions[route < 0])
        return self._build()

    def _open_brackets(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Per event, how many ``{`` and ``[`` its line holds: a bound on its nesting depth, so a
        line that could nest too deep goes to the reference path, which measures it exactly."""
        data = np.frombuffer(self.lines.data, np.uint8)
        where = np.flatnonzero((data == _LBRACE) | (data == _LBRACKET))
        return np.searchsorted(where, ends) - np.searchsorted(where, starts)

    def _invalid_utf8(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Events whose line is not valid UTF-8 (only lines holding a byte >= 0x80 are decoded)."""
        bad = np.zeros(len(starts), bool)
        if self.lines.data.isascii():
            return bad
        high = np.flatnonzero(np.frombuffer(self.lines.data, np.uint8) >= 0x80)
        # A byte >= 0x80 is never a newline, carriage return or whitespace, so it lies in an event's line.
        for k in np.unique(np.searchsorted(ends, high, side="right")).tolist():
            if k >= len(starts):
                continue
            try:
                self.lines.data[starts[k] : ends[k]].decode("utf-8")
            except UnicodeDecodeError:
                bad[k] = True
        return bad

    def _fast(self, table: EventTable, positions: np.ndarray, lines: pa.Array) -> None:
        """Read lines routed to ``table``; bisect a failing read, leave doubtful rows to the reference path."""
        try:
            parsed = _read_json(table.name, lines)
        except (pa.ArrowInvalid, ValueError):
            if len(positions) <= BISECT_MIN:
                self.slow.append(positions)
                return
            half = len(positions) // 2
            self._fast(table, positions[:half], lines.slice(0, half))
            self._fast(table, positions[half:], lines.slice(half))
            return
        columns, doubtful = _certify(table, parsed)
        keep = ~doubtful
        self.slow.append(positions[doubtful])
        if not keep.any():
            return
        raw = pc.utf8_rtrim(lines.cast(pa.large_string()), characters="\r\n").cast(pa.string())
        events = self.events[positions]
        columns += [pa.array(self.ords[positions]), pa.array(self.lines.first + events), raw]
        out = pa.Table.from_arrays(columns, schema=parsed_schema(table))
        self.fast.setdefault(table.name, []).append(out if keep.all() else out.filter(pa.array(keep)))

    def _build(self) -> ParsedChunk:
        builder = ChunkBuilder(self.uri)
        slow = np.sort(np.concatenate(self.slow)) if self.slow else np.zeros(0, np.int64)
        data, bounds = self.lines.data, self.lines.bounds
        for position in slow.tolist():
            i = int(self.events[position])
            _add_line(builder, int(self.ords[position]), self.lines.first + i, data[bounds[i] : bounds[i + 1] - 1])
        reference = builder.build()
        tables = {}
        for name in EVENT_TABLES:
            pieces = self.fast.get(name, [])
            if name in reference.tables:
                pieces.append(reference.tables[name])
            if not pieces:
                continue
            table = pa.concat_tables(pieces).combine_chunks() if len(pieces) > 1 else pieces[0]
            if len(pieces) > 1:
                table = table.take(pc.sort_indices(table["_ord"]))
            tables[name] = table
        return ParsedChunk(tables, reference.rejected, len(self.events))


def _ndjson(uri: str, chunk_rows: int) -> Iterator[ParsedChunk]:
    offset = 0
    for pieces in _line_chunks(uri, chunk_rows):
        parsed = []
        for lines in pieces:
            parsed.append(_NdjsonChunk(uri, lines, offset).run())
            offset += parsed[-1].rows_in
        yield _concat_chunks(parsed)


def _concat_chunks(parts: list[ParsedChunk]) -> ParsedChunk:
    """One chunk from consecutive parts (their tables are concatenated without copying)."""
    if len(parts) == 1:
        return parts[0]
    tables = {}
    for name in EVENT_TABLES:
        pieces = [p.tables[name] for p in parts if name in p.tables]
        if pieces:
            tables[name] = pa.concat_tables(pieces)
    return ParsedChunk(tables, [r for p in parts for r in p.rejected], sum(p.rows_in for p in parts))
