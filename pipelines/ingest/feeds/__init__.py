"""Vendor formats: which feed reads a landed file, by the end of its name.

To add a vendor format, add a module here with a Feed subclass and list it in FEEDS. Discovery
(``discovered_suffixes``: the sweep of the landing zone, S3 notifications, recovery), the choice of
parser (``feed_for``) and the message for a file nobody reads all follow FEEDS; what a feed must
guarantee is ``Feed``'s docstring (``feeds/base.py``). The per-event rules every feed shares
(``event_to_row``, timestamps, the quarantine rows) are ``pipelines.ingest.parsing``'s.

A ``.gz`` on any suffix is read decompressed; archives, other compressions and spreadsheets are listed
by discovery and refused whole with a reason (``landed.refusal``), as is any other ``.gz``.
"""

from __future__ import annotations

from collections.abc import Iterator

from pipelines.ingest import landed
from pipelines.ingest.feeds.base import Feed
from pipelines.ingest.feeds.cloudevents_csv import CloudEventsCsv
from pipelines.ingest.feeds.cloudevents_json import CloudEventsJson
from pipelines.ingest.feeds.cloudevents_ndjson import CloudEventsNdjson
from pipelines.ingest.parsing import DEFAULT_CHUNK_ROWS, ParsedChunk, UnparseableFile

__all__ = ["FEEDS", "Feed", "discovered_suffixes", "feed_for", "parse_file", "readable_suffixes"]

# Every format read, in the order their suffixes are tried (and listed in messages).
FEEDS: tuple[Feed, ...] = (CloudEventsNdjson(), CloudEventsJson(), CloudEventsCsv())


def readable_suffixes() -> tuple[str, ...]:
    """The name endings some feed reads (each also read gzipped)."""
    return tuple(suffix for feed in FEEDS for suffix in feed.suffixes)


def discovered_suffixes() -> tuple[str, ...]:
    """What discovery lists: every file a feed reads, and every file refused whole with a reason."""
    return (*readable_suffixes(), *landed.ALSO_DISCOVERED)


def feed_for(uri: str) -> Feed:
    """The feed that reads ``uri``, by its name (without ``.gz``); raises ``landed.Unreadable``, with
    the reason, for a name no feed reads."""
    inner = landed.inner_name(uri)
    for feed in FEEDS:
        if inner.endswith(feed.suffixes):
            return feed
    raise landed.refusal(uri, readable_suffixes())


def parse_file(uri: str, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[ParsedChunk]:
    """Parse a landed file in chunks of at most ``chunk_rows`` events.

    Raises ``UnparseableFile`` (naming file, line and parser message) when the file as a whole
    cannot be read (including archives and other unsupported kinds, refused by name, and a corrupt
    ``.gz``); a bad line in a line-oriented file only rejects that line.
    """
    try:
        yield from feed_for(uri).parse(uri, chunk_rows)
    except landed.Unreadable as err:
        raise UnparseableFile(uri, err.line, err.message) from err
