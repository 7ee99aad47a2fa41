"""Personal data in the log's text fields: the one module that knows what it looks like.

The public log is metadata only. Every text field of every event type and of the registry declares a
class in its JSON Schema (keyword ``x-sensorlog-class``), and the class decides what the field is
checked for:

- ``code``: identifiers, slugs, URLs (``deployment_id``, ``data_class``, ``event_id``, ``source``):
  checked for e-mail addresses;
- ``label``: short names (organisations, roles, storage systems): e-mail addresses and phone numbers;
- ``free_text``: what a person types (purposes, case references, lifecycle details, registry
  descriptions and notes): e-mail addresses, phone numbers and licence-plate-like tokens.

A field may name its own list instead with ``x-sensorlog-privacy`` (the access event's purpose and case
reference add ``address``: a street address with a house number; the registry's feedback channels
list nothing, because an organisation's public contact address is published on purpose).

Kinds: ``email``; ``phone`` (E.164 and international ``+`` forms from any country, national forms of
``PHONE_REGIONS`` with at least 10 digits, found and validated by the ``phonenumbers`` library);
``plate`` (a token of 2 to 8 letters and digits with at least one digit, right after a word such as
plate, tag, licence or registration); ``address`` (a house number, one to three name words and a street suffix such as
Street, Ave or Rd). An event carrying any of them is quarantined at validation with the reason
``privacy:<field>:<kind>``; a registry file carrying any is a registry problem.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from typing import Any

import numpy as np
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.schemas import event_table, load_json_schema

CLASS_KEYWORD = "x-sensorlog-class"
CHECKS_KEYWORD = "x-sensorlog-privacy"
CLASSES = ("code", "label", "free_text")
KINDS = ("email", "phone", "plate", "address")
KIND_WORDS = {
    "email": "an e-mail address",
    "phone": "a phone number",
    "plate": "a licence-plate number",
    "address": "a street address",
}
CHECKS_BY_CLASS: Mapping[str, tuple[str, ...]] = {
    "code": ("email",),
    "label": ("email", "phone"),
    "free_text": ("email", "phone", "plate"),
}
# National forms are read as numbers of these regions; any number written with a leading "+" is read
# whatever its country. The sample city is in the United States.
PHONE_REGIONS = ("US",)
REASON_PREFIX = "privacy:"
# Envelope columns of an event table and the CloudEvents attribute each one holds.
ENVELOPE_COLUMNS = {"source": "source", "event_id": "id"}

# Text is NFKC-normalised before matching (a no-break space becomes a space, full-width digits and "＠"
# their ASCII forms), and every pattern is ASCII-only, so Arrow's RE2 filters and Python agree.
_EMAIL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z]{2,}")

# A phone number has at least 10 digits written nationally (as every US number does) or 7 after a "+".
_PHONE_GATE = r"\+[ (]*(?:[0-9][ ().\-/]*){7,}|(?:[0-9][ ().\-/]*){10,}"

_PLATE_WORDS = r"\b(?:licen[cs]e|registration|reg|plates?|tags?|vrm|lpn)\b"
_PLATE_CONTEXT = re.compile(_PLATE_WORDS + r"(?P<rest>.{0,40})", re.IGNORECASE | re.DOTALL | re.ASCII)
# Words that may stand between the context word and the plate: "plate number: ABC 1234", "tag no. 7XYZ12".
_PLATE_FILLERS = frozenset(
    {"no", "nr", "num", "number", "plate", "plates", "was", "is", "of", "read", "reads", "reading", "id"}
)
_TOKEN_SPLIT = re.compile(r"[\s:#=,;()\[\]\"'/]+")
_PLATE_TOKEN = re.compile(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")
_PLATE_PAIR = re.compile(r"[A-Z]{1,4}|[0-9]{1,4}")

_STREET_SUFFIXES = (
    "street|st|avenue|ave|av|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|place|pl|way|terrace|ter|"
    "parkway|pkwy|circle|cir|highway|hwy|square|sq|alley|aly|plaza|crescent|cres|close|row"
)
_NOT_A_NAME = "on|at|in|of|and|or|for|to|from|by|with|near|the|a|an|days?|weeks?|months?|years?|hours?|records?"
_ADDRESS = re.compile(
    rf"\b\d{{1,6}}[A-Za-z]?(?:-\d{{1,4}})?,?\s+(?:(?!(?:{_NOT_A_NAME})\b)[A-Za-z][A-Za-z'.-]*\s+){{1,3}}"
    rf"(?:{_STREET_SUFFIXES})\b",
    re.IGNORECASE | re.ASCII,
)

# Filters (RE2 in Arrow, the same text in Python) that every hit of a kind passes: a column is read in
# Python only on rows that pass one, and ``find`` applies them first too, so both decide alike.
_GATES = {
    "email": "@",
    "phone": _PHONE_GATE,
    "plate": rf"(?is){_PLATE_WORDS}.{{0,40}}?[0-9]",
    "address": rf"(?i)[0-9].*\b(?:{_STREET_SUFFIXES})\b",
}
_GATE_RES = {kind: re.compile(pattern, re.ASCII) for kind, pattern in _GATES.items()}


def _has_email(text: str) -> bool:
    return _EMAIL.search(text) is not None


def _has_phone(text: str) -> bool:
    for region in PHONE_REGIONS:
        for _ in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            return True
    return False


def _plate_like(token: str, next_token: str | None) -> bool:
    compact = token.replace("-", "")
    if 2 <= len(compact) <= 8 and any(c.isdigit() for c in compact) and any(c.isalpha() for c in compact):
        return True
    # "ABC 1234": upper-case letters then digits, written as two tokens.
    if next_token and _PLATE_PAIR.fullmatch(token) and _PLATE_PAIR.fullmatch(next_token):
        joined = token + next_token
        return token.isalpha() != next_token.isalpha() and 4 <= len(joined) <= 8
    return False


def _has_plate(text: str) -> bool:
    for match in _PLATE_CONTEXT.finditer(text):
        tokens = [t.strip("-.") for t in _TOKEN_SPLIT.split(match.group("rest"))]
        tokens = [t for t in tokens if t and t.lower() not in _PLATE_FILLERS]
        if tokens and _PLATE_TOKEN.fullmatch(tokens[0]):
            if _plate_like(tokens[0], tokens[1] if len(tokens) > 1 else None):
                return True
    return False


def _has_address(text: str) -> bool:
    return _ADDRESS.search(text) is not None


_DETECTORS = {"email": _has_email, "phone": _has_phone, "plate": _has_plate, "address": _has_address}


def find(text: str, kinds: Iterable[str] = KINDS) -> list[str]:
    """The kinds of personal data in ``text``, among ``kinds``, in ``KINDS`` order."""
    wanted = set(kinds)
    text = unicodedata.normalize("NFKC", text)
    return [
        kind
        for kind in KINDS
        if kind in wanted and _GATE_RES[kind].search(text) is not None and _DETECTORS[kind](text)
    ]


def reason(field: str, kind: str) -> str:
    """The quarantine reason for personal data of ``kind`` in ``field``."""
    return f"{REASON_PREFIX}{field}:{kind}"


def checks_for(spec: Mapping[str, Any]) -> tuple[str, ...]:
    """What one text field is checked for: its ``x-sensorlog-privacy`` list, else its class's."""
    if CHECKS_KEYWORD in spec:
        return tuple(k for k in KINDS if k in spec[CHECKS_KEYWORD])
    return CHECKS_BY_CLASS.get(spec.get(CLASS_KEYWORD, ""), ())


# ---------------------------------------------------------------------------------------------------
# Event tables


@cache
def _envelope_schema() -> Mapping[str, Any]:
    return load_json_schema("cloudevent")


@cache
def column_checks(table_name: str) -> Mapping[str, tuple[str, ...]]:
    """Column → kinds checked, for every text column of an event table that is checked for anything."""
    envelope = _envelope_schema()["properties"]
    specs = {column: envelope[attribute] for column, attribute in ENVELOPE_COLUMNS.items()}
    specs.update(event_table(table_name).json_schema["properties"])
    return {column: kinds for column, spec in specs.items() if (kinds := checks_for(spec))}


def _may_hold_email(values: pa.ChunkedArray) -> bool:
    # An e-mail address needs an "@" (or a non-ASCII character NFKC turns into one): a scan of the
    # column's data buffers clears most id columns without reading a single value.
    for chunk in values.chunks:
        data = chunk.buffers()[2] if len(chunk) > chunk.null_count else None
        if data is not None:
            raw = np.frombuffer(data, dtype=np.uint8)
            if (raw == ord("@")).any() or (raw >= 0x80).any():
                return True
    return False


def _flagged_values(values: pa.ChunkedArray, kinds: tuple[str, ...]) -> dict[str, list[str]]:
    """Distinct values of a column that hold personal data of ``kinds``, with the kinds found."""
    if kinds == ("email",) and not _may_hold_email(values):
        return {}
    distinct = pc.unique(values)  # most text columns repeat a few values; ids are checked for "@" only
    maybe = pc.invert(pc.string_is_ascii(distinct))  # rare; normalised and judged in Python
    for kind in kinds:
        gate = _GATES[kind]
        hit = pc.match_substring(distinct, gate) if kind == "email" else pc.match_substring_regex(distinct, gate)
        maybe = pc.or_(maybe, hit)
    candidates = distinct.filter(pc.fill_null(maybe, False)).to_pylist()
    return {text: found for text in candidates if (found := find(text, kinds))}


def table_problems(table_name: str, table: pa.Table, key: str) -> dict[Any, list[str]]:
    """``privacy:<column>:<kind>`` reasons by the value of column ``key``, for rows holding personal data.

    Arrow filters each column's distinct values first (RE2 gates every hit passes), so Python reads
    only the few texts that could hold something.
    """
    found: dict[Any, list[str]] = defaultdict(list)
    for column, kinds in column_checks(table_name).items():
        if column not in table.column_names:
            continue
        values = table.column(column)
        flagged = _flagged_values(values, kinds)
        if not flagged:
            continue
        rows = table.filter(pc.is_in(values, value_set=pa.array(list(flagged), values.type)))
        for row in rows.select([key, column]).to_pylist():
            found[row[key]].extend(reason(column, kind) for kind in flagged[row[column]])
    return dict(found)


# ---------------------------------------------------------------------------------------------------
# Documents checked against a JSON Schema (the registry)


def _resolve(spec: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """``spec`` with its local ``$ref`` merged in (the referring schema's own keywords win)."""
    ref = spec.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return spec
    target: Any = root
    for part in ref[2:].split("/"):
        target = target[part]
    return {**_resolve(target, root), **{k: v for k, v in spec.items() if k != "$ref"}}


def _text_spec(spec: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """For a string value: the keywords that describe it, looking into anyOf/oneOf branches."""
    for branch in (*spec.get("anyOf", ()), *spec.get("oneOf", ())):
        resolved = _resolve(branch, root)
        if CLASS_KEYWORD in resolved or CHECKS_KEYWORD in resolved:
            return {**resolved, **spec}
    return spec


def _walk(value: Any, spec: Mapping[str, Any], root: Mapping[str, Any], path: str) -> Iterator[tuple[str, str]]:
    spec = _resolve(spec, root)
    if isinstance(value, str):
        text_spec = _text_spec(spec, root)
        for kind in find(value, checks_for(text_spec)):
            yield path, kind
    elif isinstance(value, Mapping):
        props = spec.get("properties", {})
        extra = spec.get("additionalProperties")  # a map of free keys (provenance.fields) is checked too
        for name, item in value.items():
            if name in props:
                yield from _walk(item, props[name], root, f"{path}.{name}" if path else str(name))
            elif isinstance(extra, Mapping):
                yield from _walk(item, extra, root, f"{path}.{name}" if path else str(name))
    elif isinstance(value, list) and isinstance(spec.get("items"), Mapping):
        for i, item in enumerate(value):
            yield from _walk(item, spec["items"], root, f"{path}[{i}]")


def document_problems(doc: Any, schema: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field path, kind) for every personal datum in a document's text fields, by its schema's classes."""
    return list(_walk(doc, schema, schema, ""))
