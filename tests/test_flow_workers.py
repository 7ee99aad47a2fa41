"""``flow.run`` with staging processes publishes exactly what the in-process run publishes."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from pipelines import flow
from pipelines.config import PROJECT_DIR, Settings
from pipelines.dev import synthetic
from pipelines.log import writer
from pipelines.registry import load_registry

pytestmark = pytest.mark.integration


def _settings(home: Path, landing: Path) -> Settings:
    registry = str(PROJECT_DIR / "registry")
    return Settings.from_env(
        {"SENSORLOG_HOME": str(home), "SENSORLOG_LANDING": str(landing), "SENSORLOG_REGISTRY": registry}
    )


def _published(settings: Settings) -> list[tuple[int, str, str, str]]:
    rows = ds.dataset(settings.published, format="parquet", partitioning="hive").to_table(
        columns=["leaf_index", "leaf_hash", "source", "event_id"]
    )
    return sorted(zip(*(rows.column(c).to_pylist() for c in rows.column_names), strict=True))


def test_parallel_staging_publishes_the_same_rows_in_the_same_order(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SENSORLOG_NOW", "2026-07-05")  # both runs log the registry at the same moment
    landing = tmp_path / "landing"
    options = synthetic.options_for(start=date(2026, 7, 1), end=date(2026, 7, 5))
    synthetic.write_city(load_registry(PROJECT_DIR / "registry"), str(landing), options)
    files = sorted(landing.rglob("*.*"))
    shutil.copy(files[0], landing / f"zz-same-bytes-again{files[0].suffix}")
    (landing / "zz-broken.ndjson").write_bytes(b'{"specversion": "1.0", "id": "x"\n{not json\n')

    serial, parallel = _settings(tmp_path / "serial", landing), _settings(tmp_path / "parallel", landing)
    one = flow.run(serial, workers=1)
    two = flow.run(parallel, workers=2)

    assert one == two
    assert one["file_errors"] >= 1 and one["quarantined"] > 0 and one["published"] > 1000
    assert one["batches"] == len(files) + 1  # the copy is the same batch as its original
    assert one["rows_in"] == one["published"] + one["quarantined"] + one["duplicates"]
    assert _published(serial) == _published(parallel)
    assert writer.latest_checkpoint(parallel).size == writer.latest_checkpoint(serial).size

    before = writer.latest_checkpoint(parallel)
    flow.run(parallel, workers=2)  # a re-run publishes nothing new; it finds the copy already published
    assert writer.latest_checkpoint(parallel).root_hash == before.root_hash
    assert flow.discover(parallel) == []  # and remembers it: the sweep does not hash it again
