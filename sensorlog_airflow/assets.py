"""The Assets the sensorlog DAGs produce and consume (Airflow objects, so they live beside the DAGs;
their names come from ``pipelines.layout`` so every part agrees on them)."""

from __future__ import annotations

from airflow.sdk import Asset

from pipelines.layout import PUBLISHED_TABLES, asset_uri

PUBLISHED = {table: Asset(name=f"sensorlog.{table}", uri=asset_uri(table)) for table in PUBLISHED_TABLES}
PUBLISHED_ASSETS = [PUBLISHED[t] for t in ("collection", "deletion", "access", "lifecycle")]
