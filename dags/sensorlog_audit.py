"""Retention audit: recompute the retention ledger, findings and auditor's report from the published log.

Runs when any published event table is updated (the ingest DAG's outlets) and daily just after local
midnight in the city's time zone, so time alone turns records overdue and stopped feeds silent even
when nothing new arrives: the audit judges as of today (``SENSORLOG_NOW`` overrides the clock).

Two tasks, each one ``pipelines`` function. ``audit_and_publish`` writes the ledger, findings and
report and emits the Assets (so the portal rebuilds whatever the gate says); ``gate`` then judges the
published findings against ``SENSORLOG_AUDIT_FAIL_ON`` (a severity; unset: report only) and fails the
run when findings at or above it exist. The gate never retries: a retry would fail the same way, and
it never repeats the audit.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import AssetAny, AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from pipelines import audit, config
from pipelines.config import Settings
from sensorlog_airflow.assets import PUBLISHED, PUBLISHED_ASSETS


@dag(
    dag_id="sensorlog_audit",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("15 0 * * *", timezone=Settings.from_env().timezone),
        assets=AssetAny(*PUBLISHED_ASSETS),
    ),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["sensorlog"],
    default_args={"retries": 1, "retry_delay": timedelta(minutes=1)},
)
def sensorlog_audit():
    @task(outlets=[PUBLISHED["retention_ledger"], PUBLISHED["findings"]])
    def audit_and_publish() -> dict:
        return audit.publish(Settings.from_env())

    @task(retries=0)
    def gate(published: dict) -> dict:
        return audit.gate(Settings.from_env(), config.audit_fail_on())

    gate(audit_and_publish())


sensorlog_audit()
