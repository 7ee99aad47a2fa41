"""Where a verifier reads a published log and its data from: a folder, an ``http(s)://`` URL or an
``s3://`` prefix, behind one small interface (read a file by its relative path; list a prefix where
the transport can).

A static web server cannot list a folder, so everything a verifier needs to find is reachable by
name from files it already has: tiles and entry bundles by index from the checkpoint's size,
checkpoints and manifests from the batch index, data files from the manifests. Listing is only used
to look for files that should *not* be there (a Parquet file no manifest lists); over HTTP the
signed file list (``SHA256SUMS``) stands in for it.

HTTP uses the standard library (``urllib``): it asks for ``gzip`` (entry bundles SHOULD be served
compressed, c2sp.org/tlog-tiles) and decompresses, follows redirects, and treats 404/410 as
"missing"; any other failure is a :class:`SourceError` naming the URL.
"""

from __future__ import annotations

import gzip
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Protocol

import pyarrow.fs as pafs

from pipelines import storage
from pipelines.errors import SensorlogError

HTTP_TIMEOUT = 60.0  # seconds per request: a slow server is waited for, not failed
USER_AGENT = "sensorlog-verify"


class SourceError(SensorlogError, OSError):
    """A file could not be read for a reason other than its absence."""


class Missing(SourceError, FileNotFoundError):
    """The file does not exist at the source."""


class Source(Protocol):
    label: str  # how messages name this source (a path or URL)

    def read(self, rel: str) -> bytes:
        """The bytes of ``rel``; raises :class:`Missing` or :class:`SourceError`."""
        ...

    def list(self, prefix: str = "") -> dict[str, int] | None:
        """Every file under ``prefix`` as relative path -> size, or None if this source cannot list."""
        ...

    def child(self, rel: str) -> Source:
        """The source rooted at ``rel`` below this one."""
        ...

    def describe(self, rel: str) -> str:
        """``rel`` as a full path or URL, for messages."""
        ...


def _safe(rel: str) -> str:
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if ".." in parts or rel.startswith("/") or "://" in rel:
        raise SourceError(f"refusing to read {rel!r}: not a relative path inside the source")
    return "/".join(parts)


class StorageSource:
    """A local folder or an ``s3://`` prefix, through ``pipelines.storage``."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/") if "://" in root else str(Path(root).resolve())
        self.label = self.root

    def describe(self, rel: str) -> str:
        return storage.join(self.root, rel) if rel else self.root

    def read(self, rel: str) -> bytes:
        uri = storage.join(self.root, _safe(rel))
        try:
            return storage.read_bytes(uri)
        except FileNotFoundError as exc:
            raise Missing(f"{uri} is missing") from exc
        except IsADirectoryError as exc:
            raise SourceError(f"{uri} is a directory") from exc
        except OSError as exc:
            if not storage.is_s3(uri) or storage.exists(uri):
                raise SourceError(f"cannot read {uri}: {exc}") from exc
            raise Missing(f"{uri} is missing") from exc

    def list(self, prefix: str = "") -> dict[str, int] | None:
        """Hidden files included: a dot-file inside a partition is read by DuckDB's globs too."""
        base = storage.join(self.root, _safe(prefix)) if prefix else self.root
        fs, path = storage.filesystem(base)
        if fs.get_file_info(path).type != pafs.FileType.Directory:
            return {}
        out: dict[str, int] = {}
        for info in fs.get_file_info(pafs.FileSelector(path, recursive=True)):
            if info.type == pafs.FileType.File:
                rel = info.path[len(path):].lstrip("/")
                out[f"{prefix.rstrip('/')}/{rel}" if prefix else rel] = int(info.size or 0)
        return out

    def child(self, rel: str) -> StorageSource:
        return StorageSource(storage.join(self.root, _safe(rel)))


class HttpSource:
    """A static site over ``http://`` or ``https://`` (GET only; no listing)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/") + "/"
        self.label = self.url.rstrip("/")

    def describe(self, rel: str) -> str:
        return urllib.parse.urljoin(self.url, rel) if rel else self.label

    def read(self, rel: str) -> bytes:
        url = urllib.parse.urljoin(self.url, urllib.parse.quote(_safe(rel)))
        request = urllib.request.Request(
            url, headers={"Accept-Encoding": "gzip, identity", "User-Agent": USER_AGENT}
        )
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:  # noqa: S310 (http/https only)
                body = response.read()
                encoding = (response.headers.get("Content-Encoding") or "identity").lower()
        except urllib.error.HTTPError as exc:
            if exc.code in (404, 410):
                raise Missing(f"{url} is missing (HTTP {exc.code})") from exc
            raise SourceError(f"cannot fetch {url}: HTTP {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise SourceError(f"cannot fetch {url}: {getattr(exc, 'reason', exc)}") from exc
        if encoding == "gzip":
            try:
                return gzip.decompress(body)
            except (OSError, EOFError) as exc:
                raise SourceError(f"{url}: the gzip-encoded body does not decompress ({exc})") from exc
        if encoding != "identity":
            raise SourceError(f"{url}: unsupported Content-Encoding {encoding!r}")
        return body

    def list(self, prefix: str = "") -> dict[str, int] | None:
        return None

    def child(self, rel: str) -> HttpSource:
        return HttpSource(urllib.parse.urljoin(self.url, urllib.parse.quote(_safe(rel)) + "/"))


def open_source(where: str) -> Source:
    """The source for a folder, an ``http(s)://`` URL or an ``s3://`` prefix."""
    scheme = where.split("://", 1)[0].lower() if "://" in where else ""
    if scheme in ("http", "https"):
        return HttpSource(where)
    if scheme in ("", "s3"):
        return StorageSource(where)
    raise SourceError(f"{where}: unsupported location (use a folder, http(s):// or s3://)")


def parent(where: str) -> str:
    """The location one level up (``site/log`` -> ``site``), for finding a site's signed file list."""
    if "://" in where:
        scheme, rest = where.split("://", 1)
        rest = rest.rstrip("/")
        return f"{scheme}://{rest.rsplit('/', 1)[0]}" if "/" in rest else where
    return str(Path(where).resolve().parent)
