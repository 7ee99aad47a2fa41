"""Retention audit: recompute the retention ledger, findings and auditor's report from the published log.

Runs when any published event table is updated (the ingest DAG's outlets) and at 03:00 UTC daily, so
time alone turns records overdue even when nothing new arrives. One task, one ``pipelines`` function
(the one ``sensorlog audit`` calls). With ``SENSORLOG_AUDIT_FAIL_ON`` set to a severity, the task fails
after publishing, with the number of findings at or above it in the log.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import AssetAny, AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from pipelines import audit
from pipelines.config import Settings
from sensorlog_airflow.assets import PUBLISHED, PUBLISHED_ASSETS


@dag(
    dag_id="sensorlog_audit",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 3 * * *", timezone="UTC"),
        assets=AssetAny(*PUBLISHED_ASSETS),
    ),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["sensorlog"],
    default_args={"retries": 1, "retry_delay": timedelta(minutes=1)},
)
def sensorlog_audit():
    # A failed gate is retried once like any failure; harmless, since publishing again is idempotent.
    @task(outlets=[PUBLISHED["retention_ledger"], PUBLISHED["findings"]])
    def audit_and_publish() -> dict:
        return audit.publish(Settings.from_env(), fail_on=os.environ.get("SENSORLOG_AUDIT_FAIL_ON") or None)

    audit_and_publish()


sensorlog_audit()
