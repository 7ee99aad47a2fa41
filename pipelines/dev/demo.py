"""``sensorlog demo``: generate the sample city, run the ingest DAG under Airflow, print the summary."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from rich.console import Console

from pipelines import flow, layout, lineage, storage
from pipelines.audit import NOW_ENV, parse_as_of
from pipelines.config import Settings, now_override
from pipelines.dev import airflow_runner, synthetic
from pipelines.registry import home_registry
from pipelines.tlog.layout import CHECKPOINT

# Ingest, then the audit (scheduled on the published tables) and the portal (on findings and the log),
# each run once by Airflow in the order its schedule would run it.
DEMO_DAGS = ("sensorlog_ingest", "sensorlog_audit", "sensorlog_portal")


ProgressBars = Callable[[], AbstractContextManager[Callable[[str, int], Callable[[str], None]]]]


def run_demo(
    settings: Settings,
    console: Console,
    progress_bars: ProgressBars,
    print_summary: Callable[[Settings, dict | None], None],
    fresh: bool = False,
    through_airflow: bool = True,
) -> None:
    """The whole flow on the sample city. The caller renders: ``progress_bars()`` opens the bars
    (a factory of tick functions, as ``flow.run`` takes), ``print_summary(settings, totals)`` prints
    the closing summary (``sensorlog demo`` passes the command line's own); status lines go to ``console``."""
    started = time.monotonic()
    if fresh and not storage.is_s3(settings.home):
        shutil.rmtree(settings.home, ignore_errors=True)
    registry = home_registry(settings)
    console.print(f"registry: {len(registry.ids())} deployments from {settings.registry}")
    if not storage.list_files(settings.landing, (".ndjson", ".json", ".csv")):
        with console.status("generating the sample city (months of vendor exports)…"):
            options = synthetic.options_for(timezone=settings.timezone)
            truth = synthetic.write_city(registry, settings.landing, options, force=True)  # nothing landed: start over
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

            airflow_runner.dags_test(settings, DEMO_DAGS[0], log, poll)
            clock = sample_city_clock(settings, console)
            for dag_id in DEMO_DAGS[1:]:
                with console.status(f"airflow dags test {dag_id}…"):
                    airflow_runner.dags_test(settings, dag_id, log, env=clock)
        console.print(f"Airflow ran {', '.join(DEMO_DAGS)} (log: {log})")
        if not lineage.user_transport():
            console.print(f"OpenLineage run events: {layout.lineage_file(settings)}")
        totals = None
    else:
        with progress_bars() as bars:
            totals = flow.run(settings, bars, workers=flow.default_workers())
        from pipelines.audit import publish as audit_publish
        from pipelines.portal import build_portal
        from pipelines.publish import compact

        with console.status("compacting the published partitions…"):
            # What the ingest DAG's compact task does after publishing: both paths publish the same files.
            compact.compact_after_publish(settings)

        clock = sample_city_clock(settings, console)
        with console.status("audit and portal…"):
            audit_publish(settings, now=parse_as_of(clock[NOW_ENV], settings.timezone) if clock else None)
            build_portal(settings)
    print_summary(settings, totals)
    print_outputs(settings, console)
    console.print(f"demo finished in {time.monotonic() - started:.0f} s")


def sample_city_clock(settings: Settings, console: Console) -> dict[str, str]:
    """The audit's clock for the demo: the generated city's end date (its ground truth is as of that
    local midnight), unless ``SENSORLOG_NOW`` is set or the landing zone was not generated. Audited as of
    the real today, a sample city whose events stopped months ago is all silence and overdue records
    (``sensorlog audit`` shows exactly that)."""
    if now_override():
        return {}
    try:
        end = synthetic.load_ground_truth(settings.landing)["end"]
    except (OSError, KeyError, ValueError):
        return {}
    console.print(f"audit as of {end}, the sample city's end date (set {NOW_ENV} to audit as of another day)")
    return {NOW_ENV: end}


def print_outputs(settings: Settings, console: Console) -> None:
    """What the audit found and where the auditor's report, the portal and the log are."""
    from pipelines import layout
    from pipelines.audit.run import output_paths

    findings_json = output_paths(settings)["findings_json"]
    if storage.exists(findings_json):
        findings = json.loads(storage.read_bytes(findings_json)).get("findings", [])
        by_kind = Counter(f["kind"] for f in findings)
        console.print(f"audit: {len(findings)} findings — " + ", ".join(f"{k} {n}" for k, n in sorted(by_kind.items())))
    for label, where in (
        ("report", storage.join(layout.reports_dir(settings), "audit_report.html")),
        ("portal", storage.join(layout.site_dir(settings), "index.html")),
        ("data docs", storage.join(layout.data_docs_dir(settings), "index.html")),  # GX, one result per batch
        (CHECKPOINT, storage.join(settings.log, CHECKPOINT)),
    ):
        if storage.exists(where):
            console.print(f"{label:<11} {where}")
    console.print(f"verify with: SENSORLOG_HOME={settings.home} sensorlog verify")
