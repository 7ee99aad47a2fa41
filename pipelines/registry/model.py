"""The registry's typed records: deployments, their versioned retention-and-access policies, the registry."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from pipelines.registry.retention import RetentionRule

DEFAULT_TIMEZONE = "America/New_York"  # the default of Settings.timezone


@dataclass(frozen=True)
class AccessGrant:
    """Who may access a deployment's data, in which roles, for what."""

    organisation: str
    roles: tuple[str, ...]
    purpose: str

    def allows(self, organisation: str, role: str) -> bool:
        # Organisation names arrive from many vendor feeds with varying case; role slugs are exact.
        return _same_organisation(self.organisation, organisation) and role in self.roles


def _same_organisation(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


@dataclass(frozen=True)
class PolicyVersion:
    """One complete retention-and-access policy, in force from ``effective_from`` (a local date)."""

    version: int
    effective_from: date
    retention: tuple[RetentionRule, ...]
    access: tuple[AccessGrant, ...]
    note: str = ""

    def rule_for(self, data_class: str) -> RetentionRule | None:
        return next((r for r in self.retention if r.data_class == data_class), None)

    def allows(self, organisation: str, role: str) -> bool:
        """Whether a declared grant covers this organisation (any case) in this role."""
        return any(g.allows(organisation, role) for g in self.access)


def local_day(moment: datetime | date, timezone: str) -> date:
    """The local calendar day of an instant (naive means UTC, like every timestamp in the pipeline);
    a date is already local. An instant whose local day lies outside years 1-9999 (midnight UTC of
    1 January of year 1 is still 1 BC in America/New_York) gets the nearest day a date can hold."""
    if not isinstance(moment, datetime):
        return moment
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    try:
        return aware.astimezone(ZoneInfo(timezone)).date()
    except OverflowError:
        return date.min if aware.year == 1 else date.max


@dataclass(frozen=True)
class Deployment:
    """One registry entry. ``raw`` is the parsed YAML (dates as ``YYYY-MM-DD`` text)."""

    id: str
    name: str
    kind: str
    vendor: str
    description: str | None
    accountable_organisation: str
    accountable_role: str | None
    partners: tuple[str, ...]
    accountable_elements: tuple[str, ...]
    purposes: tuple[str, ...]
    technologies: tuple[str, ...]
    data_types: tuple[str, ...]
    processing: tuple[str, ...]
    access_elements: tuple[str, ...]
    storage_elements: tuple[str, ...]
    storage_location: str
    data_classes: tuple[str, ...]
    data_class_elements: Mapping[str, str]
    data_class_descriptions: Mapping[str, str]
    commissioned: date
    decommissioned: date | None
    lat: float | None
    lon: float | None
    area: str | None
    bbox: tuple[float, float, float, float] | None
    mobility: str
    address: str | None
    legal_basis: str
    policy_links: tuple[str, ...]
    feedback: Mapping[str, str]
    policy_versions: tuple[PolicyVersion, ...]
    provenance: Mapping[str, Any] | None
    timezone: str
    raw: Mapping[str, Any] = field(repr=False, compare=False, hash=False)
    source_file: str = field(default="", compare=False)

    @property
    def current_policy(self) -> PolicyVersion:
        return self.policy_versions[-1]

    def policy_at(self, moment: datetime | date) -> PolicyVersion:
        """The policy in force at ``moment``; before the first version, the first version.

        A datetime is converted to the registry's local date (naive means UTC); a version applies from
        the start of its ``effective_from`` day.
        """
        day = local_day(moment, self.timezone)
        in_force = self.policy_versions[0]
        for version in self.policy_versions[1:]:
            if version.effective_from <= day:
                in_force = version
        return in_force

    def is_active(self, on: date | datetime) -> bool:
        """In service on that local day: from ``commissioned`` to ``decommissioned``, both inclusive."""
        day = local_day(on, self.timezone)
        return self.commissioned <= day and (self.decommissioned is None or day <= self.decommissioned)


@dataclass(frozen=True)
class Registry:
    """All deployments, by id; iterating yields deployments in id order."""

    deployments: Mapping[str, Deployment]

    def __post_init__(self) -> None:
        ordered = dict(sorted(self.deployments.items()))
        object.__setattr__(self, "deployments", MappingProxyType(ordered))

    def ids(self) -> frozenset[str]:
        return frozenset(self.deployments)

    def get(self, deployment_id: str, default: Deployment | None = None) -> Deployment | None:
        return self.deployments.get(deployment_id, default)

    def __getitem__(self, deployment_id: str) -> Deployment:
        return self.deployments[deployment_id]

    def __contains__(self, deployment_id: object) -> bool:
        return deployment_id in self.deployments

    def __iter__(self) -> Iterator[Deployment]:
        return iter(self.deployments.values())

    def __len__(self) -> int:
        return len(self.deployments)

    def bbox(self) -> tuple[float, float, float, float]:
        """(min_lon, min_lat, max_lon, max_lat) over all points and area boxes; ValueError if none."""
        lons: list[float] = []
        lats: list[float] = []
        for d in self:
            if d.bbox:
                lons += [d.bbox[0], d.bbox[2]]
                lats += [d.bbox[1], d.bbox[3]]
            elif d.lat is not None and d.lon is not None:
                lons.append(d.lon)
                lats.append(d.lat)
        if not lons:
            raise ValueError("no deployment in the registry has a location")
        return min(lons), min(lats), max(lons), max(lats)
