"""What a landed file is, from its name, and its bytes as the feeds read them.

Which feed reads a name is ``pipelines.ingest.feeds``'s choice, by suffix; a ``.gz`` suffix on any
of them is decompressed on the fly (every gzip member, in bounded pieces, so a small file that
inflates to gigabytes is read like any long file). Archives and other compressions are refused by
name (``refusal``), so discovery can list them and the run quarantines them whole instead of
ignoring them. Lines are bounded: a line longer than ``MAX_RAW`` bytes is cut there (its head is all
a quarantine row keeps), and the rest of it is skipped without being held in memory.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from pipelines import storage
from pipelines.errors import SensorlogError
from pipelines.ingest.limits import MAX_RAW

GZIP = ".gz"
# Recognised so that they are reported, never read: an archive holds files, not events.
ARCHIVES = (".zip", ".tar", ".tgz", ".tbz", ".tbz2", ".txz", ".7z", ".rar")
OTHER_COMPRESSION = (".bz2", ".xz", ".zst", ".lz4", ".z")
SPREADSHEETS = (".xlsx", ".xls", ".ods")
# What discovery lists besides the feeds' own suffixes: any gzipped file, and the kinds refused with a reason.
ALSO_DISCOVERED = (GZIP, *ARCHIVES, *OTHER_COMPRESSION, *SPREADSHEETS)
READ_CHUNK = 1 << 20


class Unreadable(SensorlogError):
    """The file cannot be read as a whole (unsupported kind, corrupt compression, too large)."""

    def __init__(self, message: str, line: int = 0):
        super().__init__(message)
        self.message, self.line = message, line


class Stream(Protocol):
    def read(self, size: int = -1) -> bytes: ...


def _name(uri: str) -> str:
    return uri.rsplit("/", 1)[-1].lower()


def gzipped(uri: str) -> bool:
    return _name(uri).endswith(GZIP)


def inner_name(uri: str) -> str:
    """The file's name, lower-cased, without a ``.gz`` suffix: what a feed's suffix must end."""
    lower = _name(uri)
    return lower[: -len(GZIP)] if lower.endswith(GZIP) else lower


def refusal(uri: str, readable: tuple[str, ...]) -> Unreadable:
    """Why a file that no feed reads is refused, from its name (``readable``: the suffixes feeds read)."""
    lower, inner = _name(uri), inner_name(uri)
    if inner.endswith(ARCHIVES) or (gzipped(uri) and inner.endswith(".tar")):
        return Unreadable("unsupported: an archive (unpack it and land its files one by one)")
    if lower.endswith(OTHER_COMPRESSION):
        return Unreadable(f"unsupported compression (only {GZIP} is read)")
    if inner.endswith(SPREADSHEETS):
        return Unreadable("unsupported: a spreadsheet workbook (export it as CSV UTF-8)")
    listed = ", ".join([*readable, *(s + GZIP for s in readable)])
    return Unreadable(f"unsupported file type (expected one of {listed})")


class _Gunzip:
    """The decompressed bytes of a gzip stream (all its members), inflated at most ``size`` at a time."""

    def __init__(self, raw: Stream):
        self.raw = raw
        self.inflate = zlib.decompressobj(wbits=31)
        self.pending = b""  # compressed bytes not yet inflated
        self.out = b""
        self.lines = 0  # newlines handed out so far, to name the line where a corrupt stream breaks

    def _error(self, message: str) -> Unreadable:
        return Unreadable(f"gzip: {message}", self.lines + self.out.count(b"\n") + 1)

    def _fill(self, size: int) -> None:
        while len(self.out) < size:
            if not self.pending:
                self.pending = self.raw.read(READ_CHUNK)
                if not self.pending:
                    if not self.inflate.eof:
                        raise self._error("the compressed stream is truncated")
                    return
            if self.inflate.eof:  # another member follows
                self.inflate = zlib.decompressobj(wbits=31)
            try:
                self.out += self.inflate.decompress(self.pending, size - len(self.out))
            except zlib.error as err:
                raise self._error(str(err)) from err
            self.pending = self.inflate.unused_data if self.inflate.eof else self.inflate.unconsumed_tail

    def read(self, size: int = -1) -> bytes:
        self._fill(size if size > 0 else READ_CHUNK)
        data, self.out = (self.out[:size], self.out[size:]) if size > 0 else (self.out, b"")
        self.lines += data.count(b"\n")
        return data


@contextmanager
def open_input(uri: str) -> Iterator[Stream]:
    """The landed file's (decompressed) bytes as a stream, read in bounded pieces."""
    with storage.open_input(uri) as raw:
        yield _Gunzip(raw) if gzipped(uri) else raw


def read_all(uri: str, limit: int) -> bytes:
    """The whole (decompressed) file; ``Unreadable`` if it holds more than ``limit`` bytes."""
    with open_input(uri) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise Unreadable(f"larger than {limit} bytes, the most read whole")
    return data


def iter_lines(uri: str) -> Iterator[bytes]:
    """Lines of the landed file without their ``\\n``; a line is cut after ``MAX_RAW`` bytes."""
    with open_input(uri) as f:
        rest, skipping = b"", False
        while chunk := f.read(READ_CHUNK):
            if skipping:  # inside a line already cut: drop bytes up to its end
                end = chunk.find(b"\n")
                if end < 0:
                    continue
                chunk, skipping = chunk[end + 1 :], False
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                yield line[:MAX_RAW]
            if len(rest) > MAX_RAW:
                yield rest[:MAX_RAW]
                rest, skipping = b"", True
        if rest:
            yield rest
