"""Ingest landed vendor files: discover → stage (one mapped task per bounded group) → publish → compact.

Thin by design: every task calls one ``pipelines`` function, the same one a ``sensorlog`` command calls.
The schedule is the safety net (a sweep of the landing zone); event-driven runs come from the
S3 → SQS watcher DAG. Publishing has one writer at a time (a lock inside ``commit_batches``), so
runs never fork the transparency log, and every task is safe to retry.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from pipelines import config, flow
from pipelines.config import Settings
from pipelines.log import witnessing
from pipelines.publish import compact as compaction
from sensorlog_airflow import lineage
from sensorlog_airflow.assets import PUBLISHED, PUBLISHED_ASSETS

SWEEP_MINUTES = config.sweep_minutes()  # when the file is parsed: the schedule is part of the DAG


@dag(
    dag_id="sensorlog_ingest",
    # The sweep: the safety net for files whose notification was lost or whose run failed.
    # SENSORLOG_SWEEP_MINUTES=0 turns it off (tests of the event-driven path use that).
    schedule=timedelta(minutes=SWEEP_MINUTES) if SWEEP_MINUTES else None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["sensorlog"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
)
def sensorlog_ingest():
    @task
    def discover() -> list[list[str]]:
        return flow.group_files(lineage.read(flow.discover(Settings.from_env())))

    @task(max_active_tis_per_dagrun=4)
    def stage(group: list[str]) -> list[str]:
        return flow.stage_files(Settings.from_env(), lineage.read(group))

    @task(outlets=PUBLISHED_ASSETS)
    def publish(staged: list[list[str]]) -> dict:
        # A batch that fails does not stop the ones after it; the task then fails (and retries it).
        settings = Settings.from_env()
        result = flow.commit_batches(settings, [b for group in staged for b in group])
        return flow.raise_on_failures(lineage.published(settings, result))  # lineage of what did publish

    # The log's Asset is emitted here, after the cosignatures are on the checkpoint, so the portal it
    # triggers publishes the witnessed checkpoint rather than racing the witnesses.
    @task(outlets=[PUBLISHED["log"]], trigger_rule="all_done")  # the checkpoint moved even if a batch failed
    def witness() -> dict:
        # Cosignatures on the checkpoint just signed (SENSORLOG_WITNESSES); none configured: a no-op.
        # A witness that is down or refuses is reported in the result and does not fail the run.
        return witnessing.collect_cosignatures(Settings.from_env()).to_dict()

    # Merge the small files each batch adds to a partition (under the writer lock, like publish). After
    # whatever publish did: committed batches are safe to compact even when one batch failed.
    @task(trigger_rule="all_done")
    def compact() -> dict:
        return compaction.compact_after_publish(Settings.from_env())

    # The witness task waits for compaction too, so the portal its Asset triggers never reads a
    # partition while compaction swaps it.
    published, cosigned = publish(stage.expand(group=discover())), witness()
    published >> compact() >> cosigned
    published >> cosigned


sensorlog_ingest()
