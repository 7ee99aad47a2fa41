"""Checking one deployment document: JSON Schema errors worded as what was expected, then the checks a
schema cannot express. Every problem is collected, one ``Problem`` each."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

import rfc8785
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from pipelines.config import resource_dir
from pipelines.errors import USAGE, SensorlogError
from pipelines.registry.fastschema import compile_fast
from pipelines.registry.retention import (
    DURATION_EXPECTED,
    INDEFINITE,
    NO_RETENTION,
    PERIOD_LIMIT_EXPECTED,
    STATED_EXPECTED,
    UNKNOWN,
    exceeds_period_limit,
    parse_iso_duration,
)
from pipelines.registry.taxonomy import ID_SEPARATOR, Taxonomy, load_taxonomy

SCHEMA_FILE = resource_dir("schemas") / "deployment.schema.json"

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

# A record's canonical JSON, as a JSON string inside its declaration leaf, leaves room in one tile
# entry (65,535 bytes) for the leaf's other members.
MAX_RECORD_BYTES = 60_000


# ---------------------------------------------------------------------------------------------------
# Problems


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one registry file, worded as what was expected; ``line`` is the line of the
    field in the file when it is known. A ``warning`` is implausible rather than wrong: it is reported
    and never stops a registry from loading."""

    file: str
    field: str
    expected: str
    line: int | None = None
    warning: bool = False

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line is not None else ""
        return f"{self.file}: {self.field}: expected {self.expected}{where}"


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
# Schema validation → problems


@cache
def deployment_schema() -> Mapping[str, Any]:
    with SCHEMA_FILE.open(encoding="utf-8") as fh:
        return json.load(fh)


@cache
def fast_validator() -> Callable[[Any], bool] | None:
    """The compiled fast path for the deployment schema (``fastschema``), or None (everything goes
    through jsonschema). Here, beside the schema it compiles, so fastschema imports nothing of ours."""
    return compile_fast(deployment_schema())


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
    # Most documents are valid: the compiled fast path accepts those, and jsonschema words the rest.
    fast = fast_validator()
    if fast is not None and fast(doc):
        return []
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
        # YAML 1.1 reads an unquoted on, off, yes or no as true or false, keys too ("on: 2025-03-01").
        as_bool = f"a field name, not true or false (YAML reads an unquoted on, off, yes or no key so){text[13:]}"
        return [Problem(name, _join_field(where, str(k)), as_bool if isinstance(k, bool) else text) for k in extra]
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
    if period == UNKNOWN and "stated" not in _dict(rule):
        report(f"{where}.stated", STATED_EXPECTED)
    if isinstance(period, str) and period not in (NO_RETENTION, INDEFINITE, UNKNOWN):
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
    _check_relocations(_list(lifecycle.get("relocations")), start, end, report)


def _check_relocations(moves: list[Any], start: date | None, end: date | None, report: Report) -> None:
    # Each move starts a new stretch at a new place: after commissioning (the top-level location is
    # the place on that day), not after the last day of operation, and each after the one before.
    last: date | None = None
    for i, move in enumerate(moves):
        on = _as_date(_dict(move).get("moved_on"))
        if on is None:
            continue  # the schema has reported its shape
        where = f"lifecycle.relocations[{i}].moved_on"
        if start and on <= start:
            report(where, f"a date after commissioned {start.isoformat()} (got {on.isoformat()})")
        elif end and on > end:
            report(where, f"a date on or before decommissioned {end.isoformat()} (got {on.isoformat()})")
        elif last and on <= last:
            before = last.isoformat()
            report(where, f"a date after the relocation before it, {before}, oldest first (got {on.isoformat()})")
        last = on if last is None or on > last else last


def location_fields(doc: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(field path, location) of the location at commissioning and of every declared relocation."""
    moves = _list(_dict(doc.get("lifecycle")).get("relocations"))
    return [("location", _dict(doc.get("location")))] + [
        (f"lifecycle.relocations[{i}].location", _dict(_dict(m).get("location"))) for i, m in enumerate(moves)
    ]


def _check_bbox(doc: Mapping[str, Any], report: Report) -> None:
    for at, location in location_fields(doc):
        box = location.get("bbox")
        if isinstance(box, list) and len(box) == 4 and all(isinstance(v, int | float) for v in box):
            if box[0] > box[2] or box[1] > box[3]:
                report(f"{at}.bbox", f"[min_lon, min_lat, max_lon, max_lat] with each min <= max (got {box})")


_PATH_PART_RE = re.compile(r"([a-z_]+)|\[(\d+|\*)\]")
_FIELD_PATH_RE = re.compile(r"[a-z_]+(\[(\d+|\*)\]|\.[a-z_]+)*")  # as the schema's provenance.fields keys


def path_parts(path: str) -> list[str | int]:
    """``access.grants[2].roles`` -> ``["access", "grants", 2, "roles"]`` (``[*]`` is ``"*"``)."""
    parts: list[str | int] = []
    for name, index in _PATH_PART_RE.findall(path):
        parts.append(name if name else (int(index) if index != "*" else "*"))
    return parts


def _resolves(value: Any, parts: list[str | int]) -> bool:
    if not parts:
        return True
    head, rest = parts[0], parts[1:]
    if isinstance(head, str) and head != "*":
        return isinstance(value, dict) and head in value and _resolves(value[head], rest)
    if not isinstance(value, list) or not value:
        return False
    if head == "*":
        return all(_resolves(item, rest) for item in value)
    return isinstance(head, int) and head < len(value) and _resolves(value[head], rest)


def _check_field_provenance(doc: Mapping[str, Any], report: Report) -> None:
    # A source named for a field the record does not have would be shown next to nothing.
    fields = _dict(_dict(doc.get("provenance")).get("fields"))
    for path in fields:
        if not isinstance(path, str) or not _FIELD_PATH_RE.fullmatch(path):
            continue  # the schema has reported how a path is written
        if not path.startswith("provenance") and not _resolves(doc, path_parts(path)):
            report(f"provenance.fields.{path}", f"the path of a field this record has (nothing at {path!r})")


def _check_privacy(doc: Mapping[str, Any], report: Report) -> None:
    # Imported here, not at the top: privacy brings pyarrow and phonenumbers, which everything that imports
    # the registry package (the CLI's --help, the taxonomy) would otherwise pay for.
    from pipelines.ingest import privacy

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
    _check_field_provenance(doc, report)
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
# Warnings: valid, but implausible (reported with file and line; a registry with warnings still loads)

BBox = tuple[float, float, float, float]
# Words that hold a place for an address nobody filled in.
_PLACEHOLDER_RE = re.compile(
    r"\s*(tbd|tba|tbc|n/?a|none|null|nil|unknown|pending|placeholder|address|to be (determined|announced|confirmed)"
    r"|[-?x0.]+)\s*[.!]*\s*",
    re.IGNORECASE,
)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _inside(lon: float, lat: float, box: BBox) -> bool:
    return box[0] <= lon <= box[2] and box[1] <= lat <= box[3]


def _overlaps(a: BBox, box: BBox) -> bool:
    return a[0] <= box[2] and box[0] <= a[2] and a[1] <= box[3] and box[1] <= a[3]


def _box_text(box: BBox) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box) + "]"


def deployment_warnings(doc: Mapping[str, Any], name: str, city_bbox: BBox | None = None) -> list[Problem]:
    """What is valid but implausible in one checked document: a position at 0,0 (a missing value written
    as zeros), outside the city's bounding box (``city_bbox``, from ``SENSORLOG_CITY_BBOX``), or an
    address or area that only holds a place ("TBD")."""
    out: list[Problem] = []

    def warn(where: str, expected: str) -> None:
        out.append(Problem(name, where, expected, warning=True))

    for at, location in location_fields(doc):
        _location_warnings(location, at, city_bbox, warn)
    return out


def _location_warnings(
    location: Mapping[str, Any], at: str, city_bbox: BBox | None, warn: Callable[[str, str], None]
) -> None:
    lat, lon = _number(location.get("lat")), _number(location.get("lon"))
    box = location.get("bbox")
    numbers = [_number(v) for v in box] if isinstance(box, list) and len(box) == 4 else []
    corners: BBox | None = None
    if isinstance(box, list) and len(numbers) == 4 and None not in numbers:
        corners = (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
    if lat is not None and lon is not None:
        if lat == 0 and lon == 0:
            warn(f"{at}.lat", "a real position (got lat 0, lon 0: in the Gulf of Guinea, usually a missing value"
                             " written as zeros)")
        elif city_bbox and not _inside(lon, lat, city_bbox):
            warn(f"{at}.lat", f"a position inside the city's bounding box {_box_text(city_bbox)}"
                                 f" (SENSORLOG_CITY_BBOX; got lat {lat:g}, lon {lon:g})")
    if corners is not None:
        if not any(corners):
            warn(f"{at}.bbox", "a real area (got [0, 0, 0, 0], usually a missing value written as zeros)")
        elif city_bbox and not _overlaps(corners, city_bbox):
            warn(f"{at}.bbox", f"an area that overlaps the city's bounding box {_box_text(city_bbox)}"
                                  f" (SENSORLOG_CITY_BBOX; got {_box_text(corners)})")
    for key in ("address", "area"):
        text = location.get(key)
        if isinstance(text, str) and _PLACEHOLDER_RE.fullmatch(text):
            what = "a street address or description of the place" if key == "address" else "the name of the area"
            warn(f"{at}.{key}", f"{what} (got {text!r}, which holds a place for one)")
