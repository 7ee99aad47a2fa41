"""Deployment registry: one YAML file per deployment, validated and turned into typed records.

A registry is a folder of ``<id>.yaml`` files, each checked against
``schemas/deployment.schema.json`` (JSON Schema 2020-12) and then by the checks a schema cannot
express: DTPR element ids exist in the shipped taxonomy and in the right category, retention covers
exactly the declared data classes, ISO 8601 durations parse, dates are in order, the id equals the
file name. Every problem of every file is collected, one message each, so a registry maintainer
fixes everything in one pass.

Retention and access are machine-readable and versioned: a deployment's ``retention`` and
``access.grants`` are its current policy (``policy_version``, in force from
``policy_effective_from``); ``policy_history`` holds complete earlier versions. Registry dates are
local calendar dates in the city's time zone (``America/New_York`` unless told otherwise), so a
policy effective 2026-08-01 applies from local midnight.

DTPR's retention wording ("Retained 30 days") is always rendered from the machine-readable rule
(``render_retention_text``, ``dtpr_card``), never the other way round.
"""

from __future__ import annotations

import calendar
import difflib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import rfc8785
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from pipelines.config import resource_dir
from pipelines.errors import USAGE, SensorlogError
from pipelines.ingest import privacy
from pipelines.registry.taxonomy import ID_SEPARATOR, Taxonomy, load_taxonomy

SCHEMA_FILE = resource_dir("schemas") / "deployment.schema.json"
REGISTRY_SUFFIXES = (".yaml", ".yml")
DEFAULT_TIMEZONE = "America/New_York"  # the default of Settings.timezone

NO_RETENTION = "none"
INDEFINITE = "indefinite"
TRIGGERS = ("window_end", "window_start", "case_closed")
DEFAULT_TRIGGER = "window_end"
# Only RetentionRule.duration uses these fixed lengths; RetentionRule.due uses the calendar.
DAYS_PER_MONTH = 30
DAYS_PER_YEAR = 365

# (field path, DTPR category) for every list of DTPR element ids in a deployment file.
DTPR_FIELDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("accountable", "dtpr"), "accountable"),
    (("purposes",), "purpose"),
    (("technologies",), "tech"),
    (("data_types",), "data"),
    (("processing",), "process"),
    (("access", "dtpr"), "access"),
    (("storage", "dtpr"), "storage"),
)
_DTPR_ID_RE = re.compile(r"[a-z]+__[a-z0-9_]+")
_DATA_CLASS_RE = re.compile(r"[a-z][a-z0-9_]{1,39}")


# ---------------------------------------------------------------------------------------------------
# Problems


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one registry file, worded as what was expected."""

    file: str
    field: str
    expected: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: expected {self.expected}"


class RegistryError(SensorlogError):
    """The registry has problems; ``problems`` lists all of them, across all files. The command line
    prints one ``registry:`` line per problem and exits 2."""

    exit_code = USAGE

    def __init__(self, problems: Iterable[Problem]):
        self.problems: list[Problem] = list(problems)
        super().__init__(self.problems)

    def __str__(self) -> str:
        lines = "\n".join(f"  {p}" for p in self.problems)
        return f"{len(self.problems)} problem(s) in the deployment registry:\n{lines}"

    def diagnostics(self) -> str:
        return "\n".join(f"registry: {p}" for p in self.problems)


# ---------------------------------------------------------------------------------------------------
# Retention rules and ISO 8601 durations


class IsoDuration(NamedTuple):
    years: int = 0
    months: int = 0
    weeks: int = 0
    days: int = 0
    hours: int = 0
    minutes: int = 0
    seconds: int = 0


_DURATION_RE = re.compile(
    r"P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?"
)
DURATION_EXPECTED = "an ISO 8601 duration such as P30D, PT72H or P1Y (whole numbers), or 'none' or 'indefinite'"
# Longer periods are refused: they say "indefinite" in a way no calendar can compute a due date for.
MAX_PERIOD_DAYS = 36_525  # 100 calendar years
PERIOD_LIMIT_EXPECTED = (
    f"a retention period of at most 100 years ({MAX_PERIOD_DAYS:,} days; months count 30 days, years 365); "
    "write 'indefinite' for no deletion date"
)


def parse_iso_duration(text: str) -> IsoDuration:
    """Parse an ISO 8601 duration with whole-number components (``P1Y2M``, ``P2W``, ``PT72H``).

    Fractions are refused: retention periods are whole units, and a fraction of a month has no
    calendar meaning.
    """
    match = _DURATION_RE.fullmatch(text) if isinstance(text, str) else None
    parts = {k: int(v) for k, v in match.groupdict().items() if v is not None} if match else {}
    if not parts or text.endswith("T"):
        raise ValueError(f"expected {DURATION_EXPECTED}, got {text!r}")
    return IsoDuration(**parts)


def exceeds_period_limit(d: IsoDuration) -> bool:
    """Whether a duration is longer than ``MAX_PERIOD_DAYS`` (months as 30 days, years as 365).

    Counted in whole seconds with Python integers, so no timedelta or date arithmetic can overflow on
    the way: ``P99999999999999999999Y`` is simply too long."""
    days = d.years * DAYS_PER_YEAR + d.months * DAYS_PER_MONTH + d.weeks * 7 + d.days
    return ((days * 24 + d.hours) * 60 + d.minutes) * 60 + d.seconds > MAX_PERIOD_DAYS * 86_400


def _add_months(moment: datetime, months: int) -> datetime:
    # Clamp to the month's last day: one month after 31 January is 28 (or 29) February.
    years, month_index = divmod(moment.month - 1 + months, 12)
    year, month = moment.year + years, month_index + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _fixed_part(d: IsoDuration) -> timedelta:
    return timedelta(weeks=d.weeks, days=d.days, hours=d.hours, minutes=d.minutes, seconds=d.seconds)


@dataclass(frozen=True)
class RetentionRule:
    """How long one data class is kept, as declared.

    ``period`` is an ISO 8601 duration, ``"none"`` (nothing is kept: records must be gone when the
    collection window ends) or ``"indefinite"`` (no deletion date). ``trigger`` says when the
    period starts: ``window_end`` (end of the collection window, the default), ``window_start``, or
    ``case_closed``, which is informational: the log never sees a case close, so no due date can be
    computed for it.
    """

    data_class: str
    period: str
    trigger: str = DEFAULT_TRIGGER

    def __post_init__(self) -> None:
        if self.trigger not in TRIGGERS:
            raise ValueError(f"retention trigger must be one of {TRIGGERS}, got {self.trigger!r}")
        if self.kind == "duration":
            parse_iso_duration(self.period)

    @property
    def kind(self) -> str:
        """``"duration"``, ``"none"`` or ``"indefinite"``."""
        if self.period == NO_RETENTION:
            return "none"
        if self.period == INDEFINITE:
            return "indefinite"
        return "duration"

    @property
    def iso_duration(self) -> IsoDuration | None:
        return parse_iso_duration(self.period) if self.kind == "duration" else None

    @property
    def duration(self) -> timedelta | None:
        """The period as a fixed length: zero for ``none``, None for ``indefinite``.

        Months count as 30 days and years as 365 days (``DAYS_PER_MONTH``, ``DAYS_PER_YEAR``). This is
        for sorting and summaries; use ``due`` to decide whether a record is late, which follows the
        calendar.
        """
        if self.kind == "none":
            return timedelta(0)
        d = self.iso_duration
        if d is None:
            return None
        return timedelta(days=d.years * DAYS_PER_YEAR + d.months * DAYS_PER_MONTH) + _fixed_part(d)

    def due(self, collected_end: datetime, collected_start: datetime | None = None) -> datetime | None:
        """When records collected in a window ending at ``collected_end`` must have been deleted.

        Years and months follow the calendar of ``collected_end`` (31 January + P1M = 28/29 February,
        29 February + P1Y = 28 February); weeks, days and time parts are exact elapsed time. ``none``
        is due at ``collected_end`` itself. Returns None when there is no due date: ``indefinite``, or
        the ``case_closed`` trigger. A ``window_start`` rule needs ``collected_start``.
        """
        if self.kind == "indefinite" or self.trigger == "case_closed":
            return None
        start = collected_end
        if self.trigger == "window_start":
            if collected_start is None:
                raise ValueError(f"rule for {self.data_class!r} counts from window_start: pass collected_start")
            start = collected_start
        d = self.iso_duration
        if d is None:
            return start
        return _add_months(start, d.years * 12 + d.months) + _fixed_part(d)


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


# ---------------------------------------------------------------------------------------------------
# Deployments and the registry


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


# ---------------------------------------------------------------------------------------------------
# Reading YAML


# Bounds on one deployment file, checked before anything is built from it. A real file is a few
# kilobytes and a few hundred YAML nodes; aliases may share a node but not multiply a document past
# MAX_YAML_NODES (a "billion laughs" anchor expands to 10^9), and nesting stops at MAX_YAML_DEPTH.
MAX_REGISTRY_FILE_BYTES = 1 << 20
MAX_YAML_NODES = 100_000
MAX_YAML_DEPTH = 64
# A record's canonical JSON, as a JSON string inside its declaration leaf, leaves room in one tile
# entry (65,535 bytes) for the leaf's other members.
MAX_RECORD_BYTES = 60_000


class YamlBoundsError(SensorlogError, yaml.YAMLError):
    """A deployment file beyond the bounds above (refused before it is constructed)."""


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_bounds(root: yaml.Node) -> None:
    """Refuse a composed document whose aliases are recursive, expand past ``MAX_YAML_NODES`` nodes,
    or nest deeper than ``MAX_YAML_DEPTH``; shared nodes are counted once per reference, in one pass
    over the distinct nodes (never by expanding)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool, int]] = [(root, False, 1)]
    while stack:
        node, done, depth = stack.pop()
        key = id(node)
        if done:
            open_nodes.discard(key)
            sizes[key] = min(MAX_YAML_NODES + 1, 1 + sum(sizes[id(child)] for child in _children(node)))
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise YamlBoundsError(f"an alias that refers to itself (line {node.start_mark.line + 1})")
        if depth > MAX_YAML_DEPTH:
            raise YamlBoundsError(f"nesting deeper than {MAX_YAML_DEPTH} levels (line {node.start_mark.line + 1})")
        open_nodes.add(key)
        stack.append((node, True, depth))
        stack.extend((child, False, depth + 1) for child in _children(node) if id(child) not in sizes)
    if sizes[id(root)] > MAX_YAML_NODES:
        raise YamlBoundsError(
            f"aliases that expand the document past {MAX_YAML_NODES:,} nodes (an alias bomb?); refused unexpanded"
        )


class _Loader(yaml.SafeLoader):
    """SafeLoader that keeps dates as text (the schema checks them), refuses duplicate keys, and
    checks a document's bounds (``_check_bounds``) before constructing anything from it."""

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()
        if node is not None:
            _check_bounds(node)
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            if key_node.value in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"found duplicate key {key_node.value!r}", key_node.start_mark
                )
            seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


# A copy, so PyYAML's own SafeLoader keeps parsing timestamps for everyone else.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _yaml_problem(exc: yaml.MarkedYAMLError, name: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    if mark is None:
        return Problem(name, "(yaml)", f"valid YAML ({exc.problem})")
    detail = f"{exc.problem}, column {mark.column + 1}"
    # The parser notices a missing ']' or quote lines later; the line where it opened is the useful hint.
    if exc.context and exc.context_mark and exc.context_mark.line != mark.line:
        detail += f"; {exc.context} started on line {exc.context_mark.line + 1}"
    return Problem(name, f"line {mark.line + 1}", f"valid YAML ({detail})")


def _read_yaml(path: Path, name: str) -> tuple[Any, list[Problem]]:
    try:
        if path.stat().st_size > MAX_REGISTRY_FILE_BYTES:
            return None, [Problem(name, "(file)", f"a deployment file of at most {MAX_REGISTRY_FILE_BYTES:,} bytes")]
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(name, "(file)", f"a readable UTF-8 text file ({exc})")]
    try:
        return yaml.load(text, Loader=_Loader), []
    except yaml.MarkedYAMLError as exc:
        return None, [_yaml_problem(exc, name)]
    except YamlBoundsError as exc:
        return None, [Problem(name, "(yaml)", f"YAML within bounds, not {exc}")]
    except yaml.YAMLError as exc:
        return None, [Problem(name, "(yaml)", f"valid YAML ({exc})")]
    except RecursionError:  # the composer recurses before any bound can be checked
        return None, [Problem(name, "(yaml)", f"YAML within bounds, not nesting deeper than {MAX_YAML_DEPTH} levels")]


# ---------------------------------------------------------------------------------------------------
# Schema validation → problems


@cache
def deployment_schema() -> Mapping[str, Any]:
    with SCHEMA_FILE.open(encoding="utf-8") as fh:
        return json.load(fh)


@cache
def _validator() -> Draft202012Validator:
    schema = deployment_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _field_path(parts: Iterable[Any]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _join_field(parent: str, name: str) -> str:
    return f"{parent}.{name}" if parent else name


_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "array": "a list",
    "object": "a mapping of fields",
    "boolean": "true or false",
    "null": "null",
}


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."


def _schema_expected(error: ValidationError) -> str:
    """The 'expected ...' wording for one schema error (required/additionalProperties are elsewhere)."""
    hint = error.schema.get("x-expected") if isinstance(error.schema, dict) else None
    # jsonschema's stubs type these as "Any | Unset"; a reported error always has them set.
    instance: Any = error.instance
    limit: Any = error.validator_value
    kind, got = error.validator, _describe(instance)
    if kind in ("pattern", "format", "oneOf", "anyOf", "not", "minProperties") and hint:
        # For a mapping, "got a mapping" says nothing: the hint names the fields that are wrong.
        return hint if isinstance(instance, dict) else f"{hint} (got {got})"
    if kind == "type":
        words = [_TYPE_WORDS.get(t, t) for t in ([limit] if isinstance(limit, str) else limit)]
        return f"{' or '.join(words)} (got {got})"
    if kind == "enum":
        return f"one of {', '.join(map(str, limit))} (got {got})"
    if kind == "minItems":
        return f"at least {limit} item{'s' if limit != 1 else ''}"
    if kind == "maxItems":
        return f"at most {limit} items (got {len(instance)})"
    if kind == "minLength":
        return "non-empty text" if limit == 1 else f"text of at least {limit} characters"
    if kind == "maxLength":
        return f"text of at most {limit} characters (got {len(instance)})"
    if kind == "uniqueItems":
        repeated = next((v for i, v in enumerate(instance) if v in instance[:i]), None)
        return f"a list without repeated items ({_describe(repeated)} is repeated)"
    if kind in ("minimum", "maximum"):
        return f"a number {'>=' if kind == 'minimum' else '<='} {limit} (got {got})"
    return error.message


def _schema_problems(doc: Any, name: str) -> list[Problem]:
    problems: dict[str, Problem] = {}
    for error in _validator().iter_errors(doc):
        for problem in _problems_for_error(error, name):
            # Several keywords can fail on one value (pattern and format on a date): report it once.
            problems.setdefault(problem.field, problem)
    return sorted(problems.values(), key=lambda p: p.field)


def _problems_for_error(error: ValidationError, name: str) -> list[Problem]:
    where = _field_path(error.absolute_path)
    # jsonschema's stubs type these as "... | Unset"; a reported error always has them set.
    instance: Any = error.instance
    schema: Any = error.schema
    limit: Any = error.validator_value
    if error.validator == "required":
        missing = [p for p in limit if p not in instance]
        return [Problem(name, _join_field(where, p), "a value (required field is missing)") for p in missing]
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extra = [k for k in instance if k not in allowed]
        text = f"no such field (allowed fields: {', '.join(allowed)})"
        return [Problem(name, _join_field(where, str(k)), text) for k in extra]
    return [Problem(name, where or "(document)", _schema_expected(error))]


# ---------------------------------------------------------------------------------------------------
# Checks JSON Schema cannot express

Report = Callable[[str, str], None]


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _as_date(value: Any) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) and len(value) == 10 else None
    except ValueError:
        return None


def _at(doc: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = doc
    for key in path:
        value = _dict(value).get(key)
    return value


def _check_id(doc: Mapping[str, Any], stem: str, report: Report) -> None:
    value = doc.get("id")
    if isinstance(value, str) and value != stem:
        report("id", f"the file name without extension, {stem!r} (got {value!r})")


def _check_element(value: Any, category: str, where: str, taxonomy: Taxonomy, report: Report) -> None:
    if not isinstance(value, str) or not _DTPR_ID_RE.fullmatch(value):
        return  # the schema has reported its shape
    if not taxonomy.has(value):
        known = [e.id for e in taxonomy.elements_in(category)]
        close = difflib.get_close_matches(value, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        report(where, f"a DTPR {category!r} element id (unknown id {value!r}{hint})")
        return
    actual = taxonomy.category_of(value)
    if actual != category:
        report(
            where,
            f"a DTPR {category!r} element ({category}{ID_SEPARATOR}...), "
            f"got {value!r}, which is in category {actual!r}",
        )


def _check_dtpr_ids(doc: Mapping[str, Any], taxonomy: Taxonomy, report: Report) -> None:
    for path, category in DTPR_FIELDS:
        for i, value in enumerate(_list(_at(doc, path))):
            _check_element(value, category, f"{'.'.join(path)}[{i}]", taxonomy, report)
    for i, item in enumerate(_list(doc.get("data_classes"))):
        _check_element(_dict(item).get("dtpr"), "data", f"data_classes[{i}].dtpr", taxonomy, report)


def _declared_classes(doc: Mapping[str, Any]) -> list[str] | None:
    """Declared data class slugs, or None when the list is too malformed to check rules against."""
    items = doc.get("data_classes")
    if not isinstance(items, list):
        return None
    slugs = [_dict(i).get("slug") for i in items]
    valid = [s for s in slugs if isinstance(s, str) and _DATA_CLASS_RE.fullmatch(s)]
    if len(valid) != len(slugs):
        return None  # the schema has reported the bad slug; checking rules against it would only echo it
    return valid


def _check_data_classes(doc: Mapping[str, Any], report: Report) -> None:
    seen: set[str] = set()
    data_types = doc.get("data_types")
    for i, item in enumerate(_list(doc.get("data_classes"))):
        slug, element = _dict(item).get("slug"), _dict(item).get("dtpr")
        if isinstance(slug, str) and slug in seen:
            report(f"data_classes[{i}].slug", f"each data class declared once ({slug!r} is repeated)")
        if isinstance(slug, str):
            seen.add(slug)
        if isinstance(element, str) and isinstance(data_types, list) and element not in data_types:
            report(f"data_classes[{i}].dtpr", f"an element listed in data_types ({element!r} is not)")


def _check_rule(rule: Any, where: str, declared: list[str] | None, report: Report) -> str | None:
    """Check one retention rule; returns its data class when it names one."""
    period, data_class = _dict(rule).get("period"), _dict(rule).get("data_class")
    if isinstance(period, str) and period not in (NO_RETENTION, INDEFINITE):
        try:
            if exceeds_period_limit(parse_iso_duration(period)):
                report(f"{where}.period", f"{PERIOD_LIMIT_EXPECTED} (got {period!r})")
        except ValueError:
            report(f"{where}.period", f"{DURATION_EXPECTED} (got {period!r})")
    if not isinstance(data_class, str):
        return None
    if declared is not None and data_class not in declared:
        listed = ", ".join(declared) or "none"
        report(f"{where}.data_class", f"a data class declared in data_classes ({listed}); got {data_class!r}")
    return data_class


def _check_retention(rules: Any, where: str, declared: list[str] | None, report: Report) -> None:
    if not isinstance(rules, list):
        return
    covered: set[str] = set()
    for i, rule in enumerate(rules):
        data_class = _check_rule(rule, f"{where}[{i}]", declared, report)
        if data_class in covered:
            report(f"{where}[{i}].data_class", f"one rule per data class ({data_class!r} already has one)")
        if data_class:
            covered.add(data_class)
    for slug in declared or []:
        if slug not in covered:
            report(where, f"a retention rule for data class {slug!r}, which is declared in data_classes")


def _check_policies(doc: Mapping[str, Any], report: Report) -> None:
    declared = _declared_classes(doc)
    _check_retention(doc.get("retention"), "retention", declared, report)
    for i, entry in enumerate(_list(doc.get("policy_history"))):
        _check_retention(_dict(entry).get("retention"), f"policy_history[{i}].retention", declared, report)
    _check_history_order(doc, report)


def _check_history_order(doc: Mapping[str, Any], report: Report) -> None:
    current_version = doc.get("policy_version")
    current_from = _as_date(doc.get("policy_effective_from"))
    last_version: int | None = None
    last_from: date | None = None
    for i, entry in enumerate(_list(doc.get("policy_history"))):
        version, effective = _dict(entry).get("version"), _as_date(_dict(entry).get("effective_from"))
        if type(version) is int:
            if last_version is not None and version <= last_version:
                report(f"policy_history[{i}].version", f"a version above {last_version}, oldest first (got {version})")
            elif type(current_version) is int and version >= current_version:
                report(
                    f"policy_history[{i}].version",
                    f"a version below the current policy_version {current_version} (got {version})",
                )
            last_version = version
        if effective is not None:
            if last_from is not None and effective <= last_from:
                report(
                    f"policy_history[{i}].effective_from",
                    f"a date after {last_from.isoformat()}, oldest first (got {effective.isoformat()})",
                )
            elif current_from is not None and effective >= current_from:
                report(
                    f"policy_history[{i}].effective_from",
                    f"a date before policy_effective_from {current_from.isoformat()} (got {effective.isoformat()})",
                )
            last_from = effective


def _check_lifecycle(doc: Mapping[str, Any], report: Report) -> None:
    lifecycle = _dict(doc.get("lifecycle"))
    start, end = _as_date(lifecycle.get("commissioned")), _as_date(lifecycle.get("decommissioned"))
    if start and end and end < start:
        report(
            "lifecycle.decommissioned",
            f"a date on or after commissioned {start.isoformat()} (got {end.isoformat()})",
        )


def _check_bbox(doc: Mapping[str, Any], report: Report) -> None:
    box = _dict(doc.get("location")).get("bbox")
    if isinstance(box, list) and len(box) == 4 and all(isinstance(v, int | float) for v in box):
        if box[0] > box[2] or box[1] > box[3]:
            report("location.bbox", f"[min_lon, min_lat, max_lon, max_lat] with each min <= max (got {box})")


def _check_privacy(doc: Mapping[str, Any], report: Report) -> None:
    # Metadata only: the registry is published whole, so its text fields carry no personal data.
    for where, kind in privacy.document_problems(doc, deployment_schema()):
        report(where, f"text without personal data (found {privacy.KIND_WORDS[kind]}: {privacy.reason(where, kind)})")


def _check_record_size(doc: Mapping[str, Any], report: Report) -> None:
    # Each version of a record is one leaf of the log, held whole in one entry of a tile bundle.
    try:
        size = len(rfc8785.dumps(rfc8785.dumps(dict(doc)).decode()))
    except (rfc8785.CanonicalizationError, ValueError, TypeError) as exc:
        report("(document)", f"a record with a canonical JSON form ({exc})")
        return
    if size > MAX_RECORD_BYTES:
        report("(document)", f"a record of at most {MAX_RECORD_BYTES} bytes as canonical JSON text (got {size})")


def _semantic_problems(doc: Mapping[str, Any], name: str, stem: str) -> list[Problem]:
    problems: list[Problem] = []

    def report(where: str, expected: str) -> None:
        problems.append(Problem(name, where, expected))

    _check_id(doc, stem, report)
    _check_dtpr_ids(doc, load_taxonomy(), report)
    _check_data_classes(doc, report)
    _check_policies(doc, report)
    _check_lifecycle(doc, report)
    _check_bbox(doc, report)
    _check_privacy(doc, report)
    _check_record_size(doc, report)
    return problems


def check_deployment(doc: Any, name: str, stem: str) -> list[Problem]:
    """All problems of one parsed deployment document; ``name`` labels them, ``stem`` is its file stem."""
    if not isinstance(doc, dict):
        return [Problem(name, "(document)", f"a YAML mapping of deployment fields (got {_describe(doc)})")]
    shape = _schema_problems(doc, name)
    # A field the schema already rejected gets no second message from the deeper checks.
    seen = {p.field for p in shape}
    return shape + [p for p in _semantic_problems(doc, name, stem) if p.field not in seen]


# ---------------------------------------------------------------------------------------------------
# Building typed records from a checked document


def _rules(items: list[dict[str, Any]]) -> tuple[RetentionRule, ...]:
    return tuple(RetentionRule(r["data_class"], r["period"], r.get("trigger", DEFAULT_TRIGGER)) for r in items)


def _grants(items: list[dict[str, Any]]) -> tuple[AccessGrant, ...]:
    return tuple(AccessGrant(g["organisation"], tuple(g["roles"]), g["purpose"]) for g in items)


def _policy_versions(doc: Mapping[str, Any]) -> tuple[PolicyVersion, ...]:
    history = [
        PolicyVersion(
            h["version"],
            date.fromisoformat(h["effective_from"]),
            _rules(h["retention"]),
            _grants(h["access"]),
            h.get("note", ""),
        )
        for h in doc.get("policy_history", [])
    ]
    current = PolicyVersion(
        doc["policy_version"],
        date.fromisoformat(doc["policy_effective_from"]),
        _rules(doc["retention"]),
        _grants(doc["access"]["grants"]),
        doc.get("policy_note", ""),
    )
    return tuple(sorted([*history, current], key=lambda p: p.effective_from))


def _centre(location: Mapping[str, Any]) -> tuple[float | None, float | None]:
    if "lat" in location:
        return float(location["lat"]), float(location["lon"])
    box = location.get("bbox")
    if box:
        return (box[1] + box[3]) / 2, (box[0] + box[2]) / 2
    return None, None


def _bbox(location: Mapping[str, Any]) -> tuple[float, float, float, float] | None:
    box = location.get("bbox")
    return (float(box[0]), float(box[1]), float(box[2]), float(box[3])) if box else None


def from_checked(doc: dict[str, Any], source_file: str, timezone: str) -> Deployment:
    """The typed record of a document ``check_deployment`` found no problem in (e.g. one read back
    from the log); ``source_file`` labels it, ``timezone`` is the zone its dates are in."""
    return _build(doc, source_file, timezone)


def _build(doc: dict[str, Any], source_file: str, timezone: str) -> Deployment:
    location, lifecycle, accountable = doc["location"], doc["lifecycle"], doc["accountable"]
    lat, lon = _centre(location)
    decommissioned = lifecycle.get("decommissioned")
    return Deployment(
        id=doc["id"],
        name=doc["name"],
        kind=doc["kind"],
        vendor=doc["vendor"],
        description=doc.get("description"),
        accountable_organisation=accountable["organisation"],
        accountable_role=accountable.get("role"),
        partners=tuple(accountable.get("partners", ())),
        accountable_elements=tuple(accountable["dtpr"]),
        purposes=tuple(doc["purposes"]),
        technologies=tuple(doc["technologies"]),
        data_types=tuple(doc["data_types"]),
        processing=tuple(doc.get("processing", ())),
        access_elements=tuple(doc["access"]["dtpr"]),
        storage_elements=tuple(doc["storage"]["dtpr"]),
        storage_location=doc["storage"]["location"],
        data_classes=tuple(c["slug"] for c in doc["data_classes"]),
        data_class_elements=MappingProxyType({c["slug"]: c["dtpr"] for c in doc["data_classes"]}),
        data_class_descriptions=MappingProxyType(
            {c["slug"]: c["description"] for c in doc["data_classes"] if "description" in c}
        ),
        commissioned=date.fromisoformat(lifecycle["commissioned"]),
        decommissioned=date.fromisoformat(decommissioned) if decommissioned else None,
        lat=lat,
        lon=lon,
        area=location.get("area"),
        bbox=_bbox(location),
        mobility=location["mobility"],
        address=location.get("address"),
        legal_basis=doc["legal_basis"],
        policy_links=tuple(doc["policy_links"]),
        feedback=MappingProxyType(dict(doc["feedback"])),
        policy_versions=_policy_versions(doc),
        provenance=MappingProxyType(dict(doc["provenance"])) if "provenance" in doc else None,
        timezone=timezone,
        raw=MappingProxyType(doc),
        source_file=source_file,
    )


# ---------------------------------------------------------------------------------------------------
# Loading a registry


def _registry_files(root: Path) -> tuple[list[Path], list[Problem]]:
    if root.is_file():
        return [root], []
    if not root.is_dir():
        return [], [Problem(str(root), "(registry)", "a folder of deployment YAML files (it does not exist)")]
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix in REGISTRY_SUFFIXES)
    if not files:
        return [], [Problem(str(root), "(registry)", "at least one deployment file (<id>.yaml)")]
    return files, []


def _load_file(path: Path, timezone: str) -> tuple[Deployment | None, list[Problem]]:
    name = str(path)
    doc, problems = _read_yaml(path, name)
    if problems:
        return None, problems
    problems = check_deployment(doc, name, path.stem)
    return (None, problems) if problems else (_build(doc, name, timezone), [])


def _load(path: str | Path, timezone: str) -> tuple[dict[str, Deployment], list[Problem]]:
    ZoneInfo(timezone)  # an unknown zone is a configuration error, not a registry problem
    files, problems = _registry_files(Path(path))
    deployments: dict[str, Deployment] = {}
    for file in files:
        deployment, file_problems = _load_file(file, timezone)
        problems += file_problems
        if deployment is None:
            continue
        if deployment.id in deployments:
            other = deployments[deployment.id].source_file
            problems.append(
                Problem(str(file), "id", f"an id used by one file only ({deployment.id!r} is also {other})")
            )
            continue
        deployments[deployment.id] = deployment
    return deployments, problems


def validate_registry(path: str | Path) -> list[Problem]:
    """Every problem in the registry folder (or single file) at ``path``; empty when it is valid."""
    return _load(path, DEFAULT_TIMEZONE)[1]


def load_registry(path: str | Path, *, timezone: str = DEFAULT_TIMEZONE) -> Registry:
    """Load and check a registry folder (or a single deployment file); RegistryError lists all problems.

    ``timezone`` is the zone the registry's calendar dates are in (``Settings.timezone``).
    """
    deployments, problems = _load(path, timezone)
    if problems:
        raise RegistryError(problems)
    return Registry(deployments)


# ---------------------------------------------------------------------------------------------------
# Rendering: retention sentences and the DTPR card

_DATA_CLASS_LABELS = {
    "air_quality": "Air-quality readings",
    "acoustic_alerts": "Acoustic alerts",
    "audio_clips": "Audio clips",
    "charging_sessions": "Charging sessions",
    "device_identifiers": "Device identifiers",
    "footfall_counts": "Footfall counts",
    "images": "Images",
    "motion_counts": "Motion counts",
    "payment_records": "Payment records",
    "plate_reads": "Plate reads",
    "session_records": "Session records",
    "vehicle_counts": "Vehicle counts",
    "video": "Video",
}

# Unit words for durations inside DTPR's own localised "Retained {{duration}}" text. Khmer and
# Tagalog fall back to English until someone who writes them reviews a translation.
_UNIT_WORDS: dict[str, dict[str, tuple[str, str]]] = {
    "en": {
        "years": ("year", "years"),
        "months": ("month", "months"),
        "weeks": ("week", "weeks"),
        "days": ("day", "days"),
        "hours": ("hour", "hours"),
        "minutes": ("minute", "minutes"),
        "seconds": ("second", "seconds"),
    },
    "es": {
        "years": ("año", "años"),
        "months": ("mes", "meses"),
        "weeks": ("semana", "semanas"),
        "days": ("día", "días"),
        "hours": ("hora", "horas"),
        "minutes": ("minuto", "minutos"),
        "seconds": ("segundo", "segundos"),
    },
    "fr": {
        "years": ("an", "ans"),
        "months": ("mois", "mois"),
        "weeks": ("semaine", "semaines"),
        "days": ("jour", "jours"),
        "hours": ("heure", "heures"),
        "minutes": ("minute", "minutes"),
        "seconds": ("seconde", "secondes"),
    },
    "pt": {
        "years": ("ano", "anos"),
        "months": ("mês", "meses"),
        "weeks": ("semana", "semanas"),
        "days": ("dia", "dias"),
        "hours": ("hora", "horas"),
        "minutes": ("minuto", "minutos"),
        "seconds": ("segundo", "segundos"),
    },
}
_AND = {"en": "and", "es": "y", "fr": "et", "pt": "e"}
_INDEFINITELY = {"en": "indefinitely", "es": "indefinidamente", "fr": "indéfiniment", "pt": "indefinidamente"}


def data_class_label(slug: str) -> str:
    """Display label for a data class slug (``plate_reads`` → ``Plate reads``)."""
    return _DATA_CLASS_LABELS.get(slug) or slug.replace("_", " ").capitalize()


def format_duration(period: str, lang: str = "en") -> str:
    """``P1Y6M`` → ``1 year and 6 months``; en, es, fr, pt, other languages in English."""
    words = _UNIT_WORDS.get(lang, _UNIT_WORDS["en"])
    d = parse_iso_duration(period)
    parts = [f"{n} {words[unit][0] if n == 1 else words[unit][1]}" for unit, n in d._asdict().items() if n] or [
        f"0 {words['days'][1]}"
    ]
    if len(parts) == 1:
        return parts[0]
    return f"{', '.join(parts[:-1])} {_AND.get(lang, 'and')} {parts[-1]}"


def render_retention_text(rule: RetentionRule, lang: str = "en") -> str:
    """A plain sentence for a resident, generated from the machine-readable rule.

    Only English is written so far; every other ``lang`` gets the English sentence. (The DTPR
    element names on the card *are* localised, see ``dtpr_card``.)
    """
    label = data_class_label(rule.data_class)
    plural = label.endswith("s")
    be, it = ("are", "they") if plural else ("is", "it")
    if rule.kind == "none":
        return f"{label} {be} not kept: nothing is stored."
    if rule.kind == "indefinite":
        return f"{label} {be} kept indefinitely."
    span = format_duration(rule.period, "en")
    start = {
        "window_end": f" after {it} {be} recorded",
        "window_start": f", counted from the start of {'their' if plural else 'its'} collection window",
        "case_closed": " after the related case is closed",
    }[rule.trigger]
    return f"{label} {be} kept for {span}{start}, then deleted."


@dataclass(frozen=True)
class CardSection:
    """One DTPR category of a deployment's card; ``extra`` holds sensorlog's own lines (in English)."""

    category_id: str
    category_name: str
    elements: list[tuple[str, str, str]]
    extra: list[str]


def _elements(ids: Iterable[str], lang: str, taxonomy: Taxonomy) -> list[tuple[str, str, str]]:
    return [(i, taxonomy.element(i).name(lang), taxonomy.element(i).description(lang)) for i in ids]


def _retention_elements(policy: PolicyVersion, lang: str, taxonomy: Taxonomy) -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    for rule in policy.retention:
        if rule.kind == "none":
            entry = _elements(["retention__no_data_retained"], lang, taxonomy)[0]
        else:
            element = taxonomy.element("retention__data_retained")
            span = (
                _INDEFINITELY.get(lang, "indefinitely")
                if rule.kind == "indefinite"
                else format_duration(rule.period, lang)
            )
            # DTPR's description ("stored for X, and after this ... deleted") is wrong for no end date.
            description = (
                "Data is kept with no planned deletion date."
                if rule.kind == "indefinite"
                else element.description(lang).replace("{{duration}}", span)
            )
            entry = (element.id, element.name(lang).replace("{{duration}}", span), description)
        if entry not in out:
            out.append(entry)
    return out


def _grant_line(grant: AccessGrant) -> str:
    return f"{grant.organisation} ({', '.join(grant.roles)}): {grant.purpose}"


def _card_extra(deployment: Deployment, policy: PolicyVersion, lang: str) -> dict[str, list[str]]:
    role = f" ({deployment.accountable_role})" if deployment.accountable_role else ""
    partners = [f"With: {', '.join(deployment.partners)}"] if deployment.partners else []
    classes = [
        f"{data_class_label(c)}: {deployment.data_class_descriptions[c]}"
        if c in deployment.data_class_descriptions
        else data_class_label(c)
        for c in deployment.data_classes
    ]
    since = f"Policy version {policy.version}, in force from {policy.effective_from.isoformat()}."
    return {
        "accountable": [f"{deployment.accountable_organisation}{role}", *partners],
        "purpose": [],
        "tech": [f"Vendor: {deployment.vendor}"],
        "data": classes,
        "process": [],
        "access": [_grant_line(g) for g in policy.access],
        "retention": [*(render_retention_text(r, lang) for r in policy.retention), since],
        "storage": [deployment.storage_location],
    }


def dtpr_card(deployment: Deployment, lang: str = "en", on: date | datetime | None = None) -> list[CardSection]:
    """The deployment's DTPR card: one section per device category, in DTPR's display order.

    Element names and descriptions come from the taxonomy in ``lang`` (English for unknown codes);
    retention elements are generated from the policy in force ``on`` that day (default: the current
    policy). Every category is present, possibly empty, so a renderer can rely on the order.
    """
    taxonomy = load_taxonomy()
    policy = deployment.policy_at(on) if on is not None else deployment.current_policy
    extra = _card_extra(deployment, policy, lang)
    ids = {
        "accountable": deployment.accountable_elements,
        "purpose": deployment.purposes,
        "tech": deployment.technologies,
        "data": deployment.data_types,
        "process": deployment.processing,
        "access": deployment.access_elements,
        "storage": deployment.storage_elements,
    }
    sections = []
    for category in taxonomy.categories_in_order():
        if category.id == "retention":
            elements = _retention_elements(policy, lang, taxonomy)
        else:
            elements = _elements(ids[category.id], lang, taxonomy)
        sections.append(CardSection(category.id, category.name(lang), elements, extra[category.id]))
    return sections
