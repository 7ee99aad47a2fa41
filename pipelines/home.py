"""Creating a home: ``sensorlog init`` (and ``sensorlog --init <command>``).

A home needs only its folder and its landing zone to exist: everything else (published tables,
manifests, quarantine, state, log, key) is made by the first command that writes it. A command that
reads a home (``Settings.from_existing_home``) refuses one that does not exist, so that a mistyped
``SENSORLOG_HOME`` is an error and not a new, empty home.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipelines.config import Settings
from pipelines.errors import UsageError


@dataclass(frozen=True)
class CreatedHome:
    home: str
    created: tuple[str, ...]  # the folders this call made, in order; empty when the home was complete


def create_home(settings: Settings) -> CreatedHome:
    """Make the home's local folders that are missing: the home itself (or, for an ``s3://`` home,
    the local state folder that stands in for it) and a local landing zone. Idempotent; a path in
    the way that is not a folder is a ``UsageError`` naming it."""
    wanted = [settings.home if "://" not in settings.home else str(Path(settings.state).parent)]
    if "://" not in settings.landing:
        wanted.append(settings.landing)
    created = []
    for folder in wanted:
        path = Path(folder)
        if path.is_dir():
            continue
        if path.exists():
            raise UsageError(f"init: {path} exists and is not a folder")
        try:
            path.mkdir(parents=True)
        except OSError as err:
            raise UsageError(f"init: cannot create {path}: {err.strerror or err}") from err
        created.append(str(path))
    return CreatedHome(settings.home, tuple(created))
