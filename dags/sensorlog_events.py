"""The event-driven ingest DAG (only when ``SENSORLOG_SQS_QUEUE_URL`` is set). Its documentation (shown
in the Airflow UI) is the docstring of ``sensorlog_events`` below and of each task; see
sensorlog_airflow/watchers.py for the delivery semantics and docs/airflow.md for the whole picture."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from pipelines import assets as asset_facts
from pipelines import flow
from pipelines.config import Settings, SqsSettings
from pipelines.log import witnessing
from sensorlog_airflow import lineage
from sensorlog_airflow.assets import PUBLISHED, PUBLISHED_ASSETS, set_extra
from sensorlog_airflow.docs import documented
from sensorlog_airflow.watchers import landing_asset

LANDING = landing_asset(SqsSettings.from_env(), Settings.from_env())

if LANDING is not None:

    @dag(
        dag_id="sensorlog_events",
        description="S3 upload → SQS → this DAG within seconds: ingest the notified files (and any others pending)",
        schedule=[LANDING],
        start_date=datetime(2026, 1, 1),
        catchup=False,
        is_paused_upon_creation=False,
        tags=["sensorlog", "ingest", "event-driven", "transparency-log"],
        default_args={"owner": "sensorlog", "retries": 3, "retry_delay": timedelta(seconds=10)},
    )
    @documented
    def sensorlog_events():
        """
        ### Event-driven ingest

        **notified → ingest → witness.** An upload to the landing bucket sends an S3 notification to SQS;
        the `sensorlog.landing` Asset's watcher turns each message into an Asset event that triggers this
        DAG. Each run ingests the objects its messages name plus anything else landed that no manifest
        covers (a cheap sweep), so a missed, repeated or reordered message changes nothing.

        - **Reads**: the triggering Asset events (S3 notification bodies), the landing bucket, the registry.
        - **Writes**: what `sensorlog_ingest` writes (published tables, manifests, quarantine, log).
        - **Emits**: each event table's Asset (from *ingest*) and the log's (from *witness*), with `extra`
          as in `sensorlog_ingest`.

        **Recovery**: every task is safe to retry. A lost message only delays a file until the next run
        or the ingest DAG's sweep; publishing is idempotent by the SHA-256 of each object.
        """

        @task(execution_timeout=timedelta(minutes=10))
        @documented
        def notified(triggering_asset_events=None) -> list[str]:
            """
            #### notified
            The landed objects named by this run's S3 notifications (messages that name nothing under
            the landing prefix are logged and ignored). **Writes** nothing. **Recovery**: retry.
            """
            extras = [event.extra for events in (triggering_asset_events or {}).values() for event in events]
            return flow.notified_files(Settings.from_env(), extras)

        @task(outlets=PUBLISHED_ASSETS, execution_timeout=timedelta(hours=2))
        @documented
        def ingest(uris: list[str], outlet_events=None) -> dict:
            """
            #### ingest
            Stages and publishes the notified objects and anything else pending (as *stage* and
            *publish* of `sensorlog_ingest`, in one task), and emits the event tables' Assets with this
            run's totals in `extra`. **Recovery**: retry; a published object is skipped by its hash.
            """
            settings = Settings.from_env()
            result = flow.ingest_files(settings, uris)
            set_extra(outlet_events, PUBLISHED_ASSETS,
                      per_table=lambda table: asset_facts.ingest_extra(settings, result, table))
            return flow.raise_on_failures(lineage.published(settings, result))

        # As in sensorlog_ingest: the log's Asset after the cosignatures, even if one batch failed.
        @task(outlets=[PUBLISHED["log"]], trigger_rule="all_done", execution_timeout=timedelta(minutes=15))
        @documented
        def witness(outlet_events=None) -> dict:
            """
            #### witness
            Collects the witnesses' cosignatures on the latest checkpoint (as in `sensorlog_ingest`) and
            emits the log's Asset. **Recovery**: retry or re-run; idempotent.
            """
            settings = Settings.from_env()
            result = witnessing.collect_cosignatures(settings).to_dict()
            set_extra(outlet_events, [PUBLISHED["log"]], asset_facts.log_extra(settings, result))
            return result

        ingest(notified()) >> witness()

    sensorlog_events()
