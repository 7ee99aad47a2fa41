"""``sensorlog run`` and ``status``, and one batch's plumbing: ``discover``, ``stage``, ``commit``.

A registry that is invalid stops each of them before anything is staged or published (exit 2, one
``registry:`` line per problem, printed by the error boundary in ``pipelines.cli``).
"""

from __future__ import annotations

import json

import typer
from rich.markup import escape

from pipelines.cli._output import console, err_console, print_summary, progress_bars
from pipelines.config import Settings


def discover_cmd():
    """List landed files that no manifest covers yet (and, on stderr, what the landing zone holds that
    discovery set aside, with why)."""
    from pipelines import flow
    from pipelines.registry import home_registry

    s = Settings.from_env()
    home_registry(s)  # what it lists is staged against the registry: check it first
    for uri in flow.discover(s):
        console.print(uri)
    for skipped in flow.landing(s).skipped:
        err_console.print(f"[yellow]skipped[/yellow] {escape(str(skipped))}")


def stage_cmd(files: list[str]):
    """Parse and validate files into staging (phase one); prints their batch ids."""
    from pipelines import flow

    for batch_id in flow.stage_files(Settings.from_env(), files):
        console.print(batch_id)


def commit_cmd(batch_ids: list[str]):
    """Publish staged batches (phase two)."""
    from pipelines import flow
    from pipelines.registry import home_registry

    s = Settings.from_env()
    home_registry(s)  # a stale staged batch is staged again against it
    totals = flow.commit_batches(s, batch_ids)
    console.print_json(json.dumps(totals))
    _exit_if_failed(totals.get("failed") or [])


def _exit_if_failed(failed: list[dict]) -> None:
    """Name on stderr what was not published, and exit 1: a batch that failed is not a success, even when
    the JSON on stdout says so in its ``failed`` list."""
    for failure in failed:
        what = next(key for key in failure if key != "error")  # file, batch or declarations
        err_console.print(f"[red]not published this run:[/red] {what} {failure[what]}: {failure['error']}"
                          " (the others were; the next run retries it)")
    if failed:
        raise typer.Exit(1)


def run_cmd(
    workers: int = typer.Option(
        None, help="Staging processes (default: SENSORLOG_WORKERS, else one per core); 1 stages in-process"
    ),
):
    """Discover, stage and publish everything landed, in-process (what the ingest DAG does)."""
    from pipelines import flow

    s = Settings.from_env()
    if not workers:
        workers = flow.default_workers()  # a malformed SENSORLOG_WORKERS is a UsageError naming it
    with progress_bars() as bars:
        totals = flow.run(s, bars, workers=workers)
    print_summary(s, totals)
    _exit_if_failed(totals.get("failed") or [])


def status_cmd():
    """Per-deployment totals of what is published and quarantined."""
    print_summary(Settings.from_env(), None)
