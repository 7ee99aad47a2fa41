"""The table catalog: every table sensorlog logs or publishes, and every fact about it, in one place.

Each entry says what kind of table it is, and so which of the other facts it has:

- an **event** table is what feeds send (CloudEvents of type ``org.sensorlog.<name>``): its payload's
  JSON Schema is ``schemas/events/<name>.schema.json``, its Great Expectations suite is
  ``expectations/<name>.json``, it is partitioned by a time column of the payload, logged row by row,
  published as an Airflow Asset and as a portal dataset;
- the **declaration** table holds what the city declared (``pipelines.registry.declarations``): logged like
  the events but never sent by a feed; the portal's words for it live with its page
  (``pipelines.portal.declared``);
- a **derived** table is recomputed by the audit from the published events: an Asset and a portal dataset;
- the **registry** is published by the portal as a dataset;
- the **log** is the transparency log itself: an Asset (a new checkpoint), not a dataset.

Everything else (the Arrow schemas, the layout's published tables, the portal's titles and
descriptions, the Airflow Assets, the order a batch publishes its tables in) derives from this list, so
adding an event table is one entry here plus its schema and suite files, and ``tests/test_table_catalog.py``
checks that nothing else needs an edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["event", "declaration", "derived", "registry", "log"]

TYPE_PREFIX = "org.sensorlog."
ASSET_PREFIX = "sensorlog."


@dataclass(frozen=True)
class TableSpec:
    name: str
    kind: Kind
    title: str | None = None  # the portal's words; None when the portal does not name it from here
    description: str | None = None
    partition_time: str | None = None  # event tables: the payload column their partitions are dated by
    asset: bool = False  # an Airflow Asset, emitted when the table (or the log) changes

    @property
    def is_event(self) -> bool:
        return self.kind == "event"

    @property
    def logged(self) -> bool:
        """Its rows are leaves of the transparency log."""
        return self.kind in ("event", "declaration")

    @property
    def cloudevent_type(self) -> str:
        return TYPE_PREFIX + self.name

    @property
    def schema_file(self) -> str | None:
        """The payload's JSON Schema, a file in ``schemas/events/``."""
        return f"{self.name}.schema.json" if self.is_event else None

    @property
    def suite_file(self) -> str | None:
        """The Great Expectations suite, a file in ``expectations/``."""
        return f"{self.name}.json" if self.is_event else None

    @property
    def asset_name(self) -> str | None:
        return ASSET_PREFIX + self.name if self.asset else None


def _event(name: str, partition_time: str, title: str, description: str) -> TableSpec:
    return TableSpec(name, "event", title, description, partition_time, asset=True)


# In this order: the order a batch publishes its event tables in, the order of the Assets and of the
# portal's datasets.
CATALOG: tuple[TableSpec, ...] = (
    _event(
        "collection", "window_start", "Sensor data collected",
        "What each public sensor deployment reports it collected: records and bytes of each data class per "
        "collection window. Metadata only: no sensor data or personal data is published.",
    ),
    _event(
        "deletion", "deleted_at", "Sensor data deleted",
        "What each deployment reports it deleted: records of each data class collected in a window, when "
        "they were deleted and how.",
    ),
    _event(
        "access", "accessed_at", "Access to sensor data",
        "Who accessed or received data from each deployment: organisation, role, data class, time, purpose, "
        "case reference and number of records.",
    ),
    _event(
        "lifecycle", "at", "Sensor deployment lifecycle events",
        "Commissioning, decommissioning, relocation, firmware, configuration and policy changes of each "
        "deployment.",
    ),
    _event(
        "vendor_snapshot", "observed_at", "Vendor transparency portal snapshots",
        "What each vendor's public transparency portal declared for a deployment each time it was read: "
        "retention as stated, devices, outside organisations with access, hotlists and the public search audit.",
    ),
    TableSpec("declaration", "declaration"),
    TableSpec(
        "retention_ledger", "derived", "Sensor data retention ledger",
        "Per deployment, data class and day: records collected, deleted and still retained, the age of "
        "the oldest retained records, the declared retention period and whether it was kept.",
        asset=True,
    ),
    TableSpec(
        "findings", "derived", "Sensor data audit findings",
        "Audit findings about each deployment (for example data kept longer than declared, undeclared "
        "data classes, access by parties without a declared grant), each with its evidence.",
        asset=True,
    ),
    TableSpec(
        "registry", "registry", "Sensor deployment registry",
        "The declared deployment registry: what each public sensor deployment is, who is accountable, its "
        "purposes, technologies, data, access and machine-readable retention policy, described with the "
        "DTPR vocabulary.",
    ),
    TableSpec("log", "log", asset=True),
)

TABLES: dict[str, TableSpec] = {spec.name: spec for spec in CATALOG}
EVENT_TABLES: tuple[str, ...] = tuple(s.name for s in CATALOG if s.is_event)
LOGGED_TABLES: tuple[str, ...] = tuple(s.name for s in CATALOG if s.logged)
DERIVED_TABLES: tuple[str, ...] = tuple(s.name for s in CATALOG if s.kind == "derived")
ASSET_TABLES: tuple[str, ...] = tuple(s.name for s in CATALOG if s.asset)
(DECLARATION_TABLE,) = (s.name for s in CATALOG if s.kind == "declaration")
TITLES: dict[str, str] = {s.name: s.title for s in CATALOG if s.title is not None}
DESCRIPTIONS: dict[str, str] = {s.name: s.description for s in CATALOG if s.description is not None}


def table_spec(name: str) -> TableSpec:
    try:
        return TABLES[name]
    except KeyError:
        raise ValueError(f"unknown table {name!r}; one of {', '.join(TABLES)}") from None
