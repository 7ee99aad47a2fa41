"""A batch that writes many (table, day) partitions still gets a manifest leaf that fits an entry bundle
(c2sp.org/tlog-tiles entries carry a uint16 length): its leaf holds the digest of its outputs
("leaf_format": 2), so a year-long vendor export cannot stop the log from being published."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import rfc8785
from conftest import event_manifests, make_event, ndjson

from pipelines import flow
from pipelines.config import Settings
from pipelines.log.export import export_log
from pipelines.log.verify import verify_log
from pipelines.registry import declarations
from pipelines.site import Site
from pipelines.tlog import leaf

pytestmark = pytest.mark.integration

DAYS = 400  # about 400 partitions: a full manifest leaf would be about 100 kB


def test_a_year_long_export_is_logged_exported_and_verified(settings: Settings, device_registry: Path,
                                                            write_file, tmp_path: Path) -> None:
    s = Settings.from_env({"SENSORLOG_HOME": settings.home, "SENSORLOG_LANDING": settings.landing,
                           "SENSORLOG_REGISTRY": str(device_registry)})
    start = datetime(2025, 1, 1, tzinfo=UTC)
    events = []
    for day in range(DAYS):
        ws = start + timedelta(days=day)
        events.append(make_event("collection", day, window_start=ws.isoformat().replace("+00:00", "Z"),
                                 window_end=(ws + timedelta(hours=1)).isoformat().replace("+00:00", "Z")))
        events[-1]["time"] = (ws + timedelta(hours=1, minutes=5)).isoformat().replace("+00:00", "Z")
    write_file("year.ndjson", ndjson(events))
    flow.run(s)
    manifests = [Path(m) for m in event_manifests(s)]  # the registry's declaration batch comes first
    assert len(manifests) == 1
    manifest = json.loads(manifests[0].read_text())
    assert manifest["published"] == DAYS and len(manifest["outputs"]) == DAYS
    assert manifest["leaf_format"] == 2
    full = rfc8785.dumps({"table": "manifest", **{k: v for k, v in manifest.items() if k != "leaf_format"}})
    assert len(full) > 0xFFFF  # what the leaf would have been
    got = leaf.manifest_leaf_bytes(manifest)
    assert len(got) < 0xFFFF
    obj = json.loads(got)
    assert "outputs" not in obj
    assert obj["outputs_sha256"] == hashlib.sha256(rfc8785.dumps(manifest["outputs"])).hexdigest()

    site = tmp_path / "site"
    export_log(s, Site(str(site)))
    report = verify_log(site / "log", site / "data")
    assert report.ok, report.problems
    assert report.rows == DAYS + len(declarations.read_rows(s.published))
    # Changing one output in the published manifest breaks the digest the log signed.
    path = site / "log" / "manifests" / manifests[0].name
    changed = json.loads(path.read_text())
    changed["outputs"][-1]["sha256"] = "0" * 64
    path.write_text(json.dumps(changed))
    assert not verify_log(site / "log", site / "data").ok


def test_small_manifests_keep_the_original_leaf() -> None:
    manifest = {"batch_id": "ab", "outputs": [{"table": "collection", "rows": 2}], "quarantine": None}
    assert leaf.fit_manifest_leaf(manifest) is manifest
    assert b'"outputs":[' in leaf.manifest_leaf_bytes(manifest)
