"""The registry's typed records: deployments, their versioned retention-and-access policies, the registry."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from pipelines.registry.retention import RetentionRule

DEFAULT_TIMEZONE = "America/New_York"  # the default of Settings.timezone

# Registry text a file may give as one text or as its translations ({en: ..., es: ...}, English required):
# Deployment attribute -> the field's path in the file. The attribute holds the English text (what sorts,
# exports to CSV and DCAT); ``Deployment.translations`` the mapping. area and address are the place's now.
TRANSLATABLE = {
    "name": "name",
    "description": "description",
    "legal_basis": "legal_basis",
    "storage_location": "storage.location",
    "area": "location.area",
    "address": "location.address",
}
TEXT_SOURCE_LANG = "en"  # a plain text is taken to be English, and a mapping must hold English


def english_text(value: Any) -> Any:
    """The English of a translatable field's value: the text itself, or the mapping's ``en``."""
    return value.get(TEXT_SOURCE_LANG) if isinstance(value, Mapping) else value


def text_translations(value: Any) -> Mapping[str, str]:
    """A translatable field's texts by language (empty for a plain text)."""
    if not isinstance(value, Mapping):
        return MappingProxyType({})
    return MappingProxyType({str(k): str(v) for k, v in value.items() if isinstance(v, str) and v})


# How an access by one organisation in one role stands against a policy (``PolicyVersion.judge``).
ACCESS_DECLARED = "declared"
ACCESS_UNDECLARED = "undeclared"
# Not named, but the policy grants access to organisations it does not name (a bare count, or words
# such as "NA"): the access can be judged neither declared nor undeclared.
ACCESS_UNVERIFIABLE = "unverifiable"


@dataclass(frozen=True)
class AccessGrant:
    """Who may access a deployment's data, in which roles, for what, as declared: nothing is filled in.

    Three forms (``form``): ``named`` (one ``organisation``), ``counted`` (``count`` organisations the
    source does not name, e.g. "988 external organisations"), ``unstated`` (the source states neither:
    its words are in ``stated``, e.g. "NA"). ``roles`` is empty and ``purpose`` None when not stated.
    ``stated`` is the source's wording; it is not a term of the policy and takes no part in comparing.
    """

    organisation: str | None
    roles: tuple[str, ...]
    purpose: str | None
    count: int | None = None
    description: str | None = None
    stated: str | None = field(default=None, compare=False)

    @property
    def form(self) -> str:
        if self.organisation is not None:
            return "named"
        return "counted" if self.count is not None else "unstated"

    def allows(self, organisation: str, role: str) -> bool:
        """Whether this grant covers that organisation (any case) in that role. Only a named grant can:
        a count of unnamed organisations covers no particular one. A named grant that states no roles
        restricts none, so it covers the organisation in any role."""
        if self.organisation is None:
            return False
        # Organisation names arrive from many vendor feeds with varying case; role slugs are exact.
        return _same_organisation(self.organisation, organisation) and (not self.roles or role in self.roles)


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

    def judge(self, organisation: str, role: str) -> str:
        """``ACCESS_DECLARED`` when a grant covers the access; else ``ACCESS_UNVERIFIABLE`` when the
        policy also grants access to organisations it does not name (a bare count cannot show that this
        one is among them, nor that it is not), else ``ACCESS_UNDECLARED``."""
        if self.allows(organisation, role):
            return ACCESS_DECLARED
        if any(g.organisation is None for g in self.access):
            return ACCESS_UNVERIFIABLE
        return ACCESS_UNDECLARED


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
class DeviceCount:
    """How many devices a deployment declares, and what they are (e.g. 12 "fixed cameras")."""

    count: int
    description: str | None = None


@dataclass(frozen=True)
class DataSource:
    """A data source the deployment consults (e.g. a hotlist): by ``name``, or ``count`` unnamed ones."""

    name: str | None
    count: int | None = None
    description: str | None = None


@dataclass(frozen=True)
class Place:
    """Where a deployment is: a point, or an area (``lat``/``lon`` then its bbox's centre, or None)."""

    lat: float | None
    lon: float | None
    area: str | None
    bbox: tuple[float, float, float, float] | None
    mobility: str
    address: str | None


@dataclass(frozen=True)
class Relocation:
    """A declared move (``lifecycle.relocations``): from local day ``on``, the deployment is at ``place``."""

    on: date
    place: Place
    note: str | None = None


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
    # How many devices the deployment declares (e.g. cameras), None when it does not say.
    devices: DeviceCount | None = None
    data_sources: tuple[DataSource, ...] = ()
    # Whether the operator publishes an audit of searches of the data; None when not declared.
    public_search_audit: bool | None = None
    # Where a field's value came from (``provenance.fields``): field path -> the source, in words.
    field_provenance: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), compare=False)
    # Declared moves, oldest first. lat, lon, area, bbox, mobility and address above are where the
    # deployment is now (the last move's place); the top-level ``location`` of the file is where it was
    # at commissioning, kept here as ``commissioned_at`` when it has moved since.
    relocations: tuple[Relocation, ...] = ()
    commissioned_at: Place | None = None
    # Attribute (a key of TRANSLATABLE) -> language -> text, for the fields the file translates.
    translations: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: MappingProxyType({}),
                                                          compare=False)

    def text_in(self, attribute: str, lang: str) -> tuple[str | None, str]:
        """(text, its language) of a translatable field for a page in ``lang``: the registry's translation
        when it has one, else the English text (None when the record has no such field)."""
        if attribute not in TRANSLATABLE:
            raise KeyError(f"{attribute!r} is not a translatable registry field")
        own = self.translations.get(attribute, {}).get(lang)
        if own:
            return own, lang
        return getattr(self, attribute), TEXT_SOURCE_LANG

    @property
    def place(self) -> Place:
        """Where the deployment is now (after its last declared move)."""
        return Place(self.lat, self.lon, self.area, self.bbox, self.mobility, self.address)

    def places(self) -> tuple[tuple[date, Place, str | None], ...]:
        """(from local day, place, note) for commissioning and every declared move, oldest first."""
        first = self.commissioned_at if self.relocations and self.commissioned_at else self.place
        return ((self.commissioned, first, None), *((r.on, r.place, r.note) for r in self.relocations))

    def relocated_on(self, day: date) -> bool:
        """Whether a move is declared on that local day."""
        return any(r.on == day for r in self.relocations)

    def source_of(self, path: str) -> str | None:
        """Where the value at ``path`` (``retention[0]``, ``access.grants[2]``, ``devices``) came from,
        as declared in ``provenance.fields`` for it or for the nearest field that holds it (``[*]``
        there stands for every item); None when nothing is said."""
        return provenance_for(self.field_provenance, path)

    def policy_fields(self, policy: PolicyVersion) -> tuple[str, str]:
        """The field paths of a policy's retention rules and grants in the record: ``retention`` and
        ``access.grants`` for the current one, ``policy_history[k].retention`` and ``...access`` for an
        earlier one (history is kept oldest first, so ``k`` is its place among the versions)."""
        if policy is self.current_policy:
            return "retention", "access.grants"
        k = self.policy_versions.index(policy)
        return f"policy_history[{k}].retention", f"policy_history[{k}].access"

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


_INDEX_RE = re.compile(r"\[(\d+|\*)\]$")


def _parent(path: str) -> str | None:
    if _INDEX_RE.search(path):
        return _INDEX_RE.sub("", path)
    return path.rsplit(".", 1)[0] if "." in path else None


def provenance_for(fields: Mapping[str, str], path: str) -> str | None:
    """The source ``fields`` gives for ``path`` or its nearest enclosing field (see ``source_of``)."""
    at: str | None = path
    while at:
        for key in (at, re.sub(r"\[\d+\]", "[*]", at)):
            if key in fields:
                return fields[key]
        at = _parent(at)
    return None


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
