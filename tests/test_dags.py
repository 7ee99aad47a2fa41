"""The DAGs as Airflow sees them: import cleanly, stay thin, and really run under Airflow."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines import airflow_runner, flow, generate, layout, storage
from pipelines.config import PROJECT_DIR, Settings
from pipelines.registry import load_registry

DAGS = PROJECT_DIR / "dags"


def test_every_dag_imports_without_errors():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    assert "sensorlog_ingest" in bag.dag_ids
    ingest = bag.dags["sensorlog_ingest"]
    assert {t.task_id for t in ingest.tasks} >= {"discover", "stage", "publish"}
    outlets = {a.name for a in ingest.get_task("publish").outlets}
    assert outlets == {"sensorlog.collection", "sensorlog.deletion", "sensorlog.access", "sensorlog.lifecycle",
                       "sensorlog.log"}
    assert {"sensorlog_ingest", "sensorlog_audit", "sensorlog_portal"} <= set(bag.dag_ids)


def test_pipelines_never_imports_airflow():
    modules = sorted(p.stem for p in (PROJECT_DIR / "pipelines").glob("*.py") if p.stem != "__init__")
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module('pipelines.' + m)\n"
        "print(json.dumps(sorted(k for k in sys.modules if k.split('.')[0] == 'airflow')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", "import json\n" + code], capture_output=True, text=True, check=True, cwd=PROJECT_DIR
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_dag_files_only_wire_pipelines_functions():
    for path in DAGS.glob("*.py"):
        text = path.read_text()
        for banned in ("import pyarrow", "import duckdb", "import pandas", "great_expectations", "open("):
            assert banned not in text, f"{path.name} does logic itself ({banned}); move it to pipelines/"


@pytest.fixture(scope="module")
def airflow_run(tmp_path_factory):
    """A small city landed, then the ingest DAG run once by Airflow (``airflow dags test`` → dag.test())
    against a temporary AIRFLOW_HOME and SQLite metadata DB."""
    root = tmp_path_factory.mktemp("airflow")
    settings = Settings.from_env(
        {"SENSORLOG_HOME": str(root / "home"), "SENSORLOG_REGISTRY": str(PROJECT_DIR / "registry")}
    )
    registry = load_registry(settings.registry)
    options = generate.options_for(start=generate.date(2026, 7, 1), end=generate.date(2026, 7, 15))
    truth = generate.write_city(registry, settings.landing, options)
    log = root / "airflow.log"
    airflow_runner.migrate(settings, log)
    airflow_runner.dags_test(settings, "sensorlog_ingest", log)
    return settings, truth, log


def test_the_ingest_dag_publishes_under_airflow(airflow_run):
    settings, truth, log = airflow_run
    landed = storage.list_files(settings.landing, (".ndjson", ".json", ".csv"))
    assert len(landed) == len(truth.files)
    assert flow.discover(settings) == []  # every landed file is covered by a manifest
    manifests = [json.loads(storage.read_bytes(m)) for m in storage.list_files(settings.manifests, (".json",))]
    assert len(manifests) == len(landed)
    for m in manifests:
        assert m["rows_in"] == m["published"] + m["quarantined"] + m["duplicates"]
        for out in m["outputs"]:
            uri = storage.join(settings.published, out["path"])
            assert pq.read_metadata(uri).num_rows == out["rows"]
    assert sum(m["published"] for m in manifests) > 1000
    assert storage.list_files(storage.join(settings.published, "event_type=collection"), (".parquet",))
    assert "sensorlog_ingest" in log.read_text()
    assert Path(layout.index_db(settings)).exists()
