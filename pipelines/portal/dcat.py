"""data.json: a DCAT-US 1.1 catalog (Project Open Data v1.1), valid against Data.gov's non-federal
dataset schema (``schemas/dcat-us/``; a city has no OMB bureau or program codes).

Checksums: DCAT-US 1.1 has no checksum property. The non-federal schema does not forbid additional
properties, so each distribution carries the DCAT-US 3.0 / DCAT 2 shape, ``checksum``
(``{"@type": "Checksum", "algorithm": "SHA-256", "checksumValue": <lowercase hex>}``, spdx:Checksum)
and ``byteSize``. A 1.1 harvester ignores them; a 3.0 harvester reads them as they are, so moving the
catalog to 3.0 later needs no change to them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any
from urllib.parse import urlparse

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from pipelines.config import resource_dir
from pipelines.portal.options import PortalOptions

SCHEMA_DIR = resource_dir("schemas") / "dcat-us"
CONFORMS_TO = "https://project-open-data.cio.gov/v1.1/schema"
CONTEXT = "https://project-open-data.cio.gov/v1.1/schema/catalog.jsonld"
CATALOG_SCHEMA_URL = "https://project-open-data.cio.gov/v1.1/schema/catalog.json"
DATASET_SCHEMA_URL = "https://project-open-data.cio.gov/v1.1/schema/dataset.json"
FORMAT_NAMES = {"parquet": "Apache Parquet", "csv": "CSV", "json": "JSON"}
KEYWORDS = ["surveillance technology", "sensors", "transparency", "privacy", "DTPR", "data retention"]


@dataclass(frozen=True)
class DistributionFile:
    """One downloadable file of a dataset."""

    path: str
    format: str
    media_type: str
    sha256: str
    size: int
    title: str


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    title: str
    description: str
    files: list[DistributionFile]
    schema_path: str  # the Table Schema file (data dictionary), relative to the site root
    modified: str
    temporal: str | None
    keywords: list[str]
    references: list[str]  # site paths of related documents (attribution, payload JSON Schema)


def iso_instant(value: datetime | date) -> str:
    if isinstance(value, datetime):
        text = value.isoformat().replace("+00:00", "Z")
        return text if value.tzinfo else text + "Z"
    return value.isoformat()


def temporal_range(start: datetime | date, end: datetime | date) -> str:
    return f"{iso_instant(start)}/{iso_instant(end)}"


def spatial(bbox: tuple[float, float, float, float]) -> str:
    """Project Open Data's bounding box form: min lon, min lat, max lon, max lat (WGS 84)."""
    return ",".join(f"{v:.6f}".rstrip("0").rstrip(".") for v in bbox)


def _distribution(options: PortalOptions, dataset: DatasetEntry, f: DistributionFile) -> dict[str, Any]:
    return {
        "@type": "dcat:Distribution",
        "title": f.title,
        "description": f"{dataset.title}: {FORMAT_NAMES.get(f.format, f.format)} file.",
        "downloadURL": options.url(f.path),
        "mediaType": f.media_type,
        "format": FORMAT_NAMES.get(f.format, f.format),
        "describedBy": options.url(dataset.schema_path),
        "describedByType": "application/json",
        "checksum": {"@type": "Checksum", "algorithm": "SHA-256", "checksumValue": f.sha256},
        "byteSize": str(f.size),
    }


def _dataset(options: PortalOptions, entry: DatasetEntry, bbox: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@type": "dcat:Dataset",
        "identifier": options.url(f"data.json#{entry.name}"),
        "title": entry.title,
        "description": entry.description,
        "keyword": [*KEYWORDS, *entry.keywords],
        "modified": entry.modified,
        "publisher": {"@type": "org:Organization", "name": options.publisher},
        "contactPoint": {
            "@type": "vcard:Contact",
            "fn": options.contact_name,
            "hasEmail": f"mailto:{options.contact_email}",
        },
        "accessLevel": "public",
        "license": options.license_url,
        "rights": "Public open data. Metadata only: no raw sensor data or personal data is published.",
        "spatial": bbox,
        "temporal": entry.temporal,
        "accrualPeriodicity": "irregular",
        "describedBy": options.url(entry.schema_path),
        "describedByType": "application/json",
        "landingPage": options.url(f"index.html#dataset-{entry.name}"),
        "language": [options.lang],
        "theme": ["Public Safety", "Technology", "Transparency"],
        "references": [options.url(r) for r in entry.references] or None,
        "distribution": [_distribution(options, entry, f) for f in entry.files],
    }
    return {k: v for k, v in doc.items() if v is not None}


def build_catalog(
    options: PortalOptions, datasets: list[DatasetEntry], bbox: tuple[float, float, float, float] | None
) -> dict[str, Any]:
    """The data.json document; ``bbox`` is the deployments' (min lon, min lat, max lon, max lat)."""
    box = spatial(bbox) if bbox else None
    return {
        "@context": CONTEXT,
        "@id": options.url("data.json"),
        "@type": "dcat:Catalog",
        "conformsTo": CONFORMS_TO,
        "describedBy": CATALOG_SCHEMA_URL,
        "dataset": [_dataset(options, d, box) for d in datasets],
    }


# -- validation ----------------------------------------------------------------------------------


def _load(name: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))


@cache
def catalog_validator() -> Draft202012Validator:
    """A validator for data.json: the harvester's catalog schema, with the non-federal dataset schema
    registered under the URL the catalog's relative ``$ref: dataset.json`` resolves to."""
    catalog = _load("catalog.json")
    dataset = _load("non-federal_dataset.json")
    registry: Registry = Registry().with_resources(
        [
            (CATALOG_SCHEMA_URL, Resource.from_contents(catalog)),
            (DATASET_SCHEMA_URL, Resource.from_contents(dataset)),
        ]
    )
    Draft202012Validator.check_schema(catalog)
    Draft202012Validator.check_schema(dataset)
    return Draft202012Validator(catalog, registry=registry, format_checker=_format_checker())


def _format_checker() -> FormatChecker:
    # jsonschema checks "uri" only when rfc3987 is installed; harvesters need absolute URLs, so
    # check that here rather than depend on an optional package.
    checker = FormatChecker()

    @checker.checks("uri", raises=ValueError)
    def _absolute_uri(value: object) -> bool:
        if not isinstance(value, str):
            return True
        parsed = urlparse(value)
        return bool(parsed.scheme) and (bool(parsed.netloc) or parsed.scheme in ("mailto", "urn"))

    return checker


def validate_catalog(doc: dict[str, Any]) -> list[str]:
    """Every schema violation in a data.json document, one line each; empty when valid."""
    errors = sorted(catalog_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(catalog)'}: {e.message}" for e in errors]
