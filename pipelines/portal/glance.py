"""The first screen of a deployment page, worked out from what the registry declares and the audit
publishes: how long each data class is kept, in words; who else may access it; and a verdict on the
last 30 days ("Deleted on time", "Kept 12 days past its limit", "No data in the last 30 days", "Not
audited yet"), with the anchors of the evidence on the page.

Pure functions over small typed values, so tests check them without a browser or a build. Every word
comes from the catalogs through a ``Translator``; registry text (organisation names, the source's own
words) is passed through as declared.

The window is the last ``WINDOW_DAYS`` local days (the registry's time zone) ending with the last day
the audit judged (its ``as_of``: a local-midnight ``as_of`` judges up to the day before), or, before any
audit, ending today.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pipelines.portal.i18n import Translator
from pipelines.registry import AccessGrant, PolicyVersion, RetentionRule, parse_iso_duration

WINDOW_DAYS = 30
NAMED_PARTIES = 3  # organisations named in "who else may access it"; the rest are counted
# The audit's findings that mean records were kept past their declared limit.
LIMIT_KINDS = frozenset({"late_deletion", "retained_past_policy", "retention_declared_none_but_kept"})
# Verdict kinds, worst first: a deployment's verdict is its worst class's.
VERDICTS = ("late", "undeclared", "unclear", "case", "on_time", "within", "indefinite", "no_data", "not_audited")
DAY = timedelta(days=1)
# The finding that backs a verdict which is no lateness (linked before the ledger row when present).
VERDICT_FINDINGS = {"undeclared": "undeclared_data_class", "unclear": "retention_unclear",
                    "indefinite": "indefinite_retention"}


# -- the window --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The last WINDOW_DAYS local days: ``first`` to ``last`` (both included); instants ``start`` (local
    midnight of ``first``) to ``end`` (exclusive: the audit's ``as_of``, or midnight after ``last``)."""

    first: date
    last: date
    start: datetime
    end: datetime
    timezone: str
    audited: bool  # the window ends at the audit's as_of (False: at the build's today, no audit yet)

    def day_end(self, day: date) -> datetime:
        """The moment a ledger day is judged at: the end of that local day, or ``end`` if earlier."""
        return min(local_midnight(day + DAY, self.timezone) if day < date.max else self.end, self.end)


def local_midnight(day: date, timezone: str) -> datetime:
    return datetime.combine(day, time(0), ZoneInfo(timezone))


def window_ending(last: date, timezone: str, end: datetime | None = None, audited: bool = False,
                  days: int = WINDOW_DAYS) -> Window:
    """The ``days`` local days ending with ``last``; ``end`` defaults to the midnight after ``last``.
    Clipped to the calendar (an audit as of year one or 9999 is hostile input, not a crash)."""
    first = date.min + timedelta(days=max(0, (last - date.min).days - (days - 1)))
    after = last + DAY if last < date.max else last
    return Window(first, last, local_midnight(first, timezone), end or local_midnight(after, timezone),
                  timezone, audited)


def audit_window(as_of: datetime, timezone: str) -> Window:
    """The window the audit's ``as_of`` closes: a local-midnight ``as_of`` judges up to the day before it
    (as the audit's own horizon does), any other moment up to its own day."""
    local = as_of.astimezone(ZoneInfo(timezone))
    last = local.date() - DAY if local.time() == time(0) else local.date()
    return window_ending(last, timezone, as_of, audited=True)


def parse_as_of(metadata: Mapping[bytes, bytes] | None) -> datetime | None:
    """The ``sensorlog.as_of`` instant the audit stamps on its Parquet outputs; None when absent or bad."""
    raw = (metadata or {}).get(b"sensorlog.as_of")
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.decode("utf-8").replace("Z", "+00:00"))
    except (UnicodeDecodeError, ValueError):
        return None
    return moment if moment.tzinfo else None


# -- how long it is kept, in words ---------------------------------------------------------------------


_UNITS = ("years", "months", "weeks", "days", "hours", "minutes", "seconds")


def duration_words(period: str, t: Translator) -> str:
    """``P1Y6M`` → "1 year and 6 months", from the catalog's unit words (ValueError if not a duration)."""
    parts = parse_iso_duration(period)._asdict()
    words = [t.text(f"dur_{unit}_{'one' if parts[unit] == 1 else 'many'}", n=f"{parts[unit]:,}")
             for unit in _UNITS if parts[unit]]
    if not words:
        return t.text("dur_days_many", n="0")
    if len(words) == 1:
        return words[0]
    return t.text("dur_and", first=t.text("dur_list_sep").join(words[:-1]), last=words[-1])


def _is_zero(rule: RetentionRule) -> bool:
    return rule.kind == "none" or (rule.kind == "duration" and not any(parse_iso_duration(rule.period)))


def retention_words(rule: RetentionRule | None, t: Translator) -> str:
    """How long one class is kept, as a resident reads it: "30 days", "until the case is closed",
    "Not kept", "No deletion date", "Not stated clearly: 'NA'"; never ``P30D``."""
    if rule is None:
        return t.text("kept_undeclared")
    if rule.kind == "indefinite":
        return t.text("kept_indefinite")
    if rule.kind == "unknown":
        return t.text("kept_unknown", stated=rule.stated or "–")
    if _is_zero(rule):
        return t.text("kept_until_case") if rule.trigger == "case_closed" else t.text("kept_none")
    span = duration_words(rule.period, t)
    if rule.trigger == "case_closed":
        return t.text("kept_after_case", span=span)
    if rule.trigger == "window_start":
        return t.text("kept_from_start", span=span)
    return span


# -- who else may access it ------------------------------------------------------------------------------


def _key(name: str) -> str:
    """An organisation's name as compared: spacing and case do not make another party."""
    return " ".join(name.split()).casefold()


def access_words(grants: Sequence[AccessGrant], accountable: str, t: Translator) -> str:
    """The parties the policy lets access the data besides the accountable organisation: up to
    NAMED_PARTIES names, then how many more; counted and unstated grants as the policy gives them."""
    named: list[str] = []
    seen = {_key(accountable)}  # a set: a record can hold tens of thousands of grants
    counted = 0
    unstated: list[str] = []
    for g in grants:
        if g.organisation is not None:
            if (key := _key(g.organisation)) not in seen:
                seen.add(key)
                named.append(g.organisation)
        elif g.count is not None:
            counted += g.count
        else:
            unstated.append(g.stated or "–")
    parts = named[:NAMED_PARTIES]
    if len(named) > NAMED_PARTIES:
        parts.append(t.text("access_more", count=f"{len(named) - NAMED_PARTIES:,}"))
    if counted:
        parts.append(t.text("access_counted", count=f"{counted:,}"))
    parts.extend(t.text("access_unstated", stated=s) for s in unstated)
    if not parts:
        return t.text("access_nobody_else", organisation=accountable)
    return t.text("dur_list_sep").join(parts)


# -- the verdict -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerDay:
    """One retention-ledger row (pipelines.audit.model.LEDGER_SCHEMA) of one class."""

    day: date
    collected: int
    deleted: int
    retained: int
    status: str
    next_due: datetime | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> LedgerDay:
        return cls(row["day"], int(row.get("collected") or 0), int(row.get("deleted") or 0),
                   int(row.get("retained") or 0), str(row.get("status") or ""), row.get("next_due"))


@dataclass(frozen=True)
class LimitFinding:
    """A finding of records kept past their limit (LIMIT_KINDS), with the numbers the audit gives it."""

    id: str
    kind: str
    period_start: datetime
    period_end: datetime
    first_due: datetime | None = None
    last_deleted_at: datetime | None = None
    days_late: float | None = None  # the latest day's lateness, when deleted
    still_kept: bool = False  # records are still retained at as_of

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> LimitFinding | None:
        if row.get("kind") not in LIMIT_KINDS:
            return None
        numbers = row.get("numbers")
        if isinstance(numbers, str):
            try:
                numbers = json.loads(numbers)
            except ValueError:
                numbers = {}
        numbers = numbers if isinstance(numbers, dict) else {}
        late = numbers.get("days_late")
        return cls(str(row.get("id")), str(row["kind"]), row["period_start"], row["period_end"],
                   _instant(numbers.get("first_due")), _instant(numbers.get("last_deleted_at")),
                   float(late) if isinstance(late, int | float) else None,
                   bool(numbers.get("records_retained")))

    def over_limit(self, as_of: datetime) -> tuple[datetime, datetime]:
        """When records were held past their due date: from the first due date to the last deletion (or
        ``as_of`` while any are still kept); the finding's period when the audit gave no due date."""
        start = self.first_due or self.period_start
        end = as_of if self.still_kept or self.last_deleted_at is None else self.last_deleted_at
        return start, max(start, end)

    def days_past(self, as_of: datetime) -> float:
        start, end = self.over_limit(as_of)
        if self.still_kept or self.days_late is None:
            return (end - start) / DAY
        return self.days_late


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else None


@dataclass(frozen=True)
class Verdict:
    """``kind`` is one of VERDICTS; ``days`` how long past the limit (``late``); ``evidence`` the page
    anchors that show it (``finding-<id>``, ``ledger-<class>``)."""

    kind: str
    days: float | None = None
    evidence: tuple[str, ...] = field(default=())
    data_class: str | None = None

    @property
    def rank(self) -> int:
        return VERDICTS.index(self.kind)


def class_verdict(data_class: str, rule: RetentionRule | None, days: Sequence[LedgerDay],
                  findings: Sequence[LimitFinding], window: Window | None,
                  related: Mapping[str, Sequence[str]] | None = None) -> Verdict:
    """One class's verdict on the window, from its ledger days in the window and its limit findings.

    ``window`` None (or not ending at an audit) means the audit has not run: "not_audited". Kept past its
    limit ("late") when a limit finding's time over the limit overlaps the window, or a ledger day in it
    is ``overdue``; "no_data" when nothing was collected, deleted or retained in it; otherwise the rule's
    shape decides: no rule ("undeclared"), words without a period ("unclear"), counted from a case closing
    ("case", which the log never sees), "indefinite", deletions done ("on_time") or none due ("within").
    ``related`` maps a finding kind to the ids of this class's findings of that kind: the one backing the
    verdict (VERDICT_FINDINGS) is linked first.
    """
    if window is None or not window.audited:
        return Verdict("not_audited", data_class=data_class)
    ledger = f"ledger-{data_class}"
    late = [f for f in findings if _overlaps(f.over_limit(window.end), window)]
    if late:
        worst = max(f.days_past(window.end) for f in late)
        return Verdict("late", worst, tuple(f"finding-{f.id}" for f in late) + (ledger,), data_class)
    inside = [d for d in days if window.first <= d.day <= window.last]
    overdue = [d for d in inside if d.status == "overdue" and d.next_due is not None]
    if overdue:
        worst = max((window.day_end(d.day) - d.next_due) / DAY for d in overdue if d.next_due)
        return Verdict("late", max(worst, 0.0), (ledger,), data_class)
    if not any(d.collected or d.deleted or d.retained for d in inside):
        return Verdict("no_data", data_class=data_class)
    if rule is None or any(d.status == "no_policy" for d in inside):
        kind = "undeclared"
    elif rule.kind == "unknown":
        kind = "unclear"
    elif rule.kind == "indefinite":
        kind = "indefinite"
    elif rule.trigger == "case_closed":
        kind = "case"
    else:
        kind = "on_time" if any(d.deleted for d in inside) else "within"
    backing = (related or {}).get(VERDICT_FINDINGS.get(kind, ""), ())
    return Verdict(kind, evidence=(*(f"finding-{i}" for i in backing), ledger), data_class=data_class)


def _overlaps(span: tuple[datetime, datetime], window: Window) -> bool:
    start, end = span
    return start < window.end and end >= window.start


def overall_verdict(verdicts: Iterable[Verdict], window: Window | None) -> Verdict:
    """The deployment's verdict: its worst class's (the longest past its limit among "late" ones), with
    the evidence of every class that shares that verdict; "no_data" for a deployment with no classes."""
    listed = list(verdicts)
    if not listed:
        return Verdict("not_audited" if window is None or not window.audited else "no_data")
    worst = min(v.rank for v in listed)
    same = [v for v in listed if v.rank == worst]
    days = max((v.days for v in same if v.days is not None), default=None)
    evidence = tuple(dict.fromkeys(e for v in same for e in v.evidence))
    return Verdict(same[0].kind, days, evidence)


def whole_days(days: float) -> int:
    """Days past a limit as a resident counts them: rounded, half up."""
    return int(days + 0.5)


def verdict_text(verdict: Verdict, t: Translator) -> str:
    """The verdict in words: "Deleted on time", "Kept 12 days past its limit", ..."""
    if verdict.kind == "late":
        days = verdict.days or 0.0
        if days < 1:
            return t.text("verdict_late_under_day")
        n = whole_days(days)
        return t.text("verdict_late_one") if n == 1 else t.text("verdict_late", days=f"{n:,}")
    return t.text(f"verdict_{verdict.kind}")


def verdict_sort_key(verdict: Verdict) -> int:
    """A number for sorting the index by verdict: larger is worse; kept past the limit by days."""
    base = (len(VERDICTS) - verdict.rank) * 100_000
    if verdict.kind == "late":
        return base + min(whole_days(verdict.days or 0.0), 99_999)
    return base


def verdict_tone(verdict: Verdict) -> str:
    """The CSS tone of a verdict: "bad", "ok" or "" (neither)."""
    if verdict.kind in ("late", "undeclared"):
        return "bad"
    if verdict.kind in ("on_time", "within"):
        return "ok"
    return ""


# -- the last 30 days in numbers ------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowNumbers:
    """What vendor portals show for the last 30 days. ``collected`` shares a window that straddles the
    window's edges by the fraction of it inside (``shared`` says it happened)."""

    collected: int = 0
    deleted: int = 0
    access_declared: int = 0
    access_undeclared: int = 0
    access_unverifiable: int = 0
    shared: bool = False


def policy_in_force(policies: Sequence[PolicyVersion], day: date) -> PolicyVersion:
    """The version in force on a local day (the first before any); ``policies`` oldest first."""
    in_force = policies[0]
    for version in policies[1:]:
        if version.effective_from <= day:
            in_force = version
    return in_force


def later_rule(policies: Sequence[PolicyVersion], data_class: str, day: date) -> tuple[date, RetentionRule] | None:
    """A declared change of a class's rule after ``day`` (the latest such version), or None."""
    now = policy_in_force(policies, day).rule_for(data_class)
    for version in reversed(policies):
        if version.effective_from <= day:
            return None
        rule = version.rule_for(data_class)
        if rule is not None and rule != now:
            return version.effective_from, rule
    return None
