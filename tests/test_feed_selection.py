"""Feed selection by setting (``pipelines.ingest.feeds.selection``): a landing prefix named in
``<registry>/feeds.toml`` is read by its feed, whatever its files hold; every other file keeps the
suffix-selected CloudEvents feeds; a broken setting stops the run before anything is staged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from audit_kit import deployment, write_registry
from conftest import DEPLOYMENT, make_event, ndjson

from pipelines import flow, layout, storage
from pipelines.config import PROJECT_DIR, Settings
from pipelines.errors import USAGE
from pipelines.ingest.feeds import FeedSettingError, feed_for, parse_file, selection
from pipelines.ingest.feeds.cloudevents_csv import CloudEventsCsv
from pipelines.ingest.feeds.node_lifecycle import NodeLifecycle
from pipelines.ingest.parsing import UnparseableFile

pytestmark = pytest.mark.integration

SETTING = """
[[feeds]]
prefix = "cities/aot"
feed = "node-lifecycle"
timezone = "America/Chicago"
[feeds.nodes]
"node-1" = "aot-node-a"
"""
LIFECYCLE = b"node_id,timestamp,event,comment\nnode-1,2026/06/01 08:00:00,commissioned,in service\n"
CE_CSV = (
    b"id,source,type,time,deployment_id,data_class,window_start,window_end,records\n"
    b"c-1,https://vendor.example/feed,org.sensorlog.collection,2026-07-01T01:05:00Z,"
    + DEPLOYMENT.encode() + b",video,2026-07-01T00:00:00Z,2026-07-01T01:00:00Z,4\n"
)


def registry(tmp_path: Path, setting: str | None = SETTING) -> str:
    docs = [deployment("aot-node-a", {"env": "P30D"}, commissioned="2026-01-01"),
            deployment(DEPLOYMENT, {"video": "P30D"}, commissioned="2026-01-01")]
    folder = write_registry(tmp_path / "registry", docs)
    if setting is not None:
        (Path(folder) / "feeds.toml").write_text(setting)
    return folder


@pytest.fixture
def home(tmp_path: Path) -> Settings:
    return Settings.from_env({
        "SENSORLOG_HOME": str(tmp_path / "home"), "SENSORLOG_LANDING": str(tmp_path / "landing"),
        "SENSORLOG_REGISTRY": registry(tmp_path), "SENSORLOG_NOW": "2026-08-01T00:00:00Z",
    })


def land(settings: Settings, name: str, data: bytes) -> str:
    uri = storage.join(settings.landing, name)
    if not storage.is_s3(uri):
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    storage.write_bytes(uri, data)
    return uri


def books(settings: Settings, uri: str) -> tuple[int, int, int]:
    m = json.loads(storage.read_bytes(layout.manifest_file(settings, storage.sha256_of(uri)[0])))
    return m["rows_in"], m["published"], m["quarantined"]


def test_files_are_read_by_the_prefix_setting_and_others_by_their_suffix(home):
    nodes = land(home, "cities/aot/2026/events.csv", LIFECYCLE)
    outside = land(home, "vendor-a/collections.csv", CE_CSV)  # a CloudEvents CSV outside the prefix
    also = land(home, "vendor-a/more.ndjson", ndjson([make_event(n=1)]))
    near = land(home, "cities/aot2/collections.csv", CE_CSV.replace(b"c-1", b"c-2"))  # aot2 is not aot
    # Selection is by setting, never by content: a CloudEvents CSV under the prefix is the node
    # feed's, whose header it lacks, so it is quarantined whole.
    inside = land(home, "cities/aot/collections.csv", CE_CSV.replace(b"c-1", b"c-3"))
    wrong_kind = land(home, "cities/aot/events.ndjson", ndjson([make_event(n=4)]))

    chosen = selection.load(home)
    assert isinstance(feed_for(nodes, chosen), NodeLifecycle) and isinstance(feed_for(inside, chosen), NodeLifecycle)
    assert isinstance(feed_for(outside, chosen), CloudEventsCsv) and isinstance(feed_for(near, chosen), CloudEventsCsv)
    assert isinstance(feed_for(nodes), CloudEventsCsv)  # without the setting: the suffix feed
    with pytest.raises(UnparseableFile, match=r"under the landing prefix 'cities/aot/' .* node-lifecycle feed"):
        list(parse_file(wrong_kind, selection=chosen))

    flow.run(home, workers=1)
    assert books(home, nodes) == (1, 1, 0)
    assert books(home, outside) == (1, 1, 0) and books(home, also) == (1, 1, 0) and books(home, near) == (1, 1, 0)
    assert books(home, inside)[1] == 0 and books(home, wrong_kind)[1] == 0


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("[[feeds]]\nprefix = 'x'\nfeed = 'nope'\n", "feed must be one of"),
        ("[[feeds]]\nfeed = 'node-lifecycle'\n", "prefix must be a non-empty landing sub-folder"),
        ("[[feeds]]\nprefix = '../up'\nfeed = 'node-lifecycle'\ntimezone = 'UTC'\nnodes = {a = 'b'}\n",
         "no empty, '.', '..'"),
        ("[[feeds]]\nprefix = 'x'\nfeed = 'node-lifecycle'\nnodes = {a = 'b'}\n", "option 'timezone' is required"),
        ("[[feeds]]\nprefix = 'x'\nfeed = 'node-lifecycle'\ntimezone = 'Mars/Olympus'\nnodes = {a = 'b'}\n",
         "unknown time zone"),
        ("[[feeds]]\nprefix = 'x'\nfeed = 'node-lifecycle'\ntimezone = 'UTC'\n", "option 'nodes' is required"),
        ("[[feeds]]\nprefix = 'x'\nfeed = 'node-lifecycle'\ntimezone = 'UTC'\nnodes = {a = 'b'}\ntimzone = 1\n",
         "unknown option(s) ['timzone']"),
        ("[[feeds]]\nprefix = 'x'\nfeed = 'node-lifecycle'\ntimezone = 'UTC'\nnodes = {a = 'b'}\n"
         "events = {moved = 'teleported'}\n", "maps to 'teleported'"),
        ("[[feeds]]\nprefix = 'x'\nfeed = 'node-lifecycle'\ntimezone = 'UTC'\nnodes = {a = 'b'}\n"
         "[[feeds]]\nprefix = 'x/y'\nfeed = 'node-lifecycle'\ntimezone = 'UTC'\nnodes = {a = 'b'}\n",
         "overlaps prefix 'x'"),
        ("feeds = 3\n", "must be an array of tables"),
        ("[feed]\n", "unknown top-level key(s) ['feed']"),
        ("[[feeds]\n", "not valid TOML"),
    ],
)
def test_a_broken_setting_is_a_usage_error_naming_the_file_and_nothing_is_staged(tmp_path, setting, message):
    settings = Settings.from_env({
        "SENSORLOG_HOME": str(tmp_path / "home"), "SENSORLOG_LANDING": str(tmp_path / "landing"),
        "SENSORLOG_REGISTRY": registry(tmp_path, setting),
    })
    with pytest.raises(FeedSettingError) as err:
        selection.load(settings)
    assert message in str(err.value) and str(err.value).startswith(str(Path(settings.registry) / "feeds.toml"))
    assert err.value.exit_code == USAGE
    land(settings, "x/events.csv", LIFECYCLE)
    with pytest.raises(FeedSettingError):
        flow.run(settings, workers=1)
    staging = Path(settings.staging)
    assert not Path(settings.quarantine).exists()
    assert not staging.exists() or not any(staging.iterdir())


def test_no_setting_file_means_every_file_keeps_the_suffix_feeds(tmp_path):
    settings = Settings.from_env(
        {"SENSORLOG_HOME": str(tmp_path / "h"), "SENSORLOG_REGISTRY": registry(tmp_path, None)}
    )
    assert selection.load(settings).routes == ()


def test_relative_paths_local_and_s3():
    assert selection.relative_path("/l", "/l/a/b.csv") == "a/b.csv"
    assert selection.relative_path("/l", "/lx/a.csv") is None
    assert selection.relative_path("s3://b/landing", "s3://b/landing/aot/e.csv") == "aot/e.csv"
    assert selection.relative_path("s3://b/landing/", "s3://b/landingx/e.csv") is None


def test_an_s3_landing_prefix_is_read_by_its_setting_feed(bucket, tmp_path):
    settings = Settings.from_env({
        "SENSORLOG_HOME": f"s3://{bucket}/sensorlog", "SENSORLOG_STATE_HOME": str(tmp_path / "state"),
        "SENSORLOG_REGISTRY": registry(tmp_path), "SENSORLOG_NOW": "2026-08-01T00:00:00Z",
    })
    nodes = land(settings, "cities/aot/events.csv", LIFECYCLE)
    outside = land(settings, "vendor-a/collections.csv", CE_CSV)
    assert nodes.startswith("s3://") and flow.discover(settings) == sorted([nodes, outside])
    flow.run(settings, workers=1)
    assert books(settings, nodes) == (1, 1, 0) and books(settings, outside) == (1, 1, 0)


def test_the_sample_files_in_docs_feeds_publish_without_quarantine(tmp_path):
    docs = PROJECT_DIR / "docs" / "feeds"
    alpr = {"plate_reads": "P30D", "hotlist_hits": "P30D"}
    grant = {"organisation": "Riverton Police Department", "roles": ["alpr_user"], "purpose": "Investigations"}
    folder = write_registry(tmp_path / "registry", [
        deployment("env-mill-street", {"env": "P30D"}, commissioned="2025-01-01"),
        deployment("env-library-plaza", {"env": "P30D"}, commissioned="2025-01-01"),
        deployment("alpr-riverton", alpr, commissioned="2025-01-01", grants=[grant]),
        deployment("alpr-eastgate", alpr, commissioned="2025-01-01", grants=[grant]),
    ])
    (Path(folder) / "feeds.toml").write_text((docs / "feeds.sample.toml").read_text())
    settings = Settings.from_env({
        "SENSORLOG_HOME": str(tmp_path / "home"), "SENSORLOG_LANDING": str(tmp_path / "landing"),
        "SENSORLOG_REGISTRY": folder, "SENSORLOG_NOW": "2026-07-01T00:00:00Z",
    })
    nodes = land(settings, "nodes/node-lifecycle-sample.csv", (docs / "node-lifecycle-sample.csv").read_bytes())
    portal = land(settings, "vendor-portal/vendor-portal-sample.csv", (docs / "vendor-portal-sample.csv").read_bytes())
    flow.run(settings, workers=1)
    assert books(settings, nodes) == (5, 5, 0)
    assert books(settings, portal) == (5, 5, 0)  # Riverton: snapshot and three counts; Eastgate: its snapshot
