"""The Assets the sensorlog DAGs produce and consume (Airflow objects, so they live beside the DAGs).
Their names come from the table catalog (``pipelines.tables``), their URIs and their events' ``extra``
from ``pipelines.assets``: ``file://`` or ``s3://`` URIs of the real locations, fixed when a DAG file is
parsed, from that environment's settings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from airflow.sdk import Asset

from pipelines import assets as asset_facts
from pipelines.config import PortalSettings, Settings
from pipelines.tables import ASSET_TABLES, EVENT_TABLES, table_spec

_SETTINGS = Settings.from_env()


def _asset(table: str) -> Asset:
    name = table_spec(table).asset_name
    if name is None:
        raise ValueError(f"{table} is not published as an Asset")
    return Asset(name=name, uri=asset_facts.asset_uri(_SETTINGS, table))


PUBLISHED = {table: _asset(table) for table in ASSET_TABLES}
# The event tables' Assets: what a published batch updates.
PUBLISHED_ASSETS = [PUBLISHED[t] for t in EVENT_TABLES]
# The open-data portal's site (the portal DAG's build), at its default output.
SITE = Asset(name=asset_facts.SITE_ASSET_NAME, uri=asset_facts.site_uri(_SETTINGS, PortalSettings.from_env().out))


def table_of(asset: Asset) -> str | None:
    """The catalog table an Asset of ``PUBLISHED`` stands for."""
    return next((t for t, a in PUBLISHED.items() if a.name == asset.name), None)


def set_extra(outlet_events: Any, outlets: Iterable[Asset], extra: Mapping[str, Any] | None = None,
              per_table: Any = None) -> None:
    """Attach ``extra`` to the event each of ``outlets`` gets when the task succeeds
    (``outlet_events[asset].extra``, Airflow 3's task context); ``per_table(table)`` (optional) gives
    an Asset's own extra by its table instead."""
    for asset in outlets:
        table = table_of(asset)
        outlet_events[asset].extra = dict(per_table(table) if per_table is not None and table else extra or {})
