"""What the audit produces and the knobs it takes: options, severities, output schemas, the result.

Severity of each finding kind (one fixed mapping, so a ``--fail-on`` gate means the same thing
everywhere):

=================================  ==========  ===================================================
kind                               severity    why
=================================  ==========  ===================================================
undeclared_access                  critical    data reached someone the policy does not name
retention_declared_none_but_kept   critical    data the public was told is never stored was kept
retained_past_policy               high        records are still held after their deletion date
undeclared_data_class              high        a kind of data no declaration covers is collected
collecting_after_decommission      high        a device the registry says is gone still collects
retroactive_policy_change          high        a declaration rewrote the terms of days already past
late_deletion                      medium      deleted, but later than declared (plus grace)
silent_deployment                  medium      an active device stopped reporting: the log has a hole
access_unverifiable                medium      access by an organisation the policy does not name, while
                                               it grants access to organisations it only counts
retention_unclear                  medium      retention was declared in words that state no period:
                                               no deletion can be judged on time or late
vendor_declaration_changed         medium      a vendor portal now declares other terms than at its last read
undeclared_relocation              medium      the log says the device moved on a day the registry declares no
                                               move: the location the public is shown may be wrong
deleted_without_collection         low         bookkeeping: a deletion of data the log never saw
indefinite_retention               info        declared and lawful, but worth a resident's attention
=================================  ==========  ===================================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from pipelines.clock import current_time, parse_as_of

SEVERITIES = ("info", "low", "medium", "high", "critical")
SEVERITY_OF_KIND = {
    "undeclared_access": "critical",
    "retention_declared_none_but_kept": "critical",
    "retained_past_policy": "high",
    "undeclared_data_class": "high",
    "collecting_after_decommission": "high",
    "retroactive_policy_change": "high",
    "late_deletion": "medium",
    "silent_deployment": "medium",
    "access_unverifiable": "medium",
    "retention_unclear": "medium",
    "vendor_declaration_changed": "medium",
    "undeclared_relocation": "medium",
    "deleted_without_collection": "low",
    "indefinite_retention": "info",
}
FINDING_KINDS = tuple(SEVERITY_OF_KIND)
LEDGER_STATUSES = ("ok", "due_soon", "overdue", "no_policy", "unknown")

DEFAULT_GRACE = timedelta(days=1)
DEFAULT_SILENCE_DAYS = 7
# A ledger day is "due_soon" when something retained falls due within this long after the day ends.
DUE_SOON = timedelta(days=1)
# Evidence lists are capped so one stuck purge job cannot make findings.json unbounded; the full
# count is kept in the finding's numbers as ``evidence_total``.
MAX_EVIDENCE = 100

TIMESTAMP = pa.timestamp("us", tz="UTC")
EVIDENCE_TYPE = pa.list_(pa.struct([pa.field("source", pa.string()), pa.field("id", pa.string())]))

LEDGER_SCHEMA = pa.schema(
    [
        pa.field("deployment_id", pa.string(), nullable=False),
        pa.field("data_class", pa.string(), nullable=False),
        pa.field("day", pa.date32(), nullable=False),  # local calendar day
        pa.field("policy_version", pa.int64()),
        pa.field("declared_period", pa.string()),  # ISO 8601 duration, "none", "indefinite"; null: undeclared
        pa.field("collected", pa.int64(), nullable=False),
        pa.field("deleted", pa.int64(), nullable=False),  # collected records whose deletion completed that day
        pa.field("deleted_reported", pa.int64(), nullable=False),  # what deletion events of that day claim
        pa.field("retained", pa.int64(), nullable=False),  # at the end of the day
        pa.field("oldest_retained_start", TIMESTAMP),
        pa.field("oldest_retained_age_days", pa.float64()),
        pa.field("oldest_due", TIMESTAMP),
        pa.field("next_due", TIMESTAMP),
        pa.field("status", pa.string(), nullable=False),
    ]
)

FINDINGS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),
        pa.field("severity", pa.string(), nullable=False),
        pa.field("deployment_id", pa.string(), nullable=False),
        pa.field("data_class", pa.string()),
        pa.field("period_start", TIMESTAMP, nullable=False),
        pa.field("period_end", TIMESTAMP, nullable=False),
        pa.field("policy_version", pa.int64()),
        pa.field("numbers", pa.string(), nullable=False),  # a JSON object
        pa.field("evidence", EVIDENCE_TYPE, nullable=False),
    ]
)

LATENESS_SCHEMA = pa.schema(
    [
        pa.field("deployment_id", pa.string(), nullable=False),
        pa.field("deletions", pa.int64(), nullable=False),  # local days whose deletion was observed
        pa.field("late", pa.int64(), nullable=False),  # of those, later than due + grace
        pa.field("p50_days", pa.float64()),
        pa.field("p95_days", pa.float64()),
        pa.field("max_days", pa.float64()),
    ]
)


def severity_rank(severity: str) -> int:
    """Position in ``SEVERITIES`` (info = 0); ValueError for an unknown word."""
    try:
        return SEVERITIES.index(severity.lower())
    except ValueError:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}") from None


@dataclass(frozen=True)
class AuditOptions:
    """``as_of`` None means today: local midnight at the start of the current date in the city's time
    zone (``default_as_of``), by the clock ``now`` (None: ``current_time()``, i.e. ``SENSORLOG_NOW`` or
    the system clock). Never the newest event: a log whose feeds stopped must still age."""

    as_of: datetime | None = None
    deployment: str | None = None
    grace: timedelta = DEFAULT_GRACE
    silence_days: int = DEFAULT_SILENCE_DAYS
    now: datetime | None = None


def local_day(moment: datetime, timezone: str) -> date:
    """The city's calendar date at ``moment``."""
    return moment.astimezone(ZoneInfo(timezone)).date()


def default_as_of(timezone: str, now: datetime | None = None) -> datetime:
    """``--as-of`` when none is given: the current date in the city's zone, i.e. its local midnight
    (the audit then covers every local day up to the end of yesterday)."""
    today = local_day(now if now is not None else current_time(timezone), timezone)
    moment = parse_as_of(today, timezone)
    assert moment is not None
    return moment


def iso(moment: datetime | None) -> str | None:
    """UTC, second precision (``2026-07-01T04:00:00Z``), microseconds only when there are some."""
    if moment is None:
        return None
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{moment.microsecond:06d}Z" if moment.microsecond else f"{text}Z"


@dataclass(frozen=True)
class AuditResult:
    """Everything one audit computed. Tables are Arrow, so writers and renderers never loop twice."""

    as_of: datetime
    until: datetime  # end of the last audited local day: the end of open-ended findings
    timezone: str
    options: AuditOptions
    ledger: pa.Table
    findings: pa.Table
    lateness: pa.Table
    checkpoint: dict[str, Any] | None = None
    # The newest event (collection, deletion or access, in scope) the audit counted, i.e. at or before
    # ``as_of``; and the newest event of any type in the checkpointed log, counted or not.
    newest_event: datetime | None = None
    newest_event_in_log: datetime | None = None
    # What the policies came from: "log" (the logged declarations) or "registry" (the folder, when
    # the log holds no declaration).
    declarations: str = "registry"

    @property
    def as_of_date(self) -> date:
        """The local date the audit is "as of" (for a local-midnight ``as_of``: the day it starts)."""
        return local_day(self.as_of, self.timezone)

    @property
    def as_of_source(self) -> str:
        """``"today"`` when ``as_of`` was the default (the clock's date), ``"given"`` otherwise."""
        return "given" if self.options.as_of is not None else "today"

    def stamp(self) -> dict[str, str | None]:
        """What every output states about when the audit judged: as-of moment and date, newest event."""
        return {
            "as_of": iso(self.as_of),
            "as_of_date": self.as_of_date.isoformat(),
            "as_of_source": self.as_of_source,
            "newest_event": iso(self.newest_event),
            "declarations": self.declarations,
        }

    def finding_dicts(self) -> list[dict[str, Any]]:
        """Findings as JSON-ready dicts (timestamps as ISO text, numbers parsed)."""
        out = []
        for row in self.findings.to_pylist():
            row["period_start"] = iso(row["period_start"])
            row["period_end"] = iso(row["period_end"])
            row["numbers"] = json.loads(row["numbers"])
            out.append(row)
        return out

    def counts(self) -> dict[str, dict[str, int]]:
        by_severity = {s: 0 for s in SEVERITIES}
        by_kind: dict[str, int] = {}
        for kind, severity in zip(
            self.findings.column("kind").to_pylist(), self.findings.column("severity").to_pylist(), strict=True
        ):
            by_severity[severity] += 1
            by_kind[kind] = by_kind.get(kind, 0) + 1
        return {"severity": by_severity, "kind": dict(sorted(by_kind.items()))}

    def at_or_above(self, severity: str) -> int:
        """How many findings have ``severity`` or worse."""
        floor = severity_rank(severity)
        return sum(1 for s in self.findings.column("severity").to_pylist() if severity_rank(s) >= floor)

    def document(self) -> dict[str, Any]:
        """The findings.json document."""
        lateness = self.lateness.to_pylist()
        return {
            **self.stamp(),
            "newest_event_in_log": iso(self.newest_event_in_log),
            "until": iso(self.until),
            "timezone": self.timezone,
            "deployment": self.options.deployment,
            "grace_days": self.options.grace / timedelta(days=1),
            "silence_days": self.options.silence_days,
            "severity_of_kind": SEVERITY_OF_KIND,
            "checkpoint": self.checkpoint,
            "counts": self.counts(),
            "lateness": lateness,
            "findings": self.finding_dicts(),
        }

    def to_json(self) -> str:
        return json.dumps(self.document(), indent=2, sort_keys=False)
