"""A node lifecycle CSV (the Array of Things ``events.csv`` shape): ``node_id,timestamp,event,comment``.

One row is one lifecycle event of the deployment the node belongs to. The feed is chosen by the feed
setting (``feeds.toml``, ``feed = "node-lifecycle"``), never by the file's content; its options:

* ``timezone`` (required): the IANA zone the timestamps' wall-clock times are read in (they carry no
  offset: ``2018/02/22 00:00:00``);
* ``nodes`` (required): a table of node id → registry deployment id; a node not in it is quarantined
  (the mapping is stated, never guessed from names);
* ``events`` (optional): more event words → lifecycle actions, beside the six actions themselves
  (``installed = "commissioned"``); an unknown word is quarantined, never dropped;
* ``source`` (optional): the CloudEvents source of the events (default ``urn:sensorlog:feed:node-lifecycle``).

Each event's id is ``<node id>/<UTC time>/<event word>``, so the same row landed twice is a
duplicate, and the same node, time and word with another comment is a conflict. ``comment`` becomes
the event's ``details`` (bounded by the lifecycle schema).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from zoneinfo import ZoneInfo

from pipelines.ingest.feeds import csvtable
from pipelines.ingest.feeds.base import Feed
from pipelines.ingest.feeds.csvtable import RowProblems
from pipelines.ingest.parsing import ParsedChunk
from pipelines.schemas import event_table

COLUMNS = ("node_id", "timestamp", "event", "comment")
ACTIONS: tuple[str, ...] = tuple(event_table("lifecycle").json_schema["properties"]["action"]["enum"])
DEFAULT_SOURCE = "urn:sensorlog:feed:node-lifecycle"
MAX_NODE_ID = 100
MAX_WORD = 60


class NodeLifecycle(Feed):
    name = "node-lifecycle"
    suffixes = (".csv",)
    selected_by = "setting"

    def __init__(self, zone: ZoneInfo | None = None, nodes: Mapping[str, str] | None = None,
                 words: Mapping[str, str] | None = None, source: str = DEFAULT_SOURCE):
        self.zone, self.nodes, self.source = zone, dict(nodes or {}), source
        self.words = {action: action for action in ACTIONS} | {k.strip().lower(): v for k, v in (words or {}).items()}

    def configure(self, options: Mapping[str, object], where: str) -> Feed:
        from pipelines.ingest.feeds.selection import FeedSettingError, Options

        read = Options(options, where)
        zone = read.zone()
        nodes = read.mapping("nodes", max_key=MAX_NODE_ID)
        words = read.mapping("events", required=False, max_key=MAX_WORD)
        source = read.text("source", required=False) or DEFAULT_SOURCE
        read.done()
        for word, action in words.items():
            if action not in ACTIONS:
                raise FeedSettingError(
                    f"{where}: option 'events': {word!r} maps to {action!r}, not one of {list(ACTIONS)}"
                )
        return NodeLifecycle(zone, nodes, words, source)

    def parse(self, uri: str, chunk_rows: int) -> Iterator[ParsedChunk]:
        return csvtable.parse(uri, chunk_rows, COLUMNS, self.name, self._events)

    def _events(self, row: dict[str, str]) -> list[dict]:
        if self.zone is None:
            raise RowProblems(["the feed is not configured (no time zone or node map)"])
        problems: list[str] = []
        node = row["node_id"].strip()
        deployment = self.nodes.get(node)
        if not node:
            problems.append("node_id: empty")
        elif deployment is None:
            problems.append(f"node_id: {node[:MAX_NODE_ID]!r} is not in the feed setting's node map (option 'nodes')")
        at = None
        try:
            at = csvtable.local_instant(row["timestamp"], self.zone)
        except ValueError as err:
            problems.append(f"timestamp: {err}")
        word = row["event"].strip().lower()
        action = self.words.get(word)
        if action is None:
            known = ", ".join(sorted(self.words))
            problems.append(f"event: unknown event word {row['event'][:MAX_WORD]!r} (known: {known}; "
                            "map others with the option 'events')")
        if problems or at is None or deployment is None or action is None:
            raise RowProblems(problems)
        when = csvtable.utc_text(at)
        comment = row["comment"].strip()
        data: dict[str, object] = {"deployment_id": deployment, "action": action, "at": when,
                                   "details": comment or None}
        return [{
            "specversion": "1.0", "id": f"{node}/{when}/{word}", "source": self.source,
            "type": event_table("lifecycle").cloudevent_type, "time": when, "data": data,
        }]
