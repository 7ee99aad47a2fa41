"""Event-driven ingest: an S3 upload → S3 notification → SQS → AssetWatcher → this DAG, within seconds.

Exists only when ``SENSORLOG_SQS_QUEUE_URL`` is configured. Each run processes the objects named by
its triggering messages plus anything else landed that no manifest covers (a cheap sweep), so
missed, repeated or reordered messages change nothing. See sensorlog_airflow/watchers.py for the
delivery semantics.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from pipelines import flow
from pipelines.config import Settings, SqsSettings
from pipelines.log import witnessing
from sensorlog_airflow import lineage
from sensorlog_airflow.assets import PUBLISHED, PUBLISHED_ASSETS
from sensorlog_airflow.watchers import landing_asset

LANDING = landing_asset(SqsSettings.from_env())

if LANDING is not None:

    @dag(
        dag_id="sensorlog_events",
        schedule=[LANDING],
        start_date=datetime(2026, 1, 1),
        catchup=False,
        is_paused_upon_creation=False,
        tags=["sensorlog"],
        default_args={"retries": 3, "retry_delay": timedelta(seconds=10)},
    )
    def sensorlog_events():
        @task
        def notified(triggering_asset_events=None) -> list[str]:
            extras = [event.extra for events in (triggering_asset_events or {}).values() for event in events]
            return flow.notified_files(Settings.from_env(), extras)

        @task(outlets=PUBLISHED_ASSETS)
        def ingest(uris: list[str]) -> dict:
            settings = Settings.from_env()
            return flow.raise_on_failures(lineage.published(settings, flow.ingest_files(settings, uris)))

        # As in sensorlog_ingest: the log's Asset after the cosignatures, even if one batch failed.
        @task(outlets=[PUBLISHED["log"]], trigger_rule="all_done")
        def witness() -> dict:
            return witnessing.collect_cosignatures(Settings.from_env()).to_dict()

        ingest(notified()) >> witness()

    sensorlog_events()
