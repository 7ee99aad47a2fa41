"""CloudEvents 1.0 in structured mode as CSV (``.csv``): envelope attributes and payload fields as columns.

The header names the columns (it must hold ``id``, ``source``, ``type`` and ``time``, each once, or the
file is quarantined whole); every record after it is one event, decided on its own
(``parsing.ChunkBuilder``, with text relaxed to integers where the schema says so), with the number
of the line it starts on. A blank record is not an event.
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pipelines.ingest import landed
from pipelines.ingest.feeds.base import Feed
from pipelines.ingest.limits import MAX_EVENT_BYTES, MAX_RAW
from pipelines.ingest.parsing import (
    BOM,
    ENVELOPE_KEYS,
    ROWWISE_CHUNK_ROWS,
    ChunkBuilder,
    ParsedChunk,
    UnparseableFile,
    size_problem,
    utf8_problem,
)


class CloudEventsCsv(Feed):
    name = "cloudevents-csv"
    suffixes = (".csv",)

    def parse(self, uri: str, chunk_rows: int) -> Iterator[ParsedChunk]:
        return _csv(uri, min(chunk_rows, ROWWISE_CHUNK_ROWS))


@dataclass
class CsvRecord:
    """One CSV record: the number of its first line, its raw text (every physical line it spans),
    and its cells, or the problem that rejects it."""

    line: int
    raw: str
    cells: list[str] | None
    problem: str | None = None


class CsvRecords:
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

    def _record(self, cells: list[str] | None, problem: str | None) -> CsvRecord:
        data = b"\n".join(raw for _, raw in self.taken)
        data = data[:-1] if data.endswith(b"\r") else data
        raw = data.decode("utf-8", errors="backslashreplace")
        if problem is None and not data.isascii():
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as err:
                cells, problem = None, utf8_problem(err)
        if problem is None and self.size > MAX_EVENT_BYTES:
            cells, problem = None, size_problem()
        return CsvRecord(self.taken[0][0] if self.taken else 0, raw[:MAX_RAW], cells, problem)

    def _first_line_only(self, problem: str) -> CsvRecord:
        """Reject the first line of the record being read; its other lines are read again."""
        self.pending.extendleft(reversed(self.taken[1:]))
        del self.taken[1:]
        self.size = len(self.taken[0][1]) + 1
        return self._record(None, problem)

    def __iter__(self) -> Iterator[CsvRecord]:
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


# A CSV reader's header rule: the header's cells and line → the column names rows are keyed by
# (raises UnparseableFile, quarantining the file whole, when the header is not one this reader reads).
HeaderRule = Callable[[list[str], int], list[str]]
# A CSV reader's row rule: adds one well-formed row (its record and cells by column) to the chunk.
RowRule = Callable[[ChunkBuilder, CsvRecord, dict[str, str]], None]


def csv_chunks(uri: str, chunk_rows: int, header_rule: HeaderRule, row_rule: RowRule) -> Iterator[ParsedChunk]:
    """The chunks of a CSV file with a header, shared by every CSV feed: the header rule names the
    columns, each unreadable or mis-sized record is rejected with its line, a blank record is skipped,
    and every other record goes to the row rule, so every physical line ends in exactly one row, one
    rejection or a blank."""
    builder = ChunkBuilder(uri)
    reader = CsvRecords(uri)
    records = iter(reader)
    header_record = next(records, None)
    if header_record is None:
        yield builder.build()
        return
    if header_record.cells is None:
        raise UnparseableFile(uri, header_record.line, f"CSV header: {header_record.problem}")
    header = header_rule(header_record.cells, header_record.line)
    reader.width = len(header)
    for record in records:
        if record.cells is None:
            builder.rows_in += 1
            builder.reject(record.line, record.raw, [record.problem or "csv: unreadable record"])
        elif not any(c.strip() for c in record.cells):
            continue  # a blank line is not a row
        elif len(record.cells) != len(header):
            builder.rows_in += 1
            builder.reject(record.line, record.raw, [f"csv: expected {len(header)} cells, found {len(record.cells)}"])
        else:
            row_rule(builder, record, dict(zip(header, record.cells, strict=True)))
        if len(builder) >= chunk_rows:
            yield builder.build()
            builder = builder.next()
    yield builder.build()


def _csv(uri: str, chunk_rows: int) -> Iterator[ParsedChunk]:
    def header_rule(cells: list[str], line: int) -> list[str]:
        header = [h.strip() for h in cells]
        missing = {"id", "source", "type", "time"} - set(header)
        if missing:
            raise UnparseableFile(uri, line, f"CSV header lacks column(s) {sorted(missing)}")
        repeated = sorted({h for h in header if header.count(h) > 1})
        if repeated:
            raise UnparseableFile(uri, line, f"CSV header repeats column(s) {repeated}")
        return header

    def row_rule(builder: ChunkBuilder, record: CsvRecord, fields: dict[str, str]) -> None:
        event: dict[str, object] = {k: fields.pop(k) for k in list(fields) if k in ENVELOPE_KEYS}
        event["data"] = fields
        event.setdefault("specversion", "1.0")
        builder.add(record.line, record.raw, event, from_text=True)

    return csv_chunks(uri, chunk_rows, header_rule, row_rule)
