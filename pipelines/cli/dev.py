"""Developer tools: the synthetic sample city (``sensorlog generate``, ``sensorlog demo``) and a big
invented registry for measuring scale (``sensorlog generate-registry``)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from pipelines.cli._output import console, print_summary, progress_bars
from pipelines.config import Settings
from pipelines.errors import USAGE, UsageError, reported_as


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as err:
        raise UsageError(f"generate: {option} must be an ISO date (YYYY-MM-DD), got {text!r}") from err


def generate_cmd(
    start: str = typer.Option("2026-07-01", help="First day (local), ISO date"),
    end: str = typer.Option("2026-11-01", help="Day after the last one (local), ISO date"),
    seed: int = typer.Option(7),
    cadence: str = typer.Option("monthly", help="How often each vendor exports a file: daily, weekly or monthly"),
    landing: str = typer.Option(None, help="Where to write (default: the configured landing zone)"),
    inject: bool = typer.Option(True, help="Inject anomalies and malformed files (recorded as ground truth)"),
):
    """Write a synthetic city's vendor exports into the landing zone, plus its ground truth."""
    from pipelines.dev import synthetic
    from pipelines.registry import home_registry

    s = Settings.from_env()
    registry = home_registry(s)
    first, stop = _day(start, "--start"), _day(end, "--end")
    if stop <= first:
        raise UsageError(f"generate: --end {end} must be after --start {start} (it is the day after the last one)")
    options = synthetic.options_for(first, stop, seed, cadence, s.timezone, inject)
    with console.status("generating the city…"), reported_as("generate", ValueError, exit_code=USAGE):
        truth = synthetic.write_city(registry, landing or s.landing, options)  # ValueError: e.g. a bad --cadence
    console.print(f"wrote {truth.events:,} events in {len(truth.files)} files to {landing or s.landing}")


def generate_registry_cmd(
    out: str = typer.Option(..., help="Folder to write the deployment files into (created if missing)"),
    deployments: int = typer.Option(10_000, help="How many deployment files"),
    grants: int = typer.Option(1_000_000, help="Access grants in all (current policies), at least one each"),
    seed: int = typer.Option(0),
):
    """Write a big invented registry (every name made up) for measuring loading, the portal and the audit."""
    from pipelines.dev import bigregistry

    with console.status(f"writing {deployments:,} deployments…"):
        with reported_as("generate-registry", ValueError, exit_code=USAGE):  # e.g. fewer grants than deployments
            bigregistry.write_registry(Path(out), deployments, grants, seed)
    console.print(f"wrote {deployments:,} deployments with {grants:,} access grants to {out}")


def demo_cmd(
    fresh: bool = typer.Option(False, help="Delete SENSORLOG_HOME first"),
    airflow: bool = typer.Option(True, help="Drive the flow through the Airflow DAGs (else in-process)"),
):
    """Generate the sample city and run the whole flow end to end through Airflow."""
    from pipelines.dev import demo

    demo.run_demo(Settings.from_env(), console, progress_bars, print_summary, fresh=fresh, through_airflow=airflow)
