"""End to end with a running Airflow 3: scheduler, dag-processor, triggerer and api-server
(`airflow standalone`, temporary AIRFLOW_HOME, SQLite) against loopback S3 + SQS. Nobody triggers a
DAG: an upload to the landing bucket must come out as published Parquet, a manifest and a new log
checkpoint, through S3 notification → SQS → AssetWatcher → the sensorlog_events DAG."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from conftest import DEPLOYMENT, event_manifests, make_event, ndjson
from processes import stop_group
from waiting import wait_for_state

from pipelines import layout, lineage, storage
from pipelines.config import PROJECT_DIR, Settings
from pipelines.registry import load_registry

pytestmark = pytest.mark.system


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, what: str, proc: subprocess.Popen, log: Path) -> float:
    """Wait for the state, up to 15 minutes (tests/waiting.py); fails at once if Airflow exits."""

    def died() -> str | None:
        if proc.poll() is None:
            return None
        return f"airflow standalone exited ({proc.returncode}):\n" + log.read_text(errors="replace")[-3000:]

    return wait_for_state(predicate, what, poll=1, died=died,
                          still_running=lambda: "airflow standalone; last log lines:\n"
                          + log.read_text(errors="replace")[-3000:])


@pytest.fixture
def airflow_env(s3_env, bucket, tmp_path):
    registry = tmp_path / "registry"
    registry.mkdir()
    source = (PROJECT_DIR / "registry" / "cctv-city-hall-plaza.yaml").read_text()
    (registry / f"{DEPLOYMENT}.yaml").write_text(source.replace("cctv-city-hall-plaza", DEPLOYMENT))
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName=f"{bucket}-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("s3").put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]},
    )
    port = free_port()
    home = tmp_path / "airflow"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_DIR / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({
            "conn_type": "aws", "login": "testing", "password": "testing",
            "extra": {"endpoint_url": s3_env, "region_name": "us-east-1"},
        }),
        "SENSORLOG_HOME": f"s3://{bucket}/sensorlog",
        "SENSORLOG_STATE_HOME": str(tmp_path / "state"),
        "SENSORLOG_REGISTRY": str(registry),
        "SENSORLOG_SQS_QUEUE_URL": queue,
        "SENSORLOG_SQS_POLL_SECONDS": "1",
        "SENSORLOG_SQS_WAIT_SECONDS": "1",
        "SENSORLOG_SWEEP_MINUTES": "0",  # only the event path may publish in this test
        # Airflow's own clocks, generous: a slow DAG import or a long queue must not fail a task.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600",
        "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "900",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "7200",
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
    }
    settings = Settings.from_env(env)
    env.update(lineage.openlineage_env(settings, env))  # run events to the file transport, as sensorlog sets it
    lineage.prepare(settings)
    return env, settings, home


def test_upload_is_published_by_the_event_driven_dag(airflow_env, bucket):
    env, settings, home = airflow_env
    home.mkdir(parents=True)
    log = home / "standalone.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "airflow"), "standalone"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        manifests = lambda: event_manifests(settings)  # noqa: E731  (the registry's declarations come first)
        warmup = storage.join(settings.landing, "vendor-a/warmup.ndjson")
        storage.write_bytes(warmup, ndjson([make_event(n=0)]))
        wait_for(lambda: len(manifests()) == 1, "the first upload to be published", proc, log)

        second = storage.join(settings.landing, "vendor-a/2026-07-02 export.ndjson")
        storage.write_bytes(second, ndjson([make_event(n=i) for i in range(1, 6)] + [make_event("access")]))
        latency = wait_for(lambda: len(manifests()) == 2, "the second upload to be published", proc, log)
        print(f"\nupload → published latency with a running Airflow: {latency:.1f} s")

        def event_files() -> list[str]:
            return [f for f in storage.list_files(settings.published, (".parquet",))
                    if "/event_type=" in f and "/event_type=declaration/" not in f]

        # The manifest is the commit point; the batch's files are moved into place just after it, so
        # wait for them rather than read the listing at the instant the manifest appears.
        wait_for(lambda: len(event_files()) >= 3, "the second upload's files to be in place", proc, log)
        published = event_files()
        assert len(published) == 3  # two collection partitions (one per file) + one access partition
        manifest = json.loads(storage.read_bytes(max(manifests(), key=lambda m: storage.file_info(m).mtime_ns)))
        assert manifest["published"] == 6 and manifest["source_file"] == "vendor-a/2026-07-02 export.ndjson"
        checkpoint = (Path(settings.log) / "checkpoint").read_text()
        declared = len(load_registry(settings.registry))  # the registry, logged before the first upload
        assert checkpoint.splitlines()[1] == str(declared + 1 + 9)  # then 1 + 1 manifest, 6 + 1 manifest
        # (The latency is printed, never asserted: how fast a loaded machine is decides nothing.)

        # OpenLineage: each task ran in its own process (LocalExecutor), and the ingest task's COMPLETE
        # event names the landed object as its input and the tables it wrote as outputs.
        def ingest_events() -> list[dict]:
            path = Path(layout.lineage_file(settings))
            events = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
            return [e for e in events if e["job"]["name"] == "sensorlog_events.ingest"
                    and e["eventType"] == "COMPLETE" and e.get("inputs")]

        wait_for(lambda: len(ingest_events()) >= 2, "both ingest runs' lineage events", proc, log)
        event = next(e for e in ingest_events() if any(i["name"].endswith("2026-07-02 export.ndjson")
                                                          for i in e["inputs"]))
        assert {(i["namespace"], i["name"]) for i in event["inputs"]} == {
            (f"s3://{bucket}", "sensorlog/landing/vendor-a/2026-07-02 export.ndjson")}
        assert {o["name"] for o in event["outputs"]} >= {
            "sensorlog/published/event_type=collection", "sensorlog/published/event_type=access"}
    finally:
        stop_group(proc)  # standalone and every component it started
