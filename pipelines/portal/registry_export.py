"""The deployment registry as open data: the declared records as JSON, and one flat CSV row each.

The JSON keeps every declared field as written in the registry (DTPR element ids, policy history,
feedback channels). The CSV is for spreadsheets: lists are JSON arrays in one cell, the current
retention policy is one ``data_class=period`` pair per entry.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from pipelines.portal.dtpr_card import grant_line
from pipelines.registry import DataSource, Deployment, Place, Registry, RetentionRule

# (column, Arrow type, required, description): the CSV's Table Schema is generated from this list.
REGISTRY_COLUMNS: tuple[tuple[str, pa.DataType, bool, str], ...] = (
    ("id", pa.string(), True, "Registry id of the deployment."),
    ("name", pa.string(), True, "Name of the deployment."),
    ("kind", pa.string(), True, "Kind of technology (alpr, cctv_camera, air_quality...)."),
    ("vendor", pa.string(), True, "Vendor that operates or supplies the technology."),
    ("description", pa.string(), False, "What the deployment does, in plain words."),
    ("accountable_organisation", pa.string(), True, "Organisation accountable for the deployment."),
    ("accountable_role", pa.string(), False, "Its role (owner, operator...)."),
    ("partners", pa.list_(pa.string()), False, "Partner organisations."),
    ("purposes", pa.list_(pa.string()), True, "DTPR purpose element ids."),
    ("technologies", pa.list_(pa.string()), True, "DTPR technology element ids."),
    ("data_types", pa.list_(pa.string()), True, "DTPR data type element ids."),
    ("processing", pa.list_(pa.string()), False, "DTPR processing element ids."),
    ("access", pa.list_(pa.string()), True, "DTPR access element ids."),
    ("storage", pa.list_(pa.string()), True, "DTPR storage element ids."),
    ("storage_location", pa.string(), True, "Where the data is stored."),
    ("data_classes", pa.list_(pa.string()), True, "Data classes the deployment declares it collects."),
    ("retention", pa.list_(pa.string()), True,
     "Current retention policy, one data_class=period each; a period declared unknown is followed by the source's"
     " words, verbatim: plate_reads=unknown: '-Infinity days'."),
    ("access_grants", pa.list_(pa.string()), True,
     "Current access grants as declared, one each: a named organisation (roles not stated when none are), a count"
     " of organisations not named, or the source's words when it states neither."),
    ("policy_version", pa.int64(), True, "Version of the current retention and access policy."),
    ("policy_effective_from", pa.date32(), True, "Local date the current policy took effect."),
    ("mobility", pa.string(), True, "fixed or mobile."),
    ("latitude", pa.float64(), False,
     "Latitude (WGS 84) of the point, or of the area's centre, where the deployment is now (after its last declared"
     " relocation)."),
    ("longitude", pa.float64(), False, "Longitude (WGS 84) of the point, or of the area's centre, now."),
    ("area", pa.string(), False, "Name of the area covered, for area deployments, now."),
    ("address", pa.string(), False, "Street address or description of the place, now."),
    ("commissioned", pa.date32(), True, "Local date the deployment went into service."),
    ("decommissioned", pa.date32(), False, "Local date it was taken out of service, if it was."),
    ("relocations", pa.list_(pa.string()), False,
     "Where the deployment has been, oldest first, when it has moved: 'YYYY-MM-DD: place' from commissioning and"
     " from each declared relocation (the JSON export has each location's fields)."),
    ("legal_basis", pa.string(), True, "Law or policy that authorises the deployment."),
    ("policy_links", pa.list_(pa.string()), True, "Links to the use policy and related documents."),
    ("feedback_form", pa.string(), False, "Web form for questions and complaints."),
    ("feedback_email", pa.string(), False, "E-mail address for questions and complaints."),
    ("feedback_phone", pa.string(), False, "Phone number for questions and complaints."),
    ("feedback_postal", pa.string(), False, "Postal address for questions and complaints."),
    ("devices", pa.int64(), False, "How many devices the deployment declares (e.g. cameras)."),
    ("devices_description", pa.string(), False, "What the devices are, as declared."),
    ("data_sources", pa.list_(pa.string()), False,
     "Data sources consulted (e.g. hotlists), by name, or 'N not named' for a count without names."),
    ("public_search_audit", pa.bool_(), False,
     "Whether an audit of the searches made is published; empty: not declared."),
    ("page", pa.string(), True, "The deployment's page, relative to the site root."),
)


def page_path(deployment_id: str) -> str:
    return f"deployments/{deployment_id}.html"


def _row(d: Deployment) -> dict[str, Any]:
    policy = d.current_policy
    return {
        "id": d.id,
        "name": d.name,
        "kind": d.kind,
        "vendor": d.vendor,
        "description": d.description,
        "accountable_organisation": d.accountable_organisation,
        "accountable_role": d.accountable_role,
        "partners": list(d.partners),
        "purposes": list(d.purposes),
        "technologies": list(d.technologies),
        "data_types": list(d.data_types),
        "processing": list(d.processing),
        "access": list(d.access_elements),
        "storage": list(d.storage_elements),
        "storage_location": d.storage_location,
        "data_classes": list(d.data_classes),
        "retention": [_rule(r) for r in policy.retention],
        "access_grants": [grant_line(g) for g in policy.access],
        "policy_version": policy.version,
        "policy_effective_from": policy.effective_from,
        "mobility": d.mobility,
        "latitude": d.lat,
        "longitude": d.lon,
        "area": d.area,
        "address": d.address,
        "commissioned": d.commissioned,
        "decommissioned": d.decommissioned,
        "relocations": [f"{day.isoformat()}: {place_text(p)}" for day, p, _ in d.places()] if d.relocations else [],
        "legal_basis": d.legal_basis,
        "policy_links": list(d.policy_links),
        "feedback_form": d.feedback.get("form"),
        "feedback_email": d.feedback.get("email"),
        "feedback_phone": d.feedback.get("phone"),
        "feedback_postal": d.feedback.get("postal"),
        "devices": d.devices.count if d.devices else None,
        "devices_description": d.devices.description if d.devices else None,
        "data_sources": [_source(s) for s in d.data_sources],
        "public_search_audit": d.public_search_audit,
        "page": page_path(d.id),
    }


def place_text(place: Place) -> str:
    """A place in words: address or area, position, fixed or mobile."""
    parts = [p for p in (place.address, place.area) if p]
    if place.lat is not None and place.lon is not None:
        parts.append(f"{place.lat:.4f}, {place.lon:.4f}")
    parts.append(place.mobility)
    return " · ".join(parts)


def _rule(rule: RetentionRule) -> str:
    text = f"{rule.data_class}={rule.period}"
    return f"{text}: '{rule.stated}'" if rule.kind == "unknown" and rule.stated else text


def _source(source: DataSource) -> str:
    text = source.name if source.name is not None else f"{source.count or 0:,} not named"
    return f"{text} ({source.description})" if source.description else text


def registry_schema() -> pa.Schema:
    return pa.schema(
        [pa.field(name, kind, not required, {"description": text}) for name, kind, required, text in REGISTRY_COLUMNS]
    )


def registry_table(registry: Registry) -> pa.Table:
    return pa.Table.from_pylist([_row(d) for d in registry], schema=registry_schema())


def registry_json(registry: Registry, attribution: str) -> bytes:
    """The declared records, as written in the registry, with the DTPR attribution alongside."""
    doc = {
        "description": "Declared public sensor deployments; element ids use the DTPR taxonomy.",
        "dtpr_attribution": attribution,
        "deployments": [dict(d.raw) for d in registry],
    }
    return (json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=False, default=str) + "\n").encode("utf-8")
