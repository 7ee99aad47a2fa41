"""The contract every vendor format keeps (``Feed``); ``pipelines.ingest.feeds`` lists the formats.

It is a module of its own so that the format modules can subclass ``Feed`` without importing the
package that lists them (which imports them).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from typing import ClassVar, Literal

from pipelines.errors import UsageError
from pipelines.ingest.parsing import ParsedChunk


class FeedSettingError(UsageError, ValueError):
    """The feed setting (``feeds.toml``) cannot be used: it names the file, the entry and the option.
    A usage error (exit 2): no file is staged, and so none is quarantined, under a broken setting."""


class Feed(ABC):
    """One vendor wire format: how the files whose names end in ``suffixes`` become canonical rows.

    To add a vendor format, add a module here (``pipelines/ingest/feeds/``) with a Feed subclass and
    list it in FEEDS or SETTING_FEEDS (``pipelines/ingest/feeds/__init__.py``; see below), and describe
    it in ``docs/feeds/``. Nothing else changes: discovery, the S3 notifications and ``parse_file`` all
    take their suffixes and their choice of parser from those two lists and the feed setting.

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

    Feeds are chosen one of two ways (``selected_by``). A ``suffix`` feed is listed in FEEDS and reads
    every file whose name ends in one of its suffixes, outside any configured prefix. A ``setting`` feed
    is listed in SETTING_FEEDS and reads only the landing sub-folders a feed setting names
    (``pipelines.ingest.feeds.selection``: ``feeds.toml`` next to the registry); ``configure`` gives it
    that setting's options, and its suffixes only say which names it reads there.
    """

    name: ClassVar[str]  # names the format in messages, tests and the feed setting
    suffixes: ClassVar[tuple[str, ...]]  # lower-case name endings (".ndjson"); suffix feeds: each read by one feed
    selected_by: ClassVar[Literal["suffix", "setting"]] = "suffix"

    def configure(self, options: Mapping[str, object], where: str) -> Feed:
        """This feed with a setting's ``options`` (time zone, id mapping, ...), checked: raises
        ``FeedSettingError`` naming ``where`` (the file and entry) for a missing, unknown or malformed
        option. A feed that takes no options accepts none."""
        if options:
            raise FeedSettingError(f"{where}: feed {self.name!r} takes no options (given {sorted(options)})")
        return self

    @abstractmethod
    def parse(self, uri: str, chunk_rows: int) -> Iterator[ParsedChunk]:
        """The file's events in chunks of at most ``chunk_rows``; raises ``UnparseableFile`` or
        ``landed.Unreadable`` only when the file as a whole cannot be read."""
