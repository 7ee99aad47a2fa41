"""A vendor transparency-portal snapshot CSV: one row per agency per read of the portal.

Columns (exactly these, any order; docs/feeds/vendor-portal.md has a sample)::

    agency, data_retention_in_days, number_of_owned_cameras, external_organizations_with_access,
    hotlists_alerted_on, vehicles_detected_in_the_last_30_days, hotlist_hits_in_the_last_30_days,
    searches_in_the_last_30_days, public_search_audit, updated

A row becomes, all dated by ``updated`` (the end of the portal's 30-day window [updated − 30 days,
updated)):

* a ``vendor_snapshot`` event: what the vendor declares (retention verbatim and, when it is a plain
  number of days, as a number; cameras; outside organisations as a count and, when listed, their
  names; hotlists; the public search audit), so a change between two reads is itself in the log;
* a ``collection`` event of ``detections_class`` with the vehicles detected, and one of
  ``hotlist_hits_class`` with the hotlist hits, over the window (none when the portal says NA);
* an ``access`` event with the searches as ``records``, by ``search_organisation`` (default: the
  agency as the portal names it) in ``search_role``, dated at the window's end, its purpose saying it
  is the portal's 30-day count (none when NA).

A count is a whole number (``1,234`` too) or one of the not-stated words (NA, N/A, none, unknown, -,
empty); anything else rejects the row with the column named. Options (``feeds.toml``):
``timezone`` (required; ``updated`` without an offset is read there), ``agencies`` (required: the
agency as the portal names it → deployment id; another agency is quarantined), ``detections_class``,
``hotlist_hits_class``, ``search_role`` (required), ``search_organisation``, ``source`` (optional).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import timedelta
from zoneinfo import ZoneInfo

from pipelines.ingest.feeds import csvtable
from pipelines.ingest.feeds.base import Feed
from pipelines.ingest.feeds.csvtable import RowProblems
from pipelines.ingest.parsing import ParsedChunk
from pipelines.schemas import event_table

COLUMNS = (
    "agency", "data_retention_in_days", "number_of_owned_cameras", "external_organizations_with_access",
    "hotlists_alerted_on", "vehicles_detected_in_the_last_30_days", "hotlist_hits_in_the_last_30_days",
    "searches_in_the_last_30_days", "public_search_audit", "updated",
)
WINDOW = timedelta(days=30)
DEFAULT_SOURCE = "urn:sensorlog:feed:vendor-portal"
NOT_STATED = frozenset({"", "na", "n/a", "none", "unknown", "-", "null"})
_COUNT = re.compile(r"^(?:\d{1,3}(?:,\d{3})+|\d+)$")
_DAYS = re.compile(r"^(\d+)(?:\s*days?)?$", re.IGNORECASE)
MAX_AGENCY = 120


def count(text: str) -> int | None:
    """A stated count, or None when the portal says it is not stated; ValueError otherwise."""
    value = text.strip()
    if value.lower() in NOT_STATED:
        return None
    if not _COUNT.match(value):
        raise ValueError(f"{value[:40]!r} is not a whole number (or NA)")
    return int(value.replace(",", ""))


def retention_days(text: str) -> int | None:
    """The days a plain statement ("30", "30 days") gives; None for anything else ("NA", "-Infinity days")."""
    match = _DAYS.match(text.strip())
    return int(match.group(1)) if match else None


def organisations(text: str) -> tuple[int | None, str | None]:
    """(count, names joined by '; ') of the outside organisations: a bare count gives no names, a
    not-stated word neither; a list is split on ';' or new lines when it has any, else on ','."""
    value = text.strip()
    if value.lower() in NOT_STATED:
        return None, None
    if _COUNT.match(value):
        return int(value.replace(",", "")), None
    parts = re.split(r"[;\n]", value) if re.search(r"[;\n]", value) else value.split(",")
    names = [name.strip() for name in parts if name.strip()]
    return len(names), "; ".join(names)


def _stated(text: str) -> str | None:
    value = text.strip()
    return value or None


class VendorPortal(Feed):
    name = "vendor-portal"
    suffixes = (".csv",)
    selected_by = "setting"

    def __init__(self, zone: ZoneInfo | None = None, agencies: Mapping[str, str] | None = None,
                 classes: tuple[str, str] = ("", ""), search: tuple[str | None, str] = (None, ""),
                 source: str = DEFAULT_SOURCE):
        self.zone, self.agencies, self.source = zone, dict(agencies or {}), source
        self.detections_class, self.hits_class = classes
        self.search_organisation, self.search_role = search

    def configure(self, options: Mapping[str, object], where: str) -> Feed:
        from pipelines.ingest.feeds.selection import Options

        read = Options(options, where)
        zone = read.zone()
        agencies = read.mapping("agencies", max_key=MAX_AGENCY)
        detections = str(read.text("detections_class", max_length=80))
        hits = str(read.text("hotlist_hits_class", max_length=80))
        role = str(read.text("search_role", max_length=80))
        organisation = read.text("search_organisation", required=False, max_length=120)
        source = read.text("source", required=False) or DEFAULT_SOURCE
        read.done()
        return VendorPortal(zone, {k.strip(): v for k, v in agencies.items()}, (detections, hits),
                            (organisation, role), source)

    def parse(self, uri: str, chunk_rows: int) -> Iterator[ParsedChunk]:
        return csvtable.parse(uri, chunk_rows, COLUMNS, self.name, self._events)

    def _events(self, row: dict[str, str]) -> list[dict]:
        if self.zone is None:
            raise RowProblems(["the feed is not configured (no time zone or agency map)"])
        problems: list[str] = []
        agency = row["agency"].strip()
        deployment = self.agencies.get(agency)
        if not agency:
            problems.append("agency: empty")
        elif deployment is None:
            problems.append(f"agency: {agency[:MAX_AGENCY]!r} is not in the feed setting's agency map "
                            "(option 'agencies')")
        updated = None
        try:
            updated = csvtable.local_instant(row["updated"], self.zone)
        except ValueError as err:
            problems.append(f"updated: {err}")
        counts: dict[str, int | None] = {}
        for column in ("number_of_owned_cameras", "vehicles_detected_in_the_last_30_days",
                       "hotlist_hits_in_the_last_30_days", "searches_in_the_last_30_days"):
            try:
                counts[column] = count(row[column])
            except ValueError as err:
                problems.append(f"{column}: {err}")
        if problems or updated is None or deployment is None:
            raise RowProblems(problems)
        end = csvtable.utc_text(updated)
        start = csvtable.utc_text(updated - WINDOW)
        n_orgs, names = organisations(row["external_organizations_with_access"])
        retention = _stated(row["data_retention_in_days"])
        snapshot = {
            "deployment_id": deployment, "observed_at": end, "agency": agency, "retention_text": retention,
            "retention_days": retention_days(retention or ""), "devices": counts["number_of_owned_cameras"],
            "external_organisations_count": n_orgs, "external_organisations": names,
            "hotlists": _stated(row["hotlists_alerted_on"]), "public_search_audit": _stated(row["public_search_audit"]),
        }
        events = [self._event("vendor_snapshot", deployment, end, "snapshot", snapshot)]
        for column, data_class, what in (
            ("vehicles_detected_in_the_last_30_days", self.detections_class, "detections"),
            ("hotlist_hits_in_the_last_30_days", self.hits_class, "hotlist_hits"),
        ):
            if counts[column] is not None:
                events.append(self._event("collection", deployment, end, what, {
                    "deployment_id": deployment, "data_class": data_class, "window_start": start,
                    "window_end": end, "records": counts[column],
                }))
        searches = counts["searches_in_the_last_30_days"]
        if searches is not None:
            events.append(self._event("access", deployment, end, "searches", {
                "deployment_id": deployment, "data_class": self.detections_class, "accessed_at": end,
                "organisation": self.search_organisation or agency, "role": self.search_role,
                "purpose": "searches in the 30 days before this time, as the vendor's portal counts them",
                "records": searches,
            }))
        return events

    def _event(self, table: str, deployment: str, when: str, what: str, data: dict) -> dict:
        return {
            "specversion": "1.0", "id": f"{deployment}/{when}/{what}", "source": self.source,
            "type": event_table(table).cloudevent_type, "time": when, "data": data,
        }
