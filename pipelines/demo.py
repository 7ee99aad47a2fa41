"""``sensorlog demo``: generate the sample city, run the ingest DAG under Airflow, print the summary."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from rich.console import Console

from pipelines import airflow_runner, flow, generate, storage
from pipelines.config import Settings
from pipelines.registry import load_registry

DEMO_DAGS = ("sensorlog_ingest",)


def run_demo(settings: Settings, console: Console, fresh: bool = False, through_airflow: bool = True) -> None:
    from pipelines.cli import print_summary, progress_bars

    started = time.monotonic()
    if fresh and not storage.is_s3(settings.home):
        shutil.rmtree(settings.home, ignore_errors=True)
    registry = load_registry(settings.registry)
    console.print(f"registry: {len(registry.ids())} deployments from {settings.registry}")
    if not storage.list_files(settings.landing, (".ndjson", ".json", ".csv")):
        with console.status("generating the sample city (months of vendor exports)…"):
            options = generate.options_for(timezone=settings.timezone)
            truth = generate.write_city(registry, settings.landing, options)
        console.print(f"generated {truth.events:,} events in {len(truth.files)} files → {settings.landing}")
    pending = flow.discover(settings)
    console.print(f"{len(pending)} landed files to process")
    if through_airflow:
        log = Path(settings.state) / "airflow" / "demo.log"
        with progress_bars() as bars:
            with console.status("airflow db migrate (SQLite)…"):
                airflow_runner.migrate(settings, log)
            tick = bars("publish", len(pending))
            done = {"n": 0}
            before = len(storage.list_files(settings.manifests, (".json",)))

            def poll() -> None:
                published = len(storage.list_files(settings.manifests, (".json",))) - before
                while done["n"] < published:
                    tick("")
                    done["n"] += 1

            for dag_id in DEMO_DAGS:
                airflow_runner.dags_test(settings, dag_id, log, poll)
        console.print(f"Airflow ran {', '.join(DEMO_DAGS)} (log: {log})")
        totals = None
    else:
        with progress_bars() as bars:
            totals = flow.run(settings, bars)
    print_summary(settings, totals)
    console.print(f"demo finished in {time.monotonic() - started:.0f} s")
