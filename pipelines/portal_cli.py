"""``sensorlog portal``: build the open-data site (what the portal DAG's task does)."""

from __future__ import annotations

import typer
from rich.console import Console

from pipelines.config import Settings
from pipelines.registry import RegistryError
from pipelines.taxonomy import SUPPORTED_LANGS

console = Console()
err_console = Console(stderr=True)


def portal_cmd(
    out: str = typer.Option(None, "--out", help="Folder or s3://bucket/prefix (default: <SENSORLOG_HOME>/site)"),
    lang: str = typer.Option("en", "--lang", help=f"Language of the pages: {', '.join(SUPPORTED_LANGS)}"),
    base_url: str = typer.Option(
        None, "--base-url", help="Public URL the site is served from (default: SENSORLOG_PORTAL_BASE_URL)"
    ),
) -> None:
    """Write data.json, datapackage.json, Parquet/CSV extracts, HTML pages and printable signs."""
    from pipelines.portal import build_portal  # keeps `sensorlog --help` fast

    try:
        result = build_portal(Settings.from_env(), out, lang=lang, base_url=base_url)
    except RegistryError as err:
        for problem in err.problems:
            err_console.print(f"[red]registry:[/red] {problem}")
        raise typer.Exit(2) from err
    except ValueError as err:  # a bad --lang or --base-url
        err_console.print(f"[red]portal:[/red] {err}")
        raise typer.Exit(2) from err
    for warning in result.warnings:
        err_console.print(f"[yellow]warning:[/yellow] {warning}")
    console.print(
        f"[green]ok[/green] {result.files} files ({result.bytes / 1e6:.1f} MB), {result.deployments} deployment "
        f"pages, datasets: {', '.join(result.datasets)} → {result.out} in {result.seconds:.1f} s"
    )
