"""``sensorlog registry``: check the deployment registry."""

from __future__ import annotations

import typer

from pipelines.cli._output import console
from pipelines.config import Settings


def registry_cmd(path: str = typer.Argument(None, help="Registry folder (default: the configured one)")):
    """Validate the deployment registry; one message per problem."""
    from pipelines.registry import load_registry

    where = path or Settings.from_env().registry
    registry = load_registry(where)
    console.print(f"[green]ok[/green] {len(registry.ids())} deployments in {where}")
