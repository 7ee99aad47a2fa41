"""The bounds a landed file is read within, defined once (the README's "Event format" states them).

Every limit is checked on the bytes before any recursive decoder (``json``, ``csv``) sees them, so a
hostile file costs bounded time and memory and is quarantined with a reason, never a crash.
Field lengths are not here: they are the ``maxLength`` of each field in ``schemas/events/``, which
the Great Expectations suites repeat (a test keeps the two equal).
"""

from __future__ import annotations

from datetime import UTC, datetime

# One event: an NDJSON line, a CSV record (all its physical lines) or a JSON array element. The
# largest valid event, every field at its schema maximum, is under 3 KiB.
MAX_EVENT_BYTES = 64 * 1024
# Nesting of objects and arrays within one event (a valid event nests 2 deep: envelope, data).
MAX_DEPTH = 16
# A ``.json`` array is read whole (it has no line structure to stream on); beyond this, send NDJSON.
MAX_JSON_ARRAY_BYTES = 64 * 1024 * 1024
# A quarantined event keeps this much of its raw text (an over-long line is never held beyond it).
MAX_RAW = 100_000
# Timestamps before this are implausible for the sensors this log covers.
EARLIEST_PLAUSIBLE = datetime(2000, 1, 1, tzinfo=UTC)
