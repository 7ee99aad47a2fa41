"""The landing-zone Asset, watched through SQS when ``SENSORLOG_SQS_QUEUE_URL`` is set.

Delivery semantics: the trigger deletes each SQS message when it receives it (the provider's
default), so the queue is at-most-once. That is safe here because messages are only pointers:
publishing is idempotent by the SHA-256 of the object, and the ingest DAG's sweep schedule processes
any landed file no manifest covers — so a lost message or a failed run delays a file, never loses it.
"""

from __future__ import annotations

import os

from airflow.sdk import Asset, AssetWatcher

QUEUE_URL = os.environ.get("SENSORLOG_SQS_QUEUE_URL", "")


def landing_asset() -> Asset | None:
    if not QUEUE_URL:
        return None
    from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

    trigger = MessageQueueTrigger(
        scheme="sqs",
        sqs_queue=QUEUE_URL,
        aws_conn_id=os.environ.get("SENSORLOG_AWS_CONN_ID", "aws_default"),
        max_messages=10,
        wait_time_seconds=int(os.environ.get("SENSORLOG_SQS_WAIT_SECONDS", "5")),
        waiter_delay=int(os.environ.get("SENSORLOG_SQS_POLL_SECONDS", "2")),
    )
    return Asset(
        name="sensorlog.landing",
        uri="sensorlog://landing",
        watchers=[AssetWatcher(name="sensorlog_landing_sqs", trigger=trigger)],
    )
