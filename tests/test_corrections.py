"""Corrections (``pipelines.ingest.corrections``): a file landed under ``corrections/<batch id>/``
replaces that batch. Its manifest names the batch in ``supersedes``; the superseded rows stay in the
log and its files, and every count leaves them out."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import DEPLOYMENT, land, make_event, ndjson

from pipelines import flow, layout, storage, summary
from pipelines.config import Settings
from pipelines.ingest import corrections
from pipelines.log import verify
from pipelines.records import Manifest

pytestmark = pytest.mark.integration


def manifest(settings: Settings, uri: str) -> Manifest:
    path = layout.manifest_file(settings, storage.sha256_of(uri)[0])
    return Manifest.from_json(storage.read_bytes(path), path)


def collected(settings: Settings) -> tuple[int, int]:
    """(collection events, records) the readers count for the deployment."""
    con = summary.connect(settings)
    try:
        n, records = con.execute("SELECT count(*), coalesce(sum(records), 0) FROM collection").fetchall()[0]
    finally:
        con.close()
    return int(n), int(records)


def rows_in_files(settings: Settings) -> int:
    files = storage.list_files(layout.table_root(settings, "collection"), (".parquet",))
    return sum(pq.read_metadata(f).num_rows for f in files)


BAD = [make_event("collection", 0), make_event("collection", 1, records=9000), make_event("collection", 2)]
FIXED = [make_event("collection", 0), make_event("collection", 1, records=11)]


def test_a_correction_replaces_its_batch_and_the_replaced_rows_stay_in_the_log(device_home):
    original = land(device_home, "cams/2026-07-01.ndjson", ndjson(BAD))
    flow.run(device_home, workers=1)
    assert collected(device_home) == (3, 10 + 9000 + 12)
    bad_batch = storage.sha256_of(original)[0]

    fix = land(device_home, f"corrections/{bad_batch}/cams/2026-07-01.ndjson", ndjson(FIXED))
    totals = flow.run(device_home, workers=1)
    m = manifest(device_home, fix)
    assert m.supersedes == (bad_batch,)
    # Every row of the correction is published, the unchanged one too: it replaces its old copy.
    assert (m.rows_in, m.published, m.duplicates, m.quarantined) == (2, 2, 0, 0)
    assert totals["published"] == 2
    assert collected(device_home) == (2, 10 + 11)  # the readers count the correction only
    assert rows_in_files(device_home) == 5  # nothing was deleted: the three superseded rows are still published
    assert manifest(device_home, original).supersedes is None  # the old manifest is untouched; the later leaf marks it
    report = verify.verify_log(device_home.log, device_home.published, device_home.manifests)
    assert report.ok, report

    # The manifest member is a leaf member: its JSON is what the log signed.
    raw = json.loads(storage.read_bytes(layout.manifest_file(device_home, m.batch_id)))
    assert raw[corrections.SUPERSEDES] == [bad_batch]

    # Running again changes nothing; re-landing the bad file's rows later: what the correction published
    # is now the rows' publication, so a repeat is a duplicate and a changed copy a conflict.
    assert flow.run(device_home, workers=1)["published"] == 0
    again = land(device_home, "cams/again.ndjson", ndjson(BAD[:2]))
    flow.run(device_home, workers=1)
    m2 = manifest(device_home, again)
    assert (m2.published, m2.duplicates, m2.quarantined) == (0, 1, 1)
    assert collected(device_home) == (2, 21)


@pytest.mark.parametrize("target, message", [
    ("0" * 64, "no published batch " + "0" * 64 + " to replace"),
    ("not-a-batch", "corrections/<batch id>/<original path>"),
])
def test_a_correction_naming_no_batch_it_can_replace_is_quarantined_whole(device_home, target, message):
    land(device_home, "cams/good.ndjson", ndjson(BAD[:1]))
    fix = land(device_home, f"corrections/{target}/cams/x.ndjson", ndjson(FIXED))
    nxt = land(device_home, "cams/next.ndjson", ndjson([make_event("collection", 7)]))
    flow.run(device_home, workers=1)
    m = manifest(device_home, fix)
    assert m.file_error is not None and message in m.file_error
    assert f"corrections/{target}/cams/x.ndjson" in m.file_error
    assert m.supersedes is None and m.published == 0
    assert manifest(device_home, nxt).published == 1  # the next file is not stopped
    assert collected(device_home) == (2, 10 + 17)


def test_a_declaration_batch_cannot_be_superseded(device_home):
    land(device_home, "cams/good.ndjson", ndjson(BAD[:1]))
    flow.run(device_home, workers=1)
    declaration = next(
        u for u in storage.list_files(device_home.manifests, (".json",))
        if json.loads(storage.read_bytes(u)).get("kind") == "declarations"
    )
    batch = Path(declaration).stem
    fix = land(device_home, f"corrections/{batch}/cams/x.ndjson", ndjson(FIXED))
    flow.run(device_home, workers=1)
    assert "holds registry declarations" in (manifest(device_home, fix).file_error or "")


def test_a_correction_is_read_by_the_feed_of_the_path_it_replaces(tmp_path):
    from pipelines.ingest.feeds import selection

    doc = {"feeds": [{"prefix": "nodes", "feed": "node-lifecycle", "timezone": "UTC", "nodes": {"n1": DEPLOYMENT}}]}
    chosen = selection.parse(doc, str(tmp_path), "feeds.toml")
    batch = "a" * 64
    assert chosen.route_for(str(tmp_path / "corrections" / batch / "nodes" / "x.csv")).prefix == "nodes"
    assert chosen.route_for(str(tmp_path / "corrections" / "zz" / "nodes" / "x.csv")) is None
    assert corrections.split(f"corrections/{batch}/nodes/x.csv") == ("nodes/x.csv", batch)
    assert corrections.split("nodes/corrections/x.csv") == ("nodes/corrections/x.csv", None)


def test_site_readers_leave_superseded_rows_out_too(device_home, tmp_path):
    """An auditor's copy: the audit of a site reads the manifests under its log folder."""
    from pipelines.audit.site import site_settings

    original = land(device_home, "cams/2026-07-01.ndjson", ndjson(BAD))
    flow.run(device_home, workers=1)
    land(device_home, f"corrections/{storage.sha256_of(original)[0]}/cams/2026-07-01.ndjson", ndjson(FIXED))
    flow.run(device_home, workers=1)
    log = tmp_path / "site-log"
    log.mkdir()
    (log / "manifests").symlink_to(device_home.manifests)
    outside = site_settings(str(log), device_home.published, str(tmp_path / "work"), "UTC")
    assert collected(outside) == (2, 21)


def test_supersessions_are_read_once_per_manifest_and_a_bad_cache_costs_only_a_reread(device_home, monkeypatch):
    original = land(device_home, "cams/2026-07-01.ndjson", ndjson(BAD))
    flow.run(device_home, workers=1)
    bad_batch = storage.sha256_of(original)[0]
    land(device_home, f"corrections/{bad_batch}/cams/2026-07-01.ndjson", ndjson(FIXED))
    land(device_home, "cams/other.ndjson", ndjson([make_event("collection", 5)]))
    flow.run(device_home, workers=1)
    manifests = storage.list_files(device_home.manifests, (".json",))
    truth = corrections.superseded(storage.read_bytes(f) for f in manifests)
    assert truth == {bad_batch}

    assert corrections.superseded_in(device_home) == truth  # fills the cache
    read: list[str] = []
    real = storage.read_bytes
    monkeypatch.setattr(storage, "read_bytes", lambda uri: read.append(uri) or real(uri))
    assert corrections.superseded_in(device_home) == truth
    assert [u for u in read if u.startswith(device_home.manifests)] == []  # nothing re-read

    cache = Path(layout.superseded_cache(device_home))
    for garbage in (b"{not json", b'{"version": 1, "manifests": []}', b'{"version": 99}'):
        cache.write_bytes(garbage)
        assert corrections.superseded_in(device_home) == truth
    # A cache listing manifests the home no longer has (restored from less) does not add their batches.
    cache.write_bytes(json.dumps({"version": 1, "manifests": {"gone.json": ["f" * 64]}}).encode())
    assert corrections.superseded_in(device_home) == truth


def test_an_outsider_reading_a_copied_log_writes_no_cache(device_home, tmp_path):
    land(device_home, "cams/a.ndjson", ndjson(BAD))
    flow.run(device_home, workers=1)
    outsider = Settings.from_env({"SENSORLOG_HOME": str(tmp_path / "elsewhere"),
                                  "SENSORLOG_MANIFESTS": device_home.manifests})
    assert corrections.superseded_in(outsider) == set()
    assert not (tmp_path / "elsewhere").exists()
