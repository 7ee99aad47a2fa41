"""What the CSV vendor exports share: a header that must name exactly the expected columns, then one
record per row, each turned into zero or more CloudEvents by the feed, or rejected with its reasons.

Records come from ``cloudevents_csv.csv_chunks``, the loop every CSV feed shares (bounded, per-record
UTF-8, a stray quote rejects one line), so every physical line ends in exactly one row, one rejection
or a blank. A row is one
decision: either all of its events go to ``ChunkBuilder`` (and each is then published or quarantined
on its own) or the row is one quarantine row naming every problem found in it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from pipelines.errors import SensorlogError
from pipelines.ingest.feeds.cloudevents_csv import CsvRecord, csv_chunks
from pipelines.ingest.parsing import (
    ROWWISE_CHUNK_ROWS,
    ChunkBuilder,
    ParsedChunk,
    UnparseableFile,
    parse_timestamp,
)


class RowProblems(SensorlogError, ValueError):
    """Why a row cannot become events: one reason per problem, each led by its column."""

    def __init__(self, reasons: list[str]):
        super().__init__("; ".join(reasons))
        self.reasons = reasons


# A feed's row rule: the row's cells by column name → the row's CloudEvents (may raise RowProblems).
RowToEvents = Callable[[dict[str, str]], list[dict]]


def parse(
    uri: str, chunk_rows: int, columns: tuple[str, ...], feed: str, to_events: RowToEvents
) -> Iterator[ParsedChunk]:
    """The events of a CSV whose header holds exactly ``columns`` (in any order, names compared
    trimmed and lower-cased); any other header quarantines the file whole with the difference."""
    def header_rule(cells: list[str], line: int) -> list[str]:
        header = [h.strip().lower() for h in cells]
        repeated = sorted({h for h in header if header.count(h) > 1})
        missing, extra = sorted(set(columns) - set(header)), sorted(set(header) - set(columns))
        if repeated or missing or extra:
            problems = [f"{what} {names}" for what, names in
                        (("lacks column(s)", missing), ("has unexpected column(s)", extra),
                         ("repeats column(s)", repeated))
                        if names]
            raise UnparseableFile(
                uri, line, f"CSV header {'; '.join(problems)}: the {feed} feed reads exactly {', '.join(columns)}"
            )
        return header

    def row_rule(builder: ChunkBuilder, record: CsvRecord, fields: dict[str, str]) -> None:
        try:
            events = to_events(fields)
        except RowProblems as err:
            builder.rows_in += 1
            builder.reject(record.line, record.raw, [f"{feed}: {reason}" for reason in err.reasons])
            return
        for event in events:
            builder.add(record.line, record.raw, event)

    return csv_chunks(uri, min(chunk_rows, ROWWISE_CHUNK_ROWS), header_rule, row_rule)


_LOCAL = re.compile(r"^(\d{4})[/-](\d{2})[/-](\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?$")


def local_instant(text: str, zone: ZoneInfo) -> datetime:
    """A wall-clock time without offset (``2018/02/22 00:00:00``, ``2018-02-22 00:00``, a bare date),
    read in ``zone``, as an aware UTC datetime; a time with an explicit offset (RFC 3339) is kept.

    A wall-clock time the zone skips (spring forward) is refused; one it repeats (fall back) is the
    first of the two, as ``zoneinfo`` reads ``fold=0``."""
    value = text.strip()
    match = _LOCAL.match(value)
    if match is None:
        try:
            parsed = parse_timestamp(value)
        except ValueError:
            what = "a time like 2018/02/22 00:00:00 (or RFC 3339 with an offset)"
            raise ValueError(f"{text[:60]!r} is not {what}") from None
        return parsed
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in match.groups())
    try:
        wall = datetime(year, month, day, hour, minute, second, tzinfo=zone)
    except ValueError as err:
        raise ValueError(f"{value!r}: {err}") from None
    back = wall.astimezone(UTC).astimezone(zone)
    if back.replace(tzinfo=None) != wall.replace(tzinfo=None):
        raise ValueError(f"{value!r} does not exist in {zone.key} (the clocks skip it)")
    try:
        return wall.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value!r} is outside years 0001-9999 in UTC") from None


def utc_text(instant: datetime) -> str:
    """An instant as the RFC 3339 text a CloudEvent carries."""
    return instant.astimezone(UTC).isoformat()
