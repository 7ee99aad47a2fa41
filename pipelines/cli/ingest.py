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

# What to ingest, as the ingest DAG's params say it (``flow.discover``): shared by discover and run.
FILES_OPTION = typer.Option(
    None, "--file", help="Only this landed file (a path under the landing root, or relative to it); repeatable"
)
PREFIX_OPTION = typer.Option(None, "--prefix", help="Only the landed files under this landing sub-folder")
REPROCESS_OPTION = typer.Option(
    False, "--reprocess", help="Stage the selected files again even if already processed (never publishes twice)"
)


def discover_cmd(
    files: list[str] = FILES_OPTION, prefix: str = PREFIX_OPTION, reprocess: bool = REPROCESS_OPTION,
):
    """List landed files that no manifest covers yet (and, on stderr, what the landing zone holds that
    discovery set aside, with why)."""
    from pipelines import flow
    from pipelines.registry import home_registry

    s = Settings.from_existing_home()
    home_registry(s)  # what it lists is staged against the registry: check it first
    for uri in flow.discover(s, files or None, prefix, reprocess):
        console.print(uri)
    for skipped in flow.landing(s).skipped:
        err_console.print(f"[yellow]skipped[/yellow] {escape(str(skipped))}")


def stage_cmd(files: list[str]):
    """Parse and validate files into staging (phase one); prints their batch ids."""
    from pipelines import flow

    for batch_id in flow.stage_files(Settings.from_existing_home(), files):
        console.print(batch_id)


def commit_cmd(batch_ids: list[str]):
    """Publish staged batches (phase two)."""
    from pipelines import flow
    from pipelines.registry import home_registry

    s = Settings.from_existing_home()
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
    files: list[str] = FILES_OPTION, prefix: str = PREFIX_OPTION, reprocess: bool = REPROCESS_OPTION,
):
    """Discover, stage and publish everything landed, in-process (what the ingest DAG does)."""
    from pipelines import flow

    s = Settings.from_existing_home()
    if not workers:
        workers = flow.default_workers()  # a malformed SENSORLOG_WORKERS is a UsageError naming it
    with progress_bars(s) as bars:  # a bad --file or --prefix stops at discovery, before any bar starts
        totals = flow.run(s, bars, workers=workers, files=files or None, prefix=prefix, reprocess=reprocess)
    if totals.get("already_published"):
        console.print(f"{totals['already_published']} landed file(s) already published before this run:"
                      " not counted again")
    print_summary(s, totals)
    _exit_if_failed(totals.get("failed") or [])


def status_cmd():
    """Per-deployment totals of what is published and quarantined."""
    print_summary(Settings.from_existing_home(), None)
