"""Small hand-built published logs and registries for the audit tests.

Events are written straight into ``<published>/event_type=<t>/event_date=<d>/<name>.parquet`` with the
published schema (pipeline columns filled with dummies), so each test states exactly the rows the
audit sees, in whatever files and order it likes.
"""

from __future__ import annotations

import copy
import itertools
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from pipelines.config import Settings
from pipelines.schemas import event_table

ZONE = ZoneInfo("America/New_York")
SOURCE = "https://vendor.example/feed"
_leaf = itertools.count()

BASE = {
    "id": "x",
    "name": "Test deployment",
    "kind": "wifi_kiosk",
    "vendor": "Test Vendor",
    "accountable": {"organisation": "Riverton Public Library", "role": "owner", "dtpr": ["accountable__organization"]},
    "purposes": ["purpose__connectivity"],
    "technologies": ["tech__wireless_access_point"],
    "data_types": ["data__personal"],
    "access": {"dtpr": ["access__available_to_the_accountable_organization"], "grants": []},
    "storage": {"dtpr": ["storage__stored_locally"], "location": "Controller"},
    "location": {"lat": 35.2, "lon": -80.8, "mobility": "fixed"},
    "lifecycle": {"commissioned": "2026-01-01", "decommissioned": None},
    "legal_basis": "Test ordinance",
    "policy_links": ["https://example.org/policy"],
    "feedback": {"email": "privacy@example.org"},
}
GRANT = {"organisation": "Riverton Public Library", "roles": ["it_staff"], "purpose": "Capacity planning"}


def local(day: str | date, hour: float = 0) -> datetime:
    """Local wall-clock midnight of ``day`` plus ``hour`` hours of elapsed time, in UTC."""
    d = date.fromisoformat(day) if isinstance(day, str) else day
    return datetime(d.year, d.month, d.day, tzinfo=ZONE).astimezone(UTC) + timedelta(hours=hour)


def deployment(
    dep_id: str,
    retention: dict[str, str],
    *,
    commissioned: str = "2026-01-01",
    decommissioned: str | None = None,
    grants: list[dict] | None = None,
    effective_from: str | None = None,
    version: int = 1,
    history: list[dict] | None = None,
    triggers: dict[str, str] | None = None,
) -> dict:
    """A valid deployment document; ``retention`` maps each declared data class to its period."""
    doc = copy.deepcopy(BASE)
    doc["id"] = dep_id
    doc["data_classes"] = [{"slug": c, "dtpr": "data__personal"} for c in retention]
    doc["retention"] = [
        {"data_class": c, "period": p, **({"trigger": triggers[c]} if triggers and c in triggers else {})}
        for c, p in retention.items()
    ]
    doc["access"]["grants"] = copy.deepcopy(grants or [GRANT])  # a test may edit its document: never the shared GRANT
    doc["lifecycle"] = {"commissioned": commissioned, "decommissioned": decommissioned}
    doc["policy_version"] = version
    doc["policy_effective_from"] = effective_from or commissioned
    if history:
        doc["policy_history"] = history
    return doc


def write_registry(folder: Path, docs: list[dict]) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    for doc in docs:
        (folder / f"{doc['id']}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(folder)


def settings_for(tmp_path: Path, docs: list[dict]) -> Settings:
    registry = write_registry(tmp_path / "registry", docs)
    return Settings.from_env({"SENSORLOG_HOME": str(tmp_path / "home"), "SENSORLOG_REGISTRY": registry})


def publish(settings: Settings, kind: str, rows: list[dict], name: str | None = None) -> None:
    """Write rows (payload fields plus optional ``event_id``/``source``/``event_time``/``leaf_index``) as
    one file per event date, named ``name`` (default: a fresh counter, so calls never overwrite each other)."""
    table_def = event_table(kind)
    by_date: dict[str, list[dict]] = {}
    for row in rows:
        when = row[table_def.partition_time]
        full = {
            "source": SOURCE,
            "event_id": f"{kind}-{next(_leaf)}",
            "event_time": when,
            "content_hash": "0" * 64,
            "batch_id": "b" * 64,
            "leaf_index": next(_leaf),
            "leaf_hash": "0" * 64,
            **row,
        }
        by_date.setdefault(when.astimezone(UTC).date().isoformat(), []).append(full)
    for event_date, part in by_date.items():
        folder = Path(settings.published) / f"event_type={kind}" / f"event_date={event_date}"
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(part, schema=table_def.published_schema)
        pq.write_table(table, folder / f"{name or next(_leaf)}.parquet")


def hourly(dep: str, data_class: str, day: str | date, records: int = 10, **extra: object) -> list[dict]:
    """Collection rows for every hour of a local day (23, 24 or 25 of them), event time 5 min later."""
    start, end = local(day), local(date.fromisoformat(str(day)) + timedelta(days=1))
    rows, t = [], start
    while t < end:
        rows.append(
            {
                "deployment_id": dep,
                "data_class": data_class,
                "window_start": t,
                "window_end": t + timedelta(hours=1),
                "records": records,
                "event_id": f"col-{dep}-{data_class}-{t:%Y%m%dT%H}",
                "event_time": t + timedelta(hours=1, minutes=5),
                **extra,
            }
        )
        t += timedelta(hours=1)
    return rows


def deletion(
    dep: str, data_class: str, start: datetime, end: datetime, deleted_at: datetime, records: int = 240, **extra
) -> dict:
    return {
        "deployment_id": dep,
        "data_class": data_class,
        "window_start": start,
        "window_end": end,
        "records": records,
        "deleted_at": deleted_at,
        "method": "automatic_purge",
        **extra,
    }


def day_deletion(dep: str, data_class: str, day: str | date, deleted_at: datetime, records: int = 240, **extra):
    d = date.fromisoformat(str(day))
    return deletion(dep, data_class, local(d), local(d + timedelta(days=1)), deleted_at, records, **extra)


def access(dep: str, data_class: str, at: datetime, organisation: str, role: str, **extra) -> dict:
    return {
        "deployment_id": dep,
        "data_class": data_class,
        "accessed_at": at,
        "organisation": organisation,
        "role": role,
        "purpose": "test",
        "case_ref": None,
        "records": 1,
        **extra,
    }
