"""A set of 64-bit key hashes on disk, as a few sorted runs: the publisher's "maybe seen before?" filter.

Looking a batch's keys up against everything published must not cost more as the log grows. A join of
the batch against the whole ``seen`` table scans every row ever published, for every table of every
batch; a sorted array answers "is this hash present" for a batch of ``b`` keys in ``b·log n`` steps.

The set is a superset of the keys the index holds (a false "maybe" only costs an exact lookup, a
false "no" would publish a row twice), which fixes the order of writes: a batch's run is durable on
disk before the index transaction that inserts its keys commits. A run of a batch that then rolls
back stays as harmless extra keys.

Runs are immutable ``.npy`` files of sorted unique ``uint64`` listed in ``runs.json`` (replaced
atomically). New runs merge with their predecessor while it is not larger (a binary counter), so
there are about ``log2(n / batch)`` runs and each key is rewritten about as many times; runs beyond
``MERGE_LIMIT`` keys are left as they are, which bounds the work any one batch does.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import numpy as np

from pipelines.atomicfile import write_atomic

MANIFEST = "runs.json"
# 8M keys is 64 MB: merging two runs below it takes a fraction of a second; above it a merge would be
# a cost one unlucky batch pays for the whole log.
MERGE_LIMIT = 8_000_000


@dataclass(frozen=True)
class _Run:
    file: str
    keys: int


class KeyRuns:
    """The runs in ``folder`` built with hash function ``function`` (a name: runs of another are stale)."""

    def __init__(self, folder: Path, function: str) -> None:
        self.folder = folder
        self.function = function
        self.runs: list[_Run] = []
        self.total = 0  # keys added, counting a key added twice twice (an upper bound on the index's rows)
        self.valid = False  # runs.json present, readable and of this hash function
        self._arrays: dict[str, np.ndarray] = {}
        self._load()

    def _load(self) -> None:
        try:
            meta = json.loads((self.folder / MANIFEST).read_text())
            runs = [_Run(str(r["file"]), int(r["keys"])) for r in meta["runs"]]
            total, function = int(meta["total"]), str(meta["function"])
        except (OSError, ValueError, KeyError, TypeError):
            return  # missing or unreadable: the caller rebuilds from the index
        if function != self.function or not all((self.folder / r.file).is_file() for r in runs):
            return
        self.runs, self.total, self.valid = runs, total, True

    def _array(self, run: _Run) -> np.ndarray:
        if run.file not in self._arrays:
            self._arrays[run.file] = np.load(self.folder / run.file, mmap_mode="r")
        return self._arrays[run.file]

    def contains(self, keys: np.ndarray) -> np.ndarray:
        """Per key: whether it may be in the set (never False for a key that was added)."""
        found = np.zeros(len(keys), dtype=bool)
        if not len(keys) or not self.runs:
            return found
        order = np.argsort(keys, kind="stable")
        ordered = keys[order]  # sorted queries walk each run's memory in order
        hit = np.zeros(len(keys), dtype=bool)
        for run in self.runs:
            array = self._array(run)
            at = np.minimum(np.searchsorted(array, ordered), len(array) - 1)
            hit |= array[at] == ordered
        found[order] = hit
        return found

    def add(self, keys: np.ndarray) -> None:
        """Make ``keys`` durable as a new run (then merge runs, see the module docstring)."""
        if not len(keys):
            return
        run = self._write(_sorted_distinct(keys))
        self.runs.append(run)
        self.total += len(keys)
        while len(self.runs) >= 2 and self.runs[-2].keys <= self.runs[-1].keys:
            older, newer = self.runs[-2], self.runs[-1]
            if older.keys + newer.keys > MERGE_LIMIT:
                break
            merged = np.concatenate([self._array(older), self._array(newer)])
            merged.sort(kind="stable")  # two sorted runs: timsort merges them in linear time
            self.runs[-2:] = [self._write(_distinct(merged))]
        self._save()

    def rebuild(self, keys: np.ndarray) -> None:
        """Replace every run by one holding ``keys`` (the index's own, when the runs are missing or stale)."""
        self.runs, self.total = [], 0
        self._save()  # an empty, valid set first: the old runs' files are no longer listed
        if len(keys):
            self.runs = [self._write(_sorted_distinct(keys))]
            self.total = len(keys)
        self._save()
        self.valid = True

    def _write(self, array: np.ndarray) -> _Run:
        self.folder.mkdir(parents=True, exist_ok=True)
        buffer = BytesIO()
        np.save(buffer, array, allow_pickle=False)
        name = f"run-{os.urandom(8).hex()}.npy"
        write_atomic(self.folder / name, buffer.getvalue())
        self._arrays[name] = array
        return _Run(name, len(array))

    def _save(self) -> None:
        meta = {"function": self.function, "total": self.total, "runs": [r.__dict__ for r in self.runs]}
        write_atomic(self.folder / MANIFEST, json.dumps(meta, indent=1).encode())
        listed = {r.file for r in self.runs}
        for path in self.folder.glob("run-*.npy"):  # merged away, or left by a crash before the listing
            if path.name not in listed:
                path.unlink(missing_ok=True)
                self._arrays.pop(path.name, None)


def _sorted_distinct(keys: np.ndarray) -> np.ndarray:
    # Not np.unique: on numpy 2.4 here it takes 29 s for 10M uint64 that np.sort orders in 0.3 s.
    ordered = np.sort(keys.astype(np.uint64, copy=False))
    return _distinct(ordered)


def _distinct(ordered: np.ndarray) -> np.ndarray:
    """A sorted array without its repeats (a key added by a batch that rolled back and ran again)."""
    if len(ordered) < 2:
        return ordered
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]
