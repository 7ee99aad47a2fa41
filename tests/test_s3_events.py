"""Event-driven ingest on object storage, against real S3 + SQS HTTP endpoints on loopback (moto server).

Landing and published data live in the bucket; the code under test talks HTTP exactly as it would to
AWS or MinIO. Bucket notifications go to a real SQS queue; messages are received with boto3."""

from __future__ import annotations

import json
import threading
import time

import boto3
import pytest
from conftest import DEPLOYMENT, event_manifests, make_event, ndjson

from pipelines import flow, storage, summary
from pipelines.config import PROJECT_DIR, Settings
from pipelines.ingest import notifications

pytestmark = pytest.mark.integration


@pytest.fixture
def s3_settings(bucket, tmp_path, monkeypatch) -> Settings:
    registry = tmp_path / "registry"
    registry.mkdir()
    source = (PROJECT_DIR / "registry" / "cctv-city-hall-plaza.yaml").read_text()
    (registry / f"{DEPLOYMENT}.yaml").write_text(source.replace("cctv-city-hall-plaza", DEPLOYMENT))
    return Settings.from_env({
        "SENSORLOG_HOME": f"s3://{bucket}/sensorlog", "SENSORLOG_STATE_HOME": str(tmp_path / "state"),
        "SENSORLOG_REGISTRY": str(registry),
    })


@pytest.fixture
def queue(bucket, s3_settings):
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=f"{bucket}-landing")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    boto3.client("s3").put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={"QueueConfigurations": [
            {"QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
             "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "sensorlog/landing/"}]}}}
        ]},
    )
    return url


def receive_all(url: str) -> list[str]:
    sqs, bodies = boto3.client("sqs"), []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return bodies
        for message in got:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def land(settings: Settings, name: str, events: list[dict]) -> str:
    uri = storage.join(settings.landing, name)
    storage.write_bytes(uri, ndjson(events))
    return uri


def published_count(settings: Settings) -> int:
    con = summary.connect(settings)
    return sum(con.sql(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in ("collection", "access"))


def test_notifications_name_the_uploaded_objects_and_odd_messages_are_set_aside(s3_settings, queue, bucket):
    first = land(s3_settings, "vendor a/2026-07 export+1.ndjson", [make_event(n=1)])
    land(s3_settings, "vendor-b/notes.txt", [make_event(n=2)])
    bodies = receive_all(queue)
    assert any("s3:TestEvent" in b for b in bodies)  # sent when the notification was configured
    assert any("vendor+a%2F2026-07+export%2B1.ndjson" in b or "vendor%20a" in b for b in bodies)
    gone = land(s3_settings, "vendor-c/gone.ndjson", [make_event(n=3)])
    bodies += receive_all(queue)
    storage.delete(gone)
    found = notifications.parse_messages([*bodies, bodies[-1], "{not json", json.dumps({"Records": "x"})],
                                         s3_settings.landing)
    assert found.uris == [first]
    reasons = "\n".join(found.ignored)
    for expected in ("s3:TestEvent", "not a landing file type", "object no longer exists", "not JSON",
                     "no Records list"):
        assert expected in reasons


def test_event_path_publishes_once_and_the_sweep_catches_a_lost_message(s3_settings, queue):
    uri = land(s3_settings, "vendor-a/2026-07-01.ndjson", [make_event(n=i) for i in range(5)])
    bodies = receive_all(queue)
    extras = [{"from_trigger": True, "payload": {"message_batch": [{"Body": b} for b in bodies]}}]
    uris = flow.notified_files(s3_settings, extras)
    assert uris == [uri]
    first = flow.ingest_files(s3_settings, uris, sweep=False)
    assert (first["published"], first["batches"]) == (5, 1)
    # the same message delivered again: nothing new is published
    again = flow.ingest_files(s3_settings, flow.notified_files(s3_settings, extras), sweep=False)
    assert (again["published"], again["already_published"]) == (0, 1)  # a run counts only what it added
    assert published_count(s3_settings) == 5
    assert len(event_manifests(s3_settings)) == 1
    # a message lost: the next sweep finds the file no manifest covers
    lost = land(s3_settings, "vendor-a/2026-07-02.ndjson", [make_event("access", n=9)])
    receive_all(queue)  # drop it on the floor
    assert flow.discover(s3_settings) == [lost]
    swept = flow.ingest_files(s3_settings, [])
    assert swept["published"] == 1 and published_count(s3_settings) == 6
    assert flow.discover(s3_settings) == []
    manifest = json.loads(storage.read_bytes(event_manifests(s3_settings)[0]))
    for out in manifest["outputs"]:
        assert storage.sha256_of(storage.join(s3_settings.published, out["path"]))[0] == out["sha256"]


def test_s3_errors_for_a_while_are_retried_then_fail_clearly(s3_env, bucket, monkeypatch):
    """Point the client at a port where S3 comes up late: reads retry with backoff and succeed; if it
    never comes up, the error names the object."""
    from moto.server import ThreadedMotoServer

    monkeypatch.setenv("SENSORLOG_S3_MAX_ATTEMPTS", "8")
    storage.write_bytes(f"s3://{bucket}/k.json", b"{}")
    late = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    late.start()
    port = late.get_host_and_port()[1]
    late.stop()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    storage._s3.cache_clear()
    revived = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    timer = threading.Timer(0.4, revived.start)
    timer.start()
    try:
        started = time.monotonic()
        assert storage.read_bytes(f"s3://{bucket}/k.json") == b"{}"  # moto keeps state across restarts
        assert time.monotonic() - started >= 0.3
    finally:
        timer.join()
        revived.stop()
    monkeypatch.setenv("SENSORLOG_S3_MAX_ATTEMPTS", "2")
    storage._s3.cache_clear()
    with pytest.raises(OSError, match=f"key 'k.json' in bucket '{bucket}'.*Could not connect"):
        storage.read_bytes(f"s3://{bucket}/k.json")
    storage._s3.cache_clear()
