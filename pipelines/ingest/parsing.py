"""Landed file → canonical Arrow tables, in bounded chunks.

Three wire forms are accepted, all carrying CloudEvents 1.0 in structured mode:
NDJSON (``.ndjson``/``.jsonl``: one event per line), a JSON array (``.json``) and CSV (``.csv``:
envelope attributes and payload fields as columns). Structural problems (bad JSON, bad bytes,
wrong types, unknown event types or fields) are decided here, per line, and become quarantine rows;
value rules (ranges, required fields, registry) are the validator's job.

NDJSON, the form for large exports, is parsed column-wise: a chunk of lines is routed by event type
and read by ``pyarrow.json`` with the table's exact schema (unknown attributes or fields, wrong JSON
types, duplicate keys and syntax errors all make it fail), and the result is certified with Arrow
compute (specversion, type, non-empty ``source``/``id``, strict RFC 3339 timestamps). Any line the
fast path cannot certify (a failing read is bisected down to small groups of lines) goes through the
per-line reference path below (``strictjson`` + ``event_to_row``), which decides it exactly as
before: the fast path only ever accepts lines the reference path would accept with the same values,
and every rejected line gets its per-line reasons and line number from the reference path.

Every form is read within ``pipelines.ingest.limits`` (event size, nesting depth, array size) checked on the
bytes first; a ``.gz`` file is read decompressed (``pipelines.ingest.landed``); a UTF-8 byte order mark at
the start of a file is ignored. Nothing is resolved silently: a repeated JSON key, a non-finite
number, a timestamp finer than microseconds or outside years 0001-9999 in UTC rejects the event.
"""

from __future__ import annotations

import csv
import json
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from pipelines.errors import SensorlogError
from pipelines.ingest import landed, strictjson
from pipelines.ingest.limits import MAX_DEPTH, MAX_EVENT_BYTES, MAX_JSON_ARRAY_BYTES, MAX_RAW
from pipelines.schemas import EVENT_TABLES, EventTable, event_table, table_for_type

DEFAULT_CHUNK_ROWS = 250_000  # events per chunk: GX costs ~0.15 s per call, so chunks are large
# The row-by-row forms (JSON array, CSV) hold a Python dict per event until a chunk is built, which
# costs several times the Arrow size: their chunks stay at most this long.
ROWWISE_CHUNK_ROWS = 50_000
ENVELOPE_KEYS = {"specversion", "id", "source", "type", "time", "subject", "datacontenttype", "data"}
SUFFIXES = landed.DISCOVERED  # what discovery lists: read, or refused whole with a reason
BOM = b"\xef\xbb\xbf"
MAX_FRACTION_DIGITS = 6  # timestamps are microseconds, in the columns and in the leaf encoding
_FRACTION = re.compile(r"[.,]([0-9]+)")


class UnparseableFile(SensorlogError):
    """The file as a whole cannot be read; nothing in it can be trusted row by row."""

    def __init__(self, uri: str, line: int, message: str):
        super().__init__(f"{uri}: line {line}: {message}")
        self.uri, self.line, self.message = uri, line, message


@dataclass
class ParsedChunk:
    """Rows parsed from one bounded slice of a file. ``tables`` hold every column as nullable plus
    ``_ord``, ``_line`` and ``_raw`` so that later checks can still quarantine a row with its origin."""

    tables: dict[str, pa.Table]
    rejected: list[dict] = field(default_factory=list)
    rows_in: int = 0


def parsed_schema(table: EventTable) -> pa.Schema:
    fields = [f.with_nullable(True) for f in table.staged_schema]
    extra = [pa.field("_ord", pa.int64()), pa.field("_line", pa.int64()), pa.field("_raw", pa.string())]
    return pa.schema([*fields, *extra])


class Refused(SensorlogError, ValueError):
    """A value that is well-formed but cannot be kept as it is; ``category`` leads its reason."""

    def __init__(self, category: str, message: str):
        super().__init__(message)
        self.category = category


def _reason(where: str, err: ValueError) -> str:
    if isinstance(err, Refused):
        return f"{err.category}:{where}: {err}"
    return f"{where}: {err}"


def parse_timestamp(value: object) -> datetime:
    """RFC 3339 timestamp with an explicit offset → aware UTC datetime.

    Refuses (never truncates or wraps) digits finer than microseconds and instants outside years
    0001-9999 in UTC, which neither the columns nor the leaf encoding can hold."""
    if not isinstance(value, str):
        raise ValueError("expected an RFC 3339 timestamp string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("timestamp has no time zone offset")
    fraction = _FRACTION.search(value)
    if fraction and len(fraction.group(1)) > MAX_FRACTION_DIGITS:
        raise Refused("encoding", f"{len(fraction.group(1))} fractional digits; at most microseconds are kept")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise Refused("range", "outside years 0001-9999 in UTC") from None


def _coerce(kind: str, value: object, from_text: bool) -> object:
    if value is None or (from_text and value == ""):
        return None
    if kind == "timestamp":
        return parse_timestamp(value)
    if kind == "integer":
        if from_text and isinstance(value, str):
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("expected an integer")
        if not -(2**63) <= value < 2**63:
            raise ValueError("integer out of 64-bit range")
        return value
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


@cache
def _payload_kinds(table_name: str) -> tuple[tuple[str, str], ...]:
    """(field, kind) of each payload field, in schema order (``EventTable.field_kind``, computed once)."""
    table = event_table(table_name)
    return tuple((name, table.field_kind(name)) for name in table.json_schema["properties"])


def event_to_row(event: object, from_text: bool = False) -> tuple[EventTable | None, dict, list[str]]:
    """Map one decoded CloudEvent to a canonical row. Returns (table, row, reasons); a non-empty
    ``reasons`` list means the event is rejected. ``from_text`` relaxes integer typing for CSV."""
    if not isinstance(event, dict):
        return None, {}, ["structure: event is not a JSON object"]
    reasons: list[str] = []
    if event.get("specversion") != "1.0":
        reasons.append("envelope.specversion: expected '1.0'")
    table = table_for_type(str(event.get("type")))
    if table is None:
        reasons.append(f"envelope.type: unknown event type {event.get('type')!r}")
    row: dict = {}
    for key in ("source", "id"):
        value = event.get(key)
        if not isinstance(value, str) or not value:
            reasons.append(f"envelope.{key}: expected a non-empty string")
    row["source"], row["event_id"] = event.get("source"), event.get("id")
    try:
        row["event_time"] = parse_timestamp(event.get("time"))
    except ValueError as err:
        reasons.append(_reason("envelope.time", err))
    unknown = set(event) - ENVELOPE_KEYS
    if unknown and not from_text:
        reasons.append(f"envelope: unknown attribute(s) {sorted(unknown)}")
    data = event.get("data")
    if not isinstance(data, dict):
        reasons.append("envelope.data: expected a JSON object")
        return table, row, reasons
    if table is None:
        return None, row, reasons
    props = table.json_schema["properties"]
    extra = set(data) - set(props)
    if extra:
        reasons.append(f"data: unknown field(s) {sorted(extra)}")
    for name, kind in _payload_kinds(table.name):
        try:
            row[name] = _coerce(kind, data.get(name), from_text)
        except (ValueError, TypeError) as err:
            reasons.append(_reason(f"data.{name}", err) if isinstance(err, ValueError) else f"data.{name}: {err}")
    for name, value in row.items():
        # JSON can spell a lone UTF-16 surrogate ("\ud800"), which no UTF-8 column can hold.
        if isinstance(value, str) and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                where = {"source": "envelope.source", "event_id": "envelope.id"}.get(name, f"data.{name}")
                reasons.append(f"{where}: not valid Unicode (a lone surrogate)")
    return table, row, reasons


class _ChunkBuilder:
    def __init__(self, uri: str, offset: int = 0):
        self.uri, self.offset = uri, offset
        self.rows: dict[str, list[dict]] = {name: [] for name in EVENT_TABLES}
        self.rejected: list[dict] = []
        self.rows_in = 0

    def add(self, line: int, raw: str, event: object, from_text: bool = False) -> None:
        self.rows_in += 1
        self.add_at(self.offset + self.rows_in, line, raw, event, from_text)

    def add_at(
        self, ord_: int, line: int, raw: str, event: object, from_text: bool = False, problems: tuple[str, ...] = ()
    ) -> None:
        """Add one decoded event at a known position (does not count it in ``rows_in``); ``problems``
        found while decoding it reject it too."""
        table, row, reasons = event_to_row(event, from_text)
        reasons = [*problems, *reasons]
        if reasons:
            self.reject(line, raw, reasons, event if isinstance(event, dict) else None)
            return
        assert table is not None  # event_to_row gives a reason whenever it finds no table
        # _ord (the event's position in the file) is unique even when a JSON array puts many
        # events on one line; _line is what a person needs to find the event.
        row["_ord"], row["_line"], row["_raw"] = ord_, line, raw[:MAX_RAW]
        self.rows[table.name].append(row)

    def reject(self, line: int, raw: str, reasons: list[str], event: dict | None = None) -> None:
        event = event or {}
        data = event.get("data")
        self.rejected.append(
            {
                "line": line,
                "event_type": _str_or_none(event.get("type")),
                "source": _str_or_none(event.get("source")),
                "event_id": _str_or_none(event.get("id")),
                "deployment_id": _str_or_none(data.get("deployment_id")) if isinstance(data, dict) else None,
                "reasons": reasons,
                "raw": raw[:MAX_RAW],
            }
        )

    def __len__(self) -> int:
        return self.rows_in

    def next(self) -> _ChunkBuilder:
        """A builder for the next chunk: ``_ord`` keeps counting across chunks of one file."""
        return _ChunkBuilder(self.uri, self.offset + self.rows_in)

    def build(self) -> ParsedChunk:
        tables = {
            name: pa.Table.from_pylist(rows, schema=parsed_schema(event_table(name)))
            for name, rows in self.rows.items()
            if rows
        }
        return ParsedChunk(tables, self.rejected, self.rows_in)


def _str_or_none(value: object) -> str | None:
    """A rejected event's attribute for its quarantine row; a lone surrogate (which no UTF-8 column
    holds) is kept as its ``\\udxxx`` escape."""
    if not isinstance(value, str):
        return None
    if value.isascii():
        return value
    return value.encode("utf-8", errors="backslashreplace").decode("utf-8")


def _utf8_problem(err: UnicodeDecodeError) -> str:
    return f"encoding: invalid UTF-8 at byte {err.start}: {err.reason}"


def _size_problem() -> str:
    return f"size: event is longer than {MAX_EVENT_BYTES} bytes"


def _depth_problem(at: int) -> str:
    return f"json: nested deeper than {MAX_DEPTH} levels (at byte {at})"


_decoder = cache(strictjson.Decoder)


def _add_line(builder: _ChunkBuilder, ord_: int, number: int, raw: bytes) -> None:
    """Decide one NDJSON line (without its newline) within the limits: sized and depth-checked on
    the bytes, then decoded with duplicate keys and non-finite numbers reported."""
    raw = raw.rstrip(b"\r")
    if number == 1 and raw.startswith(BOM):
        raw = raw[len(BOM) :]
    if len(raw) > MAX_EVENT_BYTES:
        builder.reject(number, raw[:MAX_RAW].decode("utf-8", errors="backslashreplace"), [_size_problem()])
        return
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        builder.reject(number, raw.decode("utf-8", errors="backslashreplace"), [_utf8_problem(err)])
        return
    at = strictjson.depth_exceeds(raw, MAX_DEPTH)
    if at is not None:
        builder.reject(number, text, [_depth_problem(at)])
        return
    try:
        event, problems = _decoder().decode(text)
    except json.JSONDecodeError as err:
        builder.reject(number, text, [f"json: {err.msg} at column {err.colno}"])
        return
    builder.add_at(ord_, number, text, event, problems=tuple(problems))


def _ndjson_reference(uri: str, chunk_rows: int) -> Iterator[ParsedChunk]:
    """Line by line with ``strictjson``: the reference the fast NDJSON path must agree with."""
    builder = _ChunkBuilder(uri)
    for number, raw in enumerate(landed.iter_lines(uri), start=1):
        if not raw.strip():
            continue
        builder.rows_in += 1
        _add_line(builder, builder.offset + builder.rows_in, number, raw)
        if len(builder) >= chunk_rows:
            yield builder.build()
            builder = builder.next()
    yield builder.build()


# -- NDJSON, column-wise ---------------------------------------------------------------------------

READ_BLOCK = 16 << 20  # bytes read from storage at a time
BISECT_MIN = 64  # a failing group of at most this many lines goes to the reference path whole
_LBRACE, _RBRACE, _LBRACKET, _CR = ord("{"), ord("}"), ord("["), ord("\r")
_TYPE_PREFIX = b"org.sensorlog."
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
    data = pa.struct([pa.field(name, arrow[kind]) for name, kind in _payload_kinds(table_name)])
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
    for name, kind in _payload_kinds(table.name):
        values = data.field(name)
        if kind == "timestamp":
            values, bad = _timestamps(values)
            mask |= bad
        columns.append(values)
    return columns, mask


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
            # Route each candidate by the letter after "org.sensorlog." (its type, if the line is what it
            # seems); a wrong guess only fails the read or the certification, and the line goes slow.
            lines = self.all_lines()
            numbers = self.events[positions]
            where = np.asarray(pc.find_substring(lines, _TYPE_PREFIX.decode()), np.int64)[numbers]
            found = where >= 0
            letter = np.zeros(len(positions), np.uint8)
            letter[found] = data[bounds[numbers[found]] + where[found] + len(_TYPE_PREFIX)]
            routed = np.zeros(len(positions), bool)
            for name in EVENT_TABLES:
                mine = np.flatnonzero(found & (letter == ord(name[0])))
                routed[mine] = True
                if len(mine):
                    self._fast(event_table(name), positions[mine], lines.take(pa.array(numbers[mine])))
            self.slow.append(positions[~routed])
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
        builder = _ChunkBuilder(self.uri)
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


def _json_array(uri: str, chunk_rows: int) -> Iterator[ParsedChunk]:
    # A JSON array has no line structure to resynchronise on: an error anywhere spoils the file.
    # Vendors with large exports should send NDJSON, which streams; arrays are read whole, up to
    # MAX_JSON_ARRAY_BYTES, and measured for depth before any decoder sees them.
    data = landed.read_all(uri, MAX_JSON_ARRAY_BYTES)
    if data.startswith(BOM):
        data = data[len(BOM) :]
    at = strictjson.depth_exceeds(data, MAX_DEPTH + 1)  # the array itself is one level
    if at is not None:
        line = data[:at].count(b"\n") + 1
        raise UnparseableFile(uri, line, f"JSON nested deeper than {MAX_DEPTH} levels in an event (byte {at})")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise UnparseableFile(uri, line, f"invalid UTF-8 at byte {err.start}") from err
    try:
        events = json.loads(text)
    except json.JSONDecodeError as err:
        raise UnparseableFile(uri, err.lineno, f"JSON syntax: {err.msg} (column {err.colno})") from err
    if not isinstance(events, list):
        raise UnparseableFile(uri, 1, "expected a JSON array of CloudEvents")
    builder = _ChunkBuilder(uri)
    decoder = _decoder()
    # Decode each element again where it lies, for its line number, raw text and the problems
    # (repeated keys, non-finite numbers) that the first, syntax-only pass resolves silently.
    pos, line, counted = text.index("[") + 1, 1, 0
    for _ in range(len(events)):
        while text[pos] in " \t\r\n,":
            pos += 1
        event, end, problems = decoder.raw_decode(text, pos)
        line += text.count("\n", counted, pos)
        counted = pos
        raw = text[pos:end]
        builder.rows_in += 1
        if len(raw.encode("utf-8", errors="surrogatepass")) > MAX_EVENT_BYTES:
            builder.reject(line, raw, [_size_problem()], event if isinstance(event, dict) else None)
        else:
            builder.add_at(builder.offset + builder.rows_in, line, raw, event, problems=tuple(problems))
        pos = end
        if len(builder) >= chunk_rows:
            yield builder.build()
            builder = builder.next()
    yield builder.build()


@dataclass
class _Record:
    """One CSV record: the number of its first line, its raw text (every physical line it spans),
    and its cells, or the problem that rejects it."""

    line: int
    raw: str
    cells: list[str] | None
    problem: str | None = None


class _CsvRecords:
    """The records of a CSV file, each from exactly the physical lines it spans (a quoted field may
    hold newlines), so every line belongs to exactly one record or one rejection.

    A quoted newline is trusted only when the record it makes is well-formed: a record spanning
    several lines that the CSV reader refuses, that has other than ``width`` cells, that is still
    open at the end of the file or that grows beyond ``MAX_EVENT_BYTES`` (an unterminated quote)
    rejects only the line it began on, and the lines after it are read again as records of their
    own, so a stray quote never swallows the rows after it. Bytes are decoded per record, so a
    record holding invalid UTF-8 is one rejected row. A byte order mark at the start is ignored."""

    def __init__(self, uri: str):
        self.width: int | None = None  # cells a record must have, once the header is read
        self.source = enumerate(landed.iter_lines(uri), start=1)
        self.pending: deque[tuple[int, bytes]] = deque()  # lines to read again
        self.taken: list[tuple[int, bytes]] = []  # the physical lines of the record being read
        self.size = 0
        self.ended = False  # the reader's input ended (end of file, or the record bound)

    def _lines(self) -> Iterator[str]:
        while self.size <= MAX_EVENT_BYTES:
            item = self.pending.popleft() if self.pending else next(self.source, None)
            if item is None:
                break
            number, raw = item
            if number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM) :]
            self.taken.append((number, raw))
            self.size += len(raw) + 1
            yield raw.decode("utf-8", errors="surrogateescape") + "\n"
        self.ended = True

    def _record(self, cells: list[str] | None, problem: str | None) -> _Record:
        data = b"\n".join(raw for _, raw in self.taken)
        data = data[:-1] if data.endswith(b"\r") else data
        raw = data.decode("utf-8", errors="backslashreplace")
        if problem is None and not data.isascii():
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as err:
                cells, problem = None, _utf8_problem(err)
        if problem is None and self.size > MAX_EVENT_BYTES:
            cells, problem = None, _size_problem()
        return _Record(self.taken[0][0] if self.taken else 0, raw[:MAX_RAW], cells, problem)

    def _first_line_only(self, problem: str) -> _Record:
        """Reject the first line of the record being read; its other lines are read again."""
        self.pending.extendleft(reversed(self.taken[1:]))
        del self.taken[1:]
        self.size = len(self.taken[0][1]) + 1
        return self._record(None, problem)

    def __iter__(self) -> Iterator[_Record]:
        while True:
            self.ended = False
            reader = csv.reader(self._lines(), strict=True)
            while True:
                self.taken, self.size = [], 0
                try:
                    cells = next(reader)
                except StopIteration:
                    if self.pending:
                        break
                    return
                except csv.Error as err:
                    if len(self.taken) > 1 or (self.ended and self.taken):
                        what = "unterminated quoted field" if self.ended else "quoted field across lines"
                        yield self._first_line_only(f"csv: {what} ({err})")
                        break  # a new reader reads on from the line after
                    yield self._record(None, f"csv: {err}")
                    continue
                if len(self.taken) > 1 and self.width is not None and len(cells) != self.width:
                    yield self._first_line_only(
                        f"csv: a quoted field across lines gives {len(cells)} cells, not {self.width}"
                        " (unterminated quote?)"
                    )
                    break
                yield self._record(cells, None)


def _csv(uri: str, chunk_rows: int) -> Iterator[ParsedChunk]:
    builder = _ChunkBuilder(uri)
    reader = _CsvRecords(uri)
    records = iter(reader)
    header_record = next(records, None)
    if header_record is None:
        yield builder.build()
        return
    if header_record.cells is None:
        raise UnparseableFile(uri, header_record.line, f"CSV header: {header_record.problem}")
    header = [h.strip() for h in header_record.cells]
    missing = {"id", "source", "type", "time"} - set(header)
    if missing:
        raise UnparseableFile(uri, header_record.line, f"CSV header lacks column(s) {sorted(missing)}")
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise UnparseableFile(uri, header_record.line, f"CSV header repeats column(s) {repeated}")
    reader.width = len(header)
    for record in records:
        if record.cells is None:
            builder.rows_in += 1
            builder.reject(record.line, record.raw, [record.problem or "csv: unreadable record"])
        elif not any(c.strip() for c in record.cells):
            continue  # a blank line is not an event
        elif len(record.cells) != len(header):
            builder.rows_in += 1
            builder.reject(record.line, record.raw, [f"csv: expected {len(header)} cells, found {len(record.cells)}"])
        else:
            fields = dict(zip(header, record.cells, strict=True))
            event: dict[str, object] = {k: fields.pop(k) for k in list(fields) if k in ENVELOPE_KEYS}
            event["data"] = fields
            event.setdefault("specversion", "1.0")
            builder.add(record.line, record.raw, event, from_text=True)
        if len(builder) >= chunk_rows:
            yield builder.build()
            builder = builder.next()
    yield builder.build()


def parse_file(uri: str, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[ParsedChunk]:
    """Parse a landed file in chunks of at most ``chunk_rows`` events.

    Raises ``UnparseableFile`` (naming file, line and parser message) when the file as a whole
    cannot be read (including archives and other unsupported kinds, refused by name, and a corrupt
    ``.gz``); a bad line in a line-oriented file only rejects that line.
    """
    try:
        name = landed.form(uri).name
        if name == "ndjson":
            yield from _ndjson(uri, chunk_rows)
        elif name == "json":
            yield from _json_array(uri, min(chunk_rows, ROWWISE_CHUNK_ROWS))
        else:
            yield from _csv(uri, min(chunk_rows, ROWWISE_CHUNK_ROWS))
    except landed.Unreadable as err:
        raise UnparseableFile(uri, err.line, err.message) from err
