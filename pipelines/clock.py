"""The moment the pipeline treats as "now", and how a moment is read from the command line.

One clock for everything that asks what day it is: the audit's default ``--as-of`` and the time a
declaration is logged. ``SENSORLOG_NOW`` sets it (tests, replays, the sample city's demo).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from pipelines.config import NOW_ENV, now_override


def parse_as_of(text: str | date | datetime | None, timezone: str) -> datetime | None:
    """A moment from ``--as-of``: a date means local midnight at its start (the state at the end of
    the previous day), like the generator's exclusive end date; a naive datetime is UTC."""
    if text is None or text == "":
        return None
    if isinstance(text, str):
        text = text.strip()
        value: date | datetime = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    else:
        value = text
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def current_time(timezone: str, env: Mapping[str, str] | None = None) -> datetime:
    """Now, in UTC: ``SENSORLOG_NOW`` when set (read like ``--as-of``: a date is local midnight), else
    the system clock."""
    text = now_override(env).strip()
    if text:
        try:
            moment = parse_as_of(text, timezone)
        except ValueError as err:
            raise ValueError(f"{NOW_ENV} must be an ISO date or datetime, got {text!r}") from err
        assert moment is not None
        return moment
    return datetime.now(UTC)
