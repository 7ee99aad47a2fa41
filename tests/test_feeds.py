"""The vendor-format seam: ``pipelines.ingest.feeds.FEEDS`` is the one place that says which files are
read and by what, and the NDJSON fast path routes a line by its exact type, never by a prefix."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from audit_kit import deployment, write_registry
from conftest import DEPLOYMENT, make_event

from pipelines import flow, layout, storage
from pipelines.config import Settings
from pipelines.ingest import feeds, landed, notifications
from pipelines.ingest.feeds import Feed, cloudevents_ndjson, discovered_suffixes, feed_for, parse_file
from pipelines.ingest.parsing import ChunkBuilder, ParsedChunk, UnparseableFile
from pipelines.schemas import EVENT_TABLES

pytestmark = pytest.mark.integration

# What discovery listed, and how each suffix no feed reads was refused, before the seam existed.
LISTED_BEFORE = (
    ".ndjson", ".jsonl", ".json", ".csv", ".gz", ".zip", ".tar", ".tgz", ".tbz", ".tbz2", ".txz", ".7z", ".rar",
    ".bz2", ".xz", ".zst", ".lz4", ".z", ".xlsx", ".xls", ".ods",
)
UNKNOWN_KIND = (
    "unsupported file type (expected one of .ndjson, .jsonl, .json, .csv, .ndjson.gz, .jsonl.gz, .json.gz, .csv.gz)"
)
ARCHIVE = "unsupported: an archive (unpack it and land its files one by one)"
COMPRESSION = "unsupported compression (only .gz is read)"
SPREADSHEET = "unsupported: a spreadsheet workbook (export it as CSV UTF-8)"
REFUSED_BEFORE = {
    ".gz": UNKNOWN_KIND,
    **dict.fromkeys((".zip", ".tar", ".tgz", ".tbz", ".tbz2", ".txz", ".7z", ".rar"), ARCHIVE),
    **dict.fromkeys((".bz2", ".xz", ".zst", ".lz4", ".z"), COMPRESSION),
    **dict.fromkeys((".xlsx", ".xls", ".ods"), SPREADSHEET),
}


class PipeFeed(Feed):
    """A made-up vendor format: one ``event id|records`` collection per line."""

    name = "test-pipes"
    suffixes = (".pipes",)

    def parse(self, uri: str, chunk_rows: int) -> Iterator[ParsedChunk]:
        builder = ChunkBuilder(uri)
        for number, raw in enumerate(landed.iter_lines(uri), start=1):
            text = raw.decode()
            event_id, records = text.split("|")
            event = make_event(n=0, records=int(records) if records.isdigit() else records)
            event["id"] = event_id
            builder.add(number, text, event)
        yield builder.build()


@pytest.fixture
def home(tmp_path: Path) -> Settings:
    doc = deployment(DEPLOYMENT, {"video": "P30D"}, commissioned="2026-03-01")
    return Settings.from_env({
        "SENSORLOG_HOME": str(tmp_path / "home"),
        "SENSORLOG_LANDING": str(tmp_path / "landing"),
        "SENSORLOG_REGISTRY": write_registry(tmp_path / "registry", [doc]),
    })


def _land(settings: Settings, name: str, data: bytes) -> str:
    path = Path(settings.landing) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def _manifest(settings: Settings, uri: str) -> dict:
    return json.loads(storage.read_bytes(layout.manifest_file(settings, storage.sha256_of(uri)[0])))


def test_a_feed_listed_in_feeds_is_discovered_parsed_and_published(home, monkeypatch):
    plain = _land(home, "acme/2026-07-01.pipes", b"p-1|10\np-2|many\np-3|12\n")
    packed = _land(home, "acme/2026-07-02.pipes.gz", gzip.compress(b"p-4|14\n"))
    _land(home, "acme/readme.txt", b"not an export")
    with pytest.raises(UnparseableFile, match="unsupported file type"):
        list(parse_file(plain))  # no feed reads it yet

    monkeypatch.setattr(feeds, "FEEDS", (*feeds.FEEDS, PipeFeed()))

    assert ".pipes" in discovered_suffixes() and isinstance(feed_for(packed), PipeFeed)
    assert flow.discover(home) == [plain, packed]  # the sweep lists both, and not readme.txt
    s3 = notifications.parse_messages(
        [{"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {"key": k}}}]}
         for k in ("landing/x.pipes", "landing/x.txt")],
        "s3://b/landing", check_exists=False,
    )
    assert s3.uris == ["s3://b/landing/x.pipes"] and "not a landing file type" in s3.ignored[0]
    with pytest.raises(UnparseableFile, match=r"expected one of .*\.csv, \.pipes, .*\.pipes\.gz\)"):
        list(parse_file(plain[: -len(".pipes")] + ".pipe"))

    flow.run(home, workers=1)
    manifest = _manifest(home, plain)
    assert (manifest["rows_in"], manifest["published"], manifest["quarantined"]) == (3, 2, 1)
    assert _manifest(home, packed)["published"] == 1


def test_every_discovered_suffix_is_read_by_one_feed_or_refused_whole_as_before(write_file):
    names = [feed.name for feed in feeds.FEEDS]
    suffixes = [suffix for feed in feeds.FEEDS for suffix in feed.suffixes]
    assert len(set(names)) == len(names) and len(set(suffixes)) == len(suffixes)
    assert all(s.startswith(".") and s == s.lower() for s in suffixes)
    assert discovered_suffixes() == LISTED_BEFORE
    for suffix in discovered_suffixes():
        uri = write_file(f"f{suffix}", b"")
        if suffix in suffixes:
            feed = feed_for(uri)
            assert suffix in feed.suffixes and feed_for(uri + ".gz") is feed and feed_for(uri.upper()) is feed
            continue
        with pytest.raises(UnparseableFile) as refused:
            list(parse_file(uri))
        assert (refused.value.line, refused.value.message) == (0, REFUSED_BEFORE[suffix]), suffix
    for name, message in (("f.tar.gz", ARCHIVE), ("f.txt", UNKNOWN_KIND), ("f.csv.bz2", COMPRESSION)):
        with pytest.raises(UnparseableFile) as refused:
            list(parse_file(write_file(name, b"")))
        assert refused.value.message == message, name


# Types that share "org.sensorlog.", a first letter or a whole real name as a prefix, and are no real type.
NEAR_MISSES = (
    "org.sensorlog.collections", "org.sensorlog.c", "org.sensorlog.custom", "org.sensorlog.deletion.v2",
    "org.sensorlog.Collection", "org.sensorlog.", "org.sensorlog.lifecycle ", "org.sensorlog.accessed",
)


def test_the_fast_path_routes_by_the_whole_type_and_quarantines_near_misses_like_the_reference(write_file):
    lines = []
    for i, near in enumerate(NEAR_MISSES):
        real = make_event(EVENT_TABLES[i % len(EVENT_TABLES)], n=i)
        lines.append(json.dumps(real).encode())
        lines.append(json.dumps({**real, "id": f"near-{i}", "type": near}).encode())
    uri = write_file("near.ndjson", b"\n".join(lines) + b"\n")

    table = pa.array([line + b"\n" for line in lines], pa.large_binary())
    routes = cloudevents_ndjson._routes(table).tolist()
    assert routes[1::2] == [-1] * len(NEAR_MISSES)  # no near miss is any table's
    assert routes[0::2] == [i % len(EVENT_TABLES) for i in range(len(NEAR_MISSES))]

    (fast,) = cloudevents_ndjson._ndjson(uri, 1000)
    (reference,) = cloudevents_ndjson._ndjson_reference(uri, 1000)
    assert fast.rejected == reference.rejected
    assert [(r["line"], r["event_type"], r["reasons"]) for r in fast.rejected] == [
        (2 * i + 2, near, [f"envelope.type: unknown event type {near!r}"]) for i, near in enumerate(NEAR_MISSES)
    ]
    assert sorted(fast.tables) == sorted(reference.tables)
    for name in fast.tables:
        assert fast.tables[name].to_pylist() == reference.tables[name].to_pylist()
    assert sum(t.num_rows for t in fast.tables.values()) == len(NEAR_MISSES)
