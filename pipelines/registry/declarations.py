"""What the city declared, as leaves of the log: one leaf per version of each deployment record.

The registry folder is the publisher's *input*. Before any event batch, the publisher compares each
deployment record, as validated, with the last version the log holds for it, and logs one
``declaration`` row per new or changed deployment (``log_registry``). The first publish logs the
whole registry. A row holds the record's canonical text (RFC 8785 of the parsed YAML, so comments
and formatting are not a change), its SHA-256, when it was logged, the zone its dates are in, and a
link to the version it replaces. Rows are published like event rows
(``event_type=declaration/event_date=<UTC day>/<batch>.parquet``) under a manifest of their own, so
``sensorlog verify`` recomputes their leaves like any other row.

The audit judges against the log, not the folder (``load_declared``): on a local day ``d``, a
deployment is judged by the latest version logged on or before ``d`` (local days, the city's zone),
and before its first logged version by that first version. A version that changes the policy (its
retention or access terms) in force on days *before* the day it was logged is a retroactive change:
it never replaces the earlier version for those days, and the audit reports it as
``retroactive_policy_change`` with both versions as evidence (``retroactive_changes``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import rfc8785

from pipelines import storage
from pipelines.errors import SensorlogError
from pipelines.registry import Deployment, PolicyVersion, Problem, Registry, check_deployment, from_checked, local_day
from pipelines.schemas import DECLARATION_TABLE
from pipelines.tlog import leaf

TABLE = DECLARATION_TABLE
SOURCE = "sensorlog:registry"  # the ``source`` of every declaration row (its event id is ``<deployment>@<n>``)
FIRST, AMENDED, RETROACTIVE = "first", "amended", "retroactive"
# Before its first version a deployment is judged by that first version; valid_to is exclusive.
BEFORE_TIME = date(1, 1, 1)
END_OF_TIME = date(9999, 12, 31)
_TS = pa.timestamp("us", tz="UTC")

ROW_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("event_time", _TS, nullable=False),  # when the version was logged
        pa.field("deployment_id", pa.string(), nullable=False),
        pa.field("sequence", pa.int64(), nullable=False),  # 1 for a deployment's first version
        pa.field("policy_version", pa.int64(), nullable=False),  # the record's current policy
        pa.field("effective_from", pa.string(), nullable=False),  # ... and the day it is in force from
        pa.field("timezone", pa.string(), nullable=False),  # the zone the record's dates are in
        pa.field("record", pa.string(), nullable=False),  # RFC 8785 of the validated record
        pa.field("record_sha256", pa.string(), nullable=False),
        pa.field("previous_sha256", pa.string()),
        pa.field("previous_leaf", pa.int64()),
        pa.field("change", pa.string(), nullable=False),  # first, amended or retroactive
        pa.field("changed_fields", pa.string(), nullable=False),  # top-level fields, comma-separated
    ]
)
PUBLISHED_SCHEMA = pa.schema(
    [
        *ROW_SCHEMA,
        pa.field("batch_id", pa.string(), nullable=False),
        pa.field("leaf_index", pa.int64(), nullable=False),
        pa.field("leaf_hash", pa.string(), nullable=False),
    ]
)


class DeclarationError(SensorlogError, ValueError):
    """A logged declaration that cannot be read back as a valid deployment record."""


def canonical_record(deployment: Deployment) -> bytes:
    """RFC 8785 of the deployment's validated document (its YAML as parsed, dates as text)."""
    return rfc8785.dumps(dict(deployment.raw))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Declaration:
    """One logged version of a deployment record."""

    deployment: Deployment
    declared_at: datetime | None  # None: from the registry folder, never logged
    sequence: int
    record_sha256: str
    leaf_index: int | None = None
    change: str = FIRST

    @property
    def event_id(self) -> str:
        return f"{self.deployment.id}@{self.sequence}"

    @property
    def declared_day(self) -> date:
        """The local day it was logged (a version from the folder counts from the beginning of time)."""
        if self.declared_at is None:
            return BEFORE_TIME
        return local_day(self.declared_at, self.deployment.timezone)


@dataclass(frozen=True)
class Retroactive:
    """A version that changed the policy in force on days before it was logged."""

    previous: Declaration
    current: Declaration
    first_day: date  # the first and last local day whose terms it rewrote
    last_day: date

    @property
    def deployment_id(self) -> str:
        return self.current.deployment.id


def _terms(policy: PolicyVersion) -> tuple[frozenset, frozenset]:
    # What the audit judges by; a version number or note alone changes no finding.
    return frozenset(policy.retention), frozenset(policy.access)


def retroactive_span(previous: Deployment, current: Deployment, declared_day: date) -> tuple[date, date] | None:
    """The first and last local day before ``declared_day`` on which ``current`` puts other retention
    or access terms in force than ``previous`` did, or None when it changes no past day.

    Both policies are constant between effective dates, so comparing at each boundary is exact. Days
    before either version's commissioning date are not compared (nothing was judged then)."""
    floor = min(previous.commissioned, current.commissioned)
    marks = {v.effective_from for v in (*previous.policy_versions, *current.policy_versions)}
    bounds = sorted(b for b in {floor, *marks} if floor <= b < declared_day)
    first = last = None
    for i, start in enumerate(bounds):
        end = bounds[i + 1] if i + 1 < len(bounds) else declared_day
        if _terms(previous.policy_at(start)) != _terms(current.policy_at(start)):
            first = first or start
            last = end - timedelta(days=1)
    return (first, last) if first is not None and last is not None else None


@dataclass(frozen=True)
class Declared:
    """The declarations the audit judges by: every version of every deployment, in log order."""

    histories: Mapping[str, tuple[Declaration, ...]]
    logged: bool  # False: read from the registry folder (nothing was logged)

    @classmethod
    def from_registry(cls, registry: Registry) -> Declared:
        return cls({d.id: (Declaration(d, None, 1, _sha256(canonical_record(d))),) for d in registry}, False)

    @property
    def registry(self) -> Registry:
        """The latest version of each deployment."""
        return Registry({i: versions[-1].deployment for i, versions in self.histories.items()})

    def _starts(self, deployment_id: str) -> list[date]:
        # Version k judges from the day it was logged; never before an earlier version's start.
        starts, floor = [], BEFORE_TIME
        for k, version in enumerate(self.histories[deployment_id]):
            floor = BEFORE_TIME if k == 0 else max(floor, version.declared_day)
            starts.append(floor)
        return starts

    def segments(self, deployment_id: str) -> list[tuple[PolicyVersion, date, date]]:
        """(policy, first local day, day after the last) for each stretch of days judged by one policy."""
        return [(policy, lo, hi) for _, policy, lo, hi in self.declared_segments(deployment_id)]

    def declared_segments(self, deployment_id: str) -> list[tuple[Declaration, PolicyVersion, date, date]]:
        """``segments``, each with the declaration (logged version) its policy was read from."""
        versions, starts = self.histories[deployment_id], self._starts(deployment_id)
        out = []
        for k, version in enumerate(versions):
            window = (starts[k], starts[k + 1] if k + 1 < len(versions) else END_OF_TIME)
            policies = version.deployment.policy_versions
            for n, policy in enumerate(policies):
                valid_from = BEFORE_TIME if n == 0 else policy.effective_from
                valid_to = policies[n + 1].effective_from if n + 1 < len(policies) else END_OF_TIME
                lo, hi = max(valid_from, window[0]), min(valid_to, window[1])
                if lo < hi:
                    out.append((version, policy, lo, hi))
        return out

    def policy_at(self, deployment_id: str, day: date) -> PolicyVersion:
        """The policy a deployment is judged by on a local day."""
        versions, starts = self.histories[deployment_id], self._starts(deployment_id)
        k = max(i for i, start in enumerate(starts) if start <= day or i == 0)
        return versions[k].deployment.policy_at(day)

    def latest_time(self) -> list[datetime]:
        """When the newest logged version was logged (empty when none was)."""
        times = [v.declared_at for vs in self.histories.values() for v in vs if v.declared_at is not None]
        return [max(times)] if times else []

    def retroactive_changes(self) -> list[Retroactive]:
        """Every logged version that rewrote the terms of days before it was logged."""
        found = []
        for versions in self.histories.values():
            for previous, current in zip(versions, versions[1:], strict=False):
                if current.declared_at is None:
                    continue
                span = retroactive_span(previous.deployment, current.deployment, current.declared_day)
                if span:
                    found.append(Retroactive(previous, current, *span))
        return found


# -- reading what the log holds ------------------------------------------------------------------


def _files(published: str) -> list[str]:
    return storage.list_files(storage.join(published, f"event_type={TABLE}"), (".parquet",))


def read_rows(published: str, limit: int | None = None) -> list[dict[str, Any]]:
    """The published declaration rows with ``leaf_index < limit`` (all with None), in leaf order."""
    rows: list[dict[str, Any]] = []
    for uri in _files(published):
        table = pq.read_table(pa.BufferReader(storage.read_bytes(uri)))
        rows.extend(r for r in table.to_pylist() if limit is None or r["leaf_index"] < limit)
    return sorted(rows, key=lambda r: r["leaf_index"])


def _from_row(row: Mapping[str, Any]) -> Declaration:
    where = f"declaration leaf {row.get('leaf_index')} ({row.get('event_id')})"
    text = str(row["record"]).encode()
    if _sha256(text) != row["record_sha256"]:
        raise DeclarationError(f"{where}: its record does not hash to its record_sha256")
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise DeclarationError(f"{where}: its record is not JSON ({exc})") from exc
    problems: list[Problem] = check_deployment(doc, where, str(row["deployment_id"]))
    if problems:
        raise DeclarationError("; ".join(str(p) for p in problems[:5]))
    deployment = from_checked(doc, where, str(row["timezone"]))
    if row["event_id"] != f"{deployment.id}@{row['sequence']}":
        raise DeclarationError(f"{where}: a declaration's id is <deployment>@<sequence>")
    declared_at = row["event_time"]
    return Declaration(
        deployment,
        declared_at.astimezone(UTC) if declared_at.tzinfo else declared_at.replace(tzinfo=UTC),
        int(row["sequence"]),
        str(row["record_sha256"]),
        int(row["leaf_index"]),
        str(row["change"]),
    )


def declared_from_rows(rows: Iterable[Mapping[str, Any]]) -> Declared:
    """Histories from published rows (in leaf order); DeclarationError names a row that is not sound.

    A row counts as logged no earlier than any row before it in the log: the publisher's clock set
    back cannot date a new version before versions already logged, hence cannot hide how far back
    it reaches."""
    histories: dict[str, list[Declaration]] = {}
    latest: datetime | None = None
    for row in rows:
        declaration = _from_row(row)
        assert declaration.declared_at is not None
        if latest is not None and declaration.declared_at < latest:
            declaration = replace(declaration, declared_at=latest)
        latest = declaration.declared_at
        versions = histories.setdefault(declaration.deployment.id, [])
        if declaration.sequence != len(versions) + 1:
            raise DeclarationError(
                f"declaration leaf {declaration.leaf_index}: {declaration.event_id} follows"
                f" {len(versions)} earlier version(s) of {declaration.deployment.id}"
            )
        versions.append(declaration)
    return Declared({i: tuple(v) for i, v in sorted(histories.items())}, True)


def load_declared(published: str, limit: int | None = None) -> Declared | None:
    """What the log declares (leaves below ``limit``), or None when it holds no declaration."""
    rows = read_rows(published, limit)
    return declared_from_rows(rows) if rows else None


def timezone_of(rows: Iterable[Mapping[str, Any]]) -> str | None:
    """The zone the logged records are dated in (the latest row's)."""
    zones = [str(r["timezone"]) for r in rows]
    return zones[-1] if zones else None


# -- what to log next ----------------------------------------------------------------------------


def _changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    return ",".join(sorted(k for k in {*before, *after} if before.get(k) != after.get(k)))


def next_rows(registry: Registry, declared: Declared | None, now: datetime) -> list[dict[str, Any]]:
    """One row per deployment whose validated record differs from the latest logged version (every
    deployment when nothing is logged), in id order; ``leaf_index`` of previous versions is linked."""
    latest = {i: v[-1] for i, v in (declared.histories.items() if declared else ())}
    rows = []
    for deployment in registry:
        record = canonical_record(deployment)
        digest = _sha256(record)
        before = latest.get(deployment.id)
        if before is not None and before.record_sha256 == digest and before.deployment.timezone == deployment.timezone:
            continue
        change, fields = FIRST, ""
        if before is not None:
            span = retroactive_span(before.deployment, deployment, local_day(now, deployment.timezone))
            change = RETROACTIVE if span else AMENDED
            fields = _changed_fields(before.deployment.raw, deployment.raw)
            if before.deployment.timezone != deployment.timezone:
                fields = ",".join(filter(None, [fields, "timezone"]))
        current = deployment.current_policy
        rows.append(
            {
                "source": SOURCE,
                "event_id": f"{deployment.id}@{before.sequence + 1 if before else 1}",
                "event_time": now.astimezone(UTC),
                "deployment_id": deployment.id,
                "sequence": before.sequence + 1 if before else 1,
                "policy_version": current.version,
                "effective_from": current.effective_from.isoformat(),
                "timezone": deployment.timezone,
                "record": record.decode(),
                "record_sha256": digest,
                "previous_sha256": before.record_sha256 if before else None,
                "previous_leaf": before.leaf_index if before else None,
                "change": change,
                "changed_fields": fields,
            }
        )
    return rows


def batch_id_of(rows: list[dict[str, Any]]) -> str:
    """A declaration batch's id: SHA-256 of its rows' leaf bytes, one per line (never a landed file's
    hash, since no landed file is a sequence of declaration leaves)."""
    encoded = leaf.table_leaf_bytes(TABLE, pa.Table.from_pylist(rows, schema=ROW_SCHEMA))
    return _sha256(b"\n".join(encoded))
