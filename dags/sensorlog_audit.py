"""The retention audit DAG. Its documentation (shown in the Airflow UI) is the docstring of
``sensorlog_audit`` below and of each task; docs/airflow.md has the whole picture."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import AssetAny, AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from pipelines import assets as asset_facts
from pipelines import audit, config
from pipelines.config import Settings
from pipelines.dag_params import AUDIT_PARAMS, audit_clock
from sensorlog_airflow.assets import PUBLISHED, PUBLISHED_ASSETS, set_extra
from sensorlog_airflow.docs import documented
from sensorlog_airflow.params import param_errors, params

AUDIT_OUTLETS = [PUBLISHED["retention_ledger"], PUBLISHED["findings"]]


@dag(
    dag_id="sensorlog_audit",
    description="Retention ledger, findings and auditor's report from the published log, as of today or a given date",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("15 0 * * *", timezone=Settings.from_env().timezone),
        assets=AssetAny(*PUBLISHED_ASSETS),
    ),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["sensorlog", "audit", "retention"],
    params=params(AUDIT_PARAMS),
    default_args={"owner": "sensorlog", "retries": 1, "retry_delay": timedelta(minutes=1)},
)
@documented
def sensorlog_audit():
    """
    ### Retention audit

    **audit_and_publish → gate.** Recomputes the retention ledger, the findings and the auditor's report
    from the published log (`pipelines.audit`, what `sensorlog audit` runs).

    - **Reads**: the published event tables, the registry's declarations, the log's checkpoint.
    - **Writes**: `derived/retention_ledger/`, `derived/findings/` (with `findings.json`) and the
      auditor's report in `reports/`.
    - **Emits**: the `retention_ledger` and `findings` Assets (`extra`: as-of date, findings by severity,
      the log's rows published/quarantined/duplicates, the checkpoint size and root), which rebuild the
      portal whatever the gate decides.

    **Schedule**: whenever an event table is updated, and daily just after local midnight in the city's
    time zone, so time alone turns records overdue and stopped feeds silent.

    **Params**: `as_of`, a date (local midnight) or ISO datetime to judge as of, as if it were today
    (re-audit a past day; empty: today, `SENSORLOG_NOW` overriding the clock). The published tables then
    show that day's view until the next run; a bad date fails at once.

    **Gate**: `SENSORLOG_AUDIT_FAIL_ON` (a severity; unset: report only) fails the run when findings at or
    above it exist. It never retries (it would fail the same way) and never repeats the audit.
    **Recovery**: *audit_and_publish* is retried once and is safe to re-run; it rewrites its outputs whole.
    """

    @task(outlets=AUDIT_OUTLETS, execution_timeout=timedelta(hours=2))
    @documented
    def audit_and_publish(params: dict | None = None, outlet_events=None) -> dict:
        """
        #### audit_and_publish
        Audits every deployment as of today (or the `as_of` param) and writes the ledger, the findings
        and the report, then emits their Assets with a summary in `extra`. Returns the summary.

        **Reads** `published/`, the declarations. **Writes** `derived/`, `reports/`.
        **Recovery**: retry or re-run; every output is rewritten whole.
        """
        settings = Settings.from_env()
        with param_errors():
            now = audit_clock(settings, (params or {}).get("as_of"))
        result = audit.publish(settings, now=now)
        set_extra(outlet_events, AUDIT_OUTLETS, asset_facts.audit_extra(settings, result))
        return result

    @task(retries=0, execution_timeout=timedelta(minutes=10))
    @documented
    def gate(published: dict) -> dict:
        """
        #### gate
        Judges the published `findings.json` against `SENSORLOG_AUDIT_FAIL_ON` and fails when findings at
        or above that severity exist (unset: reports only).

        **Reads** `derived/findings/findings.json`. **Writes** nothing. **Recovery**: deterministic, so
        never retried; fix the findings' cause (or the setting), then re-run the DAG or wait for the next.
        """
        return audit.gate(Settings.from_env(), config.audit_fail_on())

    gate(audit_and_publish())


sensorlog_audit()
