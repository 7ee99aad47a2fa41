"""Landed file → canonical Arrow tables, in bounded chunks.

Three wire forms are accepted, all carrying CloudEvents 1.0 in structured mode:
NDJSON (``.ndjson``/``.jsonl``: one event per line), a JSON array (``.json``) and CSV (``.csv``:
envelope attributes and payload fields as columns). Structural problems (bad JSON, bad bytes,
wrong types, unknown event types or fields) are decided here, per line, and become quarantine rows;
value rules (ranges, required fields, registry) are the validator's job.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa

from pipelines import storage
from pipelines.schemas import EVENT_TABLES, EventTable, event_table, table_for_type

DEFAULT_CHUNK_ROWS = 50_000
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
    for name in props:
        try:
            row[name] = _coerce(table.field_kind(name), data.get(name), from_text)
        except (ValueError, TypeError) as err:
            reasons.append(f"data.{name}: {err}")
    return table, row, reasons


class _ChunkBuilder:
    def __init__(self, uri: str, offset: int = 0):
        self.uri, self.offset = uri, offset
        self.rows: dict[str, list[dict]] = {name: [] for name in EVENT_TABLES}
        self.rejected: list[dict] = []
        self.rows_in = 0

    def add(self, line: int, raw: str, event: object, from_text: bool = False) -> None:
        self.rows_in += 1
        table, row, reasons = event_to_row(event, from_text)
        if reasons:
            self.reject(line, raw, reasons, event if isinstance(event, dict) else None)
            return
        # _ord (the event's position in the file) is unique even when a JSON array puts many
        # events on one line; _line is what a person needs to find the event.
        row["_ord"], row["_line"], row["_raw"] = self.offset + self.rows_in, line, raw[:MAX_RAW]
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


def _ndjson(uri: str, chunk_rows: int) -> Iterator[ParsedChunk]:
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
        yield from _json_array(uri, chunk_rows)
    elif lower.endswith(".csv"):
        yield from _csv(uri, chunk_rows)
    else:
        raise UnparseableFile(uri, 0, f"unsupported file type (expected one of {', '.join(SUFFIXES)})")
