"""``sensorlog quarantine list|resolve``: what is quarantined per batch, and what became of it.

``resolve`` records a resolution (``pipelines.resolutions``); quarantine itself never changes. Exit 0
when recorded, 2 when the resolution names no quarantined row (the message says which exist).
"""

from __future__ import annotations

import typer

from pipelines.cli._output import console, line, print_table

quarantine_app = typer.Typer(
    help="What is quarantined per batch, and resolving it: fixed by a later batch, or accepted as invalid.",
    no_args_is_help=True,
)


@quarantine_app.command("list")
def list_cmd(
    open_only: bool = typer.Option(False, "--open", help="Only batches with rows not yet resolved"),
) -> None:
    """Every batch with quarantined rows: its file, rows, how many are resolved and how."""
    from rich.table import Table

    from pipelines import resolutions
    from pipelines.config import Settings

    entries = resolutions.by_batch(Settings.from_existing_home())
    if open_only:
        entries = [e for e in entries if e.open]
    table = Table(title=f"quarantine: {len(entries)} batch(es)")
    table.add_column("batch", no_wrap=True)
    table.add_column("file", overflow="fold")
    for name in ("rows", "resolved", "open"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("resolved by")
    for e in entries:
        table.add_row(e.batch_id, e.source_file, f"{e.rows:,}", f"{e.resolved:,}", f"{e.open:,}",
                      "; ".join(e.outcomes) or "—", style="red" if e.open else None)
    print_table(table)
    total_open = sum(e.open for e in entries)
    line(f"{sum(e.rows for e in entries):,} quarantined rows, {total_open:,} open."
         " A file quarantined whole counts as one row.")


@quarantine_app.command("resolve")
def resolve_cmd(
    batch: str = typer.Argument(..., help="The batch id (64 hex digits; `sensorlog quarantine list`)"),
    line_no: int = typer.Option(None, "--line", min=0, help="One quarantined line (default: every one of the batch)"),
    fixed_by: str = typer.Option(None, "--fixed-by", metavar="BATCH", help="The later batch that brought the rows"),
    accept_invalid: bool = typer.Option(
        False, "--accept-invalid", help="Nothing will replace the rows; say why with --note"
    ),
    note: str = typer.Option(
        None, "--note", help="One line, at most 200 characters; shown on the public data-quality page, so no"
        " personal data",
    ),
) -> None:
    """Record that quarantined rows were fixed by a later batch (--fixed-by) or are accepted as invalid."""
    from pipelines import resolutions
    from pipelines.config import Settings

    if accept_invalid == (fixed_by is not None):
        raise typer.BadParameter("give exactly one of --fixed-by BATCH and --accept-invalid", param_hint="--fixed-by")
    outcome = resolutions.ACCEPTED_INVALID if accept_invalid else resolutions.FIXED
    record = resolutions.resolve(
        Settings.from_existing_home(), batch, outcome, line=line_no, fixed_by=fixed_by, note=note
    )
    which = f"line {record.line}" if record.line is not None else "every quarantined row"
    how = f"fixed by {record.fixed_by}" if record.fixed_by else "accepted as invalid"
    console.print(f"[green]ok[/green] {which} of batch {record.batch_id}: {how}")
