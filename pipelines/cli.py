"""The ``sensorlog`` command. Each sub-command calls the same ``pipelines`` function a DAG task calls."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperGroup

from pipelines import flow, generate, publish, storage, summary
from pipelines.config import Settings
from pipelines.registry import RegistryError, load_registry

# Piped output (CI logs, files) gets a fixed width so the summary table is not squeezed to 80 columns.
console = Console() if sys.stdout.isatty() else Console(width=130)
err_console = Console(stderr=True)


def _print_registry_problems(err: RegistryError) -> None:
    for problem in err.problems:
        err_console.print(f"[red]registry:[/red] {escape(str(problem))}")


class _Commands(TyperGroup):
    """Every sub-command, whichever module defines it: an invalid registry met anywhere prints its
    problems and exits 2 (never a traceback); a batch that cannot be staged names itself and exits 1."""

    def invoke(self, ctx: typer.Context) -> object:
        try:
            return super().invoke(ctx)
        except RegistryError as err:
            _print_registry_problems(err)
            raise typer.Exit(2) from err
        except publish.NotStaged as err:
            err_console.print(f"[red]not staged:[/red] {escape(str(err))}")
            raise typer.Exit(1) from err


app = typer.Typer(
    cls=_Commands, add_completion=False, no_args_is_help=True, help="Published, verifiable sensor logs."
)


def settings() -> Settings:
    return Settings.from_env()


@contextmanager
def progress_bars() -> Iterator[Callable[[str, int], Callable[[str], None]]]:
    """Yields a factory: ``factory(label, total)`` returns a tick function for one progress bar."""
    with Progress(
        TextColumn("{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bars:

        def factory(label: str, total: int) -> Callable[[str], None]:
            task_id = bars.add_task(label, total=total)
            return lambda _item: bars.advance(task_id)

        yield factory


def _registry_or_exit(path: str):
    try:
        return load_registry(path)
    except RegistryError as err:
        _print_registry_problems(err)
        raise typer.Exit(2) from err


@app.command("registry")
def registry_check(path: str = typer.Argument(None, help="Registry folder (default: the configured one)")):
    """Validate the deployment registry; one message per problem."""
    registry = _registry_or_exit(path or settings().registry)
    console.print(f"[green]ok[/green] {len(registry.ids())} deployments in {path or settings().registry}")


@app.command("generate")
def generate_cmd(
    start: str = typer.Option("2026-07-01", help="First day (local), ISO date"),
    end: str = typer.Option("2026-11-01", help="Day after the last one (local), ISO date"),
    seed: int = typer.Option(7),
    cadence: str = typer.Option("monthly", help="How often each vendor exports a file: daily, weekly or monthly"),
    landing: str = typer.Option(None, help="Where to write (default: the configured landing zone)"),
    inject: bool = typer.Option(True, help="Inject anomalies and malformed files (recorded as ground truth)"),
):
    """Write a synthetic city's vendor exports into the landing zone, plus its ground truth."""
    s = settings()
    registry = _registry_or_exit(s.registry)
    options = generate.options_for(
        date.fromisoformat(start), date.fromisoformat(end), seed, cadence, s.timezone, inject
    )
    with console.status("generating the city…"):
        truth = generate.write_city(registry, landing or s.landing, options)
    console.print(f"wrote {truth.events:,} events in {len(truth.files)} files to {landing or s.landing}")


@app.command("discover")
def discover_cmd():
    """List landed files that no manifest covers yet (and, on stderr, what the landing zone holds that
    discovery set aside, with why)."""
    s = settings()
    _registry_or_exit(s.registry)  # what it lists is staged against the registry: check it first
    for uri in flow.discover(s):
        console.print(uri)
    for skipped in flow.landing(s).skipped:
        err_console.print(f"[yellow]skipped[/yellow] {escape(str(skipped))}")


@app.command("stage")
def stage_cmd(files: list[str]):
    """Parse and validate files into staging (phase one); prints their batch ids."""
    for batch_id in flow.stage_files(settings(), files):
        console.print(batch_id)


@app.command("commit")
def commit_cmd(batch_ids: list[str]):
    """Publish staged batches (phase two)."""
    s = settings()
    _registry_or_exit(s.registry)  # a stale staged batch is staged again against it
    console.print_json(json.dumps(flow.commit_batches(s, batch_ids)))


@app.command("run")
def run_cmd(
    workers: int = typer.Option(
        None, help="Staging processes (default: SENSORLOG_WORKERS, else one per core); 1 stages in-process"
    ),
):
    """Discover, stage and publish everything landed, in-process (what the ingest DAG does)."""
    s = settings()
    with progress_bars() as bars:
        totals = flow.run(s, bars, workers=workers or flow.default_workers())
    print_summary(s, totals)
    failed = totals.get("failed") or []
    for failure in failed:
        what = "file" if "file" in failure else "batch"
        err_console.print(f"[red]not published this run:[/red] {what} {failure[what]}: {failure['error']}"
                          " (the files after it were; the next run retries it)")
    if failed:
        raise typer.Exit(1)


@app.command("status")
def status_cmd():
    """Per-deployment totals of what is published and quarantined."""
    print_summary(settings(), None)


@app.command("demo")
def demo_cmd(
    fresh: bool = typer.Option(False, help="Delete SENSORLOG_HOME first"),
    airflow: bool = typer.Option(True, help="Drive the flow through the Airflow DAGs (else in-process)"),
):
    """Generate the sample city and run the whole flow end to end through Airflow."""
    from pipelines import demo

    demo.run_demo(settings(), console, fresh=fresh, through_airflow=airflow)


def print_summary(s: Settings, totals: dict | None) -> None:
    rows = summary.per_deployment(s)
    table = Table(title="sensorlog: per deployment", show_footer=True)
    table.add_column("deployment", footer="total")
    table.add_column("kind")
    for name, attr in (
        ("collected", "collected"),
        ("deleted", "deleted"),
        ("accessed", "accesses"),
        ("quarantined", "quarantined"),
    ):
        table.add_column(name, justify="right", footer=f"{sum(getattr(r, attr) for r in rows):,}")
    for r in rows:
        style = "red" if r.quarantined else None
        table.add_row(
            r.deployment_id,
            r.kind,
            f"{r.collected:,}",
            f"{r.deleted:,}",
            f"{r.accesses:,}",
            f"{r.quarantined:,}",
            style=style,
        )
    console.print(table)
    console.print("collected/deleted count records; accessed counts access events; quarantined counts rows.")
    unattributed = summary.unattributed_quarantine(s)
    if unattributed:
        console.print(
            f"[yellow]{unattributed} quarantined rows or files name no deployment[/yellow] "
            f"(unreadable lines or files): see {s.quarantine}"
        )
    label = "this run" if totals else "all batches"
    totals = totals or summary.manifest_totals(s)
    console.print(
        f"{label}: {totals['batches']} batches, {totals['rows_in']:,} rows in = {totals['published']:,} published"
        f" + {totals['quarantined']:,} quarantined + {totals['duplicates']:,} duplicates dropped;"
        f" {totals['file_errors']} unreadable files quarantined whole"
    )
    if totals.get("declarations"):
        console.print(f"declarations logged: {totals['declarations']} deployment record version(s)")
    for label, where in (
        ("published", s.published),
        ("manifests", s.manifests),
        ("quarantine", s.quarantine),
        ("log", s.log),
    ):
        if storage.exists(where):
            console.print(f"{label:<11} {where}")
    for skipped in flow.landing(s).skipped:
        console.print(f"[yellow]skipped in the landing zone:[/yellow] {escape(str(skipped))}")


from pipelines.portal_cli import portal_cmd  # noqa: E402

app.command("portal")(portal_cmd)

from pipelines.verify_cli import check_proof_cmd, log_export_cmd, prove_cmd, verify_cmd  # noqa: E402

app.command("verify")(verify_cmd)
app.command("prove")(prove_cmd)
app.command("check-proof")(check_proof_cmd)
log_app = typer.Typer(no_args_is_help=True, help="The published transparency log.")
log_app.command("export")(log_export_cmd)
app.add_typer(log_app, name="log")

from pipelines.audit_cli import audit_cmd  # noqa: E402

app.command("audit")(audit_cmd)

from pipelines.witness_cli import operator_cosign_cmd, witness_app  # noqa: E402

app.add_typer(witness_app, name="witness")
app.command("cosign")(operator_cosign_cmd)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
