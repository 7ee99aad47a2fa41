"""Retention rules and ISO 8601 durations: how long a data class is kept, and when it is due for deletion."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

NO_RETENTION = "none"
INDEFINITE = "indefinite"
# Declared, but not clearly: the source said something ("NA", "-Infinity days") that is no period. The
# rule keeps those words verbatim (``stated``); nothing is computed from it, and the audit says so.
UNKNOWN = "unknown"
TRIGGERS = ("window_end", "window_start", "case_closed")
DEFAULT_TRIGGER = "window_end"
# Only RetentionRule.duration uses these fixed lengths; RetentionRule.due uses the calendar.
DAYS_PER_MONTH = 30
DAYS_PER_YEAR = 365


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
DURATION_EXPECTED = (
    "an ISO 8601 duration such as P30D, PT72H or P1Y (whole numbers), 'none', 'indefinite', "
    "or 'unknown' with the source's own words in stated"
)
STATED_EXPECTED = (
    "the source's own words for a period declared 'unknown', kept verbatim (e.g. stated: '-Infinity days')"
)
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
    collection window ends), ``"indefinite"`` (no deletion date) or ``"unknown"`` (declared, but not
    clearly: ``stated`` holds the source's words verbatim, and there is no due date). ``stated`` may
    accompany any period (the words a period was read from); it is not a term of the policy, so it
    takes no part in comparing rules. ``trigger`` says when the
    period starts: ``window_end`` (end of the collection window, the default), ``window_start``, or
    ``case_closed``, which is informational: the log never sees a case close, so no due date can be
    computed for it.
    """

    data_class: str
    period: str
    trigger: str = DEFAULT_TRIGGER
    stated: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.trigger not in TRIGGERS:
            raise ValueError(f"retention trigger must be one of {TRIGGERS}, got {self.trigger!r}")
        if self.kind == "duration":
            parse_iso_duration(self.period)

    @property
    def kind(self) -> str:
        """``"duration"``, ``"none"``, ``"indefinite"`` or ``"unknown"``."""
        if self.period == NO_RETENTION:
            return "none"
        if self.period == INDEFINITE:
            return "indefinite"
        if self.period == UNKNOWN:
            return "unknown"
        return "duration"

    @property
    def iso_duration(self) -> IsoDuration | None:
        return parse_iso_duration(self.period) if self.kind == "duration" else None

    @property
    def duration(self) -> timedelta | None:
        """The period as a fixed length: zero for ``none``, None for ``indefinite`` and ``unknown``.

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
        is due at ``collected_end`` itself. Returns None when there is no due date: ``indefinite``,
        ``unknown``, or the ``case_closed`` trigger. A ``window_start`` rule needs ``collected_start``.
        """
        if self.kind in ("indefinite", "unknown") or self.trigger == "case_closed":
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
