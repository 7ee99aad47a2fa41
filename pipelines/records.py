"""The records the pipeline writes and reads back, one definition each: a batch's ``Manifest`` (with its
``Output`` files, its ``Leaves`` and its ``QuarantineFile``), a ``QuarantineRow``, and ``BatchTotals``.

Each is a frozen dataclass with ``to_dict``/``from_dict`` (the JSON-shaped value) and ``to_json``/
``from_json`` (text). A manifest's bytes are hashed into the transparency log, so ``Manifest.to_json``
writes exactly what the publisher always wrote (``json.dumps(..., indent=2, sort_keys=True)``), and
``from_dict`` accepts only what ``to_dict`` can give back unchanged: every member present with its
type, nothing unknown, the optional members (``kind``, ``leaf_format``) absent rather than null.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pipelines.errors import SensorlogError


class RecordError(SensorlogError, ValueError):
    """A record that is not one the pipeline writes: not JSON, a member missing, unknown or mistyped."""


class ManifestError(RecordError):
    """A manifest that is not one the publisher writes."""


def _dump(value: object) -> str:
    # The manifest's on-disk form since the first version; the log hashes the parsed value (RFC 8785),
    # and the file's bytes are what the site serves, so both stay exactly this.
    return json.dumps(value, indent=2, sort_keys=True)


def _load(text: str | bytes, where: str, error: type[RecordError]) -> object:
    try:
        return json.loads(text)
    except ValueError as err:  # UnicodeDecodeError is a ValueError
        raise error(f"{where}: not JSON ({err})") from err


class _Members:
    """Typed access to the members of one JSON object, each problem an ``error`` naming it."""

    def __init__(self, value: object, where: str, required: tuple[str, ...], optional: tuple[str, ...] = (),
                 error: type[RecordError] = RecordError):
        self.error = error
        if not isinstance(value, dict):
            raise error(f"{where}: expected a JSON object, got {type(value).__name__}")
        missing = [k for k in required if k not in value]
        unknown = sorted(k for k in value if k not in required and k not in optional)
        if missing:
            raise error(f"{where}: missing member(s) {', '.join(missing)}")
        if unknown:
            raise error(f"{where}: unknown member(s) {', '.join(unknown)}")
        self.value, self.where = value, where

    def has(self, key: str) -> bool:
        return key in self.value

    def _bad(self, key: str, expected: str) -> RecordError:
        return self.error(f"{self.where}: member {key!r} must be {expected}, got {self.value[key]!r}")

    def integer(self, key: str) -> int:
        got = self.value[key]
        if type(got) is not int:  # not a bool, not a float: to_dict gives back what was read
            raise self._bad(key, "an integer")
        return got

    def text(self, key: str) -> str:
        got = self.value[key]
        if not isinstance(got, str):
            raise self._bad(key, "a string")
        return got

    def text_or_none(self, key: str) -> str | None:
        return None if self.value[key] is None else self.text(key)

    def integer_or_none(self, key: str) -> int | None:
        return None if self.value[key] is None else self.integer(key)

    def items(self, key: str) -> list[Any]:
        got = self.value[key]
        if not isinstance(got, list):
            raise self._bad(key, "a list")
        return got


# -- manifest ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Output:
    """One published partition file of a batch: a (table, day) of its rows and the leaves they take."""

    table: str
    event_date: str
    path: str  # relative to the published root
    rows: int
    sha256: str
    first_leaf: int

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "event_date": self.event_date, "path": self.path, "rows": self.rows,
                "sha256": self.sha256, "first_leaf": self.first_leaf}

    @classmethod
    def from_dict(cls, value: object, where: str = "output") -> Output:
        m = _Members(value, where, ("table", "event_date", "path", "rows", "sha256", "first_leaf"),
                     error=ManifestError)
        return cls(m.text("table"), m.text("event_date"), m.text("path"), m.integer("rows"), m.text("sha256"),
                   m.integer("first_leaf"))

    def to_json(self) -> str:
        return _dump(self.to_dict())

    @classmethod
    def from_json(cls, text: str | bytes, where: str = "output") -> Output:
        return cls.from_dict(_load(text, where, ManifestError), where)


@dataclass(frozen=True)
class Leaves:
    """A batch's leaf range: its rows take ``[first, rows_end)``, its manifest the leaf ``manifest_leaf``."""

    first: int
    rows_end: int
    manifest_leaf: int

    def to_dict(self) -> dict[str, Any]:
        return {"first": self.first, "rows_end": self.rows_end, "manifest_leaf": self.manifest_leaf}

    @classmethod
    def from_dict(cls, value: object, where: str = "leaves") -> Leaves:
        m = _Members(value, where, ("first", "rows_end", "manifest_leaf"), error=ManifestError)
        return cls(m.integer("first"), m.integer("rows_end"), m.integer("manifest_leaf"))


@dataclass(frozen=True)
class QuarantineFile:
    """A batch's quarantine file: ``rows`` counts the event rows in it (a whole-file error is an entry
    but no event row)."""

    rows: int
    path: str  # relative to the quarantine root
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "path": self.path, "sha256": self.sha256}

    @classmethod
    def from_dict(cls, value: object, where: str = "quarantine") -> QuarantineFile:
        m = _Members(value, where, ("rows", "path", "sha256"), error=ManifestError)
        return cls(m.integer("rows"), m.text("path"), m.text("sha256"))


_MANIFEST_REQUIRED = (
    "batch_id", "source_file", "source_sha256", "source_bytes", "validated_at", "rows_in", "published",
    "quarantined", "duplicates", "file_error", "quarantine", "outputs", "leaves",
)


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """A batch's manifest, its commit point. The fields are in the order the publisher always built them;
    ``kind`` is set only on a declaration batch, ``leaf_format`` only when the leaf holds the digest
    of the outputs (``pipelines.tlog.leaf.fit_manifest_leaf``); unset, they are absent from the JSON."""

    batch_id: str
    kind: str | None = None
    source_file: str
    source_sha256: str
    source_bytes: int
    validated_at: str
    rows_in: int
    published: int
    quarantined: int
    duplicates: int
    file_error: str | None
    quarantine: QuarantineFile | None
    outputs: tuple[Output, ...]
    leaves: Leaves
    leaf_format: int | None = None
    # What validation found (``pipelines.quality.summary``), set on event batches validated since it was
    # recorded: {table: {"rows": n, "failed": {reason: n}}}; and where the stored Great Expectations
    # results and their Data Docs pages are, relative to the operator's quality folder. Unset, absent.
    validation: dict[str, Any] | None = None
    validation_results: tuple[dict[str, str], ...] | None = None
    # A correction's manifest (``pipelines.ingest.corrections``): the batches it replaces. The superseded
    # rows stay in the log; this later leaf is what marks them superseded. Unset, absent.
    supersedes: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-shaped manifest, with the members in the order the publisher built them."""
        out: dict[str, Any] = {"batch_id": self.batch_id}
        if self.kind is not None:
            out["kind"] = self.kind
        out.update(
            source_file=self.source_file,
            source_sha256=self.source_sha256,
            source_bytes=self.source_bytes,
            validated_at=self.validated_at,
            rows_in=self.rows_in,
            published=self.published,
            quarantined=self.quarantined,
            duplicates=self.duplicates,
            file_error=self.file_error,
            quarantine=None if self.quarantine is None else self.quarantine.to_dict(),
            outputs=[o.to_dict() for o in self.outputs],
            leaves=self.leaves.to_dict(),
        )
        if self.leaf_format is not None:
            out["leaf_format"] = self.leaf_format
        if self.validation is not None:
            out["validation"] = self.validation
        if self.validation_results is not None:
            out["validation_results"] = [dict(r) for r in self.validation_results]
        if self.supersedes is not None:
            out["supersedes"] = list(self.supersedes)
        return out

    @classmethod
    def from_dict(cls, value: object, where: str = "manifest") -> Manifest:
        m = _Members(value, where, _MANIFEST_REQUIRED,
                     ("kind", "leaf_format", "validation", "validation_results", "supersedes"), ManifestError)
        quarantine = m.value["quarantine"]
        return cls(
            batch_id=m.text("batch_id"),
            kind=m.text("kind") if m.has("kind") else None,
            source_file=m.text("source_file"),
            source_sha256=m.text("source_sha256"),
            source_bytes=m.integer("source_bytes"),
            validated_at=m.text("validated_at"),
            rows_in=m.integer("rows_in"),
            published=m.integer("published"),
            quarantined=m.integer("quarantined"),
            duplicates=m.integer("duplicates"),
            file_error=m.text_or_none("file_error"),
            quarantine=None if quarantine is None else QuarantineFile.from_dict(quarantine, f"{where}: quarantine"),
            outputs=tuple(Output.from_dict(o, f"{where}: outputs[{i}]") for i, o in enumerate(m.items("outputs"))),
            leaves=Leaves.from_dict(m.value["leaves"], f"{where}: leaves"),
            leaf_format=m.integer("leaf_format") if m.has("leaf_format") else None,
            validation=_validation(m.value["validation"], f"{where}: validation") if m.has("validation") else None,
            validation_results=tuple(
                _validation_result(r, f"{where}: validation_results[{i}]")
                for i, r in enumerate(m.items("validation_results"))
            ) if m.has("validation_results") else None,
            supersedes=(
                tuple(_batch_ids(m.items("supersedes"), f"{where}: supersedes")) if m.has("supersedes") else None
            ),
        )

    def to_json(self) -> str:
        """The manifest file's text, as the publisher writes it."""
        return _dump(self.to_dict())

    @classmethod
    def from_json(cls, text: str | bytes, where: str = "manifest") -> Manifest:
        """A manifest file's text, checked; ``where`` (the file's name) prefixes every error message."""
        return cls.from_dict(_load(text, where, ManifestError), where)


def _batch_ids(values: list[object], where: str) -> list[str]:
    """A list of batch ids (64 lower-case hex digits each, at least one)."""
    if not values or not all(isinstance(v, str) and len(v) == 64 and set(v) <= set("0123456789abcdef") for v in values):
        raise ManifestError(f"{where}: expected a non-empty list of batch ids (64 lower-case hex digits each)")
    return [str(v) for v in values]


def _validation(value: object, where: str) -> dict[str, Any]:
    """A manifest's ``validation`` member: {table: {"rows": n, "failed": {reason: n}}}, integers only."""
    if not isinstance(value, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(value).__name__}")
    for table, entry in value.items():
        m = _Members(entry, f"{where}: {table}", ("rows", "failed"), error=ManifestError)
        m.integer("rows")
        failed = m.value["failed"]
        if not isinstance(failed, dict) or any(type(n) is not int for n in failed.values()):
            raise ManifestError(f"{where}: {table}: member 'failed' must map each reason to an integer")
    return value


def _validation_result(value: object, where: str) -> dict[str, str]:
    m = _Members(value, where, ("table", "result", "docs"), error=ManifestError)
    return {key: m.text(key) for key in ("table", "result", "docs")}


# -- quarantine --------------------------------------------------------------------------------


_QUARANTINE_ROW = ("batch_id", "source_file", "line", "event_type", "source", "event_id", "deployment_id",
                   "reasons", "raw")


@dataclass(frozen=True)
class QuarantineRow:
    """One row of a batch's quarantine file (``pipelines.schemas.QUARANTINE_SCHEMA``, same order): a
    line or event that was not published, with why. A whole-file error has only ``line`` and ``reasons``."""

    batch_id: str
    source_file: str
    line: int | None
    event_type: str | None
    source: str | None
    event_id: str | None
    deployment_id: str | None
    reasons: tuple[str, ...]
    raw: str | None

    @classmethod
    def of(cls, batch_id: str, source_file: str, row: Mapping[str, Any]) -> QuarantineRow:
        """A rejected row as the parser and validation give it (every member but the batch's two); a
        member it leaves out is null, as it always was in the quarantine table."""
        return cls(batch_id, source_file, row.get("line"), row.get("event_type"), row.get("source"),
                   row.get("event_id"), row.get("deployment_id"), tuple(row["reasons"]), row.get("raw"))

    def to_dict(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "source_file": self.source_file, "line": self.line,
                "event_type": self.event_type, "source": self.source, "event_id": self.event_id,
                "deployment_id": self.deployment_id, "reasons": list(self.reasons), "raw": self.raw}

    @classmethod
    def from_dict(cls, value: object, where: str = "quarantine row") -> QuarantineRow:
        m = _Members(value, where, _QUARANTINE_ROW)
        reasons = m.items("reasons")
        if not all(isinstance(r, str) for r in reasons):
            raise RecordError(f"{where}: member 'reasons' must be a list of strings, got {reasons!r}")
        return cls(m.text("batch_id"), m.text("source_file"), m.integer_or_none("line"), m.text_or_none("event_type"),
                   m.text_or_none("source"), m.text_or_none("event_id"), m.text_or_none("deployment_id"),
                   tuple(reasons), m.text_or_none("raw"))

    def to_json(self) -> str:
        return _dump(self.to_dict())

    @classmethod
    def from_json(cls, text: str | bytes, where: str = "quarantine row") -> QuarantineRow:
        return cls.from_dict(_load(text, where, RecordError), where)


# -- totals ------------------------------------------------------------------------------------


_TOTALS = ("batches", "rows_in", "published", "quarantined", "duplicates", "file_errors")


@dataclass(frozen=True)
class BatchTotals:
    """Conservation over event batches (``rows_in`` = ``published`` + ``quarantined`` + ``duplicates``
    for each), and how many of them were a file quarantined whole: what a run reports
    (``flow.commit_batches``) and what the manifests add up to (``summary.manifest_totals``)."""

    batches: int = 0
    rows_in: int = 0
    published: int = 0
    quarantined: int = 0
    duplicates: int = 0
    file_errors: int = 0

    def plus(self, manifest: Manifest) -> BatchTotals:
        """These totals with one more event batch counted."""
        return replace(
            self,
            batches=self.batches + 1,
            rows_in=self.rows_in + manifest.rows_in,
            published=self.published + manifest.published,
            quarantined=self.quarantined + manifest.quarantined,
            duplicates=self.duplicates + manifest.duplicates,
            file_errors=self.file_errors + (1 if manifest.file_error else 0),
        )

    def to_dict(self) -> dict[str, int]:
        return {"batches": self.batches, "rows_in": self.rows_in, "published": self.published,
                "quarantined": self.quarantined, "duplicates": self.duplicates, "file_errors": self.file_errors}

    @classmethod
    def from_dict(cls, value: object, where: str = "totals") -> BatchTotals:
        m = _Members(value, where, _TOTALS)
        return cls(*(m.integer(k) for k in _TOTALS))

    def to_json(self) -> str:
        return _dump(self.to_dict())

    @classmethod
    def from_json(cls, text: str | bytes, where: str = "totals") -> BatchTotals:
        return cls.from_dict(_load(text, where, RecordError), where)


# -- compaction --------------------------------------------------------------------------------


class CompactionError(RecordError):
    """A compaction record that is not one ``pipelines.publish.compact`` writes."""


@dataclass(frozen=True)
class CompactedPart:
    """One manifest output whose rows a compacted file now holds, exactly as its manifest lists it."""

    batch_id: str
    path: str  # the output's path in its manifest (gone from the partitions), relative to the published root
    rows: int
    sha256: str
    first_leaf: int

    def to_dict(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "path": self.path, "rows": self.rows, "sha256": self.sha256,
                "first_leaf": self.first_leaf}

    @classmethod
    def from_dict(cls, value: object, where: str = "part") -> CompactedPart:
        m = _Members(value, where, ("batch_id", "path", "rows", "sha256", "first_leaf"), error=CompactionError)
        return cls(m.text("batch_id"), m.text("path"), m.integer("rows"), m.text("sha256"), m.integer("first_leaf"))


@dataclass(frozen=True)
class ReplacedFile:
    """A file one compaction removed from the partitions: a batch's output or an earlier compacted file."""

    path: str
    sha256: str
    rows: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "rows": self.rows}

    @classmethod
    def from_dict(cls, value: object, where: str = "replaced") -> ReplacedFile:
        m = _Members(value, where, ("path", "sha256", "rows"), error=CompactionError)
        return cls(m.text("path"), m.text("sha256"), m.integer("rows"))


@dataclass(frozen=True)
class Compaction:
    """A compacted file and what it replaced. Its rows are the ``parts``' rows, part after part, in leaf
    order (``parts`` sorted by ``first_leaf``), so the part at offset ``k`` is rows ``[k, k + rows)``."""

    table: str
    event_date: str
    path: str  # the compacted file, relative to the published root
    rows: int
    sha256: str
    parts: tuple[CompactedPart, ...]
    replaced: tuple[ReplacedFile, ...]

    def offsets(self) -> list[tuple[int, CompactedPart]]:
        """``(row offset in the file, part)`` for every part."""
        out, at = [], 0
        for part in self.parts:
            out.append((at, part))
            at += part.rows
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "compaction", "table": self.table, "event_date": self.event_date, "path": self.path,
                "rows": self.rows, "sha256": self.sha256, "parts": [p.to_dict() for p in self.parts],
                "replaced": [r.to_dict() for r in self.replaced]}

    @classmethod
    def from_dict(cls, value: object, where: str = "compaction") -> Compaction:
        m = _Members(value, where, ("kind", "table", "event_date", "path", "rows", "sha256", "parts", "replaced"),
                     error=CompactionError)
        if m.text("kind") != "compaction":
            raise CompactionError(f"{where}: member 'kind' must be 'compaction', got {m.value['kind']!r}")
        parts = tuple(CompactedPart.from_dict(p, f"{where}: parts[{i}]") for i, p in enumerate(m.items("parts")))
        replaced = tuple(ReplacedFile.from_dict(r, f"{where}: replaced[{i}]")
                         for i, r in enumerate(m.items("replaced")))
        record = cls(m.text("table"), m.text("event_date"), m.text("path"), m.integer("rows"), m.text("sha256"),
                     parts, replaced)
        record.check(where)
        return record

    def check(self, where: str) -> None:
        """What every record holds: parts in leaf order, not overlapping, adding up to the file's rows."""
        if not self.parts:
            raise CompactionError(f"{where}: lists no parts")
        ends = [p.first_leaf + p.rows for p in self.parts[:-1]]
        if any(p.rows <= 0 for p in self.parts) or any(e > p.first_leaf
                                                       for e, p in zip(ends, self.parts[1:], strict=True)):
            raise CompactionError(f"{where}: parts are not in leaf order without overlaps")
        if sum(p.rows for p in self.parts) != self.rows:
            raise CompactionError(f"{where}: parts hold {sum(p.rows for p in self.parts)} rows, the file {self.rows}")

    def to_json(self) -> str:
        return _dump(self.to_dict())

    @classmethod
    def from_json(cls, text: str | bytes, where: str = "compaction") -> Compaction:
        return cls.from_dict(_load(text, where, CompactionError), where)
