"""An unexpected error on one file or batch (a bug not yet found, a storage fault) never holds back the
files after it: they are published, the failure is named, and the next run retries the failed file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import make_event, ndjson

from pipelines import flow, publish
from pipelines.config import Settings
from pipelines.ingest import stage

pytestmark = pytest.mark.integration


def _land(write_file, n: int) -> list[str]:
    return [write_file(f"f{i}.ndjson", ndjson([make_event("collection", 100 * i + k) for k in range(3)]))
            for i in range(n)]


@pytest.fixture
def s(settings: Settings, device_registry: Path) -> Settings:
    return Settings.from_env({"SENSORLOG_HOME": settings.home, "SENSORLOG_LANDING": settings.landing,
                              "SENSORLOG_REGISTRY": str(device_registry)})


def _published_sources(s: Settings) -> set[str]:
    manifests = [json.loads(p.read_text()) for p in Path(s.manifests).glob("*.json")]
    return {m["source_file"] for m in manifests if m.get("kind") != "declarations"}  # landed files only


def test_a_file_whose_staging_fails_does_not_stop_the_next(s: Settings, write_file, monkeypatch) -> None:
    files = _land(write_file, 3)
    real = stage.parse_file  # what staging reads each file of a group with

    def flaky(uri, *args, **kwargs):
        if uri.endswith("f1.ndjson"):
            raise MemoryError("simulated fault")
        return real(uri, *args, **kwargs)

    monkeypatch.setattr(stage, "parse_file", flaky)
    totals = flow.run(s)
    assert _published_sources(s) == {"f0.ndjson", "f2.ndjson"}
    assert [f["file"] for f in totals["failed"]] == [files[1]]
    assert "simulated fault" in totals["failed"][0]["error"]
    with pytest.raises(flow.BatchesFailed, match="simulated fault"):
        flow.raise_on_failures(totals)
    monkeypatch.setattr(stage, "parse_file", real)
    again = flow.run(s)  # the fault is gone: the next run publishes it
    assert again["failed"] == [] and _published_sources(s) == {"f0.ndjson", "f1.ndjson", "f2.ndjson"}


def test_a_batch_whose_commit_fails_does_not_stop_the_next(s: Settings, write_file, monkeypatch) -> None:
    _land(write_file, 3)
    real = publish.publish_batch_once  # what the flow commits each batch with
    calls: list[str] = []

    def flaky(settings, batch_id, *args, **kwargs):
        calls.append(batch_id)
        if len(calls) == 1:
            raise OSError("simulated storage fault")
        return real(settings, batch_id, *args, **kwargs)

    monkeypatch.setattr(publish, "publish_batch_once", flaky)
    totals = flow.run(s)
    assert len(totals["failed"]) == 1 and totals["failed"][0]["batch"] == calls[0]
    assert len(_published_sources(s)) == 2
    monkeypatch.setattr(publish, "publish_batch_once", real)
    assert flow.run(s)["failed"] == []
    assert len(_published_sources(s)) == 3
