"""What became of quarantined rows: fixed by a later batch, or accepted as invalid.

Quarantine never changes: a rejected row stays where staging put it, with its reasons. A resolution
is a record beside it (``quarantine/resolutions.jsonl``, one JSON object per line), naming a batch and
either one of its quarantined lines or all of them:

* ``fixed`` by a later batch (``fixed_by``): the rows arrived, corrected, in that batch;
* ``accepted_invalid``: nothing will replace them (a test feed, a vendor's garbage line), with a note.

A correction (``pipelines.ingest.corrections``) resolves every quarantined row of the batch it
supersedes as fixed by it, with no record written: the log already says so. ``sensorlog status`` and
the portal's data-quality page show open and resolved counts. Notes are operator text: bounded, one
line, and published on the data-quality page, so they must not hold personal data (the CLI says so).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq

from pipelines import layout, locks, storage
from pipelines.config import Settings
from pipelines.errors import USAGE, SensorlogError
from pipelines.records import Manifest
from pipelines.schemas import DECLARATIONS_KIND

FIXED, ACCEPTED_INVALID, SUPERSEDED = "fixed", "accepted_invalid", "superseded"
OUTCOMES = (FIXED, ACCEPTED_INVALID)
MAX_NOTE = 200


class ResolutionError(SensorlogError):
    """A resolution that names no quarantined row, or a batch that does not exist."""

    exit_code = USAGE


@dataclass(frozen=True)
class Resolution:
    batch_id: str
    line: int | None  # None: every quarantined row of the batch
    outcome: str  # FIXED, ACCEPTED_INVALID, or SUPERSEDED (implied by a correction; never stored)
    fixed_by: str | None
    note: str | None
    at: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True)
class BatchQuarantine:
    """One batch's quarantine: rows (a file quarantined whole counts as one), how many are resolved."""

    batch_id: str
    source_file: str
    rows: int
    resolved: int
    outcomes: tuple[str, ...]  # what resolved them, one word per resolution (e.g. "fixed by <id>")

    @property
    def open(self) -> int:
        return self.rows - self.resolved


def resolutions_file(settings: Settings) -> str:
    return layout.quarantine_resolutions(settings)


def _manifest(settings: Settings, batch_id: str) -> Manifest | None:
    path = layout.manifest_file(settings, batch_id)
    if not storage.exists(path):
        return None
    return Manifest.from_json(storage.read_bytes(path), path)


def quarantined_lines(settings: Settings, batch_id: str) -> list[int]:
    """The line of each quarantined row of ``batch_id`` (0 for a file quarantined whole)."""
    path = layout.quarantine_file(settings, batch_id)
    if not storage.exists(path):
        return []
    fs, inner = storage.filesystem(path)
    with fs.open_input_file(inner) as f:
        lines = pq.read_table(f, columns=["line"]).column("line").to_pylist()
    return [int(n or 0) for n in lines]


def stored(settings: Settings) -> list[Resolution]:
    """The resolutions recorded by hand, in the order they were made."""
    path = resolutions_file(settings)
    if not storage.exists(path):
        return []
    out = []
    for number, text in enumerate(storage.read_bytes(path).decode("utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            out.append(Resolution(**json.loads(text)))
        except (ValueError, TypeError) as err:
            raise SensorlogError(f"{path}: line {number}: not a resolution record ({err})") from err
    return out


def implied(manifests: Iterable[Manifest]) -> list[Resolution]:
    """A correction's supersession resolves every quarantined row of the batch it replaces."""
    return [
        Resolution(old, None, SUPERSEDED, m.batch_id, None, m.validated_at)
        for m in manifests for old in (m.supersedes or ())
    ]


def resolve(
    settings: Settings, batch_id: str, outcome: str, *, line: int | None = None, fixed_by: str | None = None,
    note: str | None = None, now: datetime | None = None,
) -> Resolution:
    """Record that the quarantined row at ``line`` of ``batch_id`` (every one of them when None) is
    ``fixed`` by batch ``fixed_by`` or ``accepted_invalid``; checked against the quarantine first."""
    if outcome not in OUTCOMES:
        raise ResolutionError(f"outcome {outcome!r}: expected one of {', '.join(OUTCOMES)}")
    manifest = _manifest(settings, batch_id)
    if manifest is None or manifest.kind == DECLARATIONS_KIND:
        raise ResolutionError(f"batch {batch_id}: no published event batch has this id (see `sensorlog status`)")
    lines = quarantined_lines(settings, batch_id)
    if not lines:
        raise ResolutionError(f"batch {batch_id} ({manifest.source_file}) has no quarantined row to resolve")
    if line is not None and line not in lines:
        raise ResolutionError(
            f"batch {batch_id} ({manifest.source_file}) has no quarantined row at line {line};"
            f" its quarantined lines: {', '.join(map(str, sorted(set(lines))[:20]))}"
        )
    if outcome == FIXED:
        if fixed_by is None:
            raise ResolutionError("a fixed row names the batch that fixed it (--fixed-by)")
        if fixed_by == batch_id or _manifest(settings, fixed_by) is None:
            raise ResolutionError(f"--fixed-by {fixed_by}: not another published batch")
    elif fixed_by is not None:
        raise ResolutionError("--fixed-by goes with a fixed row, not one accepted as invalid")
    if note is not None and (len(note) > MAX_NOTE or "\n" in note or "\r" in note):
        raise ResolutionError(f"--note: one line of at most {MAX_NOTE} characters")
    if outcome == ACCEPTED_INVALID and not note:
        raise ResolutionError("a row accepted as invalid says why (--note)")
    record = Resolution(batch_id, line, outcome, fixed_by, note, (now or datetime.now(UTC)).isoformat())
    path = resolutions_file(settings)
    with locks.exclusive(Path(layout.writer_lock(settings))):  # one writer of the file at a time
        previous = storage.read_bytes(path) if storage.exists(path) else b""
        if previous and not previous.endswith(b"\n"):
            previous += b"\n"
        storage.write_bytes(path, previous + record.to_json().encode() + b"\n")
    return record


def describe(r: Resolution) -> str:
    """One resolution in words: "line 3 fixed by <id>", "superseded by <id>", "accepted invalid: <note>"."""
    what = r.outcome.replace("_", " ") + (f" by {r.fixed_by}" if r.fixed_by else "") + (f": {r.note}" if r.note else "")
    return what if r.line is None else f"line {r.line} {what}"


def by_batch(settings: Settings) -> list[BatchQuarantine]:
    """Every event batch with quarantined rows (or quarantined whole), and how many are resolved."""
    manifests = [
        Manifest.from_json(storage.read_bytes(u), u) for u in storage.list_files(settings.manifests, (".json",))
    ]
    records: dict[str, list[Resolution]] = {}
    for r in [*implied(manifests), *stored(settings)]:
        records.setdefault(r.batch_id, []).append(r)
    out = []
    for m in sorted(manifests, key=lambda m: (m.validated_at, m.batch_id)):
        if m.kind == DECLARATIONS_KIND or not (m.quarantined or m.file_error):
            continue
        lines = quarantined_lines(settings, m.batch_id)
        mine = records.get(m.batch_id, [])
        whole = [r for r in mine if r.line is None]
        resolved = len(lines) if whole else sum(1 for n in lines if n in {r.line for r in mine})
        outcomes = tuple(dict.fromkeys(describe(r) for r in mine))
        out.append(BatchQuarantine(m.batch_id, m.source_file, len(lines), resolved, outcomes))
    return out
