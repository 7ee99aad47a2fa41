"""``sensorlog portal``: build the open-data site (what the portal DAG's task does)."""

from __future__ import annotations

from typing import Annotated

import typer

from pipelines.cli._output import console, err_console
from pipelines.config import PortalSettings, Settings
from pipelines.errors import USAGE, reported_as
from pipelines.registry.taxonomy import SUPPORTED_LANGS

LANG_HELP = (
    f"Languages of the pages, in one build ({', '.join(SUPPORTED_LANGS)}): repeat it or separate by commas; the"
    " first at the folder's root, each other under <lang>/, the data files once (default: SENSORLOG_PORTAL_LANG,"
    " else all six)"
)


def portal_cmd(
    out: str = typer.Option(None, "--out", help="Folder or s3://bucket/prefix (default: <SENSORLOG_HOME>/site)"),
    lang: Annotated[list[str] | None, typer.Option("--lang", help=LANG_HELP)] = None,
    base_url: str = typer.Option(
        None, "--base-url", help="Public URL the site is served from (default: SENSORLOG_PORTAL_BASE_URL)"
    ),
) -> None:
    """Write data.json, datapackage.json, Parquet/CSV extracts, HTML pages and printable signs."""
    from pipelines.portal import build_portal
    from pipelines.portal.i18n import build_languages

    with reported_as("portal", ValueError, exit_code=USAGE):  # a bad --lang or --base-url
        source, requested = ("--lang", ",".join(lang)) if lang else ("SENSORLOG_PORTAL_LANG",
                                                                      PortalSettings.from_env().lang)
        try:
            languages = build_languages(requested)
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from None
        result = build_portal(Settings.from_existing_home(), out, base_url=base_url, languages=languages)
    for warning in result.warnings:
        err_console.print(f"[yellow]warning:[/yellow] {warning}")
    console.print(
        f"[green]ok[/green] {result.files} files ({result.bytes / 1e6:.1f} MB), {result.deployments} deployment "
        f"pages in {', '.join(result.languages)}, datasets: {', '.join(result.datasets)} → {result.out} in "
        f"{result.seconds:.1f} s"
    )
