"""Developer tools: the synthetic sample city (``sensorlog generate``, ``sensorlog demo``) and a big
invented registry for measuring scale (``sensorlog generate-registry``)."""

from __future__ import annotations

from collections import Counter
from datetime import date
from functools import partial
from pathlib import Path

import typer
from rich.markup import escape

from pipelines.cli._output import console, err_console, line, print_summary, progress_bars
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
    force: bool = typer.Option(False, "--force", help="Replace a ground truth already next to the landing zone"),
):
    """Write a synthetic city's vendor exports into the landing zone, plus its ground truth.

    A range that starts where the ground truth already there ends (same seed and cadence) continues it:
    the two land the same events as one run over both. Anything else refuses to replace it unless --force.
    Anomalies that do not fit the range are not planted, and listed."""
    from pipelines.dev import synthetic
    from pipelines.registry import home_registry

    s = Settings.from_env()
    registry = home_registry(s)
    first, stop = _day(start, "--start"), _day(end, "--end")
    if stop <= first:
        raise UsageError(f"generate: --end {end} must be after --start {start} (it is the day after the last one)")
    options = synthetic.options_for(first, stop, seed, cadence, s.timezone, inject)
    with console.status("generating the city…"), reported_as("generate", ValueError, exit_code=USAGE):
        truth = synthetic.write_city(registry, landing or s.landing, options, force=force)  # e.g. a bad --cadence
    line(f"wrote {truth.events:,} events in {len(truth.files)} files to {escape(landing or s.landing)}")
    if truth.not_planted:
        kinds = Counter(skipped["kind"] for skipped in truth.not_planted)
        listed = ", ".join(f"{kind} x{n}" if n > 1 else kind for kind, n in sorted(kinds.items()))
        err_console.print(f"[yellow]not planted[/yellow] (the range is too short for them): {listed};"
                          f" why, in {synthetic.GROUND_TRUTH_NAME} (not_planted)")


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

    s = Settings.from_env()
    bars = partial(progress_bars, s)  # the publish bar counts each published batch's rows
    demo.run_demo(s, console, bars, print_summary, fresh=fresh, through_airflow=airflow)
