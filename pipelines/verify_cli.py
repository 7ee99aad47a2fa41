"""``sensorlog verify`` and ``sensorlog prove`` (registered on the app in ``pipelines.cli``).

verify: a verdict with ``rich``; exit 0 only when every check holds, 1 when one does not (the first
failure is repeated on the last line), 2 for a usage error.

prove: plain text on stdout, so that it can be piped or saved (rich would wrap long lines):

* ``--event SOURCE/ID`` (or ``--source`` and ``--id``, or ``--index N``): ``#`` comment lines, the
  leaf bytes (RFC 8785 JSON) on one line, an empty line, then the c2sp.org/tlog-proof@v1 text up to
  the end, signed checkpoint included. ``--proof-file``/``--leaf-file`` also write those two parts.
* ``--consistency M N``: ``#`` lines with the two roots, then the RFC 9162 consistency proof from
  tree size M to N, one hash per line, base64 (default) or hex (``--hex``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pipelines import prove, verify
from pipelines.config import Settings
from pipelines.tlog.tiles import StoreError

# soft_wrap: a file path or hash cut in two by the terminal width could not be copied or grepped.
console = Console(soft_wrap=True, highlight=False)
err_console = Console(stderr=True, soft_wrap=True, highlight=False)


def _settings(log: str | None, published: str | None, manifests: str | None) -> Settings:
    s = Settings.from_env()
    overrides = {k: str(Path(v).resolve()) if "://" not in v else v
                 for k, v in (("log", log), ("published", published), ("manifests", manifests)) if v}
    return dataclasses.replace(s, **overrides)


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        err_console.print(f"[red]{what}:[/red] cannot read {path}: {exc.strerror}")
        raise typer.Exit(2) from exc


def verify_cmd(
    since: str = typer.Option(None, "--since", help="A signed checkpoint you saved earlier: prove the log only grew"),
    vkey: str = typer.Option(None, "--vkey", help="The log's verifier key you expect (else log/log.vkey is trusted)"),
    log: str = typer.Option(None, "--log", help="Log directory (default: the configured one)"),
    published: str = typer.Option(None, "--published", help="Published Parquet root (default: the configured one)"),
    manifests: str = typer.Option(None, "--manifests", help="Manifest directory (default: the configured one)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the verdict and the failures"),
) -> None:
    """Recompute the log from the published Parquet and check it against the signed checkpoints."""
    s = _settings(log, published, manifests)
    since_text = _read(Path(since), "--since") if since else None
    expected = _read(Path(vkey), "--vkey") if vkey else None
    if not quiet:
        console.print(f"[bold]sensorlog verify[/bold]  log {s.log}  published {s.published}  manifests {s.manifests}")
    with Progress(
        TextColumn("leaves"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console, transient=True, disable=quiet,
    ) as bars:
        task = bars.add_task("verify", total=None)
        report = verify.verify_log(
            s.log, s.published, s.manifests,
            since=since_text, since_name=f"--since {since}" if since else "--since checkpoint",
            expected_vkey=expected,
            progress=lambda done, total: bars.update(task, completed=done, total=total),
        )
    if not quiet:
        for line in report.passed:
            console.print(f"[green]✓[/green] {line}")
    for problem in report.problems:
        console.print(f"[red]✗[/red] [bold]{problem.subject}[/bold]: {problem.message}")
    for check, count in report.suppressed.items():
        what = "later stored checkpoints differ too" if check == "root" else f"more {check} problems not shown"
        console.print(f"[red]✗[/red] … and {count} {what}")
    if not quiet:
        for line in report.warnings:
            console.print(f"[yellow]![/yellow] {line}")
    if report.ok:
        size = report.checkpoint.size if report.checkpoint else 0
        console.print(
            f"[bold green]VERIFIED[/bold green]: {report.files} files, {report.rows} rows and"
            f" {report.manifests} manifests make up the signed tree of size {size}"
        )
        return
    first = report.first
    console.print(f"[bold red]FAILED[/bold red] ({len(report.problems)} problems); first: {first}")
    raise typer.Exit(1)


def prove_cmd(
    event: str = typer.Option(None, "--event", help="SOURCE/ID of a published event (split on the last '/')"),
    source: str = typer.Option(None, "--source", help="The event's source (with --id)"),
    event_id: str = typer.Option(None, "--id", help="The event's id (with --source)"),
    index: int = typer.Option(None, "--index", help="Prove the published row at this leaf index"),
    consistency: tuple[int, int] = typer.Option(
        None, "--consistency", help="Print a consistency proof from tree size M to tree size N", metavar="M N"
    ),
    hex_hashes: bool = typer.Option(False, "--hex", help="Consistency proof hashes in hex instead of base64"),
    proof_file: str = typer.Option(None, "--proof-file", help="Also write the tlog-proof to this file"),
    leaf_file: str = typer.Option(None, "--leaf-file", help="Also write the exact leaf bytes to this file"),
    log: str = typer.Option(None, "--log", help="Log directory (default: the configured one)"),
    published: str = typer.Option(None, "--published", help="Published Parquet root (default: the configured one)"),
    manifests: str = typer.Option(None, "--manifests", help="Manifest directory (default: the configured one)"),
) -> None:
    """Print an event's leaf and inclusion proof (C2SP tlog-proof), or a consistency proof."""
    s = _settings(log, published, manifests)
    chosen = [x is not None for x in (event, source or event_id, index, consistency)]
    if sum(chosen) != 1 or (source is None) != (event_id is None):
        err_console.print("[red]usage:[/red] give one of --event SOURCE/ID, --source S --id I, --index N,"
                          " --consistency M N")
        raise typer.Exit(2)
    try:
        if consistency is not None:
            typer.echo(prove.format_consistency(prove.consistency(s, *consistency), hex_hashes=hex_hashes), nl=False)
            return
        if index is not None:
            result = prove.prove_index(s, index)
        else:
            if event is not None:
                source, event_id = prove.split_event(event)
            result = prove.prove_event(s, source, event_id)
    except (prove.ProveError, StoreError, ValueError, OSError) as exc:
        err_console.print(f"[red]prove:[/red] {exc}")
        raise typer.Exit(1) from exc
    typer.echo(prove.format_event_proof(result), nl=False)
    if proof_file:
        Path(proof_file).write_text(result.proof)
    if leaf_file:
        Path(leaf_file).write_bytes(result.leaf_bytes)
