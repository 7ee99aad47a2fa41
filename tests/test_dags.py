"""The DAGs as Airflow sees them: import cleanly, stay thin, and really run under Airflow."""

from __future__ import annotations

import ast
import base64
import json
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines import flow, layout, storage
from pipelines.config import PROJECT_DIR, Settings
from pipelines.dev import airflow_runner, synthetic
from pipelines.log import writer
from pipelines.publish import compact
from pipelines.registry import load_registry

pytestmark = pytest.mark.system

DAGS = PROJECT_DIR / "dags"


def test_every_dag_imports_without_errors():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    assert "sensorlog_ingest" in bag.dag_ids
    ingest = bag.dags["sensorlog_ingest"]
    assert {t.task_id for t in ingest.tasks} >= {"discover", "stage", "publish"}
    outlets = {a.name for a in ingest.get_task("publish").outlets}
    assert outlets == {
        "sensorlog.collection", "sensorlog.deletion", "sensorlog.access", "sensorlog.lifecycle",
        "sensorlog.vendor_snapshot",
    }
    # The log's Asset (which rebuilds the portal) comes after the witnesses cosigned the checkpoint.
    assert {a.name for a in ingest.get_task("witness").outlets} == {"sensorlog.log"}
    assert "publish" in ingest.get_task("witness").upstream_task_ids
    # Compaction follows publish, and the witness (whose Asset starts the portal) waits for it.
    assert ingest.get_task("compact").upstream_task_ids == {"publish"}
    assert "compact" in ingest.get_task("witness").upstream_task_ids
    assert {"sensorlog_ingest", "sensorlog_audit", "sensorlog_portal"} <= set(bag.dag_ids)


def _pipelines_modules() -> dict[str, Path]:
    """Every module of ``pipelines`` and its subpackages (``cli/``, ``audit/``, ``portal/``, ``tlog/``…)."""
    root = PROJECT_DIR / "pipelines"
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(PROJECT_DIR).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _airflow_imports(path: Path) -> list[str]:
    """Each import of ``airflow`` in a file, wherever it is written (also inside a function)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and ast.unparse(node.func) in {"__import__", "importlib.import_module", "import_module"}):
            names = [node.args[0].value]
        else:
            continue
        found += [f"{path.relative_to(PROJECT_DIR)}:{node.lineno} {name}"
                  for name in names if name.split(".")[0] == "airflow"]
    return found


def test_pipelines_never_imports_airflow_in_any_module():
    modules = _pipelines_modules()
    assert {"pipelines.cli", "pipelines.audit", "pipelines.portal", "pipelines.tlog"} <= set(modules)
    assert [hit for path in modules.values() for hit in _airflow_imports(path)] == []


def test_pipelines_never_imports_airflow():
    modules = sorted(_pipelines_modules())
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
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
    options = synthetic.options_for(start=synthetic.date(2026, 7, 1), end=synthetic.date(2026, 7, 15))
    truth = synthetic.write_city(registry, settings.landing, options)
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
    declared = [m for m in manifests if m.get("kind") == "declarations"]
    assert len(declared) == 1  # the publish task logged the registry once, before the events
    manifests = [m for m in manifests if m not in declared]
    assert len(manifests) == len(landed)
    records = compact.load_records(settings)  # the DAG's compact task merged the batches' files
    assert records
    for m in manifests:
        assert m["rows_in"] == m["published"] + m["quarantined"] + m["duplicates"]
        for out in m["outputs"]:
            held = compact.current_path(records, out["path"])
            uri = storage.join(settings.published, out["path"] if held is None else held[0])
            assert pq.read_metadata(uri).num_rows == (out["rows"] if held is None else records[
                next(n for n, r in records.items() if r.path == held[0])].rows)
    assert sum(m["published"] for m in manifests) > 1000
    assert storage.list_files(storage.join(settings.published, "event_type=collection"), (".parquet",))
    assert "sensorlog_ingest" in log.read_text()
    assert Path(layout.index_db(settings)).exists()


def test_the_audit_gate_is_its_own_task_after_the_assets_are_emitted():
    """The publishing task emits the audit's Assets without waiting for the gate; the gate runs after
    it, once (no retries), so a failing gate neither stalls the portal nor repeats the audit."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    audit = bag.dags["sensorlog_audit"]
    publish, gate = audit.get_task("audit_and_publish"), audit.get_task("gate")
    assert {a.name for a in publish.outlets} == {"sensorlog.retention_ledger", "sensorlog.findings"}
    assert publish.upstream_task_ids == set() and publish.downstream_task_ids == {"gate"}
    assert gate.upstream_task_ids == {"audit_and_publish"} and gate.downstream_task_ids == set()
    assert gate.retries == 0 and list(gate.outlets) == []
    assert publish.retries >= 1  # a transient failure of the audit itself is still retried
    # The daily run starts just after local midnight in the city's zone: "today" has just begun.
    assert str(audit.timetable.timetable.timezone) == Settings.from_env().timezone
    # The portal is scheduled on what the publishing task emits, never on the gate's outcome.
    portal = bag.dags["sensorlog_portal"]
    assert "sensorlog.findings" in {a.name for a in portal.timetable.asset_condition.objects}


def _audit_db(settings) -> sqlite3.Connection:
    return sqlite3.connect(airflow_runner.airflow_home(settings) / "airflow.db")


def test_a_failed_gate_publishes_first_and_the_portal_rebuilds(airflow_run, tmp_path):
    """The small city audited under Airflow a month after its last event with the gate at ``high``:
    the gate fails (once), yet the findings were written, the Asset events emitted and the portal
    queued by them; the portal DAG then rebuilds the site from those findings."""
    settings, truth, log = airflow_run
    # The portal builds at its default output, the home's site: that folder is the portal Asset's URI,
    # known to the DB since the fixture's runs (another SENSORLOG_PORTAL_OUT here would be another URI
    # under the same Asset name, inactive until a scheduler retires the old one).
    site = Path(layout.site_dir(settings))
    airflow_runner.reserialize(settings, log)  # the portal's Asset schedule is known to the DB
    month_later = {"SENSORLOG_NOW": "2026-08-15T12:00:00Z", "SENSORLOG_AUDIT_FAIL_ON": "high"}
    audit_log = tmp_path / "audit.log"  # its own log: the runner scans a log for failed tasks
    with pytest.raises(airflow_runner.AirflowFailed):
        airflow_runner.dags_test(settings, "sensorlog_audit", audit_log, env=month_later)
    text = audit_log.read_text(errors="replace")
    assert "AuditGateFailed" in text and "at or above severity 'high'" in text

    doc = json.loads(storage.read_bytes(storage.join(layout.derived_dir(settings, "findings"), "findings.json")))
    assert doc["as_of_date"] == "2026-08-15" and doc["as_of_source"] == "today"
    assert doc["newest_event"] < "2026-07-16"
    kinds = {f["kind"] for f in doc["findings"]}
    assert {"silent_deployment", "retained_past_policy"} <= kinds

    with closing(_audit_db(settings)) as db:
        (run_id,) = db.execute(
            "SELECT run_id FROM dag_run WHERE dag_id = 'sensorlog_audit' ORDER BY id DESC LIMIT 1"
        ).fetchone()
        tries = dict(
            ((task, (state, n)) for task, state, n in db.execute(
                "SELECT task_id, state, try_number FROM task_instance WHERE dag_id = 'sensorlog_audit' AND run_id = ?",
                (run_id,),
            ))
        )
        assert tries == {"audit_and_publish": ("success", 1), "gate": ("failed", 1)}
        emitted = {
            name
            for (name,) in db.execute(
                "SELECT a.name FROM asset_event e JOIN asset a ON a.id = e.asset_id "
                "WHERE e.source_dag_id = 'sensorlog_audit' AND e.source_run_id = ?",
                (run_id,),
            )
        }
        assert emitted == {"sensorlog.retention_ledger", "sensorlog.findings"}
        queued = {
            dag_id
            for (dag_id,) in db.execute(
                "SELECT q.target_dag_id FROM asset_dag_run_queue q JOIN asset a ON a.id = q.asset_id "
                "WHERE a.name = 'sensorlog.findings'"
            )
        }
        assert "sensorlog_portal" in queued  # the scheduler's next loop creates the portal's run

    shutil.rmtree(site, ignore_errors=True)  # what is there after the run is this run's build
    airflow_runner.dags_test(settings, "sensorlog_portal", tmp_path / "portal.log", env=month_later)
    assert (site / "index.html").is_file() and (site / "data.json").is_file()
    # The site shows what the failed-gate audit published.
    assert any("silent_deployment" in p.read_text(errors="replace") for p in site.rglob("*.csv"))


def test_the_ingest_dag_takes_files_and_reprocess_and_its_events_carry_extra(airflow_run, tmp_path):
    """The small city's ingest DAG triggered with params: ``files`` names one landed file already
    published and one new (the same rows less one line: other bytes, so another batch, whose rows are all
    duplicates), ``reprocess`` true. The first is re-staged and publishes nothing twice; the second is
    published as duplicates; each event table's Asset event carries the run's totals and checkpoint."""
    settings, truth, _ = airflow_run
    landed = sorted(storage.list_files(settings.landing, (".ndjson",)))
    first, source = landed[0], Path(landed[1])
    lines = source.read_bytes().splitlines(keepends=True)
    copy = source.with_name("zz-resent-" + source.name)
    copy.write_bytes(b"".join(lines[1:]))
    rel = lambda uri: layout.relative(settings.landing, uri)  # noqa: E731
    conf = {"files": [rel(first), rel(str(copy))], "reprocess": True}
    airflow_runner.dags_test(settings, "sensorlog_ingest", tmp_path / "params.log", conf=conf)

    manifest = json.loads(storage.read_bytes(next(
        m for m in storage.list_files(settings.manifests, (".json",))
        if json.loads(storage.read_bytes(m)).get("source_file") == rel(str(copy)))))
    assert manifest["rows_in"] == len(lines) - 1 == manifest["duplicates"] and manifest["published"] == 0
    with closing(_audit_db(settings)) as db:
        (run_id,) = db.execute(
            "SELECT run_id FROM dag_run WHERE dag_id = 'sensorlog_ingest' ORDER BY id DESC LIMIT 1"
        ).fetchone()
        events = {
            name: json.loads(extra)
            for name, extra in db.execute(
                "SELECT a.name, e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
                "WHERE e.source_dag_id = 'sensorlog_ingest' AND e.source_run_id = ?", (run_id,))
        }
    assert set(events) == {f"sensorlog.{t}" for t in ("collection", "deletion", "access", "lifecycle",
                                                       "vendor_snapshot", "log")}
    table = manifest["outputs"][0]["table"] if manifest["outputs"] else "collection"
    extra = events[f"sensorlog.{table}"]
    assert extra["batch_ids"] == [manifest["batch_id"]]  # the new batch only: the re-staged one was published
    assert (extra["batches"], extra["published"], extra["duplicates"], extra["already_published"]) == (
        1, 0, len(lines) - 1, 1)
    latest = writer.latest_checkpoint(settings)
    assert (extra["checkpoint_size"], extra["checkpoint_root"]) == (
        latest.size, base64.b64encode(latest.root_hash).decode()) == (
        events["sensorlog.log"]["checkpoint_size"], events["sensorlog.log"]["checkpoint_root"])
    assert flow.discover(settings) == []  # both are remembered
