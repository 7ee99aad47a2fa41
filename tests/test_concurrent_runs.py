"""Two ``sensorlog run`` processes at once on one home: both finish cleanly (the second waits for the
writer lock where it needs it), and every landed event is published exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date

import duckdb
import pytest

from pipelines import storage, summary
from pipelines.config import PROJECT_DIR, Settings
from pipelines.dev import synthetic
from pipelines.log import writer
from pipelines.registry import load_registry

pytestmark = pytest.mark.system


def test_two_runs_at_once_publish_everything_exactly_once(tmp_path):
    env = {"SENSORLOG_HOME": str(tmp_path / "home"), "SENSORLOG_REGISTRY": str(PROJECT_DIR / "registry")}
    settings = Settings.from_env(env)
    options = synthetic.options_for(start=date(2026, 7, 1), end=date(2026, 7, 8), cadence="weekly")
    truth = synthetic.write_city(load_registry(settings.registry), settings.landing, options)
    # Both start before either has done anything: they discover the same files, stage the same
    # batches, and take turns at the writer lock.
    runs = [
        subprocess.Popen([sys.executable, "-m", "pipelines.cli", "run", "--workers", "1"],
                         env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=1800) for run in runs]
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err.decode()[-3000:]
        assert b"Traceback" not in err and b"Traceback" not in out

    totals = summary.manifest_totals(settings)
    assert totals["batches"] == len(truth.files)
    assert totals["rows_in"] == truth.events
    assert totals["rows_in"] == totals["published"] + totals["quarantined"] + totals["duplicates"]
    glob = storage.join(settings.published, "**", "*.parquet")
    [(rows, keys, leaves)] = duckdb.sql(
        f"SELECT count(*), count(DISTINCT (source, event_id)), count(DISTINCT leaf_index)"
        f" FROM read_parquet('{glob}', union_by_name = true)"
    ).fetchall()
    assert totals["declarations"] == len(load_registry(settings.registry))  # logged once, by one of the two
    assert rows == keys == leaves == totals["published"] + totals["declarations"]  # no row twice
    assert writer.latest_checkpoint(settings).size == totals["leaves"]
