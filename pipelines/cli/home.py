"""``sensorlog init``: create an empty home where ``SENSORLOG_HOME`` points.

Commands that read a home refuse one that does not exist (exit 2, naming it and this command); the
commands that create one are ``init`` itself, ``generate`` (it lands files) and ``demo`` (it builds
the sample city from nothing), and any command run as ``sensorlog --init <command>``.
"""

from __future__ import annotations

from pipelines.cli._output import line
from pipelines.config import Settings


def init_cmd() -> None:
    """Create an empty home at SENSORLOG_HOME (its folder and landing zone); a home already there is left as it is."""
    from pipelines.home import create_home

    s = Settings.from_env()
    made = create_home(s)
    for folder in made.created:
        line(f"created {folder}")
    state = "ready" if made.created else "already there, left as it is"
    line(f"home {s.home}: {state}; land vendor files in {s.landing}, then run `sensorlog run`")
