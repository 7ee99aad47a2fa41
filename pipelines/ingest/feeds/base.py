"""The contract every vendor format keeps (``Feed``); ``pipelines.ingest.feeds`` lists the formats.

It is a module of its own so that the format modules can subclass ``Feed`` without importing the
package that lists them (which imports them).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import ClassVar

from pipelines.ingest.parsing import ParsedChunk


class Feed(ABC):
    """One vendor wire format: how the files whose names end in ``suffixes`` become canonical rows.

    To add a vendor format, add a module here (``pipelines/ingest/feeds/``) with a Feed subclass and
    list it in FEEDS (``pipelines/ingest/feeds/__init__.py``). Nothing else changes: discovery, the S3
    notifications and ``parse_file`` all take their suffixes and their choice of parser from FEEDS.

    What a feed must guarantee, so that the run's books balance (rows in = published + quarantined +
    duplicates):

    * every event in the file either becomes a row or a quarantine reason with its line number: hand
      each one to ``pipelines.ingest.parsing.ChunkBuilder`` (``add``/``add_at``, which decide it with
      ``event_to_row``, the reference path), or ``reject`` it with a reason; ``rows_in`` counts both;
    * nothing is lost: no line is skipped, merged into another or read twice, except lines that hold
      no event at all (blank lines), which are not counted;
    * structural problems (bad bytes, bad syntax, wrong types, unknown types or fields) are decided
      per line, so one bad line rejects that line only; ``UnparseableFile`` (or ``landed.Unreadable``)
      is for a file that as a whole cannot be read, and quarantines it whole;
    * the limits of ``pipelines.ingest.limits`` (event size, nesting depth, bytes read whole) are
      checked on the bytes before any decoder sees them, with the reasons ``parsing`` spells
      (``size_problem``, ``depth_problem``, ``utf8_problem``);
    * bytes come from ``pipelines.ingest.landed`` (``open_input``, ``iter_lines``, ``read_all``), which
      decompresses ``.gz`` and bounds every line; a UTF-8 byte order mark at the start is ignored;
    * chunks hold at most ``chunk_rows`` events, ``_ord`` keeps counting across the chunks of a file
      (``ChunkBuilder.next``), and rows keep the order of the file within each table.
    """

    name: ClassVar[str]  # names the format in messages and tests
    suffixes: ClassVar[tuple[str, ...]]  # lower-case name endings (".ndjson"), each read by exactly one feed

    @abstractmethod
    def parse(self, uri: str, chunk_rows: int) -> Iterator[ParsedChunk]:
        """The file's events in chunks of at most ``chunk_rows``; raises ``UnparseableFile`` or
        ``landed.Unreadable`` only when the file as a whole cannot be read."""
