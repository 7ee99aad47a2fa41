"""What every vendor format shares: one decoded CloudEvent → one canonical row, or its reasons.

The feeds (``pipelines.ingest.feeds``, one module per wire format) read a landed file's bytes and hand
each event to ``ChunkBuilder``, which decides it with ``event_to_row``: the per-event reference path.
Structural problems (wrong types, unknown event types or fields, a bad envelope) are decided here,
per event, and become quarantine rows with the event's line number; value rules (ranges, required
fields, registry) are the validator's job. Nothing is resolved silently: a repeated JSON key, a
non-finite number, a timestamp finer than microseconds or outside years 0001-9999 in UTC rejects the
event. The reasons for the limits (``pipelines.ingest.limits``) that a feed checks on the bytes are
spelled here too, so every format reports them alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache

import pyarrow as pa

from pipelines.errors import SensorlogError
from pipelines.ingest import strictjson
from pipelines.ingest.limits import MAX_DEPTH, MAX_EVENT_BYTES, MAX_RAW
from pipelines.schemas import EVENT_TABLES, EventTable, event_table, table_for_type

DEFAULT_CHUNK_ROWS = 250_000  # events per chunk: GX costs ~0.15 s per call, so chunks are large
# The row-by-row forms (JSON array, CSV) hold a Python dict per event until a chunk is built, which
# costs several times the Arrow size: their chunks stay at most this long.
ROWWISE_CHUNK_ROWS = 50_000
ENVELOPE_KEYS = {"specversion", "id", "source", "type", "time", "subject", "datacontenttype", "data"}
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
def payload_kinds(table_name: str) -> tuple[tuple[str, str], ...]:
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
    for name, kind in payload_kinds(table.name):
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


class ChunkBuilder:
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

    def next(self) -> ChunkBuilder:
        """A builder for the next chunk: ``_ord`` keeps counting across chunks of one file."""
        return ChunkBuilder(self.uri, self.offset + self.rows_in)

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


# The reasons for the limits a feed checks on the bytes, spelled once so that every format reports them alike.


def utf8_problem(err: UnicodeDecodeError) -> str:
    return f"encoding: invalid UTF-8 at byte {err.start}: {err.reason}"


def size_problem() -> str:
    return f"size: event is longer than {MAX_EVENT_BYTES} bytes"


def depth_problem(at: int) -> str:
    return f"json: nested deeper than {MAX_DEPTH} levels (at byte {at})"


# One strict decoder per process: each decode starts its list of problems afresh.
decoder = cache(strictjson.Decoder)
