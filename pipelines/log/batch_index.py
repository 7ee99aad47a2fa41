"""The log's batch index, ``batches.jsonl`` (``tlog.layout.BATCHES``): one
``{"batch_id", "start", "count"}`` line per appended batch, written by ``writer.Log`` (see its steps 1-3)
and read here, by the writer, ``prove``, ``verify`` and ``prove_static``, in one of two modes:

* ``parse_strict`` (the writer, and ``prove`` on the operator's own log): a torn last line (no newline
  yet: a crash mid-write) is not a record; every other line must be one (a line that is not raises
  the JSON, key or value error as it comes); records must tile ``[0, end)`` with positive counts,
  else ``BatchIndexError``;
* ``parse_tolerant`` (the verifier, on a copy it checks rather than trusts): every line that is a
  record counts, the others are skipped, nothing else is checked: the verifier judges the records
  against the manifests and the tree.

In both, a record at the start of an earlier one supersedes it: it is only written when the earlier
record's leaves never reached the tree (an intent left by a crash).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pipelines.errors import SensorlogError


class BatchIndexError(SensorlogError, ValueError):
    """The batch index does not describe one append-only sequence of batches."""


@dataclass(frozen=True)
class BatchRecord:
    batch_id: str
    start: int
    count: int

    @property
    def end(self) -> int:
        return self.start + self.count


def _record(line: bytes | str) -> BatchRecord:
    obj = json.loads(line)
    return BatchRecord(str(obj["batch_id"]), int(obj["start"]), int(obj["count"]))


def parse_strict(data: bytes) -> tuple[list[BatchRecord], int]:
    """Records in order, after supersession, and the byte length of the intact (newline-ended) part."""
    intact = data.rfind(b"\n") + 1  # a torn last line is not a record
    by_start: dict[int, BatchRecord] = {}  # in file order; a superseding record goes last
    for line in data[:intact].splitlines():
        record = _record(line)
        by_start.pop(record.start, None)
        last = next(reversed(by_start.values()), None)
        if record.start != (last.end if last else 0) or record.count <= 0:
            raise BatchIndexError(f"record {record} does not continue the log")
        by_start[record.start] = record
    return list(by_start.values()), intact


def parse_tolerant(data: bytes) -> list[BatchRecord]:
    """Every line that is a record (an unterminated last one too), after supersession; nothing when
    the index is not UTF-8."""
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return []
    by_start: dict[int, BatchRecord] = {}
    for line in lines:
        try:
            record = _record(line)
        except (ValueError, KeyError, TypeError):
            continue
        by_start.pop(record.start, None)
        by_start[record.start] = record
    return list(by_start.values())
