"""Vendor formats: which feed reads a landed file, by the feed setting or else by the end of its name.

A file under a landing prefix that the feed setting (``selection``: ``feeds.toml`` next to the
registry) names is read by that prefix's feed, one of SETTING_FEEDS, with the setting's options; any
other file by the suffix feed (FEEDS) its name ends with. docs/feeds/README.md tells it for adopters.

To add a vendor format, add a module here with a Feed subclass and list it in FEEDS (chosen by
suffix) or SETTING_FEEDS (chosen by the setting), and describe it in docs/feeds/. Discovery
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
from pipelines.ingest.feeds.base import Feed, FeedSettingError
from pipelines.ingest.feeds.cloudevents_csv import CloudEventsCsv
from pipelines.ingest.feeds.cloudevents_json import CloudEventsJson
from pipelines.ingest.feeds.cloudevents_ndjson import CloudEventsNdjson
from pipelines.ingest.feeds.node_lifecycle import NodeLifecycle
from pipelines.ingest.feeds.selection import Selection
from pipelines.ingest.feeds.vendor_portal import VendorPortal
from pipelines.ingest.parsing import DEFAULT_CHUNK_ROWS, ParsedChunk, UnparseableFile

__all__ = [
    "FEEDS", "SETTING_FEEDS", "Feed", "FeedSettingError", "Selection", "discovered_suffixes", "feed_for",
    "parse_file", "readable_suffixes",
]

# Every format read by suffix, in the order their suffixes are tried (and listed in messages).
FEEDS: tuple[Feed, ...] = (CloudEventsNdjson(), CloudEventsJson(), CloudEventsCsv())
# Every format the feed setting may name (``feed = "<name>"``), unconfigured: ``configure`` gives each
# prefix its own copy with that entry's options.
SETTING_FEEDS: tuple[Feed, ...] = (NodeLifecycle(), VendorPortal())
NO_SELECTION = Selection()


def readable_suffixes() -> tuple[str, ...]:
    """The name endings some feed reads (each also read gzipped)."""
    return tuple(suffix for feed in FEEDS for suffix in feed.suffixes)


def discovered_suffixes() -> tuple[str, ...]:
    """What discovery lists: every file a feed reads (by suffix or under a configured prefix), and
    every file refused whole with a reason."""
    setting = (suffix for feed in SETTING_FEEDS for suffix in feed.suffixes)
    return tuple(dict.fromkeys((*readable_suffixes(), *setting, *landed.ALSO_DISCOVERED)))


def feed_for(uri: str, selection: Selection = NO_SELECTION) -> Feed:
    """The feed that reads ``uri``: its prefix's feed when ``selection`` routes it, else the suffix
    feed its name (without ``.gz``) ends with; raises ``landed.Unreadable``, with the reason, for a
    name no feed reads there."""
    inner = landed.inner_name(uri)
    route = selection.route_for(uri)
    if route is not None:
        if inner.endswith(route.feed.suffixes):
            return route.feed
        refused = landed.refusal(uri, route.feed.suffixes)
        if not refused.message.startswith("unsupported file type"):
            raise refused  # an archive, another compression, a workbook: said as everywhere
        listed = ", ".join([*route.feed.suffixes, *(s + landed.GZIP for s in route.feed.suffixes)])
        raise landed.Unreadable(
            f"under the landing prefix {route.prefix + '/'!r} the feed setting names the {route.feed.name} "
            f"feed, which reads only {listed}"
        )
    for feed in FEEDS:
        if inner.endswith(feed.suffixes):
            return feed
    raise landed.refusal(uri, readable_suffixes())


def parse_file(
    uri: str, chunk_rows: int = DEFAULT_CHUNK_ROWS, selection: Selection = NO_SELECTION
) -> Iterator[ParsedChunk]:
    """Parse a landed file in chunks of at most ``chunk_rows`` events, by the feed ``feed_for`` picks
    (``selection``: the feed setting, ``selection.load(settings)``; none by default).

    Raises ``UnparseableFile`` (naming file, line and parser message) when the file as a whole
    cannot be read (including archives and other unsupported kinds, refused by name, and a corrupt
    ``.gz``); a bad line in a line-oriented file only rejects that line.
    """
    try:
        yield from feed_for(uri, selection).parse(uri, chunk_rows)
    except landed.Unreadable as err:
        raise UnparseableFile(uri, err.line, err.message) from err
