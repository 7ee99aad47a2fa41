"""datapackage.json: a Frictionless Data Package (v2) over the site's files.

Every tabular resource carries its Table Schema in full (never inferred), a ``hash`` (``sha256:...``)
and, for CSV and JSON, ``bytes``. frictionless checks hash and size for CSV and JSON; it reads
Parquet through pyarrow and pandas and cannot count its bytes, so a Parquet resource's ``bytes``
would always fail and is left out (its hash stays, for other readers; the tests check it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.portal.options import DTPR_LICENSE, PortalOptions
from pipelines.portal.tableschema import csv_variant, parquet_variant

PROFILE = "https://datapackage.org/profiles/2.0/datapackage.json"
PACKAGE_NAME = "sensorlog-transparency-logs"
DIALECT = {"delimiter": ",", "lineTerminator": "\r\n", "quoteChar": '"', "doubleQuote": True, "header": True}


@dataclass(frozen=True)
class ResourceFile:
    name: str  # unique, lowercase: [a-z0-9._-]+
    path: str
    format: str  # parquet, csv, json
    media_type: str
    sha256: str
    size: int
    title: str
    description: str
    table_schema: dict[str, Any] | None  # None for non-tabular (JSON) resources
    dtpr: bool = False  # holds DTPR element ids: carries the DTPR licence too


def _licenses(options: PortalOptions, dtpr: bool) -> list[dict[str, str]]:
    own = {"name": options.license_id, "path": options.license_url, "title": options.license_title}
    if not dtpr:
        return [own]
    name, path, title = DTPR_LICENSE
    return [own, {"name": name, "path": path, "title": f"{title} (DTPR taxonomy)"}]


def _resource(options: PortalOptions, f: ResourceFile) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": f.name,
        "path": f.path,
        "title": f.title,
        "description": f.description,
        "format": f.format,
        "mediatype": f.media_type,
        "encoding": "utf-8" if f.format in ("csv", "json") else None,
        "hash": f"sha256:{f.sha256}",
        "bytes": f.size if f.format != "parquet" else None,
    }
    if f.table_schema is None:
        doc["type"] = "json"
    else:
        doc["type"] = "table"
        doc["schema"] = parquet_variant(f.table_schema) if f.format == "parquet" else f.table_schema
        if f.format == "csv":
            doc["schema"] = csv_variant(f.table_schema)
            doc["dialect"] = DIALECT
    if f.dtpr:
        doc["licenses"] = _licenses(options, True)
    return {k: v for k, v in doc.items() if v is not None}


def build_datapackage(options: PortalOptions, resources: list[ResourceFile], created: str) -> dict[str, Any]:
    return {
        "$schema": PROFILE,
        "name": PACKAGE_NAME,
        "title": f"{options.publisher}: public sensor transparency logs",
        "description": (
            "What each public sensor deployment declared (the registry, in the DTPR vocabulary) and what it "
            "did: data collected, deleted and accessed, lifecycle changes, retention compliance and audit "
            "findings. Every event row is a leaf of a signed, verifiable transparency log."
        ),
        "homepage": options.base_url,
        "created": created,
        "keywords": ["surveillance technology", "sensors", "transparency", "DTPR", "data retention"],
        "licenses": _licenses(options, True),
        "contributors": [{"title": options.publisher, "roles": ["publisher"], "email": options.contact_email}],
        "sources": [
            {
                "title": "DTPR taxonomy (Digital Trust for Places and Routines), CC BY 4.0",
                "path": "https://dtpr.io",
            },
            {"title": "DTPR attribution and changes made", "path": "DTPR-ATTRIBUTION.md"},
            {"title": f"{options.publisher}: vendor reports of deployed technologies", "path": options.base_url},
        ],
        "resources": [_resource(options, r) for r in resources],
    }


def validate_datapackage(path: str) -> list[str]:
    """frictionless's own validation of a datapackage.json on disk (what ``frictionless validate``
    runs); one line per problem, empty when valid."""
    # Imported here: frictionless is heavy and only validation needs it. ``validate`` is the function
    # the ``frictionless validate`` command calls for a descriptor path.
    from frictionless import validate

    report = validate(path)
    lines = [f"package: {e.message}" for e in report.errors]
    for task in report.tasks:
        lines += [f"{task.name}: {e.message}" for e in task.errors]
    return lines
