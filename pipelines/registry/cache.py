"""A cache of checked deployment documents, keyed by content hash, so an unchanged file is not parsed
and checked again.

Parsing YAML and checking a document against the schema cost milliseconds per file; a registry of
10,000 files pays that in every command. The cache keeps, per deployment file that passed every
check, the document it parsed to, as JSON, under the SHA-256 of the file's stem and bytes (the stem
because the id check compares the id to it). An entry is used only when the file's bytes hash to its
key, so an edited, added or removed file is simply parsed (or not asked for): the cache never serves
what the files no longer say. Entries live in a folder named for everything else a check depends on
(``code_key``: this cache's format, the sensorlog version, the sources of the registry package and of
the privacy checks, the schema, the DTPR taxonomy, the versions of the libraries that parse and
check), so a change of any of them starts an empty folder; the other folders are removed then.

An entry is ``<sha256 of the rest>\\n<JSON>``; one whose checksum, JSON or key does not match is
ignored and written again from the file, never trusted. Problems are never cached: a file with a
problem is parsed each time, so its messages (with their lines) are always the file's own.
Writing is best effort (a read-only state folder only costs the speed-up) and atomic per entry, so
two processes may share one folder.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from pipelines.config import Settings


CACHE_FORMAT = 1
CACHE_FOLDER = "registry-cache"  # under the home's state folder (Settings.state)
_LIBRARIES = (
    "sensorlog", "PyYAML", "jsonschema", "jsonschema-specifications", "fastjsonschema", "rfc8785", "phonenumbers",
    "msgspec",
)


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "-"


def _inputs() -> list[Path]:
    """The files whose bytes decide whether a document passes the checks."""
    from pipelines.registry import checks, taxonomy

    # Found, not imported: privacy brings pyarrow, which a load served from the cache never needs.
    privacy = importlib.util.find_spec("pipelines.ingest.privacy")
    if privacy is None or privacy.origin is None:
        raise ImportError("pipelines.ingest.privacy")
    package = Path(checks.__file__).parent
    return [*sorted(package.glob("*.py")), Path(privacy.origin), checks.SCHEMA_FILE, taxonomy.DATA_FILE]


@cache
def code_key() -> str:
    """A hash of everything besides a file's bytes that a cached check result depends on."""
    digest = hashlib.sha256(f"sensorlog registry cache {CACHE_FORMAT}\n".encode())
    for name in _LIBRARIES:
        digest.update(f"{name}={_version(name)}\n".encode())
    for path in _inputs():
        digest.update(f"{path.name}\n".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:32]


def entry_key(stem: str, digest: str) -> str:
    """The key of one deployment file's entry: its stem and the SHA-256 (hex) of its bytes."""
    return hashlib.sha256(f"{stem}\0{digest}".encode()).hexdigest()


class DocumentCache:
    """Checked documents under ``<folder>/<code_key>/<entry_key>.json``."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.root = self.folder / code_key()
        self.used: set[str] = set()
        self.written = 0
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder()

    def _path(self, key: str) -> Path:
        return self.root / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The document cached under ``key``; None when absent or not intact (never trusted)."""
        try:
            raw = self._path(key).read_bytes()
        except OSError:
            return None
        self.used.add(key)
        checksum, _, body = raw.partition(b"\n")
        if checksum.decode("ascii", "replace") != hashlib.sha256(body).hexdigest():
            return None
        try:
            entry = self._decoder.decode(body)
        except msgspec.DecodeError:
            return None
        if not isinstance(entry, dict) or entry.get("key") != key or not isinstance(entry.get("doc"), dict):
            return None
        return entry["doc"]

    def put(self, key: str, doc: Mapping[str, Any]) -> None:
        """Cache ``doc`` under ``key`` when its JSON reads back equal to it (so a cached document is
        always the document itself); an error writing only leaves it uncached."""
        self.used.add(key)
        try:
            body = self._encoder.encode({"key": key, "doc": doc})
            if self._decoder.decode(body) != {"key": key, "doc": doc}:
                return
        except (msgspec.EncodeError, msgspec.DecodeError, TypeError, ValueError, OverflowError):
            return
        data = hashlib.sha256(body).hexdigest().encode() + b"\n" + body
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, self._path(key))
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError:
            return
        self.written += 1

    def prune(self) -> None:
        """After a load that wrote entries: remove the folders of other code keys, and the entries this
        load did not use once they outnumber the used ones (files edited or removed long ago)."""
        if not self.written:
            return
        try:
            for other in self.folder.iterdir():
                if other.is_dir() and other.name != self.root.name:
                    shutil.rmtree(other, ignore_errors=True)
            entries = [p for p in self.root.iterdir() if p.suffix == ".json"]
            if len(entries) > 2 * len(self.used) + 100:
                _remove(p for p in entries if p.stem not in self.used)
        except OSError:
            return


def _remove(paths: Iterable[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def registry_cache_dir(settings: Settings) -> str | None:
    """The home's cache of checked deployment documents (local state, like the seen-keys index); None
    while the folder that holds the state does not exist. Checking a registry never creates a home: an
    auditor's ``sensorlog registry DIR`` in a clean shell leaves the working directory as it was."""
    if not Path(settings.state).parent.is_dir():
        return None
    return os.path.join(settings.state, CACHE_FOLDER)
