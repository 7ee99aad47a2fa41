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
per-line reference path below (``json.loads`` + ``event_to_row``), which decides it exactly as
before: the fast path only ever accepts lines the reference path would accept with the same values,
and every rejected line gets its per-line reasons and line number from the reference path.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from pipelines import storage
from pipelines.schemas import EVENT_TABLES, EventTable, event_table, table_for_type

DEFAULT_CHUNK_ROWS = 250_000  # events per chunk: GX costs ~0.15 s per call, so chunks are large
# The row-by-row forms (JSON array, CSV) hold a Python dict per event until a chunk is built, which
# costs several times the Arrow size: their chunks stay at most this long.
ROWWISE_CHUNK_ROWS = 50_000
ENVELOPE_KEYS = {"specversion", "id", "source", "type", "time", "subject", "datacontenttype", "data"}
MAX_RAW = 100_000  # a quarantined line is kept whole up to this many characters
SUFFIXES = (".ndjson", ".jsonl", ".json", ".csv")


class UnparseableFile(Exception):
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


def parse_timestamp(value: object) -> datetime:
    """RFC 3339 timestamp with an explicit offset → aware UTC datetime."""
    if not isinstance(value, str):
        raise ValueError("expected an RFC 3339 timestamp string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("timestamp has no time zone offset")
    return parsed.astimezone(UTC)


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
        reasons.append(f"envelope.time: {err}")
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
            reasons.append(f"data.{name}: {err}")
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

    def add_at(self, ord_: int, line: int, raw: str, event: object, from_text: bool = False) -> None:
        """Add one decoded event at a known position (does not count it in ``rows_in``)."""
        table, row, reasons = event_to_row(event, from_text)
        if reasons:
            self.reject(line, raw, reasons, event if isinstance(event, dict) else None)
            return
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
    return value if isinstance(value, str) else None


def _decode(raw: bytes, line: int, builder: _ChunkBuilder) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        text = raw.decode("utf-8", errors="backslashreplace")
        builder.rows_in += 1
        builder.reject(line, text, [f"encoding: invalid UTF-8 at byte {err.start}: {err.reason}"])
        return None


def _ndjson_reference(uri: str, chunk_rows: int) -> Iterator[ParsedChunk]:
    """Line by line with ``json.loads``: the reference the fast NDJSON path must agree with."""
    builder = _ChunkBuilder(uri)
    for number, raw in enumerate(storage.iter_lines(uri), start=1):
        if not raw.strip():
            continue
        text = _decode(raw.rstrip(b"\r"), number, builder)
        if text is not None:
            try:
                event = json.loads(text)
            except json.JSONDecodeError as err:
                builder.rows_in += 1
                builder.reject(number, text, [f"json: {err.msg} at column {err.colno}"])
            else:
                builder.add(number, text, event)
        if len(builder) >= chunk_rows:
            yield builder.build()
            builder = builder.next()
    yield builder.build()


# -- NDJSON, column-wise ---------------------------------------------------------------------------

READ_BLOCK = 16 << 20  # bytes read from storage at a time
BISECT_MIN = 64  # a failing group of at most this many lines goes to the reference path whole
_LBRACE, _RBRACE, _CR = ord("{"), ord("}"), ord("\r")
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
    """The file's lines in blocks of about ``READ_BLOCK`` bytes, streamed."""
    rest, first = b"", 1
    with storage.open_input(uri) as f:
        while block := f.read(READ_BLOCK):
            data = rest + block if rest else block
            end = data.rfind(b"\n") + 1
            if not end:
                rest = data
                continue
            rest = data[end:]
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
        candidate = (data[starts] == _LBRACE) & (data[np.maximum(ends - 1, 0)] == _RBRACE) & (ends - starts <= MAX_RAW)
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
            raw = data[bounds[i] : bounds[i + 1] - 1].rstrip(b"\r")
            number = self.lines.first + i
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                text = raw.decode("utf-8", errors="backslashreplace")
                builder.reject(number, text, [f"encoding: invalid UTF-8 at byte {err.start}: {err.reason}"])
                continue
            try:
                event = json.loads(text)
            except json.JSONDecodeError as err:
                builder.reject(number, text, [f"json: {err.msg} at column {err.colno}"])
                continue
            builder.add_at(int(self.ords[position]), number, text, event)
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
    # Vendors with large exports should send NDJSON, which streams; arrays are read whole.
    data = storage.read_bytes(uri)
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
    decoder = json.JSONDecoder()
    # Recover each element's line number by re-scanning element boundaries.
    pos = text.index("[") + 1
    for event in events:
        while text[pos] in " \t\r\n,":
            pos += 1
        _, end = decoder.raw_decode(text, pos)
        line = text.count("\n", 0, pos) + 1
        builder.add(line, text[pos:end], event)
        pos = end
        if len(builder) >= chunk_rows:
            yield builder.build()
            builder = builder.next()
    yield builder.build()


def _csv_rows(uri: str, builder_box: list[_ChunkBuilder]) -> Iterable[tuple[int, str]]:
    for number, raw in enumerate(storage.iter_lines(uri), start=1):
        text = _decode(raw.rstrip(b"\r"), number, builder_box[0])
        if text is not None:
            yield number, text


def _csv(uri: str, chunk_rows: int) -> Iterator[ParsedChunk]:
    box = [_ChunkBuilder(uri)]
    numbered = _csv_rows(uri, box)
    current = {"line": 0, "text": ""}

    def lines() -> Iterator[str]:
        for number, text in numbered:
            current["line"], current["text"] = number, text
            yield text

    reader = csv.reader(lines(), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        yield box[0].build()
        return
    except csv.Error as err:
        raise UnparseableFile(uri, current["line"], f"CSV header: {err}") from err
    header = [h.strip() for h in header]
    missing = {"id", "source", "type", "time"} - set(header)
    if missing:
        raise UnparseableFile(uri, 1, f"CSV header lacks column(s) {sorted(missing)}")
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            box[0].rows_in += 1
            box[0].reject(current["line"], current["text"], [f"csv: {err}"])
            continue
        if not any(c.strip() for c in cells):
            continue
        line, text = current["line"], current["text"]
        if len(cells) != len(header):
            box[0].rows_in += 1
            box[0].reject(line, text, [f"csv: expected {len(header)} cells, found {len(cells)}"])
        else:
            record = dict(zip(header, cells, strict=True))
            event = {k: record.pop(k) for k in list(record) if k in ENVELOPE_KEYS}
            event["data"] = record
            event.setdefault("specversion", "1.0")
            box[0].add(line, text, event, from_text=True)
        if len(box[0]) >= chunk_rows:
            yield box[0].build()
            box[0] = box[0].next()
    yield box[0].build()


def parse_file(uri: str, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[ParsedChunk]:
    """Parse a landed file in chunks of at most ``chunk_rows`` events.

    Raises ``UnparseableFile`` (naming file, line and parser message) when the file as a whole
    cannot be read; a bad line in a line-oriented file only rejects that line.
    """
    lower = uri.lower()
    if lower.endswith((".ndjson", ".jsonl")):
        yield from _ndjson(uri, chunk_rows)
    elif lower.endswith(".json"):
        yield from _json_array(uri, min(chunk_rows, ROWWISE_CHUNK_ROWS))
    elif lower.endswith(".csv"):
        yield from _csv(uri, min(chunk_rows, ROWWISE_CHUNK_ROWS))
    else:
        raise UnparseableFile(uri, 0, f"unsupported file type (expected one of {', '.join(SUFFIXES)})")
