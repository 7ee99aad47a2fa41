"""Row checks of values a suite cannot judge: what the leaf encoding cannot represent, and dates no
real report can carry. Run at validation, so such a row is quarantined with its reason and is never
discovered at publish time.

* ``encoding:<column> …``: an integer beyond ±(2**53 − 1), the range of an RFC 8785 number
  (``pipelines.tlog.leaf.MAX_SAFE_INTEGER``).
* ``range:<column> …``: a timestamp before ``limits.EARLIEST_PLAUSIBLE`` (2000-01-01), or before the
  local midnight that starts the deployment's commissioning day in the registry. (Instants outside
  years 0001-9999 in UTC never get this far: ingest refuses them; the clock-skew bound on the future
  is the validator's ``clock:`` rule.)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.ingest.limits import EARLIEST_PLAUSIBLE
from pipelines.tlog.leaf import MAX_SAFE_INTEGER

ROW_KEY = "_ord"
_TIMESTAMP = pa.timestamp("us", tz="UTC")


def commissioning_instants(deployments: Iterable[object]) -> dict[str, datetime]:
    """Deployment id → the UTC instant its commissioning day begins in its time zone (objects with
    ``id``, ``commissioned`` (a date) and ``timezone``, as ``pipelines.registry.Deployment``)."""
    out = {}
    for d in deployments:
        local = datetime.combine(d.commissioned, time(), ZoneInfo(d.timezone))  # type: ignore[attr-defined]
        out[d.id] = local.astimezone(UTC)  # type: ignore[attr-defined]
    return out


def _flag(failed: dict[int, list[str]], ords: pa.ChunkedArray, mask: pa.ChunkedArray, reason: str) -> None:
    for ord_ in ords.filter(pc.fill_null(mask, False)).to_pylist():  # only failing rows become Python
        failed[ord_].append(reason)


def failures(table: pa.Table, commissioned: Mapping[str, datetime] | None = None) -> dict[int, list[str]]:
    """Reasons by ``_ord`` for the rows of a parsed chunk that fail these checks."""
    failed: dict[int, list[str]] = defaultdict(list)
    ords = table.column(ROW_KEY)
    since = None
    if commissioned and "deployment_id" in table.column_names:
        ids = sorted(commissioned)
        where = pc.index_in(table.column("deployment_id"), value_set=pa.array(ids, pa.string()))
        since = pa.chunked_array([pa.array([commissioned[i] for i in ids], _TIMESTAMP).take(where)])
    earliest = pa.scalar(EARLIEST_PLAUSIBLE, _TIMESTAMP)
    for field in table.schema:
        if field.name.startswith("_"):
            continue
        column = table.column(field.name)
        if pa.types.is_integer(field.type):
            limit = pa.scalar(MAX_SAFE_INTEGER, field.type)
            too_big = pc.or_(pc.greater(column, limit), pc.less(column, pc.negate(limit)))
            _flag(failed, ords, too_big, f"encoding:{field.name} integer beyond ±(2^53-1), which the log cannot encode")
        elif pa.types.is_timestamp(field.type):
            _flag(failed, ords, pc.less(column, earliest), f"range:{field.name} before {EARLIEST_PLAUSIBLE:%Y-%m-%d}")
            if since is not None:
                _flag(
                    failed, ords, pc.less(column, since),
                    f"range:{field.name} before the deployment was commissioned (registry lifecycle.commissioned)",
                )
    return failed
