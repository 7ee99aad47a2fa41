"""The landing-zone Asset, watched through SQS when ``SENSORLOG_SQS_QUEUE_URL`` is set.

Delivery semantics: the trigger deletes each SQS message when it receives it (the provider's
default), so the queue is at-most-once. That is safe here because messages are only pointers:
publishing is idempotent by the SHA-256 of the object, and the ingest DAG's sweep schedule processes
any landed file no manifest covers — so a lost message or a failed run delays a file, never loses it.
"""

from __future__ import annotations

from airflow.sdk import Asset, AssetWatcher

from pipelines import lineage
from pipelines.config import Settings, SqsSettings


def landing_asset(sqs: SqsSettings, settings: Settings) -> Asset | None:
    """The watched landing Asset, or None when no queue is configured (``pipelines.config.SqsSettings``).
    Its URI is the landing zone's real location (``s3://bucket/prefix/landing``), as lineage names it."""
    if not sqs.queue_url:
        return None
    from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

    trigger = MessageQueueTrigger(
        scheme="sqs",
        sqs_queue=sqs.queue_url,
        aws_conn_id=sqs.aws_conn_id,
        max_messages=10,
        wait_time_seconds=sqs.wait_seconds,
        waiter_delay=sqs.poll_seconds,
    )
    return Asset(
        name="sensorlog.landing",
        uri=lineage.uri(settings.landing),
        watchers=[AssetWatcher(name="sensorlog_landing_sqs", trigger=trigger)],
    )
