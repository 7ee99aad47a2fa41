"""``sensorlog registry``: check the deployment registry."""

from __future__ import annotations

import typer

from pipelines.cli._output import console
from pipelines.config import Settings


def registry_cmd(path: str = typer.Argument(None, help="Registry folder (default: the configured one)")):
    """Validate the deployment registry; one message per problem, then one per warning (implausible but
    valid: a position at 0,0 or outside SENSORLOG_CITY_BBOX, an address such as 'TBD')."""
    from pipelines.config import city_bbox
    from pipelines.registry import load_registry, registry_cache_dir, registry_warnings
    from pipelines.registry.load import registry_workers

    settings = Settings.from_env()
    where = path or settings.registry
    box = city_bbox()
    registry = load_registry(
        where, timezone=settings.timezone, cache_dir=registry_cache_dir(settings), workers=registry_workers()
    )
    warnings = registry_warnings(registry, box)
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)
    console.print(f"[green]ok[/green] {len(registry.ids())} deployments in {where}"
                  + (f", {len(warnings)} warning(s)" if warnings else ""))
    if box is None:
        console.print("positions not checked against a city bounding box: set SENSORLOG_CITY_BBOX to check them")
