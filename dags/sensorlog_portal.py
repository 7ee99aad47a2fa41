"""Rebuild the open-data portal whenever the audit's findings or the transparency log change.

Thin by design: one task calls ``pipelines.portal.build_portal``, the function ``sensorlog portal``
calls. Scheduled on either Asset (``|``): the log grows with every ingest, findings change with every
audit, and the site should show both as soon as they exist; a rebuild is cheap and idempotent.
Output and base URL come from the environment (``SENSORLOG_PORTAL_OUT``, default ``<home>/site``;
``SENSORLOG_PORTAL_BASE_URL``; ``SENSORLOG_PORTAL_LANG``, default ``en``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from pipelines.config import PortalSettings, Settings
from sensorlog_airflow.assets import PUBLISHED


@dag(
    dag_id="sensorlog_portal",
    schedule=PUBLISHED["findings"] | PUBLISHED["log"],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["sensorlog"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
)
def sensorlog_portal():
    @task
    def build() -> dict:
        from pipelines.portal import build_portal

        portal = PortalSettings.from_env()
        result = build_portal(Settings.from_env(), portal.out, lang=portal.lang)
        # Small enough for XCom: where it went and what it holds.
        return {"out": result.out, "files": result.files, "datasets": result.datasets, "missing": result.missing}

    build()


sensorlog_portal()
