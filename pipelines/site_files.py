"""The site's file list, signed by the log key: ``SHA256SUMS`` as a C2SP signed note.

Its text is::

    <origin> site files
    checkpoint <tree size> <base64 root hash>
    <sha256 hex>  <path>            one line per file of the site, sorted by path (sha256sum format)
    ...

followed by the signed note's blank line and the log key's signature line. The ``checkpoint`` line
binds the list to the tree the site was built from. ``sha256sum -c SHA256SUMS`` still checks the
files (it warns that the first two and the signature lines are not sums); ``sensorlog verify``
checks the signature, the checkpoint line and every listed file, and over HTTP uses the list to
find Parquet files that no manifest lists.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass

from pipelines.errors import SensorlogError
from pipelines.tlog import note
from pipelines.tlog.checkpoint import Checkpoint

FILE_NAME = "SHA256SUMS"
_SUM = re.compile(r"^([0-9a-f]{64})  (\S(?:.*\S)?)$")


class FileListError(SensorlogError, ValueError):
    pass


@dataclass(frozen=True)
class FileList:
    origin: str
    size: int
    root: bytes
    files: dict[str, str]  # path -> sha256 hex


def sums(files: Iterable[tuple[str, str]]) -> str:
    """``sha256  path`` lines sorted by path (``sha256sum`` format): the list without a log to sign it."""
    lines = []
    for path, digest in sorted(files):
        if "\n" in path or path != path.strip():
            raise FileListError(f"file name {path!r} cannot be listed")
        lines.append(f"{digest}  {path}\n")
    return "".join(lines)


def render(origin: str, checkpoint: Checkpoint, files: Iterable[tuple[str, str]]) -> str:
    """The unsigned text: header lines, then ``sha256  path`` lines sorted by path."""
    head = f"{origin} site files\ncheckpoint {checkpoint.size} {base64.b64encode(checkpoint.root_hash).decode()}\n"
    return head + sums(files)


def sign(origin: str, checkpoint: Checkpoint, files: Iterable[tuple[str, str]], signer: note.Signer) -> str:
    return note.sign(render(origin, checkpoint, files), signer)


def paths_of_unverified(text: str) -> list[str]:
    """The paths a list names, without checking its signature (to clean up a previous build)."""
    return [m.group(2) for line in text.splitlines() if (m := _SUM.match(line))]


def open_list(text: str | bytes, key: note.Verifier | str) -> FileList:
    """Verify the signature and parse; raises :class:`FileListError` or ``note.NoteError``."""
    body, _ = note.open(text, [key])
    lines = body.splitlines()
    if len(lines) < 2 or not lines[0].endswith(" site files"):
        raise FileListError("the first line must be '<origin> site files'")
    origin = lines[0][: -len(" site files")]
    parts = lines[1].split(" ")
    if len(parts) != 3 or parts[0] != "checkpoint" or not parts[1].isdigit():
        raise FileListError("the second line must be 'checkpoint <size> <base64 root>'")
    try:
        root = base64.b64decode(parts[2], validate=True)
    except ValueError as exc:
        raise FileListError(f"bad root hash on the checkpoint line: {exc}") from exc
    files: dict[str, str] = {}
    for n, line in enumerate(lines[2:], start=3):
        m = _SUM.match(line)
        if not m:
            raise FileListError(f"line {n} is not '<sha256>  <path>': {line[:80]!r}")
        files[m.group(2)] = m.group(1)
    return FileList(origin, int(parts[1]), root, files)
