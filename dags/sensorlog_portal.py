"""The open-data portal DAG. Its documentation (shown in the Airflow UI) is the docstring of
``sensorlog_portal`` below and of its task; docs/airflow.md has the whole picture."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from pipelines import assets as asset_facts
from pipelines.config import Settings
from pipelines.dag_params import PORTAL_PARAMS, build_portals
from sensorlog_airflow.assets import PUBLISHED, SITE, set_extra
from sensorlog_airflow.docs import documented
from sensorlog_airflow.params import param_errors, params


@dag(
    dag_id="sensorlog_portal",
    description="Rebuild the open-data portal (datasets, pages, signs, proofs) when findings or the log change",
    schedule=PUBLISHED["findings"] | PUBLISHED["log"],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["sensorlog", "portal", "open-data"],
    params=params(PORTAL_PARAMS),
    default_args={"owner": "sensorlog", "retries": 2, "retry_delay": timedelta(seconds=30)},
)
@documented
def sensorlog_portal():
    """
    ### Open-data portal

    One task, *build*: `pipelines.portal.build_portal`, what `sensorlog portal` runs: one build, every language.

    - **Reads**: the published event tables, the audit's derived tables, the registry, the log
      (checkpoint, proofs of the declarations).
    - **Writes**: the static site: `data.json` (DCAT-US), `datapackage.json`, Parquet and CSV extracts,
      HTML pages, printable signs, `SHA256SUMS`. A rebuild drops the files an earlier build wrote that
      it no longer writes.
    - **Emits**: the `sensorlog.portal` Asset (`extra`: each site's language, folder, files and datasets,
      the log's rows and the checkpoint size and root).

    **Schedule**: whenever the findings (an audit) or the log (an ingest, after the witnesses) change.

    **Params**: `languages` (the first language's pages at the output folder, each other's in
    `<output>/<language>/`, the data files once; empty: `SENSORLOG_PORTAL_LANG`, else all six) and `out` (a folder or
    `s3://bucket/prefix`; empty: `SENSORLOG_PORTAL_OUT`, else `<home>/site`). Base URL and publisher
    come from `SENSORLOG_PORTAL_*`.

    **Recovery**: retry or re-run; a build is idempotent and rewrites the site from the home.
    """

    @task(outlets=[SITE], execution_timeout=timedelta(hours=4))
    @documented
    def build(params: dict | None = None, outlet_events=None) -> list[dict]:
        """
        #### build
        Builds the site in each language asked for and returns, per site, where it went and what it
        holds (small enough for XCom).

        **Reads** `published/`, `derived/`, the registry, `log/`. **Writes** the site folder(s).
        **Recovery**: retry or re-run; idempotent.
        """
        settings, p = Settings.from_env(), params or {}
        with param_errors():
            built = build_portals(settings, p.get("out"), p.get("languages"))
        set_extra(outlet_events, [SITE], asset_facts.portal_extra(settings, built))
        return built

    build()


sensorlog_portal()
