"""The filesystem primitives the tile store needs, kept inside ``tlog`` so that the package imports
nothing from the application (``pipelines.locks`` re-exports it for the writer's other files)."""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path


def fsync_path(path: Path) -> None:
    """fsync a file, or a directory to make a rename or a new file in it durable (the directory
    entry itself is data)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _libc_syncfs():
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    return function


_SYNCFS = _libc_syncfs()


def syncfs_available() -> bool:
    return _SYNCFS is not None


def syncfs(path: Path) -> None:
    """Make everything written to the file system holding ``path`` durable (Linux ``syncfs(2)``): file
    data, new files and renames alike. One call replaces an fsync per file when a step writes hundreds
    of files; it reports write-back errors since Linux 5.8."""
    if _SYNCFS is None:
        raise OSError("syncfs is not available on this system")
    fd = os.open(path, os.O_RDONLY)
    try:
        if _SYNCFS(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs({path}): {os.strerror(err)}")
    finally:
        os.close(fd)
