"""The ingest DAG: landed vendor files → published tables and a new checkpoint of the transparency log.
Its documentation (shown in the Airflow UI) is the docstring of ``sensorlog_ingest`` below and of each
task; docs/airflow.md has the whole picture."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from pipelines import assets as asset_facts
from pipelines import config, flow
from pipelines.config import Settings
from pipelines.dag_params import INGEST_PARAMS
from pipelines.log import witnessing
from pipelines.publish import compact as compaction
from sensorlog_airflow import lineage
from sensorlog_airflow.assets import PUBLISHED, PUBLISHED_ASSETS, set_extra
from sensorlog_airflow.docs import documented
from sensorlog_airflow.params import param_errors, params

SWEEP_MINUTES = config.sweep_minutes()  # when the file is parsed: the schedule is part of the DAG


@dag(
    dag_id="sensorlog_ingest",
    description="Landed vendor files → validated, deduplicated, published tables and a signed log checkpoint",
    # The sweep: the safety net for files whose notification was lost or whose run failed.
    # SENSORLOG_SWEEP_MINUTES=0 turns it off (tests of the event-driven path use that).
    schedule=timedelta(minutes=SWEEP_MINUTES) if SWEEP_MINUTES else None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["sensorlog", "ingest", "transparency-log"],
    params=params(INGEST_PARAMS),
    default_args={"owner": "sensorlog", "retries": 2, "retry_delay": timedelta(seconds=30)},
)
@documented
def sensorlog_ingest():
    """
    ### Ingest landed vendor files

    **discover → stage** (one mapped task per group of files) **→ publish → compact → witness.**
    Every task calls one `pipelines` function, the one a `sensorlog` command calls (`sensorlog run` does
    the whole DAG in one process).

    - **Reads**: the landing zone (`SENSORLOG_LANDING`, default `<home>/landing`, or `s3://…`), the
      registry (`SENSORLOG_REGISTRY`).
    - **Writes**: `published/event_type=<table>/…` Parquet, one manifest per landed file in `manifests/`,
      rows that fail validation in `quarantine/`, leaves and a signed checkpoint in `log/`.
    - **Emits**: one Asset per event table (from *publish*, `extra`: batch ids, rows published, quarantined
      and duplicates, the table's rows, the checkpoint size and root) and the log's Asset (from *witness*).

    **Schedule**: a sweep every `SENSORLOG_SWEEP_MINUTES` (0: none) picks up anything landed that no
    manifest covers; event-driven runs come from the `sensorlog_events` DAG. A sweep with nothing new
    publishes nothing.

    **Params** (trigger with config): `files` (landed files, URIs or paths relative to the landing root),
    `prefix` (a landing sub-folder), `reprocess` (stage them again even if already processed). A file is
    one batch named by the SHA-256 of its bytes, so re-processing never publishes a row twice. A param
    that names no landed file fails *discover* at once, naming it.

    **Recovery**: every task is safe to retry or re-run. A failed batch does not stop the ones after it;
    *publish* then fails and its retry (or the next sweep) publishes what is left. To replace a bad file,
    land a correction file (docs/corrections.md).
    """

    @task(execution_timeout=timedelta(minutes=30))
    @documented
    def discover(params: dict | None = None) -> list[list[str]]:
        """
        #### discover
        Lists the landing zone and returns the files to stage, in landing order, in groups of at most
        12 files (one *stage* task each). Without params: every landed file no manifest covers yet (the
        processed-file record `state/processed.json`, keyed relative to the landing root, skips the rest
        without reading them). With `files`/`prefix`: only those; with `reprocess`: even if processed.

        **Reads** the landing listing and `state/processed.json`. **Writes** nothing (an old record keyed
        by absolute paths is rewritten relative). **Recovery**: retry; a bad param fails without retries.
        """
        p = params or {}
        with param_errors():
            found = flow.discover(Settings.from_env(), p.get("files"), p.get("prefix"), bool(p.get("reprocess")))
        return flow.group_files(lineage.read(found))

    @task(max_active_tis_per_dagrun=4, execution_timeout=timedelta(hours=2))
    @documented
    def stage(group: list[str]) -> list[str]:
        """
        #### stage
        Parses and validates one group of landed files into `staging/<batch id>/` (pure: a function of
        each file's bytes and the registry) and returns their batch ids. Rows that fail a check are
        staged for quarantine with their line and reason; an unreadable file is quarantined whole. Each
        table's rows of the whole group are validated in one GX call, with each file's verdicts what
        staging it alone gives (docs/data-quality.md).

        **Reads** the landed files, the registry, the JSON Schemas and GX suites. **Writes**
        `staging/`. **Recovery**: retry; staging a staged file again is a no-op.
        """
        return flow.stage_files(Settings.from_env(), lineage.read(group))

    @task(outlets=PUBLISHED_ASSETS, execution_timeout=timedelta(hours=6))
    @documented
    def publish(staged: list[list[str]], outlet_events=None) -> dict:
        """
        #### publish
        Commits the staged batches in landing order, one writer at a time (a lock): deduplicates
        against everything published, appends each row as a leaf of the transparency log, moves the
        Parquet into `published/`, writes the manifest (the commit point) and signs a checkpoint. The
        registry's declarations are logged first when they changed.

        **Returns** this run's totals (only what it added: a batch published before counts under
        `already_published`). **Emits** each event table's Asset with that in `extra`.
        **Recovery**: retry. A crash mid-batch is finished or rolled back by the next publish; a batch
        that fails does not stop the others, and this task then fails naming it.
        """
        # A batch that fails does not stop the ones after it; the task then fails (and retries it).
        settings = Settings.from_env()
        result = flow.commit_batches(settings, [b for group in staged for b in group])
        set_extra(outlet_events, PUBLISHED_ASSETS,
                  per_table=lambda table: asset_facts.ingest_extra(settings, result, table))
        return flow.raise_on_failures(lineage.published(settings, result))  # lineage of what did publish

    # The log's Asset is emitted here, after the cosignatures are on the checkpoint, so the portal it
    # triggers publishes the witnessed checkpoint rather than racing the witnesses.
    @task(outlets=[PUBLISHED["log"]], trigger_rule="all_done",  # the checkpoint moved even if a batch failed
          execution_timeout=timedelta(minutes=15))
    @documented
    def witness(outlet_events=None) -> dict:
        """
        #### witness
        Asks each witness in `SENSORLOG_WITNESSES` to cosign the latest checkpoint and adds their
        cosignatures to it; none configured: a no-op. A witness that is down or refuses is reported in
        the result and does not fail the run. Runs even when *publish* failed (the checkpoint moved for
        the batches that did publish), after *compact*.

        **Writes** `log/checkpoint` (cosignatures). **Emits** the log's Asset (`extra`: checkpoint size
        and root, cosignatures), which rebuilds the portal. **Recovery**: retry or re-run; idempotent.
        """
        settings = Settings.from_env()
        result = witnessing.collect_cosignatures(settings).to_dict()
        set_extra(outlet_events, [PUBLISHED["log"]], asset_facts.log_extra(settings, result))
        return result

    # Merge the small files each batch adds to a partition (under the writer lock, like publish). After
    # whatever publish did: committed batches are safe to compact even when one batch failed.
    @task(trigger_rule="all_done", retries=1, execution_timeout=timedelta(hours=2))
    @documented
    def compact() -> dict:
        """
        #### compact
        Merges the small Parquet files each batch adds to a partition into one file per partition
        (under the writer lock), recording which leaves each merged file holds in `log/compactions/`.
        Skipped for an S3 published root. Runs even when *publish* failed.

        **Reads/writes** `published/`. **Recovery**: a compaction interrupted is finished by the next
        publish or compact before anything else; retry is safe.
        """
        return compaction.compact_after_publish(Settings.from_env())

    # The witness task waits for compaction too, so the portal its Asset triggers never reads a
    # partition while compaction swaps it.
    # A mapped task takes its doc_md from its partial arguments, never from the docstring (Airflow 3.3).
    staged = stage.override(doc_md=stage.function.__doc__).expand(group=discover())
    published, cosigned = publish(staged), witness()
    published >> compact() >> cosigned
    published >> cosigned


sensorlog_ingest()
