"""One filesystem layer for local paths and ``s3://`` URIs.

Everything in ``pipelines`` reads and writes through these functions, so the same code runs on a
laptop folder and on AWS S3 or MinIO. S3 settings are ``pipelines.config.S3Settings``: the standard AWS
environment variables (``AWS_ENDPOINT_URL``, ``AWS_DEFAULT_REGION``; credentials such as
``AWS_ACCESS_KEY_ID`` are left to the AWS SDK), as boto3 reads them, plus sensorlog's retries and timeouts.
"""

from __future__ import annotations

import errno
import hashlib
import os
import posixpath
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

import pyarrow.fs as pafs

from pipelines.atomicfile import write_atomic
from pipelines.config import S3Settings

CHUNK = 1 << 20


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


@lru_cache(maxsize=8)
def _s3(s3: S3Settings) -> pafs.S3FileSystem:
    # Transient S3 errors (throttling, 5xx, dropped connections) are retried with exponential backoff by
    # the AWS SDK inside pyarrow; after the last attempt the caller gets the error naming the object.
    kwargs: dict = {
        "region": s3.region or "us-east-1",
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=s3.max_attempts),
        "connect_timeout": s3.connect_timeout,
        "request_timeout": s3.request_timeout,
    }
    if s3.endpoint:
        parsed = urlparse(s3.endpoint)
        kwargs["endpoint_override"] = parsed.netloc or parsed.path
        kwargs["scheme"] = parsed.scheme or "https"
    return pafs.S3FileSystem(**kwargs)


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and in-filesystem path for a URI."""
    if is_s3(uri):
        # Read at every call (as boto3 reads its variables), so a changed endpoint takes effect; one
        # client per distinct setting is kept.
        return _s3(S3Settings.from_env()), uri[len("s3://") :]
    return pafs.LocalFileSystem(), os.path.abspath(uri)


def exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def makedirs(uri: str) -> None:
    fs, path = filesystem(uri)
    if not is_s3(uri):
        fs.create_dir(path, recursive=True)


def read_bytes(uri: str) -> bytes:
    fs, path = filesystem(uri)
    with fs.open_input_stream(path, compression=None) as f:
        return f.read()


def open_input(uri: str):
    """A binary input stream of the object's bytes exactly as stored (pyarrow would otherwise
    decompress by file extension, so a ``.gz`` file's hash would not be that of its bytes); read in
    chunks, never loading the whole object."""
    fs, path = filesystem(uri)
    return fs.open_input_stream(path, compression=None)


def open_random_access(uri: str):
    fs, path = filesystem(uri)
    return fs.open_input_file(path)


def sha256_of(uri: str) -> tuple[str, int]:
    """Hex SHA-256 and size of an object, streamed."""
    digest = hashlib.sha256()
    size = 0
    with open_input(uri) as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def temp_sibling(uri: str) -> str:
    """A temporary name next to ``uri`` (same directory, so a local rename is atomic)."""
    head, _, tail = uri.rpartition("/")
    # Hidden and without the final suffix, so no reader's glob (``*.parquet``) can pick up a part.
    return f"{head}/.{tail}.{uuid.uuid4().hex}.partial"


def write_bytes(uri: str, data: bytes, content_type: str | None = None, *, durable: bool = True) -> None:
    """Write an object so that readers see the old bytes or the new bytes, never a part.

    Locally: write a temporary sibling, fsync, rename, fsync the directory (``atomicfile.write_atomic``).
    On S3 a PUT is already all-or-nothing.
    ``durable=False`` skips the fsyncs (still atomic for readers): for derived outputs of thousands
    of files, such as the portal, that are rebuilt rather than recovered and synced once at the end.
    """
    fs, path = filesystem(uri)
    if is_s3(uri):
        metadata = {"Content-Type": content_type} if content_type else None
        with fs.open_output_stream(path, metadata=metadata) as f:
            f.write(data)
        return
    if durable:
        write_atomic(Path(path), data, 0o666, tmp=Path(temp_sibling(path)))
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = temp_sibling(path)
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def sync(uri: str) -> None:
    """Make every file written with ``durable=False`` under a local ``uri`` durable (no-op on S3)."""
    if not is_s3(uri):
        os.sync()


def move(src: str, dst: str) -> None:
    """Rename locally (atomic); copy then delete on S3."""
    fs, src_path = filesystem(src)
    _, dst_path = filesystem(dst)
    if is_s3(src):
        fs.copy_file(src_path, dst_path)
        fs.delete_file(src_path)
        return
    os.makedirs(os.path.dirname(dst_path), exist_ok=True)
    try:
        os.replace(src_path, dst_path)
    except OSError as err:
        if err.errno != errno.EXDEV:
            raise
        # Another filesystem: copy to a hidden sibling of ``dst``, make it durable, rename, then delete.
        tmp = temp_sibling(dst_path)
        shutil.copyfile(src_path, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dst_path)
        os.unlink(src_path)


def delete(uri: str) -> None:
    fs, path = filesystem(uri)
    if exists(uri):
        fs.delete_file(path)


@dataclass(frozen=True)
class FileInfo:
    uri: str
    size: int
    mtime_ns: int | None


def _info(uri: str, info: pafs.FileInfo) -> FileInfo:
    return FileInfo(uri, int(info.size or 0), info.mtime_ns)


def file_info(uri: str) -> FileInfo | None:
    fs, path = filesystem(uri)
    info = fs.get_file_info(path)
    return None if info.type != pafs.FileType.File else _info(uri, info)


def list_file_infos(uri: str, suffixes: tuple[str, ...] | None = None) -> list[FileInfo]:
    """Every file under ``uri`` (recursive), sorted by URI; hidden names (``.tmp-*``) skipped."""
    fs, path = filesystem(uri)
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return []
    out = []
    for info in fs.get_file_info(pafs.FileSelector(path, recursive=True)):
        if info.type != pafs.FileType.File:
            continue
        rel = info.path[len(path) :].lstrip("/")
        if any(part.startswith(".") for part in rel.split("/")):
            continue
        if suffixes and not info.path.lower().endswith(suffixes):
            continue
        out.append(_info(join(uri, rel), info))
    return sorted(out, key=lambda i: i.uri)


def list_files(uri: str, suffixes: tuple[str, ...] | None = None) -> list[str]:
    return [info.uri for info in list_file_infos(uri, suffixes)]


@dataclass(frozen=True)
class Skipped:
    """Something under a landing root that discovery did not list, and why."""

    uri: str
    reason: str

    def __str__(self) -> str:
        return f"{self.uri}: {self.reason}"


@dataclass(frozen=True)
class Listing:
    files: list[FileInfo]
    skipped: list[Skipped]


def list_landing(uri: str, suffixes: tuple[str, ...]) -> Listing:
    """The files a landing root holds, bounded by the root, plus what was set aside and why.

    Unlike ``list_file_infos`` this never leaves ``uri``: locally no symlink is followed (a link to
    anything, inside or outside the root, is reported, so there are no loops and no outside bytes),
    and only regular files are listed; on S3 a key whose path has an empty, ``.`` or ``..`` segment is
    reported (read literally it is not the object a path names; normalised it may leave the prefix).
    Hidden names (``.tmp-*``, partial uploads) are skipped silently, as ``list_file_infos`` does."""
    listing = _landing_s3(uri, suffixes) if is_s3(uri) else _landing_local(uri, suffixes)
    return Listing(sorted(listing.files, key=lambda i: i.uri), sorted(listing.skipped, key=lambda s: s.uri))


def _symlink_reason(path: str, root: str) -> str:
    try:
        target = os.path.realpath(path, strict=True)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "symlink loop, not followed"
        return f"broken symlink (to {os.readlink(path)!r}), not followed"
    where = "inside" if target == root or target.startswith(root + os.sep) else "outside"
    return f"symlink to {target} ({where} the landing root), not followed"


def _landing_local(uri: str, suffixes: tuple[str, ...]) -> Listing:
    top = os.path.abspath(uri)
    if not os.path.isdir(top):
        return Listing([], [])
    root = os.path.realpath(top)
    files: list[FileInfo] = []
    skipped: list[Skipped] = []
    folders = [""]
    while folders:
        folder = folders.pop()
        with os.scandir(os.path.join(top, folder)) as entries:
            found = sorted(entries, key=lambda e: e.name)
        for entry in found:
            if entry.name.startswith("."):
                continue
            rel = f"{folder}/{entry.name}" if folder else entry.name
            if entry.is_symlink():
                skipped.append(Skipped(join(uri, rel), _symlink_reason(entry.path, root)))
            elif entry.is_dir(follow_symlinks=False):
                folders.append(rel)
            elif not entry.is_file(follow_symlinks=False):
                skipped.append(Skipped(join(uri, rel), "not a regular file (device, FIFO or socket)"))
            elif entry.name.lower().endswith(suffixes):
                stat = entry.stat(follow_symlinks=False)
                files.append(FileInfo(join(uri, rel), stat.st_size, stat.st_mtime_ns))
    return Listing(files, skipped)


def _landing_s3(uri: str, suffixes: tuple[str, ...]) -> Listing:
    fs, path = filesystem(uri)
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return Listing([], [])
    prefix = path.rstrip("/") + "/"
    files: list[FileInfo] = []
    skipped: list[Skipped] = []
    for info in fs.get_file_info(pafs.FileSelector(path, recursive=True)):
        if info.type != pafs.FileType.File:
            continue
        shown = f"s3://{info.path}"
        if not info.path.startswith(prefix):
            skipped.append(Skipped(shown, f"outside the landing prefix s3://{prefix}"))
            continue
        parts = info.path[len(prefix) :].split("/")
        if any(part in ("", ".", "..") for part in parts):
            normal = posixpath.normpath(info.path)
            where = "inside" if normal.startswith(prefix) else "outside"
            skipped.append(Skipped(shown, f"key with an empty, '.' or '..' segment (normalised: s3://{normal},"
                                          f" {where} the landing prefix), not read"))
            continue
        if any(part.startswith(".") for part in parts) or not info.path.lower().endswith(suffixes):
            continue
        files.append(_info(join(uri, *parts), info))
    return Listing(files, skipped)


def iter_lines(uri: str) -> Iterator[bytes]:
    """Lines of an object as bytes (without the newline), read in bounded chunks."""
    with open_input(uri) as f:
        rest = b""
        while chunk := f.read(CHUNK):
            data = rest + chunk
            lines = data.split(b"\n")
            rest = lines.pop()
            yield from lines
        if rest:
            yield rest
