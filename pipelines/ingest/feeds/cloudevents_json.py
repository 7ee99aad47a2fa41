"""CloudEvents 1.0 in structured mode as one JSON array of events (``.json``).

A JSON array has no line structure to resynchronise on: an error anywhere spoils the file, which is
quarantined whole. Vendors with large exports should send NDJSON, which streams; arrays are read whole,
up to ``MAX_JSON_ARRAY_BYTES``, and measured for depth before any decoder sees them. Each element is
then decided on its own (``parsing.ChunkBuilder``), with the number of the line it starts on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from pipelines.ingest import landed, strictjson
from pipelines.ingest.feeds.base import Feed
from pipelines.ingest.limits import MAX_DEPTH, MAX_EVENT_BYTES, MAX_JSON_ARRAY_BYTES
from pipelines.ingest.parsing import (
    BOM,
    ROWWISE_CHUNK_ROWS,
    ChunkBuilder,
    ParsedChunk,
    UnparseableFile,
    decoder,
    size_problem,
)


class CloudEventsJson(Feed):
    name = "cloudevents-json"
    suffixes = (".json",)

    def parse(self, uri: str, chunk_rows: int) -> Iterator[ParsedChunk]:
        return _json_array(uri, min(chunk_rows, ROWWISE_CHUNK_ROWS))


def _json_array(uri: str, chunk_rows: int) -> Iterator[ParsedChunk]:
    data = landed.read_all(uri, MAX_JSON_ARRAY_BYTES)
    if data.startswith(BOM):
        data = data[len(BOM) :]
    at = strictjson.depth_exceeds(data, MAX_DEPTH + 1)  # the array itself is one level
    if at is not None:
        line = data[:at].count(b"\n") + 1
        raise UnparseableFile(uri, line, f"JSON nested deeper than {MAX_DEPTH} levels in an event (byte {at})")
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
    builder = ChunkBuilder(uri)
    strict = decoder()
    # Decode each element again where it lies, for its line number, raw text and the problems
    # (repeated keys, non-finite numbers) that the first, syntax-only pass resolves silently.
    pos, line, counted = text.index("[") + 1, 1, 0
    for _ in range(len(events)):
        while text[pos] in " \t\r\n,":
            pos += 1
        event, end, problems = strict.raw_decode(text, pos)
        line += text.count("\n", counted, pos)
        counted = pos
        raw = text[pos:end]
        builder.rows_in += 1
        if len(raw.encode("utf-8", errors="surrogatepass")) > MAX_EVENT_BYTES:
            builder.reject(line, raw, [size_problem()], event if isinstance(event, dict) else None)
        else:
            builder.add_at(builder.offset + builder.rows_in, line, raw, event, problems=tuple(problems))
        pos = end
        if len(builder) >= chunk_rows:
            yield builder.build()
            builder = builder.next()
    yield builder.build()
