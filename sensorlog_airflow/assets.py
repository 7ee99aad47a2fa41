"""The Assets the sensorlog DAGs produce and consume (Airflow objects, so they live beside the DAGs;
their names and URIs come from the table catalog, ``pipelines.tables``, so every part agrees on them)."""

from __future__ import annotations

from airflow.sdk import Asset

from pipelines.tables import ASSET_TABLES, EVENT_TABLES, table_spec


def _asset(table: str) -> Asset:
    spec = table_spec(table)
    if spec.asset_name is None or spec.asset_uri is None:
        raise ValueError(f"{table} is not published as an Asset")
    return Asset(name=spec.asset_name, uri=spec.asset_uri)


PUBLISHED = {table: _asset(table) for table in ASSET_TABLES}
# The event tables' Assets: what a published batch updates.
PUBLISHED_ASSETS = [PUBLISHED[t] for t in EVENT_TABLES]
