"""Writing a site (the portal, or a log export): every file goes through ``pipelines.storage`` with its
content type, and is remembered with its SHA-256 and size, which data.json, datapackage.json and
SHA256SUMS then publish. Outside ``portal/`` because ``log_export``, which the portal calls, writes
through it too."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from pipelines import storage
from pipelines.tlog.layout import CHECKPOINT, VKEY

# Content types by file suffix. Parquet has a registered IANA type since 2024; SVG and HTML carry
# a charset so that S3 serves Khmer and accented names correctly.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".csv": "text/csv; charset=utf-8; header=present",
    ".parquet": "application/vnd.apache.parquet",
    ".md": "text/markdown; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".tlog-proof": "text/plain; charset=utf-8",  # c2sp.org/tlog-proof: text a resident can read
}
# Files without a suffix that the site ships (the transparency log's own names).
NAMED_TYPES = {CHECKPOINT: "text/plain; charset=utf-8", VKEY: "text/plain; charset=utf-8"}


def content_type(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    if name in NAMED_TYPES:
        return NAMED_TYPES[name]
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    return CONTENT_TYPES.get(suffix, "application/octet-stream")


def media_type(path: str) -> str:
    """The bare media type (no parameters), as DCAT's ``mediaType`` wants it."""
    return content_type(path).split(";", 1)[0]


@dataclass(frozen=True)
class SiteFile:
    path: str  # relative to the site root, "/"-separated
    sha256: str
    size: int
    content_type: str


@dataclass
class Site:
    """The output folder or ``s3://`` prefix, and what has been written to it."""

    root: str
    files: dict[str, SiteFile] = field(default_factory=dict)

    def write(self, path: str, data: bytes | str) -> SiteFile:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        entry = SiteFile(path, hashlib.sha256(raw).hexdigest(), len(raw), content_type(path))
        # Not fsynced file by file: a site is rebuilt, not recovered; ``finish`` syncs once.
        storage.write_bytes(storage.join(self.root, path), raw, content_type=entry.content_type, durable=False)
        self.files[path] = entry
        return entry

    def finish(self) -> None:
        storage.sync(self.root)

    def uri(self, path: str) -> str:
        return storage.join(self.root, path)
