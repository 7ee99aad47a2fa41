"""The one filesystem primitive the tile store needs, kept inside ``tlog`` so that the package imports
nothing from the application (``pipelines.locks`` re-exports it for the writer's other files)."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_path(path: Path) -> None:
    """fsync a file, or a directory to make a rename or a new file in it durable (the directory
    entry itself is data)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
