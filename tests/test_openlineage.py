"""OpenLineage: Airflow runs the ingest DAG for real (``airflow dags test``, as ``make demo`` does) with
sensorlog's default configuration, and the file transport's events name the landed files as inputs and
the event tables as outputs, with a data-quality facet; plus the configuration and manifest reading that
need no Airflow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import DEPLOYMENT, make_event, ndjson

from pipelines import layout, lineage, storage
from pipelines.config import PROJECT_DIR, Settings
from pipelines.dev import airflow_runner
from pipelines.records import ManifestError

TASKS = ("discover", "stage", "publish")


def _registry(tmp_path: Path) -> Path:
    registry = tmp_path / "registry"
    registry.mkdir()
    source = (PROJECT_DIR / "registry" / "cctv-city-hall-plaza.yaml").read_text()
    (registry / f"{DEPLOYMENT}.yaml").write_text(source.replace("cctv-city-hall-plaza", DEPLOYMENT))
    return registry


def _events(path: str) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def ingest_run(tmp_path_factory):
    """Two landed files (one with an invalid row and a broken line), then one run of the ingest DAG."""
    root = tmp_path_factory.mktemp("lineage")
    # The Airflow child's environment starts from this process's (airflow_runner.airflow_env), which
    # therefore carries the registry and the namespace.
    env = {"SENSORLOG_REGISTRY": str(_registry(root)), "SENSORLOG_LINEAGE_NAMESPACE": "lineage-test-city"}
    settings = Settings.from_env({"SENSORLOG_HOME": str(root / "home"), **env})
    clean = storage.join(settings.landing, "vendor-a/2026-07-01 export.ndjson")
    storage.write_bytes(clean, ndjson([make_event(n=i) for i in range(3)] + [make_event("access")]))
    dirty = storage.join(settings.landing, "vendor-a/2026-07-02.ndjson")
    storage.write_bytes(dirty, ndjson([make_event(n=7), make_event(n=8, records=-1)]) + b"{not json\n")
    log = root / "airflow.log"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        patch.delenv("OPENLINEAGE_URL", raising=False)
        patch.delenv("AIRFLOW__OPENLINEAGE__TRANSPORT", raising=False)
        airflow_runner.migrate(settings, log)
        airflow_runner.dags_test(settings, "sensorlog_ingest", log)
    return settings, [clean, dirty], _events(layout.lineage_file(settings))


def _task_events(events: list[dict], task: str, kind: str) -> list[dict]:
    return [e for e in events if e["job"]["name"] == f"sensorlog_ingest.{task}" and e["eventType"] == kind]


def _names(datasets: list[dict]) -> set[str]:
    return {d["name"] for d in datasets if d["namespace"] == "file"}


@pytest.mark.system
def test_every_task_has_start_and_complete_events_in_the_city_namespace(ingest_run):
    _, _, events = ingest_run
    for task in TASKS:
        assert _task_events(events, task, "START"), f"no START event for {task}"
        assert _task_events(events, task, "COMPLETE"), f"no COMPLETE event for {task}"
    assert {e["job"]["namespace"] for e in events} == {"lineage-test-city"}
    assert not [e for e in events if e["eventType"] == "FAIL"]


@pytest.mark.system
def test_the_landed_files_are_inputs_and_the_event_tables_outputs(ingest_run):
    settings, landed, events = ingest_run
    (stage,) = _task_events(events, "stage", "COMPLETE")  # two files: one group
    assert _names(stage["inputs"]) == set(landed)
    (publish,) = _task_events(events, "publish", "COMPLETE")
    assert _names(publish["inputs"]) == set(landed)
    tables = {layout.table_root(settings, t) for t in ("collection", "access")}
    outputs = {d["name"]: d for d in publish["outputs"]}
    assert tables | {settings.quarantine} <= set(outputs)
    assert outputs[layout.table_root(settings, "collection")]["outputFacets"]["outputStatistics"]["rowCount"] == 4
    assert outputs[layout.table_root(settings, "access")]["outputFacets"]["outputStatistics"]["rowCount"] == 1
    # A task's START event never lists what another task in the same process recorded.
    (start,) = _task_events(events, "stage", "START")
    assert _names(start["inputs"]) <= set(landed) and not start["outputs"]


@pytest.mark.system
def test_each_landed_file_carries_a_data_quality_facet(ingest_run):
    settings, (clean, dirty), events = ingest_run
    (publish,) = _task_events(events, "publish", "COMPLETE")
    facets = {d["name"]: d["inputFacets"] for d in publish["inputs"]}
    assert facets[clean]["dataQualityMetrics"]["rowCount"] == 4
    assert all(a["success"] for a in facets[clean]["dataQualityAssertions"]["assertions"])
    failing = [a for a in facets[dirty]["dataQualityAssertions"]["assertions"] if not a["success"]]
    assert failing and sum(int(a["actual"]) for a in failing) >= 2  # the invalid row and the broken line
    assert {a["params"]["source"] for a in facets[dirty]["dataQualityAssertions"]["assertions"]} <= {
        "validation", "quarantine"}


# -- configuration and manifests, no Airflow ------------------------------------------------------------


@pytest.mark.unit
def test_the_default_transport_is_the_home_file_and_an_operator_choice_wins(tmp_path):
    settings = Settings.from_env({"SENSORLOG_HOME": str(tmp_path), "SENSORLOG_LOG_ORIGIN": "city.example/log"})
    env = lineage.openlineage_env(settings, {})
    transport = json.loads(env["AIRFLOW__OPENLINEAGE__TRANSPORT"])
    assert transport == {"type": "file", "log_file_path": str(tmp_path / "lineage" / "openlineage.jsonl"),
                         "append": True}
    assert env["AIRFLOW__OPENLINEAGE__NAMESPACE"] == "city.example/log"
    assert env["AIRFLOW__OPENLINEAGE__EXTRACTORS"] == lineage.EXTRACTOR
    marquez = lineage.openlineage_env(settings, {"OPENLINEAGE_URL": "http://marquez:5000",
                                                 "SENSORLOG_LINEAGE_NAMESPACE": "riverton",
                                                 "AIRFLOW__OPENLINEAGE__EXTRACTORS": "mine.Extractor"})
    assert "AIRFLOW__OPENLINEAGE__TRANSPORT" not in marquez
    assert marquez["AIRFLOW__OPENLINEAGE__NAMESPACE"] == "riverton"
    assert marquez["AIRFLOW__OPENLINEAGE__EXTRACTORS"] == f"mine.Extractor;{lineage.EXTRACTOR}"
    assert "AIRFLOW__OPENLINEAGE__TRANSPORT" not in lineage.openlineage_env(
        settings, {"AIRFLOW__OPENLINEAGE__DISABLED": "true"})
    child = airflow_runner.airflow_env(settings, {"PATH": "/bin"})
    assert json.loads(child["AIRFLOW__OPENLINEAGE__TRANSPORT"]) == transport


@pytest.mark.unit
def test_an_object_store_home_keeps_its_events_file_beside_the_local_state(tmp_path):
    settings = Settings.from_env({"SENSORLOG_HOME": "s3://bucket/sensorlog", "SENSORLOG_STATE_HOME": str(tmp_path)})
    assert layout.lineage_file(settings) == str(tmp_path / "state" / "lineage" / "openlineage.jsonl")
    assert lineage.uri("s3://bucket/sensorlog/landing/a b.ndjson") == "s3://bucket/sensorlog/landing/a b.ndjson"
    assert lineage.uri(str(tmp_path / "a b.csv")) == f"file://{tmp_path}/a b.csv"


def _manifest(settings: Settings, batch_id: str, **extra: object) -> None:
    manifest = {
        "batch_id": batch_id, "source_file": "vendor-a/f.ndjson", "source_sha256": "0" * 64, "source_bytes": 99,
        "validated_at": "2026-07-01T00:00:00Z", "rows_in": 5, "published": 3, "quarantined": 2, "duplicates": 0,
        "file_error": None, "quarantine": {"rows": 2, "path": f"{batch_id}.parquet", "sha256": "1" * 64},
        "outputs": [
            {"table": "collection", "event_date": "2026-07-01", "path": "p1", "rows": 2, "sha256": "2" * 64,
             "first_leaf": 0},
            {"table": "collection", "event_date": "2026-07-02", "path": "p2", "rows": 1, "sha256": "3" * 64,
             "first_leaf": 2},
        ],
        "leaves": {"first": 0, "rows_end": 3, "manifest_leaf": 3}, **extra,
    }
    storage.write_bytes(layout.manifest_file(settings, batch_id), json.dumps(manifest).encode())


@pytest.mark.unit
def test_quality_comes_from_the_validation_results_else_from_the_quarantine_counts(tmp_path):
    settings = Settings.from_env({"SENSORLOG_HOME": str(tmp_path)})
    _manifest(settings, "b1")
    _manifest(settings, "b2", validation={"collection": {"rows": 5, "failed": {"expect_records_positive": 2}}})
    b1, b2 = lineage.published_lineage(settings, ["b1", "b2", "b1", "missing"])
    assert b1.source == f"file://{tmp_path}/landing/vendor-a/f.ndjson"
    assert b1.writes == (lineage.TableWrite("collection", 3, 2),)
    assert b1.quality.source == "quarantine" and b1.quality.failed == 2
    assert lineage.Check(None, "rows valid", 2) in b1.quality.checks
    assert b2.quality == lineage.Quality(5, 2, (
        lineage.Check(None, "file readable", 0), lineage.Check(None, "lines parsed", 0),
        lineage.Check("collection", "expect_records_positive", 2)), "validation")
    _manifest(settings, "b3", validation={"collection": {"rows": "many"}})  # not the shape: counts instead
    (b3,) = lineage.published_lineage(settings, ["b3"])
    assert b3.quality.source == "quarantine"


@pytest.mark.integration  # importing Airflow starts a process
def test_a_manifest_that_cannot_be_read_is_named_and_costs_only_its_own_lineage(tmp_path, monkeypatch):
    from sensorlog_airflow import lineage as airflow_lineage

    settings = Settings.from_env({"SENSORLOG_HOME": str(tmp_path)})
    storage.write_bytes(layout.manifest_file(settings, "broken"), b"{not json")
    with pytest.raises(ManifestError, match="broken.json: not JSON"):
        lineage.batch_lineage(settings, "broken")
    result = {"batch_ids": ["broken"], "published": 0}
    warned: list[str] = []
    # Airflow's logging setup keeps records from pytest's capture: listen on the module's logger itself.
    monkeypatch.setattr(airflow_lineage.log, "warning", lambda msg, *args: warned.append(msg % args))
    assert airflow_lineage.published(settings, result) is result  # a task's result, never an exception
    assert len(warned) == 1 and warned[0].startswith("lineage: batch broken not recorded: ")
    assert "broken.json: not JSON" in warned[0]
