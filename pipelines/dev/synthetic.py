"""A synthetic city: months of vendor exports for the sample registry, with known anomalies.

Every deployment in the registry reports hourly collection windows per declared data class; vendors
purge on schedule (``deleted_at`` = the day's last window end + period + 15 minutes, in local days so
that a policy change at local midnight applies cleanly), declared parties access the data, and
lifecycle events mark commissioning, firmware changes and policy changes. On top of that the
generator injects what an auditor must catch and records each injection in a ground-truth file next
to the landing folder, so tests can compare the audit's findings and the quarantine against it.

Output is a pure function of the registry, the options and the seed. Each deployment's day (and each
data class's) draws from its own random stream, and a range holds exactly the events whose time falls
in it, so generating consecutive ranges into one landing zone (the second continues the ground truth
the first wrote) lands the same events as generating their union in one go, deletions of earlier days
included. Planted anomalies are chosen per range; one that does not fit the range is not planted and
is listed in the ground truth's ``not_planted``.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from pipelines import storage
from pipelines.errors import UsageError
from pipelines.registry import Deployment, PolicyVersion, Registry, RetentionRule
from pipelines.schemas import event_table

GROUND_TRUTH_NAME = "ground_truth.json"
PURGE_DELAY = timedelta(minutes=15)

# Mean records per hour by data class at the busiest hour; unknown classes get DEFAULT_RATE.
RATES = {
    "video": 60.0,
    "images": 90.0,
    "plate_reads": 350.0,
    "vehicle_counts": 4.0,
    "air_quality": 60.0,
    "device_identifiers": 250.0,
    "session_records": 30.0,
    "motion_counts": 12.0,
    "audio_clips": 0.3,
    "acoustic_alerts": 0.05,
    "charging_sessions": 1.2,
    "payment_records": 1.2,
}
DEFAULT_RATE = 10.0
BYTES_PER_RECORD = {"video": 18_000_000, "images": 250_000, "plate_reads": 900, "audio_clips": 400_000}
ACCESS_PER_DAY = {"alpr": 5.0, "cctv_camera": 1.5, "gunshot_detection": 0.8}
DEFAULT_ACCESS_PER_DAY = 0.25
UNDECLARED_CANDIDATES = ("device_identifiers", "images", "audio_clips", "video")
FIRMWARE_PER_DAY = 1 / 20  # chance a deployment's vendor updates its firmware on a given day (a short range has some)


@dataclass(frozen=True)
class GenerateOptions:
    start: date = date(2026, 7, 1)
    end: date = date(2026, 11, 1)  # exclusive; also the "as of" moment of the ground truth
    seed: int = 7
    # How often each vendor exports a file: "daily", "weekly" or "monthly". The demo uses monthly
    # exports so that months of a 32-deployment city run through Airflow in well under 3 minutes.
    cadence: str = "monthly"
    timezone: str = "America/New_York"
    inject: bool = True
    # The first day of an earlier generation this range continues (its ground truth ended at ``start``):
    # deletions and late events of those days that fall in this range are landed now. None: a new city.
    continues: date | None = None


@dataclass
class GroundTruth:
    seed: int
    start: str
    end: str
    timezone: str
    cadence: str
    events: int = 0  # events written, including ones duplicated or meant to be quarantined
    files: list[str] = field(default_factory=list)
    quarantined_rows: list[dict] = field(default_factory=list)
    unparseable_files: list[dict] = field(default_factory=list)
    duplicates: int = 0
    conflicts: list[dict] = field(default_factory=list)
    findings: list[dict] = field(default_factory=list)
    # Anomalies chosen but not planted because the range cannot hold them: {"kind", "why"}.
    not_planted: list[dict] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def source_of(deployment: Deployment) -> str:
    return f"https://feeds.{_slug(deployment.vendor)}.example/riverton/{deployment.id}"


def _event(kind: str, source: str, event_id: str, time: datetime, data: dict) -> dict:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": source,
        "type": event_table(kind).cloudevent_type,
        "time": _ts(time),
        "datacontenttype": "application/json",
        "data": data,
    }


def _declared_rule(policy: PolicyVersion, data_class: str) -> RetentionRule:
    """The retention rule of a data class the policy declares (every declared class has one)."""
    rule = policy.rule_for(data_class)
    if rule is None:
        raise ValueError(f"no retention rule for declared data class {data_class!r}")
    return rule


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method is fine for the small means used here; large means use a normal approximation.
    if mean > 30:
        return max(0, round(rng.gauss(mean, mean**0.5)))
    limit, k, p = pow(2.718281828459045, -mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _diurnal(local_hour: int) -> float:
    # Quiet nights, busy days: most urban sensors see this shape.
    return 0.25 + 0.75 * max(0.0, 1 - abs(local_hour - 14) / 10)


class _City:
    """Accumulates events per vendor and the ground truth while walking the registry."""

    def __init__(self, registry: Registry, options: GenerateOptions):
        self.registry, self.options = registry, options
        self.zone = ZoneInfo(options.timezone)
        self.as_of = self.local_midnight(options.end)
        self.begin = self.local_midnight(options.start)
        self.epoch = options.continues or options.start  # the city's first generated day
        self.events: dict[str, list[dict]] = defaultdict(list)  # vendor slug -> events
        self.truth = GroundTruth(
            options.seed,
            options.start.isoformat(),
            options.end.isoformat(),
            options.timezone,
            options.cadence,
        )
        self.silent: dict[str, tuple[date, date]] = {}
        self.extra_classes: dict[str, str] = {}
        self.after_decommission: dict[str, tuple[date, date]] = {}
        self.late: dict[tuple[str, str, date], int] = {}  # (dep, class, local day) -> days late
        self.never_deleted: set[tuple[str, str, date]] = set()

    def rng_for(self, *key: object) -> random.Random:
        """The random stream of one deployment's day (or one planted event): the same whichever range
        the day is generated in, so that consecutive ranges add up to their union."""
        return random.Random("/".join(str(k) for k in (self.options.seed, *key)))

    def not_planted(self, kind: str, why: str) -> None:
        self.truth.not_planted.append({"kind": kind, "why": why})

    def in_range(self, moment: datetime) -> bool:
        return self.begin <= moment < self.as_of

    def local_midnight(self, day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=self.zone).astimezone(UTC)

    def days(self, first: date, last_exclusive: date) -> Iterator[date]:
        day = first
        while day < last_exclusive:
            yield day
            day += timedelta(days=1)

    def emit(self, deployment: Deployment, event: dict) -> None:
        # An event belongs to the range its time falls in (a day's last window is reported just after
        # midnight, a deletion days later): the range before or after lands it.
        if self.in_range(datetime.fromisoformat(event["time"])):
            self.events[_slug(deployment.vendor)].append(event)

    def active_days(self, deployment: Deployment) -> list[date]:
        first = max(self.epoch, deployment.commissioned)
        last = self.options.end
        if deployment.decommissioned is not None:
            last = min(last, deployment.decommissioned + timedelta(days=1))
        days = list(self.days(first, last))
        if deployment.id in self.after_decommission:
            days += list(self.days(*self.after_decommission[deployment.id]))
        if deployment.id in self.silent:
            gap = set(self.days(*self.silent[deployment.id]))
            days = [d for d in days if d not in gap]
        return days

    # --- normal behaviour ------------------------------------------------------------------------

    def collect(self, deployment: Deployment, data_class: str, day: date) -> tuple[datetime, datetime, int]:
        """Hourly collection windows for one local day; returns the day's span and record total."""
        source, total = source_of(deployment), 0
        rng = self.rng_for(deployment.id, data_class, day)
        start, end = self.local_midnight(day), self.local_midnight(day + timedelta(days=1))
        hour = start
        while hour < end:
            window_end = hour + timedelta(hours=1)
            local_hour = hour.astimezone(self.zone).hour
            records = _poisson(rng, RATES.get(data_class, DEFAULT_RATE) * _diurnal(local_hour))
            total += records
            data = {
                "deployment_id": deployment.id,
                "data_class": data_class,
                "window_start": _ts(hour),
                "window_end": _ts(window_end),
                "records": records,
                "bytes": records * BYTES_PER_RECORD.get(data_class, 200),
                "storage_location": f"{_slug(deployment.vendor)}-cloud/us-east",
            }
            event_id = f"col-{deployment.id}-{data_class}-{hour:%Y%m%dT%H}"
            self.emit(
                deployment,
                _event(
                    "collection",
                    source,
                    event_id,
                    window_end + timedelta(minutes=rng.randint(1, 9)),
                    data,
                ),
            )
            hour = window_end
        return start, end, total

    def purge(
        self,
        deployment: Deployment,
        data_class: str,
        day: date,
        span: tuple[datetime, datetime],
        records: int,
        rule: RetentionRule | None,
    ) -> None:
        if rule is None or rule.kind == "indefinite":
            return
        key = (deployment.id, data_class, day)
        if key in self.never_deleted:
            return
        start, end = span
        due = end if rule.kind == "none" else rule.due(end)
        # Only a case_closed rule gets here without a due date; the generator cannot place its deletion.
        assert due is not None
        deleted_at = due + PURGE_DELAY + timedelta(days=self.late.get(key, 0))
        data = {
            "deployment_id": deployment.id,
            "data_class": data_class,
            "window_start": _ts(start),
            "window_end": _ts(end),
            "records": records,
            "deleted_at": _ts(deleted_at),
            "method": "automatic_purge",
        }
        event_id = f"del-{deployment.id}-{data_class}-{day:%Y%m%d}"
        self.emit(deployment, _event("deletion", source_of(deployment), event_id, deleted_at, data))

    def access(self, deployment: Deployment, day: date) -> None:
        policy = deployment.policy_at(day)
        # Only a named grant with roles says who may access in which role (the demo's are all named).
        grants = [(g, g.organisation) for g in policy.access if g.roles and g.organisation is not None]
        if not grants:
            return
        rng = self.rng_for(deployment.id, "access", day)
        count = _poisson(rng, ACCESS_PER_DAY.get(deployment.kind, DEFAULT_ACCESS_PER_DAY))
        for n in range(count):
            grant, organisation = grants[rng.randrange(len(grants))]
            role = grant.roles[rng.randrange(len(grant.roles))]
            at = self.local_midnight(day) + timedelta(hours=8 + rng.random() * 10)
            self.emit_access(
                rng,
                deployment,
                deployment.data_classes[0],
                at,
                organisation,
                role,
                grant.purpose,
                f"acc-{deployment.id}-{day:%Y%m%d}-{n}",
            )

    def emit_access(
        self,
        rng: random.Random,
        deployment: Deployment,
        data_class: str,
        at: datetime,
        organisation: str,
        role: str,
        purpose: str | None,
        event_id: str,
    ) -> None:
        case_ref = f"RIV-{at:%Y}-{rng.randint(10000, 99999)}" if deployment.kind == "alpr" else None
        data = {
            "deployment_id": deployment.id,
            "data_class": data_class,
            "accessed_at": _ts(at),
            "organisation": organisation,
            "role": role,
            "purpose": (purpose or "")[:200] or None,
            "case_ref": case_ref,
            "records": 1 + _poisson(rng, 12),
        }
        self.emit(deployment, _event("access", source_of(deployment), event_id, at, data))

    def lifecycle(self, deployment: Deployment, action: str, at: datetime, details: str, n: int = 0) -> None:
        data = {"deployment_id": deployment.id, "action": action, "at": _ts(at), "details": details}
        event_id = f"life-{deployment.id}-{action}-{at:%Y%m%d}-{n}"
        self.emit(deployment, _event("lifecycle", source_of(deployment), event_id, at, data))

    def lifecycle_events(self, deployment: Deployment) -> None:
        if self.options.start <= deployment.commissioned < self.options.end:
            self.lifecycle(
                deployment,
                "commissioned",
                self.local_midnight(deployment.commissioned) + timedelta(hours=9),
                "installed and reporting",
            )
        if deployment.decommissioned and self.options.start <= deployment.decommissioned < self.options.end:
            self.lifecycle(
                deployment,
                "decommissioned",
                self.local_midnight(deployment.decommissioned) + timedelta(hours=17),
                "removed from service",
            )
        for version in deployment.policy_versions[1:]:
            if self.options.start <= version.effective_from < self.options.end:
                self.lifecycle(
                    deployment,
                    "policy_changed",
                    self.local_midnight(version.effective_from),
                    f"policy version {version.version} in force",
                )
        for day in self.days(self.options.start, self.options.end):
            if self.rng_for(deployment.id, "firmware", day).random() < FIRMWARE_PER_DAY:
                self.lifecycle(
                    deployment,
                    "firmware_changed",
                    self.local_midnight(day) + timedelta(hours=3),
                    "vendor firmware update",
                )

    def deployment(self, deployment: Deployment) -> None:
        self.lifecycle_events(deployment)
        days = self.active_days(deployment)
        classes = list(deployment.data_classes)
        if deployment.id in self.extra_classes:
            classes.append(self.extra_classes[deployment.id])
        for data_class in classes:
            declared = data_class in deployment.data_classes
            for day in days:
                start, end, records = self.collect(deployment, data_class, day)
                rule = deployment.policy_at(day).rule_for(data_class) if declared else None
                self.purge(deployment, data_class, day, (start, end), records, rule)
        for day in days:
            if day >= self.options.start:  # an access happens within its day
                self.access(deployment, day)

    # --- injections ------------------------------------------------------------------------------

    def finding(
        self,
        kind: str,
        deployment: Deployment,
        data_class: str | None,
        start: datetime | date,
        end: datetime | date,
        **numbers: object,
    ) -> None:
        def text(v: datetime | date) -> str:
            return _ts(v) if isinstance(v, datetime) else v.isoformat()

        self.truth.findings.append(
            {
                "kind": kind,
                "deployment_id": deployment.id,
                "data_class": data_class,
                "period_start": text(start),
                "period_end": text(end),
                **numbers,
            }
        )

    def day_finding(self, kind: str, deployment: Deployment, data_class: str, day: date, **numbers: object) -> None:
        """A finding covering one local day of collection windows."""
        end = self.local_midnight(day + timedelta(days=1))
        self.finding(kind, deployment, data_class, self.local_midnight(day), end, **numbers)

    def deletion_due(self, deployment: Deployment, data_class: str, day: date) -> datetime | None:
        """When the records of one local day are due for deletion (as ``purge`` computes it); None when
        never (indefinite, or a rule with no date)."""
        rule = deployment.policy_at(day).rule_for(data_class)
        if rule is None or rule.kind == "indefinite":
            return None
        end = self.local_midnight(day + timedelta(days=1))
        return end if rule.kind == "none" else rule.due(end)

    def deletion_fits(self, kind: str, deployment: Deployment, data_class: str, day: date, days_late: int) -> bool:
        """Whether a planted late or missing deletion of ``day`` shows in this range: the day is in it
        and the deletion (``days_late`` after it was due) would fall before its end. If not, says so."""
        due = self.deletion_due(deployment, data_class, day)
        if self.options.start <= day < self.options.end and due is not None:
            if due + PURGE_DELAY + timedelta(days=days_late) < self.as_of:
                return True
        self.not_planted(kind, f"{deployment.id} {data_class} on {day}: the range does not hold that day and its"
                               " deletion")
        return False

    def plan_injections(self) -> None:
        """Choose, before generating, which deployments misbehave and how; plant only what the range can
        show (each skipped one is listed in the ground truth's ``not_planted``)."""
        deps = list(self.registry)
        by_kind = defaultdict(list)
        for d in deps:
            by_kind[d.kind].append(d)
        mid = self.options.start + (self.options.end - self.options.start) / 2

        for d in deps:  # informational: every indefinite policy in force during the period
            for data_class in d.data_classes:
                if (
                    _declared_rule(d.policy_at(self.options.end - timedelta(days=1)), data_class).kind
                    == "indefinite"
                ):
                    self.finding("indefinite_retention", d, data_class, self.begin, self.as_of)

        decommissioned = [d for d in deps if d.decommissioned and d.decommissioned < mid + timedelta(days=30)]
        for d in decommissioned[:1]:
            assert d.decommissioned is not None  # the filter above
            first = d.decommissioned + timedelta(days=5)
            last = first + timedelta(days=15)
            shown = (max(first, self.options.start), min(last, self.options.end))
            if shown[0] >= shown[1]:
                self.not_planted("collecting_after_decommission", f"{d.id}: {first} to {last} is outside the range")
                continue
            self.after_decommission[d.id] = (first, last)
            self.finding(
                "collecting_after_decommission",
                d,
                None,
                self.local_midnight(shown[0]),
                self.local_midnight(shown[1]),
            )

        quiet = [d for d in by_kind.get("air_quality", []) if d.decommissioned is None]
        for d in quiet[:1]:
            gap = (mid - timedelta(days=20), mid - timedelta(days=8))
            if not self.options.start < gap[0] < gap[1] < self.options.end:  # a gap needs reports on both sides
                self.not_planted("silent_deployment", f"{d.id}: a 12-day gap with reports either side needs more days")
                continue
            self.silent[d.id] = gap
            self.finding(
                "silent_deployment",
                d,
                None,
                self.local_midnight(gap[0]),
                self.local_midnight(gap[1]),
                days=(gap[1] - gap[0]).days,
            )

        chooser = random.Random(self.options.seed + 1)
        timed = [
            (d, c)
            for d in deps
            for c in d.data_classes
            if d.decommissioned is None
            and d.id not in self.silent
            and _declared_rule(d.current_policy, c).kind == "duration"
            and (kept := _declared_rule(d.current_policy, c).duration) is not None  # always, for a duration
            and kept <= timedelta(days=35)
        ]
        chooser.shuffle(timed)
        for n, (d, c) in enumerate(timed[:3]):
            day = self.options.start + timedelta(days=20 + 9 * n)
            days_late = (3, 6, 11)[n]
            if not self.deletion_fits("late_deletion", d, c, day, days_late):
                continue
            self.late[(d.id, c, day)] = days_late
            self.day_finding("late_deletion", d, c, day, days_late=days_late)
        for n, (d, c) in enumerate(timed[3:5]):
            day = self.options.start + timedelta(days=33 + 5 * n)
            if not self.deletion_fits("retained_past_policy", d, c, day, 0):
                continue
            self.never_deleted.add((d.id, c, day))
            self.day_finding("retained_past_policy", d, c, day)

        nothing_kept = [
            (d, c)
            for d in deps
            for c in d.data_classes
            if d.decommissioned is None
            and d.id not in self.silent
            and _declared_rule(d.current_policy, c).kind == "none"
        ]
        for n, (d, c) in enumerate(nothing_kept[:2]):
            day = self.options.start + timedelta(days=45 + 7 * n)
            if not self.deletion_fits("retention_declared_none_but_kept", d, c, day, 4 if n == 0 else 0):
                continue
            if n == 0:
                self.late[(d.id, c, day)] = 4
            else:
                self.never_deleted.add((d.id, c, day))
            self.day_finding("retention_declared_none_but_kept", d, c, day)

        hosts = [
            d
            for d in deps
            if d.kind in ("wifi_kiosk", "streetlight_motion")
            and d.decommissioned is None
            and d.id not in self.silent
        ]
        for d in hosts[:1]:
            if max(self.options.start, d.commissioned) >= self.options.end:
                self.not_planted("undeclared_data_class", f"{d.id} is not yet commissioned in the range")
                continue
            extra = next(c for c in UNDECLARED_CANDIDATES if c not in d.data_classes)
            self.extra_classes[d.id] = extra
            self.finding(
                "undeclared_data_class",
                d,
                extra,
                self.local_midnight(max(self.options.start, d.commissioned)),
                self.as_of,
            )

    def inject_after(self) -> None:
        """Injections that are extra events rather than changed behaviour."""
        deps = list(self.registry)
        alprs = [d for d in deps if d.kind == "alpr" and d.decommissioned is None]
        cameras = [d for d in deps if d.kind == "cctv_camera" and d.decommissioned is None]
        strangers = [(alprs, "Federal Immigration Task Force", "analyst"), (cameras, None, "contractor")]
        for n, (pool, organisation, role) in enumerate(strangers):
            if not pool:
                continue
            d = pool[n % len(pool)]
            day = self.options.start + timedelta(days=60 + 3 * n)
            at = self.local_midnight(day) + timedelta(hours=11)
            if not self.in_range(at):
                self.not_planted("undeclared_access", f"{d.id} on {day}: after the range ends")
                continue
            org = organisation or d.current_policy.access[0].organisation or d.accountable_organisation
            event_id = f"acc-{d.id}-{day:%Y%m%d}-x{n}"
            rng = self.rng_for(d.id, "undeclared-access", n)
            self.emit_access(rng, d, d.data_classes[0], at, org, role, "records request", event_id)
            self.finding(
                "undeclared_access",
                d,
                d.data_classes[0],
                at,
                at + timedelta(seconds=1),
                organisation=org,
                role=role,
                evidence=[{"source": source_of(d), "id": event_id}],
            )

        timed = [
            d
            for d in deps
            if d.decommissioned is None
            and any(_declared_rule(d.current_policy, c).kind == "duration" for c in d.data_classes)
        ]
        if timed:
            d = timed[len(timed) // 2]
            c = next(c for c in d.data_classes if _declared_rule(d.current_policy, c).kind == "duration")
            day = self.options.start - timedelta(days=20)  # before the log starts: never collected here
            start, end = self.local_midnight(day), self.local_midnight(day + timedelta(days=1))
            deleted_at = self.begin + timedelta(days=2, hours=3)
            if not self.in_range(deleted_at) or day >= self.epoch:
                why = "the range is shorter than 3 days" if day < self.epoch else "its window is a day this city logs"
                self.not_planted("deleted_without_collection", f"{d.id}: {why}")
                return
            event_id = f"del-{d.id}-{c}-{day:%Y%m%d}"
            self.emit(
                d,
                _event(
                    "deletion",
                    source_of(d),
                    event_id,
                    deleted_at,
                    {
                        "deployment_id": d.id,
                        "data_class": c,
                        "window_start": _ts(start),
                        "window_end": _ts(end),
                        "records": 1200,
                        "deleted_at": _ts(deleted_at),
                        "method": "manual",
                    },
                ),
            )
            self.finding(
                "deleted_without_collection",
                d,
                c,
                start,
                end,
                records=1200,
                evidence=[{"source": source_of(d), "id": event_id}],
            )

    def run(self) -> None:
        if self.options.inject:
            self.plan_injections()
        for deployment in self.registry:
            self.deployment(deployment)
        if self.options.inject:
            self.inject_after()


# --- files ---------------------------------------------------------------------------------------


def _period_start(day: date, cadence: str) -> date:
    if cadence == "daily":
        return day
    if cadence == "weekly":
        return day - timedelta(days=day.weekday())
    if cadence == "monthly":
        return day.replace(day=1)
    raise ValueError(f"unknown cadence {cadence!r} (expected daily, weekly or monthly)")


def _ndjson(events: list[dict]) -> bytes:
    return "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events).encode()


def _csv(events: list[dict], kind: str) -> bytes:
    columns = ["id", "source", "type", "time", *event_table(kind).json_schema["properties"]]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for e in events:
        flat = {**{k: e[k] for k in ("id", "source", "type", "time")}, **e["data"]}
        writer.writerow(["" if flat.get(c) is None else flat[c] for c in columns])
    return out.getvalue().encode()


def _by_file(city: _City, csv_vendor: str | None) -> dict[str, list[dict]]:
    files: dict[str, list[dict]] = defaultdict(list)
    zone, options = city.zone, city.options
    for vendor, events in sorted(city.events.items()):
        for e in sorted(events, key=lambda e: (e["time"], e["id"])):
            local_day = datetime.fromisoformat(e["time"]).astimezone(zone).date()
            first = _period_start(local_day, options.cadence)
            period = first.isoformat()
            if options.continues is not None and first < options.start:
                # The earlier range wrote this period's first part under the plain name.
                period += f".from-{options.start.isoformat()}"
            if vendor == csv_vendor:
                kind = e["type"].rsplit(".", 1)[-1]
                files[f"{vendor}/{period}-{kind}.csv"].append(e)
            else:
                files[f"{vendor}/{period}.ndjson"].append(e)
    return files


def _bad_lines(events: list[dict]) -> list[tuple[bytes, str]]:
    """Append rows a validator must reject to one vendor file; each is recorded with its line."""
    base = next(e for e in events if e["type"].endswith(".collection"))
    future = datetime(2099, 1, 1, tzinfo=UTC)  # fixed, so the output stays a function of the seed
    cases: list[tuple[bytes, str]] = []

    def variant(reason: str, **data: object) -> None:
        e = json.loads(json.dumps(base))
        e["id"] = f"bad-{len(cases)}-{base['id']}"
        e["data"].update(data)
        cases.append((json.dumps(e).encode(), reason))

    variant("gx:expect_column_values_to_be_between[records]", records=-5)
    variant("registry:deployment_id not in the deployment registry", deployment_id="no-such-device")
    variant(
        "clock:window_end is in the future",
        window_start=_ts(future),
        window_end=_ts(future + timedelta(hours=1)),
    )
    variant(
        "gx:expect_column_pair_values_a_to_be_greater_than_b[window_end,window_start]",
        window_end=base["data"]["window_start"],
    )
    variant("data.records: expected an integer", records="many")
    cases.append((b'{"specversion": "1.0", "id": "broken", "source": ', "json:"))
    cases.append((b'{"specversion": "1.0", "id": "latin-\xe9", "source": "x"}', "encoding:"))
    return cases


def write_city(registry: Registry, landing: str, options: GenerateOptions, *, force: bool = False) -> GroundTruth:
    """Generate the city into ``landing`` (local path or s3:// URI) and write the ground truth next to it.

    A ground truth already there is never replaced silently: when ``options`` start where it ended
    (same seed, cadence and time zone) this range continues it (``options.continues`` is set from it
    and the two are merged); otherwise it is a ``UsageError`` unless ``force``."""
    truth_uri = storage.join(landing.rstrip("/").rsplit("/", 1)[0], GROUND_TRUTH_NAME)
    previous = json.loads(storage.read_bytes(truth_uri)) if storage.exists(truth_uri) else None
    if previous is not None and not force:
        if not _continues(previous, options):
            raise UsageError(
                f"generate: {truth_uri} exists (seed {previous.get('seed')}, {previous.get('start')} to"
                f" {previous.get('end')}): give --start {previous.get('end')} with the same seed, cadence and time"
                " zone to continue it, or --force to replace it"
            )
        options = replace(options, continues=date.fromisoformat(previous["start"]))
    else:
        previous = None
    city = _City(registry, options)
    city.run()
    vendors = sorted(city.events)
    counter_vendors = sorted({_slug(d.vendor) for d in registry if d.kind == "traffic_counter"})
    csv_vendor = counter_vendors[0] if counter_vendors else None
    files = _by_file(city, csv_vendor)
    truth = city.truth
    payloads: dict[str, bytes] = {}
    for name, events in sorted(files.items()):
        payloads[name] = (
            _csv(events, name.rsplit("-", 1)[-1][:-4]) if name.endswith(".csv") else _ndjson(events)
        )
        truth.events += len(events)

    if options.inject and vendors:
        _inject_files(city, files, payloads, truth)

    for name, data in sorted(payloads.items()):
        storage.write_bytes(storage.join(landing, name), data)
        truth.files.append(name)
    written = truth if previous is None else _merged(previous, truth)
    storage.write_bytes(truth_uri, written.to_json().encode())
    return truth


def _continues(previous: dict, options: GenerateOptions) -> bool:
    return (previous.get("end") == options.start.isoformat() and previous.get("seed") == options.seed
            and previous.get("cadence") == options.cadence and previous.get("timezone") == options.timezone)


def _merged(previous: dict, truth: GroundTruth) -> GroundTruth:
    """The ground truth of an earlier range followed by ``truth``'s (its consecutive range)."""
    merged = GroundTruth(truth.seed, previous["start"], truth.end, truth.timezone, truth.cadence)
    merged.events = int(previous.get("events", 0)) + truth.events
    merged.duplicates = int(previous.get("duplicates", 0)) + truth.duplicates
    for name in ("files", "quarantined_rows", "unparseable_files", "conflicts", "findings", "not_planted"):
        setattr(merged, name, [*previous.get(name, []), *getattr(truth, name)])
    return merged


RESENT = 40  # events a vendor re-sends unchanged in the planted duplicate export


def _inject_files(
    city: _City, files: dict[str, list[dict]], payloads: dict[str, bytes], truth: GroundTruth
) -> None:
    """Plant bad rows, a re-sent export and unreadable files, as far as the range's exports allow."""
    ndjson = [
        n for n in sorted(files) if n.endswith(".ndjson") and files[n][0]["type"].endswith("collection")
    ]
    if not ndjson:
        for kind in ("quarantined_rows", "duplicates", "unparseable_files"):
            city.not_planted(kind, "the range lands no collection export to plant them in")
        return
    # 1. a vendor file with rows each check must reject
    target = ndjson[len(ndjson) // 3]
    lines = payloads[target].count(b"\n")
    bad = _bad_lines(files[target])
    payloads[target] += b"".join(row + b"\n" for row, _ in bad)
    for n, (_, reason) in enumerate(bad, start=1):
        truth.quarantined_rows.append({"file": target, "line": lines + n, "reason": reason})
    truth.events += len(bad)

    # 2. a vendor re-sends part of an earlier export: exact duplicates, plus one changed record
    source = ndjson[len(ndjson) // 2]
    folder, stem = source.rsplit("/", 1)
    if len(files[source]) > RESENT:
        _plant_resend(files, payloads, truth, source)
    else:
        city.not_planted("duplicates", f"the range's exports are too short to re-send {RESENT} events of one")

    # 3. whole files that cannot be read
    truncated = f"{folder}/{stem[:-7]}-export.json"
    text = json.dumps(files[ndjson[-1]][:25], indent=1).encode()
    payloads[truncated] = text[: len(text) // 2]
    truth.unparseable_files.append({"file": truncated, "reason": "JSON syntax"})
    empty = f"{folder}/{stem[:-7]}-empty.ndjson"
    payloads[empty] = b""
    truth.unparseable_files.append({"file": empty, "reason": "file is empty"})
    bad_csv = f"{folder}/{stem[:-7]}-sheet.csv"
    payloads[bad_csv] = b"device;count;when\r\nx;1;2026-07-01\r\n"
    truth.unparseable_files.append({"file": bad_csv, "reason": "CSV header lacks"})


def _plant_resend(files: dict[str, list[dict]], payloads: dict[str, bytes], truth: GroundTruth, source: str) -> None:
    resent = files[source][:RESENT]
    changed = json.loads(json.dumps(files[source][RESENT]))
    changed["data"]["records"] += 7
    folder, stem = source.rsplit("/", 1)
    # ".resend" sorts after the original export, so the original is published first.
    name = f"{folder}/{stem[:-7]}.resend.ndjson"
    payloads[name] = _ndjson([*resent, changed])
    truth.duplicates += len(resent)
    truth.conflicts.append(
        {"file": name, "line": len(resent) + 1, "source": changed["source"], "id": changed["id"]}
    )
    truth.quarantined_rows.append({"file": name, "line": len(resent) + 1, "reason": "conflict:"})
    truth.events += len(resent) + 1


def load_ground_truth(landing: str) -> dict:
    parent = landing.rstrip("/").rsplit("/", 1)[0]
    return json.loads(storage.read_bytes(storage.join(parent, GROUND_TRUTH_NAME)))


def options_for(
    start: date | None = None,
    end: date | None = None,
    seed: int | None = None,
    cadence: str | None = None,
    timezone: str | None = None,
    inject: bool = True,
) -> GenerateOptions:
    base = GenerateOptions()
    return GenerateOptions(
        start=start or base.start,
        end=end or base.end,
        seed=base.seed if seed is None else seed,
        cadence=cadence or base.cadence,
        timezone=timezone or base.timezone,
        inject=inject,
    )
