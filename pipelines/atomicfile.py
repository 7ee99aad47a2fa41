"""Replace a local file atomically and durably: readers see the old bytes or the new, never a mix."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from pipelines.locks import fsync_path


def write_atomic(
    path: Path, data: bytes, mode: int = 0o644, *, exclusive: bool = False, tmp: Path | None = None
) -> None:
    """Write ``data`` to a hidden temporary sibling, fsync it, rename it over ``path``, fsync the directory.

    ``exclusive``: create ``path`` only if it is absent (a hard link instead of the rename), else raise
    ``FileExistsError`` and leave the existing file as it is: of two concurrent creators, one wins.
    ``tmp``: the temporary sibling's name, for callers whose readers recognise their own leftovers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if tmp is None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            try:
                os.link(tmp, path)
            finally:
                tmp.unlink()
        else:
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_path(path.parent)
