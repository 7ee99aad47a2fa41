"""The DAGs document themselves the way the Airflow UI shows them (DagBag, as the dag-processor parses
them): doc_md on every DAG and task, a description, owners, tags per concern, a timeout on every task,
retries that make sense, params whose schemas reject bad values, and Asset URIs and event extras."""

from __future__ import annotations

import base64

import pytest

from pipelines import assets as asset_facts
from pipelines import dag_params, flow
from pipelines.config import PROJECT_DIR, Settings
from pipelines.tables import EVENT_TABLES

pytestmark = pytest.mark.integration

CONCERNS = {"ingest", "audit", "portal", "transparency-log", "event-driven", "retention", "open-data"}


@pytest.fixture(scope="module")
def bag():
    from airflow.dag_processing.dagbag import DagBag

    found = DagBag(dag_folder=str(PROJECT_DIR / "dags"))
    assert found.import_errors == {}
    assert {"sensorlog_ingest", "sensorlog_audit", "sensorlog_portal"} <= set(found.dag_ids)
    return found


def test_every_dag_and_task_is_documented(bag):
    for dag in bag.dags.values():
        assert dag.doc_md and dag.doc_md.startswith("###"), dag.dag_id  # dedented: Markdown, not a code block
        assert "Recovery" in dag.doc_md and "Reads" in dag.doc_md, dag.dag_id
        assert dag.description and len(dag.description) < 200, dag.dag_id
        assert dag.owner == "sensorlog", dag.dag_id
        assert "sensorlog" in dag.tags and set(dag.tags) & CONCERNS, dag.dag_id
        for task in dag.tasks:
            where = f"{dag.dag_id}.{task.task_id}"
            assert task.doc_md and task.doc_md.startswith(f"#### {task.task_id}"), where
            assert "Recovery" in task.doc_md, where
            assert task.owner == "sensorlog", where
            assert task.execution_timeout is not None and task.execution_timeout.total_seconds() > 0, where


def test_retries_make_sense(bag):
    audit = bag.dags["sensorlog_audit"]
    assert audit.get_task("gate").retries == 0  # deterministic: a retry fails the same way
    assert audit.get_task("audit_and_publish").retries >= 1
    ingest = bag.dags["sensorlog_ingest"]
    assert all(ingest.get_task(t).retries >= 1 for t in ("discover", "stage", "publish", "compact", "witness"))


def test_the_three_dags_take_their_params(bag):
    assert set(bag.dags["sensorlog_ingest"].params) == {"files", "prefix", "reprocess"}
    assert set(bag.dags["sensorlog_audit"].params) == {"as_of"}
    assert set(bag.dags["sensorlog_portal"].params) == {"languages", "out"}
    for dag in bag.dags.values():
        dag.params.validate()  # the defaults are valid: a scheduled run needs no params
        for name in dag.params:
            assert dag.params.get_param(name).description, f"{dag.dag_id}.{name}"


@pytest.mark.parametrize(("dag_id", "name", "good", "bad"), [
    ("sensorlog_ingest", "files", ["vendor-a/x.ndjson", "s3://b/landing/y.csv"], ["a", "a"]),
    ("sensorlog_ingest", "files", None, "vendor-a/x.ndjson"),  # a list, not one string
    ("sensorlog_ingest", "files", [], [""]),
    ("sensorlog_ingest", "prefix", "vendor-a", ""),
    ("sensorlog_ingest", "reprocess", True, "yes"),
    ("sensorlog_audit", "as_of", "2026-08-15", "last tuesday"),
    ("sensorlog_audit", "as_of", "2026-08-15T12:00:00Z", "2026-08-15T12"),
    ("sensorlog_portal", "languages", ["es", "en"], ["xx"]),
    ("sensorlog_portal", "languages", ["en"], []),
    ("sensorlog_portal", "out", "/srv/site", 3),
])
def test_a_bad_param_is_rejected_by_its_schema(bag, dag_id, name, good, bad):
    from airflow.sdk.definitions.param import ParamValidationError

    param = bag.dags[dag_id].params.get_param(name)
    assert param.resolve(good) == good
    with pytest.raises(ParamValidationError):
        param.resolve(bad)


def test_a_param_that_names_no_landed_file_fails_discover_without_retry(bag, tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.setenv("SENSORLOG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SENSORLOG_STATE_HOME", str(tmp_path / "home"))
    (tmp_path / "home" / "landing").mkdir(parents=True)
    discover = bag.dags["sensorlog_ingest"].get_task("discover").python_callable
    for files, named in ((["../etc/passwd"], "'..'"), (["missing.ndjson"], "no such landed file")):
        with pytest.raises(AirflowFailException) as err:
            discover(params={"files": files, "prefix": None, "reprocess": False})
        assert "bad param: file" in str(err.value) and named in str(err.value) and files[0] in str(err.value)
    assert discover(params={"files": None, "prefix": None, "reprocess": False}) == []


def test_as_of_and_languages_are_read_as_the_cli_reads_them(tmp_path):
    settings = Settings.from_env({"SENSORLOG_HOME": str(tmp_path / "home")})
    assert dag_params.audit_clock(settings, None) is None
    moment = dag_params.audit_clock(settings, "2026-08-15")
    assert moment is not None and moment.isoformat().startswith("2026-08-15T0")  # local midnight, in UTC
    with pytest.raises(dag_params.ParamError, match="2026-02-30"):
        dag_params.audit_clock(settings, "2026-02-30")
    sites = dag_params.portal_sites(settings, str(tmp_path / "site"), ["es", "en", "es"])
    assert sites == [("es", str(tmp_path / "site")), ("en", str(tmp_path / "site" / "en"))]
    assert dag_params.portal_sites(settings, None, None)[0][1] is None  # build_portal's own default
    with pytest.raises(dag_params.ParamError, match="'xx'"):
        dag_params.portal_sites(settings, None, ["xx"])


def test_asset_uris_are_the_real_locations(bag, tmp_path):
    from sensorlog_airflow.assets import PUBLISHED, SITE

    settings = Settings.from_env()
    for table, asset in PUBLISHED.items():
        assert asset.uri == asset_facts.asset_uri(settings, table)
        assert asset.uri.startswith(("file:///", "s3://")) and "sensorlog://" not in asset.uri
    assert PUBLISHED["collection"].uri.endswith("/published/event_type=collection")
    assert PUBLISHED["findings"].uri.endswith("/findings")
    assert SITE.uri.startswith("file:///")
    s3 = Settings.from_env({"SENSORLOG_HOME": "s3://bucket/city", "SENSORLOG_STATE_HOME": str(tmp_path)})
    assert asset_facts.asset_uri(s3, "access") == "s3://bucket/city/published/event_type=access"
    # Every emitting task's outlets are these Assets (the audit and portal schedules name them too).
    emitted = {a.name for dag in bag.dags.values() for t in dag.tasks for a in t.outlets}
    assert emitted == {a.name for a in PUBLISHED.values()} | {SITE.name}


class _Events(dict):
    """What ``outlet_events`` is to a task: an accessor per Asset whose ``extra`` the task sets."""

    def __missing__(self, asset):
        class Accessor:
            extra: dict = {}

        self[asset] = Accessor()
        return self[asset]


def test_publish_sets_each_tables_extra(tmp_path):
    from sensorlog_airflow.assets import PUBLISHED_ASSETS, set_extra

    settings = Settings.from_env({"SENSORLOG_HOME": str(tmp_path / "home")})
    totals = {"batches": 2, "rows_in": 7, "published": 5, "quarantined": 1, "duplicates": 1, "file_errors": 0,
              "failed": [], "already_published": 1, "batch_ids": ["a" * 64, "b" * 64],
              "published_by_table": {"collection": 4, "access": 1}}
    events = _Events()
    set_extra(events, PUBLISHED_ASSETS, per_table=lambda table: asset_facts.ingest_extra(settings, totals, table))
    by_table = {a.name.removeprefix("sensorlog."): events[a].extra for a in PUBLISHED_ASSETS}
    assert set(by_table) == set(EVENT_TABLES)
    assert by_table["collection"]["table_rows"] == 4 and by_table["lifecycle"]["table_rows"] == 0
    extra = by_table["access"]
    assert (extra["published"], extra["quarantined"], extra["duplicates"], extra["batch_ids"]) == (
        5, 1, 1, ["a" * 64, "b" * 64])
    assert extra["checkpoint_size"] is None and extra["checkpoint_root"] is None  # nothing logged yet
    many = asset_facts.ingest_extra(settings, {**totals, "batch_ids": [f"{i:064x}" for i in range(250)]})
    assert len(many["batch_ids"]) == asset_facts.MAX_BATCH_IDS and many["batch_ids_truncated"] is True


def test_the_checkpoint_in_an_extra_is_the_logs(tmp_path, device_registry):
    from conftest import make_event, ndjson

    home = tmp_path / "home"
    (home / "landing").mkdir(parents=True)
    (home / "landing" / "one.ndjson").write_bytes(ndjson([make_event(n=i) for i in range(3)]))
    settings = Settings.from_env({"SENSORLOG_HOME": str(home), "SENSORLOG_STATE_HOME": str(home),
                                  "SENSORLOG_REGISTRY": str(device_registry)})
    totals = flow.run(settings)
    from pipelines.log import writer

    latest = writer.latest_checkpoint(settings)
    assert latest is not None
    extra = asset_facts.ingest_extra(settings, totals, "collection")
    assert extra["checkpoint_size"] == latest.size
    assert base64.b64decode(extra["checkpoint_root"]) == latest.root_hash
    assert extra["table_rows"] == 3 and extra["batch_ids"] == totals["batch_ids"] and len(extra["batch_ids"]) == 1
